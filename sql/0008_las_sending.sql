-- Online learning agreements, sending side: the LAs of our outgoing
-- students (smile.mobility.is_outgoing), served by the OMobility LAs v1.2
-- API and written by `ewpctl la create` / `ewpctl la propose` and by the
-- receiving HEI's update calls. ewp-notes.md section 7.
--
-- What is shown for an LA (smile.la_document):
--   the header (smile.learning_agreement.header, an `la` element without
--   versions), then the current first-version, the current
--   approved-changes, and the latest changes-proposal when it still waits
--   for a decision (state 'current') or was commented (state 'commented':
--   the receiving HEI rejected it, the next proposal supersedes it).
-- Every change of an outgoing LA queues an OLA CNR to the receiving HEI
-- (triggers at the end), in the transaction of the change.

-- The hash of a changes-proposal's content without its id (exclusive
-- canonical form, blank text dropped; computed by ewpctl): two proposals
-- with the same hash are the same proposal, so the id changes iff the
-- content does.
ALTER TABLE smile.la_version ADD COLUMN content_sha256 text
    CHECK (content_sha256 ~ '^[0-9a-f]{64}$');

COMMENT ON COLUMN smile.la_version.content_sha256 IS
    'Outgoing changes-proposal: SHA-256 of its canonical content without @id';

-- The OMobility LAs get-response namespace, where every element of an LA lives.
CREATE FUNCTION smile.las_ns() RETURNS text
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT 'https://github.com/erasmus-without-paper/ewp-specs-api-omobility-las/blob/stable-v1/endpoints/get-response.xsd'
$$;

-- The outgoing mobility an admin names by omobility_id, locked.
CREATE FUNCTION smile.la_outgoing_mobility(p_omobility text)
    RETURNS smile.mobility
    LANGUAGE plpgsql
AS $$
DECLARE
    m smile.mobility;
    n int;
BEGIN
    SELECT count(*) INTO n FROM smile.mobility WHERE is_outgoing AND omobility_id = p_omobility;
    IF n = 0 THEN
        RAISE EXCEPTION 'no outgoing mobility with omobility_id "%"', p_omobility
            USING ERRCODE = 'no_data_found',
                  HINT = 'learning agreements are written for our own nominations (ewpctl mobility nominate)';
    ELSIF n > 1 THEN
        RAISE EXCEPTION 'omobility_id "%" names outgoing mobilities of % sending HEIs', p_omobility, n
            USING ERRCODE = 'cardinality_violation';
    END IF;
    SELECT * INTO m FROM smile.mobility WHERE is_outgoing AND omobility_id = p_omobility FOR UPDATE;
    RETURN m;
END
$$;

-- The text of the first element xpath finds, or NULL.
CREATE FUNCTION smile.la_xtext(p_path text, p_doc xml)
    RETURNS text
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT btrim((xpath(p_path || '/text()', p_doc, ARRAY[ARRAY['l', smile.las_ns()]]))[1]::text)
$$;

-- The element children of the root of p_doc matching the XPath predicate
-- p_filter (on self::), concatenated as text, each with its namespace
-- declarations.
CREATE FUNCTION smile.la_children(p_doc xml, p_filter text)
    RETURNS text
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT coalesce(array_to_string(
        xpath('/*/*[' || p_filter || ']', p_doc, ARRAY[ARRAY['l', smile.las_ns()]])::text[], ''), '')
$$;

-- ---------------------------------------------------------------------------
-- ewpctl la create: sets the header of an outgoing mobility's LA (creates
-- the LA, or replaces its header). Returns 'created', 'updated' or
-- 'unchanged'. The header must be an `la` element in the get-response
-- namespace without versions (ewpctl checked it against the schema) whose
-- identifiers are the mobility's.
-- ---------------------------------------------------------------------------
CREATE FUNCTION smile.la_set_header(p_omobility text, p_header xml)
    RETURNS text
    LANGUAGE plpgsql
AS $$
DECLARE
    m smile.mobility;
    old xml;
    la_id bigint;
    v text;
