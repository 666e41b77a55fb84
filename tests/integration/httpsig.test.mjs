// 3. Request verification: every check of ewp-notes 2.3, the broken-server
//    cases B1-B12 of 10.1 and the security list of 10.2.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before } from 'node:test';

import { Ewpd, PARTNER_HEI, itest } from './lib/daemon.mjs';
import { assertErrorResponse, assertStatus, exchange, parseEcho } from './lib/ewp.mjs';
import { digestHeader, httpDate, sha256b64 } from './lib/sign.mjs';

let fx;
before(async () => { fx = await Ewpd.create('httpsig'); });
after(async () => { await fx?.cleanup(); });

const MIN = 60 * 1000;
const FORM = 'application/x-www-form-urlencoded';

async function expectOk(o, what) {
  const req = fx.echoRequest(o.values || ['ok'], o);
  const res = await fx.send(req);
  assertStatus(res, 200, req, what);
  const e = parseEcho(res, req);
  assert.deepEqual(e.echoes, o.values || ['ok'], `${what}: echo values${exchange(req, res)}`);
  return { req, res };
}

async function expectError(o, status, what) {
  const req = o.method || o.path || o.headers ? (o.headers ? o : fx.signed(o)) : fx.echoRequest(['x'], o);
  const res = await fx.send(req);
  const msg = assertErrorResponse(res, status, req, what);
  if (process.env.SHOW_MSG) console.log(`${what} → ${res.status}: ${msg}`);
  return { req, res, msg };
}

// --- 1: scheme -------------------------------------------------------------

itest(() => fx, 'httpsig B5/B6: unsigned request → 401, WWW-Authenticate: Signature realm="EWP", Want-Digest: SHA-256', async () => {
  const req = { method: 'GET', target: '/ewp/echo?echo=a', headers: [['Host', fx.hostHeader]] };
  const res = await fx.send(req);
  assertErrorResponse(res, 401, req, 'anonymous echo');
  const wa = res.headerAll('WWW-Authenticate');
  assert.ok(wa.some((v) => /^Signature\s+realm="EWP"$/i.test(v.trim())),
    `401 must carry WWW-Authenticate: Signature realm="EWP", got ${JSON.stringify(wa)}${exchange(req, res)}`);
  const wd = res.headerAll('Want-Digest');
  assert.ok(wd.some((v) => /(^|,)\s*SHA-256\s*(,|;|$)/i.test(v)),
    `401 must carry Want-Digest: SHA-256, got ${JSON.stringify(wd)}${exchange(req, res)}`);
});

itest(() => fx, 'httpsig: unsigned POST → 401 with the same headers', async () => {
  const req = { method: 'POST', target: '/ewp/echo', headers: [['Host', fx.hostHeader], ['Content-Type', FORM], ['Content-Length', '6']], body: 'echo=a' };
  const res = await fx.send(req);
  assertErrorResponse(res, 401, req, 'anonymous echo POST');
  assert.ok(res.header('WWW-Authenticate'), `WWW-Authenticate missing${exchange(req, res)}`);
  assert.ok(res.header('Want-Digest'), `Want-Digest missing${exchange(req, res)}`);
});

itest(() => fx, 'httpsig: Authorization with another scheme (Basic) → 401', async () => {
  const req = { method: 'GET', target: '/ewp/echo', headers: [['Host', fx.hostHeader], ['Authorization', 'Basic dXNlcjpwYXNz']] };
  const res = await fx.send(req);
  assertErrorResponse(res, 401, req, 'Basic auth');
  assert.ok(res.header('WWW-Authenticate'), `WWW-Authenticate missing${exchange(req, res)}`);
});

itest(() => fx, 'httpsig: scheme word compared case-insensitively ("signature keyId=...") → 200', async () => {
  await expectOk({ scheme: 'signature' }, 'lower-case scheme');
});

itest(() => fx, 'httpsig: unparseable signature parameters → 400', async () => {
  const base = fx.signed({ path: '/ewp/echo?echo=a' });
  const headers = base.headers.map(([n, v]) => (n === 'Authorization' ? [n, 'Signature keyId=,,algorithm=rsa-sha256 "'] : [n, v]));
  await expectError({ ...base, headers }, 400, 'unparseable Authorization');
});

