/*
 * portal_session.c - who is asking: the session cookie, its row in
 * ewp.portal_sessions, the user's roles and what they grant, and the CSRF
 * token bound to the session.
 *
 * The cookie carries 32 random bytes; the database keeps only their
 * SHA-256, so a copy of it yields no usable session. A session ends after
 * [portal] session_idle without a request, after session_max in any case,
 * at sign-out, and when its user is disabled or given a new password.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "conf.h"
#include "db.h"
#include "log.h"
#include "portal.h"
#include "portal_int.h"
#include "portal_text.h"
#include "req.h"
#include "xmalloc.h"

/*
 * One statement: touch the session (idle timeout restarts), then the
 * user, the codes of their roles with every ancestor (SMILE roles inherit
 * their parent's rights), the labels of the roles held, and the
 * composantes a limited gestionnaire may see (NULL: all of them).
 */
static const char session_sql[] =
    "WITH RECURSIVE s AS ("
    "  UPDATE ewp.portal_sessions SET last_seen_at = now()"
    "   WHERE token_sha256 = $1::bytea AND revoked_at IS NULL AND expires_at > now()"
    "     AND last_seen_at > now() - make_interval(secs => $2::int)"
    "  RETURNING utilisateur_id),"
    " held(id, code, parent_id) AS ("
    "  SELECT ro.id, ro.code, ro.parent_id FROM s"
    "    JOIN smile.utilisateur_role ur ON ur.utilisateur_id = s.utilisateur_id"
    "    JOIN smile.role ro ON ro.id = ur.role_id"
    "  UNION"
    "  SELECT pr.id, pr.code, pr.parent_id FROM held h JOIN smile.role pr ON pr.id = h.parent_id)"
    " SELECT u.id, u.username, u.display_name, u.email, u.lang,"
    "   (SELECT string_agg(DISTINCT code, ',') FROM held) AS codes,"
    "   (SELECT string_agg(ro.label, ', ' ORDER BY ro.label) FROM smile.utilisateur_role ur"
    "      JOIN smile.role ro ON ro.id = ur.role_id WHERE ur.utilisateur_id = u.id) AS labels,"
    "   CASE WHEN EXISTS (SELECT 1 FROM held WHERE code IN ('admin_fonctionnel', 'administrateur'))"
    "        THEN NULL"
    "        ELSE (SELECT array_agg(uc.composante_id ORDER BY uc.composante_id)::text"
    "                FROM smile.utilisateur_composante uc WHERE uc.utilisateur_id = u.id)"
    "   END AS composantes"
    "  FROM s JOIN smile.utilisateur u ON u.id = s.utilisateur_id WHERE u.active";

/* Sessions over for a day go at each sign-in: the table stays small
 * without a timer of its own (expires_at is indexed). */
static const char session_purge_sql[] =
    "DELETE FROM ewp.portal_sessions WHERE expires_at < now() - interval '1 day'";

static const char session_insert_sql[] =
    "INSERT INTO ewp.portal_sessions (token_sha256, utilisateur_id, expires_at, client_addr,"
    " user_agent) VALUES ($1::bytea, $2::bigint, now() + make_interval(secs => $3::int),"
    " $4::inet, left($5, 512))";

/* What each SMILE role grants by itself; ancestors add theirs. */
static const struct {
	const char *code;
	unsigned privs;
} role_privs[] = {
    {"gestionnaire", PRIV_STUDENTS | PRIV_DECIDE | PRIV_PARTNERS | PRIV_LOG | PRIV_RETRY},
    {"admin_fonctionnel", PRIV_WORKFLOW},
    {"administrateur", PRIV_KEYS},
    {"Référent", PRIV_REFERENT},
};

static unsigned
portal_privs_of(const char *codes)
{
	unsigned privs = 0;

	if (codes == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(role_privs) / sizeof(role_privs[0]); i++) {
		size_t n = strlen(role_privs[i].code);

		for (const char *c = codes; c && *c; c = strchr(c, ','), c = c ? c + 1 : NULL)
			if (strncmp(c, role_privs[i].code, n) == 0 && (c[n] == ',' || c[n] == '\0'))
				privs |= role_privs[i].privs;
	}
	return privs;
}

bool
portal_cookie(const struct portal *p, const char *name, char *out, size_t outlen)
{
	for (size_t i = 0; i < p->rq->nreceived; i++)
		if (strcasecmp(p->rq->received[i].name, "Cookie") == 0 &&
		    portal_cookie_parse(p->rq->received[i].value, name, out, outlen))
			return true;
	return false;
}

const char *
portal_session_cookie_name(const struct portal *p)
{
	return p->d->conf->tls ? PORTAL_COOKIE_TLS : PORTAL_COOKIE;
}

const char *
portal_pre_cookie_name(const struct portal *p)
{
	return p->d->conf->tls ? PORTAL_PRE_TLS : PORTAL_PRE;
}

void
portal_set_cookie(struct portal *p, const char *name, const char *value, long max_age)
{
	char age[48] = "";
	char *v;

	if (max_age >= 0)
		snprintf(age, sizeof(age), "; Max-Age=%ld", max_age);
	v = xasprintf("%s=%s; Path=/; HttpOnly; SameSite=Strict%s%s", name, value, age,
	              p->d->conf->tls ? "; Secure" : "");
	req_add_header(p->rq, "Set-Cookie", v);
	free(v);
}

