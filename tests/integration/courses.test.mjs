// Courses API v0.7.1 served from the SMILE core: the local HEI's exchange
// catalogue by los_id or los_code, the parameter rules (hei_id, limits,
// YYYY-mm-dd dates), the semester instances and their filters, both
// methods, schema validity, and nothing ever answered for another HEI.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { spawnSync } from 'node:child_process';

import { Ewpd, HEI_ID, PARTNER_HEI, itest } from './lib/daemon.mjs';
import { pollUntil } from './lib/poll.mjs';
import { assertErrorResponse, assertStatus, assertXmlContentType, exchange } from './lib/ewp.mjs';
import { EWPD, NS, projectSchema, specPath } from './lib/env.mjs';
import { assertValid, parseXml } from './lib/xml.mjs';

const NS_C = 'https://github.com/erasmus-without-paper/ewp-specs-api-courses/tree/stable-v1';
const NS_C_ENTRY = 'https://github.com/erasmus-without-paper/ewp-specs-api-courses/blob/stable-v1/manifest-entry.xsd';
const PATH = '/ewp/courses';

// The academic year the daemon's instances belong to (September to August).
const now = new Date();
const YEAR = now.getUTCMonth() >= 8 ? now.getUTCFullYear() : now.getUTCFullYear() - 1;

let fx;
const id = {};
before(async () => {
  fx = await Ewpd.create('courses', { pg: true, tls: true });
  fx.pg.psql(`
    INSERT INTO smile.etablissement (schac_id, names, is_local) VALUES ('${HEI_ID}', '[{"name":"SMILE Test University"}]', true);
    INSERT INTO smile.etablissement (schac_id, names) VALUES ('${PARTNER_HEI}', '[{"name":"Partner University"}]');
    INSERT INTO smile.composante (etablissement_id, ounit_id, code, names)
      SELECT id, 'ou-sci', 'SCI', '[{"lang":"en","name":"Faculty of Science"}]' FROM smile.etablissement WHERE schac_id = '${HEI_ID}';
    INSERT INTO smile.composante (etablissement_id, ounit_id, code, names, is_exposed)
      SELECT id, 'ou-hidden', 'HID', '[{"lang":"en","name":"Hidden"}]', false FROM smile.etablissement WHERE schac_id = '${HEI_ID}';
    INSERT INTO smile.formation (code, title, composante_id) SELECT 'F-SCI', 'Licence Sciences', id FROM smile.composante WHERE ounit_id = 'ou-sci';
    INSERT INTO smile.formation (code, title, composante_id) SELECT 'F-HID', 'Hidden unit programme', id FROM smile.composante WHERE ounit_id = 'ou-hidden';
    INSERT INTO smile.formation (code, title, open_to_mobility) VALUES ('F-CLOSED', 'Closed programme', false);
    INSERT INTO smile.cours (code, title, language, s1, s2, ects, hours, description, formation_id)
      SELECT 'MATH1', 'Analyse <1> & algèbre', 'fr', true, true, 6, 48.5, 'Suites, séries.', id FROM smile.formation WHERE code = 'F-SCI';
    INSERT INTO smile.cours (code, title, s2, formation_id)
      SELECT 'PHYS2', 'Physique', true, id FROM smile.formation WHERE code = 'F-SCI';
    INSERT INTO smile.cours (code, title, s1, ects, formation_id)
      SELECT 'MATH1', 'Analyse (hidden unit)', true, 5, id FROM smile.formation WHERE code = 'F-HID';
    INSERT INTO smile.cours (code, title, formation_id) SELECT 'SHUT', 'In a closed programme', id FROM smile.formation WHERE code = 'F-CLOSED';
    INSERT INTO smile.cours (code, title, open_to_mobility) VALUES ('NOEX', 'Not for exchange', false);
    INSERT INTO smile.cours (code, title) VALUES ('LOOSE', 'Without programme');
  `);
  for (const line of fx.pg.psql(`SELECT c.code || '@' || coalesce(f.code, '-'), c.id FROM smile.cours c LEFT JOIN smile.formation f ON f.id = c.formation_id`).split('\n')) {
    const [code, key] = line.split('|');
    id[code] = `CR/${key}`;
  }
});
after(async () => { await fx?.cleanup(); });

function cRequest(params, method = 'GET') {
  const qs = params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  if (method === 'GET') return fx.signed({ path: qs ? `${PATH}?${qs}` : PATH });
  return fx.signed({ method: 'POST', path: PATH, body: qs, contentType: 'application/x-www-form-urlencoded' });
}

