// ewpctl user: the staff portal's accounts, run for real against a
// throwaway PostgreSQL migrated with the project's sql/. Stored password
// hashes are checked with Node's own scrypt (an implementation other than
// OpenSSL's call in ewpd/ewpctl), every change with its audit row, every
// refusal with "nothing written".
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { describeRun, makeTempDir, runEwpctl } from './lib/daemon.mjs';
import { EWPCTL, KEEP_TMP, REPO_ROOT, requireBinary } from './lib/env.mjs';
import { Postgres } from './lib/pg.mjs';

const OPERATOR = 'it-operator';
const HASH_RE = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$/;
const PW_ALICE = 'correct horse battery staple';
const PW_SAME = 'the very same passphrase';

let dir;
let pg;
const outputs = []; // every stdout and stderr, checked for secrets at the end
const secrets = new Set([PW_ALICE, PW_SAME]);

before(async () => {
  requireBinary(EWPCTL, 'ewpctl');
  dir = makeTempDir('ewpctl-user');
  pg = await Postgres.start(dir);
  const r = runEwpctl(['migrate', '--dir', path.join(REPO_ROOT, 'sql'), '--conninfo', pg.conninfo]);
  assert.equal(r.status, 0, describeRun(r));
  // Our institution and three of its composantes; a partner with a
  // composante of the same code as ours and one of its own.
  pg.psql(`
    INSERT INTO smile.etablissement (schac_id, names, is_local)
      VALUES ('smile.test', '[{"lang": "fr", "name": "Université de test"}]', true),
             ('partner.example.org', '[{"lang": "en", "name": "Partner"}]', false);
    INSERT INTO smile.composante (etablissement_id, code, names)
      SELECT e.id, c, '[{"name": "unit"}]'
        FROM smile.etablissement e, unnest(ARRAY['UFR-SCI', 'UFR-LET', 'IAE']) c WHERE e.is_local;
    INSERT INTO smile.composante (etablissement_id, code, names)
      SELECT e.id, c, '[{"name": "partner unit"}]'
        FROM smile.etablissement e, unnest(ARRAY['UFR-SCI', 'PARTNER-ONLY']) c WHERE NOT e.is_local;`);
});

after(() => {
  pg?.stop();
  if (dir && !KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
});

// ewpctl user ARGS --conninfo ..., stdin from `input` (never a terminal).
function user(args, input = '') {
  const full = ['user', ...args, '--conninfo', pg.conninfo];
  const r = spawnSync(EWPCTL, full, {
    encoding: 'utf8', input, timeout: 30000, env: { ...process.env, USER: OPERATOR },
  });
  if (r.error) throw new Error(`cannot run ewpctl: ${r.error.message}`);
  outputs.push(r.stdout, r.stderr);
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, cmd: `ewpctl ${full.join(' ')}` };
}

const q = (sql) => pg.psql(sql);
const lit = (s) => `'${s.replace(/'/g, "''")}'`;

function row(username) {
  const out = q(`SELECT row_to_json(u) FROM (SELECT id, username, display_name, email, lang, active,
    password_hash, failed_logins, locked_until FROM smile.utilisateur WHERE lower(username) = lower(${lit(username)})) u`);
  return out ? JSON.parse(out) : null;
}

function roles(username) {
  return q(`SELECT coalesce(string_agg(r.code, ',' ORDER BY r.code), '') FROM smile.utilisateur_role ur
    JOIN smile.role r ON r.id = ur.role_id JOIN smile.utilisateur u ON u.id = ur.utilisateur_id
    WHERE u.username = ${lit(username)}`);
}

// "role:CODE,CODE" of the user's limits, with each composante's institution.
function limits(username) {
  return q(`SELECT coalesce(string_agg(r.code || ':' || c.code || '@' || e.schac_id, ' ' ORDER BY r.code, c.code), '')
    FROM smile.utilisateur_composante uc JOIN smile.role r ON r.id = uc.role_id
    JOIN smile.composante c ON c.id = uc.composante_id JOIN smile.etablissement e ON e.id = c.etablissement_id
    JOIN smile.utilisateur u ON u.id = uc.utilisateur_id WHERE u.username = ${lit(username)}`);
}

