// Receiving side of Online Learning Agreements: a partner (another
// vendor's node, lib/partner-double.mjs) sends an OMobility LA CNR to our
// ewpd; the 'refetch' job (gateway/jobs_refetch_las.c) calls the partner's
// Outgoing Mobility LAs v1 get signed, verifies and validates the answer
// (ewp-schemas/intake/omobility-las-get-response.xsd) and stores it with
// smile.la_store_incoming() (sql/0009_las_receiving.sql): the learning
// agreement, its versions with their history, the workflow step of the
// registration. The mobility rows are seeded with psql (the nomination
// flow is another file's), the way the nomination fetch writes them.
//
// Uses the official examples (../shared/ewp-specs): the get-response
// example and the 12-step scenario, whose fragments are wrapped into valid
// get responses (checked against the official schema here).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { buildCatalogue } from './lib/catalogue.mjs';
import { Ewpd, HEI_ID, itest } from './lib/daemon.mjs';
import { PROJECT_SCHEMAS, specPath } from './lib/env.mjs';
import { PartnerDouble } from './lib/partner-double.mjs';
import { pollUntil } from './lib/poll.mjs';
import { makeKey } from './lib/sign.mjs';
import { assertValid, xmlEscape } from './lib/xml.mjs';

const GH = 'https://github.com/erasmus-without-paper';
const LAS_NS = `${GH}/ewp-specs-api-omobility-las/blob/stable-v1/endpoints/get-response.xsd`;
const LAS_ENTRY_NS = `${GH}/ewp-specs-api-omobility-las/blob/stable-v1/manifest-entry.xsd`;
const TRM_NS = `${GH}/ewp-specs-types-academic-term/tree/stable-v2`;
const NS_EWP = `${GH}/ewp-specs-architecture/blob/stable-v1/common-types.xsd`;
const P_LA = 'la.partner.example.org'; // publishes OMobility LAs v1
const P_NOLA = 'nola.partner.example.org'; // same double, no OMobility LAs API
const EX_SENDING = 'uio.no'; // the official example's HEIs
const EX_RECEIVING = 'uw.edu.pl';
const JOBS_CONF = { retry_min: '1s', retry_max: '2s', lease: '8s', timeout: '3s', concurrency: '8' };
const LAS_DIR = ['ewp-specs-api-omobility-las', 'examples'];
const OFFICIAL_XSD = () => specPath('ewp-registry-service', 'src', 'main', 'resources', 'schemas',
  'ewp-specs-api-omobility-las-v1.2.0', 'endpoints', 'get-response.xsd');
const INTAKE_XSD = path.join(PROJECT_SCHEMAS, 'intake', 'omobility-las-get-response.xsd');

let fx;
let double;
let laKey; // the partner's client key (signs its CNRs)
const behaviour = new Map(); // omobility_id -> (req) => void

const sql = (q) => fx.pg.psql(q);
const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
const json = (q) => JSON.parse(sql(q) || 'null');

const errorXml = (msg) => `<?xml version="1.0" encoding="UTF-8"?>\n<error-response xmlns="${NS_EWP}">\n` +
  `  <developer-message>${xmlEscape(msg)}</developer-message>\n</error-response>\n`;

// The double's OMobility LAs entry, after the Echo entry of its host.
function withLas(xml, echoUrl, base) {
  const anchor = `<e2:url>${xmlEscape(echoUrl)}</e2:url>\n      </e2:echo>\n`;
  if (!xml.includes(anchor)) throw new Error('no echo entry for the double');
  return xml.replace(anchor, `${anchor}      <ola:omobility-las xmlns:ola="${LAS_ENTRY_NS}" version="1.2.0">
        <ola:http-security>
          <sec:client-auth-methods><sec-A2:httpsig/></sec:client-auth-methods>
          <sec:server-auth-methods><sec-B2:httpsig/></sec:server-auth-methods>
        </ola:http-security>
        <ola:get-url>${xmlEscape(base)}/ewp/las/get</ola:get-url>
        <ola:index-url>${xmlEscape(base)}/ewp/las/index</ola:index-url>
        <ola:max-omobility-ids>10</ola:max-omobility-ids>
      </ola:omobility-las>\n`);
}

before(async () => {
  fx = await Ewpd.create('omobility-las-fetch', { pg: true, start: false, conf: { jobs: JOBS_CONF } });
  double = await PartnerDouble.start({ dir: path.join(fx.dir, 'double'), clientKey: fx.clientKey });
  laKey = makeKey();
  double.handle((req) => {
    const f = behaviour.get(req.form.get('omobility_id'));
    if (f) f(req);
    else double.reply(req, { status: 400, body: errorXml('unknown omobility_id') });
  });
  const echo = `${double.baseUrl}/ewp/echo`;
  fx.extraHosts.push(
    { adminEmail: 'admin@la.partner.example.org', heis: [P_LA, EX_SENDING], clientKeys: [laKey], serverKeys: [double.serverKey], echoUrl: echo },
    { adminEmail: 'admin@nola.partner.example.org', heis: [P_NOLA], clientKeys: [laKey], serverKeys: [double.serverKey], echoUrl: `${double.baseUrl}/ewp/echo2` });
  fx.extraInstitutions.push({ id: P_LA, names: [['en', 'LA Partner']] }, { id: EX_SENDING, names: [['en', 'Oslo']] },
    { id: P_NOLA, names: [['en', 'No-LA Partner']] });
  fs.writeFileSync(fx.cataloguePath, withLas(buildCatalogue(fx.catalogueSpec()), echo, double.baseUrl));
  fx.writeConfig({ jobs: { ...JOBS_CONF, ca_file: double.tlsFiles.cert }, ewp: { schema_dir: PROJECT_SCHEMAS } });
  await fx.start();
});