BEGIN
    m := smile.la_outgoing_mobility(p_omobility);
    IF NOT xpath_exists('/l:la', p_header, ARRAY[ARRAY['l', smile.las_ns()]]) THEN
        RAISE EXCEPTION 'the header must be an la element in namespace %', smile.las_ns()
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF xpath_exists('/l:la/l:first-version | /l:la/l:approved-changes | /l:la/l:changes-proposal',
                    p_header, ARRAY[ARRAY['l', smile.las_ns()]]) THEN
        RAISE EXCEPTION 'the header must not contain first-version, approved-changes or changes-proposal'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'versions are added with ewpctl la propose';
    END IF;
    v := smile.la_xtext('/l:la/l:omobility-id', p_header);
    IF v IS DISTINCT FROM m.omobility_id THEN
        RAISE EXCEPTION 'omobility-id "%" in the header is not the mobility''s ("%")', v, m.omobility_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v := smile.la_xtext('/l:la/l:sending-hei/l:hei-id', p_header);
    IF v IS DISTINCT FROM m.sending_hei_id THEN
        RAISE EXCEPTION 'sending-hei/hei-id "%" is not the mobility''s sending HEI ("%")', v, m.sending_hei_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v := smile.la_xtext('/l:la/l:receiving-hei/l:hei-id', p_header);
    IF v IS DISTINCT FROM m.receiving_hei_id THEN
        RAISE EXCEPTION 'receiving-hei/hei-id "%" is not the mobility''s receiving HEI ("%")', v, m.receiving_hei_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v := smile.la_xtext('/l:la/l:receiving-academic-year-id', p_header);
    IF v IS DISTINCT FROM m.receiving_academic_year_id THEN
        RAISE EXCEPTION 'receiving-academic-year-id "%" is not the mobility''s ("%")', v, m.receiving_academic_year_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT id, header INTO la_id, old FROM smile.learning_agreement WHERE mobility_id = m.id FOR UPDATE;
    IF la_id IS NULL THEN
        INSERT INTO smile.learning_agreement (mobility_id, header) VALUES (m.id, p_header);
        RETURN 'created';
    ELSIF old::text = p_header::text THEN
        RETURN 'unchanged';
    END IF;
    -- modified_at set here: smile.set_modified_at() would otherwise compare
    -- the rows, and xml has no equality operator
    UPDATE smile.learning_agreement SET header = p_header, modified_at = clock_timestamp()
     WHERE id = la_id;
    RETURN 'updated';
END
$$;

-- ---------------------------------------------------------------------------
-- ewpctl la propose: a new changes-proposal (student and sending HEI have
-- signed it) supersedes the current one. p_proposal is the element with
-- its @id = p_id set; p_hash its content hash. Returns 'proposed' or
-- 'unchanged' (same content as the proposal in place: nothing written).
-- ---------------------------------------------------------------------------
CREATE FUNCTION smile.la_propose(p_omobility text, p_proposal xml, p_id text, p_hash text)
    RETURNS text
    LANGUAGE plpgsql
AS $$
DECLARE
    m smile.mobility;
    la_id bigint;
    cur smile.la_version;
    clash smile.la_version;
BEGIN
    m := smile.la_outgoing_mobility(p_omobility);
    SELECT id INTO la_id FROM smile.learning_agreement WHERE mobility_id = m.id FOR UPDATE;
    IF la_id IS NULL THEN
        RAISE EXCEPTION 'mobility "%" has no learning agreement yet', p_omobility
            USING ERRCODE = 'no_data_found',
                  HINT = 'give its header first: ewpctl la create OMOBILITY_ID FILE.xml';
    END IF;
    IF smile.la_xtext('/l:changes-proposal/@id', p_proposal) IS NOT NULL
       AND (xpath('/l:changes-proposal/@id', p_proposal, ARRAY[ARRAY['l', smile.las_ns()]]))[1]::text <> p_id THEN
        RAISE EXCEPTION 'the proposal''s @id is not %', p_id USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF m.activity_attributes IN ('short-term-blended', 'short-term-doctoral')
       AND EXISTS (SELECT 1 FROM smile.la_version
                    WHERE learning_agreement_id = la_id AND kind = 'first-version') THEN
        RAISE EXCEPTION 'mobility "%" is % and its first version is agreed: no changes may be proposed after it',
                        p_omobility, m.activity_attributes
            USING ERRCODE = 'check_violation',
                  HINT = 'OMobility LAs v1.2: blended short-term and short-term doctoral mobilities get no changes proposals after the first version';
    END IF;
    SELECT * INTO cur FROM smile.la_version
     WHERE learning_agreement_id = la_id AND kind = 'changes-proposal' AND state = 'current';
    IF cur.id IS NOT NULL AND cur.content_sha256 = p_hash AND cur.proposal_id = p_id THEN
        RETURN 'unchanged';
    END IF;
    -- An id names one content for ever (the receiving HEI decides by id).
    SELECT * INTO clash FROM smile.la_version
     WHERE learning_agreement_id = la_id AND proposal_id = p_id
       AND content_sha256 IS DISTINCT FROM p_hash
     LIMIT 1;
    IF clash.id IS NOT NULL THEN
        RAISE EXCEPTION 'proposal id "%" was already used for another content (version %, %)',
                        p_id, clash.id, clash.state
            USING ERRCODE = 'unique_violation',
                  HINT = 'leave the id out: ewpctl computes one from the content';
    END IF;
    UPDATE smile.la_version SET state = 'superseded', ended_at = now() WHERE id = cur.id;
    INSERT INTO smile.la_version (learning_agreement_id, kind, proposal_id, content, content_sha256)
    VALUES (la_id, 'changes-proposal', p_id, p_proposal, p_hash);
    RETURN 'proposed';
