// Two real ewpd nodes that know each other, as two universities do: each
// with its own PostgreSQL, keys and TLS certificate, both reading one
// file:// catalogue built from their own manifests (`ewpd -m`), the way
// the EWP Registry builds it. Jobs and syncs of each node trust the
// other's certificate.
//
//   const t = await TwoNodes.create('flow', { receiving: {...}, sending: {...} });
//   t.receiving / t.sending   Ewpd fixtures (t.receiving.pg, .confPath ...)
//   t.ctl(node, args)         ewpctl -c <node's conf> args (spawnSync result)
//   t.thirdKey                client key of THIRD_HEI, also in the catalogue
//   await t.cleanup();
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

import { Ewpd, describeRun, makeTempDir } from './daemon.mjs';
import { EWPCTL, EWPD, KEEP_TMP } from './env.mjs';
import { writeCaBundle } from './partner-double.mjs';
import { makeKey } from './sign.mjs';
import { xmlEscape } from './xml.mjs';

// The demo's two universities (tests/demo/mobility/ names them).
export const RECEIVING_HEI = 'demo.smile-ewp.example'; // our SMILE university: incoming students
export const SENDING_HEI = 'uni-musterstadt.example'; // the partner sending them
export const THIRD_HEI = 'third.example'; // a third university, same network, own client key

const REG_NS = 'https://github.com/erasmus-without-paper/ewp-specs-api-registry/tree/stable-v1';
const GH = 'https://github.com/erasmus-without-paper';

// The <apis-implemented> content of a node's manifest, as ewpd -m prints it.
function manifestApis(node) {
  const r = spawnSync(EWPD, ['-m', '-c', node.confPath], { encoding: 'utf8', timeout: 20000 });
  if (r.status !== 0) throw new Error(`ewpd -m failed for ${node.name}:\n${describeRun(r)}`);
  const m = /<r:apis-implemented>([\s\S]*)<\/r:apis-implemented>/.exec(r.stdout);
  if (!m) throw new Error(`ewpd -m printed no apis-implemented for ${node.name}:\n${r.stdout}`);
  return m[1];
}

function keyRefs(tag, keys) {
  return `    <${tag}>${keys.map((k) => `<rsa-public-key sha-256="${k.keyId}"/>`).join('')}</${tag}>\n`;
}

/*
 * hosts: [{ heis, apis (raw apis-implemented content or ''), clientKeys,
 * serverKeys }]; institutions: [{ id, names: [[lang, text]] }].
 */
export function catalogueFromManifests(hosts, institutions) {
  let x = `<?xml version="1.0" encoding="UTF-8"?>
<catalogue xmlns="${REG_NS}"
    xmlns:ewp="${GH}/ewp-specs-architecture/blob/stable-v1/common-types.xsd"
    xmlns:sec="${GH}/ewp-specs-sec-intro/tree/stable-v2">\n`;
  const binaries = new Map();
  for (const h of hosts) {
    x += `  <host>\n    <ewp:admin-email>ewp-admin@${xmlEscape(h.heis[0])}</ewp:admin-email>\n`;
    if (h.apis) x += `    <apis-implemented>${h.apis}</apis-implemented>\n`;
    x += `    <institutions-covered>${h.heis.map((i) => `<hei-id>${xmlEscape(i)}</hei-id>`).join('')}</institutions-covered>\n`;
    if (h.clientKeys?.length) x += keyRefs('client-credentials-in-use', h.clientKeys);
    if (h.serverKeys?.length) x += keyRefs('server-credentials-in-use', h.serverKeys);
    for (const k of [...(h.clientKeys || []), ...(h.serverKeys || [])]) binaries.set(k.keyId, k.b64);
    x += '  </host>\n';
  }
  x += '  <institutions>\n';
  for (const i of institutions) {
    x += `    <hei id="${xmlEscape(i.id)}">`;
    for (const [lang, text] of i.names) x += `<name xml:lang="${xmlEscape(lang)}">${xmlEscape(text)}</name>`;
    x += '</hei>\n';
  }
  x += '  </institutions>\n  <binaries>\n';
  for (const [id, b64] of binaries) x += `    <rsa-public-key sha-256="${id}">${b64}</rsa-public-key>\n`;
  return `${x}  </binaries>\n</catalogue>\n`;
}

