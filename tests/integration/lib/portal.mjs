// The staff portal from a test's side: a cookie-keeping HTTP client that
// fills in the CSRF token of the last page it read, and portal accounts
// created straight in the database with a scrypt hash computed here
// (independently of ewpd's own code, so the two must agree).
import crypto from 'node:crypto';

import { request } from './http.mjs';

// SMILE role codes (smile.role.code) by what they are called in the tests.
export const ROLES = {
  technique: 'administrateur',
  fonctionnel: 'admin_fonctionnel',
  gestionnaire: 'gestionnaire',
  referent: 'Référent',
  etudiant: 'Etudiant',
  invite: 'guest',
  standard: 'Standard',
};

// $scrypt$ln=15,r=8,p=1$salt$hash, base64 without padding.
export function scryptHash(password, { ln = 15, r = 8, p = 1 } = {}) {
  const salt = crypto.randomBytes(16);
  const hash = crypto.scryptSync(password, salt, 32, { N: 2 ** ln, r, p, maxmem: 128 * 1024 * 1024 });
  const b64 = (b) => b.toString('base64').replace(/=+$/, '');
  return `$scrypt$ln=${ln},r=${r},p=${p}$${b64(salt)}$${b64(hash)}`;
}

const sqlText = (s) => (s == null ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);

// Creates (or replaces the roles of) a user in pg (lib/pg.mjs). roles: smile.role
// codes; composantes: smile.composante codes limiting every scopable role.
export function createUser(pg, { username, name = username, email = null, password = null,
  roles = [], composantes = [], active = true, lang = null }) {
  const hash = password == null ? null : scryptHash(password);
  const id = pg.psql(`INSERT INTO smile.utilisateur (username, display_name, email, password_hash, active, lang)
      VALUES (${sqlText(username)}, ${sqlText(name)}, ${sqlText(email)}, ${sqlText(hash)}, ${active}, ${sqlText(lang)})
      ON CONFLICT (lower(username)) DO UPDATE SET password_hash = EXCLUDED.password_hash
      RETURNING id`);
  for (const code of roles) {
    pg.psql(`INSERT INTO smile.utilisateur_role (utilisateur_id, role_id)
        SELECT ${id}, id FROM smile.role WHERE code = ${sqlText(code)} ON CONFLICT DO NOTHING`);
    for (const c of composantes)
      pg.psql(`INSERT INTO smile.utilisateur_composante (utilisateur_id, role_id, composante_id)
          SELECT ${id}, r.id, c.id FROM smile.role r, smile.composante c
           WHERE r.code = ${sqlText(code)} AND r.scopable AND c.code = ${sqlText(c)}
          ON CONFLICT DO NOTHING`);
  }
  return Number(id);
}

function formBody(fields) {
  return Object.entries(fields)
    .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]]))
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

export class PortalClient {
  // endpoint/hostHeader as an Ewpd fixture has them (fx.endpoint, fx.hostHeader).
  constructor(endpoint, hostHeader, { headers = [] } = {}) {
    this.endpoint = endpoint;
    this.host = hostHeader;
    this.cookies = new Map();
    this.extraHeaders = headers;
    this.csrf = null; // from the last page read
    this.last = null;
  }

  static of(fx, opts) {
    return new PortalClient(fx.endpoint, fx.hostHeader, opts);
  }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  keep(res) {
    for (const sc of res.headerAll('Set-Cookie')) {
      const [pair, ...attrs] = sc.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const m = /name="csrf" value="([0-9a-f]*)"/.exec(res.text);
    if (m) this.csrf = m[1];
    this.last = res;
    return res;
  }

  async send(method, target, { body, headers = [] } = {}) {
    const h = [['Host', this.host], ...this.extraHeaders, ...headers];
    if (this.cookies.size) h.push(['Cookie', this.cookieHeader()]);
    if (body != null) {
      h.push(['Content-Type', 'application/x-www-form-urlencoded']);
      h.push(['Content-Length', String(Buffer.byteLength(body))]);
    }
    const res = await request(this.endpoint, { method, target, headers: h, body });
    return this.keep(res);
  }

  get(target, opts) {
    return this.send('GET', target, opts);
  }

  // Posts fields as a form; csrf is added from the last page unless given
  // (csrf: null sends none).
  post(target, fields = {}, opts) {
    const f = { ...fields };
    if (!('csrf' in f) && this.csrf) f.csrf = this.csrf;
    if (f.csrf === null) delete f.csrf;
    return this.send('POST', target, { ...opts, body: formBody(f) });
  }

  // Signs in with the form; returns the answer to the POST (303 on success).
  async login(username, password) {
    await this.get('/portal/login');
    return this.post('/portal/login', { username, password });
  }
}

// Location of a redirect, relative to the portal's origin.
export function location(res) {
  return res.header('Location');
}
