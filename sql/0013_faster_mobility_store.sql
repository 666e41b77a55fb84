-- Less PostgreSQL CPU per nomination stored and served (bench step 8,
-- `bench/mobility-bench.mjs --profile`). Same results, cheaper ways:
--
--  * smile.omobility_xml() (sql/0006) and ewp.omobility_pick_name()
--    (sql/0007) were LANGUAGE sql functions that PostgreSQL cannot inline
--    (a CTE, a LIMIT): every call parsed and planned their query again.
--    As plpgsql functions the plan of their one query is cached for the
--    session. The query is the same.
--  * smile.set_modified_at_xml() (sql/0007): when the row was already
--    written in this transaction (OLD.modified_at = now()) the outcome is
--    now() whatever the comparison says, so the comparison of both rows
--    as jsonb (the XML document included) is skipped. This is the
--    `UPDATE smile.mobility SET inscription_id` of ewp.omobility_store(),
--    right after the row's INSERT.
--  * ewp.omobility_store() (sql/0007): the home HEI is looked up before it
--    is inserted; the INSERT ... ON CONFLICT DO NOTHING (which checks the
--    names and takes a speculative insertion each time) runs only when the
--    core does not know the HEI yet. The registration of a new mobility
--    (ewp.omobility_register(), the same statements) is made before the
--    mobility's row, which is then inserted with its inscription_id rather
--    than inserted and updated. Otherwise the function is unchanged.

-- ---------------------------------------------------------------------------
-- modified_at on tables with an xml column (smile.mobility,
-- smile.learning_agreement): as in sql/0007, plus the shortcut above.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION smile.set_modified_at_xml()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.modified_at := now();
    ELSIF NEW.modified_at IS DISTINCT FROM OLD.modified_at THEN
        NEW.modified_at := now();
    ELSIF OLD.modified_at = now() THEN
        -- written earlier in this transaction: now() either way
        NEW.modified_at := now();
    ELSIF to_jsonb(NEW) - 'fetched_at' IS DISTINCT FROM to_jsonb(OLD) - 'fetched_at' THEN
        NEW.modified_at := now();
    END IF;
    RETURN NEW;
END
$$;

-- ---------------------------------------------------------------------------
-- The XML we serve of one of our mobilities: the query of sql/0006, cached.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION smile.omobility_xml(m smile.mobility)
    RETURNS xml
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (
        WITH ns (uri) AS (VALUES (
            'https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/endpoints/get-response.xsd')),
        doc AS (
            SELECT xpath('/m:student-mobility/m:student/m:given-names', m.document, ARRAY[ARRAY['m', ns.uri]]) AS given,
                   xpath('/m:student-mobility/m:student/m:family-name', m.document, ARRAY[ARRAY['m', ns.uri]]) AS family,
                   (SELECT g FROM XMLTABLE(XMLNAMESPACES(
                       'https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/endpoints/get-response.xsd' AS m),
                       '/m:student-mobility/m:student' PASSING m.document
                       COLUMNS g text PATH 'm:given-names[1]', f text PATH 'm:family-name[1]') x
                     WHERE btrim(x.g) = m.given_names AND btrim(x.f) = m.family_name) AS matches
            FROM ns)
        SELECT XMLELEMENT(NAME "student-mobility", XMLATTRIBUTES(ns.uri AS xmlns),
            XMLELEMENT(NAME "omobility-id", m.omobility_id),
            XMLELEMENT(NAME student,
                CASE WHEN doc.matches IS NOT NULL
                     THEN (SELECT xmlagg(x ORDER BY o) FROM unnest(doc.given) WITH ORDINALITY AS u (x, o))
                     ELSE XMLELEMENT(NAME "given-names", m.given_names) END,
                CASE WHEN doc.matches IS NOT NULL
                     THEN (SELECT xmlagg(x ORDER BY o) FROM unnest(doc.family) WITH ORDINALITY AS u (x, o))
                     ELSE XMLELEMENT(NAME "family-name", m.family_name) END,
                XMLELEMENT(NAME "global-id", m.global_id),
                XMLFOREST(m.birth_date AS "birth-date", m.nationality AS nationality,
                          m.gender AS gender, m.email AS email)),
            XMLELEMENT(NAME nomination, XMLATTRIBUTES(m.proposal_id AS "proposal-id"),
                XMLELEMENT(NAME "sending-hei", XMLELEMENT(NAME "hei-id", m.sending_hei_id),
                           XMLFOREST(m.sending_ounit_id AS "ounit-id", m.sending_iia_id AS "iia-id")),
                XMLELEMENT(NAME "receiving-hei", XMLELEMENT(NAME "hei-id", m.receiving_hei_id),
                           XMLFOREST(m.receiving_ounit_id AS "ounit-id", m.receiving_iia_id AS "iia-id")),
                CASE WHEN m.sending_term_id IS NULL
                     THEN XMLELEMENT(NAME "non-standard-mobility-period")
                     ELSE XMLELEMENT(NAME "sending-academic-term-ewp-id", m.sending_term_id) END,
                XMLELEMENT(NAME "receiving-academic-year-id", m.receiving_academic_year_id),
                XMLELEMENT(NAME "activity-type", m.activity_type),
                XMLELEMENT(NAME "activity-attributes", m.activity_attributes),
                XMLFOREST(m.agreement_isced AS "agreement-isced-f-code",
                          m.eqf_level AS "eqf-level-studied-at-departure",
                          m.nominee_isced AS "nominee-isced-f-code",
                          m.comment AS comment)),
            XMLELEMENT(NAME status, m.status))
        FROM ns, doc
    );
