// `ewpctl sync institutions` against partners that misbehave. Node A (a
// database and a configuration, no daemon) syncs in one run three
// partners: two HEIs served by a partner test double (lib/partner-double.mjs,
// an HTTPS node of "another vendor" with its own TLS certificate and server
// key, answering signed EWP responses), one of which A already knows (a
// row in smile.etablissement, with a unit, an address and a contact) and
// one it does not, and between them node B, a real ewpd serving its SMILE
// core. Each case bends one thing of the double's answers and asserts that
// both of its HEIs fail with an error naming the fault, that nothing of
// theirs is written to smile.etablissement / composante / address /
// contact, that the failure is recorded in ewp.partner_syncs (for the HEI
// without a row too once migration 0003 allows it), and that B is synced
// in the same run. Then the double answers correctly, so the faults are
// the only reason for the failures above. SHOW_MSG=1 prints each error.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';

import { addInstitutionsApis, buildCatalogue } from './lib/catalogue.mjs';
import { Ewpd, HEI_ID, describeRun, ewpctlKey, itest, makeTempDir, renderConf, runEwpctl, runEwpctlAsync } from './lib/daemon.mjs';
import { KEEP_TMP, REPO_ROOT, projectSchema, specPath } from './lib/env.mjs';
import { PartnerDouble, writeCaBundle } from './lib/partner-double.mjs';
import { Postgres } from './lib/pg.mjs';
import { makeKey } from './lib/sign.mjs';
import { assertValid, xmlEscape } from './lib/xml.mjs';

const A_HEI = 'a.example.org';
const KNOWN = 'known.faulty.example.org'; // served by the double, has a row at A
const NEW = 'new.faulty.example.org'; // served by the double, unknown to A
const OTHER = 'other.example.org'; // another host: its server key must not do for the double's URLs

const NS_I = 'https://github.com/erasmus-without-paper/ewp-specs-api-institutions/tree/stable-v2';
const NS_O = 'https://github.com/erasmus-without-paper/ewp-specs-api-ounits/tree/stable-v2';
const NS_A = 'https://github.com/erasmus-without-paper/ewp-specs-types-address/tree/stable-v1';
const NS_C = 'https://github.com/erasmus-without-paper/ewp-specs-types-contact/tree/stable-v1';
const NS_EWP = 'https://github.com/erasmus-without-paper/ewp-specs-architecture/blob/stable-v1/common-types.xsd';
const CEILING = 16 * 1024 * 1024; // SYNC_MAX_RESPONSE in gateway/ctl/ctl_sync.c

// What the double publishes for its two HEIs when it behaves.
const DATA = {
  [KNOWN]: { name: 'Known Faulty University', abbr: 'KFU', locality: 'Lyon', email: 'io@known.faulty.example.org',
    units: [['k-sci', 'KSCI', 'Faculty of Science K', null], ['k-math', 'KMATH', 'Mathematics K', 'k-sci']] },
  [NEW]: { name: 'New Faulty University', abbr: 'NFU', locality: 'Lille', email: 'io@new.faulty.example.org',
    units: [['n-law', 'NLAW', 'Law School N', null]] },
};

