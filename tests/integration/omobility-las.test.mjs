// Outgoing Mobility Learning Agreements v1.2, the sending side: our
// outgoing students' LAs, written with `ewpctl la create|propose`, served
// by a real ewpd from a real PostgreSQL to signed callers, approved or
// commented by the receiving HEI through update. The official 12-step
// scenario (ewp-specs-api-omobility-las/examples/example-scenario) is
// played step by step: after each step the get response must carry
// exactly the versions of the scenario's fragment, validate against the
// official v1.2 schema and ours, and the receiving HEI (a partner double
// listing an OLA CNR API) must receive one signed OLA CNR. Also: computed
// proposal ids, the blended-mobility rule, the official update-request
// examples, permissions (a third HEI sees nothing), parameter errors,
// index filters, stats and the manifest entry.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { buildCatalogue } from './lib/catalogue.mjs';
import { D_HEIS, Ewpd, HEI_ID, PARTNER_HEI, describeRun, itest, runEwpctl } from './lib/daemon.mjs';
import { assertErrorResponse, assertStatus, exchange } from './lib/ewp.mjs';
import { NS, PROJECT_SCHEMAS, REPO_ROOT, projectSchema, specPath } from './lib/env.mjs';
import { PartnerDouble } from './lib/partner-double.mjs';
import { Postgres } from './lib/pg.mjs';
import { pollUntil } from './lib/poll.mjs';
import { makeKey, signRequest } from './lib/sign.mjs';
import { assertValid, parseXml, xmlEscape } from './lib/xml.mjs';

const GH = 'https://github.com/erasmus-without-paper';
const LAS = `${GH}/ewp-specs-api-omobility-las/blob/stable-v1`;
const LA_NS = `${LAS}/endpoints/get-response.xsd`;
const INDEX_NS = `${LAS}/endpoints/index-response.xsd`;
const STATS_NS = `${LAS}/endpoints/stats-response.xsd`;
const UPD_NS = `${LAS}/endpoints/update-request.xsd`;
const UPD_RESP_NS = `${LAS}/endpoints/update-response.xsd`;
const ENTRY_NS = `${LAS}/manifest-entry.xsd`;
const TRM_NS = `${GH}/ewp-specs-types-academic-term/tree/stable-v2`;
const OLC_ENTRY_NS = `${GH}/ewp-specs-api-omobility-la-cnr/blob/stable-v1/manifest-entry.xsd`;
const OLC_NS = `${GH}/ewp-specs-api-omobility-la-cnr/tree/stable-v1`;
const REG_SCHEMAS = ['ewp-registry-service', 'src', 'main', 'resources', 'schemas', 'ewp-specs-api-omobility-las-v1.2.0'];
const LA_PARTNER = 'la-partner.example.org'; // receiving HEI of the scenario, served by the double
const YEAR = '2025/2026';
const JOBS_CONF = { retry_min: '1s', retry_max: '2s', lease: '8s', timeout: '3s', concurrency: '4' };

const official = (...p) => specPath(...REG_SCHEMAS, ...p);
const examples = (...p) => specPath('ewp-specs-api-omobility-las', 'examples', ...p);

let fx;
let double;
let laKey; // client key of LA_PARTNER
let tmp;

// A copy of sql/ with the migrations of other branches not merged yet
// stood in for by empty ones, so that ours applies in its place (0008).
function sqlDir(dir) {
  const src = path.join(REPO_ROOT, 'sql');
  const out = path.join(dir, 'sql');
  fs.mkdirSync(out);
  const files = fs.readdirSync(src).filter((f) => /^\d{4}_.*\.sql$/.test(f));
  const max = Math.max(...files.map((f) => Number(f.slice(0, 4))));
  for (let n = 1; n <= max; n++) {
    const num = String(n).padStart(4, '0');
    const f = files.find((x) => x.startsWith(`${num}_`));
    if (f) fs.copyFileSync(path.join(src, f), path.join(out, f));
    else fs.writeFileSync(path.join(out, `${num}_not_merged_here.sql`), 'SELECT 1;\n');
  }
  return out;
}

// LA_PARTNER's host: its client key signs the scenario's calls, its OLA CNR
// entry points at the double.
function catalogue() {
  const xml = buildCatalogue(fx.catalogueSpec());
  const echo = `${double.baseUrl}/ewp/echo`;
  const anchor = `<e2:url>${xmlEscape(echo)}</e2:url>\n      </e2:echo>\n`;
  if (!xml.includes(anchor)) throw new Error('no echo entry for the double');
  return xml.replace(anchor, `${anchor}      <olc:omobility-la-cnr xmlns:olc="${OLC_ENTRY_NS}" version="1.1.0">
        <olc:http-security>
          <sec:client-auth-methods><sec-A2:httpsig/></sec:client-auth-methods>
          <sec:server-auth-methods><sec-B2:httpsig/></sec:server-auth-methods>
        </olc:http-security>
        <olc:url>${xmlEscape(double.baseUrl)}/ewp/ola-cnr</olc:url>
        <olc:max-omobility-ids>10</olc:max-omobility-ids>
      </olc:omobility-la-cnr>\n`);
}

before(async () => {
  fx = await Ewpd.create('omobility-las', { tls: true, start: false });
  tmp = path.join(fx.dir, 'la');
  fs.mkdirSync(tmp);
  double = await PartnerDouble.start({ dir: path.join(fx.dir, 'double'), clientKey: fx.clientKey });
  double.handle((req) => double.reply(req, { body: `<?xml version="1.0" encoding="UTF-8"?>\n<omobility-la-cnr-response xmlns="${OLC_NS}"/>\n` }));
  laKey = makeKey();
  fx.extraHosts.push({ adminEmail: 'admin@la-partner.example.org', heis: [LA_PARTNER], clientKeys: [laKey],
    serverKeys: [double.serverKey], echoUrl: `${double.baseUrl}/ewp/echo` });
  fx.extraInstitutions.push({ id: LA_PARTNER, names: [['en', 'LA Partner University']] });
  fs.writeFileSync(fx.cataloguePath, catalogue());
  fx.pg = await Postgres.start(fx.dir);
  const r = runEwpctl(['migrate', '--dir', sqlDir(fx.dir), '--conninfo', fx.pg.conninfo]);
  if (r.status !== 0) throw new Error(`ewpctl migrate failed:\n${describeRun(r)}`);
  fx.writeConfig({ database: { conninfo: fx.pg.conninfo }, ewp: { schema_dir: PROJECT_SCHEMAS },
    jobs: { ...JOBS_CONF, ca_file: double.tlsFiles.cert } });
  await fx.start();
});

