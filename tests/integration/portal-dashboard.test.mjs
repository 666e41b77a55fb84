// The staff portal's dashboard of incoming students (GET /portal/dashboard,
// gateway/portal/portal_dashboard.c, sql/0017_portal_dashboard.sql), served
// by a real ewpd from a real PostgreSQL to users signed in with their
// local password.
//
// The incoming students are put into the core the way the node puts them:
// partners' nominations through ewp.omobility_store() (what the OMobilities
// refetch job calls with the partner's get response), learning agreements
// through smile.la_store_incoming(), our decisions through
// ewp.decision_queue() and the partner's answers through
// ewp.decision_answered() or the end of the decision's job. Only what SMILE
// staff set by hand in SMILE itself (referent e-mail, an inactive workflow
// step) is written directly. All of it is written before ewpd starts and
// every job is then finished, so that no job worker changes the data under
// the tests.
//
// Checked: counts by status and by step against the core, the three
// "needs action" lists, each filter, paging with the filters kept, the CSV
// and text exports (whole filtered list), escaping of a hostile name,
// scoping of a gestionnaire limited to a composante and of a Référent,
// refusals (403, sign-in redirect), and 400 on malformed filters.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before } from 'node:test';

import { Ewpd, HEI_ID, describeRun, itest } from './lib/daemon.mjs';
import { EWPCTL } from './lib/env.mjs';
import { PortalClient, ROLES, createUser } from './lib/portal.mjs';

const OM_NS = 'https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/endpoints/get-response.xsd';
const LAS_NS = 'https://github.com/erasmus-without-paper/ewp-specs-api-omobility-las/blob/stable-v1/endpoints/get-response.xsd';
const UNI_A = 'uni-a.example';
const UNI_B = 'uni-b.example';
const UNI_C = 'uni-c.example';
const PASSWORD = 'correct horse battery staple';
const REFERENT_EMAIL = 'prof.dupont@smile.test';
const HOSTILE_GIVEN = '<script>alert(1)</script>';
const HOSTILE_FAMILY = '=HYPERLINK("http://evil.example")';
const BULK = 120; // students of UNI_C, enough for two pages

let fx;
const sql = (q) => fx.pg.psql(q);
const lit = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
const json = (q) => JSON.parse(sql(`SELECT coalesce(json_agg(r), '[]') FROM (${q}) r`));
const xe = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

// ---- the data, through the node's own functions ------------------------

// An OMobilities v3 get response with one nomination, as a partner serves it.
function nominationDoc({ id, partner, given, family, ounit, year, status = 'pending', proposal = `${id}-p1` }) {
  return `<omobilities-get-response xmlns="${OM_NS}"><student-mobility>` +
    `<omobility-id>${xe(id)}</omobility-id>` +
    `<student><given-names>${xe(given)}</given-names><family-name>${xe(family)}</family-name>` +
    `<global-id>urn:schac:personalUniqueCode:int:esi:${partner}:${xe(id)}</global-id>` +
    '<birth-date>2003-04-05</birth-date><nationality>DE</nationality><gender>9</gender>' +
    `<email>${xe(id)}@${partner}</email></student>` +
    `<nomination proposal-id="${xe(proposal)}">` +
    `<sending-hei><hei-id>${partner}</hei-id></sending-hei>` +
    `<receiving-hei><hei-id>${HEI_ID}</hei-id>${ounit ? `<ounit-id>${ounit}</ounit-id>` : ''}</receiving-hei>` +
    `<sending-academic-term-ewp-id>${year}/${year + 1}-1/2</sending-academic-term-ewp-id>` +
    `<receiving-academic-year-id>${year}/${year + 1}</receiving-academic-year-id>` +
    '<activity-type>student-studies</activity-type><activity-attributes>long-term</activity-attributes>' +
    '<agreement-isced-f-code>0541</agreement-isced-f-code><eqf-level-studied-at-departure>6</eqf-level-studied-at-departure>' +
    `</nomination><status>${status}</status></student-mobility></omobilities-get-response>`;
}

// Stores a nomination as the refetch job does; returns the mobility id.
function nominate(n) {
  const r = sql(`SELECT ewp.omobility_store(${lit(n.partner)}, ${lit(n.id)}, ARRAY[${lit(n.partner)}],
    ${lit(nominationDoc(n))}::xml, ${lit(n.partnerName || null)})`);
  assert.match(r, /^(created|updated)$/, `omobility_store ${n.id}`);
  return Number(sql(`SELECT id FROM smile.mobility WHERE sending_hei_id = ${lit(n.partner)} AND omobility_id = ${lit(n.id)}`));
}

