-- seed-portal.sql - incoming students for step 9 of bench/run.sh (the
-- staff portal), written the way the node writes them:
--   psql -v n=10000 -v partners=1000 -v hei=bench.smile-ewp.example \
--        -f bench/seed-portal.sql
-- Our institution (is_local, :hei) and 8 composantes; then n partners'
-- nominations stored through ewp.omobility_store() (what the OMobilities
-- refetch job calls with a partner's get response: mobility, registration,
-- workflow step), one document per mobility, in ONE statement; then
-- learning agreements through smile.la_store_incoming() (what the LAs
-- refetch job calls): a first version signed by all three for every 10th
-- student, a changes proposal waiting for our approval for every 100th.
-- Student i is nominated by partner p<1 + i mod partners>.partners.bench.example
-- (seed-institutions.sql made them), to composante ou-bench-<1 + i mod 8>,
-- for 2025/2026 (one in three) or 2026/2027; one in 50 nominations is
-- cancelled. Names are drawn from two lists (non-ASCII ones included), so
-- they repeat as real names do. Fictitious data. Prints the counts.
\set ON_ERROR_STOP 1

INSERT INTO smile.etablissement (schac_id, names, country, is_local)
VALUES (:'hei', '[{"lang": "fr", "name": "Université SMILE (bench)"}, {"lang": "en", "name": "SMILE Bench University"}]',
        'FR', true)
ON CONFLICT DO NOTHING;

INSERT INTO smile.composante (etablissement_id, ounit_id, code, names)
SELECT e.id, 'ou-bench-' || k, 'BENCH' || k,
       jsonb_build_array(jsonb_build_object('lang', 'fr', 'name', 'UFR ' || u),
                         jsonb_build_object('lang', 'en', 'name', 'Faculty of ' || u))
  FROM smile.etablissement e,
       unnest(ARRAY['Sciences', 'Droit', 'Lettres', 'Médecine', 'Économie', 'Langues', 'Arts', 'Ingénierie'])
           WITH ORDINALITY AS t(u, k)
 WHERE e.is_local;

-- the nominations: one omobility_store() call per student, one statement
SELECT count(*) FILTER (WHERE r = 'created') AS nominations_created
  FROM (SELECT ewp.omobility_store(d.partner, d.id, ARRAY[d.partner], d.doc::xml) AS r
          FROM (SELECT g, 'bench-' || g AS id, format('p%s.partners.bench.example', 1 + g % :partners) AS partner,
                       format('<omobilities-get-response xmlns="https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/endpoints/get-response.xsd">'
                              '<student-mobility><omobility-id>bench-%1$s</omobility-id>'
                              '<student><given-names>%2$s</given-names><family-name>%3$s</family-name>'
                              '<global-id>urn:schac:personalUniqueCode:int:esi:%4$s:%1$s</global-id>'
                              '<birth-date>%5$s</birth-date><nationality>DE</nationality><gender>%6$s</gender>'
                              '<email>student%1$s@%4$s</email></student>'
                              '<nomination proposal-id="bench-%1$s-p1">'
                              '<sending-hei><hei-id>%4$s</hei-id></sending-hei>'
                              '<receiving-hei><hei-id>%7$s</hei-id><ounit-id>ou-bench-%8$s</ounit-id></receiving-hei>'
                              '<sending-academic-term-ewp-id>%9$s/%10$s-1/2</sending-academic-term-ewp-id>'
                              '<receiving-academic-year-id>%9$s/%10$s</receiving-academic-year-id>'
                              '<activity-type>student-studies</activity-type><activity-attributes>long-term</activity-attributes>'
                              '<agreement-isced-f-code>0541</agreement-isced-f-code>'
                              '<eqf-level-studied-at-departure>%11$s</eqf-level-studied-at-departure>'
                              '</nomination><status>%12$s</status></student-mobility></omobilities-get-response>',
                              g,
                              (ARRAY['Lena', 'Marco', 'Ana', 'Jan', 'Eva', 'Tom', 'Zoé', 'Łukasz', 'Sofía', 'Matteo',
                                     'Jonas', 'Inês', 'Mikkel', 'Aino', 'Dimitris', 'Kateřina', 'Ioana', 'Pieter',
                                     'Nóra', 'Sean'])[1 + g % 20],
                              (ARRAY['Schäfer', 'Rossi', 'Silva', 'Novák', 'Berg', 'Weber', 'Martin', 'Kowalski',
                                     'García', 'Bianchi', 'Müller', 'Santos', 'Jensen', 'Virtanen', 'Papadopoulos',
                                     'Dvořáková', 'Popescu', 'de Vries', 'Nagy', 'O''Brien', 'Fischer', 'López',
                                     'Ricci', 'Costa', 'Hansen', 'Korhonen', 'Nikolaou', 'Svoboda', 'Ionescu',
                                     'Janssen'])[1 + (g * 7 + g / 20) % 30],
                              format('p%s.partners.bench.example', 1 + g % :partners),
                              (date '2000-01-01' + (g % 2500))::text,
                              (ARRAY[1, 2, 9])[1 + g % 3],
                              :'hei',
                              1 + g % 8,
                              CASE WHEN g % 3 = 0 THEN 2025 ELSE 2026 END,
                              CASE WHEN g % 3 = 0 THEN 2026 ELSE 2027 END,
                              (ARRAY[6, 7])[1 + g % 2],
                              CASE WHEN g % 50 = 0 THEN 'cancelled' ELSE 'pending' END) AS doc
                  FROM generate_series(1, :n) AS g) d) x;

-- learning agreements: every 10th student, as the partner serves them
SELECT count(*) FILTER (WHERE r = 'stored') AS las_stored
  FROM (SELECT smile.la_store_incoming(
                   format('<omobility-las-get-response xmlns="https://github.com/erasmus-without-paper/ewp-specs-api-omobility-las/blob/stable-v1/endpoints/get-response.xsd">'
                          '<la><omobility-id>bench-%1$s</omobility-id>'
                          '<sending-hei><hei-id>%2$s</hei-id><ounit-name>Faculty</ounit-name></sending-hei>'
                          '<receiving-hei><hei-id>%3$s</hei-id><ounit-name>UFR</ounit-name></receiving-hei>'
                          '%4$s</la></omobility-las-get-response>',
                          g, format('p%s.partners.bench.example', 1 + g % :partners), :'hei',
                          CASE WHEN g % 100 = 10
                               THEN format('<changes-proposal id="bench-%s-cp1">%s%s</changes-proposal>', g, c.comp, c.sig)
                               ELSE format('<first-version>%s%s</first-version>', c.comp, c.sig) END)::xml,
                   format('p%s.partners.bench.example', 1 + g % :partners),
                   format('p%s.partners.bench.example', 1 + g % :partners),
                   'bench-' || g) AS r
          FROM generate_series(10, :n, 10) AS g,
               (SELECT '<components-studied>'
                       '<component><title>Contract law</title><credit><scheme>ects</scheme><value>6</value></credit></component>'
                       '<component><title>European history</title><credit><scheme>ects</scheme><value>5</value></credit></component>'
                       '<component><title>French B2</title><credit><scheme>ects</scheme><value>3</value></credit></component>'
                       '</components-studied>' AS comp,
                       '<student-signature><signer-name>Student</signer-name><signer-position>Student</signer-position>'
                       '<signer-email>student@example.org</signer-email><timestamp>2026-03-01T10:00:00Z</timestamp>'
                       '</student-signature>' AS sig) c) x;

-- as autovacuum would have done by the time staff look
ANALYZE;
