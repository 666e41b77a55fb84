// The stats endpoint of the Outgoing Mobility LA CNR API v1.1 (the
// receiving side, gateway/api/api_omobility_la_cnr_stats.c and
// sql/0012_la_incoming_stats.sql): counts of the learning agreements we
// received, per receiving academic year from 2021/2022 on, served by a
// real ewpd from a real PostgreSQL to signed callers (the EWP Stats
// Portal among them).
//
// Incoming LAs are written straight into smile.mobility /
// smile.learning_agreement / smile.la_version / ewp.decisions in every
// state the receiving side can hold (the fetch itself is
// omobility-las-fetch.test.mjs's), and once more through
// smile.la_store_incoming() with the official 12-step scenario
// (../shared/ewp-specs, ewp-specs-api-omobility-las/examples), checking
// the counts after every step. Every response is validated against the
// official stats-response.xsd and ours; the manifest entry against the
// official manifest-entry.xsd.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before } from 'node:test';

import { Ewpd, HEI_ID, itest } from './lib/daemon.mjs';
import { assertErrorResponse, assertStatus, assertXmlContentType, exchange } from './lib/ewp.mjs';
import { NS, projectSchema, specPath } from './lib/env.mjs';
import { pollUntil } from './lib/poll.mjs';
import { makeKey } from './lib/sign.mjs';
import { assertValid, parseXml, xmlEscape, xmllintValidate } from './lib/xml.mjs';

const GH = 'https://github.com/erasmus-without-paper';
const LAS_NS = `${GH}/ewp-specs-api-omobility-las/blob/stable-v1/endpoints/get-response.xsd`;
const TRM_NS = `${GH}/ewp-specs-types-academic-term/tree/stable-v2`;
const STATS_NS = `${GH}/ewp-specs-api-omobility-la-cnr/tree/stable-v1/endpoints/stats-response.xsd`;
const ENTRY_NS = `${GH}/ewp-specs-api-omobility-la-cnr/blob/stable-v1/manifest-entry.xsd`;
const REG_DIR = ['ewp-registry-service', 'src', 'main', 'resources', 'schemas', 'ewp-specs-api-omobility-la-cnr-v1.1.0'];
const STATS_PATH = '/ewp/omobility-la-cnr/stats';
const STATS_HEI = 'stats.erasmuswithoutpaper.eu'; // the EWP Stats Portal
const SENDER = 'sender.example.org'; // sending HEI of the incoming LAs
const YEAR = '2025/2026';
const COUNTS = ['la-incoming-total', 'la-incoming-some-version-approved', 'la-incoming-latest-version-approved',
  'la-incoming-latest-version-rejected', 'la-incoming-latest-version-awaiting'];

const officialXsd = () => specPath('ewp-specs-api-omobility-la-cnr', 'endpoints', 'stats-response.xsd');
const registryXsd = () => specPath(...REG_DIR, 'endpoints', 'stats-response.xsd');

let fx;
let statsKey; // client key of the Stats Portal's host

before(async () => {
  fx = await Ewpd.create('omobility-la-cnr-stats', { pg: true, tls: true, start: false });
  statsKey = makeKey();
  fx.extraHosts.push({ adminEmail: 'admin@stats.erasmuswithoutpaper.eu', heis: [STATS_HEI], clientKeys: [statsKey] });
  fx.extraInstitutions.push({ id: STATS_HEI, names: [['en', 'EWP Stats Portal']] }, { id: SENDER, names: [['en', 'Sender University']] });
  fx.writeCatalogue();
  await fx.start();
});

after(async () => { await fx?.cleanup(); });

const sql = (q) => fx.pg.psql(q);
const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);

// A mobility row as the nomination fetch writes it (is_outgoing false:
// a partner's nomination, we are the receiving HEI); returns its id.
function seedMobility(id, { year = YEAR, sending = SENDER, receiving = HEI_ID, outgoing = false } = {}) {
  return Number(sql(`INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id, is_outgoing, given_names,
      family_name, global_id, birth_date, nationality, gender, email, agreement_isced, nominee_isced, eqf_level,
      receiving_academic_year_id, proposal_id)
    VALUES (${lit(sending)}, ${lit(id)}, ${lit(receiving)}, ${outgoing}, 'Ingrid', 'Haugen',
      ${lit(`urn:schac:personalUniqueCode:int:esi:${sending}:${id}`)}, '2002-03-03', 'NO', 2, 'ingrid@example.org',
      '0541', '0541', 6, ${lit(year)}, 'nomination-1') RETURNING id`));
}