// Sends, checks 200 + both schemas; returns the LOS elements.
async function courses(params, method = 'GET') {
  const req = cRequest(params, method);
  const res = await fx.send(req);
  assertStatus(res, 200, req, `courses ${method}`);
  assertXmlContentType(res, req);
  assertValid(res.body, specPath('ewp-specs-api-courses', 'response.xsd'), 'courses response (official)');
  assertValid(res.body, projectSchema('courses-response.xsd'), 'courses response (ewp-schemas)');
  const root = parseXml(res.body);
  assert.equal(root.local, 'courses-response', `root element${exchange(req, res)}`);
  assert.equal(root.ns, NS_C, `root namespace${exchange(req, res)}`);
  return { req, res, los: root.elements(NS_C, 'learningOpportunitySpecification') };
}

const losIds = (los) => los.map((l) => l.element(NS_C, 'los-id').text);
const lois = (l) => l.element(NS_C, 'specifies')?.elements(NS_C, 'learningOpportunityInstance') ?? [];
const hei = ['hei_id', HEI_ID];

for (const method of ['GET', 'POST']) {
  itest(() => fx, `courses: ${method} los_id → LOS with code, exposed ounit, title, type, description, semester instances`, async () => {
    const { los, req, res } = await courses([hei, ['los_id', id['MATH1@F-SCI']]], method);
    const ctx = exchange(req, res);
    assert.deepEqual(losIds(los), [id['MATH1@F-SCI']], `los ids${ctx}`);
    const l = los[0];
    assert.equal(l.element(NS_C, 'los-code').text, 'MATH1');
    assert.equal(l.element(NS_C, 'ounit-id').text, 'ou-sci');
    assert.equal(l.element(NS_C, 'title').text, 'Analyse <1> & algèbre');
    assert.equal(l.element(NS_C, 'type').text, 'Course');
    assert.equal(l.element(NS_C, 'description').text, 'Suites, séries.');
    const inst = lois(l).map((i) => ({
      id: i.element(NS_C, 'loi-id').text,
      start: i.element(NS_C, 'start').text,
      end: i.element(NS_C, 'end').text,
      scheme: i.element(NS_C, 'credit')?.element(NS_C, 'scheme').text,
      ects: Number(i.element(NS_C, 'credit')?.element(NS_C, 'value').text),
      lang: i.element(NS_C, 'languageOfInstruction')?.text,
      hours: Number(i.element(NS_C, 'engagementHours')?.text),
    }));
    const key = id['MATH1@F-SCI'].slice(3);
    assert.deepEqual(inst, [
      { id: `CRI/${key}-${YEAR}-S1`, start: `${YEAR}-09-01`, end: `${YEAR + 1}-01-31`, scheme: 'ects', ects: 6, lang: 'fr', hours: 48.5 },
      { id: `CRI/${key}-${YEAR}-S2`, start: `${YEAR + 1}-02-01`, end: `${YEAR + 1}-06-30`, scheme: 'ects', ects: 6, lang: 'fr', hours: 48.5 },
    ], `instances${ctx}`);
  });
}

itest(() => fx, 'courses: los_code → every catalogue course with that code; hidden unit not named; unknown ids left out', async () => {
  let r = await courses([hei, ['los_code', 'MATH1']], 'POST');
  assert.deepEqual(losIds(r.los).sort(), [id['MATH1@F-SCI'], id['MATH1@F-HID']].sort(), `by code${exchange(r.req, r.res)}`);
  const hidden = r.los.find((l) => l.element(NS_C, 'los-id').text === id['MATH1@F-HID']);
  assert.equal(hidden.element(NS_C, 'ounit-id'), undefined, `no ounit-id for a hidden unit${exchange(r.req, r.res)}`);
  r = await courses([hei, ['los_id', 'CR/999999'], ['los_id', id['PHYS2@F-SCI']], ['los_id', 'XX/1'], ['los_id', id['PHYS2@F-SCI']]]);
  assert.deepEqual(losIds(r.los), [id['PHYS2@F-SCI']], `known once${exchange(r.req, r.res)}`);
  const p = r.los[0];
  assert.equal(p.element(NS_C, 'ounit-id').text, 'ou-sci');
  assert.deepEqual(lois(p).map((i) => i.element(NS_C, 'loi-id').text), [`CRI/${id['PHYS2@F-SCI'].slice(3)}-${YEAR}-S2`]);
  assert.equal(lois(p)[0].element(NS_C, 'credit'), undefined, 'no credit without ECTS');
  r = await courses([hei, ['los_id', id['LOOSE@-']]]);
  assert.deepEqual(losIds(r.los), [id['LOOSE@-']]);
  assert.equal(r.los[0].element(NS_C, 'specifies'), undefined, 'no semester, no instance');
  assert.equal(r.los[0].element(NS_C, 'ounit-id'), undefined);
  r = await courses([hei, ['los_id', 'CR/999999']]);
  assert.deepEqual(losIds(r.los), [], `all unknown → empty${exchange(r.req, r.res)}`);
});