after(async () => {
  await double?.close();
  await fx?.cleanup();
});

let seq = 0;
const freshId = (tag) => `${tag}-${process.pid}-${++seq}`;

// A partner's nomination as the nomination fetch stores it: the incoming
// registration at 'registered' and its smile.mobility row (is_outgoing false).
function seedMobility(id, { sending = P_LA, receiving = HEI_ID } = {}) {
  sql(`INSERT INTO smile.etablissement (schac_id, names) VALUES (${lit(sending)}, '[{"lang":"en","name":"Home"}]')
       ON CONFLICT (schac_id) DO NOTHING`);
  return Number(sql(`WITH i AS (
      INSERT INTO smile.inscription (given_names, family_name, home_etablissement_id, step_id, academic_year, omobility_id)
      SELECT 'Ivan', 'Sidorov', e.id, s.id, 2025, ${lit(id)}
        FROM smile.etablissement e, smile.step s WHERE e.schac_id = ${lit(sending)} AND s.code = 'registered'
      RETURNING id)
    INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id, is_outgoing, given_names, family_name,
        global_id, receiving_academic_year_id, proposal_id, inscription_id)
    SELECT ${lit(sending)}, ${lit(id)}, ${lit(receiving)}, false, 'Ivan', 'Sidorov',
        'urn:schac:personalUniqueCode:int:esi:example.org:42', '2025/2026', 'nomination-1', i.id FROM i
    RETURNING id`));
}

// The la element around version elements (first-version, approved-changes, changes-proposal).
function laElement(id, versions, { sending = P_LA, receiving = HEI_ID, family = 'Sidorov' } = {}) {
  const hei = (h, n) => `<${n}><hei-id>${xmlEscape(h)}</hei-id><ounit-name>Faculty</ounit-name>
      <contact-person><given-names>Anna</given-names><family-name>Coordinator</family-name><email>anna@example.org</email></contact-person></${n}>`;
  return `  <la>
    <omobility-id>${xmlEscape(id)}</omobility-id>
    ${hei(sending, 'sending-hei')}
    ${hei(receiving, 'receiving-hei')}
    <receiving-academic-year-id>2025/2026</receiving-academic-year-id>
    <student><given-names>Ivan</given-names><family-name>${xmlEscape(family)}</family-name>
      <global-id>urn:schac:personalUniqueCode:int:esi:example.org:42</global-id><birth-date>2001-05-05</birth-date>
      <citizenship>NO</citizenship><gender>1</gender><email>ivan@example.org</email></student>
    <start-date>2026-02-01</start-date>
    <end-date>2026-06-30</end-date>
    <eqf-level-studied-at-departure>7</eqf-level-studied-at-departure>
    <isced-f-code>0613</isced-f-code>
    <student-language-skill><language>en</language><cefr-level>B2</cefr-level></student-language-skill>
${versions}
  </la>\n`;
}

const getResponse = (las) => `<?xml version="1.0" encoding="UTF-8"?>
<omobility-las-get-response xmlns="${LAS_NS}" xmlns:trm="${TRM_NS}">
${las}</omobility-las-get-response>\n`;

// A scenario fragment made part of a valid document: comments dropped, the
// term-id children in the academic-term namespace, reason -> reason-code
// (the attribute the schema defines).
function scenarioVersions(file) {
  const raw = fs.readFileSync(specPath(...LAS_DIR, 'example-scenario', file), 'utf8');
  return raw.replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<(\/?)(term-number|total-terms)>/g, '<$1trm:$2>')
    .replace(/ reason="/g, ' reason-code="');
}

const serve = (id, body, o = {}) => behaviour.set(id, (req) => double.reply(req, { body, ...o }));

function notifyLa(id, sending = P_LA) {
  const body = `sending_hei_id=${encodeURIComponent(sending)}&omobility_id=${encodeURIComponent(id)}`;
  const req = fx.signed({ method: 'POST', path: '/ewp/omobility-la-cnr', body, contentType: 'application/x-www-form-urlencoded', key: laKey });
  return fx.send(req).then((res) => {
    assert.equal(res.status, 200, `OLA CNR answered ${res.status}: ${res.body}`);
  });
}

const lastJobId = () => Number(sql("SELECT coalesce(max(id), 0) FROM ewp.jobs WHERE api = 'omobility-las'"));
const job = (jid) => json(`SELECT row_to_json(j) FROM ewp.jobs j WHERE id = ${jid}`);

