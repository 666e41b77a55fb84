#!/usr/bin/env node
// bench/mobility-bench.mjs - step 8 of `make bench` (bench/run.sh): the
// nomination flow between two real ewpd nodes (tests/integration/lib/
// two-nodes.mjs: each with its own PostgreSQL, TLS and keys, one catalogue
// built from their manifests).
//
//   A. throughput: N outgoing mobilities made at once on the sending node
//      (one SQL statement, timed apart), then the time until all N are
//      stored on the receiving node (smile.mobility + smile.inscription):
//      each costs an OMobility CNR (sending -> receiving) and an
//      OMobilities get (receiving -> sending), every request and every
//      response signed. CPU of each ewpd and of each PostgreSQL.
//   B. backlog: the receiving node stopped, BACKLOG mobilities made on the
//      sending node (as many CNR jobs failing and backing off), the
//      receiving node started again; the time until every CNR job is a
//      success and every mobility is stored:
//        B1 with a short backoff (retry_min 1s, retry_max 2s): processing-bound
//        B2 with the default backoff (1m .. 1h) and, once the partner is
//           back, `ewpctl jobs retry --partner HEI`.
//
// Prints human lines ("  ...") and machine lines "RESULT name value"
// (bench/run.sh copies them into the results TSV); "FAILED ..." and exit 1
// when rows are missing or a job failed.
//
//   node bench/mobility-bench.mjs [--n 2000] [--backlog 10000]
//        [--concurrency C] [--workers W] [--rsa-sign S] [--skip-backlog]
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const lib = path.join(root, 'tests', 'integration', 'lib');
const { RECEIVING_HEI, SENDING_HEI, TwoNodes } = await import(path.join(lib, 'two-nodes.mjs'));
const { request } = await import(path.join(lib, 'http.mjs'));

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const N = Number(opt('n', process.env.BENCH_MOBILITIES || 2000));
const BACKLOG = Number(opt('backlog', process.env.BENCH_BACKLOG || 10000));
const WORKERS = Number(opt('workers', 0)) || undefined;
const CONC = opt('concurrency', process.env.BENCH_JOBS_CONCURRENCY || '');
// one core's RSA-2048 sign/s: bench/run.sh's step 1 passes it; alone, measured here
let RSA_SIGN = Number(opt('rsa-sign', 0)) || 0;
if (!RSA_SIGN) {
  const sp = spawnSync('openssl', ['speed', '-seconds', '2', 'rsa2048'], { encoding: 'utf8' });
  const m = /^rsa 2048 bits\s+\S+\s+\S+\s+([\d.]+)/m.exec(sp.stdout || '');
  RSA_SIGN = m ? Number(m[1]) : 0;
}
const CORES = Number(opt('cores', 0)) || (await import('node:os')).cpus().length;
const SKIP_BACKLOG = args.includes('--skip-backlog');
// --profile: pg_stat_statements on both clusters, the top statements printed
const PROFILE = args.includes('--profile');
const HZ = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const TIMEOUT_S = Number(process.env.BENCH_MOB_TIMEOUT || 600);

let failed = 0;
const say = (s = '') => console.log(s);
const result = (k, v) => console.log(`RESULT ${k} ${v}`);
const fail = (s) => { failed++; console.log(`  FAILED: ${s}`); };
const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

