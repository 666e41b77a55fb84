-- The components of one student's learning agreement, read by mobility
-- (the portal's student file), scanned every LA version in the database:
-- smile.la_version_components numbers the components with a window
-- partitioned by version and list, and PostgreSQL cannot push a condition
-- on mobility_id below a window whose partition does not include it. With
-- 10,000 mobilities that was ~60 ms for the view and as much again for
-- smile.la_version_ects built on it, per page (make bench, step 9).
--
-- mobility_id is the same for every row of a version, so partitioning by
-- (mobility_id, version, list) numbers exactly as before; it only lets the
-- condition through. The view is rewritten from its own definition, with
-- that one change, rather than copied here: the migration stops if the
-- definition does not read as expected.
DO $$
DECLARE
    def text := pg_get_viewdef('smile.la_version_components'::regclass);
    was constant text := 'PARTITION BY v.id, c.list_element';
BEGIN
    IF position(was IN def) = 0 THEN
        RAISE EXCEPTION 'smile.la_version_components: "%" not found in its definition', was;
    END IF;
    EXECUTE 'CREATE OR REPLACE VIEW smile.la_version_components AS '
            || replace(def, was, 'PARTITION BY a.mobility_id, v.id, c.list_element');
END
$$;
