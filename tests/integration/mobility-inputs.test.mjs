// Hostile and malformed inputs to the mobility APIs (OMobilities v3,
// OMobility LAs v1.2, IMobilities v2): bad inputs
// answered with a precise error-response (never a 500, never a partial
// write), hostile XML refused, permissions per the specs. One real ewpd,
// one real PostgreSQL, real signatures; the callers are the fixture's
// partner.example.org key (the receiving HEI of our outgoing mobilities,
// the sending HEI of our incoming one), our own key (the sending HEI) and
// the D hosts' key (a third HEI).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before } from 'node:test';

import { Ewpd, HEI_ID, PARTNER_HEI, describeRun, itest, runEwpctl } from './lib/daemon.mjs';
import { assertErrorResponse, assertStatus, exchange } from './lib/ewp.mjs';
import { PROJECT_SCHEMAS, specPath } from './lib/env.mjs';
import { pollUntil } from './lib/poll.mjs';
import { assertValid, parseXml, xmlEscape } from './lib/xml.mjs';

const GH = 'https://github.com/erasmus-without-paper';
const OMOB = `${GH}/ewp-specs-api-omobilities/blob/stable-v3/endpoints`;
const LAS = `${GH}/ewp-specs-api-omobility-las/blob/stable-v1/endpoints`;
const IMOB = `${GH}/ewp-specs-api-imobilities/blob/stable-v2/endpoints`;
const OMOB_ID = 'review-omob-1';
const IN_ID = 'review-in-1';

let fx;
let ownKey; // our client key (the sending HEI of our outgoing mobilities)

const sql = (s) => fx.pg.psql(s).trim();
// psql that may fail: { status, stderr }
const spawnSyncPsql = (s) => spawnSync('psql', [fx.pg.conninfo, '-X', '-v', 'ON_ERROR_STOP=1', '-tAqc', s], { encoding: 'utf8' });
const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
const form = (params) => params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

before(async () => {
  fx = await Ewpd.create('mobility-inputs', { pg: true, start: false, conf: { ewp: { schema_dir: PROJECT_SCHEMAS } } });
  sql(`INSERT INTO smile.etablissement (schac_id, names, is_local)
       VALUES (${q(HEI_ID)}, '[{"name":"SMILE Test University"}]', true)`);
  // our outgoing student, received by PARTNER_HEI
  sql(`INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id, is_outgoing, given_names,
       family_name, global_id, birth_date, nationality, gender, email, agreement_isced, nominee_isced, eqf_level,
       receiving_academic_year_id, proposal_id)
       VALUES (${q(HEI_ID)}, ${q(OMOB_ID)}, ${q(PARTNER_HEI)}, true, 'Jeanne', 'Dupont',
       'urn:schac:personalUniqueCode:int:esi:smile.test:r1', '2004-01-01', 'FR', 2, 'jeanne@smile.test',
       '0541', '0541', 6, '2026/2027', 'x')`);
  // PARTNER_HEI's student coming to us, with the dates our staff entered
  sql(`INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id, is_outgoing, given_names,
       family_name, global_id, receiving_academic_year_id, proposal_id, actual_arrival_date)
       VALUES (${q(PARTNER_HEI)}, ${q(IN_ID)}, ${q(HEI_ID)}, false, 'Ola', 'Nordmann',
       'urn:schac:personalUniqueCode:int:esi:partner.example.org:r2', '2026/2027', 'p1', '2026-09-01')`);
  ownKey = { ...fx.clientKey, privateKey: crypto.createPrivateKey(fs.readFileSync(fx.clientKey.pemPath)) };
  await fx.start();
});

after(async () => {
  await fx?.cleanup();
});

async function send(o, key = fx.partnerKey) {
  const req = fx.signed({ key, ...o });
  const res = await fx.send(req);
  return { req, res };
}

const getForm = (path, params, key) => send({ path: `${path}?${form(params)}` }, key);
const postXml = (path, body, key, contentType = 'text/xml; charset=utf-8') =>
  send({ method: 'POST', path, body, contentType }, key);

const proposalId = () => sql(`SELECT proposal_id FROM smile.mobility WHERE omobility_id = ${q(OMOB_ID)}`);
const status = () => sql(`SELECT status || '|' || coalesce(status_comment, '') FROM smile.mobility WHERE omobility_id = ${q(OMOB_ID)}`);

