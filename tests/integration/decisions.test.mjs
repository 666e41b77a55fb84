// Staff decisions on partners' nominations and learning agreements (we
// are the receiving HEI): `ewpctl mobility approve|reject` and `ewpctl la
// approve|comment` write a decision and its ('out', 'update') job; a real
// ewpd with two workers sends it, signed, to the update endpoint a partner
// double (another vendor's node) lists in the catalogue, and records the
// answer: accepted (re-fetch queued, registration moved), conflict (409),
// refused (other 4xx, never retried), retried on 5xx, failed when the
// partner has no update API or the job expires. Incoming mobilities,
// registrations and LAs are seeded straight into PostgreSQL, the way the
// re-fetch handlers store them.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { buildCatalogue } from './lib/catalogue.mjs';
import { Ewpd, HEI_ID, describeRun, itest, makeTempDir, runEwpctlAsync } from './lib/daemon.mjs';
import { REPO_ROOT, specPath } from './lib/env.mjs';
import { PartnerDouble } from './lib/partner-double.mjs';
import { pollUntil } from './lib/poll.mjs';
import { makeKey } from './lib/sign.mjs';
import { assertValid, parseXml, xmlEscape } from './lib/xml.mjs';

const GH = 'https://github.com/erasmus-without-paper';
const REG_SCHEMAS = ['ewp-registry-service', 'src', 'main', 'resources', 'schemas'];
const P_UPD = 'upd.partner.example.org'; // publishes OMobilities v3 and OMobility LAs v1 with update-url
const P_NOUPD = 'noupd.partner.example.org'; // another host of the double: Echo only
const NS_EWP = `${GH}/ewp-specs-architecture/blob/stable-v1/common-types.xsd`;
const OM_ENTRY = `${GH}/ewp-specs-api-omobilities/blob/stable-v3/manifest-entry.xsd`;
const OLA_ENTRY = `${GH}/ewp-specs-api-omobility-las/blob/stable-v1/manifest-entry.xsd`;
const NS_OM_REQ = `${GH}/ewp-specs-api-omobilities/blob/stable-v3/endpoints/update-request.xsd`;
const NS_OM_RES = `${GH}/ewp-specs-api-omobilities/blob/stable-v3/endpoints/update-response.xsd`;
const NS_OLA_REQ = `${GH}/ewp-specs-api-omobility-las/blob/stable-v1/endpoints/update-request.xsd`;
const NS_OLA_RES = `${GH}/ewp-specs-api-omobility-las/blob/stable-v1/endpoints/update-response.xsd`;
const NS_OLA_GET = `${GH}/ewp-specs-api-omobility-las/blob/stable-v1/endpoints/get-response.xsd`;
const JOBS_CONF = { retry_min: '1s', retry_max: '2s', lease: '10s', timeout: '4s', concurrency: '8' };
const OM_XSD = () => specPath(...REG_SCHEMAS, 'ewp-specs-api-omobilities-v3.0.0', 'endpoints', 'update-request.xsd');
const OLA_XSD = () => specPath(...REG_SCHEMAS, 'ewp-specs-api-omobility-las-v1.2.0', 'endpoints', 'update-request.xsd');
const OM_RES_XSD = () => specPath(...REG_SCHEMAS, 'ewp-specs-api-omobilities-v3.0.0', 'endpoints', 'update-response.xsd');
const OLA_RES_XSD = () => specPath(...REG_SCHEMAS, 'ewp-specs-api-omobility-las-v1.2.0', 'endpoints', 'update-response.xsd');

let fx; // real ewpd, 2 workers, its own PostgreSQL
let sqlDir; // the migrations, numbered without gaps
let double;
const behaviour = new Map(); // omobility_id -> (req) => void

const errorXml = (dev, user) => `<?xml version="1.0" encoding="UTF-8"?>\n<error-response xmlns="${NS_EWP}">\n` +
  `  <developer-message>${xmlEscape(dev)}</developer-message>\n` +
  (user ? `  <user-message>${xmlEscape(user)}</user-message>\n` : '') + '</error-response>\n';
const okXml = (isLa) => `<?xml version="1.0" encoding="UTF-8"?>\n` +
  (isLa ? `<omobility-las-update-response xmlns="${NS_OLA_RES}" xmlns:ewp="${NS_EWP}">` +
    '<ewp:success-user-message xml:lang="en">Thank you, signed.</ewp:success-user-message></omobility-las-update-response>\n'
    : `<omobilities-update-response xmlns="${NS_OM_RES}"/>\n`);

// The update APIs of P_UPD's host, after its Echo entry.
function withUpdateApis(xml, echoUrl, base) {
  const anchor = `<e2:url>${xmlEscape(echoUrl)}</e2:url>\n      </e2:echo>\n`;
  if (!xml.includes(anchor)) throw new Error('no echo entry for the double');
  const sec = (p) => `<${p}:http-security>
          <sec:client-auth-methods><sec-A2:httpsig/></sec:client-auth-methods>
          <sec:server-auth-methods><sec-B2:httpsig/></sec:server-auth-methods>
        </${p}:http-security>`;
  return xml.replace(anchor, `${anchor}      <om3:omobilities xmlns:om3="${OM_ENTRY}" version="3.0.0">
        ${sec('om3')}
        <om3:get-url>${xmlEscape(base)}/ewp/omobilities/get</om3:get-url>
        <om3:index-url>${xmlEscape(base)}/ewp/omobilities/index</om3:index-url>
        <om3:update-url>${xmlEscape(base)}/ewp/omobilities/update</om3:update-url>
        <om3:max-omobility-ids>10</om3:max-omobility-ids>
      </om3:omobilities>
      <ola:omobility-las xmlns:ola="${OLA_ENTRY}" version="1.2.0">
        ${sec('ola')}
        <ola:get-url>${xmlEscape(base)}/ewp/omobility-las/get</ola:get-url>
        <ola:index-url>${xmlEscape(base)}/ewp/omobility-las/index</ola:index-url>
        <ola:update-url>${xmlEscape(base)}/ewp/omobility-las/update</ola:update-url>
        <ola:max-omobility-ids>10</ola:max-omobility-ids>
      </ola:omobility-las>\n`);
}