after(async () => {
  await double?.close();
  await fx?.cleanup();
});

const sql = (q) => fx.pg.psql(q);
const q = (s) => `'${String(s).replace(/'/g, "''")}'`;

function addMobility(id, { receiving = LA_PARTNER, attrs = 'long-term', year = YEAR, globalId = `urn:schac:personalUniqueCode:int:esi:smile.test:${id}` } = {}) {
  sql(`INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id, is_outgoing, given_names,
       family_name, global_id, birth_date, nationality, gender, email, agreement_isced, nominee_isced, eqf_level,
       receiving_academic_year_id, activity_attributes, proposal_id)
     VALUES (${q(HEI_ID)}, ${q(id)}, ${q(receiving)}, true, 'Ivan Petrovich', 'Sidorov', ${q(globalId)},
       '1997-05-05', 'NO', 1, 'ivan@example.com', '0541', '0541', 7, ${q(year)}, ${q(attrs)}, 'nomination-1')`);
}

function headerXml(id, { receiving = LA_PARTNER, year = YEAR } = {}) {
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- the header of ${id}'s learning agreement -->
<la xmlns="${LA_NS}" xmlns:p="${GH}/ewp-specs-types-phonenumber/tree/stable-v1">
  <omobility-id>${xmlEscape(id)}</omobility-id>
  <sending-hei>
    <hei-id>${HEI_ID}</hei-id>
    <ounit-name>Faculté des sciences</ounit-name>
    <contact-person>
      <given-names>Paweł Tomasz</given-names><family-name>Kowalski</family-name>
      <email>pawel.kowalski@example.com</email>
      <p:phone-number><p:e164>+33123456789</p:e164></p:phone-number>
    </contact-person>
  </sending-hei>
  <receiving-hei>
    <hei-id>${receiving}</hei-id>
    <contact-person><given-names>Anders</given-names><family-name>Bardal</family-name><email>anders.bardal@example.com</email></contact-person>
  </receiving-hei>
  <receiving-academic-year-id>${year}</receiving-academic-year-id>
  <student>
    <given-names>Ivan Petrovich</given-names><family-name>Sidorov</family-name>
    <global-id>urn:schac:personalUniqueCode:int:esi:smile.test:${xmlEscape(id)}</global-id>
    <birth-date>1997-05-05</birth-date><citizenship>NO</citizenship><gender>1</gender>
    <email>ivan@example.com</email>
  </student>
  <start-year-month>2026-02</start-year-month>
  <end-year-month>2026-06</end-year-month>
  <eqf-level-studied-at-departure>7</eqf-level-studied-at-departure>
  <isced-f-code>0541</isced-f-code>
  <student-language-skill><language>en</language><cefr-level>B2</cefr-level></student-language-skill>
  <learning-outcomes-url>https://courses.example.org/outcomes</learning-outcomes-url>
</la>
`;
}

// ewpctl la SUB ID FILE with the project schemas and the test database.
function ctl(sub, id, text, name) {
  const f = path.join(tmp, name || `${sub}-${id}-${Date.now()}.xml`);
  fs.writeFileSync(f, text);
  return runEwpctl(['la', sub, id, f, '--schemas', PROJECT_SCHEMAS, '--conninfo', fx.pg.conninfo]);
}

function ctlOk(sub, id, text, expect) {
  const r = ctl(sub, id, text);
  assert.equal(r.status, 0, `ewpctl la ${sub} ${id} failed:\n${describeRun(r)}`);
  if (expect) assert.match(r.stdout, expect, describeRun(r));
  return r.stdout;
}

// ---- the official scenario fragments, made namespaced documents --------
function scenarioText(n) {
  const dir = examples('example-scenario');
  const f = fs.readdirSync(dir).find((x) => x.startsWith(`${String(n).padStart(2, '0')}-`));
  return fs.readFileSync(path.join(dir, f), 'utf8');
}

// One element of fragment n (e.g. 'changes-proposal'), in the LA
// namespace: term ids in the academic-term namespace, `reason` written
// `reason-code` as the v1.2 schema names the attribute.
function scenarioElement(n, elem) {
  const m = scenarioText(n).match(new RegExp(`<${elem}[\\s>][\\s\\S]*?</${elem}>`));
  if (!m) throw new Error(`fragment ${n} has no ${elem}`);
  return m[0].replace(/\sreason="/g, ' reason-code="')
    .replace(/<(\/?)(term-number|total-terms)>/g, '<$1trm:$2>')
    .replace(new RegExp(`^<${elem}`), `<${elem} xmlns="${LA_NS}" xmlns:trm="${TRM_NS}"`);
}

// Update request n of the scenario (02, 04, 07, 09, 11) as a whole document.
function scenarioUpdate(n, id, { proposalId, sendingHei = HEI_ID, extra = '' } = {}) {
  let frag = scenarioText(n).replace(/<!--[\s\S]*?-->/g, '').trim();
  frag = frag.replace(/<(\/?)(signer-name|signer-position|signer-email|timestamp|signer-app)>/g, '<$1la:$2>')
    .replace(/^<(approve|comment)-proposal-v1>/, `<$1-proposal-v1>\n    <omobility-id>${xmlEscape(id)}</omobility-id>`);
  if (proposalId) frag = frag.replace(/<changes-proposal-id>[^<]*</, `<changes-proposal-id>${xmlEscape(proposalId)}<`);
  if (extra) frag = frag.replace(/<\/(approve|comment)-proposal-v1>$/, `${extra}</$1-proposal-v1>`);
  return `<?xml version="1.0" encoding="UTF-8"?>
<omobility-las-update-request xmlns="${UPD_NS}" xmlns:la="${LA_NS}">
  <sending-hei-id>${xmlEscape(sendingHei)}</sending-hei-id>
  ${frag}
</omobility-las-update-request>
`;
}

// An element as comparable data: name, attributes (no xmlns), children or text.
function shape(el) {
  if (!el) return null;
  const attrs = el.rawAttrs.filter(([n]) => n !== 'xmlns' && !n.startsWith('xmlns:'))
    .map(([n, v]) => [n, v]).sort();
  const kids = el.elements();
  return { name: `{${el.ns}}${el.local}`, attrs, ...(kids.length ? { children: kids.map(shape) } : { text: el.text.trim() }) };
}
const expectedShape = (n, elem) => shape(parseXml(scenarioElement(n, elem)));

// ---- requests ---------------------------------------------------------
const form = (params) => params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

function signedBy(key, o) {
  return signRequest({ host: fx.hostHeader, key, ...o });
}

async function call(key, o, status, what) {
  const req = signedBy(key, o);
  const res = await fx.send(req);
  assertStatus(res, status, req, what);
  return { req, res };
}

async function getLas(ids, { key = laKey, sendingHei = HEI_ID, method = 'GET' } = {}) {
  const params = [['sending_hei_id', sendingHei], ...ids.map((i) => ['omobility_id', i])];
  const o = method === 'GET' ? { method, path: `/ewp/omobility-las/get?${form(params)}` }
    : { method, path: '/ewp/omobility-las/get', body: form(params), contentType: 'application/x-www-form-urlencoded' };
  const { req, res } = await call(key, o, 200, 'omobility-las get');
  assertValid(res.body, official('endpoints', 'get-response.xsd'), 'get response (official v1.2)');
  assertValid(res.body, projectSchema('omobility-las-get-response.xsd'), 'get response (ewp-schemas)');
  const root = parseXml(res.body);
  assert.equal(root.ns, LA_NS, `get response namespace${exchange(req, res)}`);
  assert.equal(root.local, 'omobility-las-get-response');
  return root.elements(LA_NS, 'la');
}

async function getOne(id, opts) {
  const las = await getLas([id], opts);
  assert.equal(las.length, 1, `one la for ${id}`);
  return las[0];
}

async function index(params, { key = laKey } = {}) {
  const { req, res } = await call(key, { path: `/ewp/omobility-las/index?${form(params)}` }, 200, 'omobility-las index');
  assertValid(res.body, official('endpoints', 'index-response.xsd'), 'index response (official)');
  assertValid(res.body, projectSchema('omobility-las-index-response.xsd'), 'index response (ewp-schemas)');
  const root = parseXml(res.body);
  assert.equal(root.ns, INDEX_NS, `index namespace${exchange(req, res)}`);
  return root.elements(INDEX_NS, 'omobility-id').map((e) => e.text);
}

async function update(body, status, { key = laKey, what = 'omobility-las update' } = {}) {
  const { req, res } = await call(key, { method: 'POST', path: '/ewp/omobility-las/update', body, contentType: 'text/xml' }, status, what);
  if (status === 200) {
    assertValid(res.body, official('endpoints', 'update-response.xsd'), 'update response (official)');
    assertValid(res.body, projectSchema('omobility-las-update-response.xsd'), 'update response (ewp-schemas)');
    assert.equal(parseXml(res.body).ns, UPD_RESP_NS);
  } else {
    assertErrorResponse(res, status, req, what);
  }
  return { req, res };
}

// The OLA CNRs the double received about omobility id.
const cnrsFor = (id) => double.requests.filter((r) => r.method === 'POST' && r.path === '/ewp/ola-cnr' &&
  r.form.getAll('omobility_id').includes(id));

// Runs change(), then expects exactly one more OLA CNR for id, signed by us.
async function expectCnr(id, change) {
  const before = cnrsFor(id).length;
  const out = await change();
  await pollUntil(() => ({ ok: cnrsFor(id).length > before, detail: `${cnrsFor(id).length} CNR(s)` }), 15000, `OLA CNR for ${id}`);
  await sleep(300); // a second one would be a duplicate
  const got = cnrsFor(id);
  assert.equal(got.length, before + 1, `one OLA CNR per change for ${id}`);
  const c = got[got.length - 1];
  assert.equal(c.signatureOk, true, 'the CNR is signed with our client key');
  assert.equal(c.form.get('sending_hei_id'), HEI_ID);
  return out;
}

async function expectNoCnr(id, change) {
  const before = cnrsFor(id).length;
  const out = await change();
  await sleep(1500);
  assert.equal(cnrsFor(id).length, before, `no OLA CNR for ${id}`);
  return out;
}

function versionShape(la, elem) {
  return shape(la.element(LA_NS, elem));
}

// ======================================================================
// The 12-step scenario, on the sending side.
// ======================================================================
const SCEN = 'om-scenario-1';

itest(() => fx, 'la create: the header alone is stored, nothing is served or notified yet', async () => {
  addMobility(SCEN);
  await expectNoCnr(SCEN, async () => ctlOk('create', SCEN, headerXml(SCEN), /created/));
  assert.deepEqual(await getLas([SCEN]), [], 'no la without a version');
  assert.deepEqual(await index([['sending_hei_id', HEI_ID]]), []);
  // a second identical create changes nothing
  ctlOk('create', SCEN, headerXml(SCEN), /unchanged/);
});

itest(() => fx, 'scenario 01: the initial proposal is served (header, changes-proposal with its id), indexed, notified', async () => {
  await expectCnr(SCEN, async () => ctlOk('propose', SCEN, scenarioElement(1, 'changes-proposal'), /proposed.*BAF222F868493C167125FA32452E9460731C575/));
  const la = await getOne(SCEN);
  assert.equal(la.element(LA_NS, 'omobility-id').text, SCEN);
  assert.equal(la.element(LA_NS, 'sending-hei').element(LA_NS, 'hei-id').text, HEI_ID);
  assert.equal(la.element(LA_NS, 'receiving-hei').element(LA_NS, 'hei-id').text, LA_PARTNER);
  assert.equal(la.element(LA_NS, 'learning-outcomes-url').text, 'https://courses.example.org/outcomes', 'URLs after the versions');
  assert.equal(la.element(LA_NS, 'first-version'), undefined);
  assert.deepEqual(versionShape(la, 'changes-proposal'), expectedShape(1, 'changes-proposal'));
  assert.deepEqual(await index([['sending_hei_id', HEI_ID]]), [SCEN]);
});

itest(() => fx, 'scenario 02: a comment with a stale id is 409 with a user-message; the right one marks the proposal commented', async () => {
  const stale = await expectNoCnr(SCEN, () => update(scenarioUpdate(2, SCEN, { proposalId: 'not-the-current-one' }), 409));
  const err = parseXml(stale.res.body);
  assert.ok(err.element(NS.ewp, 'user-message')?.text.includes('not-the-current-one'), `user-message names the stale id${exchange(stale.req, stale.res)}`);
  const body = scenarioUpdate(2, SCEN);
  assertValid(Buffer.from(body), official('endpoints', 'update-request.xsd'), 'scenario request 02 (official)');
  await expectCnr(SCEN, () => update(body, 200));
  const row = JSON.parse(sql(`SELECT row_to_json(v) FROM smile.la_version v WHERE proposal_id = 'BAF222F868493C167125FA32452E9460731C575'`));
  assert.equal(row.state, 'commented');
  assert.match(row.comment, /Big Data Mining and Processing/);
  assert.ok(row.ended_at);
  // still shown (rejected), until the next proposal supersedes it
  const la = await getOne(SCEN);
  assert.equal(la.element(LA_NS, 'changes-proposal').attr('id'), 'BAF222F868493C167125FA32452E9460731C575');
  // decided already: approving it now is stale too
  await update(scenarioUpdate(4, SCEN, { proposalId: 'BAF222F868493C167125FA32452E9460731C575' }), 409);
});

itest(() => fx, 'scenario 03-05: a new proposal supersedes the commented one; its approval makes the first version', async () => {
  await expectCnr(SCEN, async () => ctlOk('propose', SCEN, scenarioElement(3, 'changes-proposal'), /proposed/));
  let la = await getOne(SCEN);
  assert.deepEqual(versionShape(la, 'changes-proposal'), expectedShape(3, 'changes-proposal'));
  await expectCnr(SCEN, () => update(scenarioUpdate(4, SCEN), 200));
  la = await getOne(SCEN);
  assert.deepEqual(versionShape(la, 'first-version'), expectedShape(5, 'first-version'), 'step 05: the signed first version');
  assert.equal(la.element(LA_NS, 'changes-proposal'), undefined);
  assert.equal(la.element(LA_NS, 'approved-changes'), undefined);
  const states = sql(`SELECT string_agg(kind || ':' || state, ',' ORDER BY v.id) FROM smile.la_version v
    JOIN smile.learning_agreement la ON la.id = v.learning_agreement_id JOIN smile.mobility m ON m.id = la.mobility_id
    WHERE m.omobility_id = ${q(SCEN)}`);
  assert.equal(states, 'changes-proposal:commented,changes-proposal:approved,first-version:current', 'history kept');
  // approving again: nothing awaits a decision
  await update(scenarioUpdate(4, SCEN), 409);
});

itest(() => fx, 'scenario 06-08: changes during the mobility, approved into approved-changes; a further proposal', async () => {
  await expectCnr(SCEN, async () => ctlOk('propose', SCEN, scenarioElement(6, 'changes-proposal'), /7974C159B15BAF222F868493C167125FA324/));
  let la = await getOne(SCEN);
  assert.deepEqual(versionShape(la, 'first-version'), expectedShape(6, 'first-version'));
  assert.deepEqual(versionShape(la, 'changes-proposal'), expectedShape(6, 'changes-proposal'));
  // an unknown element of another namespace is ignored
  await expectCnr(SCEN, () => update(scenarioUpdate(7, SCEN, { extra: '<x:note xmlns:x="urn:example:other">ignored</x:note>' }), 200));
  la = await getOne(SCEN);
  assert.deepEqual(versionShape(la, 'approved-changes'), expectedShape(8, 'approved-changes'));
  assert.equal(la.element(LA_NS, 'changes-proposal'), undefined);
  await expectCnr(SCEN, async () => ctlOk('propose', SCEN, scenarioElement(8, 'changes-proposal'), /proposed/));
  la = await getOne(SCEN);
  assert.deepEqual(versionShape(la, 'first-version'), expectedShape(8, 'first-version'));
  assert.deepEqual(versionShape(la, 'approved-changes'), expectedShape(8, 'approved-changes'));
  assert.deepEqual(versionShape(la, 'changes-proposal'), expectedShape(8, 'changes-proposal'));
});

itest(() => fx, 'scenario 09-12: comment, new proposal, approval: the final version', async () => {
  await expectCnr(SCEN, () => update(scenarioUpdate(9, SCEN), 200));
  let la = await getOne(SCEN);
  assert.equal(la.element(LA_NS, 'changes-proposal').attr('id'), 'AF521761C394868F222FAB51B951C47973', 'commented, still shown');
  await expectCnr(SCEN, async () => ctlOk('propose', SCEN, scenarioElement(10, 'changes-proposal'), /proposed/));
  la = await getOne(SCEN);
  assert.deepEqual(versionShape(la, 'approved-changes'), expectedShape(10, 'approved-changes'));
  assert.deepEqual(versionShape(la, 'changes-proposal'), expectedShape(10, 'changes-proposal'));
  await expectCnr(SCEN, () => update(scenarioUpdate(11, SCEN), 200));
  la = await getOne(SCEN);
  assert.deepEqual(versionShape(la, 'first-version'), expectedShape(12, 'first-version'));
  assert.deepEqual(versionShape(la, 'approved-changes'), expectedShape(12, 'approved-changes'));
  assert.equal(la.element(LA_NS, 'changes-proposal'), undefined);
  const n = sql(`SELECT count(*) FROM smile.la_version v JOIN smile.learning_agreement la ON la.id = v.learning_agreement_id
    JOIN smile.mobility m ON m.id = la.mobility_id WHERE m.omobility_id = ${q(SCEN)}`);
  assert.equal(n, '8', 'every version kept: 5 proposals, the first version, approved changes twice');
});

// ======================================================================
// Proposal ids, the blended rule, the official update-request examples.
// ======================================================================
const BLEND = 'om-blended-1';
const proposalNoId = (title) => `<changes-proposal xmlns="${LA_NS}" xmlns:trm="${TRM_NS}">
  <!-- no id: ewpctl computes it -->
  <blended-mobility-components>
    <component><title>${title}</title><short-description>One week on site, the rest online.</short-description></component>
  </blended-mobility-components>
  <student-signature><timestamp>2026-01-10T10:00:00+01:00</timestamp></student-signature>
  <sending-hei-signature><signer-name>Paweł Tomasz Kowalski</signer-name><timestamp>2026-01-11T10:00:00+01:00</timestamp></sending-hei-signature>
</changes-proposal>`;

itest(() => fx, 'proposal ids: computed from the content (SHA-256), equal for the same content however written, new for another', async () => {
  addMobility(BLEND, { attrs: 'short-term-blended' });
  ctlOk('create', BLEND, headerXml(BLEND), /created/);
  const out1 = await expectCnr(BLEND, async () => ctlOk('propose', BLEND, proposalNoId('Summer school'), /proposed/));
  const id1 = out1.match(/proposal ([0-9a-f]{64})/)?.[1];
  assert.ok(id1, `a 64-hex id: ${out1}`);
  // same content, other layout and no comment: unchanged, same id, no CNR
  const squeezed = proposalNoId('Summer school').replace(/<!--[^>]*-->/, '').replace(/>\s+</g, '><');
  const out2 = await expectNoCnr(BLEND, async () => ctlOk('propose', BLEND, squeezed, /unchanged/));
  assert.equal(out2.match(/proposal ([0-9a-f]{64})/)?.[1], id1);
  const out3 = await expectCnr(BLEND, async () => ctlOk('propose', BLEND, proposalNoId('Winter school'), /proposed/));
  const id3 = out3.match(/proposal ([0-9a-f]{64})/)?.[1];
  assert.ok(id3 && id3 !== id1, `another content, another id (${id1} / ${id3})`);
  // an id given for another content than the one it named is refused
  const reuse = ctl('propose', BLEND, proposalNoId('Autumn school').replace('<changes-proposal ', `<changes-proposal id="${id1}" `));
  assert.equal(reuse.status, 1, describeRun(reuse));
  assert.match(reuse.stderr, /already used for another content/);
  const la = await getOne(BLEND);
  assert.equal(la.element(LA_NS, 'changes-proposal').attr('id'), id3);
});

itest(() => fx, 'official update-request examples (ids adapted) are accepted; blended mobility: no proposal after the first version', async () => {
  const current = (await getOne(BLEND)).element(LA_NS, 'changes-proposal').attr('id');
  const adapt = (file, pid) => fs.readFileSync(examples('update-request-examples', file), 'utf8')
    .replace('<req:sending-hei-id>uw.edu.pl<', `<req:sending-hei-id>${HEI_ID}<`)
    .replace(/<req:omobility-id>[^<]*</, `<req:omobility-id>${BLEND}<`)
    .replace(/<req:changes-proposal-id>[^<]*</, `<req:changes-proposal-id>${pid}<`);
  // the comment example still names a proposal of its own: stale here
  const c = await update(adapt('comment-proposal-v1.xml', 'AE61266750D019063512516C7EE01968012C81F25A89'), 409);
  assert.ok(parseXml(c.res.body).element(NS.ewp, 'user-message'));
  await expectCnr(BLEND, () => update(adapt('approve-proposal-v1.xml', current), 200));
  const la = await getOne(BLEND);
  const fv = la.element(LA_NS, 'first-version');
  assert.ok(fv, 'approved into the first version');
  assert.equal(fv.element(LA_NS, 'receiving-hei-signature').element(LA_NS, 'timestamp').text, '2018-11-14T08:18:19+02:00');
  const r = await expectNoCnr(BLEND, async () => ctl('propose', BLEND, proposalNoId('Another week')));
  assert.equal(r.status, 1, describeRun(r));
  assert.match(r.stderr, /short-term-blended.*no changes may be proposed/);
  assert.equal((await getOne(BLEND)).element(LA_NS, 'changes-proposal'), undefined, 'nothing written');
});

itest(() => fx, 'ewpctl la: readable refusals, nothing written (unknown mobility, no header yet, wrong ids, bad files)', async () => {
  const ID = 'om-cli-errors-1';
  addMobility(ID);
  const versions = () => sql('SELECT count(*) FROM smile.la_version');
  const las = () => sql('SELECT count(*) FROM smile.learning_agreement');
  const [v0, l0] = [versions(), las()];
  const cases = [
    ['create', 'om-no-such-mobility', headerXml('om-no-such-mobility'), /no outgoing mobility with omobility_id "om-no-such-mobility"/],
    ['propose', ID, proposalNoId('Topology'), /has no learning agreement yet[\s\S]*ewpctl la create/],
    ['create', ID, headerXml(ID, { receiving: PARTNER_HEI }), /receiving-hei\/hei-id "partner.example.org" is not the mobility's receiving HEI/],
    ['create', ID, headerXml(ID, { year: '2030/2031' }), /receiving-academic-year-id "2030\/2031" is not the mobility's/],
    ['create', ID, headerXml(ID).replace('<omobility-id>om-cli-errors-1<', '<omobility-id>om-other<'), /omobility-id "om-other" in the header is not the mobility's/],
    ['create', ID, headerXml(ID).replace('</student-language-skill>', `</student-language-skill>${scenarioElement(5, 'first-version').replace(/ xmlns="[^"]*"/, '')}`),
      /must not contain first-version/],
    ['create', ID, headerXml(ID).replace(/<isced-f-code>.*<\/isced-f-code>/, ''), /does not match the schema/],
    ['create', ID, 'not xml at all', /not well-formed XML/],
    ['create', ID, proposalNoId('Topology'), /root element .* must be la in namespace/],
  ];
  for (const [sub, id, text, re] of cases) {
    const r = ctl(sub, id, text);
    assert.equal(r.status, 1, `${sub} ${id} must fail:\n${describeRun(r)}`);
    assert.match(r.stderr, re, describeRun(r));
  }
  ctlOk('create', ID, headerXml(ID), /created/);
  for (const [text, re] of [
    [proposalNoId('Topology').replace(/<sending-hei-signature>[\s\S]*<\/sending-hei-signature>/, ''), /does not match the schema/],
    [headerXml(ID), /root element .* must be changes-proposal/],
  ]) {
    const r = ctl('propose', ID, text);
    assert.equal(r.status, 1, describeRun(r));
    assert.match(r.stderr, re, describeRun(r));
  }
  assert.equal(versions(), v0, 'no version written');
  assert.equal(las(), String(Number(l0) + 1), 'only the valid header');
  const usage = runEwpctl(['la', 'propose', ID]);
  assert.equal(usage.status, 2, describeRun(usage));
  assert.match(usage.stderr, /usage: ewpctl la propose OMOBILITY_ID FILE.xml/);
});

