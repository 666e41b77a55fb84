// Test fixture: keys, catalogue, configuration and one running ewpd.
//
// Each test file builds one fixture (its own temp dir and port), starts
// ewpd in the foreground with its stderr in DIR/ewpd.log, waits for
// /healthz, and stops it by PID (SIGTERM, then SIGKILL after a grace
// period). Nothing here ever signals a process it did not start.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { EWPD, EWPCTL, KEEP_TMP, PROJECT_PORTAL_STRINGS, PROJECT_SCHEMAS, REPO_ROOT, requireBinary } from './env.mjs';
import { buildCatalogue } from './catalogue.mjs';
import { Connection, freePort, request } from './http.mjs';
import { Postgres } from './pg.mjs';
import { keyFromObjects, makeKey, signRequest } from './sign.mjs';

export const HEI_ID = 'smile.test';
export const PARTNER_HEI = 'partner.example.org';
export const D_HEIS = ['d1.example.org', 'd2.example.org'];

const children = new Set();
process.on('exit', () => {
  for (const p of children) {
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

export function makeTempDir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ewpd-it-${name}-`));
}

// Runs ewpctl synchronously. Returns { status, stdout, stderr, cmd }.
export function runEwpctl(args, { timeout = 30000, cwd } = {}) {
  requireBinary(EWPCTL, 'ewpctl');
  const r = spawnSync(EWPCTL, args, { encoding: 'utf8', timeout, cwd });
  if (r.error) throw new Error(`cannot run ewpctl ${args.join(' ')}: ${r.error.message}`);
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr,
    cmd: `ewpctl ${args.join(' ')}` };
}

// Runs ewpctl without blocking the event loop (for tests whose own
// servers must answer it). Resolves { status, signal, stdout, stderr, cmd, ms }.
export function runEwpctlAsync(args, { timeout = 60000, cwd } = {}) {
  requireBinary(EWPCTL, 'ewpctl');
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn(EWPCTL, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(p);
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { try { p.kill('SIGKILL'); } catch { /* gone */ } }, timeout);
    p.once('error', (e) => { clearTimeout(timer); children.delete(p); reject(new Error(`cannot run ewpctl ${args.join(' ')}: ${e.message}`)); });
    p.once('close', (status, signal) => {
      clearTimeout(timer);
      children.delete(p);
      resolve({ status, signal, stdout, stderr, cmd: `ewpctl ${args.join(' ')}`, ms: Date.now() - t0 });
    });
  });
}

export function describeRun(r) {
  return `$ ${r.cmd}\nexit ${r.status}${r.signal ? ` (signal ${r.signal})` : ''}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

// `ewpctl keys generate --dir DIR NAME`; returns the key as seen by Node
// (from the .pub file) plus the keyId ewpctl printed.
export function ewpctlKey(dir, name) {
  const r = runEwpctl(['keys', 'generate', '--dir', dir, name]);
  if (r.status !== 0) throw new Error(`ewpctl keys generate failed:\n${describeRun(r)}`);
  const lines = r.stdout.trim().split('\n');
  const printed = lines[lines.length - 1].trim();
  const pemPath = path.join(dir, `${name}.pem`);
  const pubPath = `${pemPath}.pub`;
  if (!fs.existsSync(pemPath) || !fs.existsSync(pubPath)) {
    throw new Error(`ewpctl keys generate did not write ${pemPath} and ${pubPath}:\n${describeRun(r)}`);
  }
  const publicKey = crypto.createPublicKey(fs.readFileSync(pubPath));
  const k = keyFromObjects(null, publicKey);
  return { ...k, printedKeyId: printed, pemPath, pubPath, run: r };
}

const DEFAULT_CONF = () => ({
  server: {
    listen: '', tls: 'off', tls_cert: '', tls_key: '', workers: '1', public_url: '',
    request_timeout: '10s', drain_timeout: '5s', metrics: 'on',
  },
  log: { level: 'info' },
  ewp: {
    hei_id: HEI_ID,
    hei_name: 'Université de Test SMILE',
    hei_name_lang: 'fr',
    hei_name_en: 'SMILE Test University',
    erasmus_code: 'F SMILE01',
    pic: '999888777',
    admin_email: 'ewp-admin@smile.test',
    admin_provider: 'SMILE EWP gateway (integration tests)',
    admin_notes: '',
    manifest_path: '/ewp/manifest.xml',
    // the repository's schemas: the tests run ewpd uninstalled
    schema_dir: PROJECT_SCHEMAS,
    date_window: '5m',
  },
  keys: { keys_dir: '', client_key: 'client.pem', server_key: 'server.pem', publish_client: '', publish_server: '' },
  registry: { url: '', refresh: '1m', cache: '', ca_file: '' },
  // the repository's interface strings, as for the schemas
  portal: { strings: PROJECT_PORTAL_STRINGS },
});

export function renderConf(conf) {
  let s = '; written by tests/integration/lib/daemon.mjs\n';
  for (const [sec, kv] of Object.entries(conf)) {
    s += `\n[${sec}]\n`;
    for (const [k, v] of Object.entries(kv)) s += `${k} = ${v}\n`.replace(/ = \n$/, ' =\n');
  }
  return s;
}

function mergeConf(base, over = {}) {
  const c = structuredClone(base);
  for (const [sec, kv] of Object.entries(over)) c[sec] = { ...(c[sec] || {}), ...kv };
  return c;
}

export function makeTlsCert(dir) {
  const cert = path.join(dir, 'tls-cert.pem');
  const key = path.join(dir, 'tls-key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '2'],
  { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  fs.chmodSync(key, 0o600);
  return { cert, key, certPem: fs.readFileSync(cert, 'utf8') };
}

export class Ewpd {
  /*
   * opts: { workers, tls (bool), conf: {section: {key: value}} overrides,
   *         start (default true), pg (true: a throwaway PostgreSQL with the
   *         project migrations applied, as this.pg, in [database] conninfo),
   *         sqlDir (migrations from there instead of sql/) }
   */
  static async create(name, opts = {}) {
    requireBinary(EWPD, 'ewpd');
    requireBinary(EWPCTL, 'ewpctl');
    const fx = new Ewpd(name, opts);
    try {
      await fx._prepare();
      if (opts.start !== false) await fx.start();
    } catch (e) {
      fx.pg?.stop(); // nobody else holds the fixture to clean it up
      throw e;
    }
    return fx;
  }

  constructor(name, opts) {
    this.name = name;
    this.opts = opts;
    this.dir = makeTempDir(name);
    this.proc = null;
    this.logPath = path.join(this.dir, 'ewpd.log');
    this.extraHosts = [];
    this.extraInstitutions = [];
  }

  async _prepare() {
    this.port = await freePort();
    this.keysDir = path.join(this.dir, 'keys');
    fs.mkdirSync(this.keysDir, { mode: 0o700 });
    this.clientKey = ewpctlKey(this.keysDir, 'client');
    this.serverKey = ewpctlKey(this.keysDir, 'server');
    // Test-side keys, made in Node.
    this.partnerKey = makeKey(); // host B, client credential of partner.example.org
    this.serverOnlyKey = makeKey(); // host C, listed only under server-credentials-in-use
    this.dKey = makeKey(); // hosts D and E: covers d1, d2 and (again) d1
    this.unknownKey = makeKey(); // in no catalogue
    if (this.opts.tls) {
      this.tlsFiles = makeTlsCert(this.dir);
      this.hostHeader = `localhost:${this.port}`;
      this.publicUrl = `https://localhost:${this.port}`;
      this.endpoint = { port: this.port, host: '127.0.0.1', tls: { ca: this.tlsFiles.certPem, servername: 'localhost' } };
    } else {
      this.hostHeader = `127.0.0.1:${this.port}`;
      this.publicUrl = `http://127.0.0.1:${this.port}`;
      this.endpoint = { port: this.port, host: '127.0.0.1' };
    }
    this.cataloguePath = path.join(this.dir, 'catalogue.xml');
    this.confPath = path.join(this.dir, 'ewpd.conf');
    this.writeCatalogue();
    this.conf = mergeConf(DEFAULT_CONF(), {
      server: {
        listen: `127.0.0.1:${this.port}`,
        tls: this.opts.tls ? 'on' : 'off',
        tls_cert: this.opts.tls ? this.tlsFiles.cert : '',
        tls_key: this.opts.tls ? this.tlsFiles.key : '',
        workers: String(this.opts.workers || 1),
        public_url: this.publicUrl,
      },
      keys: { keys_dir: this.keysDir },
      registry: { url: `file://${this.cataloguePath}`, cache: path.join(this.dir, 'catalogue.cache.xml') },
    });
    if (this.opts.pg) await this._preparePg();
    this.conf = mergeConf(this.conf, this.opts.conf);
    this.writeConfig();
  }

  // A database for the APIs served from the SMILE core: cluster, then migrations.
  async _preparePg() {
    this.pg = await Postgres.start(this.dir);
    const r = runEwpctl(['migrate', '--dir', this.opts.sqlDir || path.join(REPO_ROOT, 'sql'), '--conninfo', this.pg.conninfo]);
    if (r.status !== 0) throw new Error(`ewpctl migrate failed:\n${describeRun(r)}`);
    this.conf = mergeConf(this.conf, { database: { conninfo: this.pg.conninfo } });
  }

  get manifestPath() {
    return this.conf.ewp.manifest_path;
  }

  get echoPath() {
    return '/ewp/echo';
  }

  catalogueSpec() {
    const hosts = [
      { adminEmail: 'ewp-admin@smile.test', heis: [this.conf?.ewp?.hei_id || HEI_ID],
        clientKeys: [this.clientKey], serverKeys: [this.serverKey],
        echoUrl: `${this.publicUrl}/ewp/echo`, discoveryUrl: `${this.publicUrl}/ewp/manifest.xml` },
      { adminEmail: 'admin@partner.example.org', heis: [PARTNER_HEI], clientKeys: [this.partnerKey],
        echoUrl: 'https://partner.example.org/ewp/echo' },
      { adminEmail: 'admin@c.example.org', heis: ['c.example.org'], serverKeys: [this.serverOnlyKey],
        echoUrl: 'https://c.example.org/ewp/echo' },
      { adminEmail: 'admin@d.example.org', heis: D_HEIS, clientKeys: [this.dKey] },
      { adminEmail: 'admin@e.example.org', heis: [D_HEIS[0]], clientKeys: [this.dKey] },
      ...this.extraHosts,
    ];
    const institutions = [
      { id: HEI_ID, otherIds: [['erasmus', 'F SMILE01'], ['pic', '999888777']],
        names: [['fr', 'Université de Test SMILE'], ['en', 'SMILE Test University']] },
      { id: PARTNER_HEI, names: [['en', 'Partner University']] },
      { id: 'c.example.org', names: [['en', 'C University']] },
      { id: D_HEIS[0], names: [['en', 'D1 University']] },
      { id: D_HEIS[1], names: [['en', 'D2 University']] },
      ...this.extraInstitutions,
    ];
    return { hosts, institutions };
  }

  writeCatalogue() {
    this.catalogueXml = buildCatalogue(this.catalogueSpec());
    const tmp = `${this.cataloguePath}.tmp`;
    fs.writeFileSync(tmp, this.catalogueXml);
    fs.renameSync(tmp, this.cataloguePath);
  }

  writeConfig(over) {
    if (over) this.conf = mergeConf(this.conf, over);
    const tmp = `${this.confPath}.tmp`;
    fs.writeFileSync(tmp, renderConf(this.conf));
    fs.renameSync(tmp, this.confPath);
  }

  logSize() {
    try { return fs.statSync(this.logPath).size; } catch { return 0; }
  }

  log(from = 0, max = 8000) {
    let s;
    try { s = fs.readFileSync(this.logPath).subarray(from).toString('utf8'); } catch { return '(no log)'; }
    return s.length > max ? `[...]\n${s.slice(-max)}` : s;
  }

  get alive() {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  // readyStatus: the /healthz status that means "started" (200; 503 for a
  // node that starts without any catalogue).
  async start({ timeout = 10000, readyStatus = 200 } = {}) {
    const fd = fs.openSync(this.logPath, 'a');
    const p = spawn(EWPD, ['-c', this.confPath], { stdio: ['ignore', fd, fd], detached: false });
    fs.closeSync(fd);
    this.proc = p;
    children.add(p);
    this.exited = new Promise((resolve) => p.once('exit', (code, signal) => { children.delete(p); resolve({ code, signal }); }));
    const t0 = Date.now();
    let last = '';
    while (Date.now() - t0 < timeout) {
      if (!this.alive) {
        const { code, signal } = await this.exited;
        throw new Error(`ewpd exited during start-up (code ${code}, signal ${signal}).\n--- config ---\n` +
          `${renderConf(this.conf)}\n--- ewpd log ---\n${this.log()}`);
      }
      try {
        const r = await request(this.endpoint, { method: 'GET', target: '/healthz', headers: [['Host', this.hostHeader]], timeout: 2000 });
        if (r.status === readyStatus) return;
        last = `status ${r.status}`;
      } catch (e) {
        last = e.message;
      }
      await sleep(50);
    }
    await this.stop();
    throw new Error(`ewpd did not answer GET /healthz with ${readyStatus} within ${timeout} ms (last: ${last}).\n--- ewpd log ---\n${this.log()}`);
  }

  signal(sig) {
    if (!this.alive) throw new Error(`ewpd (pid ${this.proc?.pid}) is not running; cannot send ${sig}`);
    process.kill(this.proc.pid, sig);
  }

  // Waits for exit; resolves { code, signal, ms } or null on timeout.
  async waitExit(timeoutMs) {
    const t0 = Date.now();
    let timer;
    const r = await Promise.race([this.exited,
      new Promise((resolve) => { timer = setTimeout(() => resolve(null), timeoutMs); })]);
    clearTimeout(timer); // a pending timer would keep the test file alive
    return r ? { ...r, ms: Date.now() - t0 } : null;
  }

  async stop({ graceMs = 8000 } = {}) {
    if (!this.proc) return null;
    if (this.alive) {
      try { process.kill(this.proc.pid, 'SIGTERM'); } catch { /* gone */ }
    }
    let r = await this.waitExit(graceMs);
    if (!r) {
      try { process.kill(this.proc.pid, 'SIGKILL'); } catch { /* gone */ }
      r = await this.waitExit(5000);
    }
    return r;
  }

  async cleanup() {
    await this.stop();
    this.pg?.stop();
    if (!KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  // A signed request to this node (defaults: GET /ewp/echo by the partner).
  signed(o = {}) {
    return signRequest({ host: this.hostHeader, key: this.partnerKey, method: 'GET', path: this.echoPath, ...o });
  }

  // Sends a request object from signed() (or any {method,target,headers,body}).
  send(req, opts = {}) {
    return request(this.endpoint, { ...req, timeout: opts.timeout || 10000 });
  }

  connect(opts) {
    return Connection.open(this.endpoint, opts);
  }

  get(pathAndQuery, headers = []) {
    return request(this.endpoint, { method: 'GET', target: pathAndQuery, headers: [['Host', this.hostHeader], ...headers] });
  }

  // Echo request helper: method GET (query) or POST (form body).
  echoRequest(values = [], o = {}) {
    const qs = values.map((v) => `echo=${encodeURIComponent(v)}`).join('&');
    if ((o.method || 'GET') === 'GET') {
      return this.signed({ path: qs ? `${this.echoPath}?${qs}` : this.echoPath, ...o });
    }
    return this.signed({ path: this.echoPath, body: qs, contentType: 'application/x-www-form-urlencoded', ...o });
  }
}

/*
 * Defines a test whose failure message carries the ewpd log written while
 * it ran. getFx: () => Ewpd (the fixture may be created in before()).
 */
export function itest(getFx, name, fn, opts = {}) {
  return test(name, { timeout: 30000, ...opts }, async (t) => {
    const fx = getFx();
    const mark = fx ? fx.logSize() : 0;
    try {
      await fn(t);
    } catch (e) {
      if (fx) {
        const extra = `\n--- ewpd log during this test (${fx.logPath}) ---\n${fx.log(mark, 6000) || '(empty)'}` +
          `${fx.alive ? '' : '\n--- ewpd is NOT running any more ---'}`;
        try { e.message += extra; } catch { /* frozen */ }
      }
      throw e;
    }
  });
}
