// Staff portal, administration pages: workflow configuration (/portal/workflow),
// partners (/portal/partners) and keys (/portal/keys), on a real ewpd with a
// real PostgreSQL. The catalogue lists this node (its client and server keys)
// and partners, one of them with a hostile name; ewp.partner_syncs and
// ewp.jobs hold what a sync and the outbox would have written.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before } from 'node:test';

import { addInstitutionsApis } from './lib/catalogue.mjs';
import { Ewpd, HEI_ID, PARTNER_HEI, describeRun, ewpctlKey, itest, runEwpctl, runEwpctlAsync } from './lib/daemon.mjs';
import { freePort } from './lib/http.mjs';
import { pollUntil } from './lib/poll.mjs';
import { EWPCTL } from './lib/env.mjs';
import { PortalClient, location } from './lib/portal.mjs';

const PASSWORD = 'correct horse battery staple';
const EVIL_HEI = 'evil.example.org';
const EVIL_NAME = '<script>alert(1)</script>"><img src=x onerror=alert(2)>';
const GONE_HEI = 'gone.example.org'; // synced once, no longer in the catalogue
const GONE_NAME = '<b>Gone</b> & "Co"';
const DOWN_HEI = 'down.example.org'; // its Institutions API refuses connections: a real sync failure

// RFC 4180 records of a CSV text (after its byte-order mark).
function parseCsv(text) {
  assert.ok(text.startsWith('\ufeff'), 'CSV starts with a byte-order mark');
  const recs = [];
  let rec = [];
  let f = '';
  let i = 1;
  let quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { f += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i++; continue; }
      f += c; i++; continue;
    }
    if (c === '"') { quoted = true; i++; continue; }
    if (c === ',') { rec.push(f); f = ''; i++; continue; }
    if (c === '\r' && text[i + 1] === '\n') { rec.push(f); recs.push(rec); rec = []; f = ''; i += 2; continue; }
    f += c; i++;
  }
  assert.equal(f, '', 'CSV ends with CRLF');
  return recs;
}

const lit = (v) => `'${String(v).replace(/'/g, "''")}'`;

let fx;
let sql;
let downPort;

// The fixture's catalogue plus Institutions / OUnits entries for the partner
// and for the host that is down.
function writeCatalogueWithApis() {
  let xml = addInstitutionsApis(fx.catalogueXml, 'https://partner.example.org/ewp/echo', 'https://partner.example.org');
  xml = addInstitutionsApis(xml, `https://127.0.0.1:${downPort}/ewp/echo`, `https://127.0.0.1:${downPort}`, { ounits: false });
  fs.writeFileSync(fx.cataloguePath, xml);
}
let nextKey; // published for rotation, not in the catalogue, not signing

