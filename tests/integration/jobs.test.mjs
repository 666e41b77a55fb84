// The persistent job engine (gateway/jobs.c) and its first kind, sending
// a CNR (gateway/jobs_cnr.c), against a partner double (another vendor's
// node, lib/partner-double.mjs) that serves an OMobility CNR v2 endpoint
// for one HEI and no CNR API for another. Jobs are inserted into
// ewp.jobs with psql (nothing enqueues them yet), the way later code
// will (same columns), and the test watches what the double receives and
// what the rows become: delivery, backoff, rejection, no CNR API, expiry,
// merging, two nodes on one database, a worker killed with kill -9 in the
// middle of a request, and `ewpctl jobs list|show|retry`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { buildCatalogue } from './lib/catalogue.mjs';
import { Ewpd, HEI_ID, describeRun, itest, runEwpctl } from './lib/daemon.mjs';
import { PartnerDouble } from './lib/partner-double.mjs';
import { pollUntil } from './lib/poll.mjs';
import { xmlEscape } from './lib/xml.mjs';

const P_CNR = 'cnr.partner.example.org'; // publishes OMobility CNR v2
const P_NONE = 'nocnr.partner.example.org'; // another host of the double: Echo only
const CNR_NS = 'https://github.com/erasmus-without-paper/ewp-specs-api-omobility-cnr/blob/stable-v2/manifest-entry.xsd';
const NS_EWP = 'https://github.com/erasmus-without-paper/ewp-specs-architecture/blob/stable-v1/common-types.xsd';
const JOBS_CONF = { retry_min: '1s', retry_max: '2s', lease: '8s', timeout: '3s', concurrency: '8' };

let fx; // node 1: real ewpd, 2 workers, its own PostgreSQL
let fx2; // node 2: another ewpd on the same database (started for one test)
let double;
const behaviour = new Map(); // omobility_id -> (req) => void

const errorXml = (msg) => `<?xml version="1.0" encoding="UTF-8"?>\n<error-response xmlns="${NS_EWP}">\n` +
  `  <developer-message>${xmlEscape(msg)}</developer-message>\n</error-response>\n`;
const okXml = '<?xml version="1.0" encoding="UTF-8"?>\n<omobility-cnr-response xmlns="https://github.com/erasmus-without-paper/ewp-specs-api-omobility-cnr/tree/stable-v2"/>\n';

// The double's CNR entry for P_CNR's host, after its Echo entry.
function withCnr(xml, echoUrl, base) {
  const anchor = `<e2:url>${xmlEscape(echoUrl)}</e2:url>\n      </e2:echo>\n`;
  if (!xml.includes(anchor)) throw new Error('no echo entry for the double');
  return xml.replace(anchor, `${anchor}      <c2:omobility-cnr xmlns:c2="${CNR_NS}" version="2.0.0">
        <c2:http-security>
          <sec:client-auth-methods><sec-A2:httpsig/></sec:client-auth-methods>
          <sec:server-auth-methods><sec-B2:httpsig/></sec:server-auth-methods>
        </c2:http-security>
        <c2:url>${xmlEscape(base)}/ewp/cnr/omobility</c2:url>
        <c2:max-omobility-ids>10</c2:max-omobility-ids>
      </c2:omobility-cnr>\n`);
}

function catalogueFor(node) {
  const echo = `${double.baseUrl}/ewp/echo`;
  const spec = node.catalogueSpec();
  return withCnr(buildCatalogue(spec), echo, double.baseUrl);
}

// Two hosts served by the double: P_CNR's lists the CNR API, P_NONE's lists only Echo.
function addDoubleHosts(node) {
  node.extraHosts.push(
    { adminEmail: 'admin@cnr.partner.example.org', heis: [P_CNR], serverKeys: [double.serverKey], echoUrl: `${double.baseUrl}/ewp/echo` },
    { adminEmail: 'admin@nocnr.partner.example.org', heis: [P_NONE], serverKeys: [double.serverKey], echoUrl: `${double.baseUrl}/ewp/echo2` });
  node.extraInstitutions.push({ id: P_CNR, names: [['en', 'CNR Partner']] }, { id: P_NONE, names: [['en', 'No-CNR Partner']] });
}

