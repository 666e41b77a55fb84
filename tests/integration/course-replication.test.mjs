// Simple Course Replication v1 served from the SMILE core: the local HEI's
// exchange-student catalogue (courses open to mobility), the validator's
// modified_since cases (ewp-notes 10.3), both methods, schema validity, and
// nothing ever answered for another HEI.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { Ewpd, HEI_ID, PARTNER_HEI, itest } from './lib/daemon.mjs';
import { assertErrorResponse, assertStatus, assertXmlContentType, exchange } from './lib/ewp.mjs';
import { NS, projectSchema, specPath } from './lib/env.mjs';
import { assertValid, parseXml } from './lib/xml.mjs';

const NS_CR = 'https://github.com/erasmus-without-paper/ewp-specs-api-course-replication/tree/stable-v1';
const NS_CR_ENTRY = 'https://github.com/erasmus-without-paper/ewp-specs-api-course-replication/blob/stable-v1/manifest-entry.xsd';
const PATH = '/ewp/course-replication';

let fx;
const id = {};
before(async () => {
  fx = await Ewpd.create('course-replication', { pg: true, tls: true });
  fx.pg.psql(`
    INSERT INTO smile.etablissement (schac_id, names, is_local) VALUES ('${HEI_ID}', '[{"name":"SMILE Test University"}]', true);
    INSERT INTO smile.etablissement (schac_id, names) VALUES ('${PARTNER_HEI}', '[{"name":"Partner University"}]');
    INSERT INTO smile.formation (code, title) VALUES ('F-OPEN', 'Open programme');
    INSERT INTO smile.formation (code, title, open_to_mobility) VALUES ('F-CLOSED', 'Closed programme', false);
    INSERT INTO smile.cours (code, title, formation_id) SELECT 'C-OLD', 'Old course', id FROM smile.formation WHERE code = 'F-OPEN';
    INSERT INTO smile.cours (code, title, formation_id) SELECT 'C-NEW', 'New course', id FROM smile.formation WHERE code = 'F-OPEN';
    INSERT INTO smile.cours (code, title, open_to_mobility, formation_id) SELECT 'C-SHUT', 'Not for exchange', false, id FROM smile.formation WHERE code = 'F-OPEN';
    INSERT INTO smile.cours (code, title, formation_id) SELECT 'C-INCLOSED', 'In a closed programme', id FROM smile.formation WHERE code = 'F-CLOSED';
    INSERT INTO smile.cours (code, title) VALUES ('C-LOOSE', 'Without programme');
    ALTER TABLE smile.cours DISABLE TRIGGER cours_modified_at;
    ALTER TABLE smile.formation DISABLE TRIGGER formation_modified_at;
    UPDATE smile.formation SET modified_at = '2020-01-01T00:00:00Z';
    UPDATE smile.cours SET modified_at = '2020-06-01T00:00:00Z';
    UPDATE smile.cours SET modified_at = '2024-06-01T00:00:00Z' WHERE code IN ('C-NEW', 'C-SHUT');
    ALTER TABLE smile.cours ENABLE TRIGGER cours_modified_at;
    ALTER TABLE smile.formation ENABLE TRIGGER formation_modified_at;
  `);
  for (const line of fx.pg.psql('SELECT code, id FROM smile.cours').split('\n')) {
    const [code, key] = line.split('|');
    id[code] = `CR/${key}`;
  }
});
after(async () => { await fx?.cleanup(); });

function crRequest(params, method = 'GET') {
  const qs = params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  if (method === 'GET') return fx.signed({ path: qs ? `${PATH}?${qs}` : PATH });
  return fx.signed({ method: 'POST', path: PATH, body: qs, contentType: 'application/x-www-form-urlencoded' });
}

// Sends, checks 200 + both schemas; returns the los-ids.
async function replicate(params, method = 'GET') {
  const req = crRequest(params, method);
  const res = await fx.send(req);
  assertStatus(res, 200, req, `course-replication ${method}`);
  assertXmlContentType(res, req);
  assertValid(res.body, specPath('ewp-specs-api-course-replication', 'response.xsd'), 'course-replication response (official)');
  assertValid(res.body, projectSchema('course-replication-response.xsd'), 'course-replication response (ewp-schemas)');
  const root = parseXml(res.body);
  assert.equal(root.local, 'course-replication-response', `root element${exchange(req, res)}`);
  assert.equal(root.ns, NS_CR, `root namespace${exchange(req, res)}`);
  return { req, res, ids: root.elements(NS_CR, 'los-id').map((e) => e.text) };
}

for (const method of ['GET', 'POST']) {
  itest(() => fx, `course-replication: ${method} local hei_id → courses open to mobility in open programmes or none`, async () => {
    const r = await replicate([['hei_id', HEI_ID]], method);
    assert.deepEqual(r.ids, [id['C-OLD'], id['C-NEW'], id['C-LOOSE']], `catalogue${exchange(r.req, r.res)}`);
  });
}

