// The receiving side of nominations: a partner's OMobility CNR reaches our
// ewpd, the refetch job calls the partner's Outgoing Mobilities v3 get
// (a partner double, lib/partner-double.mjs, playing another vendor's
// node), and the nomination lands in the SMILE core: smile.mobility
// (is_outgoing = false) and the incoming registration smile.inscription
// at the first active workflow step. Faults (500, invalid XML, bad
// signature, wrong namespace, 4xx, another sending HEI, a receiving HEI
// that is not us, the validator's HEI, a partner without the API) write
// nothing. Changes update the same rows; cancellation is an abandon; an
// id the get stops returning is marked gone; `ewpctl mobility sync` runs
// the index re-sync.
//
// There is no official OMobilities v3 example document: the spec
// repository's endpoints/get-response-example.xml is still the v2 one
// (checked below). The documents here are crafted to the official v3
// schema of the Registry's copy and validated against it in every test.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { buildCatalogue } from './lib/catalogue.mjs';
import { Ewpd, HEI_ID, describeRun, itest, runEwpctlAsync } from './lib/daemon.mjs';
import { assertStatus } from './lib/ewp.mjs';
import { PROJECT_SCHEMAS, projectSchema, specPath } from './lib/env.mjs';
import { PartnerDouble } from './lib/partner-double.mjs';
import { pollUntil } from './lib/poll.mjs';
import { makeKey } from './lib/sign.mjs';
import { assertValid, parseXml, xmlEscape, xmllintValidate } from './lib/xml.mjs';

const GH = 'https://github.com/erasmus-without-paper';
const NS_GET = `${GH}/ewp-specs-api-omobilities/blob/stable-v3/endpoints/get-response.xsd`;
const NS_INDEX = `${GH}/ewp-specs-api-omobilities/blob/stable-v3/endpoints/index-response.xsd`;
const NS_ENTRY = `${GH}/ewp-specs-api-omobilities/blob/stable-v3/manifest-entry.xsd`;
const NS_EWP = `${GH}/ewp-specs-architecture/blob/stable-v1/common-types.xsd`;
const REG = ['ewp-registry-service', 'src', 'main', 'resources', 'schemas', 'ewp-specs-api-omobilities-v3.0.0', 'endpoints'];
const P = 'omob.partner.example.org'; // serves OMobilities v3 (the double)
const P_NOAPI = 'noomob.partner.example.org'; // the double too, without OMobilities
const VALIDATOR = 'validator-hei01.developers.erasmuswithoutpaper.eu';
const JOBS_CONF = { retry_min: '1s', retry_max: '2s', lease: '8s', timeout: '3s', concurrency: '8' };
const FINAL = ['success', 'rejected', 'no-cnr-api', 'cancelled', 'expired', 'merged'];

let fx;
let fx2; // a second node on the same database (nightly re-sync test)
let double;
const pKey = makeKey(); // the partner's client key: signs its CNRs to us
const pKey2 = makeKey(); // P_NOAPI's client key
const mobs = new Map(); // omobility_id -> fields the double's get returns
const getBehaviour = new Map(); // omobility_id -> (req) => void, instead of the document
let indexIds = []; // what the double's index lists
let localUnit; // our composante named as receiving ounit-id

const officialGet = () => specPath(...REG, 'get-response.xsd');
const officialIndex = () => specPath(...REG, 'index-response.xsd');
const sql = (q) => fx.pg.psql(q);
const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;
const errorXml = (msg) => `<?xml version="1.0" encoding="UTF-8"?>\n<error-response xmlns="${NS_EWP}">\n` +
  `  <developer-message>${xmlEscape(msg)}</developer-message>\n</error-response>\n`;

// ---- the partner's documents ----

let seq = 0;
const freshId = (tag) => `${tag}-${process.pid}-${++seq}`;

function mobility(id, over = {}) {
  return {
    id,
    given: [[null, 'Anna Maria'], ['el', 'Άννα Μαρία']],
    family: [['ru-Cyrl', 'Иванова'], ['en', 'Ivanova']],
    globalId: `urn:schac:personalUniqueCode:int:esi:${P}:${id}`,
    birth: '2002-03-04',
    nationality: 'PL',
    gender: '2',
    email: 'anna.ivanova@student.omob.partner.example.org',
    proposal: 'proposal-1',
    sendingHei: P,
    sendingOunit: 'ou-informatics',
    sendingIia: 'iia-sending-7',
    receivingHei: HEI_ID,
    receivingOunit: 'ou-smile-sciences',
    receivingIia: 'iia-receiving-9',
    term: '2026/2027-1/2',
    year: '2026/2027',
    attrs: 'long-term',
    agreementIsced: '0613',
    eqf: '7',
    nomineeIsced: '0611',
    comment: 'Second-cycle student (for IROs only)',
    status: 'pending',
    ...over,
  };
}

const opt = (name, v) => (v === undefined || v === null ? '' : `<${name}>${xmlEscape(v)}</${name}>`);
const names = (el, list) => list.map(([lang, v]) => `<${el}${lang ? ` xml:lang="${lang}"` : ''}>${xmlEscape(v)}</${el}>`).join('\n        ');