before(async () => {
  fx = await Ewpd.create('jobs', { pg: true, workers: 2, start: false, conf: { jobs: JOBS_CONF } });
  double = await PartnerDouble.start({ dir: path.join(fx.dir, 'double'), clientKey: fx.clientKey });
  double.handle((req) => {
    const f = behaviour.get(req.form.get('omobility_id'));
    if (f) f(req);
    else double.reply(req, { body: okXml });
  });
  addDoubleHosts(fx);
  fs.writeFileSync(fx.cataloguePath, catalogueFor(fx));
  fx.writeConfig({ jobs: { ...JOBS_CONF, ca_file: double.tlsFiles.cert } });
  await fx.start();
});

after(async () => {
  await fx2?.cleanup();
  await double?.close();
  await fx?.cleanup();
});

const sql = (q) => fx.pg.psql(q);

// Inserts a CNR job for `hei` about omobility `id`; returns its id.
function insertJob(id, { hei = P_CNR, extra = '', extraVals = '' } = {}) {
  const payload = JSON.stringify({ sending_hei_id: HEI_ID, omobility_id: id });
  return sql(`INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload${extra})
    VALUES ('out', 'cnr', '${hei}', 'omobility-cnr', '${id}', '${payload}'${extraVals}) RETURNING id`);
}

function job(id) {
  const row = sql(`SELECT row_to_json(j) FROM ewp.jobs j WHERE id = ${id}`);
  return JSON.parse(row);
}

const postsFor = (id) => double.requests.filter((r) => r.method === 'POST' && r.form.get('omobility_id') === id);

async function waitStatus(id, statuses, ms = 15000) {
  const want = [].concat(statuses);
  return pollUntil(() => {
    const j = job(id);
    return { ok: want.includes(j.status), detail: JSON.stringify(j), job: j };
  }, ms, `job ${id} ${want.join('|')}`, 100);
}

itest(() => fx, 'a CNR job is delivered: signed POST of the form, job success, message-log row with its id', async () => {
  const id = insertJob('m-ok');
  const { job: j } = await waitStatus(id, 'success');
  const posts = postsFor('m-ok');
  assert.equal(posts.length, 1, 'one POST');
  const p = posts[0];
  assert.equal(p.path, '/ewp/cnr/omobility');
  assert.equal(p.form.get('sending_hei_id'), HEI_ID);
  assert.deepEqual(p.form.getAll('omobility_id'), ['m-ok']);
  assert.equal(p.signatureOk, true, 'signed with the node\'s client key, Digest right');
  assert.equal(j.attempts, 1);
  assert.equal(j.last_http_status, 200);
  assert.equal(j.last_error, null);
  assert.equal(j.lease_until, null);
  assert.ok(j.finished_at);
  // no expires_at given: the claim set created_at + give_up_after (24 h)
  const hours = Number(sql(`SELECT extract(epoch FROM expires_at - created_at) / 3600 FROM ewp.jobs WHERE id = ${id}`));
  assert.equal(hours, 24);
  const log = await pollUntil(() => {
    const r = sql(`SELECT json_agg(json_build_object('direction', direction, 'method', method, 'status', status,
      'api', api, 'url', url, 'partner', partner_hei_ids, 'request_id', request_id,
      'body', convert_from(request_body, 'UTF8'))) FROM ewp.message_log WHERE job_id = ${id}`);
    const rows = r ? JSON.parse(r) : [];
    return { ok: rows.length === 1, rows, detail: r };
  }, 5000, 'message-log row of the attempt');
  const [row] = log.rows;
  assert.equal(row.direction, 'out');
  assert.equal(row.method, 'POST');
  assert.equal(row.status, 200);
  assert.equal(row.api, 'omobility-cnr');
  assert.equal(row.url, `${double.baseUrl}/ewp/cnr/omobility`);
  assert.deepEqual(row.partner, [P_CNR]);
  assert.equal(row.request_id, p.requestId);
  assert.equal(new URLSearchParams(row.body).get('omobility_id'), 'm-ok');
});

itest(() => fx, 'form values are URL-encoded and arrays repeat the parameter', async () => {
  const payload = JSON.stringify({ sending_hei_id: HEI_ID, omobility_id: ['m-arr-1', 'm arr/2&x=é'] });
  const id = sql(`INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload)
    VALUES ('out', 'cnr', '${P_CNR}', 'omobility-cnr', 'm-arr', '${payload}') RETURNING id`);
  await waitStatus(id, 'success');
  const p = double.requests.find((r) => r.form.get('omobility_id') === 'm-arr-1');
  assert.ok(p, 'the double saw the request');
  assert.deepEqual(p.form.getAll('omobility_id'), ['m-arr-1', 'm arr/2&x=é']);
  assert.equal(p.form.get('sending_hei_id'), HEI_ID);
});