// The omobility-id an update request is about.
const omobilityOf = (req) => (/<(?:\w+:)?omobility-id>([^<]*)</.exec(req.body.toString('utf8')) || [])[1];

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
  sqlDir = gaplessSqlDir(path.join(makeTempDir('decisions-sql'), 'sql'));
  fx = await Ewpd.create('decisions', { pg: true, workers: 2, start: false, sqlDir, conf: { jobs: JOBS_CONF } });
  double = await PartnerDouble.start({ dir: path.join(fx.dir, 'double'), clientKey: fx.clientKey });
  double.handle((req) => {
    const isLa = req.path.startsWith('/ewp/omobility-las/');
    if (req.method !== 'POST' || !req.path.endsWith('/update')) return double.reply(req, { status: 404, body: errorXml('not here') });
    const f = behaviour.get(omobilityOf(req));
    if (f) f(req, isLa);
    else double.reply(req, { body: okXml(isLa) });
  });
  fx.extraHosts.push(
    { adminEmail: `admin@${P_UPD}`, heis: [P_UPD], serverKeys: [double.serverKey], echoUrl: `${double.baseUrl}/ewp/echo` },
    { adminEmail: `admin@${P_NOUPD}`, heis: [P_NOUPD], serverKeys: [double.serverKey], echoUrl: `${double.baseUrl}/ewp/echo2` });
  fx.extraInstitutions.push({ id: P_UPD, names: [['en', 'Update Partner']] }, { id: P_NOUPD, names: [['en', 'No-Update Partner']] });
  fs.writeFileSync(fx.cataloguePath, withUpdateApis(buildCatalogue(fx.catalogueSpec()), `${double.baseUrl}/ewp/echo`, double.baseUrl));
  fx.writeConfig({ jobs: { ...JOBS_CONF, ca_file: double.tlsFiles.cert } });
  await fx.start();
  sql(`INSERT INTO smile.utilisateur (username, display_name) VALUES ('alice.staff', 'Alice Staff')`);
});

after(async () => {
  await double?.close();
  await fx?.cleanup();
  if (sqlDir) fs.rmSync(path.dirname(sqlDir), { recursive: true, force: true });
});

const sql = (q) => fx.pg.psql(q);
const json = (q) => JSON.parse(sql(q) || 'null');
const ctl = (...a) => runEwpctlAsync(['-c', fx.confPath, ...a]);

let seq = 0;
/*
 * An incoming mobility of `hei` (or an outgoing one of ours), its
 * registration at `step`, and optionally its learning agreement with a
 * current changes proposal. Returns { id, om, inscription, proposal, cp }.
 */
function seed({ hei = P_UPD, outgoing = false, status = 'pending', step = 'approval_host', la = false, name = 'Anna' } = {}) {
  const om = `om-${process.pid}-${++seq}`;
  const proposal = `prop-${seq}-a`;
  let id;
  let inscription = null;
  if (outgoing) {
    id = sql(`INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id, is_outgoing, given_names,
        family_name, global_id, birth_date, nationality, gender, email, agreement_isced, nominee_isced, eqf_level,
        receiving_academic_year_id, proposal_id, status)
      VALUES ('${HEI_ID}', '${om}', '${hei}', true, $n$${name}$n$, 'Dupont', 'urn:schac:personalUniqueCode:int:esi:smile.test:${seq}',
        '2004-01-01', 'FR', 2, 'student@smile.test', '0541', '0541', 6,
        '2026/2027', '${proposal}', '${status}') RETURNING id`);
  } else {
    const row = sql(`WITH e AS (INSERT INTO smile.etablissement (schac_id, names)
        VALUES ('${hei}', '[{"lang": "en", "name": "${hei}"}]')
        ON CONFLICT (schac_id) DO UPDATE SET names = EXCLUDED.names RETURNING id),
      i AS (INSERT INTO smile.inscription (given_names, family_name, home_etablissement_id, step_id, academic_year, omobility_id)
        SELECT $n$${name}$n$, 'Nowak', e.id, (SELECT id FROM smile.step WHERE code = '${step}'), 2026, '${om}' FROM e RETURNING id)
      INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id, is_outgoing, given_names, family_name,
        global_id, receiving_academic_year_id, proposal_id, status, inscription_id)
      SELECT '${hei}', '${om}', '${HEI_ID}', false, $n$${name}$n$, 'Nowak', 'urn:schac:personalUniqueCode:int:esi:${hei}:${seq}',
        '2026/2027', '${proposal}', '${status}', i.id FROM i RETURNING id || ' ' || inscription_id`);
    [id, inscription] = row.split(' ');
  }
  const m = { id, om, inscription, proposal };
  if (la) m.cp = seedLa(m, hei);
  return m;
}

const component = (code, title, ects, attrs = '') =>
  `<component${attrs}><los-code>${code}</los-code><title xml:lang="en">${title}</title>` +
  `<credit><scheme>ects</scheme><value>${ects}</value></credit></component>`;

