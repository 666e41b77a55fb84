-- The sending side of nominations: our outgoing students
-- (smile.mobility rows with is_outgoing = true), as served by our
-- Outgoing Mobilities v3 API and fed by `ewpctl mobility nominate`.
-- ewp-notes.md section 6.2.
--
-- Rules kept here, in the database, so that every writer obeys them:
--   * proposal_id is a digest of the nomination's content: it changes iff
--     the nomination changes (the same content always gives the same id);
--   * a content change puts an approved or rejected nomination back to
--     pending (the receiving HEI decided on other content); a cancelled
--     nomination stays cancelled;
--   * the student (global_id), the sending and the receiving HEI of an
--     omobility_id never change;
--   * every change the receiving HEI can see through our get (student,
--     nomination, status) queues an OMobility CNR to it, in the same
--     transaction, including changes caused by its own update call.
-- Partners' nominations (is_outgoing = false) are left alone by all of it.

-- The nomination's content as one value, in schema order. The student is
-- not part of it (a new name is not a new proposal: the receiving HEI
-- keeps its decision); the HEIs are, though immutable.
CREATE FUNCTION smile.omobility_nomination_content(m smile.mobility)
    RETURNS jsonb
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT jsonb_build_array(
        m.sending_hei_id, m.sending_ounit_id, m.sending_iia_id,
        m.receiving_hei_id, m.receiving_ounit_id, m.receiving_iia_id,
        m.sending_term_id, m.receiving_academic_year_id, m.activity_type,
        m.activity_attributes, m.agreement_isced, m.eqf_level, m.nominee_isced,
        m.comment)
$$;

-- The proposal-id we publish: hex SHA-256 of that content.
CREATE FUNCTION smile.omobility_proposal_id(m smile.mobility)
    RETURNS text
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT encode(sha256(convert_to(smile.omobility_nomination_content(m)::text, 'UTF8')), 'hex')
$$;

COMMENT ON FUNCTION smile.omobility_proposal_id(smile.mobility) IS
    'proposal-id of an outgoing nomination: SHA-256 of its content, so it changes iff the content does';

-- The student-mobility element we serve (OMobilities v3 get-response
-- namespace, declared on it). Names come from the nomination document as
-- given (every language) while its first name still matches the columns;
-- optional values are left out when NULL.
CREATE FUNCTION smile.omobility_xml(m smile.mobility)
    RETURNS xml
    LANGUAGE sql STABLE
