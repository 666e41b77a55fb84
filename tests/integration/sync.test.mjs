// `ewpctl sync institutions`: node A (a database and a configuration, no
// daemon) copies what node B (a real ewpd serving Institutions v2 and
// OUnits v2 from its SMILE core over TLS) publishes; the run is
// idempotent, a partner that cannot be reached fails alone and leaves
// nothing behind, and ewp.partner_syncs records the outcome.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { spawn } from 'node:child_process';

import { buildCatalogue } from './lib/catalogue.mjs';
import { Ewpd, HEI_ID, describeRun, ewpctlKey, itest, makeTempDir, renderConf, runEwpctl } from './lib/daemon.mjs';
import { EWPD, REPO_ROOT } from './lib/env.mjs';
import { freePort, request } from './lib/http.mjs';
import { pollUntil } from './lib/poll.mjs';
import { Postgres } from './lib/pg.mjs';

const A_HEI = 'a.example.org';
const DEAD_HEI = 'dead.example.org';
const VALIDATOR_HEI = 'validator-hei01.developers.erasmuswithoutpaper.eu';
const ERASMUS_ONLY = 'erasmus-only.example.org';

const INST_ENTRY_NS = 'https://github.com/erasmus-without-paper/ewp-specs-api-institutions/blob/stable-v2/manifest-entry.xsd';
const OU_ENTRY_NS = 'https://github.com/erasmus-without-paper/ewp-specs-api-ounits/blob/stable-v2/manifest-entry.xsd';
const SECURITY = (p) => `<${p}:http-security>
          <sec:client-auth-methods><sec-A2:httpsig/></sec:client-auth-methods>
          <sec:server-auth-methods><sec-B2:httpsig/></sec:server-auth-methods>
        </${p}:http-security>`;

// Institutions (and OUnits) entries next to a host's Echo entry.
function withApis(xml, echoUrl, base, { ounits = true } = {}) {
  const anchor = `<e2:url>${echoUrl}</e2:url>\n      </e2:echo>\n`;
  assert.ok(xml.includes(anchor), `catalogue has the echo entry of ${echoUrl}`);
  let extra = `      <i2:institutions xmlns:i2="${INST_ENTRY_NS}" version="2.2.0">
        ${SECURITY('i2')}
        <i2:url>${base}/ewp/institutions</i2:url>
        <i2:max-hei-ids>1</i2:max-hei-ids>
      </i2:institutions>\n`;
  if (ounits) {
    // no max-ounit-ids: one id per request
    extra += `      <o2:organizational-units xmlns:o2="${OU_ENTRY_NS}" version="2.2.0">
        ${SECURITY('o2')}
        <o2:url>${base}/ewp/ounits</o2:url>
      </o2:organizational-units>\n`;
  }
  return xml.replace(anchor, anchor + extra);
}

let b; // node B, the partner
let a; // node A: { dir, pg, confPath }

