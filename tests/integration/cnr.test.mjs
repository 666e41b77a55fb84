// Change-notification listeners: Outgoing Mobility CNR v1 and v2 and
// Outgoing Mobility LA CNR v1.1. A valid notification is answered at once
// with the empty document and leaves one pending, deduplicated re-fetch
// job per distinct id in ewp.jobs; malformed or unauthorised ones get a
// precise 4xx; the EWP validator's HEIs are answered but never queued; a
// database outage is a 503 (the notifier retries), never a crash.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { D_HEIS, Ewpd, HEI_ID, PARTNER_HEI, itest } from './lib/daemon.mjs';
import { assertErrorResponse, assertStatus, assertXmlContentType, exchange, fetchMetrics, metricValue } from './lib/ewp.mjs';
import { NS, projectSchema, specPath } from './lib/env.mjs';
import { pollUntil } from './lib/poll.mjs';
import { makeKey } from './lib/sign.mjs';
import { assertValid, parseXml } from './lib/xml.mjs';

const GH = 'https://github.com/erasmus-without-paper';
const REG_SCHEMAS = ['ewp-registry-service', 'src', 'main', 'resources', 'schemas'];
const VALIDATOR_HEI = 'validator-hei01.developers.erasmuswithoutpaper.eu';
const MAX_IDS = 100;
const NS_SEC = `${GH}/ewp-specs-sec-intro/tree/stable-v2`;

// The three listeners: path, response, schemas, manifest entry, job API.
const APIS = {
  v1: {
    path: '/ewp/omobility-cnr/v1', name: 'omobility-cnr', version: '1.0.0', sendingHei: true, sendingHeiOptional: true,
    root: 'omobility-cnr-response', ns: `${GH}/ewp-specs-api-omobility-cnr/tree/stable-v1`,
    entryNs: `${GH}/ewp-specs-api-omobility-cnr/blob/stable-v1/manifest-entry.xsd`,
    official: () => specPath('ewp-specs-api-omobility-cnr', 'response.xsd'),
    officialEntry: () => specPath('ewp-specs-api-omobility-cnr', 'manifest-entry.xsd'),
    project: 'omobility-cnr-v1-response.xsd', fetchApi: 'omobilities',
  },
  v2: {
    path: '/ewp/omobility-cnr/v2', name: 'omobility-cnr', version: '2.0.0', sendingHei: false,
    root: 'omobility-cnr-response', ns: `${GH}/ewp-specs-api-omobility-cnr/tree/stable-v2`,
    entryNs: `${GH}/ewp-specs-api-omobility-cnr/blob/stable-v2/manifest-entry.xsd`,
    official: () => specPath(...REG_SCHEMAS, 'ewp-specs-api-omobility-cnr-v2.0.0', 'response.xsd'),
    officialEntry: () => specPath(...REG_SCHEMAS, 'ewp-specs-api-omobility-cnr-v2.0.0', 'manifest-entry.xsd'),
    project: 'omobility-cnr-v2-response.xsd', fetchApi: 'omobilities',
  },
  la: {
    path: '/ewp/omobility-la-cnr', name: 'omobility-la-cnr', version: '1.1.0', sendingHei: true,
    root: 'omobility-la-cnr-response', ns: `${GH}/ewp-specs-api-omobility-la-cnr/tree/stable-v1`,
    entryNs: `${GH}/ewp-specs-api-omobility-la-cnr/blob/stable-v1/manifest-entry.xsd`,
    official: () => specPath('ewp-specs-api-omobility-la-cnr', 'response.xsd'),
    officialEntry: () => specPath('ewp-specs-api-omobility-la-cnr', 'manifest-entry.xsd'),
    project: 'omobility-la-cnr-response.xsd', fetchApi: 'omobility-las',
  },
};

