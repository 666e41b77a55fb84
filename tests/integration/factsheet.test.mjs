// Mobility Factsheet API v1, served from the file named by [ewp] factsheet
// (conf/factsheet.example.xml with our hei-id; TLS on, as https URLs are
// what our manifest schema accepts): the parameter cases of the
// validator (ewp-notes 10.3) over GET and POST, schema validity against the
// official and our XSDs, the manifest entry present only when the file is
// configured, `ewpd -n` refusing bad files with the reason, and SIGHUP
// keeping the served factsheet when the new file is bad. No database: the
// node's conninfo points nowhere, and the API must not care.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';

import { Ewpd, HEI_ID, PARTNER_HEI, itest, renderConf } from './lib/daemon.mjs';
import { assertErrorResponse, assertStatus, assertXmlContentType, exchange } from './lib/ewp.mjs';
import { EWPD, NS, PROJECT_SCHEMAS, REPO_ROOT, projectSchema, specPath } from './lib/env.mjs';
import { pollUntil } from './lib/poll.mjs';
import { assertValid, parseXml } from './lib/xml.mjs';

const NS_FS = 'https://github.com/erasmus-without-paper/ewp-specs-api-factsheet/tree/stable-v1';
const NS_FS_ENTRY = 'https://github.com/erasmus-without-paper/ewp-specs-api-factsheet/blob/stable-v1/manifest-entry.xsd';
const NS_PHONE = 'https://github.com/erasmus-without-paper/ewp-specs-types-phonenumber/tree/stable-v1';
const PATH = '/ewp/factsheet';
const EXAMPLE = fs.readFileSync(path.join(REPO_ROOT, 'conf', 'factsheet.example.xml'), 'utf8');
const NOWHERE_DB = 'host=/nonexistent-ewpd-test dbname=ewpd connect_timeout=1';

// The example file, made ours (hei-id) and, optionally, edited.
function factsheetXml(edit = (s) => s) {
  assert.ok(EXAMPLE.includes('<hei-id>example.edu</hei-id>'), 'conf/factsheet.example.xml must hold <hei-id>example.edu</hei-id>');
  return edit(EXAMPLE.replace('<hei-id>example.edu</hei-id>', `<hei-id>${HEI_ID}</hei-id>`));
}

let fx; // factsheet configured
let plain; // no factsheet key at all
let fsPath;
before(async () => {
  fx = await Ewpd.create('factsheet', { tls: true, start: false });
  fsPath = path.join(fx.dir, 'factsheet.xml');
  fs.writeFileSync(fsPath, factsheetXml());
  fx.writeConfig({ ewp: { factsheet: 'factsheet.xml', schema_dir: PROJECT_SCHEMAS }, database: { conninfo: NOWHERE_DB } });
  await fx.start();
  plain = await Ewpd.create('factsheet-off', { tls: true, conf: { database: { conninfo: NOWHERE_DB } } });
});
after(async () => {
  await fx?.cleanup();
  await plain?.cleanup();
});

function fsRequest(node, params, method = 'GET') {
  const qs = params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  if (method === 'GET') return node.signed({ path: qs ? `${PATH}?${qs}` : PATH });
  return node.signed({ method: 'POST', path: PATH, body: qs, contentType: 'application/x-www-form-urlencoded' });
}
const ids = (list) => list.map((v) => ['hei_id', v]);

// Sends, checks 200 and both schemas; returns the <factsheet> elements.
async function factsheets(idList, method = 'GET') {
  const req = fsRequest(fx, ids(idList), method);
  const res = await fx.send(req);
  assertStatus(res, 200, req, `factsheet ${method}`);
  assertXmlContentType(res, req);
  assertValid(res.body, specPath('ewp-specs-api-factsheet', 'response.xsd'), 'factsheet response (official)');
  assertValid(res.body, projectSchema('factsheet-response.xsd'), 'factsheet response (ewp-schemas)');
  const root = parseXml(res.body);
  assert.equal(root.local, 'factsheet-response', `root element${exchange(req, res)}`);
  assert.equal(root.ns, NS_FS, `root namespace${exchange(req, res)}`);
  return { req, res, sheets: root.elements(NS_FS, 'factsheet') };
}
const heiIds = (sheets) => sheets.map((f) => f.element(NS_FS, 'hei-id').text);

