// Actual arrival and departure dates (IMobilities v2 + IMobility CNR v2),
// both sides, against a real ewpd with its own PostgreSQL and a partner
// double (another vendor's node, lib/partner-double.mjs) covering the HEI
// P_IMOB:
//  - receiving side (our incoming students): `ewpctl mobility dates` on an
//    incoming row queues an IMobility CNR that reaches the double's CNR
//    endpoint (signed, omobility_id only); our IMobilities v2 get returns
//    the dates to the sending HEI only (official v2 XSD), 400 on bad
//    parameters;
//  - sending side (our outgoing students): the double's IMobility CNR is
//    answered at once and leaves a refetch job; the job calls the double's
//    IMobilities get (signed), checks and stores the dates on our
//    outgoing row; 500 then 200 is stored after the backoff; a bad
//    signature, invalid XML, a schema error, other HEIs' mobilities and
//    ids the answer leaves out write nothing.
// Rows are seeded directly in the database.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';

import { buildCatalogue } from './lib/catalogue.mjs';
import { Ewpd, HEI_ID, PARTNER_HEI, describeRun, itest, makeTempDir, runEwpctlAsync } from './lib/daemon.mjs';
import { assertErrorResponse, assertStatus, assertXmlContentType, exchange } from './lib/ewp.mjs';
import { NS, PROJECT_SCHEMAS, REPO_ROOT, projectSchema, specPath } from './lib/env.mjs';
import { PartnerDouble } from './lib/partner-double.mjs';
import { pollUntil } from './lib/poll.mjs';
import { makeKey } from './lib/sign.mjs';
import { assertValid, parseXml, xmlEscape, xmllintValidate } from './lib/xml.mjs';

const GH = 'https://github.com/erasmus-without-paper';
const REG_SCHEMAS = ['ewp-registry-service', 'src', 'main', 'resources', 'schemas'];
const P_IMOB = 'imob.partner.example.org'; // the double's HEI
const NS_GET = `${GH}/ewp-specs-api-imobilities/blob/stable-v2/endpoints/get-response.xsd`;
const NS_ENTRY = `${GH}/ewp-specs-api-imobilities/blob/stable-v2/manifest-entry.xsd`;
const NS_CNR = `${GH}/ewp-specs-api-imobility-cnr/tree/stable-v2`;
const NS_CNR_ENTRY = `${GH}/ewp-specs-api-imobility-cnr/blob/stable-v2/manifest-entry.xsd`;
const NS_EWP = `${GH}/ewp-specs-architecture/blob/stable-v1/common-types.xsd`;
const NS_SEC = `${GH}/ewp-specs-sec-intro/tree/stable-v2`;
const GET_PATH = '/ewp/imobilities/v2';
const CNR_PATH = '/ewp/imobility-cnr/v2';
const MAX_IDS = 100;
const JOBS_CONF = { retry_min: '1s', retry_max: '2s', lease: '8s', timeout: '3s', concurrency: '8' };

const officialGet = () => specPath(...REG_SCHEMAS, 'ewp-specs-api-imobilities-v2.0.0', 'endpoints', 'get-response.xsd');
const officialEntry = () => specPath(...REG_SCHEMAS, 'ewp-specs-api-imobilities-v2.0.0', 'manifest-entry.xsd');
const officialCnr = () => specPath(...REG_SCHEMAS, 'ewp-specs-api-imobility-cnr-v2.0.0', 'response.xsd');
const officialCnrEntry = () => specPath(...REG_SCHEMAS, 'ewp-specs-api-imobility-cnr-v2.0.0', 'manifest-entry.xsd');

let fx;
let double;
let doubleKey; // the double's client key (signs its CNRs to us)
let sqlDir;
// What the double's IMobilities get answers: omobility_id -> (req) => void,
// else the dates in partnerDates.
const behaviour = new Map();
const partnerDates = new Map(); // omobility_id -> { arr, dep } (strings as written)

const errorXml = (msg) => `<?xml version="1.0" encoding="UTF-8"?>\n<error-response xmlns="${NS_EWP}">\n` +
  `  <developer-message>${xmlEscape(msg)}</developer-message>\n</error-response>\n`;

function getResponseXml(ids) {
  let x = `<?xml version="1.0" encoding="UTF-8"?>\n<imobilities-get-response xmlns="${NS_GET}">\n`;
  for (const id of ids) {
    const d = partnerDates.get(id);
    if (!d) continue;
    x += `  <student-mobility>\n    <omobility-id>${xmlEscape(id)}</omobility-id>\n`;
    if (d.arr) x += `    <actual-arrival-date>${d.arr}</actual-arrival-date>\n`;
    if (d.dep) x += `    <actual-departure-date>${d.dep}</actual-departure-date>\n`;
    x += '  </student-mobility>\n';
  }
  return `${x}</imobilities-get-response>\n`;
}