function mobilityXml(m) {
  return `  <student-mobility>
    <omobility-id>${xmlEscape(m.id)}</omobility-id>
    <student>
        ${names('given-names', m.given)}
        ${names('family-name', m.family)}
        <global-id>${xmlEscape(m.globalId)}</global-id>
        <birth-date>${m.birth}</birth-date>
        <nationality>${m.nationality}</nationality>
        <gender>${m.gender}</gender>
        <email>${xmlEscape(m.email)}</email>
    </student>
    <nomination proposal-id="${xmlEscape(m.proposal)}">
      <sending-hei><hei-id>${xmlEscape(m.sendingHei)}</hei-id>${opt('ounit-id', m.sendingOunit)}${opt('iia-id', m.sendingIia)}</sending-hei>
      <receiving-hei><hei-id>${xmlEscape(m.receivingHei)}</hei-id>${opt('ounit-id', m.receivingOunit)}${opt('iia-id', m.receivingIia)}</receiving-hei>
      ${m.term ? `<sending-academic-term-ewp-id>${m.term}</sending-academic-term-ewp-id>` : '<non-standard-mobility-period/>'}
      <receiving-academic-year-id>${m.year}</receiving-academic-year-id>
      <activity-type>student-studies</activity-type>
      <activity-attributes>${m.attrs}</activity-attributes>
      <agreement-isced-f-code>${m.agreementIsced}</agreement-isced-f-code>
      <eqf-level-studied-at-departure>${m.eqf}</eqf-level-studied-at-departure>
      <nominee-isced-f-code>${m.nomineeIsced}</nominee-isced-f-code>
      ${opt('comment', m.comment)}
    </nomination>
    <status>${m.status}</status>
  </student-mobility>\n`;
}

function getResponse(list, ns = NS_GET) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<omobilities-get-response xmlns="${ns}">\n` +
    `${list.map(mobilityXml).join('')}</omobilities-get-response>\n`;
}

function indexResponse(ids) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<omobilities-index-response xmlns="${NS_INDEX}">\n` +
    `${ids.map((i) => `  <omobility-id>${xmlEscape(i)}</omobility-id>\n`).join('')}</omobilities-index-response>\n`;
}

// Valid against the official v3 schema and our intake schema, or the test is wrong.
function assertBothSchemas(xml, what, official = officialGet, ours = 'intake/omobilities-get-response.xsd') {
  assertValid(Buffer.from(xml), official(), `${what} (official v3)`);
  assertValid(Buffer.from(xml), projectSchema(ours), `${what} (ewp-schemas/${ours})`);
}

// ---- the catalogue: the double's two hosts ----

function withOmobilities(xml, echoUrl, base) {
  const anchor = `<e2:url>${xmlEscape(echoUrl)}</e2:url>\n      </e2:echo>\n`;
  if (!xml.includes(anchor)) throw new Error('no echo entry for the double');
  return xml.replace(anchor, `${anchor}      <o3:omobilities xmlns:o3="${NS_ENTRY}" version="3.0.0">
        <o3:http-security>
          <sec:client-auth-methods><sec-A2:httpsig/></sec:client-auth-methods>
          <sec:server-auth-methods><sec-B2:httpsig/></sec:server-auth-methods>
        </o3:http-security>
        <o3:get-url>${xmlEscape(base)}/ewp/omobilities/get</o3:get-url>
        <o3:index-url>${xmlEscape(base)}/ewp/omobilities/index</o3:index-url>
        <o3:update-url>${xmlEscape(base)}/ewp/omobilities/update</o3:update-url>
        <o3:max-omobility-ids>10</o3:max-omobility-ids>
      </o3:omobilities>\n`);
}

function onRequest(req) {
  if (req.path.endsWith('/ewp/omobilities/get')) {
    const id = req.form.getAll('omobility_id')[0];
    const b = getBehaviour.get(id);
    if (b) return b(req);
    const m = mobs.get(id);
    return double.reply(req, { body: getResponse(m ? [m] : []) });
  }
  if (req.path.endsWith('/ewp/omobilities/index')) return double.reply(req, { body: indexResponse(indexIds) });
  return double.reply(req, { status: 404, body: errorXml(`no such endpoint ${req.path}`) });
}

before(async () => {
  fx = await Ewpd.create('omob-fetch', { pg: true, start: false, conf: { jobs: JOBS_CONF } });
  double = await PartnerDouble.start({ dir: path.join(fx.dir, 'double'), clientKey: fx.clientKey });
  double.handle(onRequest);
  fx.extraHosts.push(
    { adminEmail: `admin@${P}`, heis: [P], clientKeys: [pKey], serverKeys: [double.serverKey], echoUrl: `${double.baseUrl}/ewp/echo` },
    { adminEmail: `admin@${P_NOAPI}`, heis: [P_NOAPI], clientKeys: [pKey2], serverKeys: [double.serverKey], echoUrl: `${double.baseUrl}/ewp/echo2` });
  fx.extraInstitutions.push({ id: P, names: [['en', 'OMobilities Partner University']] }, { id: P_NOAPI, names: [['en', 'No OMobilities University']] });
  fs.writeFileSync(fx.cataloguePath, withOmobilities(buildCatalogue(fx.catalogueSpec()), `${double.baseUrl}/ewp/echo`, double.baseUrl));
  // the nightly re-sync off here (its own test below starts a node with it on)
  fx.writeConfig({ jobs: { ...JOBS_CONF, ca_file: double.tlsFiles.cert }, ewp: { schema_dir: PROJECT_SCHEMAS }, mobility: { sync_hour: '-1' } });
  // our institution and one of its units, as the core holds them
  sql(`INSERT INTO smile.etablissement (schac_id, names, is_local) VALUES ('${HEI_ID}', '[{"lang": "fr", "name": "Université de Test SMILE"}]', true)`);
  localUnit = sql(`INSERT INTO smile.composante (etablissement_id, ounit_id, code, names)
    SELECT id, 'ou-smile-sciences', 'SCI', '[{"lang": "fr", "name": "Sciences"}]' FROM smile.etablissement WHERE is_local RETURNING id`);
  await fx.start();
});

