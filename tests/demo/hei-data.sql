-- Demo data of node 1 (`make demo`): our institution with two faculties,
-- and the partner as SMILE knows it before any sync: by its Erasmus code
-- only, with one name. `ewpctl sync institutions` finds its SCHAC id in the
-- catalogue, then fills in the rest from the partner's own APIs.
-- Fictitious names and numbers.
INSERT INTO smile.etablissement (schac_id, erasmus_code, pic, names, abbreviation, website_url, is_local)
VALUES ('demo.smile-ewp.example', 'F  DEMO01', '999000001',
        '[{"lang":"fr","name":"Université de démonstration SMILE"},{"lang":"en","name":"SMILE Demo University"}]',
        'UDS', 'https://www.demo.smile-ewp.example/', true),
       (NULL, 'D  MUSTERS01', NULL, '[{"lang":"de","name":"Uni Musterstadt"}]', NULL, NULL, false);

INSERT INTO smile.address (etablissement_id, kind, recipient_names, street_name, building_number,
                           postal_code, locality, country)
SELECT id, 'street', '{"Direction des relations internationales"}', 'Esplanade de la Paix', '1',
       '14000', 'Caen', 'FR'
FROM smile.etablissement WHERE schac_id = 'demo.smile-ewp.example';

INSERT INTO smile.composante (etablissement_id, ounit_id, code, names)
SELECT id, 'ou-sciences', 'SCI', '[{"lang":"fr","name":"UFR des Sciences"},{"lang":"en","name":"Faculty of Science"}]'
FROM smile.etablissement WHERE schac_id = 'demo.smile-ewp.example';
INSERT INTO smile.composante (etablissement_id, ounit_id, code, names)
SELECT id, 'ou-lettres', 'LET', '[{"lang":"fr","name":"UFR des Lettres"},{"lang":"en","name":"Faculty of Arts"}]'
FROM smile.etablissement WHERE schac_id = 'demo.smile-ewp.example';