itest(() => fx, 'OMobility LAs index: modified_since with out-of-range fields → 400, not a database error', async () => {
  for (const ms of ['2026-13-01T00:00:00Z', '2026-02-30T10:00:00Z', '0000-01-01T00:00:00Z', '2026-01-01T25:00:00+01:00',
    '2026-01-01T10:00:00+99:00']) {
    const { req, res } = await getForm('/ewp/omobility-las/index', [['sending_hei_id', HEI_ID], ['modified_since', ms]]);
    const msg = assertErrorResponse(res, 400, req, `modified_since=${ms}`);
    assert.match(msg, /modified_since/, `the message names the parameter${exchange(req, res)}`);
  }
  const { req, res } = await getForm('/ewp/omobility-las/index', [['sending_hei_id', HEI_ID], ['modified_since', '2024-02-29T23:59:59.5-03:00']]);
  assertStatus(res, 200, req, 'a valid modified_since (leap day, fraction, offset)');
});

const updXml = (kind, id, proposal, comment, decl = '<?xml version="1.0" encoding="UTF-8"?>') => `${decl}
<omobilities-update-request xmlns="${OMOB}/update-request.xsd">
  <${kind}-proposal-v1>
    <omobility-id>${xmlEscape(id)}</omobility-id>
    <proposal-id>${xmlEscape(proposal)}</proposal-id>${comment === undefined ? '' : `
    <comment>${comment}</comment>`}
  </${kind}-proposal-v1>
</omobilities-update-request>
`;

itest(() => fx, 'OMobilities update: a DTD with an external entity is refused (400), nothing read, nothing written', async () => {
  const before = status();
  for (const dtd of [
    '<!DOCTYPE omobilities-update-request [<!ENTITY x SYSTEM "file:///etc/hostname">]>',
    '<!DOCTYPE omobilities-update-request SYSTEM "http://127.0.0.1:9/x.dtd">',
    '<!DOCTYPE omobilities-update-request [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
  ]) {
    const body = updXml('reject', OMOB_ID, proposalId(), '&x;&b;', `<?xml version="1.0" encoding="UTF-8"?>\n${dtd}`);
    const { req, res } = await postXml('/ewp/omobilities/v3/update', body);
    const msg = assertErrorResponse(res, 400, req, 'update with a DTD');
    assert.match(msg, /DOCTYPE/, `refused for its DTD${exchange(req, res)}`);
    assert.ok(!res.body.includes('aaaaaaaaaa'), `no entity expanded${exchange(req, res)}`);
  }
  assert.equal(status(), before, 'the nomination is untouched');
});

itest(() => fx, 'OMobilities update: an ISO-8859-1 body is read as such (the comment is stored in UTF-8)', async () => {
  const comment = 'Dossier incomplet : relevé de notes manquant';
  const text = updXml('reject', OMOB_ID, proposalId(), comment, '<?xml version="1.0" encoding="ISO-8859-1"?>');
  const { req, res } = await postXml('/ewp/omobilities/v3/update', Buffer.from(text, 'latin1'), fx.partnerKey,
    'text/xml; charset=ISO-8859-1');
  assertStatus(res, 200, req, 'ISO-8859-1 reject');
  assert.equal(status(), `rejected|${comment}`);
});

itest(() => fx, 'OMobilities update: only the receiving HEI decides; the sending HEI (our own key) and a third HEI get 400, nothing written', async () => {
  const before = status();
  for (const key of [ownKey, fx.dKey]) {
    const { req, res } = await postXml('/ewp/omobilities/v3/update', updXml('approve', OMOB_ID, proposalId()), key);
    assertErrorResponse(res, 400, req, 'update by an HEI that is not the receiving one');
  }
  assert.equal(status(), before);
});

