// 9. SIGHUP: reload under load without dropping a request, catalogue and
//    configuration reloads, and bad files on reload keeping the old state.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Ewpd, ewpctlKey, itest } from './lib/daemon.mjs';
import { NS } from './lib/env.mjs';
import { assertStatus, exchange, parseEcho, pollEchoOk } from './lib/ewp.mjs';
import { pollUntil } from './lib/poll.mjs';
import { makeKey } from './lib/sign.mjs';
import { parseXml } from './lib/xml.mjs';

let fx;
before(async () => { fx = await Ewpd.create('reload', { workers: 2 }); });
after(async () => { await fx?.cleanup(); });

async function manifestNames() {
  const res = await fx.get(fx.manifestPath);
  if (res.status !== 200) return { res, names: [] };
  const hei = parseXml(res.body).descendants(NS.registry, 'hei')[0];
  return { res, names: hei ? hei.elements(NS.registry, 'name').map((n) => n.text.trim()) : [] };
}

itest(() => fx, 'reload: 400 signed echoes from 8 keep-alive clients over ~4 s, 3 SIGHUPs meanwhile → all 200, no connection error', async () => {
  const CLIENTS = 8;
  const PER = 50;
  const SPAN = 4000;
  const pid = fx.proc.pid;
  const errors = [];
  const wrong = [];
  let ok = 0;
  let idleCloses = 0;
  let closeHeaders = 0;
  const t0 = Date.now() + 100;
  const client = async (k) => {
    let conn = await fx.connect();
    try {
      for (let i = 0; i < PER; i++) {
        const at = t0 + (i * SPAN) / PER + k * 7;
        const wait = at - Date.now();
        if (wait > 0) await sleep(wait);
        if (conn.closed) {
          // The server closed this idle keep-alive connection before we sent
          // anything on it: reconnecting is what any HTTP client does.
          idleCloses++;
          conn = await fx.connect();
        }
        const req = fx.echoRequest([`c${k}-${i}`]);
        let res;
        try {
          res = await conn.request(req);
        } catch (e) {
          errors.push(`client ${k} request ${i} at +${Date.now() - t0} ms: ${e.message}`);
          conn.close();
          try { conn = await fx.connect(); } catch (e2) { errors.push(`client ${k} reconnect: ${e2.message}`); return; }
          continue;
        }
        if (res.status !== 200) {
          wrong.push(`client ${k} request ${i}: HTTP ${res.status}${exchange(req, res)}`);
        } else {
          const e = parseEcho(res, req);
          if (e.echoes.join() !== `c${k}-${i}`) wrong.push(`client ${k} request ${i}: echo ${JSON.stringify(e.echoes)}`);
          else ok++;
        }
        if (/close/i.test(res.header('Connection') || '')) {
          closeHeaders++;
          conn.close();
          conn = await fx.connect();
        }
      }
    } finally {
      conn.close();
    }
  };
  const hups = (async () => {
    for (let i = 1; i <= 3; i++) {
      await sleep(Math.max(0, t0 + i * 1000 - Date.now()));
      fx.signal('SIGHUP');
    }
  })();
  await Promise.all([...Array.from({ length: CLIENTS }, (_, k) => client(k)), hups]);
  const summary = `${ok} ok, ${errors.length} connection errors, ${wrong.length} wrong answers, ` +
    `${idleCloses} idle keep-alive closes, ${closeHeaders} Connection: close`;
  console.log(`reload under load: ${summary}`);
  assert.equal(errors.length, 0, `connection errors during SIGHUP reloads (${summary}):\n${errors.slice(0, 10).join('\n')}`);
  assert.equal(wrong.length, 0, `wrong answers during SIGHUP reloads (${summary}):\n${wrong.slice(0, 3).join('\n')}`);
  assert.equal(ok, CLIENTS * PER, summary);
  assert.ok(fx.alive && fx.proc.pid === pid, 'the master process must survive SIGHUP');
});

itest(() => fx, 'reload: a key added to the catalogue file is accepted after SIGHUP', async () => {
  const newKey = makeKey();
  const r0 = fx.echoRequest(['before'], { key: newKey });
  const res0 = await fx.send(r0);
  assertStatus(res0, 403, r0, 'the new key before the catalogue change');
  fx.extraHosts.push({ adminEmail: 'admin@new.example.org', heis: ['new.example.org'], clientKeys: [newKey] });
  fx.extraInstitutions.push({ id: 'new.example.org', names: [['en', 'New University']] });
  fx.writeCatalogue();
  fx.signal('SIGHUP');
  const last = await pollEchoOk(fx, ['after'], { key: newKey }, 'a 200 for the new key after SIGHUP');
  assert.deepEqual(parseEcho(last.res, last.req).heiIds, ['new.example.org']);
  // and the old partner still works (on both workers: several connections)
  for (let i = 0; i < 6; i++) {
    const req = fx.echoRequest([`old${i}`]);
    assertStatus(await fx.send(req), 200, req, 'old partner after catalogue reload');
    const reqN = fx.echoRequest([`new${i}`], { key: newKey });
    const resN = await fx.send(reqN);
    assertStatus(resN, 200, reqN, 'new key on every worker after catalogue reload');
  }
});

