// The staff portal's EWP message log (/portal/log, /portal/log/<id>) and
// failed jobs (/portal/jobs, POST /portal/jobs/<id>/retry), against a real
// ewpd and PostgreSQL. The rows come from real exchanges: signed requests
// from the partner's key to our node, a partner's CNR that makes our node
// fetch the object from a partner double (another vendor's node playing
// OMobilities v3 and OMobility CNR v2), and outbound CNR jobs the double
// answers with 200, 400, 500 or 503.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';

import { buildCatalogue } from './lib/catalogue.mjs';
import { Ewpd, HEI_ID, PARTNER_HEI, itest } from './lib/daemon.mjs';
import { REPO_ROOT } from './lib/env.mjs';
import { PartnerDouble } from './lib/partner-double.mjs';
import { pollUntil } from './lib/poll.mjs';
import { PortalClient, ROLES, createUser, location } from './lib/portal.mjs';
import { makeKey } from './lib/sign.mjs';
import { xmlEscape } from './lib/xml.mjs';

const PASSWORD = 'correct horse battery staple';
const GH = 'https://github.com/erasmus-without-paper';
const NS_EWP = `${GH}/ewp-specs-architecture/blob/stable-v1/common-types.xsd`;
const NS_GET = `${GH}/ewp-specs-api-omobilities/blob/stable-v3/endpoints/get-response.xsd`;
const NS_OMOB_ENTRY = `${GH}/ewp-specs-api-omobilities/blob/stable-v3/manifest-entry.xsd`;
const NS_CNR_ENTRY = `${GH}/ewp-specs-api-omobility-cnr/blob/stable-v2/manifest-entry.xsd`;
const P = 'logp.partner.example.org'; // the double: OMobilities v3 + OMobility CNR v2
const P_NONE = 'logp-none.partner.example.org'; // the double too, Echo only
// long backoff: a job that failed once stays "retrying" for the whole file
const JOBS_CONF = { retry_min: '60s', retry_max: '120s', lease: '8s', timeout: '3s', concurrency: '8' };
const HOSTILE = '<script>alert("x")</script>';

let fx;
let double;
const pKey = makeKey(); // P's client key: signs its CNRs to us
const cnrBehaviour = new Map(); // omobility_id -> (req) => void

const errorXml = (msg) => `<?xml version="1.0" encoding="UTF-8"?>\n<error-response xmlns="${NS_EWP}">\n` +
  `  <developer-message>${xmlEscape(msg)}</developer-message>\n</error-response>\n`;
const okCnrXml = '<?xml version="1.0" encoding="UTF-8"?>\n<omobility-cnr-response xmlns="https://github.com/erasmus-without-paper/ewp-specs-api-omobility-cnr/tree/stable-v2"/>\n';
const emptyGet = `<?xml version="1.0" encoding="UTF-8"?>\n<omobilities-get-response xmlns="${NS_GET}"/>\n`;
// One nomination, as OMobilities v3 get returns it (the fields omobilities-fetch.test.mjs checks in depth).
const nominationGet = (id, { isced = true } = {}) => `<?xml version="1.0" encoding="UTF-8"?>
<omobilities-get-response xmlns="${NS_GET}">
  <student-mobility>
    <omobility-id>${xmlEscape(id)}</omobility-id>
    <student>
      <given-names>Léa</given-names>
      <family-name>Martin</family-name>
      <global-id>urn:schac:personalUniqueCode:int:esi:${P}:${xmlEscape(id)}</global-id>
      <birth-date>2003-05-06</birth-date>
      <nationality>PL</nationality>
      <gender>2</gender>
      <email>lea.martin@student.example.org</email>
    </student>
    <nomination proposal-id="proposal-1">
      <sending-hei><hei-id>${P}</hei-id></sending-hei>
      <receiving-hei><hei-id>${HEI_ID}</hei-id></receiving-hei>
      <sending-academic-term-ewp-id>2026/2027-1/2</sending-academic-term-ewp-id>
      <receiving-academic-year-id>2026/2027</receiving-academic-year-id>
      <activity-type>student-studies</activity-type>
      <activity-attributes>long-term</activity-attributes>
      <agreement-isced-f-code>0613</agreement-isced-f-code>
      <eqf-level-studied-at-departure>7</eqf-level-studied-at-departure>
      ${isced ? '<nominee-isced-f-code>0611</nominee-isced-f-code>' : ''}
    </nomination>
    <status>pending</status>
  </student-mobility>
</omobilities-get-response>
`;
const sql = (q) => fx.pg.psql(q);
const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;

// The double's APIs for P's host, after its Echo entry.
function withApis(xml, echoUrl, base) {
  const anchor = `<e2:url>${xmlEscape(echoUrl)}</e2:url>\n      </e2:echo>\n`;
  if (!xml.includes(anchor)) throw new Error('no echo entry for the double');
  return xml.replace(anchor, `${anchor}      <o3:omobilities xmlns:o3="${NS_OMOB_ENTRY}" version="3.0.0">
        <o3:http-security>
          <sec:client-auth-methods><sec-A2:httpsig/></sec:client-auth-methods>
          <sec:server-auth-methods><sec-B2:httpsig/></sec:server-auth-methods>
        </o3:http-security>
        <o3:get-url>${xmlEscape(base)}/ewp/omobilities/get</o3:get-url>
        <o3:index-url>${xmlEscape(base)}/ewp/omobilities/index</o3:index-url>
        <o3:max-omobility-ids>10</o3:max-omobility-ids>
      </o3:omobilities>
      <c2:omobility-cnr xmlns:c2="${NS_CNR_ENTRY}" version="2.0.0">
        <c2:http-security>
          <sec:client-auth-methods><sec-A2:httpsig/></sec:client-auth-methods>
          <sec:server-auth-methods><sec-B2:httpsig/></sec:server-auth-methods>
        </c2:http-security>
        <c2:url>${xmlEscape(base)}/ewp/cnr/omobility</c2:url>
        <c2:max-omobility-ids>10</c2:max-omobility-ids>
      </c2:omobility-cnr>\n`);
}

function onRequest(req) {
  if (req.path.endsWith('/ewp/omobilities/get')) {
    const id = req.form.get('omobility_id');
    if (id === 'lp-chain-1') return double.reply(req, { body: nominationGet(id) });
    // without nominee-isced-f-code: refused by our intake schema
    if (id === 'lp-invalid') return double.reply(req, { body: nominationGet(id, { isced: false }) });
    return double.reply(req, { body: emptyGet });
  }
  if (req.path.endsWith('/ewp/cnr/omobility')) {
    const f = cnrBehaviour.get(req.form.get('omobility_id'));
    return f ? f(req) : double.reply(req, { body: okCnrXml });
  }
  return double.reply(req, { status: 404, body: errorXml(`no such endpoint ${req.path}`) });
}