function institutionsXml(heiId, { padding = 0, officialExtras = false } = {}) {
  const d = DATA[heiId];
  let x = `<?xml version="1.0" encoding="UTF-8"?>\n<institutions-response xmlns="${NS_I}" xmlns:a="${NS_A}" xmlns:c="${NS_C}">\n`;
  if (d) {
    x += `  <hei>\n    <hei-id>${xmlEscape(heiId)}</hei-id>\n    <name xml:lang="en">${xmlEscape(d.name)}</name>\n`;
    x += `    <abbreviation>${d.abbr}</abbreviation>\n`;
    x += `    <a:street-address><a:locality>${d.locality}</a:locality><a:country>FR</a:country></a:street-address>\n`;
    if (officialExtras) {
      // optional parts of the official Institutions v2 response that ewpd itself does not serve
      x += `    <website-url xml:lang="en">https://www.${heiId}/en</website-url>\n    <website-url xml:lang="fr">https://www.${heiId}/fr</website-url>\n`;
      x += `    <course-catalogue-url>https://courses.${heiId}/</course-catalogue-url>\n`;
    }
    x += `    <c:contact><c:contact-name xml:lang="en">International office</c:contact-name><c:email>${d.email}</c:email></c:contact>\n`;
    if (officialExtras) x += `    <root-ounit-id>${d.units[0][0]}</root-ounit-id>\n`;
    for (const [id] of d.units) x += `    <ounit-id>${id}</ounit-id>\n`;
    x += '  </hei>\n';
  }
  if (padding) x += `<!-- ${'p'.repeat(padding)} -->\n`;
  return `${x}</institutions-response>\n`;
}

function ounitsXml(heiId, ids) {
  const d = DATA[heiId];
  let x = `<?xml version="1.0" encoding="UTF-8"?>\n<ounits-response xmlns="${NS_O}">\n`;
  for (const [id, code, name, parent] of d ? d.units.filter(([u]) => ids.includes(u)) : []) {
    x += `  <ounit>\n    <ounit-id>${id}</ounit-id>\n    <ounit-code>${code}</ounit-code>\n    <name xml:lang="en">${name}</name>\n`;
    if (parent) x += `    <parent-ounit-id>${parent}</parent-ounit-id>\n`;
    x += '  </ounit>\n';
  }
  return `${x}</ounits-response>\n`;
}

const errorXml = (msg) => `<?xml version="1.0" encoding="UTF-8"?>\n<error-response xmlns="${NS_EWP}">\n` +
  `  <developer-message>${xmlEscape(msg)}</developer-message>\n</error-response>\n`;

// The correct answer to a request of the double.
function goodAnswer(req) {
  const hei = req.form.get('hei_id');
  if (req.api === 'institutions') return { body: institutionsXml(hei) };
  return { body: ounitsXml(hei, req.form.getAll('ounit_id')) };
}

let b; // node B: a real ewpd, the partner that behaves
let double; // the other vendor's node, with one fault at a time
let a; // node A: { dir, pg, confPath, cacert }
let otherKey; // server key of OTHER's host
let bigBody; // an institutions response larger than the ceiling