// ======================================================================
// Permissions, errors, index, stats, manifest.
// ======================================================================
const OTHER = 'om-other-partner-1';

itest(() => fx, 'permissions: only the receiving HEI sees an LA (get, index, update); a third HEI sees nothing', async () => {
  addMobility(OTHER, { receiving: PARTNER_HEI });
  ctlOk('create', OTHER, headerXml(OTHER, { receiving: PARTNER_HEI }), /created/);
  ctlOk('propose', OTHER, proposalNoId('Algebra'), /proposed/);
  assert.equal((await getLas([OTHER], { key: fx.partnerKey })).length, 1, 'its receiving HEI sees it');
  assert.deepEqual(await getLas([OTHER, SCEN, BLEND], { key: fx.partnerKey, method: 'POST' }).then((l) => l.map((e) => e.element(LA_NS, 'omobility-id').text)), [OTHER]);
  assert.deepEqual((await getLas([OTHER, SCEN, BLEND])).map((e) => e.element(LA_NS, 'omobility-id').text), [SCEN, BLEND], 'in request order, the caller\'s only');
  assert.deepEqual(await getLas([OTHER, SCEN, BLEND], { key: fx.dKey }), [], `a third HEI (${D_HEIS.join(', ')}) gets nothing`);
  assert.deepEqual(await index([['sending_hei_id', HEI_ID]], { key: fx.dKey }), []);
  assert.deepEqual(await index([['sending_hei_id', HEI_ID]], { key: fx.partnerKey }), [OTHER]);
  const pid = (await getOne(OTHER, { key: fx.partnerKey })).element(LA_NS, 'changes-proposal').attr('id');
  const body = scenarioUpdate(4, OTHER, { proposalId: pid });
  const r = await update(body, 400, { key: fx.dKey, what: 'update by a third HEI' });
  assert.match(parseXml(r.res.body).element(NS.ewp, 'developer-message').text, /not.*visible to you|only the receiving HEI/);
  await update(body, 400, { key: laKey, what: 'update by another partner' });
  assert.equal(sql(`SELECT state FROM smile.la_version WHERE proposal_id = ${q(pid)}`), 'current', 'nothing written');
});