const httpsig = (p) => `<${p}:http-security>
          <sec:client-auth-methods><sec-A2:httpsig/></sec:client-auth-methods>
          <sec:server-auth-methods><sec-B2:httpsig/></sec:server-auth-methods>
        </${p}:http-security>`;

// The double's IMobilities v2 and IMobility CNR v2 entries, after its Echo entry.
function catalogueXml() {
  const echoUrl = `${double.baseUrl}/ewp/echo`;
  const anchor = `<e2:url>${xmlEscape(echoUrl)}</e2:url>\n      </e2:echo>\n`;
  const xml = buildCatalogue(fx.catalogueSpec());
  if (!xml.includes(anchor)) throw new Error('no echo entry for the double');
  return xml.replace(anchor, `${anchor}      <im2:imobilities xmlns:im2="${NS_ENTRY}" version="2.0.0">
        ${httpsig('im2')}
        <im2:get-url>${xmlEscape(double.baseUrl)}/ewp/imobilities</im2:get-url>
        <im2:max-omobility-ids>5</im2:max-omobility-ids>
      </im2:imobilities>
      <ic2:imobility-cnr xmlns:ic2="${NS_CNR_ENTRY}" version="2.0.0">
        ${httpsig('ic2')}
        <ic2:url>${xmlEscape(double.baseUrl)}/ewp/imobility-cnr</ic2:url>
        <ic2:max-omobility-ids>5</ic2:max-omobility-ids>
      </ic2:imobility-cnr>\n`);
}

// sql/ copied and numbered without gaps (this branch's migration may sit
// after numbers other branches fill in): the same files, in the same order.
function gaplessSqlDir(dir) {
  const src = path.join(REPO_ROOT, 'sql');
  const files = fs.readdirSync(src).filter((f) => /^\d{4}_.*\.sql$/.test(f)).sort();
  fs.mkdirSync(dir, { recursive: true });
  files.forEach((f, i) => fs.copyFileSync(path.join(src, f), path.join(dir, `${String(i + 1).padStart(4, '0')}${f.slice(4)}`)));
  return dir;
}

before(async () => {
  sqlDir = gaplessSqlDir(path.join(makeTempDir('imobilities-sql'), 'sql'));
  fx = await Ewpd.create('imobilities', { pg: true, tls: true, start: false, sqlDir,
    conf: { jobs: JOBS_CONF, ewp: { schema_dir: PROJECT_SCHEMAS } } });
  double = await PartnerDouble.start({ dir: path.join(fx.dir, 'double'), clientKey: fx.clientKey });
  doubleKey = makeKey();
  double.handle((req) => {
    if (req.api === 'imobility-cnr') {
      double.reply(req, { body: `<?xml version="1.0" encoding="UTF-8"?>\n<imobility-cnr-response xmlns="${NS_CNR}"/>\n` });
      return;
    }
    if (req.api === 'imobilities') {
      const ids = req.form.getAll('omobility_id');
      const f = ids.map((i) => behaviour.get(i)).find(Boolean);
      if (f) f(req, ids);
      else double.reply(req, { body: getResponseXml(ids) });
      return;
    }
    double.reply(req, { status: 404, body: errorXml('no such endpoint') });
  });
  fx.extraHosts.push({ adminEmail: 'admin@imob.partner.example.org', heis: [P_IMOB], clientKeys: [doubleKey],
    serverKeys: [double.serverKey], echoUrl: `${double.baseUrl}/ewp/echo` });
  fx.extraInstitutions.push({ id: P_IMOB, names: [['en', 'IMobilities Partner']] });
  fs.writeFileSync(fx.cataloguePath, catalogueXml());
  fx.writeConfig({ jobs: { ...JOBS_CONF, ca_file: double.tlsFiles.cert } });
  await fx.start();
});

after(async () => {
  await double?.close();
  await fx?.cleanup();
  if (sqlDir) fs.rmSync(path.dirname(sqlDir), { recursive: true, force: true });
});

const sql = (q) => fx.pg.psql(q);
const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
let seq = 0;
const freshId = (tag) => `${tag}-${process.pid}-${++seq}`;

// Seeds a smile.mobility row; returns its id.
function seed({ omob, sending, receiving, outgoing, arr = null, dep = null }) {
  return sql(`INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id, is_outgoing,
      given_names, family_name, global_id, birth_date, nationality, gender, email, agreement_isced, nominee_isced,
      eqf_level, receiving_academic_year_id, proposal_id, actual_arrival_date, actual_departure_date)
    VALUES (${lit(sending)}, ${lit(omob)}, ${lit(receiving)}, ${outgoing}, 'Anna', 'Kowalska',
      'urn:schac:personalUniqueCode:int:esi:pl:${omob}', '2003-05-05', 'PL', 2, 'anna@example.org', '0541', '0541', 6,
      '2026/2027', 'p1', ${lit(arr)}::date, ${lit(dep)}::date)
    RETURNING id`);
}
const incoming = (omob, o = {}) => seed({ omob, sending: P_IMOB, receiving: HEI_ID, outgoing: false, ...o });
const outgoing = (omob, o = {}) => seed({ omob, sending: HEI_ID, receiving: P_IMOB, outgoing: true, ...o });

