// The sending side of nominations: `ewpctl mobility nominate|cancel` and
// Outgoing Mobilities v3 (get, index, update) served by a real ewpd from a
// real PostgreSQL, called with real signatures.
//
// The receiving HEI (R_HEI) is played by a test double of another vendor's
// node: its host in the catalogue has a client key (held by this test, to
// sign get/index/update calls), the double's server key, and an OMobility
// CNR v2 endpoint served by the double, so the CNRs ewpd queues are really
// delivered and counted. A third HEI (the fixture's D hosts) and the
// fixture's partner.example.org must see nothing of R_HEI's mobilities.
// Every document is checked against the official OMobilities v3 XSDs
// (../shared/ewp-specs, ewp-registry-service copy) and against ours.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';

import { buildCatalogue } from './lib/catalogue.mjs';
import { Ewpd, HEI_ID, PARTNER_HEI, describeRun, itest, runEwpctl } from './lib/daemon.mjs';
import { assertErrorResponse, assertStatus, assertXmlContentType, exchange, fetchMetrics, metricValue } from './lib/ewp.mjs';
import { NS, PROJECT_SCHEMAS, projectSchema, specPath } from './lib/env.mjs';
import { PartnerDouble } from './lib/partner-double.mjs';
import { pollUntil } from './lib/poll.mjs';
import { makeKey } from './lib/sign.mjs';
import { assertValid, parseXml, xmlEscape } from './lib/xml.mjs';

const GH = 'https://github.com/erasmus-without-paper';
const V3 = `${GH}/ewp-specs-api-omobilities/blob/stable-v3`;
const NS_GET = `${V3}/endpoints/get-response.xsd`;
const NS_INDEX = `${V3}/endpoints/index-response.xsd`;
const NS_UREQ = `${V3}/endpoints/update-request.xsd`;
const NS_URESP = `${V3}/endpoints/update-response.xsd`;
const NS_ENTRY = `${V3}/manifest-entry.xsd`;
const NS_CNR_ENTRY = `${GH}/ewp-specs-api-omobility-cnr/blob/stable-v2/manifest-entry.xsd`;
const OFFICIAL = ['ewp-registry-service', 'src', 'main', 'resources', 'schemas', 'ewp-specs-api-omobilities-v3.0.0'];
const official = (...p) => specPath(...OFFICIAL, ...p);

const R_HEI = 'recv.partner.example.org'; // the receiving HEI, served by the double
const PATHS = { get: '/ewp/omobilities/v3/get', index: '/ewp/omobilities/v3/index', update: '/ewp/omobilities/v3/update' };
const MAX_IDS = 100;
const JOBS_CONF = { retry_min: '1s', retry_max: '2s', lease: '8s', timeout: '3s', concurrency: '8' };
const cnrOk = '<?xml version="1.0" encoding="UTF-8"?>\n<omobility-cnr-response xmlns="https://github.com/erasmus-without-paper/ewp-specs-api-omobility-cnr/tree/stable-v2"/>\n';

let fx;
let double;
let recvKey; // the receiving HEI's client key

// R_HEI's host: the test's client key, the double's server key and its CNR endpoint.
function catalogueXml() {
  const xml = buildCatalogue(fx.catalogueSpec());
  const echo = `${double.baseUrl}/ewp/echo`;
  const anchor = `<e2:url>${xmlEscape(echo)}</e2:url>\n      </e2:echo>\n`;
  if (!xml.includes(anchor)) throw new Error('no echo entry for the double in the catalogue');
  return xml.replace(anchor, `${anchor}      <c2:omobility-cnr xmlns:c2="${NS_CNR_ENTRY}" version="2.0.0">
        <c2:http-security>
          <sec:client-auth-methods><sec-A2:httpsig/></sec:client-auth-methods>
          <sec:server-auth-methods><sec-B2:httpsig/></sec:server-auth-methods>
        </c2:http-security>
        <c2:url>${xmlEscape(double.baseUrl)}/ewp/cnr/omobility</c2:url>
        <c2:max-omobility-ids>10</c2:max-omobility-ids>
      </c2:omobility-cnr>\n`);
}

before(async () => {
  fx = await Ewpd.create('omobilities', {
    pg: true, tls: true, start: false,
    conf: { jobs: JOBS_CONF, ewp: { schema_dir: PROJECT_SCHEMAS } },
  });
  double = await PartnerDouble.start({ dir: path.join(fx.dir, 'double'), clientKey: fx.clientKey });
  double.handle((req) => double.reply(req, { body: cnrOk }));
  recvKey = makeKey();
  fx.extraHosts.push({ adminEmail: `admin@${R_HEI}`, heis: [R_HEI], clientKeys: [recvKey],
    serverKeys: [double.serverKey], echoUrl: `${double.baseUrl}/ewp/echo` });
  fx.extraInstitutions.push({ id: R_HEI, names: [['en', 'Receiving University']] });
  fs.writeFileSync(fx.cataloguePath, catalogueXml());
  fx.writeConfig({ jobs: { ...JOBS_CONF, ca_file: double.tlsFiles.cert } });
  fx.pg.psql(`INSERT INTO smile.etablissement (schac_id, names, is_local)
    VALUES ('${HEI_ID}', '[{"name":"SMILE Test University"}]', true)`);
  await fx.start();
});

