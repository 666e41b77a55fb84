-- Deleting old rows of ewp.message_log sets ewp.partner_syncs.last_log_id
-- to NULL where it pointed at them (ON DELETE SET NULL): without an index
-- each deleted row scanned partner_syncs, one row per catalogue partner,
-- and the retention purge ran past the statement timeout.

CREATE INDEX partner_syncs_last_log ON ewp.partner_syncs (last_log_id)
    WHERE last_log_id IS NOT NULL;