itest(() => fx, 'permissions: the sending HEI (our own key) sees its outgoing LAs (get, index), as in OMobilities, but cannot decide on them', async () => {
  const own = { ...fx.clientKey, privateKey: crypto.createPrivateKey(fs.readFileSync(fx.clientKey.pemPath)) };
  const ids = (las) => las.map((e) => e.element(LA_NS, 'omobility-id').text);
  assert.deepEqual(ids(await getLas([OTHER, SCEN, BLEND], { key: own })), [OTHER, SCEN, BLEND], 'every LA we send, whichever its receiving HEI');
  assert.deepEqual(ids(await getLas([OTHER, SCEN], { key: own, method: 'POST' })), [OTHER, SCEN]);
  const listed = await index([['sending_hei_id', HEI_ID]], { key: own });
  for (const id of [OTHER, SCEN, BLEND]) assert.ok(listed.includes(id), `index by our own key lists ${id}: ${listed}`);
  const pid = (await getOne(OTHER, { key: own })).element(LA_NS, 'changes-proposal').attr('id');
  await update(scenarioUpdate(4, OTHER, { proposalId: pid }), 400, { key: own, what: 'update by the sending HEI' });
  assert.equal(sql(`SELECT state FROM smile.la_version WHERE proposal_id = ${q(pid)}`), 'current', 'nothing written');
});