after(async () => {
  await double?.close();
  await fx?.cleanup();
});

const sql = (q) => fx.pg.psql(q);
const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
let seq = 0;
const freshId = (tag) => `${tag}-${process.pid}-${++seq}`;

// A student-mobility element for ewpctl; o overrides any field (null: left out).
function nominationXml(id, o = {}) {
  const v = {
    given: [['Jeanne & Marie', null], ['Жанна', 'ru-Cyrl']], family: 'Dupont',
    globalId: `urn:schac:personalUniqueCode:int:esi:${HEI_ID}:${id}`, birth: '2003-04-01', nationality: 'FR',
    gender: '2', email: 'jeanne.dupont@smile.test', sendingHei: HEI_ID, sendingOunit: 'ufr-sciences',
    receivingHei: R_HEI, receivingOunit: null, sendingIia: null, receivingIia: null, term: '2026/2027-1/2',
    year: '2026/2027', attributes: 'long-term', agreementIsced: '0613', eqf: '6', nomineeIsced: '0613',
    comment: null, proposalId: null, status: null, ...o,
  };
  const el = (name, val) => (val === null || val === undefined ? '' : `<${name}>${xmlEscape(val)}</${name}>`);
  return `<?xml version="1.0" encoding="UTF-8"?>
<student-mobility xmlns="${NS_GET}">
  <omobility-id>${xmlEscape(id)}</omobility-id>
  <student>
    ${v.given.map(([n, l]) => `<given-names${l ? ` xml:lang="${l}"` : ''}>${xmlEscape(n)}</given-names>`).join('\n    ')}
    <family-name>${xmlEscape(v.family)}</family-name>
    ${el('global-id', v.globalId)}
    ${el('birth-date', v.birth)}
    ${el('nationality', v.nationality)}
    ${el('gender', v.gender)}
    ${el('email', v.email)}
  </student>
  <nomination${v.proposalId ? ` proposal-id="${xmlEscape(v.proposalId)}"` : ''}>
    <sending-hei>${el('hei-id', v.sendingHei)}${el('ounit-id', v.sendingOunit)}${el('iia-id', v.sendingIia)}</sending-hei>
    <receiving-hei>${el('hei-id', v.receivingHei)}${el('ounit-id', v.receivingOunit)}${el('iia-id', v.receivingIia)}</receiving-hei>
    ${v.term ? el('sending-academic-term-ewp-id', v.term) : '<non-standard-mobility-period/>'}
    ${el('receiving-academic-year-id', v.year)}
    <activity-type>student-studies</activity-type>
    ${el('activity-attributes', v.attributes)}
    ${el('agreement-isced-f-code', v.agreementIsced)}
    ${el('eqf-level-studied-at-departure', v.eqf)}
    ${el('nominee-isced-f-code', v.nomineeIsced)}
    ${el('comment', v.comment)}
  </nomination>
  ${el('status', v.status)}
</student-mobility>
`;
}

function nominateRaw(text, extra = []) {
  const f = path.join(fx.dir, `nomination-${++seq}.xml`);
  fs.writeFileSync(f, text);
  return runEwpctl(['-c', fx.confPath, 'mobility', 'nominate', f, ...extra]);
}

// Nominates and expects success; returns { action, proposal } from ewpctl's line.
function nominate(id, o = {}) {
  const r = nominateRaw(nominationXml(id, o));
  assert.equal(r.status, 0, `nominate ${id} should succeed\n${describeRun(r)}`);
  const m = /^(created|updated|unchanged) (\S+): proposal ([0-9a-f]{64}), status (\w+)/.exec(r.stdout);
  assert.ok(m, `ewpctl's line names action, id, proposal and status\n${describeRun(r)}`);
  assert.equal(m[2], id);
  return { action: m[1], proposal: m[3], status: m[4], run: r };
}

function row(id) {
  const out = sql(`SELECT row_to_json(m) FROM (SELECT status, status_comment, proposal_id, given_names, eqf_level,
      modified_at, receiving_hei_id, global_id, document IS NOT NULL AS has_document
    FROM smile.mobility WHERE is_outgoing AND omobility_id = ${q(id)}) m`);
  return out ? JSON.parse(out) : null;
}

// The OMobility CNR jobs queued for id (to its receiving HEI), oldest first.
function cnrJobs(id) {
  return JSON.parse(sql(`SELECT coalesce(json_agg(j ORDER BY j.id), '[]') FROM (
    SELECT id, hei_id, api, kind, direction, status, payload FROM ewp.jobs
     WHERE api = 'omobility-cnr' AND dedupe_key = ${q(`${HEI_ID} ${id}`)}) j`));
}

// CNRs the double received about id.
const delivered = (id) => double.requests.filter((r) => r.form.getAll('omobility_id').includes(id));

async function waitDelivered(id, n) {
  await pollUntil(() => ({ ok: delivered(id).length >= n, detail: `${delivered(id).length} delivered` }), 10000, `${n} OMobility CNR(s) about ${id} delivered to the double`);
  const last = delivered(id).at(-1);
  assert.equal(last.signatureOk, true, 'the CNR is signed with our client key');
  assert.equal(last.form.get('sending_hei_id'), HEI_ID);
}

