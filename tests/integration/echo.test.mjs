// 2. Echo API v2 with requests signed by the suite's own signer
//    (ewp-notes 2.2: Host, Date, Digest, X-Request-Id, Authorization).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { D_HEIS, Ewpd, PARTNER_HEI, itest } from './lib/daemon.mjs';
import {
  assertErrorResponse, assertStatus, exchange, parseEcho, validateEchoOfficial, validateEchoProject,
} from './lib/ewp.mjs';
import { NS, specPath } from './lib/env.mjs';
import { assertValid, parseXml } from './lib/xml.mjs';

let fx;
before(async () => { fx = await Ewpd.create('echo'); });
after(async () => { await fx?.cleanup(); });

async function echo(values, o = {}) {
  const req = fx.echoRequest(values, o);
  const res = await fx.send(req);
  return { req, res };
}

itest(() => fx, 'echo: signed GET ?echo=a&echo=b&echo=a → 200, caller HEIs then a,b,a in order', async () => {
  const { req, res } = await echo(['a', 'b', 'a']);
  assertStatus(res, 200, req, 'signed echo GET');
  const e = parseEcho(res, req);
  assert.deepEqual(e.heiIds, [PARTNER_HEI], `hei-id should be the caller's HEIs${exchange(req, res)}`);
  assert.deepEqual(e.echoes, ['a', 'b', 'a'], `echo values, order and duplicates kept${exchange(req, res)}`);
});

itest(() => fx, 'echo: signed POST form body echo=a&echo=b&echo=a → 200, a,b,a', async () => {
  const { req, res } = await echo(['a', 'b', 'a'], { method: 'POST' });
  assertStatus(res, 200, req, 'signed echo POST');
  const e = parseEcho(res, req);
  assert.deepEqual(e.heiIds, [PARTNER_HEI], `hei-id${exchange(req, res)}`);
  assert.deepEqual(e.echoes, ['a', 'b', 'a'], `echo values${exchange(req, res)}`);
});

itest(() => fx, 'echo: response validates against the official echo response.xsd', async () => {
  const { req, res } = await echo(['a', 'b', 'a']);
  assertStatus(res, 200, req);
  validateEchoOfficial(res);
});

itest(() => fx, 'echo: response validates against the project schema ewp-schemas/echo-response.xsd', async () => {
  const { req, res } = await echo(['a', 'b', 'a'], { method: 'POST' });
  assertStatus(res, 200, req);
  validateEchoProject(res);
});

itest(() => fx, 'echo: values needing escaping and non-ASCII survive (percent-encoded, UTF-8)', async () => {
  const vals = ['x<y>&"z\'', 'Zürich ✓', ' spaced  ', ''];
  const { req, res } = await echo(vals, { method: 'POST' });
  assertStatus(res, 200, req);
  assert.deepEqual(parseEcho(res, req).echoes, vals, `escaped values${exchange(req, res)}`);
  validateEchoOfficial(res);
});

itest(() => fx, 'echo: no echo parameter → 200 with hei-id only', async () => {
  const { req, res } = await echo([]);
  assertStatus(res, 200, req);
  const e = parseEcho(res, req);
  assert.deepEqual(e.echoes, [], `no echo elements expected${exchange(req, res)}`);
  assert.deepEqual(e.heiIds, [PARTNER_HEI]);
});

itest(() => fx, 'echo: a key covering two HEIs in one host and one of them again in another host → all hei-ids, duplicate kept', async () => {
  const { req, res } = await echo(['q'], { key: fx.dKey });
  assertStatus(res, 200, req);
  const e = parseEcho(res, req);
  // The spec does not fix the order of hei-id elements: compare as multisets.
  assert.deepEqual([...e.heiIds].sort(), [D_HEIS[0], D_HEIS[0], D_HEIS[1]].sort(),
    `hei-id must list every HEI of every host using this key, duplicates kept${exchange(req, res)}`);
  assert.deepEqual(e.echoes, ['q']);
});

itest(() => fx, 'echo: POST with "Content-Type: application/x-www-form-urlencoded; charset=UTF-8" is accepted', async () => {
  const { req, res } = await echo(['a', 'é'], { method: 'POST', contentType: 'application/x-www-form-urlencoded; charset=UTF-8' });
  assertStatus(res, 200, req, 'form body with charset parameter');
  assert.deepEqual(parseEcho(res, req).echoes, ['a', 'é'], `charset parameter must not make the body ignored${exchange(req, res)}`);
});

itest(() => fx, 'echo: POST with Content-Type application/json → 415 error-response', async () => {
  const req = fx.signed({ method: 'POST', body: '{"echo":["a"]}', contentType: 'application/json' });
  const res = await fx.send(req);
  assertErrorResponse(res, 415, req, 'unsupported POST encoding');
});

itest(() => fx, 'echo: signed PUT → 405 error-response', async () => {
  const req = fx.signed({ method: 'PUT', body: 'echo=a', contentType: 'application/x-www-form-urlencoded' });
  const res = await fx.send(req);
  assertErrorResponse(res, 405, req, 'PUT on echo');
});

itest(() => fx, 'echo: signed DELETE → 405 error-response', async () => {
  const req = fx.signed({ method: 'DELETE' });
  const res = await fx.send(req);
  assertErrorResponse(res, 405, req, 'DELETE on echo');
});

itest(() => fx, 'echo: unknown path → 404 error-response', async () => {
  const req = fx.signed({ path: '/ewp/no-such-api' });
  const res = await fx.send(req);
  assertErrorResponse(res, 404, req, 'unknown path');
});

itest(() => fx, 'manifest (tls = off): served unsigned, official manifest.xsd valid, URLs built from the http public_url', async () => {
  const req = { method: 'GET', target: fx.manifestPath, headers: [['Host', fx.hostHeader]] };
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'manifest with tls = off');
  assertValid(res.body, specPath('ewp-specs-api-discovery', 'manifest.xsd'), 'manifest (tls = off)');
  const echoEntry = parseXml(res.body).descendants(NS.echoEntry, 'echo')[0];
  assert.equal(echoEntry?.element(NS.echoEntry, 'url')?.text.trim(), `${fx.publicUrl}/ewp/echo`, `echo url${exchange(req, res)}`);
});
