// Institutions API v2 served from the SMILE core (a throwaway PostgreSQL
// with the project migrations): the validator's parameter cases
// (ewp-notes 10.3), both methods, schema validity, and a database that
// goes away and comes back while ewpd keeps running.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before } from 'node:test';

import { Ewpd, HEI_ID, PARTNER_HEI, itest } from './lib/daemon.mjs';
import { assertErrorResponse, assertStatus, assertXmlContentType, exchange } from './lib/ewp.mjs';
import { projectSchema, specPath } from './lib/env.mjs';
import { pollUntil } from './lib/poll.mjs';
import { assertValid, parseXml } from './lib/xml.mjs';

const NS_INST = 'https://github.com/erasmus-without-paper/ewp-specs-api-institutions/tree/stable-v2';
const NS_ADDR = 'https://github.com/erasmus-without-paper/ewp-specs-types-address/tree/stable-v1';
const NS_CONTACT = 'https://github.com/erasmus-without-paper/ewp-specs-types-contact/tree/stable-v1';
const PATH = '/ewp/institutions';

let fx;
before(async () => {
  fx = await Ewpd.create('institutions', { pg: true });
  fx.pg.psql(`
    INSERT INTO smile.etablissement (schac_id, erasmus_code, pic, names, abbreviation, website_url, is_local)
      VALUES ('${HEI_ID}', 'F  SMILE01', '999888777',
              '[{"lang":"fr","name":"Université de Test <SMILE> & co"},{"lang":"en","name":"SMILE Test University"}]',
              'UTS', 'https://www.smile.test/', true);
    INSERT INTO smile.etablissement (schac_id, names) VALUES ('${PARTNER_HEI}', '[{"name":"Partner University"}]');
    INSERT INTO smile.address (etablissement_id, kind, recipient_names, street_name, building_number, postal_code, locality, country)
      SELECT id, 'street', '{"Service des relations internationales"}', 'Esplanade de la Paix', '1', '14032', 'Caen', 'FR'
      FROM smile.etablissement WHERE schac_id = '${HEI_ID}';
    INSERT INTO smile.address (etablissement_id, kind, lines, country)
      SELECT id, 'mailing', '{"BP 5186","14032 Caen Cedex 5"}', 'FR' FROM smile.etablissement WHERE schac_id = '${HEI_ID}';
    INSERT INTO smile.contact (etablissement_id, position, names, given_names, family_name, emails, phones, role_descriptions)
      SELECT id, 2, '[{"lang":"en","name":"Second contact"}]', NULL, NULL, '{}', '{}', NULL
      FROM smile.etablissement WHERE schac_id = '${HEI_ID}';
    INSERT INTO smile.contact (etablissement_id, position, names, given_names, family_name, emails, phones, role_descriptions)
      SELECT id, 1, '[{"lang":"fr","name":"Bureau des échanges"}]', 'Anne', 'Martin',
             '{"ri@smile.test","anne.martin@smile.test"}', '{"+33231000000"}', '[{"lang":"en","name":"Incoming students"}]'
      FROM smile.etablissement WHERE schac_id = '${HEI_ID}';
    INSERT INTO smile.composante (etablissement_id, ounit_id, code, names)
      SELECT id, 'ou-sci', 'SCI', '[{"lang":"en","name":"Faculty of Science"}]' FROM smile.etablissement WHERE schac_id = '${HEI_ID}';
    INSERT INTO smile.composante (etablissement_id, ounit_id, code, names, is_exposed)
      SELECT id, 'ou-hidden', 'HID', '[{"lang":"en","name":"Hidden"}]', false FROM smile.etablissement WHERE schac_id = '${HEI_ID}';
    INSERT INTO smile.composante (etablissement_id, ounit_id, code, names)
      SELECT id, 'ou-partner', 'PSCI', '[{"lang":"en","name":"Partner Science"}]' FROM smile.etablissement WHERE schac_id = '${PARTNER_HEI}';
  `);
});
after(async () => { await fx?.cleanup(); });