itest(() => fx, 'courses: courses outside the exchange catalogue are never returned', async () => {
  const r = await courses([hei, ['los_id', id['SHUT@F-CLOSED']], ['los_id', id['NOEX@-']]]);
  assert.deepEqual(losIds(r.los), [], `${exchange(r.req, r.res)}`);
  const c = await courses([hei, ['los_code', 'SHUT'], ['los_code', 'NOEX']], 'POST');
  assert.deepEqual(losIds(c.los), []);
});

itest(() => fx, 'courses: lois_before / lois_after filter the instances; los_at_date accepted', async () => {
  const math = id['MATH1@F-SCI'];
  const ids = async (params) => {
    const r = await courses([hei, ['los_id', math], ...params]);
    assert.deepEqual(losIds(r.los), [math], `LOS kept whatever the filter${exchange(r.req, r.res)}`);
    return lois(r.los[0]).map((i) => i.element(NS_C, 'loi-id').text.slice(-2));
  };
  assert.deepEqual(await ids([['lois_before', `${YEAR + 1}-03-01`]]), ['S1']);
  assert.deepEqual(await ids([['lois_after', `${YEAR}-12-01`]]), ['S2']);
  assert.deepEqual(await ids([['lois_after', `${YEAR}-08-31`], ['lois_before', `${YEAR + 1}-07-01`]]), ['S1', 'S2']);
  assert.deepEqual(await ids([['lois_after', `${YEAR + 1}-01-01`], ['lois_before', `${YEAR + 1}-02-01`]]), []);
  assert.deepEqual(await ids([['los_at_date', '2020-02-29']]), ['S1', 'S2']);
});

itest(() => fx, 'courses: parameter errors → 400 error-response (GET and POST)', async () => {
  const eleven = (k) => Array.from({ length: 11 }, (_, i) => [k, `X${i}`]);
  const bad = [
    [[['los_id', id['MATH1@F-SCI']]], 'no hei_id', null],
    [[hei, hei, ['los_id', id['MATH1@F-SCI']]], 'hei_id twice', null],
    [[['hei_id', 'unknown.example.org'], ['los_id', id['MATH1@F-SCI']]], 'unknown hei_id', null],
    [[['hei_id', PARTNER_HEI], ['los_id', id['MATH1@F-SCI']]], 'another HEI', null],
    [[hei], 'neither los_id nor los_code', null],
    [[hei, ['los_id', id['MATH1@F-SCI']], ['los_code', 'MATH1']], 'both los_id and los_code', null],
    [[hei, ...eleven('los_id')], '11 los_id', /max-los-ids/],
    [[hei, ...eleven('los_code')], '11 los_code', /max-los-codes/],
    [[hei, ['los_id', id['MATH1@F-SCI']], ['lois_before', '2024-13-01']], 'lois_before month 13', /lois_before/],
    [[hei, ['los_id', id['MATH1@F-SCI']], ['lois_after', '2024-1-01']], 'lois_after short month', /lois_after/],
    [[hei, ['los_id', id['MATH1@F-SCI']], ['los_at_date', '2023-02-29']], 'los_at_date 29 Feb 2023', /los_at_date/],
    [[hei, ['los_id', id['MATH1@F-SCI']], ['lois_after', '2024-01-01T00:00:00Z']], 'lois_after with a time', /lois_after/],
    [[hei, ['los_id', id['MATH1@F-SCI']], ['lois_before', '2024-01-01'], ['lois_before', '2024-01-02']], 'lois_before twice', /lois_before/],
    [[hei, ['los_id', id['MATH1@F-SCI']], ['los_at_date', '']], 'los_at_date empty', /los_at_date/],
  ];
  for (const method of ['GET', 'POST']) {
    for (const [params, what, re] of bad) {
      const req = cRequest(params, method);
      const msg = assertErrorResponse(await fx.send(req), 400, req, `${what} (${method})`);
      if (re) assert.match(msg, re, what);
    }
  }
  const ten = Array.from({ length: 10 }, (_, i) => ['los_id', `CR/${900 + i}`]);
  const r = await courses([hei, ...ten, ...ten, ['los_id', 'CR/900']]);
  assert.deepEqual(losIds(r.los), [], '10 distinct + duplicates → 200');
});