itest(() => fx, 'partner 500 then OK: retried after a backoff, attempts counted, each attempt logged', async () => {
  let n = 0;
  behaviour.set('m-500', (req) => {
    n++;
    if (n === 1) double.reply(req, { status: 500, body: errorXml('database on fire') });
    else double.reply(req, { body: okXml });
  });
  const id = insertJob('m-500');
  const { job: j } = await waitStatus(id, 'success');
  const posts = postsFor('m-500');
  assert.equal(posts.length, 2);
  assert.equal(j.attempts, 2);
  assert.equal(j.last_http_status, 200);
  const times = sql(`SELECT json_agg(json_build_object('s', status, 't', extract(epoch FROM created_at), 'e', error) ORDER BY id)
    FROM ewp.message_log WHERE job_id = ${id}`);
  const rows = await pollUntil(() => {
    const r = JSON.parse(sql(`SELECT coalesce(json_agg(json_build_object('s', status, 't', extract(epoch FROM created_at), 'e', error) ORDER BY id), '[]')
      FROM ewp.message_log WHERE job_id = ${id}`));
    return { ok: r.length === 2, r, detail: JSON.stringify(r) };
  }, 5000, 'two logged attempts');
  assert.ok(times);
  assert.equal(rows.r[0].s, 500);
  assert.match(rows.r[0].e, /HTTP 500: database on fire/);
  assert.equal(rows.r[1].s, 200);
  // retry_min = 1s, drawn in 50-100 %: at least half a second between them
  assert.ok(rows.r[1].t - rows.r[0].t >= 0.45, `gap ${rows.r[1].t - rows.r[0].t}s`);
});

itest(() => fx, 'partner 400: rejected with its developer-message, never retried', async () => {
  behaviour.set('m-400', (req) => double.reply(req, { status: 400, body: errorXml('unknown omobility_id m-400') }));
  const id = insertJob('m-400');
  const { job: j } = await waitStatus(id, 'rejected');
  assert.equal(j.last_http_status, 400);
  assert.match(j.last_error, /HTTP 400: unknown omobility_id m-400/);
  assert.equal(j.attempts, 1);
  assert.ok(j.finished_at);
  await sleep(2500); // twice retry_max: a retry would have come
  assert.equal(postsFor('m-400').length, 1);
  assert.equal(job(id).status, 'rejected');
});

itest(() => fx, 'partner 400 "X-Request-Id was already used": retried with a new request id, then delivered', async () => {
  // what a partner answers when our HTTP client resent a request after its
  // first connection died: the request id was recorded, the answer lost
  let n = 0;
  behaviour.set('m-replay', (req) => {
    n++;
    if (n === 1) double.reply(req, { status: 400, body: errorXml(`X-Request-Id ${req.requestId} was already used`) });
    else double.reply(req, { body: okXml });
  });
  const id = insertJob('m-replay');
  const { job: j } = await waitStatus(id, 'success');
  assert.equal(j.attempts, 2);
  const posts = postsFor('m-replay');
  assert.equal(posts.length, 2);
  assert.notEqual(posts[0].requestId, posts[1].requestId, 'the second attempt carries a new X-Request-Id');
});

itest(() => fx, 'partner without a CNR API in the catalogue: no-cnr-api, nothing sent', async () => {
  const before = double.requests.length;
  const id = insertJob('m-none', { hei: P_NONE });
  const { job: j } = await waitStatus(id, 'no-cnr-api');
  assert.match(j.last_error, /nocnr\.partner\.example\.org implements omobility-cnr/);
  assert.ok(j.finished_at);
  assert.equal(postsFor('m-none').length, 0);
  assert.ok(double.requests.slice(before).every((r) => r.form.get('omobility_id') !== 'm-none'));
  // and a HEI the catalogue does not know at all
  const id2 = insertJob('m-unknown', { hei: 'nowhere.example.org' });
  const { job: j2 } = await waitStatus(id2, 'no-cnr-api');
  assert.match(j2.last_error, /not in the catalogue/);
});

