-- tests/sql/schema_test.sql - checks of sql/0001_smile_core.sql and
-- sql/0002_gateway_state.sql against a database both were applied to:
--
--   psql -X -v ON_ERROR_STOP=1 --single-transaction -f tests/sql/schema_test.sql
--
-- (as the owner of the schemas: the modified_at test disables a trigger
-- for one statement). Valid data is inserted with plain statements, which
-- must succeed; every rule is then broken once through
-- pg_temp.expect_error(what, condition, statement), which runs the
-- statement in a subtransaction (a DO-style BEGIN ... EXCEPTION block) and
-- fails the run unless it raises exactly that condition, and
-- pg_temp.expect(what, query) asserts that a query yields true. The last statement
-- prints the number of assertions passed. Any failure stops psql with
-- "FAIL <what>: ..." and a non-zero exit status.
--
-- The file writes test rows; run it against a throwaway database.

SET client_min_messages = warning;

CREATE TEMP TABLE results (n serial, what text NOT NULL);

CREATE PROCEDURE pg_temp.expect(what text, query text)
    LANGUAGE plpgsql
AS $$
DECLARE
    ok boolean;
BEGIN
    EXECUTE query INTO ok;
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'FAIL %: % is %', what, query, coalesce(ok::text, 'null');
    END IF;
    INSERT INTO pg_temp.results (what) VALUES (what);
END
$$;

CREATE PROCEDURE pg_temp.expect_error(what text, cond text, stmt text)
    LANGUAGE plpgsql
AS $$
DECLARE
    want text := CASE cond
        WHEN 'check_violation' THEN '23514'
        WHEN 'unique_violation' THEN '23505'
        WHEN 'foreign_key_violation' THEN '23503'
        WHEN 'not_null_violation' THEN '23502'
        WHEN 'integrity_constraint_violation' THEN '23000'
        ELSE NULL END;
    got text;
    msg text;
BEGIN
    IF want IS NULL THEN
        RAISE EXCEPTION 'expect_error: unknown condition %', cond;
    END IF;
    BEGIN
        EXECUTE stmt;
        -- accepted: undo it with the subtransaction and say so below
        RAISE EXCEPTION USING ERRCODE = 'ZX001', MESSAGE = 'accepted';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS got = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    END;
    IF got = 'ZX001' THEN
        RAISE EXCEPTION 'FAIL %: accepted: %', what, stmt;
    ELSIF got <> want THEN
        RAISE EXCEPTION 'FAIL %: expected % (%), got % (%)', what, cond, want, got, msg;
    END IF;
    INSERT INTO pg_temp.results (what) VALUES (what);
END
$$;

-- ===========================================================================
-- Seeds
-- ===========================================================================
CALL pg_temp.expect('seed: the seven SMILE roles',
    $q$SELECT (SELECT array_agg(label ORDER BY label) FROM smile.role) =
    ARRAY['Administrateur fonctionnel', 'Administrateur technique', 'Etudiant',
          'Gestionnaire', 'Invité', 'Référent', 'Standard']$q$);
CALL pg_temp.expect('seed: role inheritance as in SMILE (technique > fonctionnel > gestionnaire > standard)',
    $q$SELECT (SELECT p3.code FROM smile.role r
       JOIN smile.role p1 ON p1.id = r.parent_id
       JOIN smile.role p2 ON p2.id = p1.parent_id
       JOIN smile.role p3 ON p3.id = p2.parent_id
      WHERE r.code = 'administrateur') = 'Standard'$q$);
CALL pg_temp.expect('seed: only Standard is the default role, only Gestionnaire is scopable',
    $q$SELECT (SELECT string_agg(code, ',') FROM smile.role WHERE is_default) = 'Standard'
    AND (SELECT string_agg(code, ',') FROM smile.role WHERE scopable) = 'gestionnaire'$q$);
CALL pg_temp.expect('seed: home-institution approval step between host and student approvals',
    $q$SELECT (SELECT array_agg(code ORDER BY position) FROM smile.step WHERE position BETWEEN 5 AND 7)
        = ARRAY['approval_host', 'approval_base', 'approval_student']
    AND (SELECT r.label FROM smile.step s JOIN smile.role r ON r.id = s.role_id
          WHERE s.code = 'approval_base') = 'Gestionnaire'
    AND (SELECT need_validation AND active FROM smile.step WHERE code = 'approval_base')$q$);
CALL pg_temp.expect('seed: eight steps at positions 1..8, pre-registration first, contract last',
    $q$SELECT (SELECT count(*) = 8 AND min(position) = 1 AND max(position) = 8 FROM smile.step)
    AND (SELECT code FROM smile.step WHERE position = 1) = 'pre-registration'
    AND (SELECT code FROM smile.step WHERE position = 8) = 'contract'$q$);
CALL pg_temp.expect('seed: registration statuses 1..4 as in SMILE',
    $q$SELECT (SELECT array_agg(label ORDER BY status) FROM smile.inscription_status)
        = ARRAY['Nomination', 'Inscrit', 'Abandon', 'Terminé']$q$);
CALL pg_temp.expect('seed: SMILE mobility programmes',
    $q$SELECT (SELECT count(*) FROM smile.mobilite WHERE label IN ('Erasmus', 'Ecoles d''été | Summer Schools')) = 2$q$);

-- ===========================================================================
-- Valid data: all of these must be accepted
-- ===========================================================================
INSERT INTO smile.etablissement (schac_id, erasmus_code, pic, oid, names, abbreviation, country,
                                 website_url, logo_url, is_local)
VALUES ('unicaen.fr', 'F  CAEN01', '999888777', 'E10208999',
        '[{"lang": "fr", "name": "Université de Caen Normandie"},
          {"lang": "en", "name": "University of Caen Normandy"}]',
        'UNICAEN', 'FR', 'https://www.unicaen.fr/', 'https://www.unicaen.fr/logo.png', true);