// Sends the CNR and waits for the job it queued to reach one of `statuses`.
async function notifyAndWait(id, statuses = ['success'], { ms = 15000, sending = P_LA, match } = {}) {
  const before = lastJobId();
  await notifyLa(id, sending);
  const want = [].concat(statuses);
  const r = await pollUntil(() => {
    const j = json(`SELECT row_to_json(j) FROM ewp.jobs j WHERE api = 'omobility-las' AND dedupe_key = ${lit(id)}
      AND id > ${before} ORDER BY id DESC LIMIT 1`);
    return { ok: !!j && want.includes(j.status) && (!match || match(j)), detail: JSON.stringify(j), job: j };
  }, ms, `LA job for ${id} ${want.join('|')}`, 100);
  return r.job;
}

function versions(id) {
  return json(`SELECT coalesce(json_agg(json_build_object('kind', v.kind, 'proposal_id', v.proposal_id, 'state', v.state,
      'comment', v.comment, 'ended', v.ended_at IS NOT NULL) ORDER BY v.id), '[]')
    FROM smile.la_version v JOIN smile.learning_agreement a ON a.id = v.learning_agreement_id
    JOIN smile.mobility m ON m.id = a.mobility_id WHERE m.omobility_id = ${lit(id)}`);
}

const fmt = (vs) => vs.map((v) => `${v.kind}:${v.proposal_id ?? '-'}:${v.state}`);

function components(id, kind) {
  return json(`SELECT coalesce(json_agg(json_build_object('list', list, 'position', position, 'title', title, 'status', status,
      'reason', reason_code, 'ects', ects, 'los_code', los_code, 'los_id', los_id, 'loi_id', loi_id,
      'term', term_number || '/' || total_terms, 'short', short_description) ORDER BY list, position), '[]')
    FROM smile.la_components WHERE omobility_id = ${lit(id)} AND kind = ${lit(kind)}`);
}

const laRows = (id) => Number(sql(`SELECT count(*) FROM smile.learning_agreement a JOIN smile.mobility m ON m.id = a.mobility_id
  WHERE m.omobility_id = ${lit(id)}`));

itest(() => fx, 'official get-response example: OLA CNR → job → signed get → LA, 3 versions, every component, ECTS totals', async () => {
  const exPath = specPath(...LAS_DIR, 'get-response-example.xml');
  const example = fs.readFileSync(exPath);
  assertValid(example, OFFICIAL_XSD(), 'official example (official schema)');
  assertValid(example, INTAKE_XSD, 'official example (intake schema)');
  const id = 'c442c289-5541-4cae-9edb-8ad83e133613';
  seedMobility(id, { sending: EX_SENDING, receiving: EX_RECEIVING });
  serve(id, example);
  const from = double.requests.length;
  const j = await notifyAndWait(id, 'success', { sending: EX_SENDING });
  assert.equal(j.kind, 'refetch');
  assert.equal(j.hei_id, EX_SENDING);
  assert.equal(j.attempts, 1);
  const gets = double.since(from).filter((r) => r.path === '/ewp/las/get');
  assert.equal(gets.length, 1, 'one get call');
  assert.equal(gets[0].method, 'POST');
  assert.equal(gets[0].signatureOk, true, 'the get is signed with our client key, Digest right');
  assert.equal(gets[0].form.get('sending_hei_id'), EX_SENDING);
  assert.deepEqual(gets[0].form.getAll('omobility_id'), [id]);

  assert.deepEqual(fmt(versions(id)), ['first-version:-:current', 'approved-changes:-:current',
    'changes-proposal:59B15BAF222F868493C167125FA32452E946:current']);
  // header: the la element without its versions
  const hdr = json(`SELECT json_build_object(
      'versions', xpath_exists('//l:first-version|//l:approved-changes|//l:changes-proposal', a.header, n),
      'omobility', (xpath('string(/l:la/l:omobility-id)', a.header, n))[1]::text,
      'isced', (xpath('string(/l:la/l:isced-clarification)', a.header, n))[1]::text,
      'receiving', (xpath('string(/l:la/l:receiving-hei/l:contact-person/l:given-names)', a.header, n))[1]::text,
      'gone', a.gone_at IS NOT NULL)
    FROM smile.learning_agreement a JOIN smile.mobility m ON m.id = a.mobility_id,
         (SELECT ARRAY[ARRAY['l', ${lit(LAS_NS)}]] AS n) ns WHERE m.omobility_id = ${lit(id)}`);
  assert.deepEqual(hdr, { versions: false, omobility: id, isced: 'Dynamical systems theory', receiving: 'Paweł Tomasz', gone: false });
  // the proposal as exchanged: its student change is kept
  assert.equal(sql(`SELECT (xpath('string(//l:student/l:family-name)', v.content, ARRAY[ARRAY['l', ${lit(LAS_NS)}]]))[1]
    FROM smile.la_version v WHERE v.kind = 'changes-proposal' AND v.proposal_id = '59B15BAF222F868493C167125FA32452E946'`), 'Karamazov');

  assert.deepEqual(components(id, 'first-version'), [
    { list: 'recognized', position: 1, title: 'Calculus', status: null, reason: null, ects: 5, los_code: null,
      los_id: 'CR/8f0d7dad-2bb6-d401-48c3-c7e0baf03efb', loi_id: 'CRI/212419af-4326-3e21-30ba-c0b5041d89e2', term: '2/2', short: null },
    { list: 'recognized', position: 2, title: 'Algebra with Geometry', status: null, reason: null, ects: 4, los_code: null,
      los_id: 'CR/7fdg347d-h45g-h445-02md-mdkd02kch2h5', loi_id: 'CRI/mnj763c-83mf-7723-nvdp-03bdb64ja2mf3', term: '2/2', short: null },
    { list: 'studied', position: 1, title: 'Introductory calculus', status: null, reason: null, ects: 9, los_code: null,
      los_id: null, loi_id: null, term: '2/2', short: null },
  ]);
  assert.deepEqual(components(id, 'approved-changes').map((c) => [c.list, c.title, c.los_code, c.status, c.reason, c.ects]),
    [['studied', 'Algebra', 'KR502B', 'inserted', 'extending-mobility', 6]]);
  assert.deepEqual(components(id, 'changes-proposal').map((c) => [c.list, c.position, c.title, c.status, c.reason, c.ects]),
    [['studied', 1, 'Elementary Set Theory', 'inserted', 'substituting-deleted', 6],
      ['studied', 2, 'Introductory calculus', 'deleted', 'language-mismatch', 9]]);
  const totals = json(`SELECT json_agg(json_build_object('kind', kind, 'list', list, 'n', components, 'listed', ects_listed,
      'inserted', ects_inserted, 'deleted', ects_deleted, 'net', ects_net) ORDER BY kind, list)
    FROM smile.la_version_ects WHERE omobility_id = ${lit(id)} AND state = 'current'`);
  assert.deepEqual(totals, [
    { kind: 'approved-changes', list: 'studied', n: 1, listed: 0, inserted: 6, deleted: 0, net: 6 },
    { kind: 'changes-proposal', list: 'studied', n: 2, listed: 0, inserted: 6, deleted: 9, net: -3 },
    { kind: 'first-version', list: 'recognized', n: 2, listed: 9, inserted: 0, deleted: 0, net: 9 },
    { kind: 'first-version', list: 'studied', n: 1, listed: 9, inserted: 0, deleted: 0, net: 9 },
  ]);
  // the exchange is in the message log with the job's id, valid
  const log = await pollUntil(() => {
    const rows = json(`SELECT coalesce(json_agg(json_build_object('api', api, 'status', status, 'validation', validation,
      'direction', direction, 'partner', partner_hei_ids)), '[]') FROM ewp.message_log WHERE job_id = ${j.id}`);
    return { ok: rows.length === 1, rows, detail: JSON.stringify(rows) };
  }, 5000, 'message-log row of the get');
  assert.deepEqual(log.rows[0], { api: 'omobility-las', status: 200, validation: 'valid', direction: 'out', partner: [EX_SENDING] });

  // the same document again: nothing new
  await notifyAndWait(id, 'success', { sending: EX_SENDING });
  assert.equal(versions(id).length, 3, 'identical content → no new version');
});

