// The whole story of one incoming student between two real ewpd nodes,
// each with its own PostgreSQL, talking over TLS with real signatures:
// the sending node (Universität Musterstadt) nominates a student, our node
// (the SMILE university) learns it by CNR, fetches and approves it; the
// learning agreement goes through the twelve steps of the official OLA
// scenario (proposal, comment, new proposal, approval, changes during the
// mobility, comment, approval); our staff enter the arrival and departure
// dates, which flow back. After every step the data is checked on BOTH
// nodes. The documents are the demo's (tests/demo/mobility/), so `make
// demo` plays the same story. Every get response exchanged is validated
// against the official XSDs when ../shared is present.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';

import { itest } from './lib/daemon.mjs';
import { REPO_ROOT, SPECS } from './lib/env.mjs';
import { pollUntil } from './lib/poll.mjs';
import { signRequest } from './lib/sign.mjs';
import { RECEIVING_HEI, SENDING_HEI, THIRD_HEI, TwoNodes } from './lib/two-nodes.mjs';
import { assertValid, parseXml } from './lib/xml.mjs';

const DOCS = path.join(REPO_ROOT, 'tests', 'demo', 'mobility');
const OMOB = 'ums-2026-0042';
const REF = `${SENDING_HEI}:${OMOB}`;
const JOBS_CONF = { retry_min: '1s', retry_max: '2s', lease: '10s', timeout: '5s' };
const STEP_MS = 20000; // CNR → fetch → store, both ways, on a loaded machine

let t; // TwoNodes
let S; // the sending node
let R; // the receiving node (ours)

before(async () => {
  t = await TwoNodes.create('flow', {
    receiving: { conf: { jobs: JOBS_CONF } },
    sending: { conf: { jobs: JOBS_CONF } },
  });
  S = t.sending;
  R = t.receiving;
});
after(async () => { await t?.cleanup(); });

const fx = () => R;
const json = (node, sql) => {
  const out = node.pg.psql(`SELECT coalesce(json_agg(r), '[]') FROM (${sql}) r`);
  return JSON.parse(out);
};
const one = (node, sql) => json(node, sql)[0];
const doc = (name) => path.join(DOCS, name);

// The mobility row on a node, with its LA versions in place.
function mobility(node) {
  return one(node, `SELECT m.id, m.is_outgoing, m.status, m.proposal_id, m.given_names, m.family_name,
      m.global_id, m.receiving_academic_year_id, m.sending_term_id, m.agreement_isced, m.eqf_level,
      m.actual_arrival_date::text AS arrival, m.actual_departure_date::text AS departure, m.inscription_id
    FROM smile.mobility m WHERE m.sending_hei_id = '${SENDING_HEI}' AND m.omobility_id = '${OMOB}'`);
}

function versions(node) {
  return json(node, `SELECT v.kind, v.state, v.proposal_id, v.comment
    FROM smile.la_version v JOIN smile.learning_agreement la ON la.id = v.learning_agreement_id
    JOIN smile.mobility m ON m.id = la.mobility_id
    WHERE m.sending_hei_id = '${SENDING_HEI}' AND m.omobility_id = '${OMOB}' ORDER BY v.id`);
}

const current = (vs, kind) => vs.filter((v) => v.kind === kind && v.state === 'current');

// Both nodes hold the same versions in place (kind, state, proposal id).
function sameCurrent(vs1, vs2) {
  const key = (vs) => vs.filter((v) => v.state === 'current').map((v) => `${v.kind}/${v.proposal_id ?? ''}`).sort();
  return JSON.stringify(key(vs1)) === JSON.stringify(key(vs2));
}

function inscription(id) {
  return one(R, `SELECT i.status, s.code AS step, i.given_names, i.family_name, i.esi, i.academic_year,
      e.schac_id AS home
    FROM smile.inscription i JOIN smile.step s ON s.id = i.step_id
    JOIN smile.etablissement e ON e.id = i.home_etablissement_id WHERE i.id = ${Number(id)}`);
}

function decisions() {
  return json(R, `SELECT d.kind, d.state, d.proposal_id, d.partner_message FROM ewp.decisions d
    JOIN smile.mobility m ON m.id = d.mobility_id WHERE m.omobility_id = '${OMOB}' ORDER BY d.id`);
}

// No job of either node ended in failure.
function assertNoFailedJobs() {
  for (const n of [S, R]) {
    const bad = json(n, `SELECT id, kind, api, status, last_error FROM ewp.jobs
      WHERE status IN ('rejected', 'failed-max-attempts', 'expired', 'cancelled', 'no-cnr-api')`);
    assert.deepEqual(bad, [], `failed jobs on ${n.name}`);
  }
}