before(async () => {
  fx = await Ewpd.create('portal-log', { pg: true, start: false,
    conf: { jobs: JOBS_CONF, log: { message_body_max: '2000' } } });
  double = await PartnerDouble.start({ dir: path.join(fx.dir, 'double'), clientKey: fx.clientKey });
  double.handle(onRequest);
  fx.extraHosts.push(
    { adminEmail: `admin@${P}`, heis: [P], clientKeys: [pKey], serverKeys: [double.serverKey], echoUrl: `${double.baseUrl}/ewp/echo` },
    { adminEmail: `admin@${P_NONE}`, heis: [P_NONE], serverKeys: [double.serverKey], echoUrl: `${double.baseUrl}/ewp/echo2` });
  fx.extraInstitutions.push({ id: P, names: [['en', 'Log Partner University']] }, { id: P_NONE, names: [['en', 'No API University']] });
  fs.writeFileSync(fx.cataloguePath, withApis(buildCatalogue(fx.catalogueSpec()), `${double.baseUrl}/ewp/echo`, double.baseUrl));
  fx.writeConfig({ jobs: { ...JOBS_CONF, ca_file: double.tlsFiles.cert }, mobility: { sync_hour: '-1' } });
  sql(`INSERT INTO smile.etablissement (schac_id, names, is_local) VALUES ('${HEI_ID}', '[{"lang": "fr", "name": "Université de Test SMILE"}]', true)`);
  await fx.start();
  createUser(fx.pg, { username: 'gest', name: 'Gaëlle Gestion', password: PASSWORD, roles: [ROLES.gestionnaire] });
  sql(`INSERT INTO smile.composante (etablissement_id, ounit_id, code, names)
    SELECT id, 'ou-lp-lettres', 'LPL', '[{"lang": "fr", "name": "Lettres"}]' FROM smile.etablissement WHERE is_local`);
  createUser(fx.pg, { username: 'gestlim', name: 'Lina Limitée', password: PASSWORD, roles: [ROLES.gestionnaire], composantes: ['LPL'] });
  createUser(fx.pg, { username: 'admin', name: 'Ada Admin', password: PASSWORD, roles: [ROLES.technique] });
  createUser(fx.pg, { username: 'ref', name: 'Rémi Référent', password: PASSWORD, roles: [ROLES.referent] });
  createUser(fx.pg, { username: 'std', name: 'Sam Standard', password: PASSWORD, roles: [ROLES.standard] });
});

after(async () => {
  await double?.close();
  await fx?.cleanup();
});

async function signedIn(user) {
  const pc = PortalClient.of(fx);
  const r = await pc.login(user, PASSWORD);
  assert.equal(r.status, 303, r.describe());
  return pc;
}

// The message-log row of a request id, once the batch writer stored it.
async function logId(requestId) {
  const r = await pollUntil(() => {
    const id = sql(`SELECT id FROM ewp.message_log WHERE request_id = ${lit(requestId)}`);
    return { ok: Boolean(id), id, detail: 'no row yet' };
  }, 5000, `message-log row of ${requestId}`);
  return Number(r.id);
}

async function exchange(o, want) {
  const req = fx.signed(o);
  const res = await fx.send(req);
  if (want) assert.equal(res.status, want, `${o.path}: ${res.status} ${res.body}`);
  return { req, res, id: await logId(req.requestId) };
}

// RFC 4180 records of a CSV download (after its byte-order mark); each line must end with CRLF.
function parseCsv(text) {
  assert.ok(text.startsWith('\ufeff'), 'UTF-8 byte-order mark');
  assert.ok(text.endsWith('\r\n'), 'the last record ends with CRLF');
  const recs = [];
  let rec = [];
  let cell = '';
  let i = 1;
  let quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i++; continue; }
      cell += c; i++; continue;
    }
    if (c === '"' && cell === '') { quoted = true; i++; continue; }
    if (c === ',') { rec.push(cell); cell = ''; i++; continue; }
    if (c === '\r' && text[i + 1] === '\n') { rec.push(cell); recs.push(rec); rec = []; cell = ''; i += 2; continue; }
    assert.ok(c !== '"' && c !== '\n' && c !== '\r', `bare ${JSON.stringify(c)} at ${i}`);
    cell += c; i++;
  }
  return recs;
}

const rowsOf = (html) => [...html.matchAll(/<tr id="log-(\d+)">/g)].map((m) => Number(m[1]));
const same = (a, b, what) => assert.deepEqual([...a].sort((x, y) => x - y), [...b].sort((x, y) => x - y), what);

function job(id) {
  return JSON.parse(sql(`SELECT row_to_json(j) FROM ewp.jobs j WHERE id = ${id}`));
}

async function waitJob(id, statuses, ms = 15000) {
  const want = [].concat(statuses);
  return (await pollUntil(() => {
    const j = job(id);
    return { ok: want.includes(j.status), job: j, detail: JSON.stringify(j) };
  }, ms, `job ${id} ${want.join('|')}`, 100)).job;
}

function insertCnrJob(omobilityId, { hei = P, extra = '', extraVals = '' } = {}) {
  const payload = JSON.stringify({ sending_hei_id: HEI_ID, omobility_id: omobilityId });
  return Number(sql(`INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload${extra})
    VALUES ('out', 'cnr', ${lit(hei)}, 'omobility-cnr', ${lit(omobilityId)}, ${lit(payload)}${extraVals}) RETURNING id`));
}

// ---- the data, made once by real exchanges -------------------------------

const ex = {}; // name -> { req, res, id }
const jobs = {}; // name -> job id
let today;
let oldDay;
let dayAfter;