itest(() => fx, 'the 12-step scenario, played by the partner step by step: versions, states and history after each fetch', async () => {
  const id = freshId('scenario');
  const mobilityId = seedMobility(id);
  const part = (n) => scenarioVersions(n);
  const doc = (file) => getResponse(laElement(id, part(file)));
  const step = () => sql(`SELECT s.code FROM smile.inscription i JOIN smile.step s ON s.id = i.step_id
    JOIN smile.mobility m ON m.inscription_id = i.id WHERE m.id = ${mobilityId}`);
  // our staff's decision, as the decisions flow records it once the partner accepted it
  const decide = (kind, proposal, comment = null) => sql(`INSERT INTO ewp.decisions (mobility_id, kind, proposal_id, comment,
      signer_name, signed_at, decided_by, state)
    VALUES (${mobilityId}, '${kind}', ${lit(proposal)}, ${lit(comment)}, 'Claire Host', now(), 'admin', 'accepted')`);
  const play = async (file, expected, what) => {
    const body = doc(file);
    assertValid(body, OFFICIAL_XSD(), `${file} wrapped (official schema)`);
    serve(id, body);
    await notifyAndWait(id);
    assert.deepEqual(fmt(versions(id)), expected, `after ${what} (${file})`);
  };

  // 1: the sending HEI proposes the first version
  await play('01-initial-version.part.xml', ['changes-proposal:BAF222F868493C167125FA32452E9460731C575:current'], 'step 1');
  assert.deepEqual(components(id, 'changes-proposal').map((c) => [c.list, c.title]), [
    ['recognized', 'Analiza matematyczna II'], ['studied', 'Advanced Logics for Computer Scientists'],
    ['studied', 'Big data processing and cluster computing'], ['studied', 'Advanced Functional Programming']]);
  assert.equal(step(), 'registered');
  // 2: we comment it (accepted by the partner); its get still serves it
  decide('la-comment', 'BAF222F868493C167125FA32452E9460731C575',
    '"Big data processing and cluster computing" is not available. Please replace it with "Big Data Mining and Processing".');
  await play('01-initial-version.part.xml', ['changes-proposal:BAF222F868493C167125FA32452E9460731C575:current'], 'step 2');
  // 3: a new proposal replaces the commented one
  await play('03-update-initial-version.part.xml', ['changes-proposal:BAF222F868493C167125FA32452E9460731C575:commented',
    'changes-proposal:4C159B15BAF222F868493C167125FA32452:current'], 'step 3');
  const commented = versions(id)[0];
  assert.match(commented.comment, /Big Data Mining and Processing/);
  assert.equal(commented.ended, true);
  // 4: we approve it
  decide('la-approve', '4C159B15BAF222F868493C167125FA32452');
  await play('03-update-initial-version.part.xml', ['changes-proposal:BAF222F868493C167125FA32452E9460731C575:commented',
    'changes-proposal:4C159B15BAF222F868493C167125FA32452:current'], 'step 4');
  assert.equal(step(), 'registered', 'nothing signed by all three yet');
  // 5: the first version signed by all three
  await play('05-signed-first-version.part.xml', ['changes-proposal:BAF222F868493C167125FA32452E9460731C575:commented',
    'changes-proposal:4C159B15BAF222F868493C167125FA32452:approved',
    'first-version:4C159B15BAF222F868493C167125FA32452:current'], 'step 5');
  assert.equal(step(), 'approval_base', 'the registration is past approval_host');
  assert.deepEqual(json(`SELECT json_agg(json_build_object('step', s.code, 'type', sm.type, 'validator', sm.validator_id))
    FROM smile.stepmessage sm JOIN smile.step s ON s.id = sm.step_id JOIN smile.mobility m ON m.inscription_id = sm.inscription_id
    WHERE m.id = ${mobilityId}`), [{ step: 'approval_host', type: 'validated', validator: null }]);
  assert.deepEqual(components(id, 'first-version').map((c) => c.title), ['Analiza matematyczna II',
    'Advanced Logics for Computer Scientists', 'Big Data Mining and Processing', 'Advanced Functional Programming']);
  // 6: changes proposed during the mobility
  const v5 = ['changes-proposal:BAF222F868493C167125FA32452E9460731C575:commented',
    'changes-proposal:4C159B15BAF222F868493C167125FA32452:approved',
    'first-version:4C159B15BAF222F868493C167125FA32452:current'];
  await play('06-changes-proposal.part.xml', [...v5, 'changes-proposal:7974C159B15BAF222F868493C167125FA324:current'], 'step 6');
  assert.deepEqual(components(id, 'changes-proposal').map((c) => [c.list, c.title, c.status, c.reason, c.short !== null]), [
    ['studied', 'Advanced Functional Programming', 'deleted', 'language-mismatch', false],
    ['studied', 'Advanced Databases', 'inserted', 'substituting-deleted', false],
    ['virtual', 'Aspect oriented programming use cases', 'inserted', 'adding-virtual-component', true]]);
  // 7: approved by us; 8: the partner moved it into approved-changes and proposes more
  decide('la-approve', '7974C159B15BAF222F868493C167125FA324');
  await play('06-changes-proposal.part.xml', [...v5, 'changes-proposal:7974C159B15BAF222F868493C167125FA324:current'], 'step 7');
  const v8 = [...v5, 'changes-proposal:7974C159B15BAF222F868493C167125FA324:approved',
    'approved-changes:7974C159B15BAF222F868493C167125FA324:current'];
  await play('08-changes-proposal.part.xml', [...v8, 'changes-proposal:AF521761C394868F222FAB51B951C47973:current'], 'step 8');
  // 9: we comment; the decisions flow marks the proposal commented itself
  sql(`UPDATE smile.la_version SET state = 'commented', ended_at = now(), comment = 'The course "Distributed Systems" is not conducted in English.'
    WHERE kind = 'changes-proposal' AND proposal_id = 'AF521761C394868F222FAB51B951C47973'`);
  await play('08-changes-proposal.part.xml', [...v8, 'changes-proposal:AF521761C394868F222FAB51B951C47973:commented'],
    'step 9 (the commented proposal still served)');
  // 10: a new proposal; approved-changes re-indented by the partner but equal
  const v10 = [...v8, 'changes-proposal:AF521761C394868F222FAB51B951C47973:commented',
    'changes-proposal:61266750D019063512516C7EE01968012:current'];
  await play('10-changes-proposal.part.xml', v10, 'step 10');
  decide('la-approve', '61266750D019063512516C7EE01968012');
  await play('10-changes-proposal.part.xml', v10, 'step 11');
  // 12: the approved changes replace the previous ones
  await play('12-final-version.part.xml', [...v5, 'changes-proposal:7974C159B15BAF222F868493C167125FA324:approved',
    'approved-changes:7974C159B15BAF222F868493C167125FA324:superseded',
    'changes-proposal:AF521761C394868F222FAB51B951C47973:commented',
    'changes-proposal:61266750D019063512516C7EE01968012:approved',
    'approved-changes:61266750D019063512516C7EE01968012:current'], 'step 12');
  assert.deepEqual(components(id, 'approved-changes').map((c) => [c.list, c.title, c.status]), [
    ['studied', 'Advanced Logics for Computer Scientists', 'deleted'], ['studied', 'Computational Social Choice Theory', 'inserted'],
    ['studied', 'Advanced Functional Programming', 'deleted'], ['studied', 'Artificial Intelligence and Expert Systems', 'inserted'],
    ['virtual', 'Aspect oriented programming use cases', 'inserted']]);
  assert.equal(Number(sql("SELECT count(*) FROM smile.la_components WHERE kind = 'changes-proposal' AND omobility_id = " + lit(id))), 0,
    'no proposal in place after step 12');
  assert.equal(step(), 'approval_base', 'never moved again');
  assert.equal(Number(sql(`SELECT count(*) FROM smile.stepmessage sm JOIN smile.mobility m ON m.inscription_id = sm.inscription_id
    WHERE m.id = ${mobilityId}`)), 1);
  assert.equal(Number(sql(`SELECT count(*) FROM ewp.decisions WHERE mobility_id = ${mobilityId}`)), 4, 'the fetches wrote no decision');
});

