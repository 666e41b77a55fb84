// Self-checks of the browser harness (lib/browser.mjs), no ewpd needed:
// headless Chromium loads a page from a small Node server on loopback
// under the strict Content-Security-Policy the portal will send, is
// driven with the keyboard only, and what the page reports (the blocked
// inline script) is seen. If these fail, the portal's browser tests mean
// nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { ARTEFACTS, launchBrowser, openPage, saveScreenshot } from './lib/browser.mjs';
import { makeTempDir, makeTlsCert } from './lib/daemon.mjs';
import { KEEP_TMP } from './lib/env.mjs';

const CSP = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const FORM_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Nomination</title>
<link rel="stylesheet" href="/style.css"></head>
<body>
<h1>Nominate a student</h1>
<form method="post" action="/nominate">
<p><label>Student <input name="student" autocomplete="off"></label></p>
<p><label>Sending institution <select name="hei">
<option value="">(choose)</option>
<option value="uni-musterstadt.example">Universität Musterstadt</option>
<option value="third.example">Third University</option>
</select></label></p>
<p><label><input type="checkbox" name="complete" value="yes"> File complete</label></p>
<p><button type="submit">Nominate</button></p>
</form>
<script>document.body.dataset.inline = 'ran';</script>
</body></html>
`;
const DONE_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Done</title>
<link rel="stylesheet" href="/style.css"></head>
<body><h1>Nomination received</h1></body></html>
`;
const STYLE = 'body { font-family: sans-serif; margin: 2em; }\nh1 { color: rgb(0, 85, 170); }\n' +
  ':focus { outline: 3px solid rgb(230, 120, 0); }\n';

// The page server: every answer carries the CSP; POSTs are recorded.
function pageServer(posts) {
  return (req, res) => {
    const send = (status, type, body, headers = {}) => {
      res.writeHead(status, { 'Content-Type': type, 'Content-Security-Policy': CSP, ...headers });
      res.end(body);
    };
    if (req.method === 'GET' && req.url === '/') return send(200, 'text/html; charset=utf-8', FORM_PAGE);
    if (req.method === 'GET' && req.url === '/style.css') return send(200, 'text/css', STYLE);
    if (req.method === 'GET' && req.url === '/done') return send(200, 'text/html; charset=utf-8', DONE_PAGE);
    if (req.method === 'POST' && req.url === '/nominate') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        posts.push({ type: req.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') });
        send(303, 'text/plain', 'see /done', { Location: '/done' });
      });
      return undefined;
    }
    return send(404, 'text/plain', 'not found');
  };
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

function isPng(file) {
  const b = fs.readFileSync(file);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return { ok: b.subarray(0, 8).equals(signature) && b.subarray(12, 16).toString('latin1') === 'IHDR',
    width: b.readUInt32BE(16), height: b.readUInt32BE(20), size: b.length };
}

const posts = [];
const servers = [];
let base;
let browser;
let launchMs;
let dir;

before(async () => {
  dir = makeTempDir('browser');
  const srv = http.createServer(pageServer(posts));
  servers.push(srv);
  base = `http://127.0.0.1:${await listen(srv)}`;
  const t0 = performance.now();
  browser = await launchBrowser();
  launchMs = performance.now() - t0;
});