itest(() => fx, 'setup: real exchanges in both directions, failed and retrying jobs', async () => {
  today = sql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')");
  ex.ok = await exchange({ path: `/ewp/institutions?hei_id=${HEI_ID}`, acceptSignature: 'rsa-sha256' }, 200);
  ex.bad = await exchange({ path: '/ewp/institutions' }, 400);
  ex.needle = await exchange({ path: '/ewp/echo?echo=Needle-In-Url-7731' }, 200);
  ex.body = await exchange({ method: 'POST', path: '/ewp/echo', body: 'echo=bodyneedle-5521',
    contentType: 'application/x-www-form-urlencoded' }, 200);
  ex.unknownKey = await exchange({ path: '/ewp/echo', key: fx.unknownKey }, 403);
  // a hostile XML document, and one with an external entity, as request bodies
  ex.xml = await exchange({ method: 'POST', path: '/ewp/echo', contentType: 'application/xml',
    body: `<?xml version="1.0"?><note><script>alert(1)</script><b>x &amp; y</b><!-- "><img src=x> --></note>` });
  ex.doctype = await exchange({ method: 'POST', path: '/ewp/echo', contentType: 'application/xml',
    body: Buffer.concat([Buffer.from('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x> caf'), Buffer.from([0xe9, 0x00, 0xff])]) });
  // a document longer than [log] message_body_max: the log keeps its start
  ex.big = await exchange({ method: 'POST', path: '/ewp/echo', contentType: 'application/xml',
    body: `<r>${'<i>x</i>'.repeat(400)}</r>` });
  // a request id made to be a spreadsheet formula and markup (refused, but logged as sent)
  ex.formula = await exchange({ path: '/ewp/echo', requestId: '=HYPERLINK("http://evil.example")<b>' });

  // a partner's CNR: our node fetches the mobility from it
  const body = 'omobility_id=lp-chain-1';
  ex.cnr = await exchange({ key: pKey, method: 'POST', path: '/ewp/omobility-cnr/v2', body,
    contentType: 'application/x-www-form-urlencoded' }, 200);
  const chain = await pollUntil(() => {
    const j = sql(`SELECT id FROM ewp.jobs WHERE kind = 'refetch' AND dedupe_key = 'lp-chain-1'`);
    const n = j ? Number(sql(`SELECT count(*) FROM ewp.message_log WHERE job_id = ${j}`)) : 0;
    return { ok: n >= 1, j, detail: `job ${j}, ${n} fetches logged` };
  }, 15000, 'the re-fetch of lp-chain-1 logged');
  jobs.refetch = Number(chain.j);
  ex.cnrInvalid = await exchange({ key: pKey, method: 'POST', path: '/ewp/omobility-cnr/v2', body: 'omobility_id=lp-invalid',
    contentType: 'application/x-www-form-urlencoded' }, 200);
  const inv = await pollUntil(() => {
    const id = sql(`SELECT min(l.id) FROM ewp.message_log l JOIN ewp.jobs j ON j.id = l.job_id WHERE j.dedupe_key = 'lp-invalid'`);
    return { ok: Boolean(id), id, detail: 'no fetch logged' };
  }, 15000, 'the fetch of lp-invalid logged');
  ex.fetchInvalid = { id: Number(inv.id) };
  jobs.refetchInvalid = Number(sql("SELECT id FROM ewp.jobs WHERE dedupe_key = 'lp-invalid'"));
  ex.fetch = { id: Number(sql(`SELECT min(id) FROM ewp.message_log WHERE job_id = ${jobs.refetch}`)) };

  // outbound CNR jobs: delivered, rejected with a hostile message, expired, retrying, no API
  cnrBehaviour.set('lp-400', (req) => double.reply(req, { status: 400, body: errorXml(`unknown omobility_id lp-400 ${HOSTILE}`) }));
  cnrBehaviour.set('lp-down', (req) => double.reply(req, { status: 503, body: errorXml('maintenance') }));
  cnrBehaviour.set('lp-retry', (req) => double.reply(req, { status: 500, body: errorXml('database on fire') }));
  jobs.ok = insertCnrJob('lp-ok');
  jobs.rejected = insertCnrJob('lp-400');
  jobs.expired = insertCnrJob('lp-down', { extra: ', expires_at', extraVals: ", now() + interval '20 seconds'" });
  jobs.retrying = insertCnrJob('lp-retry');
  jobs.noApi = insertCnrJob('lp-none', { hei: P_NONE });
  await waitJob(jobs.ok, 'success');
  await waitJob(jobs.rejected, 'rejected');
  await waitJob(jobs.expired, 'expired');
  await waitJob(jobs.noApi, 'no-cnr-api');
  await pollUntil(() => {
    const j = job(jobs.retrying);
    return { ok: j.status === 'pending' && j.attempts === 1, detail: JSON.stringify(j) };
  }, 15000, 'lp-retry waiting for its second attempt');
  for (const k of ['ok', 'rejected', 'expired', 'retrying'])
    await pollUntil(() => ({ ok: Number(sql(`SELECT count(*) FROM ewp.message_log WHERE job_id = ${jobs[k]}`)) >= 1,
      detail: 'no row' }), 5000, `log row of job ${k}`);
  // an exchange of 20 days ago (within [log] message_retention), for the date filters
  oldDay = sql("SELECT to_char((now() AT TIME ZONE 'UTC')::date - 20, 'YYYY-MM-DD')");
  dayAfter = sql("SELECT to_char((now() AT TIME ZONE 'UTC')::date - 19, 'YYYY-MM-DD')");
  ex.old = { id: Number(sql(`INSERT INTO ewp.message_log (created_at, direction, method, url, partner_hei_ids, api, status, request_id)
    VALUES ('${oldDay} 23:59:00+00', 'in', 'GET', '/ewp/echo', '{${PARTNER_HEI}}', 'echo', 200, 'lp-old-row') RETURNING id`)) };
});

// ---- privileges ----------------------------------------------------------

itest(() => fx, 'the log and jobs pages and the retry are refused (403) to users without the privilege; nothing changes', async () => {
  const before = JSON.stringify(job(jobs.rejected));
  for (const user of ['ref', 'std']) {
    const pc = await signedIn(user);
    for (const p of ['/portal/log', `/portal/log/${ex.ok.id}`, '/portal/log?format=csv', '/portal/jobs', '/portal/jobs?format=txt']) {
      const r = await pc.get(p);
      assert.equal(r.status, 403, `${user} ${p}: ${r.status}`);
      assert.doesNotMatch(r.text, /Needle-In-Url|lp-400/);
    }
    await pc.get('/portal/'); // a page of theirs, for a valid CSRF token
    assert.ok(pc.csrf, 'the home page carries the token of the session');
    const r = await pc.post(`/portal/jobs/${jobs.rejected}/retry`);
    assert.equal(r.status, 403, r.describe());
    const nav = (await pc.get('/portal/')).text;
    assert.doesNotMatch(nav, /href="\/portal\/log"/, 'no link to the log in their menu');
  }
  assert.equal(JSON.stringify(job(jobs.rejected)), before);
  assert.equal(sql(`SELECT count(*) FROM ewp.audit_log WHERE action = 'job.force-retry'`), '0');
  // without a session at all: the sign-in page (GET) or 403 (POST)
  const anon = PortalClient.of(fx);
  assert.equal((await anon.get('/portal/log')).status, 303);
  assert.equal((await anon.post(`/portal/jobs/${jobs.rejected}/retry`, { csrf: 'x'.repeat(64) })).status, 403);
  // an administrateur inherits the gestionnaire's rights
  const admin = await signedIn('admin');
  assert.equal((await admin.get('/portal/log')).status, 200);
  assert.equal((await admin.get('/portal/jobs')).status, 200);
});

