#!/usr/bin/env node
// signreqs.mjs - pre-signed EWP Echo requests for bench/run.sh (node:crypto only).
//
//   node bench/signreqs.mjs gen --key KEY.pem --host H:P --count N --out PREFIX
//        [--slices S] [--jobs J] [--accept-signature] [--fake] [--path P]
//     Writes S files PREFIX.0 .. PREFIX.S-1; request i goes to file i % S.
//     Each file holds raw HTTP/1.1 requests, each followed by one NUL byte,
//     ready for bench/wrk-replay.lua. Requests alternate POST (form body) and
//     GET (query string) with the same echo values, so every Echo response
//     body is identical. Every request has its own UUID v4 X-Request-Id,
//     Date = now, Digest and an rsa-sha256 HTTP signature (cliauth-httpsig)
//     over "(request-target) host date digest x-request-id".
//     --accept-signature  add "Accept-Signature: rsa-sha256" (signed response)
//     --fake              random bytes instead of a signature (same sizes; no
//                         RSA work), for the nginx baseline
//     --path P            request target path (default /ewp/echo); with --fake,
//                         every request is a GET of P
//     --jobs J            signing threads (default: number of CPUs)
//     --hei-ids N         GET requests of P?hei_id=...&hei_id=... instead of
//                         Echo: request i asks for --per-request K (default
//                         10) distinct ids of the N made by --hei-pattern
//                         (default p%d.partners.bench.example, %d = 1..N),
//                         ids i*K+1 .. i*K+K modulo N
//
//   node bench/signreqs.mjs probe --key KEY.pem --host H:P [--accept-signature]
//        [--body-out FILE] [--path P --hei-ids N ...] [--expect S:N]
//     Sends one freshly signed request (request 0 of gen: a POST to
//     /ewp/echo, or with --hei-ids a GET of P) to http://H:P and prints
//     "status=... body_bytes=... signature_header=yes|no [matches=M]"; the
//     body goes to FILE (or stderr when the status is not 200). --expect
//     S:N counts the occurrences of S in the body and fails unless N.