function dates(id) {
  const [arr, dep] = sql(`SELECT coalesce(actual_arrival_date::text, '-') || '|' || coalesce(actual_departure_date::text, '-')
    FROM smile.mobility WHERE id = ${id}`).split('|');
  return { arr: arr === '-' ? null : arr, dep: dep === '-' ? null : dep };
}

function jobsOf(api, key) {
  return JSON.parse(sql(`SELECT coalesce(json_agg(j ORDER BY j.id), '[]') FROM (
    SELECT id, direction, kind, hei_id, api, dedupe_key, payload, status, attempts, last_error, last_http_status
      FROM ewp.jobs WHERE api = ${lit(api)} AND dedupe_key = ${lit(key)}) j`));
}

async function waitJob(api, key, statuses, ms = 20000, what = '') {
  const want = [].concat(statuses);
  const r = await pollUntil(() => {
    const js = jobsOf(api, key);
    const j = js[js.length - 1];
    return { ok: !!j && want.includes(j.status), detail: JSON.stringify(js), job: j };
  }, ms, `${api} job ${key} ${want.join('|')} ${what}`, 100);
  return r.job;
}

const ctl = (...args) => runEwpctlAsync(['-c', fx.confPath, 'mobility', 'dates', ...args]);

const form = (params) => params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

// A signed get by `key` (default: the double's, i.e. the sending HEI P_IMOB).
function getRequest(params, { key = doubleKey, method = 'POST' } = {}) {
  if (method === 'GET') return fx.signed({ key, method, path: `${GET_PATH}?${form(params)}` });
  return fx.signed({ key, method, path: GET_PATH, body: form(params), contentType: 'application/x-www-form-urlencoded' });
}

// Sends a get; expects 200 valid against the official and our schema; returns [{id, arr, dep}].
async function imobGet(params, o = {}) {
  const req = getRequest(params, o);
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'imobilities get');
  assertXmlContentType(res, req);
  assertValid(res.body, officialGet(), 'imobilities-get-response (official v2)');
  assertValid(res.body, projectSchema('imobilities-get-response.xsd'), 'imobilities-get-response (ewp-schemas)');
  const root = parseXml(res.body);
  assert.equal(root.local, 'imobilities-get-response', `root${exchange(req, res)}`);
  assert.equal(root.ns, NS_GET, `namespace${exchange(req, res)}`);
  return root.elements(NS_GET, 'student-mobility').map((m) => ({
    id: m.element(NS_GET, 'omobility-id').text,
    arr: m.elements(NS_GET, 'actual-arrival-date')[0]?.text ?? null,
    dep: m.elements(NS_GET, 'actual-departure-date')[0]?.text ?? null,
  }));
}

function cnrRequest(params, { key = doubleKey } = {}) {
  return fx.signed({ key, method: 'POST', path: CNR_PATH, body: form(params), contentType: 'application/x-www-form-urlencoded' });
}

async function notify(ids) {
  const req = cnrRequest(ids.map((i) => ['omobility_id', i]));
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'imobility-cnr notification');
  assertValid(res.body, officialCnr(), 'imobility-cnr-response (official v2)');
  assertValid(res.body, projectSchema('imobility-cnr-v2-response.xsd'), 'imobility-cnr-response (ewp-schemas)');
  const root = parseXml(res.body);
  assert.equal(root.local, 'imobility-cnr-response');
  assert.equal(root.ns, NS_CNR);
  assert.equal(root.elements().length, 0, 'empty response');
  return req;
}

const getsFor = (id) => double.requests.filter((r) => r.api === 'imobilities' && r.form.getAll('omobility_id').includes(id));

// ---------------------------------------------------------------------------

