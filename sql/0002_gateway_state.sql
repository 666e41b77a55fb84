-- 0002_gateway_state.sql - the gateway's own state, schema `ewp`: Registry
-- catalogue snapshots, key metadata, the persistent job queue (outgoing
-- CNRs, incoming-CNR re-fetches, syncs), the message log of every EWP
-- exchange, the audit log, portal sessions and per-partner sync results.
--
-- Applied by `ewpctl migrate` inside one transaction (no BEGIN/COMMIT here,
-- no psql meta-commands). `ewpctl migrate` creates the schema and its own
-- bookkeeping table ewp.schema_migrations before running any migration,
-- hence CREATE SCHEMA IF NOT EXISTS. Tables of this schema are plural
-- snake_case (house style); HEI ids use the smile.hei_id domain of 0001.

CREATE SCHEMA IF NOT EXISTS ewp;

COMMENT ON SCHEMA ewp IS 'State of the EWP gateway (ewpd / ewpctl)';

-- ---------------------------------------------------------------------------
-- Registry catalogue snapshots
-- ---------------------------------------------------------------------------
-- One row per catalogue actually downloaded (a 304 only moves
-- last_checked_at of the current row). Rows are immutable apart from the
-- conditional-GET bookkeeping, and the newest valid snapshot can never be
-- deleted: pruning keeps the last good copy, which ewpd serves from while
-- the Registry is down or sends a broken catalogue.
CREATE TABLE ewp.registry_snapshots (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url             text NOT NULL CHECK (url ~ '^(https?|file)://[^[:space:][:cntrl:]]+$'),
    body            bytea NOT NULL
                    CONSTRAINT registry_snapshots_body_size
                    CHECK (octet_length(body) BETWEEN 1 AND 64 * 1024 * 1024),  -- EWP_MAX_CATALOGUE_BYTES
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    etag            text CHECK (length(etag) <= 1024),
    -- the Last-Modified header verbatim, to be sent back as If-Modified-Since
    last_modified   text CHECK (length(last_modified) <= 100),
    fetched_at      timestamptz NOT NULL DEFAULT now(),
    last_checked_at timestamptz NOT NULL DEFAULT now(),   -- last 200 or 304 confirming it
    -- XSD-valid and indexable; only valid snapshots are ever swapped in
    valid           boolean NOT NULL,
    validation_error text,
    hei_count       integer CHECK (hei_count >= 0),
    CONSTRAINT registry_snapshots_sha256_of_body CHECK (sha256 = encode(sha256(body), 'hex')),
    CONSTRAINT registry_snapshots_error_iff_invalid CHECK (valid = (validation_error IS NULL)),
    CONSTRAINT registry_snapshots_checked_after_fetch CHECK (last_checked_at >= fetched_at)
);

COMMENT ON TABLE ewp.registry_snapshots IS
    'Downloaded Registry catalogues; the newest valid one is the last good copy and cannot be deleted';

CREATE INDEX registry_snapshots_valid ON ewp.registry_snapshots (id DESC) WHERE valid;

CREATE FUNCTION ewp.registry_snapshots_guard()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.valid AND NOT EXISTS (
            SELECT 1 FROM ewp.registry_snapshots s WHERE s.valid AND s.id > OLD.id)
        THEN
            RAISE EXCEPTION 'registry snapshot % is the last good catalogue and is kept', OLD.id
                  USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF (NEW.url, NEW.sha256, NEW.fetched_at, NEW.valid, NEW.validation_error, NEW.hei_count)
       IS DISTINCT FROM (OLD.url, OLD.sha256, OLD.fetched_at, OLD.valid, OLD.validation_error, OLD.hei_count)
       OR NEW.body IS DISTINCT FROM OLD.body
    THEN
        RAISE EXCEPTION 'registry snapshot %: only etag, last_modified and last_checked_at may change', OLD.id
              USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER registry_snapshots_guard
    BEFORE UPDATE OR DELETE ON ewp.registry_snapshots
    FOR EACH ROW EXECUTE FUNCTION ewp.registry_snapshots_guard();

