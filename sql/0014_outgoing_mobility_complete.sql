-- Our outgoing mobilities are served by OMobilities v3 from the columns of
-- smile.mobility (smile.omobility_xml), and the v3 schema requires every
-- one of these: a row without one would make each get that includes it
-- invalid for the partner. `ewpctl mobility nominate` checks them already;
-- this makes it a rule of the table, whoever writes the row.
ALTER TABLE smile.mobility ADD CONSTRAINT mobility_outgoing_complete CHECK (
    NOT is_outgoing OR (
        birth_date IS NOT NULL AND nationality IS NOT NULL AND gender IS NOT NULL
        AND email IS NOT NULL AND agreement_isced IS NOT NULL AND nominee_isced IS NOT NULL
        AND eqf_level IS NOT NULL));
