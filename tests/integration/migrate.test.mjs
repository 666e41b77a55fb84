// ewpctl migrate against a real, throwaway PostgreSQL: from empty, re-run
// as a no-op, a failing migration leaves the schema as it was, a changed
// or missing file is refused before anything runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { describeRun, makeTempDir, runEwpctl } from './lib/daemon.mjs';
import { REPO_ROOT } from './lib/env.mjs';
import { Postgres } from './lib/pg.mjs';

let dir;
let pg;

before(async () => {
  dir = makeTempDir('migrate');
  pg = await Postgres.start(dir);
});
after(() => {
  pg?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function migrate(sqlDir, db = 'postgres') {
  const conninfo = pg.conninfo.replace(/dbname=\S+/, `dbname=${db}`);
  return runEwpctl(['migrate', '--dir', sqlDir, '--conninfo', conninfo]);
}

function freshDb(name) {
  pg.psql(`CREATE DATABASE ${name}`);
  return (sql) => {
    const saved = pg.conninfo;
    pg.conninfo = saved.replace(/dbname=\S+/, `dbname=${name}`);
    try { return pg.psql(sql); } finally { pg.conninfo = saved; }
  };
}

function sqlDir(name, files) {
  const d = path.join(dir, name);
  fs.mkdirSync(d);
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(d, f), text);
  return d;
}

test('migrate: the project migrations apply to an empty database, then a re-run does nothing', () => {
  const q = freshDb('project');
  const projectSql = path.join(REPO_ROOT, 'sql');
  const files = fs.readdirSync(projectSql).filter((f) => /^\d{4}_.*\.sql$/.test(f)).sort();
  let r = migrate(projectSql, 'project');
  assert.equal(r.status, 0, describeRun(r));
  for (const f of files) assert.match(r.stdout, new RegExp(`applied ${f}`), describeRun(r));
  assert.equal(q('SELECT count(*) FROM ewp.schema_migrations'), String(files.length));
  const before = q("SELECT string_agg(version || ':' || sha256 || ':' || applied_at, ',' ORDER BY version) FROM ewp.schema_migrations");
  r = migrate(projectSql, 'project');
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /up to date/, describeRun(r));
  assert.equal(q("SELECT string_agg(version || ':' || sha256 || ':' || applied_at, ',' ORDER BY version) FROM ewp.schema_migrations"), before,
    'a second run must not touch the bookkeeping');
});

test('migrate: a failing migration is rolled back whole and stops the run', () => {
  const q = freshDb('failing');
  const d = sqlDir('failing', {
    '0001_base.sql': 'CREATE SCHEMA smile; CREATE TABLE smile.a (id int PRIMARY KEY);',
    '0002_bad.sql': 'CREATE TABLE smile.b (id int); INSERT INTO smile.a VALUES (1); SELECT no_such_function();',
    '0003_after.sql': 'CREATE TABLE smile.c (id int);',
  });
  const r = migrate(d, 'failing');
  assert.equal(r.status, 1, describeRun(r));
  assert.match(r.stderr, /0002_bad\.sql.*no_such_function/s, 'the error names the file and the database message');
  assert.match(r.stderr, /rolled back; 1 of 3 migrations applied/, describeRun(r));
  assert.equal(q("SELECT to_regclass('smile.b') IS NULL"), 't', 'the table of the failed migration must not exist');
  assert.equal(q('SELECT count(*) FROM smile.a'), '0', 'no row of the failed migration may remain');
  assert.equal(q("SELECT to_regclass('smile.c') IS NULL"), 't', 'later migrations must not run');
  assert.equal(q('SELECT string_agg(name, \',\') FROM ewp.schema_migrations'), '0001_base.sql');
});

test('migrate: an applied file that changed, a gap in the numbers, an unknown applied number → refused, nothing run', () => {
  const q = freshDb('refusals');
  const d = sqlDir('refusals', {
    '0001_base.sql': 'CREATE SCHEMA smile;',
    '0002_more.sql': 'CREATE TABLE smile.a (id int);',
  });
  let r = migrate(d, 'refusals');
  assert.equal(r.status, 0, describeRun(r));

  fs.appendFileSync(path.join(d, '0001_base.sql'), '\n-- edited after release\n');
  fs.writeFileSync(path.join(d, '0003_new.sql'), 'CREATE TABLE smile.n (id int);');
  r = migrate(d, 'refusals');
  assert.equal(r.status, 1, describeRun(r));
  assert.match(r.stderr, /0001_base\.sql was changed after it was applied/, describeRun(r));
  assert.equal(q("SELECT to_regclass('smile.n') IS NULL"), 't', 'nothing may run after a refusal');

  fs.writeFileSync(path.join(d, '0001_base.sql'), 'CREATE SCHEMA smile;');
  fs.renameSync(path.join(d, '0003_new.sql'), path.join(d, '0004_new.sql'));
  r = migrate(d, 'refusals');
  assert.equal(r.status, 1, describeRun(r));
  assert.match(r.stderr, /0004_new\.sql: expected migration number 0003/, describeRun(r));
  assert.equal(q("SELECT to_regclass('smile.n') IS NULL"), 't');

  fs.rmSync(path.join(d, '0004_new.sql'));
  fs.rmSync(path.join(d, '0002_more.sql'));
  r = migrate(d, 'refusals');
  assert.equal(r.status, 1, describeRun(r));
  assert.match(r.stderr, /migration 2 \(0002_more\.sql\) that is not among the files/, describeRun(r));
});

test('migrate: an unreachable database gives a readable error', () => {
  const d = sqlDir('unreachable', { '0001_base.sql': 'SELECT 1;' });
  const r = runEwpctl(['migrate', '--dir', d, '--conninfo', `host=${path.join(dir, 'nowhere')} port=1 dbname=x connect_timeout=2`]);
  assert.equal(r.status, 1, describeRun(r));
  assert.match(r.stderr, /cannot connect to the database/, describeRun(r));
});

test('migrate: the schema keeps the data true (tests/sql/schema_test.sql: seeds, triggers, every constraint)', () => {
  freshDb('constraints');
  const r0 = migrate(path.join(REPO_ROOT, 'sql'), 'constraints');
  assert.equal(r0.status, 0, describeRun(r0));
  const conninfo = pg.conninfo.replace(/dbname=\S+/, 'dbname=constraints');
  const r = spawnSync('psql', [conninfo, '-v', 'ON_ERROR_STOP=1', '--single-transaction', '-q',
    '-f', path.join(REPO_ROOT, 'tests', 'sql', 'schema_test.sql')], { encoding: 'utf8' });
  assert.equal(r.status, 0, `schema_test.sql failed:\n${r.stdout}\n${r.stderr}`);
});