before(async () => {
  b = await Ewpd.create('syncf-b', { tls: true, pg: true, start: false });
  const aDir = makeTempDir('syncf-a');
  const aKeys = path.join(aDir, 'keys');
  fs.mkdirSync(aKeys, { mode: 0o700 });
  const aKey = ewpctlKey(aKeys, 'client');
  b.extraHosts.push({ adminEmail: 'admin@a.example.org', heis: [A_HEI], clientKeys: [aKey] });
  b.extraInstitutions.push({ id: A_HEI, names: [['en', 'A University']] });
  b.writeCatalogue();
  b.pg.psql(`INSERT INTO smile.etablissement (schac_id, names, abbreviation, is_local)
    VALUES ('${HEI_ID}', '[{"lang":"en","name":"SMILE Test University"}]', 'SMILE', true);
    INSERT INTO smile.composante (etablissement_id, ounit_id, code, names)
      SELECT id, 'ou-sci', 'SCI', '[{"lang":"en","name":"Faculty of Science"}]' FROM smile.etablissement WHERE schac_id = '${HEI_ID}';`);
  try {
    await b.start();
    double = await PartnerDouble.start({ dir: path.join(aDir, 'double'), clientKey: aKey });
    otherKey = makeKey();
    const bEcho = `${b.publicUrl}/ewp/echo`;
    const dEcho = `${double.baseUrl}/ewp/echo`;
    let xml = buildCatalogue({
      hosts: [
        { adminEmail: 'ewp-admin@smile.test', heis: [HEI_ID], serverKeys: [b.serverKey], echoUrl: bEcho },
        { adminEmail: 'admin@a.example.org', heis: [A_HEI], clientKeys: [aKey], echoUrl: 'https://a.example.org/ewp/echo' },
        { adminEmail: 'admin@faulty.example.org', heis: [KNOWN, NEW], serverKeys: [double.serverKey], echoUrl: dEcho },
        { adminEmail: 'admin@other.example.org', heis: [OTHER], serverKeys: [otherKey], echoUrl: 'https://other.example.org/ewp/echo' },
      ],
      institutions: [
        { id: HEI_ID, names: [['en', 'SMILE Test University']] },
        { id: A_HEI, names: [['en', 'A University']] },
        { id: KNOWN, names: [['en', 'Known Faulty University']] },
        { id: NEW, names: [['en', 'New Faulty University']] },
        { id: OTHER, names: [['en', 'Other University']] },
      ],
    });
    xml = addInstitutionsApis(xml, bEcho, b.publicUrl);
    xml = addInstitutionsApis(xml, dEcho, double.baseUrl);
    xml = addInstitutionsApis(xml, 'https://other.example.org/ewp/echo', 'https://other.example.org');
    const cache = path.join(aDir, 'catalogue.xml');
    fs.writeFileSync(cache, xml);

    const pg = await Postgres.start(aDir);
    a = { dir: aDir, pg };
    const m = runEwpctl(['migrate', '--dir', path.join(REPO_ROOT, 'sql'), '--conninfo', pg.conninfo]);
    if (m.status !== 0) throw new Error(`ewpctl migrate failed:\n${describeRun(m)}`);
    // A's own row, and what it already holds of KNOWN (older than what the double publishes)
    pg.psql(`
      INSERT INTO smile.etablissement (schac_id, names, is_local) VALUES ('${A_HEI}', '[{"name":"A University"}]', true);
      INSERT INTO smile.etablissement (schac_id, names, abbreviation) VALUES ('${KNOWN}', '[{"lang":"en","name":"Known (old name)"}]', 'OLD');
      INSERT INTO smile.composante (etablissement_id, ounit_id, code, names, source)
        SELECT id, 'k-sci', 'KSCI', '[{"lang":"en","name":"Old Faculty K"}]', 'ewp' FROM smile.etablissement WHERE schac_id = '${KNOWN}';
      INSERT INTO smile.address (etablissement_id, kind, locality, country)
        SELECT id, 'mailing', 'Old Town', 'FR' FROM smile.etablissement WHERE schac_id = '${KNOWN}';
      INSERT INTO smile.contact (etablissement_id, names, emails)
        SELECT id, '[{"name":"Old office"}]', '{"old@known.faulty.example.org"}' FROM smile.etablissement WHERE schac_id = '${KNOWN}';`);
    const conf = structuredClone(b.conf);
    conf.ewp.hei_id = A_HEI;
    conf.keys.keys_dir = aKeys;
    conf.registry.cache = cache;
    conf.registry.url = `file://${cache}`;
    conf.database = { conninfo: pg.conninfo };
    a.confPath = path.join(aDir, 'ewpd.conf');
    fs.writeFileSync(a.confPath, renderConf(conf));
    // ewp.partner_syncs refers to smile.etablissement until migration 0003
    // (failures of partners never synced recorded too): which one is this?
    a.syncsNeedRow = pg.psql(`SELECT count(*) FROM pg_constraint WHERE conname = 'partner_syncs_hei_id_fkey'`) === '1';
    a.cacert = writeCaBundle(path.join(aDir, 'ca-bundle.pem'), [b.tlsFiles.certPem, double.tlsFiles.certPem]);
  } catch (e) {
    await double?.close();
    throw e;
  }
  // The double's correct answers are valid against the official schemas
  // (and ewpd's own, which ewpctl checks against), so that the faults
  // below are the only thing wrong with them.
  const inst = specPath('ewp-specs-api-institutions', 'response.xsd');
  const ou = specPath('ewp-specs-api-ounits', 'response.xsd');
  for (const hei of [KNOWN, NEW]) {
    assertValid(institutionsXml(hei), inst, `double's institutions answer for ${hei}`);
    assertValid(institutionsXml(hei), projectSchema('institutions-response.xsd'), `double's institutions answer for ${hei} (ewp-schemas)`);
    for (const [id] of DATA[hei].units) {
      assertValid(ounitsXml(hei, [id]), ou, `double's ounits answer for ${id}`);
      assertValid(ounitsXml(hei, [id]), projectSchema('ounits-response.xsd'), `double's ounits answer for ${id} (ewp-schemas)`);
    }
  }
  assertValid(errorXml('x'), specPath('ewp-specs-architecture', 'common-types.xsd'), 'double\'s error-response');
});