function form(params) {
  return params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

function call(endpoint, params, { key = recvKey, method = 'POST' } = {}) {
  const body = form(params);
  if (method === 'GET') return fx.signed({ key, path: body ? `${PATHS[endpoint]}?${body}` : PATHS[endpoint] });
  return fx.signed({ key, method: 'POST', path: PATHS[endpoint], body, contentType: 'application/x-www-form-urlencoded' });
}

// get: 200, valid against the official v3 and our schema; returns the student-mobility elements.
async function get(ids, o = {}) {
  const req = call('get', [...(o.sendingHei ? [['sending_hei_id', o.sendingHei]] : []), ...ids.map((i) => ['omobility_id', i])], o);
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'omobilities get');
  assertXmlContentType(res, req);
  assertValid(res.body, official('endpoints', 'get-response.xsd'), 'omobilities-get-response (official v3)');
  assertValid(res.body, projectSchema('omobilities-get-response.xsd'), 'omobilities-get-response (ewp-schemas)');
  const root = parseXml(res.body);
  assert.equal(root.ns, NS_GET);
  assert.equal(root.local, 'omobilities-get-response');
  return root.elements(NS_GET, 'student-mobility');
}

async function index(params, o = {}) {
  const req = call('index', params, o);
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'omobilities index');
  assertValid(res.body, official('endpoints', 'index-response.xsd'), 'omobilities-index-response (official v3)');
  assertValid(res.body, projectSchema('omobilities-index-response.xsd'), 'omobilities-index-response (ewp-schemas)');
  const root = parseXml(res.body);
  assert.equal(root.ns, NS_INDEX);
  return root.elements(NS_INDEX, 'omobility-id').map((e) => e.text);
}

// A crafted update request, checked against the official update-request.xsd first.
function updateXml(kind, id, proposal, comment) {
  const doc = `<?xml version="1.0" encoding="UTF-8"?>
<omobilities-update-request xmlns="${NS_UREQ}">
  <${kind}-proposal-v1>
    <omobility-id>${xmlEscape(id)}</omobility-id>
    <proposal-id>${xmlEscape(proposal)}</proposal-id>${comment === undefined ? '' : `
    <comment>${xmlEscape(comment)}</comment>`}
  </${kind}-proposal-v1>
</omobilities-update-request>
`;
  return doc;
}

function updateReq(body, { key = recvKey, contentType = 'text/xml; charset=utf-8' } = {}) {
  return fx.signed({ key, method: 'POST', path: PATHS.update, body, contentType });
}

async function update(body, o = {}) {
  assertValid(Buffer.from(body), official('endpoints', 'update-request.xsd'), 'crafted update request (official v3)');
  const req = updateReq(body, o);
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'omobilities update');
  assertXmlContentType(res, req);
  assertValid(res.body, official('endpoints', 'update-response.xsd'), 'omobilities-update-response (official v3)');
  assertValid(res.body, projectSchema('omobilities-update-response.xsd'), 'omobilities-update-response (ewp-schemas)');
  const root = parseXml(res.body);
  assert.equal(root.ns, NS_URESP);
  assert.equal(root.local, 'omobilities-update-response');
  return root;
}

// An error-response with a user-message (409s).
function userMessage(res) {
  const um = parseXml(res.body).elements(NS.ewp, 'user-message');
  assert.equal(um.length, 1, `one user-message${exchange(null, res)}`);
  assert.ok(um[0].text.trim().length > 10);
  return um[0].text;
}

const text = (el, ...names) => names.reduce((e, n) => e?.element(NS_GET, n), el)?.text;

// ---------------------------------------------------------------------------