-- a partner known to SMILE only by Erasmus code (irregular spacing as in SMILE's seed)
INSERT INTO smile.etablissement (erasmus_code, pic, names, country)
VALUES ('I   PAVIA02', '999111222', '[{"name": "UNIVERSITA DEGLI STUDI DI PAVIA"}]', 'IT');
-- a partner from the catalogue, with a validator-style long SCHAC id
INSERT INTO smile.etablissement (schac_id, names)
VALUES ('validator-hei01.developers.erasmuswithoutpaper.eu', '[{"lang": "en", "name": "Validator 1"}]');
INSERT INTO smile.etablissement (schac_id, erasmus_code, names, country)
VALUES ('uw.edu.pl', 'PL WARSZAW01', '[{"lang": "pl", "name": "Uniwersytet Warszawski"}]', 'PL');

INSERT INTO smile.address (etablissement_id, kind, building_number, street_name, postal_code, locality, country)
SELECT id, 'street', '3', 'Esplanade de la Paix', '14032', 'Caen', 'FR'
  FROM smile.etablissement WHERE schac_id = 'unicaen.fr';
INSERT INTO smile.address (etablissement_id, kind, lines, country)
SELECT id, 'mailing', ARRAY['Direction des relations internationales', 'CS 14032', '14032 Caen cedex 5'], 'FR'
  FROM smile.etablissement WHERE schac_id = 'unicaen.fr';
INSERT INTO smile.contact (etablissement_id, names, emails, phones, role_descriptions)
SELECT id, '[{"name": "International office"}]', ARRAY['international@unicaen.fr']::smile.email[],
       ARRAY['+33231565500']::smile.phone[], '[{"lang": "en", "name": "Incoming students"}]'
  FROM smile.etablissement WHERE schac_id = 'unicaen.fr';

INSERT INTO smile.composante (etablissement_id, code, names, abbreviation, ounit_id)
SELECT id, 'UFR-SCI', '[{"lang": "fr", "name": "UFR des Sciences"}]', 'SCI', 'ounit-sci'
  FROM smile.etablissement WHERE schac_id = 'unicaen.fr';
INSERT INTO smile.composante (etablissement_id, code, names, parent_id)
SELECT e.id, 'DEP-INFO', '[{"lang": "fr", "name": "Département d''informatique"}]', c.id
  FROM smile.etablissement e JOIN smile.composante c ON c.etablissement_id = e.id AND c.code = 'UFR-SCI'
 WHERE e.schac_id = 'unicaen.fr';
INSERT INTO smile.composante (etablissement_id, code, names, source, ounit_id)
SELECT id, 'WMIM', '[{"lang": "pl", "name": "Wydział Matematyki"}]', 'ewp', '{3F2504E0-4F89}'
  FROM smile.etablissement WHERE schac_id = 'uw.edu.pl';

INSERT INTO smile.formation (code, title, composante_id, study_level, language)
SELECT 'L3-INFO', 'Licence 3 Informatique', id, 6, 'fr' FROM smile.composante WHERE code = 'DEP-INFO';
INSERT INTO smile.cours (code, title, language, s1, s2, ects, hours, open_to_mobility, formation_id)
SELECT 'INF101', 'Algorithmique', 'fr', true, false, 6, 48, true, id FROM smile.formation WHERE code = 'L3-INFO';
INSERT INTO smile.cours (code, title, language, s2, ects, hours, formation_id)
SELECT 'INF 102', 'Databases', 'en-GB', true, 2.5, 24.5, id FROM smile.formation WHERE code = 'L3-INFO';
INSERT INTO smile.cours (code, title, ects) VALUES ('FLE01', 'Français langue étrangère', 0);
INSERT INTO smile.mobilite_formation (mobilite_id, formation_id)
SELECT m.id, f.id FROM smile.mobilite m, smile.formation f WHERE m.label = 'Erasmus' AND f.code = 'L3-INFO';
INSERT INTO smile.mobilite_cours (mobilite_id, cours_id)
SELECT m.id, c.id FROM smile.mobilite m, smile.cours c WHERE m.label = 'Erasmus' AND c.code = 'INF101';

INSERT INTO smile.utilisateur (username, email, display_name)
VALUES ('gest1@unicaen.fr', 'gest1@unicaen.fr', 'Gestionnaire Sciences'),
       ('etu1@uw.edu.pl', 'jan.kowalski@student.uw.edu.pl', 'Jan Kowalski');
INSERT INTO smile.utilisateur_role (utilisateur_id, role_id)
SELECT u.id, r.id FROM smile.utilisateur u, smile.role r
 WHERE (u.username, r.code) IN (('gest1@unicaen.fr', 'gestionnaire'), ('etu1@uw.edu.pl', 'Etudiant'));
-- the gestionnaire manages the UFR des Sciences only
INSERT INTO smile.utilisateur_composante (utilisateur_id, role_id, composante_id)
SELECT u.id, r.id, c.id FROM smile.utilisateur u, smile.role r, smile.composante c
 WHERE u.username = 'gest1@unicaen.fr' AND r.code = 'gestionnaire' AND c.code = 'UFR-SCI';

INSERT INTO smile.inscription (esi, given_names, family_name, birth_date, email, home_etablissement_id,
                               referent_email, step_id, academic_year, arrival_month, utilisateur_id,
                               composante_id, mobilite_id, omobility_id)
SELECT 'urn:schac:personalUniqueCode:int:esi:pl:123456', 'Jan', 'Kowalski', DATE '2003-04-05',
       'jan.kowalski@student.uw.edu.pl', e.id, 'prof.nowak@uw.edu.pl', s.id, 2025, 9, u.id, c.id, m.id,
       'omob-0001'
  FROM smile.etablissement e, smile.step s, smile.utilisateur u, smile.composante c, smile.mobilite m
 WHERE e.schac_id = 'uw.edu.pl' AND s.code = 'pre-registration' AND u.username = 'etu1@uw.edu.pl'
   AND c.code = 'UFR-SCI' AND m.label = 'Erasmus';
-- a CSV nomination: no ESI, no account yet, Erasmus-code-only home HEI
INSERT INTO smile.inscription (given_names, family_name, email, home_etablissement_id, step_id, academic_year)
SELECT 'Giulia', 'Rossi', 'giulia.rossi@universitadipavia.it', e.id, s.id, 2025
  FROM smile.etablissement e, smile.step s
 WHERE e.erasmus_code = 'I   PAVIA02' AND s.code = 'pre-registration';
INSERT INTO smile.stepmessage (inscription_id, step_id, type, comment, validator_id)
SELECT i.id, s.id, 'validated', 'OK', u.id
  FROM smile.inscription i, smile.step s, smile.utilisateur u
 WHERE i.omobility_id = 'omob-0001' AND s.code = 'pre-registration' AND u.username = 'gest1@unicaen.fr';
UPDATE smile.inscription SET step_id = (SELECT id FROM smile.step WHERE code = 'registered'), status = 2
 WHERE omobility_id = 'omob-0001';

-- gateway state
INSERT INTO ewp.registry_snapshots (url, body, sha256, etag, last_modified, valid, hei_count)
VALUES ('https://registry.erasmuswithoutpaper.eu/catalogue-v1.xml', '<catalogue/>'::bytea,
        encode(sha256('<catalogue/>'::bytea), 'hex'), '"abc"', 'Tue, 04 Nov 2025 10:00:00 GMT', true, 0);
INSERT INTO ewp.registry_snapshots (url, body, sha256, valid, validation_error)
VALUES ('https://registry.erasmuswithoutpaper.eu/catalogue-v1.xml', '<catalog'::bytea,
        encode(sha256('<catalog'::bytea), 'hex'), false, 'premature end of data');
-- a 304 moves the check time of the current copy
UPDATE ewp.registry_snapshots SET last_checked_at = now(), etag = '"abd"' WHERE valid;

INSERT INTO ewp.keys (keyid, role, file_name, public_key, bits, published, published_at, in_use, in_use_since)
VALUES (encode(sha256('\x3082010a01'::bytea), 'hex'), 'client', 'client.pem', '\x3082010a01', 2048,
        true, now(), true, now()),
       (encode(sha256('\x3082010a02'::bytea), 'hex'), 'client', 'client-2026.pem', '\x3082010a02', 3072,
        true, now(), false, NULL),
       (encode(sha256('\x3082010a03'::bytea), 'hex'), 'server', 'server.pem', '\x3082010a03', 2048,
        true, now(), true, now());

INSERT INTO ewp.message_log (direction, method, url, partner_hei_ids, api, api_version, status, duration_ms,
                             request_id, request_headers, response_headers, request_body, request_bytes,
                             validation)
VALUES ('in', 'POST', 'https://ewp.unicaen.fr/ewp/omobility-cnr', ARRAY['uw.edu.pl'], 'omobility-cnr', '1.0.0',
        200, 12, 'c5b4a3a2-0000-4000-8000-000000000001',
        '[["Host", "ewp.unicaen.fr"], ["Accept", "*/*"], ["Accept", "text/xml"]]', '[]',
        'sending_hei_id=uw.edu.pl&omobility_id=omob-0001', 47, 'not-checked');
INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload, origin_log_id, expires_at)
SELECT 'in', 'refetch', 'uw.edu.pl', 'omobilities', 'omob-0001', '{"omobility_id": "omob-0001"}', id,
       now() + interval '24 hours'
  FROM ewp.message_log WHERE request_id = 'c5b4a3a2-0000-4000-8000-000000000001';