END
$$;

-- ---------------------------------------------------------------------------
-- The la element served for an LA, as text (its elements carry their
-- namespace declarations; the response's root declares the same default
-- namespace). NULL while it has no version to show (nothing to serve).
-- ---------------------------------------------------------------------------
CREATE FUNCTION smile.la_document(p_la bigint)
    RETURNS text
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    h xml;
    fv text;
    ac text;
    cp text;
BEGIN
    SELECT header INTO h FROM smile.learning_agreement WHERE id = p_la;
    SELECT content::text INTO fv FROM smile.la_version
     WHERE learning_agreement_id = p_la AND kind = 'first-version' AND state = 'current';
    SELECT content::text INTO ac FROM smile.la_version
     WHERE learning_agreement_id = p_la AND kind = 'approved-changes' AND state = 'current';
    SELECT CASE WHEN state IN ('current', 'commented') THEN content::text END INTO cp
      FROM smile.la_version
     WHERE learning_agreement_id = p_la AND kind = 'changes-proposal'
     ORDER BY id DESC LIMIT 1;
    IF h IS NULL OR (fv IS NULL AND cp IS NULL) THEN
        RETURN NULL;
    END IF;
    RETURN '<la>'
        || smile.la_children(h, 'not(self::l:learning-outcomes-url or self::l:provisions-url)')
        || coalesce(fv, '') || coalesce(ac, '') || coalesce(cp, '')
        || smile.la_children(h, 'self::l:learning-outcomes-url or self::l:provisions-url')
        || '</la>';
END
$$;

-- Where an outgoing LA stands, for index and stats: versions present and
-- the state of its latest proposal (NULL: none, or it was approved).
CREATE VIEW smile.la_outgoing AS
SELECT la.id, m.id AS mobility_id, m.sending_hei_id, m.omobility_id, m.receiving_hei_id,
       m.receiving_academic_year_id, m.global_id, m.activity_attributes,
       greatest(la.modified_at, (SELECT max(greatest(v.created_at, v.ended_at))
                                   FROM smile.la_version v WHERE v.learning_agreement_id = la.id))
           AS modified_at,
       EXISTS (SELECT 1 FROM smile.la_version v WHERE v.learning_agreement_id = la.id
                  AND v.kind = 'first-version' AND v.state = 'current') AS has_first_version,
       EXISTS (SELECT 1 FROM smile.la_version v WHERE v.learning_agreement_id = la.id
                  AND v.kind = 'approved-changes' AND v.state = 'current') AS has_approved_changes,
       (SELECT CASE WHEN v.state IN ('current', 'commented') THEN v.state END
          FROM smile.la_version v WHERE v.learning_agreement_id = la.id AND v.kind = 'changes-proposal'
         ORDER BY v.id DESC LIMIT 1) AS proposal_state
  FROM smile.learning_agreement la
  JOIN smile.mobility m ON m.id = la.mobility_id
 WHERE m.is_outgoing;