itest(() => fx, 'manifest: imobilities v2 (get-url, max-omobility-ids) and imobility-cnr v2 entries, valid against the official and project schemas', async () => {
  const req = { method: 'GET', target: fx.manifestPath, headers: [['Host', fx.hostHeader]] };
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'manifest');
  assertValid(res.body, specPath('ewp-specs-api-discovery', 'manifest.xsd'), 'manifest (official)');
  assertValid(res.body, projectSchema('manifest.xsd'), 'manifest (ewp-schemas)');
  const apis = parseXml(res.body).element(NS.manifest, 'host').element(NS.registry, 'apis-implemented');
  const im = apis.elements(NS_ENTRY, 'imobilities');
  assert.equal(im.length, 1, `one imobilities entry${exchange(req, res)}`);
  assert.equal(im[0].attr('version'), '2.0.0');
  assert.equal(im[0].element(NS_ENTRY, 'get-url').text, `${fx.publicUrl}${GET_PATH}`);
  assert.equal(im[0].element(NS_ENTRY, 'max-omobility-ids').text, String(MAX_IDS));
  const ic = apis.elements(NS_CNR_ENTRY, 'imobility-cnr');
  assert.equal(ic.length, 1, `one imobility-cnr entry${exchange(req, res)}`);
  assert.equal(ic[0].attr('version'), '2.0.0');
  assert.equal(ic[0].element(NS_CNR_ENTRY, 'url').text, `${fx.publicUrl}${CNR_PATH}`);
  assert.equal(ic[0].element(NS_CNR_ENTRY, 'max-omobility-ids').text, String(MAX_IDS));
  const text = res.body.toString('utf8');
  for (const [name, ns, xsd] of [['imobilities', NS_ENTRY, officialEntry()], ['imobility-cnr', NS_CNR_ENTRY, officialCnrEntry()]]) {
    const open = `<${name} xmlns="${ns}"`;
    const from = text.indexOf(open);
    assert.ok(from >= 0, `${name} entry in the manifest text`);
    const to = text.indexOf(`</${name}>`, from) + name.length + 3;
    const doc = `<?xml version="1.0" encoding="UTF-8"?>\n${open} xmlns:sec="${NS_SEC}"${text.slice(from + open.length, to)}`;
    assertValid(Buffer.from(doc), xsd, `${name} entry (official manifest-entry.xsd)`);
    assertValid(Buffer.from(doc), projectSchema(name === 'imobilities' ? 'imobilities-entry.xsd' : 'imobility-cnr-v2-entry.xsd'), `${name} entry (ewp-schemas)`);
  }
});

itest(() => fx, 'receiving side: ewpctl mobility dates → dates stored, IMobility CNR queued and delivered (signed, omobility_id only), get returns them to the sending HEI only', async () => {
  const omob = freshId('in');
  const id = incoming(omob);
  const jobsBefore = Number(sql("SELECT count(*) FROM ewp.jobs WHERE api = 'imobility-cnr'"));
  const cnrsBefore = double.requests.length;
  const r = await ctl(id, '--arrival', '2026-09-01', '--departure', '2027-01-31');
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /arrival 2026-09-01, departure 2027-01-31/);
  assert.match(r.stdout, new RegExp(`IMobility CNR to ${P_IMOB.replace(/\./g, '\\.')} queued \\(job \\d+\\)`));
  assert.deepEqual(dates(id), { arr: '2026-09-01', dep: '2027-01-31' });
  const audit = sql(`SELECT (details->>'arrival') || ' ' || (details->>'departure') || ' '
      || coalesce(details->>'previous_arrival', 'none') || ' ' || (details ? 'user')::text
    FROM ewp.audit_log WHERE action = 'mobility.dates' AND object_id = '${id}'`);
  assert.equal(audit, '2026-09-01 2027-01-31 none true', 'audit log row: new and previous dates, who');
  const key = `${P_IMOB} ${omob}`;
  const js = jobsOf('imobility-cnr', key);
  assert.equal(js.length, 1, `one CNR job: ${JSON.stringify(js)}`);
  assert.equal(js[0].direction, 'out');
  assert.equal(js[0].kind, 'cnr');
  assert.equal(js[0].hei_id, P_IMOB);
  assert.deepEqual(js[0].payload, { omobility_id: [omob] });
  assert.equal(Number(sql("SELECT count(*) FROM ewp.jobs WHERE api = 'imobility-cnr'")), jobsBefore + 1);
  const j = await waitJob('imobility-cnr', key, 'success');
  assert.equal(j.last_http_status, 200);
  const posts = double.requests.slice(cnrsBefore).filter((q) => q.api === 'imobility-cnr');
  assert.equal(posts.length, 1, 'one CNR received by the sending HEI');
  assert.equal(posts[0].method, 'POST');
  assert.deepEqual([...posts[0].form.keys()], ['omobility_id'], 'IMobility CNR v2 takes omobility_id only');
  assert.equal(posts[0].form.get('omobility_id'), omob);
  assert.equal(posts[0].signatureOk, true, 'signed with the node\'s client key, Digest right');

  for (const method of ['POST', 'GET']) {
    assert.deepEqual(await imobGet([['omobility_id', omob]], { method }), [{ id: omob, arr: '2026-09-01', dep: '2027-01-31' }], method);
  }
  // a third HEI (partner.example.org, fx.partnerKey) sees nothing
  assert.deepEqual(await imobGet([['omobility_id', omob]], { key: fx.partnerKey }), [], 'third HEI');
});

