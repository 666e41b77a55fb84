// 4. Response signing (srvauth-httpsig, ewp-notes 2.4 / 2.5). Signatures
//    are checked with Node's crypto.verify and, independently, with
//    `openssl dgst -sha256 -verify`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before } from 'node:test';

import { Ewpd, itest } from './lib/daemon.mjs';
import { assertErrorResponse, assertStatus, exchange, parseEcho } from './lib/ewp.mjs';
import { HttpResponse } from './lib/http.mjs';
import { parseSignatureParams, verifyResponse } from './lib/sign.mjs';

let fx;
before(async () => { fx = await Ewpd.create('respsig'); });
after(async () => { await fx?.cleanup(); });

function opensslVerify(signingString, sigB64, pubPath) {
  const dir = fs.mkdtempSync(path.join(fx.dir, 'ossl-'));
  const str = path.join(dir, 'string.txt');
  const sig = path.join(dir, 'sig.bin');
  fs.writeFileSync(str, signingString);
  fs.writeFileSync(sig, Buffer.from(sigB64, 'base64'));
  const r = spawnSync('openssl', ['dgst', '-sha256', '-verify', pubPath, '-signature', sig, str], { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

async function signedEcho(acceptSignature, o = {}) {
  const req = fx.echoRequest(['a', 'b', 'a'], { acceptSignature, ...o });
  const res = await fx.send(req);
  return { req, res };
}

itest(() => fx, 'response signing: Accept-Signature: rsa-sha256 → signed 200 (Date, Digest, X-Request-Id, X-Request-Signature, Signature); verified with Node crypto', async () => {
  const { req, res } = await signedEcho('rsa-sha256');
  assertStatus(res, 200, req);
  assert.deepEqual(parseEcho(res, req).echoes, ['a', 'b', 'a']);
  for (const h of ['Date', 'Digest', 'X-Request-Id', 'X-Request-Signature', 'Signature']) {
    assert.ok(res.header(h) !== undefined, `signed response lacks ${h}${exchange(req, res)}`);
  }
  assert.equal(res.header('X-Request-Id'), req.requestId, `X-Request-Id must echo ours${exchange(req, res)}`);
  assert.equal(res.header('X-Request-Signature'), req.signature, `X-Request-Signature must be our signature${exchange(req, res)}`);
  try {
    verifyResponse(res, req, fx.serverKey);
  } catch (e) {
    assert.fail(`${e.message}${exchange(req, res)}`);
  }
});

itest(() => fx, 'response signing: the response signature also verifies with openssl dgst -sha256 -verify server.pem.pub', async () => {
  const { req, res } = await signedEcho('rsa-sha256', { method: 'POST' });
  assertStatus(res, 200, req);
  let v;
  try {
    v = verifyResponse(res, req, fx.serverKey);
  } catch (e) {
    assert.fail(`${e.message}${exchange(req, res)}`);
  }
  const r = opensslVerify(v.signingString, v.params.signature, fx.serverKey.pubPath);
  assert.ok(r.ok, `openssl does not verify the response signature: ${r.out}\nsigning string:\n${v.signingString}${exchange(req, res)}`);
});

itest(() => fx, 'response signing: keyId is ewpd\'s server key, not its client key', async () => {
  const { req, res } = await signedEcho('rsa-sha256');
  const p = parseSignatureParams(res.header('Signature') || '');
  assert.equal(p.keyId, fx.serverKey.keyId, `keyId must be the server key ${fx.serverKey.keyId} (client key is ${fx.clientKey.keyId})${exchange(req, res)}`);
});

itest(() => fx, 'response signing: "Accept-Signature: hmac-sha256, RSA-SHA256" (several, mixed case) → signed', async () => {
  const { req, res } = await signedEcho('hmac-sha256, RSA-SHA256');
  assertStatus(res, 200, req);
  try {
    verifyResponse(res, req, fx.serverKey);
  } catch (e) {
    assert.fail(`${e.message}${exchange(req, res)}`);
  }
});

itest(() => fx, 'response signing: header name accept-signature in lower case → signed', async () => {
  const req = fx.echoRequest(['z'], { extra: [['accept-signature', 'rsa-sha256']] });
  const res = await fx.send(req);
  assertStatus(res, 200, req);
  try {
    verifyResponse(res, req, fx.serverKey);
  } catch (e) {
    assert.fail(`${e.message}${exchange(req, res)}`);
  }
});

itest(() => fx, 'response signing: Accept-Signature: rsa-sha512 only → 200, no error (signature optional)', async () => {
  const { req, res } = await signedEcho('rsa-sha512');
  assertStatus(res, 200, req, 'unknown algorithm in Accept-Signature must not fail the request');
  assert.deepEqual(parseEcho(res, req).echoes, ['a', 'b', 'a']);
  if (res.header('Signature')) {
    // If ewpd signs anyway, the signature must still be right.
    try { verifyResponse(res, req, fx.serverKey); } catch (e) { assert.fail(`unrequested signature is invalid: ${e.message}${exchange(req, res)}`); }
  }
});

itest(() => fx, 'response signing: 403 (unknown key) with Accept-Signature is signed too', async () => {
  const req = fx.echoRequest(['x'], { key: fx.unknownKey, acceptSignature: 'rsa-sha256' });
  const res = await fx.send(req);
  assertErrorResponse(res, 403, req, 'unknown key');
  try {
    // X-Request-Signature is checked when present (the key was refused, so
    // it is not required here).
    verifyResponse(res, req, fx.serverKey, { requireRequestSignature: false });
  } catch (e) {
    assert.fail(`403 response not properly signed: ${e.message}${exchange(req, res)}`);
  }
});

itest(() => fx, 'response signing: 400 (Date 6 min off) with Accept-Signature is signed too', async () => {
  const req = fx.echoRequest(['x'], { date: new Date(Date.now() - 6 * 60 * 1000), acceptSignature: 'rsa-sha256' });
  const res = await fx.send(req);
  assertErrorResponse(res, 400, req, 'stale Date');
  try {
    verifyResponse(res, req, fx.serverKey, { requireRequestSignature: false });
  } catch (e) {
    assert.fail(`400 response not properly signed: ${e.message}${exchange(req, res)}`);
  }
});

itest(() => fx, 'response signing: 405 (PUT) with Accept-Signature is signed too', async () => {
  const req = fx.signed({ method: 'PUT', body: 'echo=a', contentType: 'application/x-www-form-urlencoded', acceptSignature: 'rsa-sha256' });
  const res = await fx.send(req);
  assertErrorResponse(res, 405, req, 'PUT');
  try {
    verifyResponse(res, req, fx.serverKey, { requireRequestSignature: false });
  } catch (e) {
    assert.fail(`405 response not properly signed: ${e.message}${exchange(req, res)}`);
  }
});

itest(() => fx, 'response signing 10.2: Accept-Encoding: gzip → 200, response Digest covers the bytes actually sent', async () => {
  const req = fx.echoRequest(['g', 'z'], { acceptSignature: 'rsa-sha256', extra: [['Accept-Encoding', 'gzip']] });
  const res = await fx.send(req);
  assertStatus(res, 200, req);
  try {
    verifyResponse(res, req, fx.serverKey); // Digest checked over the raw received bytes
  } catch (e) {
    assert.fail(`${e.message}${exchange(req, res)}`);
  }
  const enc = (res.header('Content-Encoding') || 'identity').toLowerCase();
  const plain = enc === 'gzip' ? new HttpResponse(res.status, res.reason, res.headers, zlib.gunzipSync(res.body), res.rawHead) : res;
  assert.ok(['gzip', 'identity'].includes(enc), `unexpected Content-Encoding ${enc}`);
  assert.deepEqual(parseEcho(plain, req).echoes, ['g', 'z']);
});