before(async () => {
  b = await Ewpd.create('sync-b', { tls: true, pg: true, start: false });
  const aDir = makeTempDir('sync-a');
  const aKeys = path.join(aDir, 'keys');
  fs.mkdirSync(aKeys, { mode: 0o700 });
  const aKey = ewpctlKey(aKeys, 'client');
  // B accepts A's requests: A's key is the client key of A's host
  b.extraHosts.push({ adminEmail: 'admin@a.example.org', heis: [A_HEI], clientKeys: [aKey] });
  b.extraInstitutions.push({ id: A_HEI, names: [['en', 'A University']] });
  b.writeCatalogue();
  b.pg.psql(`
    INSERT INTO smile.etablissement (schac_id, erasmus_code, names, abbreviation, website_url, is_local)
      VALUES ('${HEI_ID}', 'F SMILE01', '[{"lang":"fr","name":"Université de Test SMILE"},{"lang":"en","name":"SMILE Test University"}]',
              'SMILE', 'https://www.smile.test/', true);
    INSERT INTO smile.composante (etablissement_id, ounit_id, code, names, abbreviation)
      SELECT id, 'ou-sci', 'SCI', '[{"lang":"en","name":"Faculty of Science"},{"lang":"fr","name":"UFR Sciences \\"&\\" Techniques"}]', 'SCI'
      FROM smile.etablissement WHERE schac_id = '${HEI_ID}';
    INSERT INTO smile.composante (etablissement_id, ounit_id, code, names, parent_id)
      SELECT e.id, 'ou-math', 'MATH', '[{"lang":"en","name":"Department of Mathematics"}]', c.id
      FROM smile.etablissement e JOIN smile.composante c ON c.etablissement_id = e.id AND c.ounit_id = 'ou-sci'
      WHERE e.schac_id = '${HEI_ID}';
    INSERT INTO smile.address (etablissement_id, kind, lines, postal_code, locality, country)
      SELECT id, 'street', '{"Esplanade de la Paix","CS 14032"}', '14032', 'Caen', 'FR' FROM smile.etablissement WHERE schac_id = '${HEI_ID}';
    INSERT INTO smile.contact (etablissement_id, names, given_names, family_name, emails, phones, role_descriptions)
      SELECT id, '[{"lang":"fr","name":"Relations internationales"}]', 'Anne', 'Martin', '{"ri@smile.test"}', '{"+33231000000"}',
             '[{"lang":"en","name":"International office"}]' FROM smile.etablissement WHERE schac_id = '${HEI_ID}';
    INSERT INTO smile.address (composante_id, kind, street_name, building_number, locality)
      SELECT c.id, 'mailing', 'Boulevard Maréchal Juin', '6', 'Caen' FROM smile.composante c WHERE c.ounit_id = 'ou-sci';
    INSERT INTO smile.contact (composante_id, names, emails)
      SELECT c.id, '[{"name":"Scolarité Sciences"}]', '{"sciences@smile.test"}' FROM smile.composante c WHERE c.ounit_id = 'ou-sci';
    INSERT INTO smile.composante (etablissement_id, ounit_id, code, names, is_exposed)
      SELECT id, 'ou-hidden', 'HID', '[{"name":"Hidden"}]', false FROM smile.etablissement WHERE schac_id = '${HEI_ID}';`);
  await b.start();

  const deadPort = await freePort(); // nobody listens there
  const bEcho = `${b.publicUrl}/ewp/echo`;
  const deadBase = `https://localhost:${deadPort}`;
  const validatorBase = 'https://validator.example.invalid';
  const catalogue = (bServerKey) => {
    let xml = buildCatalogue({
      hosts: [
        { adminEmail: 'ewp-admin@smile.test', heis: [HEI_ID], serverKeys: [bServerKey], echoUrl: bEcho },
        { adminEmail: 'admin@a.example.org', heis: [A_HEI], clientKeys: [aKey], echoUrl: 'https://a.example.org/ewp/echo' },
        { adminEmail: 'admin@dead.example.org', heis: [DEAD_HEI], echoUrl: `${deadBase}/ewp/echo` },
        { adminEmail: 'admin@validator.example.org', heis: [VALIDATOR_HEI], echoUrl: `${validatorBase}/ewp/echo` },
      ],
      institutions: [
        { id: HEI_ID, otherIds: [['erasmus', 'F SMILE01']], names: [['en', 'SMILE Test University']] },
        { id: A_HEI, names: [['en', 'A University']] },
        { id: DEAD_HEI, names: [['en', 'Dead University']] },
        { id: VALIDATOR_HEI, names: [['en', 'Validator']] },
        { id: ERASMUS_ONLY, otherIds: [['erasmus', 'D  ERASMUS01']], names: [['en', 'Erasmus Only']] },
      ],
    });
    xml = withApis(xml, bEcho, b.publicUrl);
    xml = withApis(xml, `${deadBase}/ewp/echo`, deadBase, { ounits: false });
    xml = withApis(xml, `${validatorBase}/ewp/echo`, validatorBase, { ounits: false });
    return xml;
  };
  const xml = catalogue(b.serverKey);
  const cache = path.join(aDir, 'catalogue.xml');
  fs.writeFileSync(cache, xml);

  const pg = await Postgres.start(aDir);
  const m = runEwpctl(['migrate', '--dir', path.join(REPO_ROOT, 'sql'), '--conninfo', pg.conninfo]);
  if (m.status !== 0) { pg.stop(); throw new Error(`ewpctl migrate failed:\n${describeRun(m)}`); }
  // SMILE's own rows: ours, and a partner known only by its Erasmus code
  pg.psql(`
    INSERT INTO smile.etablissement (schac_id, names, is_local) VALUES ('${A_HEI}', '[{"name":"A University"}]', true);
    INSERT INTO smile.etablissement (erasmus_code, names) VALUES ('D  ERASMUS01', '[{"name":"Erasmus Only"}]');`);
  const conf = structuredClone(b.conf);
  conf.ewp.hei_id = A_HEI;
  conf.keys.keys_dir = aKeys;
  conf.registry.cache = cache;
  conf.registry.url = `file://${cache}`;
  conf.database = { conninfo: pg.conninfo };
  const confPath = path.join(aDir, 'ewpd.conf');
  fs.writeFileSync(confPath, renderConf(conf));
  // the same, except that B's host has another server key than the one B signs with
  const wrongCache = path.join(aDir, 'catalogue-wrong-key.xml');
  fs.writeFileSync(wrongCache, catalogue(b.partnerKey));
  const wrongConfPath = path.join(aDir, 'ewpd-wrong-key.conf');
  fs.writeFileSync(wrongConfPath, renderConf({ ...conf, registry: { ...conf.registry, cache: wrongCache, url: `file://${wrongCache}` } }));
  a = { dir: aDir, pg, confPath, wrongConfPath, conf, keys: aKeys, cache };
});