-- the same change notified again: merged into the pending job, not queued twice
INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload)
VALUES ('in', 'refetch', 'uw.edu.pl', 'omobilities', 'omob-0001', '{"omobility_id": "omob-0001", "n": 2}')
ON CONFLICT (direction, kind, hei_id, api, dedupe_key) WHERE status = 'pending'
DO UPDATE SET payload = EXCLUDED.payload, next_attempt_at = least(ewp.jobs.next_attempt_at, EXCLUDED.next_attempt_at);
CALL pg_temp.expect('jobs: a pending duplicate is merged by ON CONFLICT on the partial unique index',
    $q$SELECT (SELECT count(*) = 1 AND max(payload ->> 'n') = '2' FROM ewp.jobs WHERE dedupe_key = 'omob-0001')$q$);
-- claim it, as a worker does
UPDATE ewp.jobs SET status = 'running', lease_until = now() + interval '60 seconds', leased_by = 'ewp1:4242',
       attempts = attempts + 1
 WHERE id = (SELECT id FROM ewp.jobs WHERE status = 'pending' AND next_attempt_at <= now()
             ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED);
-- a newer change while it runs gets its own pending job ...
INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key)
VALUES ('in', 'refetch', 'uw.edu.pl', 'omobilities', 'omob-0001');
-- ... and the running one, failing transiently, is merged into it
UPDATE ewp.jobs SET status = 'merged', lease_until = NULL, leased_by = NULL, finished_at = now(),
       last_error = 'HTTP 503', last_http_status = 503,
       merged_into = (SELECT id FROM ewp.jobs WHERE dedupe_key = 'omob-0001' AND status = 'pending')
 WHERE dedupe_key = 'omob-0001' AND status = 'running';
INSERT INTO ewp.message_log (direction, method, url, partner_hei_ids, api, status, duration_ms,
                             response_body, response_bytes, validation, parent_id, job_id)
SELECT 'out', 'POST', 'https://usosapps.uw.edu.pl/services/ewp/omobilities/get', ARRAY['uw.edu.pl'],
       'omobilities', 503, 30012, 'Service Unavailable'::bytea, 2000000, 'not-checked', p.id, j.id
  FROM ewp.message_log p, ewp.jobs j
 WHERE p.request_id = 'c5b4a3a2-0000-4000-8000-000000000001' AND j.status = 'merged';
INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, status, finished_at, last_error)
VALUES ('out', 'cnr', 'validator-hei01.developers.erasmuswithoutpaper.eu', 'imobility-cnr', 'omob-0001',
        'no-cnr-api', now(), 'the partner publishes no imobility-cnr endpoint');

INSERT INTO ewp.partner_syncs (hei_id, last_attempt_at, last_success_at) VALUES ('uw.edu.pl', now(), now());
INSERT INTO ewp.audit_log (actor, utilisateur_id, action, object_type, object_id, details, client_addr)
SELECT 'gest1@unicaen.fr', id, 'job.force-retry', 'job', '1', '{"reason": "partner asked"}', '192.0.2.1'
  FROM smile.utilisateur WHERE username = 'gest1@unicaen.fr';
INSERT INTO ewp.portal_sessions (token_sha256, utilisateur_id, expires_at, client_addr, user_agent)
SELECT sha256('session-token'::bytea), id, now() + interval '8 hours', '192.0.2.1', 'Mozilla/5.0'
  FROM smile.utilisateur WHERE username = 'gest1@unicaen.fr';

CALL pg_temp.expect('registry: the current catalogue is the newest valid snapshot',
    $q$SELECT (SELECT etag FROM ewp.registry_current) = '"abd"'$q$);

-- ===========================================================================
-- Id formats and value checks (check_violation)
-- ===========================================================================
CALL pg_temp.expect_error('SCHAC id in upper case', 'check_violation',
    $q$INSERT INTO smile.etablissement (schac_id, names) VALUES ('UW.edu.pl', '[{"name": "x"}]')$q$);
CALL pg_temp.expect_error('SCHAC id that is not a domain name (one label)', 'check_violation',
    $q$INSERT INTO smile.etablissement (schac_id, names) VALUES ('localhost', '[{"name": "x"}]')$q$);
CALL pg_temp.expect_error('SCHAC id with an underscore', 'check_violation',
    $q$INSERT INTO smile.etablissement (schac_id, names) VALUES ('my_uni.edu', '[{"name": "x"}]')$q$);