async function until(what, fn) {
  return pollUntil(async () => {
    const r = fn();
    return { ok: !!r, value: r, detail: JSON.stringify({ S: versions(S), R: versions(R), dec: decisions() }) };
  }, STEP_MS, what);
}

// ---- official-XSD validation of what was exchanged --------------------
const REG = path.join(SPECS, 'ewp-registry-service', 'src', 'main', 'resources', 'schemas');
const OFFICIAL = {
  omobilities: path.join(REG, 'ewp-specs-api-omobilities-v3.0.0', 'endpoints', 'get-response.xsd'),
  'omobility-las': path.join(REG, 'ewp-specs-api-omobility-las-v1.2.0', 'endpoints', 'get-response.xsd'),
  imobilities: path.join(REG, 'ewp-specs-api-imobilities-v2.0.0', 'endpoints', 'get-response.xsd'),
};

itest(fx, 'a nomination made on the sending node reaches our node by CNR and becomes a registration at the first active step', async () => {
  const out = t.ctlOk(S, ['mobility', 'nominate', doc('nomination.xml')]);
  assert.match(out, new RegExp(OMOB));
  const sent = mobility(S);
  assert.equal(sent.is_outgoing, true);
  assert.equal(sent.status, 'pending');
  const got = (await until('the nomination stored on our node', () => mobility(R)?.proposal_id === sent.proposal_id && mobility(R))).value;
  assert.equal(got.is_outgoing, false);
  assert.equal(got.status, 'pending');
  assert.deepEqual([got.given_names, got.family_name, got.global_id, got.receiving_academic_year_id, got.sending_term_id, got.agreement_isced, got.eqf_level],
    ['Lena', 'Schäfer', 'urn:schac:personalUniqueCode:int:esi:uni-musterstadt.example:20230042', '2026/2027', '2026/2027-1/2', '0541', 6]);
  assert.ok(got.inscription_id, 'a registration was created');
  const first = R.pg.psql("SELECT code FROM smile.step WHERE active ORDER BY position LIMIT 1");
  assert.deepEqual(inscription(got.inscription_id), {
    status: 1, step: first, given_names: 'Lena', family_name: 'Schäfer',
    esi: 'urn:schac:personalUniqueCode:int:esi:uni-musterstadt.example:20230042', academic_year: 2026, home: SENDING_HEI,
  });
  assertNoFailedJobs();
});

itest(fx, 'our approval goes to the sending node, which notifies back: both sides say approved, the registration is Inscrit', async () => {
  t.ctlOk(R, ['mobility', 'approve', REF, '--by', 'claire.martin']);
  await until('approved on both nodes', () => mobility(S).status === 'approved' && mobility(R).status === 'approved');
  assert.deepEqual(decisions().map((d) => [d.kind, d.state]), [['nomination-approve', 'accepted']]);
  await until('registration status 2', () => inscription(mobility(R).inscription_id).status === 2);
  assertNoFailedJobs();
});

itest(fx, 'OLA step 1: the first proposal, signed by the student and the sending HEI, reaches our node', async () => {
  t.ctlOk(S, ['la', 'create', OMOB, doc('la-header.xml')]);
  t.ctlOk(S, ['la', 'propose', OMOB, doc('proposal-1.xml')]);
  const [p1] = current(versions(S), 'changes-proposal');
  assert.ok(p1, 'proposal in place on the sending node');
  await until('proposal 1 on our node', () => current(versions(R), 'changes-proposal')[0]?.proposal_id === p1.proposal_id);
  const comps = json(R, `SELECT list, title FROM smile.la_components c JOIN smile.learning_agreement la ON la.id = c.learning_agreement_id
    JOIN smile.mobility m ON m.id = la.mobility_id WHERE m.omobility_id = '${OMOB}' ORDER BY 1, 2`);
  assert.equal(comps.filter((c) => /studied/.test(c.list)).length, 5, JSON.stringify(comps));
  assert.equal(comps.filter((c) => /recogni/.test(c.list)).length, 4, JSON.stringify(comps));
});