after(async () => {
  a?.pg.stop();
  if (a && !process.env.KEEP_TMP) fs.rmSync(a.dir, { recursive: true, force: true });
  await b?.cleanup();
});

const sync = (...heis) => syncWith(a.confPath, ...heis);
const syncWith = (conf, ...heis) => runEwpctl(['-c', conf, 'sync', 'institutions', '--cacert', b.tlsFiles.cert,
  '--schemas', path.join(REPO_ROOT, 'ewp-schemas'), '--timeout', '10', ...heis]);

function resultLine(r, hei) {
  return r.stdout.split('\n').find((l) => l.split(/\s+/)[0] === hei);
}

const snapshot = () => a.pg.psql(`
  SELECT e.schac_id, e.erasmus_code, e.names::text, e.abbreviation, e.website_url, e.is_local, e.modified_at,
         coalesce((SELECT string_agg(c.ounit_id || '|' || c.code || '|' || c.names::text || '|' || coalesce(c.abbreviation, '')
                   || '|' || coalesce(p.ounit_id, '') || '|' || c.source || '|' || c.modified_at, ';' ORDER BY c.ounit_id)
                   FROM smile.composante c LEFT JOIN smile.composante p ON p.id = c.parent_id
                   WHERE c.etablissement_id = e.id), '')
  FROM smile.etablissement e ORDER BY e.id`);

