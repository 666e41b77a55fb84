// Organizational Units API v2 served from the SMILE core: hei_id rules,
// ounit_id XOR ounit_code, limits, hierarchy, no unit of one HEI answered
// for another, schema validity, and a database that goes away and back.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before } from 'node:test';

import { Ewpd, HEI_ID, PARTNER_HEI, itest } from './lib/daemon.mjs';
import { assertErrorResponse, assertStatus, assertXmlContentType, exchange } from './lib/ewp.mjs';
import { projectSchema, specPath } from './lib/env.mjs';
import { pollUntil } from './lib/poll.mjs';
import { assertValid, parseXml } from './lib/xml.mjs';

const NS_OU = 'https://github.com/erasmus-without-paper/ewp-specs-api-ounits/tree/stable-v2';
const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const PATH = '/ewp/ounits';

let fx;
before(async () => {
  fx = await Ewpd.create('ounits', { pg: true });
  const unit = (hei, id, code, name, extra = '') => `
    INSERT INTO smile.composante (etablissement_id, ounit_id, code, names${extra ? ', ' + extra.split('=')[0] : ''})
      SELECT id, '${id}', '${code}', '${JSON.stringify(name)}'${extra ? ', ' + extra.split('=')[1] : ''}
      FROM smile.etablissement WHERE schac_id = '${hei}';`;
  fx.pg.psql(`
    INSERT INTO smile.etablissement (schac_id, names, is_local) VALUES ('${HEI_ID}', '[{"lang":"en","name":"SMILE Test University"}]', true);
    INSERT INTO smile.etablissement (schac_id, names) VALUES ('${PARTNER_HEI}', '[{"name":"Partner University"}]');
    ${unit(HEI_ID, 'ou-sci', 'SCI', [{ lang: 'fr', name: 'UFR Sciences & Techniques' }, { lang: 'en', name: 'Faculty of Science' }])}
    ${unit(HEI_ID, 'ou-hidden', 'HID', [{ lang: 'en', name: 'Hidden' }], 'is_exposed=false')}
    ${unit(PARTNER_HEI, 'ou-partner', 'PSCI', [{ name: 'Partner Science' }])}
    ${unit(PARTNER_HEI, 'ou-sci', 'SCI', [{ name: 'Partner unit with our id' }])}
    INSERT INTO smile.composante (etablissement_id, ounit_id, code, names, abbreviation, parent_id)
      SELECT e.id, 'ou-math', 'MATH', '[{"lang":"en","name":"Department of Mathematics"}]', 'MATH', c.id
      FROM smile.etablissement e JOIN smile.composante c ON c.etablissement_id = e.id AND c.ounit_id = 'ou-sci'
      WHERE e.schac_id = '${HEI_ID}';
    INSERT INTO smile.address (composante_id, kind, lines, locality)
      SELECT c.id, 'street', '{"Campus 2, bâtiment <Sciences> & co"}', 'Caen' FROM smile.composante c
      JOIN smile.etablissement e ON e.id = c.etablissement_id WHERE e.schac_id = '${HEI_ID}' AND c.ounit_id = 'ou-sci';
    INSERT INTO smile.contact (composante_id, names, emails)
      SELECT c.id, '[{"name":"Scolarité Sciences"}]', '{"sciences@smile.test"}' FROM smile.composante c
      JOIN smile.etablissement e ON e.id = c.etablissement_id WHERE e.schac_id = '${HEI_ID}' AND c.ounit_id = 'ou-sci';
  `);
});
after(async () => { await fx?.cleanup(); });

function ouRequest(params, method = 'GET') {
  const qs = params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  if (method === 'GET') return fx.signed({ path: qs ? `${PATH}?${qs}` : PATH });
  return fx.signed({ method: 'POST', path: PATH, body: qs, contentType: 'application/x-www-form-urlencoded' });
}