itest(() => fx, 'OMobilities update: wrong method, form body, empty body, wrong root namespace, two decisions: precise 4xx', async () => {
  let r = await send({ path: '/ewp/omobilities/v3/update' });
  assertErrorResponse(r.res, 405, r.req, 'GET update');
  r = await postXml('/ewp/omobilities/v3/update', 'omobility_id=x', fx.partnerKey, 'application/x-www-form-urlencoded');
  assertErrorResponse(r.res, 415, r.req, 'form update');
  r = await postXml('/ewp/omobilities/v3/update', '');
  assertErrorResponse(r.res, 400, r.req, 'empty update');
  r = await postXml('/ewp/omobilities/v3/update', updXml('approve', OMOB_ID, proposalId()).replace('stable-v3', 'stable-v2'));
  assertErrorResponse(r.res, 400, r.req, 'v2 namespace');
  const two = updXml('approve', OMOB_ID, proposalId()).replace('</omobilities-update-request>',
    `<reject-proposal-v1><omobility-id>${OMOB_ID}</omobility-id><proposal-id>${proposalId()}</proposal-id><comment>no</comment></reject-proposal-v1></omobilities-update-request>`);
  r = await postXml('/ewp/omobilities/v3/update', two);
  assertErrorResponse(r.res, 400, r.req, 'two decisions');
});

// An omobility-las-update-request valid against our intake schema, about an LA nobody has.
const lasUpdXml = (id) => `<?xml version="1.0" encoding="UTF-8"?>
<omobility-las-update-request xmlns="${LAS}/update-request.xsd" xmlns:la="${LAS}/get-response.xsd">
  <sending-hei-id>${HEI_ID}</sending-hei-id>
  <approve-proposal-v1>
    <omobility-id>${xmlEscape(id)}</omobility-id>
    <changes-proposal-id>p-1</changes-proposal-id>
    <signature><la:signer-name>A. Partner</la:signer-name><la:signer-position>Coordinator</la:signer-position>
      <la:signer-email>a@partner.example.org</la:signer-email><la:timestamp>2026-05-01T10:00:00Z</la:timestamp></signature>
  </approve-proposal-v1>
</omobility-las-update-request>
`;

itest(() => fx, 'OMobility LAs update: a form-encoded body is 415, as in OMobilities update', async () => {
  const r = await postXml('/ewp/omobility-las/update', form([['sending_hei_id', HEI_ID], ['omobility_id', OMOB_ID]]), fx.partnerKey,
    'application/x-www-form-urlencoded');
  const msg = assertErrorResponse(r.res, 415, r.req, 'form LAs update');
  assert.match(msg, /not form parameters/, `says why${exchange(r.req, r.res)}`);
});

itest(() => fx, 'OMobility LAs and OMobilities update follow a [ewp] schema_dir change on reload (both ways)', async () => {
  const path = { las: '/ewp/omobility-las/update', omob: '/ewp/omobilities/v3/update' };
  const body = { las: lasUpdXml('no-such-la'), omob: updXml('approve', 'no-such-omob', 'x') };
  const statuses = async () => {
    const out = {};
    for (const k of ['las', 'omob']) out[k] = (await postXml(path[k], body[k])).res.status;
    return out;
  };
  // a valid request about an unknown mobility: past the schema, refused by the database
  assert.deepEqual(await statuses(), { las: 400, omob: 400 }, 'with the project schemas');
  const empty = `${fx.dir}/no-schemas`;
  fs.mkdirSync(empty, { recursive: true });
  fx.writeConfig({ ewp: { schema_dir: empty } });
  fx.signal('SIGHUP');
  // OMobilities update reloads its schema: once it answers 500, the reload is in effect
  await pollUntil(async () => { const s = await statuses(); return { ok: s.omob === 500, detail: JSON.stringify(s) }; }, 10000,
    'OMobilities update failing on the missing schema');
  for (let i = 0; i < 4; i++) {
    const r = await postXml(path.las, body.las);
    const msg = assertErrorResponse(r.res, 500, r.req, 'LAs update without its schema');
    assert.match(msg, /schema/, `the schema is named${exchange(r.req, r.res)}`);
  }
  fx.writeConfig({ ewp: { schema_dir: PROJECT_SCHEMAS } });
  fx.signal('SIGHUP');
  await pollUntil(async () => { const s = await statuses(); return { ok: s.omob === 400 && s.las === 400, detail: JSON.stringify(s) }; }, 10000,
    'both updates validating again');
});