// An OMobility LAs get response with the given versions (element names).
function laDoc(id, partner, versions) {
  const hei = (tag, h) => `<${tag}><hei-id>${h}</hei-id><ounit-name>Faculty</ounit-name></${tag}>`;
  const comp = '<components-studied><component><title>Contract law</title>' +
    '<credit><scheme>ects</scheme><value>6</value></credit></component></components-studied>';
  const sig = '<student-signature><signer-name>S</signer-name><signer-position>Student</signer-position>' +
    '<signer-email>s@example.org</signer-email><timestamp>2026-03-01T10:00:00Z</timestamp></student-signature>';
  const v = versions.map(([kind, pid]) => (kind === 'changes-proposal'
    ? `<changes-proposal id="${pid}">${comp}${sig}</changes-proposal>`
    : `<${kind}>${comp}${sig}</${kind}>`)).join('');
  return `<omobility-las-get-response xmlns="${LAS_NS}"><la><omobility-id>${xe(id)}</omobility-id>` +
    `${hei('sending-hei', partner)}${hei('receiving-hei', HEI_ID)}${v}</la></omobility-las-get-response>`;
}

function storeLa(id, partner, versions) {
  const r = sql(`SELECT smile.la_store_incoming(${lit(laDoc(id, partner, versions))}::xml, ${lit(partner)}, ${lit(partner)}, ${lit(id)})`);
  assert.equal(r, 'stored', `la_store_incoming ${id}`);
}

// A decision of our staff, queued as the portal / ewpctl queue it.
function decide(mobilityId, kind, { comment = null, signer = false } = {}) {
  const [d] = json(`SELECT decision_id, job_id FROM ewp.decision_queue(${mobilityId}, ${lit(kind)}, ${lit(comment)},
    ${signer ? "'Claire Martin', 'Erasmus coordinator', 'claire.martin@smile.test'" : 'NULL, NULL, NULL'},
    'claire.martin', 'claire.martin')`);
  return d;
}

function finishJob(jobId, status, error = null) {
  sql(`UPDATE ewp.jobs SET status = ${lit(status)}, finished_at = now(), last_error = ${lit(error)},
    lease_until = NULL, leased_by = NULL WHERE id = ${jobId}`);
}

const S = {}; // mobility ids by name
let composantes; // { sci, law } ids
let steps; // code -> id

