// 10. The Registry catalogue over https: conditional GET (ETag /
//     Last-Modified, 304), SIGUSR2 refresh, new keys accepted after a
//     refresh, invalid catalogues refused (last good copy kept, cache file
//     untouched), start-up from the cache while the Registry is down, start
//     with no catalogue at all (503 until one arrives), TLS verification
//     that cannot be turned off, and `ewpd -n` refusing an http:// URL.
//
// The Registry is a Node https server on 127.0.0.1 with an openssl
// self-signed certificate for localhost / 127.0.0.1; ewpd fetches
// https://localhost:PORT/catalogue-v1.xml with ca_file = that certificate.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Ewpd, PARTNER_HEI, itest, makeTlsCert, renderConf } from './lib/daemon.mjs';
import { EWPD } from './lib/env.mjs';
import {
  assertEcho, assertErrorResponse, assertStatus, exchange, fetchMetrics, metricValue, parseEcho, pollEchoOk,
} from './lib/ewp.mjs';
import { freePort } from './lib/http.mjs';
import { pollUntil } from './lib/poll.mjs';
import { makeKey } from './lib/sign.mjs';

const CATALOGUE_PATH = '/catalogue-v1.xml';
const LOADS = 'ewpd_registry_loads_total';
const FAILURES = 'ewpd_registry_failures_total';

/*
 * A fake EWP Registry: serves one document at /catalogue-v1.xml with ETag
 * and Last-Modified, answers 304 to a matching If-None-Match (or, without
 * one, to an If-Modified-Since not older than Last-Modified), and records
 * every request it receives. honourConditionals = false answers 200 always.
 */
class FakeRegistry {
  constructor({ cert, key, port }) {
    this.cert = cert;
    this.key = key;
    this.port = port;
    this.requests = []; // { method, url, headers, status, etag }
    this.tlsErrors = [];
    this.honourConditionals = true;
    this.version = 0;
    // Last-Modified in the past, one minute further on for each version.
    this.t0 = Math.floor(Date.now() / 1000) * 1000 - 3600 * 1000;
    this.server = null;
  }

  // Replaces the document; a new ETag and a later Last-Modified.
  serve(body, contentType = 'application/xml') {
    this.version++;
    this.body = Buffer.from(body);
    this.contentType = contentType;
    const h = crypto.createHash('sha256').update(this.body).digest('hex').slice(0, 16);
    this.etag = `"v${this.version}-${h}"`;
    this.lastModified = new Date(this.t0 + this.version * 60000).toUTCString();
  }

  _handle(req, res) {
    const rec = { method: req.method, url: req.url, headers: { ...req.headers }, status: 0, etag: this.etag };
    this.requests.push(rec);
    const send = (status, headers = {}, body) => {
      rec.status = status;
      res.writeHead(status, headers);
      res.end(body);
    };
    if (req.url !== CATALOGUE_PATH || (req.method !== 'GET' && req.method !== 'HEAD')) {
      send(404, { 'Content-Type': 'text/plain' }, 'not found\n');
      return;
    }
    if (!this.body) {
      send(503, { 'Content-Type': 'text/plain' }, 'no catalogue yet\n');
      return;
    }
    const validators = { ETag: this.etag, 'Last-Modified': this.lastModified, 'Cache-Control': 'max-age=300, must-revalidate' };
    if (this.honourConditionals) {
      const inm = req.headers['if-none-match'];
      const ims = req.headers['if-modified-since'];
      let notModified = false;
      if (inm !== undefined) {
        notModified = inm.split(',').map((s) => s.trim()).some((t) => t === '*' || t === this.etag || t === `W/${this.etag}`);
      } else if (ims !== undefined) {
        const t = Date.parse(ims);
        notModified = !Number.isNaN(t) && t >= Date.parse(this.lastModified);
      }
      if (notModified) {
        send(304, validators);
        return;
      }
    }
    send(200, { ...validators, 'Content-Type': this.contentType, 'Content-Length': String(this.body.length) },
      req.method === 'HEAD' ? undefined : this.body);
  }

