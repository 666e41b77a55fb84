// 1. Discovery manifest (Discovery v6), served without a signature.
//    This node runs with tls = on and public_url https://localhost:PORT, as
//    a real deployment does: the project schema ewp-schemas/manifest.xsd
//    (like the Registry) requires https URLs, which tls = off with an
//    http:// public_url cannot give.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before } from 'node:test';

import { Ewpd, HEI_ID, itest } from './lib/daemon.mjs';
import { EWPD, NS, projectSchema, specPath } from './lib/env.mjs';
import { assertStatus, assertXmlContentType, exchange } from './lib/ewp.mjs';
import { assertValid, parseXml } from './lib/xml.mjs';

let fx;
before(async () => { fx = await Ewpd.create('manifest', { tls: true }); });
after(async () => { await fx?.cleanup(); });

async function getManifest() {
  const req = { method: 'GET', target: fx.manifestPath, headers: [['Host', fx.hostHeader]] };
  const res = await fx.send(req);
  return { req, res };
}

itest(() => fx, 'manifest: GET without signature → 200 with an XML content type', async () => {
  const { req, res } = await getManifest();
  assertStatus(res, 200, req, 'unsigned manifest GET');
  assertXmlContentType(res, req);
});

itest(() => fx, 'manifest: validates against the official Discovery v6 manifest.xsd', async () => {
  const { res } = await getManifest();
  assertValid(res.body, specPath('ewp-specs-api-discovery', 'manifest.xsd'), 'manifest');
});

itest(() => fx, 'manifest: validates against the project schema ewp-schemas/manifest.xsd', async () => {
  const xsd = projectSchema('manifest.xsd');
  const { res } = await getManifest();
  assertValid(res.body, xsd, 'manifest');
});

itest(() => fx, 'manifest: one host, the HEI smile.test with other-ids and names, admin e-mail and provider', async () => {
  const { req, res } = await getManifest();
  const root = parseXml(res.body);
  const ctx = exchange(req, res);
  assert.equal(root.local, 'manifest', `root should be manifest${ctx}`);
  assert.equal(root.ns, NS.manifest, `manifest namespace${ctx}`);
  const hosts = root.elements(NS.manifest, 'host');
  assert.equal(hosts.length, 1, `exactly one host expected${ctx}`);
  const host = hosts[0];
  const emails = host.elements(NS.ewp, 'admin-email').map((e) => e.text.trim());
  assert.deepEqual(emails, [fx.conf.ewp.admin_email], `admin-email${ctx}`);
  const prov = host.elements(NS.ewp, 'admin-provider').map((e) => e.text.trim());
  assert.deepEqual(prov, [fx.conf.ewp.admin_provider], `admin-provider${ctx}`);
  const ic = host.element(NS.manifest, 'institutions-covered');
  assert.ok(ic, `institutions-covered missing${ctx}`);
  const heis = ic.elements(NS.registry, 'hei');
  assert.equal(heis.length, 1, `exactly one hei expected in institutions-covered${ctx}`);
  const hei = heis[0];
  assert.equal(hei.attr('id'), HEI_ID, `hei id${ctx}`);
  const other = hei.elements(NS.registry, 'other-id').map((e) => [e.attr('type'), e.text.trim()]);
  assert.deepEqual(other.filter(([t]) => t === 'erasmus'), [['erasmus', fx.conf.ewp.erasmus_code]], `erasmus other-id${ctx}`);
  assert.deepEqual(other.filter(([t]) => t === 'pic'), [['pic', fx.conf.ewp.pic]], `pic other-id${ctx}`);
  const names = hei.elements(NS.registry, 'name').map((e) => [e.attr('lang', NS.xml), e.text.trim()]);
  assert.ok(names.some(([l, n]) => l === 'fr' && n === fx.conf.ewp.hei_name),
    `name in fr "${fx.conf.ewp.hei_name}" expected, got ${JSON.stringify(names)}${ctx}`);
  assert.ok(names.some(([l, n]) => l === 'en' && n === fx.conf.ewp.hei_name_en),
    `name in en "${fx.conf.ewp.hei_name_en}" expected, got ${JSON.stringify(names)}${ctx}`);
});

