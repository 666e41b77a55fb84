-- Staff decisions on partners' nominations and learning agreements (we
-- are the receiving HEI), sent to the sending HEI's update endpoint by an
-- ('out', 'update') job (gateway/jobs_update.c). ewp-notes.md 6.2 and 7.
--
--   ewp.decision_queue()     checks there is something to decide, writes
--                            the decision, its job and the audit-log row
--                            in one transaction (ewpctl mobility approve...)
--   ewp.decision_request()   the update request the job POSTs
--   ewp.decision_answered()  what the partner answered: the decision's
--                            state, a re-fetch of the object, and the
--                            registration's workflow when it was accepted
--   ewp.decisions_job_ended  (trigger) a job that ends without an answer
--                            (expired, no update API...) fails its decision
--
-- Applies on top of 0005 alone: nothing here depends on other flows'
-- migrations (the workflow step change is done inline, not through
-- another migration's function).

-- Signatures and comments travel as XML text: no control characters but
-- line breaks and tabs (XML 1.0 cannot carry them).
CREATE FUNCTION ewp.decision_text_ok(t text)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT t IS NULL OR t !~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]'
$$;

-- The mobility a decision is about, given as its id or as
-- "SENDING_HEI:OMOBILITY_ID"; NULL when there is none.
CREATE FUNCTION ewp.decision_mobility_ref(ref text)
    RETURNS bigint
    LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN ref ~ '^[0-9]{1,18}$' THEN (SELECT id FROM smile.mobility WHERE id = ref::bigint)
        WHEN position(':' IN ref) > 1 THEN
            (SELECT id FROM smile.mobility
              WHERE sending_hei_id = split_part(ref, ':', 1)
                AND omobility_id = substr(ref, position(':' IN ref) + 1))
        END
$$;

COMMENT ON FUNCTION ewp.decision_mobility_ref(text) IS
    'smile.mobility id of "ID" or "SENDING_HEI:OMOBILITY_ID", or NULL';

-- The changes proposal waiting for the receiving HEI's decision: the
-- current changes-proposal version of the mobility's learning agreement.
CREATE FUNCTION ewp.decision_la_proposal(p_mobility bigint)
    RETURNS text
    LANGUAGE sql STABLE
AS $$
    SELECT v.proposal_id
      FROM smile.learning_agreement la
      JOIN smile.la_version v ON v.learning_agreement_id = la.id
     WHERE la.mobility_id = p_mobility AND la.gone_at IS NULL
       AND v.kind = 'changes-proposal' AND v.state = 'current'
$$;

-- ---------------------------------------------------------------------------
-- Queue a decision. Raises a readable error (SQLSTATE P0001, the message
-- is for the person deciding) when there is nothing to decide. One
-- decision per proposal: a decision still on its way or accepted blocks
-- another on the same proposal.
-- ---------------------------------------------------------------------------
CREATE FUNCTION ewp.decision_queue(
    p_mobility bigint, p_kind text, p_comment text,
    p_signer_name text, p_signer_position text, p_signer_email text,
    p_decided_by text, p_actor text)
    RETURNS TABLE (decision_id bigint, job_id bigint, proposal_id text, partner text)
    LANGUAGE plpgsql
AS $$
DECLARE
    m smile.mobility;
    prop text;
    v_api text;
    dec_id bigint;
    jid bigint;
    uid bigint;
    prior ewp.decisions;
    la_kind boolean := p_kind IN ('la-approve', 'la-comment');