itest(() => fx, 'manifest: one omobilities 3.0.0 entry with get-url, index-url, update-url, max-omobility-ids, valid against the official manifest-entry.xsd and ours', async () => {
  const req = { method: 'GET', target: fx.manifestPath, headers: [['Host', fx.hostHeader]] };
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'manifest');
  assertValid(res.body, specPath('ewp-specs-api-discovery', 'manifest.xsd'), 'manifest (official)');
  assertValid(res.body, projectSchema('manifest.xsd'), 'manifest (ewp-schemas)');
  const apis = parseXml(res.body).element(NS.manifest, 'host').element(NS.registry, 'apis-implemented');
  const entries = apis.elements(NS_ENTRY, 'omobilities');
  assert.equal(entries.length, 1, `exactly one omobilities entry${exchange(req, res)}`);
  const e = entries[0];
  assert.equal(e.attr('version'), '3.0.0');
  for (const [k, p] of Object.entries(PATHS)) assert.equal(e.element(NS_ENTRY, `${k}-url`).text, `${fx.publicUrl}${p}`);
  assert.equal(e.element(NS_ENTRY, 'max-omobility-ids').text, String(MAX_IDS));
  assert.ok(e.element(NS_ENTRY, 'http-security'));
  const t = res.body.toString('utf8');
  const open = `<omobilities xmlns="${NS_ENTRY}"`;
  const from = t.indexOf(open);
  const to = t.indexOf('</omobilities>', from) + '</omobilities>'.length;
  const doc = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${open} xmlns:sec="${NS.sec}"${t.slice(from + open.length, to)}`);
  assertValid(doc, official('manifest-entry.xsd'), 'omobilities entry (official v3 manifest-entry.xsd)');
  assertValid(doc, projectSchema('omobilities-entry.xsd'), 'omobilities entry (ewp-schemas/omobilities-entry.xsd)');
});

itest(() => fx, 'nominate → pending row with a SHA-256 proposal id, document kept, one CNR queued and delivered to the receiving HEI', async () => {
  const id = freshId('new');
  const n = nominate(id);
  assert.equal(n.action, 'created');
  assert.equal(n.status, 'pending');
  const r = row(id);
  assert.equal(r.status, 'pending');
  assert.equal(r.proposal_id, n.proposal);
  assert.equal(r.given_names, 'Jeanne & Marie');
  assert.equal(r.receiving_hei_id, R_HEI);
  assert.equal(r.has_document, true);
  const js = cnrJobs(id);
  assert.equal(js.length, 1, `one CNR job: ${JSON.stringify(js)}`);
  assert.equal(js[0].hei_id, R_HEI);
  assert.equal(js[0].direction, 'out');
  assert.equal(js[0].kind, 'cnr');
  assert.deepEqual(js[0].payload, { sending_hei_id: HEI_ID, omobility_id: [id] });
  await waitDelivered(id, 1);
  await pollUntil(() => ({ ok: cnrJobs(id)[0].status === 'success', detail: JSON.stringify(cnrJobs(id)) }), 10000, 'the CNR job ends in success');
});

itest(() => fx, 'get by the receiving HEI (GET and POST): the nomination as given, valid against the official v3 XSD; sending_hei_id optional but must be ours', async () => {
  const id = freshId('get');
  const { proposal } = nominate(id, { receivingOunit: 'ou-in', sendingIia: 'iia-s-1', receivingIia: 'iia-r-1', comment: 'Above the IIA limit: agreed by <X> & Y.' });
  for (const method of ['GET', 'POST']) {
    const ms = await get([id], { method });
    assert.equal(ms.length, 1, `${method}: one mobility`);
    const m = ms[0];
    assert.equal(text(m, 'omobility-id'), id);
    const given = m.element(NS_GET, 'student').elements(NS_GET, 'given-names');
    assert.deepEqual(given.map((g) => [g.text, g.attr('lang', NS.xml) ?? null]), [['Jeanne & Marie', null], ['Жанна', 'ru-Cyrl']]);
    assert.equal(text(m, 'student', 'family-name'), 'Dupont');
    assert.equal(text(m, 'student', 'global-id'), `urn:schac:personalUniqueCode:int:esi:${HEI_ID}:${id}`);
    assert.equal(text(m, 'student', 'birth-date'), '2003-04-01');
    assert.equal(text(m, 'student', 'nationality'), 'FR');
    assert.equal(text(m, 'student', 'gender'), '2');
    assert.equal(text(m, 'student', 'email'), 'jeanne.dupont@smile.test');
    const nom = m.element(NS_GET, 'nomination');
    assert.equal(nom.attr('proposal-id'), proposal);
    assert.equal(text(nom, 'sending-hei', 'hei-id'), HEI_ID);
    assert.equal(text(nom, 'sending-hei', 'ounit-id'), 'ufr-sciences');
    assert.equal(text(nom, 'sending-hei', 'iia-id'), 'iia-s-1');
    assert.equal(text(nom, 'receiving-hei', 'hei-id'), R_HEI);
    assert.equal(text(nom, 'receiving-hei', 'ounit-id'), 'ou-in');
    assert.equal(text(nom, 'receiving-hei', 'iia-id'), 'iia-r-1');
    assert.equal(text(nom, 'sending-academic-term-ewp-id'), '2026/2027-1/2');
    assert.equal(text(nom, 'receiving-academic-year-id'), '2026/2027');
    assert.equal(text(nom, 'activity-type'), 'student-studies');
    assert.equal(text(nom, 'activity-attributes'), 'long-term');
    assert.equal(text(nom, 'agreement-isced-f-code'), '0613');
    assert.equal(text(nom, 'eqf-level-studied-at-departure'), '6');
    assert.equal(text(nom, 'nominee-isced-f-code'), '0613');
    assert.equal(text(nom, 'comment'), 'Above the IIA limit: agreed by <X> & Y.');
    assert.equal(text(m, 'status'), 'pending');
  }
  assert.equal((await get([id], { sendingHei: HEI_ID })).length, 1, 'sending_hei_id = ours is accepted');
  const req = call('get', [['sending_hei_id', PARTNER_HEI], ['omobility_id', id]]);
  const res = await fx.send(req);
  const msg = assertErrorResponse(res, 400, req, 'foreign sending_hei_id');
  assert.match(msg, new RegExp(`sending_hei_id "${PARTNER_HEI}" is not served here`));
});

itest(() => fx, 'get: several ids with duplicates and unknown ones → known ones once, in request order; a non-standard period is served as such', async () => {
  const [a, b] = [freshId('many'), freshId('many')];
  nominate(a);
  nominate(b, { term: null });
  const ms = await get([b, 'never-heard-of', a, b, a]);
  assert.deepEqual(ms.map((m) => text(m, 'omobility-id')), [b, a]);
  assert.ok(ms[0].element(NS_GET, 'nomination').element(NS_GET, 'non-standard-mobility-period'), 'non-standard-mobility-period');
  assert.equal(text(ms[0], 'nomination', 'sending-academic-term-ewp-id'), undefined);
  assert.deepEqual(await get(['never-heard-of']), [], 'only unknown ids → empty response');
});

itest(() => fx, 'permissions: a third HEI and another partner see nothing of R_HEI\'s mobilities (get empty, index without them); R_HEI and the sending HEI (our own key) see them', async () => {
  const id = freshId('perm');
  nominate(id);
  for (const [who, key] of [['third HEI (d1/d2)', fx.dKey], ['partner.example.org', fx.partnerKey]]) {
    assert.deepEqual(await get([id], { key }), [], `${who}: get returns nothing`);
    const ids = await index([], { key });
    assert.ok(!ids.includes(id), `${who}: index must not list ${id}: ${ids}`);
    assert.equal(ids.filter((i) => i.startsWith('perm-') || i.startsWith('new-') || i.startsWith('get-')).length, 0,
      `${who}: none of R_HEI's mobilities listed: ${ids}`);
  }
  assert.equal((await get([id])).length, 1);
  assert.ok((await index([])).includes(id));
  // The sending HEI (ourselves: our own client key) SHOULD see it too.
  const own = { ...fx.clientKey, privateKey: crypto.createPrivateKey(fs.readFileSync(fx.clientKey.pemPath)) };
  assert.equal((await get([id], { key: own })).length, 1, 'the sending HEI\'s key sees its mobility');
  assert.ok((await index([], { key: own })).includes(id));
});

