// The EWP message log: every exchange a partner has with ewpd lands in
// ewp.message_log with what an admin needs when a partner complains
// (who, which API, status, request id, headers and bodies as they went,
// the developer-message of a refusal). Rows are written in batches after
// the reply, so the tests poll for them.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { Ewpd, HEI_ID, PARTNER_HEI, describeRun, itest, runEwpctl } from './lib/daemon.mjs';
import { assertStatus } from './lib/ewp.mjs';
import { pollUntil } from './lib/poll.mjs';

let fx;
before(async () => {
  fx = await Ewpd.create('message-log', { pg: true, workers: 2, conf: { log: { message_body_max: '300' } } });
  fx.pg.psql(`INSERT INTO smile.etablissement (schac_id, names, is_local)
                VALUES ('${HEI_ID}', '[{"lang":"fr","name":"Université de Test"}]', true)`);
});
after(async () => { await fx?.cleanup(); });

// The row of one request id, once it is written.
async function rowOf(requestId, what) {
  let row;
  await pollUntil(async () => {
    const out = fx.pg.psql(`SELECT row_to_json(r) FROM (
        SELECT direction, method, url, partner_hei_ids, api, api_version, status, duration_ms, request_id,
               key_id, request_headers, response_headers,
               convert_from(request_body, 'UTF8') AS request_body, request_bytes,
               convert_from(response_body, 'UTF8') AS response_body, response_bytes,
               validation, error, created_at <= now() AS past
        FROM ewp.message_log WHERE request_id = '${requestId}') r`);
    if (out) row = JSON.parse(out);
    return { ok: Boolean(out), detail: 'no row' };
  }, 5000, `message log row of ${what}`);
  return row;
}

const header = (list, name) => list.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);

itest(() => fx, 'message log: a signed Institutions GET → one "in" row with caller HEI, API, version, status, ids, headers and bodies', async () => {
  const req = fx.signed({ path: `/ewp/institutions?hei_id=${HEI_ID}`, acceptSignature: 'rsa-sha256' });
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'institutions');
  const row = await rowOf(req.requestId, 'institutions GET');
  assert.equal(row.direction, 'in');
  assert.equal(row.method, 'GET');
  assert.equal(row.url, `/ewp/institutions?hei_id=${HEI_ID}`);
  assert.deepEqual(row.partner_hei_ids, [PARTNER_HEI], 'the HEIs covered by the caller key');
  assert.equal(row.api, 'institutions');
  assert.match(row.api_version, /^2\.\d+\.\d+$/);
  assert.equal(row.status, 200);
  assert.ok(row.duration_ms >= 0 && row.past);
  assert.match(row.key_id, /^[0-9a-f]{64}$/);
  // every header as received, the unsigned ones included
  assert.deepEqual(header(row.request_headers, 'Authorization').length, 1);
  assert.deepEqual(header(row.request_headers, 'X-Request-Id'), [req.requestId]);
  assert.deepEqual(header(row.request_headers, 'Accept-Signature'), ['rsa-sha256']);
  // the response headers we sent, signature included
  assert.equal(header(row.response_headers, 'Signature').length, 1, JSON.stringify(row.response_headers));
  assert.deepEqual(header(row.response_headers, 'X-Request-Id'), [req.requestId]);
  // body cut at message_body_max = 300, its real size kept
  assert.equal(row.response_bytes, Buffer.byteLength(res.body));
  assert.ok(row.response_bytes > 300, 'response longer than the cap');
  assert.equal(row.response_body, res.body.toString().slice(0, 300));
  assert.equal(row.request_body, null);
  assert.equal(row.request_bytes, 0);
  assert.equal(row.error, null);
});

