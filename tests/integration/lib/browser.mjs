// Headless Chromium for browser tests, driven by npm playwright-core.
//
// The browser is Debian's `chromium` package ($CHROMIUM, default
// /usr/bin/chromium); playwright-core never downloads one. A test file
// launches one browser, opens a fresh context per test and closes the
// browser in an after() hook: Playwright stops the process it started
// (and kills it by PID if this process exits first).
//
//   const browser = await launchBrowser({ trust: [fixture.tlsFiles.certPem] });
//   after(() => browser.close());
//   const { page, watch } = await openPage(browser);
//   await page.goto(url);
//   ...
//   await saveScreenshot(page, t);
//   watch.assertClean();        // no console error, page error or CSP violation
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { REPO_ROOT } from './env.mjs';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// Screenshots and other artefacts of browser tests.
export const ARTEFACTS = path.resolve(REPO_ROOT, process.env.EWP_ARTEFACTS || 'build/artefacts/portal');

// Base64 SHA-256 of the SubjectPublicKeyInfo of every certificate in a PEM
// text (one certificate or a bundle): what Chromium's
// --ignore-certificate-errors-spki-list takes.
export function spkiHashes(pem) {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) || [];
  if (blocks.length === 0) throw new Error('no PEM certificate in the text given to trust');
  return blocks.map((b) => {
    const der = new crypto.X509Certificate(b).publicKey.export({ type: 'spki', format: 'der' });
    return crypto.createHash('sha256').update(der).digest('base64');
  });
}

// Launches headless Chromium. trust: PEM certificates of the test servers
// (e.g. Ewpd.tlsFiles.certPem, or each node's certificate in a two-node
// test) whose keys Chromium accepts although no CA it knows signed them;
// any other certificate still fails the navigation. Give the servers' own
// certificates, not their CA: Chromium matches the keys of the chain it
// could build, and a CA it does not know is not in that chain unless the
// server sends it. Chromium only honours the list with a user data dir,
// which Playwright always gives it.
export async function launchBrowser({ trust = [] } = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM} (install the Debian package "chromium", ` +
      'e.g. with "make check", or point CHROMIUM at a Chromium binary)');
  }
  const args = [];
  // As root Chromium refuses to start with its sandbox (CI runs as root).
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  const spki = trust.flatMap(spkiHashes);
  if (spki.length) args.push(`--ignore-certificate-errors-spki-list=${spki.join(',')}`);
  return chromium.launch({ executablePath: CHROMIUM, args, headless: true });
}

// Collects what a page reports as wrong: console errors, uncaught
// exceptions and Content-Security-Policy violations (Chromium reports
// those as console errors naming the "Content Security Policy directive";
// they are kept apart so a test can expect one).
export function watchPage(page) {
  const w = {
    consoleErrors: [],
    pageErrors: [],
    cspViolations: [],
    clear() {
      w.consoleErrors.length = 0;
      w.pageErrors.length = 0;
      w.cspViolations.length = 0;
    },
    assertClean(what = 'the page') {
      const all = [...w.cspViolations.map((m) => `CSP: ${m}`),
        ...w.consoleErrors.map((m) => `console: ${m}`), ...w.pageErrors.map((m) => `exception: ${m}`)];
      assert.deepEqual(all, [], `${what} reported errors:\n${all.join('\n')}`);
    },
  };
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    if (/Content Security Policy/i.test(text)) w.cspViolations.push(text);
    else w.consoleErrors.push(text);
  });
  page.on('pageerror', (err) => w.pageErrors.push(String(err?.message ?? err)));
  return w;
}

// A fresh context (own cookies and storage) with one page being watched.
export async function openPage(browser, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  return { context, page, watch: watchPage(page) };
}

// Saves a full-page PNG named after the test (t: node:test context) and
// an optional label; returns its path.
export async function saveScreenshot(page, t, label = '') {
  const base = `${t.fullName ?? t.name}${label ? ` ${label}` : ''}`;
  const name = base.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 120);
  fs.mkdirSync(ARTEFACTS, { recursive: true });
  const file = path.join(ARTEFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
