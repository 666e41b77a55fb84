-- seed-institutions.sql - synthetic partner institutions for bench/run.sh:
--   psql -v n=1000 -f bench/seed-institutions.sql
-- HEI i (1..n) is p<i>.partners.bench.example (the pattern of
-- signreqs.mjs --hei-ids and sync-catalogue.mjs) with: an Erasmus code and
-- a PIC, names in two languages, an abbreviation, a website, a street and
-- a mailing address, two contacts (names, e-mails, phones, role), and
-- three exposed units (two faculties and a department under the first),
-- each with names in two languages, a contact, and the first with an
-- address. Fictitious data. One transaction.
\set ON_ERROR_STOP 1
BEGIN;

INSERT INTO smile.etablissement (schac_id, erasmus_code, pic, names, abbreviation, country,
                                 website_url)
SELECT format('p%s.partners.bench.example', i),
       format('D  BENCH%s', lpad(i::text, 5, '0')),
       lpad((900000000 + i)::text, 9, '0'),
       jsonb_build_array(
           jsonb_build_object('lang', 'de', 'name', format('Benchmark-Universität %s', i)),
           jsonb_build_object('lang', 'en', 'name', format('Benchmark University %s', i))),
       format('BU%s', i), 'DE',
       format('https://www.p%s.partners.bench.example/', i)
FROM generate_series(1, :n) AS i;

CREATE TEMP TABLE bench_h ON COMMIT DROP AS
SELECT id, substring(schac_id FROM '^p([0-9]+)\.')::int AS i
FROM smile.etablissement WHERE schac_id LIKE '%.partners.bench.example';

INSERT INTO smile.address (etablissement_id, kind, recipient_names, street_name, building_number,
                           postal_code, locality, region, country)
SELECT id, 'street', ARRAY['International Office'], 'Universitätsstraße', (i % 200 + 1)::text,
       lpad((10000 + i % 89999)::text, 5, '0'), 'Benchstadt', 'Bayern', 'DE'
FROM bench_h;
INSERT INTO smile.address (etablissement_id, kind, lines, postal_code, locality, country)
SELECT id, 'mailing', ARRAY[format('Benchmark University %s', i), 'Postfach 1234'],
       lpad((10000 + i % 89999)::text, 5, '0'), 'Benchstadt', 'DE'
FROM bench_h;

INSERT INTO smile.contact (etablissement_id, position, names, given_names, family_name, emails,
                           phones, role_descriptions)
SELECT id, 1, '[{"lang":"en","name":"International Relations Office"}]', 'Erika', 'Mustermann',
       ARRAY[format('incoming@p%s.partners.bench.example', i)]::smile.email[],
       ARRAY[format('+4989%s', lpad(i::text, 7, '0'))]::smile.phone[],
       '[{"lang":"en","name":"Incoming students"},{"lang":"de","name":"Incoming-Studierende"}]'
FROM bench_h;
INSERT INTO smile.contact (etablissement_id, position, names, emails)
SELECT id, 2, '[{"lang":"en","name":"Erasmus+ institutional coordinator"}]',
       ARRAY[format('erasmus@p%s.partners.bench.example', i)]::smile.email[]
FROM bench_h;

INSERT INTO smile.composante (etablissement_id, ounit_id, code, names, abbreviation)
SELECT h.id, format('ou-%s-%s', h.i, u.code), u.code,
       jsonb_build_array(jsonb_build_object('lang', 'de', 'name', u.de),
                         jsonb_build_object('lang', 'en', 'name', u.en)), u.code
FROM bench_h h,
     (VALUES ('SCI', 'Fakultät für Naturwissenschaften', 'Faculty of Science'),
             ('LAW', 'Juristische Fakultät', 'Faculty of Law')) AS u (code, de, en);
INSERT INTO smile.composante (etablissement_id, ounit_id, code, names, parent_id)
SELECT h.id, format('ou-%s-MATH', h.i), 'MATH',
       '[{"lang":"de","name":"Institut für Mathematik"},{"lang":"en","name":"Department of Mathematics"}]',
       c.id
FROM bench_h h JOIN smile.composante c ON c.etablissement_id = h.id AND c.code = 'SCI';

INSERT INTO smile.address (composante_id, kind, street_name, building_number, postal_code,
                           locality, country)
SELECT c.id, 'street', 'Campusallee', '3', '80333', 'Benchstadt', 'DE'
FROM smile.composante c JOIN bench_h h ON h.id = c.etablissement_id WHERE c.code = 'SCI';
INSERT INTO smile.contact (composante_id, names, emails)
SELECT c.id, jsonb_build_array(jsonb_build_object('lang', 'en', 'name', 'Student office ' || c.code)),
       ARRAY[format('%s@p%s.partners.bench.example', lower(c.code), h.i)]::smile.email[]
FROM smile.composante c JOIN bench_h h ON h.id = c.etablissement_id;

COMMIT;
ANALYZE;