  start() {
    this.server = https.createServer({ cert: this.cert, key: this.key }, (req, res) => this._handle(req, res));
    this.server.on('tlsClientError', (e) => { this.tlsErrors.push(e.code || e.message); });
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => { this.server.off('error', reject); resolve(); });
    });
  }

  stop() {
    if (!this.server) return Promise.resolve();
    const s = this.server;
    this.server = null;
    return new Promise((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  get url() {
    return `https://localhost:${this.port}${CATALOGUE_PATH}`;
  }

  describeRequests(from = 0) {
    return this.requests.slice(from).map((r, i) => `#${from + i}: ${r.method} ${r.url} → ${r.status}` +
      ` (If-None-Match: ${r.headers['if-none-match'] ?? '-'}; If-Modified-Since: ${r.headers['if-modified-since'] ?? '-'})`)
      .join('\n') || '(none)';
  }
}

let tlsDir;
let tlsFiles;
let reg; // the Registry of tests 1-4
let fx; // ewpd of tests 1-4 (workers = 2), fetching from reg
let fy; // ewpd of tests 5-8, restarted with different settings
let deadPort; // nothing listens here until test 6 starts a Registry on it
let reg2; // the Registry of tests 6-7 (on deadPort)

before(async () => {
  fx = await Ewpd.create('registry', { workers: 2, start: false });
  tlsDir = path.join(fx.dir, 'registry-tls');
  fs.mkdirSync(tlsDir);
  tlsFiles = makeTlsCert(tlsDir);
  tlsFiles.keyPem = fs.readFileSync(tlsFiles.key);
  reg = new FakeRegistry({ cert: tlsFiles.certPem, key: tlsFiles.keyPem, port: await freePort() });
  reg.serve(fx.catalogueXml);
  await reg.start();
  fx.writeConfig({ registry: { url: reg.url, ca_file: tlsFiles.cert } });
  await fx.start();

  fy = await Ewpd.create('registry-down', { start: false });
  deadPort = await freePort();
});

after(async () => {
  await fx?.cleanup();
  await fy?.cleanup();
  await reg?.stop();
  await reg2?.stop();
});

async function metrics(d) {
  const { res, samples } = await fetchMetrics(d);
  return { loads: metricValue(samples, LOADS), failures: metricValue(samples, FAILURES), text: res.text };
}

// Waits until the Registry has received (and answered) more than n requests.
async function registryRequestAfter(r, n, what) {
  await pollUntil(async () => ({ ok: r.requests.length > n && r.requests[n].status !== 0,
    detail: `requests so far:\n${r.describeRequests()}` }), 5000, `${what}: a catalogue request at the Registry`);
  return r.requests[n];
}

async function echoOk(d, what, opts = {}, n = 1) {
  for (let i = 0; i < n; i++) await assertEcho(d, [`${what}-${i}`], what, opts);
}

function readCache(d) {
  const p = d.conf.registry.cache;
  return fs.existsSync(p) ? fs.readFileSync(p) : null;
}

itest(() => fx, 'registry: https Registry (own CA in ca_file) → ewpd starts, cache written, signed echo from the partner → 200', async () => {
  assert.ok(reg.requests.length >= 1, 'the Registry should have been asked for the catalogue at start-up');
  const first = reg.requests[0];
  assert.equal(first.method, 'GET', `first catalogue request:\n${reg.describeRequests()}`);
  assert.equal(first.url, CATALOGUE_PATH, `first catalogue request:\n${reg.describeRequests()}`);
  assert.equal(first.status, 200, `the Registry answered the start-up fetch with the catalogue:\n${reg.describeRequests()}`);
  assert.equal(first.headers['if-none-match'], undefined, 'the first fetch has no ETag to send yet');
  const cache = readCache(fx);
  assert.ok(cache, `the cache file ${fx.conf.registry.cache} should exist after a successful fetch`);
  assert.ok(cache.equals(reg.body), 'the cache file should hold exactly the bytes the Registry served');
  const m = await metrics(fx);
  assert.ok(m.loads >= 1, `${LOADS} should count the start-up load, got ${m.loads}`);
  assert.equal(m.failures, 0, `${FAILURES} should be 0 after a good start-up fetch`);
  const req = fx.echoRequest(['https-registry']);
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'partner key from the https catalogue');
  const e = parseEcho(res, req);
  assert.deepEqual(e.heiIds, [PARTNER_HEI], `caller HEI from the catalogue${exchange(req, res)}`);
  assert.deepEqual(e.echoes, ['https-registry']);
});

itest(() => fx, 'registry: SIGUSR2 → conditional GET (If-None-Match = ETag, If-Modified-Since = Last-Modified) → 304, nothing reloaded', async () => {
  const m0 = await metrics(fx);
  const cache0 = readCache(fx);
  const n = reg.requests.length;
  fx.signal('SIGUSR2');
  const r = await registryRequestAfter(reg, n, 'SIGUSR2');
  const all = `\nRegistry requests:\n${reg.describeRequests()}\nRegistry ETag ${reg.etag}, Last-Modified ${reg.lastModified}`;
  assert.equal(r.headers['if-none-match'], reg.etag, `SIGUSR2 fetch: If-None-Match should be the ETag last served${all}`);
  assert.equal(r.headers['if-modified-since'], reg.lastModified, `SIGUSR2 fetch: If-Modified-Since should be the Last-Modified last served${all}`);
  assert.equal(r.status, 304, `the fake Registry should have answered 304${all}`);
  await sleep(300); // the supervisor handles the 304 right after receiving it
  const m1 = await metrics(fx);
  assert.equal(m1.loads, m0.loads, `${LOADS} must not change on a 304 (before ${m0.loads}, after ${m1.loads})`);
  assert.equal(m1.failures, m0.failures, `${FAILURES} must not change on a 304 (before ${m0.failures}, after ${m1.failures})`);
  assert.ok(readCache(fx).equals(cache0), 'the cache file must not change on a 304');
  await echoOk(fx, 'after-304', {}, 4);

  // Same again, but the Registry ignores the validators and sends the same
  // bytes with 200: still nothing to reload.
  reg.honourConditionals = false;
  try {
    const n2 = reg.requests.length;
    fx.signal('SIGUSR2');
    const r2 = await registryRequestAfter(reg, n2, 'SIGUSR2 (200, identical bytes)');
    assert.equal(r2.status, 200);
    await sleep(300);
    const m2 = await metrics(fx);
    assert.equal(m2.loads, m0.loads, `${LOADS} must not change when the same bytes come back with 200`);
    assert.equal(m2.failures, m0.failures, `${FAILURES} must not change when the same bytes come back with 200`);
  } finally {
    reg.honourConditionals = true;
  }
  await echoOk(fx, 'after-same-bytes', {}, 2);
});

let newKey; // added in test 3, still accepted in test 4

itest(() => fx, 'registry: a new partner key in the Registry catalogue (new ETag) is accepted right after SIGUSR2 (403 before)', async () => {
  newKey = makeKey();
  const r0 = fx.echoRequest(['before'], { key: newKey });
  const res0 = await fx.send(r0);
  assertStatus(res0, 403, r0, 'the new key before the catalogue change');
  const m0 = await metrics(fx);
  const oldEtag = reg.etag;
  fx.extraHosts.push({ adminEmail: 'admin@new.example.org', heis: ['new.example.org'], clientKeys: [newKey] });
  fx.extraInstitutions.push({ id: 'new.example.org', names: [['en', 'New University']] });
  fx.writeCatalogue();
  reg.serve(fx.catalogueXml);
  const n = reg.requests.length;
  fx.signal('SIGUSR2');
  const r = await registryRequestAfter(reg, n, 'SIGUSR2 after the catalogue change');
  assert.equal(r.headers['if-none-match'], oldEtag, `the refresh should still send the old ETag:\n${reg.describeRequests(n)}`);
  assert.equal(r.status, 200, `the Registry should have sent the new catalogue:\n${reg.describeRequests(n)}`);
  const last = await pollEchoOk(fx, ['after'], { key: newKey }, 'a 200 for the new key after SIGUSR2');
  assert.deepEqual(parseEcho(last.res, last.req).heiIds, ['new.example.org']);
  // every worker (fresh connections) has the new catalogue, the old partner too
  await echoOk(fx, 'new-key', { key: newKey }, 6);
  await echoOk(fx, 'old-key', {}, 4);
  const m1 = await metrics(fx);
  assert.equal(m1.loads, m0.loads + 1, `${LOADS} should grow by 1 (before ${m0.loads}, after ${m1.loads})`);
  assert.equal(m1.failures, m0.failures, `${FAILURES} should not change (before ${m0.failures}, after ${m1.failures})`);
  assert.ok(readCache(fx)?.equals(reg.body), 'the cache file should now hold the new catalogue');
  // the next refresh is conditional on the new validators
  const n2 = reg.requests.length;
  fx.signal('SIGUSR2');
  const r2 = await registryRequestAfter(reg, n2, 'SIGUSR2 after the update');
  assert.equal(r2.headers['if-none-match'], reg.etag, `the refresh after an update should send the new ETag:\n${reg.describeRequests(n2)}`);
  assert.equal(r2.status, 304);
});

itest(() => fx, 'registry: invalid catalogues (not XML; then a key whose sha-256 does not match) → failures +1 each, last good catalogue and cache file kept', async () => {
  assert.ok(newKey, 'needs the key added by the previous test');
  const goodBody = reg.body;
  const cache0 = readCache(fx);
  assert.ok(cache0, 'test bug: no cache file before the invalid catalogues');
  const m0 = await metrics(fx);

  const steps = [
    ['not XML', Buffer.from('this is not a catalogue {\n<<<\n'), 'text/plain'],
    ['sha-256 mismatch', (() => {
      // The partner's <binaries> entry carries another key's bytes under the
      // partner key's sha-256: every reference resolves, the digest does not.
      const other = makeKey();
      const wrapped = (b64) => b64.match(/.{1,76}/g).join('\n      ');
      const xml = fx.catalogueXml.replace(wrapped(fx.partnerKey.b64), wrapped(other.b64));
      assert.notEqual(xml, fx.catalogueXml, 'test bug: partner key bytes not found in the catalogue');
      return Buffer.from(xml);
    })(), 'application/xml'],
  ];
  let expectedFailures = m0.failures;
  for (const [what, body, ct] of steps) {
    const mark = fx.logSize();
    reg.serve(body, ct);
    const n = reg.requests.length;
    fx.signal('SIGUSR2');
    const r = await registryRequestAfter(reg, n, `SIGUSR2 (${what})`);
    assert.equal(r.status, 200, `${what}: the Registry should have sent the invalid document:\n${reg.describeRequests(n)}`);
    expectedFailures++;
    const m = await pollUntil(async () => {
      const mm = await metrics(fx);
      return { ok: mm.failures >= expectedFailures, ...mm, detail: `${FAILURES} = ${mm.failures}, want ${expectedFailures}` };
    }, 5000, `${what}: ${FAILURES} incremented`);
    assert.equal(m.failures, expectedFailures, `${what}: ${FAILURES} should grow by exactly 1`);
    assert.equal(m.loads, m0.loads, `${what}: ${LOADS} must not change (before ${m0.loads}, after ${m.loads})`);
    assert.ok(fx.alive, `${what}: ewpd must survive an invalid catalogue`);
    await echoOk(fx, `${what}-old-key`.replace(/\W+/g, '-'), {}, 3);
    await echoOk(fx, `${what}-new-key`.replace(/\W+/g, '-'), { key: newKey }, 3);
    const cache = readCache(fx);
    assert.ok(cache && cache.equals(cache0), `${what}: the cache file must keep the last good catalogue ` +
      `(${cache ? cache.length : 'no'} bytes now, ${cache0.length} before)`);
    const log = fx.log(mark);
    console.log(`registry: ${what}: log: ${log.trim().split('\n').filter((l) => /catalogue/.test(l)).join(' | ')}`);
  }
  // The good catalogue back: same bytes as the one in use → no reload.
  reg.serve(goodBody);
  const n = reg.requests.length;
  fx.signal('SIGUSR2');
  await registryRequestAfter(reg, n, 'SIGUSR2 (good catalogue again)');
  await sleep(300);
  const m2 = await metrics(fx);
  assert.equal(m2.loads, m0.loads, `the same good catalogue again must not count as a load (before ${m0.loads}, after ${m2.loads})`);
  assert.equal(m2.failures, expectedFailures, `${FAILURES} must not change for the good catalogue`);
});

itest(() => fy, 'registry: Registry down at start (connection refused), cache file present → ewpd starts from the cache, /healthz 200, echo 200', async () => {
  await fy.stop();
  fs.writeFileSync(fy.conf.registry.cache, fy.catalogueXml);
  fy.writeConfig({ registry: { url: `https://localhost:${deadPort}${CATALOGUE_PATH}`, ca_file: tlsFiles.cert } });
  const mark = fy.logSize();
  await fy.start();
  const h = await fy.get('/healthz');
  assertStatus(h, 200, { method: 'GET', target: '/healthz' }, '/healthz running from the cache');
  await echoOk(fy, 'from-cache', {}, 2);
  const m = await metrics(fy);
  assert.ok(m.failures >= 1, `${FAILURES} should count the failed start-up fetch, got ${m.failures}`);
  assert.ok(fs.readFileSync(fy.conf.registry.cache).equals(Buffer.from(fy.catalogueXml)), 'the cache file must be left as it was');
  const log = fy.log(mark);
  assert.match(log, new RegExp(`localhost:${deadPort}`), `the log should say which Registry URL failed:\n${log}`);
});

itest(() => fy, 'registry: Registry down and no cache → ewpd starts, /healthz 503, signed echo 503 error-response; Registry up + SIGUSR2 → 200', async () => {
  await fy.stop();
  fs.rmSync(fy.conf.registry.cache, { force: true });
  await fy.start({ readyStatus: 503 });
  const hreq = { method: 'GET', target: '/healthz', headers: [['Host', fy.hostHeader]] };
  const h = await fy.send(hreq);
  assertStatus(h, 503, hreq, '/healthz without any catalogue');
  const req = fy.echoRequest(['no-catalogue']);
  const res = await fy.send(req);
  const msg = assertErrorResponse(res, 503, req, 'signed echo without any catalogue');
  console.log(`registry: 503 developer-message: ${msg}`);
  const m0 = await metrics(fy);
  assert.ok(m0.failures >= 1, `${FAILURES} should count the failed start-up fetch, got ${m0.failures}`);
  assert.equal(readCache(fy), null, 'no cache file can appear while the Registry is down');

  reg2 = new FakeRegistry({ cert: tlsFiles.certPem, key: tlsFiles.keyPem, port: deadPort });
  reg2.serve(fy.catalogueXml);
  await reg2.start();
  fy.signal('SIGUSR2');
  const r = await registryRequestAfter(reg2, 0, 'SIGUSR2 once the Registry is up');
  assert.equal(r.status, 200, `the Registry should have sent the catalogue:\n${reg2.describeRequests()}`);
  await pollUntil(async () => {
    const hh = await fy.send(hreq);
    return { ok: hh.status === 200, detail: `HTTP ${hh.status}${exchange(hreq, hh)}` };
  }, 5000, '/healthz 200 after the catalogue arrived');
  await echoOk(fy, 'catalogue-arrived', {}, 2);
  const m1 = await metrics(fy);
  assert.equal(m1.loads, m0.loads + 1, `${LOADS} should grow by 1 (before ${m0.loads}, after ${m1.loads})`);
  assert.ok(readCache(fy)?.equals(Buffer.from(fy.catalogueXml)), 'the fetched catalogue should now be in the cache file');
});

itest(() => fy, 'registry: self-signed Registry certificate and no ca_file → fetch refused (verification stays on), ewpd runs from the cache, failure counted and logged', async () => {
  await fy.stop();
  if (!reg2) {
    reg2 = new FakeRegistry({ cert: tlsFiles.certPem, key: tlsFiles.keyPem, port: deadPort });
    reg2.serve(fy.catalogueXml);
    await reg2.start();
  }
  fs.writeFileSync(fy.conf.registry.cache, fy.catalogueXml);
  fy.writeConfig({ registry: { url: reg2.url, ca_file: '' } });
  const n = reg2.requests.length;
  const mark = fy.logSize();
  await fy.start();
  await echoOk(fy, 'untrusted-registry', {}, 2);
  const m = await metrics(fy);
  assert.ok(m.failures >= 1, `${FAILURES} should be >= 1 when the Registry's certificate is not trusted, got ${m.failures}`);
  assert.equal(m.loads, 0, `${LOADS} must stay 0: nothing may be loaded from an untrusted Registry`);
  assert.equal(reg2.requests.length, n, `no HTTP request may get through an unverified TLS connection:\n${reg2.describeRequests(n)}`);
  const log = fy.log(mark);
  assert.match(log, /certificate/i, `the log should mention the certificate problem:\n${log}`);
  console.log(`registry: untrusted Registry: log: ${log.trim().split('\n').filter((l) => /certificate/i.test(l)).join(' | ')}` +
    `; server-side TLS errors: ${reg2.tlsErrors.join(', ') || '(none)'}`);
});

itest(() => null, 'registry: ewpd -n with url = http://… → non-zero exit, the message names the key (url)', async () => {
  const conf = structuredClone(fy.conf);
  conf.registry.url = `http://localhost:${deadPort}${CATALOGUE_PATH}`;
  const file = path.join(fy.dir, 'http-url.conf');
  fs.writeFileSync(file, renderConf(conf));
  const r = spawnSync(EWPD, ['-n', '-c', file], { encoding: 'utf8', timeout: 5000 });
  const out = `${r.stdout}${r.stderr}`;
  const show = `\nexit ${r.status} signal ${r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
  assert.ok(r.status !== null, `ewpd -n did not finish within 5 s${show}`);
  assert.notEqual(r.status, 0, `ewpd -n must refuse an http:// registry URL${show}`);
  assert.match(out, /\burl\b/, `the message must name the key url${show}`);
  assert.ok(out.includes(path.basename(file)), `the message must name the file${show}`);
  assert.doesNotMatch(r.stdout, /configuration OK/, `ewpd -n must not say OK${show}`);
});