// A learning agreement: a superseded first proposal, then the current one.
function seedLa(m, hei) {
  const old = `cp-${seq}-old`;
  const cp = `cp-${seq}-cur`;
  const laId = sql(`INSERT INTO smile.learning_agreement (mobility_id, header) VALUES (${m.id}, $x$<la xmlns="${NS_OLA_GET}">` +
    `<omobility-id>${m.om}</omobility-id><sending-hei><hei-id>${hei}</hei-id><contact-person><given-names>Jan</given-names>` +
    `<family-name>Kowalski</family-name></contact-person></sending-hei><receiving-hei><hei-id>${HEI_ID}</hei-id></receiving-hei>` +
    `<receiving-academic-year-id>2026/2027</receiving-academic-year-id><student><given-names>Anna</given-names>` +
    `<family-name>Nowak</family-name></student><start-date>2026-09-01</start-date><end-date>2027-01-31</end-date>` +
    `<eqf-level-studied-at-departure>6</eqf-level-studied-at-departure><isced-f-code>0541</isced-f-code></la>$x$) RETURNING id`);
  const version = (id, comps) => `$x$<changes-proposal xmlns="${NS_OLA_GET}" id="${id}"><components-studied>${comps}</components-studied>` +
    `<components-recognized>${component('REC-1', 'Mathematics block', '12.5')}</components-recognized>` +
    '<student-signature><signer-name>Anna Nowak</signer-name><timestamp>2026-06-01T10:00:00Z</timestamp></student-signature>' +
    `<sending-hei-signature><signer-name>Jan Kowalski</signer-name><timestamp>2026-06-02T10:00:00Z</timestamp></sending-hei-signature></changes-proposal>$x$`;
  sql(`INSERT INTO smile.la_version (learning_agreement_id, kind, proposal_id, content, state, created_at, ended_at)
    VALUES (${laId}, 'changes-proposal', '${old}', ${version(old, component('OLD-1', 'Old course', '30'))}, 'superseded',
      now() - interval '2 days', now() - interval '1 day')`);
  sql(`INSERT INTO smile.la_version (learning_agreement_id, kind, proposal_id, content)
    VALUES (${laId}, 'changes-proposal', '${cp}', ${version(cp, component('MATH-1', 'Calculus I', '5') +
      component('ALG-2', 'Linear Algebra', '7.5') +
      component('INTRO', 'Introductory calculus', '3', ' status="deleted" reason-code="not-available"'))})`);
  return cp;
}

const decision = (id) => json(`SELECT row_to_json(d) FROM ewp.decisions d WHERE id = ${id}`);
const job = (id) => json(`SELECT row_to_json(j) FROM ewp.jobs j WHERE id = ${id}`);
const updatesFor = (om) => double.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/update') && omobilityOf(r) === om);
const refetchJobs = (om) => json(`SELECT coalesce(json_agg(j ORDER BY id), '[]') FROM ewp.jobs j
  WHERE direction = 'in' AND kind = 'refetch' AND dedupe_key = '${om}'`);
const counts = () => sql(`SELECT (SELECT count(*) FROM ewp.decisions) || '/' || (SELECT count(*) FROM ewp.jobs)
  || '/' || (SELECT count(*) FROM ewp.audit_log)`);

async function waitDecision(id, states, ms = 15000) {
  const want = [].concat(states);
  return pollUntil(() => {
    const d = decision(id);
    return { ok: want.includes(d.state), detail: JSON.stringify(d), d };
  }, ms, `decision ${id} ${want.join('|')}`, 100);
}

// Runs a decision command; expects it queued; returns { decision, job }.
async function decide(...args) {
  const r = await ctl(...args);
  assert.equal(r.status, 0, describeRun(r));
  const m = /^decision (\d+) \(([a-z-]+) of proposal (\S+)\) queued as job (\d+): ewpd sends it to (\S+)$/m.exec(r.stdout);
  assert.ok(m, `decision line in the output:\n${describeRun(r)}`);
  return { decision: Number(m[1]), kind: m[2], proposal: m[3], job: Number(m[4]), partner: m[5], run: r };
}

function assertSignedXmlPost(p, what) {
  assert.equal(p.method, 'POST', what);
  assert.equal(p.signatureOk, true, `${what}: signed with the node's client key, Digest right`);
  const ct = p.headers.find(([n]) => n.toLowerCase() === 'content-type');
  assert.ok(ct && /^text\/xml\b/.test(ct[1]), `${what}: Content-Type ${ct && ct[1]}`);
}