before(async () => {
  fx = await Ewpd.create('portal-admin', { pg: true, start: false });
  sql = (q) => fx.pg.psql(q);
  // a partner with Institutions and OUnits, a hostile one, and our own host
  fx.extraHosts.push({ adminEmail: 'admin@evil.example.org', heis: [EVIL_HEI],
    echoUrl: 'https://evil.example.org/ewp/echo' });
  fx.extraInstitutions.push({ id: EVIL_HEI, names: [['en', EVIL_NAME]], otherIds: [['erasmus', 'X EVIL01']] });
  downPort = await freePort(); // nothing listens there
  fx.extraHosts.push({ adminEmail: 'admin@down.example.org', heis: [DOWN_HEI],
    echoUrl: `https://127.0.0.1:${downPort}/ewp/echo` });
  fx.extraInstitutions.push({ id: DOWN_HEI, names: [['en', 'Down University']] });
  fx.writeCatalogue();
  writeCatalogueWithApis();
  nextKey = ewpctlKey(fx.keysDir, 'next');
  fx.writeConfig({ keys: { publish_client: 'next.pem.pub' } });
  await fx.start();

  // accounts as an administrator makes them
  for (const [user, role] of [['gest', 'Gestionnaire'], ['fonc', 'Administrateur fonctionnel'],
    ['tech', 'Administrateur technique'], ['guest1', 'Invité']]) {
    const r = spawnSync(EWPCTL, ['-c', fx.confPath, 'user', 'add', user, '--name', `Test ${user}`,
      '--role', role, '--password-stdin'], { input: `${PASSWORD}\n`, encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 0, `ewpctl user add ${user}: ${r.stdout}${r.stderr}`);
  }

  sql(`
    INSERT INTO smile.etablissement (schac_id, erasmus_code, names)
      VALUES ('${PARTNER_HEI}', 'PL PARTNER01', '[{"lang":"en","name":"Partner University"}]'),
             ('${GONE_HEI}', NULL, ${lit(JSON.stringify([{ lang: 'en', name: GONE_NAME }]))});
    INSERT INTO ewp.partner_syncs (hei_id, last_attempt_at, last_success_at, consecutive_failures)
      VALUES ('${PARTNER_HEI}', '2026-03-04 05:06:00+00', '2026-03-04 05:06:00+00', 0);
    INSERT INTO ewp.partner_syncs (hei_id, last_attempt_at, last_success_at, last_error_at, last_error, consecutive_failures)
      VALUES ('${EVIL_HEI}', '2026-03-05 07:08:00+00', NULL, '2026-03-05 07:08:00+00', 'Institutions: HTTP 500 <i>boom</i>', 3),
             ('${GONE_HEI}', '2026-02-01 10:00:00+00', '2026-02-01 10:00:00+00', NULL, NULL, 0);
    INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, status, attempts, finished_at)
      VALUES ('out', 'cnr', '${PARTNER_HEI}', 'omobilities', 'a1', 'failed-max-attempts', 9, now()),
             ('out', 'cnr', '${PARTNER_HEI}', 'omobilities', 'a2', 'rejected', 1, now()),
             ('out', 'cnr', '${PARTNER_HEI}', 'omobilities', 'a3', 'success', 1, now()),
             ('out', 'cnr', '${EVIL_HEI}', 'omobilities', 'b1', 'expired', 4, now());`);
});

after(async () => {
  await fx?.cleanup();
});

async function as(user) {
  const pc = PortalClient.of(fx);
  const r = await pc.login(user, PASSWORD);
  assert.equal(r.status, 303, `login of ${user}: ${r.status}\n${r.text.slice(0, 500)}`);
  return pc;
}

const stepOrder = () => sql('SELECT string_agg(code, \' \' ORDER BY position) FROM smile.step').split(' ');
const stepState = () => sql('SELECT string_agg(code || \':\' || position || \':\' || active || \':\' || coalesce(role_id::text, \'-\'), \' \' ORDER BY position) FROM smile.step');
const auditCount = (action) => Number(sql(`SELECT count(*) FROM ewp.audit_log WHERE action = '${action}'`));

// Step codes in the order the page shows them.
function pageOrder(html) {
  const tbody = html.slice(html.indexOf('<table id="steps"'));
  return [...tbody.matchAll(/<tr id="step-([a-z0-9_-]+)"/g)].map((m) => m[1]);
}

// ---- workflow ----------------------------------------------------------------

itest(() => fx, 'workflow page lists the steps in order with their registrations', async () => {
  sql(`INSERT INTO smile.etablissement (schac_id, names) VALUES ('wf.example.org', '[{"name":"WF"}]');
       INSERT INTO smile.inscription (given_names, family_name, home_etablissement_id, step_id, academic_year)
         SELECT 'Ada', 'One', e.id, s.id, 2026 FROM smile.etablissement e, smile.step s
          WHERE e.schac_id = 'wf.example.org' AND s.code IN ('registered', 'approval_host');
       INSERT INTO smile.inscription (given_names, family_name, home_etablissement_id, step_id, academic_year)
         SELECT 'Bob', 'Two', e.id, s.id, 2026 FROM smile.etablissement e, smile.step s
          WHERE e.schac_id = 'wf.example.org' AND s.code = 'registered'`);
  const pc = await as('fonc');
  const r = await pc.get('/portal/workflow');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(pageOrder(r.text), stepOrder());
  const row = (code) => r.text.match(new RegExp(`<tr id="step-${code}"[\\s\\S]*?</tr>`))[0];
  // registrations per step, from the database
  for (const code of ['registered', 'approval_host', 'course']) {
    const n = sql(`SELECT count(*) FROM smile.inscription i JOIN smile.step s ON s.id = i.step_id WHERE s.code = '${code}'`);
    assert.match(row(code), new RegExp(`<td class="num">${n}</td>`), `${code} shows ${n}`);
  }
  assert.equal(sql("SELECT count(*) FROM smile.inscription i JOIN smile.step s ON s.id = i.step_id WHERE s.code = 'registered'"), '2');
  // move forms only where a move is allowed; every form carries the token
  // seed: course and the approvals (3..7) are movable; pre-registration,
  // registered and contract are fixed
  assert.match(row('approval_educational'), /id="up-approval_educational"[\s\S]*id="down-approval_educational"/);
  assert.match(row('course'), /id="down-course"/);
  assert.doesNotMatch(row('course'), /id="up-course"/); // past registered
  assert.doesNotMatch(row('approval_student'), /id="down-approval_student"/); // past contract
  assert.doesNotMatch(row('registered'), /id="(up|down)-registered"/);
  assert.doesNotMatch(row('contract'), /id="(up|down)-contract"/);
  assert.doesNotMatch(row('pre-registration'), /id="toggle-pre-registration"/);
  assert.match(row('course'), /id="toggle-course"/);
  const forms = r.text.match(/<form method="post"[\s\S]*?<\/form>/g);
  assert.ok(forms.length > 10);
  for (const f of forms) assert.match(f, /name="csrf" value="[0-9a-f]{64}"/);
  assert.match(r.text, /<caption>/);
});

itest(() => fx, 'up / down swap two steps in one transaction, shown in the new order, audited', async () => {
  const pc = await as('fonc');
  await pc.get('/portal/workflow');
  const before = stepOrder();
  const audits = auditCount('workflow.down');
  const r = await pc.post('/portal/workflow', { action: 'down', step: 'approval_host' });
  assert.equal(r.status, 303, r.text);
  assert.match(location(r), /^\/portal\/workflow/);
  const after1 = stepOrder();
  assert.deepEqual(after1.slice(4, 6), ['approval_base', 'approval_host']);
  assert.deepEqual([...after1.slice(0, 4), ...after1.slice(6)], [...before.slice(0, 4), ...before.slice(6)]);
  assert.equal(sql('SELECT string_agg(position::text, \',\' ORDER BY position) FROM smile.step'), '1,2,3,4,5,6,7,8');
  assert.equal(auditCount('workflow.down'), audits + 1);
  assert.equal(sql("SELECT actor || ' ' || object_type || ' ' || object_id FROM ewp.audit_log WHERE action = 'workflow.down' ORDER BY id DESC LIMIT 1"),
    'fonc step approval_host');
  const page = await pc.get(location(r));
  assert.equal(page.status, 200);
  assert.deepEqual(pageOrder(page.text), after1);
  assert.match(page.text, /class="flash"/);
  // and back up
  const r2 = await pc.post('/portal/workflow', { action: 'up', step: 'approval_host' });
  assert.equal(r2.status, 303, r2.text);
  assert.deepEqual(stepOrder(), before);
  assert.equal(auditCount('workflow.up'), 1);
});

itest(() => fx, 'fixed and non-movable steps do not move, nor does anything past them (409, nothing changed)', async () => {
  const pc = await as('fonc');
  await pc.get('/portal/workflow');
  const state = stepState();
  const audits = Number(sql("SELECT count(*) FROM ewp.audit_log WHERE action LIKE 'workflow.%'"));
  const cases = [
    [{ action: 'up', step: 'registered' }, /fixed or not movable/],
    [{ action: 'down', step: 'contract' }, /already the last/],
    [{ action: 'up', step: 'contract' }, /fixed or not movable/],
    [{ action: 'up', step: 'course' }, /past a fixed/], // registered is fixed
    [{ action: 'down', step: 'approval_student' }, /past a fixed/], // contract is fixed
    [{ action: 'up', step: 'pre-registration' }, /already the first/],
    [{ action: 'deactivate', step: 'pre-registration' }, /first step cannot be deactivated/],
  ];
  const en = await pc.get('/portal/lang?to=en&back=/portal/workflow');
  assert.equal(en.status, 303);
  for (const [fields, msg] of cases) {
    const r = await pc.post('/portal/workflow', fields);
    assert.equal(r.status, 409, `${JSON.stringify(fields)}: ${r.status}\n${r.text.slice(0, 400)}`);
    assert.match(r.text, msg, JSON.stringify(fields));
  }
  assert.equal(stepState(), state);
  assert.equal(Number(sql("SELECT count(*) FROM ewp.audit_log WHERE action LIKE 'workflow.%'")), audits);
});

itest(() => fx, 'bad parameters are refused with 400 and a message', async () => {
  const pc = await as('fonc');
  await pc.get('/portal/workflow');
  const state = stepState();
  for (const [fields, status, msg] of [
    [{ action: 'drop', step: 'course' }, 400, /Action inconnue/],
    [{ step: 'course' }, 400, /Action inconnue/],
    [{ action: 'up' }, 400, /Code d&#39;étape absent/],
    [{ action: 'up', step: '<script>' }, 400, /Code d&#39;étape absent/],
    [{ action: 'up', step: 'no-such-step' }, 404, /n&#39;existe pas/],
    [{ action: 'role', step: 'course', role: 'nobody' }, 400, /Rôle inconnu/],
  ]) {
    const r = await pc.post('/portal/workflow', fields);
    assert.equal(r.status, status, `${JSON.stringify(fields)}\n${r.text.slice(0, 400)}`);
    assert.match(r.text, msg, JSON.stringify(fields));
  }
  assert.equal(stepState(), state);
});

itest(() => fx, 'role: the validating role of a step is changed and audited', async () => {
  const pc = await as('fonc');
  await pc.get('/portal/workflow');
  const r = await pc.post('/portal/workflow', { action: 'role', step: 'course', role: 'admin_fonctionnel' });
  assert.equal(r.status, 303, r.text);
  assert.equal(sql("SELECT r.code FROM smile.step s JOIN smile.role r ON r.id = s.role_id WHERE s.code = 'course'"), 'admin_fonctionnel');
  assert.equal(auditCount('workflow.role'), 1);
  const page = await pc.get('/portal/workflow');
  assert.match(page.text, /<select id="role-of-course" name="role">[\s\S]*?<option value="admin_fonctionnel" selected>/);
  const back = await pc.post('/portal/workflow', { action: 'role', step: 'course', role: 'Etudiant' });
  assert.equal(back.status, 303);
  assert.equal(sql("SELECT r.code FROM smile.step s JOIN smile.role r ON r.id = s.role_id WHERE s.code = 'course'"), 'Etudiant');
});

// Creates a registration at `code` and returns its id.
function registrationAt(code) {
  return sql(`INSERT INTO smile.inscription (given_names, family_name, home_etablissement_id, step_id, academic_year)
    SELECT 'Eve', 'Walker', e.id, s.id, 2026 FROM smile.etablissement e, smile.step s
     WHERE e.schac_id = '${PARTNER_HEI}' AND s.code = '${code}' RETURNING id`);
}
const stepOf = (id) => sql(`SELECT s.code FROM smile.inscription i JOIN smile.step s ON s.id = i.step_id WHERE i.id = ${id}`);

itest(() => fx, 'deactivate a step: a registration advancing skips it; activate: it stops there again', async () => {
  const pc = await as('fonc');
  await pc.get('/portal/workflow');
  // the engine, before: registered -> course
  const a = registrationAt('registered');
  assert.equal(sql(`SELECT smile.inscription_advance(${a}, 'registered', 'test')`), 't');
  assert.equal(stepOf(a), 'course');

  // course holds a registration now: it may still be deactivated
  const r = await pc.post('/portal/workflow', { action: 'toggle', step: 'course' });
  assert.equal(r.status, 303, r.text);
  assert.equal(sql("SELECT active FROM smile.step WHERE code = 'course'"), 'f');
  assert.equal(auditCount('workflow.deactivate'), 1);
  const page = await pc.get('/portal/workflow');
  assert.match(page.text, /<tr id="step-course" class="muted">/);
  assert.match(page.text, /id="toggle-course"[\s\S]*?Activer/);

  const b = registrationAt('registered');
  assert.equal(sql(`SELECT smile.inscription_advance(${b}, 'registered', 'test')`), 't');
  assert.equal(stepOf(b), 'approval_educational', 'the inactive step is skipped');
  // the one left on the inactive step moves on from it
  assert.equal(sql(`SELECT smile.inscription_advance(${a}, 'course', 'test')`), 't');
  assert.equal(stepOf(a), 'approval_educational');

  // deactivate when it is already inactive: 409
  const again = await pc.post('/portal/workflow', { action: 'deactivate', step: 'course' });
  assert.equal(again.status, 409);

  const on = await pc.post('/portal/workflow', { action: 'activate', step: 'course' });
  assert.equal(on.status, 303, on.text);
  assert.equal(sql("SELECT active FROM smile.step WHERE code = 'course'"), 't');
  const c = registrationAt('registered');
  sql(`SELECT smile.inscription_advance(${c}, 'registered', 'test')`);
  assert.equal(stepOf(c), 'course');
});

itest(() => fx, 'after a reorder, registrations advance along the new order (generic and learning agreement paths)', async () => {
  const pc = await as('fonc');
  await pc.get('/portal/workflow');
  const r = await pc.post('/portal/workflow', { action: 'down', step: 'approval_educational' });
  assert.equal(r.status, 303, r.text);
  assert.deepEqual(stepOrder().slice(3, 7), ['approval_host', 'approval_educational', 'approval_base', 'approval_student']);
  try {
    const a = registrationAt('course');
    assert.equal(sql(`SELECT smile.inscription_advance(${a}, 'course', 'test')`), 't');
    assert.equal(stepOf(a), 'approval_host');
    // the learning agreement signed by all (sql 0009) moves past approval_host:
    // now to approval_educational
    assert.equal(sql(`SELECT smile.inscription_advance(${a}, 'approval_host', 'LA signed')`), 't');
    assert.equal(stepOf(a), 'approval_educational');
    // never backwards: advancing from an earlier step leaves it where it is
    assert.equal(sql(`SELECT smile.inscription_advance(${a}, 'course', 'test')`), 'f');
    assert.equal(stepOf(a), 'approval_educational');
    // with approval_educational inactive as well, the LA path skips it
    const off = await pc.post('/portal/workflow', { action: 'deactivate', step: 'approval_educational' });
    assert.equal(off.status, 303, off.text);
    const b = registrationAt('approval_host');
    assert.equal(sql(`SELECT smile.inscription_advance(${b}, 'approval_host', 'LA signed')`), 't');
    assert.equal(stepOf(b), 'approval_base');
    // the first active step (where sql 0007 starts new registrations) is
    // still position 1 (where `ewpctl import` puts them)
    assert.equal(sql('SELECT code FROM smile.step WHERE active ORDER BY position LIMIT 1'),
      sql('SELECT code FROM smile.step WHERE position = 1'));
    const on = await pc.post('/portal/workflow', { action: 'activate', step: 'approval_educational' });
    assert.equal(on.status, 303, on.text);
  } finally {
    const back = await pc.post('/portal/workflow', { action: 'up', step: 'approval_educational' });
    assert.equal(back.status, 303, back.text);
  }
  assert.deepEqual(stepOrder().slice(3, 5), ['approval_educational', 'approval_host']);
});

itest(() => fx, 'a move that another transaction overtakes is refused (409), not half-applied', async () => {
  const pc = await as('fonc');
  await pc.get('/portal/workflow');
  const audits = Number(sql("SELECT count(*) FROM ewp.audit_log WHERE action LIKE 'workflow.%'"));
  // another session swaps approval_host and approval_base and keeps its
  // transaction open until the portal, having read the old order, waits on
  // the rows it wants to write; only then does it commit
  const other = spawn('psql', [fx.pg.conninfo, '-v', 'ON_ERROR_STOP=1', '-q'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  other.stderr.on('data', (d) => { err += d; });
  const done = new Promise((resolve) => other.once('exit', resolve));
  other.stdin.write(`BEGIN;
    UPDATE smile.step SET position = CASE code WHEN 'approval_host' THEN 6 ELSE 5 END
     WHERE code IN ('approval_host', 'approval_base');\n`);
  try {
    await pollUntil(() => {
      const n = sql(`SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'
        AND query LIKE '%approval_base%' AND pid <> pg_backend_pid()`);
      return { ok: n === '1', detail: `${n} sessions` };
    }, 10000, 'the other session to hold its update');
    const posted = pc.post('/portal/workflow', { action: 'down', step: 'approval_educational' });
    await pollUntil(() => {
      const n = sql("SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'");
      return { ok: n !== '0', detail: `${n} waiting` };
    }, 10000, 'the portal to wait on the rows');
    other.stdin.end('COMMIT;\n');
    const r = await posted;
    assert.equal(r.status, 409, r.text.slice(0, 500));
    assert.match(r.text, /modifié entre-temps/);
  } finally {
    other.stdin.end();
    assert.equal(await done, 0, err);
  }
  assert.deepEqual(stepOrder().slice(3, 6), ['approval_educational', 'approval_base', 'approval_host']);
  assert.equal(Number(sql("SELECT count(*) FROM ewp.audit_log WHERE action LIKE 'workflow.%'")), audits);
  const back = await pc.post('/portal/workflow', { action: 'up', step: 'approval_host' });
  assert.equal(back.status, 303, back.text);
  assert.deepEqual(stepOrder().slice(3, 6), ['approval_educational', 'approval_host', 'approval_base']);
});

itest(() => fx, 'workflow: 403 for a gestionnaire (page and every action), nothing changed', async () => {
  const pc = await as('gest');
  const page = await pc.get('/portal/workflow');
  assert.equal(page.status, 403);
  const home = await pc.get('/portal/partners'); // a page they may see, for a valid token
  assert.equal(home.status, 200);
  const state = stepState();
  for (const action of ['up', 'down', 'activate', 'deactivate', 'toggle', 'role']) {
    const r = await pc.post('/portal/workflow', { action, step: 'registered', role: 'gestionnaire' });
    assert.equal(r.status, 403, action);
  }
  assert.equal(stepState(), state);
});

itest(() => fx, 'workflow: CSRF token missing or wrong -> 403, nothing changed', async () => {
  const pc = await as('fonc');
  await pc.get('/portal/workflow');
  const state = stepState();
  const wfAudits = () => Number(sql("SELECT count(*) FROM ewp.audit_log WHERE action LIKE 'workflow.%'"));
  const audits = wfAudits();
  const missing = await pc.post('/portal/workflow', { action: 'down', step: 'approval_host', csrf: null });
  assert.equal(missing.status, 403);
  const wrong = await pc.post('/portal/workflow', { action: 'down', step: 'approval_host', csrf: 'a'.repeat(64) });
  assert.equal(wrong.status, 403);
  // another user's token
  const other = await as('tech');
  await other.get('/portal/workflow');
  const stolen = await pc.post('/portal/workflow', { action: 'toggle', step: 'course', csrf: other.csrf });
  assert.equal(stolen.status, 403);
  assert.equal(stepState(), state);
  assert.equal(wfAudits(), audits);
});

// ---- partners ----------------------------------------------------------------

function partnerRow(html, hei) {
  const m = html.match(new RegExp(`<tr><th scope="row">${hei.replace(/\./g, '\\.')}[\\s\\S]*?</tr>`));
  assert.ok(m, `no row for ${hei}`);
  return m[0];
}

itest(() => fx, 'partners page: catalogue HEIs with their APIs and versions, last sync, failed jobs, links', async () => {
  const pc = await as('gest');
  const r = await pc.get('/portal/partners');
  assert.equal(r.status, 200, r.text);
  // every catalogue HEI but our own, plus the one only ewp.partner_syncs knows
  for (const hei of [PARTNER_HEI, 'c.example.org', 'd1.example.org', 'd2.example.org', EVIL_HEI, GONE_HEI]) partnerRow(r.text, hei);
  assert.doesNotMatch(r.text, new RegExp(`<th scope="row">${HEI_ID.replace('.', '\\.')}`));
  const p = partnerRow(r.text, PARTNER_HEI);
  assert.match(p, /Partner University/);
  assert.match(p, /PL PARTNER01/);
  // from the catalogue: echo 2.0.1 and the two APIs added to the partner's host
  assert.match(p, /echo 2\.0\.1, institutions 2\.2\.0, organizational-units 2\.2\.0/);
  assert.match(p, /réussie<\/span> 2026-03-04 05:06/);
  assert.match(p, /<a href="\/portal\/jobs\?partner=partner\.example\.org">2<\/a>/);
  assert.match(p, /<a href="\/portal\/log\?partner=partner\.example\.org">/);
  const d2 = partnerRow(r.text, 'd2.example.org');
  assert.match(d2, /aucune déclarée/); // host D lists no API
  assert.match(d2, /jamais synchronisé/);
  assert.match(d2, />0<\/a>/);
  const evil = partnerRow(r.text, EVIL_HEI);
  assert.match(evil, /en échec/);
  assert.match(evil, /Institutions: HTTP 500 &lt;i&gt;boom&lt;\/i&gt;/);
  assert.match(evil, />1<\/a>/);
  const gone = partnerRow(r.text, GONE_HEI);
  assert.match(gone, /plus dans le catalogue/);
  assert.match(gone, /aucune déclarée/);
});

itest(() => fx, 'partners page: a failure written by a real `ewpctl sync` is shown with its error', async () => {
  const run = await runEwpctlAsync(['-c', fx.confPath, 'sync', 'institutions', '--timeout', '5', DOWN_HEI]);
  assert.notEqual(run.status, 0, describeRun(run));
  const stored = sql(`SELECT last_error FROM ewp.partner_syncs WHERE hei_id = '${DOWN_HEI}' AND last_success_at IS NULL
    AND consecutive_failures = 1`);
  assert.ok(stored.length > 0, `no failure recorded\n${describeRun(run)}`);
  const pc = await as('gest');
  const r = await pc.get('/portal/partners?q=down');
  assert.equal(r.status, 200);
  const row = partnerRow(r.text, DOWN_HEI);
  assert.match(row, /Down University/);
  assert.match(row, /institutions 2\.2\.0/);
  assert.match(row, /class="status-bad">en échec<\/span> \d{4}-\d\d-\d\d \d\d:\d\d/);
  const shown = stored.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
  assert.ok(row.includes(shown.split('\n')[0]), `error ${stored} not in ${row}`);
});

itest(() => fx, 'partners page: hostile names from the catalogue and the database are escaped', async () => {
  const pc = await as('gest');
  const r = await pc.get('/portal/partners');
  assert.equal(r.status, 200);
  assert.ok(!r.text.includes('<script>alert(1)'), 'catalogue name not escaped');
  assert.ok(!r.text.includes('<img src=x'), 'catalogue name not escaped');
  assert.ok(r.text.includes('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;'));
  assert.ok(!r.text.includes('<b>Gone</b>'));
  assert.ok(r.text.includes('&lt;b&gt;Gone&lt;/b&gt; &amp; &quot;Co&quot;'));
  assert.ok(!r.text.includes('<i>boom</i>'));
  // a hostile search is echoed escaped too
  const q = await pc.get(`/portal/partners?q=${encodeURIComponent('"><script>x</script>')}`);
  assert.equal(q.status, 200);
  assert.ok(!q.text.includes('<script>x'));
  assert.match(q.text, /value="&quot;&gt;&lt;script&gt;x&lt;\/script&gt;"/);
  assert.match(q.text, /Aucun partenaire ne correspond/);
});

itest(() => fx, 'partners: search, CSV and text exports with the same rows', async () => {
  const pc = await as('gest');
  const s = await pc.get('/portal/partners?q=PARTNER01');
  assert.equal(s.status, 200);
  assert.match(s.text, /<caption>[^<]*\(1\)<\/caption>/);
  partnerRow(s.text, PARTNER_HEI);

  const csv = await pc.get('/portal/partners?format=csv');
  assert.equal(csv.status, 200);
  assert.match(csv.header('content-type'), /^text\/csv; charset=utf-8/);
  assert.match(csv.header('content-disposition'), /attachment; filename="partners\.csv"/);
  const recs = parseCsv(csv.text);
  assert.deepEqual(recs[0].slice(0, 5), ['Identifiant SCHAC', 'Nom', 'Code Erasmus', 'Dans le catalogue', 'API EWP (version)']);
  const page = await pc.get('/portal/partners');
  const rows = [...page.text.matchAll(/<tr><th scope="row">([^<\s]+)/g)].map((m) => m[1]);
  assert.deepEqual(recs.slice(1).map((rec) => rec[0]), rows, 'the same rows as the page, in its order');
  const partner = recs.find((rec) => rec[0] === PARTNER_HEI);
  assert.deepEqual(partner, [PARTNER_HEI, 'Partner University', 'PL PARTNER01', 'oui',
    'echo 2.0.1, institutions 2.2.0, organizational-units 2.2.0', '2026-03-04 05:06', 'réussie',
    '2026-03-04 05:06', '', '', '2']);
  // the name is kept as text (a download is not HTML), quotes doubled
  const evil = recs.find((rec) => rec[0] === EVIL_HEI);
  assert.equal(evil[1], EVIL_NAME);
  assert.equal(evil[6], 'en échec');
  assert.equal(evil[9], 'Institutions: HTTP 500 <i>boom</i>');
  const gone = recs.find((rec) => rec[0] === GONE_HEI);
  assert.equal(gone[1], GONE_NAME);
  assert.equal(gone[3], 'non');

  const filtered = parseCsv((await pc.get('/portal/partners?format=csv&q=gone')).text);
  assert.deepEqual(filtered.slice(1).map((rec) => rec[0]), [GONE_HEI]);

  const txt = await pc.get('/portal/partners?format=txt&q=example');
  assert.equal(txt.status, 200);
  assert.match(txt.header('content-type'), /^text\/plain; charset=utf-8/);
  const tl = txt.text.split('\n').filter((l) => l);
  assert.match(tl[0], /^Identifiant SCHAC\s+Nom\s+Code Erasmus/);
  // aligned: the second column starts at the same character everywhere
  const col = [...tl[0]].indexOf('N');
  for (const l of tl.slice(1)) assert.notEqual([...l][col - 1], undefined);
  const pl = tl.find((l) => l.startsWith(PARTNER_HEI));
  assert.equal([...pl].slice(col, col + 'Partner University'.length).join(''), 'Partner University');

  const bad = await pc.get('/portal/partners?format=xls');
  assert.equal(bad.status, 400);
  assert.match(bad.text, /format=csv/);
  assert.match((await pc.get('/portal/partners')).text, /id="export-csv" href="\/portal\/partners\?format=csv&amp;q="/);
});

itest(() => fx, 'partners: a CSV cell that looks like a formula is neutralised', async () => {
  sql(`UPDATE ewp.partner_syncs SET last_error = '=HYPERLINK("http://x")' WHERE hei_id = '${EVIL_HEI}'`);
  try {
    const pc = await as('gest');
    const csv = await pc.get('/portal/partners?format=csv');
    const evil = csv.text.split('\r\n').find((l) => l.startsWith(EVIL_HEI));
    assert.ok(evil.includes(`,"'=HYPERLINK(""http://x"")",`), evil);
    assert.equal(parseCsv(csv.text).find((rec) => rec[0] === EVIL_HEI)[9], `'=HYPERLINK("http://x")`);
  } finally {
    sql(`UPDATE ewp.partner_syncs SET last_error = 'Institutions: HTTP 500 <i>boom</i>' WHERE hei_id = '${EVIL_HEI}'`);
  }
});

itest(() => fx, 'partners: refused to users without the privilege', async () => {
  const pc = await as('guest1');
  assert.equal((await pc.get('/portal/partners')).status, 403);
  assert.equal((await pc.get('/portal/partners?format=csv')).status, 403);
  assert.equal((await pc.get('/portal/keys')).status, 403);
  assert.equal((await pc.get('/portal/workflow')).status, 403);
  const anon = PortalClient.of(fx);
  const r = await anon.get('/portal/partners');
  assert.equal(r.status, 303);
  assert.match(location(r), /\/portal\/login/);
});

// ---- keys --------------------------------------------------------------------

itest(() => fx, 'keys page: fingerprints as ewpctl prints them, role, signing key, listed in the catalogue or not', async () => {
  const list = runEwpctl(['-c', fx.confPath, 'keys', 'list', '--dir', fx.keysDir]);
  assert.equal(list.status, 0, describeRun(list));
  const printed = Object.fromEntries(list.stdout.trim().split('\n').map((l) => {
    const f = l.trim().split(/\s+/);
    return [f[0], f[3]];
  }));
  assert.match(printed['client.pem'], /^[0-9a-f]{64}$/);
  assert.equal(printed['client.pem'], fx.clientKey.keyId);
  assert.equal(printed['next.pem'], nextKey.keyId);

  const pc = await as('tech');
  const r = await pc.get('/portal/keys');
  assert.equal(r.status, 200, r.text);
  const row = (role, id) => {
    const m = r.text.match(new RegExp(`<tr id="key-${role}-${id}">[\\s\\S]*?</tr>`));
    assert.ok(m, `no ${role} row for ${id}`);
    return m[0];
  };
  const client = row('client', printed['client.pem']);
  assert.match(client, /client\.pem/);
  assert.match(client, /class="status-ok signing">signe nos requêtes/);
  assert.match(client, /class="status-ok listed">oui/);
  const server = row('server', printed['server.pem']);
  assert.match(server, /signe nos réponses/);
  assert.match(server, /class="status-ok listed">oui/);
  const next = row('client', printed['next.pem']);
  assert.match(next, /next\.pem\.pub/);
  assert.match(next, /class="muted signing">publiée/);
  assert.match(next, /class="status-bad listed">non/);
  assert.equal((r.text.match(/<tr id="key-/g) || []).length, 3);
  // public only: nothing of a private key
  for (const f of ['client.pem', 'server.pem', 'next.pem']) {
    const pem = fs.readFileSync(`${fx.keysDir}/${f}`, 'utf8');
    const body = pem.split('\n').filter((l) => l && !l.startsWith('-----'));
    for (const line of body) assert.ok(!r.text.includes(line), `${f} private material on the page`);
  }
  assert.doesNotMatch(r.text, /PRIVATE KEY/);
});

itest(() => fx, 'keys page: a key the catalogue lists for the other role only, and ewp.keys dates', async () => {
  // ewp.keys row for the client key: its creation date is shown
  const der = crypto.createPublicKey(fs.readFileSync(fx.clientKey.pubPath)).export({ type: 'spki', format: 'der' });
  sql(`INSERT INTO ewp.keys (keyid, role, file_name, public_key, bits, created_at, published, published_at, in_use, in_use_since)
       VALUES ('${fx.clientKey.keyId}', 'client', 'client.pem', '\\x${der.toString('hex')}', 2048,
               '2026-01-02 03:04:00+00', true, now(), true, now())`);
  // the catalogue lists the rotation key, but as a server credential
  fx.extraHosts.push({ adminEmail: 'ewp-admin@smile.test', heis: [], serverKeys: [nextKey] });
  fx.writeCatalogue();
  writeCatalogueWithApis();
  fx.signal('SIGHUP');
  const pc = await as('tech');
  let r;
  for (let i = 0; i < 100; i++) {
    r = await pc.get('/portal/keys');
    if (r.text.includes('listée, mais pas pour ce rôle')) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  const next = r.text.match(new RegExp(`<tr id="key-client-${nextKey.keyId}">[\\s\\S]*?</tr>`))[0];
  assert.match(next, /class="status-warn listed">listée, mais pas pour ce rôle/);
  const client = r.text.match(new RegExp(`<tr id="key-client-${fx.clientKey.keyId}">[\\s\\S]*?</tr>`))[0];
  assert.match(client, /<td>2026-01-02 03:04<\/td>/);
});

itest(() => fx, 'keys: 403 for a gestionnaire and an Administrateur fonctionnel', async () => {
  for (const u of ['gest', 'fonc']) {
    const pc = await as(u);
    const r = await pc.get('/portal/keys');
    assert.equal(r.status, 403, u);
    assert.doesNotMatch(r.text, new RegExp(fx.clientKey.keyId));
  }
  // the navigation offers the page only to who may see it
  const tech = await as('tech');
  assert.match((await tech.get('/portal/partners')).text, /href="\/portal\/keys"/);
  const fonc = await as('fonc');
  const page = await fonc.get('/portal/workflow');
  assert.doesNotMatch(page.text, /href="\/portal\/keys"/);
  assert.match(page.text, /href="\/portal\/workflow"/);
});

itest(() => fx, 'every text of the three pages comes from the catalogue, in French and in English', async () => {
  const pc = await as('tech');
  for (const lang of ['fr', 'en']) {
    const sw = await pc.get(`/portal/lang?to=${lang}&back=/portal/workflow`);
    assert.equal(sw.status, 303);
    for (const page of ['/portal/workflow', '/portal/partners', '/portal/keys']) {
      const r = await pc.get(page);
      assert.equal(r.status, 200, `${lang} ${page}`);
      assert.match(r.text, new RegExp(`<html lang="${lang}"`));
      const raw = r.text.match(/\b(workflow|partners|keys|export)\.[a-z_]+\b/g);
      assert.equal(raw, null, `${lang} ${page}: keys without text: ${raw}`);
    }
  }
  const wf = await pc.get('/portal/workflow');
  assert.match(wf.text, /Workflow configuration/);
  assert.match(wf.text, /Move down/);
});