after(async () => {
  await fx2?.cleanup();
  await double?.close();
  await fx?.cleanup();
});

// ---- helpers ----

// An OMobility CNR from the partner (v1 names sending_hei_id, v2 does not).
async function cnr(ids, { v = 'v1', key = pKey, sendingHei = P } = {}) {
  const ps = [...(v === 'v1' ? [['sending_hei_id', sendingHei]] : []), ...ids.map((i) => ['omobility_id', i])];
  const body = ps.map(([k, x]) => `${encodeURIComponent(k)}=${encodeURIComponent(x)}`).join('&');
  const req = fx.signed({ key, method: 'POST', path: `/ewp/omobility-cnr/${v}`, body, contentType: 'application/x-www-form-urlencoded' });
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'CNR');
  return req;
}

function jobsOf(id, api = 'omobilities', kind = 'refetch') {
  return JSON.parse(sql(`SELECT coalesce(json_agg(j ORDER BY j.id), '[]') FROM (
    SELECT id, hei_id, status, attempts, last_error, last_http_status, payload FROM ewp.jobs
     WHERE kind = '${kind}' AND api = '${api}' AND dedupe_key = ${lit(id)}) j`));
}

// Waits until the newest job for id (at least `count` of them) is final.
async function settled(id, { count = 1, ms = 20000, kind = 'refetch', api = 'omobilities' } = {}) {
  const r = await pollUntil(() => {
    const js = jobsOf(id, api, kind);
    const last = js[js.length - 1];
    return { ok: js.length >= count && FINAL.includes(last?.status), job: last, detail: JSON.stringify(js) };
  }, ms, `job for ${id} finished`, 100);
  return r.job;
}

function mobilityRow(id, sending = P) {
  const out = sql(`SELECT row_to_json(m) FROM (SELECT *, document::text AS document_text FROM smile.mobility
    WHERE sending_hei_id = ${lit(sending)} AND omobility_id = ${lit(id)}) m`);
  return out ? JSON.parse(out) : null;
}

function inscriptionRow(id) {
  const out = sql(`SELECT row_to_json(i) FROM (SELECT i.*, s.code AS step_code, s.position AS step_position,
      e.schac_id AS home_schac, e.names AS home_names, e.is_local AS home_is_local
      FROM smile.inscription i JOIN smile.step s ON s.id = i.step_id JOIN smile.etablissement e ON e.id = i.home_etablissement_id
     WHERE i.omobility_id = ${lit(id)}) i`);
  return out ? JSON.parse(out) : null;
}

const count = (table, id) => Number(sql(`SELECT count(*) FROM ${table} WHERE omobility_id = ${lit(id)}`));
const getsFor = (id) => double.requests.filter((r) => r.path.endsWith('/ewp/omobilities/get') && r.form.getAll('omobility_id').includes(id));

// Nothing of id in the core: no mobility, no registration.
function assertNothingWritten(id, what) {
  assert.equal(count('smile.mobility', id), 0, `${what}: no smile.mobility row`);
  assert.equal(count('smile.inscription', id), 0, `${what}: no smile.inscription row`);
}

// ---- tests ----

itest(() => fx, 'no official v3 example exists: the spec repository\'s get example is still OMobilities v2', async () => {
  const ex = parseXml(fs.readFileSync(specPath('ewp-specs-api-omobilities', 'endpoints', 'get-response-example.xml')));
  assert.equal(ex.ns, `${GH}/ewp-specs-api-omobilities/blob/stable-v2/endpoints/get-response.xsd`,
    'a v3 example has appeared: use it in this test file');
  // and ours refuses that v2 document (another namespace), as the official v3 schema does
  const body = fs.readFileSync(specPath('ewp-specs-api-omobilities', 'endpoints', 'get-response-example.xml'));
  assert.equal(xmllintValidate(body, officialGet()).ok, false);
  assert.equal(xmllintValidate(body, projectSchema('intake/omobilities-get-response.xsd')).ok, false);
});