itest(() => fx, 'partner down until past expires_at: retried with backoff, then expired (final)', async () => {
  behaviour.set('m-down', (req) => double.reply(req, { status: 503, body: errorXml('maintenance') }));
  const id = insertJob('m-down', { extra: ', expires_at', extraVals: ", now() + interval '4 seconds'" });
  const { job: j } = await waitStatus(id, 'expired', 15000);
  const n = postsFor('m-down').length;
  assert.ok(n >= 2, `${n} attempts before giving up`);
  assert.equal(j.attempts, n);
  assert.equal(j.last_http_status, 503);
  assert.match(j.last_error, /maintenance/);
  assert.ok(j.finished_at);
  await sleep(2500);
  assert.equal(postsFor('m-down').length, n, 'nothing sent after expiry');
  // a job already past its expiry when claimed is given up without an attempt
  const late = insertJob('m-late', { extra: ', created_at, expires_at',
    extraVals: ", now() - interval '2 hours', now() - interval '1 hour'" });
  const { job: jl } = await waitStatus(late, 'expired');
  assert.equal(jl.attempts, 0);
  assert.equal(postsFor('m-late').length, 0);
});

itest(() => fx, 'a running job that must be retried while a newer duplicate is pending is merged into it', async () => {
  let first;
  behaviour.set('m-dup', (req) => {
    if (!first) {
      first = req;
      setTimeout(() => double.reply(req, { status: 502, body: errorXml('bad gateway') }), 1500);
    } else double.reply(req, { body: okXml });
  });
  const a = insertJob('m-dup');
  await pollUntil(() => ({ ok: !!first, detail: 'no request yet' }), 5000, 'first attempt at the double');
  // a change while the first CNR is on the wire: a job of its own (running
  // rows are outside the unique index), not due before A's retry
  const b = insertJob('m-dup', { extra: ', next_attempt_at', extraVals: ", now() + interval '3 seconds'" });
  // the unique index refuses a second pending duplicate
  assert.throws(() => insertJob('m-dup'), /jobs_pending_unique/);
  const { job: ja } = await waitStatus(a, 'merged');
  assert.equal(Number(ja.merged_into), Number(b));
  assert.equal(ja.last_http_status, 502);
  const { job: jb } = await waitStatus(b, 'success');
  assert.equal(jb.attempts, 1);
  assert.equal(postsFor('m-dup').length, 2, 'A once (502), B once');
});

itest(() => fx, 'ewpctl jobs list, show and retry', async () => {
  const rej = sql(`SELECT id FROM ewp.jobs WHERE dedupe_key = 'm-400'`);
  const ok = sql(`SELECT id FROM ewp.jobs WHERE dedupe_key = 'm-ok'`);
  const ctl = (...a) => runEwpctl(['-c', fx.confPath, 'jobs', ...a]);
  let r = ctl('list', '--status', 'rejected');
  assert.equal(r.status, 0, describeRun(r));
  const ids = r.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0]);
  assert.deepEqual(ids, [rej]);
  assert.match(r.stdout, /unknown omobility_id m-400/);
  r = ctl('list', '--partner', P_NONE);
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(r.stdout.trim().split('\n').length, 2);
  assert.match(r.stdout, /no-cnr-api/);
  r = ctl('list', '--kind', 'cnr', '--limit', '2');
  assert.equal(r.stdout.trim().split('\n').length, 3);
  r = ctl('list', '--status', 'bogus');
  assert.equal(r.status, 2);

  r = ctl('show', ok);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /^status\s+success$/m);
  assert.match(r.stdout, /^attempts\s+1$/m);
  assert.match(r.stdout, new RegExp(`^partner\\s+${P_CNR.replace(/\./g, '\\.')}$`, 'm'));
  const logId = sql(`SELECT id FROM ewp.message_log WHERE job_id = ${ok}`);
  assert.match(r.stdout, new RegExp(`^  ${logId}\\s.*POST\\s+200\\s.*/ewp/cnr/omobility`, 'm'));
  r = ctl('show', '999999');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no job 999999/);

  r = ctl('retry', ok);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /is success: only a job that ended in failure/);
  assert.equal(job(ok).status, 'success');

  behaviour.set('m-400', (req) => double.reply(req, { body: okXml }));
  r = ctl('retry', rej);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /pending again/);
  const { job: j } = await waitStatus(rej, 'success');
  assert.equal(j.attempts, 2);
  assert.equal(postsFor('m-400').length, 2);
  assert.equal(sql(`SELECT count(*) FROM ewp.audit_log WHERE action = 'job.force-retry' AND object_id = '${rej}'`), '1');
});

