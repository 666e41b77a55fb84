// 11. ewpctl: keys generate / list / show, and `call` (a signed request
//     to ewpd with the configured client key, response verified against
//     the catalogue).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before } from 'node:test';
import httpSignature from 'http-signature';

import { Ewpd, HEI_ID, describeRun, itest, makeTempDir, runEwpctl } from './lib/daemon.mjs';
import { EWPCTL, KEEP_TMP, NS } from './lib/env.mjs';
import { pollUntil } from './lib/poll.mjs';
import { digestHeader, makeKey } from './lib/sign.mjs';
import { parseXml } from './lib/xml.mjs';

let fx;
let dir;
before(async () => {
  fx = await Ewpd.create('ewpctl');
  dir = makeTempDir('ewpctl-keys');
});
after(async () => {
  await fx?.cleanup();
  if (dir && !KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
});

function nodeKeyId(pubPath) {
  const der = crypto.createPublicKey(fs.readFileSync(pubPath)).export({ type: 'spki', format: 'der' });
  return { keyId: crypto.createHash('sha256').update(der).digest('hex'), b64: der.toString('base64'), der };
}

itest(() => null, 'ewpctl keys generate: 0600 private key, .pub beside it, keyId on the last stdout line = SHA-256 of the DER', () => {
  const r = runEwpctl(['keys', 'generate', '--dir', dir, 'alpha']);
  assert.equal(r.status, 0, describeRun(r));
  const pem = path.join(dir, 'alpha.pem');
  const st = fs.statSync(pem);
  assert.equal(st.mode & 0o777, 0o600, `alpha.pem mode is ${(st.mode & 0o777).toString(8)}, expected 600`);
  assert.ok(fs.existsSync(`${pem}.pub`), 'alpha.pem.pub missing');
  const priv = crypto.createPrivateKey(fs.readFileSync(pem));
  assert.equal(priv.asymmetricKeyType, 'rsa');
  assert.ok(priv.asymmetricKeyDetails.modulusLength >= 2048, `key is ${priv.asymmetricKeyDetails.modulusLength} bits`);
  const { keyId } = nodeKeyId(`${pem}.pub`);
  const last = r.stdout.trim().split('\n').pop().trim();
  assert.equal(last, keyId, `last stdout line should be the keyId${'\n'}${describeRun(r)}`);
  // the .pub belongs to the private key
  const derPriv = crypto.createPublicKey(priv).export({ type: 'spki', format: 'der' });
  assert.equal(crypto.createHash('sha256').update(derPriv).digest('hex'), keyId, '.pub does not match the private key');
});

itest(() => null, 'ewpctl keys generate: refuses to overwrite an existing key (non-zero exit, file unchanged)', () => {
  const r0 = runEwpctl(['keys', 'generate', '--dir', dir, 'beta']);
  assert.equal(r0.status, 0, describeRun(r0));
  const pem = path.join(dir, 'beta.pem');
  const before0 = fs.readFileSync(pem);
  const beforePub = fs.readFileSync(`${pem}.pub`);
  const r = runEwpctl(['keys', 'generate', '--dir', dir, 'beta']);
  assert.notEqual(r.status, 0, `second generate must fail${'\n'}${describeRun(r)}`);
  assert.ok(fs.readFileSync(pem).equals(before0), 'beta.pem was overwritten');
  assert.ok(fs.readFileSync(`${pem}.pub`).equals(beforePub), 'beta.pem.pub was overwritten');
});

itest(() => null, 'ewpctl keys list --dir: lists every key with its keyId', () => {
  for (const n of ['alpha', 'beta']) {
    if (!fs.existsSync(path.join(dir, `${n}.pem`))) {
      const g = runEwpctl(['keys', 'generate', '--dir', dir, n]);
      assert.equal(g.status, 0, describeRun(g));
    }
  }
  const r = runEwpctl(['keys', 'list', '--dir', dir]);
  assert.equal(r.status, 0, describeRun(r));
  for (const n of ['alpha', 'beta']) {
    const { keyId } = nodeKeyId(path.join(dir, `${n}.pem.pub`));
    const line = r.stdout.split('\n').find((l) => l.includes(keyId));
    assert.ok(line, `keyId ${keyId} of ${n} not listed${'\n'}${describeRun(r)}`);
    assert.ok(line.includes(n), `the line with ${keyId} should name ${n}: ${JSON.stringify(line)}`);
  }
});

itest(() => null, 'ewpctl keys show --dir DIR NAME: keyId and base64 DER public key equal Node\'s', () => {
  if (!fs.existsSync(path.join(dir, 'alpha.pem'))) {
    const g = runEwpctl(['keys', 'generate', '--dir', dir, 'alpha']);
    assert.equal(g.status, 0, describeRun(g));
  }
  const r = runEwpctl(['keys', 'show', '--dir', dir, 'alpha']);
  assert.equal(r.status, 0, describeRun(r));
  const { keyId, b64 } = nodeKeyId(path.join(dir, 'alpha.pem.pub'));
  assert.ok(r.stdout.includes(keyId), `keyId ${keyId} not shown${'\n'}${describeRun(r)}`);
  assert.ok(r.stdout.replace(/\s+/g, '').includes(b64), `base64 public key not shown (expected ${b64.slice(0, 40)}...)${'\n'}${describeRun(r)}`);
});

itest(() => null, 'ewpctl keys show: unknown key name → non-zero', () => {
  const r = runEwpctl(['keys', 'show', '--dir', dir, 'no-such-key']);
  assert.notEqual(r.status, 0, describeRun(r));
});

itest(() => fx, 'ewpctl -c CONF call URL/ewp/echo?echo=x → exit 0, prints the echo response (signed request, verified response)', () => {
  const url = `${fx.publicUrl}/ewp/echo?echo=x`;
  const r = runEwpctl(['-c', fx.confPath, 'call', url]);
  assert.equal(r.status, 0, describeRun(r));
  const i = r.stdout.indexOf('<');
  assert.ok(i >= 0, `no XML in stdout${'\n'}${describeRun(r)}`);
  assert.match(r.stdout, /<echo>x<\/echo>/, `stdout should contain <echo>x</echo>${'\n'}${describeRun(r)}`);
  // The response must come from ewpd as our own HEI (ewpd's client key covers smile.test).
  // stdout may carry headers and notes around the document: cut it out.
  const m = /<([A-Za-z_][\w.-]*:)?response[\s>][\s\S]*<\/([A-Za-z_][\w.-]*:)?response>/.exec(r.stdout);
  assert.ok(m, `no <response>...</response> document in stdout${'\n'}${describeRun(r)}`);
  const root = parseXml(m[0]);
  assert.equal(root.ns, NS.echoResponse, `echo response namespace${'\n'}${describeRun(r)}`);
  assert.deepEqual(root.elements(NS.echoResponse, 'hei-id').map((e) => e.text), [HEI_ID],
    `ewpd's client key covers ${HEI_ID}: hei-id should be exactly that${'\n'}${describeRun(r)}`);
  assert.deepEqual(root.elements(NS.echoResponse, 'echo').map((e) => e.text), ['x']);
});

itest(() => fx, 'ewpctl call: an error answer (404 from ewpd for an unknown path) → non-zero exit', () => {
  const r = runEwpctl(['-c', fx.confPath, 'call', `http://127.0.0.1:${fx.port}/ewp/not-registered`]);
  assert.notEqual(r.status, 0, describeRun(r));
  assert.ok(fx.alive);
});

// A partner server written in Node whose responses are signed by npm
// http-signature: ewpctl's response verification against an independent
// signer, and its refusals. ewpctl reads the catalogue from ewpd's cache
// ([registry] cache), so after changing the catalogue file ewpd is sent
// SIGHUP and the cache is awaited.
async function fakePartner(signingKey, { tamper = false } = {}) {
  const server = http.createServer((req, res) => {
    const body = Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<response xmlns="${NS.echoResponse}"><hei-id>${HEI_ID}</hei-id><echo>x</echo></response>`);
    const sent = tamper ? Buffer.from(body.toString().replace('<echo>x</echo>', '<echo>y</echo>')) : body;
    const headers = [['Content-Type', 'text/xml; charset=utf-8'], ['Date', new Date().toUTCString()],
      ['Digest', digestHeader(body)], ['X-Request-Id', req.headers['x-request-id'] || '']];
    const sig = /signature="([^"]+)"/.exec(req.headers.authorization || '');
    if (sig) headers.push(['X-Request-Signature', sig[1]]);
    const fake = {
      method: req.method, path: req.url,
      getHeader: (n) => headers.find(([k]) => k.toLowerCase() === n.toLowerCase())?.[1],
      setHeader: (n, v) => headers.push([n, v]),
    };
    httpSignature.sign(fake, { key: signingKey.privatePem, keyId: signingKey.keyId, algorithm: 'rsa-sha256',
      authorizationHeaderName: 'Signature', headers: ['date', 'digest', 'x-request-id', ...(sig ? ['x-request-signature'] : [])] });
    res.writeHead(200, Object.fromEntries(headers));
    res.end(sent);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return { server, url: `http://127.0.0.1:${port}/ewp/echo` };
}

function runCall(url) {
  return new Promise((resolve) => {
    // asynchronous: the fake partner runs in this process
    const c = spawn(EWPCTL, ['-c', fx.confPath, 'call', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => { stdout += d; });
    c.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => process.kill(c.pid, 'SIGKILL'), 20000);
    c.on('close', (status, signal) => { clearTimeout(t); resolve({ status, signal, stdout, stderr, cmd: `ewpctl -c ${fx.confPath} call ${url}` }); });
  });
}

// Lists (or not) a fake host serving `url` with server key `key`, reloads
// ewpd and waits until its catalogue cache says so.
async function publishFakeHost(url, key) {
  fx.extraHosts = url ? [{ adminEmail: 'admin@fake.example.org', heis: ['fake.example.org'], serverKeys: [key], echoUrl: url }] : [];
  fx.extraInstitutions = url ? [{ id: 'fake.example.org', names: [['en', 'Fake']] }] : [];
  fx.writeCatalogue();
  fx.signal('SIGHUP');
  const cache = fx.conf.registry.cache;
  await pollUntil(() => {
    let txt = '';
    try { txt = fs.readFileSync(cache, 'utf8'); } catch { /* not yet */ }
    return { ok: url ? txt.includes(url) : !txt.includes('fake.example.org'), detail: `${txt.length} bytes` };
  }, 5000, `SIGHUP: ewpd's catalogue cache ${cache} updated`);
}

const partnerCases = [
  ['accepts a partner response signed (npm http-signature) with the server key of the host serving the URL', 'listed', 'good', {}, true],
  ['refuses a response signed by a key in no catalogue', 'listed', 'stranger', {}, false],
  ['refuses a response signed by another host\'s server key (host C)', 'listed', 'hostC', {}, false],
  ['refuses a response whose body was altered after signing', 'listed', 'good', { tamper: true }, false],
  ['refuses a response from a URL in no catalogue entry, even signed by some host\'s server key (host C)', 'unlisted', 'hostC', {}, false],
];
for (const [title, listing, signer, opts, ok] of partnerCases) {
  itest(() => fx, `ewpctl call: ${title}${ok ? ' (exit 0)' : ' (non-zero exit)'}`, async () => {
    const good = makeKey();
    const key = { good, stranger: makeKey(), hostC: fx.serverOnlyKey }[signer];
    const p = await fakePartner(key, opts);
    try {
      await publishFakeHost(listing === 'listed' ? p.url : null, good);
      const r = await runCall(`${p.url}?echo=x`);
      if (ok) {
        assert.equal(r.status, 0, describeRun(r));
        assert.match(r.stdout, /<echo>x<\/echo>/, describeRun(r));
      } else {
        assert.notEqual(r.status, 0, `ewpctl must refuse this response${'\n'}${describeRun(r)}`);
      }
    } finally {
      p.server.close();
    }
  });
}