CALL pg_temp.expect_error('SCHAC id longer than 64 characters', 'check_violation',
    $q$INSERT INTO smile.etablissement (schac_id, names)
       VALUES (repeat('a', 60) || '.edu.pl', '[{"name": "x"}]')$q$);
CALL pg_temp.expect_error('EWP ounit_id with a space', 'check_violation',
    $q$UPDATE smile.composante SET ounit_id = 'ounit sci' WHERE code = 'UFR-SCI'$q$);
CALL pg_temp.expect_error('EWP ounit_id with a non-ASCII character', 'check_violation',
    $q$UPDATE smile.composante SET ounit_id = 'unité' WHERE code = 'UFR-SCI'$q$);
CALL pg_temp.expect_error('EWP id of 65 characters', 'check_violation',
    $q$UPDATE smile.inscription SET omobility_id = repeat('x', 65) WHERE omobility_id = 'omob-0001'$q$);
CALL pg_temp.expect_error('empty EWP id', 'check_violation',
    $q$UPDATE smile.composante SET ounit_id = '' WHERE code = 'UFR-SCI'$q$);
CALL pg_temp.expect_error('ESI without the urn:schac:personalUniqueCode prefix', 'check_violation',
    $q$UPDATE smile.inscription SET esi = 'int:esi:pl:123456' WHERE omobility_id = 'omob-0001'$q$);
CALL pg_temp.expect_error('ESI with nothing after the country part', 'check_violation',
    $q$UPDATE smile.inscription SET esi = 'urn:schac:personalUniqueCode:int:' WHERE omobility_id = 'omob-0001'$q$);
CALL pg_temp.expect_error('student e-mail without @', 'check_violation',
    $q$UPDATE smile.inscription SET email = 'jan.kowalski.uw.edu.pl' WHERE omobility_id = 'omob-0001'$q$);
CALL pg_temp.expect_error('referent e-mail with a space', 'check_violation',
    $q$UPDATE smile.inscription SET referent_email = 'prof nowak@uw.edu.pl' WHERE omobility_id = 'omob-0001'$q$);
CALL pg_temp.expect_error('contact e-mail list with a bad address', 'check_violation',
    $q$UPDATE smile.contact SET emails = ARRAY['ok@unicaen.fr', 'nope']::text[]::smile.email[]$q$);
CALL pg_temp.expect_error('contact phone not in E.164', 'check_violation',
    $q$UPDATE smile.contact SET phones = ARRAY['02 31 56 55 00']::text[]::smile.phone[]$q$);
CALL pg_temp.expect_error('PIC of 8 digits', 'check_violation',
    $q$UPDATE smile.etablissement SET pic = '99988877' WHERE schac_id = 'unicaen.fr'$q$);
CALL pg_temp.expect_error('PIC with a letter', 'check_violation',
    $q$UPDATE smile.etablissement SET pic = '99988877X' WHERE schac_id = 'unicaen.fr'$q$);
CALL pg_temp.expect_error('OID as spreadsheet debris (#N/D, as in SMILE''s seed)', 'check_violation',
    $q$UPDATE smile.etablissement SET oid = '#N/D' WHERE schac_id = 'unicaen.fr'$q$);
CALL pg_temp.expect_error('Erasmus code in lower case', 'check_violation',
    $q$UPDATE smile.etablissement SET erasmus_code = 'f  caen01' WHERE schac_id = 'unicaen.fr'$q$);
CALL pg_temp.expect_error('negative ECTS', 'check_violation',
    $q$UPDATE smile.cours SET ects = -0.5 WHERE code = 'INF101'$q$);
CALL pg_temp.expect_error('negative hours', 'check_violation',
    $q$UPDATE smile.cours SET hours = -1 WHERE code = 'INF101'$q$);
CALL pg_temp.expect_error('course code with a leading space', 'check_violation',
    $q$UPDATE smile.cours SET code = ' INF101' WHERE code = 'INF101'$q$);
CALL pg_temp.expect_error('course language that is not a language tag', 'check_violation',
    $q$UPDATE smile.cours SET language = 'Français' WHERE code = 'INF101'$q$);
CALL pg_temp.expect_error('country code in lower case', 'check_violation',
    $q$UPDATE smile.etablissement SET country = 'fr' WHERE schac_id = 'unicaen.fr'$q$);
CALL pg_temp.expect_error('logo URL over plain http', 'check_violation',
    $q$UPDATE smile.etablissement SET logo_url = 'http://www.unicaen.fr/logo.png' WHERE schac_id = 'unicaen.fr'$q$);
CALL pg_temp.expect_error('names: empty list', 'check_violation',
    $q$UPDATE smile.etablissement SET names = '[]' WHERE schac_id = 'unicaen.fr'$q$);
CALL pg_temp.expect_error('names: blank name', 'check_violation',
    $q$UPDATE smile.composante SET names = '[{"lang": "fr", "name": "  "}]' WHERE code = 'UFR-SCI'$q$);
CALL pg_temp.expect_error('names: bad language tag', 'check_violation',
    $q$UPDATE smile.etablissement SET names = '[{"lang": "fr_FR", "name": "Caen"}]' WHERE schac_id = 'unicaen.fr'$q$);
CALL pg_temp.expect_error('names: not an array of objects', 'check_violation',
    $q$UPDATE smile.etablissement SET names = '["Caen"]' WHERE schac_id = 'unicaen.fr'$q$);
CALL pg_temp.expect_error('names: unknown key', 'check_violation',
    $q$UPDATE smile.etablissement SET names = '[{"name": "Caen", "nom": "Caen"}]' WHERE schac_id = 'unicaen.fr'$q$);
CALL pg_temp.expect_error('institution with neither SCHAC id nor Erasmus code', 'check_violation',
    $q$INSERT INTO smile.etablissement (pic, names) VALUES ('999000111', '[{"name": "Anonymous"}]')$q$);
CALL pg_temp.expect_error('local institution without SCHAC id', 'check_violation',
    $q$UPDATE smile.etablissement SET is_local = true, schac_id = NULL WHERE erasmus_code = 'I   PAVIA02'$q$);
CALL pg_temp.expect_error('address belonging to an institution and a unit at once', 'check_violation',
    $q$INSERT INTO smile.address (etablissement_id, composante_id, kind, locality)
       SELECT e.id, c.id, 'street', 'Caen' FROM smile.etablissement e, smile.composante c
        WHERE e.schac_id = 'unicaen.fr' AND c.code = 'UFR-SCI'$q$);