itest(() => fx, '500, then 200: the job is retried after its backoff and the LA stored; both attempts logged with the job id', async () => {
  const id = freshId('retry');
  seedMobility(id);
  const body = getResponse(laElement(id, scenarioVersions('05-signed-first-version.part.xml')));
  let calls = 0;
  behaviour.set(id, (req) => {
    calls++;
    if (calls === 1) double.reply(req, { status: 500, body: errorXml('database restarting') });
    else double.reply(req, { body });
  });
  const j = await notifyAndWait(id, 'success');
  assert.equal(j.attempts, 2);
  assert.equal(calls, 2);
  assert.deepEqual(fmt(versions(id)), ['first-version:-:current']);
  const log = await pollUntil(() => {
    const rows = json(`SELECT coalesce(json_agg(status ORDER BY id), '[]') FROM ewp.message_log WHERE job_id = ${j.id}`);
    return { ok: rows.length === 2, rows, detail: JSON.stringify(rows) };
  }, 5000, 'two message-log rows');
  assert.deepEqual(log.rows, [500, 200]);
});

// Waits until the job has run `n` attempts and is pending again (retry), then returns it.
async function waitRetry(id, n = 1) {
  const r = await pollUntil(() => {
    const j = json(`SELECT row_to_json(j) FROM ewp.jobs j WHERE api = 'omobility-las' AND dedupe_key = ${lit(id)} ORDER BY id DESC LIMIT 1`);
    return { ok: !!j && j.attempts >= n && j.status === 'pending' && j.last_error, detail: JSON.stringify(j), job: j };
  }, 15000, `retry of the LA job for ${id}`, 100);
  return r.job;
}

