// 11. ewpctl: keys generate / list / show, and `call` (a signed request
//     to ewpd with the configured client key, response verified against
//     the catalogue).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';

import { Ewpd, HEI_ID, describeRun, itest, makeTempDir, runEwpctl } from './lib/daemon.mjs';
import { KEEP_TMP, NS } from './lib/env.mjs';
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
  let root;
  try { root = parseXml(r.stdout.slice(i)); } catch { root = null; } // stdout may carry more than the XML
  if (root) {
    assert.equal(root.ns, NS.echoResponse);
    assert.deepEqual(root.elements(NS.echoResponse, 'hei-id').map((e) => e.text), [HEI_ID]);
  }
});

itest(() => fx, 'ewpctl call: a URL not in the catalogue fails (non-zero), ewpd untouched', () => {
  const r = runEwpctl(['-c', fx.confPath, 'call', `http://127.0.0.1:${fx.port}/ewp/not-registered`]);
  assert.notEqual(r.status, 0, describeRun(r));
  assert.ok(fx.alive);
});