itest(() => fx, 'nomination approved → signed omobilities-update-request (official XSD), 200 → accepted, re-fetch queued, registration Inscrit', async () => {
  const m = seed({ step: 'registered' });
  const q = await decide('mobility', 'approve', `${P_UPD}:${m.om}`, '--by', 'alice.staff');
  assert.equal(q.kind, 'nomination-approve');
  assert.equal(q.proposal, m.proposal, 'the current proposal id of the core');
  assert.equal(q.partner, P_UPD);
  const { d } = await waitDecision(q.decision, 'accepted');
  assert.equal(d.job_id, q.job);
  assert.equal(d.decided_by, 'alice.staff');
  const uid = Number(sql(`SELECT id FROM smile.utilisateur WHERE username = 'alice.staff'`));
  assert.equal(Number(d.utilisateur_id), uid, 'the deciding user is linked');
  const posts = updatesFor(m.om);
  assert.equal(posts.length, 1);
  const p = posts[0];
  assert.equal(p.path, '/ewp/omobilities/update');
  assertSignedXmlPost(p, 'update');
  assertValid(p.body, OM_XSD(), 'omobilities-update-request (official)');
  const root = parseXml(p.body);
  assert.equal(root.local, 'omobilities-update-request');
  assert.equal(root.ns, NS_OM_REQ);
  const act = root.elements();
  assert.equal(act.length, 1);
  assert.equal(act[0].local, 'approve-proposal-v1');
  assert.deepEqual(act[0].elements().map((e) => [e.local, e.text]), [['omobility-id', m.om], ['proposal-id', m.proposal]]);
  const j = job(q.job);
  assert.equal(j.status, 'success');
  assert.equal(j.direction, 'out');
  assert.equal(j.kind, 'update');
  assert.equal(j.api, 'omobilities');
  assert.equal(j.hei_id, P_UPD);
  assert.equal(j.attempts, 1);
  assert.equal(j.last_http_status, 200);
  // the partner's new state is fetched back
  const rf = refetchJobs(m.om);
  assert.equal(rf.length, 1, JSON.stringify(rf));
  assert.equal(rf[0].api, 'omobilities');
  assert.equal(rf[0].hei_id, P_UPD);
  assert.ok(Date.parse(rf[0].created_at) >= Date.parse(d.created_at), 'queued by the answer');
  assert.equal(rf[0].payload.omobility_id, m.om);
  assert.equal(rf[0].payload.sending_hei_id, P_UPD);
  // workflow: Inscrit, with a stepmessage by the deciding user
  assert.equal(sql(`SELECT status FROM smile.inscription WHERE id = ${m.inscription}`), '2');
  const sm = json(`SELECT json_agg(s) FROM smile.stepmessage s WHERE inscription_id = ${m.inscription}`);
  assert.equal(sm.length, 1);
  assert.equal(sm[0].type, 'validated');
  assert.equal(Number(sm[0].validator_id), uid);
  assert.match(sm[0].comment, /approved by alice\.staff/);
  // audit log and message log
  const audit = json(`SELECT json_agg(a) FROM ewp.audit_log a WHERE object_type = 'mobility' AND object_id = '${m.id}'`);
  assert.equal(audit.length, 1);
  assert.equal(audit[0].action, 'decision.nomination-approve');
  assert.equal(audit[0].details.decided_by, 'alice.staff');
  assert.equal(Number(audit[0].details.decision_id), q.decision);
  assert.equal(Number(audit[0].utilisateur_id), uid);
  const log = await pollUntil(() => {
    const rows = json(`SELECT coalesce(json_agg(json_build_object('method', method, 'status', status, 'api', api, 'url', url,
      'partner', partner_hei_ids, 'request_id', request_id, 'body', convert_from(request_body, 'UTF8'))), '[]')
      FROM ewp.message_log WHERE job_id = ${q.job}`);
    return { ok: rows.length === 1, rows, detail: JSON.stringify(rows) };
  }, 5000, 'message-log row of the update');
  assert.equal(log.rows[0].status, 200);
  assert.equal(log.rows[0].api, 'omobilities');
  assert.equal(log.rows[0].url, `${double.baseUrl}/ewp/omobilities/update`);
  assert.deepEqual(log.rows[0].partner, [P_UPD]);
  assert.equal(log.rows[0].request_id, p.requestId);
  assert.equal(log.rows[0].body, p.body.toString('utf8'));
  // and the answer the double sent validates, as our double must follow the protocol
  assertValid(okXml(false), OM_RES_XSD(), 'omobilities-update-response (double)');
});

itest(() => fx, 'nomination rejected with a comment → reject-proposal-v1 (official XSD) with the comment, accepted, stepmessage denied', async () => {
  const m = seed({ step: 'registered' });
  const comment = 'Wrong study field: <ISCED> 0541 & "EQF 7" expected';
  const q = await decide('mobility', 'reject', m.id, '--comment', comment, '--by', 'bob');
  assert.equal(q.kind, 'nomination-reject');
  const { d } = await waitDecision(q.decision, 'accepted');
  assert.equal(d.comment, comment);
  assert.equal(d.utilisateur_id, null, 'bob is no SMILE user');
  const [p] = updatesFor(m.om);
  assertSignedXmlPost(p, 'reject');
  assertValid(p.body, OM_XSD(), 'reject request (official)');
  const act = parseXml(p.body).elements()[0];
  assert.equal(act.local, 'reject-proposal-v1');
  assert.deepEqual(act.elements().map((e) => [e.local, e.text]),
    [['omobility-id', m.om], ['proposal-id', m.proposal], ['comment', comment]]);
  assert.equal(sql(`SELECT status FROM smile.inscription WHERE id = ${m.inscription}`), '1', 'still a nomination');
  const sm = json(`SELECT json_agg(s) FROM smile.stepmessage s WHERE inscription_id = ${m.inscription}`);
  assert.equal(sm.length, 1);
  assert.equal(sm[0].type, 'denied');
  assert.ok(sm[0].comment.includes(comment));
  assert.equal(refetchJobs(m.om).length, 1);
});

itest(() => fx, 'LA approved → omobility-las-update-request (official XSD) with signature on the CURRENT proposal, accepted, step moves past approval_host', async () => {
  const m = seed({ la: true, step: 'approval_host' });
  const q = await decide('la', 'approve', m.id, '--signer-name', 'Claire Martin', '--signer-position', 'Coordinatrice Erasmus',
    '--signer-email', 'claire.martin@smile.test', '--by', 'alice.staff');
  assert.equal(q.kind, 'la-approve');
  assert.equal(q.proposal, m.cp);
  const { d } = await waitDecision(q.decision, 'accepted');
  assert.equal(d.partner_message, 'Thank you, signed.', 'success-user-message kept');
  const [p] = updatesFor(m.om);
  assert.equal(p.path, '/ewp/omobility-las/update');
  assertSignedXmlPost(p, 'la approve');
  assertValid(p.body, OLA_XSD(), 'omobility-las-update-request (official)');
  const root = parseXml(p.body);
  assert.equal(root.local, 'omobility-las-update-request');
  assert.equal(root.ns, NS_OLA_REQ);
  const [hei, act] = root.elements();
  assert.equal(hei.local, 'sending-hei-id');
  assert.equal(hei.text, P_UPD);
  assert.equal(act.local, 'approve-proposal-v1');
  const kids = act.elements();
  assert.deepEqual(kids.map((e) => e.local), ['omobility-id', 'changes-proposal-id', 'signature']);
  assert.equal(kids[0].text, m.om);
  assert.equal(kids[1].text, m.cp);
  const sig = Object.fromEntries(kids[2].elements().map((e) => [e.local, e]));
  assert.equal(sig['signer-name'].text, 'Claire Martin');
  assert.equal(sig['signer-name'].ns, NS_OLA_GET);
  assert.equal(sig['signer-position'].text, 'Coordinatrice Erasmus');
  assert.equal(sig['signer-email'].text, 'claire.martin@smile.test');
  const ts = Date.parse(sig.timestamp.text);
  assert.ok(Math.abs(ts - Date.now()) < 120000, `timestamp ${sig.timestamp.text}`);
  assert.ok(sig['signer-app'].text.length > 0);
  assertValid(okXml(true), OLA_RES_XSD(), 'omobility-las-update-response (double)');
  // registration: next active step after approval_host
  const step = sql(`SELECT s.code FROM smile.inscription i JOIN smile.step s ON s.id = i.step_id WHERE i.id = ${m.inscription}`);
  const want = sql(`SELECT code FROM smile.step WHERE active AND position > (SELECT position FROM smile.step
    WHERE code = 'approval_host') ORDER BY position LIMIT 1`);
  assert.equal(step, want);
  assert.notEqual(step, 'approval_host');
  const sm = json(`SELECT json_agg(json_build_object('type', s.type, 'step', st.code, 'validator', s.validator_id))
    FROM smile.stepmessage s JOIN smile.step st ON st.id = s.step_id WHERE s.inscription_id = ${m.inscription}`);
  assert.deepEqual(sm.map((s) => [s.type, s.step]), [['validated', 'approval_host']]);
  assert.ok(sm[0].validator, 'deciding user recorded');
  const rf = refetchJobs(m.om);
  assert.equal(rf.length, 1);
  assert.equal(rf[0].api, 'omobility-las');
  assert.equal(job(q.job).api, 'omobility-las');
});