let fx;
let validatorKey;
before(async () => {
  // TLS, so that the manifest's URLs are https as the schemas require.
  fx = await Ewpd.create('cnr', { pg: true, tls: true, start: false });
  validatorKey = makeKey();
  fx.extraHosts.push({ adminEmail: 'admin@developers.erasmuswithoutpaper.eu', heis: [VALIDATOR_HEI], clientKeys: [validatorKey] });
  fx.extraInstitutions.push({ id: VALIDATOR_HEI, names: [['en', 'EWP validator HEI 1']] });
  fx.writeCatalogue();
  // The 'refetch' kind now runs these jobs (omobilities-fetch.test.mjs
  // follows them into the core). This file is about the listeners and
  // what they leave in the queue, so ewpd's runner is kept from claiming
  // refetch jobs here: a trigger turns its claim (pending -> running,
  // leased by host:pid) into a no-op, and the jobs stay as the listener
  // wrote them. The last test lifts it.
  fx.pg.psql(`CREATE FUNCTION ewp.test_hold_refetch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
    CREATE TRIGGER test_hold_refetch BEFORE UPDATE ON ewp.jobs FOR EACH ROW
      WHEN (OLD.status = 'pending' AND NEW.status = 'running' AND OLD.kind = 'refetch' AND NEW.leased_by NOT LIKE 'test:%')
      EXECUTE FUNCTION ewp.test_hold_refetch()`);
  await fx.start();
});
after(async () => { await fx?.cleanup(); });

let seq = 0;
// A fresh id per test, so that tests do not see each other's jobs.
const freshId = (tag) => `${tag}-${process.pid}-${++seq}`;

