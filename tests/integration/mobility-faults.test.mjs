// Faults between two real ewpd nodes, each asserting that nothing is
// lost and nothing is stored twice: our node down while the partner
// nominates, our database stopped while notifications arrive, a worker of
// ours killed with kill -9 in the middle of a fetch.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';

import { itest } from './lib/daemon.mjs';
import { REPO_ROOT } from './lib/env.mjs';
import { pollUntil } from './lib/poll.mjs';
import { SENDING_HEI, TwoNodes } from './lib/two-nodes.mjs';

const JOBS_CONF = { retry_min: '1s', retry_max: '2s', lease: '6s', timeout: '3s' };

let t;
let S; // sending node (the partner)
let R; // receiving node (ours)

before(async () => {
  t = await TwoNodes.create('faults', {
    receiving: { conf: { jobs: JOBS_CONF } },
    sending: { conf: { jobs: JOBS_CONF } },
  });
  S = t.sending;
  R = t.receiving;
});
after(async () => { await t?.cleanup(); });

const fx = () => R;
const NOMINATION = fs.readFileSync(path.join(REPO_ROOT, 'tests', 'demo', 'mobility', 'nomination.xml'), 'utf8');

// Nominates n students on the sending node (ids PREFIX-1..n), in one go.
function nominate(prefix, n) {
  const dir = path.join(t.dir, prefix);
  fs.mkdirSync(dir, { recursive: true });
  const ids = [];
  for (let i = 1; i <= n; i++) {
    const id = `${prefix}-${i}`;
    const f = path.join(dir, `${id}.xml`);
    fs.writeFileSync(f, NOMINATION.replace(/ums-2026-0042/g, id).replace(/20230042/g, `${prefix}${i}`));
    t.ctlOk(S, ['mobility', 'nominate', f]);
    ids.push(id);
  }
  return ids;
}

const count = (node, sql) => Number(node.pg.psql(sql));
const stored = (prefix) => count(R, `SELECT count(*) FROM smile.mobility m JOIN smile.inscription i ON i.id = m.inscription_id
  WHERE m.sending_hei_id = '${SENDING_HEI}' AND m.omobility_id LIKE '${prefix}-%' AND NOT m.is_outgoing`);

async function allStored(prefix, n, ms = 30000) {
  return pollUntil(() => {
    const k = stored(prefix);
    return { ok: k === n, detail: `${k}/${n} stored` };
  }, ms, `${n} nominations stored on our node`);
}

function assertOnce(prefix, n) {
  assert.equal(count(R, `SELECT count(*) FROM smile.mobility WHERE omobility_id LIKE '${prefix}-%'`), n, 'one mobility row each');
  assert.equal(count(R, `SELECT count(*) FROM smile.inscription i JOIN smile.mobility m ON m.inscription_id = i.id
    WHERE m.omobility_id LIKE '${prefix}-%'`), n, 'one registration each');
  assert.equal(count(R, `SELECT count(*) FROM smile.inscription WHERE esi LIKE '%:${prefix}%'`), n, 'no stray registration');
  for (const node of [S, R]) {
    assert.equal(count(node, `SELECT count(*) FROM ewp.jobs WHERE dedupe_key LIKE '%${prefix}-%'
      AND status IN ('rejected', 'failed-max-attempts', 'expired', 'cancelled', 'no-cnr-api')`), 0, `no failed job on ${node.name}`);
  }
}

function workers(node) {
  const kids = fs.readFileSync(`/proc/${node.proc.pid}/task/${node.proc.pid}/children`, 'utf8').trim();
  return kids ? kids.split(/\s+/).map(Number) : [];
}

itest(fx, 'our node down while the partner nominates: its CNRs back off, and once we are up again every nomination arrives once', async () => {
  await R.stop();
  const ids = nominate('down', 12);
  await pollUntil(() => {
    const k = count(S, `SELECT count(*) FROM ewp.jobs WHERE kind = 'cnr' AND dedupe_key LIKE '%down-%' AND attempts >= 2 AND status = 'pending'`);
    return { ok: k === ids.length, detail: `${k} CNR jobs retried` };
  }, 20000, 'the partner retrying its CNRs while we are down');
  await R.start();
  await allStored('down', ids.length);
  await pollUntil(() => {
    const k = count(S, `SELECT count(*) FROM ewp.jobs WHERE kind = 'cnr' AND dedupe_key LIKE '%down-%' AND status <> 'success'`);
    return { ok: k === 0, detail: `${k} CNR jobs not yet delivered` };
  }, 20000, 'every CNR delivered');
  assertOnce('down', ids.length);
});

itest(fx, 'our PostgreSQL stopped while notifications arrive: 503 to the partner, which retries; nothing lost once it is back', async () => {
  R.pg.halt();
  let ids;
  try {
    ids = nominate('pgdown', 10);
    await pollUntil(() => {
      const k = count(S, `SELECT count(*) FROM ewp.message_log WHERE direction = 'out' AND api = 'omobility-cnr' AND status = 503`);
      return { ok: k >= 1, detail: `${k} CNRs answered 503` };
    }, 20000, 'our node answering 503 while its database is down');
  } finally {
    R.pg.resume();
  }
  await allStored('pgdown', ids.length);
  assertOnce('pgdown', ids.length);
});

itest(fx, 'a worker of ours killed with kill -9 in the middle of a fetch: another worker fetches after the lease, stored once', async () => {
  const partner = workers(S);
  assert.ok(partner.length >= 1, 'the partner has workers');
  // the partner freezes: our fetch will hang on the wire
  const [id] = nominate('kill', 1);
  await allStored('kill', 1); // first delivery as usual
  for (const p of partner) process.kill(p, 'SIGSTOP');
  let victim;
  try {
    R.pg.psql(`INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload)
      VALUES ('in', 'refetch', '${SENDING_HEI}', 'omobilities', '${id}',
              jsonb_build_object('omobility_id', '${id}', 'sending_hei_id', '${SENDING_HEI}'))`);
    const running = await pollUntil(() => {
      const row = R.pg.psql(`SELECT id || ' ' || leased_by FROM ewp.jobs WHERE dedupe_key = '${id}' AND status = 'running'`);
      return { ok: !!row, value: row, detail: 'no running refetch yet' };
    }, 10000, 'our refetch on the wire to the frozen partner');
    const [jobId, lease] = running.value.split(' ');
    victim = Number(lease.split(':').pop());
    assert.ok(workers(R).includes(victim), `the lease names one of our workers (${lease})`);
    process.kill(victim, 'SIGKILL');
    // the partner wakes up; the job waits for its lease to run out
    for (const p of partner) process.kill(p, 'SIGCONT');
    const done = await pollUntil(() => {
      const st = R.pg.psql(`SELECT status || ' ' || attempts FROM ewp.jobs WHERE id = ${jobId}`);
      return { ok: st.startsWith('success'), value: st, detail: st };
    }, 30000, 'the refetch done by another worker');
    assert.ok(Number(done.value.split(' ')[1]) >= 2, `attempted again after the kill: ${done.value}`);
  } finally {
    for (const p of partner) { try { process.kill(p, 'SIGCONT'); } catch { /* gone */ } }
  }
  assert.ok(R.alive, 'the supervisor restarted its worker and still runs');
  assertOnce('kill', 1);
});