void
portal_new_token(char *out)
{
	unsigned char raw[PORTAL_TOKEN_BYTES];
	unsigned char b64[PORTAL_TOKEN_LEN + 4];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		fatalx("RAND_bytes failed");
	EVP_EncodeBlock(b64, raw, sizeof(raw));
	for (size_t i = 0; i < PORTAL_TOKEN_LEN; i++)
		out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
	out[PORTAL_TOKEN_LEN] = '\0';
}

/* A token we could have made: 43 base64url characters. */
static bool
portal_token_ok(const char *t)
{
	size_t n = strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");

	return n == PORTAL_TOKEN_LEN && t[n] == '\0';
}

void
portal_token_hash(const char *token, char *out, size_t outlen)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	size_t o = 0;

	SHA256((const unsigned char *)token, strlen(token), md);
	o += (size_t)snprintf(out, outlen, "\\x");
	for (size_t i = 0; i < sizeof(md) && o + 2 < outlen; i++)
		o += (size_t)snprintf(out + o, outlen - o, "%02x", md[i]);
}

void
portal_csrf_for(const char *token, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	HMAC(EVP_sha256(), token, (int)strlen(token), (const unsigned char *)"csrf", 4, md, &len);
	for (unsigned i = 0; i < len && i < PORTAL_CSRF_LEN / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[PORTAL_CSRF_LEN] = '\0';
}

const char *
portal_client_addr(const struct portal *p)
{
	struct evhttp_connection *c = evhttp_request_get_connection(p->rq->ev);
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (c == NULL)
		return "";
	evhttp_connection_get_peer(c, &addr, &port);
	return addr ? addr : "";
}

struct session_load {
	struct portal *p;
	portal_done *next;
};

static void
portal_session_cb(PGresult *res, const char *err, void *arg)
{
	struct session_load *sl = arg;
	struct portal *p = sl->p;
	portal_done *next = sl->next;

	free(sl);
	if (err) {
		/* The page answers: a public page works without the database,
		 * the others get 503 from their own statements. */
		log_warnx("portal: session lookup failed: %s", err);
		p->session_unavailable = db_err_unavailable(err);
	} else if (PQntuples(res) == 1) {
		struct portal_user *u = &p->user;
		const char *lang = PQgetisnull(res, 0, 4) ? NULL : PQgetvalue(res, 0, 4);

		u->id = strtol(PQgetvalue(res, 0, 0), NULL, 10);
		u->username = xstrdup(PQgetvalue(res, 0, 1));
		u->display_name = xstrdup(PQgetvalue(res, 0, 2));
		u->email = PQgetisnull(res, 0, 3) ? NULL : xstrdup(PQgetvalue(res, 0, 3));
		u->privs = portal_privs_of(PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5));
		u->roles = PQgetisnull(res, 0, 6) ? NULL : xstrdup(PQgetvalue(res, 0, 6));
		u->composantes = PQgetisnull(res, 0, 7) ? NULL : xstrdup(PQgetvalue(res, 0, 7));
		if (lang && !p->lang_chosen)
			p->lang = strcmp(lang, "en") == 0 ? "en" : "fr";
	} else {
		p->session_ended = true;
	}
	next(p);
}

void
portal_session_load(struct portal *p, portal_done *next)
{
	char token[PORTAL_TOKEN_LEN + 2], hash[80], idle[24];
	const char *params[2] = {hash, idle};
	struct session_load *sl;

	if (!portal_cookie(p, portal_session_cookie_name(p), token, sizeof(token)) ||
	    !portal_token_ok(token) || p->d->db == NULL) {
		next(p);
		return;
	}
	p->token = xstrdup(token);
	portal_csrf_for(token, p->csrf_buf);
	p->csrf = p->csrf_buf;
	portal_token_hash(token, hash, sizeof(hash));
	snprintf(idle, sizeof(idle), "%d", p->d->conf->portal_session_idle);
	sl = xcalloc(1, sizeof(*sl));
	sl->p = p;
	sl->next = next;
	db_query(p->d->db, session_sql, 2, params, portal_session_cb, sl);
}

void
portal_session_start(struct portal *p, long user_id)
{
	char token[PORTAL_TOKEN_LEN + 1], hash[80], uid[24], max[24];
	const char *ua = req_header(p->rq, "User-Agent");
	const char *addr = portal_client_addr(p);
	const char *params[5] = {hash, uid, max, addr[0] ? addr : NULL, ua};

	portal_new_token(token);
	portal_token_hash(token, hash, sizeof(hash));
	snprintf(uid, sizeof(uid), "%ld", user_id);
	snprintf(max, sizeof(max), "%d", p->d->conf->portal_session_max);
	portal_sql(p, session_purge_sql, 0, NULL);
	portal_sql(p, session_insert_sql, 5, params);
	portal_set_cookie(p, portal_session_cookie_name(p), token, -1);
	/* the anonymous token of the sign-in form is spent */
	portal_set_cookie(p, portal_pre_cookie_name(p), "", 0);
}