function form(params) {
  return params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

function cnrRequest(api, params, o = {}) {
  return fx.signed({ method: 'POST', path: api.path, body: form(params), contentType: 'application/x-www-form-urlencoded', ...o });
}

// The parameters of a well-formed notification by the partner.
function params(api, ids, sendingHei = PARTNER_HEI) {
  return [...(api.sendingHei ? [['sending_hei_id', sendingHei]] : []), ...ids.map((id) => ['omobility_id', id])];
}

// Sends; expects 200 with the empty document, valid against both schemas.
async function notify(api, ps, o = {}) {
  const req = cnrRequest(api, ps, o);
  const res = await fx.send(req);
  assertStatus(res, 200, req, `${api.path} notification`);
  assertXmlContentType(res, req);
  assertValid(res.body, api.official(), `${api.root} (official)`);
  assertValid(res.body, projectSchema(api.project), `${api.root} (ewp-schemas)`);
  const root = parseXml(res.body);
  assert.equal(root.local, api.root, `root element${exchange(req, res)}`);
  assert.equal(root.ns, api.ns, `root namespace${exchange(req, res)}`);
  assert.equal(root.elements().length, 0, `the response must be empty${exchange(req, res)}`);
  return { req, res };
}

function jobs(fetchApi, ids) {
  const list = ids.map((i) => `'${i.replace(/'/g, "''")}'`).join(',');
  const out = fx.pg.psql(`SELECT coalesce(json_agg(j ORDER BY j.id), '[]') FROM (
      SELECT id, direction, kind, hei_id, api, dedupe_key, payload, status, attempts,
             next_attempt_at <= now() AS due, finished_at IS NULL AS open
        FROM ewp.jobs WHERE api = '${fetchApi}' AND dedupe_key IN (${list})) j`);
  return JSON.parse(out);
}

for (const [key, api] of Object.entries(APIS)) {
  itest(() => fx, `cnr ${key}: valid notification → 200 empty ${api.root}, one pending 'in' refetch job with the right columns`, async () => {
    const id = freshId(key);
    const { req } = await notify(api, params(api, [id]));
    const js = jobs(api.fetchApi, [id]);
    assert.equal(js.length, 1, `one job for ${id}: ${JSON.stringify(js)}`);
    const j = js[0];
    assert.equal(j.direction, 'in');
    assert.equal(j.kind, 'refetch');
    assert.equal(j.hei_id, PARTNER_HEI);
    assert.equal(j.api, api.fetchApi);
    assert.equal(j.dedupe_key, id);
    assert.equal(j.status, 'pending');
    assert.equal(j.attempts, 0);
    assert.equal(j.due, true, 'due at once');
    assert.equal(j.open, true);
    assert.deepEqual(j.payload, {
      omobility_id: id,
      sending_hei_id: api.sendingHei ? PARTNER_HEI : null,
      notifier_hei_ids: [PARTNER_HEI],
      cnr_api: api.name,
      cnr_version: api.version,
      cnr_request_id: req.requestId,
    });
  });

  itest(() => fx, `cnr ${key}: the same id notified three times → still one pending job`, async () => {
    const id = freshId(key);
    for (let i = 0; i < 3; i++) await notify(api, params(api, [id]));
    const js = jobs(api.fetchApi, [id]);
    assert.equal(js.length, 1, `dedup: ${JSON.stringify(js)}`);
    assert.equal(js[0].status, 'pending');
  });

  itest(() => fx, `cnr ${key}: several ids with duplicates, some never heard of → 200, one job per distinct id`, async () => {
    const [a, b, c] = [freshId(key), freshId(key), freshId(key)];
    await notify(api, params(api, [a, b, a, c, b, a]));
    const js = jobs(api.fetchApi, [a, b, c]);
    assert.deepEqual(js.map((j) => j.dedupe_key), [a, b, c], `jobs in request order: ${JSON.stringify(js)}`);
    assert.ok(js.every((j) => j.status === 'pending' && j.hei_id === PARTNER_HEI));
  });

  itest(() => fx, `cnr ${key}: omobility_id missing → 400 naming it, nothing queued`, async () => {
    const before = Number(fx.pg.psql('SELECT count(*) FROM ewp.jobs'));
    for (const ps of [params(api, []), []]) {
      const req = cnrRequest(api, ps);
      const res = await fx.send(req);
      const msg = assertErrorResponse(res, 400, req, 'no omobility_id');
      // with no parameter at all, an API needing sending_hei_id names it first
      assert.match(msg, api.sendingHei && !api.sendingHeiOptional && ps.length === 0 ? /sending_hei_id/ : /omobility_id is required/);
    }
    assert.equal(Number(fx.pg.psql('SELECT count(*) FROM ewp.jobs')), before);
  });

  itest(() => fx, `cnr ${key}: malformed omobility_id (empty, 65 characters, space) → 400`, async () => {
    for (const bad of ['', 'x'.repeat(65), 'a b']) {
      const req = cnrRequest(api, params(api, [freshId(key), bad]));
      const res = await fx.send(req);
      const msg = assertErrorResponse(res, 400, req, `omobility_id ${JSON.stringify(bad)}`);
      assert.match(msg, /omobility_id number 2 is not an EWP identifier/);
    }
  });

  itest(() => fx, `cnr ${key}: ${MAX_IDS} distinct ids → 200; ${MAX_IDS + 1} → 400 max-omobility-ids`, async () => {
    const ids = Array.from({ length: MAX_IDS }, () => freshId(key));
    await notify(api, params(api, [...ids, ...ids.slice(0, 10)]));
    assert.equal(jobs(api.fetchApi, ids).length, MAX_IDS);
    const more = [...Array.from({ length: MAX_IDS }, () => freshId(key)), freshId(key)];
    const req = cnrRequest(api, params(api, more));
    const res = await fx.send(req);
    assert.match(assertErrorResponse(res, 400, req, 'too many ids'), new RegExp(`max-omobility-ids \\(${MAX_IDS}\\)`));
    assert.equal(jobs(api.fetchApi, more).length, 0, 'nothing queued for a refused notification');
  });

  itest(() => fx, `cnr ${key}: GET, PUT → 405 with Allow: POST; unsigned → 401; form type wrong → 415`, async () => {
    for (const method of ['GET', 'PUT']) {
      const req = fx.signed({ method, path: `${api.path}?${form(params(api, [freshId(key)]))}` });
      const res = await fx.send(req);
      assertErrorResponse(res, 405, req, method);
      assert.equal(res.header('Allow'), 'POST', `Allow header${exchange(req, res)}`);
    }
    const body = form(params(api, [freshId(key)]));
    const anon = { method: 'POST', target: api.path, headers: [['Host', fx.hostHeader],
      ['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', String(body.length)]], body: Buffer.from(body) };
    assertErrorResponse(await fx.send(anon), 401, anon, 'unsigned');
    const req = fx.signed({ method: 'POST', path: api.path, body, contentType: 'text/plain' });
    assertErrorResponse(await fx.send(req), 415, req, 'text/plain body');
  });

  itest(() => fx, `cnr ${key}: the EWP validator's HEI → 200, no job`, async () => {
    const id = freshId(key);
    await notify(api, params(api, [id], VALIDATOR_HEI), { key: validatorKey });
    assert.equal(jobs(api.fetchApi, [id]).length, 0, 'validator notifications never reach the queue');
  });

  itest(() => fx, `cnr ${key}: the incoming notification is in ewp.message_log as ${api.name} ${api.version}`, async () => {
    const { req } = await notify(api, params(api, [freshId(key)]));
    const row = await pollUntil(async () => {
      const out = fx.pg.psql(`SELECT row_to_json(r) FROM (SELECT direction, method, api, api_version, status, partner_hei_ids
          FROM ewp.message_log WHERE request_id = '${req.requestId}') r`);
      return { ok: out !== '', value: out && JSON.parse(out), detail: 'no row yet' };
    }, 5000, 'the message_log row');
    assert.deepEqual(row.value, { direction: 'in', method: 'POST', api: api.name, api_version: api.version, status: 200, partner_hei_ids: [PARTNER_HEI] });
  });
}

for (const key of ['v1', 'la']) {
  const api = APIS[key];
  itest(() => fx, `cnr ${key}: sending_hei_id missing, repeated or malformed → 400`, async () => {
    const id = freshId(key);
    const cases = [
      // v1: the validator leaves it out (see the next test); the LA CNR requires it
      ...(key === 'la' ? [[[['omobility_id', id]], /sending_hei_id is required exactly once \(got 0\)/]] : []),
      [[['sending_hei_id', PARTNER_HEI], ['sending_hei_id', PARTNER_HEI], ['omobility_id', id]], /exactly once \(got 2\)/],
      [[['sending_hei_id', ''], ['omobility_id', id]], /sending_hei_id is not an EWP identifier/],
    ];
    for (const [ps, re] of cases) {
      const req = cnrRequest(api, ps);
      const res = await fx.send(req);
      assert.match(assertErrorResponse(res, 400, req, 'sending_hei_id'), re);
    }
    assert.equal(jobs(api.fetchApi, [id]).length, 0);
  });

  itest(() => fx, `cnr ${key}: a caller notifying for an HEI its key does not cover → 403, nothing queued`, async () => {
    const id = freshId(key);
    for (const hei of [HEI_ID, 'nowhere.example.org']) {
      const req = cnrRequest(api, params(api, [id], hei));
      const res = await fx.send(req);
      const msg = assertErrorResponse(res, 403, req, `sending_hei_id ${hei}`);
      assert.match(msg, new RegExp(`does not cover sending_hei_id "${hei.replace(/\./g, '\\.')}"`));
    }
    assert.equal(jobs(api.fetchApi, [id]).length, 0);
  });

  itest(() => fx, `cnr ${key}: a key covering several HEIs may notify for each; the job names the one given`, async () => {
    const id = freshId(key);
    await notify(api, params(api, [id], D_HEIS[1]), { key: fx.dKey });
    const js = jobs(api.fetchApi, [id]);
    assert.equal(js.length, 1);
    assert.equal(js[0].hei_id, D_HEIS[1]);
    assert.equal(js[0].payload.sending_hei_id, D_HEIS[1]);
  });
}

itest(() => fx, 'cnr v2: no sending_hei_id; a key covering several HEIs → the job goes to the smallest, all named in the payload', async () => {
  const id = freshId('v2');
  await notify(APIS.v2, [['omobility_id', id]], { key: fx.dKey });
  const js = jobs('omobilities', [id]);
  assert.equal(js.length, 1);
  assert.equal(js[0].hei_id, [...D_HEIS].sort()[0]);
  assert.deepEqual([...js[0].payload.notifier_hei_ids].sort(), [...D_HEIS].sort(), 'each HEI once');
  assert.equal(js[0].payload.sending_hei_id, null);
});

itest(() => fx, 'cnr: the same id by v1, v2 and LA CNR → one omobilities job (v1 and v2 share it) and one omobility-las job', async () => {
  const id = freshId('mix');
  await notify(APIS.v1, params(APIS.v1, [id]));
  await notify(APIS.v2, params(APIS.v2, [id]));
  await notify(APIS.la, params(APIS.la, [id]));
  assert.equal(jobs('omobilities', [id]).length, 1);
  assert.equal(jobs('omobility-las', [id]).length, 1);
});

itest(() => fx, 'cnr: a job already running does not absorb a new notification (a change during a fetch is fetched again)', async () => {
  const id = freshId('running');
  await notify(APIS.la, params(APIS.la, [id]));
  fx.pg.psql(`UPDATE ewp.jobs SET status = 'running', lease_until = now() + interval '1 minute', leased_by = 'test:1'
               WHERE api = 'omobility-las' AND dedupe_key = '${id}'`);
  await notify(APIS.la, params(APIS.la, [id]));
  const js = jobs('omobility-las', [id]);
  assert.deepEqual(js.map((j) => j.status), ['running', 'pending']);
});

itest(() => fx, 'cnr: manifest lists the three entries (url, max-omobility-ids, httpsig), valid against the official and project schemas', async () => {
  const req = { method: 'GET', target: fx.manifestPath, headers: [['Host', fx.hostHeader]] };
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'manifest');
  assertValid(res.body, specPath('ewp-specs-api-discovery', 'manifest.xsd'), 'manifest (official)');
  assertValid(res.body, projectSchema('manifest.xsd'), 'manifest (ewp-schemas)');
  const apis = parseXml(res.body).element(NS.manifest, 'host').element(NS.registry, 'apis-implemented');
  for (const api of Object.values(APIS)) {
    const entries = apis.elements(api.entryNs, api.name);
    assert.equal(entries.length, 1, `one ${api.name} ${api.version} entry${exchange(req, res)}`);
    const e = entries[0];
    assert.equal(e.attr('version'), api.version);
    assert.equal(e.element(api.entryNs, 'url').text, `${fx.publicUrl}${api.path}`);
    assert.equal(e.element(api.entryNs, 'max-omobility-ids').text, String(MAX_IDS));
    // OLA CNR's stats endpoint: omobility-la-cnr-stats.test.mjs
    assert.deepEqual(e.elements(api.entryNs, 'stats-url').map((u) => u.text),
      api === APIS.la ? [`${fx.publicUrl}${api.path}/stats`] : [], 'stats-url');
    assert.ok(e.element(api.entryNs, 'http-security'), 'http-security');
  }
  // Each entry, cut out as a document of its own, passes the official
  // manifest-entry.xsd of its API (the manifest schemas check them laxly).
  const text = res.body.toString('utf8');
  for (const api of Object.values(APIS)) {
    const open = `<${api.name} xmlns="${api.entryNs}"`;
    const from = text.indexOf(open);
    assert.ok(from >= 0, `${api.name} ${api.version} entry in the manifest text`);
    const to = text.indexOf(`</${api.name}>`, from) + api.name.length + 3;
    const doc = `<?xml version="1.0" encoding="UTF-8"?>\n${open} xmlns:sec="${NS_SEC}"${text.slice(from + open.length, to)}`;
    assertValid(Buffer.from(doc), api.officialEntry(), `${api.name} ${api.version} entry (official manifest-entry.xsd)`);
  }
});

