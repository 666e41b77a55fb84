-- Demo data of node 2 (`make demo`): the partner, a fictitious German
-- university, as its own SMILE-like database holds it: names in three
-- languages, two addresses, contacts, and two faculties with departments.
-- Every name, address, e-mail and number is made up.
INSERT INTO smile.etablissement (schac_id, erasmus_code, pic, names, abbreviation, country,
                                 website_url, factsheet_url, is_local)
VALUES ('uni-musterstadt.example', 'D  MUSTERS01', '999000002',
        '[{"lang":"de","name":"Universität Musterstadt"},{"lang":"en","name":"University of Musterstadt"},'
        '{"lang":"fr","name":"Université de Musterstadt"}]',
        'UMS', 'DE', 'https://www.uni-musterstadt.example/',
        'https://www.uni-musterstadt.example/international/factsheet', true);

INSERT INTO smile.address (etablissement_id, kind, recipient_names, street_name, building_number,
                           postal_code, locality, country)
SELECT id, 'street', '{"Akademisches Auslandsamt"}', 'Universitätsplatz', '1', '99999', 'Musterstadt', 'DE'
FROM smile.etablissement WHERE schac_id = 'uni-musterstadt.example';
INSERT INTO smile.address (etablissement_id, kind, lines, postal_code, locality, country)
SELECT id, 'mailing', '{"Universität Musterstadt","International Office","Postfach 10 00 00"}',
       '99998', 'Musterstadt', 'DE'
FROM smile.etablissement WHERE schac_id = 'uni-musterstadt.example';
INSERT INTO smile.contact (etablissement_id, names, given_names, family_name, emails, phones, role_descriptions)
SELECT id, '[{"lang":"de","name":"Akademisches Auslandsamt"},{"lang":"en","name":"International Office"}]',
       'Erika', 'Mustermann', '{"incoming@uni-musterstadt.example"}', '{"+491234567890"}',
       '[{"lang":"en","name":"Incoming exchange students"},{"lang":"de","name":"Incoming-Studierende"}]'
FROM smile.etablissement WHERE schac_id = 'uni-musterstadt.example';

-- Units: two faculties (roots), each with departments (children).
INSERT INTO smile.composante (etablissement_id, ounit_id, code, abbreviation, names, website_url)
SELECT id, 'ums-fak-mn', 'MN', 'MNF',
       '[{"lang":"de","name":"Mathematisch-Naturwissenschaftliche Fakultät"},'
       '{"lang":"en","name":"Faculty of Mathematics and Natural Sciences"},'
       '{"lang":"fr","name":"Faculté de mathématiques et de sciences naturelles"}]',
       'https://mn.uni-musterstadt.example/'
FROM smile.etablissement WHERE schac_id = 'uni-musterstadt.example';
INSERT INTO smile.composante (etablissement_id, ounit_id, code, abbreviation, names)
SELECT id, 'ums-fak-phil', 'PHIL', 'PhilFak',
       '[{"lang":"de","name":"Philosophische Fakultät"},{"lang":"en","name":"Faculty of Humanities"},'
       '{"lang":"fr","name":"Faculté des lettres"}]'
FROM smile.etablissement WHERE schac_id = 'uni-musterstadt.example';

INSERT INTO smile.composante (etablissement_id, ounit_id, code, names, parent_id)
SELECT p.etablissement_id, v.ounit_id, v.code, v.names::jsonb, p.id
FROM (VALUES
        ('ums-inst-inf', 'MN-INF', 'MN',
         '[{"lang":"de","name":"Institut für Informatik"},{"lang":"en","name":"Department of Computer Science"}]'),
        ('ums-inst-phys', 'MN-PHYS', 'MN',
         '[{"lang":"de","name":"Institut für Physik"},{"lang":"en","name":"Department of Physics"}]'),
        ('ums-inst-rom', 'PHIL-ROM', 'PHIL',
         '[{"lang":"de","name":"Institut für Romanistik"},{"lang":"en","name":"Department of Romance Studies"},'
         '{"lang":"fr","name":"Département d''études romanes"}]')
     ) AS v (ounit_id, code, parent_code, names)
JOIN smile.composante p ON p.code = v.parent_code
JOIN smile.etablissement e ON e.id = p.etablissement_id AND e.schac_id = 'uni-musterstadt.example';

-- The Erasmus coordinator of the Romance Studies department, and its address.
INSERT INTO smile.contact (composante_id, names, given_names, family_name, emails, role_descriptions)
SELECT id, '[{"lang":"de","name":"Erasmus-Koordination Romanistik"}]', 'Max', 'Mustermann',
       '{"erasmus-romanistik@uni-musterstadt.example"}',
       '[{"lang":"en","name":"Departmental Erasmus coordinator"}]'
FROM smile.composante WHERE ounit_id = 'ums-inst-rom';
INSERT INTO smile.address (composante_id, kind, street_name, building_number, postal_code, locality, country)
SELECT id, 'street', 'Sprachenweg', '7', '99999', 'Musterstadt', 'DE'
FROM smile.composante WHERE ounit_id = 'ums-inst-rom';
