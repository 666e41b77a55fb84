// `make demo` (tests/demo/demo.sh), run in a temporary DEMO_DIR on free
// ports: both nodes answer and accept each other's signed requests, node 1's
// database holds node 2's institution and units after the demo's sync, a
// second run replaces the first, and `demo.sh stop` leaves no process and
// no directory behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { makeTempDir, runEwpctl, describeRun } from './lib/daemon.mjs';
import { EWPCTL, EWPD, KEEP_TMP, NS, REPO_ROOT, specPath } from './lib/env.mjs';
import { freePort, portOpen } from './lib/http.mjs';
import { PortalClient } from './lib/portal.mjs';
import { assertValid, parseXml } from './lib/xml.mjs';

const DEMO_SH = path.join(REPO_ROOT, 'tests', 'demo', 'demo.sh');
const HEI = 'demo.smile-ewp.example';
const PARTNER = 'uni-musterstadt.example';

let tmp; // the temporary directory, DEMO_DIR is tmp/demo
let dir;
let port; // node 1
let pport; // node 2
let pgport;
let env;
let first; // the first run's result
const seen = new Set(); // every demo process seen, for after()'s safety net

function demo(...args) {
  const r = spawnSync('sh', [DEMO_SH, ...args], {
    env, encoding: 'utf8', timeout: 120000, stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) throw new Error(`cannot run demo.sh: ${r.error.message}`);
  return { ...r, cmd: `DEMO_DIR=${env.DEMO_DIR} demo.sh ${args.join(' ')}` };
}

const show = (r) => `$ ${r.cmd}\nexit ${r.status}${r.signal ? ` (signal ${r.signal})` : ''}\n` +
  `--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

// The state letter of a process (R, S, Z...), or null when there is none.
function procState(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

// A process that ran and is no more (a zombie waits for init to reap it).
const gone = (pid) => [null, 'Z'].includes(procState(pid));

// pid and every process below it, from /proc.
function withDescendants(pid) {
  const parent = new Map();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* exited meanwhile */ }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    for (const [child, ppid] of parent) if (ppid === out[i]) out.push(child);
  }
  return out;
}

// Every process of the running demo: both ewpd (supervisor and workers)
// and the PostgreSQL cluster (postmaster and its children).
function demoProcesses() {
  const sup = ['hei', 'partner'].map((n) => Number(fs.readFileSync(path.join(dir, n, 'ewpd.pid'), 'utf8')));
  const postmaster = Number(fs.readFileSync(path.join(dir, 'pg', 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const ewpd = sup.flatMap(withDescendants);
  const pg = withDescendants(postmaster);
  const all = [...ewpd, ...pg];
  for (const p of all) seen.add(p);
  return { sup, ewpd, postmaster, pg, all };
}

async function waitGone(pids, ms = 5000) {
  const end = Date.now() + ms;
  while (Date.now() < end && !pids.every(gone)) await new Promise((r) => setTimeout(r, 50));
  return pids.filter((p) => !gone(p));
}

function get(p, urlPath) {
  const ca = fs.readFileSync(path.join(dir, 'ca.pem'));
  return new Promise((resolve, reject) => {
    const req = https.get({ host: 'localhost', port: p, path: urlPath, ca, timeout: 5000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

// psql on one of the demo's databases; trimmed unaligned output.
function psql(db, sql) {
  const conninfo = `host=${path.join(dir, 'pg')} port=${pgport} user=postgres dbname=${db}`;
  const r = spawnSync('psql', [conninfo, '-X', '-v', 'ON_ERROR_STOP=1', '-tAqc', sql], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql failed: ${sql}\n${r.stderr}`);
  return r.stdout.trim();
}

before(async () => {
  tmp = makeTempDir('demo');
  fs.chmodSync(tmp, 0o755); // the cluster runs as user postgres under root
  dir = path.join(tmp, 'demo');
  port = await freePort();
  do pport = await freePort(); while (pport === port);
  do pgport = await freePort(); while (pgport === port || pgport === pport);
  env = {
    ...process.env, DEMO_DIR: dir, EWPD, EWPCTL,
    EWP_DEMO_PORT: String(port), EWP_DEMO_PARTNER_PORT: String(pport), EWP_DEMO_PG_PORT: String(pgport),
  };
  first = demo();
});

