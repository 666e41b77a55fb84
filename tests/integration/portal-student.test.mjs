// A student's file in the staff portal (GET /portal/students/<id>) and the
// decisions taken from it (POST .../nomination, .../la), between two real
// ewpd nodes as in mobility-flow.test.mjs: the sending node nominates two
// students, our node shows their files, and a decision made in the portal
// must really reach the sending node's database. Also: hostile names sent
// by the partner stay inert, refusals (role, CSRF, scope, bad input) write
// nothing, and a second decision on the same proposal is refused with the
// reason ewp.decision_queue() gives.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';

import { itest } from './lib/daemon.mjs';
import { REPO_ROOT } from './lib/env.mjs';
import { pollUntil } from './lib/poll.mjs';
import { PortalClient, ROLES, createUser, location } from './lib/portal.mjs';
import { SENDING_HEI, TwoNodes } from './lib/two-nodes.mjs';

const DOCS = path.join(REPO_ROOT, 'tests', 'demo', 'mobility');
const OMOB = 'ums-2026-0042'; // the demo's student (its LA documents name this id)
const HOSTILE = 'ums-2026-0666'; // a nomination with hostile names, for another faculty
const GIVEN_BAD = '<script>alert(1)</script>';
const FAMILY_BAD = '"><img src=x onerror=alert(2)>';
const JOBS_CONF = { retry_min: '1s', retry_max: '2s', lease: '10s', timeout: '5s' };
const STEP_MS = 25000;
const PASSWORD = 'portal student file password';
const SIGNER = { signer_position: 'Coordinatrice Erasmus', signer_email: 'ri@demo.smile-ewp.example' };

let t; // TwoNodes
let S; // the sending node
let R; // the receiving node (ours, whose portal is tested)
const ids = {}; // smile.mobility ids on R
const users = {};

const xmlEscape = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

// The demo nomination, for another omobility id / names / receiving unit.
function nominationFile(omob, given, family, ounit) {
  let x = fs.readFileSync(path.join(DOCS, 'nomination.xml'), 'utf8');
  x = x.replaceAll('ums-2026-0042', omob)
    .replace('<given-names>Lena</given-names>', `<given-names>${xmlEscape(given)}</given-names>`)
    .replace('<family-name>Schäfer</family-name>', `<family-name>${xmlEscape(family)}</family-name>`)
    .replace('<hei-id>demo.smile-ewp.example</hei-id>', `<hei-id>demo.smile-ewp.example</hei-id>\n      <ounit-id>${ounit}</ounit-id>`);
  const f = path.join(t.dir, `nomination-${omob}.xml`);
  fs.writeFileSync(f, x);
  return f;
}

const json = (node, sql) => JSON.parse(node.pg.psql(`SELECT coalesce(json_agg(r), '[]') FROM (${sql}) r`));
const one = (node, sql) => json(node, sql)[0];
const count = (node, sql) => Number(node.pg.psql(sql));
const decisionsCount = () => count(R, 'SELECT count(*) FROM ewp.decisions');
const auditCount = () => count(R, "SELECT count(*) FROM ewp.audit_log WHERE action LIKE 'decision.%'");

function mobility(node, omob) {
  return one(node, `SELECT id, status, status_comment, proposal_id, inscription_id FROM smile.mobility
    WHERE sending_hei_id = '${SENDING_HEI}' AND omobility_id = '${omob}'`);
}

function versions(node, omob) {
  return json(node, `SELECT v.id, v.kind, v.state, v.proposal_id, v.comment
    FROM smile.la_version v JOIN smile.learning_agreement la ON la.id = v.learning_agreement_id
    JOIN smile.mobility m ON m.id = la.mobility_id
    WHERE m.sending_hei_id = '${SENDING_HEI}' AND m.omobility_id = '${omob}' ORDER BY v.id`);
}

const current = (vs, kind) => vs.filter((v) => v.kind === kind && v.state === 'current');

async function until(what, fn) {
  return pollUntil(async () => {
    const r = fn();
    return { ok: !!r, value: r, detail: JSON.stringify({ S: versions(S, OMOB), R: versions(R, OMOB) }) };
  }, STEP_MS, what, 100);
}