itest(() => fx, 'CNR v1 → refetch job → signed get → smile.mobility and smile.inscription with every field, first active step, Nomination', async () => {
  const id = freshId('full');
  const m = mobility(id);
  mobs.set(id, m);
  assertBothSchemas(getResponse([m]), 'the partner\'s answer');
  const cnrReq = await cnr([id]);
  const job = await settled(id);
  assert.equal(job.status, 'success', JSON.stringify(job));
  assert.equal(job.hei_id, P);
  assert.equal(job.last_http_status, 200);
  assert.equal(job.payload.cnr_request_id, cnrReq.requestId);

  const gets = getsFor(id);
  assert.equal(gets.length, 1, 'one get');
  assert.equal(gets[0].method, 'POST');
  assert.equal(gets[0].signatureOk, true, 'signed with our client key, Digest right');
  assert.deepEqual(gets[0].form.getAll('omobility_id'), [id]);
  assert.equal(gets[0].form.get('sending_hei_id'), P);

  const row = mobilityRow(id);
  assert.ok(row, 'the mobility is stored');
  const want = {
    sending_hei_id: P, omobility_id: id, receiving_hei_id: HEI_ID, is_outgoing: false,
    given_names: 'Anna Maria', // the name without xml:lang
    family_name: 'Ivanova', // no name without xml:lang: the Latin-script one, not the Cyrillic first
    global_id: m.globalId, birth_date: '2002-03-04', nationality: 'PL', gender: 2,
    email: m.email, sending_ounit_id: 'ou-informatics', receiving_ounit_id: 'ou-smile-sciences',
    sending_iia_id: 'iia-sending-7', receiving_iia_id: 'iia-receiving-9', sending_term_id: '2026/2027-1/2',
    receiving_academic_year_id: '2026/2027', activity_type: 'student-studies', activity_attributes: 'long-term',
    agreement_isced: '0613', nominee_isced: '0611', eqf_level: 7, comment: 'Second-cycle student (for IROs only)',
    proposal_id: 'proposal-1', status: 'pending', status_comment: null, actual_arrival_date: null,
    actual_departure_date: null, gone_at: null,
  };
  for (const [k, v] of Object.entries(want)) assert.deepEqual(row[k], v, `smile.mobility.${k}`);
  assert.ok(row.fetched_at, 'fetched_at');
  // the student-mobility element as received, with its namespace
  const doc = parseXml(row.document_text);
  assert.equal(doc.local, 'student-mobility');
  assert.equal(doc.ns, NS_GET);
  assert.equal(doc.element(NS_GET, 'omobility-id').text, id);
  assert.equal(doc.element(NS_GET, 'student').elements(NS_GET, 'given-names')[1].text, 'Άννα Μαρία');

  const ins = inscriptionRow(id);
  assert.ok(ins, 'the registration is created');
  assert.equal(row.inscription_id, ins.id, 'mobility linked to its registration');
  const first = JSON.parse(sql('SELECT row_to_json(s) FROM (SELECT code, position FROM smile.step WHERE active ORDER BY position LIMIT 1) s'));
  assert.equal(ins.step_code, first.code, 'first active workflow step');
  assert.equal(ins.step_position, first.position);
  assert.equal(ins.status, 1, 'status 1 Nomination');
  assert.equal(ins.esi, m.globalId, 'ESI in its urn form');
  assert.equal(ins.given_names, 'Anna Maria');
  assert.equal(ins.family_name, 'Ivanova');
  assert.equal(ins.birth_date, '2002-03-04');
  assert.equal(ins.email, m.email);
  assert.equal(ins.academic_year, 2026, 'first year of receiving-academic-year-id');
  assert.equal(ins.composante_id, Number(localUnit), 'our unit named as receiving ounit-id');
  assert.equal(ins.omobility_id, id);
  // the partner was not in the core: a minimal etablissement from the catalogue
  assert.equal(ins.home_schac, P);
  assert.equal(ins.home_is_local, false);
  assert.deepEqual(ins.home_names, [{ name: 'OMobilities Partner University' }]);

  // the exchange is in the message log under the job's id
  const log = await pollUntil(() => {
    const out = sql(`SELECT coalesce(json_agg(row_to_json(l)), '[]') FROM (SELECT direction, method, url, status, api, api_version,
      partner_hei_ids, validation, error, request_id FROM ewp.message_log WHERE job_id = ${job.id}) l`);
    const rows = JSON.parse(out);
    return { ok: rows.length === 1, rows, detail: out };
  }, 5000, 'message-log row of the get');
  const [l] = log.rows;
  assert.equal(l.direction, 'out');
  assert.equal(l.method, 'POST');
  assert.equal(l.url, `${double.baseUrl}/ewp/omobilities/get`);
  assert.equal(l.status, 200);
  assert.equal(l.api, 'omobilities');
  assert.equal(l.api_version, '3.0.0');
  assert.deepEqual(l.partner_hei_ids, [P]);
  assert.equal(l.validation, 'valid');
  assert.equal(l.error, null);
  assert.equal(l.request_id, gets[0].requestId);
});