itest(() => fx, 'reload: hei_name changed in the config → manifest shows the new name after SIGHUP', async () => {
  const name = 'Université Rechargée après SIGHUP';
  const { names: before0 } = await manifestNames();
  assert.ok(!before0.includes(name));
  fx.writeConfig({ ewp: { hei_name: name } });
  fx.signal('SIGHUP');
  await pollUntil(async () => {
    const { res, names } = await manifestNames();
    return { ok: names.includes(name), detail: `names ${JSON.stringify(names)}${exchange(null, res)}` };
  }, 5000, `hei_name "${name}" in the manifest`);
  // every worker serves the new manifest
  for (let i = 0; i < 6; i++) {
    const { names } = await manifestNames();
    assert.ok(names.includes(name), `a worker still serves the old manifest: ${JSON.stringify(names)}`);
  }
});

itest(() => fx, 'reload: a broken catalogue on SIGHUP is refused, the old one stays in use', async () => {
  fs.writeFileSync(fx.cataloguePath, '<catalogue xmlns="nope"><host>broken');
  fx.signal('SIGHUP');
  await sleep(1000);
  assert.ok(fx.alive, 'ewpd must survive a broken catalogue on reload');
  for (let i = 0; i < 4; i++) {
    const req = fx.echoRequest([`still${i}`]);
    const res = await fx.send(req);
    assertStatus(res, 200, req, 'partner after a broken catalogue reload');
  }
  fx.writeCatalogue();
});

itest(() => fx, 'reload: a broken config on SIGHUP is refused, ewpd keeps running with the old one', async () => {
  const good = fs.readFileSync(fx.confPath, 'utf8');
  fs.writeFileSync(fx.confPath, `${good}\n[ewp]\nno_such_key = 1\n`);
  fx.signal('SIGHUP');
  await sleep(1000);
  assert.ok(fx.alive, 'ewpd must survive a broken configuration on reload');
  const req = fx.echoRequest(['still']);
  assertStatus(await fx.send(req), 200, req, 'echo after a refused configuration reload');
  const { names } = await manifestNames();
  assert.ok(names.includes(fx.conf.ewp.hei_name), `the last good configuration stays in force: ${JSON.stringify(names)}`);
  fs.writeFileSync(fx.confPath, good);
});

itest(() => fx, 'reload: key rotation — keys listed in publish_client/publish_server appear in the manifest beside the keys in use', async () => {
  const newClient = ewpctlKey(fx.keysDir, 'client-next');
  const newServer = ewpctlKey(fx.keysDir, 'server-next');
  fx.writeConfig({ keys: { publish_client: 'client-next.pem.pub', publish_server: 'server-next.pem.pub' } });
  fx.signal('SIGHUP');
  const keysIn = (res, what) => {
    const host = parseXml(res.body).element(NS.manifest, 'host');
    const el = host.element(NS.manifest, what);
    return el ? el.elements(NS.manifest, 'rsa-public-key').map((k) => k.text.replace(/\s+/g, '')) : [];
  };
  await pollUntil(async () => {
    const res = await fx.get(fx.manifestPath);
    const cli = keysIn(res, 'client-credentials-in-use');
    const srv = keysIn(res, 'server-credentials-in-use');
    const ok = JSON.stringify(cli) === JSON.stringify([fx.clientKey.b64, newClient.b64]) &&
      JSON.stringify(srv) === JSON.stringify([fx.serverKey.b64, newServer.b64]);
    return { ok, detail: `client keys ${cli.length}, server keys ${srv.length}${exchange(null, res)}` };
  }, 5000, 'both the keys in use and the published ones in the manifest');
  // A published key that cannot be read makes the reload fail as a whole.
  fx.writeConfig({ keys: { publish_client: 'missing.pem.pub', publish_server: '' } });
  const from = fx.logSize();
  fx.signal('SIGHUP');
  await sleep(800);
  assert.match(fx.log(from), /reload refused.*missing\.pem\.pub/, 'the refused reload names the unreadable key');
  const res = await fx.get(fx.manifestPath);
  assert.equal(keysIn(res, 'client-credentials-in-use').length, 2, 'the running manifest is kept');
  fx.writeConfig({ keys: { publish_client: '', publish_server: '' } });
  fx.signal('SIGHUP');
});