for (const method of ['GET', 'POST']) {
  itest(() => fx, `factsheet: ${method} our hei_id → the configured factsheet, valid, without the file's comments`, async () => {
    const { sheets, req, res } = await factsheets([HEI_ID], method);
    assert.deepEqual(heiIds(sheets), [HEI_ID], `hei ids${exchange(req, res)}`);
    const f = sheets[0];
    const cal = f.element(NS_FS, 'calendar');
    assert.equal(cal.element(NS_FS, 'student-nominations').element(NS_FS, 'autumn-term').text, '--05-15');
    assert.equal(cal.element(NS_FS, 'student-applications').element(NS_FS, 'spring-term').text, '--11-01');
    const app = f.element(NS_FS, 'application-info');
    assert.equal(app.element(NS_FS, 'email').text, 'incoming@example.edu');
    assert.equal(app.element(NS_PHONE, 'phone-number').element(NS_PHONE, 'e164').text, '+33231560000');
    assert.deepEqual(app.elements(NS_FS, 'website-url').map((u) => [u.attr('lang', NS.xml), u.text]), [
      ['fr', 'https://www.example.edu/international/venir-etudier'],
      ['en', 'https://www.example.edu/en/international/study-with-us']]);
    assert.deepEqual(f.elements(NS_FS, 'additional-requirement').map((r) => r.element(NS_FS, 'name').text),
      ['Language certificate', 'Transcript of Records', 'Health insurance']);
    assert.equal(f.element(NS_FS, 'additional-requirement').element(NS_FS, 'details').text,
      'Français B1 pour les cours en français, anglais B2 pour les cours en anglais', `UTF-8 text kept${exchange(req, res)}`);
    assert.equal(f.element(NS_FS, 'decision-weeks-limit').text, '4');
    assert.equal(f.element(NS_FS, 'tor-weeks-limit').text, '5');
    assert.equal(f.element(NS_FS, 'accessibility').element(NS_FS, 'name').text, 'Relais Handicap');
    assert.equal(f.element(NS_FS, 'additional-info').element(NS_FS, 'type').text, 'Recognition process');
    const body = res.body.toString('utf8');
    assert.ok(!body.includes('<!--'), `comments of the file must not be sent${exchange(req, res)}`);
    assert.ok(!body.includes('Relais Handicap</name>\n'), `indentation of the file must not be sent${exchange(req, res)}`);
  });
}

itest(() => fx, 'factsheet: unknown hei_id → empty factsheet-response; known + unknown → only ours', async () => {
  let r = await factsheets(['unknown.example.org']);
  assert.deepEqual(heiIds(r.sheets), [], `empty root${exchange(r.req, r.res)}`);
  r = await factsheets([PARTNER_HEI, 'unknown.example.org'], 'POST');
  assert.deepEqual(heiIds(r.sheets), [], `a HEI of the catalogue that is not ours has no factsheet here${exchange(r.req, r.res)}`);
  r = await factsheets(['unknown.example.org', HEI_ID, PARTNER_HEI], 'POST');
  assert.deepEqual(heiIds(r.sheets), [HEI_ID], `only the known one${exchange(r.req, r.res)}`);
  r = await factsheets([HEI_ID.toUpperCase()]);
  assert.deepEqual(heiIds(r.sheets), [], `ids are compared exactly${exchange(r.req, r.res)}`);
});

itest(() => fx, 'factsheet: duplicated hei_id answered once; 1,000 copies (POST, the form parser limit) → once', async () => {
  let r = await factsheets([HEI_ID, HEI_ID, HEI_ID]);
  assert.deepEqual(heiIds(r.sheets), [HEI_ID], `duplicates once${exchange(r.req, r.res)}`);
  r = await factsheets(Array(1000).fill(HEI_ID), 'POST');
  assert.deepEqual(heiIds(r.sheets), [HEI_ID], `1,000 copies${exchange(r.req, r.res)}`);
});