AS $$
    WITH ns (uri) AS (VALUES (
        'https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/endpoints/get-response.xsd')),
    doc AS (
        SELECT xpath('/m:student-mobility/m:student/m:given-names', m.document, ARRAY[ARRAY['m', ns.uri]]) AS given,
               xpath('/m:student-mobility/m:student/m:family-name', m.document, ARRAY[ARRAY['m', ns.uri]]) AS family,
               (SELECT g FROM XMLTABLE(XMLNAMESPACES(
                   'https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/endpoints/get-response.xsd' AS m),
                   '/m:student-mobility/m:student' PASSING m.document
                   COLUMNS g text PATH 'm:given-names[1]', f text PATH 'm:family-name[1]') x
                 WHERE btrim(x.g) = m.given_names AND btrim(x.f) = m.family_name) AS matches
        FROM ns)
    SELECT XMLELEMENT(NAME "student-mobility", XMLATTRIBUTES(ns.uri AS xmlns),
        XMLELEMENT(NAME "omobility-id", m.omobility_id),
        XMLELEMENT(NAME student,
            CASE WHEN doc.matches IS NOT NULL
                 THEN (SELECT xmlagg(x ORDER BY o) FROM unnest(doc.given) WITH ORDINALITY AS u (x, o))
                 ELSE XMLELEMENT(NAME "given-names", m.given_names) END,
            CASE WHEN doc.matches IS NOT NULL
                 THEN (SELECT xmlagg(x ORDER BY o) FROM unnest(doc.family) WITH ORDINALITY AS u (x, o))
                 ELSE XMLELEMENT(NAME "family-name", m.family_name) END,
            XMLELEMENT(NAME "global-id", m.global_id),
            XMLFOREST(m.birth_date AS "birth-date", m.nationality AS nationality,
                      m.gender AS gender, m.email AS email)),
        XMLELEMENT(NAME nomination, XMLATTRIBUTES(m.proposal_id AS "proposal-id"),
            XMLELEMENT(NAME "sending-hei", XMLELEMENT(NAME "hei-id", m.sending_hei_id),
                       XMLFOREST(m.sending_ounit_id AS "ounit-id", m.sending_iia_id AS "iia-id")),
            XMLELEMENT(NAME "receiving-hei", XMLELEMENT(NAME "hei-id", m.receiving_hei_id),
                       XMLFOREST(m.receiving_ounit_id AS "ounit-id", m.receiving_iia_id AS "iia-id")),
            CASE WHEN m.sending_term_id IS NULL
                 THEN XMLELEMENT(NAME "non-standard-mobility-period")
                 ELSE XMLELEMENT(NAME "sending-academic-term-ewp-id", m.sending_term_id) END,
            XMLELEMENT(NAME "receiving-academic-year-id", m.receiving_academic_year_id),
            XMLELEMENT(NAME "activity-type", m.activity_type),
            XMLELEMENT(NAME "activity-attributes", m.activity_attributes),
            XMLFOREST(m.agreement_isced AS "agreement-isced-f-code",
                      m.eqf_level AS "eqf-level-studied-at-departure",
                      m.nominee_isced AS "nominee-isced-f-code",
                      m.comment AS comment)),
        XMLELEMENT(NAME status, m.status))
    FROM ns, doc
$$;

COMMENT ON FUNCTION smile.omobility_xml(smile.mobility) IS
    'The student-mobility element our OMobilities v3 get serves for an outgoing mobility';

