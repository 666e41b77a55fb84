// 7. Limits and request smuggling guards. Every refusal must be a 4xx (not
//    a crash, not a hang) and the next request must still be served.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Ewpd, itest } from './lib/daemon.mjs';
import { assertEcho, assertStatus, exchange, parseEcho } from './lib/ewp.mjs';
import { Connection, serializeRequest } from './lib/http.mjs';

let fx;
before(async () => { fx = await Ewpd.create('limits'); });
after(async () => { await fx?.cleanup(); });

async function stillServing(what) {
  assert.ok(fx.alive, `ewpd is not running any more (${what})`);
  await assertEcho(fx, ['next'], `next request after ${what}`);
}

// Sends bytes (possibly large) and waits for a response, like a careful
// client: written in 16 KiB pieces, yielding between them, and stopping as
// soon as the server answered or closed (a server refusing a request
// early may close before reading the rest; writing on would make our
// kernel drop its answer on the resulting RST). Returns { res, err }.
async function exchangeRaw(bytes, timeout = 15000) {
  const c = await Connection.open(fx.endpoint, { timeout });
  try {
    const p = c.send(Buffer.alloc(0), { timeout });
    let answered = false;
    p.then(() => { answered = true; }, () => { answered = true; });
    const CH = 16 * 1024;
    let written = 0;
    let writeErr = null;
    for (let off = 0; off < bytes.length && !c.closed && !answered && c.parser.buf.length === 0; off += CH) {
      try {
        await c.write(bytes.subarray(off, off + CH));
      } catch (e) {
        // the server answered and closed while we were still sending: its
        // answer, if it reached us before the reset, is read below
        writeErr = e;
        break;
      }
      written = off + CH;
      await sleep(1);
    }
    try {
      return { res: await p };
    } catch (err) {
      return { err, writeErr, partial: written < bytes.length };
    }
  } finally {
    c.close();
  }
}

function describe(r, what) {
  return r.res ? `${what}: got ${r.res.status}${exchange(null, r.res)}` : `${what}: no response (${r.err.message})`;
}

function assert4xx(r, what, allowed) {
  assert.ok(r.res, describe(r, what));
  const ok = allowed ? allowed.includes(r.res.status) : r.res.status >= 400 && r.res.status < 500;
  assert.ok(ok, `${describe(r, what)} — expected ${allowed ? allowed.join(' or ') : 'a 4xx'}`);
}

itest(() => fx, 'limits: header section > 64 KiB (one 70 KB header) → 4xx, next request OK', async () => {
  const req = fx.echoRequest(['big'], { extra: [['X-Big', 'a'.repeat(70 * 1024)]] });
  const r = await exchangeRaw(serializeRequest(req));
  assert4xx(r, 'huge header');
  await stillServing('a 70 KB header');
});

itest(() => fx, 'limits: header section > 64 KiB (many 1 KB headers) → 4xx, next request OK', async () => {
  const extra = [];
  for (let i = 0; i < 80; i++) extra.push([`X-Pad-${i}`, 'b'.repeat(1000)]);
  const req = fx.echoRequest(['big'], { extra });
  const r = await exchangeRaw(serializeRequest(req));
  assert4xx(r, '80 KB of headers');
  await stillServing('80 KB of headers');
});

itest(() => fx, 'limits: 200 header lines → 4xx, next request OK', async () => {
  const extra = [];
  for (let i = 0; i < 200; i++) extra.push([`X-H${i}`, 'v']);
  const req = fx.echoRequest(['many'], { extra });
  const r = await exchangeRaw(serializeRequest(req));
  assert4xx(r, '200 headers');
  await stillServing('200 header lines');
});

itest(() => fx, 'limits: signed POST with a body > 4 MiB → 413 (or 4xx), next request OK', async () => {
  const body = Buffer.concat([Buffer.from('echo='), Buffer.alloc(5 * 1024 * 1024, 0x61)]);
  const req = fx.signed({ method: 'POST', body, contentType: 'application/x-www-form-urlencoded' });
  const r = await exchangeRaw(serializeRequest(req), 20000);
  if (!r.res && r.partial && ['EPIPE', 'ECONNRESET'].includes((r.writeErr || r.err).code)) {
    // Refused before the body was sent: the 413 can be lost in the TCP
    // reset that closing an unread connection causes. Still a refusal.
    console.log(`note: 5 MiB body refused by closing the connection (${(r.writeErr || r.err).code}) mid-body`);
    await stillServing('a 5 MiB body');
    return;
  }
  assert4xx(r, '5 MiB body');
  if (r.res.status !== 413) {
    // Accepted by the brief, but say so in the output.
    console.log(`note: 5 MiB body refused with ${r.res.status} rather than 413`);
  }
  await stillServing('a 5 MiB body');
});

itest(() => fx, 'limits: a body of exactly 1 MiB is accepted (no over-tight limit)', async () => {
  const body = Buffer.concat([Buffer.from('echo='), Buffer.alloc(1024 * 1024 - 5, 0x61)]);
  const req = fx.signed({ method: 'POST', body, contentType: 'application/x-www-form-urlencoded' });
  const res = await fx.send(req, { timeout: 20000 });
  assertStatus(res, 200, { ...req, body: Buffer.from('[1 MiB]') }, '1 MiB body');
  const e = parseEcho(res, req);
  assert.equal(e.echoes.length, 1);
  assert.equal(e.echoes[0].length, 1024 * 1024 - 5);
});

itest(() => fx, 'limits: Transfer-Encoding: chunked together with Content-Length → 400, next request OK', async () => {
  const body = 'echo=a';
  const req = fx.signed({ method: 'POST', body, contentType: 'application/x-www-form-urlencoded' });
  const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  req.headers.push(['Transfer-Encoding', 'chunked']);
  const bytes = serializeRequest({ ...req, body: chunked });
  const r = await exchangeRaw(bytes);
  assert4xx(r, 'Transfer-Encoding + Content-Length', [400]);
  await stillServing('TE + CL');
});

itest(() => fx, 'limits: two different Content-Length headers → 400, next request OK', async () => {
  const body = 'echo=a&echo=b';
  const req = fx.signed({ method: 'POST', body, contentType: 'application/x-www-form-urlencoded' });
  req.headers.push(['Content-Length', '6']);
  const r = await exchangeRaw(serializeRequest(req));
  assert4xx(r, 'two Content-Length headers', [400]);
  await stillServing('duplicate Content-Length');
});

itest(() => fx, 'limits: garbage request line → 400 (or connection closed), ewpd keeps serving', async () => {
  const r = await exchangeRaw(Buffer.from('\x16\x03\x01 NOT HTTP AT ALL\r\n\r\n'), 5000);
  if (r.res) assert.ok(r.res.status >= 400 && r.res.status < 500, describe(r, 'garbage'));
  await stillServing('a garbage request line');
});

itest(() => fx, 'limits: 50 connections opened and dropped at once do not disturb ewpd', async () => {
  const conns = await Promise.all(Array.from({ length: 50 }, () => Connection.open(fx.endpoint)));
  // half send a partial request first
  await Promise.all(conns.slice(0, 25).map((c) => c.write(Buffer.from(`GET /ewp/echo HTTP/1.1\r\nHost: ${fx.hostHeader}\r\n`))));
  for (const c of conns) c.close();
  await stillServing('50 dropped connections');
});
