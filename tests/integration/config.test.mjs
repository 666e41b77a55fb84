// 8b. Configuration errors: ewpd stops at once with FILE:LINE and the
//     reason; `ewpd -n -c FILE` only checks the file.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';

import { Ewpd, itest, renderConf } from './lib/daemon.mjs';
import { EWPD } from './lib/env.mjs';
import { portOpen } from './lib/http.mjs';

let fx;
before(async () => { fx = await Ewpd.create('config', { start: false }); });
after(async () => { await fx?.cleanup(); });

// Runs ewpd with args; kills it (by PID) if it is still running after
// timeoutMs. Resolves { code, signal, stdout, stderr, ms, timedOut }.
function runEwpd(args, timeoutMs = 5000) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(EWPD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; process.kill(p.pid, 'SIGKILL'); }, timeoutMs);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0, timedOut });
    });
  });
}

// Writes a variant of the good configuration: edit(lines) may change the
// line array. Returns { file, text }.
function variant(name, edit) {
  const lines = renderConf(fx.conf).split('\n');
  edit(lines);
  const text = lines.join('\n');
  const file = path.join(fx.dir, name);
  fs.writeFileSync(file, text);
  return { file, text };
}

function lineOf(text, re) {
  const i = text.split('\n').findIndex((l) => re.test(l));
  assert.ok(i >= 0, `test bug: ${re} not in config`);
  return i + 1;
}

function show(r) {
  return `\nexit ${r.code} signal ${r.signal} after ${r.ms} ms${r.timedOut ? ' (killed: still running)' : ''}` +
    `\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

itest(() => null, 'config: ewpd -n -c good.conf → exit 0, nothing listening', async () => {
  const r = await runEwpd(['-n', '-c', fx.confPath]);
  assert.equal(r.code, 0, `ewpd -n on the good configuration should exit 0${show(r)}\n--- config ---\n${renderConf(fx.conf)}`);
  assert.equal(await portOpen(fx.port), false, 'ewpd -n must not leave anything listening');
});

itest(() => null, 'config: unknown key → ewpd exits non-zero quickly with FILE:LINE and the key name', async () => {
  const { file, text } = variant('unknown-key.conf', (l) => {
    const i = l.indexOf('[ewp]');
    l.splice(i + 2, 0, 'frobnicate_level = 3');
  });
  const line = lineOf(text, /^frobnicate_level/);
  const r = await runEwpd(['-c', file]);
  assert.ok(!r.timedOut, `ewpd kept running with an unknown key${show(r)}`);
  assert.notEqual(r.code, 0, `exit status must be non-zero${show(r)}`);
  assert.ok(r.ms < 3000, `ewpd took ${r.ms} ms to refuse the file${show(r)}`);
  assert.ok(r.stderr.includes(`${path.basename(file)}:${line}`), `stderr must contain ${path.basename(file)}:${line}${show(r)}`);
  assert.ok(r.stderr.includes('frobnicate_level'), `stderr must name the key frobnicate_level${show(r)}`);
});

itest(() => null, 'config: ewpd -n with an unknown key → non-zero with FILE:LINE', async () => {
  const { file, text } = variant('unknown-key-n.conf', (l) => {
    l.splice(l.indexOf('[server]') + 1, 0, 'listen_backlog = 100');
  });
  const line = lineOf(text, /^listen_backlog/);
  const r = await runEwpd(['-n', '-c', file]);
  assert.notEqual(r.code, 0, `exit status must be non-zero${show(r)}`);
  assert.ok((r.stderr + r.stdout).includes(`${path.basename(file)}:${line}`), `message must contain FILE:${line}${show(r)}`);
  assert.ok((r.stderr + r.stdout).includes('listen_backlog'), `message must name the key${show(r)}`);
});

itest(() => null, 'config: ewpd -n with workers = zero → non-zero with the line', async () => {
  const { file, text } = variant('bad-workers.conf', (l) => {
    const i = l.findIndex((x) => x.startsWith('workers ='));
    l[i] = 'workers = zero';
  });
  const line = lineOf(text, /^workers = zero/);
  const r = await runEwpd(['-n', '-c', file]);
  assert.notEqual(r.code, 0, `exit status must be non-zero${show(r)}`);
  assert.ok((r.stderr + r.stdout).includes(`${path.basename(file)}:${line}`), `message must contain FILE:${line}${show(r)}`);
});

itest(() => null, 'config: unknown section → non-zero with FILE:LINE', async () => {
  const { file, text } = variant('bad-section.conf', (l) => { l.push('[databse]', 'url = x'); });
  const line = lineOf(text, /^\[databse\]/);
  const r = await runEwpd(['-n', '-c', file]);
  assert.notEqual(r.code, 0, `exit status must be non-zero${show(r)}`);
  assert.ok((r.stderr + r.stdout).includes(`${path.basename(file)}:${line}`), `message must contain FILE:${line}${show(r)}`);
});

itest(() => null, 'config: date_window below 5 minutes is refused', async () => {
  const { file, text } = variant('short-window.conf', (l) => {
    const i = l.findIndex((x) => x.startsWith('date_window ='));
    l[i] = 'date_window = 2m';
  });
  const line = lineOf(text, /^date_window = 2m/);
  const r = await runEwpd(['-n', '-c', file]);
  assert.notEqual(r.code, 0, `a date window under 5 minutes must be refused${show(r)}`);
  assert.ok((r.stderr + r.stdout).includes(`:${line}`), `message must give line ${line}${show(r)}`);
});

itest(() => null, 'config: missing required key (hei_id) → non-zero, names the key', async () => {
  const { file } = variant('no-hei.conf', (l) => {
    const i = l.findIndex((x) => x.startsWith('hei_id ='));
    l.splice(i, 1);
  });
  const r = await runEwpd(['-n', '-c', file]);
  assert.notEqual(r.code, 0, `a configuration without hei_id must be refused${show(r)}`);
  assert.ok((r.stderr + r.stdout).includes('hei_id'), `message must name hei_id${show(r)}`);
});

itest(() => fx, 'config: a second ewpd on a port already served → refused at once, the first keeps serving alone', async () => {
  await fx.start();
  try {
    const r = await runEwpd(['-c', fx.confPath]);
    assert.ok(!r.timedOut, `the second ewpd kept running: it would share the port (SO_REUSEPORT)${show(r)}`);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, new RegExp(`listen 127\\.0\\.0\\.1:${fx.port}: Address already in use \\(another ewpd or another program has it\\)`), show(r));
    assert.ok(r.ms < 3000, `took ${r.ms} ms${show(r)}`);
    assert.equal((await fx.get('/healthz')).status, 200, 'the first one still answers');
  } finally {
    await fx.stop();
  }
});