async function signedIn(username) {
  const pc = PortalClient.of(R);
  const r = await pc.login(username, PASSWORD);
  assert.equal(r.status, 303, `sign-in of ${username}: ${r.describe()}`);
  return pc;
}

const file = (id) => `/portal/students/${id}`;

before(async () => {
  t = await TwoNodes.create('pstudent', {
    receiving: { conf: { jobs: JOBS_CONF } },
    sending: { conf: { jobs: JOBS_CONF } },
  });
  S = t.sending;
  R = t.receiving;
  // two faculties of ours; the nominations name them as receiving units
  R.pg.psql(`INSERT INTO smile.composante (etablissement_id, ounit_id, code, names)
    SELECT id, 'ufr-sci', 'SCI', '[{"lang": "fr", "name": "UFR Sciences"}]' FROM smile.etablissement WHERE is_local`);
  R.pg.psql(`INSERT INTO smile.composante (etablissement_id, ounit_id, code, names)
    SELECT id, 'ufr-let', 'LET', '[{"lang": "fr", "name": "UFR Lettres"}]' FROM smile.etablissement WHERE is_local`);
  users.claire = createUser(R.pg, { username: 'claire', name: 'Claire Martin', email: 'claire.martin@demo.smile-ewp.example',
    password: PASSWORD, roles: [ROLES.gestionnaire] });
  users.sci = createUser(R.pg, { username: 'sci', name: 'Sami Sciences', email: 'sci@demo.smile-ewp.example',
    password: PASSWORD, roles: [ROLES.gestionnaire], composantes: ['SCI'] });
  users.prof = createUser(R.pg, { username: 'prof', name: 'Paule Dupont', email: 'Paule.Dupont@demo.smile-ewp.example',
    password: PASSWORD, roles: [ROLES.referent] });
  users.std = createUser(R.pg, { username: 'std', name: 'Stan Dard', password: PASSWORD, roles: [ROLES.standard] });

  t.ctlOk(S, ['mobility', 'nominate', nominationFile(OMOB, 'Lena', 'Schäfer', 'ufr-sci')]);
  t.ctlOk(S, ['mobility', 'nominate', nominationFile(HOSTILE, GIVEN_BAD, FAMILY_BAD, 'ufr-let')]);
  await until('both nominations on our node', () => mobility(R, OMOB)?.inscription_id && mobility(R, HOSTILE)?.inscription_id);
  ids.a = mobility(R, OMOB).id;
  ids.b = mobility(R, HOSTILE).id;
  // Lena's educational referent (SMILE: mailreferent), e-mail in another case
  R.pg.psql(`UPDATE smile.inscription SET referent_email = 'paule.dupont@demo.smile-ewp.example'
    WHERE id = ${mobility(R, OMOB).inscription_id}`);
});
after(async () => { await t?.cleanup(); });

const fx = () => R;