itest(() => fx, 'message log: a POST keeps its form body; a refused signature keeps the developer-message', async () => {
  const body = `hei_id=${HEI_ID}&hei_id=unknown.example.org`;
  let req = fx.signed({ method: 'POST', path: '/ewp/institutions', body, contentType: 'application/x-www-form-urlencoded' });
  let res = await fx.send(req);
  assertStatus(res, 200, req, 'POST');
  let row = await rowOf(req.requestId, 'institutions POST');
  assert.equal(row.method, 'POST');
  assert.equal(row.request_body, body);
  assert.equal(row.request_bytes, body.length);

  req = fx.signed({ path: '/ewp/echo', key: fx.unknownKey });
  res = await fx.send(req);
  assert.equal(res.status, 403);
  row = await rowOf(req.requestId, 'unknown key');
  assert.equal(row.status, 403);
  assert.equal(row.api, 'echo');
  assert.deepEqual(row.partner_hei_ids, [], 'nobody authenticated');
  assert.match(row.error, /key/i, 'why it was refused');
  assert.match(res.body.toString(), new RegExp(row.error.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
});

itest(() => fx, 'message log: unknown path → row without API; /healthz and /metrics are not EWP exchanges', async () => {
  const req = fx.signed({ path: '/ewp/nowhere' });
  const res = await fx.send(req);
  assert.equal(res.status, 404);
  const row = await rowOf(req.requestId, '404');
  assert.equal(row.api, null);
  assert.equal(row.status, 404);
  const before = Number(fx.pg.psql('SELECT count(*) FROM ewp.message_log'));
  for (const p of ['/healthz', '/metrics']) assert.equal((await fx.get(p)).status, 200);
  // a later EWP request is written after them: if they were logged they would be there too
  const last = fx.signed({ path: '/ewp/echo' });
  await fx.send(last);
  await rowOf(last.requestId, 'echo after healthz');
  assert.equal(Number(fx.pg.psql('SELECT count(*) FROM ewp.message_log')), before + 1);
});

itest(() => fx, 'message log: headers and bodies that are not UTF-8 are stored (bytes kept in the body, U+FFFD in headers)', async () => {
  const body = Buffer.concat([Buffer.from('echo=caf'), Buffer.from([0xe9, 0xff, 0x00]), Buffer.from('&echo=x')]);
  const req = fx.signed({ method: 'POST', path: '/ewp/echo', body, contentType: 'application/x-www-form-urlencoded',
    extra: [['X-Note', Buffer.from([0x61, 0xe9, 0x62]).toString('latin1')]] });
  const res = await fx.send(req);
  assert.ok(res.status === 200 || res.status === 400, `status ${res.status}`);
  await pollUntil(() => {
    const n = Number(fx.pg.psql(`SELECT count(*) FROM ewp.message_log WHERE request_id = '${req.requestId}'`));
    return { ok: n === 1, detail: `${n} rows` };
  }, 5000, 'row of the non-UTF-8 request');
  const noted = JSON.parse(fx.pg.psql(`SELECT request_headers FROM ewp.message_log WHERE request_id = '${req.requestId}'`));
  assert.deepEqual(header(noted, 'X-Note'), ['a\ufffdb']);
  const stored = fx.pg.psql(`SELECT encode(request_body, 'hex') FROM ewp.message_log WHERE request_id = '${req.requestId}'`);
  assert.equal(stored, body.toString('hex'), 'request body bytes as sent');
});

itest(() => fx, 'message log: 300 requests over 2 workers → 300 rows; metrics count them; PostgreSQL away → kept and written after', async () => {
  const ids = [];
  for (let i = 0; i < 30; i++) {
    const batch = Array.from({ length: 10 }, () => fx.signed({ path: '/ewp/echo?echo=load' }));
    ids.push(...batch.map((r) => r.requestId));
    const res = await Promise.all(batch.map((r) => fx.send(r)));
    for (const r of res) assert.equal(r.status, 200);
  }
  const list = ids.map((i) => `'${i}'`).join(',');
  await pollUntil(() => {
    const n = Number(fx.pg.psql(`SELECT count(*) FROM ewp.message_log WHERE request_id IN (${list})`));
    return { ok: n === 300, detail: `${n} rows` };
  }, 10000, '300 rows');
  const metrics = (await fx.get('/metrics')).body.toString();
  const written = Number(/^ewpd_message_log_rows_total (\d+)/m.exec(metrics)[1]);
  assert.ok(written >= 300, `rows metric ${written}`);

  // Echo needs no database: it answers while PostgreSQL is stopped, its rows wait.
  fx.pg.halt();
  const during = [];
  try {
    for (let i = 0; i < 5; i++) {
      const r = fx.signed({ path: '/ewp/echo?echo=outage' });
      during.push(r.requestId);
      assert.equal((await fx.send(r)).status, 200);
    }
  } finally {
    fx.pg.resume();
  }
  for (const id of during) await rowOf(id, 'request made during the outage');
  const dropped = Number(/^ewpd_message_log_dropped_total (\d+)/m.exec((await fx.get('/metrics')).body.toString())[1]);
  assert.equal(dropped, 0);
}, { timeout: 60000 });

itest(() => fx, 'message log: rows older than [log] message_retention are deleted by one worker, recent ones kept', async () => {
  const ins = (age, rid) => fx.pg.psql(`INSERT INTO ewp.message_log (created_at, direction, method, url, request_id)
    VALUES (now() - interval '${age}', 'in', 'GET', '/ewp/echo', '${rid}')`);
  ins('40 days', 'retention-old-1');
  ins('31 days', 'retention-old-2');
  ins('29 days', 'retention-recent');
  fx.writeConfig({ log: { message_retention: '30d' } });
  fx.signal('SIGHUP');
  await pollUntil(() => {
    const left = fx.pg.psql(`SELECT string_agg(request_id, ',' ORDER BY request_id) FROM ewp.message_log
      WHERE request_id LIKE 'retention-%'`);
    return { ok: left === 'retention-recent', detail: left };
  }, 15000, 'old rows deleted');
  assert.match(fx.log(), /message log: 2 rows older than 2592000s deleted/);
});

itest(() => fx, 'ewpctl log: search by partner, API, status class, request id, text; show one exchange with headers and XML indented', async () => {
  const ok = fx.signed({ path: `/ewp/institutions?hei_id=${HEI_ID}` });
  assertStatus(await fx.send(ok), 200, ok, 'institutions');
  const bad = fx.signed({ path: '/ewp/institutions' });
  assert.equal((await fx.send(bad)).status, 400);
  await rowOf(ok.requestId, 'the 200');
  await rowOf(bad.requestId, 'the 400');
  const ctl = (...args) => runEwpctl(['-c', fx.confPath, 'log', ...args, '--conninfo', fx.pg.conninfo]);

  let r = ctl('--partner', PARTNER_HEI, '--api', 'institutions', '--limit', '1000');
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /^ID\s+TIME\s+DIR\s+METHOD\s+STATUS/);
  assert.ok(r.stdout.includes(ok.requestId) && r.stdout.includes(bad.requestId), r.stdout);
  assert.ok(!/\becho\b/.test(r.stdout), 'only institutions rows');
  r = ctl('--status', '4xx', '--since', '1h', '--limit', '1000');
  assert.ok(r.stdout.includes(bad.requestId) && !r.stdout.includes(ok.requestId), r.stdout);
  r = ctl('--failed', '--grep', 'HEI_ID IS REQUIRED');
  assert.ok(r.stdout.includes(bad.requestId), `case-insensitive text search\n${r.stdout}`);
  r = ctl('--request-id', ok.requestId);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 2, r.stdout);
  const id = lines[1].split(/\s+/)[0];

  r = runEwpctl(['-c', fx.confPath, 'log', 'show', id, '--conninfo', fx.pg.conninfo]);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, new RegExp(`^exchange ${id}, received, `));
  assert.match(r.stdout, new RegExp(`GET /ewp/institutions\\?hei_id=${HEI_ID.replace('.', '\\.')}`));
  assert.match(r.stdout, /^ {2}status: {6}200 in \d+ ms$/m);
  assert.match(r.stdout, new RegExp(`^ {2}X-Request-Id: ${ok.requestId}$`, 'm'));
  assert.match(r.stdout, /^request body: none$/m);
  // body cut at message_body_max (300 bytes): shown as text, not parsed
  assert.match(r.stdout, /^response body \(\d+ bytes, cut in the log\):$/m);

  r = runEwpctl(['-c', fx.confPath, 'log', 'show', '999999999', '--conninfo', fx.pg.conninfo]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no exchange 999999999 in the message log/);
  r = ctl('--status', 'bad');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--status wants a status \(404\) or a class \(5xx\)/);
});