itest(() => fx, 'get and update errors: sending_hei_id not ours, missing or too many ids, bad XML, missing elements, unknown LA', async () => {
  for (const [path, what] of [
    [`/ewp/omobility-las/get?${form([['sending_hei_id', 'other.example.org'], ['omobility_id', SCEN]])}`, 'another sending HEI'],
    [`/ewp/omobility-las/get?${form([['omobility_id', SCEN]])}`, 'no sending_hei_id'],
    [`/ewp/omobility-las/get?${form([['sending_hei_id', HEI_ID]])}`, 'no omobility_id'],
    [`/ewp/omobility-las/get?${form([['sending_hei_id', HEI_ID], ...Array.from({ length: 101 }, (_, i) => ['omobility_id', `id-${i}`])])}`, '101 ids'],
    [`/ewp/omobility-las/index?${form([['sending_hei_id', HEI_ID], ['receiving_academic_year_id', '2025-2026']])}`, 'bad year'],
    [`/ewp/omobility-las/index?${form([['sending_hei_id', HEI_ID], ['modified_since', 'yesterday']])}`, 'bad modified_since'],
    [`/ewp/omobility-las/index?${form([['sending_hei_id', HEI_ID], ['mobility_type', 'weekend']])}`, 'bad mobility_type'],
  ]) {
    const { req, res } = await call(laKey, { path }, 400, what);
    assertErrorResponse(res, 400, req, what);
  }
  const bad = [
    ['not XML', 'this is not <xml'],
    ['wrong root', `<omobility-las-update-request xmlns="urn:wrong"><sending-hei-id>${HEI_ID}</sending-hei-id></omobility-las-update-request>`],
    ['no decision', `<omobility-las-update-request xmlns="${UPD_NS}"><sending-hei-id>${HEI_ID}</sending-hei-id></omobility-las-update-request>`],
    ['no signature', scenarioUpdate(4, SCEN).replace(/<signature>[\s\S]*<\/signature>/, '')],
    ['sending-hei-id mismatch', scenarioUpdate(4, SCEN, { sendingHei: 'uw.edu.pl' })],
    ['unknown LA', scenarioUpdate(4, 'om-never-heard-of')],
    ['empty body', ''],
  ];
  const before = sql('SELECT count(*) FROM smile.la_version');
  for (const [what, body] of bad) await update(body, 400, { what });
  assert.equal(sql('SELECT count(*) FROM smile.la_version'), before, 'nothing written');
  // form parameters are no update request
  const { req, res } = await call(laKey, { method: 'GET', path: '/ewp/omobility-las/update' }, 405, 'GET update');
  assertErrorResponse(res, 405, req, 'GET update');
});

