// Writes a Registry catalogue (ewp-specs-api-registry stable-v1) for tests.
import { xmlEscape } from './xml.mjs';

const NSDECL = {
  '': 'https://github.com/erasmus-without-paper/ewp-specs-api-registry/tree/stable-v1',
  ewp: 'https://github.com/erasmus-without-paper/ewp-specs-architecture/blob/stable-v1/common-types.xsd',
  d6: 'https://github.com/erasmus-without-paper/ewp-specs-api-discovery/blob/stable-v6/manifest-entry.xsd',
  e2: 'https://github.com/erasmus-without-paper/ewp-specs-api-echo/blob/stable-v2/manifest-entry.xsd',
  sec: 'https://github.com/erasmus-without-paper/ewp-specs-sec-intro/tree/stable-v2',
  'sec-A2': 'https://github.com/erasmus-without-paper/ewp-specs-sec-cliauth-httpsig/tree/stable-v1',
  'sec-B1': 'https://github.com/erasmus-without-paper/ewp-specs-sec-srvauth-tlscert/tree/stable-v1',
  'sec-B2': 'https://github.com/erasmus-without-paper/ewp-specs-sec-srvauth-httpsig/tree/stable-v1',
};

function echoEntry(url) {
  return `      <e2:echo version="2.0.1">
        <e2:http-security>
          <sec:client-auth-methods><sec-A2:httpsig/></sec:client-auth-methods>
          <sec:server-auth-methods><sec-B1:tlscert/><sec-B2:httpsig/></sec:server-auth-methods>
        </e2:http-security>
        <e2:url>${xmlEscape(url)}</e2:url>
      </e2:echo>\n`;
}

/*
 * hosts: [{ adminEmail, heis: [id], clientKeys: [key], serverKeys: [key],
 *           echoUrl?, discoveryUrl? }]
 * institutions: [{ id, names: [[lang, text]], otherIds: [[type, value]] }]
 * Keys are objects with { keyId, b64 }. Every key is written once in <binaries>.
 */
export function buildCatalogue({ hosts, institutions }) {
  const ns = Object.entries(NSDECL).map(([p, u]) => (p ? ` xmlns:${p}="${u}"` : ` xmlns="${u}"`)).join('\n   ');
  let x = `<?xml version="1.0" encoding="UTF-8"?>\n<catalogue\n   ${ns}>\n`;
  const binaries = new Map();
  for (const h of hosts) {
    x += '  <host>\n';
    x += `    <ewp:admin-email>${xmlEscape(h.adminEmail || 'admin@example.org')}</ewp:admin-email>\n`;
    if (h.echoUrl || h.discoveryUrl) {
      x += '    <apis-implemented>\n';
      if (h.discoveryUrl) x += `      <d6:discovery version="6.0.0"><d6:url>${xmlEscape(h.discoveryUrl)}</d6:url></d6:discovery>\n`;
      if (h.echoUrl) x += echoEntry(h.echoUrl);
      x += '    </apis-implemented>\n';
    }
    if (h.heis && h.heis.length) {
      x += '    <institutions-covered>\n';
      for (const id of h.heis) x += `      <hei-id>${xmlEscape(id)}</hei-id>\n`;
      x += '    </institutions-covered>\n';
    }
    if (h.clientKeys && h.clientKeys.length) {
      x += '    <client-credentials-in-use>\n';
      for (const k of h.clientKeys) { x += `      <rsa-public-key sha-256="${k.keyId}"/>\n`; binaries.set(k.keyId, k.b64); }
      x += '    </client-credentials-in-use>\n';
    }
    if (h.serverKeys && h.serverKeys.length) {
      x += '    <server-credentials-in-use>\n';
      for (const k of h.serverKeys) { x += `      <rsa-public-key sha-256="${k.keyId}"/>\n`; binaries.set(k.keyId, k.b64); }
      x += '    </server-credentials-in-use>\n';
    }
    x += '  </host>\n';
  }
  x += '  <institutions>\n';
  for (const i of institutions) {
    x += `    <hei id="${xmlEscape(i.id)}">\n`;
    for (const [t, v] of i.otherIds || []) x += `      <other-id type="${xmlEscape(t)}">${xmlEscape(v)}</other-id>\n`;
    for (const [lang, text] of i.names) x += `      <name xml:lang="${xmlEscape(lang)}">${xmlEscape(text)}</name>\n`;
    x += '    </hei>\n';
  }
  x += '  </institutions>\n  <binaries>\n';
  for (const [id, b64] of binaries) {
    // wrapped at 76 columns like the Registry does
    const wrapped = b64.match(/.{1,76}/g).join('\n      ');
    x += `    <rsa-public-key sha-256="${id}">\n      ${wrapped}\n    </rsa-public-key>\n`;
  }
  x += '  </binaries>\n</catalogue>\n';
  return x;
}

const INST_ENTRY_NS = 'https://github.com/erasmus-without-paper/ewp-specs-api-institutions/blob/stable-v2/manifest-entry.xsd';
const OU_ENTRY_NS = 'https://github.com/erasmus-without-paper/ewp-specs-api-ounits/blob/stable-v2/manifest-entry.xsd';

function httpsigSecurity(p) {
  return `<${p}:http-security>
          <sec:client-auth-methods><sec-A2:httpsig/></sec:client-auth-methods>
          <sec:server-auth-methods><sec-B2:httpsig/></sec:server-auth-methods>
        </${p}:http-security>`;
}

// Adds Institutions v2 (max-hei-ids 1) and, unless ounits is false,
// Organizational Units v2 (no max-ounit-ids: one id per request) entries
// at `base` next to the Echo entry of echoUrl in a buildCatalogue() text.
export function addInstitutionsApis(xml, echoUrl, base, { ounits = true } = {}) {
  const anchor = `<e2:url>${xmlEscape(echoUrl)}</e2:url>\n      </e2:echo>\n`;
  if (!xml.includes(anchor)) throw new Error(`catalogue has no echo entry for ${echoUrl}`);
  let extra = `      <i2:institutions xmlns:i2="${INST_ENTRY_NS}" version="2.2.0">
        ${httpsigSecurity('i2')}
        <i2:url>${xmlEscape(base)}/ewp/institutions</i2:url>
        <i2:max-hei-ids>1</i2:max-hei-ids>
      </i2:institutions>\n`;
  if (ounits) {
    extra += `      <o2:organizational-units xmlns:o2="${OU_ENTRY_NS}" version="2.2.0">
        ${httpsigSecurity('o2')}
        <o2:url>${xmlEscape(base)}/ewp/ounits</o2:url>
      </o2:organizational-units>\n`;
  }
  return xml.replace(anchor, anchor + extra);
}
