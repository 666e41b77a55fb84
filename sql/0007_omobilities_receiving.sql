-- The receiving side of nominations: what a partner's OMobilities v3 get
-- returned becomes our copy of its nomination (smile.mobility, is_outgoing
-- = false) and the incoming registration it creates (smile.inscription),
-- in one transaction; and the bookkeeping of the periodic re-sync through
-- the partner's OMobilities v3 index. gateway/jobs_refetch_omobilities.c
-- and gateway/jobs_index.c call these functions after the response was
-- verified and validated against ewp-schemas/intake/.
--
-- Refusals of the partner's data (the document names another sending
-- HEI, an id or name the core cannot hold) raise SQLSTATE EW001: the job
-- is then 'rejected' and nothing is written. Any other error (no local
-- institution, no active workflow step, the database) is retried.

-- ---------------------------------------------------------------------------
-- modified_at on tables with an xml column. smile.set_modified_at()
-- compares NEW and OLD as rows, which needs an equality operator for every
-- column type, and xml has none: every UPDATE of smile.mobility (document)
-- and smile.learning_agreement (header) failed with "could not identify an
-- equality operator for type xml". Same rules, rows compared as jsonb
-- (xml as its text), fetched_at left out: a fetch that brings nothing new
-- leaves modified_at alone. CREATE OR REPLACE: harmless if another migration
-- made the same repair.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION smile.set_modified_at_xml()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.modified_at := now();
    ELSIF NEW.modified_at IS DISTINCT FROM OLD.modified_at THEN
        NEW.modified_at := now();
    ELSIF to_jsonb(NEW) - 'fetched_at' IS DISTINCT FROM to_jsonb(OLD) - 'fetched_at' THEN
        NEW.modified_at := now();
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION smile.set_modified_at_xml() IS
    'smile.set_modified_at() for tables with xml columns (rows compared as jsonb)';

CREATE OR REPLACE TRIGGER mobility_modified_at
    BEFORE INSERT OR UPDATE ON smile.mobility
    FOR EACH ROW EXECUTE FUNCTION smile.set_modified_at_xml();

CREATE OR REPLACE TRIGGER learning_agreement_modified_at
    BEFORE INSERT OR UPDATE ON smile.learning_agreement
    FOR EACH ROW EXECUTE FUNCTION smile.set_modified_at_xml();

-- ---------------------------------------------------------------------------
-- One name of a multilingual list (given-names+, family-name+): the first
-- non-blank one without xml:lang, else the first in Latin script (a
-- "-Latn" subtag, or a language tag with no script subtag), else the
-- first non-blank one; document order breaks ties. Blank: NULL.
-- ---------------------------------------------------------------------------
CREATE FUNCTION ewp.omobility_pick_name(parent xml, element text)
    RETURNS text
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT btrim(n.v)
      FROM XMLTABLE(
               XMLNAMESPACES('https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/endpoints/get-response.xsd' AS g),
               '/g:student-mobility/g:student/*' PASSING parent
               COLUMNS ord FOR ORDINALITY,
                       local text PATH 'local-name()',
                       v text PATH '.',
                       lang text PATH '@xml:lang') AS n
     WHERE n.local = element AND btrim(coalesce(n.v, '')) <> ''
     ORDER BY CASE WHEN n.lang IS NULL OR n.lang = '' THEN 0
                   WHEN n.lang ~* '-latn(-|$)' THEN 1
                   WHEN n.lang !~ '^[A-Za-z]{2,8}-[A-Za-z]{4}(-|$)' THEN 2
                   ELSE 3 END,
              n.ord
     LIMIT 1
$$;

COMMENT ON FUNCTION ewp.omobility_pick_name(xml, text) IS
    'The name shown of a multilingual given-names / family-name list: no xml:lang first, then Latin script';

