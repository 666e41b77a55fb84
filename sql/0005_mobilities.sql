-- Student mobilities exchanged over EWP, on both sides of the exchange:
-- nominations (OMobilities v3 / IMobilities v2), online learning
-- agreements (OMobility LAs v1.2) with their versions, and the decisions
-- our staff send to partners. ewp-notes.md sections 6 and 7.
--
-- One table holds both directions. A row with is_outgoing = true is a
-- mobility this node is the master of (we are the sending HEI and serve it
-- through OMobilities); is_outgoing = false is the copy of a partner's
-- nomination, fetched after a CNR or by the periodic re-sync, and linked
-- to the incoming registration (smile.inscription) it created.

-- smile.set_modified_at() compared whole rows (NEW IS DISTINCT FROM OLD),
-- which needs an equality operator for every column type: xml has none, so
-- any update of a row with an xml column failed. Rows are compared by
-- their text form instead, which is equal exactly when every column is.
CREATE OR REPLACE FUNCTION smile.set_modified_at()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.modified_at := now();
    ELSIF NEW.modified_at IS DISTINCT FROM OLD.modified_at THEN
        NEW.modified_at := now();
    ELSIF NEW::text IS DISTINCT FROM OLD::text THEN
        NEW.modified_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TABLE smile.mobility (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sending_hei_id  smile.hei_id NOT NULL,
    omobility_id    smile.ewp_id NOT NULL,
    receiving_hei_id smile.hei_id NOT NULL,
    is_outgoing     boolean NOT NULL,
    -- immutable over the life of an omobility_id (a new nominee is a new id)
    given_names     text NOT NULL CHECK (btrim(given_names) <> ''),
    family_name     text NOT NULL CHECK (btrim(family_name) <> ''),
    -- the European Student Identifier (EWP global-id); the spec gives no
    -- format, so it is only bounded here (smile.inscription checks the urn)
    global_id       text NOT NULL CHECK (length(global_id) BETWEEN 1 AND 255),
    birth_date      date,
    nationality     smile.country,
    gender          smallint CHECK (gender IN (0, 1, 2, 9)),   -- ISO/IEC 5218
    email           text CHECK (length(email) <= 254),
    -- the nomination
    sending_ounit_id smile.ewp_id,
    receiving_ounit_id smile.ewp_id,
    sending_iia_id  smile.ewp_id,
    receiving_iia_id smile.ewp_id,
    -- EwpAcademicTermId (e.g. 2025/2026-1/2); NULL for a non-standard period
    sending_term_id text CHECK (sending_term_id ~ '^[0-9]{4}/[0-9]{4}-[0-9]/[0-9]$'),
    receiving_academic_year_id text NOT NULL
                    CHECK (receiving_academic_year_id ~ '^[0-9]{4}/[0-9]{4}$'),
    activity_type   text NOT NULL DEFAULT 'student-studies',
    activity_attributes text NOT NULL DEFAULT 'long-term'
                    CHECK (activity_attributes IN ('long-term', 'short-term-blended', 'short-term-doctoral')),
    agreement_isced text CHECK (agreement_isced ~ '^[0-9]{4}$'),
    nominee_isced   text CHECK (nominee_isced ~ '^[0-9]{4}$'),
    eqf_level       smallint CHECK (eqf_level BETWEEN 1 AND 8),
    comment         text,                               -- for IROs only
    -- changes iff the nomination's content changes (the sending HEI's id)
    proposal_id     text NOT NULL CHECK (length(proposal_id) BETWEEN 1 AND 255),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
    -- the receiving HEI's comment on a rejection
    status_comment  text,
    -- IMobilities v2: the receiving HEI is the master of these
    actual_arrival_date date,
    actual_departure_date date,
    -- the student-mobility element as last received (incoming) or served
    document        xml,
    -- incoming: the registration this nomination created
    inscription_id  bigint UNIQUE REFERENCES smile.inscription (id) ON DELETE SET NULL,
    -- incoming: the partner's get stopped returning it (deleted or hidden)
    gone_at         timestamptz,
    fetched_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mobility_unique UNIQUE (sending_hei_id, omobility_id),
    CONSTRAINT mobility_two_heis CHECK (sending_hei_id <> receiving_hei_id),
    CONSTRAINT mobility_dates_ordered
        CHECK (actual_departure_date IS NULL OR actual_arrival_date IS NULL
               OR actual_departure_date >= actual_arrival_date)
);

COMMENT ON TABLE smile.mobility IS
    'Student mobilities over EWP: ours as sending HEI (is_outgoing) and partners'' nominations';

CREATE INDEX mobility_receiving ON smile.mobility (receiving_hei_id, modified_at);
CREATE INDEX mobility_modified_at ON smile.mobility (sending_hei_id, modified_at);
CREATE INDEX mobility_status ON smile.mobility (status);

CREATE TRIGGER mobility_modified_at
    BEFORE INSERT OR UPDATE ON smile.mobility
    FOR EACH ROW EXECUTE FUNCTION smile.set_modified_at();