itest(() => fx, 'a document using what the official v3 schema allows (non-standard period, no optional elements, lexical variants, non-urn global-id) is stored', async () => {
  const id = freshId('wide');
  const m = mobility(id, {
    given: [['en', 'Jo']], family: [['de', 'Müller'], ['ja-Jpan', 'ミュラー']],
    globalId: 'STUDENT-77', birth: '1999-12-31+01:00', gender: '09', email: 'jo mueller@partner.example',
    sendingOunit: null, sendingIia: null, receivingOunit: null, receivingIia: null, term: null,
    receivingHei: ` ${HEI_ID} `, eqf: '08', comment: null, attrs: 'short-term-doctoral', proposal: 'p w',
  });
  mobs.set(id, m);
  assertBothSchemas(getResponse([m]), 'the wide document');
  await cnr([id], { v: 'v2' });
  const job = await settled(id);
  assert.equal(job.status, 'success', JSON.stringify(job));
  const row = mobilityRow(id);
  assert.equal(row.given_names, 'Jo');
  assert.equal(row.family_name, 'Müller');
  assert.equal(row.global_id, 'STUDENT-77');
  assert.equal(row.birth_date, '1999-12-31', 'the day of an xs:date with a time zone');
  assert.equal(row.gender, 9);
  assert.equal(row.eqf_level, 8);
  assert.equal(row.email, 'jo mueller@partner.example', 'kept as sent in the mobility');
  assert.equal(row.sending_term_id, null, 'non-standard mobility period');
  assert.equal(row.activity_attributes, 'short-term-doctoral');
  assert.equal(row.receiving_hei_id, HEI_ID);
  for (const k of ['sending_ounit_id', 'sending_iia_id', 'receiving_ounit_id', 'receiving_iia_id', 'comment']) assert.equal(row[k], null, k);
  const ins = inscriptionRow(id);
  assert.equal(ins.esi, null, 'a global-id that is not an ESI urn is not an ESI');
  assert.equal(ins.email, null, 'an address the core\'s format refuses is left out of the registration');
  assert.equal(ins.composante_id, null);
  assert.equal(ins.status, 1);
});

itest(() => fx, 'partner answers 500, then 200: stored after a backoff, both attempts logged', async () => {
  const id = freshId('500');
  mobs.set(id, mobility(id));
  let n = 0;
  getBehaviour.set(id, (req) => {
    if (++n === 1) double.reply(req, { status: 500, body: errorXml('database on fire') });
    else double.reply(req, { body: getResponse([mobs.get(id)]) });
  });
  await cnr([id]);
  const job = await settled(id);
  assert.equal(job.status, 'success', JSON.stringify(job));
  assert.equal(job.attempts, 2);
  assert.equal(getsFor(id).length, 2);
  assert.ok(mobilityRow(id), 'stored');
  assert.equal(count('smile.inscription', id), 1);
  const rows = await pollUntil(() => {
    const r = JSON.parse(sql(`SELECT coalesce(json_agg(json_build_object('s', status, 't', extract(epoch FROM created_at), 'e', error) ORDER BY id), '[]')
      FROM ewp.message_log WHERE job_id = ${job.id}`));
    return { ok: r.length === 2, r, detail: JSON.stringify(r) };
  }, 5000, 'two logged attempts');
  assert.equal(rows.r[0].s, 500);
  assert.match(rows.r[0].e, /HTTP 500: database on fire/);
  assert.equal(rows.r[1].s, 200);
  assert.ok(rows.r[1].t - rows.r[0].t >= 0.45, `backoff between attempts: ${rows.r[1].t - rows.r[0].t}s`);
});

// Each fault is retried (at least twice seen) with nothing written; then
// the partner answers 4xx and the job is rejected, still with nothing.
for (const [name, fault, errRe, validation] of [
  ['invalid XML', (req, id) => double.reply(req, { body: `<omobilities-get-response xmlns="${NS_GET}"><student-mobility><omobility-id>${id}</omobility-id>` }), /invalid XML/, 'invalid'],
  ['bad signature', (req, id) => double.reply(req, { body: getResponse([mobs.get(id)]), key: makeKey() }), /response signature refused/, 'not-checked'],
  ['wrong namespace (the v2 one)', (req, id) => double.reply(req, { body: getResponse([mobs.get(id)], `${GH}/ewp-specs-api-omobilities/blob/stable-v2/endpoints/get-response.xsd`) }), /does not match intake\/omobilities-get-response\.xsd/, 'invalid'],
]) {
  itest(() => fx, `partner answers with ${name}: retried, nothing written; then 4xx: rejected, nothing written`, async () => {
    const id = freshId('fault');
    mobs.set(id, mobility(id));
    let phase = 'fault';
    getBehaviour.set(id, (req) => {
      if (phase === 'fault') fault(req, id);
      else double.reply(req, { status: 404, body: errorXml(`no mobility ${id} for you`) });
    });
    await cnr([id]);
    const r = await pollUntil(() => {
      const [j] = jobsOf(id);
      return { ok: j && j.attempts >= 2 && getsFor(id).length >= 2, job: j, detail: JSON.stringify(j) };
    }, 20000, 'two failed attempts', 100);
    assert.ok(['pending', 'running'].includes(r.job.status), `still being retried: ${JSON.stringify(r.job)}`);
    assert.match(jobsOf(id)[0].last_error || '', errRe);
    assertNothingWritten(id, name);
    const logged = await pollUntil(() => {
      const v = sql(`SELECT coalesce(json_agg(validation), '[]') FROM ewp.message_log WHERE job_id = ${r.job.id}`);
      return { ok: JSON.parse(v).length >= 2, v: JSON.parse(v), detail: v };
    }, 5000, 'logged attempts');
    assert.ok(logged.v.every((x) => x === validation), `validation ${validation}: ${logged.v}`);
    phase = '4xx';
    const job = await settled(id);
    assert.equal(job.status, 'rejected', JSON.stringify(job));
    assert.equal(job.last_http_status, 404);
    assert.match(job.last_error, /HTTP 404: no mobility .* for you/);
    const tries = getsFor(id).length;
    await sleep(2500); // past retry_max: a retry would have come
    assert.equal(getsFor(id).length, tries, 'a 4xx is never retried');
    assertNothingWritten(id, name);
  }, { timeout: 45000 });
}

