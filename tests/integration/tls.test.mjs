// 6. TLS mode: tls = on with a self-signed certificate for localhost;
//    public_url https://localhost:PORT.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Ewpd, PARTNER_HEI, itest } from './lib/daemon.mjs';
import { NS, specPath } from './lib/env.mjs';
import { assertEcho, assertStatus, exchange, parseEcho } from './lib/ewp.mjs';
import { verifyResponse } from './lib/sign.mjs';
import { assertValid, parseXml } from './lib/xml.mjs';

let fx;
before(async () => { fx = await Ewpd.create('tls', { tls: true }); });
after(async () => { await fx?.cleanup(); });

async function healthyEcho(what) {
  await assertEcho(fx, ['still-alive'], what);
  assert.ok(fx.alive, `ewpd died (${what})`);
}

itest(() => fx, 'tls: signed echo over HTTPS (certificate as CA, Host localhost:PORT) → 200, signed response', async () => {
  const req = fx.echoRequest(['a', 'b'], { acceptSignature: 'rsa-sha256' });
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'echo over TLS');
  const e = parseEcho(res, req);
  assert.deepEqual(e.heiIds, [PARTNER_HEI]);
  assert.deepEqual(e.echoes, ['a', 'b']);
  try { verifyResponse(res, req, fx.serverKey); } catch (err) { assert.fail(`${err.message}${exchange(req, res)}`); }
});

itest(() => fx, 'tls: manifest over HTTPS has https URLs and validates against the official manifest.xsd', async () => {
  const req = { method: 'GET', target: fx.manifestPath, headers: [['Host', fx.hostHeader]] };
  const res = await fx.send(req);
  assertStatus(res, 200, req);
  assertValid(res.body, specPath('ewp-specs-api-discovery', 'manifest.xsd'), 'manifest (TLS mode)');
  const echo = parseXml(res.body).descendants(NS.echoEntry, 'echo')[0];
  assert.equal(echo?.element(NS.echoEntry, 'url')?.text.trim(), `https://localhost:${fx.port}/ewp/echo`, `echo url${exchange(req, res)}`);
});

itest(() => fx, 'tls: keep-alive — several requests on one TLS connection', async () => {
  const c = await fx.connect();
  try {
    for (let i = 0; i < 5; i++) {
      const req = fx.echoRequest([`k${i}`]);
      const res = await c.request(req);
      assertStatus(res, 200, req, `request ${i} on one TLS connection`);
      assert.deepEqual(parseEcho(res, req).echoes, [`k${i}`]);
    }
  } finally {
    c.close();
  }
});

itest(() => fx, 'tls: a plain-HTTP request to the TLS port fails without crashing ewpd', async () => {
  const got = await new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: fx.port }, () => {
      s.write(`GET /ewp/echo?echo=a HTTP/1.1\r\nHost: ${fx.hostHeader}\r\n\r\n`);
    });
    let data = Buffer.alloc(0);
    s.on('data', (d) => { data = Buffer.concat([data, d]); });
    s.on('error', () => {});
    s.on('close', () => resolve(data));
    s.setTimeout(5000, () => s.destroy());
  });
  assert.ok(!got.toString('latin1').startsWith('HTTP/1.1 200'), 'a plain HTTP request must not be served on the TLS port');
  await healthyEcho('after a plain-HTTP request on the TLS port');
});

itest(() => fx, 'tls: clients resetting mid-handshake (RST after a partial ClientHello, or 0-9 ms into a real handshake) do not crash ewpd', async () => {
  // 1. Partial ClientHello, then RST.
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: fx.port }, () => {
        // TLS record header: handshake, TLS 1.0 record version, length 512, then a few bytes.
        s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
        setTimeout(() => { s.resetAndDestroy(); resolve(); }, 5);
      });
      s.on('error', () => resolve());
    });
  }
  // 2. Real handshake start, RST 0-9 ms later (various handshake stages).
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => {
      const raw = net.connect({ host: '127.0.0.1', port: fx.port }, () => {
        const t = tls.connect({ socket: raw, servername: 'localhost', rejectUnauthorized: false });
        t.on('error', () => {});
        setTimeout(() => { raw.resetAndDestroy(); resolve(); }, i);
      });
      raw.on('error', () => resolve());
    });
  }
  // 3. Connections that close right after connect.
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: fx.port }, () => { s.resetAndDestroy(); resolve(); });
      s.on('error', () => resolve());
    });
  }
  await sleep(100);
  await healthyEcho('after mid-handshake resets');
});

itest(() => fx, 'tls: a client with an untrusted CA fails, ewpd keeps serving', async () => {
  // A handshake refusing ewpd's self-signed certificate must not disturb it.
  const outcome = await new Promise((resolve) => {
    const t = tls.connect({ host: '127.0.0.1', port: fx.port, servername: 'localhost' }); // system CAs only
    t.on('error', (e) => resolve(`error ${e.code}`));
    t.on('secureConnect', () => { t.destroy(); resolve('connected'); });
  });
  assert.notEqual(outcome, 'connected', 'a self-signed certificate must not be trusted by a client without our CA');
  await healthyEcho('after a client refused the certificate');
});