function instRequest(ids, method = 'GET') {
  const qs = ids.map((v) => `hei_id=${encodeURIComponent(v)}`).join('&');
  if (method === 'GET') return fx.signed({ path: qs ? `${PATH}?${qs}` : PATH });
  return fx.signed({ method: 'POST', path: PATH, body: qs, contentType: 'application/x-www-form-urlencoded' });
}

// Sends, checks 200 + both schemas; returns the <hei> elements.
async function institutions(ids, method = 'GET') {
  const req = instRequest(ids, method);
  const res = await fx.send(req);
  assertStatus(res, 200, req, `institutions ${method}`);
  assertXmlContentType(res, req);
  assertValid(res.body, specPath('ewp-specs-api-institutions', 'response.xsd'), 'institutions response (official)');
  assertValid(res.body, projectSchema('institutions-response.xsd'), 'institutions response (ewp-schemas)');
  assertValid(res.body, projectSchema('intake/institutions-response.xsd'), 'institutions response (what a syncing ewpd accepts)');
  const root = parseXml(res.body);
  assert.equal(root.local, 'institutions-response', `root element${exchange(req, res)}`);
  assert.equal(root.ns, NS_INST, `root namespace${exchange(req, res)}`);
  return { req, res, heis: root.elements(NS_INST, 'hei') };
}

const heiIds = (heis) => heis.map((h) => h.element(NS_INST, 'hei-id').text);

for (const method of ['GET', 'POST']) {
  itest(() => fx, `institutions: ${method} known hei_id → its hei, names with xml:lang, other-ids, exposed ounit-ids only`, async () => {
    const { heis, req, res } = await institutions([HEI_ID], method);
    assert.deepEqual(heiIds(heis), [HEI_ID], `hei ids${exchange(req, res)}`);
    const h = heis[0];
    const names = h.elements(NS_INST, 'name').map((n) => [n.attr('lang', 'http://www.w3.org/XML/1998/namespace'), n.text]);
    assert.deepEqual(names, [['fr', 'Université de Test <SMILE> & co'], ['en', 'SMILE Test University']], `names${exchange(req, res)}`);
    const other = h.elements(NS_INST, 'other-id').map((o) => [o.attr('type'), o.text]);
    assert.deepEqual(other, [['erasmus', 'F  SMILE01'], ['pic', '999888777']], `other-ids${exchange(req, res)}`);
    assert.equal(h.element(NS_INST, 'abbreviation').text, 'UTS');
    assert.deepEqual(h.elements(NS_INST, 'ounit-id').map((o) => o.text), ['ou-sci'], `ounit-ids${exchange(req, res)}`);
    const street = h.element(NS_ADDR, 'street-address');
    assert.equal(street?.element(NS_ADDR, 'streetName')?.text, 'Esplanade de la Paix', `street-address${exchange(req, res)}`);
    assert.equal(street.element(NS_ADDR, 'country').text, 'FR');
    assert.deepEqual(h.element(NS_ADDR, 'mailing-address').elements(NS_ADDR, 'addressLine').map((l) => l.text),
      ['BP 5186', '14032 Caen Cedex 5']);
    const contacts = h.elements(NS_CONTACT, 'contact');
    assert.deepEqual(contacts.map((c) => c.element(NS_CONTACT, 'contact-name').text), ['Bureau des échanges', 'Second contact'],
      `contacts in position order${exchange(req, res)}`);
    assert.deepEqual(contacts[0].elements(NS_CONTACT, 'email').map((e) => e.text), ['ri@smile.test', 'anne.martin@smile.test']);
    assert.equal(contacts[0].descendants(undefined, 'e164')[0].text, '+33231000000');
  });
}

itest(() => fx, 'institutions: unknown hei_id omitted; known + unknown → only the known one', async () => {
  let r = await institutions(['unknown.example.org']);
  assert.deepEqual(heiIds(r.heis), [], `empty root${exchange(r.req, r.res)}`);
  r = await institutions(['unknown.example.org', PARTNER_HEI], 'POST');
  assert.deepEqual(heiIds(r.heis), [PARTNER_HEI], `only the known one${exchange(r.req, r.res)}`);
});