itest(() => fx, 'get endpoints: more distinct ids than max-omobility-ids → 400; duplicates of one id count once', async () => {
  const many = Array.from({ length: 101 }, (_, i) => ['omobility_id', `id-${i}`]);
  const dup = Array.from({ length: 300 }, () => ['omobility_id', OMOB_ID]);
  for (const [path, extra] of [['/ewp/omobilities/v3/get', []], ['/ewp/omobility-las/get', [['sending_hei_id', HEI_ID]]],
    ['/ewp/imobilities/v2', []]]) {
    let r = await send({ method: 'POST', path, body: form([...extra, ...many]), contentType: 'application/x-www-form-urlencoded' });
    assertErrorResponse(r.res, 400, r.req, `${path} with 101 ids`);
    r = await send({ method: 'POST', path, body: form([...extra, ...dup]), contentType: 'application/x-www-form-urlencoded' });
    assertStatus(r.res, 200, r.req, `${path} with one id 300 times`);
  }
  const r = await send({ method: 'POST', path: '/ewp/omobilities/v3/get', body: form(dup), contentType: 'application/x-www-form-urlencoded' });
  assert.equal(parseXml(r.res.body).elements(`${OMOB}/get-response.xsd`, 'student-mobility').length, 1, 'answered once');
});

itest(() => fx, 'IMobilities get: the sending HEI sees the dates, the receiving side and third HEIs see nothing', async () => {
  const ns = `${IMOB}/get-response.xsd`;
  let r = await getForm('/ewp/imobilities/v2', [['omobility_id', IN_ID]]);
  assertStatus(r.res, 200, r.req, 'imobilities by the sending HEI');
  const sm = parseXml(r.res.body).elements(ns, 'student-mobility');
  assert.equal(sm.length, 1);
  assert.equal(sm[0].element(ns, 'actual-arrival-date').text, '2026-09-01');
  for (const key of [ownKey, fx.dKey]) {
    r = await getForm('/ewp/imobilities/v2', [['omobility_id', IN_ID]], key);
    assertStatus(r.res, 200, r.req, 'imobilities by another HEI');
    assert.equal(parseXml(r.res.body).elements(ns, 'student-mobility').length, 0, `nothing for another HEI${exchange(r.req, r.res)}`);
  }
});

itest(() => fx, 'ewpctl mobility list|show: a partner\'s name with line breaks and escapes cannot add or forge lines', async () => {
  const id = 'review-forge-1';
  const forged = `999     in  ${PARTNER_HEI}   fake-1  ${HEI_ID}  Forged Row  2026/2027 approved`;
  sql(`INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id, is_outgoing, given_names,
       family_name, global_id, receiving_academic_year_id, proposal_id, status_comment)
       VALUES (${q(PARTNER_HEI)}, ${q(id)}, ${q(HEI_ID)}, false, E'Eve\\n${forged}\\r\\t\\u001b[2J', 'Mallory',
       'urn:schac:personalUniqueCode:int:esi:partner.example.org:r9', '2026/2027', 'p9', E'no\\nstatus         approved')`);
  const list = runEwpctl(['mobility', 'list', '--conninfo', fx.pg.conninfo]);
  assert.equal(list.status, 0, describeRun(list));
  assert.ok(!list.stdout.includes('\x1b'), `no escape reaches the terminal\n${describeRun(list)}`);
  const lines = list.stdout.split('\n').filter((l) => l.includes('Mallory') || l.includes('Forged Row'));
  assert.equal(lines.length, 1, `the partner's row stays one line\n${describeRun(list)}`);
  assert.match(list.stdout, /\((\d+) mobilities\)/);
  const n = Number(list.stdout.match(/\((\d+) mobilities\)/)[1]);
  assert.equal(list.stdout.trim().split('\n').length, n + 2, `header, one line per mobility, count\n${describeRun(list)}`);
  const show = runEwpctl(['mobility', 'show', `${PARTNER_HEI}:${id}`, '--conninfo', fx.pg.conninfo]);
  assert.equal(show.status, 0, describeRun(show));
  assert.ok(!show.stdout.includes('\x1b'), describeRun(show));
  assert.equal(show.stdout.split('\n').filter((l) => /^status\s+approved/.test(l)).length, 0,
    `no forged status line\n${describeRun(show)}`);
  assert.equal(show.stdout.split('\n').filter((l) => l.includes('Forged Row')).length, 1, describeRun(show));
});

