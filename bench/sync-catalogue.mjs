#!/usr/bin/env node
// sync-catalogue.mjs - the Registry catalogue of the institution-sync bench.
//
//   node bench/sync-catalogue.mjs --heis N --hosts H --base URL
//        --partner-server-key PUB.pem --syncer-client-key PUB.pem
//        --syncer-hei ID [--hei-pattern P] --out FILE
//
// H partner hosts share the N HEIs p1..pN.partners.bench.example (the
// pattern of seed-institutions.sql; --hei-pattern, %d = 1..N) in equal
// runs, like hosting providers serving many institutions. Every partner
// host lists Institutions v2 and Organizational Units v2 at URL/ewp/...
// (one ewpd answering for all of them), max-hei-ids 10, max-ounit-ids 10
// and max-ounit-codes 10 as ewpd's own manifest says, httpsig client and
// server authentication, and the partner ewpd's server key. One more host
// covers the syncing HEI with its client key, so that the partner accepts
// its requests. Every HEI is named in <institutions>.

import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const o = { heiPattern: 'p%d.partners.bench.example' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const v = argv[i + 1];
  if (v === undefined) throw new Error(`${argv[i]} needs a value`);
  switch (argv[i]) {
    case '--heis': o.heis = Number.parseInt(v, 10); break;
    case '--hosts': o.hosts = Number.parseInt(v, 10); break;
    case '--base': o.base = v; break;
    case '--partner-server-key': o.serverKey = v; break;
    case '--syncer-client-key': o.clientKey = v; break;
    case '--syncer-hei': o.syncerHei = v; break;
    case '--hei-pattern': o.heiPattern = v; break;
    case '--out': o.out = v; break;
    default: throw new Error(`unknown argument ${argv[i]}`);
  }
}
if (!(o.heis > 0) || !(o.hosts > 0) || o.hosts > o.heis || !o.base || !o.serverKey ||
    !o.clientKey || !o.syncerHei || !o.out || !o.heiPattern.includes('%d')) {
  console.error('usage: sync-catalogue.mjs --heis N --hosts H<=N --base URL --partner-server-key PEM ' +
    '--syncer-client-key PEM --syncer-hei ID --out FILE [--hei-pattern P]');
  process.exit(2);
}

const key = (pemPath) => {
  const der = createPublicKey(readFileSync(pemPath)).export({ type: 'spki', format: 'der' });
  return { der, sha: createHash('sha256').update(der).digest('hex') };
};
const server = key(o.serverKey);
const client = key(o.clientKey);
const heiId = (i) => o.heiPattern.replace('%d', String(i));
const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

const REG = 'https://github.com/erasmus-without-paper/ewp-specs-api-registry/tree/stable-v1';
const SEC = 'https://github.com/erasmus-without-paper/ewp-specs-sec-intro/tree/stable-v2';
const CLI = 'https://github.com/erasmus-without-paper/ewp-specs-sec-cliauth-httpsig/tree/stable-v1';
const SRV = 'https://github.com/erasmus-without-paper/ewp-specs-sec-srvauth-httpsig/tree/stable-v1';
const INST = 'https://github.com/erasmus-without-paper/ewp-specs-api-institutions/blob/stable-v2/manifest-entry.xsd';
const OU = 'https://github.com/erasmus-without-paper/ewp-specs-api-ounits/blob/stable-v2/manifest-entry.xsd';
const security = (p) =>
  `        <${p}:http-security>\n` +
  '          <sec:client-auth-methods><cli:httpsig/></sec:client-auth-methods>\n' +
  '          <sec:server-auth-methods><srv:httpsig/></sec:server-auth-methods>\n' +
  `        </${p}:http-security>\n`;

const out = [
  '<?xml version="1.0" encoding="UTF-8"?>\n',
  `<catalogue xmlns="${REG}" xmlns:sec="${SEC}" xmlns:cli="${CLI}" xmlns:srv="${SRV}"\n`,
  `    xmlns:in2="${INST}" xmlns:ou2="${OU}">\n`,
];
const per = Math.ceil(o.heis / o.hosts);
for (let h = 0; h < o.hosts; h++) {
  const from = h * per + 1;
  const to = Math.min(o.heis, from + per - 1);
  if (from > to) break;
  out.push(
    '  <host>\n',
    `    <admin-email xmlns="https://github.com/erasmus-without-paper/ewp-specs-architecture/blob/stable-v1/common-types.xsd">ewp-admin@provider${h + 1}.bench.example</admin-email>\n`,
    '    <apis-implemented>\n',
    '      <in2:institutions version="2.2.0">\n', security('in2'),
    `        <in2:url>${esc(o.base)}/ewp/institutions</in2:url>\n`,
    '        <in2:max-hei-ids>10</in2:max-hei-ids>\n',
    '      </in2:institutions>\n',
    '      <ou2:organizational-units version="2.2.0">\n', security('ou2'),
    `        <ou2:url>${esc(o.base)}/ewp/ounits</ou2:url>\n`,
    '        <ou2:max-ounit-ids>10</ou2:max-ounit-ids>\n',
    '        <ou2:max-ounit-codes>10</ou2:max-ounit-codes>\n',
    '      </ou2:organizational-units>\n',
    '    </apis-implemented>\n',
    '    <institutions-covered>\n',
  );
  for (let i = from; i <= to; i++) out.push(`      <hei-id>${heiId(i)}</hei-id>\n`);
  out.push(
    '    </institutions-covered>\n',
    `    <server-credentials-in-use><rsa-public-key sha-256="${server.sha}"/></server-credentials-in-use>\n`,
    '  </host>\n',
  );
}
out.push(
  '  <host>\n',
  `    <institutions-covered><hei-id>${esc(o.syncerHei)}</hei-id></institutions-covered>\n`,
  `    <client-credentials-in-use><rsa-public-key sha-256="${client.sha}"/></client-credentials-in-use>\n`,
  '  </host>\n',
  '  <institutions>\n',
  `    <hei id="${esc(o.syncerHei)}"><name xml:lang="en">SMILE Bench University</name></hei>\n`,
);
for (let i = 1; i <= o.heis; i++) {
  out.push(
    `    <hei id="${heiId(i)}">\n`,
    `      <other-id type="erasmus">D  BENCH${String(i).padStart(5, '0')}</other-id>\n`,
    `      <name xml:lang="en">Benchmark University ${i}</name>\n`,
    '    </hei>\n',
  );
}
out.push('  </institutions>\n  <binaries>\n');
for (const k of [server, client]) {
  out.push(`    <rsa-public-key sha-256="${k.sha}">${k.der.toString('base64')}</rsa-public-key>\n`);
}
out.push('  </binaries>\n</catalogue>\n');
writeFileSync(o.out, out.join(''));
console.log(`sync-catalogue: ${o.heis} HEIs on ${Math.ceil(o.heis / per)} partner hosts (${per} each) + the syncing host, ` +
  `${o.base}/ewp/{institutions,ounits}`);