itest(() => fx, 'index: the caller\'s mobilities, filtered by receiving_hei_id, receiving_academic_year_id and modified_since; bad values → 400', async () => {
  const [a, b] = [freshId('idx'), freshId('idx')];
  nominate(a);
  nominate(b, { year: '2027/2028', term: '2027/2028-1/2' });
  const all = await index([]);
  assert.ok(all.includes(a) && all.includes(b), `both listed: ${all}`);
  assert.equal(new Set(all).size, all.length, 'each id once');
  const visible = await get(all.slice(0, MAX_IDS));
  assert.equal(visible.length, Math.min(all.length, MAX_IDS), 'index lists exactly what get returns to the same caller');
  assert.ok((await index([['receiving_hei_id', R_HEI]])).includes(a));
  assert.deepEqual(await index([['receiving_hei_id', 'other.example.org']]), []);
  assert.ok((await index([['receiving_hei_id', 'other.example.org'], ['receiving_hei_id', R_HEI]])).includes(a), 'values OR-ed');
  const y26 = await index([['receiving_academic_year_id', '2026/2027']]);
  assert.ok(y26.includes(a) && !y26.includes(b), `year filter: ${y26}`);
  const y27 = await index([['receiving_academic_year_id', '2027/2028'], ['receiving_hei_id', R_HEI]], { method: 'GET' });
  assert.ok(y27.includes(b) && !y27.includes(a), `year + hei filters AND-ed: ${y27}`);
  assert.ok((await index([['modified_since', '2004-02-12T15:19:21+01:00']])).includes(a), 'modified_since far in the past');
  assert.deepEqual(await index([['modified_since', '2099-01-01T00:00:00Z']]), [], 'modified_since in the future → empty');
  const since = sql(`SELECT to_char(modified_at AT TIME ZONE 'UTC' - interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') FROM smile.mobility WHERE omobility_id = ${q(b)}`);
  assert.ok((await index([['modified_since', since]])).includes(b));
  assert.equal((await index([['sending_hei_id', HEI_ID]])).length, all.length, 'sending_hei_id = ours accepted');
  const bad = [
    [[['receiving_academic_year_id', '2026-2027']], /receiving_academic_year_id "2026-2027" is not an academic year id/],
    [[['receiving_academic_year_id', '2026/2027'], ['receiving_academic_year_id', '2027/2028']], /at most once \(got 2\)/],
    [[['modified_since', '2024-01-01']], /modified_since "2024-01-01" is not an xs:dateTime with a time/],
    [[['modified_since', 'yesterday']], /modified_since "yesterday"/],
    [[['modified_since', '2024-01-01T00:00:00Z'], ['modified_since', '2024-01-02T00:00:00Z']], /modified_since may be given at most once/],
    [[['sending_hei_id', PARTNER_HEI]], /is not served here/],
  ];
  for (const [ps, re] of bad) {
    const req = call('index', ps);
    const res = await fx.send(req);
    assert.match(assertErrorResponse(res, 400, req, `index ${form(ps)}`), re);
  }
});