itest(() => fx, 'index filters: receiving_hei_id, year, global_id, mobility_type, modified_since; unknown values match nothing', async () => {
  const all = [BLEND, SCEN].sort();
  assert.deepEqual(await index([['sending_hei_id', HEI_ID]]), all);
  assert.deepEqual(await index([['sending_hei_id', 'other.example.org']]), [], 'another sending HEI: empty');
  assert.deepEqual(await index([['sending_hei_id', HEI_ID], ['receiving_hei_id', LA_PARTNER], ['receiving_hei_id', 'unknown.example.org']]), all);
  assert.deepEqual(await index([['sending_hei_id', HEI_ID], ['receiving_hei_id', 'unknown.example.org']]), []);
  assert.deepEqual(await index([['sending_hei_id', HEI_ID], ['receiving_academic_year_id', YEAR]]), all);
  assert.deepEqual(await index([['sending_hei_id', HEI_ID], ['receiving_academic_year_id', '2019/2020']]), []);
  assert.deepEqual(await index([['sending_hei_id', HEI_ID], ['global_id', `urn:schac:personalUniqueCode:int:esi:smile.test:${SCEN}`]]), [SCEN]);
  assert.deepEqual(await index([['sending_hei_id', HEI_ID], ['mobility_type', 'blended']]), [BLEND]);
  assert.deepEqual(await index([['sending_hei_id', HEI_ID], ['mobility_type', 'semester']]), [SCEN]);
  const future = new Date(Date.now() + 3600e3).toISOString().replace(/\.\d+Z$/, 'Z');
  assert.deepEqual(await index([['sending_hei_id', HEI_ID], ['modified_since', future]]), []);
  assert.deepEqual(await index([['sending_hei_id', HEI_ID], ['modified_since', '2020-01-01T00:00:00+01:00']]), all);
  // a change moves an LA past modified_since
  const mark = sql(`SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`);
  await sleep(20);
  ctlOk('create', SCEN, headerXml(SCEN).replace('Faculté des sciences', 'Faculté des sciences et techniques'), /updated/);
  assert.deepEqual(await index([['sending_hei_id', HEI_ID], ['modified_since', mark]]), [SCEN]);
});