CALL pg_temp.expect_error('address with free lines and structured fields', 'check_violation',
    $q$UPDATE smile.address SET street_name = 'Rue X' WHERE kind = 'mailing'$q$);
CALL pg_temp.expect_error('birth date before 1900', 'check_violation',
    $q$UPDATE smile.inscription SET birth_date = DATE '1899-12-31' WHERE omobility_id = 'omob-0001'$q$);
CALL pg_temp.expect_error('academic year out of range', 'check_violation',
    $q$UPDATE smile.inscription SET academic_year = 25 WHERE omobility_id = 'omob-0001'$q$);
CALL pg_temp.expect_error('blank family name', 'check_violation',
    $q$UPDATE smile.inscription SET family_name = ' ' WHERE omobility_id = 'omob-0001'$q$);
CALL pg_temp.expect_error('step history of an unknown type', 'check_violation',
    $q$UPDATE smile.stepmessage SET type = 'maybe'$q$);
CALL pg_temp.expect_error('step code with upper case', 'check_violation',
    $q$UPDATE smile.step SET code = 'Contract' WHERE code = 'contract'$q$);
CALL pg_temp.expect_error('unit made its own parent', 'check_violation',
    $q$UPDATE smile.composante SET parent_id = id WHERE code = 'UFR-SCI'$q$);
CALL pg_temp.expect_error('unit hierarchy cycle (trigger)', 'check_violation',
    $q$UPDATE smile.composante SET parent_id = (SELECT id FROM smile.composante WHERE code = 'DEP-INFO')
        WHERE code = 'UFR-SCI'$q$);

-- ===========================================================================
-- Uniqueness, NOT NULL and foreign keys
-- ===========================================================================
CALL pg_temp.expect_error('two institutions with one SCHAC id', 'unique_violation',
    $q$INSERT INTO smile.etablissement (schac_id, names) VALUES ('unicaen.fr', '[{"name": "Copy"}]')$q$);
CALL pg_temp.expect_error('two institutions with one Erasmus code', 'unique_violation',
    $q$INSERT INTO smile.etablissement (erasmus_code, names) VALUES ('F  CAEN01', '[{"name": "Copy"}]')$q$);
CALL pg_temp.expect_error('a second local institution', 'unique_violation',
    $q$UPDATE smile.etablissement SET is_local = true WHERE schac_id = 'uw.edu.pl'$q$);
CALL pg_temp.expect_error('two units with one ounit_id in an institution', 'unique_violation',
    $q$UPDATE smile.composante SET ounit_id = 'ounit-sci' WHERE code = 'DEP-INFO'$q$);
CALL pg_temp.expect_error('two units with one code in an institution', 'unique_violation',
    $q$UPDATE smile.composante SET code = 'UFR-SCI' WHERE code = 'DEP-INFO'$q$);
INSERT INTO smile.composante (etablissement_id, code, names)
SELECT id, 'WMIM', '[{"name": "Unit with a partner''s code"}]' FROM smile.etablissement WHERE schac_id = 'unicaen.fr';
CALL pg_temp.expect('the same unit code in two institutions is fine',
    $q$SELECT (SELECT count(DISTINCT etablissement_id) FROM smile.composante WHERE code = 'WMIM') = 2$q$);
CALL pg_temp.expect_error('two courses with one code in a programme', 'unique_violation',
    $q$INSERT INTO smile.cours (code, title, formation_id)
       SELECT 'INF101', 'Copy', id FROM smile.formation WHERE code = 'L3-INFO'$q$);
CALL pg_temp.expect_error('two courses with one code outside any programme', 'unique_violation',
    $q$INSERT INTO smile.cours (code, title) VALUES ('FLE01', 'Copy')$q$);
CALL pg_temp.expect_error('two steps with one code', 'unique_violation',
    $q$INSERT INTO smile.step (code, label, position) VALUES ('course', 'Copy', 9)$q$);
CALL pg_temp.expect_error('two steps at one position', 'unique_violation',
    $q$UPDATE smile.step SET position = 5 WHERE code = 'approval_base'$q$);
CALL pg_temp.expect_error('registration without a workflow step', 'not_null_violation',
    $q$INSERT INTO smile.inscription (given_names, family_name, home_etablissement_id, academic_year)
       SELECT 'A', 'B', id, 2025 FROM smile.etablissement WHERE schac_id = 'uw.edu.pl'$q$);
CALL pg_temp.expect_error('registration without a home institution', 'not_null_violation',
    $q$INSERT INTO smile.inscription (given_names, family_name, step_id, academic_year)
       SELECT 'A', 'B', id, 2025 FROM smile.step WHERE code = 'pre-registration'$q$);
CALL pg_temp.expect_error('registration status 5 (SMILE has 1..4)', 'foreign_key_violation',
    $q$UPDATE smile.inscription SET status = 5 WHERE omobility_id = 'omob-0001'$q$);
CALL pg_temp.expect_error('registration with an unknown home institution', 'foreign_key_violation',
    $q$UPDATE smile.inscription SET home_etablissement_id = -1 WHERE omobility_id = 'omob-0001'$q$);
CALL pg_temp.expect_error('registration at an unknown step', 'foreign_key_violation',
    $q$UPDATE smile.inscription SET step_id = -1 WHERE omobility_id = 'omob-0001'$q$);
CALL pg_temp.expect_error('two registrations with one omobility_id from one sending HEI', 'unique_violation',
    $q$UPDATE smile.inscription SET omobility_id = 'omob-0001', home_etablissement_id =
         (SELECT id FROM smile.etablissement WHERE schac_id = 'uw.edu.pl') WHERE family_name = 'Rossi'$q$);
CALL pg_temp.expect_error('unit whose parent belongs to another institution', 'foreign_key_violation',
    $q$UPDATE smile.composante SET parent_id = (SELECT id FROM smile.composante WHERE code = 'UFR-SCI')
        WHERE code = 'WMIM' AND source = 'ewp'$q$);
CALL pg_temp.expect_error('deleting a unit that still has sub-units', 'foreign_key_violation',
    $q$DELETE FROM smile.composante WHERE code = 'UFR-SCI'$q$);
CALL pg_temp.expect_error('deleting a programme that still has courses', 'foreign_key_violation',
    $q$DELETE FROM smile.formation WHERE code = 'L3-INFO'$q$);
CALL pg_temp.expect_error('deleting a step some registration is at', 'foreign_key_violation',
    $q$DELETE FROM smile.step WHERE code = 'registered'$q$);
CALL pg_temp.expect_error('step validated by an unknown role', 'foreign_key_violation',
    $q$UPDATE smile.step SET role_id = -1 WHERE code = 'approval_base'$q$);