itest(() => fx, 'get: missing or too many omobility_id → 400 with a precise message; malformed ids are ignored (200); exactly max-omobility-ids distinct ids (duplicates beyond) → 200', async () => {
  const cases = [
    [[], /omobility_id is required/],
    [Array.from({ length: MAX_IDS + 1 }, (_, i) => ['omobility_id', `id-${i}`]), new RegExp(`more than max-omobility-ids \\(${MAX_IDS}\\)`)],
    [[['sending_hei_id', HEI_ID], ['sending_hei_id', HEI_ID], ['omobility_id', 'a']], /sending_hei_id may be given at most once/],
  ];
  for (const [ps, re] of cases) {
    const req = call('get', ps);
    const res = await fx.send(req);
    assert.match(assertErrorResponse(res, 400, req, `get ${ps.length} params`), re);
  }
  // "invalid/unknown ids MUST be ignored": a malformed id is answered as an unknown one
  const known = freshId('malformed-neighbour');
  nominate(known);
  assert.deepEqual(await get(['has space']), [], 'a malformed id alone: 200, empty');
  assert.deepEqual((await get(['has space', known, 'x'.repeat(65), 'tab\there'])).map((m) => text(m, 'omobility-id')),
    [known], 'malformed ids next to a known one: the known one only');
  const ids = [...Array.from({ length: MAX_IDS }, (_, i) => `id-${i}`), 'id-0', 'id-1'];
  assert.deepEqual(await get(ids), []);
  const req = fx.signed({ key: recvKey, method: 'PUT', path: PATHS.get });
  assertErrorResponse(await fx.send(req), 405, req, 'PUT get');
});

itest(() => fx, 'nominate the same file again → unchanged: same proposal id, no new CNR, modified_at kept', async () => {
  const id = freshId('same');
  const first = nominate(id);
  await waitDelivered(id, 1);
  const before = row(id);
  const again = nominate(id);
  assert.equal(again.action, 'unchanged');
  assert.equal(again.proposal, first.proposal);
  assert.equal(cnrJobs(id).length, 1, 'no new CNR job');
  assert.equal(row(id).modified_at, before.modified_at);
  // The proposal-id and status a file may carry are ignored.
  const withIds = nominate(id, { proposalId: 'mine', status: 'approved' });
  assert.equal(withIds.action, 'unchanged');
  assert.equal(row(id).status, 'pending');
  assert.equal(row(id).proposal_id, first.proposal);
});

itest(() => fx, 'changed nomination → new proposal id, back to pending after an approval, new CNR; a student-only change (name) → same proposal id, decision kept, CNR', async () => {
  const id = freshId('chg');
  const first = nominate(id);
  await update(updateXml('approve', id, first.proposal));
  assert.equal(row(id).status, 'approved');
  const jobsBefore = cnrJobs(id).length;
  const changed = nominate(id, { eqf: '7' });
  assert.equal(changed.action, 'updated');
  assert.notEqual(changed.proposal, first.proposal, 'new content → new proposal id');
  assert.equal(changed.status, 'pending', 'the receiving HEI decided on other content: pending again');
  assert.equal(row(id).eqf_level, 7);
  assert.equal(cnrJobs(id).length, jobsBefore + 1, 'one more CNR job');
  const [m] = await get([id]);
  assert.equal(m.element(NS_GET, 'nomination').attr('proposal-id'), changed.proposal);
  assert.equal(text(m, 'status'), 'pending');
  // Back to the first content: the same content gives the same id again.
  assert.equal(nominate(id).proposal, first.proposal);
  // Approve, then change only the student's name.
  await update(updateXml('approve', id, first.proposal));
  const n = cnrJobs(id).length;
  const renamed = nominate(id, { given: [['Jeanne', null]] });
  assert.equal(renamed.action, 'updated');
  assert.equal(renamed.proposal, first.proposal, 'the student is not the nomination: same proposal id');
  assert.equal(renamed.status, 'approved', 'the decision stays');
  assert.equal(cnrJobs(id).length, n + 1, 'the receiving HEI is told (what it sees changed)');
  const [m2] = await get([id]);
  assert.deepEqual(m2.element(NS_GET, 'student').elements(NS_GET, 'given-names').map((g) => g.text), ['Jeanne']);
});

itest(() => fx, 'nominate: immutable student and receiving HEI refused for an existing id, nothing written', async () => {
  const id = freshId('imm');
  const { proposal } = nominate(id);
  const jobs = cnrJobs(id).length;
  const cases = [
    [{ globalId: 'urn:schac:personalUniqueCode:int:esi:smile.test:someone-else' }, /already nominates student .* never change/],
    [{ receivingHei: PARTNER_HEI }, new RegExp(`already nominates student .* to ${R_HEI.replace(/\./g, '\\.')}.*never change`)],
  ];
  for (const [o, re] of cases) {
    const r = nominateRaw(nominationXml(id, { ...o, eqf: '8' }));
    assert.equal(r.status, 1, describeRun(r));
    assert.match(r.stderr, re, describeRun(r));
    assert.match(r.stderr, /new omobility-id/);
  }
  const after = row(id);
  assert.equal(after.proposal_id, proposal);
  assert.equal(after.eqf_level, 6);
  assert.equal(after.receiving_hei_id, R_HEI);
  assert.equal(cnrJobs(id).length, jobs, 'no CNR for a refused change');
  // A direct UPDATE is refused by the trigger as well.
  assert.throws(() => sql(`UPDATE smile.mobility SET global_id = 'x' WHERE omobility_id = ${q(id)}`), /never change/);
});

