// A throwaway PostgreSQL cluster per test file, through tests/pg/pg.sh:
// its own directory, a Unix socket there, no TCP, removed at the end.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { REPO_ROOT } from './env.mjs';
import { freePort } from './http.mjs';

const PG_SH = path.join(REPO_ROOT, 'tests', 'pg', 'pg.sh');

export class Postgres {
  static async start(dir) {
    const pg = new Postgres();
    pg.dir = path.join(dir, 'pg');
    fs.chmodSync(dir, 0o755); // the server may run as user postgres
    const port = await freePort();
    const r = spawnSync(PG_SH, ['start', pg.dir, String(port)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cannot start PostgreSQL:\n${r.stdout}\n${r.stderr}`);
    pg.conninfo = r.stdout.trim();
    pg.port = port;
    return pg;
  }

  // Runs SQL through psql; returns trimmed unaligned output (throws on error).
  psql(sql) {
    const r = spawnSync('psql', [this.conninfo, '-v', 'ON_ERROR_STOP=1', '-tAqc', sql], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`psql failed: ${sql}\n${r.stderr}`);
    return r.stdout.trim();
  }

  // Stops the server (pg_ctl -m fast) but keeps the cluster: resume() restarts it.
  halt() {
    const r = spawnSync(PG_SH, ['halt', this.dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cannot halt PostgreSQL:\n${r.stdout}\n${r.stderr}`);
  }

  resume() {
    const r = spawnSync(PG_SH, ['resume', this.dir, String(this.port)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cannot resume PostgreSQL:\n${r.stdout}\n${r.stderr}`);
  }

  // The same without blocking the event loop (for tests whose clients keep
  // talking meanwhile); mode: pg_ctl's shutdown mode, 'fast' or 'immediate'.
  haltAsync(mode = 'fast') {
    return this._pgsh(['halt', this.dir, mode], 'halt');
  }

  resumeAsync() {
    return this._pgsh(['resume', this.dir, String(this.port)], 'resume');
  }

  _pgsh(args, what) {
    return new Promise((resolve, reject) => {
      execFile(PG_SH, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) reject(new Error(`cannot ${what} PostgreSQL:\n${stdout}\n${stderr}`));
        else resolve();
      });
    });
  }

  stop() {
    if (this.dir) spawnSync(PG_SH, ['stop', this.dir], { encoding: 'utf8' });
    this.dir = null;
  }
}