itest(() => fx, 'LA comment answered 409 → decision conflict with the partner\'s user-message, re-fetch queued, job final, step unchanged', async () => {
  const m = seed({ la: true });
  behaviour.set(m.om, (req) => double.reply(req, { status: 409,
    body: errorXml('changes-proposal-id is not the current one', 'Your copy of this LA is out of date; please refresh.') }));
  const comment = '"Introductory calculus" is no longer taught; we suggest "Calculus I".';
  const q = await decide('la', 'comment', `${P_UPD}:${m.om}`, '--comment', comment, '--signer-name', 'Claire Martin',
    '--signer-position', 'Coordinatrice', '--signer-email', 'claire@smile.test', '--by', 'alice.staff');
  const { d } = await waitDecision(q.decision, 'conflict');
  assert.equal(d.partner_message, 'Your copy of this LA is out of date; please refresh.');
  const posts = updatesFor(m.om);
  assert.equal(posts.length, 1);
  assertValid(posts[0].body, OLA_XSD(), 'comment request (official)');
  const act = parseXml(posts[0].body).elements()[1];
  assert.equal(act.local, 'comment-proposal-v1');
  assert.deepEqual(act.elements().map((e) => e.local), ['omobility-id', 'changes-proposal-id', 'comment', 'signature']);
  assert.equal(act.elements()[2].text, comment);
  const j = job(q.job);
  assert.equal(j.status, 'rejected');
  assert.equal(j.last_http_status, 409);
  assert.equal(j.attempts, 1);
  const rf = refetchJobs(m.om);
  assert.equal(rf.length, 1, 'the partner\'s current LA is fetched again');
  assert.equal(rf[0].api, 'omobility-las');
  assert.equal(sql(`SELECT s.code FROM smile.inscription i JOIN smile.step s ON s.id = i.step_id WHERE i.id = ${m.inscription}`),
    'approval_host');
  assert.equal(sql(`SELECT count(*) FROM smile.stepmessage WHERE inscription_id = ${m.inscription}`), '0');
  await sleep(2500); // a retry would have come (retry_max 2 s)
  assert.equal(updatesFor(m.om).length, 1, 'a conflict is not retried');
});

itest(() => fx, 'nomination approval answered 400 → refused with the developer-message, never retried, no re-fetch', async () => {
  const m = seed();
  behaviour.set(m.om, (req) => double.reply(req, { status: 400, body: errorXml(`omobility ${m.om}: receiving HEI not covered`) }));
  const q = await decide('mobility', 'approve', m.id, '--by', 'alice.staff');
  const { d } = await waitDecision(q.decision, 'refused');
  assert.equal(d.partner_message, `omobility ${m.om}: receiving HEI not covered`);
  const j = job(q.job);
  assert.equal(j.status, 'rejected');
  assert.equal(j.last_http_status, 400);
  assert.match(j.last_error, /HTTP 400: omobility .*receiving HEI not covered/);
  await sleep(2500);
  assert.equal(updatesFor(m.om).length, 1, 'not retried');
  assert.equal(decision(q.decision).state, 'refused');
  assert.equal(refetchJobs(m.om).length, 0);
  assert.equal(sql(`SELECT status FROM smile.inscription WHERE id = ${m.inscription}`), '1');
});

itest(() => fx, 'ewpctl jobs retry of a refused decision puts it back on its way; a decision already answered is never sent again', async () => {
  const m = seed();
  let n = 0;
  behaviour.set(m.om, (req, isLa) => {
    n++;
    if (n === 1) double.reply(req, { status: 400, body: errorXml('receiving HEI unknown here (fixed since)') });
    else double.reply(req, { body: okXml(isLa) });
  });
  const q = await decide('mobility', 'approve', m.id, '--by', 'alice.staff');
  await waitDecision(q.decision, 'refused');
  const r = await ctl('jobs', 'retry', String(q.job));
  assert.equal(r.status, 0, describeRun(r));
  const { d } = await waitDecision(q.decision, 'accepted');
  assert.equal(d.partner_message, null, 'the refusal message is gone with the refusal');
  assert.equal(updatesFor(m.om).length, 2);
  assert.equal(sql(`SELECT status FROM smile.inscription WHERE id = ${m.inscription}`), '2');
  // its job run again (an outcome lost after the answer was recorded): not sent a third time
  sql(`UPDATE ewp.jobs SET status = 'pending', finished_at = NULL, next_attempt_at = now() WHERE id = ${q.job}`);
  await pollUntil(() => ({ ok: job(q.job).status === 'success' && job(q.job).finished_at !== null, detail: JSON.stringify(job(q.job)) }),
    10000, 'job finished again');
  await sleep(500);
  assert.equal(updatesFor(m.om).length, 2, 'an accepted decision is not sent again');
  assert.equal(decision(q.decision).state, 'accepted');
  assert.equal(sql(`SELECT count(*) FROM smile.stepmessage WHERE inscription_id = ${m.inscription}`), '1', 'workflow moved once');
});