after(async () => {
  if (fs.existsSync(path.join(dir, 'hei', 'ewpd.pid'))) demoProcesses();
  if (fs.existsSync(dir)) demo('stop');
  // a failed test may have left some: KILL those still ewpd or postgres
  for (const p of await waitGone([...seen], 3000)) {
    let comm = '';
    try { comm = fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim(); } catch { /* gone */ }
    if (comm === 'ewpd' || comm === 'postgres') {
      try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  if (!KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the demo starts, prints both nodes and the commands to try, and its sync succeeds', () => {
  assert.equal(first.status, 0, show(first));
  for (const url of [`https://localhost:${port}`, `https://localhost:${pport}`]) {
    assert.ok(first.stdout.includes(url), `the output names ${url}\n${show(first)}`);
  }
  // the commands it prints point into DEMO_DIR, not ./demo
  assert.match(first.stdout, new RegExp(`-c ${dir}/partner/ewpd.conf call --cacert ${dir}/ca.pem`), show(first));
  // its own signed calls all verified (Echo, Institutions and OUnits both ways)
  assert.equal((first.stdout.match(/response signature: verified/g) || []).length, 5, show(first));
  // the sync table: the partner, ok, its five units
  assert.match(first.stdout, new RegExp(`^\\s*${PARTNER.replaceAll('.', '\\.')}\\s+ok\\s+5\\s*$`, 'm'), show(first));
  assert.match(first.stdout, /SCHAC ids filled from the catalogue: 1/, show(first));
});

test('both nodes answer over TLS (demo CA) and accept each other\'s signed requests', async () => {
  assert.equal(first.status, 0, 'the demo did not start');
  for (const p of [port, pport]) {
    const r = await get(p, '/healthz');
    assert.equal(r.status, 200, `healthz on ${p}: ${r.body}`);
  }
  const m = await get(pport, '/ewp/manifest.xml');
  assert.equal(m.status, 200);
  assert.match(m.body, new RegExp(`<r:hei id="${PARTNER}">`), 'node 2 publishes the partner HEI');

  const ca = path.join(dir, 'ca.pem');
  const echo = runEwpctl(['-c', path.join(dir, 'partner', 'ewpd.conf'), 'call', '--cacert', ca,
    `https://localhost:${port}/ewp/echo?echo=ping`]);
  assert.equal(echo.status, 0, describeRun(echo));
  assert.match(echo.stdout, /^HTTP 200/, describeRun(echo));
  assert.match(echo.stdout, new RegExp(`<hei-id>${PARTNER}</hei-id><echo>ping</echo>`), describeRun(echo));
  assert.match(echo.stdout, /response signature: verified/, describeRun(echo));

  const inst = runEwpctl(['-c', path.join(dir, 'hei', 'ewpd.conf'), 'call', '--cacert', ca,
    `https://localhost:${pport}/ewp/institutions?hei_id=${PARTNER}`]);
  assert.equal(inst.status, 0, describeRun(inst));
  assert.match(inst.stdout, /<name xml:lang="de">Universität Musterstadt<\/name>/, describeRun(inst));
  assert.match(inst.stdout, /response signature: verified/, describeRun(inst));

  // node 2 does not take an unsigned request
  const anon = await get(pport, `/ewp/institutions?hei_id=${PARTNER}`);
  assert.equal(anon.status, 401, anon.body);
});

// An API entry as text: namespace, name, version and its simple settings
// (url, max-hei-ids...), http-security left out.
function apiEntries(apisImplemented) {
  return apisImplemented.elements().map((e) => [e.ns, e.local, e.attr('version'),
    ...e.elements().filter((c) => c.local !== 'http-security').map((c) => `${c.local}=${c.text.trim()}`).sort()]
    .join(' ')).sort();
}

test('the catalogue is valid and lists, for each node, the APIs and keys its manifest publishes', async () => {
  assert.equal(first.status, 0, 'the demo did not start');
  const xml = fs.readFileSync(path.join(dir, 'catalogue.xml'));
  assertValid(xml, specPath('ewp-specs-api-registry', 'catalogue.xsd'), 'the demo catalogue');
  const cat = parseXml(xml.toString('utf8'));
  const binaries = new Map(cat.element(NS.registry, 'binaries').elements(NS.registry, 'rsa-public-key')
    .map((k) => [k.attr('sha-256'), k.text.replace(/\s+/g, '')]));
  for (const [p, hei] of [[port, HEI], [pport, PARTNER]]) {
    const m = await get(p, '/ewp/manifest.xml');
    assert.equal(m.status, 200);
    const mhost = parseXml(m.body).element(NS.manifest, 'host');
    const chost = cat.elements(NS.registry, 'host').find((h) =>
      h.descendants(NS.registry, 'hei-id').some((e) => e.text === hei));
    assert.ok(chost, `the catalogue has a host for ${hei}`);
    const want = apiEntries(mhost.element(NS.registry, 'apis-implemented'));
    assert.ok(want.length >= 5, `manifest of ${hei}: ${want.join('\n')}`);
    assert.deepEqual(apiEntries(chost.element(NS.registry, 'apis-implemented')), want, hei);
    for (const role of ['client', 'server']) {
      const published = mhost.element(NS.manifest, `${role}-credentials-in-use`)
        .elements(NS.manifest, 'rsa-public-key').map((k) => k.text.trim());
      const listed = chost.element(NS.registry, `${role}-credentials-in-use`)
        .elements(NS.registry, 'rsa-public-key').map((k) => binaries.get(k.attr('sha-256')));
      assert.deepEqual(listed, published, `${role} key of ${hei}`);
    }
  }
});

test('node 1\'s database holds node 2\'s institution, names, units with their parents, and the sync status', () => {
  assert.equal(first.status, 0, 'the demo did not start');
  assert.equal(psql('ewpd_hei', `SELECT concat_ws('|', erasmus_code, names::text, abbreviation, website_url, is_local::text)
    FROM smile.etablissement WHERE schac_id = '${PARTNER}'`),
  'D  MUSTERS01|[{"lang": "de", "name": "Universität Musterstadt"}, {"lang": "en", "name": "University of Musterstadt"}, '
    + '{"lang": "fr", "name": "Université de Musterstadt"}]|UMS|https://www.uni-musterstadt.example/|false');
  // the row SMILE had (Erasmus code only) got the SCHAC id: still one row
  assert.equal(psql('ewpd_hei', "SELECT count(*) FROM smile.etablissement WHERE erasmus_code = 'D  MUSTERS01'"), '1');
  assert.equal(psql('ewpd_hei', `SELECT string_agg(concat_ws('|', c.ounit_id, c.code, coalesce(p.ounit_id, '-'),
      c.names->0->>'name', c.source), E'\\n' ORDER BY c.ounit_id)
    FROM smile.composante c JOIN smile.etablissement e ON e.id = c.etablissement_id
    LEFT JOIN smile.composante p ON p.id = c.parent_id WHERE e.schac_id = '${PARTNER}'`),
  ['ums-fak-mn|MN|-|Mathematisch-Naturwissenschaftliche Fakultät|ewp',
    'ums-fak-phil|PHIL|-|Philosophische Fakultät|ewp',
    'ums-inst-inf|MN-INF|ums-fak-mn|Institut für Informatik|ewp',
    'ums-inst-phys|MN-PHYS|ums-fak-mn|Institut für Physik|ewp',
    'ums-inst-rom|PHIL-ROM|ums-fak-phil|Institut für Romanistik|ewp'].join('\n'));
  assert.equal(psql('ewpd_hei', `SELECT string_agg(concat_ws('|', ct.given_names, ct.family_name, ct.emails::text), ';' ORDER BY ct.id)
    FROM smile.contact ct JOIN smile.etablissement e ON e.id = ct.etablissement_id WHERE e.schac_id = '${PARTNER}'`),
  'Erika|Mustermann|{incoming@uni-musterstadt.example}');
  assert.equal(psql('ewpd_hei', `SELECT concat_ws('|', (last_success_at IS NOT NULL)::text, (last_error IS NULL)::text, consecutive_failures)
    FROM ewp.partner_syncs WHERE hei_id = '${PARTNER}'`), 'true|true|0');
  // our own institution and units are as the demo data made them
  assert.equal(psql('ewpd_hei', `SELECT string_agg(c.code, ',' ORDER BY c.code) FROM smile.composante c
    JOIN smile.etablissement e ON e.id = c.etablissement_id WHERE e.schac_id = '${HEI}' AND e.is_local`), 'LET,SCI');
  // node 2's database is its own: the sync went one way
  assert.equal(psql('ewpd_partner', `SELECT string_agg(schac_id, ',') FROM smile.etablissement`), PARTNER);
});

test('the demo plays one student\'s story: nomination approved, twelve OLA steps, arrival dates, the same on both nodes', () => {
  const mob = "FROM smile.mobility WHERE omobility_id = 'ums-2026-0042'";
  assert.equal(psql('ewpd_hei', `SELECT concat_ws('|', is_outgoing, status, actual_arrival_date, actual_departure_date) ${mob}`),
    'f|approved|2026-09-07|2027-01-29');
  assert.equal(psql('ewpd_partner', `SELECT concat_ws('|', is_outgoing, status, actual_arrival_date, actual_departure_date) ${mob}`),
    't|approved|2026-09-07|2027-01-29');
  const versions = `SELECT string_agg(v.kind || ':' || v.state, ',' ORDER BY v.id) FROM smile.la_version v
    JOIN smile.learning_agreement l ON l.id = v.learning_agreement_id JOIN smile.mobility m ON m.id = l.mobility_id
    WHERE m.omobility_id = 'ums-2026-0042' AND v.state = 'current'`;
  assert.equal(psql('ewpd_hei', versions), 'first-version:current,approved-changes:current');
  assert.equal(psql('ewpd_partner', versions), 'first-version:current,approved-changes:current');
  assert.equal(psql('ewpd_hei', `SELECT string_agg(kind || ':' || state, ',' ORDER BY id) FROM ewp.decisions`),
    'nomination-approve:accepted,la-comment:accepted,la-approve:accepted,la-approve:accepted,la-comment:accepted,la-approve:accepted');
  for (const db of ['ewpd_hei', 'ewpd_partner']) {
    // the last notifications may still be on their way; none failed
    assert.equal(psql(db, "SELECT count(*) FROM ewp.jobs WHERE status NOT IN ('success', 'pending', 'running')"), '0',
      `no job of ${db} failed: ${psql(db, "SELECT string_agg(concat_ws(' ', id, kind, api, status, last_error), '; ') FROM ewp.jobs WHERE status <> 'success'")}`);
  }
  assert.match(first.stdout, /history \(8 versions\)/, show(first));
});

// The staff portal accounts the demo prints at its end, under "Demo
// accounts": [{ user, password, role }] (role: the role's label).
function printedAccounts(stdout) {
  const m = /^ {2}Demo accounts[^\n]*\n {4}user +password +role\n((?: {4}\S.*\n?)+)/m.exec(stdout);
  if (!m) return [];
  return m[1].trimEnd().split('\n').map((l) => {
    const [, user, password, role] = /^ {4}(\S+) +(\S+) +(\S.*)$/.exec(l) || [];
    return { user, password, role };
  });
}

test('the demo prints node 1\'s portal and its accounts: each signs in, with its role; the gestionnaire\'s dashboard lists Lena Schäfer', async () => {
  assert.equal(first.status, 0, 'the demo did not start');
  assert.ok(first.stdout.includes(`https://localhost:${port}/portal/\n`), show(first));
  const accounts = printedAccounts(first.stdout);
  assert.deepEqual(accounts.map((a) => [a.user, a.role]), [['gestionnaire', 'Gestionnaire'],
    ['fonctionnel', 'Administrateur fonctionnel'], ['technique', 'Administrateur technique'], ['invite', 'Invité']],
  show(first));
  const endpoint = { port, host: '127.0.0.1', tls: { ca: fs.readFileSync(path.join(dir, 'ca.pem')), servername: 'localhost' } };
  const signIn = async (a, password = a.password) => {
    const pc = new PortalClient(endpoint, `localhost:${port}`);
    return { pc, r: await pc.login(a.user, password) };
  };
  // what each may open: [path, status] (403: a page of another role)
  const pages = {
    gestionnaire: [['/portal/dashboard', 200], ['/portal/log', 200], ['/portal/workflow', 403], ['/portal/keys', 403]],
    fonctionnel: [['/portal/dashboard', 200], ['/portal/workflow', 200], ['/portal/keys', 403]],
    technique: [['/portal/workflow', 200], ['/portal/keys', 200]],
    invite: [['/portal/dashboard', 403], ['/portal/log', 403]],
  };
  for (const a of accounts) {
    assert.ok(Buffer.byteLength(a.password) >= 12 && a.password.includes('demo'), `${a.user}: a demo password of 12 bytes or more`);
    const { pc, r } = await signIn(a);
    assert.equal(r.status, 303, `${a.user} signs in: ${r.describe()}`);
    const home = await pc.get('/portal/');
    const page = home.status === 303 ? await pc.get(home.header('Location')) : home;
    assert.equal(page.status, 200, `${a.user}: ${page.describe()}`);
    const roles = (/<span class="roles">([^<]*)<\/span>/.exec(page.text) || [])[1] || '';
    assert.ok(roles.split(', ').includes(a.role), `${a.user} holds ${a.role}: ${roles}`);
    for (const [p, status] of pages[a.user]) {
      assert.equal((await pc.get(p)).status, status, `${a.user}: GET ${p}`);
    }
  }
  const g = accounts.find((a) => a.user === 'gestionnaire');
  const wrong = await signIn(g, `${g.password}x`);
  assert.equal(wrong.r.status, 401, 'a wrong password is refused');
  const { pc } = await signIn(g);
  const dash = await pc.get('/portal/dashboard');
  assert.equal(dash.status, 200, dash.describe());
  const id = psql('ewpd_hei', "SELECT id FROM smile.mobility WHERE omobility_id = 'ums-2026-0042'");
  assert.match(dash.text, new RegExp(`<a href="/portal/students/${id}">Schäfer, Lena</a>`), dash.describe(20000));
  const file = await pc.get(`/portal/students/${id}`);
  assert.equal(file.status, 200);
  assert.match(file.text, /<p class="student-who" id="student-name">Lena Schäfer<\/p>/);
});

test('a second run stops the first (every process) and starts afresh', async () => {
  assert.equal(first.status, 0, 'the demo did not start');
  const before1 = demoProcesses();
  assert.ok(before1.ewpd.length >= 4, `two supervisors and their workers: ${before1.ewpd}`);
  // ewpd supervisors, their workers and the postmaster (backends come and go)
  const core = (x) => [...x.ewpd, x.postmaster];
  assert.deepEqual(core(before1).filter(gone), [], 'the first run is alive');
  const r = demo();
  assert.equal(r.status, 0, show(r));
  assert.match(r.stdout, /already in .*: stopping it first/, show(r));
  assert.deepEqual(await waitGone(before1.all), [], 'every process of the first run is gone');
  const now = demoProcesses();
  assert.deepEqual(core(now).filter(gone), [], 'the second run is alive');
  assert.match(r.stdout, new RegExp(`^\\s*${PARTNER.replaceAll('.', '\\.')}\\s+ok\\s+5\\s*$`, 'm'), show(r));
  for (const p of [port, pport]) assert.equal((await get(p, '/healthz')).status, 200);
});

test('stop ends both nodes and the cluster, frees the ports and removes the directory', async () => {
  assert.equal(first.status, 0, 'the demo did not start');
  const procs = demoProcesses();
  const r = demo('stop');
  assert.equal(r.status, 0, show(r));
  assert.match(r.stdout, /demo stopped/);
  assert.deepEqual(await waitGone(procs.all), [], `left running after stop (of ${procs.all})`);
  assert.equal(fs.existsSync(dir), false, 'the demo directory is removed');
  for (const p of [port, pport]) assert.equal(await portOpen(p), false, `port ${p} is closed`);
  // stopping again is harmless
  const again = demo('stop');
  assert.equal(again.status, 0, show(again));
});

test('stop refuses to remove a directory the demo did not make', () => {
  const foreign = path.join(tmp, 'not-a-demo');
  fs.mkdirSync(foreign);
  fs.writeFileSync(path.join(foreign, 'precious.txt'), 'keep me');
  const r = spawnSync('sh', [DEMO_SH, 'stop'], { env: { ...env, DEMO_DIR: foreign }, encoding: 'utf8' });
  assert.notEqual(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /not made by tests\/demo\/demo.sh/);
  assert.equal(fs.readFileSync(path.join(foreign, 'precious.txt'), 'utf8'), 'keep me');
});