after(async () => {
  await double?.close();
  a?.pg.stop();
  if (a && !KEEP_TMP) fs.rmSync(a.dir, { recursive: true, force: true });
  await b?.cleanup();
});

const sync = (timeout, ...heis) => runEwpctlAsync(['-c', a.confPath, 'sync', 'institutions', '--cacert', a.cacert,
  '--schemas', path.join(REPO_ROOT, 'ewp-schemas'), '--timeout', String(timeout), ...heis]);

// The ERROR column of a partner's line: { result, error } or undefined.
function resultOf(r, hei) {
  const line = r.stdout.split('\n').find((l) => l.split(/\s+/)[0] === hei);
  if (!line) return undefined;
  const m = /^\S+\s+(\S+)\s+(\S+)\s*(.*)$/.exec(line);
  return m && { result: m[1], units: m[2], error: m[3] };
}

// Everything A holds that is not B's: rows of the four tables, whole.
const rowsNotOfB = () => a.pg.psql(`
  WITH b AS (SELECT id FROM smile.etablissement WHERE schac_id = '${HEI_ID}'),
       bu AS (SELECT id FROM smile.composante WHERE etablissement_id IN (SELECT id FROM b))
  SELECT 'etablissement ' || row_to_json(e)::text FROM smile.etablissement e WHERE e.id NOT IN (SELECT id FROM b)
  UNION ALL SELECT 'composante ' || row_to_json(c)::text FROM smile.composante c WHERE c.id NOT IN (SELECT id FROM bu)
  UNION ALL SELECT 'address ' || row_to_json(ad)::text FROM smile.address ad
    WHERE coalesce(ad.etablissement_id NOT IN (SELECT id FROM b), true) AND coalesce(ad.composante_id NOT IN (SELECT id FROM bu), true)
  UNION ALL SELECT 'contact ' || row_to_json(ct)::text FROM smile.contact ct
    WHERE coalesce(ct.etablissement_id NOT IN (SELECT id FROM b), true) AND coalesce(ct.composante_id NOT IN (SELECT id FROM bu), true)
  ORDER BY 1`);

// ewp.partner_syncs of one HEI, or undefined.
function syncRow(hei) {
  const s = a.pg.psql(`SELECT json_build_object('failures', consecutive_failures, 'error', last_error,
      'attempt', last_attempt_at, 'success', last_success_at)::text FROM ewp.partner_syncs WHERE hei_id = '${hei}'`);
  return s ? JSON.parse(s) : undefined;
}

/*
 * The exchanges a case is expected to have had with the double, per HEI
 * (KNOWN first, then NEW): the APIs called in order. Checked against what
 * the double received. This is the place for a later check of
 * ewp.message_log (one row per outbound exchange): the requests below
 * carry the X-Request-Ids such rows would have to hold.
 */