// An LA with its versions, written in order: [kind, state, proposal id],
// and our decisions on its proposals: [kind, proposal id, state].
function seedLa(id, { versions = [], decisions = [], gone = false, ...mob } = {}) {
  const mid = seedMobility(id, mob);
  const la = Number(sql(`INSERT INTO smile.learning_agreement (mobility_id, header, gone_at)
    VALUES (${mid}, ${lit(`<la xmlns="${LAS_NS}"><omobility-id>${xmlEscape(id)}</omobility-id></la>`)},
      ${gone ? 'now()' : 'NULL'}) RETURNING id`));
  for (const [kind, state, pid] of versions) {
    const content = `<${kind} xmlns="${LAS_NS}"${kind === 'changes-proposal' ? ` id="${xmlEscape(pid)}"` : ''}/>`;
    sql(`INSERT INTO smile.la_version (learning_agreement_id, kind, proposal_id, content, state, ended_at)
      VALUES (${la}, ${lit(kind)}, ${lit(pid)}, ${lit(content)}, ${lit(state)}, ${state === 'current' ? 'NULL' : 'now()'})`);
  }
  for (const [kind, pid, state] of decisions) addDecision(mid, kind, pid, state);
  return mid;
}

function addDecision(mobilityId, kind, proposalId, state) {
  sql(`INSERT INTO ewp.decisions (mobility_id, kind, proposal_id, comment, signer_name, signer_position, signer_email,
      signed_at, decided_by, state)
    VALUES (${mobilityId}, ${lit(kind)}, ${lit(proposalId)}, ${kind === 'la-comment' ? "'please change the courses'" : 'NULL'},
      'Anna Coordinator', 'Erasmus coordinator', 'anna@smile.test', now(), 'test', ${lit(state)})`);
}

// GET (or POST) the stats signed by key; asserts 200, XML, both schemas,
// the root; returns { req, res, years: { year: [five counts] }, order }.
async function stats({ key = fx.partnerKey, method = 'GET' } = {}) {
  const req = fx.signed(method === 'POST'
    ? { key, method, path: STATS_PATH, body: '', contentType: 'application/x-www-form-urlencoded' }
    : { key, method, path: STATS_PATH });
  const res = await fx.send(req);
  assertStatus(res, 200, req, `stats (${method})`);
  assertXmlContentType(res, req);
  assertValid(res.body, officialXsd(), 'stats response (official stats-response.xsd)');
  assertValid(res.body, registryXsd(), 'stats response (Registry copy of stats-response.xsd v1.1.0)');
  assertValid(res.body, projectSchema('omobility-la-cnr-stats-response.xsd'), 'stats response (ewp-schemas)');
  const root = parseXml(res.body);
  assert.equal(root.local, 'las-incoming-stats-response', exchange(req, res));
  assert.equal(root.ns, STATS_NS, exchange(req, res));
  const years = {};
  const order = [];
  for (const y of root.elements(STATS_NS, 'academic-year-la-stats')) {
    const id = y.element(STATS_NS, 'receiving-academic-year-id').text;
    assert.deepEqual(y.elements().map((e) => e.local), ['receiving-academic-year-id', ...COUNTS], `children of ${id}`);
    years[id] = COUNTS.map((c) => Number(y.element(STATS_NS, c).text));
    order.push(id);
  }
  return { req, res, years, order };
}

// ======================================================================

itest(() => fx, 'stats: no learning agreement received → an empty, valid las-incoming-stats-response', async () => {
  const { years, order, res } = await stats();
  assert.deepEqual(order, [], res.body.toString());
  assert.deepEqual(years, {});
});