BEGIN
    IF p_kind NOT IN ('nomination-approve', 'nomination-reject', 'la-approve', 'la-comment') THEN
        RAISE EXCEPTION 'unknown kind of decision "%"', p_kind;
    END IF;
    IF p_decided_by IS NULL OR btrim(p_decided_by) = '' OR NOT ewp.decision_text_ok(p_decided_by) THEN
        RAISE EXCEPTION 'who decides must be named (--by NAME)';
    END IF;
    IF NOT (ewp.decision_text_ok(p_comment) AND ewp.decision_text_ok(p_signer_name)
            AND ewp.decision_text_ok(p_signer_position) AND ewp.decision_text_ok(p_signer_email)) THEN
        RAISE EXCEPTION 'control characters are not allowed in a comment or a signature';
    END IF;
    IF p_kind IN ('nomination-reject', 'la-comment') AND btrim(coalesce(p_comment, '')) = '' THEN
        RAISE EXCEPTION 'a comment is required (--comment TEXT)';
    END IF;
    IF la_kind THEN
        IF btrim(coalesce(p_signer_name, '')) = '' OR btrim(coalesce(p_signer_position, '')) = ''
           OR btrim(coalesce(p_signer_email, '')) = '' THEN
            RAISE EXCEPTION 'an LA decision is signed: --signer-name, --signer-position and --signer-email are required';
        END IF;
        IF p_signer_email !~ '^[^@[:space:]]+@[^@[:space:]]+$' THEN
            RAISE EXCEPTION 'signer e-mail "%" is not an e-mail address', p_signer_email;
        END IF;
    END IF;

    -- one decider at a time per mobility
    SELECT * INTO m FROM smile.mobility WHERE id = p_mobility FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no mobility %', p_mobility;
    END IF;
    IF m.is_outgoing THEN
        RAISE EXCEPTION 'mobility % (%:%) is outgoing: we are its sending HEI, only the receiving HEI % decides',
            m.id, m.sending_hei_id, m.omobility_id, m.receiving_hei_id;
    END IF;
    IF m.gone_at IS NOT NULL THEN
        RAISE EXCEPTION 'mobility % (%:%) is no longer published by %: nothing to decide',
            m.id, m.sending_hei_id, m.omobility_id, m.sending_hei_id;
    END IF;
    IF m.status = 'cancelled' THEN
        RAISE EXCEPTION 'mobility % (%:%) was cancelled by the sending HEI: nothing to decide',
            m.id, m.sending_hei_id, m.omobility_id;
    END IF;

    IF la_kind THEN
        v_api := 'omobility-las';
        IF NOT EXISTS (SELECT 1 FROM smile.learning_agreement la
                        WHERE la.mobility_id = m.id AND la.gone_at IS NULL) THEN
            RAISE EXCEPTION 'mobility % (%:%) has no learning agreement', m.id, m.sending_hei_id, m.omobility_id;
        END IF;
        prop := ewp.decision_la_proposal(m.id);
        IF prop IS NULL THEN
            RAISE EXCEPTION 'the learning agreement of mobility % (%:%) has no changes proposal waiting: nothing to decide',
                m.id, m.sending_hei_id, m.omobility_id;
        END IF;
    ELSE
        v_api := 'omobilities';
        prop := m.proposal_id;
        IF m.status <> 'pending' THEN
            RAISE EXCEPTION 'the nomination of mobility % (%:%) is already % (proposal %): nothing to decide',
                m.id, m.sending_hei_id, m.omobility_id, m.status, prop;
        END IF;
    END IF;

    SELECT d.* INTO prior FROM ewp.decisions d
     WHERE d.mobility_id = m.id AND d.proposal_id = prop
       AND (d.kind IN ('la-approve', 'la-comment')) = la_kind
       AND d.state IN ('queued', 'accepted')
     ORDER BY d.id DESC LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'proposal % of mobility % is already decided: decision % (%, %, by %)',
            prop, m.id, prior.id, prior.kind, prior.state, prior.decided_by;
    END IF;

    SELECT u.id INTO uid FROM smile.utilisateur u WHERE lower(u.username) = lower(p_decided_by);

    INSERT INTO ewp.decisions (mobility_id, kind, proposal_id, comment, signer_name, signer_position,
                               signer_email, signed_at, utilisateur_id, decided_by)
    VALUES (m.id, p_kind, prop, nullif(p_comment, ''),
            CASE WHEN la_kind THEN p_signer_name END, CASE WHEN la_kind THEN p_signer_position END,
            CASE WHEN la_kind THEN p_signer_email END, CASE WHEN la_kind THEN now() END,
            uid, p_decided_by)
    RETURNING id INTO dec_id;

    INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload)
    VALUES ('out', 'update', m.sending_hei_id, v_api, 'decision-' || dec_id,
            jsonb_build_object('decision_id', dec_id, 'kind', p_kind,
                               'sending_hei_id', m.sending_hei_id, 'omobility_id', m.omobility_id))
    RETURNING id INTO jid;

    UPDATE ewp.decisions SET job_id = jid WHERE id = dec_id;

    INSERT INTO ewp.audit_log (actor, utilisateur_id, action, object_type, object_id, details)
    VALUES (coalesce(nullif(p_actor, ''), 'ewpctl'), uid, 'decision.' || p_kind, 'mobility', m.id::text,
            jsonb_build_object('decision_id', dec_id, 'job_id', jid, 'proposal_id', prop,
                               'decided_by', p_decided_by, 'sending_hei_id', m.sending_hei_id,
                               'omobility_id', m.omobility_id, 'comment', p_comment));

    RETURN QUERY SELECT dec_id, jid, prop, m.sending_hei_id::text;
