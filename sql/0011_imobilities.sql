-- Actual arrival and departure dates (IMobilities v2, ewp-notes 5.2 and
-- 6.2). The receiving HEI is their master:
--  - on our incoming mobilities (is_outgoing = false) staff enter them
--    (ewpctl mobility dates); every change queues an IMobility CNR to the
--    sending HEI, in the same transaction, and ewpd serves them through
--    its IMobilities v2 get;
--  - on our outgoing mobilities (is_outgoing = true) they are the
--    partner's: after its IMobility CNR ewpd fetches its IMobilities get
--    and stores them with smile.store_imobility_dates().

-- ---------------------------------------------------------------------------
-- The notification. IMobility CNR v2 takes omobility_id only (v1 also
-- had receiving_hei_id; 2.0.0 dropped it), so the form differs from the
-- one ewp.enqueue_cnr() writes (which names sending_hei_id): same job,
-- same merging, payload {"omobility_id": [id]}.
-- ---------------------------------------------------------------------------
CREATE FUNCTION ewp.enqueue_imobility_cnr(sending_hei text, omobility text)
    RETURNS void
    LANGUAGE sql
AS $$
    INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload)
    VALUES ('out', 'cnr', sending_hei, 'imobility-cnr', sending_hei || ' ' || omobility,
            jsonb_build_object('omobility_id', jsonb_build_array(omobility)))
    ON CONFLICT (direction, kind, hei_id, api, dedupe_key) WHERE status = 'pending'
    DO UPDATE SET payload = EXCLUDED.payload, expires_at = NULL
$$;

COMMENT ON FUNCTION ewp.enqueue_imobility_cnr(text, text) IS
    'Queues (or merges into a pending one) an IMobility CNR telling the sending HEI that our dates changed';

CREATE FUNCTION smile.mobility_dates_notify()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM ewp.enqueue_imobility_cnr(NEW.sending_hei_id, NEW.omobility_id);
    RETURN NULL;
END
$$;

-- Only incoming mobilities: on outgoing ones the dates are the partner's.
CREATE TRIGGER mobility_dates_changed
    AFTER UPDATE OF actual_arrival_date, actual_departure_date ON smile.mobility
    FOR EACH ROW
    WHEN (NOT NEW.is_outgoing
          AND (OLD.actual_arrival_date IS DISTINCT FROM NEW.actual_arrival_date
               OR OLD.actual_departure_date IS DISTINCT FROM NEW.actual_departure_date))
    EXECUTE FUNCTION smile.mobility_dates_notify();

CREATE TRIGGER mobility_dates_inserted
    AFTER INSERT ON smile.mobility
    FOR EACH ROW
    WHEN (NOT NEW.is_outgoing
          AND (NEW.actual_arrival_date IS NOT NULL OR NEW.actual_departure_date IS NOT NULL))
    EXECUTE FUNCTION smile.mobility_dates_notify();

-- ---------------------------------------------------------------------------
-- Storing what a partner's IMobilities v2 get returned.
-- ---------------------------------------------------------------------------

-- An xs:date as written in a document (surrounding white space, optional
-- time zone) as a date; NULL when absent or outside what PostgreSQL and
-- EWP mean by a date (negative or five-digit years).
CREATE FUNCTION smile.xs_date(t text)
    RETURNS date
    LANGUAGE plpgsql
    IMMUTABLE
AS $$
DECLARE
    v text := btrim(t, E' \t\r\n');
BEGIN
    IF v IS NULL OR v !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})?$' THEN
        RETURN NULL;
    END IF;
    RETURN to_date(left(v, 10), 'YYYY-MM-DD');
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- Stores the dates of an imobilities-get-response (already verified and
-- schema-checked by ewpd) on OUR outgoing mobilities, in one statement:
-- only the ids asked for (wanted), only rows we are the sending HEI of
-- (our_hei) whose receiving HEI is one the answering partner speaks for
-- (receiving_heis). One row per wanted id with what happened:
--   stored      the row has the partner's dates (changed or not)
--   absent      not in the answer (unknown to the partner, or hidden)
--   unknown     in the answer, but no such outgoing mobility of ours
--               with that receiving HEI: nothing written
--   duplicate   listed more than once in the answer: nothing written
--   bad-date    a date PostgreSQL cannot hold: nothing written
--   disordered  departure before arrival: nothing written
CREATE FUNCTION smile.store_imobility_dates(doc xml, our_hei text, receiving_heis text[],
                                            wanted text[])
    RETURNS TABLE (omobility_id text, outcome text)
    LANGUAGE sql
AS $$
    WITH x AS (
        SELECT t.id, t.arr_t, t.dep_t, smile.xs_date(t.arr_t) AS arr, smile.xs_date(t.dep_t) AS dep,
               count(*) OVER (PARTITION BY t.id) AS n
          FROM XMLTABLE(
                 XMLNAMESPACES('https://github.com/erasmus-without-paper/ewp-specs-api-imobilities/blob/stable-v2/endpoints/get-response.xsd' AS im),
                 '/im:imobilities-get-response/im:student-mobility' PASSING doc
                 COLUMNS id text PATH 'im:omobility-id',
                         arr_t text PATH 'im:actual-arrival-date',
                         dep_t text PATH 'im:actual-departure-date') AS t
         WHERE t.id = ANY (wanted)),
    judged AS (
        SELECT x.*, CASE
                      WHEN x.n > 1 THEN 'duplicate'
                      WHEN (x.arr_t IS NOT NULL AND x.arr IS NULL)
                           OR (x.dep_t IS NOT NULL AND x.dep IS NULL) THEN 'bad-date'
                      WHEN x.arr IS NOT NULL AND x.dep IS NOT NULL AND x.dep < x.arr THEN 'disordered'
                    END AS refused
          FROM x),
    u AS (
        UPDATE smile.mobility m
           SET actual_arrival_date = j.arr, actual_departure_date = j.dep
          FROM judged j
         WHERE j.refused IS NULL
           AND m.is_outgoing
           AND m.sending_hei_id = our_hei
           AND m.omobility_id = j.id
           AND m.receiving_hei_id = ANY (receiving_heis)
        RETURNING m.omobility_id::text AS id)
    SELECT w.id,
           coalesce((SELECT 'stored' FROM u WHERE u.id = w.id LIMIT 1),
                    (SELECT j.refused FROM judged j WHERE j.id = w.id AND j.refused IS NOT NULL LIMIT 1),
                    (SELECT 'unknown' FROM judged j WHERE j.id = w.id LIMIT 1),
                    'absent')
      FROM unnest(wanted) WITH ORDINALITY AS w (id, ord)
     ORDER BY w.ord
$$;

COMMENT ON FUNCTION smile.store_imobility_dates(xml, text, text[], text[]) IS
    'Stores a partner''s IMobilities v2 dates on our outgoing mobilities; one outcome per id asked for';