function audits(username) {
  const out = q(`SELECT coalesce(json_agg(a ORDER BY a.id), '[]') FROM (SELECT id, actor, action, object_type,
    object_id, details, utilisateur_id FROM ewp.audit_log WHERE object_id = ${lit(username)}) a`);
  return JSON.parse(out);
}

// Everything a command could have written, to show that a refusal wrote nothing.
function snapshot() {
  return q(`SELECT concat_ws(' | ',
    (SELECT string_agg(u::text, ';' ORDER BY u.id) FROM smile.utilisateur u),
    (SELECT string_agg(ur::text, ';' ORDER BY ur.utilisateur_id, ur.role_id) FROM smile.utilisateur_role ur),
    (SELECT string_agg(uc::text, ';' ORDER BY uc.utilisateur_id, uc.role_id, uc.composante_id) FROM smile.utilisateur_composante uc),
    (SELECT string_agg(s::text, ';' ORDER BY s.token_sha256) FROM ewp.portal_sessions s),
    (SELECT count(*)::text FROM ewp.audit_log))`);
}

function refusedUnchanged(args, input, status, stderrRe) {
  const before0 = snapshot();
  const r = user(args, input);
  assert.equal(r.status, status, describeRun(r));
  if (stderrRe) assert.match(r.stderr, stderrRe, describeRun(r));
  assert.equal(snapshot(), before0, `nothing may be written by a refused command\n${describeRun(r)}`);
  return r;
}

// The stored string verified by Node's scrypt.
function nodeVerifies(stored, password) {
  const m = HASH_RE.exec(stored);
  assert.ok(m, `stored hash ${JSON.stringify(stored)} does not have the documented form`);
  const salt = Buffer.from(m[4], 'base64');
  const want = Buffer.from(m[5], 'base64');
  assert.equal(salt.length, 16);
  assert.equal(want.length, 32);
  const got = crypto.scryptSync(password, salt, 32,
    { N: 2 ** Number(m[1]), r: Number(m[2]), p: Number(m[3]), maxmem: 256 * 1024 * 1024 });
  return got.equals(want);
}

function addSessions(username, n, { revokedAt = null } = {}) {
  q(`INSERT INTO ewp.portal_sessions (token_sha256, utilisateur_id, expires_at, revoked_at)
     SELECT sha256(convert_to(${lit(username)} || random()::text || x::text, 'UTF8')), u.id,
            now() + interval '1 hour', ${revokedAt ? lit(revokedAt) : 'NULL'}
       FROM smile.utilisateur u, generate_series(1, ${n}) x WHERE u.username = ${lit(username)}`);
}

function openSessions(username) {
  return Number(q(`SELECT count(*) FROM ewp.portal_sessions s JOIN smile.utilisateur u ON u.id = s.utilisateur_id
    WHERE u.username = ${lit(username)} AND s.revoked_at IS NULL`));
}

test('ewpctl user --help: every subcommand, the password rules, exit 0; no subcommand: usage on stderr, exit 2', () => {
  const r = runEwpctl(['user', '--help']);
  assert.equal(r.status, 0, describeRun(r));
  for (const s of ['add', 'passwd', 'role', 'disable', 'enable', 'unlock', 'list', 'show']) {
    assert.match(r.stdout, new RegExp(`ewpctl user ${s}\\b`), `--help lacks "user ${s}"\n${describeRun(r)}`);
  }
  assert.match(r.stdout, /--password-stdin/);
  assert.match(r.stdout, /--composante CODE/);
  assert.match(r.stdout, /12 to 1024 bytes/);
  const sub = runEwpctl(['user', 'role', '--help']);
  assert.equal(sub.status, 0, describeRun(sub));
  assert.match(sub.stdout, /user role USERNAME ROLE/);
  assert.doesNotMatch(sub.stdout, /user add/, 'a subcommand\'s help is about that subcommand');
  const none = runEwpctl(['user']);
  assert.equal(none.status, 2, describeRun(none));
  assert.match(none.stderr, /usage: ewpctl user/);
  const main = runEwpctl(['--help']);
  assert.match(main.stdout, /user add\|passwd\|role/, 'ewpctl --help names the user command');
  const unknown = runEwpctl(['user', 'frobnicate']);
  assert.equal(unknown.status, 2, describeRun(unknown));
});