COMMENT ON VIEW smile.la_outgoing IS
    'Outgoing learning agreements: versions in place and the state of the latest proposal';

-- The header with the student data a proposal changed (its student element
-- lists only the changed fields), once the receiving HEI approved it.
CREATE FUNCTION smile.la_merge_student(p_header xml, p_proposal xml)
    RETURNS xml
    LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    ns constant text[] := ARRAY[ARRAY['l', smile.las_ns()]];
    f text;
    v xml[];
    fields text := '';
BEGIN
    IF NOT xpath_exists('/l:changes-proposal/l:student/*', p_proposal, ns) THEN
        RETURN p_header;
    END IF;
    FOREACH f IN ARRAY ARRAY['given-names', 'family-name', 'global-id', 'birth-date',
                             'citizenship', 'gender', 'email'] LOOP
        v := xpath('/l:changes-proposal/l:student/l:' || f, p_proposal, ns);
        IF cardinality(v) = 0 THEN
            v := xpath('/l:la/l:student/l:' || f, p_header, ns);
        END IF;
        fields := fields || coalesce(array_to_string(v::text[], ''), '');
    END LOOP;
    RETURN ('<la xmlns="' || smile.las_ns() || '">'
        || smile.la_children(p_header, 'following-sibling::l:student')
        || '<student>' || fields || '</student>'
        || smile.la_children(p_header, 'preceding-sibling::l:student')
        || '</la>')::xml;
END
$$;

-- ---------------------------------------------------------------------------
-- The receiving HEI's update (omobility-las-update-request, already checked
-- against ewp-schemas/intake/omobility-las-update-request.xsd). p_callers:
-- the HEIs the caller's key covers; p_our_hei: [ewp] hei_id. Returns the
-- HTTP status and the message: 200; 400 (sending HEI not ours, unknown LA
-- or not the caller's); 409 (not the proposal awaiting a decision, the
-- message is for the end user).
-- ---------------------------------------------------------------------------
CREATE FUNCTION smile.la_partner_update(p_body xml, p_callers text[], p_our_hei text,
                                        OUT status int, OUT message text)
    LANGUAGE plpgsql
AS $$
DECLARE
    ns constant text[] := ARRAY[
        ARRAY['u', 'https://github.com/erasmus-without-paper/ewp-specs-api-omobility-las/blob/stable-v1/endpoints/update-request.xsd'],
        ARRAY['l', smile.las_ns()]];
    action text;
    sending text;
    omob text;
    pid text;
    cmt text;
    sig text;
    m smile.mobility;
    la_id bigint;
    cur smile.la_version;
    target text;