// ---- the search ----------------------------------------------------------

itest(() => fx, 'log search: each filter returns exactly the expected exchanges', async () => {
  const pc = await signedIn('gest');
  const ids = async (qs) => {
    const r = await pc.get(`/portal/log?${qs}`);
    assert.equal(r.status, 200, `${qs}: ${r.describe()}`);
    return rowsOf(r.text);
  };
  const mine = [ex.ok, ex.bad, ex.needle, ex.body, ex.xml, ex.doctype].map((e) => e.id); // the partner's, authenticated

  same(await ids(`partner=${PARTNER_HEI}&api=institutions`), [ex.ok.id, ex.bad.id], 'partner + API');
  same(await ids(`partner=${PARTNER_HEI}&api=institutions&status=4xx`), [ex.bad.id], 'class 4xx');
  same(await ids(`partner=${PARTNER_HEI}&api=institutions&status=200`), [ex.ok.id], 'status 200');
  same(await ids(`request_id=${ex.needle.req.requestId}`), [ex.needle.id], 'request id');
  same(await ids('q=needle-in-URL-7731'), [ex.needle.id], 'text in the URL, any case');
  same(await ids('q=bodyneedle-5521'), [ex.body.id], 'text in a body');
  same(await ids(`q=bodyneedle-5521&from=${today}&to=${today}`), [ex.body.id], 'text in a body within dates');
  same(await ids('q=BODYNEEDLE-5521'), [], 'bodies are searched as sent (exact case)');
  // nobody authenticated the unknown key: no partner, but a failure
  const failedIn = await ids('status=failed&direction=in');
  assert.ok(failedIn.includes(ex.unknownKey.id) && failedIn.includes(ex.bad.id), 'failures received');
  assert.ok(!failedIn.includes(ex.ok.id) && !failedIn.includes(ex.needle.id), 'no success among failures');
  // sent: exactly the attempts of our jobs to P, as the table has them
  const outP = await ids(`direction=out&partner=${P}`);
  const truth = sql(`SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM ewp.message_log
    WHERE direction = 'out' AND ${lit(P)} = ANY (partner_hei_ids)`).split(',').filter(Boolean).map(Number);
  same(outP, truth, 'sent to P');
  assert.ok(outP.length >= 5, `fetch + 4 CNR jobs at least (${outP.length})`);
  same(await ids(`job=${jobs.rejected}`), [Number(sql(`SELECT id FROM ewp.message_log WHERE job_id = ${jobs.rejected}`))], 'one job\'s attempts');
  // dates (UTC days, both included)
  same(await ids(`from=${oldDay}&to=${oldDay}`), [ex.old.id], 'one day, its last minute included');
  same(await ids(`to=${oldDay}`), [ex.old.id], 'up to that day');
  same(await ids(`date=${oldDay}`), [ex.old.id], 'date=: that day alone');
  same(await ids(`from=${dayAfter}&to=${dayAfter}`), [], 'the day after');
  const todays = await ids(`from=${today}&to=${today}&partner=${PARTNER_HEI}`);
  for (const id of mine) assert.ok(todays.includes(id), `today's exchange ${id}`);
  assert.ok(!todays.includes(ex.old.id));
  // a row shows time, direction, partner, API + version, method, status, duration, request id, link
  const page = (await pc.get(`/portal/log?request_id=${ex.ok.req.requestId}`)).text;
  const row = new RegExp(`<tr id="log-${ex.ok.id}"><td><a href="/portal/log/${ex.ok.id}">${ex.ok.id}</a></td>` +
    `<td>${today} \\d\\d:\\d\\d</td><td>reçu</td><td>${PARTNER_HEI}</td><td>institutions 2\\.\\d+\\.\\d+</td>` +
    `<td>GET</td><td class="num status-ok">200</td><td class="num">\\d+</td><td class="rid">${ex.ok.req.requestId}</td><td></td></tr>`);
  assert.match(page, row);
  const kept = (await pc.get(`/portal/log?status=4xx&direction=out&from=${today}`)).text;
  assert.match(kept, /<input id="f-status" name="status" type="text" value="4xx" list="status-classes"/);
  assert.match(kept, /<option value="out" selected>/);
  assert.match(kept, new RegExp(`<input id="f-from" name="from" type="date" value="${today}">`));
  // a hostile filter value comes back as text in the form
  const h = await pc.get(`/portal/log?partner=${encodeURIComponent('"><img src=x onerror=alert(1)>')}`);
  assert.equal(h.status, 200);
  assert.match(h.text, /<input id="f-partner" name="partner" type="text" value="&quot;&gt;&lt;img src=x onerror=alert\(1\)&gt;"/);
  assert.doesNotMatch(h.text, /<img/);
  assert.match(h.text, /<p id="log-empty">/);
  // the form keeps the filters
  assert.match(page, new RegExp(`<input id="f-request_id" name="request_id" type="text" value="${ex.ok.req.requestId}"`));
  // the refused request id is shown as text
  const f = (await pc.get(`/portal/log?q=${encodeURIComponent('HYPERLINK')}`)).text;
  assert.ok(rowsOf(f).includes(ex.formula.id));
  assert.match(f, /=HYPERLINK\(&quot;http:\/\/evil\.example&quot;\)&lt;b&gt;/);
  assert.doesNotMatch(f, /evil\.example"\)<b>/);
});

itest(() => fx, 'log search: 100 a page, newest first; next and previous keep the filters', async () => {
  const sent = [];
  for (let i = 0; i < 21; i++) {
    const batch = Array.from({ length: 5 }, () => fx.signed({ path: '/ewp/echo?echo=pager-run-4242' }));
    const res = await Promise.all(batch.map((r) => fx.send(r)));
    for (const r of res) assert.equal(r.status, 200);
    sent.push(...batch.map((r) => r.requestId));
  }
  const all = [];
  for (const rid of sent) all.push(await logId(rid));
  const pc = await signedIn('gest');
  const p1 = await pc.get('/portal/log?q=pager-run-4242&direction=in');
  assert.equal(p1.status, 200);
  const ids1 = rowsOf(p1.text);
  assert.equal(ids1.length, 100);
  assert.doesNotMatch(p1.text, /id="prev-page"/);
  const next = /<a id="next-page" rel="next" href="([^"]+)">/.exec(p1.text);
  assert.ok(next, 'a link to page 2');
  assert.equal(next[1], '/portal/log?direction=in&amp;q=pager-run-4242&amp;page=2');
  const p2 = await pc.get(next[1].replace(/&amp;/g, '&'));
  const ids2 = rowsOf(p2.text);
  assert.equal(ids2.length, 5);
  assert.doesNotMatch(p2.text, /id="next-page"/);
  assert.match(p2.text, /<a id="prev-page" rel="prev" href="\/portal\/log\?direction=in&amp;q=pager-run-4242&amp;page=1">/);
  same([...ids1, ...ids2], all, 'both pages together: every exchange once');
  // newest first: the database's own order of these rows by time
  const order = sql(`SELECT string_agg(id::text, ',' ORDER BY created_at DESC, id DESC) FROM ewp.message_log
    WHERE id IN (${all.join(',')})`).split(',').map(Number);
  assert.deepEqual([...ids1, ...ids2], order);
});