itest(() => b, 'sync copies the partner institution and its exposed units; the dead partner fails alone', async () => {
  const r = sync();
  assert.equal(r.status, 1, `one partner is down: exit 1\n${describeRun(r)}`);
  assert.match(resultLine(r, HEI_ID) || '', /\bok\b/, describeRun(r));
  assert.match(resultLine(r, DEAD_HEI) || '', /\bfailed\b/, describeRun(r));
  assert.equal(resultLine(r, VALIDATOR_HEI), undefined, `the validator is no partner\n${describeRun(r)}`);
  assert.equal(resultLine(r, A_HEI), undefined, `we are no partner of ourselves\n${describeRun(r)}`);

  assert.equal(a.pg.psql(`SELECT erasmus_code || '|' || names::text || '|' || abbreviation || '|' || website_url || '|' || is_local
    FROM smile.etablissement WHERE schac_id = '${HEI_ID}'`),
  'F SMILE01|[{"lang": "fr", "name": "Université de Test SMILE"}, {"lang": "en", "name": "SMILE Test University"}]|SMILE|https://www.smile.test/|false');
  assert.equal(a.pg.psql(`SELECT string_agg(c.ounit_id || '|' || c.code || '|' || c.names::text || '|' || coalesce(p.ounit_id, '-') || '|' || c.source, E'\\n' ORDER BY c.ounit_id)
    FROM smile.composante c JOIN smile.etablissement e ON e.id = c.etablissement_id
    LEFT JOIN smile.composante p ON p.id = c.parent_id WHERE e.schac_id = '${HEI_ID}'`),
  'ou-math|MATH|[{"lang": "en", "name": "Department of Mathematics"}]|ou-sci|ewp\n'
    + 'ou-sci|SCI|[{"lang": "en", "name": "Faculty of Science"}, {"lang": "fr", "name": "UFR Sciences \\"&\\" Techniques"}]|-|ewp');
  // addresses and contacts, of the institution and of a unit
  assert.equal(a.pg.psql(`SELECT string_agg(concat_ws('|', coalesce(e.schac_id, c.ounit_id), ad.kind, ad.lines::text, ad.street_name,
      ad.building_number, ad.postal_code, ad.locality, ad.country), E'\n' ORDER BY ad.kind)
    FROM smile.address ad LEFT JOIN smile.etablissement e ON e.id = ad.etablissement_id
    LEFT JOIN smile.composante c ON c.id = ad.composante_id`),
  'ou-sci|mailing|{}|Boulevard Maréchal Juin|6|Caen\n'
    + `${HEI_ID}|street|{"Esplanade de la Paix","CS 14032"}|14032|Caen|FR`);
  assert.equal(a.pg.psql(`SELECT string_agg(concat_ws('|', coalesce(e.schac_id, c.ounit_id), ct.position, ct.names::text, ct.given_names,
      ct.family_name, ct.emails::text, ct.phones::text, ct.role_descriptions::text), E'\n' ORDER BY ct.id)
    FROM smile.contact ct LEFT JOIN smile.etablissement e ON e.id = ct.etablissement_id
    LEFT JOIN smile.composante c ON c.id = ct.composante_id`),
  `${HEI_ID}|1|[{"lang": "fr", "name": "Relations internationales"}]|Anne|Martin|{ri@smile.test}|{+33231000000}|[{"lang": "en", "name": "International office"}]\n`
    + 'ou-sci|1|[{"name": "Scolarité Sciences"}]|{sciences@smile.test}|{}');
  // nothing for the dead partner
  assert.equal(a.pg.psql(`SELECT count(*) FROM smile.etablissement WHERE schac_id = '${DEAD_HEI}'`), '0');
  assert.equal(a.pg.psql(`SELECT consecutive_failures, last_error IS NOT NULL, last_success_at IS NULL
    FROM ewp.partner_syncs WHERE hei_id = '${DEAD_HEI}'`), '1|t|t', 'a partner never synced has its failure recorded');
  assert.equal(a.pg.psql(`SELECT (last_success_at IS NOT NULL) || '|' || (last_error IS NULL) || '|' || consecutive_failures
    FROM ewp.partner_syncs WHERE hei_id = '${HEI_ID}'`), 'true|true|0');
  // every exchange is in the message log: signed by us, verified, validated
  assert.equal(a.pg.psql(`SELECT string_agg(DISTINCT concat_ws('|', direction, method, api, status, validation,
      error IS NULL, request_body IS NOT NULL, response_bytes > 0, key_id IS NOT NULL), ',')
    FROM ewp.message_log WHERE partner_hei_ids = ARRAY['${HEI_ID}']`),
  'out|POST|institutions|200|valid|t|t|t|t,out|POST|organizational-units|200|valid|t|t|t|t');
  assert.equal(a.pg.psql(`SELECT count(*) FROM ewp.message_log l JOIN ewp.partner_syncs p ON p.last_log_id = l.id
    WHERE p.hei_id = '${HEI_ID}' AND l.partner_hei_ids = ARRAY['${HEI_ID}']`), '1', 'partner_syncs points at the last exchange');
  assert.match(a.pg.psql(`SELECT concat_ws('|', direction, status IS NULL, error) FROM ewp.message_log
    WHERE partner_hei_ids = ARRAY['${DEAD_HEI}']`), /^out\|t\|institutions: connect: /, 'the refused connection is logged');
  // the Erasmus-code-only institution got its SCHAC id from the catalogue
  assert.equal(a.pg.psql(`SELECT schac_id FROM smile.etablissement WHERE erasmus_code = 'D  ERASMUS01'`), ERASMUS_ONLY);
  // our own row untouched
  assert.equal(a.pg.psql(`SELECT names::text || is_local FROM smile.etablissement WHERE schac_id = '${A_HEI}'`),
    '[{"name": "A University"}]true');
});