itest(() => fx, 'ewpctl jobs retry --partner: the partner is back, its pending jobs are due now (audit-logged); other partners wait', async () => {
  // backed off as after an outage: due in an hour, three attempts made
  const later = { extra: ', next_attempt_at, attempts', extraVals: ", now() + interval '1 hour', 3" };
  const a = insertJob('m-back-1', later);
  const b = insertJob('m-back-2', later);
  const other = insertJob('m-back-other', { ...later, hei: P_NONE });
  const ctl = (...x) => runEwpctl(['-c', fx.confPath, 'jobs', 'retry', ...x]);
  await sleep(1500); // nothing due: nothing sent
  assert.equal(postsFor('m-back-1').length, 0);
  assert.equal(job(a).status, 'pending');

  let r = ctl('--partner', P_CNR);
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(r.stdout.trim(), `2 pending jobs of ${P_CNR} due now`);
  for (const id of [a, b]) {
    const { job: j } = await waitStatus(id, 'success');
    assert.equal(j.attempts, 4, 'the attempts made before are kept');
  }
  assert.equal(postsFor('m-back-1').length, 1);
  assert.equal(postsFor('m-back-2').length, 1);
  const o = job(other);
  assert.equal(o.status, 'pending', 'another partner\'s job is left alone');
  assert.ok(new Date(o.next_attempt_at) - Date.now() > 50 * 60 * 1000, `still due in an hour: ${o.next_attempt_at}`);
  const audit = JSON.parse(sql(`SELECT json_agg(json_build_object('actor', actor, 'type', object_type, 'id', object_id, 'jobs', details->'jobs'))
    FROM ewp.audit_log WHERE action = 'jobs.retry-partner'`));
  assert.deepEqual(audit, [{ actor: 'ewpctl', type: 'partner', id: P_CNR, jobs: 2 }]);

  r = ctl('--partner', P_CNR); // nothing pending any more
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(r.stdout.trim(), `0 pending jobs of ${P_CNR} due now`);
  r = ctl('--partner');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: ewpctl jobs/);
  r = ctl('--partner', P_CNR, 'extra');
  assert.equal(r.status, 2);
  sql(`UPDATE ewp.jobs SET status = 'cancelled', finished_at = now() WHERE id = ${other}`);
});

itest(() => fx, 'a worker killed with kill -9 mid-request: after the lease another worker delivers the job', async () => {
  let hung;
  behaviour.set('m-kill', (req) => {
    if (!hung) hung = req; // never answered
    else double.reply(req, { body: okXml });
  });
  const id = insertJob('m-kill');
  await pollUntil(() => ({ ok: !!hung, detail: 'no request yet' }), 5000, 'first attempt at the double');
  const j = job(id);
  assert.equal(j.status, 'running');
  const pid = Number(j.leased_by.split(':').pop());
  assert.ok(pid > 0 && pid !== fx.proc.pid, `leased_by ${j.leased_by} names a worker`);
  process.kill(pid, 'SIGKILL');
  const t0 = Date.now();
  const { job: done } = await waitStatus(id, 'success', 20000);
  assert.ok(Date.now() - t0 >= 1000, 'taken back only once the lease ran out');
  assert.equal(done.attempts, 2);
  assert.equal(postsFor('m-kill').length, 2);
  const logged = await pollUntil(() => {
    const n = Number(sql(`SELECT count(*) FROM ewp.message_log WHERE job_id = ${id} AND status = 200`));
    return { ok: n === 1, detail: `${n} rows` };
  }, 5000, 'the delivering attempt logged');
  assert.ok(logged);
  hung.res.destroy();
  assert.ok(fx.alive, 'the supervisor is still running');
});

