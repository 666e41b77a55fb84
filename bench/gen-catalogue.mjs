#!/usr/bin/env node
// gen-catalogue.mjs - a synthetic EWP Registry catalogue for benchmarks.
//
//   node bench/gen-catalogue.mjs [N] [OUT]
//     N    number of HEIs (default 5000), one host per HEI
//     OUT  output file (default bench/out/catalogue-N.xml)
//
// Each host has nine API entries (with http-security, URLs and max-*
// limits), one covered HEI with erasmus / pic / erasmus-charter ids and
// two names, and one RSA key used as both client and server credential.
//
// Keys: every host gets a distinct, well-formed 2048-bit RSA public key,
// but generating 5000 real key pairs takes minutes. Instead we draw a
// pool of P 1024-bit primes (P*(P-1)/2 >= N, about 100 primes, a few
// seconds) and use the product of each distinct pair as a modulus. These
// are genuine RSA moduli of the real size, all different, so the
// catalogue has realistic bytes and parsing cost; but keys sharing a
// prime are trivially breakable, so they are for benchmarks only.
// registry.c does not judge key size or strength (that is the Registry's
// job), it only requires RSA and a matching sha-256.

import { createHash, createPublicKey, generatePrimeSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const N = Number.parseInt(process.argv[2] ?? '5000', 10);
const OUT = process.argv[3] ?? `bench/out/catalogue-${N}.xml`;
if (!Number.isInteger(N) || N < 1) {
  console.error('usage: gen-catalogue.mjs [N>=1] [OUT]');
  process.exit(2);
}

const REG = 'https://github.com/erasmus-without-paper/ewp-specs-api-registry/tree/stable-v1';
const gh = (repo, branch, file) =>
  `https://github.com/erasmus-without-paper/${repo}/blob/${branch}/${file}`;
const SEC = 'https://github.com/erasmus-without-paper/ewp-specs-sec-intro/tree/stable-v2';
const secNs = (name) => `https://github.com/erasmus-without-paper/ewp-specs-sec-${name}/tree/stable-v1`;

// prefix, namespace, element, version, URL element names, limits
const APIS = [
  ['d6', gh('ewp-specs-api-discovery', 'stable-v6', 'manifest-entry.xsd'), 'discovery', '6.0.0', ['url'], []],
  ['e2', gh('ewp-specs-api-echo', 'stable-v2', 'manifest-entry.xsd'), 'echo', '2.0.0', ['url'], []],
  ['in2', gh('ewp-specs-api-institutions', 'stable-v2', 'manifest-entry.xsd'), 'institutions', '2.2.0', ['url'], [['max-hei-ids', 1]]],
  ['ou2', gh('ewp-specs-api-ounits', 'stable-v2', 'manifest-entry.xsd'), 'organizational-units', '2.2.0', ['url'], [['max-hei-ids', 1], ['max-ounit-ids', 100], ['max-ounit-codes', 100]]],
  ['ia7', gh('ewp-specs-api-iias', 'stable-v7', 'manifest-entry.xsd'), 'iias', '7.0.0', ['get-url', 'index-url', 'stats-url'], [['max-iia-ids', 100]]],
  ['iac3', gh('ewp-specs-api-iia-cnr', 'stable-v3', 'manifest-entry.xsd'), 'iia-cnr', '3.0.0', ['url'], []],
  ['om2', gh('ewp-specs-api-omobilities', 'stable-v2', 'manifest-entry.xsd'), 'omobilities', '2.1.0', ['get-url', 'index-url'], [['max-omobility-ids', 100]]],
  ['ola1', gh('ewp-specs-api-omobility-las', 'stable-v1', 'manifest-entry.xsd'), 'omobility-las', '1.2.0', ['get-url', 'index-url', 'update-url', 'stats-url'], [['max-omobility-ids', 100]]],
  ['fs1', gh('ewp-specs-api-factsheet', 'stable-v1', 'manifest-entry.xsd'), 'factsheet', '1.0.0', ['url'], [['max-hei-ids', 1]]],
];

const b64url = (buf) => buf.toString('base64url');
const bigToBuf = (n) => {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return Buffer.from(hex, 'hex');
};

// Distinct 2048-bit moduli from pairs of a prime pool (see the header).
function makeKeys(count) {
  let pool = 2;
  while ((pool * (pool - 1)) / 2 < count) pool++;
  const primes = [];
  for (let i = 0; i < pool; i++) primes.push(generatePrimeSync(1024, { bigint: true }));
  const keys = [];
  for (let i = 0; i < pool && keys.length < count; i++) {
    for (let j = i + 1; j < pool && keys.length < count; j++) {
      const n = primes[i] * primes[j];
      if (n.toString(2).length !== 2048) continue;
      const der = createPublicKey({
        key: { kty: 'RSA', n: b64url(bigToBuf(n)), e: 'AQAB' },
        format: 'jwk',
      }).export({ type: 'spki', format: 'der' });
      keys.push({ der, sha: createHash('sha256').update(der).digest('hex') });
    }
  }
  if (keys.length < count) throw new Error('prime pool too small');
  return keys;
}

const wrap = (s) => s.replace(/.{1,76}/g, '            $&\n');

function apiEntry([p, , name, version, urls, limits], hei) {
  const base = `https://ewp.${hei}/ewp/${name}`;
  let s = `            <${p}:${name} version="${version}">\n`;
  if (name !== 'discovery') {
    s += `                <${p}:http-security>\n`;
    s += `                    <sec:client-auth-methods><sa2:httpsig/></sec:client-auth-methods>\n`;
    s += `                    <sec:server-auth-methods><sb1:tlscert/><sb2:httpsig/></sec:server-auth-methods>\n`;
    s += `                </${p}:http-security>\n`;
  }
  for (const u of urls) s += `                <${p}:${u}>${base}/${u}</${p}:${u}>\n`;
  for (const [l, v] of limits) s += `                <${p}:${l}>${v}</${p}:${l}>\n`;
  return `${s}            </${p}:${name}>\n`;
}

function host(hei, key) {
  return [
    '    <host>\n',
    `        <ewp:admin-email>ewp-admin@${hei}</ewp:admin-email>\n`,
    '        <ewp:admin-provider>Bench provider</ewp:admin-provider>\n',
    '        <apis-implemented>\n',
    ...APIS.map((a) => apiEntry(a, hei)),
    '        </apis-implemented>\n',
    `        <institutions-covered><hei-id>${hei}</hei-id></institutions-covered>\n`,
    `        <client-credentials-in-use><rsa-public-key sha-256="${key.sha}"/></client-credentials-in-use>\n`,
    `        <server-credentials-in-use><rsa-public-key sha-256="${key.sha}"/></server-credentials-in-use>\n`,
    '    </host>\n',
  ].join('');
}

function institution(i, hei) {
  const cc = String.fromCharCode(65 + (i % 26)) + String.fromCharCode(65 + (Math.floor(i / 26) % 26));
  return [
    `        <hei id="${hei}">\n`,
    `            <other-id type="erasmus">${cc} BENCH${String(i).padStart(5, '0')}</other-id>\n`,
    `            <other-id type="pic">${900000000 + i}</other-id>\n`,
    `            <other-id type="erasmus-charter">${100000 + i}-EPP-1-2014-1-${cc}-EPPKA3-ECHE</other-id>\n`,
    `            <name xml:lang="xx">Universitas Benchmarki ${i}</name>\n`,
    `            <name xml:lang="en">Benchmark University ${i}</name>\n`,
    '        </hei>\n',
  ].join('');
}

const t0 = Date.now();
const keys = makeKeys(N);
const t1 = Date.now();
const heis = Array.from({ length: N }, (_, i) => `hei${i}.bench.example.org`);
const ns = [
  `xmlns="${REG}"`,
  `xmlns:ewp="${gh('ewp-specs-architecture', 'stable-v1', 'common-types.xsd')}"`,
  `xmlns:sec="${SEC}"`,
  `xmlns:sa2="${secNs('cliauth-httpsig')}"`,
  `xmlns:sb1="${secNs('srvauth-tlscert')}"`,
  `xmlns:sb2="${secNs('srvauth-httpsig')}"`,
  ...APIS.map(([p, uri]) => `xmlns:${p}="${uri}"`),
];
const parts = [`<?xml version="1.0" encoding="UTF-8"?>\n<catalogue\n    ${ns.join('\n    ')}\n>\n`];
heis.forEach((hei, i) => parts.push(host(hei, keys[i])));
parts.push('    <institutions>\n');
heis.forEach((hei, i) => parts.push(institution(i, hei)));
parts.push('    </institutions>\n    <binaries>\n');
for (const k of keys) {
  parts.push(`        <rsa-public-key sha-256="${k.sha}">\n${wrap(k.der.toString('base64'))}        </rsa-public-key>\n`);
}
parts.push('    </binaries>\n</catalogue>\n');
const xml = parts.join('');
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, xml);
console.error(`${OUT}: ${N} HEIs/hosts/keys, ${(xml.length / 1048576).toFixed(1)} MiB ` +
  `(keys ${((t1 - t0) / 1000).toFixed(1)} s, total ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
