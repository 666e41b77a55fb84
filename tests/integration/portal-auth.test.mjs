// The staff portal's frame: sign-in with local accounts (scrypt, lockout),
// sessions in PostgreSQL (cookies, idle and absolute timeouts, sign-out,
// fixation), CSRF, single sign-on only from the configured proxy, the
// security headers, the language switch and the string catalogue.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';

import { Ewpd, itest } from './lib/daemon.mjs';
import { EWPCTL, PROJECT_PORTAL_STRINGS } from './lib/env.mjs';
import { PortalClient, ROLES, createUser, location } from './lib/portal.mjs';

const PASSWORD = 'correct horse battery staple';
const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'";

let fx;
before(async () => {
  fx = await Ewpd.create('portal-auth', {
    pg: true,
    conf: { portal: { sso_header: 'X-Remote-User', sso_proxies: '127.0.0.2', max_failures: '3' } },
  });
  createUser(fx.pg, { username: 'gest', name: 'Gaëlle Gestion', email: 'gest@smile.test', password: PASSWORD,
    roles: [ROLES.gestionnaire] });
  createUser(fx.pg, { username: 'guest', name: 'Invité Test', password: PASSWORD, roles: [ROLES.invite] });
  createUser(fx.pg, { username: 'sso.only', name: 'Sam Single', roles: [ROLES.gestionnaire] });
  createUser(fx.pg, { username: 'locky', name: 'Lou Lock', password: PASSWORD, roles: [ROLES.gestionnaire] });
});
after(async () => {
  await fx?.cleanup();
});

const client = (opts) => PortalClient.of(fx, opts);
const sessionCookie = (pc) => pc.cookies.get('ewp-session');
const sha256hex = (s) => crypto.createHash('sha256').update(s).digest('hex');
const count = (sql) => Number(fx.pg.psql(sql));

itest(() => fx, 'without a session every page sends to the sign-in form; it carries the security headers', async () => {
  const pc = client();
  const r = await pc.get('/portal/');
  assert.equal(r.status, 303, r.describe());
  assert.equal(location(r), '/portal/login');
  const f = await pc.get('/portal/login');
  assert.equal(f.status, 200, f.describe());
  assert.equal(f.header('Content-Security-Policy'), CSP);
  assert.equal(f.header('X-Frame-Options'), 'DENY');
  assert.equal(f.header('X-Content-Type-Options'), 'nosniff');
  assert.equal(f.header('Cache-Control'), 'no-store');
  assert.match(f.header('Content-Type'), /^text\/html; charset=utf-8$/);
  assert.match(f.text, /<html lang="fr">/);
  assert.match(f.text, /<label for="username">Identifiant<\/label>/);
  assert.match(f.text, /<label for="password">Mot de passe<\/label>/);
  assert.doesNotMatch(f.text, /<script/i);
  const pre = f.headerAll('Set-Cookie').find((c) => c.startsWith('ewp-pre='));
  assert.ok(pre, 'the form sets its anonymous token cookie');
  assert.match(pre, /; HttpOnly/);
  assert.match(pre, /; SameSite=Strict/);
  assert.match(f.text, /name="csrf" value="[0-9a-f]{64}"/);
});

itest(() => fx, 'sign-in: a new random session, only its SHA-256 stored, the anonymous token dropped, audited', async () => {
  const pc = client();
  const r = await pc.login('GEST', PASSWORD); // user names are case-insensitive
  assert.equal(r.status, 303, r.describe());
  assert.equal(location(r), '/portal/');
  const set = r.headerAll('Set-Cookie');
  const sc = set.find((c) => c.startsWith('ewp-session='));
  assert.ok(sc, set.join('\n'));
  assert.match(sc, /; Path=\/; HttpOnly; SameSite=Strict$/, 'no Secure without TLS, the rest always');
  assert.ok(set.some((c) => /^ewp-pre=; .*Max-Age=0/.test(c)), 'the sign-in form token is deleted');
  const token = sessionCookie(pc);
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(count(`SELECT count(*) FROM ewp.portal_sessions WHERE token_sha256 = '\\x${sha256hex(token)}'`), 1);
  assert.equal(count(`SELECT count(*) FROM ewp.portal_sessions WHERE encode(token_sha256, 'escape') LIKE '%${token.slice(0, 10)}%'`), 0);
  assert.ok(count("SELECT count(*) FROM ewp.audit_log WHERE action = 'session.login' AND object_id = 'gest'") >= 1);
  assert.equal(fx.pg.psql("SELECT failed_logins || '/' || (last_login_at IS NOT NULL) FROM smile.utilisateur WHERE username = 'gest'"), '0/true');
  const home = await pc.get('/portal/');
  // a gestionnaire goes on to the dashboard
  assert.equal(home.status, 303, home.describe());
  assert.equal(location(home), '/portal/dashboard');
  // sessions over for more than a day are deleted at the next sign-in
  fx.pg.psql(`UPDATE ewp.portal_sessions SET created_at = now() - interval '3 days', last_seen_at = now() - interval '3 days',
      expires_at = now() - interval '2 days' WHERE token_sha256 = '\\x${sha256hex(token)}'`);
  assert.equal((await client().login('gest', PASSWORD)).status, 303);
  assert.equal(count(`SELECT count(*) FROM ewp.portal_sessions WHERE token_sha256 = '\\x${sha256hex(token)}'`), 0);
});