itest(() => fx, 'httpsig: signature parameter missing → 400', async () => {
  const base = fx.signed({ path: '/ewp/echo?echo=a' });
  const headers = base.headers.map(([n, v]) => (n === 'Authorization' ? [n, v.replace(/,signature="[^"]*"/, '')] : [n, v]));
  await expectError({ ...base, headers }, 400, 'no signature parameter');
});

// --- 1b: algorithm ---------------------------------------------------------

itest(() => fx, 'httpsig B1: algorithm="rsa-sha512" (a real RSA-SHA512 signature) → 400', async () => {
  await expectError({ algorithm: 'rsa-sha512', hash: 'sha512' }, 400, 'rsa-sha512');
});

itest(() => fx, 'httpsig: algorithm="hmac-sha256" → 400', async () => {
  await expectError({ algorithm: 'hmac-sha256' }, 400, 'hmac-sha256');
});

// --- 1c: required signed headers ------------------------------------------

itest(() => fx, 'httpsig B2: only Original-Date (signed), no Date header → 200', async () => {
  await expectOk({ noDate: true, originalDate: new Date() }, 'Original-Date instead of Date');
});

itest(() => fx, 'httpsig: Date and Original-Date both sent and signed → 200', async () => {
  await expectOk({ originalDate: new Date(), signed: ['(request-target)', 'host', 'date', 'original-date', 'digest', 'x-request-id'] },
    'Date + Original-Date');
});

itest(() => fx, 'httpsig B3: X-Request-Id present but not signed → 400', async () => {
  await expectError({ signed: ['(request-target)', 'host', 'date', 'digest'] }, 400, 'x-request-id unsigned');
});

itest(() => fx, 'httpsig 10.2: Date present but not signed (no original-date) → 400', async () => {
  await expectError({ signed: ['(request-target)', 'host', 'digest', 'x-request-id'] }, 400, 'date unsigned');
});

itest(() => fx, 'httpsig 10.2: Digest present but not signed → 400', async () => {
  await expectError({ signed: ['(request-target)', 'host', 'date', 'x-request-id'] }, 400, 'digest unsigned');
});

itest(() => fx, 'httpsig: (request-target) not signed → 400', async () => {
  await expectError({ signed: ['host', 'date', 'digest', 'x-request-id'] }, 400, '(request-target) unsigned');
});

itest(() => fx, 'httpsig: host not signed → 400', async () => {
  await expectError({ signed: ['(request-target)', 'date', 'digest', 'x-request-id'] }, 400, 'host unsigned');
});

itest(() => fx, 'httpsig B4: extra signed header (content-type) on POST → 200', async () => {
  await expectOk({ method: 'POST', signed: ['(request-target)', 'host', 'date', 'digest', 'x-request-id', 'content-type'] },
    'content-type signed too');
});

itest(() => fx, 'httpsig B4: extra signed custom header on GET → 200', async () => {
  await expectOk({ extra: [['X-Custom', 'v1']], signed: ['(request-target)', 'host', 'date', 'digest', 'x-request-id', 'x-custom'] },
    'x-custom signed too');
});

itest(() => fx, 'httpsig 10.2: signed headers in another order → 200', async () => {
  await expectOk({ signed: ['x-request-id', 'digest', 'date', 'host', '(request-target)'] }, 'reversed order');
  await expectOk({ method: 'POST', signed: ['date', '(request-target)', 'x-request-id', 'host', 'digest'] }, 'shuffled order');
});

itest(() => fx, 'httpsig 10.2: a header listed in headers="" but absent → 400', async () => {
  // x-absent is signed with an empty value but never sent.
  await expectError({ signed: ['(request-target)', 'host', 'date', 'digest', 'x-request-id', 'x-absent'] }, 400,
    'listed but absent header');
});

// --- 2: Host ---------------------------------------------------------------

itest(() => fx, 'httpsig: Host different from the public host (correctly signed) → 400', async () => {
  const port = fx.port;
  await expectError({ host: `localhost:${port}` }, 400, 'Host localhost:PORT');
  await expectError({ host: '127.0.0.1' }, 400, 'Host without port');
  await expectError({ host: `evil.example.org:${port}` }, 400, 'Host of another site');
});

// --- 3: keys ---------------------------------------------------------------

itest(() => fx, 'httpsig B7: key listed only under server-credentials-in-use → 403', async () => {
  await expectError({ key: fx.serverOnlyKey }, 403, 'server key used as client key');
});

itest(() => fx, 'httpsig: ewpd\'s own server key used as client key → 403', async () => {
  // We do not hold ewpd's private server key, but the keyId lookup must
  // refuse it before any signature check.
  await expectError({ keyId: fx.serverKey.keyId }, 403, 'ewpd server keyId as client keyId');
});

itest(() => fx, 'httpsig 10.2: unknown RSA client key → 403', async () => {
  await expectError({ key: fx.unknownKey }, 403, 'unknown key');
});

itest(() => fx, 'httpsig: keyId in a wrong format (base64 of the key, fingerprint of nothing) → 403', async () => {
  // (An upper-case hex keyId of a known key is tolerated by ewpd; the spec
  // does not require refusing it, so it is not tested.)
  await expectError({ keyId: fx.partnerKey.b64.slice(0, 60) }, 403, 'base64 keyId');
  await expectError({ keyId: '0'.repeat(64) }, 403, 'all-zero keyId');
});

// --- 4: dates --------------------------------------------------------------

itest(() => fx, 'httpsig B8: Date 6 minutes in the past → 400', async () => {
  await expectError({ date: new Date(Date.now() - 6 * MIN) }, 400, 'Date -6 min');
});

itest(() => fx, 'httpsig B8: Date 6 minutes in the future → 400', async () => {
  await expectError({ date: new Date(Date.now() + 6 * MIN) }, 400, 'Date +6 min');
});

itest(() => fx, 'httpsig: Date 4 minutes off (past and future) → 200', async () => {
  await expectOk({ date: new Date(Date.now() - 4 * MIN) }, 'Date -4 min');
  await expectOk({ date: new Date(Date.now() + 4 * MIN) }, 'Date +4 min');
});

itest(() => fx, 'httpsig: Original-Date (only date sent) 6 minutes off → 400', async () => {
  await expectError({ noDate: true, originalDate: new Date(Date.now() - 6 * MIN) }, 400, 'Original-Date -6 min');
});

itest(() => fx, 'httpsig: unparseable Date (signed) → 400', async () => {
  await expectError({ dateValue: 'yesterday at noon' }, 400, 'bad Date');
});

// --- 5/6: request ids ------------------------------------------------------

itest(() => fx, 'httpsig B11: upper-case X-Request-Id → 400', async () => {
  await expectError({ requestId: crypto.randomUUID().toUpperCase() }, 400, 'upper-case UUID');
});

itest(() => fx, 'httpsig B11: X-Request-Id without dashes → 400', async () => {
  await expectError({ requestId: crypto.randomUUID().replaceAll('-', '') }, 400, 'UUID without dashes');
});

itest(() => fx, 'httpsig B11: arbitrary X-Request-Id → 400', async () => {
  await expectError({ requestId: 'my-request-42' }, 400, 'arbitrary id');
  await expectError({ requestId: `{${crypto.randomUUID()}}` }, 400, 'braced UUID');
});

itest(() => fx, 'httpsig: X-Request-Id missing (and unsigned) → 400', async () => {
  await expectError({ noRequestId: true, signed: ['(request-target)', 'host', 'date', 'digest'] }, 400, 'no X-Request-Id');
});

itest(() => fx, 'httpsig: reused X-Request-Id with a new valid signature → 400', async () => {
  const id = crypto.randomUUID();
  const r1 = fx.echoRequest(['first'], { requestId: id });
  const res1 = await fx.send(r1);
  assertStatus(res1, 200, r1, 'first use of the request id');
  const r2 = fx.echoRequest(['second'], { requestId: id });
  assert.notEqual(r2.signature, r1.signature);
  const res2 = await fx.send(r2);
  assertErrorResponse(res2, 400, r2, 'replayed request id');
});

itest(() => fx, 'httpsig: X-Request-Id sent twice with two different values (both signed, joined) → 400', async () => {
  // The signing string joins duplicate values with ", " (ewp-notes 2.1), so
  // the signature itself is valid: only a duplicate check catches it.
  await expectError({ requestId: [crypto.randomUUID(), crypto.randomUUID()] }, 400, 'duplicate X-Request-Id');
});

itest(() => fx, 'httpsig: Date sent twice → 400', async () => {
  await expectError({ extra: [['Date', httpDate(new Date(Date.now() - 10 * MIN))]] }, 400, 'duplicate Date');
});

// --- 7: signature ----------------------------------------------------------

itest(() => fx, 'httpsig B9: known keyId, corrupted signature → 400', async () => {
  await expectError({ corrupt: true }, 400, 'corrupted signature');
});

itest(() => fx, 'httpsig: signature by another key under the partner\'s keyId → 400', async () => {
  await expectError({ key: fx.unknownKey, keyId: fx.partnerKey.keyId }, 400, 'wrong key');
});

itest(() => fx, 'httpsig: signed query differs from the sent one → 400', async () => {
  const req = fx.signed({ path: '/ewp/echo?echo=a' });
  req.target = '/ewp/echo?echo=b';
  await expectError(req, 400, 'request-target tampered');
});

// --- 8: digest -------------------------------------------------------------

itest(() => fx, 'httpsig B10: body altered, Digest unchanged → 400, developer-message gives both digests', async () => {
  const signedBody = 'echo=a';
  const sentBody = 'echo=b';
  const { msg, req, res } = await expectError({ method: 'POST', path: '/ewp/echo', contentType: FORM, body: signedBody, bodySent: sentBody },
    400, 'altered body');
  const received = sha256b64(Buffer.from(signedBody));
  const calculated = sha256b64(Buffer.from(sentBody));
  assert.ok(msg.includes(received), `developer-message should quote the received digest ${received}: ${JSON.stringify(msg)}${exchange(req, res)}`);
  assert.ok(msg.includes(calculated), `developer-message should quote the calculated digest ${calculated}: ${JSON.stringify(msg)}${exchange(req, res)}`);
});

itest(() => fx, 'httpsig 10.2: several digests including SHA-256 → 200', async () => {
  const body = 'echo=ok';
  const s512 = crypto.createHash('sha512').update(body).digest('base64');
  await expectOk({ method: 'POST', digest: `SHA-512=${s512}, ${digestHeader(Buffer.from(body))}` }, 'SHA-512 then SHA-256');
  await expectOk({ method: 'POST', digest: `${digestHeader(Buffer.from(body))},SHA-512=${s512}` }, 'SHA-256 then SHA-512');
});

itest(() => fx, 'httpsig 10.2: digest algorithm name in lower case (sha-256=) → 200', async () => {
  const body = 'echo=ok';
  await expectOk({ method: 'POST', digest: `sha-256=${sha256b64(Buffer.from(body))}` }, 'sha-256 lower case');
  await expectOk({ digest: `Sha-256=${sha256b64(Buffer.alloc(0))}` }, 'Sha-256 mixed case, GET');
});

itest(() => fx, 'httpsig: Digest missing (not sent, not signed) → 400', async () => {
  await expectError({ noDigest: true, signed: ['(request-target)', 'host', 'date', 'x-request-id'] }, 400, 'no Digest');
});

itest(() => fx, 'httpsig: Digest with SHA-512 only → 400', async () => {
  const s512 = crypto.createHash('sha512').update('').digest('base64');
  await expectError({ digest: `SHA-512=${s512}` }, 400, 'no SHA-256 digest');
});

itest(() => fx, 'httpsig: GET with a wrong SHA-256 digest → 400', async () => {
  await expectError({ digest: digestHeader(Buffer.from('not empty')) }, 400, 'wrong digest on GET');
});

// --- B12 -------------------------------------------------------------------

itest(() => fx, 'httpsig B12: POST with echo parameters only in the query string → they are ignored', async () => {
  const req = fx.signed({ method: 'POST', path: '/ewp/echo?echo=a&echo=b', contentType: FORM, body: '' });
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'POST with query parameters');
  const e = parseEcho(res, req);
  assert.deepEqual(e.echoes, [], `query parameters must be ignored on POST${exchange(req, res)}`);
  assert.deepEqual(e.heiIds, [PARTNER_HEI]);
});

itest(() => fx, 'httpsig B12: POST with parameters in both query and body → only the body counts', async () => {
  const req = fx.signed({ method: 'POST', path: '/ewp/echo?echo=q', contentType: FORM, body: 'echo=b' });
  const res = await fx.send(req);
  assertStatus(res, 200, req);
  assert.deepEqual(parseEcho(res, req).echoes, ['b'], `only body parameters on POST${exchange(req, res)}`);
});