itest(() => fx, 'a second CNR after a change updates the same rows (no duplicate); the workflow never moves back', async () => {
  const id = freshId('change');
  mobs.set(id, mobility(id));
  await cnr([id]);
  assert.equal((await settled(id)).status, 'success');
  const before = mobilityRow(id);
  const insBefore = inscriptionRow(id);
  // staff moved the student on meanwhile
  const later = JSON.parse(sql(`SELECT row_to_json(s) FROM (SELECT id, code FROM smile.step WHERE active AND position > ${insBefore.step_position} ORDER BY position LIMIT 1) s`));
  sql(`UPDATE smile.inscription SET step_id = ${later.id} WHERE id = ${insBefore.id}`);
  // an unchanged fetch leaves modified_at alone
  await cnr([id]);
  assert.equal((await settled(id, { count: 2 })).status, 'success');
  assert.equal(mobilityRow(id).modified_at, before.modified_at, 'nothing changed: modified_at kept');
  assert.notEqual(mobilityRow(id).fetched_at, before.fetched_at, 'fetched_at moves on every fetch');
  // the partner changes the name, the e-mail and the nomination
  mobs.set(id, mobility(id, { given: [[null, 'Anne-Marie']], email: 'anne.marie@new.example.org', proposal: 'proposal-2', eqf: '6', comment: null }));
  await cnr([id], { v: 'v2' });
  assert.equal((await settled(id, { count: 3 })).status, 'success');
  const row = mobilityRow(id);
  assert.equal(count('smile.mobility', id), 1, 'one mobility');
  assert.equal(count('smile.inscription', id), 1, 'one registration');
  assert.equal(row.id, before.id);
  assert.equal(row.given_names, 'Anne-Marie');
  assert.equal(row.email, 'anne.marie@new.example.org');
  assert.equal(row.proposal_id, 'proposal-2');
  assert.equal(row.eqf_level, 6);
  assert.equal(row.comment, null);
  assert.notEqual(row.modified_at, before.modified_at);
  const ins = inscriptionRow(id);
  assert.equal(ins.id, insBefore.id);
  assert.equal(ins.given_names, 'Anne-Marie', 'student fields follow');
  assert.equal(ins.email, 'anne.marie@new.example.org');
  assert.equal(ins.step_code, later.code, 'the step staff reached is kept');
  assert.equal(ins.status, 1);
});

itest(() => fx, 'the sending HEI cancels: mobility cancelled, registration status 3 Abandon; taken back: Nomination again', async () => {
  const id = freshId('cancel');
  mobs.set(id, mobility(id));
  await cnr([id]);
  assert.equal((await settled(id)).status, 'success');
  mobs.set(id, mobility(id, { status: 'cancelled' }));
  await cnr([id]);
  assert.equal((await settled(id, { count: 2 })).status, 'success');
  assert.equal(mobilityRow(id).status, 'cancelled');
  assert.equal(inscriptionRow(id).status, 3, 'Abandon');
  assert.equal(sql('SELECT label FROM smile.inscription_status WHERE status = 3'), 'Abandon');
  mobs.set(id, mobility(id, { status: 'pending' }));
  await cnr([id]);
  assert.equal((await settled(id, { count: 3 })).status, 'success');
  assert.equal(inscriptionRow(id).status, 1);
  // a nomination first seen cancelled is an abandon from the start
  const id2 = freshId('cancel');
  mobs.set(id2, mobility(id2, { status: 'cancelled' }));
  await cnr([id2]);
  assert.equal((await settled(id2)).status, 'success');
  assert.equal(inscriptionRow(id2).status, 3);
});

itest(() => fx, 'an id the get no longer returns: gone_at set, nothing deleted; returned again: gone_at cleared', async () => {
  const id = freshId('gone');
  mobs.set(id, mobility(id));
  await cnr([id]);
  assert.equal((await settled(id)).status, 'success');
  mobs.delete(id); // the double's get now answers an empty list
  await cnr([id]);
  assert.equal((await settled(id, { count: 2 })).status, 'success');
  const row = mobilityRow(id);
  assert.ok(row, 'still there');
  assert.ok(row.gone_at, 'gone_at set');
  assert.equal(count('smile.inscription', id), 1, 'registration kept');
  mobs.set(id, mobility(id));
  await cnr([id]);
  assert.equal((await settled(id, { count: 3 })).status, 'success');
  assert.equal(mobilityRow(id).gone_at, null);
  // an id never stored and not returned: success, nothing written
  const unknown = freshId('never');
  await cnr([unknown]);
  assert.equal((await settled(unknown)).status, 'success');
  assertNothingWritten(unknown, 'unknown id');
});

itest(() => fx, 'a mobility whose receiving HEI is not ours is not stored as our student (job cancelled with the reason)', async () => {
  const id = freshId('notours');
  mobs.set(id, mobility(id, { receivingHei: 'elsewhere.example.org' }));
  await cnr([id]);
  const job = await settled(id);
  assert.equal(job.status, 'cancelled');
  assert.match(job.last_error, /receiving HEI is not our institution/);
  assertNothingWritten(id, 'not ours');
});

