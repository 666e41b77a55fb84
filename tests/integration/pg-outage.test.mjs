// PostgreSQL stopped and restarted under load. A real ewpd (2 workers)
// serves Institutions v2 and OUnits v2 from its SMILE core while several
// clients (some keep-alive, some one connection per request) keep sending
// signed requests, and the test stops the database for real (pg_ctl stop
// -m fast, then -m immediate: a crash) and starts it again. Every answer
// is classified by when it was asked: before the outage only 200; while
// the database is down only 503 with a valid <error-response>; around the
// transitions 200 or 503; never a 500, a reset connection or an answer
// slower than a bound. Both workers must have answered during the outage
// and after it, none may have died or been restarted, service must come
// back within a bound without touching ewpd, and the data served after is
// byte for byte what was served before. Then ewpd is started while the
// database is down, answers 503, and recovers when the database comes up.
//
// institutions.test.mjs and ounits.test.mjs already check one request at
// a time against a database halted and resumed with one worker; this file
// covers concurrency, both workers, the transitions, a crash of the
// server, worker survival and a start without database.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Ewpd, HEI_ID, PARTNER_HEI, itest } from './lib/daemon.mjs';
import { assertErrorResponse, exchange, fetchMetrics, metricValue } from './lib/ewp.mjs';
import { pollUntil } from './lib/poll.mjs';

const CLIENTS = 4; // 2 keep-alive, 2 with a connection per request
const ANSWER_BOUND_MS = 3000; // no answer may take longer, whatever the database does
const RECOVERY_BOUND_MS = 15000; // from "database started" to "every answer 200"
const STEADY_MS = 1500; // all-200 window that counts as recovered
const OUTAGE_MS = 2000;

let fx;
before(async () => {
  fx = await Ewpd.create('pg-outage', { pg: true, workers: 2 });
  fx.pg.psql(`
    INSERT INTO smile.etablissement (schac_id, erasmus_code, names, abbreviation, website_url, is_local)
      VALUES ('${HEI_ID}', 'F  SMILE01', '[{"lang":"fr","name":"Université de Test SMILE"},{"lang":"en","name":"SMILE Test University"}]',
              'UTS', 'https://www.smile.test/', true);
    INSERT INTO smile.etablissement (schac_id, names) VALUES ('${PARTNER_HEI}', '[{"name":"Partner University"}]');
    INSERT INTO smile.address (etablissement_id, kind, street_name, building_number, locality, country)
      SELECT id, 'street', 'Esplanade de la Paix', '1', 'Caen', 'FR' FROM smile.etablissement WHERE schac_id = '${HEI_ID}';
    INSERT INTO smile.contact (etablissement_id, names, emails)
      SELECT id, '[{"lang":"en","name":"International office"}]', '{"ri@smile.test"}' FROM smile.etablissement WHERE schac_id = '${HEI_ID}';
    INSERT INTO smile.composante (etablissement_id, ounit_id, code, names)
      SELECT id, 'ou-sci', 'SCI', '[{"lang":"en","name":"Faculty of Science"}]' FROM smile.etablissement WHERE schac_id = '${HEI_ID}';
    INSERT INTO smile.composante (etablissement_id, ounit_id, code, names, parent_id)
      SELECT e.id, 'ou-math', 'MATH', '[{"lang":"en","name":"Mathematics"}]', c.id
      FROM smile.etablissement e JOIN smile.composante c ON c.etablissement_id = e.id AND c.ounit_id = 'ou-sci'
      WHERE e.schac_id = '${HEI_ID}';`);
});
after(async () => { await fx?.cleanup(); });

// The kinds of request the clients send, in turn.
const KINDS = {
  'institutions GET': () => fx.signed({ path: `/ewp/institutions?hei_id=${HEI_ID}&hei_id=${PARTNER_HEI}` }),
  'institutions POST': () => fx.signed({ method: 'POST', path: '/ewp/institutions', body: `hei_id=${HEI_ID}`,
    contentType: 'application/x-www-form-urlencoded' }),
  'ounits GET': () => fx.signed({ path: `/ewp/ounits?hei_id=${HEI_ID}&ounit_id=ou-math&ounit_id=ou-sci` }),
};
const API_OF = { 'institutions GET': 'institutions', 'institutions POST': 'institutions', 'ounits GET': 'ounits' };

// PIDs of the processes whose parent is pid (ewpd's workers).
function childPids(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat;
    try { stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8'); } catch { continue; }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) out.push(Number(d));
  }
  return out.sort((x, y) => x - y);
}

