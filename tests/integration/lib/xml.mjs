// A small namespace-aware XML reader (enough for the documents ewpd
// produces: manifest, echo responses, error responses) and schema
// validation through xmllint with the official XML catalog.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { NS, SPECS, PROJECT_SCHEMAS, requireSpecs } from './env.mjs';

const ENTITIES = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s, where) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z]+);/g, (m, e) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return String.fromCodePoint(cp);
    }
    if (e in ENTITIES) return ENTITIES[e];
    throw new Error(`XML: unknown entity &${e}; ${where}`);
  });
}

export class XmlElement {
  constructor(qname, attrs, parent) {
    this.qname = qname;
    this.rawAttrs = attrs; // [[qname, value]]
    this.parent = parent;
    this.children = []; // XmlElement | string
    const nsMap = parent ? Object.create(parent.nsMap) : Object.create(null);
    nsMap.xml = NS.xml;
    for (const [n, v] of attrs) {
      if (n === 'xmlns') nsMap[''] = v;
      else if (n.startsWith('xmlns:')) nsMap[n.slice(6)] = v;
    }
    this.nsMap = nsMap;
    const i = qname.indexOf(':');
    this.prefix = i >= 0 ? qname.slice(0, i) : '';
    this.local = i >= 0 ? qname.slice(i + 1) : qname;
    const ns = nsMap[this.prefix];
    if (ns === undefined && this.prefix) throw new Error(`XML: undeclared prefix ${this.prefix} on <${qname}>`);
    this.ns = ns || '';
  }

  // Attribute by local name (and namespace, default: none).
  attr(local, ns = '') {
    for (const [n, v] of this.rawAttrs) {
      if (n === 'xmlns' || n.startsWith('xmlns:')) continue;
      const i = n.indexOf(':');
      const p = i >= 0 ? n.slice(0, i) : '';
      const l = i >= 0 ? n.slice(i + 1) : n;
      const ans = p ? this.nsMap[p] : '';
      if (l === local && ans === ns) return v;
    }
    return undefined;
  }

  elements(ns, local) {
    return this.children.filter((c) => c instanceof XmlElement &&
      (ns === undefined || c.ns === ns) && (local === undefined || c.local === local));
  }

  element(ns, local) {
    return this.elements(ns, local)[0];
  }

  // Every descendant element matching ns/local.
  descendants(ns, local, out = []) {
    for (const c of this.children) {
      if (!(c instanceof XmlElement)) continue;
      if ((ns === undefined || c.ns === ns) && (local === undefined || c.local === local)) out.push(c);
      c.descendants(ns, local, out);
    }
    return out;
  }

  get text() {
    let s = '';
    for (const c of this.children) s += typeof c === 'string' ? c : c.text;
    return s;
  }

  toString() {
    return `<${this.qname}> {${this.ns}}`;
  }
}

// Parses a whole document; returns the root element. Throws on malformed XML.
export function parseXml(input) {
  const src = Buffer.isBuffer(input) ? input.toString('utf8') : String(input);
  let i = 0;
  let root = null;
  let cur = null;
  const n = src.length;
  const where = () => `(at offset ${i})`;
  if (src.charCodeAt(0) === 0xfeff) i = 1;
  while (i < n) {
    if (src[i] === '<') {
      if (src.startsWith('<?', i)) {
        const e = src.indexOf('?>', i);
        if (e < 0) throw new Error(`XML: unterminated processing instruction ${where()}`);
        i = e + 2;
      } else if (src.startsWith('<!--', i)) {
        const e = src.indexOf('-->', i);
        if (e < 0) throw new Error(`XML: unterminated comment ${where()}`);
        i = e + 3;
      } else if (src.startsWith('<![CDATA[', i)) {
        const e = src.indexOf(']]>', i);
        if (e < 0 || !cur) throw new Error(`XML: bad CDATA ${where()}`);
        cur.children.push(src.slice(i + 9, e));
        i = e + 3;
      } else if (src.startsWith('<!DOCTYPE', i)) {
        throw new Error(`XML: DOCTYPE not expected in an EWP document ${where()}`);
      } else if (src[i + 1] === '/') {
        const e = src.indexOf('>', i);
        if (e < 0) throw new Error(`XML: unterminated end tag ${where()}`);
        const name = src.slice(i + 2, e).trim();
        if (!cur || cur.qname !== name) throw new Error(`XML: mismatched end tag </${name}> ${where()}`);
        cur = cur.parent;
        i = e + 1;
      } else {
        // start tag
        let j = i + 1;
        const m = /^[^\s/>]+/.exec(src.slice(j, j + 300));
        if (!m) throw new Error(`XML: bad start tag ${where()}`);
        const qname = m[0];
        j += qname.length;
        const attrs = [];
        let selfClose = false;
        for (;;) {
          while (j < n && /\s/.test(src[j])) j++;
          if (src[j] === '>') { j++; break; }
          if (src.startsWith('/>', j)) { selfClose = true; j += 2; break; }
          const am = /^([^\s=/>]+)\s*=\s*("([^"]*)"|'([^']*)')/.exec(src.slice(j, j + 100000));
          if (!am) throw new Error(`XML: bad attribute in <${qname}> ${where()}`);
          attrs.push([am[1], decodeEntities(am[3] !== undefined ? am[3] : am[4], where())]);
          j += am[0].length;
        }
        const el = new XmlElement(qname, attrs, cur);
        if (cur) cur.children.push(el);
        else if (root) throw new Error(`XML: more than one root element ${where()}`);
        else root = el;
        if (!selfClose) cur = el;
        i = j;
      }
    } else {
      const e = src.indexOf('<', i);
      const t = src.slice(i, e < 0 ? n : e);
      if (cur) cur.children.push(decodeEntities(t, where()));
      else if (t.trim()) throw new Error(`XML: text outside the root element ${where()}`);
      i = e < 0 ? n : e;
    }
  }
  if (!root) throw new Error('XML: no root element');
  if (cur) throw new Error(`XML: element <${cur.qname}> not closed`);
  return root;
}

function catalogFiles() {
  const files = [path.join(SPECS, 'catalog.xml')];
  const own = path.join(PROJECT_SCHEMAS, 'catalog.xml');
  if (fs.existsSync(own)) files.unshift(own);
  return files.join(' ');
}

// Validates bytes against an XSD with xmllint (offline, through the EWP
// catalog). Returns { ok, output }.
export function xmllintValidate(bytes, xsdPath) {
  requireSpecs();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ewpd-xsd-'));
  const f = path.join(tmp, 'doc.xml');
  fs.writeFileSync(f, bytes);
  try {
    const r = spawnSync('xmllint', ['--nonet', '--noout', '--schema', xsdPath, f], {
      env: { ...process.env, XML_CATALOG_FILES: catalogFiles() },
      encoding: 'utf8',
      timeout: 30000,
    });
    if (r.error) throw new Error(`cannot run xmllint: ${r.error.message}`);
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.replaceAll(f, 'document') };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function assertValid(bytes, xsdPath, what) {
  const r = xmllintValidate(bytes, xsdPath);
  if (!r.ok) {
    const body = Buffer.from(bytes).toString('utf8');
    throw new Error(`${what} does not validate against ${xsdPath}:\n${r.output}\n--- document ---\n` +
      `${body.length > 4000 ? body.slice(0, 4000) + '\n[...]' : body}`);
  }
}

export function xmlEscape(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}