itest(() => fx, 'course-replication: modified_since keeps what changed after it; future → empty; far past → all', async () => {
  let r = await replicate([['hei_id', HEI_ID], ['modified_since', '2023-01-01T00:00:00+01:00']]);
  assert.deepEqual(r.ids, [id['C-NEW']], `changed since 2023${exchange(r.req, r.res)}`);
  r = await replicate([['hei_id', HEI_ID], ['modified_since', '2020-03-01T12:30:00.5Z']], 'POST');
  assert.deepEqual(r.ids, [id['C-OLD'], id['C-NEW'], id['C-LOOSE']], `fractional seconds, Z${exchange(r.req, r.res)}`);
  r = await replicate([['hei_id', HEI_ID], ['modified_since', '2999-01-01T00:00:00Z']]);
  assert.deepEqual(r.ids, [], `future${exchange(r.req, r.res)}`);
  r = await replicate([['hei_id', HEI_ID], ['modified_since', '1970-01-01T00:00:00Z']]);
  assert.deepEqual(r.ids, [id['C-OLD'], id['C-NEW'], id['C-LOOSE']], `far past${exchange(r.req, r.res)}`);
  r = await replicate([['hei_id', HEI_ID], ['modified_since', '2023-01-01T00:00:00']]);
  assert.deepEqual(r.ids, [id['C-NEW']], `no time zone${exchange(r.req, r.res)}`);
});

itest(() => fx, 'course-replication: a programme changed after modified_since brings its courses back', async () => {
  fx.pg.psql(`UPDATE smile.formation SET title = 'Open programme (new title)' WHERE code = 'F-OPEN'`);
  try {
    const r = await replicate([['hei_id', HEI_ID], ['modified_since', '2023-01-01T00:00:00Z']]);
    assert.deepEqual(r.ids, [id['C-OLD'], id['C-NEW']], `programme touched${exchange(r.req, r.res)}`);
  } finally {
    fx.pg.psql(`ALTER TABLE smile.formation DISABLE TRIGGER formation_modified_at;
      UPDATE smile.formation SET modified_at = '2020-01-01T00:00:00Z';
      ALTER TABLE smile.formation ENABLE TRIGGER formation_modified_at;`);
  }
});

itest(() => fx, 'course-replication: parameter errors → 400 error-response (GET and POST)', async () => {
  const bad = [
    [[], 'no hei_id'],
    [[['hei_id', HEI_ID], ['hei_id', HEI_ID]], 'hei_id twice'],
    [[['hei_id', 'unknown.example.org']], 'unknown hei_id'],
    [[['hei_id', PARTNER_HEI]], 'another (non-local) HEI'],
    [[['hei_id', HEI_ID], ['modified_since', '2023-01-01']], 'modified_since date only'],
    [[['hei_id', HEI_ID], ['modified_since', 'yesterday']], 'modified_since wrong format'],
    [[['hei_id', HEI_ID], ['modified_since', '2023-02-30T00:00:00Z']], 'modified_since 30 February'],
    [[['hei_id', HEI_ID], ['modified_since', '2023-01-01T25:00:00Z']], 'modified_since hour 25'],
    [[['hei_id', HEI_ID], ['modified_since', '2023-01-01T00:00:00+0100']], 'modified_since offset without colon'],
    [[['hei_id', HEI_ID], ['modified_since', '']], 'modified_since empty'],
    [[['hei_id', HEI_ID], ['modified_since', '2023-01-01T00:00:00Z'], ['modified_since', '2023-01-01T00:00:00Z']],
      'modified_since repeated'],
  ];
  for (const method of ['GET', 'POST']) {
    for (const [params, what] of bad) {
      const req = crRequest(params, method);
      assertErrorResponse(await fx.send(req), 400, req, `${what} (${method})`);
    }
  }
});

itest(() => fx, 'course-replication: unsigned → 401, PUT → 405', async () => {
  let res = await fx.get(`${PATH}?hei_id=${HEI_ID}`);
  assertErrorResponse(res, 401, { method: 'GET', target: PATH }, 'anonymous');
  const req = fx.signed({ method: 'PUT', path: `${PATH}?hei_id=${HEI_ID}` });
  res = await fx.send(req);
  assertErrorResponse(res, 405, req, 'PUT');
});

itest(() => fx, 'course-replication: manifest entry (official and project schemas), signed only, modified_since supported', async () => {
  const req = { method: 'GET', target: fx.manifestPath, headers: [['Host', fx.hostHeader]] };
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'manifest');
  assertValid(res.body, specPath('ewp-specs-api-discovery', 'manifest.xsd'), 'manifest (official)');
  assertValid(res.body, projectSchema('manifest.xsd'), 'manifest (ewp-schemas)');
  const apis = parseXml(res.body).element(NS.manifest, 'host').element(NS.registry, 'apis-implemented');
  const e = apis.elements(NS_CR_ENTRY, 'simple-course-replication');
  assert.equal(e.length, 1, `one simple-course-replication entry${exchange(req, res)}`);
  assert.equal(e[0].attr('version'), '1.0.0');
  assert.equal(e[0].element(NS_CR_ENTRY, 'url').text, `${fx.publicUrl}${PATH}`);
  assert.equal(e[0].element(NS_CR_ENTRY, 'allows-anonymous-access').text, 'false');
  assert.equal(e[0].element(NS_CR_ENTRY, 'supports-modified-since').text, 'true');
});