itest(() => fx, 'partner 500 then 200 → retried after a backoff, then accepted (one decision, two logged attempts)', async () => {
  const m = seed();
  let n = 0;
  let held; // the second attempt waits until the state after the 500 is checked
  behaviour.set(m.om, (req, isLa) => {
    n++;
    if (n === 1) double.reply(req, { status: 500, body: errorXml('database on fire') });
    else held = () => double.reply(req, { body: okXml(isLa) });
  });
  const q = await decide('mobility', 'approve', m.id, '--by', 'alice.staff');
  await pollUntil(() => {
    const j = job(q.job);
    const waiting = j.status === 'pending' || (j.status === 'running' && n >= 2);
    return { ok: n >= 1 && decision(q.decision).state === 'queued' && waiting && j.attempts >= 1,
      detail: JSON.stringify([n, decision(q.decision), j]) };
  }, 10000, 'after the 500: still queued, job waiting for its next attempt');
  await pollUntil(() => ({ ok: !!held, detail: `${n} attempts` }), 10000, 'the second attempt');
  held();
  const { d } = await waitDecision(q.decision, 'accepted');
  assert.equal(d.partner_message, null);
  const posts = updatesFor(m.om);
  assert.equal(posts.length, 2);
  assert.equal(posts[0].body.toString(), posts[1].body.toString(), 'the same request sent again');
  const j = job(q.job);
  assert.equal(j.attempts, 2);
  assert.equal(j.status, 'success');
  const rows = await pollUntil(() => {
    const r = json(`SELECT coalesce(json_agg(json_build_object('s', status, 'e', error) ORDER BY id), '[]') FROM ewp.message_log WHERE job_id = ${q.job}`);
    return { ok: r.length === 2, r, detail: JSON.stringify(r) };
  }, 5000, 'two logged attempts');
  assert.equal(rows.r[0].s, 500);
  assert.match(rows.r[0].e, /HTTP 500: database on fire/);
  assert.equal(rows.r[1].s, 200);
  assert.equal(sql(`SELECT status FROM smile.inscription WHERE id = ${m.inscription}`), '2');
});