function seed() {
  sql(`INSERT INTO smile.etablissement (schac_id, names, country, is_local)
       VALUES (${lit(HEI_ID)}, '[{"lang": "fr", "name": "Université de Test SMILE"}]', 'FR', true)`);
  sql(`INSERT INTO smile.composante (etablissement_id, ounit_id, code, names)
       SELECT id, 'ou-sci', 'SCI', '[{"lang": "fr", "name": "UFR Sciences"}, {"lang": "en", "name": "Faculty of Science"}]'
         FROM smile.etablissement WHERE is_local`);
  sql(`INSERT INTO smile.composante (etablissement_id, ounit_id, code, names)
       SELECT id, 'ou-law', 'DROIT', '[{"lang": "fr", "name": "Faculté de Droit"}]' FROM smile.etablissement WHERE is_local`);
  composantes = Object.fromEntries(json("SELECT replace(ounit_id, 'ou-', '') AS k, id FROM smile.composante").map((r) => [r.k, r.id]));
  // the administrator turned the course-selection step off in SMILE
  sql("UPDATE smile.step SET active = false WHERE code = 'course'");
  steps = Object.fromEntries(json('SELECT code, id FROM smile.step').map((r) => [r.code, r.id]));

  const A = { partner: UNI_A, partnerName: 'Universität A' };
  const B = { partner: UNI_B, partnerName: 'University B' };
  S.lena = nominate({ ...A, id: 'a-1', given: 'Lena', family: 'Schäfer', ounit: 'ou-sci', year: 2026 });
  S.marco = nominate({ ...B, id: 'b-1', given: 'Marco', family: 'Rossi', ounit: 'ou-law', year: 2026 });
  S.ana = nominate({ ...A, id: 'a-2', given: 'Ana', family: 'Silva', ounit: 'ou-sci', year: 2025 });
  S.jan = nominate({ ...B, id: 'b-2', given: 'Jan', family: 'Novak', ounit: 'ou-law', year: 2026 });
  S.eva = nominate({ ...A, id: 'a-3', given: 'Eva', family: 'Berg', ounit: 'ou-law', year: 2026 });
  S.hostile = nominate({ ...B, id: 'b-3', given: HOSTILE_GIVEN, family: HOSTILE_FAMILY, ounit: 'ou-sci', year: 2026 });
  S.tom = nominate({ ...A, id: 'a-4', given: 'Tom', family: 'Weber', ounit: 'ou-sci', year: 2026 });
  S.tom = nominate({ ...A, id: 'a-4', given: 'Tom', family: 'Weber', ounit: 'ou-sci', year: 2026, status: 'cancelled' });
  S.nounit = nominate({ ...B, id: 'b-4', given: 'Zoé', family: 'Martin', ounit: null, year: 2026 });
  // the bulk of them in one statement (one document per id, as the refetch jobs store them)
  const tpl = nominationDoc({ partner: UNI_C, id: 'c-@N@', given: 'Student@N@', family: 'Bulk@P@', ounit: 'ou-sci', year: 2025, proposal: 'c-@N@-p1' });
  assert.equal(sql(`SELECT count(*) FILTER (WHERE r = 'created') FROM (
      SELECT ewp.omobility_store(${lit(UNI_C)}, 'c-' || g, ARRAY[${lit(UNI_C)}],
             replace(replace(${lit(tpl)}, '@N@', g::text), '@P@', lpad(g::text, 3, '0'))::xml, 'Université C') AS r
        FROM generate_series(1, ${BULK}) g) x`), String(BULK));

  // referents, as SMILE's staff enter them (one with other capitals)
  sql(`UPDATE smile.inscription SET referent_email = ${lit(REFERENT_EMAIL)}
        WHERE id = (SELECT inscription_id FROM smile.mobility WHERE id = ${S.lena})`);
  sql(`UPDATE smile.inscription SET referent_email = 'PROF.Dupont@Smile.TEST'
        WHERE id = (SELECT inscription_id FROM smile.mobility WHERE id = ${S.marco})`);
  sql(`UPDATE smile.inscription SET referent_email = 'someone.else@smile.test'
        WHERE id = (SELECT inscription_id FROM smile.mobility WHERE id = ${S.eva})`);

  // Marco: nomination approved and accepted, then a changes proposal waits
  let d = decide(S.marco, 'nomination-approve');
  assert.equal(sql(`SELECT ewp.decision_answered(${d.decision_id}, 'accepted', 200, NULL)`), 'accepted');
  finishJob(d.job_id, 'success');
  sql(`SELECT smile.inscription_advance((SELECT inscription_id FROM smile.mobility WHERE id = ${S.marco}), 'registered')`);
  storeLa('b-1', UNI_B, [['changes-proposal', 'cp-1']]);
  // Lena: her LA was signed by all three (a first version): she moves on
  storeLa('a-1', UNI_A, [['first-version']]);
  // Ana: our approval is on its way (its job waits for a later attempt)
  d = decide(S.ana, 'nomination-approve');
  sql(`UPDATE ewp.jobs SET next_attempt_at = now() + interval '2 days' WHERE id = ${d.job_id}`);
  // Jan: our rejection refused by the partner
  d = decide(S.jan, 'nomination-reject', { comment: 'Not eligible' });
  assert.equal(sql(`SELECT ewp.decision_answered(${d.decision_id}, 'refused', 400, 'Unknown proposal id')`), 'refused');
  finishJob(d.job_id, 'rejected', 'HTTP 400');
  // Eva: our approval could not be sent (its job gave up)
  d = decide(S.eva, 'nomination-approve');
  finishJob(d.job_id, 'expired', 'partner unreachable');
  assert.equal(sql(`SELECT state FROM ewp.decisions WHERE id = ${d.decision_id}`), 'failed');
  // nothing left for a job worker (Ana's waits two days)
  sql("UPDATE ewp.jobs SET status = 'cancelled', finished_at = now() WHERE status = 'pending' AND next_attempt_at < now() + interval '1 day' AND direction = 'in'");
}

// ---- users --------------------------------------------------------------

// `ewpctl user ...` against the fixture's database; input: standard input.
function ewpctlUser(args, input) {
  const r = spawnSync(EWPCTL, ['user', ...args, '--conninfo', fx.pg.conninfo], { encoding: 'utf8', input, timeout: 30000 });
  const run = { ...r, cmd: `ewpctl user ${args.join(' ')}` };
  assert.equal(r.status, 0, describeRun(run));
  return r.stdout;
}

// Staff accounts as an administrator makes them (ewpctl user); the
// accounts without staff rights straight in the database (lib/portal.mjs).
function createUsers() {
  const add = (username, role, email) => ewpctlUser(['add', username, '--name', `User ${username}`,
    ...(email ? ['--email', email] : []), '--role', role, '--password-stdin'], `${PASSWORD}\n`);
  add('gest', 'gestionnaire');
  add('gestsci', 'gestionnaire');
  ewpctlUser(['role', 'gestsci', 'gestionnaire', '--composante', 'SCI']);
  add('referent', 'Référent', REFERENT_EMAIL);
  add('admin', 'administrateur');
  // a gestionnaire of Sciences who is also Marco's (Droit) referent
  add('gestref', 'gestionnaire', REFERENT_EMAIL);
  ewpctlUser(['role', 'gestref', 'gestionnaire', '--composante', 'SCI']);
  ewpctlUser(['role', 'gestref', 'Référent']);
  createUser(fx.pg, { username: 'invite', password: PASSWORD, roles: [ROLES.invite] });
  createUser(fx.pg, { username: 'etudiant', password: PASSWORD, roles: [ROLES.etudiant] });
  createUser(fx.pg, { username: 'standard', password: PASSWORD, roles: [ROLES.standard] });
}

