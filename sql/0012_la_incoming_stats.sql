-- Statistics of the learning agreements we received (we are the receiving
-- HEI: smile.mobility.is_outgoing = false, stored by sql/0009), served by
-- the stats endpoint of the OMobility LA CNR API v1.1
-- (gateway/api/api_omobility_la_cnr_stats.c) to the EWP Stats Portal.
-- The counts mirror those of our outgoing LAs (smile.la_outgoing, sql/0008)
-- seen from the other side. Applies on top of 0005 alone.
--
-- Where an incoming LA stands (smile.la_incoming.latest_state):
--   awaiting  its latest changes-proposal is current and we have taken no
--             decision on it that the sending HEI accepted
--   rejected  its latest changes-proposal was commented: state
--             'commented', or still current (the sending HEI keeps serving
--             a commented proposal until it makes a new one) with our
--             la-comment decision on it accepted
--   approved  an approved version is in place and no proposal waits or was
--             commented after it; or our la-approve decision on the latest
--             proposal was accepted and the re-fetch that turns it into
--             the first version / approved changes has not run yet
--   NULL      nothing to count: no approved version and no proposal (the
--             latest one was withdrawn, state 'superseded')
-- A queued, conflicting, refused or failed decision changes nothing: the
-- proposal still awaits a decision the sending HEI has.
-- some_version_approved: a first version ever existed (a first version is
-- a proposal the receiving HEI approved) or the latest state is approved.

CREATE VIEW smile.la_incoming AS
WITH base AS (
    SELECT la.id, m.id AS mobility_id, m.sending_hei_id, m.omobility_id, m.receiving_hei_id,
           m.receiving_academic_year_id, la.gone_at,
           EXISTS (SELECT 1 FROM smile.la_version v WHERE v.learning_agreement_id = la.id
                      AND v.kind = 'first-version') AS ever_first_version,
           EXISTS (SELECT 1 FROM smile.la_version v WHERE v.learning_agreement_id = la.id
                      AND v.kind IN ('first-version', 'approved-changes')
                      AND v.state = 'current') AS has_approved_version,
           lp.proposal_id AS latest_proposal_id, lp.state AS latest_proposal_state,
           ld.kind AS latest_decision
      FROM smile.learning_agreement la
      JOIN smile.mobility m ON m.id = la.mobility_id
      LEFT JOIN LATERAL (SELECT v.proposal_id, v.state FROM smile.la_version v
                          WHERE v.learning_agreement_id = la.id AND v.kind = 'changes-proposal'
                          ORDER BY v.id DESC LIMIT 1) lp ON true
      -- our decision on the latest proposal the sending HEI accepted
      LEFT JOIN LATERAL (SELECT d.kind FROM ewp.decisions d
                          WHERE d.mobility_id = m.id AND d.proposal_id = lp.proposal_id
                            AND d.state = 'accepted' AND d.kind IN ('la-approve', 'la-comment')
                          ORDER BY d.id DESC LIMIT 1) ld ON true
     WHERE NOT m.is_outgoing
), states AS (
    SELECT b.*,
           CASE
               WHEN b.latest_proposal_state = 'current' AND b.latest_decision = 'la-approve' THEN 'approved'
               WHEN b.latest_proposal_state = 'current' AND b.latest_decision = 'la-comment' THEN 'rejected'
               WHEN b.latest_proposal_state = 'current' THEN 'awaiting'
               WHEN b.latest_proposal_state = 'commented' THEN 'rejected'
               WHEN b.has_approved_version THEN 'approved'
           END AS latest_state
      FROM base b
)
SELECT s.id, s.mobility_id, s.sending_hei_id, s.omobility_id, s.receiving_hei_id,
       s.receiving_academic_year_id, s.gone_at, s.latest_proposal_id, s.latest_proposal_state,
       s.latest_decision, s.latest_state,
       s.latest_state IS NOT NULL AND (s.ever_first_version OR s.latest_state = 'approved')
           AS some_version_approved
  FROM states s;

COMMENT ON VIEW smile.la_incoming IS
    'Incoming learning agreements: where each stands for the receiving HEI (awaiting, rejected, approved)';

-- The rows of las-incoming-stats-response: per receiving academic year
-- (from p_from_year, 2021/2022 for the Stats Portal), the LAs of
-- mobilities received by p_hei still published by their sending HEI.
-- Invariants: approved + rejected + awaiting = total;
-- latest_approved <= some_approved <= total.
-- jit off: the per-LA lookups make the planner's cost estimate large
-- enough to compile the query, which took about 1 s of the 1.15 s for
-- 10,000 LAs; without it the count takes about 0.1 s.
CREATE FUNCTION smile.la_incoming_stats(p_hei text, p_from_year text DEFAULT '2021/2022')
    RETURNS TABLE (receiving_academic_year_id text, total bigint, some_version_approved bigint,
                   latest_approved bigint, latest_rejected bigint, latest_awaiting bigint)
    LANGUAGE sql STABLE
    SET jit = off
AS $$
    SELECT i.receiving_academic_year_id, count(*),
           count(*) FILTER (WHERE i.some_version_approved),
           count(*) FILTER (WHERE i.latest_state = 'approved'),
           count(*) FILTER (WHERE i.latest_state = 'rejected'),
           count(*) FILTER (WHERE i.latest_state = 'awaiting')
      FROM smile.la_incoming i
     WHERE i.receiving_hei_id = p_hei AND i.receiving_academic_year_id >= p_from_year
       AND i.gone_at IS NULL AND i.latest_state IS NOT NULL
     GROUP BY 1
     ORDER BY 1
$$;

COMMENT ON FUNCTION smile.la_incoming_stats(text, text) IS
    'OMobility LA CNR stats: counts of incoming learning agreements per receiving academic year';