itest(() => fx, 'the document names another sending HEI than the partner: rejected, nothing written', async () => {
  const id = freshId('spoof');
  mobs.set(id, mobility(id, { sendingHei: 'victim.example.org' }));
  await cnr([id]);
  const job = await settled(id);
  assert.equal(job.status, 'rejected');
  assert.match(job.last_error, /sending HEI "victim\.example\.org", not the partner that served it/);
  assertNothingWritten(id, 'another sending HEI');
  assert.equal(Number(sql(`SELECT count(*) FROM smile.etablissement WHERE schac_id = 'victim.example.org'`)), 0);
});

itest(() => fx, 'what the official schema allows but the core cannot hold (empty global-id, academic year 1999/2000, blank names): rejected with the reason, nothing written', async () => {
  for (const [over, re] of [
    [{ globalId: '' }, /global-id is empty/],
    [{ year: '1999/2000' }, /receiving-academic-year-id 1999\/2000 is outside 2000-2100/],
    [{ given: [[null, '  '], ['en', '']] }, /given-names is blank/],
  ]) {
    const id = freshId('refused');
    mobs.set(id, mobility(id, over));
    assertBothSchemas(getResponse([mobs.get(id)]), JSON.stringify(over));
    await cnr([id]);
    const job = await settled(id);
    assert.equal(job.status, 'rejected', JSON.stringify(job));
    assert.match(job.last_error, /not stored, the answer was refused: EW001/);
    assert.match(job.last_error, re);
    assertNothingWritten(id, JSON.stringify(over));
  }
});

itest(() => fx, 'a partner without OMobilities v3 in the catalogue: final no-API state with a clear error, nothing sent', async () => {
  const id = freshId('noapi');
  const before = double.requests.length;
  await cnr([id], { sendingHei: P_NOAPI, key: pKey2 });
  const job = await settled(id);
  assert.equal(job.hei_id, P_NOAPI);
  assert.equal(job.status, 'no-cnr-api');
  assert.match(job.last_error, /no Outgoing Mobilities v3 get-url to call: no host covering HEI noomob\.partner\.example\.org implements/);
  assert.equal(double.requests.length, before, 'nothing sent');
  assertNothingWritten(id, 'no API');
});

itest(() => fx, 'validator HEIs never reach the core: a refetch job for one is cancelled by the engine, nothing fetched or stored', async () => {
  const id = freshId('validator');
  const before = double.requests.length;
  const jid = sql(`INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload)
    VALUES ('in', 'refetch', '${VALIDATOR}', 'omobilities', ${lit(id)}, '{"omobility_id": "${id}"}') RETURNING id`);
  const job = await settled(id);
  assert.equal(String(job.id), jid);
  assert.equal(job.status, 'cancelled');
  assert.match(job.last_error, /validator HEI/);
  assert.equal(double.requests.length, before);
  assertNothingWritten(id, 'validator');
  // and a re-sync asked for it queues nothing
  const r = await runEwpctlAsync(['-c', fx.confPath, 'mobility', 'sync', VALIDATOR]);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /^0 incremental re-sync job/, describeRun(r));
});

itest(() => fx, 'index re-sync: ewpctl mobility sync --full lists, refetches listed ids and the known ones no longer listed (gone); then incremental with modified_since', async () => {
  // two known mobilities, one new one only the index knows of
  const [a, b, c] = [freshId('ix'), freshId('ix'), freshId('ix')];
  for (const id of [a, b]) {
    mobs.set(id, mobility(id));
    await cnr([id]);
    assert.equal((await settled(id)).status, 'success');
  }
  mobs.delete(b); // b is gone from the partner
  mobs.set(c, mobility(c, { given: [[null, 'Carla']] }));
  mobs.set(a, mobility(a, { email: 'a.changed@partner.example.org' }));
  // every other mobility of P that earlier tests stored is still listed
  const others = JSON.parse(sql(`SELECT coalesce(json_agg(omobility_id), '[]') FROM smile.mobility
    WHERE sending_hei_id = '${P}' AND gone_at IS NULL AND omobility_id NOT IN (${lit(a)}, ${lit(b)})`));
  indexIds = [a, c, ...others];
  assertBothSchemas(indexResponse(indexIds), 'the index answer', officialIndex, 'intake/omobilities-index-response.xsd');
  const from = double.requests.length;
  const r = await runEwpctlAsync(['-c', fx.confPath, 'mobility', 'sync', '--full', P]);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /^1 full re-sync job\(s\) queued for 1 partner/, describeRun(r));
  const ij = await settled('omobilities', { kind: 'index' });
  assert.equal(ij.status, 'success', JSON.stringify(ij));
  assert.equal(ij.hei_id, P);
  const idx = double.since(from).filter((q) => q.path.endsWith('/ewp/omobilities/index'));
  assert.equal(idx.length, 1);
  assert.equal(idx[0].signatureOk, true);
  assert.equal(idx[0].form.get('receiving_hei_id'), HEI_ID);
  assert.equal(idx[0].form.get('sending_hei_id'), P);
  assert.equal(idx[0].form.get('modified_since'), null, 'a full listing');
  // refetches: a (changed), c (new), b (no longer listed → gone)
  for (const id of [a, b, c]) {
    const js = await pollUntil(() => {
      const l = jobsOf(id).filter((j) => j.payload.index_job_id === ij.id);
      return { ok: l.length === 1 && FINAL.includes(l[0].status), l, detail: JSON.stringify(jobsOf(id)) };
    }, 20000, `refetch of ${id} queued by the index job`, 100);
    assert.equal(js.l[0].status, 'success');
  }
  assert.equal(mobilityRow(a).email, 'a.changed@partner.example.org');
  assert.equal(mobilityRow(c).given_names, 'Carla');
  assert.equal(inscriptionRow(c).status, 1);
  assert.ok(mobilityRow(b).gone_at, 'b is marked gone');
  assert.equal(mobilityRow(a).gone_at, null);
  const state = JSON.parse(sql(`SELECT row_to_json(s) FROM ewp.omobilities_index_state s WHERE hei_id = '${P}'`));
  assert.equal(state.listed, indexIds.length);
  assert.ok(state.full_at);

  // incremental: modified_since = previous listing minus ten minutes
  indexIds = [];
  const from2 = double.requests.length;
  const r2 = await runEwpctlAsync(['-c', fx.confPath, 'mobility', 'sync', P]);
  assert.equal(r2.status, 0, describeRun(r2));
  assert.match(r2.stdout, /^1 incremental re-sync job/);
  await settled('omobilities', { kind: 'index', count: 2 });
  const idx2 = double.since(from2).filter((q) => q.path.endsWith('/ewp/omobilities/index'));
  assert.equal(idx2.length, 1);
  const since = idx2[0].form.get('modified_since');
  assert.match(since || '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  const gap = (Date.parse(state.listed_at) - Date.parse(since)) / 1000;
  assert.ok(Math.abs(gap - 600) < 2, `modified_since ten minutes before the last listing (${gap}s)`);
}, { timeout: 60000 });