const clients = {};
async function as(user) {
  if (!clients[user]) {
    const c = PortalClient.of(fx);
    const r = await c.login(user, PASSWORD);
    assert.equal(r.status, 303, `sign-in of ${user}: ${r.describe()}`);
    clients[user] = c;
  }
  return clients[user];
}

// ---- reading the page ---------------------------------------------------

const unescape = (s) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

async function page(user, query = '') {
  const r = await (await as(user)).get(`/portal/dashboard${query ? `?${query}` : ''}`);
  assert.equal(r.status, 200, r.describe());
  return r.text;
}

function section(html, id) {
  const m = new RegExp(`<(table|p) id="${id}"[\\s\\S]*?</\\1>`).exec(html);
  assert.ok(m, `element #${id} in the page`);
  return m[0];
}

// mobility ids of a table's rows whose ids start with prefix
function rowIds(html, prefix) {
  return [...html.matchAll(new RegExp(`<tr id="${prefix}-(\\d+)"`, 'g'))].map((m) => Number(m[1]));
}

const listed = (html) => rowIds(html, 'student');
const count = (html, id) => Number(new RegExp(`id="${id}">(\\d+)<`).exec(html)?.[1]);

// The expected students, straight from the core (not through the view).
function expected(where = 'true') {
  return json(`SELECT m.id, i.status, s.code AS step, i.academic_year, m.sending_hei_id AS partner,
      i.composante_id, i.family_name, i.given_names
    FROM smile.mobility m JOIN smile.inscription i ON i.id = m.inscription_id JOIN smile.step s ON s.id = i.step_id
    WHERE NOT m.is_outgoing AND (${where})
    ORDER BY lower(i.family_name), lower(i.given_names), m.id`);
}

// RFC 4180 reader (quoted fields, doubled quotes, CRLF).
function parseCsv(text) {
  const rows = [];
  let row = [];
  let f = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') { f += '"'; i++; } else if (c === '"') q = false; else f += c;
    } else if (c === '"') q = true;
    else if (c === ',') { row.push(f); f = ''; } else if (c === '\r' && text[i + 1] === '\n') { row.push(f); rows.push(row); row = []; f = ''; i++; } else f += c;
  }
  if (f !== '' || row.length) { row.push(f); rows.push(row); }
  return rows;
}

before(async () => {
  fx = await Ewpd.create('portal-dashboard', { pg: true, start: false });
  seed();
  createUsers();
  await fx.start();
});

after(async () => { await fx?.cleanup(); });

// ---- the tests ----------------------------------------------------------

itest(() => fx, 'without a session the dashboard sends to the sign-in page; Invité, Etudiant and Standard get 403 (page and exports)', async () => {
  const anon = await PortalClient.of(fx).get('/portal/dashboard');
  assert.equal(anon.status, 303, anon.describe());
  assert.match(anon.header('Location'), /^\/portal\/login(\?|$)/);
  for (const u of ['invite', 'etudiant', 'standard']) {
    for (const q of ['', '?format=csv', '?format=txt', '?year=abc']) {
      const r = await (await as(u)).get(`/portal/dashboard${q}`);
      assert.equal(r.status, 403, `${u} ${q}: ${r.describe()}`);
      assert.doesNotMatch(r.text, /Lena|Schäfer|Bulk0/, 'nothing of the students leaks in a refusal');
    }
  }
  // the page only answers GET
  const post = await (await as('gest')).post('/portal/dashboard', {});
  assert.equal(post.status, 405, post.describe());
  // the home page sends staff on to the dashboard
  const home = await (await as('gest')).get('/portal/');
  assert.equal(home.status, 303);
  assert.equal(home.header('Location'), '/portal/dashboard');
});

