// bench/portal-logins.mjs - sign-ins to the staff portal, for step 9 of
// bench/run.sh (see bench/README.md). node:crypto and node:http only.
//
//   node bench/portal-logins.mjs scrypt [--seconds S]
//     scrypt checks per second of ONE core with the portal's parameters
//     (N = 2^15, r = 8, p = 1, 32-byte key: gateway/portal/portal_password.h),
//     through OpenSSL's EVP_PBE_scrypt as ewpd does.
//
//   BENCH_PORTAL_PASSWORD=... node bench/portal-logins.mjs signins \
//       --url http://127.0.0.1:PORT --user NAME --burst N --sustained M --concurrency C
//     Every sign-in is a browser's: GET /portal/login (a fresh pre-session
//     cookie and the CSRF token of its form), then POST /portal/login with
//     both. The forms are all fetched beforehand (not timed). Then:
//     burst:     N POSTs sent at once, each on its own connection; the
//                answers are counted by status (303 signed in, 503 "too
//                many password checks at once" beyond 2 per worker);
//     sustained: M sign-ins by C clients in a closed loop (each sends its
//                next form when the previous one is answered); a 503 is
//                counted and the same form sent again 20 ms later; timed
//                from the first POST to the last answer.
//     A 303 counts only with a session cookie and Location /portal/.
// Prints "RESULT name value" lines for bench/run.sh; exit 1 when an
// answer was neither a 303 nor a 503, or nobody signed in.
import crypto from 'node:crypto';
import http from 'node:http';

const args = process.argv.slice(2);
const cmd = args.shift();
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? def : args[i + 1];
};
const result = (k, v) => console.log(`RESULT ${k} ${v}`);

if (cmd === 'scrypt') {
  const seconds = Number(opt('seconds', '2'));
  const salt = crypto.randomBytes(16);
  const params = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
  crypto.scryptSync('warm-up', salt, 32, params);
  let n = 0;
  const t0 = process.hrtime.bigint();
  let t = 0;
  while (t < seconds) {
    crypto.scryptSync(`password ${n}`, salt, 32, params);
    n++;
    t = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  console.log(`scrypt N=2^15 r=8 p=1: ${n} checks in ${t.toFixed(2)} s on one core: ${(n / t).toFixed(1)}/s, ${(1000 * t / n).toFixed(1)} ms each`);
  result('scrypt_per_s', (n / t).toFixed(1));
  process.exit(0);
}

if (cmd !== 'signins') {
  console.error('usage: portal-logins.mjs scrypt [--seconds S] | signins --url URL --user NAME --burst N --sustained M --concurrency C');
  process.exit(2);
}

const base = new URL(opt('url'));
const user = opt('user');
const password = process.env.BENCH_PORTAL_PASSWORD;
const nBurst = Number(opt('burst', '100'));
const nSustained = Number(opt('sustained', '100'));
const conc = Number(opt('concurrency', '4'));
if (!user || !password) {
  console.error('portal-logins: --user and BENCH_PORTAL_PASSWORD are needed');
  process.exit(2);
}

function send(method, path, { headers = {}, body = null, agent = false } = {}) {
  return new Promise((resolve, reject) => {
    const h = { Host: base.host, ...headers };
    if (body != null) {
      h['Content-Type'] = 'application/x-www-form-urlencoded';
      h['Content-Length'] = Buffer.byteLength(body);
    }
    const rq = http.request({ hostname: base.hostname, port: base.port, method, path, headers: h, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    rq.on('error', reject);
    rq.setTimeout(60000, () => rq.destroy(new Error(`${method} ${path}: no answer in 60 s`)));
    if (body != null) rq.write(body);
    rq.end();
  });
}

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 4 });

// One sign-in form as a browser gets it: its pre-session cookie and token.
async function form() {
  const r = await send('GET', '/portal/login', { agent: keepAlive });
  const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(r.text)?.[1];
  const cookie = (r.headers['set-cookie'] || []).map((c) => c.split(';')[0]).find((c) => /pre/i.test(c.split('=')[0]));
  if (r.status !== 200 || !csrf || !cookie)
    throw new Error(`GET /portal/login: status ${r.status}, csrf ${csrf ? 'yes' : 'no'}, pre-session cookie ${cookie ? 'yes' : 'no'}`);
  return { cookie, body: `csrf=${csrf}&username=${encodeURIComponent(user)}&password=${encodeURIComponent(password)}` };
}

async function forms(n) {
  const out = [];
  for (let i = 0; i < n; i += 8) out.push(...(await Promise.all(Array.from({ length: Math.min(8, n - i) }, form))));
  return out;
}

const statuses = {};
let bad = 0;
function post(f) {
  return send('POST', '/portal/login', { headers: { Cookie: f.cookie }, body: f.body }).then((r) => {
    let s = String(r.status);
    if (r.status === 303) {
      const session = (r.headers['set-cookie'] || []).some((c) => /^[^=]*session[^=]*=[0-9A-Za-z_-]{16,}/i.test(c));
      if (!session || !/^\/portal\/?$/.test(r.headers.location || '')) {
        s = '303-without-session';
        bad++;
      }
    } else if (r.status !== 503) {
      bad++;
    }
    statuses[s] = (statuses[s] || 0) + 1;
    return r.status;
  }, (e) => {
    statuses.error = (statuses.error || 0) + 1;
    bad++;
    console.log(`  ${e.message}`);
    return 0;
  });
}
const fmt = (o) => Object.entries(o).sort().map(([k, v]) => `${k}=${v}`).join(' ') || 'none';

const tPrep = performance.now();
const burstForms = await forms(nBurst);
const loopForms = await forms(nSustained);
keepAlive.destroy();
console.log(`${nBurst + nSustained} sign-in forms fetched beforehand (GET /portal/login, each its own pre-session cookie and token) in ${((performance.now() - tPrep) / 1000).toFixed(1)} s`);

// burst: all at once
let t0 = performance.now();
await Promise.all(burstForms.map(post));
const burstS = (performance.now() - t0) / 1000;
const burst = { ...statuses };
console.log(`burst: ${nBurst} POST /portal/login at once, answered in ${burstS.toFixed(2)} s: ${fmt(burst)}`);
result('burst_303', burst['303'] || 0);
result('burst_503', burst['503'] || 0);
result('burst_s', burstS.toFixed(3));
for (const k of Object.keys(statuses)) delete statuses[k];

// sustained: a closed loop of conc clients
let next = 0;
t0 = performance.now();
await Promise.all(Array.from({ length: conc }, async () => {
  while (next < loopForms.length) {
    const f = loopForms[next++];
    for (;;) {
      const s = await post(f);
      if (s !== 503) break;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}));
const loopS = (performance.now() - t0) / 1000;
const ok = statuses['303'] || 0;
console.log(`sustained: ${nSustained} sign-ins by ${conc} clients in a closed loop: ${loopS.toFixed(2)} s, ${(ok / loopS).toFixed(1)} sign-ins/s; ${fmt(statuses)} (each 503 sent again 20 ms later)`);
result('sustained_303', ok);
result('sustained_503', statuses['503'] || 0);
result('sustained_s', loopS.toFixed(3));
result('signins_per_s', (ok / loopS).toFixed(1));
if (bad) console.log(`FAILED: ${bad} answers were neither a 303 with a session nor a 503`);
if (!ok) console.log('FAILED: nobody signed in');
process.exit(bad || !ok ? 1 : 0);