itest(() => fx, 'receiving side: SENDING_HEI:OMOBILITY_ID, one date at a time, none clears, unchanged → no notification', async () => {
  const omob = freshId('in');
  const id = incoming(omob);
  const key = `${P_IMOB} ${omob}`;
  let r = await ctl(id, '--arrival', '2026-09-01');
  assert.equal(r.status, 0, describeRun(r));
  await waitJob('imobility-cnr', key, 'success');
  r = await ctl(`${P_IMOB}:${omob}`, '--departure', '2026-12-20');
  assert.equal(r.status, 0, describeRun(r));
  assert.deepEqual(dates(id), { arr: '2026-09-01', dep: '2026-12-20' }, 'arrival kept');
  assert.equal(jobsOf('imobility-cnr', key).length, 2, 'a second notification');
  await waitJob('imobility-cnr', key, 'success');
  r = await ctl(`${P_IMOB}:${omob}`, '--arrival', 'none');
  assert.equal(r.status, 0, describeRun(r));
  assert.deepEqual(dates(id), { arr: null, dep: '2026-12-20' });
  assert.equal(jobsOf('imobility-cnr', key).length, 3, 'a third notification');
  await waitJob('imobility-cnr', key, 'success');
  assert.deepEqual(await imobGet([['omobility_id', omob]]), [{ id: omob, arr: null, dep: '2026-12-20' }]);
  r = await ctl(id, '--arrival', 'none', '--departure', '2026-12-20');
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /unchanged, no notification/);
  assert.equal(jobsOf('imobility-cnr', key).length, 3, 'no fourth notification');
  // a direct change in the database (another tool) notifies too: the trigger
  sql(`UPDATE smile.mobility SET actual_departure_date = '2026-12-21' WHERE id = ${id}`);
  assert.equal(jobsOf('imobility-cnr', key).length, 4, 'trigger on any update of the dates');
  sql(`UPDATE smile.mobility SET comment = 'seen' WHERE id = ${id}`);
  assert.equal(jobsOf('imobility-cnr', key).length, 4, 'other columns: no notification');
});

itest(() => fx, 'receiving side: ewpctl refusals (outgoing row, unknown, bad dates, departure before arrival) write nothing and notify nobody', async () => {
  const omob = freshId('in');
  const id = incoming(omob, { arr: '2026-09-10' });
  const out = outgoing(freshId('out'));
  const count = () => Number(sql("SELECT count(*) FROM ewp.jobs WHERE api = 'imobility-cnr'"));
  const before = count();
  const cases = [
    [[out, '--arrival', '2026-09-01'], 1, /one of our outgoing mobilities: its actual dates belong to the receiving HEI/],
    [['999999999', '--arrival', '2026-09-01'], 1, /no mobility with id 999999999/],
    [[`${P_IMOB}:nope-${omob}`, '--arrival', '2026-09-01'], 1, /no mobility nope-.* of sending HEI/],
    [[id, '--arrival', '2026-02-30'], 2, /--arrival wants a date YYYY-MM-DD \(a real one\) or none, not "2026-02-30"/],
    [[id, '--departure', '2026-9-01'], 2, /--departure wants a date/],
    [[id, '--arrival', 'tomorrow'], 2, /not "tomorrow"/],
    [[id, '--arrival', '2026-09-01', '--departure', '2026-08-31'], 1, /departure date 2026-08-31 is before the arrival date 2026-09-01/],
    [[id, '--departure', '2026-09-01'], 1, /departure date 2026-09-01 is before the arrival date 2026-09-10 \(kept\)/],
    [[id], 2, /usage: ewpctl mobility dates/],
    [['--arrival', '2026-09-01'], 2, /usage/],
    [['not-an-id', '--arrival', '2026-09-01'], 2, /neither a mobility id/],
  ];
  for (const [args, status, re] of cases) {
    const r = await ctl(...args);
    assert.equal(r.status, status, describeRun(r));
    assert.match(r.stderr, re, describeRun(r));
  }
  assert.deepEqual(dates(id), { arr: '2026-09-10', dep: null }, 'incoming row unchanged');
  assert.deepEqual(dates(out), { arr: null, dep: null }, 'outgoing row unchanged');
  assert.equal(count(), before, 'no CNR queued');
});