itest(() => fx, 'factsheet: missing hei_id → 400; 11 distinct ids → 400 naming max-hei-ids; 10 distinct + duplicates → 200', async () => {
  const eleven = Array.from({ length: 11 }, (_, i) => `h${i}.example.org`);
  for (const method of ['GET', 'POST']) {
    let req = fsRequest(fx, [], method);
    let msg = assertErrorResponse(await fx.send(req), 400, req, `no parameter (${method})`);
    assert.match(msg, /hei_id is required/);
    req = fsRequest(fx, [['heiid', HEI_ID], ['echo', 'x']], method);
    msg = assertErrorResponse(await fx.send(req), 400, req, `no hei_id among other parameters (${method})`);
    assert.match(msg, /hei_id is required/);
    req = fsRequest(fx, ids([HEI_ID, ...eleven.slice(1)]), method);
    msg = assertErrorResponse(await fx.send(req), 400, req, `11 ids (${method})`);
    assert.match(msg, /more than max-hei-ids \(10\) distinct hei_id values/);
  }
  const ten = [HEI_ID, ...eleven.slice(2)];
  assert.equal(new Set(ten).size, 10);
  const r = await factsheets([...ten, ...ten, HEI_ID], 'POST');
  assert.deepEqual(heiIds(r.sheets), [HEI_ID], `${exchange(r.req, r.res)}`);
});

itest(() => fx, 'factsheet: unsigned → 401, PUT and DELETE → 405 with Allow: GET, POST', async () => {
  const res = await fx.get(`${PATH}?hei_id=${HEI_ID}`);
  assertErrorResponse(res, 401, { method: 'GET', target: PATH }, 'anonymous');
  for (const method of ['PUT', 'DELETE']) {
    const req = fx.signed({ method, path: `${PATH}?hei_id=${HEI_ID}` });
    const r = await fx.send(req);
    assertErrorResponse(r, 405, req, method);
    assert.equal(r.header('Allow'), 'GET, POST', `Allow header${exchange(req, r)}`);
  }
});

itest(() => fx, 'factsheet: answered with no database at all (/healthz says "database down")', async () => {
  await pollUntil(async () => {
    const h = await fx.get('/healthz');
    return { ok: h.status === 200 && /database down/.test(h.body.toString()), detail: `${h.status} ${h.body}` };
  }, 10000, '/healthz reporting the database down');
  const r = await factsheets([HEI_ID]);
  assert.deepEqual(heiIds(r.sheets), [HEI_ID]);
});

// The <factsheet> manifest entry as a document of its own (prefixes of the
// manifest root declared on it), for the official manifest-entry.xsd.
function factsheetEntryDoc(body) {
  const m = /<factsheet xmlns="[^"]*"[^>]*>[\s\S]*?<\/factsheet>/.exec(body);
  assert.ok(m, `no <factsheet> entry in the manifest:\n${body}`);
  return m[0].replace('<factsheet ', `<factsheet xmlns:sec="${NS.sec}" xmlns:ewp="${NS.ewp}" `);
}

async function manifest(node) {
  const res = await node.get(node.manifestPath);
  assertStatus(res, 200, { method: 'GET', target: node.manifestPath }, 'manifest');
  assertValid(res.body, specPath('ewp-specs-api-discovery', 'manifest.xsd'), 'manifest (official)');
  assertValid(res.body, projectSchema('manifest.xsd'), 'manifest (ewp-schemas)');
  const root = parseXml(res.body);
  const apis = root.element(NS.manifest, 'host').element(NS.registry, 'apis-implemented');
  return { res, body: res.body.toString('utf8'), entries: apis.elements(NS_FS_ENTRY, 'factsheet') };
}

itest(() => fx, 'factsheet: configured → in the manifest with url, version 1.x and max-hei-ids 10, valid against both schemas', async () => {
  const { entries, body } = await manifest(fx);
  assert.equal(entries.length, 1, `one factsheet entry:\n${body}`);
  const e = entries[0];
  assert.match(e.attr('version'), /^1\.\d+\.\d+$/);
  assert.equal(e.element(NS_FS_ENTRY, 'url').text, `${fx.publicUrl}${PATH}`);
  assert.equal(e.element(NS_FS_ENTRY, 'max-hei-ids').text, '10');
  assert.ok(e.element(NS_FS_ENTRY, 'http-security'), `http-security:\n${body}`);
  assertValid(factsheetEntryDoc(body), specPath('ewp-specs-api-factsheet', 'manifest-entry.xsd'), 'factsheet manifest entry (official)');
  assertValid(factsheetEntryDoc(body), projectSchema('factsheet-entry.xsd'), 'factsheet manifest entry (ewp-schemas)');
});