test('user add --password-stdin: the row, a scrypt hash Node verifies (ln=15 r=8 p=1), default role + the roles asked, audit row', () => {
  const r = user(['add', 'alice@unicaen.fr', '--name', 'Alice Martin', '--email', 'alice@unicaen.fr',
    '--role', 'Gestionnaire', '--lang', 'en', '--password-stdin'], `${PW_ALICE}\n`);
  assert.equal(r.status, 0, describeRun(r));
  const u = row('alice@unicaen.fr');
  secrets.add(u.password_hash);
  assert.equal(u.display_name, 'Alice Martin');
  assert.equal(u.email, 'alice@unicaen.fr');
  assert.equal(u.lang, 'en');
  assert.equal(u.active, true);
  assert.equal(u.failed_logins, 0);
  const m = HASH_RE.exec(u.password_hash);
  assert.ok(m, `hash form: ${u.password_hash}`);
  assert.deepEqual([m[1], m[2], m[3]], ['15', '8', '1'], 'default parameters ln=15 r=8 p=1');
  assert.ok(nodeVerifies(u.password_hash, PW_ALICE), 'the stored hash must verify the password given');
  assert.ok(!nodeVerifies(u.password_hash, `${PW_ALICE}\n`), 'the trailing newline is not part of the password');
  assert.ok(!nodeVerifies(u.password_hash, 'correct horse battery stapler'));
  assert.equal(roles('alice@unicaen.fr'), 'Standard,gestionnaire');
  const a = audits('alice@unicaen.fr');
  assert.equal(a.length, 1, JSON.stringify(a));
  assert.equal(a[0].actor, 'ewpctl');
  assert.equal(a[0].action, 'user.add');
  assert.equal(a[0].object_type, 'user');
  assert.equal(a[0].details.user, OPERATOR);
  assert.equal(a[0].details.local_password, true);
  assert.deepEqual([...a[0].details.roles].sort(), ['Standard', 'gestionnaire']);
  assert.equal(JSON.stringify(a[0]).includes('$scrypt$'), false, 'no hash in the audit log');
});

test('user add: two users with the same password get different salts and hashes, both verify; a CRLF line works too', () => {
  let r = user(['add', 'same1', '--name', 'Same One', '--password-stdin'], `${PW_SAME}\n`);
  assert.equal(r.status, 0, describeRun(r));
  r = user(['add', 'same2', '--name', 'Same Two', '--password-stdin'], `${PW_SAME}\r\n`);
  assert.equal(r.status, 0, describeRun(r));
  const h1 = row('same1').password_hash;
  const h2 = row('same2').password_hash;
  secrets.add(h1);
  secrets.add(h2);
  assert.notEqual(h1, h2);
  assert.notEqual(HASH_RE.exec(h1)[4], HASH_RE.exec(h2)[4], 'salts must differ');
  assert.ok(nodeVerifies(h1, PW_SAME));
  assert.ok(nodeVerifies(h2, PW_SAME));
});

test('user add without --password-stdin: single sign-on only (password_hash NULL), default role only, lang NULL', () => {
  const r = user(['add', 'bob', '--name', 'Bob Étienne']);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /single sign-on/);
  const u = row('bob');
  assert.equal(u.password_hash, null);
  assert.equal(u.lang, null);
  assert.equal(u.email, null);
  assert.equal(roles('bob'), 'Standard');
  const a = audits('bob');
  assert.equal(a.length, 1);
  assert.equal(a[0].details.local_password, false);
});