itest(() => fx, 'receiving side: get parameters — unknown ids left out, duplicates once, receiving_hei_id ours tolerated; bad ones → 400', async () => {
  const [a, b] = [freshId('in'), freshId('in')];
  incoming(a, { arr: '2026-10-01' });
  assert.equal(jobsOf('imobility-cnr', `${P_IMOB} ${a}`).length, 1, 'an incoming row inserted with dates notifies too');
  incoming(b);
  assert.equal(jobsOf('imobility-cnr', `${P_IMOB} ${b}`).length, 0, 'one without dates does not');
  // another sending HEI's incoming mobility: not for P_IMOB's eyes
  const c = freshId('in');
  seed({ omob: c, sending: PARTNER_HEI, receiving: HEI_ID, outgoing: false, arr: '2026-10-02' });
  // our outgoing mobility: never served by IMobilities
  const o = freshId('out');
  outgoing(o, { arr: '2026-10-03' });
  assert.deepEqual(await imobGet([['omobility_id', b], ['omobility_id', 'unknown-x'], ['omobility_id', a], ['omobility_id', b], ['omobility_id', c], ['omobility_id', o]]),
    [{ id: b, arr: null, dep: null }, { id: a, arr: '2026-10-01', dep: null }], 'request order, known ids of the caller only');
  assert.deepEqual(await imobGet([['receiving_hei_id', HEI_ID], ['omobility_id', a]]), [{ id: a, arr: '2026-10-01', dep: null }]);
  assert.deepEqual(await imobGet([['omobility_id', c]], { key: fx.partnerKey }), [{ id: c, arr: '2026-10-02', dep: null }], 'its own sending HEI sees it');
  const ids = Array.from({ length: MAX_IDS }, (_, i) => ['omobility_id', `many-${i}`]);
  assert.deepEqual(await imobGet([...ids, ['omobility_id', a]].slice(1)), [{ id: a, arr: '2026-10-01', dep: null }], `${MAX_IDS} distinct ids are fine`);
  const bad = [
    [[], /omobility_id is required/],
    [[...ids, ['omobility_id', a]], new RegExp(`more than max-omobility-ids \\(${MAX_IDS}\\)`)],
    [[['receiving_hei_id', PARTNER_HEI], ['omobility_id', a]], /receiving_hei_id "partner\.example\.org" is not covered by this node/],
    [[['receiving_hei_id', HEI_ID], ['receiving_hei_id', HEI_ID], ['omobility_id', a]], /receiving_hei_id given 2 times/],
  ];
  for (const [params, re] of bad) {
    const req = getRequest(params);
    const res = await fx.send(req);
    assert.match(assertErrorResponse(res, 400, req, 'bad get'), re);
  }
  const anon = { method: 'GET', target: `${GET_PATH}?omobility_id=${a}`, headers: [['Host', fx.hostHeader]] };
  assertErrorResponse(await fx.send(anon), 401, anon, 'unsigned get');
});

itest(() => fx, 'sending side: IMobility CNR → 200 at once, refetch job → signed get to the partner → dates stored on our outgoing row, exchange logged with the job id', async () => {
  const omob = freshId('out');
  const id = outgoing(omob);
  partnerDates.set(omob, { arr: '2026-09-02', dep: '2027-02-01' });
  const req = await notify([omob]);
  const js = jobsOf('imobilities', omob);
  assert.equal(js.length, 1, JSON.stringify(js));
  assert.equal(js[0].direction, 'in');
  assert.equal(js[0].kind, 'refetch');
  assert.equal(js[0].hei_id, P_IMOB);
  assert.equal(js[0].payload.cnr_api, 'imobility-cnr');
  assert.equal(js[0].payload.cnr_request_id, req.requestId);
  const j = await waitJob('imobilities', omob, 'success');
  assert.equal(j.last_error, null);
  assert.deepEqual(dates(id), { arr: '2026-09-02', dep: '2027-02-01' });
  const gets = getsFor(omob);
  assert.equal(gets.length, 1, 'one get');
  assert.equal(gets[0].method, 'POST');
  assert.deepEqual([...gets[0].form.keys()], ['omobility_id'], 'IMobilities v2 get takes omobility_id only');
  assert.equal(gets[0].signatureOk, true, 'signed with the node\'s client key');
  const log = await pollUntil(() => {
    const out = sql(`SELECT row_to_json(r) FROM (SELECT direction, api, api_version, status, validation, partner_hei_ids
      FROM ewp.message_log WHERE job_id = ${j.id}) r`);
    return { ok: out !== '', value: out && JSON.parse(out), detail: 'no row yet' };
  }, 5000, 'the message_log row of the get');
  assert.deepEqual(log.value, { direction: 'out', api: 'imobilities', api_version: '2.0.0', status: 200, validation: 'valid', partner_hei_ids: [P_IMOB] });
  // a later change by the partner, with a time zone on the date (valid xs:date)
  partnerDates.set(omob, { arr: '2026-09-03+02:00' });
  await notify([omob]);
  await pollUntil(() => ({ ok: dates(id).arr === '2026-09-03', detail: JSON.stringify(dates(id)) }), 20000, 'the new dates');
  assert.deepEqual(dates(id), { arr: '2026-09-03', dep: null }, 'the partner removed the departure date');
});

itest(() => fx, 'sending side: the partner answers 500, then 200 → stored after the backoff', async () => {
  const omob = freshId('out');
  const id = outgoing(omob);
  partnerDates.set(omob, { arr: '2026-09-04' });
  let calls = 0;
  behaviour.set(omob, (req, ids) => {
    calls++;
    if (calls === 1) double.reply(req, { status: 500, body: errorXml('database hiccup') });
    else double.reply(req, { body: getResponseXml(ids) });
  });
  await notify([omob]);
  const j = await waitJob('imobilities', omob, 'success');
  assert.ok(j.attempts >= 2, `retried: ${JSON.stringify(j)}`);
  assert.equal(calls, 2);
  assert.deepEqual(dates(id), { arr: '2026-09-04', dep: null });
});