-- the catalogue ewpd should be using
CREATE VIEW ewp.registry_current AS
    SELECT * FROM ewp.registry_snapshots WHERE valid ORDER BY id DESC LIMIT 1;

-- ---------------------------------------------------------------------------
-- Keys metadata (never private material: the private keys stay in files,
-- 0600, under [keys] keys_dir)
-- ---------------------------------------------------------------------------
CREATE TABLE ewp.keys (
    -- hex SHA-256 of the DER public key: the Registry's sha-256 attribute
    -- and the keyId of HTTP Signatures
    keyid           text PRIMARY KEY CHECK (keyid ~ '^[0-9a-f]{64}$'),
    role            text NOT NULL CHECK (role IN ('client', 'server')),
    -- the private key's file name, relative to keys_dir (no directories)
    file_name       text NOT NULL UNIQUE CHECK (file_name ~ '^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$'),
    public_key      bytea NOT NULL,                     -- DER SubjectPublicKeyInfo
    bits            integer NOT NULL CHECK (bits >= 2048),   -- the Registry refuses less
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- listed in our manifest (client- / server-credentials-in-use)
    published       boolean NOT NULL DEFAULT false,
    published_at    timestamptz,
    -- the key ewpd signs with for its role
    in_use          boolean NOT NULL DEFAULT false,
    in_use_since    timestamptz,
    retired_at      timestamptz,
    CONSTRAINT keys_keyid_of_public_key CHECK (keyid = encode(sha256(public_key), 'hex')),
    -- partners refuse signatures by keys they cannot find in the catalogue
    CONSTRAINT keys_in_use_is_published CHECK (NOT in_use OR published),
    CONSTRAINT keys_published_since CHECK (NOT published OR published_at IS NOT NULL),
    CONSTRAINT keys_in_use_since CHECK (NOT in_use OR in_use_since IS NOT NULL),
    CONSTRAINT keys_retired_is_unused CHECK (retired_at IS NULL OR NOT (published OR in_use))
);

COMMENT ON TABLE ewp.keys IS
    'RSA keys of this node (metadata and public key only): published, in use, retired';

-- one signing key per role at a time (rotation: publish the new key, wait,
-- switch in_use, unpublish the old one)
CREATE UNIQUE INDEX keys_one_in_use ON ewp.keys (role) WHERE in_use;