itest(fx, 'OLA step 2: our comment reaches the sending node; step 3: the new proposal replaces the commented one on both nodes', async () => {
  const [p1] = current(versions(R), 'changes-proposal');
  t.ctlOk(R, ['la', 'comment', REF, '--comment', 'Apprentissage automatique is closed to exchange students in the first semester: please choose Statistique inférentielle.',
    '--signer-name', 'Claire Martin', '--signer-position', 'Coordinatrice Erasmus', '--signer-email', 'relations-internationales@demo.smile-ewp.example']);
  await until('proposal 1 commented on the sending node', () => versions(S).some((v) => v.proposal_id === p1.proposal_id && v.state === 'commented'));
  assert.match(versions(S).find((v) => v.proposal_id === p1.proposal_id).comment, /Statistique inférentielle/);
  t.ctlOk(S, ['la', 'propose', OMOB, doc('proposal-3.xml')]);
  const [p3] = current(versions(S), 'changes-proposal');
  assert.notEqual(p3.proposal_id, p1.proposal_id, 'a new content has a new id');
  await until('proposal 3 current on our node', () => current(versions(R), 'changes-proposal')[0]?.proposal_id === p3.proposal_id);
  const hist = versions(R).find((v) => v.proposal_id === p1.proposal_id);
  assert.ok(['commented', 'superseded'].includes(hist.state), `the first proposal stays in the history: ${JSON.stringify(hist)}`);
});

itest(fx, 'OLA steps 4-5: our approval makes it the first version on both nodes and moves the registration past approval_host', async () => {
  const [p3] = current(versions(R), 'changes-proposal');
  t.ctlOk(R, ['la', 'approve', REF, '--signer-name', 'Claire Martin', '--signer-position', 'Coordinatrice Erasmus',
    '--signer-email', 'relations-internationales@demo.smile-ewp.example', '--by', 'claire.martin']);
  await until('first version on both nodes', () => current(versions(S), 'first-version').length === 1 &&
    current(versions(R), 'first-version').length === 1 && current(versions(R), 'changes-proposal').length === 0);
  assert.ok(sameCurrent(versions(S), versions(R)), 'both nodes hold the same versions');
  assert.equal(versions(R).find((v) => v.proposal_id === p3.proposal_id && v.kind === 'changes-proposal').state, 'approved');
  const step = inscription(mobility(R).inscription_id).step;
  const order = R.pg.psql(`SELECT string_agg(code, ' ' ORDER BY position) FROM smile.step`).split(' ');
  assert.ok(order.indexOf(step) > order.indexOf('approval_host'), `step ${step} is after approval_host`);
});

itest(fx, 'OLA steps 6-7: a changes proposal during the mobility, approved: approved-changes on both nodes', async () => {
  t.ctlOk(S, ['la', 'propose', OMOB, doc('proposal-6.xml')]);
  const [p6] = current(versions(S), 'changes-proposal');
  await until('proposal 6 on our node', () => current(versions(R), 'changes-proposal')[0]?.proposal_id === p6.proposal_id);
  t.ctlOk(R, ['la', 'approve', REF, '--signer-name', 'Claire Martin', '--signer-position', 'Coordinatrice Erasmus',
    '--signer-email', 'relations-internationales@demo.smile-ewp.example']);
  await until('approved changes on both nodes', () => current(versions(S), 'approved-changes').length === 1 &&
    current(versions(R), 'approved-changes').length === 1 && current(versions(R), 'changes-proposal').length === 0);
  assert.ok(sameCurrent(versions(S), versions(R)));
  assert.equal(current(versions(R), 'first-version').length, 1, 'the first version stays');
});

itest(fx, 'OLA steps 8-12: a second change, commented, proposed again and approved: the new approved changes replace the old ones', async () => {
  t.ctlOk(S, ['la', 'propose', OMOB, doc('proposal-8.xml')]);
  const [p8] = current(versions(S), 'changes-proposal');
  await until('proposal 8 on our node', () => current(versions(R), 'changes-proposal')[0]?.proposal_id === p8.proposal_id);
  t.ctlOk(R, ['la', 'comment', REF, '--comment', 'A 9-ECTS project should be recognised for 9 ECTS.',
    '--signer-name', 'Claire Martin', '--signer-position', 'Coordinatrice Erasmus', '--signer-email', 'relations-internationales@demo.smile-ewp.example']);
  await until('proposal 8 commented on the sending node', () => versions(S).some((v) => v.proposal_id === p8.proposal_id && v.state === 'commented'));
  t.ctlOk(S, ['la', 'propose', OMOB, doc('proposal-10.xml')]);
  const [p10] = current(versions(S), 'changes-proposal');
  await until('proposal 10 on our node', () => current(versions(R), 'changes-proposal')[0]?.proposal_id === p10.proposal_id);
  const before = current(versions(R), 'approved-changes')[0];
  t.ctlOk(R, ['la', 'approve', REF, '--signer-name', 'Claire Martin', '--signer-position', 'Coordinatrice Erasmus',
    '--signer-email', 'relations-internationales@demo.smile-ewp.example']);
  await until('new approved changes on both nodes', () => current(versions(R), 'changes-proposal').length === 0 &&
    current(versions(S), 'changes-proposal').length === 0 && sameCurrent(versions(S), versions(R)) &&
    current(versions(R), 'approved-changes')[0]?.proposal_id !== before.proposal_id);
  const vs = versions(R);
  assert.ok(vs.filter((v) => v.kind === 'approved-changes').length >= 2, 'the older approved changes are kept as history');
  assert.deepEqual(decisions().map((d) => [d.kind, d.state]), [
    ['nomination-approve', 'accepted'], ['la-comment', 'accepted'], ['la-approve', 'accepted'],
    ['la-approve', 'accepted'], ['la-comment', 'accepted'], ['la-approve', 'accepted']]);
  assertNoFailedJobs();
});

