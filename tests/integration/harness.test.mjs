// Self-checks of the test harness (no daemon needed): our signer and
// response verifier agree with the independent npm `http-signature`
// implementation, the catalogue we write is valid, and the XML reader
// reads the official examples. If these fail, the other files' results
// mean nothing.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { test } from 'node:test';
import httpSignature from 'http-signature';

import { buildCatalogue } from './lib/catalogue.mjs';
import { NS, specPath } from './lib/env.mjs';
import { HttpResponse } from './lib/http.mjs';
import { digestHeader, makeKey, signRequest, verifyResponse } from './lib/sign.mjs';
import { assertValid, parseXml } from './lib/xml.mjs';

const key = makeKey();

test('harness: keyId of the catalogue example key matches the EWP test vector', () => {
  const vec = fs.readFileSync(specPath('test-vectors', 'ewp-key-fingerprint.txt'), 'utf8');
  const cat = parseXml(fs.readFileSync(specPath('ewp-specs-api-registry', 'catalogue-example.xml')));
  const bin = cat.element(NS.registry, 'binaries').element(NS.registry, 'rsa-public-key');
  const der = Buffer.from(bin.text.replace(/\s+/g, ''), 'base64');
  const id = crypto.createHash('sha256').update(der).digest('hex');
  assert.equal(id, '5531f9a02c44a894d0b706961259fec740ad4ae8a3555871f1a5cd9801285bd4');
  assert.ok(vec.includes(id), 'test vector file should contain the computed keyId');
  assert.equal(bin.attr('sha-256'), id);
});

test('harness: our request signer is verified by npm http-signature', () => {
  const body = 'echo=a&echo=b&echo=a';
  const req = signRequest({ method: 'POST', path: '/ewp/echo', host: '127.0.0.1:9', key, body,
    contentType: 'application/x-www-form-urlencoded' });
  const headers = {};
  for (const [n, v] of req.headers) headers[n.toLowerCase()] = v;
  assert.equal(headers.digest, digestHeader(Buffer.from(body)));
  assert.match(headers['x-request-id'], /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.match(headers.date, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  const parsed = httpSignature.parseRequest({ headers, method: 'POST', url: '/ewp/echo', httpVersion: '1.1' },
    { headers: ['(request-target)', 'host', 'date', 'digest', 'x-request-id'] });
  assert.equal(parsed.keyId, key.keyId);
  assert.equal(parsed.signingString, req.signingString);
  assert.ok(httpSignature.verifySignature(parsed, key.publicPem), 'http-signature must verify our signature');
});

test('harness: our response verifier accepts a response signed by npm http-signature', () => {
  const serverKey = makeKey();
  const req = signRequest({ method: 'GET', path: '/ewp/echo?echo=x', host: 'h:1', key });
  const body = Buffer.from('<response xmlns="x"/>');
  const headers = [['Date', new Date().toUTCString()], ['Digest', digestHeader(body)],
    ['X-Request-Id', req.requestId], ['X-Request-Signature', req.signature], ['Content-Type', 'text/xml']];
  const fake = {
    method: 'GET', path: '/ewp/echo?echo=x',
    getHeader: (n) => headers.find(([k]) => k.toLowerCase() === n.toLowerCase())?.[1],
    setHeader: (n, v) => headers.push([n, v]),
  };
  httpSignature.sign(fake, { key: serverKey.privatePem, keyId: serverKey.keyId, algorithm: 'rsa-sha256',
    authorizationHeaderName: 'Signature',
    headers: ['(request-target)', 'date', 'digest', 'x-request-id', 'x-request-signature'] });
  const res = new HttpResponse(200, 'OK', headers, body, 'HTTP/1.1 200 OK');
  verifyResponse(res, req, serverKey);
  // And a tampered one is refused.
  const bad = new HttpResponse(200, 'OK', headers, Buffer.from('<response xmlns="y"/>'), 'HTTP/1.1 200 OK');
  assert.throws(() => verifyResponse(bad, req, serverKey), /Digest/);
});

test('harness: the catalogue we write validates against the official catalogue.xsd', () => {
  const k2 = makeKey();
  const xml = buildCatalogue({
    hosts: [
      { heis: ['smile.test'], clientKeys: [key], serverKeys: [k2], echoUrl: 'https://x/ewp/echo', discoveryUrl: 'https://x/m.xml' },
      { heis: ['a.example.org', 'b.example.org'], clientKeys: [k2] },
    ],
    institutions: [{ id: 'smile.test', otherIds: [['pic', '1']], names: [['fr', 'Test'], ['en', 'Test']] }],
  });
  assertValid(xml, specPath('ewp-specs-api-registry', 'catalogue.xsd'), 'generated catalogue');
  const root = parseXml(xml);
  assert.equal(root.elements(NS.registry, 'host').length, 2);
});

test('harness: the XML reader reads the official manifest example', () => {
  const root = parseXml(fs.readFileSync(specPath('ewp-specs-api-discovery', 'manifest-example.xml')));
  assert.equal(root.ns, NS.manifest);
  const host = root.element(NS.manifest, 'host');
  const echo = host.descendants(NS.echoEntry, 'echo')[0];
  assert.equal(echo.attr('version'), '2.0.0');
  assert.equal(echo.element(NS.echoEntry, 'url').text, 'https://example.com/ewp/echo');
  const hei = host.descendants(NS.registry, 'hei')[0];
  assert.equal(hei.attr('id'), 'uw.edu.pl');
  assert.equal(hei.element(NS.registry, 'name').attr('lang', NS.xml), 'en');
});