itest(() => fx, 'PostgreSQL stopped and restarted while jobs are on the wire: nothing lost', async () => {
  const N = 10;
  const ids = Array.from({ length: N }, (_, i) => `m-pg-${i}`);
  for (const m of ids) behaviour.set(m, (req) => setTimeout(() => double.reply(req, { body: okXml }), 800));
  sql(`INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload)
    SELECT 'out', 'cnr', '${P_CNR}', 'omobility-cnr', 'm-pg-' || i,
      jsonb_build_object('sending_hei_id', '${HEI_ID}', 'omobility_id', 'm-pg-' || i)
    FROM generate_series(0, ${N - 1}) i`);
  await pollUntil(() => {
    const n = ids.filter((m) => postsFor(m).length > 0).length;
    return { ok: n === N, detail: `${n} of ${N} on the wire` };
  }, 10000, 'every CNR on the wire');
  // the answers come while the database is down: outcomes cannot be written
  await fx.pg.haltAsync('fast');
  await sleep(1500);
  await fx.pg.resumeAsync();
  await pollUntil(() => {
    const n = Number(sql(`SELECT count(*) FROM ewp.jobs WHERE dedupe_key LIKE 'm-pg-%' AND status = 'success'`));
    return { ok: n === N, detail: `${n} of ${N} delivered` };
  }, 30000, 'every job delivered after the restart', 200);
  for (const m of ids) {
    const j = JSON.parse(sql(`SELECT row_to_json(j) FROM ewp.jobs j WHERE dedupe_key = '${m}'`));
    // the outcomes were kept while the database was away and written once
    // it came back, within the lease: no CNR sent twice
    assert.equal(j.attempts, 1, `${m}: ${JSON.stringify(j)}`);
    assert.equal(postsFor(m).length, 1, `${m}: one POST`);
  }
});

itest(() => fx, 'two ewpd nodes (2 workers each) on one database never send a job twice', async () => {
  fx2 = await Ewpd.create('jobs-2', { workers: 2, start: false });
  fx2.writeConfig({
    keys: { keys_dir: fx.keysDir },
    database: { conninfo: fx.pg.conninfo },
    jobs: { ...JOBS_CONF, ca_file: double.tlsFiles.cert },
  });
  fs.writeFileSync(fx2.cataloguePath, fs.readFileSync(fx.cataloguePath));
  await fx2.start();
  const N = 120;
  const before = double.requests.length;
  sql(`INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload)
    SELECT 'out', 'cnr', '${P_CNR}', 'omobility-cnr', 'm-many-' || i,
      jsonb_build_object('sending_hei_id', '${HEI_ID}', 'omobility_id', 'm-many-' || i)
    FROM generate_series(1, ${N}) i`);
  await pollUntil(() => {
    const n = Number(sql(`SELECT count(*) FROM ewp.jobs WHERE dedupe_key LIKE 'm-many-%' AND status = 'success'`));
    return { ok: n === N, detail: `${n} of ${N} delivered` };
  }, 30000, 'every job delivered', 200);
  const seen = new Map();
  for (const r of double.requests.slice(before)) {
    const m = r.form.get('omobility_id');
    if (m?.startsWith('m-many-')) seen.set(m, (seen.get(m) || 0) + 1);
  }
  assert.equal(seen.size, N);
  const twice = [...seen].filter(([, c]) => c !== 1);
  assert.deepEqual(twice, [], 'each CNR sent exactly once');
  assert.equal(sql(`SELECT max(attempts) FROM ewp.jobs WHERE dedupe_key LIKE 'm-many-%'`), '1');
  // both nodes took part (each logs its deliveries)
  const delivered = (node) => (fs.readFileSync(node.logPath, "utf8").match(/delivered/g) || []).length;
  assert.ok(delivered(fx2) > 0, 'node 2 delivered some');
});

itest(() => fx, 'graceful stop: jobs in flight finish before the worker exits', async () => {
  behaviour.set('m-slow', (req) => setTimeout(() => double.reply(req, { body: okXml }), 1000));
  const id = insertJob('m-slow');
  await pollUntil(() => ({ ok: postsFor('m-slow').length === 1, detail: 'not yet' }), 5000, 'the slow request');
  await fx2.stop();
  const r = await fx.stop();
  assert.equal(r.code, 0, 'clean exit');
  const j = job(id);
  assert.equal(j.status, 'success', JSON.stringify(j));
});

itest(() => fx, 'the logs of both nodes hold no sanitizer report and no unexpected warning', async () => {
  for (const node of [fx, fx2]) {
    const log = fs.readFileSync(node.logPath, 'utf8');
    assert.doesNotMatch(log, /Sanitizer|runtime error:/, `${node.logPath}`);
    // the only expected trouble: the worker killed on purpose above, and
    // the database stopped on purpose
    const warnings = log.split('\n').filter((l) => /\b(warn|error)\b/i.test(l) &&
      !/worker \d+ .*(killed|signal 9)|exited on signal 9|restart/i.test(l) &&
      !/\bdb: |message log/.test(l));
    assert.deepEqual(warnings, [], `unexpected warnings in ${node.logPath}`);
  }
});
