/*
 * portal_login.c - signing in and out: the local-account form (scrypt,
 * lockout after [portal] max_failures), single sign-on through a header
 * set by the institution's Shibboleth/SAML proxy, and sign-out.
 *
 * A new session token is made at every sign-in and the anonymous token
 * of the form is dropped, so a token planted before sign-in (session
 * fixation) is worth nothing after it. Unknown names, accounts without a
 * local password and disabled accounts get the same answer as a wrong
 * password, after the same scrypt work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "portal.h"
#include "portal_int.h"
#include "portal_password.h"
#include "portal_pwcheck.h"
#include "req.h"
#include "xmalloc.h"

#define LOGIN_MAX_NAME 255

static const char user_sql[] =
    "SELECT id, username, password_hash, active, coalesce(locked_until > now(), false) AS locked"
    "  FROM smile.utilisateur WHERE lower(username) = lower($1)";

static const char success_sql[] =
    "UPDATE smile.utilisateur SET failed_logins = 0, locked_until = NULL, last_login_at = now()"
    " WHERE id = $1::bigint";

/* The lock starts at the max_failures-th failure in a row. */
static const char failure_sql[] =
    "UPDATE smile.utilisateur SET failed_logins = failed_logins + 1,"
    " locked_until = CASE WHEN failed_logins + 1 >= $2::int"
    "   THEN now() + make_interval(secs => $3::int) ELSE locked_until END"
    " WHERE id = $1::bigint";

static const char revoke_sql[] = "UPDATE ewp.portal_sessions SET revoked_at = now()"
                                 " WHERE token_sha256 = $1::bytea AND revoked_at IS NULL";

struct login {
	char *message_key; /* why the form is shown again */
	long user_id;
	char *username;
};

static void
login_form(struct portal *p, int status, const char *message_key)
{
	char pre[PORTAL_TOKEN_LEN + 2];
	const char *name = portal_param(p, "username");

	if (!portal_cookie(p, portal_pre_cookie_name(p), pre, sizeof(pre)) ||
	    strlen(pre) != PORTAL_TOKEN_LEN) {
		portal_new_token(pre);
		portal_set_cookie(p, portal_pre_cookie_name(p), pre, -1);
	}
	portal_csrf_for(pre, p->csrf_buf);
	p->csrf = p->csrf_buf;
	portal_page_begin(p, "login.title");
	if (message_key)
		h_fmt(p, "<p class=\"error\" role=\"alert\" id=\"login-error\">%s</p>",
		      T(p, message_key));
	h_raw(p, "<form method=\"post\" action=\"/portal/login\" class=\"login\">");
	h_csrf(p);
	h_fmt(p,
	      "<p><label for=\"username\">%s</label>"
	      "<input id=\"username\" name=\"username\" autocomplete=\"username\" required"
	      " maxlength=\"255\" value=\"%s\"%s></p>",
	      T(p, "login.username"), name ? name : "",
	      message_key ? " aria-describedby=\"login-error\"" : " autofocus");
	h_fmt(p,
	      "<p><label for=\"password\">%s</label>"
	      "<input id=\"password\" name=\"password\" type=\"password\" required"
	      " autocomplete=\"current-password\" maxlength=\"1024\"></p>",
	      T(p, "login.password"));
	h_fmt(p, "<p><button type=\"submit\">%s</button></p></form>", T(p, "login.submit"));
	if (p->d->conf->portal_sso_header && p->d->conf->portal_sso_header[0])
		h_fmt(p, "<p class=\"sso\"><a href=\"/portal/sso\">%s</a></p>", T(p, "login.sso"));
	p->status = status;
	portal_page_end(p);
}

static void
login_page(struct portal *p)
{
	if (p->user.id) {
		portal_redirect(p, "/", NULL);
		return;
	}
	login_form(p, 200, NULL);
}

static void
login_free(struct portal *p)
{
	struct login *l = p->data;

	if (l) {
		free(l->username);
		free(l);
		p->data = NULL;
	}
}

static void
login_written(struct portal *p)
{
	struct login *l = p->data;
	char *key = l->message_key;

	login_free(p);
	if (portal_db_failed(p))
		return;
	if (key) {
		login_form(p, 401, key);
		return;
	}
	portal_redirect(p, "/", NULL);
}

/* The password was checked (off the loop): record the outcome. */
static void
login_verified(struct portal *p, bool ok)
{
	struct login *l = p->data;
	char uid[24], max[24], lock[24];

	if (l->message_key == NULL && !ok)
		l->message_key = "login.failed";
	if (l->user_id == 0) {
		login_written(p);
		return;
	}
	snprintf(uid, sizeof(uid), "%ld", l->user_id);
	/* the audit row names the account tried */
	p->user.username = xstrdup(l->username);
	if (ok) {
		const char *params[1] = {uid};

		p->user.id = l->user_id;
		portal_sql(p, success_sql, 1, params);
		portal_session_start(p, l->user_id);
		portal_audit(p, "session.login", "user", l->username);
	} else if (strcmp(l->message_key, "login.failed") == 0) {
		const char *params[3] = {uid, max, lock};

		snprintf(max, sizeof(max), "%d", p->d->conf->portal_max_failures);
		snprintf(lock, sizeof(lock), "%d", p->d->conf->portal_lockout);
		portal_sql(p, failure_sql, 3, params);
		portal_audit(p, "session.login-failed", "user", l->username);
	} else {
		portal_audit(p, "session.login-locked", "user", l->username);
	}
	portal_run(p, true, login_written);
}