// ---- CPU of a process tree (/proc), in seconds -------------------------
function stat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const a = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields 14..17 of stat(5) = a[11..14]: utime stime cutime cstime
    return a.slice(11, 15).map(Number);
  } catch { return null; }
}
const children = (pid) => {
  try { return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; }
};
// the process, its live children, and its ended children (cutime/cstime)
function treeTicks(pid) {
  const s = stat(pid);
  if (!s) return 0;
  let t = s[0] + s[1] + s[2] + s[3];
  for (const c of children(pid)) {
    const cs = stat(c);
    if (cs) t += cs[0] + cs[1];
  }
  return t;
}
const pgPid = (node) => Number(fs.readFileSync(path.join(node.pg.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
function cpu(t) {
  return {
    sendEwpd: t.sending.alive ? treeTicks(t.sending.proc.pid) : 0,
    recvEwpd: t.receiving.alive ? treeTicks(t.receiving.proc.pid) : 0,
    sendPg: treeTicks(pgPid(t.sending)),
    recvPg: treeTicks(pgPid(t.receiving)),
  };
}
const cpuDelta = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, (b[k] - a[k]) / HZ]));
function machineBusy() { // [busy, total] jiffies of all cores
  const l = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = l.reduce((x, y) => x + y, 0);
  return [total - l[3] - l[4], total];
}

// ---- /metrics: requests answered, by api and status ---------------------
async function metrics(node) {
  const r = await request(node.endpoint, { method: 'GET', target: '/metrics', headers: [['Host', node.hostHeader]], timeout: 5000 });
  const m = new Map();
  for (const line of r.body.toString('utf8').split('\n')) {
    const x = /^ewpd_requests_total\{api="([^"]*)",status="([^"]*)"\} (\d+)/.exec(line);
    if (x) m.set(`${x[1]} ${x[2]}`, Number(x[3]));
  }
  return m;
}
const mDelta = (a, b) => {
  const d = {};
  for (const [k, v] of b) if (v - (a.get(k) || 0) > 0) d[k] = v - (a.get(k) || 0);
  return d;
};