itest(() => fx, 'a 200 whose signature is refused is not trusted, and a partner that never answers times out: both retried, then accepted', async () => {
  const forged = makeKey(); // not in the catalogue
  const a = seed();
  let na = 0;
  behaviour.set(a.om, (req, isLa) => {
    na++;
    double.reply(req, na === 1 ? { body: okXml(isLa), key: forged } : { body: okXml(isLa) });
  });
  const b = seed();
  let nb = 0;
  behaviour.set(b.om, (req, isLa) => {
    nb++;
    if (nb > 1) double.reply(req, { body: okXml(isLa) }); // the first one is never answered
  });
  const qa = await decide('mobility', 'approve', a.id, '--by', 'alice.staff');
  const qb = await decide('mobility', 'approve', b.id, '--by', 'alice.staff');
  await waitDecision(qa.decision, 'accepted', 20000);
  await waitDecision(qb.decision, 'accepted', 20000);
  assert.equal(updatesFor(a.om).length, 2);
  assert.equal(updatesFor(b.om).length, 2);
  const errs = (jid) => json(`SELECT json_agg(error ORDER BY id) FROM ewp.message_log WHERE job_id = ${jid}`);
  await pollUntil(() => ({ ok: (errs(qa.job) || []).length === 2 && (errs(qb.job) || []).length === 2, detail: '' }), 5000, 'attempts logged');
  assert.match(errs(qa.job)[0], /HTTP 200 \(response signature refused/);
  assert.match(errs(qb.job)[0], /timeout/i);
  assert.equal(job(qa.job).attempts, 2);
  assert.equal(job(qb.job).attempts, 2);
});

itest(() => fx, 'partner publishing no update API → decision failed with a clear message, nothing sent', async () => {
  const m = seed({ hei: P_NOUPD });
  const before = double.requests.length;
  const q = await decide('mobility', 'approve', m.id, '--by', 'alice.staff');
  assert.equal(q.partner, P_NOUPD);
  const { d } = await waitDecision(q.decision, 'failed');
  assert.match(d.partner_message, /noupd\.partner\.example\.org publishes no update endpoint of Outgoing Mobilities v3 \(update-url\)/);
  assert.equal(job(q.job).status, 'no-cnr-api');
  assert.equal(double.requests.slice(before).filter((r) => omobilityOf(r) === m.om).length, 0);
  assert.equal(refetchJobs(m.om).length, 0);
});

itest(() => fx, 'partner down past the job\'s expiry → decision failed ("gave up"), nothing sent after', async () => {
  const m = seed();
  behaviour.set(m.om, (req) => double.reply(req, { status: 503, body: errorXml('maintenance') }));
  const q = await decide('mobility', 'approve', m.id, '--by', 'alice.staff');
  sql(`UPDATE ewp.jobs SET expires_at = created_at + interval '3 seconds' WHERE id = ${q.job}`);
  const { d } = await waitDecision(q.decision, 'failed', 15000);
  assert.match(d.partner_message, /^gave up: HTTP 503: maintenance/);
  assert.equal(job(q.job).status, 'expired');
  const n = updatesFor(m.om).length;
  assert.ok(n >= 1);
  await sleep(2500);
  assert.equal(updatesFor(m.om).length, n);
});

itest(() => fx, 'CLI refuses readably when there is nothing to decide, and writes nothing', async () => {
  const out = seed({ outgoing: true, hei: P_UPD });
  const cancelled = seed({ status: 'cancelled' });
  const approved = seed({ status: 'approved', la: false });
  const noLa = seed();
  const laDone = seed({ la: true });
  sql(`UPDATE smile.la_version v SET state = 'approved', ended_at = now() FROM smile.learning_agreement la
    WHERE la.mobility_id = ${laDone.id} AND v.learning_agreement_id = la.id AND v.state = 'current'`);
  const pending = seed({ la: true });
  const sign = ['--signer-name', 'C', '--signer-position', 'P', '--signer-email', 'c@smile.test'];
  const cases = [
    [['mobility', 'approve', out.id, '--by', 'x'], 1, /is outgoing: we are its sending HEI/],
    [['mobility', 'approve', cancelled.id, '--by', 'x'], 1, /was cancelled by the sending HEI: nothing to decide/],
    [['mobility', 'reject', approved.id, '--comment', 'no', '--by', 'x'], 1, /already approved .*nothing to decide/],
    [['la', 'approve', noLa.id, ...sign, '--by', 'x'], 1, /has no learning agreement/],
    [['la', 'approve', laDone.id, ...sign, '--by', 'x'], 1, /no changes proposal waiting: nothing to decide/],
    [['la', 'approve', out.id, ...sign, '--by', 'x'], 1, /is outgoing/],
    [['mobility', 'approve', '999999', '--by', 'x'], 1, /no mobility "999999"/],
    [['mobility', 'approve', `${P_UPD}:nope`, '--by', 'x'], 1, /no mobility "upd\.partner\.example\.org:nope"/],
    [['mobility', 'reject', pending.id, '--by', 'x'], 2, /--comment TEXT is required/],
    [['mobility', 'reject', pending.id, '--comment', '  ', '--by', 'x'], 2, /--comment TEXT is required/],
    [['la', 'approve', pending.id, '--signer-name', 'C', '--by', 'x'], 2, /--signer-name, --signer-position and --signer-email are required/],
    [['la', 'comment', pending.id, ...sign, '--by', 'x'], 2, /--comment TEXT is required/],
    [['la', 'approve', pending.id, '--signer-name', 'C', '--signer-position', 'P', '--signer-email', 'not-an-email', '--by', 'x'], 1,
      /signer e-mail "not-an-email" is not an e-mail address/],
    [['mobility', 'approve', '--by', 'x'], 2, /which mobility\?/],
    [['mobility', 'approve', pending.id, 'other', '--by', 'x'], 2, /one mobility at a time/],
    [['mobility', 'approve', pending.id, '--bogus'], 2, /unknown option --bogus/],
    [['mobility', 'frobnicate'], 2, /unknown subcommand "mobility frobnicate"/],
    [['la', 'comment', pending.id, '--comment', 'bad\u0007bell', ...sign, '--by', 'x'], 1, /control characters are not allowed/],
  ];
  const before = counts();
  for (const [args, status, re] of cases) {
    const r = await ctl(...args);
    assert.equal(r.status, status, describeRun(r));
    assert.match(r.stderr, re, describeRun(r));
    assert.doesNotMatch(r.stderr, /ERROR:|CONTEXT:|plpgsql/, `no raw SQL error text:\n${describeRun(r)}`);
  }
  assert.equal(counts(), before, 'no decision, job or audit row written');
  // a proposal already decided (queued or accepted) is not decided twice
  const q = await decide('mobility', 'approve', pending.id, '--by', 'alice.staff');
  await waitDecision(q.decision, 'accepted');
  const r = await ctl('mobility', 'reject', pending.id, '--comment', 'changed my mind', '--by', 'bob');
  assert.equal(r.status, 1, describeRun(r));
  assert.match(r.stderr, new RegExp(`proposal ${pending.proposal} of mobility ${pending.id} is already decided: decision ${q.decision} \\(nomination-approve, accepted, by alice\\.staff\\)`));
  // the same mobility's LA is decided separately
  const l = await decide('la', 'approve', pending.id, ...sign, '--by', 'alice.staff');
  await waitDecision(l.decision, 'accepted');
  const r2 = await ctl('la', 'comment', pending.id, '--comment', 'again', ...sign, '--by', 'x');
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /already decided/);
});

