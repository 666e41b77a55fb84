// ewpctl import against a real, throwaway PostgreSQL with the project's
// migrations: SMILE's CSV exports (composantes, formations, cours,
// nominations) import, re-import as a no-op, and a file with bad lines is
// reported line by line with nothing written.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { describeRun, makeTempDir, runEwpctl } from './lib/daemon.mjs';
import { REPO_ROOT } from './lib/env.mjs';
import { Postgres } from './lib/pg.mjs';

const DATA = path.join(REPO_ROOT, 'tests', 'data', 'import');
let dir;
let pg;

before(async () => {
  dir = makeTempDir('import');
  pg = await Postgres.start(dir);
  const r = runEwpctl(['migrate', '--dir', path.join(REPO_ROOT, 'sql'), '--conninfo', pg.conninfo]);
  assert.equal(r.status, 0, describeRun(r));
  // our HEI (owner of the composantes) and two partners known by Erasmus code
  pg.psql(`INSERT INTO smile.etablissement (schac_id, erasmus_code, names, is_local) VALUES
    ('smile.test', 'F  CAEN01', '[{"lang":"fr","name":"Université de test"}]', true),
    (NULL, 'A  GRAZ01', '[{"name":"Universität Graz"}]', false),
    ('unipv.it', 'I   PAVIA01', '[{"name":"Università di Pavia"}]', false)`);
});
after(() => {
  pg?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function imp(kind, file, ...extra) {
  const f = path.isAbsolute(file) ? file : path.join(DATA, file);
  return runEwpctl(['import', kind, f, '--conninfo', pg.conninfo, ...extra]);
}

function writeCsv(name, text) {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

const snapshot = (table) => pg.psql(`SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY id), '')) FROM smile.${table} t`);

test('import: composantes, formations, cours and nominations import, then re-import unchanged', () => {
  const files = [
    ['composantes', 'composantes.csv', ['--separator', ';'], 'composante', 3],
    ['formations', 'formations.csv', ['--separator', ';'], 'formation', 2],
    ['cours', 'cours.csv', [], 'cours', 4],
    ['nominations', 'nominations.csv', ['--separator', ';'], 'inscription', 2],
  ];
  for (const [kind, file, extra, table, n] of files) {
    let r = imp(kind, file, ...extra);
    assert.equal(r.status, 0, describeRun(r));
    assert.match(r.stdout, new RegExp(`${n} inserted, 0 updated, 0 unchanged`), describeRun(r));
    assert.equal(pg.psql(`SELECT count(*) FROM smile.${table}`), String(n));
    const before1 = snapshot(table);
    r = imp(kind, file, ...extra);
    assert.equal(r.status, 0, describeRun(r));
    assert.match(r.stdout, new RegExp(`0 inserted, 0 updated, ${n} unchanged`), describeRun(r));
    assert.equal(snapshot(table), before1, `re-importing ${file} must not touch ${table}`);
  }
  // what landed where
  assert.equal(pg.psql(`SELECT p.code FROM smile.composante c JOIN smile.composante p ON p.id = c.parent_id WHERE c.code = 'DEP-INFO'`), 'UFR-SCI');
  assert.equal(pg.psql(`SELECT names->0->>'name' FROM smile.composante WHERE code = 'UFR-LET'`), 'UFR Lettres; Langues');
  assert.equal(pg.psql(`SELECT objectives FROM smile.formation WHERE code = 'L3-INFO'`), 'Former des\r\ninformaticiens');
  assert.equal(pg.psql(`SELECT c.code FROM smile.formation f JOIN smile.composante c ON c.id = f.composante_id WHERE f.code = 'M1-LET'`), 'UFR-LET');
  assert.equal(pg.psql(`SELECT ects || '/' || hours || '/' || s1 || s2 || '/' || description FROM smile.cours WHERE code = 'INF501'`), '6.0/48.00/truefalse/Graphes, "arbres" et tris');
  assert.equal(pg.psql(`SELECT open_to_mobility FROM smile.cours WHERE code = 'LET701'`), 'f');
  assert.equal(pg.psql(`SELECT formation_id IS NULL FROM smile.cours WHERE code = 'FLE100'`), 't');
  assert.equal(pg.psql(`SELECT birth_date || ' ' || s.code || ' ' || i.status || ' ' || e.erasmus_code FROM smile.inscription i JOIN smile.step s ON s.id = i.step_id JOIN smile.etablissement e ON e.id = i.home_etablissement_id WHERE email = 'marco.rossi@unipv.it'`),
    '2004-02-29 pre-registration 1 I   PAVIA01');
});

test('import: a changed line is an update, the others stay unchanged', () => {
  const f = writeCsv('cours_changed.csv', fs.readFileSync(path.join(DATA, 'cours.csv'), 'utf8').replace('Stylistique', 'Stylistique française'));
  const r = imp('cours', f);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /0 inserted, 1 updated, 3 unchanged/, describeRun(r));
  assert.equal(pg.psql(`SELECT title FROM smile.cours WHERE code = 'LET701'`), 'Stylistique française');
});

test('import: three bad lines → exit 1, each reported with its line, the table unchanged', () => {
  const before1 = snapshot('cours');
  const r = imp('cours', 'cours_bad.csv');
  assert.equal(r.status, 1, describeRun(r));
  assert.match(r.stderr, /cours_bad\.csv:3: column ects: not a number/, describeRun(r));
  assert.match(r.stderr, /cours_bad\.csv:4: column code_formation: unknown formation "NOPE-99"/, describeRun(r));
  assert.match(r.stderr, /cours_bad\.csv:6: column langue: not a language tag/, describeRun(r));
  assert.match(r.stderr, /3 of 5 lines rejected, nothing imported/, describeRun(r));
  assert.doesNotMatch(r.stderr, /cours_bad\.csv:[25]:/, 'good lines are not reported');
  assert.equal(snapshot('cours'), before1, 'the good lines of a rejected file must not be written');
  assert.equal(pg.psql(`SELECT count(*) FROM smile.cours WHERE code = 'INF503'`), '0');
});

test('import: --dry-run reports the counts and writes nothing', () => {
  const f = writeCsv('cours_new.csv', 'code,libelle,langue,s1,s2,ects,vol,ouvert_mobilite,code_formation,objectif,description\nNEW1,Nouveau,fr,1,0,3,20,1,L3-INFO,,\nINF502,Bases de données,en,0,1,5.5,36.5,oui,L3-INFO,,\n');
  const before1 = snapshot('cours');
  let r = imp('cours', f, '--dry-run');
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /1 inserted, 0 updated, 1 unchanged \(dry run/, describeRun(r));
  assert.equal(snapshot('cours'), before1);
  r = imp('cours', 'cours_bad.csv', '--dry-run');
  assert.equal(r.status, 1, describeRun(r));
  assert.equal(snapshot('cours'), before1);
});

test('import: a wrong header is refused with the missing and unknown columns', () => {
  const r = imp('cours', 'cours_bad_header.csv');
  assert.equal(r.status, 1, describeRun(r));
  assert.match(r.stderr, /header is not that of cours/, describeRun(r));
  assert.match(r.stderr, /missing columns: libelle, ects/, describeRun(r));
  assert.match(r.stderr, /unknown or repeated columns: "titre", "credits"/, describeRun(r));
  // composantes with the separator left at ',' : one big unknown column
  const r2 = imp('composantes', 'composantes.csv');
  assert.equal(r2.status, 1, describeRun(r2));
  assert.match(r2.stderr, /missing columns: code, libelle, acronyme, code_parent/, describeRun(r2));
});

test('import: an unknown composante, institution or parent is a rejected line', () => {
  const before1 = snapshot('formation');
  let r = imp('formations', 'formations_unknown_composante.csv', '--separator', ';');
  assert.equal(r.status, 1, describeRun(r));
  assert.match(r.stderr, /formations_unknown_composante\.csv:2: column code_composante: unknown composante "UFR-NOPE"/, describeRun(r));
  assert.equal(snapshot('formation'), before1);
  const f = writeCsv('nom_bad.csv', 'firstname;lastname;email;year;birthdate;esi;city;postalcode;street;numstreet;mailreferent;code_etablissement\n'
    + 'Jan;Nowak;jan@uw.edu.pl;2025;28/02/2004;;;;;;;PL WARSZAW01\n'
    + 'Ola;Nowak;ola@uw.edu.pl;2025;31/02/2004;;;;;;;CZ PRAHA07\n'
    + 'Eva;Novak;eva@cuni.cz;1999;01/01/2003;esi:cz:1;;;;;pas-un-mail;I   PAVIA01\n');
  r = imp('nominations', f, '--separator', ';');
  assert.equal(r.status, 1, describeRun(r));
  for (const re of [/nom_bad\.csv:2: column code_etablissement: unknown institution "PL WARSZAW01"/, /nom_bad\.csv:3: column birthdate: not a date/,
    /nom_bad\.csv:3: column code_etablissement: unknown institution "CZ PRAHA07"/,
    /nom_bad\.csv:4: column year/, /nom_bad\.csv:4: column esi/, /nom_bad\.csv:4: column mailreferent/, /3 of 3 lines rejected/]) {
    assert.match(r.stderr, re, describeRun(r));
  }
  assert.equal(pg.psql('SELECT count(*) FROM smile.inscription'), '2');
});

test('import: database-level refusals are reported with their line too', () => {
  // a parent cycle is only visible to the database's trigger
  const f = writeCsv('comp_cycle.csv', 'code;libelle;acronyme;code_parent\nUFR-SCI;UFR des Sciences;SCI;DEP-INFO\n');
  const before1 = snapshot('composante');
  const r = imp('composantes', f, '--separator', ';');
  assert.equal(r.status, 1, describeRun(r));
  assert.match(r.stderr, /comp_cycle\.csv:2: refused by the database: .*cycle/, describeRun(r));
  assert.equal(snapshot('composante'), before1);
});

test('import: CSV syntax errors, duplicates and usage', () => {
  let f = writeCsv('broken.csv', 'code,libelle,langue,s1,s2,ects,vol,ouvert_mobilite,code_formation,objectif,description\nA,"open quote,fr,1,0,3,20,1,,,\n');
  let r = imp('cours', f);
  assert.equal(r.status, 1, describeRun(r));
  assert.match(r.stderr, /broken\.csv: line 2, column 3: quoted field not closed/, describeRun(r));
  f = writeCsv('dup.csv', 'code,libelle,langue,s1,s2,ects,vol,ouvert_mobilite,code_formation,objectif,description\nD1,Un,fr,1,0,3,20,1,,,\nD1,Deux,fr,1,0,3,20,1,,,\nD2,Trois,fr,1,0,3,20,1\n');
  r = imp('cours', f);
  assert.equal(r.status, 1, describeRun(r));
  assert.match(r.stderr, /dup\.csv:3: same key as line 2/, describeRun(r));
  assert.match(r.stderr, /dup\.csv:4: 8 fields, expected 11/, describeRun(r));
  assert.equal(pg.psql(`SELECT count(*) FROM smile.cours WHERE code IN ('D1', 'D2')`), '0');
  for (const args of [['import'], ['import', 'bogus', f], ['import', 'cours', f, '--separator', ';;'], ['import', 'cours', f, '--nope']]) {
    r = runEwpctl([...args, '--conninfo', pg.conninfo]);
    assert.equal(r.status, 2, describeRun(r));
  }
});