-- ---------------------------------------------------------------------------
-- Jobs: outbox (CNRs to partners, monitoring reports) and inbox (re-fetches
-- after incoming CNRs, partner syncs), ewp-notes.md section 11.1
-- ---------------------------------------------------------------------------
-- Life cycle:
--   pending  --claim-->  running (lease_until, leased_by set)
--   running  --2xx-->    success
--   running  --timeout/5xx-->  pending again (attempts + 1, next_attempt_at
--            later), or failed-max-attempts / expired when out of tries
--   running  --4xx-->    rejected (not retried, to investigate)
--   pending/running --partner has no such API--> no-cnr-api
--   pending  --staff-->  cancelled
-- A running job whose lease ran out (crashed worker) may be claimed again.
-- Deduplication: at most one *pending* job per (direction, kind, hei_id,
-- api, dedupe_key) (jobs_pending_unique). A new change for an object that
-- already has a pending job is merged into it with
--   INSERT ... ON CONFLICT (direction, kind, hei_id, api, dedupe_key)
--       WHERE status = 'pending' DO UPDATE SET payload = EXCLUDED.payload, ...
-- Running jobs are outside the index, so a change made while a CNR is on
-- the wire gets a job of its own; if that running job then has to be
-- retried, it cannot go back to pending beside the newer one: it becomes
-- status 'merged' with merged_into = the newer job (older into newer, as
-- ewp-node does).
CREATE TABLE ewp.jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    direction       text NOT NULL CHECK (direction IN ('out', 'in')),
    -- what to do, e.g. 'cnr' (send a CNR), 'refetch' (get after a CNR),
    -- 'sync' (institution sync), 'monitoring' (report to the Monitoring API)
    kind            text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    hei_id          smile.hei_id NOT NULL,              -- the partner HEI concerned
    -- API name as in the gateway's api table, e.g. 'omobility-cnr', 'iias'
    api             text NOT NULL CHECK (api ~ '^[a-z][a-z0-9-]{0,63}$'),
    -- the object the job is about (e.g. the omobility_id), for merging
    dedupe_key      text NOT NULL CHECK (length(dedupe_key) BETWEEN 1 AND 512),
    payload         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    status          text NOT NULL DEFAULT 'pending'
                    CONSTRAINT jobs_status_known CHECK (status IN (
                        'pending', 'running',
                        'success', 'merged', 'no-cnr-api', 'rejected',
                        'failed-max-attempts', 'expired', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    leased_by       text CHECK (length(leased_by) BETWEEN 1 AND 255),   -- host:pid of the worker
    -- give up after this (the CNR spec suggests about 24 h); NULL: never
    expires_at      timestamptz,
    last_error      text,
    last_http_status smallint CHECK (last_http_status BETWEEN 100 AND 599),
    merged_into     bigint REFERENCES ewp.jobs (id) ON DELETE CASCADE,
    -- the logged exchange that caused this job (an incoming CNR); FK added
    -- after ewp.message_log
    origin_log_id   bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CONSTRAINT jobs_finished_iff_final
        CHECK ((status IN ('pending', 'running')) = (finished_at IS NULL)),
    CONSTRAINT jobs_lease_iff_running CHECK ((status = 'running') = (lease_until IS NOT NULL)),
    CONSTRAINT jobs_lease_has_owner CHECK ((lease_until IS NULL) = (leased_by IS NULL)),
    CONSTRAINT jobs_merged_has_target CHECK ((status = 'merged') = (merged_into IS NOT NULL)),
    CONSTRAINT jobs_not_merged_into_self CHECK (merged_into <> id),
    CONSTRAINT jobs_expiry_after_creation CHECK (expires_at IS NULL OR expires_at > created_at)
);

COMMENT ON TABLE ewp.jobs IS
    'Persistent outbox/inbox: CNRs to send, re-fetches and syncs to run, with retries and leases';

-- the claim: SELECT ... WHERE status = 'pending' AND next_attempt_at <= now()
--            ORDER BY next_attempt_at LIMIT n FOR UPDATE SKIP LOCKED
CREATE INDEX jobs_due ON ewp.jobs (next_attempt_at) WHERE status = 'pending';
-- running jobs whose lease ran out
CREATE INDEX jobs_leases ON ewp.jobs (lease_until) WHERE status = 'running';
-- pending duplicates are merged, never stored twice
CREATE UNIQUE INDEX jobs_pending_unique ON ewp.jobs (direction, kind, hei_id, api, dedupe_key)
    WHERE status = 'pending';
-- portal: a partner's jobs, recent jobs, one object's history
CREATE INDEX jobs_hei ON ewp.jobs (hei_id, created_at DESC);
CREATE INDEX jobs_created ON ewp.jobs (created_at DESC);
CREATE INDEX jobs_object ON ewp.jobs (api, dedupe_key);
CREATE INDEX jobs_merged_into ON ewp.jobs (merged_into) WHERE merged_into IS NOT NULL;

CREATE TRIGGER jobs_modified_at
    BEFORE INSERT OR UPDATE ON ewp.jobs
    FOR EACH ROW EXECUTE FUNCTION smile.set_modified_at();

-- Wakes the workers (LISTEN ewp_jobs) when a job becomes pending; the
-- payload is the direction. Notifications are sent at commit, identical
-- ones collapsed within a transaction.
CREATE FUNCTION ewp.jobs_notify()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('ewp_jobs', NEW.direction);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify
    AFTER INSERT OR UPDATE OF status, next_attempt_at ON ewp.jobs
    FOR EACH ROW WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION ewp.jobs_notify();

-- ---------------------------------------------------------------------------
-- Message log: every EWP exchange, in and out (ewp-notes.md section 11.3)
-- ---------------------------------------------------------------------------
-- Written by the gateway, searched by admins when a partner complains.
-- Deliberately lenient on what was *received* (a malformed request must
-- still be logged), strict on what ewpd itself decides (direction,
-- validation verdict, sizes). Bodies are capped by configuration; the
-- column CHECK is a hard ceiling of 1 MiB and *_bytes keeps the real size,
-- so a truncated body is recognisable (octet_length(body) < *_bytes).
CREATE TABLE ewp.message_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),   -- when the exchange started
    direction       text NOT NULL CHECK (direction IN ('in', 'out')),
    method          text NOT NULL CHECK (method ~ '^[A-Z]{1,16}$'),
    url             text NOT NULL CHECK (length(url) BETWEEN 1 AND 8192),
    -- out: the HEI called; in: the HEIs covered by the caller's key
    -- (possibly several, possibly none when authentication failed)
    partner_hei_ids text[] NOT NULL DEFAULT '{}' CHECK (cardinality(partner_hei_ids) <= 10000),
    api             text CHECK (api ~ '^[a-z][a-z0-9-]{0,63}$'),   -- NULL: no API matched
    api_version     text CHECK (api_version ~ '^[0-9]+\.[0-9]+\.[0-9]+$'),
    status          smallint CHECK (status BETWEEN 100 AND 599),   -- NULL: no response
    duration_ms     integer CHECK (duration_ms >= 0),
    request_id      text CHECK (length(request_id) <= 255),         -- X-Request-Id
    key_id          text CHECK (key_id ~ '^[0-9a-f]{64}$'),        -- keyId of the request signature
    -- header lines in order, duplicates kept: [["Host", "..."], ...]
    request_headers jsonb CHECK (jsonb_typeof(request_headers) = 'array'),
    response_headers jsonb CHECK (jsonb_typeof(response_headers) = 'array'),
    request_body    bytea
                    CONSTRAINT message_log_request_body_cap
                    CHECK (octet_length(request_body) <= 1024 * 1024),
    request_bytes   bigint CHECK (request_bytes >= 0),
    response_body   bytea
                    CONSTRAINT message_log_response_body_cap
                    CHECK (octet_length(response_body) <= 1024 * 1024),
    response_bytes  bigint CHECK (response_bytes >= 0),
    -- XSD validation of the body ewpd received (request in, response out)
    validation      text NOT NULL DEFAULT 'not-checked'
                    CHECK (validation IN ('valid', 'invalid', 'not-checked')),
    validation_error text,
    -- what went wrong: transport error, signature check, developer-message
    error           text,
    -- the exchange that caused this one (incoming CNR -> the GET it triggers)
    parent_id       bigint REFERENCES ewp.message_log (id) ON DELETE SET NULL,
    -- the job this exchange was an attempt of
    job_id          bigint REFERENCES ewp.jobs (id) ON DELETE SET NULL,
    -- when the failure was reported to the EWP Monitoring API
    reported_at     timestamptz,
    CONSTRAINT message_log_not_own_parent CHECK (parent_id <> id),
    CONSTRAINT message_log_request_size
        CHECK (request_body IS NULL OR octet_length(request_body) <= request_bytes),
    CONSTRAINT message_log_response_size
        CHECK (response_body IS NULL OR octet_length(response_body) <= response_bytes),
    CONSTRAINT message_log_invalid_says_why
        CHECK (validation <> 'invalid' OR validation_error IS NOT NULL)
);