itest(() => fx, 'cnr: metrics count the listeners under their own API labels', async () => {
  await notify(APIS.v2, params(APIS.v2, [freshId('m')]));
  await notify(APIS.la, params(APIS.la, [freshId('m')]));
  const { samples } = await fetchMetrics(fx);
  assert.ok(metricValue(samples, 'ewpd_requests_total', { api: 'omobility-cnr', status: '200' }) >= 1);
  assert.ok(metricValue(samples, 'ewpd_requests_total', { api: 'omobility-la-cnr', status: '200' }) >= 1);
});

itest(() => fx, 'cnr: database down → 503 error-response (the notifier retries), ewpd stays up; the validator still gets 200; back → 200 and queued', async () => {
  const id = freshId('outage');
  fx.pg.halt();
  try {
    const r = await pollUntil(async () => {
      const req = cnrRequest(APIS.v1, params(APIS.v1, [id]));
      const res = await fx.send(req);
      return { ok: res.status === 503, req, res, detail: `status ${res.status}` };
    }, 10000, 'a 503 once the database is down');
    assert.match(assertErrorResponse(r.res, 503, r.req, 'database down'), /database unavailable/);
    assert.ok(fx.alive, 'ewpd must stay up');
    await notify(APIS.v1, params(APIS.v1, [id], VALIDATOR_HEI), { key: validatorKey });
  } finally {
    fx.pg.resume();
  }
  await pollUntil(async () => {
    const res = await fx.send(cnrRequest(APIS.v1, params(APIS.v1, [id])));
    return { ok: res.status === 200, detail: `status ${res.status}` };
  }, 15000, 'a 200 once the database is back');
  assert.equal(jobs('omobilities', [id]).length, 1);
  assert.ok(fx.alive);
}, { timeout: 60000 });