// Sends, checks 200 + both schemas; returns the <ounit> elements.
async function ounits(params, method = 'GET') {
  const req = ouRequest(params, method);
  const res = await fx.send(req);
  assertStatus(res, 200, req, `ounits ${method}`);
  assertXmlContentType(res, req);
  assertValid(res.body, specPath('ewp-specs-api-ounits', 'response.xsd'), 'ounits response (official)');
  assertValid(res.body, projectSchema('ounits-response.xsd'), 'ounits response (ewp-schemas)');
  assertValid(res.body, projectSchema('intake/ounits-response.xsd'), 'ounits response (what a syncing ewpd accepts)');
  const root = parseXml(res.body);
  assert.equal(root.local, 'ounits-response', `root element${exchange(req, res)}`);
  assert.equal(root.ns, NS_OU, `root namespace${exchange(req, res)}`);
  return { req, res, units: root.elements(NS_OU, 'ounit') };
}

const ids = (units) => units.map((u) => u.element(NS_OU, 'ounit-id').text);
const codes = (units) => units.map((u) => u.element(NS_OU, 'ounit-code').text);
const heiP = (v = HEI_ID) => ['hei_id', v];

for (const method of ['GET', 'POST']) {
  itest(() => fx, `ounits: ${method} by ounit_id → the unit, names with xml:lang, parent-ounit-id`, async () => {
    const { units, req, res } = await ounits([heiP(), ['ounit_id', 'ou-math'], ['ounit_id', 'ou-sci']], method);
    assert.deepEqual(ids(units), ['ou-math', 'ou-sci'], `request order${exchange(req, res)}`);
    assert.equal(units[0].element(NS_OU, 'parent-ounit-id').text, 'ou-sci');
    assert.equal(units[0].element(NS_OU, 'abbreviation').text, 'MATH');
    assert.equal(units[1].element(NS_OU, 'parent-ounit-id'), undefined);
    const names = units[1].elements(NS_OU, 'name').map((n) => [n.attr('lang', XML_NS), n.text]);
    assert.deepEqual(names, [['fr', 'UFR Sciences & Techniques'], ['en', 'Faculty of Science']]);
    assert.deepEqual(units[1].descendants(undefined, 'addressLine').map((l) => l.text), ['Campus 2, bâtiment <Sciences> & co']);
    assert.deepEqual(units[1].descendants(undefined, 'email').map((l) => l.text), ['sciences@smile.test']);
    assert.equal(units[0].descendants(undefined, 'contact').length, 0, `no contact of another unit${exchange(req, res)}`);
  });

  itest(() => fx, `ounits: ${method} by ounit_code → the unit`, async () => {
    const { units } = await ounits([heiP(), ['ounit_code', 'SCI']], method);
    assert.deepEqual(ids(units), ['ou-sci']);
    assert.deepEqual(codes(units), ['SCI']);
  });
}

itest(() => fx, 'ounits: unknown ids omitted, duplicates once, not exposed units never answered', async () => {
  let r = await ounits([heiP(), ['ounit_id', 'nope']]);
  assert.deepEqual(ids(r.units), [], `empty root${exchange(r.req, r.res)}`);
  r = await ounits([heiP(), ['ounit_id', 'ou-sci'], ['ounit_id', 'nope'], ['ounit_id', 'ou-sci'], ['ounit_id', 'ou-hidden']], 'POST');
  assert.deepEqual(ids(r.units), ['ou-sci'], `${exchange(r.req, r.res)}`);
  r = await ounits([heiP(), ['ounit_code', 'HID'], ['ounit_code', 'MATH'], ['ounit_code', 'MATH']]);
  assert.deepEqual(codes(r.units), ['MATH'], `${exchange(r.req, r.res)}`);
});

itest(() => fx, 'ounits: one HEI\'s units are never returned for another (same ounit_id, same code)', async () => {
  let r = await ounits([heiP(PARTNER_HEI), ['ounit_id', 'ou-math'], ['ounit_id', 'ou-sci'], ['ounit_id', 'ou-partner']]);
  assert.deepEqual(ids(r.units), ['ou-sci', 'ou-partner'], `${exchange(r.req, r.res)}`);
  assert.equal(r.units[0].element(NS_OU, 'name').text, 'Partner unit with our id');
  r = await ounits([heiP(), ['ounit_id', 'ou-partner']]);
  assert.deepEqual(ids(r.units), [], `${exchange(r.req, r.res)}`);
  r = await ounits([heiP(), ['ounit_code', 'PSCI'], ['ounit_code', 'SCI']]);
  assert.deepEqual(ids(r.units), ['ou-sci']);
  assert.equal(r.units[0].element(NS_OU, 'name').text, 'UFR Sciences & Techniques');
});