for (const [name, reply, errRe, validation] of [
  ['not well-formed XML', (id, req) => double.reply(req, { body: '<omobility-las-get-response xmlns="' + LAS_NS + '"><la>' }), /invalid XML/, 'invalid'],
  ['XML not matching the schema (no student)', (id, req) => double.reply(req, {
    body: getResponse(laElement(id, scenarioVersions('01-initial-version.part.xml'))).replace(/<student>[\s\S]*?<\/student>/, '') }),
  /does not match/, 'invalid'],
  ['a bad signature (unknown key)', (id, req) => double.reply(req, {
    body: getResponse(laElement(id, scenarioVersions('01-initial-version.part.xml'))), key: makeKey() }), /signature refused/, 'not-checked'],
]) {
  itest(() => fx, `${name} → retried, nothing written; a valid answer later is stored`, async () => {
    const id = freshId('bad');
    seedMobility(id);
    behaviour.set(id, (req) => reply(id, req));
    await notifyLa(id);
    const j = await waitRetry(id, 1);
    assert.match(j.last_error, errRe);
    assert.equal(laRows(id), 0, 'no learning agreement written');
    assert.equal(Number(sql('SELECT count(*) FROM smile.la_version v JOIN smile.learning_agreement a ON a.id = v.learning_agreement_id ' +
      `JOIN smile.mobility m ON m.id = a.mobility_id WHERE m.omobility_id = ${lit(id)}`)), 0);
    const logged = await pollUntil(() => {
      const v = sql(`SELECT validation FROM ewp.message_log WHERE job_id = ${j.id} ORDER BY id LIMIT 1`);
      return { ok: v !== '', v, detail: v };
    }, 5000, 'message-log row');
    assert.equal(logged.v, validation);
    // the partner fixes its answer: the same job stores it
    serve(id, getResponse(laElement(id, scenarioVersions('01-initial-version.part.xml'))));
    await pollUntil(() => {
      const s = job(j.id);
      return { ok: s.status === 'success', detail: JSON.stringify(s) };
    }, 15000, 'the job succeeding once the answer is right');
    assert.deepEqual(fmt(versions(id)), ['changes-proposal:BAF222F868493C167125FA32452E9460731C575:current']);
  });
}

itest(() => fx, '4xx → rejected (final) with the partner\'s developer-message, nothing written', async () => {
  const id = freshId('400');
  seedMobility(id);
  serve(id, errorXml('caller does not cover the receiving HEI'), { status: 403 });
  const j = await notifyAndWait(id, ['rejected']);
  assert.equal(j.last_http_status, 403);
  assert.match(j.last_error, /HTTP 403: caller does not cover the receiving HEI/);
  assert.equal(j.attempts, 1);
  assert.equal(laRows(id), 0);
});

itest(() => fx, 'a partner without an OMobility LAs API → final no-cnr-api with a clear error, no call', async () => {
  const id = freshId('nola');
  seedMobility(id, { sending: P_NOLA });
  const from = double.requests.length;
  const j = await notifyAndWait(id, ['no-cnr-api'], { sending: P_NOLA });
  assert.match(j.last_error, /nola\.partner\.example\.org publishes no Outgoing Mobility Learning Agreements API/);
  assert.equal(double.since(from).length, 0, 'nothing sent to the partner');
  assert.equal(laRows(id), 0);
});