CALL pg_temp.expect_error('scoping a role the user does not hold', 'foreign_key_violation',
    $q$INSERT INTO smile.utilisateur_composante (utilisateur_id, role_id, composante_id)
       SELECT u.id, r.id, c.id FROM smile.utilisateur u, smile.role r, smile.composante c
        WHERE u.username = 'etu1@uw.edu.pl' AND r.code = 'gestionnaire' AND c.code = 'UFR-SCI'$q$);
CALL pg_temp.expect_error('scoping a role that is not scopable (Etudiant)', 'foreign_key_violation',
    $q$INSERT INTO smile.utilisateur_composante (utilisateur_id, role_id, composante_id)
       SELECT u.id, r.id, c.id FROM smile.utilisateur u, smile.role r, smile.composante c
        WHERE u.username = 'etu1@uw.edu.pl' AND r.code = 'Etudiant' AND c.code = 'UFR-SCI'$q$);
CALL pg_temp.expect_error('making a role unscopable while users are scoped by it', 'foreign_key_violation',
    $q$UPDATE smile.role SET scopable = false WHERE code = 'gestionnaire'$q$);
CALL pg_temp.expect_error('two users with one login, differing in case', 'unique_violation',
    $q$INSERT INTO smile.utilisateur (username, display_name) VALUES ('GEST1@unicaen.fr', 'Copy')$q$);
CALL pg_temp.expect_error('a second default role', 'unique_violation',
    $q$UPDATE smile.role SET is_default = true WHERE code = 'guest'$q$);

-- ===========================================================================
-- The workflow's positions stay 1..n (deferred constraint trigger)
-- ===========================================================================
-- one statement may shift steps (deferrable unique constraint) ...
UPDATE smile.step SET position = position + 1 WHERE position >= 6;
INSERT INTO smile.step (code, label, position, need_validation, role_id)
SELECT 'approval_extra', 'Extra approval', 6, true, id FROM smile.role WHERE code = 'gestionnaire';
-- ... and several statements may reorder, as long as the end is contiguous
DELETE FROM smile.step WHERE code = 'approval_extra';
UPDATE smile.step SET position = position - 1 WHERE position >= 7;
SET CONSTRAINTS smile.step_positions_contiguous IMMEDIATE;
CALL pg_temp.expect('workflow: steps inserted, removed and renumbered end at 1..8 with approval_base at 6',
    $q$SELECT (SELECT position FROM smile.step WHERE code = 'approval_base') = 6
    AND (SELECT count(*) = 8 AND max(position) = 8 FROM smile.step)$q$);
CALL pg_temp.expect_error('a gap in the step positions', 'check_violation',
    $q$DO $d$ BEGIN
        UPDATE smile.step SET position = 10 WHERE code = 'contract';
        SET CONSTRAINTS smile.step_positions_contiguous IMMEDIATE;
    END $d$$q$);
CALL pg_temp.expect_error('removing a step without renumbering the later ones', 'check_violation',
    $q$DO $d$ BEGIN
        DELETE FROM smile.step WHERE code = 'approval_base';
        SET CONSTRAINTS smile.step_positions_contiguous IMMEDIATE;
    END $d$$q$);
SET CONSTRAINTS smile.step_positions_contiguous DEFERRED;

-- ===========================================================================
-- modified_at (what EWP modified_since compares against)
-- ===========================================================================
-- now() is fixed within a transaction, so the rows are first moved back in
-- time with the trigger off, then touched with it on.
ALTER TABLE smile.cours DISABLE TRIGGER cours_modified_at;
UPDATE smile.cours SET modified_at = TIMESTAMPTZ '2001-01-01 00:00:00+00' WHERE code = 'INF101';
ALTER TABLE smile.cours ENABLE TRIGGER cours_modified_at;
UPDATE smile.cours SET title = title, ects = ects WHERE code = 'INF101';
CALL pg_temp.expect('modified_at: an update that changes nothing keeps modified_at',
    $q$SELECT (SELECT modified_at FROM smile.cours WHERE code = 'INF101') = TIMESTAMPTZ '2001-01-01 00:00:00+00'$q$);
UPDATE smile.cours SET ects = 5 WHERE code = 'INF101';
CALL pg_temp.expect('modified_at: a real change sets modified_at to now()',
    $q$SELECT (SELECT modified_at FROM smile.cours WHERE code = 'INF101') = now()$q$);
UPDATE smile.cours SET modified_at = TIMESTAMPTZ '1999-01-01 00:00:00+00' WHERE code = 'INF 102';
CALL pg_temp.expect('modified_at: a writer cannot move modified_at back in time',
    $q$SELECT (SELECT modified_at FROM smile.cours WHERE code = 'INF 102') = now()
    AND NOT EXISTS (SELECT 1 FROM smile.cours WHERE modified_at < now())$q$);
INSERT INTO smile.cours (code, title, modified_at) VALUES ('OLD01', 'Backdated', TIMESTAMPTZ '1999-01-01 00:00:00+00');
CALL pg_temp.expect('modified_at: an insert always gets now()',
    $q$SELECT (SELECT modified_at FROM smile.cours WHERE code = 'OLD01') = now()$q$);

ALTER TABLE smile.etablissement DISABLE TRIGGER etablissement_modified_at;
UPDATE smile.etablissement SET modified_at = TIMESTAMPTZ '2001-01-01 00:00:00+00';
ALTER TABLE smile.etablissement ENABLE TRIGGER etablissement_modified_at;
UPDATE smile.etablissement SET names = names || '[{"lang": "de", "name": "Universität Caen"}]'
 WHERE schac_id = 'unicaen.fr';
CALL pg_temp.expect('modified_at: a change of names is a change of the institution',
    $q$SELECT (SELECT modified_at FROM smile.etablissement WHERE schac_id = 'unicaen.fr') = now()
    AND (SELECT modified_at FROM smile.etablissement WHERE schac_id = 'uw.edu.pl')
        = TIMESTAMPTZ '2001-01-01 00:00:00+00'$q$);
INSERT INTO smile.address (etablissement_id, kind, locality, country)
SELECT id, 'street', 'Warszawa', 'PL' FROM smile.etablissement WHERE schac_id = 'uw.edu.pl';
CALL pg_temp.expect('modified_at: a new address touches its institution',
    $q$SELECT (SELECT modified_at FROM smile.etablissement WHERE schac_id = 'uw.edu.pl') = now()$q$);