itest(() => fx, 'counts by status and by workflow step (in position order, inactive step marked) match the core', async () => {
  const html = await page('gest');
  const all = expected();
  assert.equal(all.length, 8 + BULK);
  assert.equal(Number(/id="students-total">(\d+)</.exec(html)[1]), all.length);
  for (const st of json('SELECT status FROM smile.inscription_status')) {
    assert.equal(count(html, `count-status-${st.status}`), all.filter((s) => s.status === st.status).length, `status ${st.status}`);
  }
  // Marco (approved, accepted) is Inscrit, Tom (cancelled) Abandon
  assert.equal(count(html, 'count-status-2'), 1);
  assert.equal(count(html, 'count-status-3'), 1);
  const order = json('SELECT code, active FROM smile.step ORDER BY position');
  const shown = [...section(html, 'counts-step').matchAll(/id="count-step-([a-z_-]+)">(\d+)</g)];
  assert.deepEqual(shown.map((m) => m[1]), order.map((s) => s.code), 'every step, in position order');
  for (const [, code, n] of shown) assert.equal(Number(n), all.filter((s) => s.step === code).length, `step ${code}`);
  // Marco moved on to approval_educational (course is inactive), Lena past approval_host
  assert.equal(count(html, 'count-step-approval_educational'), 1);
  assert.equal(count(html, 'count-step-approval_base'), 1);
  const inactive = [...section(html, 'counts-step').matchAll(/<tr class="muted step-inactive">[\s\S]*?id="count-step-([a-z_-]+)"/g)].map((m) => m[1]);
  assert.deepEqual(inactive, ['course']);
});

itest(() => fx, 'needs action: nominations without decision, LA changes to approve, refused and failed decisions, each linked to the student file', async () => {
  const html = await page('gest');
  const noms = section(html, 'needs-nominations');
  const pendingUndecided = json(`SELECT m.id FROM smile.mobility m WHERE NOT m.is_outgoing AND m.status = 'pending'
    AND NOT EXISTS (SELECT 1 FROM ewp.decisions d WHERE d.mobility_id = m.id AND d.state IN ('queued', 'accepted')) ORDER BY m.id`).map((r) => r.id);
  // 50 shown, the count says how many
  assert.match(noms, new RegExp(`\\(${pendingUndecided.length}\\)</caption>`));
  assert.equal(rowIds(noms, 'needs-nominations').length, 50);
  for (const id of [S.lena, S.jan, S.eva, S.hostile]) assert.ok(rowIds(noms, 'needs-nominations').includes(id), `mobility ${id} waits`);
  for (const id of [S.marco, S.ana, S.tom]) assert.ok(!rowIds(noms, 'needs-nominations').includes(id), `mobility ${id} does not wait`);
  assert.match(noms, new RegExp(`<a href="/portal/students/${S.lena}">Schäfer, Lena</a>`));

  const las = section(html, 'needs-las');
  assert.deepEqual(rowIds(las, 'needs-las'), [S.marco]);
  assert.match(las, new RegExp(`<a href="/portal/students/${S.marco}">Rossi, Marco</a>`));

  const dec = section(html, 'needs-decisions');
  assert.deepEqual(rowIds(dec, 'needs-decisions').sort(), [S.jan, S.eva].sort());
  assert.match(dec, /Unknown proposal id/);
  assert.match(dec, /partner unreachable/);
  assert.match(dec, new RegExp(`<a href="/portal/students/${S.eva}">Berg, Eva</a>`));
});

itest(() => fx, 'filters: year, partner, composante, step, status, name — the list and the counts follow them', async () => {
  const cases = [
    ['year=2026', 'i.academic_year = 2026'],
    [`year=2025&partner=${UNI_A}`, `i.academic_year = 2025 AND m.sending_hei_id = '${UNI_A}'`],
    [`partner=${UNI_B}`, `m.sending_hei_id = '${UNI_B}'`],
    [`composante=${composantes.law}`, `i.composante_id = ${composantes.law}`],
    [`step=${steps.approval_educational}`, "s.code = 'approval_educational'"],
    ['status=3', 'i.status = 3'],
    ['q=sch%C3%A4f', "i.family_name = 'Schäfer'"],
    ['q=LENA+sch', "i.family_name = 'Schäfer'"],
    ['q=rossi+marco', "i.family_name = 'Rossi'"],
    [`year=2026&partner=${UNI_A}&composante=${composantes.sci}`, `i.academic_year = 2026 AND m.sending_hei_id = '${UNI_A}' AND i.composante_id = ${composantes.sci}`],
  ];
  for (const [q, where] of cases) {
    const html = await page('gest', q);
    const want = expected(where).map((s) => s.id);
    assert.ok(want.length > 0 && want.length <= 100, `case ${q} selects some students`);
    assert.deepEqual(listed(html), want, `list for ${q}`);
    assert.equal(Number(/id="students-total">(\d+)</.exec(html)[1]), want.length, `total for ${q}`);
    assert.equal(count(html, 'count-status-1') + count(html, 'count-status-2') + count(html, 'count-status-3') + count(html, 'count-status-4'), want.length);
  }
  // the form shows what was chosen
  const html = await page('gest', `year=2026&partner=${UNI_B}&q=Ro`);
  assert.match(html, /<option value="2026" selected>2026\/2027<\/option>/);
  assert.match(html, new RegExp(`<option value="${UNI_B}" selected>University B</option>`));
  assert.match(html, /<input id="f-q" name="q" type="search" maxlength="100" value="Ro">/);
  for (const f of ['year', 'partner', 'composante', 'step', 'status', 'q']) assert.match(html, new RegExp(`<label for="f-${f}">`));
  // a filter nobody matches: an empty list, not an error
  const none = await page('gest', 'year=2031');
  assert.deepEqual(listed(none), []);
  assert.match(none, /id="students-none"/);
});

