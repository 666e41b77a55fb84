// 10. SIGTERM: graceful drain. Each test starts its own ewpd (drain_timeout
//     = 5s), since SIGTERM ends it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Ewpd } from './lib/daemon.mjs';
import { exchange, parseEcho } from './lib/ewp.mjs';
import { portOpen, serializeRequest } from './lib/http.mjs';

const DRAIN_MS = 5000;

async function withNode(name, opts, fn) {
  const fx = await Ewpd.create(name, opts);
  try {
    await fn(fx);
  } catch (e) {
    try { e.message += `\n--- ewpd log (${fx.logPath}) ---\n${fx.log(0, 6000)}`; } catch { /* frozen */ }
    throw e;
  } finally {
    await fx.cleanup();
  }
}

test('shutdown: SIGTERM under load → exit 0 within drain_timeout + 2 s, no truncated response, port closed', { timeout: 40000 }, async () => {
  await withNode('sigterm-load', { workers: 2 }, async (fx) => {
    const truncated = [];
    const wrong = [];
    let answered = 0;
    let refused = 0;
    let stop = false;
    const client = async (k) => {
      let conn = null;
      for (let i = 0; !stop && i < 10000; i++) {
        try {
          if (!conn || conn.closed) conn = await fx.connect();
        } catch {
          refused++;
          return; // listener closed: expected once draining
        }
        const req = fx.echoRequest([`t${k}-${i}`], i % 2 ? { method: 'POST' } : {});
        try {
          const res = await conn.request(req);
          answered++;
          if (res.status === 200) {
            const e = parseEcho(res, req);
            if (e.echoes.join() !== `t${k}-${i}`) wrong.push(`echo ${JSON.stringify(e.echoes)} for t${k}-${i}`);
          } else if (res.status !== 503) {
            wrong.push(`HTTP ${res.status}${exchange(req, res)}`);
          }
          if (/close/i.test(res.header('Connection') || '')) conn.close();
        } catch (e) {
          if (e.partial) truncated.push(`client ${k} request ${i}: ${e.message}`);
          conn.close();
          conn = null;
        }
      }
      conn?.close();
    };
    const clients = Array.from({ length: 4 }, (_, k) => client(k));
    await sleep(500);
    const answeredBefore = answered;
    fx.signal('SIGTERM');
    const ex = await fx.waitExit(DRAIN_MS + 2000);
    stop = true;
    await Promise.all(clients);
    assert.ok(answeredBefore > 0, 'no request had been answered before SIGTERM (test too short?)');
    assert.ok(ex, `ewpd did not exit within drain_timeout + 2 s = ${DRAIN_MS + 2000} ms after SIGTERM`);
    assert.equal(ex.signal, null, `ewpd was killed by signal ${ex.signal}`);
    assert.equal(ex.code, 0, `ewpd exit status after SIGTERM should be 0, got ${ex.code}`);
    assert.deepEqual(truncated, [], `responses cut in the middle during shutdown (${answered} answered):\n${truncated.join('\n')}`);
    assert.deepEqual(wrong, [], `wrong answers during shutdown:\n${wrong.slice(0, 3).join('\n')}`);
    assert.equal(await portOpen(fx.port), false, `port ${fx.port} still accepts connections after exit`);
    console.log(`SIGTERM under load: ${answered} answered (${answeredBefore} before SIGTERM), ${refused} refused connects, exit after ${ex.ms} ms`);
  });
});

test('shutdown: a request in flight at SIGTERM (half of its body sent) is still answered, then exit 0', { timeout: 40000 }, async () => {
  await withNode('sigterm-inflight', { workers: 1 }, async (fx) => {
    const body = 'echo=first-half&echo=second-half';
    const req = fx.echoRequest(['first-half', 'second-half'], { method: 'POST' });
    const bytes = serializeRequest(req);
    const cut = bytes.length - Math.floor(body.length / 2);
    const conn = await fx.connect({ timeout: DRAIN_MS + 3000 });
    try {
      const t0 = Date.now();
      let closedAt = null;
      const pending = conn.send(Buffer.alloc(0), { timeout: DRAIN_MS + 3000 })
        .then((res) => ({ res }), (err) => { closedAt = Date.now() - t0; return { err }; });
      await conn.write(bytes.subarray(0, cut));
      await sleep(200);
      const tTerm = Date.now() - t0;
      fx.signal('SIGTERM');
      await sleep(700);
      assert.ok(fx.alive, 'ewpd exited at once although a request was in flight (drain_timeout = 5s)');
      assert.equal(closedAt, null, `ewpd closed the connection of the in-flight request ${closedAt - tTerm} ms after SIGTERM ` +
        `(first ${cut} of ${bytes.length} request bytes sent before SIGTERM, rest 700 ms after)`);
      await conn.write(bytes.subarray(cut));
      const { res, err } = await pending;
      assert.ok(res, `in-flight request not answered: ${err?.message}`);
      assert.equal(res.status, 200, `in-flight request should complete with 200${exchange(req, res)}`);
      assert.deepEqual(parseEcho(res, req).echoes, ['first-half', 'second-half']);
    } finally {
      conn.close();
    }
    const ex = await fx.waitExit(DRAIN_MS + 2000);
    assert.ok(ex, 'ewpd did not exit within drain_timeout + 2 s after the in-flight request finished');
    assert.equal(ex.code, 0, `exit status ${ex.code} (signal ${ex.signal})`);
    assert.equal(await portOpen(fx.port), false, 'port still open after exit');
  });
});

test('shutdown: an idle keep-alive connection does not hold ewpd past drain_timeout', { timeout: 40000 }, async () => {
  await withNode('sigterm-idle', { workers: 1 }, async (fx) => {
    const conn = await fx.connect();
    try {
      const req = fx.echoRequest(['idle']);
      const res = await conn.request(req);
      assert.equal(res.status, 200, `first request${exchange(req, res)}`);
      const t0 = Date.now();
      fx.signal('SIGTERM');
      const ex = await fx.waitExit(DRAIN_MS + 2000);
      assert.ok(ex, `ewpd still running ${Date.now() - t0} ms after SIGTERM with one idle keep-alive connection`);
      assert.equal(ex.code, 0, `exit status ${ex.code} (signal ${ex.signal})`);
    } finally {
      conn.close();
    }
  });
});