itest(() => fx, 'sending side: bad signature, invalid XML, schema error, partner 4xx → nothing written (retried or rejected, reason kept, message log verdict)', async () => {
  const other = makeKey();
  const cases = [
    ['badsig', (req, ids) => double.reply(req, { body: getResponseXml(ids), key: other }), /response signature refused/, 'pending'],
    ['notxml', (req) => double.reply(req, { body: '<imobilities-get-response><oops' }), /invalid XML/, 'pending', 'invalid'],
    ['schema', (req, ids) => double.reply(req, { body: `<?xml version="1.0" encoding="UTF-8"?>\n<imobilities-get-response xmlns="${NS_GET}"><student-mobility><omobility-id>${ids[0]}</omobility-id><actual-arrival-date>soon</actual-arrival-date></student-mobility></imobilities-get-response>` }),
      /does not match the IMobilities v2 get schema/, 'pending', 'invalid'],
    ['gone', (req) => double.reply(req, { status: 400, body: errorXml('no such mobility here') }), /HTTP 400: no such mobility here/, 'rejected'],
  ];
  for (const [tag, fn, re, status, validation] of cases) {
    const omob = freshId(tag);
    const id = outgoing(omob);
    partnerDates.set(omob, { arr: '2026-09-05', dep: '2026-12-05' });
    behaviour.set(omob, fn);
    await notify([omob]);
    const r = await pollUntil(() => {
      const j = jobsOf('imobilities', omob)[0];
      return { ok: j && j.attempts >= 1 && j.last_error !== null && j.status !== 'running', detail: JSON.stringify(j), j };
    }, 15000, `${tag}: a failed attempt`);
    assert.match(r.j.last_error, re, tag);
    if (status === 'rejected') assert.equal(r.j.status, 'rejected', tag);
    else assert.ok(['pending', 'running'].includes(jobsOf('imobilities', omob)[0].status), `${tag}: retried`);
    assert.deepEqual(dates(id), { arr: null, dep: null }, `${tag}: nothing written`);
    if (validation) {
      // the message log is written in batches (every 200 ms): wait for the row
      const v = await pollUntil(() => {
        const out = sql(`SELECT validation FROM ewp.message_log WHERE job_id = ${r.j.id} ORDER BY id LIMIT 1`);
        return { ok: out !== '', value: out, detail: 'no row yet' };
      }, 5000, `${tag}: the message_log row`);
      assert.equal(v.value, validation, `${tag}: message log verdict`);
    }
    behaviour.set(omob, (req) => double.reply(req, { status: 400, body: errorXml('stop') })); // end the retries
  }
}, { timeout: 60000 });