END
$$;

COMMENT ON FUNCTION ewp.decision_queue(bigint, text, text, text, text, text, text, text) IS
    'Writes a staff decision, its update job and its audit-log row, or raises why there is nothing to decide';

-- ---------------------------------------------------------------------------
-- The update request of a decision, as the partner's update endpoint
-- takes it (OMobilities v3 omobilities-update-request, OMobility LAs v1.2
-- omobility-las-update-request; the signature's children are in the LA
-- get-response namespace).
-- ---------------------------------------------------------------------------
CREATE FUNCTION ewp.decision_signature(d ewp.decisions)
    RETURNS xml
    LANGUAGE sql STABLE
AS $$
    SELECT xmlelement(name "signature",
               xmlelement(name "la:signer-name", d.signer_name),
               xmlelement(name "la:signer-position", d.signer_position),
               xmlelement(name "la:signer-email", d.signer_email),
               xmlelement(name "la:timestamp",
                   to_char(d.signed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
               xmlelement(name "la:signer-app", 'SMILE EWP gateway (ewpd)'))
$$;

CREATE FUNCTION ewp.decision_request(p_decision bigint)
    RETURNS TABLE (state text, partner text, api text, omobility_id text, body text)
    LANGUAGE sql STABLE
AS $$
    WITH d AS (
        SELECT d, d.kind, d.state, d.proposal_id, d.comment, m.sending_hei_id, m.omobility_id AS om
          FROM ewp.decisions d JOIN smile.mobility m ON m.id = d.mobility_id
         WHERE d.id = p_decision),
    ns AS (SELECT
        'https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/endpoints/update-request.xsd' AS om,
        'https://github.com/erasmus-without-paper/ewp-specs-api-omobility-las/blob/stable-v1/endpoints/update-request.xsd' AS la,
        'https://github.com/erasmus-without-paper/ewp-specs-api-omobility-las/blob/stable-v1/endpoints/get-response.xsd' AS lag)
    SELECT d.state, d.sending_hei_id::text,
           CASE WHEN d.kind LIKE 'la-%' THEN 'omobility-las' ELSE 'omobilities' END,
           d.om::text,
           '<?xml version="1.0" encoding="UTF-8"?>' || chr(10) || (CASE d.kind
            WHEN 'nomination-approve' THEN
                xmlelement(name "omobilities-update-request", xmlattributes(ns.om AS xmlns),
                    xmlelement(name "approve-proposal-v1",
                        xmlelement(name "omobility-id", d.om),
                        xmlelement(name "proposal-id", d.proposal_id)))
            WHEN 'nomination-reject' THEN
                xmlelement(name "omobilities-update-request", xmlattributes(ns.om AS xmlns),
                    xmlelement(name "reject-proposal-v1",
                        xmlelement(name "omobility-id", d.om),
                        xmlelement(name "proposal-id", d.proposal_id),
                        xmlelement(name "comment", d.comment)))
            WHEN 'la-approve' THEN
                xmlelement(name "omobility-las-update-request",
                    xmlattributes(ns.la AS xmlns, ns.lag AS "xmlns:la"),
                    xmlelement(name "sending-hei-id", d.sending_hei_id),
                    xmlelement(name "approve-proposal-v1",
                        xmlelement(name "omobility-id", d.om),
                        xmlelement(name "changes-proposal-id", d.proposal_id),
                        ewp.decision_signature(d.d)))
            ELSE
                xmlelement(name "omobility-las-update-request",
                    xmlattributes(ns.la AS xmlns, ns.lag AS "xmlns:la"),
                    xmlelement(name "sending-hei-id", d.sending_hei_id),
                    xmlelement(name "comment-proposal-v1",
                        xmlelement(name "omobility-id", d.om),
                        xmlelement(name "changes-proposal-id", d.proposal_id),
                        xmlelement(name "comment", d.comment),
                        ewp.decision_signature(d.d)))
            END)::text || chr(10)
      FROM d, ns
$$;

COMMENT ON FUNCTION ewp.decision_request(bigint) IS
    'State, partner, API and update-request XML of a decision, for its job';

-- ---------------------------------------------------------------------------
-- The partner's answer. p_state: 'accepted' (2xx), 'conflict' (409) or
-- 'refused' (another 4xx); p_message: its user- or developer-message.
-- A decision already accepted or in conflict is left as it is (a second
-- run of the same job after a lost outcome). Accepted and conflicting
-- decisions queue a re-fetch of the object, so that the partner's new
-- state is seen; accepted ones move the registration's workflow.
-- Returns the decision's state afterwards.
-- ---------------------------------------------------------------------------
CREATE FUNCTION ewp.decision_answered(p_decision bigint, p_state text, p_http integer, p_message text)
    RETURNS text
    LANGUAGE plpgsql
AS $$
DECLARE
    d ewp.decisions;
    m smile.mobility;
    ins smile.inscription;
    host smile.step;
    nxt bigint;
    v_api text;
BEGIN
    IF p_state NOT IN ('accepted', 'conflict', 'refused') THEN
        RAISE EXCEPTION 'decision_answered: unknown state %', p_state;
    END IF;
    SELECT * INTO d FROM ewp.decisions WHERE id = p_decision FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF d.state IN ('accepted', 'conflict') THEN
        RETURN d.state;
    END IF;
    UPDATE ewp.decisions SET state = p_state, partner_message = left(p_message, 4000)
     WHERE id = d.id;
    IF p_state = 'refused' THEN
        RETURN p_state;
    END IF;

    SELECT * INTO m FROM smile.mobility WHERE id = d.mobility_id;
    v_api := CASE WHEN d.kind LIKE 'la-%' THEN 'omobility-las' ELSE 'omobilities' END;
    IF m.sending_hei_id NOT IN ('validator-hei01.developers.erasmuswithoutpaper.eu',
                                'validator-hei02.developers.erasmuswithoutpaper.eu') THEN
        INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload)
        VALUES ('in', 'refetch', m.sending_hei_id, v_api, m.omobility_id,
                jsonb_build_object('omobility_id', m.omobility_id, 'sending_hei_id', m.sending_hei_id,
                                   'notifier_hei_ids', jsonb_build_array(m.sending_hei_id),
                                   'decision_id', d.id, 'reason', 'decision-' || p_state))
        ON CONFLICT (direction, kind, hei_id, api, dedupe_key) WHERE status = 'pending'
        DO UPDATE SET payload = ewp.jobs.payload || jsonb_build_object('decision_id', d.id),
                      next_attempt_at = least(ewp.jobs.next_attempt_at, now());
    END IF;

    IF p_state <> 'accepted' OR m.inscription_id IS NULL THEN
        RETURN p_state;
    END IF;
    SELECT * INTO ins FROM smile.inscription WHERE id = m.inscription_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN p_state;
    END IF;

    IF d.kind = 'nomination-approve' THEN
        UPDATE smile.inscription SET status = 2 WHERE id = ins.id AND status = 1;
        INSERT INTO smile.stepmessage (inscription_id, step_id, type, comment, is_valid, validator_id)
        VALUES (ins.id, ins.step_id, 'validated',
                'Nomination approved by ' || d.decided_by || ', accepted by ' || m.sending_hei_id
                || ' (EWP, proposal ' || d.proposal_id || ')', true, d.utilisateur_id);
    ELSIF d.kind = 'nomination-reject' THEN
        INSERT INTO smile.stepmessage (inscription_id, step_id, type, comment, is_valid, validator_id)
        VALUES (ins.id, ins.step_id, 'denied',
                'Nomination rejected by ' || d.decided_by || ': ' || d.comment, false, d.utilisateur_id);
    ELSE
        SELECT * INTO host FROM smile.step WHERE code = 'approval_host';
        IF d.kind = 'la-approve' THEN
            INSERT INTO smile.stepmessage (inscription_id, step_id, type, comment, is_valid, validator_id)
            VALUES (ins.id, coalesce(host.id, ins.step_id), 'validated',
                    'Learning agreement approved by ' || d.decided_by || ' (' || d.signer_name
                    || ', ' || d.signer_position || '), accepted by ' || m.sending_hei_id, true,
                    d.utilisateur_id);
            -- to the next active step after approval_host, unless the
            -- registration is already further
            IF host.id IS NOT NULL
               AND (SELECT s.position FROM smile.step s WHERE s.id = ins.step_id) <= host.position THEN
                SELECT s.id INTO nxt FROM smile.step s
                 WHERE s.active AND s.position > host.position ORDER BY s.position LIMIT 1;
                IF nxt IS NOT NULL THEN
                    UPDATE smile.inscription SET step_id = nxt WHERE id = ins.id;
                END IF;
            END IF;
        ELSE
            INSERT INTO smile.stepmessage (inscription_id, step_id, type, comment, is_valid, validator_id)
            VALUES (ins.id, coalesce(host.id, ins.step_id), 'denied',
                    'Learning agreement commented by ' || d.decided_by || ': ' || d.comment, false,
                    d.utilisateur_id);
            UPDATE smile.la_version v SET comment = d.comment
              FROM smile.learning_agreement la
             WHERE la.mobility_id = m.id AND v.learning_agreement_id = la.id
               AND v.kind = 'changes-proposal' AND v.proposal_id = d.proposal_id;
        END IF;
    END IF;
    RETURN p_state;
END
$$;

COMMENT ON FUNCTION ewp.decision_answered(bigint, text, integer, text) IS
    'Records the partner''s answer to a decision; re-fetch queued, workflow moved when accepted';

-- ---------------------------------------------------------------------------
-- A decision's job that ends with no answer from the partner (expired,
-- no update API, cancelled, or a 4xx the handler could not record) fails
-- the decision with the job's reason; a job retried by an operator
-- (ewpctl jobs retry) puts its failed or refused decision back on its way.
-- ---------------------------------------------------------------------------
CREATE FUNCTION ewp.decisions_job_ended()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.status IN ('expired', 'no-cnr-api', 'cancelled', 'failed-max-attempts', 'rejected', 'merged') THEN
        UPDATE ewp.decisions
           SET state = 'failed',
               partner_message = coalesce(partner_message,
                   CASE NEW.status WHEN 'expired' THEN 'gave up: ' ELSE '' END
                   || coalesce(NEW.last_error, 'job ' || NEW.status))
         WHERE job_id = NEW.id AND state = 'queued';
    ELSIF NEW.status = 'pending' AND OLD.status NOT IN ('pending', 'running') THEN
        UPDATE ewp.decisions SET state = 'queued', partner_message = NULL
         WHERE job_id = NEW.id AND state IN ('failed', 'refused');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER decisions_job_ended
    AFTER UPDATE OF status ON ewp.jobs
    FOR EACH ROW
    WHEN (NEW.direction = 'out' AND NEW.kind = 'update' AND NEW.status IS DISTINCT FROM OLD.status)
    EXECUTE FUNCTION ewp.decisions_job_ended();