/*
 * The user row is known. Only an active, unlocked account with a local
 * password is checked against it; every other attempt spends the same
 * work on nothing (stored NULL), so timing tells no account apart.
 */
static void
login_checked(struct portal *p)
{
	const struct portal_rows *r = &p->rows[0];
	const char *hash = portal_cell(r, 0, "password_hash"), *id = portal_cell(r, 0, "id");
	const char *stored = NULL;
	struct login *l;

	if (portal_db_failed(p))
		return;
	l = xcalloc(1, sizeof(*l));
	p->data = l;
	if (r->nrows == 1 && hash && strcmp(portal_cell(r, 0, "active"), "t") == 0 &&
	    strcmp(portal_cell(r, 0, "locked"), "f") == 0)
		stored = hash;
	else if (r->nrows == 1 && strcmp(portal_cell(r, 0, "locked"), "t") == 0)
		l->message_key = "login.locked";
	l->user_id = id ? strtol(id, NULL, 10) : 0;
	l->username = id ? xstrdup(portal_cell(r, 0, "username")) : NULL;
	if (portal_pwcheck(p, portal_param(p, "password"), stored, login_verified) == -1) {
		/* the form again, filled in: one more click is all it takes */
		login_free(p);
		req_add_header(p->rq, "Retry-After", "1");
		login_form(p, 503, "login.busy");
		return;
	}
	/* the rows go now: the hash is not kept while the check runs */
	portal_sql_reset(p);
}

static void
login_submit(struct portal *p)
{
	const char *name = portal_param(p, "username"), *password = portal_param(p, "password");

	if (name == NULL || password == NULL || name[0] == '\0' || strlen(name) > LOGIN_MAX_NAME ||
	    strlen(password) > PORTAL_PASSWORD_MAX) {
		login_form(p, 400, "login.missing");
		return;
	}
	portal_sql(p, user_sql, 1, &name);
	portal_run(p, false, login_checked);
}

static void
logout_done(struct portal *p)
{
	if (portal_db_failed(p))
		return;
	portal_set_cookie(p, portal_session_cookie_name(p), "", 0);
	portal_redirect(p, "/login", "logout.done");
}

static void
logout_submit(struct portal *p)
{
	char hash[80];
	const char *params[1] = {hash};

	portal_token_hash(p->token, hash, sizeof(hash));
	portal_sql(p, revoke_sql, 1, params);
	portal_audit(p, "session.logout", "user", p->user.username);
	portal_run(p, true, logout_done);
}

/* Whether the peer is one of the configured SSO proxies. */
static bool
sso_trusted(const struct portal *p, const char *addr)
{
	const struct conf *c = p->d->conf;

	for (size_t i = 0; i < c->nportal_sso_proxies; i++)
		if (strcmp(c->portal_sso_proxies[i], addr) == 0)
			return true;
	return false;
}

static void
sso_written(struct portal *p)
{
	if (portal_db_failed(p))
		return;
	portal_redirect(p, "/", NULL);
}

static void
sso_found(struct portal *p)
{
	const struct portal_rows *r = &p->rows[0];
	long id;

	if (portal_db_failed(p))
		return;
	if (r->nrows != 1 || strcmp(portal_cell(r, 0, "active"), "t") != 0) {
		log_info("portal: single sign-on for an unknown or disabled account");
		portal_error(p, 403, T(p, "sso.unknown"));
		return;
	}
	id = strtol(portal_cell(r, 0, "id"), NULL, 10);
	p->user.username = xstrdup(portal_cell(r, 0, "username"));
	p->user.id = id;
	portal_sql_reset(p);
	{
		char uid[24];
		const char *params[1] = {uid};

		snprintf(uid, sizeof(uid), "%ld", id);
		portal_sql(p, success_sql, 1, params);
	}
	portal_session_start(p, id);
	portal_audit(p, "session.sso", "user", p->user.username);
	portal_run(p, true, sso_written);
}

static void
sso_login(struct portal *p)
{
	const struct conf *c = p->d->conf;
	const char *addr = portal_client_addr(p), *name;

	if (c->portal_sso_header == NULL || c->portal_sso_header[0] == '\0') {
		portal_error(p, 404, T(p, "sso.off"));
		return;
	}
	if (!sso_trusted(p, addr)) {
		/* the header could come from anyone: it is not even read */
		log_warnx("portal: single sign-on refused from %s (not in [portal] sso_proxies)",
		          addr);
		portal_error(p, 403, T(p, "sso.untrusted"));
		return;
	}
	name = req_header(p->rq, c->portal_sso_header);
	if (name == NULL || req_header_count(p->rq, c->portal_sso_header) != 1 || name[0] == '\0' ||
	    strlen(name) > LOGIN_MAX_NAME) {
		portal_error(p, 403, T(p, "sso.no_header"));
		return;
	}
	for (const char *s = name; *s; s++)
		if ((unsigned char)*s < 0x21 || *s == 0x7f) {
			portal_error(p, 403, T(p, "sso.no_header"));
			return;
		}
	portal_sql(p, user_sql, 1, &name);
	portal_run(p, false, sso_found);
}

const struct portal_page portal_login_pages[] = {
    {"GET", "/login", PRIV_NONE, true, login_page},
    {"POST", "/login", PRIV_NONE, true, login_submit},
    {"POST", "/logout", PRIV_NONE, false, logout_submit},
    {"GET", "/sso", PRIV_NONE, true, sso_login},
    {NULL, NULL, 0, false, NULL},
};