itest(() => fx, 'an approval and a comment of one proposal at the same time: one wins (200), the other is 409, one CNR', async () => {
  const RACE = 'om-race-1';
  addMobility(RACE, { year: '2020/2021' }); // before the statistics start: not counted
  ctlOk('create', RACE, headerXml(RACE, { year: '2020/2021' }), /created/);
  await expectCnr(RACE, async () => ctlOk('propose', RACE, proposalNoId('Race conditions'), /proposed/));
  const pid = (await getOne(RACE)).element(LA_NS, 'changes-proposal').attr('id');
  const results = await expectCnr(RACE, () => Promise.all([
    fx.send(signedBy(laKey, { method: 'POST', path: '/ewp/omobility-las/update', body: scenarioUpdate(4, RACE, { proposalId: pid }), contentType: 'text/xml' })),
    fx.send(signedBy(laKey, { method: 'POST', path: '/ewp/omobility-las/update', body: scenarioUpdate(2, RACE, { proposalId: pid }), contentType: 'text/xml' })),
  ]));
  assert.deepEqual(results.map((r) => r.status).sort(), [200, 409], results.map((r) => r.body.toString()).join('\n'));
  const state = sql(`SELECT state FROM smile.la_version WHERE proposal_id = ${q(pid)} AND kind = 'changes-proposal'`);
  const fv = sql(`SELECT count(*) FROM smile.la_version WHERE proposal_id = ${q(pid)} AND kind = 'first-version'`);
  assert.equal(fv, results[0].status === 200 ? '1' : '0', 'a first version only when the approval won');
  assert.equal(state, results[0].status === 200 ? 'approved' : 'commented');
});

const STUDENT = 'om-student-1';
const OLD_YEAR = '2024/2025';

itest(() => fx, 'changed student data: served in the proposal, moved into the header once approved; an ISO-8859-1 request is read right', async () => {
  addMobility(STUDENT, { year: OLD_YEAR });
  ctlOk('create', STUDENT, headerXml(STUDENT, { year: OLD_YEAR }), /created/);
  const prop = proposalNoId('Numerical analysis')
    .replace('</changes-proposal>', '<student><family-name>Sidorova</family-name><email>ivan.s@example.com</email></student>\n</changes-proposal>');
  await expectCnr(STUDENT, async () => ctlOk('propose', STUDENT, prop, /proposed/));
  let la = await getOne(STUDENT);
  const cp = la.element(LA_NS, 'changes-proposal');
  assert.equal(cp.element(LA_NS, 'student').element(LA_NS, 'family-name').text, 'Sidorova');
  assert.equal(la.element(LA_NS, 'student').element(LA_NS, 'family-name').text, 'Sidorov', 'header unchanged before approval');
  // approved, in ISO-8859-1 with a non-ASCII signer name
  const body = scenarioUpdate(4, STUDENT, { proposalId: cp.attr('id') })
    .replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').replace('Anders Bardal', 'Anders Bårdal');
  await expectCnr(STUDENT, () => update(Buffer.from(body, 'latin1'), 200));
  la = await getOne(STUDENT);
  const st = la.element(LA_NS, 'student');
  assert.deepEqual(st.elements().map((e) => [e.local, e.text]), [
    ['given-names', 'Ivan Petrovich'], ['family-name', 'Sidorova'],
    ['global-id', `urn:schac:personalUniqueCode:int:esi:smile.test:${STUDENT}`], ['birth-date', '1997-05-05'],
    ['citizenship', 'NO'], ['gender', '1'], ['email', 'ivan.s@example.com']], 'header student merged, in schema order');
  const fv = la.element(LA_NS, 'first-version');
  assert.equal(fv.element(LA_NS, 'student'), undefined, 'no student element in a version');
  assert.equal(fv.element(LA_NS, 'receiving-hei-signature').element(LA_NS, 'signer-name').text, 'Anders Bårdal');
});

