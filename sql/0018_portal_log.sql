-- 0018_portal_log.sql - what the portal's EWP log and failed-jobs pages
-- (gateway/portal/portal_log.c, portal_jobs.c) need from the database.
--
-- 1. The chain "partner's CNR received -> our re-fetch -> stored": a
--    re-fetch job names the notification by its X-Request-Id in
--    payload->>'cnr_request_id' (api_cnr.c). The exchange page looks the
--    jobs of one CNR up by it; without an index that was a scan of
--    ewp.jobs for every page view.
-- 2. The failed-jobs page lists the jobs that need a human: ended in
--    failure (rejected, failed-max-attempts, no-cnr-api), expired, or
--    pending after at least one failed attempt, most recently changed
--    first. A partial index keeps that list cheap however many successful
--    jobs pile up.
-- 3. ewp.job_retry: the retry of one job, for the portal. Its UPDATE of a
--    job that ended in failure is the one of `ewpctl jobs retry ID`
--    (gateway/ctl/ctl_jobs.c retry_sql, same states, same new delivery
--    window); a pending job waiting out its backoff is made due now, as
--    `ewpctl jobs retry --partner` does for every pending job of a
--    partner. Anything else raises, so the caller's transaction (and the
--    audit row queued in it) is rolled back:
--      P0002 no such job;
--      P0001 'not-retryable:<status>' or 'pending-duplicate:<job id>'
--      (another pending job for the same object will carry the change).
--    Returns the status the job had.

CREATE INDEX jobs_cnr_request_id ON ewp.jobs ((payload ->> 'cnr_request_id'))
    WHERE payload ? 'cnr_request_id';

CREATE INDEX jobs_trouble ON ewp.jobs (modified_at DESC)
    WHERE status IN ('rejected', 'failed-max-attempts', 'no-cnr-api', 'expired')
       OR (status = 'pending' AND attempts > 0);

CREATE FUNCTION ewp.job_retry(job bigint, window_secs integer)
    RETURNS text
    LANGUAGE plpgsql
AS $$
DECLARE
    was text;
    dup bigint;
BEGIN
    SELECT status INTO was FROM ewp.jobs WHERE id = job FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no-such-job:%', job USING ERRCODE = 'no_data_found';
    END IF;
    IF was IN ('failed-max-attempts', 'expired', 'rejected', 'no-cnr-api') THEN
        BEGIN
            UPDATE ewp.jobs SET status = 'pending', next_attempt_at = now(),
                   finished_at = NULL, merged_into = NULL,
                   expires_at = greatest(expires_at, now() + make_interval(secs => window_secs))
             WHERE id = job;
        EXCEPTION WHEN unique_violation THEN
            SELECT p.id INTO dup FROM ewp.jobs p, ewp.jobs j
             WHERE j.id = job AND p.status = 'pending' AND p.direction = j.direction
               AND p.kind = j.kind AND p.hei_id = j.hei_id AND p.api = j.api
               AND p.dedupe_key = j.dedupe_key AND p.id <> j.id;
            RAISE EXCEPTION 'pending-duplicate:%', coalesce(dup::text, '?')
                  USING ERRCODE = 'raise_exception';
        END;
    ELSIF was = 'pending' THEN
        UPDATE ewp.jobs SET next_attempt_at = now() WHERE id = job AND next_attempt_at > now();
    ELSE
        RAISE EXCEPTION 'not-retryable:%', was USING ERRCODE = 'raise_exception';
    END IF;
    RETURN was;
END
$$;

COMMENT ON FUNCTION ewp.job_retry(bigint, integer) IS
    'Portal retry of one job: a failed or expired job pending again and due now (as ewpctl jobs retry), a backing-off pending job due now; raises otherwise';