BEGIN
    action := CASE WHEN xpath_exists('/u:omobility-las-update-request/u:approve-proposal-v1', p_body, ns)
                   THEN 'approve-proposal-v1' ELSE 'comment-proposal-v1' END;
    sending := btrim((xpath('/u:omobility-las-update-request/u:sending-hei-id/text()', p_body, ns))[1]::text);
    omob := btrim((xpath('/u:omobility-las-update-request/u:' || action || '/u:omobility-id/text()', p_body, ns))[1]::text);
    -- xs:string: kept as sent, but for the white space an indenting writer adds
    pid := btrim((xpath('/u:omobility-las-update-request/u:' || action || '/u:changes-proposal-id/text()', p_body, ns))[1]::text, E' \t\r\n');
    cmt := (xpath('string(/u:omobility-las-update-request/u:' || action || '/u:comment)', p_body, ns))[1]::text;
    sig := array_to_string(xpath('/u:omobility-las-update-request/u:' || action || '/u:signature/*', p_body, ns)::text[], '');
    IF sending IS DISTINCT FROM p_our_hei THEN
        status := 400;
        message := format('sending-hei-id "%s" is not covered by this server (it serves %s)', sending, p_our_hei);
        RETURN;
    END IF;
    SELECT * INTO m FROM smile.mobility
     WHERE is_outgoing AND sending_hei_id = sending AND omobility_id = omob FOR UPDATE;
    SELECT id INTO la_id FROM smile.learning_agreement WHERE mobility_id = m.id FOR UPDATE;
    IF la_id IS NULL OR NOT (m.receiving_hei_id = ANY (p_callers)) OR smile.la_document(la_id) IS NULL THEN
        status := 400;
        message := format('no learning agreement with omobility-id "%s" of sending HEI %s is visible to you '
                          '(only the receiving HEI may update it)', omob, sending);
        RETURN;
    END IF;
    SELECT * INTO cur FROM smile.la_version
     WHERE learning_agreement_id = la_id AND kind = 'changes-proposal' AND state = 'current';
    IF cur.id IS NULL OR cur.proposal_id <> pid THEN
        status := 409;
        message := CASE WHEN cur.id IS NULL
            THEN format('The learning agreement of mobility %s has no proposal awaiting your decision '
                        '(proposal %s was already decided upon or replaced). Please refresh it.', omob, pid)
            ELSE format('The learning agreement of mobility %s has changed: proposal %s is no longer the '
                        'current one (it is now %s). Please refresh it and decide on the new proposal.',
                        omob, pid, cur.proposal_id) END;
        RETURN;
    END IF;
    IF action = 'comment-proposal-v1' THEN
        UPDATE smile.la_version SET state = 'commented', comment = cmt, ended_at = now() WHERE id = cur.id;
        status := 200;
        message := format('proposal %s commented', pid);
        RETURN;
    END IF;
    -- Approved: the first approval makes the first version, later ones the
    -- approved changes, each signed by the receiving HEI as in the request.
    target := CASE WHEN EXISTS (SELECT 1 FROM smile.la_version WHERE learning_agreement_id = la_id
                                   AND kind = 'first-version' AND state = 'current')
                   THEN 'approved-changes' ELSE 'first-version' END;
    UPDATE smile.la_version SET state = 'approved', ended_at = now() WHERE id = cur.id;
    UPDATE smile.la_version SET state = 'superseded', ended_at = now()
     WHERE learning_agreement_id = la_id AND kind = target AND state = 'current';
    -- changed student data, now agreed, goes into the header
    IF xpath_exists('/l:changes-proposal/l:student/*', cur.content, ns) THEN
        UPDATE smile.learning_agreement
           SET header = smile.la_merge_student(header, cur.content), modified_at = clock_timestamp()
         WHERE id = la_id;
    END IF;
    INSERT INTO smile.la_version (learning_agreement_id, kind, proposal_id, content)
    VALUES (la_id, target, pid, (
        '<' || target || ' xmlns="' || smile.las_ns() || '">'
        || smile.la_children(cur.content, 'not(self::l:student or self::l:receiving-hei-signature)')
        || '<receiving-hei-signature>' || sig || '</receiving-hei-signature></' || target || '>')::xml);
    status := 200;
    message := format('proposal %s approved: it is now the %s', pid, replace(target, '-', ' '));
END
$$;

-- ---------------------------------------------------------------------------
-- OLA CNR: every change of an outgoing LA (header, new version, a version
-- approved, commented or superseded) tells the receiving HEI, whoever made
-- it (our staff or the partner's own update call). Pending jobs merge.
-- ---------------------------------------------------------------------------
CREATE FUNCTION smile.la_outgoing_notify(p_la bigint)
    RETURNS void
    LANGUAGE sql
AS $$
    SELECT ewp.enqueue_cnr(m.receiving_hei_id, 'omobility-la-cnr', m.sending_hei_id, m.omobility_id)
      FROM smile.learning_agreement la JOIN smile.mobility m ON m.id = la.mobility_id
     WHERE la.id = p_la AND m.is_outgoing
$$;

CREATE FUNCTION smile.la_version_cnr() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM smile.la_outgoing_notify(NEW.learning_agreement_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER la_version_outgoing_cnr
    AFTER INSERT OR UPDATE ON smile.la_version
    FOR EACH ROW EXECUTE FUNCTION smile.la_version_cnr();

CREATE FUNCTION smile.la_header_cnr() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    -- A header alone is not served yet: nothing to notify before a version.
    IF (TG_OP = 'INSERT' OR OLD.header::text IS DISTINCT FROM NEW.header::text)
       AND smile.la_document(NEW.id) IS NOT NULL THEN
        PERFORM smile.la_outgoing_notify(NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER learning_agreement_outgoing_cnr
    AFTER INSERT OR UPDATE OF header ON smile.learning_agreement
    FOR EACH ROW EXECUTE FUNCTION smile.la_header_cnr();