END
$$;

-- ---------------------------------------------------------------------------
-- One name of a multilingual list: the query of sql/0007, cached.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION ewp.omobility_pick_name(parent xml, element text)
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RETURN (
        SELECT btrim(n.v)
          FROM XMLTABLE(
                   XMLNAMESPACES('https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/endpoints/get-response.xsd' AS g),
                   '/g:student-mobility/g:student/*' PASSING parent
                   COLUMNS ord FOR ORDINALITY,
                           local text PATH 'local-name()',
                           v text PATH '.',
                           lang text PATH '@xml:lang') AS n
         WHERE n.local = element AND btrim(coalesce(n.v, '')) <> ''
         ORDER BY CASE WHEN n.lang IS NULL OR n.lang = '' THEN 0
                       WHEN n.lang ~* '-latn(-|$)' THEN 1
                       WHEN n.lang !~ '^[A-Za-z]{2,8}-[A-Za-z]{4}(-|$)' THEN 2
                       ELSE 3 END,
                  n.ord
         LIMIT 1
    );
END
$$;

-- ---------------------------------------------------------------------------
-- The incoming registration of a partner's nomination: the statements
-- ewp.omobility_store() ran in sql/0007 after the mobility's upsert, moved
-- here unchanged; returns the registration's id. ewp.omobility_store()
-- now calls it before inserting a mobility it does not hold yet, so that
-- the row is written once, with its inscription_id, instead of inserted
-- and then updated (an UPDATE of every index of smile.mobility).
-- ---------------------------------------------------------------------------
CREATE FUNCTION ewp.omobility_register(partner text, partner_name text, p_sending_hei text,
                                       p_receiving_ounit text, p_status text, omobility text,
                                       given text, family text, birth date, v_esi text,
                                       v_mail text, v_year smallint)
    RETURNS bigint
    LANGUAGE plpgsql
AS $$
DECLARE
    home_id bigint;
    step bigint;
    v_unit bigint;
    insc bigint;