itest(() => fx, 'paging: 100 per page, next and previous links keep the filters, sorted by name', async () => {
  const want = expected(`m.sending_hei_id = '${UNI_C}'`).map((s) => s.id);
  assert.equal(want.length, BULK);
  const p1 = await page('gest', `partner=${UNI_C}&year=2025`);
  assert.deepEqual(listed(p1), want.slice(0, 100));
  assert.doesNotMatch(p1, /id="page-prev"/);
  const next = unescape(/id="page-next" rel="next" href="([^"]+)"/.exec(p1)[1]);
  const u = new URL(next, 'http://x');
  assert.equal(u.pathname, '/portal/dashboard');
  assert.deepEqual(Object.fromEntries(u.searchParams), { year: '2025', partner: UNI_C, page: '2' });
  const p2 = await page('gest', u.search.slice(1));
  assert.deepEqual(listed(p2), want.slice(100));
  assert.doesNotMatch(p2, /id="page-next"/);
  const prev = new URL(unescape(/id="page-prev" rel="prev" href="([^"]+)"/.exec(p2)[1]), 'http://x');
  assert.deepEqual(Object.fromEntries(prev.searchParams), { year: '2025', partner: UNI_C });
  // other sort orders
  const byDate = await page('gest', `partner=${UNI_B}&sort=date`);
  const wantByDate = json(`SELECT m.id FROM smile.mobility m WHERE m.sending_hei_id = '${UNI_B}' AND NOT m.is_outgoing
    ORDER BY m.created_at DESC, lower(m.family_name), lower(m.given_names), m.id`).map((r) => r.id);
  assert.deepEqual(listed(byDate), wantByDate);
  // the sort order is kept from page to page
  const dated = await page('gest', `partner=${UNI_C}&sort=date`);
  const dnext = new URL(unescape(/id="page-next" rel="next" href="([^"]+)"/.exec(dated)[1]), 'http://x');
  assert.deepEqual(Object.fromEntries(dnext.searchParams), { partner: UNI_C, sort: 'date', page: '2' });
  // past the last page: an empty list and a way back
  const past = await page('gest', `partner=${UNI_C}&page=7`);
  assert.deepEqual(listed(past), []);
  assert.match(past, /id="page-prev"/);
});

itest(() => fx, 'exports: CSV (RFC 4180, every filtered row, formulas neutralised) and aligned text, same filters as the page', async () => {
  const c = await as('gest');
  let r = await c.get('/portal/dashboard?format=csv');
  assert.equal(r.status, 200, r.describe());
  assert.match(r.header('Content-Type'), /^text\/csv; charset=utf-8/);
  assert.match(r.header('Content-Disposition'), /attachment; filename="incoming-students\.csv"/);
  const rows = parseCsv(r.text.replace(/^\uFEFF/, ''));
  const all = expected();
  assert.equal(rows.length, 1 + all.length, 'a header and every student, not a page');
  assert.equal(rows[0].length, 11);
  assert.equal(rows[0][0], 'Mobilité');
  assert.deepEqual(rows.slice(1).map((x) => Number(x[0])), all.map((s) => s.id));
  const hostile = rows.find((x) => Number(x[0]) === S.hostile);
  assert.equal(hostile[1], `'${HOSTILE_FAMILY}`, 'the formula is neutralised');
  assert.equal(hostile[2], HOSTILE_GIVEN);
  const marco = rows.find((x) => Number(x[0]) === S.marco);
  assert.deepEqual([marco[1], marco[2], marco[3], marco[4], marco[5], marco[6], marco[8]],
    ['Rossi', 'Marco', UNI_B, 'University B', 'Faculté de Droit', '2026', 'Inscrit']);
  assert.match(marco[9], /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);
  assert.equal(marco[10], 'modifications à approuver');

  // filtered: the same rows as the page, all of them
  r = await c.get(`/portal/dashboard?format=csv&partner=${UNI_C}`);
  const crows = parseCsv(r.text.replace(/^\uFEFF/, ''));
  assert.equal(crows.length, 1 + BULK);

  r = await c.get(`/portal/dashboard?format=txt&partner=${UNI_B}`);
  assert.equal(r.status, 200, r.describe());
  assert.match(r.header('Content-Type'), /^text\/plain; charset=utf-8/);
  const lines = r.text.split('\n').filter((l) => l.length);
  const wantB = expected(`m.sending_hei_id = '${UNI_B}'`);
  assert.equal(lines.length, 1 + wantB.length);
  // columns aligned: the partner's code starts at the same character on every line
  const col = [...lines[0]].join('').indexOf('Code SCHAC');
  assert.ok(col > 0);
  for (const l of lines.slice(1)) assert.equal([...l].slice(col, col + UNI_B.length).join(''), UNI_B, l);
  // the page links to both, with its filters
  const html = await page('gest', `partner=${UNI_B}`);
  assert.match(html, new RegExp(`id="export-csv" href="/portal/dashboard\\?partner=${UNI_B.replace('.', '\\.')}&amp;format=csv"`));
  assert.match(html, /id="export-txt" href="[^"]*format=txt"/);
});