test('user add refusals write nothing: existing name (any case), unknown role, weak or malformed passwords, bad options', () => {
  refusedUnchanged(['add', 'ALICE@unicaen.fr', '--name', 'Again'], '', 1, /already exists/);
  const r = refusedUnchanged(['add', 'carol', '--name', 'Carol', '--role', 'superuser'], '', 1, /no role "superuser"/);
  assert.match(r.stderr, /gestionnaire/, 'the error names the roles there are');
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line\n${describeRun(r)}`);
  refusedUnchanged(['add', 'carol', '--name', 'Carol', '--password-stdin'], 'elevenbytes\n', 1, /too short/);
  refusedUnchanged(['add', 'carol', '--name', 'Carol', '--password-stdin'], 'tab\tinside the password\n', 1, /control/);
  refusedUnchanged(['add', 'carol', '--name', 'Carol', '--password-stdin'],
    Buffer.from([...Buffer.from('invalid utf-8 here '), 0xff, 0x0a]), 1, /UTF-8/);
  refusedUnchanged(['add', 'carol', '--name', 'Carol', '--password-stdin'], `${'x'.repeat(1025)}\n`, 1, /too long/);
  refusedUnchanged(['add', 'carol', '--name', 'Carol', '--password-stdin'], '', 1, /no password on standard input/);
  refusedUnchanged(['add', 'carol', '--name', 'Carol', '--lang', 'de'], '', 2, /fr or en/);
  refusedUnchanged(['add', 'carol'], '', 2, /usage/);
  refusedUnchanged(['add', 'carol', '--name', 'Carol', '--composante', 'IAE'], '', 2, /does not take --composante/);
  refusedUnchanged(['add', 'car ol', '--name', 'Carol'], '', 2, /spaces/);
  refusedUnchanged(['add', 'carol', '--name', 'Carol', '--email', 'not an address'], '', 1, /email/);
  assert.equal(row('carol'), null);
});

test('user role: ROLE by code or label, any case, accents optional; --remove takes it away; each change audited', () => {
  const r0 = user(['add', 'carol', '--name', 'Carol']);
  assert.equal(r0.status, 0, describeRun(r0));
  const cases = [
    ['gestionnaire', 'gestionnaire'], ['Gestionnaire', 'gestionnaire'], ['GESTIONNAIRE', 'gestionnaire'],
    ['Administrateur technique', 'administrateur'], ['administrateur', 'administrateur'],
    ['admin_fonctionnel', 'admin_fonctionnel'], ['administrateur FONCTIONNEL', 'admin_fonctionnel'],
    ['Invité', 'guest'], ['invite', 'guest'], ['guest', 'guest'], ['Etudiant', 'Etudiant'],
    ['étudiant', 'Etudiant'], ['Référent', 'Référent'], ['referent', 'Référent'], ['RÉFÉRENT', 'Référent'],
  ];
  for (const [given, code] of cases) {
    const n0 = audits('carol').length;
    let r = user(['role', 'carol', given]);
    assert.equal(r.status, 0, describeRun(r));
    assert.ok(roles('carol').split(',').includes(code), `"${given}" should grant ${code}: ${roles('carol')}`);
    const a = audits('carol').at(-1);
    assert.equal(audits('carol').length, n0 + 1);
    assert.deepEqual([a.action, a.details.change, a.details.role], ['user.role', 'grant', code]);
    r = user(['role', 'carol', given, '--remove']);
    assert.equal(r.status, 0, describeRun(r));
    assert.ok(!roles('carol').split(',').includes(code) || code === 'Standard', `"${given}" --remove: ${roles('carol')}`);
    const b = audits('carol').at(-1);
    assert.deepEqual([b.action, b.details.change, b.details.role], ['user.role', 'remove', code]);
  }
  // Standard (the default role) too, by label
  let r = user(['role', 'carol', 'standard', '--remove']);
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(roles('carol'), '');
  r = user(['role', 'carol', 'Standard']);
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(roles('carol'), 'Standard');
  // removing a role not held, granting one held: nothing to do, no audit row
  const n = audits('carol').length;
  r = user(['role', 'carol', 'guest', '--remove']);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /unchanged/);
  r = user(['role', 'CAROL', 'Standard']);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /unchanged/);
  assert.equal(audits('carol').length, n);
});

test('user role --composante: limits a scopable role to our composantes, replaces the previous limit, none = every composante', () => {
  let r = user(['role', 'alice@unicaen.fr', 'gestionnaire', '--composante', 'UFR-SCI', '--composante', 'iae']);
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(limits('alice@unicaen.fr'), 'gestionnaire:IAE@smile.test gestionnaire:UFR-SCI@smile.test',
    'our UFR-SCI, never the partner\'s unit of the same code');
  let a = audits('alice@unicaen.fr').at(-1);
  assert.equal(a.action, 'user.role');
  assert.deepEqual(a.details.composantes, ['IAE', 'UFR-SCI']);
  assert.deepEqual(a.details.previous_composantes, []);
  assert.equal(a.details.previously_held, true);

  r = user(['role', 'alice@unicaen.fr', 'Gestionnaire', '--composante', 'UFR-LET']);
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(limits('alice@unicaen.fr'), 'gestionnaire:UFR-LET@smile.test', 'the new limit replaces the old one');
  a = audits('alice@unicaen.fr').at(-1);
  assert.deepEqual(a.details.composantes, ['UFR-LET']);
  assert.deepEqual(a.details.previous_composantes, ['IAE', 'UFR-SCI']);

  // the same limit again: unchanged, no audit row
  const n = audits('alice@unicaen.fr').length;
  r = user(['role', 'alice@unicaen.fr', 'gestionnaire', '--composante', 'UFR-LET', '--composante', 'UFR-LET']);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /unchanged/);
  assert.equal(audits('alice@unicaen.fr').length, n);

  // granted to a user who lacked it, with a limit
  r = user(['role', 'bob', 'gestionnaire', '--composante', 'IAE']);
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(roles('bob'), 'Standard,gestionnaire');
  assert.equal(limits('bob'), 'gestionnaire:IAE@smile.test');
  // again without --composante: every composante
  r = user(['role', 'bob', 'gestionnaire']);
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(limits('bob'), '');
  assert.match(r.stdout, /every composante/);
  // --remove takes the limits with the role
  r = user(['role', 'bob', 'gestionnaire', '--composante', 'UFR-SCI']);
  assert.equal(r.status, 0, describeRun(r));
  r = user(['role', 'bob', 'gestionnaire', '--remove']);
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(roles('bob'), 'Standard');
  assert.equal(limits('bob'), '');
});

test('user role refusals write nothing: non-scopable role with --composante, unknown composante / user / role, a partner\'s unit', () => {
  let r = refusedUnchanged(['role', 'alice@unicaen.fr', 'Référent', '--composante', 'IAE'], '', 1, /cannot be limited/);
  assert.equal(r.stderr.trim().split('\n').length, 1, describeRun(r));
  refusedUnchanged(['role', 'alice@unicaen.fr', 'administrateur', '--composante', 'IAE'], '', 1, /cannot be limited/);
  refusedUnchanged(['role', 'alice@unicaen.fr', 'gestionnaire', '--composante', 'IAE', '--composante', 'NOPE'], '', 1,
    /no composante "NOPE"/);
  refusedUnchanged(['role', 'alice@unicaen.fr', 'gestionnaire', '--composante', 'PARTNER-ONLY'], '', 1,
    /no composante "PARTNER-ONLY"/);
  refusedUnchanged(['role', 'nobody', 'gestionnaire'], '', 1, /no user "nobody"/);
  r = refusedUnchanged(['role', 'alice@unicaen.fr', 'chef'], '', 1, /no role "chef"/);
  assert.match(r.stderr, /Administrateur technique/);
  refusedUnchanged(['role', 'alice@unicaen.fr', 'gestionnaire', '--composante', 'IAE', '--remove'], '', 2, /--remove/);
  refusedUnchanged(['role', 'alice@unicaen.fr'], '', 2, /usage/);
  assert.equal(limits('alice@unicaen.fr'), 'gestionnaire:UFR-LET@smile.test');
});

test('user disable: inactive, open sessions revoked (others untouched), audited; enable: active again; both by any-case name', () => {
  const r0 = user(['add', 'dave', '--name', 'Dave']);
  assert.equal(r0.status, 0, describeRun(r0));
  addSessions('dave', 2);
  addSessions('dave', 1, { revokedAt: '2020-01-01 00:00:00+00' });
  addSessions('bob', 1);
  let r = user(['disable', 'DAVE']);
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(row('dave').active, false);
  assert.equal(openSessions('dave'), 0);
  assert.equal(q(`SELECT count(*) FROM ewp.portal_sessions WHERE revoked_at = '2020-01-01 00:00:00+00'`), '1',
    'a session revoked earlier keeps its revocation time');
  assert.equal(openSessions('bob'), 1, 'another user\'s session stays open');
  let a = audits('dave').at(-1);
  assert.equal(a.action, 'user.disable');
  assert.equal(a.details.sessions_revoked, 2);
  const n = audits('dave').length;
  r = user(['disable', 'dave']);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /already disabled/);
  assert.equal(audits('dave').length, n, 'nothing changed: no audit row');
  r = user(['enable', 'dave']);
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(row('dave').active, true);
  a = audits('dave').at(-1);
  assert.equal(a.action, 'user.enable');
  refusedUnchanged(['disable', 'nobody'], '', 1, /no user "nobody"/);
});

test('user passwd: new hash (old password no longer verifies), lockout reset, sessions revoked, audited; a weak password changes nothing', () => {
  const old = row('alice@unicaen.fr');
  q(`UPDATE smile.utilisateur SET failed_logins = 5, locked_until = now() + interval '15 minutes' WHERE id = ${old.id}`);
  addSessions('alice@unicaen.fr', 3);
  refusedUnchanged(['passwd', 'alice@unicaen.fr', '--password-stdin'], 'too short\n', 1, /too short/);
  refusedUnchanged(['passwd', 'nobody', '--password-stdin'], 'a perfectly good password\n', 1, /no user "nobody"/);
  refusedUnchanged(['passwd', 'alice@unicaen.fr'], '', 2, /usage/);
  const newPw = 'Un mot de passe très sûr, avec des accents';
  secrets.add(newPw);
  const r = user(['passwd', 'Alice@Unicaen.FR', '--password-stdin'], `${newPw}\n`);
  assert.equal(r.status, 0, describeRun(r));
  const u = row('alice@unicaen.fr');
  secrets.add(u.password_hash);
  assert.notEqual(u.password_hash, old.password_hash);
  assert.ok(nodeVerifies(u.password_hash, newPw));
  assert.ok(!nodeVerifies(u.password_hash, PW_ALICE));
  assert.equal(u.failed_logins, 0);
  assert.equal(u.locked_until, null);
  assert.equal(openSessions('alice@unicaen.fr'), 0);
  const a = audits('alice@unicaen.fr').at(-1);
  assert.equal(a.action, 'user.passwd');
  assert.equal(a.details.sessions_revoked, 3);
  assert.equal(a.details.was_locked, true);
  assert.equal(a.details.had_password, true);
  // an SSO-only account gets its first local password
  const r2 = user(['passwd', 'bob', '--password-stdin'], `${PW_SAME}\n`);
  assert.equal(r2.status, 0, describeRun(r2));
  secrets.add(row('bob').password_hash);
  assert.ok(nodeVerifies(row('bob').password_hash, PW_SAME));
  assert.equal(audits('bob').at(-1).details.had_password, false);
});

test('user unlock: failed logins and lock cleared, audited with the previous values; nothing to unlock: no audit row', () => {
  q(`UPDATE smile.utilisateur SET failed_logins = 5, locked_until = now() + interval '15 minutes' WHERE username = 'dave'`);
  let r = user(['unlock', 'dave']);
  assert.equal(r.status, 0, describeRun(r));
  const u = row('dave');
  assert.equal(u.failed_logins, 0);
  assert.equal(u.locked_until, null);
  const a = audits('dave').at(-1);
  assert.equal(a.action, 'user.unlock');
  assert.equal(a.details.previous_failed_logins, 5);
  assert.ok(a.details.previous_locked_until, 'the previous lock time is recorded');
  const n = audits('dave').length;
  r = user(['unlock', 'dave']);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /unchanged/);
  assert.equal(audits('dave').length, n);
});

test('a change and its audit row are one transaction: when the audit insert fails, the change is rolled back', () => {
  addSessions('dave', 1);
  q(`CREATE FUNCTION test_audit_fail_fn() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN IF NEW.action = 'user.disable' THEN RAISE EXCEPTION 'audit refused by the test'; END IF; RETURN NEW; END $$;
     CREATE TRIGGER test_audit_fail BEFORE INSERT ON ewp.audit_log FOR EACH ROW EXECUTE FUNCTION test_audit_fail_fn();`);
  try {
    refusedUnchanged(['disable', 'dave'], '', 1, /audit refused by the test/);
    assert.equal(row('dave').active, true);
    assert.equal(openSessions('dave'), 1, 'the revocation is rolled back with the rest');
  } finally {
    q('DROP TRIGGER test_audit_fail ON ewp.audit_log; DROP FUNCTION test_audit_fail_fn();');
  }
});

test('the database refuses a password_hash not in the stored form, and parameters out of bounds', () => {
  const good = row('same1').password_hash;
  const tail = good.slice(good.indexOf('$', 8));
  for (const bad of ['plaintext password', `$scrypt$ln=21,r=8,p=1${tail}`, `$scrypt$ln=15,r=33,p=1${tail}`,
    `$scrypt$ln=15,r=8,p=5${tail}`, `${good}=`, good.replace('$scrypt$', '$2b$')]) {
    assert.throws(() => q(`UPDATE smile.utilisateur SET password_hash = ${lit(bad)} WHERE username = 'same1'`),
      /utilisateur_password_hash_format/, bad);
  }
  q(`UPDATE smile.utilisateur SET password_hash = ${lit(`$scrypt$ln=14,r=8,p=1${tail}`)} WHERE username = 'same1'`);
  assert.throws(() => q(`UPDATE smile.utilisateur SET lang = 'de' WHERE username = 'same1'`), /utilisateur_lang_known/);
  assert.throws(() => q(`UPDATE smile.utilisateur SET failed_logins = -1 WHERE username = 'same1'`), /failed_logins/);
  q(`UPDATE smile.utilisateur SET password_hash = ${lit(good)} WHERE username = 'same1'`);
});

test('user list: an aligned table with roles, limits, state and password kind of every account', () => {
  q(`UPDATE smile.utilisateur SET locked_until = now() + interval '10 minutes', failed_logins = 5 WHERE username = 'dave'`);
  const r = user(['list']);
  assert.equal(r.status, 0, describeRun(r));
  const lines = r.stdout.trimEnd().split('\n');
  const head = lines[0];
  const cols = ['USERNAME', 'NAME', 'E-MAIL', 'ROLES', 'LIMITS', 'ACTIVE', 'LOCKED', 'PASSWORD', 'LAST LOGIN'];
  const starts = [];
  for (const c of cols) starts.push(head.indexOf(c, starts.length ? starts.at(-1) + cols[starts.length - 1].length : 0));
  assert.ok(starts.every((s, i) => s >= 0 && (i === 0 || s > starts[i - 1])), `header: ${head}`);
  const users = q('SELECT string_agg(username, \',\' ORDER BY lower(username)) FROM smile.utilisateur').split(',');
  assert.equal(lines.length, users.length + 1, r.stdout);
  const cells = {};
  lines.slice(1).forEach((l, k) => {
    const chars = [...l]; // code points: "Bob Étienne" counts 11
    for (const [i, s] of starts.entries()) {
      assert.ok(i === 0 || chars[s - 1] === ' ', `column ${cols[i]} not aligned in ${JSON.stringify(l)}`);
      assert.notEqual(chars[s], ' ', `column ${cols[i]} empty or misaligned in ${JSON.stringify(l)}`);
    }
    const vals = starts.map((s, i) => chars.slice(s, i + 1 < starts.length ? starts[i + 1] : undefined).join('').trim());
    assert.equal(vals[0], users[k], 'sorted by user name');
    cells[vals[0]] = Object.fromEntries(cols.map((c, i) => [c, vals[i]]));
  });
  assert.equal(cells['alice@unicaen.fr'].ROLES, 'Standard,gestionnaire');
  assert.equal(cells['alice@unicaen.fr'].LIMITS, 'gestionnaire:UFR-LET');
  assert.equal(cells['alice@unicaen.fr'].PASSWORD, 'yes');
  assert.equal(cells['alice@unicaen.fr']['LAST LOGIN'], 'never');
  assert.equal(cells.bob.NAME, 'Bob Étienne');
  assert.equal(cells.carol.PASSWORD, 'no (SSO)');
  assert.equal(cells.carol['E-MAIL'], '-');
  assert.match(cells.dave.LOCKED, /^until \d{4}-\d\d-\d\d \d\d:\d\d$/);
  assert.equal(cells.bob.LOCKED, 'no');
  assert.equal(cells.dave.ACTIVE, 'yes');
  q(`UPDATE smile.utilisateur SET locked_until = NULL, failed_logins = 0 WHERE username = 'dave'`);
});

test('user show: fields, roles with their limits, password kind (never the hash), recent changes', () => {
  const r = user(['show', 'ALICE@unicaen.fr']);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /^username\s+alice@unicaen\.fr$/m);
  assert.match(r.stdout, /^name\s+Alice Martin$/m);
  assert.match(r.stdout, /^language\s+en$/m);
  assert.match(r.stdout, /^password\s+local \(scrypt ln=15,r=8,p=1\)$/m);
  assert.match(r.stdout, /^\s+gestionnaire \(Gestionnaire\): limited to UFR-LET$/m);
  assert.match(r.stdout, /^\s+Standard$/m);
  assert.match(r.stdout, /user\.passwd\s+by ewpctl as it-operator/);
  assert.match(r.stdout, /user\.add\s+by ewpctl as it-operator/);
  const b = user(['show', 'carol']);
  assert.equal(b.status, 0, describeRun(b));
  assert.match(b.stdout, /^password\s+none: single sign-on only$/m);
  assert.match(b.stdout, /^language\s+fr \(default\)$/m);
  refusedUnchanged(['show', 'nobody'], '', 1, /no user "nobody"/);
});

test('no output of any command held a password or a stored hash', () => {
  assert.ok(outputs.length > 50, `only ${outputs.length} outputs collected`);
  assert.ok(secrets.size >= 6, 'the hashes were collected');
  for (const s of secrets) {
    for (const o of outputs) assert.ok(!o.includes(s), `a secret (${s.slice(0, 12)}...) appeared in an output:\n${o}`);
  }
  for (const o of outputs) assert.ok(!o.includes('$scrypt$'), `a stored hash appeared in an output:\n${o}`);
});