itest(() => fx, 'log search: bad filters are refused with 400 and a message', async () => {
  const pc = await signedIn('gest');
  const cases = [
    ['from=garbage', /AAAA-MM-JJ/],
    ['date=garbage', /AAAA-MM-JJ/],
    ['date=2026-11-31', /AAAA-MM-JJ/],
    ['date=2026-11-23&from=2026-11-01', /pas les deux/],
    ['to=2026-02-30', /AAAA-MM-JJ/],
    ['from=2026-03-02&to=2026-03-01', /date de début est après/],
    ['status=6xx', /code comme 404/],
    ['status=abc', /code comme 404/],
    ['direction=sideways', /« in »/],
    ['api=Bad%20API', /minuscules/],
    ['page=0', /numéro de page/],
    ['page=x', /numéro de page/],
    ['job=-1', /numéro de tâche/],
    ['format=pdf', /csv ou txt/],
    [`q=${'x'.repeat(201)}`, /trop long/],
    ['partner=a%01b', /caractères de contrôle/],
  ];
  for (const [qs, msg] of cases) {
    const r = await pc.get(`/portal/log?${qs}`);
    assert.equal(r.status, 400, `${qs}: ${r.status}`);
    assert.match(r.text, /<p class="error" role="alert">/, qs);
    assert.match(r.text, msg, qs);
  }
  for (const qs of ['state=gone', 'page=99999', 'format=xls']) {
    const r = await pc.get(`/portal/jobs?${qs}`);
    assert.equal(r.status, 400, `jobs ${qs}: ${r.status}`);
    assert.match(r.text, /<p class="error" role="alert">/);
  }
  // an unknown or malformed exchange number
  assert.equal((await pc.get('/portal/log/999999999')).status, 404);
  assert.equal((await pc.get('/portal/log/12abc')).status, 404);
});