-- ---------------------------------------------------------------------------
-- Online learning agreements: at most one per mobility, hosted by the
-- sending HEI, with the versions it went through. The XML of each version
-- is kept as exchanged (components, signatures, changed student data), so
-- nothing a partner sent is lost; views extract what the portal shows.
-- ---------------------------------------------------------------------------
CREATE TABLE smile.learning_agreement (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mobility_id     bigint NOT NULL UNIQUE REFERENCES smile.mobility (id) ON DELETE CASCADE,
    -- the la element without its three versions (omobility-id, HEIs with
    -- contact persons, student, dates, EQF, ISCED, language skills, URLs)
    header          xml NOT NULL,
    -- incoming: the partner's get stopped returning it
    gone_at         timestamptz,
    fetched_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE smile.learning_agreement IS
    'Online learning agreements (OMobility LAs), one per mobility';

CREATE TRIGGER learning_agreement_modified_at
    BEFORE INSERT OR UPDATE ON smile.learning_agreement
    FOR EACH ROW EXECUTE FUNCTION smile.set_modified_at();

-- Every version an LA has had. kind is where the version sits in the la
-- element; state 'current' marks the one in place now (at most one per
-- kind), the others are history:
--   changes-proposal: current -> approved (moved into first-version or
--                     approved-changes), commented (the receiving HEI
--                     commented it), superseded (replaced by a newer one)
--   first-version / approved-changes: current -> superseded
CREATE TABLE smile.la_version (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    learning_agreement_id bigint NOT NULL REFERENCES smile.learning_agreement (id) ON DELETE CASCADE,
    kind            text NOT NULL
                    CHECK (kind IN ('first-version', 'approved-changes', 'changes-proposal')),
    -- changes-proposal/@id; for the other kinds the proposal they came
    -- from when known
    proposal_id     text CHECK (length(proposal_id) BETWEEN 1 AND 255),
    -- the element as exchanged (first-version, approved-changes or
    -- changes-proposal), namespace declarations included
    content         xml NOT NULL,
    state           text NOT NULL DEFAULT 'current'
                    CHECK (state IN ('current', 'approved', 'commented', 'superseded')),
    -- the receiving HEI's comment (comment-proposal-v1)
    comment         text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- when it stopped being current
    ended_at        timestamptz,
    CONSTRAINT la_version_proposal_has_id CHECK (kind <> 'changes-proposal' OR proposal_id IS NOT NULL),
    CONSTRAINT la_version_ended CHECK ((state = 'current') = (ended_at IS NULL))
);

COMMENT ON TABLE smile.la_version IS
    'Versions of a learning agreement: first version, approved changes, proposals, with history';

CREATE UNIQUE INDEX la_version_one_current ON smile.la_version (learning_agreement_id, kind)
    WHERE state = 'current';
CREATE INDEX la_version_history ON smile.la_version (learning_agreement_id, created_at);

-- ---------------------------------------------------------------------------
-- Decisions our staff take on partners' nominations and learning
-- agreements, sent to the sending HEI's update endpoint by an 'out' job.
-- ---------------------------------------------------------------------------
CREATE TABLE ewp.decisions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mobility_id     bigint NOT NULL REFERENCES smile.mobility (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN (
                        'nomination-approve', 'nomination-reject', 'la-approve', 'la-comment')),
    -- the proposal decided upon: nomination/@proposal-id or changes-proposal/@id
    proposal_id     text NOT NULL CHECK (length(proposal_id) BETWEEN 1 AND 255),
    comment         text,
    -- the signature block of an LA decision (signer-name, -position,
    -- -email, timestamp, signer-app)
    signer_name     text,
    signer_position text,
    signer_email    text,
    signed_at       timestamptz,
    -- who decided: a portal user, or the admin's login for ewpctl
    utilisateur_id  bigint REFERENCES smile.utilisateur (id) ON DELETE SET NULL,
    decided_by      text NOT NULL CHECK (btrim(decided_by) <> ''),
    -- queued: the job is on its way; accepted: the partner answered 2xx;
    -- conflict: 409, the proposal changed meanwhile (refetched);
    -- refused: another 4xx, partner_message says why; failed: given up
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'accepted', 'conflict', 'refused', 'failed')),
    partner_message text,
    job_id          bigint REFERENCES ewp.jobs (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT decisions_reject_has_comment
        CHECK (kind NOT IN ('nomination-reject', 'la-comment') OR btrim(comment) <> ''),
    CONSTRAINT decisions_la_signed
        CHECK (kind NOT IN ('la-approve', 'la-comment')
               OR (signer_name IS NOT NULL AND signed_at IS NOT NULL))
);

COMMENT ON TABLE ewp.decisions IS
    'Staff decisions on partners'' nominations and LAs, and what the partner answered';

CREATE INDEX decisions_mobility ON ewp.decisions (mobility_id, created_at);
CREATE INDEX decisions_job ON ewp.decisions (job_id) WHERE job_id IS NOT NULL;

CREATE TRIGGER decisions_modified_at
    BEFORE INSERT OR UPDATE ON ewp.decisions
    FOR EACH ROW EXECUTE FUNCTION smile.set_modified_at();

-- ---------------------------------------------------------------------------
-- Change notifications to send: one pending 'cnr' job per (partner, CNR
-- API, object), merged with any still pending (jobs_pending_unique). The
-- payload is the form jobs_cnr.c posts. Used by the triggers that notice
-- changes partners must hear about.
-- ---------------------------------------------------------------------------
CREATE FUNCTION ewp.enqueue_cnr(partner text, cnr_api text, sending_hei text, omobility text)
    RETURNS void
    LANGUAGE sql
AS $$
    INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload)
    VALUES ('out', 'cnr', partner, cnr_api, sending_hei || ' ' || omobility,
            jsonb_build_object('sending_hei_id', sending_hei,
                               'omobility_id', jsonb_build_array(omobility)))
    ON CONFLICT (direction, kind, hei_id, api, dedupe_key) WHERE status = 'pending'
    DO UPDATE SET payload = EXCLUDED.payload, expires_at = NULL
$$;

COMMENT ON FUNCTION ewp.enqueue_cnr(text, text, text, text) IS
    'Queues (or merges into a pending one) a CNR job telling partner that omobility changed';
