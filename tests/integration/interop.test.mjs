// 5. Interop with an independent HTTP Signature implementation: the npm
//    package `http-signature` (Joyent's reference implementation of
//    draft-cavage) signs requests through Node's own http client, and
//    verifies ewpd's response signatures.
//
//    Response verification: http-signature's parseRequest() accepts a
//    `Signature` header without a scheme word when told
//    authorizationHeaderName: 'signature', and rebuilds (request-target)
//    from the method/url we pass (those of our request), so its
//    parseRequest + verifySignature helpers fit response headers and are
//    used here (Node crypto verification is covered in
//    response-signing.test.mjs).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { after, before } from 'node:test';
import httpSignature from 'http-signature';

import { Ewpd, PARTNER_HEI, itest } from './lib/daemon.mjs';
import { HttpResponse } from './lib/http.mjs';
import { assertStatus, exchange, parseEcho } from './lib/ewp.mjs';
import { sha256b64 } from './lib/sign.mjs';

let fx;
before(async () => { fx = await Ewpd.create('interop'); });
after(async () => { await fx?.cleanup(); });

// Sends a request signed by http-signature; resolves { reqInfo, res (HttpResponse), nodeRes }.
function npmSignedRequest({ method, path, body = '', contentType, acceptSignature = 'rsa-sha256' }) {
  const bodyBuf = Buffer.from(body);
  const requestId = crypto.randomUUID();
  const headers = {
    Host: fx.hostHeader,
    Digest: `SHA-256=${sha256b64(bodyBuf)}`,
    'X-Request-Id': requestId,
    'Accept-Signature': acceptSignature,
  };
  if (contentType) headers['Content-Type'] = contentType;
  if (method !== 'GET') headers['Content-Length'] = String(bodyBuf.length);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: fx.port, method, path, headers, agent: false, setHost: false });
    // http-signature adds Date (RFC 1123) and writes Authorization: Signature ...
    httpSignature.sign(req, {
      key: fx.partnerKey.privatePem,
      keyId: fx.partnerKey.keyId,
      headers: ['(request-target)', 'host', 'date', 'digest', 'x-request-id'],
      algorithm: 'rsa-sha256',
    });
    const authz = req.getHeader('Authorization');
    const signature = /signature="([^"]+)"/.exec(authz)[1];
    const reqInfo = { method, target: path, requestId, signature, body: bodyBuf,
      headers: Object.entries(req.getHeaders()).map(([n, v]) => [n, String(v)]) };
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const raw = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) raw.push([res.rawHeaders[i], res.rawHeaders[i + 1]]);
        const head = `HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\n${raw.map(([n, v]) => `${n}: ${v}`).join('\r\n')}`;
        resolve({ reqInfo, res: new HttpResponse(res.statusCode, res.statusMessage, raw, Buffer.concat(chunks), head), nodeRes: res });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.end(bodyBuf);
  });
}

function npmVerifyResponse(reqInfo, nodeRes, res) {
  const parsed = httpSignature.parseRequest(
    { headers: nodeRes.headers, method: reqInfo.method, url: reqInfo.target, httpVersion: '1.1' },
    { authorizationHeaderName: 'signature', headers: ['digest', 'x-request-id', 'x-request-signature'], clockSkew: 300 },
  );
  assert.equal(parsed.keyId, fx.serverKey.keyId, `response keyId should be ewpd's server key${exchange(reqInfo, res)}`);
  assert.equal(parsed.params.algorithm, 'rsa-sha256');
  assert.ok(parsed.params.headers.includes('date') || parsed.params.headers.includes('original-date'),
    `response must sign date or original-date: ${parsed.params.headers}`);
  assert.ok(httpSignature.verifySignature(parsed, fx.serverKey.publicPem),
    `http-signature does not verify ewpd's response signature; signing string:\n${parsed.signingString}${exchange(reqInfo, res)}`);
  assert.equal(nodeRes.headers['x-request-id'], reqInfo.requestId);
  assert.equal(nodeRes.headers['x-request-signature'], reqInfo.signature);
  assert.equal(nodeRes.headers.digest?.match(/SHA-256=([^,\s]+)/i)?.[1], sha256b64(res.body), 'response Digest');
}

itest(() => fx, 'interop: GET signed by npm http-signature → 200 with echoes', async () => {
  const { reqInfo, res } = await npmSignedRequest({ method: 'GET', path: '/ewp/echo?echo=a&echo=b&echo=a' });
  assertStatus(res, 200, reqInfo, 'http-signature GET');
  const e = parseEcho(res, reqInfo);
  assert.deepEqual(e.heiIds, [PARTNER_HEI]);
  assert.deepEqual(e.echoes, ['a', 'b', 'a']);
});

itest(() => fx, 'interop: POST signed by npm http-signature → 200 with echoes', async () => {
  const { reqInfo, res } = await npmSignedRequest({ method: 'POST', path: '/ewp/echo', body: 'echo=x&echo=y',
    contentType: 'application/x-www-form-urlencoded' });
  assertStatus(res, 200, reqInfo, 'http-signature POST');
  assert.deepEqual(parseEcho(res, reqInfo).echoes, ['x', 'y']);
});

itest(() => fx, 'interop: ewpd\'s response signature verifies with npm http-signature (parseRequest + verifySignature)', async () => {
  const { reqInfo, res, nodeRes } = await npmSignedRequest({ method: 'GET', path: '/ewp/echo?echo=v' });
  assertStatus(res, 200, reqInfo);
  npmVerifyResponse(reqInfo, nodeRes, res);
  const { reqInfo: r2, res: res2, nodeRes: n2 } = await npmSignedRequest({ method: 'POST', path: '/ewp/echo', body: 'echo=w',
    contentType: 'application/x-www-form-urlencoded' });
  assertStatus(res2, 200, r2);
  npmVerifyResponse(r2, n2, res2);
});