itest(() => fx, 'courses: unsigned → 401, PUT → 405', async () => {
  let res = await fx.get(`${PATH}?hei_id=${HEI_ID}&los_code=MATH1`);
  assertErrorResponse(res, 401, { method: 'GET', target: PATH }, 'anonymous');
  const req = fx.signed({ method: 'PUT', path: `${PATH}?hei_id=${HEI_ID}&los_code=MATH1` });
  res = await fx.send(req);
  assertErrorResponse(res, 405, req, 'PUT');
});

itest(() => fx, 'courses: manifest entry (official and project schemas) advertises max-los-ids and max-los-codes 10', async () => {
  const req = { method: 'GET', target: fx.manifestPath, headers: [['Host', fx.hostHeader]] };
  const res = await fx.send(req);
  assertStatus(res, 200, req, 'manifest');
  assertValid(res.body, specPath('ewp-specs-api-discovery', 'manifest.xsd'), 'manifest (official)');
  assertValid(res.body, projectSchema('manifest.xsd'), 'manifest (ewp-schemas)');
  const apis = parseXml(res.body).element(NS.manifest, 'host').element(NS.registry, 'apis-implemented');
  const e = apis.elements(NS_C_ENTRY, 'courses');
  assert.equal(e.length, 1, `one courses entry${exchange(req, res)}`);
  assert.equal(e[0].attr('version'), '0.7.1');
  assert.equal(e[0].element(NS_C_ENTRY, 'url').text, `${fx.publicUrl}${PATH}`);
  assert.equal(e[0].element(NS_C_ENTRY, 'max-los-ids').text, '10');
  assert.equal(e[0].element(NS_C_ENTRY, 'max-los-codes').text, '10');
});

itest(() => fx, 'courses: the semester dates come from [courses] (reloadable); a bad calendar is refused with its line', async () => {
  const instancesOf = async () => {
    const { los } = await courses([hei, ['los_id', id['MATH1@F-SCI']]]);
    return lois(los[0]).map((i) => [i.element(NS_C, 'start').text, i.element(NS_C, 'end').text]);
  };
  // an academic year starting 15 October: the current one began on the
  // last 15 October reached
  const now = new Date();
  const md = (now.getUTCMonth() + 1) * 100 + now.getUTCDate();
  const y = md >= 1015 ? now.getUTCFullYear() : now.getUTCFullYear() - 1;
  try {
    fx.writeConfig({ courses: { first_semester: '10-15/02-28', second_semester: '03-01/07-14' } });
    fx.signal('SIGHUP');
    const want = [[`${y}-10-15`, `${y + 1}-02-28`], [`${y + 1}-03-01`, `${y + 1}-07-14`]];
    await pollUntil(async () => {
      const got = await instancesOf();
      return { ok: JSON.stringify(got) === JSON.stringify(want), detail: JSON.stringify(got) };
    }, 5000, 'instances with the configured calendar');
    for (const [value, why] of [['09-01/02-29', 'real dates'], ['9-1/1-31', 'MM-DD/MM-DD'], ['13-01/01-31', 'real dates']]) {
      fx.writeConfig({ courses: { first_semester: value } });
      const r = spawnSync(EWPD, ['-n', '-c', fx.confPath], { encoding: 'utf8', timeout: 5000 });
      assert.notEqual(r.status, 0, `ewpd -n accepts first_semester = ${value}`);
      assert.match(r.stderr, new RegExp(`ewpd\\.conf:\\d+: \\[courses\\] first_semester: "${value}" is not .*${why}`), r.stderr);
    }
  } finally {
    fx.writeConfig({ courses: { first_semester: '09-01/01-31', second_semester: '02-01/06-30' } });
    fx.signal('SIGHUP');
    await pollUntil(async () => {
      const got = await instancesOf();
      return { ok: got[0][0] === `${YEAR}-09-01`, detail: JSON.stringify(got) };
    }, 5000, 'default calendar back');
  }
});