itest(() => fx, 'a hostile student name is shown escaped, never as markup', async () => {
  const html = await page('gest', `partner=${UNI_B}`);
  assert.ok(listed(html).includes(S.hostile));
  assert.ok(!html.includes('<script'), 'no script element');
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  assert.ok(html.includes('=HYPERLINK(&quot;http://evil.example&quot;)'));
  // and in the search box when searched for
  const q = await page('gest', `q=${encodeURIComponent('"><script>')}`);
  assert.ok(!q.includes('<script'), 'the echoed search is escaped');
  assert.match(q, /value="&quot;&gt;&lt;script&gt;"/);
});

itest(() => fx, 'a gestionnaire limited to a composante sees only its students, in counts, lists, needs-action and exports', async () => {
  const sci = expected(`i.composante_id = ${composantes.sci}`);
  const html = await page('gestsci');
  assert.match(html, /id="scope-composantes"/);
  assert.equal(Number(/id="students-total">(\d+)</.exec(html)[1]), sci.length);
  assert.equal(count(html, 'count-status-2'), 0, 'Marco (Droit) is not counted');
  const firstPage = listed(html);
  assert.deepEqual(firstPage, sci.slice(0, 100).map((s) => s.id));
  for (const id of [S.marco, S.jan, S.eva, S.nounit]) assert.ok(!html.includes(`/portal/students/${id}"`), `mobility ${id} is not shown`);
  assert.deepEqual(rowIds(section(html, 'needs-decisions'), 'needs-decisions'), []);
  assert.match(section(html, 'needs-las'), /<p id="needs-las"/);
  // asking for the other composante gives nothing
  assert.deepEqual(listed(await page('gestsci', `composante=${composantes.law}`)), []);
  // only Sciences in the composante menu
  const menu = /<select id="f-composante"[\s\S]*?<\/select>/.exec(html)[0];
  assert.match(menu, new RegExp(`<option value="${composantes.sci}">UFR Sciences</option>`));
  assert.doesNotMatch(menu, new RegExp(`<option value="${composantes.law}"`));
  // the files the dashboard links to open for this user
  for (const id of [...new Set(rowIds(html, 'student').slice(0, 3).concat(rowIds(html, 'needs-nominations').slice(0, 3)))]) {
    const f = await (await as('gestsci')).get(`/portal/students/${id}`);
    assert.equal(f.status, 200, `file ${id}: ${f.status}`);
  }
  const r = await (await as('gestsci')).get('/portal/dashboard?format=csv');
  const rows = parseCsv(r.text.replace(/^\uFEFF/, ''));
  assert.deepEqual(rows.slice(1).map((x) => Number(x[0])).sort((a, b) => a - b), sci.map((s) => s.id).sort((a, b) => a - b));
});

itest(() => fx, 'a Référent sees only the students whose referent e-mail is theirs (case-insensitively)', async () => {
  const html = await page('referent');
  assert.match(html, /id="scope-referent"/);
  assert.deepEqual(listed(html).sort(), [S.lena, S.marco].sort());
  assert.equal(Number(/id="students-total">(\d+)</.exec(html)[1]), 2);
  assert.ok(!html.includes(`/portal/students/${S.eva}"`), 'another referent\'s student is not shown');
  assert.deepEqual(rowIds(section(html, 'needs-las'), 'needs-las'), [S.marco]);
  assert.deepEqual(rowIds(section(html, 'needs-nominations'), 'needs-nominations'), [S.lena]);
  for (const id of [S.lena, S.marco]) {
    const f = await (await as('referent')).get(`/portal/students/${id}`);
    assert.equal(f.status, 200, `file ${id}: ${f.status}`);
  }
  const r = await (await as('referent')).get('/portal/dashboard?format=csv');
  assert.equal(r.status, 200);
  const rows = parseCsv(r.text.replace(/^\uFEFF/, ''));
  assert.deepEqual(rows.slice(1).map((x) => Number(x[0])).sort(), [S.lena, S.marco].sort());
  // a gestionnaire is scoped by composante even when also a Référent (as in the students' file)
  const both = await page('gestref', `year=2026&partner=${UNI_B}`);
  assert.ok(!listed(both).includes(S.marco), 'Marco (Droit) is outside the gestionnaire\'s composantes');
  assert.equal((await (await as('gestref')).get(`/portal/students/${S.marco}`)).status, 404);
  assert.ok(listed(await page('gestref', 'q=lena')).includes(S.lena));
  // an administrator (inherits gestionnaire) sees everyone
  const admin = await page('admin');
  assert.equal(Number(/id="students-total">(\d+)</.exec(admin)[1]), expected().length);
});