itest(() => fx, 'nominate: not ours, invalid or malformed files refused with readable errors, nothing written', async () => {
  const id = freshId('bad');
  const cases = [
    [nominationXml(id, { sendingHei: PARTNER_HEI, receivingHei: R_HEI }), new RegExp(`sending-hei/hei-id is "${PARTNER_HEI}", but this node serves "${HEI_ID}"`)],
    [nominationXml(id, { receivingHei: HEI_ID }), /receiving-hei\/hei-id is our own HEI/],
    [nominationXml(id, { email: null }), /not a student-mobility element[\s\S]*email/],
    [nominationXml(id, { eqf: '9' }), /not a student-mobility element[\s\S]*eqf-level-studied-at-departure/],
    [nominationXml(id, { year: '2026' }), /receiving-academic-year-id/],
    [nominationXml(id).replace('</student-mobility>', ''), /is not well-formed XML/],
    [nominationXml(id).replace(NS_GET, 'urn:other'), /not a student-mobility element/],
  ];
  for (const [xml, re] of cases) {
    const r = nominateRaw(xml);
    assert.equal(r.status, 1, describeRun(r));
    assert.match(r.stderr, re, describeRun(r));
  }
  assert.equal(row(id), null, 'no row');
  assert.equal(cnrJobs(id).length, 0, 'no CNR');
  const r = runEwpctl(['-c', fx.confPath, 'mobility', 'nominate', path.join(fx.dir, 'missing.xml')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot open .*missing\.xml/);
  const u = runEwpctl(['-c', fx.confPath, 'mobility', 'nominate']);
  assert.equal(u.status, 2);
  assert.match(u.stderr, /usage: ewpctl mobility nominate/);
});

itest(() => fx, 'update approve with the current proposal id → 200 with a success message, approved, CNR queued and delivered; the same again → 200, no new CNR', async () => {
  const id = freshId('ok');
  const { proposal } = nominate(id);
  await waitDelivered(id, 1);
  const root = await update(updateXml('approve', id, proposal));
  assert.match(root.element(NS.ewp, 'success-user-message').text, /recorded/);
  assert.equal(row(id).status, 'approved');
  const [m] = await get([id]);
  assert.equal(text(m, 'status'), 'approved');
  assert.equal(cnrJobs(id).length, 2, 'a CNR for the change the partner\'s own update made');
  await waitDelivered(id, 2);
  await update(updateXml('approve', id, proposal));
  assert.equal(cnrJobs(id).length, 2, 'nothing changed: no CNR');
  // Whitespace around the ids (xs:string in the official schema) is tolerated.
  await update(updateXml('approve', id, proposal).replace(`>${proposal}<`, `>\n  ${proposal}\n  <`));
});

itest(() => fx, 'update reject: comment required (blank → 400), then → rejected with the comment kept, CNR', async () => {
  const id = freshId('rej');
  const { proposal } = nominate(id);
  const blank = updateXml('reject', id, proposal, '   ');
  assertValid(Buffer.from(blank), official('endpoints', 'update-request.xsd'), 'a blank comment is schema-valid');
  const req = updateReq(blank);
  const res = await fx.send(req);
  assert.match(assertErrorResponse(res, 400, req, 'blank comment'), /reject-proposal-v1 needs a comment/);
  assert.equal(row(id).status, 'pending');
  const n = cnrJobs(id).length;
  await update(updateXml('reject', id, proposal, 'No place left in this programme.'));
  const r = row(id);
  assert.equal(r.status, 'rejected');
  assert.equal(r.status_comment, 'No place left in this programme.');
  assert.equal(cnrJobs(id).length, n + 1);
  // A corrected nomination is pending again, without the old comment.
  nominate(id, { agreementIsced: '0611' });
  assert.equal(row(id).status, 'pending');
  assert.equal(row(id).status_comment, null);
});

itest(() => fx, 'update with a stale proposal id → 409 with a user-message, nothing changed, no CNR', async () => {
  const id = freshId('stale');
  const old = nominate(id);
  const cur = nominate(id, { eqf: '7' });
  const n = cnrJobs(id).length;
  for (const body of [updateXml('approve', id, old.proposal), updateXml('reject', id, old.proposal, 'no')]) {
    const req = updateReq(body);
    const res = await fx.send(req);
    const dm = assertErrorResponse(res, 409, req, 'stale proposal');
    assert.match(dm, new RegExp(`it is now "${cur.proposal}"`));
    assert.match(userMessage(res), /changed this nomination/);
  }
  assert.equal(row(id).status, 'pending');
  assert.equal(cnrJobs(id).length, n);
});

itest(() => fx, 'update: unknown mobility, a caller that is not the receiving HEI, bad bodies → 400/415/405 with precise messages, nothing changed', async () => {
  const id = freshId('u400');
  const { proposal } = nominate(id);
  const n = cnrJobs(id).length;
  const cases = [
    [updateXml('approve', 'never-heard-of', proposal), {}, 400, /no mobility with this omobility-id is sent by smile\.test to an HEI your key covers/],
    [updateXml('approve', id, proposal), { key: fx.dKey }, 400, /no mobility with this omobility-id/],
    [updateXml('approve', id, proposal), { key: fx.partnerKey }, 400, /no mobility with this omobility-id/],
    ['<omobilities-update-request', {}, 400, /not a well-formed XML document/],
    [`<approve-proposal-v1 xmlns="${NS_UREQ}"/>`, {}, 400, /root element must be omobilities-update-request/],
    [`<omobilities-update-request xmlns="${NS_UREQ}"><approve-proposal-v1><omobility-id>${id}</omobility-id></approve-proposal-v1></omobilities-update-request>`, {}, 400, /is not valid: .*proposal-id/],
    [`<omobilities-update-request xmlns="${NS_UREQ}"><reject-proposal-v1><omobility-id>${id}</omobility-id><proposal-id>${proposal}</proposal-id></reject-proposal-v1></omobilities-update-request>`, {}, 400, /is not valid: .*comment/],
    ['', {}, 400, /it is empty/],
    [`omobility_id=${id}`, { contentType: 'application/x-www-form-urlencoded' }, 415, /XML document/],
  ];
  for (const [body, o, status, re] of cases) {
    const req = updateReq(body, o);
    const res = await fx.send(req);
    assert.match(assertErrorResponse(res, status, req, `update ${body.slice(0, 40)}`), re);
  }
  const req = fx.signed({ key: recvKey, method: 'GET', path: PATHS.update });
  assertErrorResponse(await fx.send(req), 405, req, 'GET update');
  assert.equal(row(id).status, 'pending');
  assert.equal(cnrJobs(id).length, n);
});

itest(() => fx, 'cancel → cancelled, CNR; then approve → 409, nominate again refused, cancel again is a no-op; unknown id → error', async () => {
  const id = freshId('cancel');
  const { proposal } = nominate(id);
  const n = cnrJobs(id).length;
  const ctl = (...a) => runEwpctl(['-c', fx.confPath, 'mobility', ...a]);
  let r = ctl('cancel', id);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, new RegExp(`cancelled ${id} \\(was pending\\)`));
  assert.equal(row(id).status, 'cancelled');
  assert.equal(cnrJobs(id).length, n + 1);
  const [m] = await get([id]);
  assert.equal(text(m, 'status'), 'cancelled');
  const req = updateReq(updateXml('approve', id, proposal));
  const res = await fx.send(req);
  assertErrorResponse(res, 409, req, 'approve a cancelled nomination');
  assert.match(userMessage(res), /cancelled/);
  r = nominateRaw(nominationXml(id, { eqf: '7' }));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /was cancelled: a cancelled nomination is final/);
  r = ctl('cancel', id);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /already cancelled/);
  assert.equal(cnrJobs(id).length, n + 1);
  r = ctl('cancel', 'no-such-id');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no outgoing mobility of ours has omobility-id "no-such-id"/);
});

