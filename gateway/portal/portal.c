/*
 * portal.c - the router of the staff portal: from an HTTP request under
 * /portal to a page handler, through the checks every page shares.
 *
 * Order: parameters are parsed (strictly; a malformed form is a 400), the
 * page is found (404, 405), the session is loaded, then a page that needs
 * one sends an anonymous visitor to the sign-in page, a user without the
 * page's privilege gets 403, and a POST without the CSRF token of its
 * session (or of the sign-in form) gets 403. Handlers run only after all
 * of this.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "conf.h"
#include "log.h"
#include "portal.h"
#include "portal_int.h"
#include "req.h"
#include "xmalloc.h"

#define PORTAL_PREFIX     "/portal"
#define PORTAL_MAX_OUTPUT (8 * 1024 * 1024) /* bytes of one page */

const char *
portal_param(const struct portal *p, const char *name)
{
	return form_get(p->params, name);
}

long
portal_arg_id(const struct portal *p)
{
	char *end;
	long id;

	if (p->path_arg == NULL || p->path_arg[0] < '1' || p->path_arg[0] > '9')
		return -1;
	id = strtol(p->path_arg, &end, 10);
	if ((*end != '\0' && *end != '/') || id <= 0 || end - p->path_arg > 15)
		return -1;
	return id;
}

void
portal_free(struct portal *p)
{
	portal_sql_reset(p);
	free(p->user.username);
	free(p->user.display_name);
	free(p->user.email);
	free(p->user.roles);
	free(p->user.composantes);
	free(p->token);
	free(p->flash);
	buf_free(&p->out);
	form_free(&p->own_params);
	free(p);
}

/* Whether the page's path serves `sub` (exactly, or as a prefix). */
static bool
portal_page_matches(const struct portal_page *pg, const char *sub, const char **arg)
{
	size_t n = strlen(pg->path);

	if (n > 1 && pg->path[n - 1] == '/') {
		if (strncmp(sub, pg->path, n) != 0 || sub[n] == '\0')
			return false;
		*arg = sub + n;
		return true;
	}
	*arg = NULL;
	return strcmp(sub, pg->path) == 0;
}

/* The page for method and path; *wrong_method when only the method differs. */
static const struct portal_page *
portal_find(const char *method, const char *sub, const char **arg, bool *wrong_method)
{
	*wrong_method = false;
	for (size_t m = 0; portal_modules[m]; m++)
		for (const struct portal_page *pg = portal_modules[m]; pg->method; pg++) {
			const char *a;

			if (!portal_page_matches(pg, sub, &a))
				continue;
			if (strcmp(pg->method, method) != 0) {
				*wrong_method = true;
				continue;
			}
			*arg = a;
			return pg;
		}
	return NULL;
}

static bool
portal_csrf_ok(struct portal *p)
{
	const char *sent = portal_param(p, "csrf");
	char expected[PORTAL_CSRF_LEN + 1], pre[PORTAL_TOKEN_LEN + 2];

	if (p->user.id)
		memcpy(expected, p->csrf, sizeof(expected));
	else if (portal_cookie(p, portal_pre_cookie_name(p), pre, sizeof(pre)) &&
	         strlen(pre) == PORTAL_TOKEN_LEN)
		portal_csrf_for(pre, expected);
	else
		return false;
	return sent && strlen(sent) == PORTAL_CSRF_LEN &&
	       CRYPTO_memcmp(sent, expected, PORTAL_CSRF_LEN) == 0;
}

/* After the session lookup: the checks, then the page. */
static void
portal_route(struct portal *p)
{
	const struct portal_page *pg = p->page;

	if (!pg->anonymous && p->user.id == 0) {
		if (p->session_unavailable) {
			portal_error(p, 503, NULL);
			return;
		}
		if (strcmp(pg->method, "GET") == 0)
			portal_redirect(p, "/login", p->session_ended ? "login.expired" : NULL);
		else
			portal_error(p, 403, T(p, "login.expired"));
		return;
	}
	if (pg->priv && !(p->user.privs & pg->priv)) {
		log_info("portal: %s refused %s %s", p->user.username, pg->method, p->rq->path);
		portal_error(p, 403, NULL);
		return;
	}
	if (strcmp(pg->method, "POST") == 0 && !portal_csrf_ok(p)) {
		log_info("portal: CSRF token missing or wrong on %s", p->rq->path);
		portal_error(p, 403, T(p, "error.csrf"));
		return;
	}
	pg->handle(p);
}

static void
portal_not_found(struct portal *p)
{
	portal_error(p, p->not_found_status, NULL);
}

/* Language: the cookie, else the user's setting (session), else French. */
static void
portal_pick_lang(struct portal *p)
{
	char v[8];

	p->lang = "fr";
	if (portal_cookie(p, PORTAL_LANG_COOKIE, v, sizeof(v)) &&
	    (strcmp(v, "en") == 0 || strcmp(v, "fr") == 0)) {
		p->lang = strcmp(v, "en") == 0 ? "en" : "fr";
		p->lang_chosen = true;
	}
}

/* The form of a POST body; only application/x-www-form-urlencoded. */
static int
portal_parse_params(struct portal *p, char *err, size_t errlen)
{
	struct req *rq = p->rq;
	const char *ct = req_header(rq, "Content-Type");

	if (strcmp(rq->method, "POST") != 0)
		return form_parse(rq->query, strlen(rq->query), &p->own_params, err, errlen);
	if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
	    (ct[33] != '\0' && ct[33] != ';')) {
		snprintf(err, errlen, "forms are sent as application/x-www-form-urlencoded");
		return -1;
	}
	return form_parse(rq->body, rq->body_len, &p->own_params, err, errlen);
}

void
portal_dispatch(struct req *rq)
{
	struct portal *p;
	const char *sub = rq->path + strlen(PORTAL_PREFIX), *flash;
	char err[256];
	bool wrong_method;

	rq->metric = METRICS_API_PORTAL;
	if (!rq->d->conf->portal) {
		req_error(rq, 404, "the staff portal is turned off ([portal] enabled)");
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->rq = rq;
	p->d = rq->d;
	p->params = &p->own_params;
	buf_init(&p->out, PORTAL_MAX_OUTPUT);
	portal_i18n_load(p->d->conf->portal_strings);
	portal_pick_lang(p);
	if (sub[0] == '\0') {
		portal_redirect(p, "/", NULL);
		return;
	}
	if (portal_parse_params(p, err, sizeof(err)) == -1) {
		portal_error(p, strcmp(rq->method, "POST") == 0 ? 415 : 400, err);
		return;
	}
	p->page = portal_find(rq->method, sub, &p->path_arg, &wrong_method);
	if (p->page == NULL) {
		if (wrong_method)
			req_add_header(rq, "Allow", strcmp(rq->method, "GET") ? "GET" : "POST");
		p->not_found_status = wrong_method ? 405 : 404;
		/* the error page still shows who is signed in */
		portal_session_load(p, portal_not_found);
		return;
	}
	/* a flash message is only ever a key our catalogue knows */
	if ((flash = portal_param(p, "m")) != NULL && portal_i18n_find("fr", flash))
		p->flash = xstrdup(flash);
	/* Static assets (stylesheet, icon) need nobody: no session lookup,
	 * which would cost a database round trip and an UPDATE per fetch. */
	if (p->page->anonymous && strncmp(p->page->path, "/static/", 8) == 0) {
		p->page->handle(p);
		return;
	}
	portal_session_load(p, portal_route);
}