itest(fx, 'a gestionnaire sees the nomination as received, the registration, the history and the forms to decide', async () => {
  const pc = await signedIn('claire');
  const r = await pc.get(file(ids.a));
  assert.equal(r.status, 200, r.describe());
  const h = r.text;
  assert.match(h, /<p class="student-who" id="student-name">Lena Schäfer<\/p>/);
  for (const s of ['2004-03-17', 'lena.schaefer@student.uni-musterstadt.example', '<dd>DE</dd>', SENDING_HEI, 'ums-fak-mn',
    'UFR Sciences', '2026/2027-1/2', '<dd>6</dd>', 'urn:schac:personalUniqueCode:int:esi:uni-musterstadt.example:20230042',
    'en attente de notre décision', `<code>${SENDING_HEI}:${OMOB}</code>`]) {
    assert.ok(h.includes(s), `the file shows ${s}`);
  }
  // the registration the nomination created, at the first active step
  const step = R.pg.psql('SELECT label FROM smile.step WHERE active ORDER BY position LIMIT 1');
  assert.ok(h.includes(`<dd>${step}</dd>`), `step ${step} shown`);
  assert.match(h, /<dd>Nomination<\/dd>/);
  assert.match(h, /<dd>UFR Sciences – SCI<\/dd>/);
  assert.match(h, /<dd>paule\.dupont@demo\.smile-ewp\.example<\/dd>/);
  // forms, each with its CSRF token and labelled fields
  assert.match(h, /<form method="post" action="\/portal\/students\/\d+\/nomination" id="approve-nomination"><input type="hidden" name="csrf" value="[0-9a-f]{64}">/);
  assert.match(h, /id="reject-nomination"><input type="hidden" name="csrf" value="[0-9a-f]{64}">/);
  assert.match(h, /<label for="reject-comment">/);
  assert.doesNotMatch(h, /id="approve-la"|id="comment-la"/, 'no learning agreement yet: nothing to decide on it');
  assert.match(h, /Aucun contrat d&#39;études reçu/);
  // the EWP exchanges about this mobility, each linked to the log page
  const links = [...h.matchAll(/<a href="\/portal\/log\/(\d+)">/g)].map((m) => Number(m[1]));
  assert.ok(links.length >= 1, 'at least the CNR and the fetch');
  for (const id of links) {
    const row = one(R, `SELECT url, convert_from(coalesce(request_body, ''), 'UTF8') AS req,
      convert_from(coalesce(response_body, ''), 'UTF8') AS res FROM ewp.message_log WHERE id = ${id}`);
    assert.ok(row, `log ${id} exists`);
    assert.ok(`${row.url} ${row.req}`.includes(OMOB), `log ${id} mentions ${OMOB}`);
  }
  assert.match(h, /<td>reçu<\/td><td>POST <span class="student-url">\/ewp\/omobility-cnr[^<]*<\/span><\/td><td>200<\/td>/, 'the partner\'s CNR');
  assert.match(h, /<td>envoyé<\/td><td>POST <span class="student-url">https:\/\/[^<]*\/ewp\/omobilities\/v3\/get<\/span><\/td><td>200<\/td>/, 'our fetch');
  // the re-fetch job that the CNR caused is listed
  assert.match(h, /<table id="jobs">/);
});

itest(fx, 'hostile names received in a nomination are shown as text, never as markup', async () => {
  const pc = await signedIn('claire');
  const r = await pc.get(file(ids.b));
  assert.equal(r.status, 200, r.describe());
  assert.equal(R.pg.psql(`SELECT given_names FROM smile.mobility WHERE id = ${ids.b}`), GIVEN_BAD, 'stored as received');
  assert.ok(!r.text.includes('<script'), 'no script element');
  assert.ok(!r.text.includes('<img'), 'no img element');
  assert.ok(r.text.includes('&lt;script&gt;alert(1)&lt;/script&gt; &quot;&gt;&lt;img src=x onerror=alert(2)&gt;'), 'escaped names');
  assert.ok(r.text.includes('<dd>&quot;&gt;&lt;img src=x onerror=alert(2)&gt;</dd>'));
  assert.equal(r.header('Content-Security-Policy').includes("default-src 'none'"), true);
});

itest(fx, 'malformed and unknown ids: 400 and 404 with a readable message', async () => {
  const pc = await signedIn('claire');
  for (const bad of ['abc', '0', '-3', '12x', '00012', '1234567890123456789']) {
    const r = await pc.get(`/portal/students/${bad}`);
    assert.equal(r.status, 400, `${bad}: ${r.describe()}`);
    assert.match(r.text, /par son numéro/);
  }
  const r = await pc.get('/portal/students/987654321');
  assert.equal(r.status, 404);
  assert.match(r.text, /Aucun dossier étudiant avec ce numéro/);
  assert.equal((await pc.get(`${file(ids.a)}/la`)).status, 404, 'no GET page under a file');
  const before = decisionsCount();
  await pc.get(file(ids.a));
  assert.equal((await pc.post(`${file(ids.a)}/other`, { action: 'approve' })).status, 404);
  assert.equal((await pc.post('/portal/students/987654321/nomination', { action: 'approve' })).status, 404);
  assert.equal((await pc.post('/portal/students/x1/nomination', { action: 'approve' })).status, 400);
  assert.equal(decisionsCount(), before);
});

itest(fx, 'users without PRIV_DECIDE cannot post a decision; without a students right they cannot read a file', async () => {
  const before = [decisionsCount(), auditCount()];
  const std = await signedIn('std');
  assert.equal((await std.get(file(ids.a))).status, 403);
  await std.get('/portal/');
  for (const what of ['nomination', 'la']) {
    const r = await std.post(`${file(ids.a)}/${what}`, { action: 'approve', ...SIGNER, signer_name: 'X' });
    assert.equal(r.status, 403, r.describe());
  }
  const prof = await signedIn('prof');
  const page = await prof.get(file(ids.a));
  assert.equal(page.status, 200, 'the referent reads the file of their student');
  for (const what of ['nomination', 'la']) {
    const r = await prof.post(`${file(ids.a)}/${what}`, { action: 'approve', ...SIGNER, signer_name: 'X' });
    assert.equal(r.status, 403, r.describe());
  }
  assert.deepEqual([decisionsCount(), auditCount()], before, 'nothing written');
});

itest(fx, 'a decision without its CSRF token, or with a wrong one, is refused and writes nothing', async () => {
  const pc = await signedIn('claire');
  await pc.get(file(ids.a));
  const before = [decisionsCount(), auditCount()];
  const missing = await pc.post(`${file(ids.a)}/nomination`, { action: 'approve', csrf: null });
  assert.equal(missing.status, 403, missing.describe());
  assert.match(missing.text, /formulaire a expiré|ne provient pas/);
  const wrong = await pc.post(`${file(ids.a)}/nomination`, { action: 'approve', csrf: 'ab'.repeat(32) });
  assert.equal(wrong.status, 403);
  const other = await signedIn('sci'); // another session's valid token
  await other.get(file(ids.a));
  const stolen = await pc.post(`${file(ids.a)}/nomination`, { action: 'approve', csrf: other.csrf });
  assert.equal(stolen.status, 403);
  assert.deepEqual([decisionsCount(), auditCount()], before, 'nothing written');
  assert.equal(mobility(R, OMOB).status, 'pending');
});

itest(fx, 'bad input to a decision: 400 with the reason, nothing written', async () => {
  const pc = await signedIn('claire');
  await pc.get(file(ids.b));
  const before = decisionsCount();
  let r = await pc.post(`${file(ids.b)}/nomination`, { action: 'reject' });
  assert.equal(r.status, 400, r.describe());
  assert.match(r.text, /Un commentaire est obligatoire/);
  r = await pc.post(`${file(ids.b)}/nomination`, { action: 'reject', comment: ' \r\n\t ' });
  assert.equal(r.status, 400);
  r = await pc.post(`${file(ids.b)}/nomination`, { action: 'comment', comment: 'x' });
  assert.equal(r.status, 400);
  assert.match(r.text, /accepter ou refuser/);
  r = await pc.post(`${file(ids.b)}/nomination`, {});
  assert.equal(r.status, 400);
  r = await pc.post(`${file(ids.b)}/nomination`, { action: 'reject', comment: 'x'.repeat(4001) });
  assert.equal(r.status, 400);
  assert.match(r.text, /4000/);
  r = await pc.post(`${file(ids.a)}/la`, { action: 'approve', signer_name: 'Claire Martin' });
  assert.equal(r.status, 400);
  assert.match(r.text, /signataire sont obligatoires/);
  r = await pc.post(`${file(ids.a)}/la`, { action: 'comment', signer_name: 'Claire Martin', ...SIGNER });
  assert.equal(r.status, 400);
  assert.match(r.text, /Un commentaire est obligatoire/);
  assert.equal(decisionsCount(), before);
});

itest(fx, 'scoping: a gestionnaire limited to a faculty and a Référent see only their students; actions too', async () => {
  const sci = await signedIn('sci');
  const a = await sci.get(file(ids.a));
  assert.equal(a.status, 200, 'a student of SCI');
  assert.match(a.text, /id="approve-nomination"/);
  const b = await sci.get(file(ids.b));
  assert.equal(b.status, 404, 'a student of LET is not shown');
  assert.ok(!b.text.includes('onerror') && !b.text.includes('script'), 'nothing of the student leaks');
  const before = [decisionsCount(), auditCount()];
  await sci.get(file(ids.a)); // a fresh token
  for (const [what, f] of [['nomination', { action: 'reject', comment: 'not yours' }],
    ['la', { action: 'comment', comment: 'not yours', signer_name: 'S', ...SIGNER }]]) {
    const r = await sci.post(`${file(ids.b)}/${what}`, f);
    assert.equal(r.status, 404, `${what} on a student outside the faculty: ${r.describe()}`);
  }
  assert.deepEqual([decisionsCount(), auditCount()], before, 'nothing written');

  const prof = await signedIn('prof');
  const pa = await prof.get(file(ids.a));
  assert.equal(pa.status, 200);
  assert.match(pa.text, /Lena Schäfer/);
  assert.doesNotMatch(pa.text, /<form method="post" action="\/portal\/students/, 'a referent never sees a decision form');
  assert.doesNotMatch(pa.text, /\/portal\/log\//, 'nor the EWP log');
  assert.equal((await prof.get(file(ids.b))).status, 404, 'not their student');
  R.pg.psql(`UPDATE smile.inscription SET referent_email = NULL WHERE id = ${mobility(R, OMOB).inscription_id}`);
  try {
    assert.equal((await prof.get(file(ids.a))).status, 404, 'no longer their student');
  } finally {
    R.pg.psql(`UPDATE smile.inscription SET referent_email = 'paule.dupont@demo.smile-ewp.example'
      WHERE id = ${mobility(R, OMOB).inscription_id}`);
  }
});

itest(fx, 'approving a nomination in the portal reaches the sending node; a second approval is refused with the reason', async () => {
  const pc = await signedIn('claire');
  await pc.get(file(ids.a));
  const r = await pc.post(`${file(ids.a)}/nomination`, { action: 'approve' });
  assert.equal(r.status, 303, r.describe());
  assert.equal(location(r), `${file(ids.a)}?m=student.decision_queued`);
  const d = one(R, `SELECT kind, decided_by, utilisateur_id, proposal_id, job_id FROM ewp.decisions WHERE mobility_id = ${ids.a}`);
  assert.equal(d.kind, 'nomination-approve');
  assert.equal(d.decided_by, 'claire');
  assert.equal(d.utilisateur_id, users.claire);
  assert.equal(d.proposal_id, mobility(R, OMOB).proposal_id);
  assert.ok(d.job_id, 'its update job');
  const audit = json(R, `SELECT actor, utilisateur_id, client_addr IS NOT NULL AS addr FROM ewp.audit_log
    WHERE action = 'decision.nomination-approve' AND object_id = '${ids.a}' ORDER BY id`);
  assert.deepEqual(audit.map((a) => a.actor).sort(), ['claire', 'portal'], 'the core\'s audit row and the portal\'s');
  assert.ok(audit.every((a) => a.utilisateur_id === users.claire));
  assert.ok(audit.some((a) => a.actor === 'claire' && a.addr), 'the portal\'s row has the client address');

  const shown = await pc.get(location(r));
  assert.match(shown.text, /<p class="flash" role="status">Décision enregistrée/);
  assert.doesNotMatch(shown.text, /id="approve-nomination"/, 'nothing left to decide');

  await until('approved on the sending node', () => mobility(S, OMOB).status === 'approved');
  await until('accepted and approved on our node', () => mobility(R, OMOB).status === 'approved' &&
    R.pg.psql(`SELECT state FROM ewp.decisions WHERE mobility_id = ${ids.a}`) === 'accepted');
  const after = await pc.get(file(ids.a));
  assert.match(after.text, /<td class="decision-accepted">reçue par le partenaire<\/td>/);
  assert.match(after.text, /<dd id="nomination-status">acceptée<\/dd>/);
  assert.match(after.text, /Nomination approved by claire/, 'the workflow history');
  assert.match(after.text, /<td>envoyé<\/td><td>POST <span class="student-url">https:\/\/[^<]*\/ewp\/omobilities\/v3\/update<\/span><\/td><td>200<\/td>/,
    'the update request that carried the decision, among the exchanges');

  const n = decisionsCount();
  await pc.get(file(ids.a));
  const again = await pc.post(`${file(ids.a)}/nomination`, { action: 'approve' });
  assert.equal(again.status, 409, again.describe());
  assert.match(again.text, /<p class="error" role="alert">the nomination of mobility \d+ \(uni-musterstadt\.example:ums-2026-0042\) is already approved/);
  assert.equal(decisionsCount(), n, 'nothing written');
});

itest(fx, 'rejecting a nomination with a comment: the sending node records the rejection and its reason', async () => {
  const pc = await signedIn('claire');
  await pc.get(file(ids.b));
  const reason = 'Places in UFR Lettres are full <b>this year</b> & next';
  const r = await pc.post(`${file(ids.b)}/nomination`, { action: 'reject', comment: reason });
  assert.equal(r.status, 303, r.describe());
  await until('rejected on the sending node', () => mobility(S, HOSTILE).status === 'rejected');
  assert.equal(mobility(S, HOSTILE).status_comment, reason);
  await until('decision accepted on our node', () =>
    R.pg.psql(`SELECT state FROM ewp.decisions WHERE mobility_id = ${ids.b}`) === 'accepted');
  const page = await pc.get(file(ids.b));
  assert.ok(page.text.includes('Places in UFR Lettres are full &lt;b&gt;this year&lt;/b&gt; &amp; next'));
  assert.doesNotMatch(page.text, /id="reject-nomination"/);
});

itest(fx, 'a learning agreement: tables A and B with ECTS totals, commented then approved in the portal, as the sending node sees it', async () => {
  const pc = await signedIn('claire');
  t.ctlOk(S, ['la', 'create', OMOB, path.join(DOCS, 'la-header.xml')]);
  t.ctlOk(S, ['la', 'propose', OMOB, path.join(DOCS, 'proposal-1.xml')]);
  const [p1] = current(versions(S, OMOB), 'changes-proposal');
  await until('proposal 1 on our node', () => current(versions(R, OMOB), 'changes-proposal')[0]?.proposal_id === p1.proposal_id);

  let h = (await pc.get(file(ids.a))).text;
  const ects = (slot, list) => R.pg.psql(`SELECT ects_net FROM smile.la_version_ects e
    WHERE e.mobility_id = ${ids.a} AND e.state = 'current' AND e.kind = '${slot}' AND e.list = '${list}'`);
  const table = (id) => (new RegExp(`<table id="${id}"[\\s\\S]*?</table>`).exec(h) || [''])[0];
  const a = table('la-proposal-studied');
  assert.equal((a.match(/<tr><td>\d+<\/td>/g) || []).length, 5, a);
  assert.match(a, /Apprentissage automatique/);
  assert.ok(a.includes(`<td class="num ects-total">${ects('changes-proposal', 'studied')}</td>`), a);
  const b = table('la-proposal-recognized');
  assert.equal((b.match(/<tr><td>\d+<\/td>/g) || []).length, 4, b);
  assert.ok(b.includes(`<td class="num ects-total">${ects('changes-proposal', 'recognized')}</td>`), b);
  assert.match(h, /Français langue étrangère B2/);
  assert.match(h, /<dd>fr B2<\/dd>/, 'language skills from the LA');
  assert.match(h, /<dd>2026-09-07 → 2027-01-29<\/dd>/, 'planned dates from the LA');
  // forms, prefilled with the signed-in user's name and e-mail
  assert.match(h, /<form method="post" action="\/portal\/students\/\d+\/la" id="approve-la"><input type="hidden" name="csrf"/);
  assert.match(h, /id="comment-la"><input type="hidden" name="csrf"/);
  assert.match(h, /<input id="approve-la-name" name="signer_name" required maxlength="4000" value="Claire Martin">/);
  assert.match(h, /name="signer_email" type="email" required maxlength="4000" value="claire\.martin@demo\.smile-ewp\.example">/);
  assert.ok(h.includes(p1.proposal_id));

  const comment = 'Apprentissage automatique is closed to exchange students in the first semester.';
  let r = await pc.post(`${file(ids.a)}/la`, { action: 'comment', comment, signer_name: 'Claire Martin', ...SIGNER });
  assert.equal(r.status, 303, r.describe());
  await until('proposal 1 commented on the sending node', () =>
    versions(S, OMOB).some((v) => v.proposal_id === p1.proposal_id && v.state === 'commented' && v.comment === comment));
  // a second decision on the same proposal: refused with the core's reason
  await pc.get(file(ids.a));
  const n = decisionsCount();
  r = await pc.post(`${file(ids.a)}/la`, { action: 'approve', signer_name: 'Claire Martin', ...SIGNER });
  assert.equal(r.status, 409, r.describe());
  assert.match(r.text, /already decided|no changes proposal waiting/);
  assert.equal(decisionsCount(), n);

  t.ctlOk(S, ['la', 'propose', OMOB, path.join(DOCS, 'proposal-3.xml')]);
  const [p3] = current(versions(S, OMOB), 'changes-proposal');
  await until('proposal 3 on our node', () => current(versions(R, OMOB), 'changes-proposal')[0]?.proposal_id === p3.proposal_id);
  await pc.get(file(ids.a));
  r = await pc.post(`${file(ids.a)}/la`, { action: 'approve', signer_name: 'Claire Martin', ...SIGNER });
  assert.equal(r.status, 303, r.describe());
  await until('first version on both nodes', () => current(versions(S, OMOB), 'first-version').length === 1 &&
    current(versions(R, OMOB), 'first-version').length === 1 && current(versions(R, OMOB), 'changes-proposal').length === 0);
  const dec = json(R, `SELECT kind, state, decided_by, signer_name, signer_position, signer_email FROM ewp.decisions
    WHERE mobility_id = ${ids.a} AND kind LIKE 'la-%' ORDER BY id`);
  assert.deepEqual(dec.map((d) => [d.kind, d.decided_by, d.signer_name, d.signer_position, d.signer_email]), [
    ['la-comment', 'claire', 'Claire Martin', SIGNER.signer_position, SIGNER.signer_email],
    ['la-approve', 'claire', 'Claire Martin', SIGNER.signer_position, SIGNER.signer_email]]);

  await until('the approval accepted on our node', () => json(R, `SELECT state FROM ewp.decisions WHERE mobility_id = ${ids.a}
    AND kind = 'la-approve'`)[0]?.state === 'accepted');
  h = (await pc.get(file(ids.a))).text;
  const first = (/<section id="la-first"[\s\S]*?<\/section>/.exec(h) || [''])[0];
  assert.ok(first, 'the first version is shown');
  assert.ok(first.includes(`<td class="num ects-total">${ects('first-version', 'studied')}</td>`), first);
  assert.match(first, /<th scope="row">Établissement d&#39;accueil<\/th><td>Claire Martin<\/td><td>Coordinatrice Erasmus<\/td><td>ri@demo\.smile-ewp\.example<\/td>/,
    'our signature, as the sending node put it in the first version');
  assert.doesNotMatch(h, /id="approve-la"|id="comment-la"/, 'nothing left to decide');
  assert.match(h, /la dernière version approuvée est la première version/);
  assert.doesNotMatch(h, /<section id="la-proposal"/, 'no proposal waiting');
  assert.ok(h.includes(comment), 'our comment in the history');
  assert.match(h, /<table id="la-history">/);
}, { timeout: 150000 });

itest(fx, 'changes during the mobility: the proposal shows inserted and deleted components, then the last approved changes', async () => {
  const pc = await signedIn('claire');
  t.ctlOk(S, ['la', 'propose', OMOB, path.join(DOCS, 'proposal-6.xml')]);
  const [p6] = current(versions(S, OMOB), 'changes-proposal');
  await until('proposal 6 on our node', () => current(versions(R, OMOB), 'changes-proposal')[0]?.proposal_id === p6.proposal_id);
  let h = (await pc.get(file(ids.a))).text;
  const prop = (/<section id="la-proposal"[\s\S]*?<\/section>/.exec(h) || [''])[0];
  assert.match(prop, /<td>Bases de données avancées<\/td><td>1\/2<\/td><td class="num">6<\/td><td>supprimé<\/td>/);
  assert.match(prop, /<td>Cryptographie<\/td><td>1\/2<\/td><td class="num">6<\/td><td>ajouté <span class="muted">timetable-conflict <\/span><\/td>/);
  const e = one(R, `SELECT ects_listed, ects_inserted, ects_deleted, ects_net FROM smile.la_version_ects
    WHERE mobility_id = ${ids.a} AND state = 'current' AND kind = 'changes-proposal' AND list = 'studied'`);
  // a version made of changes shows its variation, signed, and what makes it
  const signed = Number(e.ects_net) > 0 ? `+${e.ects_net}` : String(e.ects_net);
  assert.ok(prop.includes(`<th scope="row" colspan="4">Variation des ECTS</th><td class="num ects-total">${signed}</td>` +
    `<td>ajouté +${e.ects_inserted}, supprimé −${e.ects_deleted}</td>`), prop);
  assert.equal(Number(e.ects_listed), 0, 'the proposal lists only changes');
  assert.match(prop, /<th scope="row">Établissement d&#39;accueil<\/th><td colspan="4" class="muted">non signé<\/td>/, 'not signed by us yet');
  assert.match(h, /id="approve-la"/);

  await pc.get(file(ids.a));
  const r = await pc.post(`${file(ids.a)}/la`, { action: 'approve', signer_name: 'Claire Martin', ...SIGNER });
  assert.equal(r.status, 303, r.describe());
  await until('approved changes on both nodes', () => current(versions(S, OMOB), 'approved-changes').length === 1 &&
    current(versions(R, OMOB), 'approved-changes').length === 1 && current(versions(R, OMOB), 'changes-proposal').length === 0);
  h = (await pc.get(file(ids.a))).text;
  assert.match(h, /<section id="la-first"/, 'the first version stays');
  const approved = (/<section id="la-approved"[\s\S]*?<\/section>/.exec(h) || [''])[0];
  assert.match(approved, /Dernières modifications approuvées/);
  assert.match(approved, /<td>Cryptographie<\/td>/);
  assert.match(approved, /<td>Claire Martin<\/td>/, 'our signature on the approved changes');
  assert.doesNotMatch(h, /<section id="la-proposal"/);
  assert.match(h, /Aucune proposition de modification en cours/);
}, { timeout: 90000 });

itest(fx, 'the file in English; every interface text comes from the catalogue in both languages', async () => {
  const pc = await signedIn('claire');
  const fr = await pc.get(file(ids.a));
  const en = await pc.get(file(ids.a), { headers: [['Cookie', `${pc.cookieHeader()}; ewp-lang=en`]] });
  assert.equal(en.status, 200, en.describe());
  assert.match(en.text, /<html lang="en">/);
  for (const s of ['<h1>Student&#39;s file</h1>', 'Nomination received', 'Table A: components studied',
    'Table B: components recognised', 'Total ECTS', 'Workflow history', 'EWP exchanges about this mobility',
    'Our decisions and the partner&#39;s answers', 'accepted by the partner']) {
    assert.ok(en.text.includes(s), `English page shows ${s}`);
  }
  for (const r of [fr, en]) {
    const raw = r.text.match(/>\s*student\.[a-z_.-]+\s*</g);
    assert.equal(raw, null, `a catalogue key shown as is: ${raw}`);
  }
  // the two catalogues have the same keys
  const keys = (lang) => fs.readFileSync(path.join(REPO_ROOT, 'conf', 'portal', lang, 'student.strings'), 'utf8')
    .split('\n').filter((l) => /^[a-z]/.test(l)).map((l) => l.split(' = ')[0]).sort();
  assert.deepEqual(keys('en'), keys('fr'));
});