ALTER TABLE smile.composante DISABLE TRIGGER composante_modified_at;
UPDATE smile.composante SET modified_at = TIMESTAMPTZ '2001-01-01 00:00:00+00';
ALTER TABLE smile.composante ENABLE TRIGGER composante_modified_at;
INSERT INTO smile.contact (composante_id, names, emails)
SELECT id, '[{"name": "Secrétariat"}]', ARRAY['sci@unicaen.fr']::smile.email[]
  FROM smile.composante WHERE code = 'UFR-SCI';
CALL pg_temp.expect('modified_at: a new contact touches its unit, not the others',
    $q$SELECT (SELECT modified_at FROM smile.composante WHERE code = 'UFR-SCI') = now()
    AND (SELECT modified_at FROM smile.composante WHERE code = 'DEP-INFO')
        = TIMESTAMPTZ '2001-01-01 00:00:00+00'$q$);

-- ===========================================================================
-- Gateway state
-- ===========================================================================
CALL pg_temp.expect_error('catalogue snapshot whose sha256 is not that of its bytes', 'check_violation',
    $q$INSERT INTO ewp.registry_snapshots (url, body, sha256, valid)
       VALUES ('https://registry.example/catalogue.xml', 'abc', repeat('0', 64), true)$q$);
CALL pg_temp.expect_error('invalid catalogue snapshot without the reason', 'check_violation',
    $q$INSERT INTO ewp.registry_snapshots (url, body, sha256, valid)
       VALUES ('https://registry.example/catalogue.xml', 'abc', encode(sha256('abc'), 'hex'), false)$q$);
CALL pg_temp.expect_error('deleting the last good catalogue', 'integrity_constraint_violation',
    $q$DELETE FROM ewp.registry_snapshots$q$);
CALL pg_temp.expect_error('rewriting the bytes of a stored catalogue', 'integrity_constraint_violation',
    $q$UPDATE ewp.registry_snapshots SET body = '<other/>', sha256 = encode(sha256('<other/>'), 'hex') WHERE valid$q$);
DELETE FROM ewp.registry_snapshots WHERE NOT valid;
CALL pg_temp.expect('registry: an invalid snapshot may be pruned, the last good one stays',
    $q$SELECT (SELECT count(*) FROM ewp.registry_snapshots) = 1$q$);

CALL pg_temp.expect_error('key whose keyid is not the SHA-256 of its public key', 'check_violation',
    $q$INSERT INTO ewp.keys (keyid, role, file_name, public_key, bits)
       VALUES (repeat('a', 64), 'server', 'x.pem', '\x00', 2048)$q$);
CALL pg_temp.expect_error('key of 1024 bits', 'check_violation',
    $q$INSERT INTO ewp.keys (keyid, role, file_name, public_key, bits)
       VALUES (encode(sha256('\x01'::bytea), 'hex'), 'server', 'x.pem', '\x01', 1024)$q$);
CALL pg_temp.expect_error('key file name with a directory', 'check_violation',
    $q$INSERT INTO ewp.keys (keyid, role, file_name, public_key, bits)
       VALUES (encode(sha256('\x01'::bytea), 'hex'), 'server', '../etc/x.pem', '\x01', 2048)$q$);
CALL pg_temp.expect_error('signing with a key that is not published', 'check_violation',
    $q$UPDATE ewp.keys SET published = false WHERE file_name = 'client.pem'$q$);
CALL pg_temp.expect_error('two client keys in use at once', 'unique_violation',
    $q$UPDATE ewp.keys SET in_use = true, in_use_since = now() WHERE file_name = 'client-2026.pem'$q$);
-- the rotation itself: switch, then retire the old key
UPDATE ewp.keys SET in_use = false, in_use_since = NULL WHERE file_name = 'client.pem';
UPDATE ewp.keys SET in_use = true, in_use_since = now() WHERE file_name = 'client-2026.pem';
UPDATE ewp.keys SET published = false, retired_at = now() WHERE file_name = 'client.pem';
CALL pg_temp.expect('keys: rotation leaves one client key in use',
    $q$SELECT (SELECT file_name FROM ewp.keys WHERE role = 'client' AND in_use) = 'client-2026.pem'$q$);

CALL pg_temp.expect_error('job with an unknown status', 'check_violation',
    $q$UPDATE ewp.jobs SET status = 'done' WHERE status = 'pending'$q$);
CALL pg_temp.expect_error('job for a malformed HEI id', 'check_violation',
    $q$INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key)
       VALUES ('out', 'cnr', 'UW.EDU.PL', 'imobility-cnr', 'x')$q$);
CALL pg_temp.expect_error('job that is neither outbox nor inbox', 'check_violation',
    $q$INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key)
       VALUES ('up', 'cnr', 'uw.edu.pl', 'imobility-cnr', 'x')$q$);
CALL pg_temp.expect_error('running job without a lease', 'check_violation',
    $q$UPDATE ewp.jobs SET status = 'running' WHERE status = 'pending'$q$);
CALL pg_temp.expect_error('finished job without finished_at', 'check_violation',
    $q$UPDATE ewp.jobs SET status = 'success' WHERE status = 'pending'$q$);
CALL pg_temp.expect_error('merged job without the job it was merged into', 'check_violation',
    $q$UPDATE ewp.jobs SET status = 'merged', finished_at = now() WHERE status = 'pending'$q$);
CALL pg_temp.expect_error('a second pending job for the same object', 'unique_violation',
    $q$INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key)
       VALUES ('in', 'refetch', 'uw.edu.pl', 'omobilities', 'omob-0001')$q$);
CALL pg_temp.expect_error('job caused by an unknown log entry', 'foreign_key_violation',
    $q$INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, origin_log_id)
       VALUES ('in', 'refetch', 'uw.edu.pl', 'omobilities', 'omob-0002', -1)$q$);
-- every final state of the CNR queue ('merged' and 'no-cnr-api' were
-- reached above) is accepted with its finishing time
INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, status, attempts, finished_at)
SELECT 'out', 'cnr', 'uw.edu.pl', 'imobility-cnr', 'final-' || s, s, 10, now()
  FROM unnest(ARRAY['success', 'rejected', 'failed-max-attempts', 'expired', 'cancelled']) s;
CALL pg_temp.expect('jobs: all final states (success, merged, no-cnr-api, rejected, failed-max-attempts, expired, cancelled) stored',
    $q$SELECT (SELECT count(DISTINCT status) FROM ewp.jobs WHERE finished_at IS NOT NULL) = 7$q$);

CALL pg_temp.expect_error('message log entry neither in nor out', 'check_violation',
    $q$INSERT INTO ewp.message_log (direction, method, url) VALUES ('both', 'GET', 'https://x.example/')$q$);