itest(() => fx, 'log exports: CSV (RFC 4180, formulas neutralised) and aligned text, with the page\'s filters', async () => {
  const pc = await signedIn('gest');
  const csv = await pc.get(`/portal/log?partner=${PARTNER_HEI}&api=institutions&format=csv`);
  assert.equal(csv.status, 200);
  assert.match(csv.header('Content-Type'), /^text\/csv; charset=utf-8/);
  assert.match(csv.header('Content-Disposition'), /attachment; filename="ewp-log\.csv"/);
  const recs = parseCsv(csv.text);
  assert.deepEqual(recs[0], ['N°', 'Heure (UTC)', 'Sens', 'Partenaire', 'API', "Version de l'API", 'Méthode', 'URL',
    'Statut', 'Durée (ms)', 'Identifiant de requête', 'Tâche', 'Validation XSD', 'Erreur']);
  assert.equal(recs.length, 3, 'header and two rows');
  const bad = recs.find((r) => r[0] === String(ex.bad.id));
  assert.ok(bad, csv.text);
  assert.match(bad[1], new RegExp(`^${today} \\d\\d:\\d\\d:\\d\\d$`));
  assert.deepEqual([bad[2], bad[3], bad[4], bad[6], bad[7], bad[8], bad[10], bad[12]],
    ['in', PARTNER_HEI, 'institutions', 'GET', '/ewp/institutions', '400', ex.bad.req.requestId, 'not-checked']);
  assert.match(bad[5], /^2\.\d+\.\d+$/);
  assert.match(bad[13], /hei_id/i, 'the error');
  const f = await pc.get(`/portal/log?request_id=${encodeURIComponent(ex.formula.req.requestId)}&format=csv`);
  assert.ok(f.text.includes(`"'=HYPERLINK(""http://evil.example"")<b>"`), f.text);
  assert.equal(parseCsv(f.text)[1][10], `'${ex.formula.req.requestId}`, 'the formula defused by a quote');

  const txt = await pc.get(`/portal/log?partner=${PARTNER_HEI}&api=institutions&format=txt`);
  assert.equal(txt.status, 200);
  assert.match(txt.header('Content-Type'), /^text\/plain; charset=utf-8/);
  const tl = txt.text.trimEnd().split('\n');
  assert.equal(tl.length, 3);
  assert.match(tl[0], /^N°\s+Heure \(UTC\)\s+Sens\s+Partenaire\s+API\s+Version de l'API\s+Méthode\s+URL\s+Statut\s+Durée \(ms\)\s+Identifiant de requête\s+Tâche\s+Validation XSD\s+Erreur$/);
  // aligned: every column starts at the same place on every line
  const at = [...tl[0]].indexOf('S'); // "Sens", in characters
  for (const l of tl.slice(1)) assert.equal([...l].slice(at, at + 3).join(''), 'in ', l);
  assert.ok(tl.some((l) => l.startsWith(`${ex.ok.id} `)) && tl.some((l) => l.startsWith(`${ex.bad.id} `)));
});

// ---- one exchange --------------------------------------------------------

itest(() => fx, 'an exchange: facts, headers in order, XML indented and escaped, the validation verdict', async () => {
  const pc = await signedIn('gest');
  const r = await pc.get(`/portal/log/${ex.ok.id}`);
  assert.equal(r.status, 200, r.describe());
  const t = r.text;
  assert.match(t, new RegExp(`<dt>URL</dt><dd>/ewp/institutions\\?hei_id=${HEI_ID.replace('.', '\\.')}</dd>`));
  assert.match(t, new RegExp(`<dt>Identifiant de requête \\(X-Request-Id\\)</dt><dd>${ex.ok.req.requestId}</dd>`));
  assert.match(t, /<dt>Clé de signature \(keyId\)<\/dt><dd>[0-9a-f]{64}<\/dd>/);
  assert.match(t, /<dt>Statut<\/dt><dd>200<\/dd>/);
  // request headers as received, the unsigned ones too
  assert.match(t, new RegExp(`<table id="request-headers" class="headers">.*<tr><th scope="row">X-Request-Id</th><td>${ex.ok.req.requestId}</td></tr>`, 's'));
  assert.match(t, /<table id="request-headers"[^]*<th scope="row">Authorization<\/th><td>Signature keyId=&quot;[0-9a-f]{64}&quot;/);
  assert.match(t, /<table id="response-headers"[^]*<th scope="row">Signature<\/th>/);
  // the response document indented (two spaces a level), markup escaped
  const body = /<pre id="response-body" class="body">([^]*?)<\/pre>/.exec(t);
  assert.ok(body, 'the response body');
  assert.match(body[1], /^&lt;\?xml version=&quot;1\.0&quot; encoding=&quot;UTF-8&quot;\?&gt;\n&lt;institutions-response /);
  assert.match(body[1], /\n {2}&lt;hei&gt;\n {4}&lt;hei-id&gt;smile\.test&lt;\/hei-id&gt;\n/);
  assert.match(t, /id="request-body-none"/, 'a GET has no body');
  assert.match(t, /<p id="validation" class="muted">Non vérifié/, 'received requests are not validated');

  // the hostile XML: indented, every tag as text, no markup of its own
  const x = (await pc.get(`/portal/log/${ex.xml.id}`)).text;
  const xb = /<pre id="request-body" class="body">([^]*?)<\/pre>/.exec(x)[1];
  assert.match(xb, /&lt;note&gt;\n {2}&lt;script&gt;alert\(1\)&lt;\/script&gt;\n {2}&lt;b&gt;x &amp;amp; y&lt;\/b&gt;\n {2}&lt;!-- &quot;&gt;&lt;img src=x&gt; --&gt;\n&lt;\/note&gt;/);
  assert.doesNotMatch(x, /<script|<img|<b>x/i);
  assert.match(x, /Document XML, indenté/);

  // a DOCTYPE with an external entity is never parsed: shown as sent, no file read;
  // bytes that are not UTF-8 (and NUL) shown as U+FFFD
  const d = (await pc.get(`/portal/log/${ex.doctype.id}`)).text;
  const db = /<pre id="request-body" class="body">([^]*?)<\/pre>/.exec(d)[1];
  assert.equal(db, '&lt;!DOCTYPE x [&lt;!ENTITY e SYSTEM &quot;file:///etc/passwd&quot;&gt;]&gt;&lt;x&gt;&amp;e;&lt;/x&gt; caf\ufffd\ufffd\ufffd');
  assert.doesNotMatch(d, /root:/);
  assert.match(d, /Montré tel qu&#39;enregistré/);

  // a fetch we made: the partner's answer was validated when it arrived
  const f = (await pc.get(`/portal/log/${ex.fetch.id}`)).text;
  assert.match(f, /<p id="validation" class="status-ok">Valide/);
  assert.match(f, new RegExp(`<a id="exchange-job" href="/portal/log\\?job=${jobs.refetch}">${jobs.refetch}</a>`));

  // a body the log cut: said so, shown as kept (not parsed)
  const b = (await pc.get(`/portal/log/${ex.big.id}`)).text;
  assert.match(b, /<p class="muted" id="request-body-cut">[^<]*\(2000 \/ 3207\)<\/p>/);
  const bb = /<pre id="request-body" class="body">([^]*?)<\/pre>/.exec(b)[1];
  const kept = `<r>${'<i>x</i>'.repeat(400)}`.slice(0, 2000);
  assert.equal(bb, kept.replace(/</g, '&lt;').replace(/>/g, '&gt;'), 'the 2000 bytes kept, as they are');

  // a partner's document our schema refused: the verdict and the first problem
  const iv = (await pc.get(`/portal/log/${ex.fetchInvalid.id}`)).text;
  assert.match(iv, /<p id="validation" class="error">Invalide selon le schéma de la passerelle : [^<]*intake\/omobilities-get-response\.xsd: line \d+: [^<]*nominee-isced-f-code/);

  // English on request: the language cookie
  pc.cookies.set('ewp-lang', 'en');
  const e = (await pc.get(`/portal/log/${ex.ok.id}`)).text;
  assert.match(e, /<p id="validation" class="muted">Not checked/);
  assert.match(e, /<h2>Response<\/h2>/);
});

itest(() => fx, 'an exchange: related exchanges (same request id, same job) and the chain CNR received -> fetch -> stored', async () => {
  const pc = await signedIn('gest');
  // the CNR we received: the job it queued and the fetch that job made
  const c = (await pc.get(`/portal/log/${ex.cnr.id}`)).text;
  assert.match(c, new RegExp(`<tr id="chain-job-${jobs.refetch}"><td><a href="/portal/log\\?job=${jobs.refetch}">${jobs.refetch}</a></td><td>refetch omobilities</td><td>${P.replace(/\./g, '\\.')}</td><td>lp-chain-1</td>`));
  const chainC = /<table id="chain">([^]*?)<\/table>/.exec(c);
  assert.ok(chainC, 'the chain table');
  assert.match(chainC[1], new RegExp(`<a href="/portal/log/${ex.fetch.id}">${ex.fetch.id}</a></td><td>récupération de l&#39;objet</td>`));
  // stored: the nomination is in the core, its file one click away
  assert.equal(job(jobs.refetch).status, 'success', JSON.stringify(job(jobs.refetch)));
  const mob = sql(`SELECT id FROM smile.mobility WHERE sending_hei_id = ${lit(P)} AND omobility_id = 'lp-chain-1'`);
  assert.ok(mob, 'the fetched nomination is stored');
  assert.match(c, new RegExp(`<td>success - enregistré <a id="chain-file-${jobs.refetch}" href="/portal/students/${mob}">dossier de l&#39;étudiant</a></td>`));
  const file = await pc.get(`/portal/students/${mob}`);
  assert.equal(file.status, 200, 'the link opens the file');
  assert.match(file.text, /Martin/);
  // the fetch: back to the CNR that caused it
  const f = (await pc.get(`/portal/log/${ex.fetch.id}`)).text;
  const chainF = /<table id="chain">([^]*?)<\/table>/.exec(f);
  assert.ok(chainF, f);
  assert.match(chainF[1], new RegExp(`<a href="/portal/log/${ex.cnr.id}">${ex.cnr.id}</a></td><td>notification \\(CNR\\) reçue</td>`));
  // an object id chosen by the partner is text on the page
  const evil = '"><img/src=x/onerror=alert(1)>'; // printable ASCII, no space: a valid EWP id
  const ce = await exchange({ key: pKey, method: 'POST', path: '/ewp/omobility-cnr/v2', body: `omobility_id=${encodeURIComponent(evil)}`,
    contentType: 'application/x-www-form-urlencoded' }, 200);
  await pollUntil(() => ({ ok: Boolean(sql(`SELECT id FROM ewp.jobs WHERE dedupe_key = ${lit(evil)}`)), detail: 'no job' }), 5000, 'the job of the hostile id');
  const ep = (await pc.get(`/portal/log/${ce.id}`)).text;
  assert.match(ep, /<td>&quot;&gt;&lt;img\/src=x\/onerror=alert\(1\)&gt;<\/td>/);
  assert.doesNotMatch(ep, /<img/);
  // an exchange with nothing related says so
  const n = (await pc.get(`/portal/log/${ex.needle.id}`)).text;
  assert.match(n, /id="related-none"/);
  // two attempts of one job: each lists the other as "same job"
  cnrBehaviour.set('lp-twice', (req) => double.reply(req, { status: 500, body: errorXml('once') }));
  const twice = insertCnrJob('lp-twice');
  await waitJob(twice, 'pending');
  await pollUntil(() => ({ ok: job(twice).attempts === 1, detail: JSON.stringify(job(twice)) }), 10000, 'first attempt');
  cnrBehaviour.set('lp-twice', (req) => double.reply(req, { body: okCnrXml }));
  sql(`UPDATE ewp.jobs SET next_attempt_at = now() WHERE id = ${twice}`);
  await waitJob(twice, 'success');
  const rows = await pollUntil(() => {
    const s = sql(`SELECT string_agg(id::text, ',' ORDER BY id) FROM ewp.message_log WHERE job_id = ${twice}`);
    const a = s ? s.split(',').map(Number) : [];
    return { ok: a.length === 2, a, detail: s };
  }, 5000, 'two attempts logged');
  const [a1, a2] = rows.a;
  const p1 = (await pc.get(`/portal/log/${a1}`)).text;
  const rel = /<table id="related">([^]*?)<\/table>/.exec(p1);
  assert.ok(rel, p1);
  assert.match(rel[1], new RegExp(`<a href="/portal/log/${a2}">${a2}</a></td><td>même tâche</td>`));
  assert.doesNotMatch(rel[1], new RegExp(`/portal/log/${a1}"`), 'not itself');
  // the request id: the failed and the successful attempt carry different ones
  const rid = sql(`SELECT request_id FROM ewp.message_log WHERE id = ${a1}`);
  assert.ok(rid, 'our request carried an X-Request-Id');
});

// ---- failed jobs ---------------------------------------------------------

const jobRows = (html) => [...html.matchAll(/<tr id="job-(\d+)">/g)].map((m) => Number(m[1]));

itest(() => fx, 'jobs page: failed, expired and retrying jobs with partner, object, attempts and the partner\'s error; filters', async () => {
  const pc = await signedIn('gest');
  const r = await pc.get('/portal/jobs');
  assert.equal(r.status, 200, r.describe());
  const shown = jobRows(r.text);
  for (const k of ['rejected', 'expired', 'retrying', 'noApi', 'refetchInvalid']) assert.ok(shown.includes(jobs[k]), `job ${k} listed`);
  assert.ok(!shown.includes(jobs.ok), 'a delivered job is not');
  // the rejected job: the partner's message, escaped, and its exchanges
  const row = new RegExp(`<tr id="job-${jobs.rejected}">([^]*?)</tr>`).exec(r.text)[1];
  assert.match(row, new RegExp(`<td>envoyé cnr omobility-cnr</td><td>${P.replace(/\./g, '\\.')}</td><td>lp-400</td><td class="status-bad">rejected</td><td class="num">1</td>`));
  assert.match(row, /<td class="job-error">HTTP 400: unknown omobility_id lp-400 &lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;<\/td>/);
  assert.doesNotMatch(r.text, /<script/);
  assert.match(row, new RegExp(`<a id="job-log-${jobs.rejected}" href="/portal/log\\?job=${jobs.rejected}">échanges \\(1\\)</a>`));
  assert.match(row, new RegExp(`<form method="post" action="/portal/jobs/${jobs.rejected}/retry" id="retry-${jobs.rejected}"><input type="hidden" name="csrf" value="[0-9a-f]{64}">`));
  // the retrying one: its next attempt
  const rr = new RegExp(`<tr id="job-${jobs.retrying}">([^]*?)</tr>`).exec(r.text)[1];
  assert.match(rr, /<td class="status-bad">pending<\/td><td class="num">1<\/td><td>\d{4}-\d\d-\d\d \d\d:\d\d<\/td>/);
  assert.match(rr, /database on fire/);

  same(jobRows((await pc.get('/portal/jobs?state=expired')).text), [jobs.expired], 'expired');
  // an inbound re-fetch whose answer our schema refused is retrying too
  assert.equal(job(jobs.refetchInvalid).status, 'pending');
  same(jobRows((await pc.get('/portal/jobs?state=retrying')).text), [jobs.retrying, jobs.refetchInvalid], 'retrying');
  const ri = new RegExp(`<tr id="job-${jobs.refetchInvalid}">([^]*?)</tr>`).exec(r.text)[1];
  assert.match(ri, /<td>reçu refetch omobilities<\/td>/);
  assert.match(ri, /nominee-isced-f-code/, 'why it failed');
  assert.match(ri, /<a href="\/portal\/log\?request_id=[0-9a-f-]{36}">notification reçue<\/a>/, 'the CNR that caused it');
  same(jobRows((await pc.get('/portal/jobs?state=failed')).text), [jobs.rejected, jobs.noApi], 'failed');
  same(jobRows((await pc.get(`/portal/jobs?partner=${P_NONE}`)).text), [jobs.noApi], 'one partner');
  same(jobRows((await pc.get(`/portal/jobs?partner=${P}&state=failed`)).text), [jobs.rejected], 'partner and state');

  // exports
  const csv = await pc.get(`/portal/jobs?partner=${P}&state=failed&format=csv`);
  assert.equal(csv.status, 200);
  assert.match(csv.header('Content-Disposition'), /filename="ewp-jobs\.csv"/);
  const recs = parseCsv(csv.text);
  assert.deepEqual(recs[0], ['Tâche', 'Sens', 'Type', 'Partenaire', 'API', 'Objet', 'État', 'Essais', 'Prochain essai (UTC)',
    'Modifiée (UTC)', 'Dernier statut HTTP', 'Dernière erreur (message du partenaire)', 'Journal']);
  assert.equal(recs.length, 2);
  const r1 = recs[1];
  assert.deepEqual([...r1.slice(0, 9), ...r1.slice(10)], [String(jobs.rejected), 'out', 'cnr', P, 'omobility-cnr', 'lp-400', 'rejected', '1', '',
    '400', `HTTP 400: unknown omobility_id lp-400 ${HOSTILE}`, '1']);
  assert.match(r1[9], /^\d{4}-\d\d-\d\d \d\d:\d\d$/);
  const txt = await pc.get('/portal/jobs?state=expired&format=txt');
  const tl = txt.text.trimEnd().split('\n');
  assert.equal(tl.length, 2);
  assert.match(tl[1], new RegExp(`^${jobs.expired}\\s+out\\s+cnr\\s+${P.replace(/\./g, '\\.')}\\s+omobility-cnr\\s+lp-down\\s+expired\\s+1\\s+`));
});

itest(() => fx, 'retry: CSRF missing or wrong -> 403 and nothing changed', async () => {
  const pc = await signedIn('gest');
  await pc.get('/portal/jobs');
  const before = JSON.stringify(job(jobs.expired));
  for (const csrf of [null, 'f'.repeat(64), '']) {
    const r = await pc.post(`/portal/jobs/${jobs.expired}/retry`, { csrf });
    assert.equal(r.status, 403, r.describe());
  }
  assert.equal(JSON.stringify(job(jobs.expired)), before);
  assert.equal(sql(`SELECT count(*) FROM ewp.audit_log WHERE action = 'job.force-retry'`), '0');
});

itest(() => fx, 'retry: a delivered job is refused with 409, an unknown one 404; nothing changed, nothing audited', async () => {
  const pc = await signedIn('gest');
  await pc.get('/portal/jobs');
  const before = JSON.stringify(job(jobs.ok));
  const r = await pc.post(`/portal/jobs/${jobs.ok}/retry`);
  assert.equal(r.status, 409, r.describe());
  assert.match(r.text, new RegExp(`Tâche ${jobs.ok} : success|Tâche ${jobs.ok}: success`));
  assert.match(r.text, /Seule une tâche en échec, expirée ou en attente/);
  assert.equal(JSON.stringify(job(jobs.ok)), before);
  assert.equal((await pc.post('/portal/jobs/987654321/retry')).status, 404);
  assert.equal((await pc.post(`/portal/jobs/${jobs.ok}/other`)).status, 404);
  assert.equal(sql(`SELECT count(*) FROM ewp.audit_log WHERE action = 'job.force-retry'`), '0');
});

itest(() => fx, 'retry: a rejected job is pending again and due now (as ewpctl jobs retry), audited, flash on /jobs; then delivered', async () => {
  const pc = await signedIn('gest');
  await pc.get(`/portal/jobs?partner=${P}&state=failed`);
  const attemptsBefore = job(jobs.rejected).attempts;
  cnrBehaviour.set('lp-400', (req) => double.reply(req, { body: okCnrXml })); // the partner fixed its side
  const r = await pc.post(`/portal/jobs/${jobs.rejected}/retry`, { partner: P, state: 'failed' });
  assert.equal(r.status, 303, r.describe());
  assert.equal(location(r), `/portal/jobs?partner=${P}&state=failed&m=log.jobs.retried`);
  // what the UPDATE of ewpctl jobs retry leaves: pending (or already taken), due now, not finished
  const j = job(jobs.rejected);
  assert.ok(['pending', 'running', 'success'].includes(j.status), JSON.stringify(j));
  if (j.status !== 'success') {
    assert.equal(j.finished_at, null);
    assert.ok(sql(`SELECT next_attempt_at <= now() FROM ewp.jobs WHERE id = ${jobs.rejected}`) === 't');
  }
  assert.ok(sql(`SELECT expires_at >= now() + interval '23 hours' FROM ewp.jobs WHERE id = ${jobs.rejected}`) === 't',
    'a fresh delivery window ([jobs] give_up_after, 24 h)');
  const done = await waitJob(jobs.rejected, 'success', 10000);
  assert.equal(done.attempts, attemptsBefore + 1);
  assert.equal(sql(`SELECT actor || '/' || object_type || '/' || object_id || '/' || (utilisateur_id IS NOT NULL)
    FROM ewp.audit_log WHERE action = 'job.force-retry'`), `gest/job/${jobs.rejected}/true`);
  const page = await pc.get(location(r));
  assert.match(page.text, /<p class="flash" role="status">La tâche est à faire maintenant/);
  assert.ok(!jobRows(page.text).includes(jobs.rejected), 'delivered: no longer listed');
  // once delivered it cannot be retried again
  await pc.get('/portal/jobs');
  assert.equal((await pc.post(`/portal/jobs/${jobs.rejected}/retry`)).status, 409);
});

itest(() => fx, 'retry: a retrying job waiting out its backoff is due now; an expired one is pending again', async () => {
  const pc = await signedIn('gest');
  await pc.get('/portal/jobs');
  const waiting = sql(`SELECT next_attempt_at > now() + interval '10 seconds' FROM ewp.jobs WHERE id = ${jobs.retrying}`);
  assert.equal(waiting, 't', 'backing off for a while');
  cnrBehaviour.set('lp-retry', (req) => double.reply(req, { body: okCnrXml }));
  let r = await pc.post(`/portal/jobs/${jobs.retrying}/retry`);
  assert.equal(r.status, 303, r.describe());
  assert.equal(location(r), '/portal/jobs?m=log.jobs.retried');
  const j = await waitJob(jobs.retrying, 'success', 10000); // well before the 30 s backoff
  assert.equal(j.attempts, 2);

  cnrBehaviour.set('lp-down', (req) => double.reply(req, { body: okCnrXml }));
  await pc.get('/portal/jobs');
  r = await pc.post(`/portal/jobs/${jobs.expired}/retry`);
  assert.equal(r.status, 303, r.describe());
  await waitJob(jobs.expired, 'success', 10000);
  assert.equal(sql(`SELECT count(*) FROM ewp.audit_log WHERE action = 'job.force-retry'`), '3');
});

itest(() => fx, 'a gestionnaire limited to some composantes: the log without the bodies (neither shown nor searched)', async () => {
  const lim = await signedIn('gestlim');
  const full = await signedIn('gest');
  const ids = async (pc, qs) => rowsOf((await pc.get(`/portal/log?${qs}`)).text);
  same(await ids(full, 'q=bodyneedle-5521'), [ex.body.id], 'found in the body by an unlimited user');
  same(await ids(lim, 'q=bodyneedle-5521'), [], 'not by a limited one');
  same(await ids(lim, 'q=needle-in-URL-7731'), [ex.needle.id], 'URLs are searched for everyone');
  const d = await lim.get(`/portal/log/${ex.fetch.id}`);
  assert.equal(d.status, 200);
  assert.match(d.text, /<p class="muted" id="request-body-hidden">Corps non affiché/);
  assert.match(d.text, /<p class="muted" id="response-body-hidden">Corps non affiché/);
  assert.doesNotMatch(d.text, /Martin|lea\.martin/, 'no student data');
  assert.match(d.text, /<table id="response-headers"/, 'the headers are shown');
  assert.match((await full.get(`/portal/log/${ex.fetch.id}`)).text, /&lt;family-name&gt;Martin&lt;\/family-name&gt;/);
});