itest(fx, 'arrival and departure dates entered on our node reach the sending node by IMobility CNR', async () => {
  t.ctlOk(R, ['mobility', 'dates', REF, '--arrival', '2026-09-07', '--departure', '2027-01-29']);
  await until('dates on the sending node', () => mobility(S).arrival === '2026-09-07' && mobility(S).departure === '2027-01-29');
  assert.equal(mobility(R).arrival, '2026-09-07');
  assertNoFailedJobs();
});

itest(fx, 'a third HEI\'s signed requests see nothing of the two others\' mobility', async () => {
  const calls = [
    [S, `/ewp/omobilities/v3/get?sending_hei_id=${SENDING_HEI}&omobility_id=${OMOB}`],
    [S, `/ewp/omobilities/v3/index?sending_hei_id=${SENDING_HEI}`],
    [S, `/ewp/omobility-las/get?sending_hei_id=${SENDING_HEI}&omobility_id=${OMOB}`],
    [S, `/ewp/omobility-las/index?sending_hei_id=${SENDING_HEI}`],
    [R, `/ewp/imobilities/v2?receiving_hei_id=${RECEIVING_HEI}&omobility_id=${OMOB}`],
  ];
  const manifests = Object.fromEntries([S, R].map((n) => [n.name, fs.readFileSync(path.join(t.dir, 'catalogue.xml'), 'utf8')]));
  for (const [node, target] of calls) {
    const p = target.split('?')[0];
    assert.ok(manifests[node.name].includes(`${node.publicUrl}${p}`), `${p} is published in the catalogue`);
    const req = signRequest({ host: node.hostHeader, key: t.thirdKey, method: 'GET', path: target });
    const res = await node.send(req);
    const body = res.body.toString('utf8');
    if (res.status === 200) {
      assert.ok(!body.includes(OMOB) && !body.includes('Schäfer'), `${THIRD_HEI} must not see the mobility: ${target}\n${body}`);
    } else {
      assert.ok([400, 403].includes(res.status), `${target}: ${res.status} ${body}`);
    }
  }
});

itest(fx, 'ewpctl call posts an update request read from a file: a stale proposal id gets 409, printed with the verified signature', async () => {
  const V3 = 'https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/endpoints/update-request.xsd';
  const f = path.join(t.dir, 'stale-update.xml');
  fs.writeFileSync(f, `<?xml version="1.0" encoding="UTF-8"?>
<omobilities-update-request xmlns="${V3}">
  <approve-proposal-v1>
    <omobility-id>${OMOB}</omobility-id>
    <proposal-id>no-longer-the-current-one</proposal-id>
  </approve-proposal-v1>
</omobilities-update-request>
`);
  const r = t.ctl(R, ['call', '--cacert', path.join(t.dir, 'ca.pem'), '-d', `@${f}`, `${S.publicUrl}/ewp/omobilities/v3/update`]);
  assert.match(r.stdout, /HTTP 409/, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /<error-response/);
  assert.match(r.stdout, /response signature: verified/);
  assert.equal(mobility(S).status, 'approved', 'nothing changed on the sending node');
  const missing = t.ctl(R, ['call', '-d', '@/nonexistent/update.xml', `${S.publicUrl}/ewp/omobilities/v3/update`]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /cannot read \/nonexistent\/update.xml/);
});

itest(fx, 'every get response exchanged validates against the official schema', async (ctx) => {
  if (!fs.existsSync(REG)) {
    ctx.diagnostic(`official schemas absent (${REG}): only our own schemas were checked by the nodes`);
    return;
  }
  let n = 0;
  for (const node of [S, R]) {
    const rows = json(node, `SELECT id, api, convert_from(response_body, 'UTF8') AS body FROM ewp.message_log
      WHERE direction = 'out' AND status = 200 AND api IN ('omobilities', 'omobility-las', 'imobilities')
        AND url LIKE '%/get%' ORDER BY id`);
    for (const r of rows) {
      assertValid(Buffer.from(r.body), OFFICIAL[r.api], `${node.name} log ${r.id} (${r.api})`);
      parseXml(r.body);
      n++;
    }
  }
  assert.ok(n >= 10, `at least ten get responses were exchanged and checked (got ${n})`);
});