itest(() => b, 'a second run changes nothing; naming one partner syncs only it, exit 0', async () => {
  const before1 = snapshot();
  const r = sync(HEI_ID);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(resultLine(r, HEI_ID) || '', /\bok\b\s+2\b/, describeRun(r));
  assert.equal(a.pg.psql('SELECT count(*) FROM smile.address') + '/' + a.pg.psql('SELECT count(*) FROM smile.contact'), '2/2');
  assert.equal(resultLine(r, DEAD_HEI), undefined, describeRun(r));
  assert.equal(snapshot(), before1, 'idempotent: same rows, same modified_at');
});

itest(() => b, 'a partner change shows up; a failing run of a known partner is recorded and writes nothing', async () => {
  b.pg.psql(`UPDATE smile.composante SET names = '[{"lang":"en","name":"Faculty of Sciences"}]' WHERE ounit_id = 'ou-sci'`);
  let r = sync(HEI_ID);
  assert.equal(r.status, 0, describeRun(r));
  assert.equal(a.pg.psql(`SELECT names::text FROM smile.composante WHERE ounit_id = 'ou-sci'`),
    '[{"lang": "en", "name": "Faculty of Sciences"}]');

  // B's database goes away: B answers 5xx, A keeps what it had and records the error
  const before1 = snapshot();
  b.pg.halt();
  try {
    r = sync(HEI_ID);
  } finally {
    b.pg.resume();
  }
  assert.equal(r.status, 1, describeRun(r));
  assert.match(resultLine(r, HEI_ID) || '', /\bfailed\b.*HTTP 5\d\d/, describeRun(r));
  assert.equal(snapshot(), before1, 'nothing written for the failed partner');
  assert.equal(a.pg.psql(`SELECT (last_success_at IS NOT NULL) || '|' || (last_error LIKE '%HTTP 5%') || '|' || consecutive_failures
    FROM ewp.partner_syncs WHERE hei_id = '${HEI_ID}'`), 'true|true|1');
});

itest(() => b, 'a response signed with a key the catalogue does not give the partner is refused', async () => {
  b.pg.psql(`UPDATE smile.etablissement SET abbreviation = 'SMILE-X' WHERE schac_id = '${HEI_ID}'`);
  const before1 = snapshot();
  const r = syncWith(a.wrongConfPath, HEI_ID);
  assert.equal(r.status, 1, describeRun(r));
  assert.match(resultLine(r, HEI_ID) || '', /\bfailed\b.*signature/, describeRun(r));
  assert.equal(snapshot(), before1, 'nothing written for the failed partner');
  assert.equal(a.pg.psql(`SELECT (last_error LIKE '%signature%') || '|' || consecutive_failures
    FROM ewp.partner_syncs WHERE hei_id = '${HEI_ID}'`), 'true|2');
  // with the right catalogue, the change comes through and the failures are reset
  const ok = sync(HEI_ID);
  assert.equal(ok.status, 0, describeRun(ok));
  assert.equal(a.pg.psql(`SELECT abbreviation FROM smile.etablissement WHERE schac_id = '${HEI_ID}'`), 'SMILE-X');
  assert.equal(a.pg.psql(`SELECT consecutive_failures FROM ewp.partner_syncs WHERE hei_id = '${HEI_ID}'`), '0');
});