const SEED_LOCAL = (hei, name) => `
INSERT INTO smile.etablissement (schac_id, names, country, is_local)
VALUES ('${hei}', '[{"lang": "en", "name": "${name}"}]', 'FR', true)
ON CONFLICT (schac_id) DO UPDATE SET is_local = true`;

export class TwoNodes {
  /*
   * opts: { receiving: Ewpd options merged in, sending: likewise,
   *         workers (default 2 each) }
   */
  static async create(name, opts = {}) {
    const t = new TwoNodes(name);
    try {
      await t._prepare(opts);
    } catch (e) {
      await t.cleanup();
      throw e;
    }
    return t;
  }

  constructor(name) {
    this.name = name;
    this.dir = makeTempDir(`${name}-pair`);
    this.cataloguePath = path.join(this.dir, 'catalogue.xml');
    this.thirdKey = makeKey(); // THIRD_HEI's client key: sees nothing of the two others
  }

  async _prepare(opts) {
    const common = (o, hei) => ({
      tls: true,
      pg: true,
      start: false,
      workers: opts.workers || 2,
      ...o,
      conf: {
        ewp: { hei_id: hei },
        registry: { url: `file://${this.cataloguePath}` },
        ...(o?.conf || {}),
      },
    });
    this.receiving = await Ewpd.create(`${this.name}-recv`, common(opts.receiving, RECEIVING_HEI));
    this.sending = await Ewpd.create(`${this.name}-send`, common(opts.sending, SENDING_HEI));
    this.nodes = [this.receiving, this.sending];
    // each node's outbound calls trust both certificates
    const ca = writeCaBundle(path.join(this.dir, 'ca.pem'),
      this.nodes.map((n) => n.tlsFiles.certPem));
    for (const n of this.nodes) {
      n.writeConfig({ jobs: { ca_file: ca, ...(n.opts.conf?.jobs || {}) }, sync: { ca_file: ca } });
    }
    this.receiving.pg.psql(SEED_LOCAL(RECEIVING_HEI, 'SMILE Test University'));
    this.sending.pg.psql(SEED_LOCAL(SENDING_HEI, 'Sending University'));
    this.writeCatalogue();
    await Promise.all(this.nodes.map((n) => n.start()));
  }

  // extra: more hosts (e.g. a third HEI's client key) for the catalogue.
  writeCatalogue(extraHosts = []) {
    this.extraHosts = extraHosts;
    const hosts = this.nodes.map((n) => ({
      heis: [n.conf.ewp.hei_id],
      apis: manifestApis(n),
      clientKeys: [n.clientKey],
      serverKeys: [n.serverKey],
    }));
    hosts.push({ heis: [THIRD_HEI], apis: '', clientKeys: [this.thirdKey] });
    const institutions = [
      { id: RECEIVING_HEI, names: [['en', 'SMILE Test University']] },
      { id: SENDING_HEI, names: [['en', 'Sending University']] },
      { id: THIRD_HEI, names: [['en', 'Third University']] },
    ];
    const tmp = `${this.cataloguePath}.tmp`;
    fs.writeFileSync(tmp, catalogueFromManifests([...hosts, ...extraHosts], institutions));
    fs.renameSync(tmp, this.cataloguePath);
  }

  // ewpctl -c <node's conf> ...args
  ctl(node, args, { timeout = 30000 } = {}) {
    return spawnSync(EWPCTL, ['-c', node.confPath, ...args], { encoding: 'utf8', timeout });
  }

  // Like ctl, but throws with the output unless the exit status is 0.
  ctlOk(node, args, opts) {
    const r = this.ctl(node, args, opts);
    if (r.status !== 0) throw new Error(`ewpctl ${args.join(' ')} on ${node.name}:\n${describeRun(r)}`);
    return r.stdout;
  }

  async cleanup() {
    for (const n of this.nodes || []) await n.cleanup();
    if (!KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