itest(() => fx, 'malformed filters are refused with 400 and a readable message, never a 500', async () => {
  const c = await as('gest');
  const cases = [
    ['year=abc', /année/],
    ['year=1999', /année/],
    ['step=999999999999999999999', /étape/],
    ['step=-1', /étape/],
    ['composante=1e3', /composante/],
    ['status=0', /statut/],
    ['partner=UNI-A.EXAMPLE', /établissement/],
    ['page=0', /page/],
    ['page=abc', /page/],
    ['sort=evil', /Tri/],
    ['format=pdf', /Format/],
    [`q=${'x'.repeat(101)}`, /nom/],
    ['q=a%01b', /nom/],
    ['year=%zz', null],
  ];
  for (const [q, msg] of cases) {
    const r = await c.get(`/portal/dashboard?${q}`);
    assert.equal(r.status, 400, `${q}: ${r.describe()}`);
    if (msg) assert.match(r.text, msg, q);
    assert.doesNotMatch(r.text, /Schäfer/, 'no list on an error');
  }
  // the same in English
  c.cookies.set('ewp-lang', 'en');
  const en = await c.get('/portal/dashboard?year=abc');
  c.cookies.delete('ewp-lang');
  assert.equal(en.status, 400);
  assert.match(en.text, /Invalid &quot;year&quot; filter: an academic year/);
});

itest(() => fx, 'sql 0017: smile.name_in picks the language, then no language, then the first; smile.portal_incoming scopes as the page does', async () => {
  const names = `'[{"lang": "de", "name": "Uni DE"}, {"name": "Uni plain"}, {"lang": "en-GB", "name": "Uni GB"}, {"lang": "fr", "name": "Uni FR"}]'::jsonb`;
  assert.equal(sql(`SELECT smile.name_in(${names}, 'fr')`), 'Uni FR');
  assert.equal(sql(`SELECT smile.name_in(${names}, 'en')`), 'Uni GB', 'a regional variant of the language');
  assert.equal(sql(`SELECT smile.name_in(${names}, 'it')`), 'Uni plain', 'no language before another language');
  assert.equal(sql(`SELECT smile.name_in('[{"lang": "de", "name": "Nur DE"}]', 'fr')`), 'Nur DE');
  assert.equal(sql("SELECT smile.name_in('[]', 'fr') IS NULL"), 't');
  const n = (args) => Number(sql(`SELECT count(*) FROM smile.portal_incoming(${args}, 'fr', NULL, NULL, NULL, NULL, NULL, NULL)`));
  assert.equal(n('true, NULL, false, NULL'), expected().length);
  assert.equal(n(`true, ARRAY[${composantes.law}]::bigint[], false, NULL`), expected(`i.composante_id = ${composantes.law}`).length);
  assert.equal(n(`false, NULL, true, ${lit(REFERENT_EMAIL.toUpperCase())}`), 2);
  assert.equal(n('false, NULL, true, NULL'), 0, 'a Référent without an e-mail sees nobody');
  assert.equal(n('false, NULL, false, NULL'), 0, 'no right, nobody');
  // a limited gestionnaire who is also a Référent sees both sets
  assert.equal(n(`true, ARRAY[${composantes.law}]::bigint[], true, ${lit(REFERENT_EMAIL)}`),
    expected(`i.composante_id = ${composantes.law} OR lower(i.referent_email) = ${lit(REFERENT_EMAIL)}`).length);
  // the LA states
  const states = json(`SELECT mobility_id, la_state FROM smile.incoming_student WHERE mobility_id IN (${S.lena}, ${S.marco}, ${S.jan}) ORDER BY 1`);
  assert.deepEqual(Object.fromEntries(states.map((r) => [r.mobility_id, r.la_state])), { [S.lena]: 'approved', [S.marco]: 'awaiting', [S.jan]: 'none' });
});