itest(() => fx, 'LA before the nomination → nomination re-fetch queued, nothing written; stored once the mobility exists', async () => {
  const id = freshId('early');
  serve(id, getResponse(laElement(id, scenarioVersions('05-signed-first-version.part.xml'))));
  await notifyLa(id);
  const j = await waitRetry(id, 1);
  assert.match(j.last_error, /not known yet/);
  const nom = json(`SELECT row_to_json(j) FROM (SELECT direction, kind, hei_id, api, dedupe_key, payload->>'sending_hei_id' AS sending,
      (payload->>'la_job_id')::bigint AS la_job FROM ewp.jobs WHERE api = 'omobilities' AND dedupe_key = ${lit(id)}) j`);
  assert.deepEqual(nom, { direction: 'in', kind: 'refetch', hei_id: P_LA, api: 'omobilities', dedupe_key: id, sending: P_LA, la_job: j.id });
  assert.equal(Number(sql(`SELECT count(*) FROM smile.mobility WHERE omobility_id = ${lit(id)}`)), 0);
  // the nomination arrives (as its fetch stores it): the LA job runs again and stores it
  const mobilityId = seedMobility(id);
  await pollUntil(() => {
    const s = job(j.id);
    return { ok: s.status === 'success', detail: JSON.stringify(s) };
  }, 15000, 'the LA job succeeding after the nomination');
  assert.deepEqual(fmt(versions(id)), ['first-version:-:current']);
  assert.equal(sql(`SELECT s.code FROM smile.inscription i JOIN smile.step s ON s.id = i.step_id
    JOIN smile.mobility m ON m.inscription_id = i.id WHERE m.id = ${mobilityId}`), 'approval_base');
});

itest(() => fx, 'an LA the get no longer returns → gone_at set, versions kept; served again → gone_at cleared', async () => {
  const id = freshId('gone');
  seedMobility(id);
  const body = getResponse(laElement(id, scenarioVersions('01-initial-version.part.xml')));
  serve(id, body);
  await notifyAndWait(id);
  serve(id, getResponse(''));
  await notifyAndWait(id);
  assert.equal(sql(`SELECT a.gone_at IS NOT NULL FROM smile.learning_agreement a JOIN smile.mobility m ON m.id = a.mobility_id
    WHERE m.omobility_id = ${lit(id)}`), 't');
  assert.equal(versions(id).length, 1, 'history kept');
  serve(id, body);
  await notifyAndWait(id);
  assert.equal(sql(`SELECT a.gone_at IS NULL FROM smile.learning_agreement a JOIN smile.mobility m ON m.id = a.mobility_id
    WHERE m.omobility_id = ${lit(id)}`), 't');
  assert.deepEqual(fmt(versions(id)), ['changes-proposal:BAF222F868493C167125FA32452E9460731C575:current']);
});

itest(() => fx, 'an answer older than the one stored (two fetches of one LA in flight) is dropped: stale', async () => {
  const id = freshId('stale');
  seedMobility(id);
  serve(id, getResponse(laElement(id, scenarioVersions('03-update-initial-version.part.xml'))));
  await notifyAndWait(id);
  const older = getResponse(laElement(id, scenarioVersions('01-initial-version.part.xml')));
  const call = (when) => sql(`SELECT smile.la_store_incoming(${lit(older)}::xml, ${lit(P_LA)}, ${lit(P_LA)}, ${lit(id)}, NULL, ${when})`);
  assert.equal(call("now() - interval '1 hour'"), 'stale');
  assert.deepEqual(fmt(versions(id)), ['changes-proposal:4C159B15BAF222F868493C167125FA32452:current'], 'nothing written');
  // the same document sent later than the stored one is taken
  assert.equal(call("now() + interval '1 second'"), 'stored');
  assert.deepEqual(fmt(versions(id)), ['changes-proposal:4C159B15BAF222F868493C167125FA32452:superseded',
    'changes-proposal:BAF222F868493C167125FA32452E9460731C575:current']);
});

itest(() => fx, 'a document naming another sending HEI → rejected, nothing written', async () => {
  const id = freshId('wronghei');
  seedMobility(id);
  serve(id, getResponse(laElement(id, scenarioVersions('01-initial-version.part.xml'), { sending: 'someone.else.example.org' })));
  const j = await notifyAndWait(id, ['rejected']);
  assert.match(j.last_error, /names sending HEI "someone\.else\.example\.org"/);
  assert.equal(laRows(id), 0);
});