after(async () => {
  await browser?.close();
  for (const s of servers) s.close();
  if (dir && !KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
});

test('browser harness: keyboard-driven form under a strict CSP, inline script blocked and reported', async (t) => {
  t.diagnostic(`chromium ${browser.version()} launched in ${launchMs.toFixed(0)} ms`);
  const { context, page, watch } = await openPage(browser);
  t.after(() => context.close());

  const res = await page.goto(`${base}/`);
  assert.equal(res.status(), 200);
  assert.equal(res.headers()['content-security-policy'], CSP);
  assert.equal(await page.title(), 'Nomination');

  // the stylesheet from 'self' applies, the inline script does not run
  const h1Color = await page.evaluate(() => getComputedStyle(document.querySelector('h1')).color);
  assert.equal(h1Color, 'rgb(0, 85, 170)', 'style-src \'self\' must let /style.css apply');
  assert.equal(await page.evaluate(() => document.body.dataset.inline), undefined,
    'the inline script must have been blocked by the CSP');

  // ... and the page reported it, nothing else
  assert.equal(watch.cspViolations.length, 1, `CSP violations seen: ${JSON.stringify(watch.cspViolations)}`);
  assert.match(watch.cspViolations[0], /inline script/i);
  assert.match(watch.cspViolations[0], /default-src 'none'/);
  assert.deepEqual(watch.consoleErrors, []);
  assert.deepEqual(watch.pageErrors, []);
  assert.throws(() => watch.assertClean('the form page'), /CSP: .*inline script/i,
    'assertClean must fail on a page that reported a CSP violation');

  // keyboard only: Tab through the fields, type, pick, tick, submit
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'student');
  await page.keyboard.type('Lena Schäfer');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'hei');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'complete');
  await page.keyboard.press('Space');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.tagName), 'BUTTON');
  assert.equal(await page.evaluate(() => getComputedStyle(document.activeElement).outlineColor),
    'rgb(230, 120, 0)', 'the focused button must show the focus outline of the stylesheet');

  const shot = await saveScreenshot(page, t, 'filled');
  assert.equal(path.dirname(shot), ARTEFACTS);
  assert.match(path.basename(shot), /^browser-harness-.*-filled\.png$/);
  const png = isPng(shot);
  assert.ok(png.ok, `${shot} must be a PNG`);
  assert.ok(png.width >= 800 && png.height >= 400, `screenshot is ${png.width}x${png.height}`);
  t.diagnostic(`screenshot ${shot} (${png.width}x${png.height}, ${png.size} bytes)`);

  watch.clear();
  await Promise.all([page.waitForURL(`${base}/done`), page.keyboard.press('Enter')]);
  assert.equal(posts.length, 1, 'the server must have received one POST');
  assert.equal(posts[0].type, 'application/x-www-form-urlencoded');
  const form = new URLSearchParams(posts[0].body);
  assert.deepEqual([...form], [['student', 'Lena Schäfer'], ['hei', 'uni-musterstadt.example'],
    ['complete', 'yes']]);
  assert.equal(await page.locator('h1').textContent(), 'Nomination received');
  watch.assertClean('the page after the POST');
});

test('browser harness: TLS accepted for the trusted test certificate only', async (t) => {
  const trusted = makeTlsCert(fs.mkdtempSync(path.join(dir, 'trusted-')));
  const other = makeTlsCert(fs.mkdtempSync(path.join(dir, 'other-')));
  const handler = (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': CSP });
    res.end('<!doctype html><title>tls</title><h1>over TLS</h1>');
  };
  const urls = [];
  for (const c of [trusted, other]) {
    const srv = https.createServer({ cert: c.certPem, key: fs.readFileSync(c.key) }, handler);
    servers.push(srv);
    urls.push(`https://localhost:${await listen(srv)}/`);
  }

  // the default browser trusts neither (private certificates, no known CA)
  const plain = await openPage(browser);
  t.after(() => plain.context.close());
  await assert.rejects(plain.page.goto(urls[0]), /ERR_CERT_AUTHORITY_INVALID/);

  const trusting = await launchBrowser({ trust: [trusted.certPem] });
  t.after(() => trusting.close());
  const { page, watch } = await openPage(trusting);
  const res = await page.goto(urls[0]);
  assert.equal(res.status(), 200);
  assert.equal(await page.locator('h1').textContent(), 'over TLS');
  watch.assertClean();
  await assert.rejects(page.goto(urls[1]), /ERR_CERT_AUTHORITY_INVALID/,
    'a certificate that was not given to trust must still be refused');
});