// A as a running ewpd: the supervisor forks the sync every [sync] interval
// and on SIGUSR1; the outcome shows in /metrics, ewp.partner_syncs and the log.
itest(() => b, 'ewpd runs the sync on its schedule and on SIGUSR1, in a child process, while it keeps serving', async () => {
  ewpctlKey(a.keys, 'server');
  const port = await freePort();
  const conf = structuredClone(a.conf);
  conf.server = { ...conf.server, listen: `127.0.0.1:${port}`, tls: 'off', tls_cert: '', tls_key: '',
    public_url: `http://127.0.0.1:${port}`, workers: '1' };
  conf.registry = { ...conf.registry, url: `file://${a.cache}`, cache: path.join(a.dir, 'daemon-cache.xml') };
  conf.sync = { interval: '2s', timeout: '10s', ca_file: b.tlsFiles.cert };
  conf.ewp = { ...conf.ewp, schema_dir: path.join(REPO_ROOT, 'ewp-schemas') };
  const confPath = path.join(a.dir, 'ewpd-daemon.conf');
  fs.writeFileSync(confPath, renderConf(conf));
  const logPath = path.join(a.dir, 'ewpd-daemon.log');
  const fd = fs.openSync(logPath, 'a');
  const p = spawn(EWPD, ['-c', confPath], { stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const exited = new Promise((resolve) => p.once('exit', (code, signal) => resolve({ code, signal })));
  const log = () => fs.readFileSync(logPath, 'utf8');
  const endpoint = { port, host: '127.0.0.1' };
  const metric = async (name) => {
    const r = await request(endpoint, { method: 'GET', target: '/metrics', headers: [['Host', `127.0.0.1:${port}`]] });
    const m = new RegExp(`^${name} (\\d+)`, 'm').exec(r.body.toString());
    return m ? Number(m[1]) : NaN;
  };
  try {
    const attempts = () => Number(a.pg.psql(`SELECT count(*) FROM ewp.message_log WHERE direction = 'out'
      AND partner_hei_ids = ARRAY['${HEI_ID}'] AND api = 'institutions'`));
    const before1 = attempts();
    b.pg.psql(`UPDATE smile.etablissement SET abbreviation = 'SMILE-SCHED' WHERE schac_id = '${HEI_ID}'`);
    await pollUntil(async () => {
      let runs = NaN;
      try { runs = await metric('ewpd_sync_runs_total'); } catch { /* not up yet */ }
      return { ok: runs >= 1, detail: `runs ${runs}\n${log()}` };
    }, 15000, 'a scheduled sync');
    assert.equal(a.pg.psql(`SELECT abbreviation FROM smile.etablissement WHERE schac_id = '${HEI_ID}'`), 'SMILE-SCHED');
    assert.ok(attempts() > before1, 'the exchanges of the scheduled sync are in the message log');
    assert.ok(await metric('ewpd_sync_finished_timestamp_seconds') > 0);
    assert.match(log(), /ewpd-sync\[\d+\].*sync finished: 1 partners synced, 1 failed/, log());
    assert.match(log(), /sync: dead\.example\.org: institutions: connect/, 'a failing partner is named in the log');
    // SIGUSR1: one more run at once
    const runs = await metric('ewpd_sync_runs_total');
    p.kill('SIGUSR1');
    await pollUntil(async () => ({ ok: (await metric('ewpd_sync_runs_total')) > runs, detail: log() }), 10000, 'the SIGUSR1 run');
    const body = (await request(endpoint, { method: 'GET', target: '/metrics', headers: [['Host', `127.0.0.1:${port}`]] })).body.toString();
    assert.match(body, /^ewpd_sync_partners_total\{outcome="ok"\} [1-9]/m);
    assert.match(body, /^ewpd_sync_partners_total\{outcome="failed"\} [1-9]/m);
    // `ewpctl sync status` shows both partners with their last outcome
    const st = runEwpctl(['-c', confPath, 'sync', 'status']);
    assert.equal(st.status, 0, describeRun(st));
    assert.match(st.stdout, new RegExp(`^${HEI_ID.replace('.', '\\.')}\\s+\\d{4}-\\d\\d-\\d\\d \\S+\\s+\\d{4}-\\d\\d-\\d\\d \\S+\\s+0\\s*$`, 'm'), st.stdout);
    assert.match(st.stdout, /^dead\.example\.org\s+\S+ \S+\s+-\s+[1-9]\d*\s+institutions: connect: /m, st.stdout);
  } finally {
    p.kill('SIGTERM');
    const r = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve(null), 15000))]);
    if (r === null) p.kill('SIGKILL');
    assert.deepEqual(r, { code: 0, signal: null }, `ewpd stopped cleanly with its sync child\n${log()}`);
  }
}, { timeout: 60000 });