BEGIN
    -- the home HEI; a minimal row when the core does not know it yet
    -- (ON CONFLICT: another fetch of the same partner may create it
    -- at the same time)
    SELECT id INTO home_id FROM smile.etablissement WHERE schac_id = p_sending_hei;
    IF home_id IS NULL THEN
        INSERT INTO smile.etablissement (schac_id, names)
        VALUES (p_sending_hei, jsonb_build_array(jsonb_build_object(
                    'name', coalesce(CASE WHEN p_sending_hei = partner THEN nullif(btrim(partner_name), '') END,
                                     p_sending_hei))))
        ON CONFLICT (schac_id) DO NOTHING;
        SELECT id INTO home_id FROM smile.etablissement WHERE schac_id = p_sending_hei;
    END IF;
    SELECT id INTO step FROM smile.step WHERE active ORDER BY position LIMIT 1;
    IF step IS NULL THEN
        RAISE EXCEPTION 'no active workflow step (smile.step): cannot register the incoming student'
              USING ERRCODE = 'EW002';
    END IF;
    SELECT c.id INTO v_unit
      FROM smile.composante c JOIN smile.etablissement e ON e.id = c.etablissement_id
     WHERE e.is_local AND c.ounit_id = p_receiving_ounit;
    INSERT INTO smile.inscription AS i (
        esi, given_names, family_name, birth_date, email, home_etablissement_id,
        step_id, status, academic_year, composante_id, omobility_id)
    VALUES (
        v_esi, given, family, CASE WHEN birth >= DATE '1900-01-01' THEN birth END, v_mail, home_id,
        step, CASE WHEN p_status = 'cancelled' THEN 3 ELSE 1 END, v_year, v_unit, omobility)
    ON CONFLICT ON CONSTRAINT inscription_omobility_unique DO UPDATE SET
        esi = EXCLUDED.esi, given_names = EXCLUDED.given_names, family_name = EXCLUDED.family_name,
        birth_date = EXCLUDED.birth_date, email = EXCLUDED.email
    RETURNING i.id INTO insc;
    RETURN insc;
END
$$;

COMMENT ON FUNCTION ewp.omobility_register(text, text, text, text, text, text, text, text, date, text, text, smallint) IS
    'The incoming registration (smile.inscription) of a partner''s nomination, for ewp.omobility_store()';