itest(() => fx, 'ewpctl mobility sync without HEI: every catalogue partner with OMobilities v3 (not us, not the ones without it)', async () => {
  const before = JSON.parse(sql(`SELECT coalesce(json_agg(hei_id ORDER BY id), '[]') FROM ewp.jobs WHERE kind = 'index'`));
  const r = await runEwpctlAsync(['-c', fx.confPath, 'mobility', 'sync']);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /re-sync job\(s\) queued for 1 partner/, describeRun(r));
  const after = JSON.parse(sql(`SELECT coalesce(json_agg(hei_id ORDER BY id), '[]') FROM ewp.jobs WHERE kind = 'index'`));
  assert.deepEqual(after.slice(before.length), [P]);
  await settled('omobilities', { kind: 'index', count: after.length });
  // usage errors are readable
  const bad = await runEwpctlAsync(['-c', fx.confPath, 'mobility', 'sync', '--bogus']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /usage: ewpctl mobility sync/);
});

itest(() => fx, 'nightly re-sync: a node with [mobility] sync_hour past queues one incremental index job per partner with OMobilities v3, once a day whatever the number of workers', async () => {
  const t0 = sql('SELECT now()');
  const from = double.requests.length;
  assert.equal(Number(sql('SELECT count(*) FROM ewp.omobilities_nightly')), 0, 'no run yet (sync_hour -1 on the first node)');
  fx2 = await Ewpd.create('omob-fetch-2', { workers: 2, start: false });
  fx2.writeConfig({
    keys: { keys_dir: fx.keysDir },
    database: { conninfo: fx.pg.conninfo },
    jobs: { ...JOBS_CONF, ca_file: double.tlsFiles.cert },
    ewp: { schema_dir: PROJECT_SCHEMAS },
    mobility: { sync_hour: '0' },
  });
  fs.writeFileSync(fx2.cataloguePath, fs.readFileSync(fx.cataloguePath));
  await fx2.start();
  const q = `SELECT coalesce(json_agg(row_to_json(j) ORDER BY id), '[]') FROM (SELECT id, hei_id, status, payload FROM ewp.jobs
    WHERE kind = 'index' AND created_at > '${t0}') j`;
  const r = await pollUntil(() => {
    const js = JSON.parse(sql(q));
    return { ok: js.length >= 1 && js.every((j) => FINAL.includes(j.status)), js, detail: JSON.stringify(js) };
  }, 20000, 'the nightly index job, finished', 200);
  await sleep(4000); // both workers of the node have offered the day by now (first check 3 s after start)
  const js = JSON.parse(sql(q));
  assert.equal(js.length, 1, `one index job for the day: ${JSON.stringify(js)}`);
  assert.equal(js[0].hei_id, P, 'the one partner publishing OMobilities v3');
  assert.equal(js[0].status, 'success');
  assert.equal(js[0].payload.full, false, 'incremental');
  assert.match(js[0].payload.modified_since, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  const day = JSON.parse(sql(`SELECT row_to_json(n) FROM ewp.omobilities_nightly n`));
  assert.equal(day.day, sql(`SELECT (now() AT TIME ZONE 'UTC')::date`));
  assert.equal(day.partners, 1);
  const idx = double.since(from).filter((x) => x.path.endsWith('/ewp/omobilities/index'));
  assert.equal(idx.length, 1, 'the partner listed once');
  assert.equal(idx[0].form.get('modified_since'), js[0].payload.modified_since);
  assert.ok(r.js.length >= 1);
}, { timeout: 60000 });
