-- Receiving side of Online Learning Agreements (OMobility LAs v1.2): what
-- a partner's get returned after its OLA CNR, stored in one transaction
-- by smile.la_store_incoming() (called by gateway/jobs_refetch_las.c once
-- the response's signature and schema were checked), the workflow step
-- it moves (smile.inscription_advance), and the views the portal and the
-- CLI read (smile.la_version_components, smile.la_components,
-- smile.la_version_ects). ewp-notes.md section 7.

-- ---------------------------------------------------------------------------
-- Workflow: move a registration past a step.
-- ---------------------------------------------------------------------------
-- Moves inscription p_inscription to the first ACTIVE step after
-- p_from_step (inactive steps are skipped), never backwards: a
-- registration already at or past that step stays where it is. A move is
-- recorded as a 'validated' stepmessage on p_from_step with no validator
-- (ewpd acted on an EWP exchange). Returns whether it moved. Called when a
-- partner's learning agreement arrives signed by all three parties (here)
-- and when our own approval of an LA is accepted (the decisions flow).
CREATE FUNCTION smile.inscription_advance(p_inscription bigint, p_from_step text,
                                          p_comment text DEFAULT '')
    RETURNS boolean
    LANGUAGE plpgsql
AS $$
DECLARE
    from_pos integer;
    cur_pos integer;
    target bigint;
    target_pos integer;
BEGIN
    SELECT position INTO from_pos FROM smile.step WHERE code = p_from_step;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no workflow step "%"', p_from_step
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT s.position INTO cur_pos
      FROM smile.inscription i JOIN smile.step s ON s.id = i.step_id
     WHERE i.id = p_inscription
       FOR UPDATE OF i;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no registration %', p_inscription
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT id, position INTO target, target_pos
      FROM smile.step
     WHERE active AND position > from_pos
     ORDER BY position
     LIMIT 1;
    IF target IS NULL OR cur_pos >= target_pos THEN
        RETURN false;                   -- no later active step, or already there
    END IF;
    UPDATE smile.inscription SET step_id = target WHERE id = p_inscription;
    INSERT INTO smile.stepmessage (inscription_id, step_id, type, comment, is_valid, validator_id)
    SELECT p_inscription, s.id, 'validated', coalesce(p_comment, ''), true, NULL
      FROM smile.step s WHERE s.code = p_from_step;
    RETURN true;
END
$$;

COMMENT ON FUNCTION smile.inscription_advance(bigint, text, text) IS
    'Moves a registration to the next active step after the given one (never backwards), with a validated stepmessage';

-- ---------------------------------------------------------------------------
-- Storing a partner's OMobility LAs get response
-- ---------------------------------------------------------------------------
-- The text a version is compared by: its serialisation with the
-- whitespace between tags dropped (partners re-indent freely).
CREATE FUNCTION smile.la_xml_key(x xml)
    RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
AS $$
    SELECT regexp_replace(btrim(x::text), '>\s+<', '><', 'g')
$$;

-- p_response: the whole omobility-las-get-response (already verified and
-- valid against ewp-schemas/intake/omobility-las-get-response.xsd);
-- p_partner: the HEI that served it (the job's hei_id); p_sending_hei,
-- p_omobility: the LA asked for; p_job: the job, for the record;
-- p_fetched_at: when the get was sent (learning_agreement.fetched_at is
-- that of the answer last stored).
--
-- Returns one word:
--   no-mobility  the nomination is not known yet: a re-fetch of it was
--                queued ('in', 'refetch', api 'omobilities'), nothing else
--                written; try the LA again later
--   stored       something changed (header or versions)
--   unchanged    the same as last time: nothing written (fetched_at is
--                when the partner's content last changed or came back)
--   gone         the get no longer returns it (gone_at set)
--   absent       the get returns nothing and we never had it
--   stale        what we hold came from a get sent after this one (two
--                jobs of one LA on the wire at once): nothing written
-- Raises (SQLSTATE 22023) when the response contradicts the request or
-- the mobility (another sending or receiving HEI): nothing is written.
CREATE FUNCTION smile.la_store_incoming(p_response xml, p_partner text, p_sending_hei text,
                                        p_omobility text, p_job bigint DEFAULT NULL,
                                        p_fetched_at timestamptz DEFAULT now())
    RETURNS text
    LANGUAGE plpgsql
AS $$
DECLARE
    las_ns constant text := 'https://github.com/erasmus-without-paper/ewp-specs-api-omobility-las/blob/stable-v1/endpoints/get-response.xsd';
    ns text[] := ARRAY[ARRAY['l', las_ns]];
    m record;
    la xml;
    n int := 0;
    hdr xml;
    la_id bigint;
    old_header text;
    was_gone boolean;
    header_written boolean;
    changed boolean := false;
    kinds constant text[] := ARRAY['first-version', 'approved-changes', 'changes-proposal'];
    k text;
    new_v xml;
    new_key text;
    cur record;
    last_prop record;
    old_prop record;          -- the proposal current before this fetch
    prop_ends boolean := false;
    approved_now boolean := false;
    first_new boolean := false;
    end_state text;
    end_comment text;
BEGIN
    SELECT id, receiving_hei_id, inscription_id INTO m
      FROM smile.mobility
     WHERE sending_hei_id = p_sending_hei AND omobility_id = p_omobility AND NOT is_outgoing
       FOR UPDATE;
    IF NOT FOUND THEN
        -- the LA came before the nomination: fetch the nomination first
        IF p_partner !~ '^validator-hei0[12]\.' THEN
            INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload)
            VALUES ('in', 'refetch', p_partner, 'omobilities', p_omobility,
                    jsonb_build_object('omobility_id', p_omobility,
                                       'sending_hei_id', p_sending_hei,
                                       'reason', 'a learning agreement arrived before the nomination',
                                       'la_job_id', p_job))
            ON CONFLICT (direction, kind, hei_id, api, dedupe_key) WHERE status = 'pending'
            DO NOTHING;
        END IF;
        RETURN 'no-mobility';
    END IF;

    -- the la of this mobility (the get may list others: ignored)
    FOR la IN SELECT x FROM unnest(xpath('/l:omobility-las-get-response/l:la', p_response, ns)) AS x
    LOOP
        IF btrim((xpath('string(/l:la/l:omobility-id)', la, ns))[1]::text) = p_omobility THEN
            n := n + 1;
            EXIT;
        END IF;
    END LOOP;

    SELECT id, header::text, gone_at IS NOT NULL INTO la_id, old_header, was_gone
      FROM smile.learning_agreement
     WHERE mobility_id = m.id FOR UPDATE;
    IF la_id IS NOT NULL AND EXISTS (SELECT 1 FROM smile.learning_agreement
                                      WHERE id = la_id AND fetched_at > p_fetched_at) THEN
        RETURN 'stale';
    END IF;

    IF n = 0 THEN
        IF la_id IS NULL THEN
            RETURN 'absent';
        END IF;
        -- modified_at given: set_modified_at() cannot compare rows with
        -- an xml column, so every UPDATE here names it
        UPDATE smile.learning_agreement
           SET gone_at = now(), fetched_at = p_fetched_at, modified_at = clock_timestamp()
         WHERE id = la_id AND gone_at IS NULL;
        RETURN 'gone';
    END IF;

    IF btrim((xpath('string(/l:la/l:sending-hei/l:hei-id)', la, ns))[1]::text) <> p_sending_hei THEN
        RAISE EXCEPTION 'the partner''s LA % names sending HEI "%", not "%"', p_omobility,
              btrim((xpath('string(/l:la/l:sending-hei/l:hei-id)', la, ns))[1]::text), p_sending_hei
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF btrim((xpath('string(/l:la/l:receiving-hei/l:hei-id)', la, ns))[1]::text) <> m.receiving_hei_id THEN
        RAISE EXCEPTION 'the partner''s LA % names receiving HEI "%", but the nomination names "%"',
              p_omobility, btrim((xpath('string(/l:la/l:receiving-hei/l:hei-id)', la, ns))[1]::text),
              m.receiving_hei_id
              USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the header: the la element without its versions
    SELECT ('<la xmlns="' || las_ns || '">'
            || string_agg(regexp_replace(c::text, '^(<[^\s>/]+)\s+xmlns="' || las_ns || '"', '\1'),
                          '' ORDER BY o)
            || '</la>')::xml
      INTO hdr
      FROM unnest(xpath('/l:la/*[not(self::l:first-version or self::l:approved-changes'
                        ' or self::l:changes-proposal)]', la, ns)) WITH ORDINALITY AS t (c, o);

    IF la_id IS NULL THEN
        INSERT INTO smile.learning_agreement (mobility_id, header, fetched_at)
        VALUES (m.id, hdr, p_fetched_at) RETURNING id INTO la_id;
        changed := true;
    ELSIF smile.la_xml_key(old_header::xml) IS DISTINCT FROM smile.la_xml_key(hdr) OR was_gone THEN
        -- modified_at given: see above
        UPDATE smile.learning_agreement
           SET header = hdr, gone_at = NULL, fetched_at = p_fetched_at, modified_at = clock_timestamp()
         WHERE id = la_id;
        changed := true;
    END IF;
    header_written := changed;

    -- did the current proposal end with this fetch (gone or replaced)?
    SELECT * INTO old_prop FROM smile.la_version
     WHERE learning_agreement_id = la_id AND kind = 'changes-proposal' AND state = 'current';
    IF old_prop.id IS NOT NULL THEN
        new_v := (xpath('/l:la/l:changes-proposal', la, ns))[1];
        prop_ends := new_v IS NULL
                     OR (xpath('string(/l:changes-proposal/@id)', new_v, ns))[1]::text
                        IS DISTINCT FROM old_prop.proposal_id;
    END IF;

    FOREACH k IN ARRAY kinds LOOP
        new_v := (xpath('/l:la/l:' || k, la, ns))[1];
        SELECT * INTO cur FROM smile.la_version
         WHERE learning_agreement_id = la_id AND kind = k AND state = 'current';
        IF new_v IS NOT NULL THEN
            -- a proposal is known by its id (it changes iff its content
            -- does), the other versions by their content
            IF k = 'changes-proposal' THEN
                new_key := (xpath('string(/l:changes-proposal/@id)', new_v, ns))[1]::text;
                IF cur.id IS NOT NULL AND cur.proposal_id = new_key THEN
                    CONTINUE;
                END IF;
                -- the proposal we commented, still served until the sending
                -- HEI makes a new one
                SELECT * INTO last_prop FROM smile.la_version
                 WHERE learning_agreement_id = la_id AND kind = k
                 ORDER BY id DESC LIMIT 1;
                IF cur.id IS NULL AND last_prop.id IS NOT NULL AND last_prop.proposal_id = new_key
                   AND last_prop.state = 'commented' THEN
                    CONTINUE;
                END IF;
            ELSE
                new_key := smile.la_xml_key(new_v);
                IF cur.id IS NOT NULL AND smile.la_xml_key(cur.content) = new_key THEN
                    CONTINUE;
                END IF;
            END IF;
        ELSIF cur.id IS NULL THEN
            CONTINUE;
        END IF;

        -- this kind changed: the current version (if any) ends
        IF cur.id IS NOT NULL THEN
            end_state := 'superseded';
            end_comment := cur.comment;
            IF k = 'changes-proposal' THEN
                IF approved_now THEN
                    end_state := 'approved';
                ELSE
                    -- our staff's comment the partner accepted
                    SELECT 'commented', d.comment INTO end_state, end_comment
                      FROM ewp.decisions d
                     WHERE d.mobility_id = m.id AND d.kind = 'la-comment'
                       AND d.proposal_id = cur.proposal_id AND d.state = 'accepted'
                     ORDER BY d.id DESC LIMIT 1;
                    IF NOT FOUND THEN
                        end_state := 'superseded';
                        end_comment := cur.comment;
                    END IF;
                END IF;
            END IF;
            UPDATE smile.la_version SET state = end_state, comment = end_comment, ended_at = now()
             WHERE id = cur.id;
        END IF;
        IF new_v IS NOT NULL THEN
            INSERT INTO smile.la_version (learning_agreement_id, kind, proposal_id, content)
            VALUES (la_id, k, CASE WHEN k = 'changes-proposal' THEN new_key
                                   WHEN prop_ends THEN old_prop.proposal_id END, new_v);
            IF k <> 'changes-proposal' THEN
                approved_now := true;   -- a proposal that ends now was approved
            END IF;
            IF k = 'first-version' THEN
                first_new := true;
            END IF;
        END IF;
        changed := true;
    END LOOP;

    -- versions changed, header did not: the LA was still touched now
    IF changed AND NOT header_written THEN
        UPDATE smile.learning_agreement
           SET fetched_at = p_fetched_at, modified_at = clock_timestamp()
         WHERE id = la_id;
    END IF;

    -- signed by all three: the registration is past the host's approval
    IF first_new AND m.inscription_id IS NOT NULL THEN
        PERFORM smile.inscription_advance(m.inscription_id, 'approval_host',
                'learning agreement signed by all three parties (OMobility LAs, ' || p_sending_hei || ')');
    END IF;
    RETURN CASE WHEN changed THEN 'stored' ELSE 'unchanged' END;
END
$$;

COMMENT ON FUNCTION smile.la_store_incoming(xml, text, text, text, bigint, timestamptz) IS
    'Stores a partner''s learning agreement (OMobility LAs get response) with its versions, in one transaction';

-- A nomination fetched after its learning agreement's CNR: the LA's
-- re-fetch, waiting in its backoff, runs now.
CREATE FUNCTION smile.mobility_wake_la_refetch()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE ewp.jobs
       SET next_attempt_at = now()
     WHERE direction = 'in' AND kind = 'refetch' AND api = 'omobility-las'
       AND dedupe_key = NEW.omobility_id AND status = 'pending'
       AND next_attempt_at > now()
       AND coalesce(payload ->> 'sending_hei_id', hei_id) = NEW.sending_hei_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER mobility_wake_la_refetch
    AFTER INSERT ON smile.mobility
    FOR EACH ROW WHEN (NOT NEW.is_outgoing)
    EXECUTE FUNCTION smile.mobility_wake_la_refetch();

-- ---------------------------------------------------------------------------
-- Views for the portal and ewpctl
-- ---------------------------------------------------------------------------
-- One row per component of every version (history included). list is the
-- table it sits in: studied (A), recognized (B), virtual (C), blended,
-- short-term-doctoral; position counts from 1 within the list; ects is
-- the first credit of scheme "ects", credits all of them as JSON.
CREATE VIEW smile.la_version_components AS
SELECT v.id AS la_version_id,
       v.learning_agreement_id,
       a.mobility_id,
       m.sending_hei_id,
       m.omobility_id,
       m.is_outgoing,
       v.kind,
       v.proposal_id,
       v.state,
       row_number() OVER (PARTITION BY v.id, c.list_element ORDER BY c.ord) AS position,
       CASE c.list_element
            WHEN 'components-studied' THEN 'studied'
            WHEN 'components-recognized' THEN 'recognized'
            WHEN 'virtual-components' THEN 'virtual'
            WHEN 'blended-mobility-components' THEN 'blended'
            WHEN 'short-term-doctoral-components' THEN 'short-term-doctoral'
       END AS list,
       btrim(c.title) AS title,
       nullif(btrim(c.los_id), '') AS los_id,
       nullif(btrim(c.los_code), '') AS los_code,
       nullif(btrim(c.loi_id), '') AS loi_id,
       c.term_number,
       c.total_terms,
       c.ects,
       (SELECT jsonb_agg(jsonb_build_object('scheme', btrim(cr.scheme), 'value', cr.value)
                         ORDER BY cr.n)
          FROM XMLTABLE(
               XMLNAMESPACES('https://github.com/erasmus-without-paper/ewp-specs-api-omobility-las/blob/stable-v1/endpoints/get-response.xsd' AS l),
               '/l:component/l:credit' PASSING c.component
               COLUMNS n for ordinality, scheme text PATH 'l:scheme',
                       value numeric PATH 'l:value') AS cr) AS credits,
       c.status,
       c.reason_code,
       c.reason_text,
       nullif(btrim(c.short_description), '') AS short_description,
       nullif(btrim(c.recognition_conditions), '') AS recognition_conditions
  FROM smile.la_version v
  JOIN smile.learning_agreement a ON a.id = v.learning_agreement_id
  JOIN smile.mobility m ON m.id = a.mobility_id
 CROSS JOIN LATERAL XMLTABLE(
       XMLNAMESPACES('https://github.com/erasmus-without-paper/ewp-specs-api-omobility-las/blob/stable-v1/endpoints/get-response.xsd' AS l,
                     'https://github.com/erasmus-without-paper/ewp-specs-types-academic-term/tree/stable-v2' AS t),
       '/*/*[self::l:components-studied or self::l:components-recognized or self::l:virtual-components'
       ' or self::l:blended-mobility-components or self::l:short-term-doctoral-components]/l:component'
       PASSING v.content
       COLUMNS ord for ordinality,
               component xml PATH '.',
               list_element text PATH 'local-name(..)',
               title text PATH 'l:title',
               los_id text PATH 'l:los-id',
               los_code text PATH 'l:los-code',
               loi_id text PATH 'l:loi-id',
               term_number integer PATH 'l:term-id/t:term-number',
               total_terms integer PATH 'l:term-id/t:total-terms',
               ects numeric PATH '(l:credit[normalize-space(l:scheme) = "ects"])[1]/l:value',
               status text PATH '@status',
               reason_code text PATH '@reason-code',
               reason_text text PATH '@reason-text',
               short_description text PATH 'l:short-description',
               recognition_conditions text PATH 'l:recognition-conditions') AS c;

COMMENT ON VIEW smile.la_version_components IS
    'Components of every learning agreement version (list, title, codes, credits, insert/delete, reason)';

-- The versions in place now (first version, approved changes, proposal).
CREATE VIEW smile.la_components AS
SELECT * FROM smile.la_version_components WHERE state = 'current';

COMMENT ON VIEW smile.la_components IS
    'Components of the current versions of learning agreements, one row per component';

-- ECTS per version and list: listed (components without a status, as in a
-- first version), inserted and deleted (changes), and net = listed +
-- inserted - deleted. A version without components has no row.
CREATE VIEW smile.la_version_ects AS
SELECT la_version_id, learning_agreement_id, mobility_id, sending_hei_id, omobility_id, is_outgoing,
       kind, proposal_id, state, list,
       count(*) AS components,
       coalesce(sum(ects) FILTER (WHERE status IS NULL), 0) AS ects_listed,
       coalesce(sum(ects) FILTER (WHERE status = 'inserted'), 0) AS ects_inserted,
       coalesce(sum(ects) FILTER (WHERE status = 'deleted'), 0) AS ects_deleted,
       coalesce(sum(ects) FILTER (WHERE status IS NULL), 0)
         + coalesce(sum(ects) FILTER (WHERE status = 'inserted'), 0)
         - coalesce(sum(ects) FILTER (WHERE status = 'deleted'), 0) AS ects_net
  FROM smile.la_version_components
 GROUP BY la_version_id, learning_agreement_id, mobility_id, sending_hei_id, omobility_id,
          is_outgoing, kind, proposal_id, state, list;

COMMENT ON VIEW smile.la_version_ects IS
    'ECTS totals of each learning agreement version, per component list';
