// The staff portal in a real browser (headless Chromium, lib/browser.mjs)
// against the demo's two real nodes (lib/two-nodes.mjs): our node
// (demo.smile-ewp.example) receives Lena Schäfer's nomination from the
// partner (uni-musterstadt.example). A gestionnaire signs in with the
// keyboard, finds her on the dashboard, opens her file and approves the
// nomination; the approval must arrive in the PARTNER node's database. The
// partner proposes a learning agreement, the gestionnaire comments it in
// the browser, the partner proposes again, the gestionnaire approves: the
// partner's database holds the signed first version. An Administrateur
// fonctionnel moves a workflow step and sees the new order; the EWP log is
// searched for the partner and an exchange opened; the interface is French
// by default and switches to English.
//
// Every page must load without a console error, an uncaught exception or
// a Content-Security-Policy violation (watch.assertClean), with its
// stylesheet applied, and each step leaves a screenshot in
// build/artefacts/portal/ ($EWP_ARTEFACTS).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launchBrowser, openPage, saveScreenshot } from './lib/browser.mjs';
import { describeRun } from './lib/daemon.mjs';
import { EWPCTL, PROJECT_PORTAL_STRINGS, REPO_ROOT } from './lib/env.mjs';
import { pollUntil } from './lib/poll.mjs';
import { SENDING_HEI, TwoNodes } from './lib/two-nodes.mjs';

const DOCS = path.join(REPO_ROOT, 'tests', 'demo', 'mobility');
const OMOB = 'ums-2026-0042'; // the demo's student, Lena Schäfer
const JOBS_CONF = { retry_min: '1s', retry_max: '2s', lease: '10s', timeout: '5s' };
const STEP_MS = 25000; // CNR → fetch → store between the nodes, on a loaded machine
const NAV_MS = 15000; // one page in the browser
const TEST_MS = 60000;

// Accounts made with ewpctl user add on our node.
const ACCOUNTS = {
  claire: { name: 'Claire Martin', email: 'claire.martin@demo.smile-ewp.example', role: 'gestionnaire',
    password: 'browser test gestionnaire password' },
  fabien: { name: 'Fabien Roux', email: 'fabien.roux@demo.smile-ewp.example', role: 'admin_fonctionnel',
    password: 'browser test fonctionnel password' },
};
const POSITION = 'Coordinatrice Erasmus';

let t; // TwoNodes
let S; // the sending node (the partner)
let R; // the receiving node (ours, whose portal is driven)
let base; // https://localhost:<R's port>
let browser;
let mobilityId; // smile.mobility id of Lena on our node
const shots = []; // screenshots taken
const sessions = {}; // username -> { context, page, watch }

// ---- the interface strings, to expect each page's text in each language
function catalogue(lang) {
  const out = {};
  const dir = path.join(PROJECT_PORTAL_STRINGS, lang);
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.strings'))) {
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      const eq = line.indexOf(' = ');
      if (/^[a-z]/.test(line) && eq > 0) out[line.slice(0, eq)] = line.slice(eq + 3).trim();
    }
  }
  return out;
}
const STR = { fr: catalogue('fr'), en: catalogue('en') };

// ---- the two databases
const json = (node, sql) => JSON.parse(node.pg.psql(`SELECT coalesce(json_agg(r), '[]') FROM (${sql}) r`));
const one = (node, sql) => json(node, sql)[0];

function mobility(node) {
  return one(node, `SELECT id, status, proposal_id FROM smile.mobility
    WHERE sending_hei_id = '${SENDING_HEI}' AND omobility_id = '${OMOB}'`);
}

function versions(node) {
  return json(node, `SELECT v.kind, v.state, v.proposal_id, v.comment
    FROM smile.la_version v JOIN smile.learning_agreement la ON la.id = v.learning_agreement_id
    JOIN smile.mobility m ON m.id = la.mobility_id
    WHERE m.sending_hei_id = '${SENDING_HEI}' AND m.omobility_id = '${OMOB}' ORDER BY v.id`);
}

const current = (vs, kind) => vs.filter((v) => v.kind === kind && v.state === 'current');

// Polls a condition on the databases; fails with both nodes' LA versions.
async function until(what, fn) {
  return pollUntil(async () => {
    const r = fn();
    return { ok: !!r, value: r, detail: JSON.stringify({ S: versions(S), R: versions(R), mS: mobility(S), mR: mobility(R) }) };
  }, STEP_MS, what, 100);
}