-- ---------------------------------------------------------------------------
-- Stores what a partner's OMobilities v3 get returned for one id.
--   partner       the HEI whose get was called (the job's hei_id)
--   omobility     the id asked for
--   allowed_heis  sending HEIs the document may name: the partner, plus
--                 the notifier's HEIs when the CNR named none (v2)
--   doc           the omobilities-get-response, already validated
--   partner_name  the catalogue's name of the partner, for a minimal
--                 etablissement row when the core does not know it yet
--                 (another sending HEI of the notifier gets its id as name)
-- Returns what happened:
--   created    new mobility and registration
--   updated    known mobility, some field changed
--   unchanged  known mobility, identical content
--   gone       the get no longer returns it: gone_at set, nothing deleted
--   absent     not returned and never stored: nothing to do
--   not-ours   the receiving HEI is not our institution: nothing stored
-- ---------------------------------------------------------------------------
CREATE FUNCTION ewp.omobility_store(partner text, omobility text, allowed_heis text[], doc xml,
                                    partner_name text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql
AS $$
DECLARE
    r record;
    local_hei text;
    given text;
    family text;
    birth date;
    v_esi text;
    v_mail text;
    v_year smallint;
    home_id bigint;
    step bigint;
    mob record;
    old_status text;
    insc bigint;
    v_unit bigint;
BEGIN
    SELECT m.* INTO r
      FROM XMLTABLE(
               XMLNAMESPACES('https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/endpoints/get-response.xsd' AS g),
               '/g:omobilities-get-response/g:student-mobility' PASSING doc
               COLUMNS ord FOR ORDINALITY,
                       omobility_id text PATH 'g:omobility-id',
                       global_id text PATH 'g:student/g:global-id',
                       birth_date text PATH 'g:student/g:birth-date',
                       nationality text PATH 'g:student/g:nationality',
                       gender text PATH 'g:student/g:gender',
                       email text PATH 'g:student/g:email',
                       proposal_id text PATH 'g:nomination/@proposal-id',
                       sending_hei text PATH 'g:nomination/g:sending-hei/g:hei-id',
                       sending_ounit text PATH 'g:nomination/g:sending-hei/g:ounit-id',
                       sending_iia text PATH 'g:nomination/g:sending-hei/g:iia-id',
                       receiving_hei text PATH 'g:nomination/g:receiving-hei/g:hei-id',
                       receiving_ounit text PATH 'g:nomination/g:receiving-hei/g:ounit-id',
                       receiving_iia text PATH 'g:nomination/g:receiving-hei/g:iia-id',
                       term text PATH 'g:nomination/g:sending-academic-term-ewp-id',
                       year_id text PATH 'g:nomination/g:receiving-academic-year-id',
                       activity_type text PATH 'g:nomination/g:activity-type',
                       activity_attributes text PATH 'g:nomination/g:activity-attributes',
                       agreement_isced text PATH 'g:nomination/g:agreement-isced-f-code',
                       eqf text PATH 'g:nomination/g:eqf-level-studied-at-departure',
                       nominee_isced text PATH 'g:nomination/g:nominee-isced-f-code',
                       comment text PATH 'g:nomination/g:comment',
                       status text PATH 'g:status',
                       element xml PATH '.') AS m
     WHERE m.omobility_id = omobility
     ORDER BY m.ord
     LIMIT 1;

    IF NOT FOUND THEN
        UPDATE smile.mobility
           SET gone_at = coalesce(gone_at, now()), fetched_at = now()
         WHERE sending_hei_id = ANY (allowed_heis) AND omobility_id = omobility AND NOT is_outgoing;
        RETURN CASE WHEN FOUND THEN 'gone' ELSE 'absent' END;
    END IF;

    -- who sent it: the partner we asked (hei-id is an xs:string: trimmed)
    r.sending_hei := lower(btrim(r.sending_hei));
    r.receiving_hei := lower(btrim(r.receiving_hei));
    IF NOT r.sending_hei = ANY (allowed_heis) THEN
        RAISE EXCEPTION 'the mobility names sending HEI "%", not the partner that served it (%)',
                        left(r.sending_hei, 100), array_to_string(allowed_heis, ', ')
              USING ERRCODE = 'EW001';
    END IF;
    IF r.sending_hei IN ('validator-hei01.developers.erasmuswithoutpaper.eu',
                         'validator-hei02.developers.erasmuswithoutpaper.eu') THEN
        RAISE EXCEPTION 'validator HEI %: its data never reaches the SMILE core', r.sending_hei
              USING ERRCODE = 'EW001';
    END IF;

    SELECT schac_id INTO local_hei FROM smile.etablissement WHERE is_local;
    IF local_hei IS NULL THEN
        RAISE EXCEPTION 'no local institution (is_local) in smile.etablissement: cannot tell our nominations'
              USING ERRCODE = 'EW002';
    END IF;
    IF r.receiving_hei IS DISTINCT FROM local_hei THEN
        RETURN 'not-ours';
    END IF;

    -- what the core can hold
    given := ewp.omobility_pick_name(r.element, 'given-names');
    family := ewp.omobility_pick_name(r.element, 'family-name');
    r.global_id := btrim(r.global_id);
    IF given IS NULL OR family IS NULL THEN
        RAISE EXCEPTION 'the student''s % is blank', CASE WHEN given IS NULL THEN 'given-names' ELSE 'family-name' END
              USING ERRCODE = 'EW001';
    END IF;
    IF length(r.global_id) NOT BETWEEN 1 AND 255 THEN
        RAISE EXCEPTION 'the student''s global-id is empty or longer than 255 characters' USING ERRCODE = 'EW001';
    END IF;
    IF length(r.proposal_id) NOT BETWEEN 1 AND 255 THEN
        RAISE EXCEPTION 'the nomination''s proposal-id is empty or longer than 255 characters' USING ERRCODE = 'EW001';
    END IF;
    -- xs:date may carry a time zone ("2001-02-03Z", "+01:00"): the day is kept
    birth := substring(btrim(r.birth_date) FROM '^[0-9]{4}-[0-9]{2}-[0-9]{2}')::date;
    v_year := substring(r.year_id FROM 1 FOR 4)::smallint;
    IF v_year NOT BETWEEN 2000 AND 2100 THEN
        RAISE EXCEPTION 'receiving-academic-year-id % is outside 2000-2100', r.year_id USING ERRCODE = 'EW001';
    END IF;
    r.email := btrim(r.email);
    IF length(r.email) > 254 THEN
        r.email := NULL;
    END IF;
    -- the registration keeps an ESI only in its URN form, an e-mail only
    -- when the core's (stricter) format accepts it
    v_esi := CASE WHEN r.global_id ~* '^urn:schac:personalUniqueCode:[a-z]{2,3}:[!-~]+$' THEN r.global_id END;
    v_mail := CASE WHEN r.email ~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$' THEN r.email END;

    SELECT id, status, inscription_id INTO mob
      FROM smile.mobility
     WHERE sending_hei_id = r.sending_hei AND omobility_id = omobility
       FOR UPDATE;
    IF FOUND AND mob.id IS NOT NULL THEN
        old_status := mob.status;
    END IF;

    INSERT INTO smile.mobility AS m (
        sending_hei_id, omobility_id, receiving_hei_id, is_outgoing,
        given_names, family_name, global_id, birth_date, nationality, gender, email,
        sending_ounit_id, receiving_ounit_id, sending_iia_id, receiving_iia_id,
        sending_term_id, receiving_academic_year_id, activity_type, activity_attributes,
        agreement_isced, nominee_isced, eqf_level, comment, proposal_id, status,
        document, gone_at, fetched_at)
    VALUES (
        r.sending_hei, omobility, r.receiving_hei, false,
        given, family, r.global_id, birth, r.nationality, btrim(r.gender)::smallint, r.email,
        r.sending_ounit, r.receiving_ounit, r.sending_iia, r.receiving_iia,
        r.term, r.year_id, r.activity_type, r.activity_attributes,
        r.agreement_isced, r.nominee_isced, btrim(r.eqf)::smallint, r.comment, r.proposal_id, r.status,
        r.element, NULL, now())
    ON CONFLICT ON CONSTRAINT mobility_unique DO UPDATE SET
        receiving_hei_id = EXCLUDED.receiving_hei_id,
        given_names = EXCLUDED.given_names, family_name = EXCLUDED.family_name,
        global_id = EXCLUDED.global_id, birth_date = EXCLUDED.birth_date,
        nationality = EXCLUDED.nationality, gender = EXCLUDED.gender, email = EXCLUDED.email,
        sending_ounit_id = EXCLUDED.sending_ounit_id, receiving_ounit_id = EXCLUDED.receiving_ounit_id,
        sending_iia_id = EXCLUDED.sending_iia_id, receiving_iia_id = EXCLUDED.receiving_iia_id,
        sending_term_id = EXCLUDED.sending_term_id,
        receiving_academic_year_id = EXCLUDED.receiving_academic_year_id,
        activity_type = EXCLUDED.activity_type, activity_attributes = EXCLUDED.activity_attributes,
        agreement_isced = EXCLUDED.agreement_isced, nominee_isced = EXCLUDED.nominee_isced,
        eqf_level = EXCLUDED.eqf_level, comment = EXCLUDED.comment,
        proposal_id = EXCLUDED.proposal_id, status = EXCLUDED.status,
        document = EXCLUDED.document, gone_at = NULL, fetched_at = EXCLUDED.fetched_at
     WHERE NOT m.is_outgoing
    RETURNING m.id, m.inscription_id, m.modified_at = now() AS changed, (xmax = 0) AS inserted
    INTO mob;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mobility % of % is one of ours (is_outgoing): a partner cannot overwrite it',
                        omobility, r.sending_hei USING ERRCODE = 'EW001';
    END IF;

    IF mob.inscription_id IS NULL THEN
        -- the home HEI; a minimal row when the core does not know it yet
        -- (ON CONFLICT: another fetch of the same partner may create it
        -- at the same time)
        INSERT INTO smile.etablissement (schac_id, names)
        VALUES (r.sending_hei, jsonb_build_array(jsonb_build_object(
                    'name', coalesce(CASE WHEN r.sending_hei = partner THEN nullif(btrim(partner_name), '') END,
                                     r.sending_hei))))
        ON CONFLICT (schac_id) DO NOTHING;
        SELECT id INTO home_id FROM smile.etablissement WHERE schac_id = r.sending_hei;
        SELECT id INTO step FROM smile.step WHERE active ORDER BY position LIMIT 1;
        IF step IS NULL THEN
            RAISE EXCEPTION 'no active workflow step (smile.step): cannot register the incoming student'
                  USING ERRCODE = 'EW002';
        END IF;
        SELECT c.id INTO v_unit
          FROM smile.composante c JOIN smile.etablissement e ON e.id = c.etablissement_id
         WHERE e.is_local AND c.ounit_id = r.receiving_ounit;
        INSERT INTO smile.inscription AS i (
            esi, given_names, family_name, birth_date, email, home_etablissement_id,
            step_id, status, academic_year, composante_id, omobility_id)
        VALUES (
            v_esi, given, family, CASE WHEN birth >= DATE '1900-01-01' THEN birth END, v_mail, home_id,
            step, CASE WHEN r.status = 'cancelled' THEN 3 ELSE 1 END, v_year, v_unit, omobility)
        ON CONFLICT ON CONSTRAINT inscription_omobility_unique DO UPDATE SET
            esi = EXCLUDED.esi, given_names = EXCLUDED.given_names, family_name = EXCLUDED.family_name,
            birth_date = EXCLUDED.birth_date, email = EXCLUDED.email
        RETURNING i.id INTO insc;
        UPDATE smile.mobility SET inscription_id = insc WHERE id = mob.id;
    ELSE
        -- the student may change (a name, an e-mail); the workflow never
        -- moves back; a cancellation is an abandon, undone if the sending
        -- HEI takes it back
        UPDATE smile.inscription i
           SET esi = v_esi, given_names = given, family_name = family,
               birth_date = CASE WHEN birth >= DATE '1900-01-01' THEN birth END, email = v_mail,
               status = CASE WHEN r.status = 'cancelled' THEN 3
                             WHEN old_status = 'cancelled' AND i.status = 3 THEN 1
                             ELSE i.status END
         WHERE i.id = mob.inscription_id;
    END IF;

    RETURN CASE WHEN mob.inserted THEN 'created' WHEN mob.changed THEN 'updated' ELSE 'unchanged' END;
END
$$;

COMMENT ON FUNCTION ewp.omobility_store(text, text, text[], xml, text) IS
    'Stores a partner''s OMobilities v3 get answer for one id: mobility + incoming registration, one transaction';

-- ---------------------------------------------------------------------------
-- Periodic re-sync through the partner's OMobilities v3 index.
-- An ('in', 'index') job with api 'omobilities' per partner (dedupe_key
-- 'omobilities') lists the ids the partner's index returns to us and
-- queues a refetch job for each; a full listing (no modified_since) also
-- queues the ids we hold of that partner that it no longer lists, so that
-- their refetch sets gone_at. A listing with modified_since starts from
-- the previous successful one, minus a safety margin.
-- ---------------------------------------------------------------------------
CREATE TABLE ewp.omobilities_index_state (
    hei_id          smile.hei_id PRIMARY KEY,
    -- when the last successful listing was requested (modified_since of
    -- the next one, minus a margin)
    listed_at       timestamptz NOT NULL,
    -- the last full listing (no modified_since)
    full_at         timestamptz,
    -- ids listed by the last successful listing, and jobs it queued
    listed          integer NOT NULL DEFAULT 0 CHECK (listed >= 0),
    queued          integer NOT NULL DEFAULT 0 CHECK (queued >= 0)
);

COMMENT ON TABLE ewp.omobilities_index_state IS
    'OMobilities index re-sync: when each partner was last listed, for the next modified_since';

-- A listing succeeded: queues the refetch jobs; returns how many were new.
CREATE FUNCTION ewp.omobilities_index_done(partner text, started timestamptz, ids text[],
                                           was_full boolean, index_job bigint DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql
AS $$
DECLARE
    n integer;
BEGIN
    WITH wanted AS (
        SELECT DISTINCT i.id FROM unnest(ids) AS i (id)
        UNION
        SELECT m.omobility_id::text FROM smile.mobility m
         WHERE was_full AND m.sending_hei_id = partner AND NOT m.is_outgoing AND m.gone_at IS NULL
    ), ins AS (
        INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload)
        SELECT 'in', 'refetch', partner, 'omobilities', w.id,
               jsonb_build_object('omobility_id', w.id, 'sending_hei_id', partner,
                                  'index_job_id', index_job)
          FROM wanted w
        ON CONFLICT (direction, kind, hei_id, api, dedupe_key) WHERE status = 'pending' DO NOTHING
        RETURNING 1
    )
    SELECT count(*) INTO n FROM ins;
    INSERT INTO ewp.omobilities_index_state AS s (hei_id, listed_at, full_at, listed, queued)
    VALUES (partner, started, CASE WHEN was_full THEN started END, coalesce(cardinality(ids), 0), n)
    ON CONFLICT (hei_id) DO UPDATE SET
        listed_at = EXCLUDED.listed_at, full_at = coalesce(EXCLUDED.full_at, s.full_at),
        listed = EXCLUDED.listed, queued = EXCLUDED.queued;
    RETURN n;
END
$$;

COMMENT ON FUNCTION ewp.omobilities_index_done(text, timestamptz, text[], boolean, bigint) IS
    'After an OMobilities index listing: refetch jobs for the ids listed (and, if full, for those no longer listed)';

-- Queues an index job per partner; returns how many were new (a pending
-- one for the partner is kept as it is). The payload carries
-- modified_since (the previous successful listing minus ten minutes),
-- unless want_full or the partner was never listed: then the listing is
-- full.
CREATE FUNCTION ewp.omobilities_queue_index(partners text[], want_full boolean)
    RETURNS integer
    LANGUAGE sql
AS $$
    WITH ins AS (
        INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload)
        SELECT 'in', 'index', p.hei, 'omobilities', 'omobilities',
               CASE WHEN want_full OR s.listed_at IS NULL THEN jsonb_build_object('full', true)
                    ELSE jsonb_build_object('full', false, 'modified_since',
                             to_char((s.listed_at - interval '10 minutes') AT TIME ZONE 'UTC',
                                     'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
               END
          FROM (SELECT DISTINCT lower(btrim(x)) AS hei FROM unnest(partners) AS x) p
          LEFT JOIN ewp.omobilities_index_state s ON s.hei_id = p.hei
         WHERE p.hei NOT IN ('validator-hei01.developers.erasmuswithoutpaper.eu',
                             'validator-hei02.developers.erasmuswithoutpaper.eu')
        ON CONFLICT (direction, kind, hei_id, api, dedupe_key) WHERE status = 'pending' DO NOTHING
        RETURNING 1
    )
    SELECT count(*)::integer FROM ins
$$;

COMMENT ON FUNCTION ewp.omobilities_queue_index(text[], boolean) IS
    'Queues an OMobilities index re-sync job per partner';

-- The nightly re-sync: the first worker to ask on a given day past the
-- configured hour (UTC) queues the index jobs; the others find the day
-- taken. Returns the jobs queued (0 when the day was taken already).
CREATE TABLE ewp.omobilities_nightly (
    day             date PRIMARY KEY,
    started_at      timestamptz NOT NULL DEFAULT now(),
    partners        integer NOT NULL CHECK (partners >= 0)
);

COMMENT ON TABLE ewp.omobilities_nightly IS 'Days on which the nightly OMobilities re-sync was queued';

CREATE FUNCTION ewp.omobilities_nightly_run(partners text[], hour integer)
    RETURNS integer
    LANGUAGE plpgsql
AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    IF extract(hour FROM now() AT TIME ZONE 'UTC') < hour THEN
        RETURN 0;
    END IF;
    INSERT INTO ewp.omobilities_nightly (day, partners) VALUES (today, coalesce(cardinality(partners), 0))
    ON CONFLICT (day) DO NOTHING;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    RETURN ewp.omobilities_queue_index(partners, false);
END
$$;

COMMENT ON FUNCTION ewp.omobilities_nightly_run(text[], integer) IS
    'Queues the nightly OMobilities index re-sync once per UTC day, from the given hour on';