COMMENT ON TABLE ewp.message_log IS
    'Every EWP exchange in and out: method, URL, partner, API, status, timing, headers, capped bodies, verdicts';

-- the portal's searches: time range, partner, API, failures, one request
-- id, CNR -> fetch chains, a job's attempts
CREATE INDEX message_log_created ON ewp.message_log (created_at DESC);
CREATE INDEX message_log_partner ON ewp.message_log USING gin (partner_hei_ids);
CREATE INDEX message_log_api ON ewp.message_log (api, created_at DESC);
CREATE INDEX message_log_status ON ewp.message_log (status, created_at DESC);
CREATE INDEX message_log_failures ON ewp.message_log (created_at DESC)
    WHERE status IS NULL OR status >= 400 OR error IS NOT NULL OR validation = 'invalid';
CREATE INDEX message_log_request_id ON ewp.message_log (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX message_log_parent ON ewp.message_log (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX message_log_job ON ewp.message_log (job_id) WHERE job_id IS NOT NULL;

ALTER TABLE ewp.jobs
    ADD CONSTRAINT jobs_origin_log_fk FOREIGN KEY (origin_log_id)
        REFERENCES ewp.message_log (id) ON DELETE SET NULL;
CREATE INDEX jobs_origin_log ON ewp.jobs (origin_log_id) WHERE origin_log_id IS NOT NULL;

-- ---------------------------------------------------------------------------
-- Institution sync results, one row per partner (issue 3, item 5)
-- ---------------------------------------------------------------------------
CREATE TABLE ewp.partner_syncs (
    hei_id          smile.hei_id PRIMARY KEY
                    REFERENCES smile.etablissement (schac_id) ON UPDATE CASCADE ON DELETE CASCADE,
    last_attempt_at timestamptz,
    last_success_at timestamptz,
    last_error_at   timestamptz,
    last_error      text,
    consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_log_id     bigint REFERENCES ewp.message_log (id) ON DELETE SET NULL,
    CONSTRAINT partner_syncs_error_has_time CHECK ((last_error IS NULL) = (last_error_at IS NULL))
);

COMMENT ON TABLE ewp.partner_syncs IS
    'Institutions / OUnits sync per partner HEI: last success, last error';

-- ---------------------------------------------------------------------------
-- Audit log: what staff and operators did (force a retry, notify a partner,
-- publish a key, log in). Append-only: rows are never updated; deleting
-- old ones is the retention policy's business.
-- ---------------------------------------------------------------------------
CREATE TABLE ewp.audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- user name, or the program: 'ewpctl', 'ewpd'
    actor           text NOT NULL CHECK (length(actor) BETWEEN 1 AND 255),
    utilisateur_id  bigint REFERENCES smile.utilisateur (id) ON DELETE SET NULL,
    -- e.g. 'job.force-retry', 'partner.notify', 'key.publish', 'session.login'
    action          text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    object_type     text CHECK (object_type ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    object_id       text CHECK (length(object_id) <= 255),
    details         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    client_addr     inet
);

COMMENT ON TABLE ewp.audit_log IS 'Append-only record of staff and operator actions';

CREATE INDEX audit_log_created ON ewp.audit_log (created_at DESC);
CREATE INDEX audit_log_utilisateur ON ewp.audit_log (utilisateur_id, created_at DESC)
    WHERE utilisateur_id IS NOT NULL;
CREATE INDEX audit_log_object ON ewp.audit_log (object_type, object_id);

CREATE FUNCTION ewp.audit_log_immutable()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'ewp.audit_log is append-only (row %)', OLD.id
          USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER audit_log_immutable
    BEFORE UPDATE ON ewp.audit_log
    FOR EACH ROW EXECUTE FUNCTION ewp.audit_log_immutable();

-- ---------------------------------------------------------------------------
-- Staff portal sessions
-- ---------------------------------------------------------------------------
-- The cookie carries a random token; only its SHA-256 is stored, so a
-- copy of the database does not yield usable sessions.
CREATE TABLE ewp.portal_sessions (
    token_sha256    bytea PRIMARY KEY CHECK (octet_length(token_sha256) = 32),
    utilisateur_id  bigint NOT NULL REFERENCES smile.utilisateur (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,                        -- logout or forced end
    client_addr     inet,
    user_agent      text CHECK (length(user_agent) <= 512),
    CONSTRAINT portal_sessions_expiry_after_creation CHECK (expires_at > created_at),
    CONSTRAINT portal_sessions_seen_after_creation CHECK (last_seen_at >= created_at)
);

COMMENT ON TABLE ewp.portal_sessions IS 'Staff portal sessions (token hashes only)';

CREATE INDEX portal_sessions_utilisateur ON ewp.portal_sessions (utilisateur_id);
CREATE INDEX portal_sessions_expires ON ewp.portal_sessions (expires_at);
