-- A partner whose sync has never succeeded has no row in smile.etablissement,
-- yet its failures are exactly what an admin needs to see: ewp.partner_syncs
-- now records every partner of the catalogue, known to the core or not.
-- Its hei_id keeps the SCHAC id format (domain smile.hei_id).

ALTER TABLE ewp.partner_syncs DROP CONSTRAINT partner_syncs_hei_id_fkey;

COMMENT ON TABLE ewp.partner_syncs IS
    'Institutions / OUnits sync per partner HEI of the catalogue: last attempt, success, error';
COMMENT ON COLUMN ewp.partner_syncs.last_log_id IS
    'ewp.message_log row of the last exchange with the partner during its last sync';