// psql for the polls: the server's own binary, not Debian's Perl wrapper
// (/usr/bin/psql), which costs ~50 ms of CPU a call and would take a
// visible share of the machine from what is measured
const PSQL = (() => {
  let best = 'psql';
  try {
    for (const v of fs.readdirSync('/usr/lib/postgresql').sort()) {
      const b = `/usr/lib/postgresql/${v}/bin/psql`;
      if (fs.existsSync(b)) best = b;
    }
  } catch { /* not Debian's layout */ }
  return best;
})();
function q(node, sql) {
  const r = spawnSync(PSQL, [node.pg.conninfo, '-X', '-v', 'ON_ERROR_STOP=1', '-tAqc', sql], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql failed: ${sql}\n${r.stderr}`);
  return r.stdout.trim();
}
const POLL_MS = 250;

// ---- the data -----------------------------------------------------------
const NOMINATION = fs.readFileSync(path.join(root, 'tests', 'demo', 'mobility', 'nomination.xml'), 'utf8')
  .replace(/<\?xml[^>]*\?>/, '').replace(/<!--[\s\S]*?-->/g, '').trim();

// count nominations PREFIX-1 .. PREFIX-n in one statement (one transaction)
function createMobilities(t, prefix, n) {
  const sql = `SELECT count(*) FROM generate_series(1, ${n}) g,
    LATERAL smile.omobility_nominate(replace(replace($nom$${NOMINATION}$nom$,
      'ums-2026-0042', '${prefix}-' || g), ':20230042', ':${prefix}' || g)::xml) r
    WHERE r.action = 'created'`;
  const t0 = performance.now();
  const got = Number(t.sending.pg.psql(sql));
  const ms = performance.now() - t0;
  if (got !== n) fail(`${got} of ${n} mobilities created on the sending node`);
  return ms / 1000;
}

// what the receiving node holds of PREFIX-*: mobilities, with a registration
function stored(t, prefix) {
  const [m, i] = q(t.receiving, `SELECT count(*), count(i.id) FROM smile.mobility m
      LEFT JOIN smile.inscription i ON i.id = m.inscription_id
     WHERE NOT m.is_outgoing AND m.sending_hei_id = '${SENDING_HEI}' AND m.omobility_id LIKE '${prefix}-%'`).split('|').map(Number);
  return { m, i };
}

// the CNR jobs of the sending node for PREFIX-*, by status
function cnrJobs(t, prefix) {
  const o = {};
  const out = q(t.sending, `SELECT status, count(*) FROM ewp.jobs
     WHERE direction = 'out' AND kind = 'cnr' AND dedupe_key LIKE '${SENDING_HEI} ${prefix}-%' GROUP BY 1`);
  for (const l of out.split('\n').filter(Boolean)) { const [s, c] = l.split('|'); o[s] = Number(c); }
  return o;
}

function badJobs(t) {
  const q = `SELECT kind || ' ' || api || ' ' || status || ': ' || coalesce(left(last_error, 200), '') FROM ewp.jobs
     WHERE status IN ('rejected', 'failed-max-attempts', 'expired', 'cancelled', 'no-cnr-api') LIMIT 5`;
  return [...t.sending.pg.psql(q).split('\n'), ...t.receiving.pg.psql(q).split('\n')].filter(Boolean);
}

// Waits until the receiving node stores all n of PREFIX-* and every CNR job
// of them is a success; returns seconds since t0 (ms clock), or NaN.
async function waitStored(t, prefix, n, t0, label) {
  let last = { m: 0, i: 0 };
  let lastChange = performance.now();
  for (;;) {
    const s = stored(t, prefix);
    if (s.m !== last.m) lastChange = performance.now();
    last = s;
    if (s.m === n && s.i === n) {
      const storedAt = performance.now();
      // the CNR jobs: success once the partner's 200 is recorded (a moment later)
      for (let k = 0; k < 100; k++) {
        const j = cnrJobs(t, prefix);
        if ((j.success || 0) === n) return { stored: (storedAt - t0) / 1000, drained: (performance.now() - t0) / 1000 };
        await sleep(100);
      }
      fail(`${label}: all stored, but the CNR jobs are ${JSON.stringify(cnrJobs(t, prefix))}`);
      return { stored: (storedAt - t0) / 1000, drained: NaN };
    }
    const now = performance.now();
    if ((now - t0) / 1000 > TIMEOUT_S || (now - lastChange) / 1000 > 120) {
      fail(`${label}: ${s.m} of ${n} mobilities stored (${s.i} with a registration) after ${f((now - t0) / 1000)} s; ` +
        `CNR jobs ${JSON.stringify(cnrJobs(t, prefix))}; failed jobs: ${badJobs(t).join(' | ') || 'none'}`);
      return { stored: NaN, drained: NaN };
    }
    await sleep(POLL_MS);
  }
}

function jobsConf(extra = {}) {
  return { lease: '2m', timeout: '30s', ...(CONC ? { concurrency: CONC } : {}), ...extra };
}

// ---- A: throughput --------------------------------------------------------
async function throughput(t) {
  say(`  A. throughput: ${N} mobilities created on the sending node in one statement,`);
  say('     then CNR -> get -> store on the receiving node');
  const m0s = await metrics(t.sending);
  const m0r = await metrics(t.receiving);
  const createS = createMobilities(t, 'thr', N);
  const t0 = performance.now();
  const c0 = cpu(t);
  const b0 = machineBusy();
  const w = await waitStored(t, 'thr', N, t0, 'throughput');
  const c1 = cpu(t);
  const b1 = machineBusy();
  const d = cpuDelta(c0, c1);
  const ms = mDelta(m0s, await metrics(t.sending));
  const mr = mDelta(m0r, await metrics(t.receiving));
  say(`  created ${N} in ${f(createS, 2)} s (not measured below)`);
  const rate = N / w.stored;
  say(`  all ${N} stored after ${f(w.stored, 2)} s (CNR jobs all success after ${f(w.drained, 2)} s): ${f(rate)} mobilities/s (target >= 500)`);
  // exchanges: what each node served (its /metrics), every status
  const served = (m, api) => Object.entries(m).filter(([k]) => k.startsWith(`${api} `)).reduce((x, [, v]) => x + v, 0);
  const non200 = [...Object.entries(ms), ...Object.entries(mr)].filter(([k]) => !/ 200$/.test(k));
  const cnrN = served(mr, 'omobility-cnr');
  const getN = served(ms, 'omobilities');
  const exch = Object.values(ms).reduce((x, y) => x + y, 0) + Object.values(mr).reduce((x, y) => x + y, 0);
  say(`  exchanges: ${exch} (receiving node served ${JSON.stringify(mr)}; sending node served ${JSON.stringify(ms)})`);
  if (non200.length) say(`  NOTE: answers other than 200: ${JSON.stringify(non200)}`);
  const sigs = exch * 2; // each exchange: the caller signs its request, the server its response
  const perMob = sigs / N;
  say(`  ${f(exch / w.stored)} exchanges/s; ${f(exch / N, 2)} exchanges and ${f(perMob, 2)} RSA signatures per mobility`);
  say(`  (each exchange: request signed by the caller, response signed by the server, both verified)`);
  const busy = 100 * (b1[0] - b0[0]) / (b1[1] - b0[1]);
  const tot = d.sendEwpd + d.recvEwpd + d.sendPg + d.recvPg;
  say(`  CPU seconds: sending ewpd ${f(d.sendEwpd, 2)}, receiving ewpd ${f(d.recvEwpd, 2)}, ` +
    `sending PostgreSQL ${f(d.sendPg, 2)}, receiving PostgreSQL ${f(d.recvPg, 2)} (wall ${f(w.stored, 2)} s x ${CORES} cores; machine busy ${f(busy, 0)}%)`);
  say(`  per mobility: ${f(1000 * (d.sendEwpd + d.recvEwpd) / N, 2)} ms of ewpd CPU, ${f(1000 * (d.sendPg + d.recvPg) / N, 2)} ms of PostgreSQL CPU ` +
    `(${f(100 * (d.sendPg + d.recvPg) / tot, 0)}% of the ${f(1000 * tot / N, 2)} ms the four processes used)`);
  // the machine is shared: what the same CPU cost would give on dedicated cores
  const cpuBound = (N / tot) * CORES;
  const others = busy - 100 * tot / (w.stored * CORES);
  say(`  the two nodes and their databases used ${f(100 * tot / (w.stored * CORES), 0)}% of the ${CORES} cores, other processes ~${f(others, 0)}%;`);
  say(`  at ${f(1000 * tot / N, 2)} CPU-ms per mobility, ${CORES} dedicated cores would store ~${f(cpuBound, 0)} mobilities/s`);
  let ratio = NaN;
  if (RSA_SIGN > 0) {
    const ceiling = (RSA_SIGN * CORES) / perMob; // mobilities/s if every core did nothing but sign
    ratio = rate / ceiling;
    say(`  signing ceiling: ${RSA_SIGN} sign/s x ${CORES} cores / ${f(perMob, 2)} signatures = ${f(ceiling, 0)} mobilities/s; measured / ceiling = ${f(ratio, 3)}`);
    say(`  RSA signing took ~${f(100 * (sigs / RSA_SIGN) / tot, 0)}% of the CPU the four processes used`);
  }
  result('mob_n', N);
  result('mob_create_s', f(createS, 2));
  result('mob_stored_s', f(w.stored, 2));
  result('mob_per_s', f(rate));
  result('mob_exchanges', exch);
  result('mob_cnr_served', cnrN);
  result('mob_get_served', getN);
  result('mob_exchanges_per_s', f(exch / w.stored));
  result('mob_signatures_per_mobility', f(perMob, 2));
  result('mob_cpu_send_ewpd_s', f(d.sendEwpd, 2));
  result('mob_cpu_recv_ewpd_s', f(d.recvEwpd, 2));
  result('mob_cpu_send_pg_s', f(d.sendPg, 2));
  result('mob_cpu_recv_pg_s', f(d.recvPg, 2));
  result('mob_over_sign_ceiling', f(ratio, 3));
  result('mob_cpu_ms_per_mobility', f(1000 * tot / N, 2));
  result('mob_per_s_dedicated_cores', f(cpuBound, 0));
  result('mob_other_processes_pct', f(others, 0));
  if (non200.length) fail(`answers other than 200 during the throughput run: ${JSON.stringify(non200)}`);
  if (cnrN < N || getN < N) fail(`${cnrN} CNRs and ${getN} gets served for ${N} mobilities`);
}

// ---- B: backlog ---------------------------------------------------------------
async function restartSending(t, jobs) {
  await t.sending.stop();
  t.sending.writeConfig({ jobs: jobsConf(jobs) });
  await t.sending.start({ timeout: 30000 });
}

// all CNR jobs of PREFIX-* attempted at least once, none given up
async function waitBackedOff(t, prefix, n) {
  const t0 = performance.now();
  for (;;) {
    const r = q(t.sending, `SELECT count(*) FILTER (WHERE attempts >= 1 AND status IN ('pending', 'running')),
        count(*), to_char(min(next_attempt_at) FILTER (WHERE status = 'pending') - now(), 'HH24:MI:SS'),
        to_char(max(next_attempt_at) FILTER (WHERE status = 'pending') - now(), 'HH24:MI:SS')
      FROM ewp.jobs WHERE kind = 'cnr' AND dedupe_key LIKE '${SENDING_HEI} ${prefix}-%'`).split('|');
    if (Number(r[0]) === n) return { s: (performance.now() - t0) / 1000, min: r[2], max: r[3] };
    if ((performance.now() - t0) / 1000 > TIMEOUT_S) {
      fail(`backlog: only ${r[0]} of ${n} CNR jobs attempted and pending (${r[1]} jobs)`);
      return null;
    }
    await sleep(250);
  }
}

async function backlog(t, label, prefix, jobs, operator) {
  say(`  ${label}`);
  await restartSending(t, jobs);
  await t.receiving.stop();
  const createS = createMobilities(t, prefix, BACKLOG);
  say(`    receiving node stopped; ${BACKLOG} mobilities created in ${f(createS, 2)} s`);
  const w0 = await waitBackedOff(t, prefix, BACKLOG);
  if (!w0) return NaN;
  say(`    all ${BACKLOG} CNR jobs failed at least once within ${f(w0.s, 1)} s; their next attempts are due in ${w0.min} .. ${w0.max}`);
  if (operator) {
    // An outage of hours, without waiting hours: the jobs are put where
    // the default backoff leaves them after 7 failed attempts (1m doubling,
    // capped at 1h, drawn in 50-100%: the next attempt 30-60 min away).
    let moved = 0;
    for (let k = 0; k < 40 && moved < BACKLOG; k++) {
      moved += Number(q(t.sending, `WITH u AS (UPDATE ewp.jobs SET attempts = 7,
          next_attempt_at = now() + (30 + 30 * random()) * interval '1 minute'
        WHERE kind = 'cnr' AND dedupe_key LIKE '${SENDING_HEI} ${prefix}-%' AND status = 'pending'
          AND attempts < 7 RETURNING 1) SELECT count(*) FROM u`));
      if (moved < BACKLOG) await sleep(250);
    }
    if (moved !== BACKLOG) fail(`only ${moved} of ${BACKLOG} jobs could be set as after a long outage`);
    say(`    as after an outage of hours: attempts = 7, next attempts 30-60 min away (set in ewp.jobs)`);
  }
  await t.receiving.start({ timeout: 30000 });
  let t0 = performance.now();
  if (operator) {
    await sleep(5000);
    const s = stored(t, prefix);
    say(`    the receiving node is back: ${s.m} of ${BACKLOG} stored 5 s later without the operator (the backoff rules)`);
    result('backlog_default_backoff_stored_after_5s', s.m);
    t0 = performance.now();
    const r = t.ctl(t.sending, ['jobs', 'retry', '--partner', RECEIVING_HEI]);
    say(`    ewpctl jobs retry --partner ${RECEIVING_HEI}: exit ${r.status}: ${(r.stdout + r.stderr).trim()} (${f((performance.now() - t0) / 1000, 2)} s)`);
    if (r.status !== 0) fail('ewpctl jobs retry --partner failed');
  }
  const c0 = cpu(t);
  const w = await waitStored(t, prefix, BACKLOG, t0, label);
  const d = cpuDelta(c0, cpu(t));
  say(`    drained ${operator ? 'after the command' : 'after the partner came back'}: all ${BACKLOG} stored after ${f(w.stored, 2)} s, every CNR job a success after ${f(w.drained, 2)} s (${f(BACKLOG / w.drained)} mobilities/s)`);
  say(`    CPU seconds: sending ewpd ${f(d.sendEwpd, 2)}, receiving ewpd ${f(d.recvEwpd, 2)}, sending PostgreSQL ${f(d.sendPg, 2)}, receiving PostgreSQL ${f(d.recvPg, 2)}`);
  return w.drained;
}

// ---- main ---------------------------------------------------------------------
const JOBS_SHORT = { retry_min: '1s', retry_max: '2s' };
let t;
try {
  const t00 = performance.now();
  t = await TwoNodes.create('bench-mob', {
    workers: WORKERS || CORES,
    // no nightly OMobilities re-sync: its index would queue gets of its own
    receiving: { conf: { log: { level: 'warn' }, jobs: jobsConf(JOBS_SHORT), mobility: { sync_hour: '-1' } } },
    sending: { conf: { log: { level: 'warn' }, jobs: jobsConf(JOBS_SHORT), mobility: { sync_hour: '-1' } } },
  });
  say(`  two ewpd nodes (TLS, ${WORKERS || CORES} workers each, [jobs] concurrency ${CONC || 'default'}), each with its own PostgreSQL, ready in ${f((performance.now() - t00) / 1000, 1)} s`);
  if (PROFILE) {
    for (const n of t.nodes) {
      await n.stop();
      n.pg.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
      n.pg.halt();
      n.pg.resume();
      n.pg.psql('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      n.pg.psql("ALTER SYSTEM SET pg_stat_statements.track = 'all'");
      n.pg.psql('SELECT pg_reload_conf()');
      await n.start({ timeout: 30000 });
    }
    for (const n of t.nodes) n.pg.psql('SELECT pg_stat_statements_reset()');
  }
  await throughput(t);
  if (PROFILE) {
    for (const n of t.nodes) {
      say(`  top statements on ${n.name} (total ms, calls, ms/call):`);
      say(n.pg.psql(`SELECT round(total_exec_time)::text || ' | ' || calls || ' | ' || round((total_exec_time / calls)::numeric, 3)
          || ' | ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 150)
        FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25`).split('\n').map((l) => `    ${l}`).join('\n'));
    }
  }
  if (!SKIP_BACKLOG && BACKLOG > 0) {
    say(`  B. backlog: ${BACKLOG} CNRs queued while the receiving node is down, drained when it is back`);
    const b1 = await backlog(t, 'B1. short backoff (retry_min 1s, retry_max 2s): the drain is bound by processing', 'bl1', JOBS_SHORT, false);
    const b2 = await backlog(t, 'B2. default backoff (retry_min 1m, retry_max 1h), then ewpctl jobs retry --partner', 'bl2', { retry_min: '1m', retry_max: '1h' }, true);
    result('backlog_n', BACKLOG);
    result('backlog_short_backoff_drain_s', f(b1, 2));
    result('backlog_retry_partner_drain_s', f(b2, 2));
  }
  const bad = badJobs(t);
  if (bad.length) fail(`jobs ended in failure: ${bad.join(' | ')}`);
} catch (e) {
  fail(e.stack || String(e));
} finally {
  if (failed && t) {
    for (const n of [t.sending, t.receiving]) say(`  --- ${n.name} log (end) ---\n${n.log(0, 3000)}`);
  }
  await t?.cleanup();
}
result('mob_failed', failed);
process.exit(failed ? 1 : 0);