function addUser(username) {
  const a = ACCOUNTS[username];
  const r = spawnSync(EWPCTL, ['-c', R.confPath, 'user', 'add', username, '--name', a.name, '--email', a.email,
    '--role', a.role, '--password-stdin'], { input: `${a.password}\n`, encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0) throw new Error(`ewpctl user add ${username}:\n${describeRun(r)}`);
}

// ---- the browser side

// What went wrong while loading pages, beyond what lib/browser.mjs
// watches: any answer of 400 or more (a page, the stylesheet, the icon),
// any request that failed, and where each console error came from (for the
// failure message).
function watchResponses(page) {
  const bad = [];
  const where = [];
  page.on('response', (res) => { if (res.status() >= 400) bad.push(`${res.status()} ${res.url()}`); });
  page.on('requestfailed', (req) => bad.push(`failed ${req.url()}: ${req.failure()?.errorText}`));
  page.on('console', (m) => { if (m.type() === 'error') where.push(`${m.text()} [${m.location()?.url}]`); });
  return { bad, where };
}

async function session(username) {
  if (!sessions[username]) {
    const s = await openPage(browser);
    Object.assign(s, watchResponses(s.page));
    s.page.setDefaultTimeout(NAV_MS);
    sessions[username] = s;
  }
  return sessions[username];
}

// Checks the page now shown and saves its screenshot: no console error,
// exception or CSP violation since the last check, no failed load, the
// portal's stylesheet applied (style-src 'self'), the language expected.
async function checkPage(s, tc, label, { lang = 'fr' } = {}) {
  const { page, watch } = s;
  const file = await saveScreenshot(page, tc, label);
  shots.push(file);
  const png = fs.readFileSync(file);
  assert.ok(png.subarray(1, 4).toString('latin1') === 'PNG' && png.length > 5000, `${file} is a PNG (${png.length} bytes)`);
  try {
    assert.deepEqual(s.bad, [], `${label}: failed loads`);
    watch.assertClean(`${label} (${page.url()})`);
  } catch (e) {
    e.message += `\nconsole errors with their source: ${JSON.stringify(s.where)}`;
    throw e;
  } finally { // one report per page
    watch.clear();
    s.bad.length = 0;
    s.where.length = 0;
  }
  assert.equal(await page.getAttribute('html', 'lang'), lang, `${label}: <html lang>`);
  const sheets = await page.evaluate(() => [...document.styleSheets].map((x) => {
    try { return { href: x.href, rules: x.cssRules.length }; } catch { return { href: x.href, rules: -1 }; }
  }));
  assert.ok(sheets.some((x) => x.href?.endsWith('/portal/static/portal.css') && x.rules > 0),
    `${label}: the portal's stylesheet is applied: ${JSON.stringify(sheets)}`);
  return file;
}

const h1 = (page) => page.locator('main h1').first().textContent();

// Submits a form by its button and waits for the page the POST redirects to.
async function submit(page, formId, urlPattern) {
  await Promise.all([page.waitForURL(urlPattern), page.locator(`#${formId} button[type="submit"]`).click()]);
}

// Signs in with the form, keyboard only: the name field has the focus,
// type, Tab to the password, type, Enter.
async function signIn(s, username) {
  const { page } = s;
  const res = await page.goto(`${base}/portal/login`);
  assert.equal(res.status(), 200);
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'username', 'the name field has the focus');
  await page.keyboard.type(username);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'password', 'Tab goes to the password');
  await page.keyboard.type(ACCOUNTS[username].password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/portal/login')), page.keyboard.press('Enter')]);
  const cookies = await s.context.cookies(base);
  const sid = cookies.filter((c) => c.httpOnly && c.secure && c.value.length >= 32);
  assert.ok(sid.length >= 1, `a Secure HttpOnly session cookie: ${JSON.stringify(cookies.map((c) => c.name))}`);
}

before(async () => {
  t = await TwoNodes.create('pbrowser', {
    receiving: { conf: { jobs: JOBS_CONF } },
    sending: { conf: { jobs: JOBS_CONF } },
  });
  S = t.sending;
  R = t.receiving;
  base = `https://localhost:${R.port}`;
  for (const u of Object.keys(ACCOUNTS)) addUser(u);
  browser = await launchBrowser({ trust: [R.tlsFiles.certPem] });
  // the partner nominates Lena; our node learns it by CNR and fetches it
  t.ctlOk(S, ['mobility', 'nominate', path.join(DOCS, 'nomination.xml')]);
  await until('the nomination on our node', () => mobility(R)?.status === 'pending');
  mobilityId = mobility(R).id;
});

after(async () => {
  await browser?.close();
  await t?.cleanup();
});