itest(() => fx, 'ewpctl mobility list: columns are padded by characters, so an accented name keeps the columns after it in place', async () => {
  sql(`INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id, is_outgoing, given_names,
       family_name, global_id, birth_date, nationality, gender, email, agreement_isced, nominee_isced, eqf_level,
       receiving_academic_year_id, proposal_id)
       VALUES (${q(HEI_ID)}, 'review-accents-1', ${q(PARTNER_HEI)}, true, 'Zoë Jürgen', 'Schäfer-Müller',
       'urn:schac:personalUniqueCode:int:esi:smile.test:r7', '2003-02-02', 'DE', 2, 'zoe@smile.test',
       '0541', '0541', 6, '2026/2027', 'y')`);
  const list = runEwpctl(['mobility', 'list', '--conninfo', fx.pg.conninfo]);
  assert.equal(list.status, 0, describeRun(list));
  const lines = list.stdout.split('\n');
  // [...s] counts characters (code points), as a terminal shows them
  const col = (l, s) => [...l.slice(0, l.indexOf(s))].length;
  const yearCol = col(lines[0], 'YEAR');
  const accented = lines.find((l) => l.includes('Schäfer-Müller'));
  const plain = lines.find((l) => l.includes('Ola Nordmann'));
  assert.ok(accented && plain, describeRun(list));
  assert.equal(col(plain, '2026/2027'), yearCol, `the YEAR column of a plain row\n${describeRun(list)}`);
  assert.equal(col(accented, '2026/2027'), yearCol, `the YEAR column after an accented name\n${describeRun(list)}`);
  assert.equal(col(accented, 'pending'), col(plain, 'pending'), `the STATUS column too\n${describeRun(list)}`);
});

itest(() => fx, 'an outgoing mobility missing a field the OMobilities v3 schema requires cannot be written, whoever writes it', async () => {
  const insert = (extra, values) => spawnSyncPsql(`INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id,
      is_outgoing, given_names, family_name, global_id, receiving_academic_year_id, proposal_id${extra})
    VALUES (${q(HEI_ID)}, 'incomplete-1', ${q(PARTNER_HEI)}, true, 'Jan', 'Nowak',
      'urn:schac:personalUniqueCode:int:esi:smile.test:inc1', '2026/2027', 'x'${values})`);
  const r = insert('', '');
  assert.notEqual(r.status, 0, 'refused');
  assert.match(r.stderr, /mobility_outgoing_complete/);
  assert.equal(sql("SELECT count(*) FROM smile.mobility WHERE omobility_id = 'incomplete-1'"), '0');
  // a partner's nomination (incoming) may lack them: the partner's schema let it
  const ok = spawnSyncPsql(`INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id,
      is_outgoing, given_names, family_name, global_id, receiving_academic_year_id, proposal_id)
    VALUES (${q(PARTNER_HEI)}, 'incomplete-2', ${q(HEI_ID)}, false, 'Jan', 'Nowak',
      'urn:schac:personalUniqueCode:int:esi:p:inc2', '2026/2027', 'x')`);
  assert.equal(ok.status, 0, ok.stderr);
});

itest(() => fx, 'a registration moved by another transaction meanwhile is advanced, not taken for a missing one', async () => {
  const id = sql(`WITH e AS (INSERT INTO smile.etablissement (schac_id, names) VALUES ('race.example.org', '[{"name": "Race"}]')
      ON CONFLICT (schac_id) DO UPDATE SET names = EXCLUDED.names RETURNING id)
    INSERT INTO smile.inscription (given_names, family_name, home_etablissement_id, step_id, academic_year)
    SELECT 'Rita', 'Race', e.id, (SELECT id FROM smile.step WHERE code = 'course'), 2026 FROM e RETURNING id`);
  // another transaction moves it to approval_host and commits a moment later
  const other = spawn('psql', [fx.pg.conninfo, '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-c',
    `BEGIN; UPDATE smile.inscription SET step_id = (SELECT id FROM smile.step WHERE code = 'approval_host') WHERE id = ${id};
     SELECT pg_sleep(1); COMMIT;`]);
  const done = new Promise((resolve) => other.on('exit', resolve));
  await new Promise((r) => setTimeout(r, 300));
  const r = spawnSyncPsql(`SELECT smile.inscription_advance(${id}, 'approval_host')`);
  assert.equal(await done, 0, 'the other transaction committed');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 't');
  assert.equal(sql(`SELECT s.code FROM smile.inscription i JOIN smile.step s ON s.id = i.step_id WHERE i.id = ${id}`), 'approval_base');
});