itest(() => fx, 'manifest: echo v2 entry with url and http-security (client httpsig, server tlscert + httpsig)', async () => {
  const { req, res } = await getManifest();
  const ctx = exchange(req, res);
  const root = parseXml(res.body);
  const apis = root.element(NS.manifest, 'host')?.element(NS.registry, 'apis-implemented');
  assert.ok(apis, `r:apis-implemented missing${ctx}`);
  const echos = apis.elements(NS.echoEntry, 'echo');
  assert.equal(echos.length, 1, `exactly one echo v2 entry expected${ctx}`);
  const e = echos[0];
  assert.match(e.attr('version') || '', /^2\.\d+\.\d+$/, `echo version should be 2.x.y${ctx}`);
  const urls = e.elements(NS.echoEntry, 'url').map((u) => u.text.trim());
  assert.deepEqual(urls, [`${fx.publicUrl}/ewp/echo`], `echo url${ctx}`);
  const hs = e.element(NS.echoEntry, 'http-security');
  assert.ok(hs, `echo http-security missing${ctx}`);
  const cli = hs.element(NS.sec, 'client-auth-methods');
  const srv = hs.element(NS.sec, 'server-auth-methods');
  assert.ok(cli && srv, `client-auth-methods and server-auth-methods expected${ctx}`);
  const cliM = cli.elements().map((x) => `${x.ns}#${x.local}`);
  const srvM = srv.elements().map((x) => `${x.ns}#${x.local}`);
  assert.deepEqual(cliM, [`${NS.cliauthHttpsig}#httpsig`], `client auth must be httpsig only${ctx}`);
  assert.deepEqual(srvM.sort(), [`${NS.srvauthHttpsig}#httpsig`, `${NS.srvauthTlscert}#tlscert`].sort(),
    `server auth must be tlscert + httpsig${ctx}`);
});

itest(() => fx, 'manifest: discovery entry points at public_url + manifest_path', async () => {
  const { req, res } = await getManifest();
  const ctx = exchange(req, res);
  const root = parseXml(res.body);
  const apis = root.element(NS.manifest, 'host')?.element(NS.registry, 'apis-implemented');
  assert.ok(apis, `r:apis-implemented missing${ctx}`);
  const d = apis.elements(NS.discoveryEntry, 'discovery');
  assert.equal(d.length, 1, `exactly one discovery v6 entry expected${ctx}`);
  assert.match(d[0].attr('version') || '', /^6\.\d+\.\d+$/, `discovery version 6.x.y${ctx}`);
  assert.deepEqual(d[0].elements(NS.discoveryEntry, 'url').map((u) => u.text.trim()),
    [`${fx.publicUrl}${fx.manifestPath}`], `discovery url${ctx}`);
});

itest(() => fx, 'manifest: publishes exactly ewpd\'s client and server public keys', async () => {
  const { req, res } = await getManifest();
  const ctx = exchange(req, res);
  const host = parseXml(res.body).element(NS.manifest, 'host');
  const keysOf = (el) => (el ? el.elements(NS.manifest, 'rsa-public-key').map((k) => k.text.replace(/\s+/g, '')) : []);
  const cli = keysOf(host.element(NS.manifest, 'client-credentials-in-use'));
  const srv = keysOf(host.element(NS.manifest, 'server-credentials-in-use'));
  assert.deepEqual(cli, [fx.clientKey.b64], `client-credentials-in-use should hold the client key (keyId ${fx.clientKey.keyId})${ctx}`);
  assert.deepEqual(srv, [fx.serverKey.b64], `server-credentials-in-use should hold the server key (keyId ${fx.serverKey.keyId})${ctx}`);
});

itest(() => fx, 'manifest: ewpd -m prints, without serving, the very manifest /ewp/manifest.xml serves', async () => {
  const { req, res } = await getManifest();
  assertStatus(res, 200, req);
  const r = spawnSync(EWPD, ['-m', '-c', fx.confPath], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, `ewpd -m exit status ${r.status}; stderr: ${r.stderr}`);
  assert.equal(r.stdout, res.body.toString('utf8'), 'ewpd -m output differs from the served manifest');
});