-- ---------------------------------------------------------------------------
-- ewp.omobility_store(): as in sql/0007, the registration of a new mobility
-- made before its row (ewp.omobility_register()).
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION ewp.omobility_store(partner text, omobility text, allowed_heis text[], doc xml,
                                               partner_name text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql
AS $$
DECLARE
    r record;
    local_hei text;
    given text;
    family text;
    birth date;
    v_esi text;
    v_mail text;
    v_year smallint;
    home_id bigint;
    step bigint;
    mob record;
    old_status text;
    insc bigint;
    v_unit bigint;
BEGIN
    SELECT m.* INTO r
      FROM XMLTABLE(
               XMLNAMESPACES('https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/endpoints/get-response.xsd' AS g),
               '/g:omobilities-get-response/g:student-mobility' PASSING doc
               COLUMNS ord FOR ORDINALITY,
                       omobility_id text PATH 'g:omobility-id',
                       global_id text PATH 'g:student/g:global-id',
                       birth_date text PATH 'g:student/g:birth-date',
                       nationality text PATH 'g:student/g:nationality',
                       gender text PATH 'g:student/g:gender',
                       email text PATH 'g:student/g:email',
                       proposal_id text PATH 'g:nomination/@proposal-id',
                       sending_hei text PATH 'g:nomination/g:sending-hei/g:hei-id',
                       sending_ounit text PATH 'g:nomination/g:sending-hei/g:ounit-id',
                       sending_iia text PATH 'g:nomination/g:sending-hei/g:iia-id',
                       receiving_hei text PATH 'g:nomination/g:receiving-hei/g:hei-id',
                       receiving_ounit text PATH 'g:nomination/g:receiving-hei/g:ounit-id',
                       receiving_iia text PATH 'g:nomination/g:receiving-hei/g:iia-id',
                       term text PATH 'g:nomination/g:sending-academic-term-ewp-id',
                       year_id text PATH 'g:nomination/g:receiving-academic-year-id',
                       activity_type text PATH 'g:nomination/g:activity-type',
                       activity_attributes text PATH 'g:nomination/g:activity-attributes',
                       agreement_isced text PATH 'g:nomination/g:agreement-isced-f-code',
                       eqf text PATH 'g:nomination/g:eqf-level-studied-at-departure',
                       nominee_isced text PATH 'g:nomination/g:nominee-isced-f-code',
                       comment text PATH 'g:nomination/g:comment',
                       status text PATH 'g:status',
                       element xml PATH '.') AS m
     WHERE m.omobility_id = omobility
     ORDER BY m.ord
     LIMIT 1;

    IF NOT FOUND THEN
        UPDATE smile.mobility
           SET gone_at = coalesce(gone_at, now()), fetched_at = now()
         WHERE sending_hei_id = ANY (allowed_heis) AND omobility_id = omobility AND NOT is_outgoing;
        RETURN CASE WHEN FOUND THEN 'gone' ELSE 'absent' END;
    END IF;

    -- who sent it: the partner we asked (hei-id is an xs:string: trimmed)
    r.sending_hei := lower(btrim(r.sending_hei));
    r.receiving_hei := lower(btrim(r.receiving_hei));
    IF NOT r.sending_hei = ANY (allowed_heis) THEN
        RAISE EXCEPTION 'the mobility names sending HEI "%", not the partner that served it (%)',
                        left(r.sending_hei, 100), array_to_string(allowed_heis, ', ')
              USING ERRCODE = 'EW001';
    END IF;
    IF r.sending_hei IN ('validator-hei01.developers.erasmuswithoutpaper.eu',
                         'validator-hei02.developers.erasmuswithoutpaper.eu') THEN
        RAISE EXCEPTION 'validator HEI %: its data never reaches the SMILE core', r.sending_hei
              USING ERRCODE = 'EW001';
    END IF;

    SELECT schac_id INTO local_hei FROM smile.etablissement WHERE is_local;
    IF local_hei IS NULL THEN
        RAISE EXCEPTION 'no local institution (is_local) in smile.etablissement: cannot tell our nominations'
              USING ERRCODE = 'EW002';
    END IF;
    IF r.receiving_hei IS DISTINCT FROM local_hei THEN
        RETURN 'not-ours';
    END IF;

    -- what the core can hold
    given := ewp.omobility_pick_name(r.element, 'given-names');
    family := ewp.omobility_pick_name(r.element, 'family-name');
    r.global_id := btrim(r.global_id);
    IF given IS NULL OR family IS NULL THEN
        RAISE EXCEPTION 'the student''s % is blank', CASE WHEN given IS NULL THEN 'given-names' ELSE 'family-name' END
              USING ERRCODE = 'EW001';
    END IF;
    IF length(r.global_id) NOT BETWEEN 1 AND 255 THEN
        RAISE EXCEPTION 'the student''s global-id is empty or longer than 255 characters' USING ERRCODE = 'EW001';
    END IF;
    IF length(r.proposal_id) NOT BETWEEN 1 AND 255 THEN
        RAISE EXCEPTION 'the nomination''s proposal-id is empty or longer than 255 characters' USING ERRCODE = 'EW001';
    END IF;
    -- xs:date may carry a time zone ("2001-02-03Z", "+01:00"): the day is kept
    birth := substring(btrim(r.birth_date) FROM '^[0-9]{4}-[0-9]{2}-[0-9]{2}')::date;
    v_year := substring(r.year_id FROM 1 FOR 4)::smallint;
    IF v_year NOT BETWEEN 2000 AND 2100 THEN
        RAISE EXCEPTION 'receiving-academic-year-id % is outside 2000-2100', r.year_id USING ERRCODE = 'EW001';
    END IF;
    r.email := btrim(r.email);
    IF length(r.email) > 254 THEN
        r.email := NULL;
    END IF;
    -- the registration keeps an ESI only in its URN form, an e-mail only
    -- when the core's (stricter) format accepts it
    v_esi := CASE WHEN r.global_id ~* '^urn:schac:personalUniqueCode:[a-z]{2,3}:[!-~]+$' THEN r.global_id END;
    v_mail := CASE WHEN r.email ~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$' THEN r.email END;

    SELECT id, status, inscription_id INTO mob
      FROM smile.mobility
     WHERE sending_hei_id = r.sending_hei AND omobility_id = omobility
       FOR UPDATE;
    IF FOUND AND mob.id IS NOT NULL THEN
        old_status := mob.status;
    ELSE
        -- a new mobility: its registration first, the row is then
        -- inserted with its inscription_id
        insc := ewp.omobility_register(partner, partner_name, r.sending_hei, r.receiving_ounit, r.status,
                                       omobility, given, family, birth, v_esi, v_mail, v_year);
    END IF;

    INSERT INTO smile.mobility AS m (
        sending_hei_id, omobility_id, receiving_hei_id, is_outgoing,
        given_names, family_name, global_id, birth_date, nationality, gender, email,
        sending_ounit_id, receiving_ounit_id, sending_iia_id, receiving_iia_id,
        sending_term_id, receiving_academic_year_id, activity_type, activity_attributes,
        agreement_isced, nominee_isced, eqf_level, comment, proposal_id, status,
        document, gone_at, fetched_at, inscription_id)
    VALUES (
        r.sending_hei, omobility, r.receiving_hei, false,
        given, family, r.global_id, birth, r.nationality, btrim(r.gender)::smallint, r.email,
        r.sending_ounit, r.receiving_ounit, r.sending_iia, r.receiving_iia,
        r.term, r.year_id, r.activity_type, r.activity_attributes,
        r.agreement_isced, r.nominee_isced, btrim(r.eqf)::smallint, r.comment, r.proposal_id, r.status,
        r.element, NULL, now(), insc)
    ON CONFLICT ON CONSTRAINT mobility_unique DO UPDATE SET
        receiving_hei_id = EXCLUDED.receiving_hei_id,
        given_names = EXCLUDED.given_names, family_name = EXCLUDED.family_name,
        global_id = EXCLUDED.global_id, birth_date = EXCLUDED.birth_date,
        nationality = EXCLUDED.nationality, gender = EXCLUDED.gender, email = EXCLUDED.email,
        sending_ounit_id = EXCLUDED.sending_ounit_id, receiving_ounit_id = EXCLUDED.receiving_ounit_id,
        sending_iia_id = EXCLUDED.sending_iia_id, receiving_iia_id = EXCLUDED.receiving_iia_id,
        sending_term_id = EXCLUDED.sending_term_id,
        receiving_academic_year_id = EXCLUDED.receiving_academic_year_id,
        activity_type = EXCLUDED.activity_type, activity_attributes = EXCLUDED.activity_attributes,
        agreement_isced = EXCLUDED.agreement_isced, nominee_isced = EXCLUDED.nominee_isced,
        eqf_level = EXCLUDED.eqf_level, comment = EXCLUDED.comment,
        proposal_id = EXCLUDED.proposal_id, status = EXCLUDED.status,
        document = EXCLUDED.document, gone_at = NULL, fetched_at = EXCLUDED.fetched_at
     WHERE NOT m.is_outgoing
    RETURNING m.id, m.inscription_id, m.modified_at = now() AS changed, (xmax = 0) AS inserted
    INTO mob;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mobility % of % is one of ours (is_outgoing): a partner cannot overwrite it',
                        omobility, r.sending_hei USING ERRCODE = 'EW001';
    END IF;

    IF mob.inscription_id IS NULL THEN
        -- a mobility stored before without its registration (or one
        -- inserted by another fetch since the look-up above)
        IF insc IS NULL THEN
            insc := ewp.omobility_register(partner, partner_name, r.sending_hei, r.receiving_ounit, r.status,
                                           omobility, given, family, birth, v_esi, v_mail, v_year);
        END IF;
        UPDATE smile.mobility SET inscription_id = insc WHERE id = mob.id;
    ELSIF NOT mob.inserted THEN
        -- the student may change (a name, an e-mail); the workflow never
        -- moves back; a cancellation is an abandon, undone if the sending
        -- HEI takes it back
        UPDATE smile.inscription i
           SET esi = v_esi, given_names = given, family_name = family,
               birth_date = CASE WHEN birth >= DATE '1900-01-01' THEN birth END, email = v_mail,
               status = CASE WHEN r.status = 'cancelled' THEN 3
                             WHEN old_status = 'cancelled' AND i.status = 3 THEN 1
                             ELSE i.status END
         WHERE i.id = mob.inscription_id;
    END IF;

    RETURN CASE WHEN mob.inserted THEN 'created' WHEN mob.changed THEN 'updated' ELSE 'unchanged' END;
END
$$;