itest(() => plain, 'factsheet: not configured → not in the manifest, and its path answers like any unknown path', async () => {
  const { entries, body } = await manifest(plain);
  assert.equal(entries.length, 0, `no factsheet entry expected:\n${body}`);
  assert.ok(!body.includes('factsheet'), `the manifest must not mention the factsheet:\n${body}`);
  let req = fsRequest(plain, ids([HEI_ID]));
  const msg = assertErrorResponse(await plain.send(req), 404, req, 'factsheet path, not configured');
  req = plain.signed({ path: `/ewp/no-such-api?hei_id=${HEI_ID}` });
  const other = assertErrorResponse(await plain.send(req), 404, req, 'unknown path');
  assert.equal(msg.replace(PATH, 'X'), other.replace('/ewp/no-such-api', 'X'), 'same answer as an unknown path');
  req = fsRequest(plain, ids([HEI_ID]), 'POST');
  assertErrorResponse(await plain.send(req), 404, req, 'factsheet path, not configured (POST)');
});

// `ewpd -n` on fx's configuration with another factsheet file.
function checkConfig(name, content) {
  const file = path.join(fx.dir, name);
  if (content !== null) fs.writeFileSync(file, content);
  const conf = path.join(fx.dir, `check-${name}.conf`);
  fs.writeFileSync(conf, renderConf({ ...fx.conf, ewp: { ...fx.conf.ewp, factsheet: file } }));
  const r = spawnSync(EWPD, ['-n', '-c', conf], { encoding: 'utf8', timeout: 10000 });
  return { ...r, file, out: `${r.stdout}${r.stderr}`,
    show: `\nexit ${r.status} signal ${r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}` };
}

itest(() => fx, 'factsheet: ewpd -n accepts the example made ours and refuses bad files, naming the file and the problem', async () => {
  let r = checkConfig('good.xml', factsheetXml());
  assert.equal(r.status, 0, `a good factsheet must pass${r.show}`);
  assert.match(r.stdout, /configuration OK/);

  const bad = [
    ['missing.xml', null, /No such file/],
    ['broken.xml', factsheetXml((s) => s.replace('</calendar>', '</calender>')), /not well-formed XML: line \d+/],
    ['root.xml', factsheetXml((s) => s.replace(/factsheet-response/g, 'factsheets')), /root element is <factsheets>.*expected <factsheet-response/],
    ['order.xml', factsheetXml((s) => s.replace(/<tor-weeks-limit>5<\/tor-weeks-limit>/, '')),
      /does not match the Mobility Factsheet v1 schema: line \d+: .*accessibility.*tor-weeks-limit/],
    ['date.xml', factsheetXml((s) => s.replace('--05-15', '2026-05-15')), /does not match .*line \d+: .*autumn-term.*2026-05-15/],
    ['email.xml', factsheetXml((s) => s.replace('visa@example.edu', 'visa at example')), /does not match .*line \d+: .*email.*visa at example/],
    ['hei.xml', factsheetXml((s) => s.replace(`<hei-id>${HEI_ID}</hei-id>`, '<hei-id>other.example.org</hei-id>')),
      new RegExp(`line \\d+: <hei-id> is "other.example.org" but \\[ewp\\] hei_id is "${HEI_ID.replace('.', '\\.')}"`)],
    ['two.xml', factsheetXml((s) => {
      const one = s.slice(s.indexOf('  <factsheet>\n'), s.indexOf('</factsheet>') + '</factsheet>'.length);
      return s.replace(one, `${one}\n${one}`);
    }), /holds 2 <factsheet> elements; exactly one/],
    ['none.xml', factsheetXml((s) => s.slice(0, s.indexOf('  <factsheet>\n')) + '</factsheet-response>\n'), /holds 0 <factsheet> elements/],
  ];
  for (const [name, content, why] of bad) {
    r = checkConfig(name, content);
    assert.ok(r.status !== null, `ewpd -n did not finish (${name})${r.show}`);
    assert.notEqual(r.status, 0, `ewpd -n must refuse ${name}${r.show}`);
    assert.doesNotMatch(r.stdout, /configuration OK/, `${name}${r.show}`);
    assert.ok(r.out.includes(`factsheet ${r.file}`), `the message must name the file (${name})${r.show}`);
    assert.match(r.out, why, `the reason (${name})${r.show}`);
  }

  // The schema itself missing is reported as such, not blamed on the file.
  const file = path.join(fx.dir, 'good.xml');
  const conf = path.join(fx.dir, 'check-noschema.conf');
  fs.writeFileSync(conf, renderConf({ ...fx.conf, ewp: { ...fx.conf.ewp, factsheet: file, schema_dir: path.join(fx.dir, 'nothing') } }));
  const s = spawnSync(EWPD, ['-n', '-c', conf], { encoding: 'utf8', timeout: 10000 });
  assert.notEqual(s.status, 0, `no schema must be refused\n${s.stderr}`);
  assert.match(s.stderr, /cannot be checked: schema .*nothing\/factsheet-response\.xsd/, s.stderr);
});