CALL pg_temp.expect_error('message log body over the 1 MiB ceiling', 'check_violation',
    $q$INSERT INTO ewp.message_log (direction, method, url, response_body, response_bytes)
       VALUES ('out', 'GET', 'https://x.example/', convert_to(repeat('x', 1024 * 1024 + 1), 'UTF8'), 2000000)$q$);
CALL pg_temp.expect_error('message log body larger than the recorded size', 'check_violation',
    $q$INSERT INTO ewp.message_log (direction, method, url, request_body, request_bytes)
       VALUES ('in', 'POST', 'https://x.example/', 'abcdef', 3)$q$);
CALL pg_temp.expect_error('message log "invalid" verdict without the reason', 'check_violation',
    $q$INSERT INTO ewp.message_log (direction, method, url, validation) VALUES ('out', 'GET', 'https://x.example/', 'invalid')$q$);
CALL pg_temp.expect_error('message log HTTP status 600', 'check_violation',
    $q$INSERT INTO ewp.message_log (direction, method, url, status) VALUES ('out', 'GET', 'https://x.example/', 600)$q$);
CALL pg_temp.expect_error('message log headers not a list', 'check_violation',
    $q$INSERT INTO ewp.message_log (direction, method, url, request_headers)
       VALUES ('out', 'GET', 'https://x.example/', '{"Host": "x"}')$q$);
CALL pg_temp.expect_error('message log entry under an unknown parent', 'foreign_key_violation',
    $q$INSERT INTO ewp.message_log (direction, method, url, parent_id) VALUES ('out', 'GET', 'https://x.example/', -1)$q$);
CALL pg_temp.expect('message log: the CNR -> fetch chain and the job''s attempt are linked',
    $q$SELECT (SELECT count(*) FROM ewp.message_log c JOIN ewp.message_log p ON p.id = c.parent_id
       JOIN ewp.jobs j ON j.id = c.job_id AND j.origin_log_id = p.id) = 1
    AND (SELECT count(*) FROM ewp.message_log WHERE partner_hei_ids @> ARRAY['uw.edu.pl']) = 2$q$);

CALL pg_temp.expect_error('partner sync result for a malformed SCHAC id', 'check_violation',
    $q$INSERT INTO ewp.partner_syncs (hei_id) VALUES ('Not A Domain')$q$);
CALL pg_temp.expect_error('partner sync error without its time', 'check_violation',
    $q$UPDATE ewp.partner_syncs SET last_error = 'HTTP 500'$q$);
CALL pg_temp.expect_error('rewriting the audit log', 'integrity_constraint_violation',
    $q$UPDATE ewp.audit_log SET actor = 'someone else'$q$);
CALL pg_temp.expect_error('audit entry with a malformed action', 'check_violation',
    $q$INSERT INTO ewp.audit_log (actor, action) VALUES ('ewpctl', 'Force Retry!')$q$);
CALL pg_temp.expect_error('portal session keyed by something other than a SHA-256', 'check_violation',
    $q$INSERT INTO ewp.portal_sessions (token_sha256, utilisateur_id, expires_at)
       SELECT 'plain-token'::bytea, id, now() + interval '1 hour' FROM smile.utilisateur LIMIT 1$q$);
CALL pg_temp.expect_error('portal session expiring before it starts', 'check_violation',
    $q$INSERT INTO ewp.portal_sessions (token_sha256, utilisateur_id, expires_at)
       SELECT sha256('t2'), id, now() - interval '1 hour' FROM smile.utilisateur LIMIT 1$q$);
CALL pg_temp.expect_error('portal session of an unknown user', 'foreign_key_violation',
    $q$INSERT INTO ewp.portal_sessions (token_sha256, utilisateur_id, expires_at)
       VALUES (sha256('t3'), -1, now() + interval '1 hour')$q$);

-- ===========================================================================
-- Cascades
-- ===========================================================================
-- a partner that never synced has its sync row too (0003); renaming a
-- SCHAC id in the core leaves the catalogue's id in ewp.partner_syncs
INSERT INTO ewp.partner_syncs (hei_id, last_attempt_at, last_error_at, last_error, consecutive_failures)
VALUES ('never-synced.example.org', now(), now(), 'connect: refused', 1);
UPDATE smile.etablissement SET schac_id = 'uw.waw.pl' WHERE schac_id = 'uw.edu.pl';
CALL pg_temp.expect('partner_syncs.last_log_id is indexed (the message-log purge sets it to NULL)',
    $q$SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = 'ewp'
       AND indexname = 'partner_syncs_last_log')$q$);
CALL pg_temp.expect('partner_syncs: rows for partners unknown to the core, keyed by the catalogue id',
    $q$SELECT (SELECT array_agg(hei_id::text ORDER BY hei_id) FROM ewp.partner_syncs)
       = ARRAY['never-synced.example.org', 'uw.edu.pl']$q$);
-- a partner without registrations goes with its units, addresses and contacts
INSERT INTO smile.etablissement (schac_id, names) VALUES ('gone.example.org', '[{"name": "Gone"}]');
INSERT INTO smile.composante (etablissement_id, code, names)
SELECT id, 'ROOT', '[{"name": "Root"}]' FROM smile.etablissement WHERE schac_id = 'gone.example.org';
INSERT INTO smile.composante (etablissement_id, code, names, parent_id)
SELECT e.id, 'CHILD', '[{"name": "Child"}]', c.id
  FROM smile.etablissement e JOIN smile.composante c ON c.etablissement_id = e.id
 WHERE e.schac_id = 'gone.example.org';
INSERT INTO smile.address (composante_id, kind, locality)
SELECT id, 'street', 'Nowhere' FROM smile.composante WHERE code = 'CHILD';
DELETE FROM smile.etablissement WHERE schac_id = 'gone.example.org';
CALL pg_temp.expect('cascade: deleting an institution removes its unit tree and addresses',
    $q$SELECT NOT EXISTS (SELECT 1 FROM smile.composante WHERE code IN ('ROOT', 'CHILD'))
    AND NOT EXISTS (SELECT 1 FROM smile.address WHERE locality = 'Nowhere')$q$);
CALL pg_temp.expect_error('deleting a home institution that still has registrations', 'foreign_key_violation',
    $q$DELETE FROM smile.etablissement WHERE schac_id = 'uw.waw.pl'$q$);

-- ===========================================================================
SELECT count(*) AS assertions_passed,
       count(*) FILTER (WHERE what NOT LIKE 'seed:%' AND what NOT LIKE 'modified_at:%') AS of_which_rules
  FROM results;
CALL pg_temp.expect('at least 15 assertions ran', $q$SELECT (SELECT count(*) FROM results) >= 15$q$);