// Every state an incoming LA can be in, with what it counts as: latest
// version approved / rejected / awaiting (null: not counted), some version
// approved, and whether it is counted at all (gone, outgoing, another
// receiving HEI, before 2021/2022: not).
const P = (n) => `PROP-${n}`;
const CASES = [
  { id: 'in-awaiting', versions: [['changes-proposal', 'current', P(1)]], latest: 'awaiting', some: false },
  { id: 'in-first-only', versions: [['changes-proposal', 'approved', P(2)], ['first-version', 'current', P(2)]], latest: 'approved', some: true },
  { id: 'in-first-then-proposal', versions: [['changes-proposal', 'approved', P(3)], ['first-version', 'current', P(3)], ['changes-proposal', 'current', P(4)]],
    latest: 'awaiting', some: true },
  { id: 'in-changes-commented', versions: [['first-version', 'current', null], ['approved-changes', 'current', null], ['changes-proposal', 'commented', P(5)]],
    latest: 'rejected', some: true },
  // the sending HEI still serves the proposal we commented: still current here
  { id: 'in-comment-accepted', versions: [['changes-proposal', 'current', P(6)]], decisions: [['la-comment', P(6), 'accepted']], latest: 'rejected', some: false },
  // our approval accepted, the re-fetch that makes it the first version not run yet
  { id: 'in-approve-accepted', versions: [['changes-proposal', 'current', P(7)]], decisions: [['la-approve', P(7), 'accepted']], latest: 'approved', some: true },
  { id: 'in-approve-queued', versions: [['changes-proposal', 'current', P(8)]], decisions: [['la-approve', P(8), 'queued']], latest: 'awaiting', some: false },
  { id: 'in-comment-refused', versions: [['changes-proposal', 'current', P(9)]], decisions: [['la-comment', P(9), 'refused']], latest: 'awaiting', some: false },
  { id: 'in-approve-conflict', versions: [['changes-proposal', 'current', P(10)]], decisions: [['la-approve', P(10), 'conflict']], latest: 'awaiting', some: false },
  { id: 'in-first-commented', versions: [['changes-proposal', 'commented', P(11)]], latest: 'rejected', some: false },
  // a decision on an older proposal says nothing of the newer one
  { id: 'in-new-after-comment', versions: [['changes-proposal', 'commented', P(12)], ['changes-proposal', 'current', P(13)]],
    decisions: [['la-comment', P(12), 'accepted']], latest: 'awaiting', some: false },
  { id: 'in-withdrawn', versions: [['changes-proposal', 'superseded', P(14)]], latest: null, some: false },
  { id: 'in-first-replaced', versions: [['first-version', 'superseded', null], ['first-version', 'current', null], ['changes-proposal', 'superseded', P(15)]],
    latest: 'approved', some: true },
  // not counted
  { id: 'in-gone', versions: [['changes-proposal', 'current', P(16)]], gone: true, latest: 'awaiting', some: false, counted: false },
  { id: 'in-other-receiver', versions: [['changes-proposal', 'current', P(17)]], receiving: 'd1.example.org', latest: 'awaiting', some: false, counted: false },
  { id: 'out-ours', versions: [['changes-proposal', 'current', P(18)]], outgoing: true, sending: HEI_ID, receiving: SENDER, counted: false },
  // other years
  { id: 'in-2024-approved', year: '2024/2025', versions: [['first-version', 'current', null]], latest: 'approved', some: true },
  { id: 'in-2024-awaiting', year: '2024/2025', versions: [['changes-proposal', 'current', P(19)]], latest: 'awaiting', some: false },
  { id: 'in-2024-rejected', year: '2024/2025', versions: [['first-version', 'current', null], ['changes-proposal', 'commented', P(20)]], latest: 'rejected', some: true },
  { id: 'in-2021-awaiting', year: '2021/2022', versions: [['changes-proposal', 'current', P(21)]], latest: 'awaiting', some: false },
  { id: 'in-2020-awaiting', year: '2020/2021', versions: [['changes-proposal', 'current', P(22)]], latest: 'awaiting', some: false, counted: false },
];

itest(() => fx, 'stats: every state of an incoming LA counted once per year, as the annotations of stats-response.xsd say', async () => {
  for (const c of CASES) seedLa(c.id, c);
  // where each LA stands (the view the counts come from)
  const rows = JSON.parse(sql(`SELECT json_object_agg(omobility_id, json_build_array(latest_state, some_version_approved))
    FROM smile.la_incoming`));
  for (const c of CASES.filter((x) => !x.outgoing)) {
    assert.deepEqual(rows[c.id], [c.latest, c.some], `${c.id}: [latest state, some version approved]`);
  }
  assert.equal(rows['out-ours'], undefined, 'our outgoing LAs are not incoming ones');

  const { years, order, req, res } = await stats();
  assert.deepEqual(order, ['2021/2022', '2024/2025', YEAR], `years in order, 2020/2021 left out${exchange(req, res)}`);
  // 2025/2026, by hand from CASES: 12 counted (not gone, withdrawn, another
  // receiver's, outgoing); some approved: first-only, first-then-proposal,
  // changes-commented, approve-accepted, first-replaced = 5;
  // approved: first-only, approve-accepted, first-replaced = 3;
  // rejected: changes-commented, comment-accepted, first-commented = 3;
  // awaiting: awaiting, first-then-proposal, approve-queued,
  // comment-refused, approve-conflict, new-after-comment = 6.
  assert.deepEqual(years[YEAR], [12, 5, 3, 3, 6], `${YEAR}${exchange(req, res)}`);
  assert.deepEqual(years['2024/2025'], [3, 2, 1, 1, 1]);
  assert.deepEqual(years['2021/2022'], [1, 0, 0, 0, 1]);
  // the same from the table: each counted case in its year
  for (const y of order) {
    const cs = CASES.filter((c) => (c.year || YEAR) === y && c.counted !== false && c.latest);
    assert.deepEqual(years[y], [cs.length, cs.filter((c) => c.some).length, ...['approved', 'rejected', 'awaiting']
      .map((s) => cs.filter((c) => c.latest === s).length)], `${y} from the table of cases`);
    const [total, some, ap, rej, aw] = years[y];
    assert.equal(ap + rej + aw, total, `${y}: approved + rejected + awaiting = total`);
    assert.ok(ap <= some && some <= total, `${y}: latest approved <= some approved <= total`);
  }
});