-- Before every write of an outgoing row: immutable fields, proposal id,
-- back to pending on a content change. Named to run before
-- mobility_modified_at (triggers fire in name order).
CREATE FUNCTION smile.mobility_outgoing_check()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NOT OLD.is_outgoing THEN
            RAISE EXCEPTION 'mobility % of % is a partner''s nomination, it cannot become ours',
                OLD.omobility_id, OLD.sending_hei_id USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.global_id <> OLD.global_id OR NEW.sending_hei_id <> OLD.sending_hei_id
           OR NEW.receiving_hei_id <> OLD.receiving_hei_id OR NEW.omobility_id <> OLD.omobility_id THEN
            RAISE EXCEPTION 'omobility-id % nominates student % from % to %: the student, the sending '
                'and the receiving HEI of a mobility never change (nominate another student or HEI '
                'under a new omobility-id)',
                OLD.omobility_id, OLD.global_id, OLD.sending_hei_id, OLD.receiving_hei_id
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    NEW.proposal_id := smile.omobility_proposal_id(NEW);
    IF TG_OP = 'INSERT' THEN
        IF NEW.status NOT IN ('pending', 'cancelled') THEN
            RAISE EXCEPTION 'a new nomination is pending (not %): the receiving HEI decides',
                NEW.status USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NEW.proposal_id <> OLD.proposal_id AND NEW.status <> 'cancelled' THEN
        -- the receiving HEI decided on other content
        NEW.status := 'pending';
        NEW.status_comment := NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        -- smile.set_modified_at (mobility_modified_at, next) compares
        -- NEW with OLD as rows when modified_at is untouched, which fails
        -- on the xml column ("could not identify an equality operator
        -- for type xml") unless an earlier column differs. Compared here
        -- as jsonb instead: a real change clears modified_at, which that
        -- trigger then sets to now(); an update that changes nothing is
        -- skipped (no new modified_at, no CNR).
        IF (to_jsonb(NEW) - 'modified_at') = (to_jsonb(OLD) - 'modified_at') THEN
            RETURN NULL;
        END IF;
        NEW.modified_at := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER mobility_check_outgoing
    BEFORE INSERT OR UPDATE ON smile.mobility
    FOR EACH ROW WHEN (NEW.is_outgoing)
    EXECUTE FUNCTION smile.mobility_outgoing_check();

-- After every write of an outgoing row: a CNR to the receiving HEI when
-- what it sees through our get changed.
CREATE FUNCTION smile.mobility_outgoing_notify()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT'
       OR smile.omobility_xml(OLD)::text IS DISTINCT FROM smile.omobility_xml(NEW)::text THEN
        PERFORM ewp.enqueue_cnr(NEW.receiving_hei_id, 'omobility-cnr', NEW.sending_hei_id,
                                NEW.omobility_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER mobility_notify_outgoing
    AFTER INSERT OR UPDATE ON smile.mobility
    FOR EACH ROW WHEN (NEW.is_outgoing)
    EXECUTE FUNCTION smile.mobility_outgoing_notify();

-- ---------------------------------------------------------------------------
-- ewpctl mobility nominate: one student-mobility element (validated by
-- ewpctl against ewp-schemas/omobility-nomination.xsd) becomes or updates
-- our outgoing mobility of that omobility-id. The sending HEI must be our
-- own (the is_local etablissement). proposal-id and status in the element
-- are ignored: we compute the first, the receiving HEI decides the second.
-- Returns what happened: created, updated (content, student or only the
-- document's layout changed), unchanged; notified: whether what the
-- receiving HEI sees changed, i.e. an OMobility CNR was queued.
-- ---------------------------------------------------------------------------
CREATE FUNCTION smile.omobility_nominate(doc xml)
    RETURNS TABLE (action text, omobility_id text, proposal_id text, status text,
                   receiving_hei_id text, notified boolean)
    LANGUAGE plpgsql
AS $$
DECLARE
    v record;
    old smile.mobility;
    local_hei text;
    n integer;
BEGIN
    SELECT * INTO v FROM XMLTABLE(XMLNAMESPACES(
        'https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/endpoints/get-response.xsd' AS m),
        '/m:student-mobility' PASSING doc COLUMNS
        omobility_id text PATH 'm:omobility-id',
        given_names text PATH 'm:student/m:given-names[1]',
        family_name text PATH 'm:student/m:family-name[1]',
        global_id text PATH 'm:student/m:global-id',
        birth_date text PATH 'm:student/m:birth-date',
        nationality text PATH 'm:student/m:nationality',
        gender text PATH 'm:student/m:gender',
        email text PATH 'm:student/m:email',
        sending_hei text PATH 'm:nomination/m:sending-hei/m:hei-id',
        sending_ounit text PATH 'm:nomination/m:sending-hei/m:ounit-id',
        sending_iia text PATH 'm:nomination/m:sending-hei/m:iia-id',
        receiving_hei text PATH 'm:nomination/m:receiving-hei/m:hei-id',
        receiving_ounit text PATH 'm:nomination/m:receiving-hei/m:ounit-id',
        receiving_iia text PATH 'm:nomination/m:receiving-hei/m:iia-id',
        term text PATH 'm:nomination/m:sending-academic-term-ewp-id',
        year text PATH 'm:nomination/m:receiving-academic-year-id',
        activity_type text PATH 'm:nomination/m:activity-type',
        activity_attributes text PATH 'm:nomination/m:activity-attributes',
        agreement_isced text PATH 'm:nomination/m:agreement-isced-f-code',
        eqf text PATH 'm:nomination/m:eqf-level-studied-at-departure',
        nominee_isced text PATH 'm:nomination/m:nominee-isced-f-code',
        comment text PATH 'm:nomination/m:comment');
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> 1 THEN
        RAISE EXCEPTION 'the document is not one student-mobility element of the OMobilities v3 '
            'get-response namespace' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT e.schac_id INTO local_hei FROM smile.etablissement e WHERE e.is_local;
    IF local_hei IS NULL THEN
        RAISE EXCEPTION 'this database has no local institution (smile.etablissement.is_local): '
            'the sending HEI cannot be checked' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF btrim(v.sending_hei) <> local_hei THEN
        RAISE EXCEPTION 'sending-hei/hei-id is "%", but this node serves "%": only our own '
            'students are nominated here', btrim(v.sending_hei), local_hei
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF btrim(v.receiving_hei) = local_hei THEN
        RAISE EXCEPTION 'receiving-hei/hei-id is our own HEI "%": a nomination goes to a partner',
            local_hei USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO old FROM smile.mobility mo
     WHERE mo.sending_hei_id = local_hei AND mo.omobility_id = btrim(v.omobility_id) FOR UPDATE;
    IF FOUND AND old.status = 'cancelled' THEN
        RAISE EXCEPTION 'omobility-id % was cancelled: a cancelled nomination is final (nominate '
            'again under a new omobility-id)', old.omobility_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF FOUND AND (old.global_id <> btrim(v.global_id) OR old.receiving_hei_id <> btrim(v.receiving_hei)) THEN
        RAISE EXCEPTION 'omobility-id % already nominates student % to %; this file names student % '
            'to %: the student and the HEIs of a mobility never change (use a new omobility-id)',
            old.omobility_id, old.global_id, old.receiving_hei_id, btrim(v.global_id),
            btrim(v.receiving_hei) USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF NOT FOUND THEN
        INSERT INTO smile.mobility AS mo (sending_hei_id, omobility_id, receiving_hei_id, is_outgoing,
            given_names, family_name, global_id, birth_date, nationality, gender, email,
            sending_ounit_id, receiving_ounit_id, sending_iia_id, receiving_iia_id,
            sending_term_id, receiving_academic_year_id, activity_type, activity_attributes,
            agreement_isced, nominee_isced, eqf_level, comment, proposal_id, status, document)
        VALUES (local_hei, btrim(v.omobility_id), btrim(v.receiving_hei), true,
            btrim(v.given_names), btrim(v.family_name), btrim(v.global_id),
            btrim(v.birth_date)::date, btrim(v.nationality), btrim(v.gender)::smallint,
            btrim(v.email), btrim(v.sending_ounit), btrim(v.receiving_ounit),
            btrim(v.sending_iia), btrim(v.receiving_iia), btrim(v.term), btrim(v.year),
            btrim(v.activity_type), btrim(v.activity_attributes), btrim(v.agreement_isced),
            btrim(v.nominee_isced), btrim(v.eqf)::smallint, v.comment,
            'set by mobility_check_outgoing', 'pending', doc)
        RETURNING 'created', mo.omobility_id, mo.proposal_id, mo.status, mo.receiving_hei_id, true
        INTO action, omobility_id, proposal_id, status, receiving_hei_id, notified;
        RETURN NEXT;
        RETURN;
    END IF;

    -- The row as it would be after the update, compared with the old one:
    -- an update only when something changed (no CNR, no new modified_at
    -- for a file nominated twice).
    UPDATE smile.mobility AS mo SET
        given_names = btrim(v.given_names), family_name = btrim(v.family_name),
        birth_date = btrim(v.birth_date)::date, nationality = btrim(v.nationality),
        gender = btrim(v.gender)::smallint, email = btrim(v.email),
        sending_ounit_id = btrim(v.sending_ounit), receiving_ounit_id = btrim(v.receiving_ounit),
        sending_iia_id = btrim(v.sending_iia), receiving_iia_id = btrim(v.receiving_iia),
        sending_term_id = btrim(v.term), receiving_academic_year_id = btrim(v.year),
        activity_type = btrim(v.activity_type), activity_attributes = btrim(v.activity_attributes),
        agreement_isced = btrim(v.agreement_isced), nominee_isced = btrim(v.nominee_isced),
        eqf_level = btrim(v.eqf)::smallint, comment = v.comment, document = doc
     WHERE mo.id = old.id
       AND (mo.given_names, mo.family_name, mo.birth_date, mo.nationality::text, mo.gender,
            mo.email, mo.sending_ounit_id::text, mo.receiving_ounit_id::text,
            mo.sending_iia_id::text, mo.receiving_iia_id::text, mo.sending_term_id,
            mo.receiving_academic_year_id, mo.activity_type, mo.activity_attributes,
            mo.agreement_isced, mo.nominee_isced, mo.eqf_level, mo.comment, mo.document::text)
           IS DISTINCT FROM
           (btrim(v.given_names), btrim(v.family_name), btrim(v.birth_date)::date,
            btrim(v.nationality), btrim(v.gender)::smallint, btrim(v.email),
            btrim(v.sending_ounit), btrim(v.receiving_ounit), btrim(v.sending_iia),
            btrim(v.receiving_iia), btrim(v.term), btrim(v.year), btrim(v.activity_type),
            btrim(v.activity_attributes), btrim(v.agreement_isced), btrim(v.nominee_isced),
            btrim(v.eqf)::smallint, v.comment, doc::text)
    RETURNING 'updated', mo.omobility_id, mo.proposal_id, mo.status, mo.receiving_hei_id,
              smile.omobility_xml(mo)::text IS DISTINCT FROM smile.omobility_xml(old)::text
    INTO action, omobility_id, proposal_id, status, receiving_hei_id, notified;
    IF NOT FOUND THEN
        notified := false;
        action := 'unchanged';
        omobility_id := old.omobility_id;
        proposal_id := old.proposal_id;
        status := old.status;
        receiving_hei_id := old.receiving_hei_id;
    END IF;
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION smile.omobility_nominate(xml) IS
    'ewpctl mobility nominate: creates or updates our outgoing mobility from a student-mobility element';

-- ---------------------------------------------------------------------------
-- OMobilities v3 update, called for a partner: approve or reject the
-- proposal it names. callers: the HEIs the caller's key covers. Returns
-- one row (code, message): ok, unchanged (already so), unknown (no such
-- mobility of ours received by one of the callers' HEIs), stale (proposal
-- changed), cancelled.
-- ---------------------------------------------------------------------------
CREATE FUNCTION smile.omobility_decide(p_callers text[], p_id text, p_proposal text,
                                       p_decision text, p_reason text)
    RETURNS TABLE (code text, current_proposal text, receiving_hei_id text)
    LANGUAGE plpgsql
AS $$
DECLARE
    m smile.mobility;
BEGIN
    IF p_decision NOT IN ('approved', 'rejected') THEN
        RAISE EXCEPTION 'unknown decision %', p_decision USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT mo.* INTO m FROM smile.mobility mo JOIN smile.etablissement e
        ON e.is_local AND e.schac_id = mo.sending_hei_id
     WHERE mo.is_outgoing AND mo.omobility_id = p_id AND mo.receiving_hei_id = ANY (p_callers)
     FOR UPDATE OF mo;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown', NULL::text, NULL::text;
        RETURN;
    END IF;
    IF m.status = 'cancelled' THEN
        RETURN QUERY SELECT 'cancelled', m.proposal_id, m.receiving_hei_id::text;
        RETURN;
    END IF;
    IF m.proposal_id <> p_proposal THEN
        RETURN QUERY SELECT 'stale', m.proposal_id, m.receiving_hei_id::text;
        RETURN;
    END IF;
    IF m.status = p_decision AND m.status_comment IS NOT DISTINCT FROM p_reason THEN
        RETURN QUERY SELECT 'unchanged', m.proposal_id, m.receiving_hei_id::text;
        RETURN;
    END IF;
    UPDATE smile.mobility mo SET status = p_decision, status_comment = p_reason WHERE mo.id = m.id;
    RETURN QUERY SELECT 'ok', m.proposal_id, m.receiving_hei_id::text;
END
$$;

COMMENT ON FUNCTION smile.omobility_decide(text[], text, text, text, text) IS
    'OMobilities v3 update: the receiving HEI approves or rejects the current proposal of our nomination';