itest(() => fx, 'stats: counts per receiving academic year, valid against the official stats-response schema', async () => {
  // one LA awaiting, one commented, one in 2020/2021 (before the statistics start)
  for (const [id, year] of [['om-stats-await', YEAR], ['om-stats-reject', YEAR], ['om-stats-old', '2020/2021']]) {
    addMobility(id, { year });
    ctlOk('create', id, headerXml(id, { year }), /created/);
    ctlOk('propose', id, proposalNoId(`Course of ${id}`), /proposed/);
  }
  const pid = (await getOne('om-stats-reject')).element(LA_NS, 'changes-proposal').attr('id');
  await update(scenarioUpdate(2, 'om-stats-reject', { proposalId: pid }), 200);
  const { req, res } = await call(fx.dKey, { path: '/ewp/omobility-las/stats' }, 200, 'stats');
  assertValid(res.body, official('endpoints', 'stats-response.xsd'), 'stats (official)');
  assertValid(res.body, projectSchema('omobility-las-stats-response.xsd'), 'stats (ewp-schemas)');
  const years = parseXml(res.body).elements(STATS_NS, 'academic-year-la-stats');
  assert.deepEqual(years.map((y) => y.element(STATS_NS, 'receiving-academic-year-id').text), [OLD_YEAR, YEAR],
    `2020/2021 left out${exchange(req, res)}`);
  const old = (k) => Number(years[0].element(STATS_NS, k).text);
  assert.deepEqual(['la-outgoing-total', 'la-outgoing-not-modified-after-approval', 'la-outgoing-modified-after-approval',
    'la-outgoing-latest-version-approved', 'la-outgoing-latest-version-rejected', 'la-outgoing-latest-version-awaiting'].map(old),
  [1, 1, 0, 1, 0, 0], `${OLD_YEAR}: ${STUDENT} approved once`);
  const v = (k) => Number(years[1].element(STATS_NS, k).text);
  // SCEN: first version + approved changes; BLEND: first version only;
  // OTHER: awaiting; om-stats-await: awaiting; om-stats-reject: commented
  assert.equal(v('la-outgoing-total'), 5);
  assert.equal(v('la-outgoing-not-modified-after-approval'), 1);
  assert.equal(v('la-outgoing-modified-after-approval'), 1);
  assert.equal(v('la-outgoing-latest-version-approved'), 2);
  assert.equal(v('la-outgoing-latest-version-rejected'), 1);
  assert.equal(v('la-outgoing-latest-version-awaiting'), 2);
});

itest(() => fx, 'manifest: one omobility-las 1.2.0 entry with the four URLs and max-omobility-ids, valid against the official entry schema', async () => {
  const req = { method: 'GET', target: fx.manifestPath, headers: [['Host', fx.hostHeader]] };
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'manifest');
  assertValid(res.body, specPath('ewp-specs-api-discovery', 'manifest.xsd'), 'manifest (official)');
  assertValid(res.body, projectSchema('manifest.xsd'), 'manifest (ewp-schemas)');
  const apis = parseXml(res.body).element(NS.manifest, 'host').element(NS.registry, 'apis-implemented');
  const entries = apis.elements(ENTRY_NS, 'omobility-las');
  assert.equal(entries.length, 1, 'one entry for the four endpoints');
  const e = entries[0];
  assert.equal(e.attr('version'), '1.2.0');
  for (const [elem, p] of [['get-url', 'get'], ['index-url', 'index'], ['update-url', 'update'], ['stats-url', 'stats']]) {
    assert.equal(e.element(ENTRY_NS, elem)?.text, `${fx.publicUrl}/ewp/omobility-las/${p}`, elem);
  }
  assert.equal(e.element(ENTRY_NS, 'max-omobility-ids').text, '100');
  const text = res.body.toString('utf8');
  const from = text.indexOf('<omobility-las ');
  const doc = text.slice(from, text.indexOf('</omobility-las>', from) + '</omobility-las>'.length)
    .replace('<omobility-las ', `<omobility-las xmlns:sec="${NS.sec}" `);
  assertValid(Buffer.from(doc), official('manifest-entry.xsd'), 'omobility-las entry (official manifest-entry.xsd)');
  assertValid(Buffer.from(doc), projectSchema('omobility-las-entry.xsd'), 'omobility-las entry (ewp-schemas)');
});

itest(() => fx, 'ewpctl la show: component columns are padded by characters, so an accented title keeps the columns after it in place', async () => {
  const plain = 'Algebra';
  const acc = 'Bases de données avancées';
  const line = {};
  for (const [id, title] of [['om-cols-plain', plain], ['om-cols-accents', acc]]) {
    addMobility(id, { attrs: 'short-term-blended' });
    ctlOk('create', id, headerXml(id), /created/);
    ctlOk('propose', id, proposalNoId(title), /proposed/);
    const r = runEwpctl(['la', 'show', `${HEI_ID}:${id}`, '--conninfo', fx.pg.conninfo]);
    assert.equal(r.status, 0, describeRun(r));
    const rows = r.stdout.split('\n').filter((l) => l.includes(title));
    assert.equal(rows.length, 1, `one component line with ${title}\n${describeRun(r)}`);
    line[title] = rows[0];
  }
  // [...s] counts characters (code points), as a terminal shows them
  const after = (l, title) => [...l].slice([...l.slice(0, l.indexOf(title))].length + 41).join('');
  assert.equal([...line[acc]].length, [...line[plain]].length, `same width in characters:\n${line[plain]}\n${line[acc]}`);
  assert.equal(after(line[acc], acc), after(line[plain], plain), `the columns after the title start at the same place:\n${line[plain]}\n${line[acc]}`);
});