itest(() => fx, 'stats: a change of state moves an LA between counts at once (no cache)', async () => {
  const before = (await stats()).years[YEAR];
  const mid = seedLa('in-moving', { versions: [['changes-proposal', 'current', P(30)]] });
  assert.deepEqual((await stats()).years[YEAR], [before[0] + 1, before[1], before[2], before[3], before[4] + 1], 'new: awaiting');
  addDecision(mid, 'la-comment', P(30), 'accepted');
  assert.deepEqual((await stats()).years[YEAR], [before[0] + 1, before[1], before[2], before[3] + 1, before[4]], 'commented');
  sql(`UPDATE smile.learning_agreement SET gone_at = now(), modified_at = clock_timestamp() WHERE mobility_id = ${mid}`);
  assert.deepEqual((await stats()).years[YEAR], before, 'gone from the partner: not counted');
});

// ----------------------------------------------------------------------
// The official 12-step scenario, stored the way the LA re-fetch stores it.
// ----------------------------------------------------------------------
const SCEN_DIR = ['ewp-specs-api-omobility-las', 'examples', 'example-scenario'];
const SCEN_YEAR = '2023/2024';

// A scenario fragment turned into a namespace-correct get response: the
// comments dropped, term-id children in the academic-term namespace,
// wrapped in an la element whose header names our HEI as receiving.
function scenarioResponse(id, file) {
  const frag = fs.readFileSync(specPath(...SCEN_DIR, file), 'utf8').replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<(\/?)(term-number|total-terms)>/g, '<$1trm:$2>');
  const hei = (tag, h) => `<${tag}><hei-id>${xmlEscape(h)}</hei-id><ounit-name>Faculty</ounit-name>` +
    `<contact-person><given-names>Anna</given-names><family-name>Coordinator</family-name><email>anna@example.org</email></contact-person></${tag}>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<omobility-las-get-response xmlns="${LAS_NS}" xmlns:trm="${TRM_NS}">
  <la>
    <omobility-id>${xmlEscape(id)}</omobility-id>
    ${hei('sending-hei', SENDER)}
    ${hei('receiving-hei', HEI_ID)}
    <receiving-academic-year-id>${SCEN_YEAR}</receiving-academic-year-id>
    <student><given-names>Ingrid</given-names><family-name>Haugen</family-name><email>ingrid@example.org</email></student>
    <start-date>2024-02-01</start-date>
    <end-date>2024-06-30</end-date>
    <eqf-level-studied-at-departure>7</eqf-level-studied-at-departure>
    <isced-f-code>0613</isced-f-code>
    <student-language-skill><language>en</language><cefr-level>B2</cefr-level></student-language-skill>
${frag}
  </la>
</omobility-las-get-response>
`;
}

// The changes-proposal-id a scenario decision (comment / approve) names.
function scenarioProposalId(file) {
  const m = /<changes-proposal-id>\s*([^<\s]+)\s*<\/changes-proposal-id>/.exec(fs.readFileSync(specPath(...SCEN_DIR, file), 'utf8'));
  assert.ok(m, `${file}: changes-proposal-id`);
  return m[1];
}