function assertExchanges(c, requests, run) {
  const want = [KNOWN, NEW].flatMap((hei) => c.exchanges.map((api) => `${api} ${hei}`));
  assert.deepEqual(requests.map((q) => `${q.api} ${q.form.get('hei_id')}`), want,
    `${c.title}: exchanges with the double\n${describeRun(run)}`);
  for (const q of requests) {
    assert.ok(q.signatureOk, `${c.title}: the double received a request not signed by A's client key: ${q.method} ${q.path}`);
    assert.match(q.requestId || '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  }
  assert.equal(new Set(requests.map((q) => q.requestId)).size, requests.length, 'a fresh X-Request-Id per request');
}

let caseNo = 0;

/*
 * One fault case: the double answers through c.answer(req, good) (reply
 * options, or null to never answer), or holds connections before TLS when
 * c.hangConnect. Runs `sync KNOWN B NEW` and checks the outcome.
 */
async function runFaultCase(t, c) {
  const n = ++caseNo;
  const abbr = `SMILE-${n}`; // a change at B that this run must bring to A
  b.pg.psql(`UPDATE smile.etablissement SET abbreviation = '${abbr}' WHERE schac_id = '${HEI_ID}'`);
  const rowsBefore = rowsNotOfB();
  const knownBefore = syncRow(KNOWN);
  const bBefore = syncRow(HEI_ID);
  const newBefore = syncRow(NEW);
  const from = double.requests.length;
  double.hangConnections = !!c.hangConnect;
  double.handle((req) => {
    const o = c.answer(req, goodAnswer(req));
    if (o) double.reply(req, o);
  });
  const timeout = c.timeout || 10;
  let r;
  try {
    r = await sync(timeout, KNOWN, HEI_ID, NEW);
  } finally {
    double.hangConnections = false;
  }
  const what = `${c.title}\n${describeRun(r)}`;
  // exit 1 is also what a sanitizer report ends with: it must not be one
  assert.doesNotMatch(r.stderr, /Sanitizer|runtime error/, `ewpctl under a sanitizer reported an error\n${what}`);
  assert.equal(r.status, 1, `some partner failed: exit 1\n${what}`);
  for (const hei of [KNOWN, NEW]) {
    const res = resultOf(r, hei);
    assert.equal(res?.result, 'failed', `${hei} fails\n${what}`);
    assert.match(res.error, c.expect, `${hei}: the error names the fault\n${what}`);
  }
  // B, synced between the two in the same run
  assert.equal(resultOf(r, HEI_ID)?.result, 'ok', `B still syncs\n${what}`);
  assert.equal(a.pg.psql(`SELECT abbreviation FROM smile.etablissement WHERE schac_id = '${HEI_ID}'`), abbr, `B's change reached A\n${what}`);
  const bAfter = syncRow(HEI_ID);
  assert.equal(bAfter.failures, 0);
  assert.notEqual(bAfter.success, bBefore?.success, 'B\'s last_success_at moved');
  // nothing written for the faulty partners
  assert.equal(rowsNotOfB(), rowsBefore, `nothing of KNOWN or NEW written\n${what}`);
  const known = syncRow(KNOWN);
  assert.equal(known?.failures, (knownBefore?.failures || 0) + 1, `KNOWN's failure counted\n${what}`);
  assert.equal(known.error, resultOf(r, KNOWN).error, 'ewp.partner_syncs holds the error printed');
  assert.notEqual(known.attempt, knownBefore?.attempt, 'last_attempt_at moved');
  const fresh = syncRow(NEW);
  if (a.syncsNeedRow) {
    assert.equal(fresh, undefined, `no partner_syncs row for an HEI without an institution row\n${what}`);
  } else {
    assert.equal(fresh?.failures, (newBefore?.failures || 0) + 1, `NEW's failure counted\n${what}`);
    assert.equal(fresh.error, resultOf(r, NEW).error, 'ewp.partner_syncs holds the error printed');
    assert.equal(fresh.success, null, 'NEW never synced');
  }
  assertExchanges(c, double.since(from), r);
  if (process.env.SHOW_MSG) t.diagnostic(`${resultOf(r, KNOWN).error} (${r.ms} ms)`);
  return r;
}

const HANG_S = 2;

const CASES = [
  {
    title: 'a correctly signed answer that is not well-formed XML',
    answer: (req, good) => ({ body: good.body.replace('</institutions-response>', '</institutions-respon') }),
    expect: /^institutions: invalid XML: .*\S/,
    exchanges: ['institutions'],
  },
  {
    title: 'well-formed XML in the wrong namespace (Institutions v1)',
    answer: (req, good) => ({ body: good.body.replace(NS_I, NS_I.replace('stable-v2', 'stable-v1')) }),
    expect: /^institutions: response does not match the schema: .*institutions-response/,
    exchanges: ['institutions'],
  },
  {
    title: 'a <hei> without <hei-id>',
    answer: (req, good) => ({ body: good.body.replace(/<hei-id>[^<]*<\/hei-id>/, '') }),
    expect: /^institutions: response does not match the schema: .*(hei-id|name)/,
    exchanges: ['institutions'],
  },
  {
    title: 'an unknown element inside <hei>',
    answer: (req, good) => ({ body: good.body.replace('<abbreviation>', '<favourite-colour>blue</favourite-colour><abbreviation>') }),
    expect: /^institutions: response does not match the schema: .*favourite-colour/,
    exchanges: ['institutions'],
  },
  {
    title: 'a valid Institutions answer, then an OUnits answer invalid against its schema (no ounit-code)',
    answer: (req, good) => (req.api === 'ounits' ? { body: good.body.replace(/<ounit-code>[^<]*<\/ounit-code>/, '') } : good),
    expect: /^organizational-units: response does not match the schema: .*ewp-specs-api-ounits.*ounit-code/,
    exchanges: ['institutions', 'ounits'],
  },
  {
    title: 'a Digest that is not the body\'s (signature well made over it)',
    answer: (req, good) => ({ ...good, digestOf: `${good.body} ` }),
    expect: /response signature refused: Digest mismatch/,
    exchanges: ['institutions'],
  },
  {
    title: 'an answer signed with the server key of another host of the catalogue',
    answer: (req, good) => ({ ...good, key: otherKey }),
    expect: /response signature refused: keyId [0-9a-f]{64} is not a server key of the host serving this endpoint/,
    exchanges: ['institutions'],
  },
  {
    title: 'no X-Request-Id in the answer',
    answer: (req, good) => ({ ...good, requestId: null }),
    expect: /response signature refused: response has no X-Request-Id; ours was [0-9a-f-]{36}/,
    exchanges: ['institutions'],
  },
  {
    title: 'another X-Request-Id than ours (signed as such)',
    answer: (req, good) => ({ ...good, requestId: crypto.randomUUID() }),
    expect: /response signature refused: response X-Request-Id "[0-9a-f-]{36}" does not echo ours \([0-9a-f-]{36}\)/,
    exchanges: ['institutions'],
  },
  {
    title: 'HTTP 500 with a signed error-response',
    answer: () => ({ status: 500, body: errorXml('the partner database is on fire') }),
    expect: /^institutions: HTTP 500\b.*the partner database is on fire/,
    exchanges: ['institutions'],
  },
  {
    title: `a partner that reads the request and never answers (--timeout ${HANG_S})`,
    answer: () => null,
    timeout: HANG_S,
    expect: /^institutions: timeout: /,
    exchanges: ['institutions'],
    bounded: true,
  },
  {
    title: `a partner that accepts the connection and never starts TLS (--timeout ${HANG_S})`,
    hangConnect: true,
    answer: () => null,
    timeout: HANG_S,
    expect: /^institutions: timeout: /,
    exchanges: [],
    bounded: true,
  },
  {
    title: `an answer announcing a body over the ${CEILING}-byte ceiling (Content-Length)`,
    answer: () => ({ body: bigBody }),
    expect: new RegExp(`^institutions: too_large: response announces a body larger than the ceiling of ${CEILING} bytes`),
    exchanges: ['institutions'],
  },
  {
    title: `a chunked answer growing past the ${CEILING}-byte ceiling`,
    answer: () => ({ body: bigBody, chunked: true }),
    expect: new RegExp(`^institutions: too_large: response body larger than the ceiling of ${CEILING} bytes`),
    exchanges: ['institutions'],
  },
];

for (const c of CASES) {
  itest(() => b, `sync faults: ${c.title} → both HEIs of that partner fail, nothing written, B synced`, async (t) => {
    if (/ceiling/.test(c.title) && !bigBody) {
      // well-formed, valid, and signed: only its size is wrong
      bigBody = Buffer.from(institutionsXml(KNOWN, { padding: CEILING }));
      assert.ok(bigBody.length > CEILING);
    }
    const r = await runFaultCase(t, c);
    if (c.bounded) {
      // two HEIs, each given up after the timeout; B in between answers at once
      assert.ok(r.ms >= 2 * c.timeout * 1000 - 200, `each hanging HEI waited for the timeout (${r.ms} ms)`);
      assert.ok(r.ms < 2 * c.timeout * 1000 + 8000, `run time bounded by the timeouts: ${r.ms} ms\n${describeRun(r)}`);
    }
  });
}

itest(() => b, 'sync faults: the same double answering correctly → both HEIs synced, with their units, addresses and contacts (control)', async () => {
  const from = double.requests.length;
  double.handle((req) => double.reply(req, goodAnswer(req)));
  const r = await sync(10, KNOWN, HEI_ID, NEW);
  assert.equal(r.status, 0, describeRun(r));
  assert.deepEqual([KNOWN, HEI_ID, NEW].map((h) => `${resultOf(r, h)?.result} ${resultOf(r, h)?.units}`), ['ok 2', 'ok 1', 'ok 1'],
    describeRun(r));
  assert.equal(a.pg.psql(`SELECT e.schac_id || '|' || e.names::text || '|' || e.abbreviation || '|' ||
      string_agg(c.ounit_id || '<' || coalesce(p.ounit_id, '-') || '|' || c.names::text, ';' ORDER BY c.ounit_id)
    FROM smile.etablissement e JOIN smile.composante c ON c.etablissement_id = e.id
    LEFT JOIN smile.composante p ON p.id = c.parent_id WHERE e.schac_id IN ('${KNOWN}', '${NEW}')
    GROUP BY e.schac_id, e.names::text, e.abbreviation ORDER BY 1`),
  `${KNOWN}|[{"lang": "en", "name": "Known Faulty University"}]|KFU|k-math<k-sci|[{"lang": "en", "name": "Mathematics K"}];` +
    'k-sci<-|[{"lang": "en", "name": "Faculty of Science K"}]\n' +
    `${NEW}|[{"lang": "en", "name": "New Faulty University"}]|NFU|n-law<-|[{"lang": "en", "name": "Law School N"}]`);
  // KNOWN's old mailing address and contact replaced by what the double publishes
  assert.equal(a.pg.psql(`SELECT string_agg(e.schac_id || '|' || ad.kind || '|' || ad.locality || '|' || ct.emails::text, ';' ORDER BY e.schac_id)
    FROM smile.etablissement e JOIN smile.address ad ON ad.etablissement_id = e.id JOIN smile.contact ct ON ct.etablissement_id = e.id
    WHERE e.schac_id IN ('${KNOWN}', '${NEW}')`),
  `${KNOWN}|street|Lyon|{io@known.faulty.example.org};${NEW}|street|Lille|{io@new.faulty.example.org}`);
  const known = syncRow(KNOWN);
  assert.equal(known.failures, 0);
  assert.ok(known.success, 'last_success_at set');
  const got = double.since(from).map((q) => `${q.api} ${q.form.get('hei_id')} ${q.form.getAll('ounit_id').join(',')}`);
  assert.deepEqual(got, [`institutions ${KNOWN} `, `ounits ${KNOWN} k-sci`, `ounits ${KNOWN} k-math`,
    `institutions ${NEW} `, `ounits ${NEW} n-law`], describeRun(r));
  assert.ok(double.since(from).every((q) => q.signatureOk), 'every request signed by A');
});

// Not a fault of the partner: an ordinary change of its street address
// must replace the one A holds (one address per kind and owner).
itest(() => b, 'sync: a partner whose street address changed → the new one replaces the old one', async () => {
  DATA[KNOWN].locality = 'Marseille';
  let r;
  try {
    double.handle((req) => double.reply(req, goodAnswer(req)));
    r = await sync(10, KNOWN);
  } finally {
    DATA[KNOWN].locality = 'Lyon';
  }
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(resultOf(r, KNOWN)?.result, 'ok', describeRun(r));
  assert.equal(a.pg.psql(`SELECT string_agg(ad.kind || '|' || ad.locality, ';') FROM smile.address ad
    JOIN smile.etablissement e ON e.id = ad.etablissement_id WHERE e.schac_id = '${KNOWN}'`), 'street|Marseille');
});

// Not a fault either: the official Institutions v2 schema lets a partner
// give several website-url (with xml:lang), course-catalogue-url and
// root-ounit-id. Such an answer is valid EWP and must be synced.
itest(() => b, 'sync: an answer using optional parts of the official Institutions v2 schema (website-url with xml:lang, course-catalogue-url, root-ounit-id) is synced', async () => {
  const body = institutionsXml(NEW, { officialExtras: true });
  assertValid(body, specPath('ewp-specs-api-institutions', 'response.xsd'), 'the answer (official schema)');
  double.handle((req) => double.reply(req, req.api === 'institutions' ? { body } : goodAnswer(req)));
  const r = await sync(10, NEW);
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(resultOf(r, NEW)?.result, 'ok', describeRun(r));
  assert.equal(a.pg.psql(`SELECT website_url FROM smile.etablissement WHERE schac_id = '${NEW}'`), `https://www.${NEW}/en`);
});

// Not a failure: a partner that ignores the ounit_id filter and answers
// every call with all its units, plus one it never listed, plus a repeat.
itest(() => b, 'sync: units not asked for, not listed or repeated in OUnits answers are ignored; each unit read once', async () => {
  const from = double.requests.length;
  const extra = `  <ounit>\n    <ounit-id>k-ghost</ounit-id>\n    <ounit-code>GHOST</ounit-code>\n    <name>Never listed</name>\n  </ounit>\n`;
  double.handle((req) => {
    if (req.api !== 'ounits') return double.reply(req, goodAnswer(req));
    const all = ounitsXml(req.form.get('hei_id'), DATA[req.form.get('hei_id')].units.map(([u]) => u));
    return double.reply(req, { body: all.replace('</ounits-response>', `${extra}${all.split('\n').slice(2, -2).join('\n')}\n</ounits-response>`) });
  });
  const r = await sync(10, KNOWN);
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(`${resultOf(r, KNOWN)?.result} ${resultOf(r, KNOWN)?.units}`, 'ok 2', describeRun(r));
  assert.equal(a.pg.psql(`SELECT string_agg(c.ounit_id || ':' || c.code, ',' ORDER BY c.ounit_id) FROM smile.composante c
    JOIN smile.etablissement e ON e.id = c.etablissement_id WHERE e.schac_id = '${KNOWN}'`), 'k-math:KMATH,k-sci:KSCI');
  assert.equal(double.since(from).filter((q) => q.api === 'ounits').length, 2, 'one call per listed unit, as before');
});
