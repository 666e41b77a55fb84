// 8a. Operations with workers = 2: /healthz, /metrics (Prometheus text,
//     counters shared by the workers), one failure reason per check, and
//     the replay check across workers.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before } from 'node:test';

import { Ewpd, itest } from './lib/daemon.mjs';
import { assertStatus, exchange, fetchMetrics, metricValue } from './lib/ewp.mjs';
import { Connection } from './lib/http.mjs';

let fx;
before(async () => { fx = await Ewpd.create('metrics', { workers: 2 }); });
after(async () => { await fx?.cleanup(); });

const REASONS = ['unsigned', 'bad_params', 'bad_algorithm', 'missing_signed', 'missing_header', 'duplicate_header',
  'bad_host', 'unknown_key', 'server_key', 'bad_date', 'bad_request_id', 'replay', 'bad_signature', 'bad_digest'];

function childPids(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

itest(() => fx, 'ops: GET /healthz → 200 (no signature needed)', async () => {
  const res = await fx.get('/healthz');
  assertStatus(res, 200, { method: 'GET', target: '/healthz' });
});

itest(() => fx, 'ops: workers = 2 runs two worker processes under the master', async () => {
  const kids = childPids(fx.proc.pid);
  assert.ok(kids.length >= 2, `expected at least 2 child processes of ewpd ${fx.proc.pid}, found ${kids.length} (${kids})`);
});

itest(() => fx, 'ops: /metrics is Prometheus text with the request counter and the duration histogram', async () => {
  // make sure at least one echo has been served
  const req = fx.echoRequest(['m']);
  assertStatus(await fx.send(req), 200, req);
  const { res, samples } = await fetchMetrics(fx);
  assert.match(res.header('Content-Type') || '', /^text\/plain/, `Content-Type of /metrics${exchange(null, res)}`);
  assert.ok(/^# TYPE ewpd_requests_total counter$/m.test(res.text), `# TYPE ewpd_requests_total counter expected${exchange(null, res)}`);
  assert.ok(/^# TYPE ewpd_request_duration_seconds histogram$/m.test(res.text), `# TYPE ewpd_request_duration_seconds histogram expected${exchange(null, res)}`);
  assert.ok(metricValue(samples, 'ewpd_requests_total', { api: 'echo', status: '200' }) >= 1,
    `ewpd_requests_total{api="echo",status="200"} should be >= 1${exchange(null, res)}`);
  const buckets = samples.filter((s) => s.name === 'ewpd_request_duration_seconds_bucket');
  assert.ok(buckets.length > 1, `histogram buckets expected${exchange(null, res)}`);
  assert.ok(buckets.every((b) => b.labels.le !== undefined), 'every bucket has an le label');
  assert.ok(buckets.some((b) => b.labels.le === '+Inf'), `an le="+Inf" bucket is required${exchange(null, res)}`);
  // cumulative buckets: non-decreasing with le, per label set
  const groups = new Map();
  for (const b of buckets) {
    const { le, ...rest } = b.labels;
    const k = JSON.stringify(Object.entries(rest).sort());
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push([le === '+Inf' ? Infinity : Number(le), b.value]);
  }
  for (const [k, g] of groups) {
    g.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < g.length; i++) {
      assert.ok(g[i][1] >= g[i - 1][1], `histogram ${k} not cumulative: le=${g[i - 1][0]}→${g[i - 1][1]}, le=${g[i][0]}→${g[i][1]}`);
    }
    const labels = Object.fromEntries(JSON.parse(k));
    if (samples.some((x) => x.name === 'ewpd_request_duration_seconds_count')) {
      const count = metricValue(samples, 'ewpd_request_duration_seconds_count', labels);
      assert.equal(g[g.length - 1][1], count, `+Inf bucket must equal _count for ${k}`);
    }
  }
});

itest(() => fx, 'ops: with 2 workers the echo counter and histogram grow by exactly N, whichever worker answers /metrics', async () => {
  const before0 = (await fetchMetrics(fx)).samples;
  const c0 = metricValue(before0, 'ewpd_requests_total', { api: 'echo', status: '200' });
  const h0 = metricValue(before0, 'ewpd_request_duration_seconds_bucket', { le: '+Inf' });
  const N = 24;
  // fresh connections, so SO_REUSEPORT spreads them over both workers
  const results = await Promise.all(Array.from({ length: N }, async (_, i) => {
    const req = fx.echoRequest([`n${i}`]);
    return { req, res: await fx.send(req) };
  }));
  for (const { req, res } of results) assertStatus(res, 200, req);
  const seen = [];
  for (let i = 0; i < 8; i++) {
    const s = (await fetchMetrics(fx)).samples;
    seen.push([metricValue(s, 'ewpd_requests_total', { api: 'echo', status: '200' }) - c0,
      metricValue(s, 'ewpd_request_duration_seconds_bucket', { le: '+Inf' }) - h0]);
  }
  for (const [dc, dh] of seen) {
    assert.equal(dc, N, `ewpd_requests_total{api="echo",status="200"} grew by ${dc}, expected ${N} on every /metrics read (per read: ${JSON.stringify(seen)}) — counters must be shared across workers`);
    assert.ok(dh >= N, `histogram +Inf grew by ${dh}, expected >= ${N} (per read: ${JSON.stringify(seen)})`);
  }
});

itest(() => fx, 'ops: every signature failure reason has its counter ewpd_signature_failures_total{reason=...}', async () => {
  const s0 = (await fetchMetrics(fx)).samples;
  const base = Object.fromEntries(REASONS.map((r) => [r, metricValue(s0, 'ewpd_signature_failures_total', { reason: r })]));
  const p = fx.port;
  const send = async (reason, req, expect) => {
    const res = await fx.send(req);
    assertStatus(res, expect, req, `request meant to fail with ${reason}`);
  };
  await send('unsigned', { method: 'GET', target: '/ewp/echo', headers: [['Host', fx.hostHeader]] }, 401);
  {
    const r = fx.signed();
    r.headers = r.headers.map(([n, v]) => (n === 'Authorization' ? [n, 'Signature keyId=,,"'] : [n, v]));
    await send('bad_params', r, 400);
  }
  await send('bad_algorithm', fx.signed({ algorithm: 'rsa-sha512', hash: 'sha512' }), 400);
  await send('missing_signed', fx.signed({ signed: ['(request-target)', 'host', 'date', 'digest'] }), 400);
  await send('missing_header', fx.signed({ signed: ['(request-target)', 'host', 'date', 'digest', 'x-request-id', 'x-absent'] }), 400);
  await send('duplicate_header', fx.signed({ requestId: [crypto.randomUUID(), crypto.randomUUID()] }), 400);
  await send('bad_host', fx.signed({ host: `localhost:${p}` }), 400);
  await send('unknown_key', fx.signed({ key: fx.unknownKey }), 403);
  await send('server_key', fx.signed({ key: fx.serverOnlyKey }), 403);
  await send('bad_date', fx.signed({ date: new Date(Date.now() - 6 * 60000) }), 400);
  await send('bad_request_id', fx.signed({ requestId: crypto.randomUUID().toUpperCase() }), 400);
  {
    const id = crypto.randomUUID();
    await send('(first use)', fx.echoRequest(['1'], { requestId: id }), 200);
    await send('replay', fx.echoRequest(['2'], { requestId: id }), 400);
  }
  await send('bad_signature', fx.signed({ corrupt: true }), 400);
  await send('bad_digest', fx.signed({ method: 'POST', body: 'echo=a', bodySent: 'echo=b', contentType: 'application/x-www-form-urlencoded' }), 400);
  const { res, samples } = await fetchMetrics(fx);
  const wrong = [];
  for (const r of REASONS) {
    const d = metricValue(samples, 'ewpd_signature_failures_total', { reason: r }) - base[r];
    if (d !== 1) wrong.push(`${r}: +${d}`);
  }
  const failLines = res.text.split('\n').filter((l) => l.startsWith('ewpd_signature_failures_total')).join('\n');
  assert.deepEqual(wrong, [], `each reason should have grown by exactly 1 after one failing request each:\n${wrong.join('\n')}\n--- counters now ---\n${failLines}`);
});

itest(() => fx, 'ops: replay across 2 workers — of two simultaneous requests with one X-Request-Id exactly one is accepted', async () => {
  const PAIRS = 30;
  const outcomes = [];
  for (let i = 0; i < PAIRS; i++) {
    const id = crypto.randomUUID();
    const a = fx.echoRequest([`a${i}`], { requestId: id });
    const b = fx.echoRequest([`b${i}`], { requestId: id });
    const [ca, cb] = await Promise.all([Connection.open(fx.endpoint), Connection.open(fx.endpoint)]);
    try {
      const [ra, rb] = await Promise.all([ca.request(a), cb.request(b)]);
      outcomes.push([ra.status, rb.status, ra, rb, a, b]);
    } finally {
      ca.close();
      cb.close();
    }
  }
  const bad = outcomes.filter(([x, y]) => !((x === 200 && y === 400) || (x === 400 && y === 200)));
  assert.equal(bad.length, 0, `${bad.length}/${PAIRS} pairs were not exactly one 200 + one 400: ` +
    `${bad.slice(0, 5).map(([x, y]) => `${x}/${y}`).join(', ')}` +
    (bad.length ? `\nfirst bad pair:${exchange(bad[0][4], bad[0][2])}${exchange(bad[0][5], bad[0][3])}` : ''));
});