itest(() => fx, 'ounits: parameter errors → 400 (hei_id missing, repeated, unknown; ids and codes both or neither; over max)', async () => {
  const eleven = (k) => Array.from({ length: 11 }, (_, i) => [k, `x${i}`]);
  const cases = [
    ['no hei_id', [['ounit_id', 'ou-sci']]],
    ['hei_id repeated', [heiP(), heiP(PARTNER_HEI), ['ounit_id', 'ou-sci']]],
    ['hei_id repeated (same value)', [heiP(), heiP(), ['ounit_id', 'ou-sci']]],
    ['unknown hei_id', [heiP('unknown.example.org'), ['ounit_id', 'ou-sci']]],
    ['neither ounit_id nor ounit_code', [heiP()]],
    ['both ounit_id and ounit_code', [heiP(), ['ounit_id', 'ou-sci'], ['ounit_code', 'SCI']]],
    ['11 ounit_id', [heiP(), ...eleven('ounit_id')]],
    ['11 ounit_code', [heiP(), ...eleven('ounit_code')]],
  ];
  for (const method of ['GET', 'POST']) {
    for (const [what, params] of cases) {
      const req = ouRequest(params, method);
      assertErrorResponse(await fx.send(req), 400, req, `${what} (${method})`);
    }
  }
  // 10 distinct ids, repeated: within the limit
  const ten = Array.from({ length: 10 }, (_, i) => ['ounit_id', `x${i}`]);
  const r = await ounits([heiP(), ...ten, ...ten]);
  assert.deepEqual(ids(r.units), []);
});

itest(() => fx, 'ounits: database stopped → 503 error-response, ewpd up; restarted → 200 without restarting ewpd', async () => {
  fx.pg.halt();
  try {
    const r = await pollUntil(async () => {
      const req = ouRequest([heiP(), ['ounit_id', 'ou-sci']]);
      const res = await fx.send(req);
      return { ok: res.status === 503, req, res, detail: `status ${res.status}` };
    }, 10000, 'a 503 once the database is down');
    assert.match(assertErrorResponse(r.res, 503, r.req, 'database down'), /database unavailable/);
    assert.ok(fx.alive, 'ewpd must stay up');
  } finally {
    fx.pg.resume();
  }
  await pollUntil(async () => {
    const res = await fx.send(ouRequest([heiP(), ['ounit_id', 'ou-sci']]));
    return { ok: res.status === 200, detail: `status ${res.status}` };
  }, 15000, 'a 200 once the database is back');
  const { units } = await ounits([heiP(), ['ounit_code', 'SCI']], 'POST');
  assert.deepEqual(ids(units), ['ou-sci']);
  assert.ok(fx.alive);
}, { timeout: 60000 });

itest(() => fx, 'ounits: ids that are not EWP identifiers (bad UTF-8, too long) → 400 for hei_id, omitted for ounit_id; error bodies stay well-formed', async () => {
  const raw = (qs) => fx.signed({ path: `${PATH}?${qs}` });
  const bad = [
    ['hei_id=%FF&ounit_id=ou-sci', 'hei_id not UTF-8'],
    [`hei_id=${'%C3%A9'.repeat(600)}&ounit_id=ou-sci`, 'hei_id of 600 multi-byte characters'],
    [`hei_id=${'a'.repeat(65)}&ounit_id=ou-sci`, 'hei_id of 65 characters'],
  ];
  for (const [qs, what] of bad) {
    const req = raw(qs);
    assertErrorResponse(await fx.send(req), 400, req, what);
  }
  const req = raw(`hei_id=${HEI_ID}&ounit_id=%FF&ounit_id=ou-sci`);
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'a bad ounit_id is an unknown id');
  assert.deepEqual(ids(parseXml(res.body).elements(NS_OU, 'ounit')), ['ou-sci'], exchange(req, res));
});

itest(() => fx, 'ounits: the official example response passes the intake schema the sync checks partners with', async () => {
  assertValid(fs.readFileSync(specPath('ewp-specs-api-ounits', 'response-example.xml')), projectSchema('intake/ounits-response.xsd'), 'official example');
});