itest(() => fx, 'partners\' nominations (is_outgoing = false) are neither served nor touched by the sending-side triggers', async () => {
  sql(`INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id, is_outgoing, given_names, family_name,
         global_id, receiving_academic_year_id, proposal_id, status)
       VALUES ('${R_HEI}', 'their-1', '${HEI_ID}', false, 'A', 'B', 'urn:x', '2026/2027', 'their-proposal', 'approved')`);
  const r = JSON.parse(sql(`SELECT row_to_json(m) FROM (SELECT proposal_id, status FROM smile.mobility WHERE omobility_id = 'their-1') m`));
  assert.deepEqual(r, { proposal_id: 'their-proposal', status: 'approved' });
  assert.equal(Number(sql(`SELECT count(*) FROM ewp.jobs WHERE dedupe_key LIKE '% their-1'`)), 0);
  assert.deepEqual(await get(['their-1']), []);
  assert.ok(!(await index([])).includes('their-1'));
});

itest(() => fx, 'metrics count the three endpoints under api="omobilities"', async () => {
  await index([]);
  const { samples } = await fetchMetrics(fx);
  assert.ok(metricValue(samples, 'ewpd_requests_total', { api: 'omobilities', status: '200' }) >= 1);
  assert.ok(metricValue(samples, 'ewpd_requests_total', { api: 'omobilities', status: '400' }) >= 1);
});

itest(() => fx, 'database down → get, index and update answer 503 (the caller retries), nothing half-done; back → served again', async () => {
  const id = freshId('outage');
  const { proposal } = nominate(id);
  fx.pg.halt();
  try {
    for (const req of [call('get', [['omobility_id', id]]), call('index', []), updateReq(updateXml('approve', id, proposal))]) {
      const res = await fx.send(req);
      assertErrorResponse(res, 503, req, `${req.target} while PostgreSQL is down`);
    }
  } finally {
    fx.pg.resume();
  }
  await pollUntil(async () => {
    const res = await fx.send(call('get', [['omobility_id', id]]));
    return { ok: res.status === 200, detail: `status ${res.status}` };
  }, 15000, 'get answered again after PostgreSQL came back');
  assert.equal(row(id).status, 'pending', 'the update refused during the outage did not happen');
  await update(updateXml('approve', id, proposal));
  assert.equal(row(id).status, 'approved');
});