itest(() => fx, 'stats: the official 12-step scenario, stored by smile.la_store_incoming, counted right after every step', async () => {
  const id = 'scenario-la-1';
  const mid = seedMobility(id, { year: SCEN_YEAR });
  // [file, expected counts of SCEN_YEAR after it: total, some approved,
  //  latest approved, rejected, awaiting]
  const steps = [
    ['01-initial-version.part.xml', [1, 0, 0, 0, 1]],
    ['02-comment-proposal.part.xml', [1, 0, 0, 1, 0]],
    ['03-update-initial-version.part.xml', [1, 0, 0, 0, 1]],
    ['04-approve-proposal.part.xml', [1, 1, 1, 0, 0]],
    ['05-signed-first-version.part.xml', [1, 1, 1, 0, 0]],
    ['06-changes-proposal.part.xml', [1, 1, 0, 0, 1]],
    ['07-approve-proposal.part.xml', [1, 1, 1, 0, 0]],
    ['08-changes-proposal.part.xml', [1, 1, 0, 0, 1]],
    ['09-comment-proposal.part.xml', [1, 1, 0, 1, 0]],
    ['10-changes-proposal.part.xml', [1, 1, 0, 0, 1]],
    ['11-approve-proposal.part.xml', [1, 1, 1, 0, 0]],
    ['12-final-version.part.xml', [1, 1, 1, 0, 0]],
  ];
  for (const [file, want] of steps) {
    if (/comment-proposal|approve-proposal/.test(file)) {
      // our decision on that proposal, accepted by the sending HEI
      addDecision(mid, file.includes('comment') ? 'la-comment' : 'la-approve', scenarioProposalId(file), 'accepted');
    } else {
      const r = sql(`SELECT smile.la_store_incoming(${lit(scenarioResponse(id, file))}::xml, ${lit(SENDER)}, ${lit(SENDER)}, ${lit(id)})`);
      assert.equal(r, 'stored', `${file} stored`);
    }
    const { years, req, res } = await stats({ key: statsKey });
    assert.deepEqual(years[SCEN_YEAR], want, `after ${file}${exchange(req, res)}`);
  }
  // the history the store kept: the two comments and three approvals
  assert.deepEqual(sql(`SELECT string_agg(v.state, ',' ORDER BY v.id) FROM smile.la_version v
      JOIN smile.learning_agreement la ON la.id = v.learning_agreement_id
     WHERE la.mobility_id = ${mid} AND v.kind = 'changes-proposal'`).split(','),
  ['commented', 'approved', 'approved', 'commented', 'approved']);
});

// ----------------------------------------------------------------------
// Callers, methods, errors.
// ----------------------------------------------------------------------
itest(() => fx, 'stats: the Stats Portal, a partner and any other signed caller get the same counts; POST too', async () => {
  const portal = await stats({ key: statsKey });
  assert.ok(portal.order.length >= 3, 'the counts of the tests above');
  for (const [key, method, who] of [[fx.partnerKey, 'GET', 'partner'], [fx.dKey, 'GET', 'a HEI with no mobility'],
    [statsKey, 'POST', 'Stats Portal, POST'], [fx.partnerKey, 'POST', 'partner, POST']]) {
    const r = await stats({ key, method });
    assert.deepEqual(r.years, portal.years, `${who}: same counts`);
    assert.deepEqual(r.order, portal.order, `${who}: same order`);
  }
});

itest(() => fx, 'stats errors: anonymous 401, unknown key 403, PUT and DELETE 405 (Allow: GET, POST), all error-responses', async () => {
  let req = { method: 'GET', target: STATS_PATH, headers: [['Host', fx.hostHeader]] };
  let res = await fx.send(req);
  assertErrorResponse(res, 401, req, 'anonymous GET');
  assert.match(res.header('WWW-Authenticate') || '', /^Signature realm="EWP"/, 'WWW-Authenticate');
  req = fx.signed({ key: fx.unknownKey, path: STATS_PATH });
  res = await fx.send(req);
  assertErrorResponse(res, 403, req, 'a key in no catalogue');
  for (const method of ['PUT', 'DELETE']) {
    req = fx.signed({ key: statsKey, method, path: STATS_PATH });
    res = await fx.send(req);
    assertErrorResponse(res, 405, req, method);
    assert.equal(res.header('Allow'), 'GET, POST', `${method}: Allow${exchange(req, res)}`);
  }
  // the CNR listener next to it keeps its own rules
  req = fx.signed({ key: statsKey, method: 'GET', path: '/ewp/omobility-la-cnr' });
  res = await fx.send(req);
  assertErrorResponse(res, 405, req, 'GET on the CNR listener');
});