// Running, and not a zombie waiting to be reaped?
function processAlive(pid) {
  try {
    return !/^\S+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

// The worker that answered each request id, from ewpd's log since `from`.
function workerOfRequest(from) {
  const m = new Map();
  for (const line of fx.log(from, Infinity).split('\n')) {
    const w = /ewpd-worker\[(\d+)\].* rid=([0-9a-f-]{36})/.exec(line);
    if (w) m.set(w[2], Number(w[1]));
  }
  return m;
}

/*
 * Clients sending signed requests back to back until stop(). Each answer
 * (or failure) is a record { client, kind, t0, t1, req, res | error }.
 */
class Load {
  constructor(n) {
    this.records = [];
    this.stopped = false;
    this.loops = Array.from({ length: n }, (_, i) => this._client(i, i % 2 === 0));
  }

  async _client(i, keepAlive) {
    let conn = null;
    let k = i;
    const kinds = Object.keys(KINDS);
    while (!this.stopped) {
      const kind = kinds[k++ % kinds.length];
      const req = { ...KINDS[kind](), timeout: ANSWER_BOUND_MS + 2000 };
      const rec = { client: i, kind, t0: Date.now(), req };
      try {
        if (keepAlive) {
          if (!conn || conn.closed) conn = await fx.connect({ timeout: req.timeout });
          rec.res = await conn.request(req);
          if (/close/i.test(rec.res.header('Connection') || '')) { conn.close(); conn = null; }
        } else {
          rec.res = await fx.send(req, { timeout: req.timeout });
        }
      } catch (e) {
        rec.error = `${e.code || ''} ${e.message}`;
        conn?.close();
        conn = null;
      }
      rec.t1 = Date.now();
      rec.status = rec.res?.status;
      rec.rid = req.requestId;
      if (rec.status === 200) {
        // only a digest of the many 200 answers is kept
        rec.hash = crypto.createHash('sha256').update(rec.res.body).digest('hex');
        delete rec.res;
        delete rec.req;
      }
      this.records.push(rec);
      await sleep(5);
    }
    conn?.close();
  }

  async stop() {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  get finished() {
    return this.records;
  }
}

const describe = (r) => `${r.kind} (client ${r.client}, asked at ${new Date(r.t0).toISOString()}, ${r.t1 - r.t0} ms): ` +
  `${r.error ? `ERROR ${r.error}` : `HTTP ${r.status}`}${r.req ? exchange(r.req, r.res) : ''}`;

// Every 503 body, validated once per distinct body (xmllint is slow).
function assertErrorBodies(records, what) {
  const seen = new Set();
  for (const r of records.filter((x) => x.status === 503)) {
    const key = r.res.body.toString('utf8');
    if (seen.has(key)) continue;
    seen.add(key);
    const msg = assertErrorResponse(r.res, 503, r.req, `${what}: 503 of ${r.kind}`);
    assert.match(msg, /database unavailable/, `${what}: 503 developer-message${exchange(r.req, r.res)}`);
  }
  return seen.size;
}

// Digests of the 200 answers to each kind of request: { kind: Set(hex) }.
function bodiesByKind(records) {
  const out = {};
  for (const r of records.filter((x) => x.status === 200)) (out[r.kind] ||= new Set()).add(r.hash);
  return out;
}

const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

let reference; // { kind: body } served before any outage

/*
 * One outage under load: database stopped with pg_ctl -m `mode`, kept
 * down OUTAGE_MS, started again; load kept on until answers have been all
 * 200 for STEADY_MS. Returns what was measured.
 */
async function outageUnderLoad(t, mode) {
  const pidsBefore = childPids(fx.proc.pid);
  assert.equal(pidsBefore.length, 2, `two workers: ${pidsBefore}`);
  const m0 = (await fetchMetrics(fx)).samples;
  const logFrom = fx.logSize();
  const pgPid = Number(fs.readFileSync(`${fx.pg.dir}/data/postmaster.pid`, 'utf8').split('\n')[0]);

  const load = new Load(CLIENTS);
  let halted = false;
  let tHalt, tDown, tResume, tUp, recovered;
  try {
    await sleep(800);
    tHalt = Date.now();
    halted = true;
    await fx.pg.haltAsync(mode);
    tDown = Date.now();
    assert.ok(!processAlive(pgPid), `the postmaster (${pgPid}) is really gone after pg_ctl -m ${mode}`);
    await sleep(OUTAGE_MS);
    tResume = Date.now();
    await fx.pg.resumeAsync();
    halted = false;
    tUp = Date.now();
    recovered = await pollUntil(async () => {
      const after = load.finished.filter((r) => r.t0 >= tUp);
      const bad = after.filter((r) => r.status !== 200);
      const since = bad.length ? Math.max(...bad.map((r) => r.t1)) : tUp;
      const good = after.filter((r) => r.t0 >= since);
      return { ok: Date.now() - since >= STEADY_MS && good.length >= 20, since,
        detail: `${bad.length} non-200 answers since the database started${bad.length ? `, last: ${describe(bad[bad.length - 1])}` : ''}` };
    }, RECOVERY_BOUND_MS + STEADY_MS, `every answer 200 for ${STEADY_MS} ms after the database started (pg_ctl -m ${mode})`, 100);
  } finally {
    await load.stop();
    if (halted) await fx.pg.resumeAsync(); // for the next tests
  }
  const recs = load.finished;
  const what = `pg_ctl -m ${mode}`;

  // never a reset, a timeout, a 500 or a slow answer
  const broken = recs.filter((r) => ![200, 503].includes(r.status));
  assert.equal(broken.length, 0, `${what}: ${broken.length} answers neither 200 nor 503 (of ${recs.length}); first:\n` +
    `${broken.slice(0, 3).map(describe).join('\n')}`);
  const slow = recs.filter((r) => r.t1 - r.t0 > ANSWER_BOUND_MS);
  assert.equal(slow.length, 0, `${what}: answers slower than ${ANSWER_BOUND_MS} ms:\n${slow.slice(0, 3).map(describe).join('\n')}`);
  // before: 200; while down: 503; after recovery: 200
  const pre = recs.filter((r) => r.t1 < tHalt);
  assert.ok(pre.length >= 10 && pre.every((r) => r.status === 200),
    `${what}: before the outage every answer is 200 (${pre.length})\n${pre.filter((r) => r.status !== 200).slice(0, 2).map(describe).join('\n')}`);
  const down = recs.filter((r) => r.t0 >= tDown && r.t1 <= tResume);
  const notDown = down.filter((r) => r.status !== 503);
  assert.equal(notDown.length, 0, `${what}: while the database is down every answer is 503:\n${notDown.slice(0, 3).map(describe).join('\n')}`);
  assert.ok(down.length >= 20, `${what}: the outage was exercised (${down.length} requests)`);
  assert.deepEqual([...new Set(down.map((r) => r.client))].sort(), [...Array(CLIENTS).keys()], `${what}: every client was answered during the outage`);
  const distinct503 = assertErrorBodies(recs, what);
  // both workers lived through it, answered 503 while down and 200 after
  const byWorker = workerOfRequest(logFrom);
  const workersOf = (rs) => [...new Set(rs.map((r) => byWorker.get(r.rid)).filter(Boolean))].sort((x, y) => x - y);
  assert.deepEqual(workersOf(down), pidsBefore, `${what}: both workers answered 503 during the outage`);
  const post = recs.filter((r) => r.t0 >= recovered.since);
  assert.deepEqual(workersOf(post), pidsBefore, `${what}: both workers answered 200 after it`);
  assert.ok(fx.alive, 'ewpd is running');
  assert.deepEqual(childPids(fx.proc.pid), pidsBefore, `${what}: same worker processes`);
  const m1 = (await fetchMetrics(fx)).samples;
  assert.equal(metricValue(m1, 'ewpd_worker_restarts_total'), metricValue(m0, 'ewpd_worker_restarts_total'), `${what}: no worker restarted`);
  // the shared counters saw what the clients saw: no 500 at all, every 503 counted
  for (const api of ['institutions', 'ounits']) {
    const mine = recs.filter((r) => API_OF[r.kind] === api);
    for (const status of ['200', '503', '500']) {
      assert.equal(metricValue(m1, 'ewpd_requests_total', { api, status }) - metricValue(m0, 'ewpd_requests_total', { api, status }),
        mine.filter((r) => String(r.status) === status).length, `${what}: ewpd_requests_total{api="${api}",status="${status}"}`);
    }
  }
  // the data served after is the data served before
  const bodies = bodiesByKind(recs);
  for (const kind of Object.keys(KINDS)) {
    assert.deepEqual([...bodies[kind]], [sha256(reference[kind])], `${what}: ${kind} serves the same document before, after (and around) the outage`);
  }
  const fig = { mode, requests: recs.length, down: down.length, s503: recs.filter((r) => r.status === 503).length,
    distinct503, haltMs: tDown - tHalt, resumeMs: tUp - tResume, recoveryMs: recovered.since - tUp,
    maxMs: Math.max(...recs.map((r) => r.t1 - r.t0)) };
  t.diagnostic(JSON.stringify(fig));
  return fig;
}

itest(() => fx, 'pg outage: reference answers (200, both APIs, both methods) before any outage', async () => {
  reference = {};
  for (const [kind, make] of Object.entries(KINDS)) {
    const req = make();
    const res = await fx.send(req);
    assert.equal(res.status, 200, `${kind}${exchange(req, res)}`);
    assert.match(res.text, kind.startsWith('ounits') ? /<ounit-id>ou-math<\/ounit-id>/ : /<hei-id>smile\.test<\/hei-id>/);
    reference[kind] = res.text;
  }
});

itest(() => fx, 'pg outage: fast shutdown (pg_ctl -m fast) under load → 503 while down, 200 after, same workers, same data', async (t) => {
  assert.ok(reference, 'reference answers');
  await outageUnderLoad(t, 'fast');
}, { timeout: 45000 });

itest(() => fx, 'pg outage: crash (pg_ctl -m immediate, crash recovery at restart) under load → the same', async (t) => {
  assert.ok(reference, 'reference answers');
  await outageUnderLoad(t, 'immediate');
}, { timeout: 45000 });

// A lock held by a prepared transaction outlives the server's backends, so
// the queries waiting behind it cannot finish before the shutdown kills
// them: each is certainly in flight when the server stops.
const LOCK_GID = 'pg-outage-lock';

itest(() => fx, 'pg outage: queries waiting on a lock when the server stops (fast) → each answered 503 within the bound, none 500', async (t) => {
  assert.ok(reference, 'reference answers');
  const pids = childPids(fx.proc.pid);
  // prepared transactions need max_prepared_transactions > 0, read at start
  fx.pg.psql('ALTER SYSTEM SET max_prepared_transactions = 2');
  await fx.pg.haltAsync('fast');
  await fx.pg.resumeAsync();
  let halted = false;
  let locked = false;
  try {
    await pollUntil(async () => {
      const res = await fx.send(KINDS['institutions GET']());
      return { ok: res.status === 200, detail: `HTTP ${res.status}` };
    }, RECOVERY_BOUND_MS, 'service back after the configuration restart', 100);
    fx.pg.psql(`BEGIN; LOCK TABLE smile.etablissement IN ACCESS EXCLUSIVE MODE; PREPARE TRANSACTION '${LOCK_GID}';`);
    locked = true;
    const N = 16; // more than the 2 x 4 connections of the pools: some wait in ewpd's own queue
    const pending = Array.from({ length: N }, (_, i) => {
      const kind = i % 2 ? 'institutions GET' : 'institutions POST';
      const req = KINDS[kind]();
      const t0 = Date.now();
      return fx.send(req, { timeout: ANSWER_BOUND_MS + 5000 })
        .then((res) => ({ kind, req, res, status: res.status, t0, t1: Date.now(), client: i }),
          (e) => ({ kind, req, error: `${e.code || ''} ${e.message}`, t0, t1: Date.now(), client: i }));
    });
    const waiting = await pollUntil(async () => {
      const n = fx.pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'`);
      return { ok: Number(n) >= 4, n, detail: `${n} queries waiting` };
    }, 5000, 'ewpd\'s queries waiting on the lock');
    await sleep(300); // the others reach the server or ewpd's queue
    const tHalt = Date.now();
    halted = true;
    await fx.pg.haltAsync('fast');
    const recs = await Promise.all(pending);
    const bad = recs.filter((r) => r.status !== 503 || r.t1 - tHalt > ANSWER_BOUND_MS);
    assert.equal(bad.length, 0, `in flight when the server stopped: 503 within ${ANSWER_BOUND_MS} ms of the stop\n` +
      `${bad.slice(0, 3).map(describe).join('\n')}`);
    assertErrorBodies(recs, 'in flight at the stop');
    t.diagnostic(`${waiting.n} queries waiting in the server; slowest answer after the stop: ${Math.max(...recs.map((r) => r.t1 - tHalt))} ms`);
    await fx.pg.resumeAsync();
    halted = false;
    fx.pg.psql(`ROLLBACK PREPARED '${LOCK_GID}'`);
    locked = false;
    await pollUntil(async () => {
      const req = KINDS['institutions GET']();
      const res = await fx.send(req);
      return { ok: res.status === 200 && res.text === reference['institutions GET'], detail: `HTTP ${res.status}` };
    }, RECOVERY_BOUND_MS, 'service back after the restart', 100);
    assert.deepEqual(childPids(fx.proc.pid), pids, 'same workers');
  } finally {
    if (halted) await fx.pg.resumeAsync();
    if (locked) fx.pg.psql(`ROLLBACK PREPARED '${LOCK_GID}'`);
  }
}, { timeout: 45000 });

itest(() => fx, 'pg outage: ewpd started while the database is down → healthz "database down", 503; database started → 200, same data', async () => {
  assert.ok(reference, 'reference answers');
  await fx.stop();
  await fx.pg.haltAsync('fast');
  try {
    await fx.start();
    const h = await fx.get('/healthz');
    assert.equal(h.status, 200);
    assert.match(h.text, /database down/);
    const pids = childPids(fx.proc.pid);
    assert.equal(pids.length, 2, `two workers: ${pids}`);
    const recs = [];
    for (let i = 0; i < 12; i++) {
      const kind = Object.keys(KINDS)[i % 3];
      const req = KINDS[kind]();
      const t0 = Date.now();
      const res = await fx.send(req, { timeout: ANSWER_BOUND_MS + 2000 });
      recs.push({ kind, req, res, status: res.status, t0, t1: Date.now(), client: 0 });
    }
    const not503 = recs.filter((r) => r.res.status !== 503 || r.t1 - r.t0 > ANSWER_BOUND_MS);
    assert.equal(not503.length, 0, `no database since start: 503 at once\n${not503.slice(0, 2).map(describe).join('\n')}`);
    assertErrorBodies(recs, 'started without database');
    await fx.pg.resumeAsync();
    const tUp = Date.now();
    await pollUntil(async () => {
      const oks = [];
      for (const kind of Object.keys(KINDS)) {
        const req = KINDS[kind]();
        const res = await fx.send(req);
        assert.ok([200, 503].includes(res.status), `while reconnecting: 200 or 503${exchange(req, res)}`);
        if (res.status === 200) oks.push(kind);
        if (res.status === 200) assert.equal(res.text, reference[kind], `${kind}: same document`);
      }
      return { ok: oks.length === 3, detail: `200 for ${oks}` };
    }, RECOVERY_BOUND_MS, 'every kind of request answered 200 after the database started', 100);
    // each worker reconnects on its own: wait until a burst on fresh
    // connections (spread over both workers) is all 200, then once more
    const burst = () => Promise.all(Array.from({ length: 12 }, (_, i) => {
      const req = KINDS[Object.keys(KINDS)[i % 3]]();
      return fx.send(req).then((res) => ({ req, res }));
    }));
    await pollUntil(async () => {
      const b = await burst();
      for (const { req, res } of b) assert.ok([200, 503].includes(res.status), `while reconnecting: 200 or 503${exchange(req, res)}`);
      const n = b.filter(({ res }) => res.status === 200).length;
      return { ok: n === b.length, detail: `${n}/${b.length} answered 200` };
    }, RECOVERY_BOUND_MS, 'both workers reconnected', 100);
    for (const { req, res } of await burst()) assert.equal(res.status, 200, `after recovery${exchange(req, res)}`);
    assert.ok(Date.now() - tUp < RECOVERY_BOUND_MS + 5000);
    assert.match((await fx.get('/healthz')).text, /^ok\s*$/);
    assert.deepEqual(childPids(fx.proc.pid), pids, 'same workers');
    assert.equal(metricValue((await fetchMetrics(fx)).samples, 'ewpd_worker_restarts_total'), 0, 'no worker restarted');
  } finally {
    if (!fs.existsSync(`${fx.pg.dir}/data/postmaster.pid`)) await fx.pg.resumeAsync();
  }
}, { timeout: 45000 });

itest(() => fx, 'pg outage: after all that, ewpd stops cleanly (exit 0, no sanitizer report in its log)', async () => {
  const r = await fx.stop();
  assert.deepEqual({ code: r?.code, signal: r?.signal }, { code: 0, signal: null }, `ewpd exit\n${fx.log(0, 4000)}`);
  assert.doesNotMatch(fx.log(0, Infinity), /Sanitizer|runtime error/, 'no sanitizer report');
});