itest(() => fx, 'institutions: duplicated hei_id answered once; two ids → both, each with its own units', async () => {
  let r = await institutions([HEI_ID, HEI_ID, HEI_ID]);
  assert.deepEqual(heiIds(r.heis), [HEI_ID], `duplicates once${exchange(r.req, r.res)}`);
  r = await institutions([PARTNER_HEI, HEI_ID]);
  assert.deepEqual(heiIds(r.heis), [PARTNER_HEI, HEI_ID], `request order${exchange(r.req, r.res)}`);
  assert.deepEqual(r.heis[0].elements(NS_INST, 'ounit-id').map((o) => o.text), ['ou-partner']);
  assert.deepEqual(r.heis[1].elements(NS_INST, 'ounit-id').map((o) => o.text), ['ou-sci']);
});

itest(() => fx, 'institutions: 1,000 copies of one hei_id (POST, the form parser limit) → 200, answered once', async () => {
  const r = await institutions(Array(1000).fill(HEI_ID), 'POST');
  assert.deepEqual(heiIds(r.heis), [HEI_ID]);
});

itest(() => fx, 'institutions: values needing array-literal quoting are only ids, never SQL', async () => {
  const r = await institutions(['a"b', 'c\\d', '{x,y}', "'; DROP TABLE smile.etablissement; --", HEI_ID]);
  assert.deepEqual(heiIds(r.heis), [HEI_ID], `${exchange(r.req, r.res)}`);
});

itest(() => fx, 'institutions: missing hei_id → 400; 11 distinct ids → 400; 10 distinct + duplicates → 200', async () => {
  for (const method of ['GET', 'POST']) {
    let req = instRequest([], method);
    assertErrorResponse(await fx.send(req), 400, req, `no hei_id (${method})`);
    const eleven = Array.from({ length: 11 }, (_, i) => `h${i}.example.org`);
    req = instRequest(eleven, method);
    const msg = assertErrorResponse(await fx.send(req), 400, req, `11 ids (${method})`);
    assert.match(msg, /max-hei-ids/);
  }
  const ten = Array.from({ length: 10 }, (_, i) => `h${i}.example.org`);
  const r = await institutions([...ten, ...ten, HEI_ID].slice(0, 20));
  assert.deepEqual(heiIds(r.heis), []);
});

itest(() => fx, 'institutions: unsigned → 401, PUT → 405', async () => {
  let res = await fx.get(`${PATH}?hei_id=${HEI_ID}`);
  assertErrorResponse(res, 401, { method: 'GET', target: PATH }, 'anonymous');
  const req = fx.signed({ method: 'PUT', path: `${PATH}?hei_id=${HEI_ID}` });
  res = await fx.send(req);
  assertErrorResponse(res, 405, req, 'PUT');
});

itest(() => fx, 'institutions: database stopped → 503 error-response, ewpd up, /healthz 200 "database down"; restarted → 200 without restarting ewpd', async () => {
  fx.pg.halt();
  try {
    const res503 = await pollUntil(async () => {
      const req = instRequest([HEI_ID]);
      const res = await fx.send(req);
      return { ok: res.status === 503, req, res, detail: `status ${res.status}` };
    }, 10000, 'a 503 once the database is down');
    const msg = assertErrorResponse(res503.res, 503, res503.req, 'database down');
    assert.match(msg, /database unavailable/);
    assert.ok(fx.alive, 'ewpd must stay up');
    const h = await fx.get('/healthz');
    assert.equal(h.status, 200);
    assert.match(h.body.toString(), /database down/);
  } finally {
    fx.pg.resume();
  }
  await pollUntil(async () => {
    const res = await fx.send(instRequest([HEI_ID]));
    return { ok: res.status === 200, detail: `status ${res.status}` };
  }, 15000, 'a 200 once the database is back');
  const { heis } = await institutions([HEI_ID], 'POST');
  assert.deepEqual(heiIds(heis), [HEI_ID]);
  assert.ok(fx.alive);
}, { timeout: 60000 });

itest(() => fx, 'institutions: the official example response passes the intake schema the sync checks partners with', async () => {
  assertValid(fs.readFileSync(specPath('ewp-specs-api-institutions', 'response-example.xml')), projectSchema('intake/institutions-response.xsd'), 'official example');
});