itest(() => fx, 'cnr v1: without sending_hei_id (as the Registry validator sends it) → 200, the job goes to the caller\'s HEI', async () => {
  const id = freshId('v1');
  await notify(APIS.v1, [['omobility_id', id]]);
  const js = jobs(APIS.v1.fetchApi, [id]);
  assert.equal(js.length, 1);
  assert.equal(js[0].hei_id, PARTNER_HEI);
  assert.equal(js[0].payload.sending_hei_id, null);
});

itest(() => fx, 'cnr: once claimed, the queued jobs run: refetches of a partner publishing neither OMobilities v3 nor OMobility LAs end no-cnr-api at the first attempt', async () => {
  const id = freshId('run');
  await notify(APIS.v1, params(APIS.v1, [id]));
  await notify(APIS.la, params(APIS.la, [id]));
  assert.equal(jobs('omobilities', [id])[0].status, 'pending', 'held until now');
  fx.pg.psql('DROP TRIGGER test_hold_refetch ON ewp.jobs');
  const done = await pollUntil(async () => {
    const js = [...jobs('omobilities', [id]), ...jobs('omobility-las', [id])];
    return { ok: js.length === 2 && js.every((j) => !j.open), js, detail: JSON.stringify(js) };
  }, 15000, 'both jobs finished');
  const [om, la] = done.js;
  assert.equal(om.status, 'no-cnr-api', JSON.stringify(om));
  assert.equal(om.attempts, 1);
  assert.equal(la.status, 'no-cnr-api', JSON.stringify(la));
  assert.equal(la.attempts, 1);
});