async function torWeeks() {
  const { sheets } = await factsheets([HEI_ID]);
  return sheets[0]?.element(NS_FS, 'tor-weeks-limit')?.text;
}

itest(() => fx, 'factsheet: SIGHUP with a broken file keeps serving the old factsheet; fixed → the new one; key removed → gone from manifest and path', async () => {
  assert.equal(await torWeeks(), '5');
  const pid = fx.proc.pid;
  // Broken: schema-invalid (weeks negative) — refused, old one kept.
  let mark = fx.logSize();
  fs.writeFileSync(fsPath, factsheetXml((s) => s.replace('<tor-weeks-limit>5</tor-weeks-limit>', '<tor-weeks-limit>-3</tor-weeks-limit>')));
  fx.signal('SIGHUP');
  await pollUntil(async () => {
    const log = fx.log(mark);
    return { ok: /reload refused.*factsheet .*factsheet\.xml does not match/.test(log), detail: log };
  }, 10000, 'the reload refused for the broken factsheet');
  assert.equal(await torWeeks(), '5', 'the old factsheet is still served');
  // Not even XML — refused too.
  mark = fx.logSize();
  fs.writeFileSync(fsPath, '<factsheet-response');
  fx.signal('SIGHUP');
  await pollUntil(async () => {
    const log = fx.log(mark);
    return { ok: /reload refused.*not well-formed XML/.test(log), detail: log };
  }, 10000, 'the reload refused for the malformed factsheet');
  assert.equal(await torWeeks(), '5', 'the old factsheet is still served');
  // Fixed, with a new value: served after the reload.
  fs.writeFileSync(fsPath, factsheetXml((s) => s.replace('<tor-weeks-limit>5</tor-weeks-limit>', '<tor-weeks-limit>3</tor-weeks-limit>')));
  fx.signal('SIGHUP');
  await pollUntil(async () => {
    const v = await torWeeks();
    return { ok: v === '3', detail: `tor-weeks-limit ${v}` };
  }, 10000, 'the new factsheet after SIGHUP');
  // Key emptied: the API leaves the manifest and its path is unknown.
  fx.writeConfig({ ewp: { factsheet: '' } });
  fx.signal('SIGHUP');
  await pollUntil(async () => {
    const res = await fx.send(fsRequest(fx, ids([HEI_ID])));
    return { ok: res.status === 404, detail: `status ${res.status}` };
  }, 10000, 'a 404 once the factsheet key is emptied');
  const { entries } = await manifest(fx);
  assert.equal(entries.length, 0, 'no factsheet entry once the key is emptied');
  // And back.
  fx.writeConfig({ ewp: { factsheet: 'factsheet.xml' } });
  fx.signal('SIGHUP');
  await pollUntil(async () => {
    const res = await fx.send(fsRequest(fx, ids([HEI_ID])));
    return { ok: res.status === 200, detail: `status ${res.status}` };
  }, 10000, 'a 200 once the factsheet key is set again');
  assert.equal((await manifest(fx)).entries.length, 1);
  assert.ok(fx.alive && fx.proc.pid === pid, 'ewpd survives the reloads');
}, { timeout: 60000 });