itest(() => fx, 'wrong password, unknown user, SSO-only account: the same refusal, the typed name echoed escaped', async () => {
  const pc = client();
  const hostile = '"><script>alert(1)</script>';
  for (const [user, pass] of [['gest', 'not the password at all'], [hostile, PASSWORD], ['sso.only', PASSWORD]]) {
    const r = await pc.login(user, pass);
    assert.equal(r.status, 401, r.describe());
    assert.match(r.text, /Identifiant ou mot de passe incorrect\./);
    assert.equal(r.headerAll('Set-Cookie').filter((c) => c.startsWith('ewp-session=')).length, 0);
    assert.doesNotMatch(r.text, /<script>alert/);
  }
  assert.match(pc.last.text, /value="sso\.only"/);
  const r = await pc.login(hostile, 'x'.repeat(12));
  assert.match(r.text, /value="&quot;&gt;&lt;script&gt;alert\(1\)&lt;\/script&gt;"/);
  assert.equal(fx.pg.psql("SELECT failed_logins FROM smile.utilisateur WHERE username = 'gest'"), '1');
  // a later success resets the counter
  assert.equal((await client().login('gest', PASSWORD)).status, 303);
  assert.equal(fx.pg.psql("SELECT failed_logins FROM smile.utilisateur WHERE username = 'gest'"), '0');
});