itest(() => fx, 'manifest: the omobility-la-cnr entry lists stats-url, valid against the official manifest-entry.xsd; the URL is served', async () => {
  const req = { method: 'GET', target: fx.manifestPath, headers: [['Host', fx.hostHeader]] };
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'manifest');
  assertValid(res.body, specPath('ewp-specs-api-discovery', 'manifest.xsd'), 'manifest (official)');
  assertValid(res.body, projectSchema('manifest.xsd'), 'manifest (ewp-schemas)');
  const apis = parseXml(res.body).element(NS.manifest, 'host').element(NS.registry, 'apis-implemented');
  const entries = apis.elements(ENTRY_NS, 'omobility-la-cnr');
  assert.equal(entries.length, 1, `one omobility-la-cnr entry (the stats endpoint adds none)${exchange(req, res)}`);
  const e = entries[0];
  assert.equal(e.attr('version'), '1.1.0');
  assert.deepEqual(e.elements().map((x) => x.local), ['http-security', 'url', 'stats-url', 'max-omobility-ids']);
  assert.equal(e.element(ENTRY_NS, 'url').text, `${fx.publicUrl}/ewp/omobility-la-cnr`);
  const statsUrl = e.element(ENTRY_NS, 'stats-url').text;
  assert.equal(statsUrl, `${fx.publicUrl}${STATS_PATH}`);
  // the entry as a document of its own, against the official and our schema
  const text = res.body.toString('utf8');
  const open = `<omobility-la-cnr xmlns="${ENTRY_NS}"`;
  const from = text.indexOf(open);
  const to = text.indexOf('</omobility-la-cnr>', from) + '</omobility-la-cnr>'.length;
  assert.ok(from >= 0 && to > from, 'entry in the manifest text');
  const doc = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${open} xmlns:sec="${NS.sec}"${text.slice(from + open.length, to)}`);
  assertValid(doc, specPath('ewp-specs-api-omobility-la-cnr', 'manifest-entry.xsd'), 'entry (official manifest-entry.xsd)');
  assertValid(doc, specPath(...REG_DIR, 'manifest-entry.xsd'), 'entry (Registry copy v1.1.0)');
  assertValid(doc, projectSchema('omobility-la-cnr-entry.xsd'), 'entry (ewp-schemas)');
  // what the Stats Portal reads from the catalogue is what we serve
  const sreq = fx.signed({ key: statsKey, path: new URL(statsUrl).pathname });
  const sres = await fx.send(sreq);
  assertStatus(sres, 200, sreq, 'GET stats-url');
  assertValid(sres.body, officialXsd(), 'stats-url response (official)');
});

itest(() => fx, 'schemas: the official example validates against ours; ours refuses a year before 2021/2022 and a repeated year', async () => {
  const example = fs.readFileSync(specPath('ewp-specs-api-omobility-la-cnr', 'endpoints', 'stats-response-example.xml'));
  assertValid(example, officialXsd(), 'official example (official schema)');
  assertValid(example, projectSchema('omobility-la-cnr-stats-response.xsd'), 'official example (ewp-schemas)');
  const doc = (years) => Buffer.from(`<las-incoming-stats-response xmlns="${STATS_NS}">${years.map((y) =>
    `<academic-year-la-stats><receiving-academic-year-id>${y}</receiving-academic-year-id>${COUNTS.map((c) => `<${c}>1</${c}>`).join('')}</academic-year-la-stats>`).join('')}</las-incoming-stats-response>`);
  const ours = projectSchema('omobility-la-cnr-stats-response.xsd');
  assert.equal(xmllintValidate(doc(['2021/2022', '2022/2023']), ours).ok, true, 'two years');
  assert.equal(xmllintValidate(doc(['2020/2021']), ours).ok, false, 'before 2021/2022');
  assert.equal(xmllintValidate(doc(['2022/2023', '2022/2023']), ours).ok, false, 'a year twice');
});

itest(() => fx, 'stats: database down → 503 error-response (the Stats Portal comes back later), ewpd stays up; back → 200', async () => {
  fx.pg.halt();
  try {
    const req = fx.signed({ key: statsKey, path: STATS_PATH });
    const res = await fx.send(req);
    assertErrorResponse(res, 503, req, 'database down');
    assert.ok(fx.alive, 'ewpd still running');
  } finally {
    fx.pg.resume();
  }
  await pollUntil(async () => {
    const req = fx.signed({ key: statsKey, path: STATS_PATH });
    const res = await fx.send(req);
    return { ok: res.status === 200, detail: `HTTP ${res.status}` };
  }, 10000, 'stats answered again after the restart');
  assert.ok((await stats()).order.includes(YEAR), 'the counts are back');
});