itest(() => fx, 'mobility list / show and la show: every part, filters, terminal-safe output', async () => {
  const evil = seed({ la: true, name: 'Eve\u001b[31mRED\u0007' });
  behaviour.set(evil.om, (req) => double.reply(req, { status: 409, body: errorXml('stale', 'Stale copy \u009b2J please refresh') }));
  const q = await decide('mobility', 'approve', evil.id, '--by', 'alice.staff');
  await waitDecision(q.decision, 'conflict');
  await pollUntil(() => ({ ok: Number(sql(`SELECT count(*) FROM ewp.message_log WHERE job_id = ${q.job}`)) === 1, detail: '' }),
    5000, 'message-log row');
  const out = seed({ outgoing: true, hei: 'other.example.org' });

  let r = await ctl('mobility', 'list', '--incoming', '--partner', P_UPD);
  assert.equal(r.status, 0, describeRun(r));
  assert.doesNotMatch(r.stdout, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/, 'no control characters on the terminal');
  const line = r.stdout.split('\n').find((l) => l.includes(evil.om));
  assert.ok(line, describeRun(r));
  assert.match(line, /^\d+\s+in\s+upd\.partner\.example\.org\s+/);
  assert.match(line, /Eve\?\[31mRED\?/);
  assert.match(line, /nomination-approve:conflict/);
  assert.match(line, /proposal/);
  assert.ok(!r.stdout.includes(out.om), 'outgoing left out by --incoming');
  r = await ctl('mobility', 'list', '--outgoing', '--year', '2026');
  assert.equal(r.status, 0, describeRun(r));
  assert.ok(r.stdout.includes(out.om) && !r.stdout.includes(evil.om), describeRun(r));
  r = await ctl('mobility', 'list', '--year', '2031');
  assert.match(r.stdout, /\(0 mobilities\)/);
  r = await ctl('mobility', 'list', '--status', 'cancelled', '--partner', 'other.example.org');
  assert.match(r.stdout, /\(0 mobilities\)/);
  r = await ctl('mobility', 'list', '--status', 'bogus');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown status "bogus"/);
  r = await ctl('mobility', 'list', '--incoming', '--outgoing');
  assert.equal(r.status, 2);

  r = await ctl('mobility', 'show', `${P_UPD}:${evil.om}`);
  assert.equal(r.status, 0, describeRun(r));
  assert.doesNotMatch(r.stdout, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  for (const re of [new RegExp(`^id\\s+${evil.id}$`, 'm'), /^direction\s+incoming/m, new RegExp(`^omobility id\\s+${evil.om}$`, 'm'),
    new RegExp(`^proposal id\\s+${evil.proposal}$`, 'm'), /^global id \(ESI\)\s+urn:schac/m, new RegExp(`^la proposal\\s+${evil.cp}$`, 'm'),
    new RegExp(`^registration\\s+${evil.inscription}: Nomination \\(1\\), step approval_host`, 'm'),
    new RegExp(`#${q.decision} nomination-approve of proposal ${evil.proposal}: conflict\\s+\\(by alice\\.staff, .*job ${q.job} rejected\\)`),
    /partner: Stale copy \?\?2J please refresh/,
    new RegExp(`^\\s+${q.job}\\s+out update\\s+omobilities\\s+upd\\.partner\\.example\\.org\\s+rejected\\s+try 1\\s+http 409`, 'm'),
    // the refetch the 409 queued runs at once (the double answers it 404)
    /^\s+\d+\s+in\s+refetch\s+omobilities\s+upd\.partner\.example\.org\s+(pending|running|rejected)/m,
    new RegExp(`^exchanges \\([12], newest first`, 'm'),
    new RegExp(`POST 409\\s+omobilities\\s+job ${q.job}\\s+${double.baseUrl.replace(/[.]/g, '\\.')}/ewp/omobilities/update`)]) {
    assert.match(r.stdout, re, describeRun(r));
  }
  r = await ctl('mobility', 'show', '424242');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no mobility "424242"/);

  r = await ctl('la', 'show', evil.id);
  assert.equal(r.status, 0, describeRun(r));
  const s = r.stdout;
  assert.match(s, new RegExp(`^waiting proposal\\s+${evil.cp}$`, 'm'));
  assert.match(s, /^student\s+Anna Nowak$/m);
  assert.match(s, /^start\s+2026-09-01$/m);
  assert.match(s, /^sending contact\s+Jan Kowalski$/m);
  assert.match(s, new RegExp(`^changes-proposal \\(proposal ${evil.cp}\\)`, 'm'));
  assert.match(s, /signatures: sending-hei: Jan Kowalski .*student: Anna Nowak/);
  // 5 + 7.5, the deleted component left out of the total
  assert.match(s, /^ {2}components-studied: 12\.5 ECTS$/m);
  assert.match(s, /^ {2}components-recognized: 12\.5 ECTS$/m);
  assert.match(s, /MATH-1\s+Calculus I\s+5 ects/);
  assert.match(s, /INTRO\s+Introductory calculus\s+3 ects\s+deleted not-available/);
  assert.ok(!/OLD-1/.test(s.split('history')[0]), 'the superseded version is history only');
  assert.match(s, /^history \(2 versions\):/m);
  assert.match(s, new RegExp(`changes-proposal\\s+cp-\\d+-old\\s+superseded`));
  assert.match(s, new RegExp(`changes-proposal\\s+${evil.cp}\\s+current`));
  r = await ctl('la', 'show', seed().id);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no learning agreement for/);
});

itest(() => fx, 'two workers on one database never send a decision twice (30 decisions at once)', async () => {
  const ms = Array.from({ length: 30 }, () => seed({ la: true }));
  for (const m of ms) {
    behaviour.set(m.om, (req, isLa) => setTimeout(() => double.reply(req, { body: okXml(isLa) }), 150));
  }
  // queued in one transaction, the way the CLI does each: all due at once
  const ids = sql(`SELECT string_agg(q.decision_id::text, ',') FROM (VALUES ${ms.map((m, i) =>
    `(${m.id}, ${i % 2 ? "'nomination-approve'" : "'la-approve'"})`).join(',')}) AS v (mid, kind),
    LATERAL ewp.decision_queue(v.mid, v.kind, NULL, CASE WHEN v.kind = 'la-approve' THEN 'Claire' END,
      CASE WHEN v.kind = 'la-approve' THEN 'Coordinator' END, CASE WHEN v.kind = 'la-approve' THEN 'c@smile.test' END,
      'alice.staff', 'test') q`).split(',').map(Number);
  assert.equal(ids.length, 30);
  await pollUntil(() => {
    const n = Number(sql(`SELECT count(*) FROM ewp.decisions WHERE id IN (${ids}) AND state = 'accepted'`));
    return { ok: n === 30, detail: `${n} accepted` };
  }, 30000, 'all 30 decisions accepted', 200);
  for (const m of ms) assert.equal(updatesFor(m.om).length, 1, `${m.om} sent once`);
  const att = json(`SELECT json_agg(j.attempts) FROM ewp.jobs j JOIN ewp.decisions d ON d.job_id = j.id WHERE d.id IN (${ids})`);
  assert.ok(att.every((a) => a === 1), `attempts ${att}`);
  const logged = Number(sql(`SELECT count(*) FROM ewp.message_log l JOIN ewp.decisions d ON d.job_id = l.job_id WHERE d.id IN (${ids})`));
  assert.ok(logged <= 30, `${logged} exchanges logged`);
});