itest(() => fx, 'an account made by `ewpctl user add --password-stdin` signs in; `ewpctl user disable` ends its session', async () => {
  const ctl = (args, input = '') => spawnSync(EWPCTL, ['user', ...args, '--conninfo', fx.pg.conninfo],
    { encoding: 'utf8', input, timeout: 30000 });
  let r = ctl(['add', 'made.by.ctl', '--name', 'Camille Console', '--role', 'Gestionnaire', '--password-stdin'], `${PASSWORD}\n`);
  assert.equal(r.status, 0, r.stderr);
  const pc = client();
  assert.equal((await pc.login('made.by.ctl', PASSWORD)).status, 303);
  assert.equal(location(await pc.get('/portal/')), '/portal/dashboard');
  r = ctl(['disable', 'made.by.ctl']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(location(await pc.get('/portal/')), '/portal/login?m=login.expired');
  assert.equal((await client().login('made.by.ctl', PASSWORD)).status, 401);
});

itest(() => fx, 'password checks run off the event loop, at most two at once per worker (503 + Retry-After beyond)', async () => {
  const forms = [];
  for (let i = 0; i < 6; i++) {
    const pc = client();
    await pc.get('/portal/login');
    forms.push(pc);
  }
  const order = [];
  const logins = forms.map((pc, i) => pc.post('/portal/login', { username: 'guest', password: `wrong password ${i}` })
    .then((r) => { order.push(`login ${r.status}`); return r; }));
  // the worker answers other requests while the checks run
  const health = fx.get('/healthz').then((r) => { order.push('healthz'); return r; });
  const results = await Promise.all(logins);
  assert.equal((await health).status, 200);
  // a 503 is immediate, a 401 waits for scrypt: /healthz comes before any 401
  assert.ok(order.indexOf('healthz') < order.indexOf('login 401'), `answered while scrypt ran: ${order.join(', ')}`);
  const statuses = results.map((r) => r.status).sort();
  assert.ok(statuses.filter((s) => s === 401).length >= 2, statuses.join(','));
  const busy = results.filter((r) => r.status === 503);
  assert.ok(busy.length >= 1, `six at once on one worker: some are turned away (${statuses.join(',')})`);
  for (const b of busy) {
    assert.equal(b.header('Retry-After'), '1');
    assert.match(b.text, /Trop de connexions en même temps/);
    // the form again, the name kept: submitting once more is enough
    assert.match(b.text, /<form method="post" action="\/portal\/login"/);
    assert.match(b.text, /value="guest"/);
  }
  fx.pg.psql("UPDATE smile.utilisateur SET failed_logins = 0, locked_until = NULL WHERE username = 'guest'");
});

itest(() => fx, 'sign-in: over-long or missing fields and malformed session cookies get a clear answer, nothing written', async () => {
  const before = fx.pg.psql('SELECT count(*) FROM ewp.portal_sessions') + '/' + fx.pg.psql('SELECT sum(failed_logins) FROM smile.utilisateur');
  const pc = client();
  for (const [user, pass] of [['x'.repeat(256), PASSWORD], ['gest', 'p'.repeat(1025)], ['', PASSWORD], ['gest', undefined]]) {
    await pc.get('/portal/login');
    const fields = { username: user };
    if (pass !== undefined) fields.password = pass;
    const r = await pc.post('/portal/login', fields);
    assert.equal(r.status, 400, r.describe());
    assert.match(r.text, /Saisissez votre identifiant et votre mot de passe/);
  }
  // a session cookie that is no token of ours: treated as none, never looked up
  for (const bad of ['x'.repeat(5000), 'short', `${'A'.repeat(42)};`, '%00'.repeat(20)]) {
    const b = client();
    b.cookies.set('ewp-session', bad);
    const r = await b.get('/portal/');
    assert.equal(r.status, 303, `${bad.slice(0, 20)}: ${r.describe()}`);
    assert.equal(location(r), '/portal/login');
  }
  // the stylesheet is served without any session lookup, with or without a cookie
  const s = client();
  await s.login('gest', PASSWORD);
  const seen = fx.pg.psql("SELECT last_seen_at FROM ewp.portal_sessions ORDER BY last_seen_at DESC LIMIT 1");
  assert.equal((await s.get('/portal/static/portal.css')).status, 200);
  assert.equal(fx.pg.psql("SELECT last_seen_at FROM ewp.portal_sessions ORDER BY last_seen_at DESC LIMIT 1"), seen);
  const after = fx.pg.psql('SELECT count(*) - 1 FROM ewp.portal_sessions') + '/' + fx.pg.psql('SELECT sum(failed_logins) FROM smile.utilisateur');
  assert.equal(after, before, 'only the one good sign-in wrote a session');
});

itest(() => fx, 'lockout: after max_failures wrong passwords even the right one is refused until the lock ends', async () => {
  const pc = client();
  for (let i = 0; i < 3; i++) assert.equal((await pc.login('locky', `wrong password ${i}`)).status, 401);
  assert.equal(fx.pg.psql("SELECT failed_logins || '/' || (locked_until > now()) FROM smile.utilisateur WHERE username = 'locky'"), '3/true');
  const r = await pc.login('locky', PASSWORD);
  assert.equal(r.status, 401, r.describe());
  assert.match(r.text, /le compte est verrouillé/);
  assert.ok(count("SELECT count(*) FROM ewp.audit_log WHERE action = 'session.login-locked' AND object_id = 'locky'") >= 1);
  assert.ok(count("SELECT count(*) FROM ewp.audit_log WHERE action = 'session.login-failed' AND object_id = 'locky'") >= 3);
  // the lock has passed
  fx.pg.psql("UPDATE smile.utilisateur SET locked_until = now() - interval '1 second' WHERE username = 'locky'");
  assert.equal((await pc.login('locky', PASSWORD)).status, 303);
});

itest(() => fx, 'CSRF: the sign-in and sign-out forms without their token, or with another one, are refused', async () => {
  const pc = client();
  await pc.get('/portal/login');
  let r = await pc.post('/portal/login', { username: 'gest', password: PASSWORD, csrf: null });
  assert.equal(r.status, 403, r.describe());
  r = await pc.post('/portal/login', { username: 'gest', password: PASSWORD, csrf: 'a'.repeat(64) });
  assert.equal(r.status, 403);
  // another visitor's valid token is no good with this cookie
  const other = client();
  await other.get('/portal/login');
  r = await pc.post('/portal/login', { username: 'gest', password: PASSWORD, csrf: other.csrf });
  assert.equal(r.status, 403);
  assert.equal((await pc.login('gest', PASSWORD)).status, 303);
  const page = await pc.get('/portal/login'); // signed in: sent home, no new token
  assert.equal(page.status, 303);
  r = await pc.post('/portal/logout', { csrf: null });
  assert.equal(r.status, 403, r.describe());
  assert.match(r.text, /Le formulaire a expiré/);
  r = await pc.get('/portal/');
  assert.equal(location(r), '/portal/dashboard', 'the session survived the forged sign-out');
});

itest(() => fx, 'session fixation: a token planted before sign-in is replaced and never becomes a session', async () => {
  const pc = client();
  const planted = crypto.randomBytes(32).toString('base64url');
  pc.cookies.set('ewp-session', planted);
  assert.equal((await pc.login('gest', PASSWORD)).status, 303);
  assert.notEqual(sessionCookie(pc), planted);
  const attacker = client();
  attacker.cookies.set('ewp-session', planted);
  const r = await attacker.get('/portal/');
  assert.equal(r.status, 303);
  assert.match(location(r), /^\/portal\/login(\?m=login\.expired)?$/);
});

itest(() => fx, 'sign-out revokes the session in the database; the old cookie then leads to the sign-in form', async () => {
  const pc = client();
  await pc.login('gest', PASSWORD);
  const token = sessionCookie(pc);
  pc.csrf = null;
  // every signed-in page, even a 404, has the header's sign-out form
  const h = await pc.get('/portal/no-such-page');
  assert.equal(h.status, 404);
  assert.match(h.text, /<form method="post" action="\/portal\/logout"><input type="hidden" name="csrf" value="[0-9a-f]{64}">/);
  const signed = pc;
  const r = await signed.post('/portal/logout', {});
  assert.equal(r.status, 303, r.describe());
  assert.equal(location(r), '/portal/login?m=logout.done');
  assert.equal(count(`SELECT count(*) FROM ewp.portal_sessions WHERE token_sha256 = '\\x${sha256hex(token)}' AND revoked_at IS NOT NULL`), 1);
  const again = client();
  again.cookies.set('ewp-session', token);
  const g = await again.get('/portal/');
  assert.equal(location(g), '/portal/login?m=login.expired');
  const msg = await again.get('/portal/login?m=login.expired');
  assert.match(msg.text, /Votre session a expiré/);
});

itest(() => fx, 'idle and absolute timeouts, and a disabled account, end the session', async () => {
  for (const [what, sql] of [
    ['idle', "UPDATE ewp.portal_sessions SET created_at = now() - interval '2 hours', last_seen_at = now() - interval '31 minutes' WHERE token_sha256 = $T"],
    ['absolute', "UPDATE ewp.portal_sessions SET created_at = now() - interval '11 hours', expires_at = now() - interval '1 second', last_seen_at = now() - interval '11 hours' WHERE token_sha256 = $T"],
    ['disabled', "UPDATE smile.utilisateur SET active = false WHERE username = 'guest'"],
  ]) {
    const pc = client();
    assert.equal((await pc.login('guest', PASSWORD)).status, 303, what);
    assert.equal((await pc.get('/portal/')).status, 200, `${what}: signed in first`);
    fx.pg.psql(sql.replace('$T', `'\\x${sha256hex(sessionCookie(pc))}'`));
    const r = await pc.get('/portal/');
    assert.equal(r.status, 303, `${what}: ${r.describe()}`);
    assert.equal(location(r), '/portal/login?m=login.expired', what);
  }
  fx.pg.psql("UPDATE smile.utilisateur SET active = true WHERE username = 'guest'");
});

itest(() => fx, 'a role without staff rights sees the home page and no navigation', async () => {
  const pc = client();
  await pc.login('guest', PASSWORD);
  const r = await pc.get('/portal/');
  assert.equal(r.status, 200, r.describe());
  assert.match(r.text, /n&#39;a accès à aucune page du personnel/);
  assert.doesNotMatch(r.text, /<nav/);
  assert.match(r.text, /Invité Test/);
});

itest(() => fx, 'single sign-on: the header is ignored from an address that is not a configured proxy', async () => {
  const direct = client({ headers: [['X-Remote-User', 'gest']] });
  let r = await direct.get('/portal/sso');
  assert.equal(r.status, 403, r.describe());
  assert.match(r.text, /mandataire d&#39;authentification/);
  assert.equal(r.headerAll('Set-Cookie').filter((c) => c.startsWith('ewp-session=')).length, 0);
  // through the proxy (source address 127.0.0.2)
  const viaProxy = (user, extra = []) => new PortalClient({ ...fx.endpoint, localAddress: '127.0.0.2' }, fx.hostHeader,
    { headers: [...(user ? [['X-Remote-User', user]] : []), ...extra] });
  const pc = viaProxy('sso.only');
  r = await pc.get('/portal/sso');
  assert.equal(r.status, 303, r.describe());
  assert.ok(sessionCookie(pc));
  assert.equal(location(await pc.get('/portal/')), '/portal/dashboard');
  assert.ok(count("SELECT count(*) FROM ewp.audit_log WHERE action = 'session.sso' AND object_id = 'sso.only'") >= 1);
  // unknown account, no header, two headers
  assert.equal((await viaProxy('nobody.here').get('/portal/sso')).status, 403);
  assert.equal((await viaProxy(null).get('/portal/sso')).status, 403);
  assert.equal((await viaProxy('sso.only', [['X-Remote-User', 'gest']]).get('/portal/sso')).status, 403);
});

itest(() => fx, 'language: French by default, English on request; the way back stays on the portal', async () => {
  const pc = client();
  let r = await pc.get('/portal/lang?to=en&back=/portal/login');
  assert.equal(r.status, 303);
  assert.equal(location(r), '/portal/login');
  assert.ok(r.headerAll('Set-Cookie').some((c) => /^ewp-lang=en; .*Max-Age=/.test(c)));
  r = await pc.get('/portal/login');
  assert.match(r.text, /<html lang="en">/);
  assert.match(r.text, /<label for="username">User name<\/label>/);
  for (const back of ['//evil.example/x', 'https://evil.example/', '/portal/\\evil', '/elsewhere']) {
    const x = await pc.get(`/portal/lang?to=fr&back=${encodeURIComponent(back)}`);
    assert.equal(location(x), '/portal/', back);
  }
  assert.equal((await pc.get('/portal/lang?to=de')).status, 400);
});

itest(() => fx, 'the stylesheet, unknown pages, wrong methods and malformed forms', async () => {
  const pc = client();
  const css = await pc.get('/portal/static/portal.css');
  assert.equal(css.status, 200);
  assert.match(css.header('Content-Type'), /^text\/css/);
  assert.match(css.text, /--accent/);
  const nf = await pc.get('/portal/login/extra');
  assert.equal(nf.status, 404);
  assert.equal(nf.header('Content-Security-Policy'), CSP);
  const m = await pc.send('PUT', '/portal/login');
  assert.equal(m.status, 405);
  const bad = await pc.send('POST', '/portal/login', { body: 'username=%zz' });
  assert.equal(bad.status, 415, 'a form must be x-www-form-urlencoded, and well-formed');
  const r = await pc.send('GET', '/portal/login?x=%G0');
  assert.equal(r.status, 400);
  const root = await pc.get('/portal');
  assert.equal(location(root), '/portal/');
});

itest(() => null, 'the French and English catalogues have the same keys, none empty', () => {
  const read = (lang) => {
    const keys = new Map();
    const dir = path.join(PROJECT_PORTAL_STRINGS, lang);
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.strings')))
      for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
        if (!line.trim() || line.trim().startsWith('#')) continue;
        const eq = line.indexOf('=');
        assert.ok(eq > 0, `${lang}/${f}: ${line}`);
        const k = line.slice(0, eq).trim();
        assert.ok(!keys.has(k), `${lang}: ${k} defined twice`);
        assert.ok(line.slice(eq + 1).trim(), `${lang}/${f}: ${k} is empty`);
        keys.set(k, f);
      }
    return keys;
  };
  const fr = read('fr');
  const en = read('en');
  assert.deepEqual([...fr.keys()].filter((k) => !en.has(k)), [], 'keys missing in English');
  assert.deepEqual([...en.keys()].filter((k) => !fr.has(k)), [], 'keys missing in French');
});