test('portal browser: keyboard sign-in, the student on the dashboard',
  { timeout: TEST_MS }, async (tc) => {
    const s = await session('claire');
    const { page } = s;
    await signIn(s, 'claire');
    // a gestionnaire lands on the dashboard
    assert.equal(page.url(), `${base}/portal/dashboard`);
    assert.equal(await h1(page), STR.fr['dashboard.title']);
    assert.equal(await page.title(), `${STR.fr['dashboard.title']} - ${STR.fr['app.name']}`);
    const row = page.locator(`#student-${mobilityId}`);
    await row.waitFor();
    const link = row.locator(`a[href="/portal/students/${mobilityId}"]`);
    assert.match(await link.textContent(), /Schäfer, Lena/);
    assert.match(await row.textContent(), new RegExp(`${SENDING_HEI}|Sending University`));
    // a gestionnaire's menu: the log, not the workflow configuration
    const nav = await page.locator('header nav a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.ok(nav.includes('/portal/log'), `menu: ${nav}`);
    assert.ok(!nav.includes('/portal/workflow'), `menu: ${nav}`);
    await checkPage(s, tc, 'dashboard');
    // the dashboard is what /portal/ shows a gestionnaire
    await page.goto(`${base}/portal/`);
    assert.equal(page.url(), `${base}/portal/dashboard`);
  });

test('portal browser: nomination approved, seen on the partner node',
  { timeout: TEST_MS }, async (tc) => {
    const s = await session('claire');
    const { page } = s;
    await Promise.all([page.waitForURL(`${base}/portal/students/${mobilityId}`),
      page.locator(`#student-${mobilityId} a[href="/portal/students/${mobilityId}"]`).click()]);
    assert.equal(await h1(page), STR.fr['student.title']);
    assert.equal(await page.locator('#student-name').textContent(), 'Lena Schäfer');
    assert.equal(await page.locator('#nomination-status').count(), 1);
    await page.locator('#approve-nomination').waitFor();
    assert.equal(await page.locator('#approve-la').count(), 0, 'no learning agreement to decide on yet');
    await checkPage(s, tc, 'file before');

    await submit(page, 'approve-nomination', /\/portal\/students\/\d+\?m=student\.decision_queued$/);
    assert.equal(await page.locator('p.flash').textContent(), STR.fr['student.decision_queued']);
    assert.equal(await page.locator('#approve-nomination').count(), 0, 'nothing left to decide');
    await checkPage(s, tc, 'nomination approved');

    // the decision travels: our update request, the partner stores it
    await until('the nomination approved on the PARTNER node', () => mobility(S).status === 'approved');
    await until('the decision accepted on our node', () => mobility(R).status === 'approved');
    const d = one(R, `SELECT kind, decided_by, state FROM ewp.decisions WHERE mobility_id = ${mobilityId}`);
    assert.deepEqual([d.kind, d.decided_by], ['nomination-approve', 'claire']);
    await page.reload();
    assert.match(await page.locator('#nomination-status').textContent(), new RegExp(`^${STR.fr['student.status.approved']}`));
    await checkPage(s, tc, 'nomination accepted by the partner');
  });

test('portal browser: LA commented then approved, seen on the partner node',
  { timeout: TEST_MS + 30000 }, async (tc) => {
    const s = await session('claire');
    const { page } = s;
    const url = `${base}/portal/students/${mobilityId}`;
    t.ctlOk(S, ['la', 'create', OMOB, path.join(DOCS, 'la-header.xml')]);
    t.ctlOk(S, ['la', 'propose', OMOB, path.join(DOCS, 'proposal-1.xml')]);
    const [p1] = current(versions(S), 'changes-proposal');
    await until('proposal 1 on our node', () => current(versions(R), 'changes-proposal')[0]?.proposal_id === p1.proposal_id);

    await page.goto(url);
    await page.locator('#comment-la').waitFor();
    assert.ok((await page.locator('#decide-la').textContent()).includes(p1.proposal_id), 'the proposal waiting is named');
    // prefilled with the signed-in user's name and e-mail
    assert.equal(await page.inputValue('#comment-la-name'), ACCOUNTS.claire.name);
    assert.equal(await page.inputValue('#comment-la-email'), ACCOUNTS.claire.email);
    const comment = 'Apprentissage automatique est fermé aux étudiants en échange au premier semestre.';
    await page.locator('#comment-la-text').fill(comment);
    await page.locator('#comment-la-position').fill(POSITION);
    await checkPage(s, tc, 'la comment filled');
    await submit(page, 'comment-la', /\/portal\/students\/\d+\?m=student\.decision_queued$/);
    assert.equal(await page.locator('p.flash').textContent(), STR.fr['student.decision_queued']);
    await checkPage(s, tc, 'la commented');
    await until('proposal 1 commented on the PARTNER node', () => versions(S).some((v) =>
      v.proposal_id === p1.proposal_id && v.state === 'commented' && v.comment === comment));

    // the partner proposes again; the page shows the new proposal
    t.ctlOk(S, ['la', 'propose', OMOB, path.join(DOCS, 'proposal-3.xml')]);
    const [p3] = current(versions(S), 'changes-proposal');
    await until('proposal 3 on our node', () => current(versions(R), 'changes-proposal')[0]?.proposal_id === p3.proposal_id);
    await page.goto(url);
    await page.locator('#approve-la').waitFor();
    assert.ok((await page.locator('#decide-la').textContent()).includes(p3.proposal_id));
    await page.locator('#approve-la-position').fill(POSITION);
    await submit(page, 'approve-la', /\/portal\/students\/\d+\?m=student\.decision_queued$/);
    assert.equal(await page.locator('#approve-la').count(), 0, 'nothing left to decide');
    await checkPage(s, tc, 'la approved');

    await until('the signed first version on the PARTNER node', () => current(versions(S), 'first-version').length === 1 &&
      current(versions(S), 'changes-proposal').length === 0);
    // the partner's first version carries our signature as typed in the browser
    const content = S.pg.psql(`SELECT v.content::text FROM smile.la_version v JOIN smile.learning_agreement la
        ON la.id = v.learning_agreement_id JOIN smile.mobility m ON m.id = la.mobility_id
      WHERE m.omobility_id = '${OMOB}' AND v.kind = 'first-version' AND v.state = 'current'`);
    const sig = (/receiving-hei-signature>([\s\S]*?)<\/(?:[\w-]+:)?receiving-hei-signature>/.exec(content) || [])[1] || '';
    for (const [el, v] of [['signer-name', ACCOUNTS.claire.name], ['signer-position', POSITION],
      ['signer-email', ACCOUNTS.claire.email]]) {
      assert.match(sig, new RegExp(`${el}[^>]*>${v.replaceAll('.', '\\.')}<`), `the partner's first version: ${el} ${v}\n${content}`);
    }
    await until('the first version on our node', () => current(versions(R), 'first-version').length === 1);
    await page.goto(url);
    await page.locator('#la-first').waitFor();
    assert.ok((await page.locator('#la-first').textContent()).includes(ACCOUNTS.claire.name));
    assert.equal(await page.locator('#la-proposal').count(), 0, 'no proposal waiting');
    await checkPage(s, tc, 'la first version');
  });

test('portal browser: a workflow step moved, the new order shown',
  { timeout: TEST_MS }, async (tc) => {
    const s = await session('fabien');
    const { page } = s;
    await signIn(s, 'fabien');
    const nav = await page.locator('header nav a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.ok(nav.includes('/portal/workflow'), `menu: ${nav}`);
    await Promise.all([page.waitForURL(`${base}/portal/workflow`), page.locator('header nav a[href="/portal/workflow"]').click()]);
    assert.equal(await h1(page), STR.fr['workflow.title']);
    const order = () => page.locator('#steps tbody tr').evaluateAll((trs) => trs.map((tr) => tr.id.replace(/^step-/, '')));
    const dbOrder = () => R.pg.psql('SELECT string_agg(code, \',\' ORDER BY position) FROM smile.step').split(',');
    const before1 = await order();
    assert.deepEqual(before1, dbOrder(), 'the page lists the steps in their order');
    await checkPage(s, tc, 'workflow before');

    // the first step that can move up (the seed's movable steps)
    const ups = await page.locator('#steps form[id^="up-"]').evaluateAll((fs) => fs.map((f) => f.id.slice(3)));
    assert.ok(ups.length >= 1, 'at least one step can move up');
    const code = ups[0];
    const i = before1.indexOf(code);
    const want = [...before1];
    [want[i - 1], want[i]] = [want[i], want[i - 1]];
    await submit(page, `up-${code}`, /\/portal\/workflow\?m=/);
    assert.equal(await page.locator('p.flash').count(), 1, 'a message says it was done');
    assert.deepEqual(await order(), want, `${code} moved up one place`);
    assert.deepEqual(dbOrder(), want, 'and so in the database');
    const pos = Number(await page.locator(`#step-${code} td.num`).first().textContent());
    assert.equal(pos, i, `${code} is now at position ${i}`);
    await checkPage(s, tc, 'workflow after');
  });

test('portal browser: EWP log searched by partner, an exchange opened',
  { timeout: TEST_MS }, async (tc) => {
    const s = await session('claire');
    const { page } = s;
    await Promise.all([page.waitForURL(`${base}/portal/log`), page.locator('header nav a[href="/portal/log"]').click()]);
    assert.equal(await h1(page), STR.fr['log.title']);
    await page.locator('#f-partner').fill(SENDING_HEI);
    await Promise.all([page.waitForURL(/\/portal\/log\?.*partner=/), page.locator('#f-partner').press('Enter')]);
    assert.equal(await page.inputValue('#f-partner'), SENDING_HEI, 'the form keeps the search');
    const rows = page.locator('#log-results tbody tr');
    const n = await rows.count();
    const expected = Number(R.pg.psql(`SELECT count(*) FROM ewp.message_log WHERE '${SENDING_HEI}' = ANY (partner_hei_ids)`));
    assert.ok(n >= 4, `the CNRs, fetches and updates with the partner are listed (${n} rows, ${expected} in the log)`);
    assert.ok(n <= expected);
    for (const text of await rows.allTextContents()) assert.ok(text.includes(SENDING_HEI), `a row of another partner: ${text}`);
    await checkPage(s, tc, 'log search');

    // open our last fetch of her learning agreement: a signed request and
    // the partner's XML answer, validated on arrival
    const id = Number(R.pg.psql(`SELECT max(id) FROM ewp.message_log WHERE direction = 'out'
      AND url LIKE '%/omobility-las/get' AND '${SENDING_HEI}' = ANY (partner_hei_ids)`));
    assert.ok(id > 0, 'we fetched the learning agreement');
    const href = `/portal/log/${id}`;
    const link = page.locator(`#log-${id} a[href="${href}"]`);
    await Promise.all([page.waitForURL(`${base}${href}`), link.click()]);
    assert.equal(await h1(page), STR.fr['log.show_title']);
    const row = one(R, `SELECT method, url, status, partner_hei_ids FROM ewp.message_log WHERE id = ${id}`);
    assert.ok(row.partner_hei_ids.includes(SENDING_HEI));
    const facts = await page.locator('#exchange').textContent();
    assert.ok(facts.includes(SENDING_HEI), facts);
    assert.ok(facts.includes(row.url.replace(/^https:\/\/[^/]+/, '')) || facts.includes(row.url), `${row.url} in ${facts}`);
    assert.equal(await page.getAttribute('#validation', 'class'), 'status-ok', 'the answer passed the XSD check');
    const body = await page.locator('#response-body').textContent();
    assert.match(body, /<omobility-las-get-response [^>]*>\n +<la>\n/, 'the XML answer, indented');
    assert.match(body, /<given-names>Lena<\/given-names>/);
    assert.match(await page.locator('#request-headers').textContent(), /Signature keyId=/, 'our signed request');
    await checkPage(s, tc, 'log exchange');
  });

test('portal browser: French by default, English, back to French', { timeout: TEST_MS }, async (tc) => {
  const s = await session('claire');
  const { page } = s;
  const url = `${base}/portal/students/${mobilityId}`;
  await page.goto(url);
  assert.equal(await h1(page), STR.fr['student.title']);
  const sw = page.locator('header .lang a');
  assert.equal(await sw.textContent(), STR.fr['lang.switch']);
  assert.equal(await sw.getAttribute('lang'), 'en');
  // by the keyboard: focus the link, Enter
  await sw.focus();
  await Promise.all([page.waitForURL(url), page.keyboard.press('Enter')]);
  assert.equal(await h1(page), STR.en['student.title']);
  assert.equal(await page.locator('header .lang a').textContent(), STR.en['lang.switch']);
  assert.ok((await page.locator('header nav').textContent()).includes(STR.en['nav.log']));
  await checkPage(s, tc, 'file in English', { lang: 'en' });
  // the choice is kept (a cookie): the next page is English too
  await page.goto(`${base}/portal/log`);
  assert.equal(await h1(page), STR.en['log.title']);
  await checkPage(s, tc, 'log in English', { lang: 'en' });
  await Promise.all([page.waitForURL(`${base}/portal/log`), page.locator('header .lang a').click()]);
  assert.equal(await h1(page), STR.fr['log.title']);
  await checkPage(s, tc, 'back in French');
  tc.diagnostic(`${shots.length} screenshots in ${path.dirname(shots[0])}`);
});