import { createHash, createPrivateKey, createPublicKey, randomBytes, randomUUID, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const ECHO_BODY = 'echo=bench&echo=smile-ewp-42';
const SIGNED = '(request-target) host date digest x-request-id';

function parseArgs(argv) {
  const o = {
    cmd: argv[0], slices: 1, jobs: availableParallelism(), path: '/ewp/echo',
    perRequest: 10, heiPattern: 'p%d.partners.bench.example',
  };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--key': o.key = next(); break;
      case '--host': o.host = next(); break;
      case '--count': o.count = Number.parseInt(next(), 10); break;
      case '--out': o.out = next(); break;
      case '--slices': o.slices = Number.parseInt(next(), 10); break;
      case '--jobs': o.jobs = Number.parseInt(next(), 10); break;
      case '--path': o.path = next(); break;
      case '--body-out': o.bodyOut = next(); break;
      case '--accept-signature': o.acceptSig = true; break;
      case '--fake': o.fake = true; break;
      case '--hei-ids': o.heiIds = Number.parseInt(next(), 10); break;
      case '--per-request': o.perRequest = Number.parseInt(next(), 10); break;
      case '--hei-pattern': o.heiPattern = next(); break;
      case '--expect': o.expect = next(); break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  return o;
}

function keyMaterial(pemPath) {
  const priv = createPrivateKey(readFileSync(pemPath));
  const der = createPublicKey(priv).export({ type: 'spki', format: 'der' });
  return { priv, keyId: createHash('sha256').update(der).digest('hex') };
}

const digestOf = (body) => 'SHA-256=' + createHash('sha256').update(body).digest('base64');

// "hei_id=a&hei_id=b..." of request i (see --hei-ids)
function heiQuery(i, o) {
  const ids = [];
  for (let j = 0; j < o.perRequest; j++) {
    ids.push(`hei_id=${o.heiPattern.replace('%d', String(((i * o.perRequest + j) % o.heiIds) + 1))}`);
  }
  return ids.join('&');
}

// One raw request; i selects POST (even) or GET (odd) for Echo.
function makeRequest(i, o, km) {
  const post = !o.fake && !o.heiIds && i % 2 === 0;
  const method = post ? 'POST' : 'GET';
  const target = o.fake ? o.path
    : o.heiIds ? `${o.path}?${heiQuery(i, o)}`
    : post ? o.path : `${o.path}?${ECHO_BODY}`;
  const body = post ? ECHO_BODY : '';
  const date = new Date().toUTCString(); // "Sun, 06 Nov 1994 08:49:37 GMT"
  const rid = randomUUID(); // v4, canonical lower case
  const digest = digestOf(body);
  const signingString =
    `(request-target): ${method.toLowerCase()} ${target}\n` +
    `host: ${o.host}\n` +
    `date: ${date}\n` +
    `digest: ${digest}\n` +
    `x-request-id: ${rid}`;
  const sig = o.fake
    ? randomBytes(256).toString('base64')
    : sign('sha256', Buffer.from(signingString), km.priv).toString('base64');
  let r =
    `${method} ${target} HTTP/1.1\r\n` +
    `Host: ${o.host}\r\n` +
    `Date: ${date}\r\n` +
    `X-Request-Id: ${rid}\r\n` +
    `Digest: ${digest}\r\n`;
  if (o.acceptSig) r += 'Accept-Signature: rsa-sha256\r\n';
  if (post) r += 'Content-Type: application/x-www-form-urlencoded\r\n';
  r += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  r +=
    `Authorization: Signature keyId="${km.keyId}",algorithm="rsa-sha256",` +
    `headers="${SIGNED}",signature="${sig}"\r\n\r\n` +
    body;
  return r;
}

// Worker: requests i = first, first + step, ... below count.
if (!isMainThread) {
  const o = workerData;
  const km = o.fake ? { keyId: '0'.repeat(64) } : keyMaterial(o.key);
  const out = [];
  for (let i = o.first; i < o.count; i += o.step) out.push(makeRequest(i, o, km));
  parentPort.postMessage(out);
}

async function gen(o) {
  if (!o.key && !o.fake) throw new Error('--key is required');
  if (!o.host || !o.out || !(o.count > 0) || !(o.slices > 0) || !(o.jobs > 0))
    throw new Error('gen needs --host, --out, --count N>0 (and S, J > 0)');
  checkHeiIds(o);
  const t0 = process.hrtime.bigint();
  const jobs = Math.min(o.jobs, o.count);
  const parts = await Promise.all(
    Array.from({ length: jobs }, (_, j) =>
      new Promise((resolve, reject) => {
        const w = new Worker(new URL(import.meta.url), {
          workerData: { ...o, first: j, step: jobs },
        });
        w.once('message', resolve);
        w.once('error', reject);
      })),
  );
  // Request i is parts[i % jobs][floor(i / jobs)]; file i % slices.
  const files = Array.from({ length: o.slices }, () => []);
  for (let i = 0; i < o.count; i++) {
    files[i % o.slices].push(parts[i % jobs][Math.floor(i / jobs)], '\0');
  }
  let bytes = 0;
  files.forEach((f, s) => {
    const buf = Buffer.from(f.join(''));
    bytes += buf.length;
    writeFileSync(`${o.out}.${s}`, buf);
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(
    `signreqs: ${o.count} ${o.fake ? 'unsigned (fake signature)' : 'signed'} requests, ` +
      `${(bytes / o.count).toFixed(0)} bytes each, ${o.slices} slice(s), ` +
      `${secs.toFixed(1)} s with ${jobs} thread(s)`,
  );
}

function checkHeiIds(o) {
  if (o.heiIds === undefined) return;
  if (!(o.heiIds > 0) || !(o.perRequest > 0) || o.perRequest > o.heiIds || !o.heiPattern.includes('%d'))
    throw new Error('--hei-ids N needs N >= --per-request K > 0 and a --hei-pattern with %d');
}

// Sends one request over a raw socket (no HTTP client rewriting anything).
async function probe(o) {
  if (!o.key || !o.host) throw new Error('probe needs --key and --host');
  const [h, p] = [o.host.slice(0, o.host.lastIndexOf(':')), o.host.slice(o.host.lastIndexOf(':') + 1)];
  checkHeiIds(o);
  const raw = makeRequest(0, o, keyMaterial(o.key))
    .replace('\r\nHost:', '\r\nConnection: close\r\nHost:');
  const resp = await new Promise((resolve, reject) => {
    const chunks = [];
    const s = connect({ host: h, port: Number(p) }, () => s.end(raw));
    s.setTimeout(5000, () => s.destroy(new Error('timeout after 5 s')));
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
  const sep = resp.indexOf('\r\n\r\n');
  const head = resp.subarray(0, sep).toString();
  const body = resp.subarray(sep + 4);
  const status = Number(head.split(' ')[1]);
  const sigHdr = /^signature:/im.test(head);
  if (o.bodyOut) writeFileSync(o.bodyOut, body);
  if (status !== 200) process.stderr.write(`${head}\n\n${body}\n`);
  let line = `status=${status} body_bytes=${body.length} signature_header=${sigHdr ? 'yes' : 'no'}`;
  let ok = status === 200;
  if (o.expect) {
    const m = /^(.+):(\d+)$/.exec(o.expect);
    if (!m) throw new Error('--expect needs STRING:COUNT');
    const matches = body.toString().split(m[1]).length - 1;
    line += ` matches=${matches}`;
    if (matches !== Number(m[2])) {
      ok = false;
      process.stderr.write(`expected ${m[2]} x ${m[1]} in the body, found ${matches}\n`);
    }
  }
  console.log(line);
  if (!ok) process.exitCode = 1;
}

if (isMainThread) {
  try {
    const o = parseArgs(process.argv.slice(2));
    if (o.cmd === 'gen') await gen(o);
    else if (o.cmd === 'probe') await probe(o);
    else throw new Error('usage: signreqs.mjs gen|probe ... (see the head of this file)');
  } catch (e) {
    console.error(`signreqs: ${e.message}`);
    process.exit(2);
  }
}