itest(() => fx, 'ewpctl log show: a whole XML body is indented', async () => {
  fx.writeConfig({ log: { message_body_max: '65536' } });
  fx.signal('SIGHUP');
  // both workers reloaded: an answer is then logged whole
  let id;
  await pollUntil(async () => {
    const req = fx.signed({ path: '/ewp/echo?echo=one&echo=two' });
    assertStatus(await fx.send(req), 200, req, 'echo');
    await rowOf(req.requestId, 'echo');
    id = fx.pg.psql(`SELECT id FROM ewp.message_log WHERE request_id = '${req.requestId}'
      AND octet_length(response_body) = response_bytes`);
    return { ok: id !== '', detail: 'body still cut' };
  }, 5000, 'whole bodies after the reload');
  const r = runEwpctl(['-c', fx.confPath, 'log', 'show', id, '--conninfo', fx.pg.conninfo]);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stdout, /^response body \(\d+ bytes\):\n<\?xml version="1\.0" encoding="UTF-8"\?>\n<response [^>]*>\n {2}<hei-id>/m, r.stdout);
  assert.match(r.stdout, /^ {2}<echo>one<\/echo>\n {2}<echo>two<\/echo>$/m);
});

itest(() => fx, 'ewpctl log: escape sequences sent by anyone are shown inert, never passed to the terminal', async () => {
  const evil = '\x1b]0;pwned\x07\x1b[2J\x1b[31mRED\xc2\x9b';
  const res = await fx.get('/nothing-here', [['X-Request-Id', evil], ['X-Evil', evil]]);
  assert.equal(res.status, 404);
  await pollUntil(() => {
    const n = Number(fx.pg.psql("SELECT count(*) FROM ewp.message_log WHERE url = '/nothing-here'"));
    return { ok: n === 1, detail: `${n} rows` };
  }, 5000, 'the 404 row');
  const id = fx.pg.psql("SELECT id FROM ewp.message_log WHERE url = '/nothing-here'");
  for (const args of [['log', '--limit', '3'], ['log', 'show', id]]) {
    const r = runEwpctl(['-c', fx.confPath, ...args, '--conninfo', fx.pg.conninfo]);
    assert.equal(r.status, 0, describeRun(r));
    assert.ok(!/[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]/.test(r.stdout), `control characters reach the terminal: ${JSON.stringify(r.stdout)}`);
    assert.match(r.stdout, /\?\]0;pwned\?\?\[2J\?\[31mRED/, r.stdout);
  }
});

itest(() => fx, 'message log: what nobody authenticated keeps 1 KiB of each body at most', async () => {
  const body = 'x'.repeat(5000);
  const res = await fx.send({ method: 'POST', target: '/ewp/echo', body,
    headers: [['Host', fx.hostHeader], ['X-Request-Id', 'anon-5000'], ['Content-Type', 'application/x-www-form-urlencoded'],
      ['Content-Length', String(body.length)]] });
  assert.equal(res.status, 401);
  await rowOf('anon-5000', 'the anonymous POST');
  assert.equal(fx.pg.psql("SELECT octet_length(request_body) || '|' || request_bytes FROM ewp.message_log WHERE request_id = 'anon-5000'"),
    '1024|5000');
});