itest(() => fx, 'sending side: other HEIs\' mobilities, ids left out of the answer, disordered dates → nothing written', async () => {
  // our outgoing mobility to another receiving HEI: P_IMOB may not set its dates
  const foreign = freshId('foreign');
  const fid = seed({ omob: foreign, sending: HEI_ID, receiving: PARTNER_HEI, outgoing: true });
  partnerDates.set(foreign, { arr: '2026-09-06' });
  // an incoming mobility of P_IMOB with the same kind of id: never touched by the store
  const inc = freshId('incoming');
  const iid = incoming(inc);
  partnerDates.set(inc, { arr: '2026-09-07' });
  // asked for one id, answered with another of ours as well: only the one asked for is stored
  const asked = freshId('asked');
  const extra = freshId('extra');
  const aid = outgoing(asked);
  const eid = outgoing(extra);
  partnerDates.set(asked, { arr: '2026-09-08' });
  partnerDates.set(extra, { arr: '2026-09-09' });
  behaviour.set(asked, (req) => double.reply(req, { body: getResponseXml([asked, extra]) }));
  // unknown to the partner
  const absent = freshId('absent');
  const abid = outgoing(absent, { arr: '2026-01-01' });
  // departure before arrival
  const dis = freshId('disordered');
  const did = outgoing(dis);
  partnerDates.set(dis, { arr: '2026-09-10', dep: '2026-09-01' });
  await notify([foreign, inc, asked, absent, dis]);
  const jf = await waitJob('imobilities', foreign, 'success');
  assert.match(jf.last_error, /no outgoing mobility of ours received by imob\.partner\.example\.org .*nothing stored/);
  const ji = await waitJob('imobilities', inc, 'success');
  assert.match(ji.last_error, /nothing stored/);
  await waitJob('imobilities', asked, 'success');
  const ja = await waitJob('imobilities', absent, 'success');
  assert.match(ja.last_error, /not in the partner's answer .*nothing stored/);
  const jd = await waitJob('imobilities', dis, 'rejected');
  assert.match(jd.last_error, /actual-departure-date is before actual-arrival-date/);
  assert.deepEqual(dates(fid), { arr: null, dep: null }, 'other receiving HEI: untouched');
  assert.deepEqual(dates(iid), { arr: null, dep: null }, 'incoming row: untouched');
  assert.deepEqual(dates(aid), { arr: '2026-09-08', dep: null }, 'the id asked for: stored');
  assert.deepEqual(dates(eid), { arr: null, dep: null }, 'an id not asked for: untouched');
  assert.deepEqual(dates(abid), { arr: '2026-01-01', dep: null }, 'left out of the answer: kept as it was');
  assert.deepEqual(dates(did), { arr: null, dep: null }, 'disordered: nothing written');
}, { timeout: 60000 });

itest(() => fx, 'sending side: malformed notifications → 4xx, nothing queued', async () => {
  const before = Number(sql("SELECT count(*) FROM ewp.jobs WHERE api = 'imobilities'"));
  let req = cnrRequest([]);
  assert.match(assertErrorResponse(await fx.send(req), 400, req, 'no omobility_id'), /omobility_id is required/);
  req = cnrRequest([['omobility_id', 'a b']]);
  assert.match(assertErrorResponse(await fx.send(req), 400, req, 'bad id'), /not an EWP identifier/);
  req = fx.signed({ key: doubleKey, method: 'GET', path: `${CNR_PATH}?omobility_id=x` });
  const res = await fx.send(req);
  assertErrorResponse(res, 405, req, 'GET');
  assert.equal(res.header('Allow'), 'POST');
  const body = 'omobility_id=x';
  const anon = { method: 'POST', target: CNR_PATH, headers: [['Host', fx.hostHeader],
    ['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', String(body.length)]], body: Buffer.from(body) };
  assertErrorResponse(await fx.send(anon), 401, anon, 'unsigned');
  assert.equal(Number(sql("SELECT count(*) FROM ewp.jobs WHERE api = 'imobilities'")), before);
});

itest(() => fx, 'intake schema: every sample the official v2 schema accepts passes ewp-schemas/intake, every one it refuses is refused', async () => {
  const doc = (inner, root = 'imobilities-get-response', ns = NS_GET) =>
    Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${ns}">${inner}</${root}>\n`);
  const sm = (id, a, d) => `<student-mobility><omobility-id>${id}</omobility-id>${a === undefined ? '' : `<actual-arrival-date>${a}</actual-arrival-date>`}${d === undefined ? '' : `<actual-departure-date>${d}</actual-departure-date>`}</student-mobility>`;
  const accepted = [
    doc(''),
    doc(sm('a')),
    doc(sm('a', '2026-09-01') + sm('b', undefined, '2027-01-31') + sm('c', '2026-09-01', '2026-08-01')),
    doc(sm('tz', '2026-09-01Z', '2027-01-31+02:00')),
    doc(sm('x'.repeat(64), '2024-02-29')),
    doc(sm('~!#$%&amp;', '9999-12-31')),
    Buffer.from(`<im:imobilities-get-response xmlns:im="${NS_GET}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="${NS_GET} x.xsd"><im:student-mobility><im:omobility-id>p</im:omobility-id></im:student-mobility></im:imobilities-get-response>`),
  ];
  const refused = [
    doc(sm('a', '2026-02-30')),
    doc(sm('a', '2025-02-29')),
    doc(sm('a', 'soon')),
    doc(sm('a', '2026-09-01T10:00:00')),
    doc(sm('x'.repeat(65))),
    doc(sm('a b')),
    doc(sm('')),
    doc('<student-mobility><actual-arrival-date>2026-09-01</actual-arrival-date></student-mobility>'),
    doc(`<student-mobility><omobility-id>a</omobility-id><actual-departure-date>2026-09-01</actual-departure-date><actual-arrival-date>2026-09-01</actual-arrival-date></student-mobility>`),
    doc(`<student-mobility><omobility-id>a</omobility-id><status>verified</status></student-mobility>`),
    doc(sm('a'), 'imobilities-get-response', `${GH}/ewp-specs-api-imobilities/blob/stable-v1/endpoints/get-response.xsd`),
  ];
  const intake = path.join(PROJECT_SCHEMAS, 'intake', 'imobilities-get-response.xsd');
  for (const d of accepted) {
    assertValid(d, officialGet(), 'sample (official)');
    assertValid(d, intake, 'sample (intake, must accept what the official schema accepts)');
  }
  for (const d of refused) {
    assert.equal(xmllintValidate(d, officialGet()).ok, false, `the official schema refuses: ${d}`);
    assert.equal(xmllintValidate(d, intake).ok, false, `the intake schema refuses as well: ${d}`);
  }
});

itest(() => fx, 'sending side: a notifier whose HEI publishes no IMobilities API → job ends no-cnr-api, nothing called', async () => {
  const omob = freshId('noapi');
  const id = seed({ omob, sending: HEI_ID, receiving: PARTNER_HEI, outgoing: true });
  const req = cnrRequest([['omobility_id', omob]], { key: fx.partnerKey });
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'notification from partner.example.org');
  const j = await waitJob('imobilities', omob, 'no-cnr-api');
  assert.equal(j.hei_id, PARTNER_HEI);
  assert.match(j.last_error, /imobilities/);
  assert.equal(getsFor(omob).length, 0, 'no get sent anywhere');
  assert.deepEqual(dates(id), { arr: null, dep: null });
});