itest(() => fx, 'smile.inscription_advance: next active step, inactive ones skipped, never backwards', async () => {
  const id = freshId('adv');
  const mobilityId = seedMobility(id);
  const ins = Number(sql(`SELECT inscription_id FROM smile.mobility WHERE id = ${mobilityId}`));
  const at = () => sql(`SELECT s.code FROM smile.inscription i JOIN smile.step s ON s.id = i.step_id WHERE i.id = ${ins}`);
  // 'course' (position 3) made inactive: from 'registered' the next active step is approval_educational
  sql("UPDATE smile.step SET active = false WHERE code = 'course'");
  try {
    assert.equal(sql(`SELECT smile.inscription_advance(${ins}, 'registered')`), 't');
  } finally {
    sql("UPDATE smile.step SET active = true WHERE code = 'course'");
  }
  assert.equal(at(), 'approval_educational');
  assert.equal(sql(`SELECT smile.inscription_advance(${ins}, 'pre-registration')`), 'f', 'never backwards');
  assert.equal(at(), 'approval_educational');
  assert.equal(sql(`SELECT smile.inscription_advance(${ins}, 'contract')`), 'f', 'no step after the last one');
  assert.equal(at(), 'approval_educational');
  assert.deepEqual(json(`SELECT json_agg(json_build_object('step', s.code, 'type', sm.type, 'valid', sm.is_valid, 'validator', sm.validator_id))
    FROM smile.stepmessage sm JOIN smile.step s ON s.id = sm.step_id WHERE sm.inscription_id = ${ins}`),
  [{ step: 'registered', type: 'validated', valid: true, validator: null }]);
  assert.throws(() => sql(`SELECT smile.inscription_advance(${ins}, 'no-such-step')`), /no workflow step "no-such-step"/);
  assert.equal(Number(sql(`SELECT count(*) FROM smile.stepmessage WHERE inscription_id = ${ins}`)), 1);
});

itest(() => fx, 'PostgreSQL down when the answers come: nothing half-written, every LA stored once it is back', async () => {
  const ids = Array.from({ length: 5 }, () => freshId('pgdown'));
  for (const id of ids) {
    seedMobility(id);
    const body = getResponse(laElement(id, scenarioVersions('06-changes-proposal.part.xml')));
    behaviour.set(id, (req) => setTimeout(() => double.reply(req, { body }), 800));
  }
  const from = double.requests.length;
  for (const id of ids) await notifyLa(id);
  await pollUntil(() => {
    const n = ids.filter((id) => double.since(from).some((r) => r.form.get('omobility_id') === id)).length;
    return { ok: n === ids.length, detail: `${n} of ${ids.length} on the wire` };
  }, 10000, 'every get on the wire');
  await fx.pg.haltAsync('fast');
  await sleep(1500);
  await fx.pg.resumeAsync();
  await pollUntil(() => {
    const n = Number(sql(`SELECT count(*) FROM ewp.jobs WHERE api = 'omobility-las' AND status = 'success'
      AND dedupe_key IN (${ids.map(lit).join(',')})`));
    return { ok: n === ids.length, detail: `${n} of ${ids.length} stored` };
  }, 30000, 'every LA job done after the restart', 200);
  for (const id of ids) {
    assert.deepEqual(fmt(versions(id)), ['first-version:-:current', 'changes-proposal:7974C159B15BAF222F868493C167125FA324:current'], id);
    // the answer that found the database down was fetched again, not lost
    const j = json(`SELECT row_to_json(j) FROM ewp.jobs j WHERE api = 'omobility-las' AND dedupe_key = ${lit(id)}`);
    assert.ok(j.attempts >= 2, `${id}: ${JSON.stringify(j)}`);
  }
});

itest(() => fx, 'the worker killed with kill -9 in the middle of a fetch: after the lease the LA is fetched again and stored once', async () => {
  const id = freshId('kill');
  seedMobility(id);
  const body = getResponse(laElement(id, scenarioVersions('01-initial-version.part.xml')));
  let hung;
  behaviour.set(id, (req) => {
    if (!hung) hung = req; // never answered
    else double.reply(req, { body });
  });
  await notifyLa(id);
  await pollUntil(() => ({ ok: !!hung, detail: 'no get yet' }), 10000, 'the first get at the partner');
  const j = json(`SELECT row_to_json(j) FROM ewp.jobs j WHERE api = 'omobility-las' AND dedupe_key = ${lit(id)}`);
  assert.equal(j.status, 'running');
  const pid = Number(j.leased_by.split(':').pop());
  assert.ok(pid > 0 && pid !== fx.proc.pid, `leased_by ${j.leased_by} names a worker`);
  process.kill(pid, 'SIGKILL');
  await pollUntil(() => {
    const s = job(j.id);
    return { ok: s.status === 'success', detail: JSON.stringify(s) };
  }, 30000, 'the job done by the restarted worker');
  assert.equal(job(j.id).attempts, 2);
  assert.deepEqual(fmt(versions(id)), ['changes-proposal:BAF222F868493C167125FA32452E9460731C575:current']);
  hung.res.destroy();
  assert.ok(fx.alive, 'the supervisor is still running');
});

itest(() => fx, 'the log holds no sanitizer report and no unexpected warning', async () => {
  const log = fs.readFileSync(fx.logPath, 'utf8');
  assert.doesNotMatch(log, /Sanitizer|runtime error:/);
  // expected: the worker killed and the database stopped on purpose above
  const warnings = log.split('\n').filter((l) => /\b(warn|error)\b/i.test(l) &&
    !/worker \d+ .*(killed|signal 9)|exited on signal 9|restart/i.test(l) &&
    !/\bdb: |message log/.test(l));
  assert.deepEqual(warnings, [], `unexpected warnings in ${fx.logPath}`);
});
