/*
 * portal_html.c - writing the portal's HTML: escaped text, the page frame
 * with its navigation, and every kind of answer (page, redirect, error,
 * download), each with the security headers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "portal.h"
#include "portal_int.h"
#include "portal_text.h"
#include "req.h"
#include "xmalloc.h"

/* No script, no frame, no foreign origin: only our stylesheet and forms. */
#define PORTAL_CSP                                                                                 \
	"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "               \
	"frame-ancestors 'none'; base-uri 'none'"

static void
h_add(struct portal *p, const char *s, size_t n)
{
	if (buf_add(&p->out, s, n) == -1)
		p->out_full = true;
}

void
h_raw(struct portal *p, const char *markup)
{
	h_add(p, markup, strlen(markup));
}

void
h_text(struct portal *p, const char *text)
{
	if (text && portal_escape(&p->out, text) == -1)
		p->out_full = true;
}

void
h_fmt(struct portal *p, const char *fmt, ...)
{
	const char *run = fmt;
	char num[32];
	va_list ap;

	va_start(ap, fmt);
	for (const char *f = fmt; *f; f++) {
		if (*f != '%')
			continue;
		h_add(p, run, (size_t)(f - run));
		f++;
		if (*f == 's') {
			h_text(p, va_arg(ap, const char *));
		} else if (*f == 'd') {
			snprintf(num, sizeof(num), "%d", va_arg(ap, int));
			h_raw(p, num);
		} else if (*f == 'u') {
			snprintf(num, sizeof(num), "%u", va_arg(ap, unsigned));
			h_raw(p, num);
		} else if (f[0] == 'l' && f[1] == 'd') {
			snprintf(num, sizeof(num), "%ld", va_arg(ap, long));
			h_raw(p, num);
			f++;
		} else if (f[0] == 'l' && f[1] == 'l' && f[2] == 'd') {
			snprintf(num, sizeof(num), "%lld", va_arg(ap, long long));
			h_raw(p, num);
			f += 2;
		} else if (f[0] == 'z' && f[1] == 'u') {
			snprintf(num, sizeof(num), "%zu", va_arg(ap, size_t));
			h_raw(p, num);
			f++;
		} else if (*f == '%') {
			h_raw(p, "%");
		} else {
			/* A format this function does not know is a programming error. */
			fatalx("h_fmt: unsupported conversion in \"%s\"", fmt);
		}
		run = f + 1;
	}
	h_raw(p, run);
	va_end(ap);
}

void
h_csrf(struct portal *p)
{
	h_fmt(p, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", p->csrf ? p->csrf : "");
}

static const struct {
	unsigned priv;
	const char *href, *key;
} nav[] = {
    {PRIV_STUDENTS, "/portal/", "nav.dashboard"},
    {PRIV_REFERENT, "/portal/", "nav.dashboard"},
    {PRIV_PARTNERS, "/portal/partners", "nav.partners"},
    {PRIV_LOG, "/portal/log", "nav.log"},
    {PRIV_LOG, "/portal/jobs", "nav.jobs"},
    {PRIV_WORKFLOW, "/portal/workflow", "nav.workflow"},
    {PRIV_KEYS, "/portal/keys", "nav.keys"},
};

static void
portal_nav(struct portal *p)
{
	const char *shown = NULL;

	h_fmt(p, "<nav aria-label=\"%s\"><ul>", T(p, "nav.label"));
	for (size_t i = 0; i < sizeof(nav) / sizeof(nav[0]); i++) {
		if (!(p->user.privs & nav[i].priv) || (shown && strcmp(shown, nav[i].key) == 0))
			continue;
		shown = nav[i].key;
		h_fmt(p, "<li><a href=\"%s\">%s</a></li>", nav[i].href, T(p, nav[i].key));
	}
	h_raw(p, "</ul></nav>");
}

static void
portal_header(struct portal *p)
{
	const char *other = strcmp(p->lang, "fr") == 0 ? "en" : "fr";

	h_fmt(p, "<header><a class=\"skip\" href=\"#main\">%s</a>", T(p, "page.skip"));
	h_fmt(p, "<p class=\"brand\"><a href=\"/portal/\">%s</a> <span>%s</span></p>",
	      T(p, "app.name"), p->d->conf->hei_name);
	if (p->user.id) {
		if (p->user.privs)
			portal_nav(p);
		h_fmt(p, "<div class=\"who\"><span>%s</span> <span class=\"roles\">%s</span>",
		      p->user.display_name, p->user.roles ? p->user.roles : "");
		h_raw(p, "<form method=\"post\" action=\"/portal/logout\">");
		h_csrf(p);
		h_fmt(p, "<button type=\"submit\">%s</button></form></div>", T(p, "nav.logout"));
	}
	h_fmt(p,
	      "<p class=\"lang\"><a href=\"/portal/lang?to=%s&amp;back=%s\" lang=\"%s\">%s</a></p>"
	      "</header>",
	      other, p->rq->path, other, T(p, "lang.switch"));
}

void
portal_page_begin(struct portal *p, const char *title_key)
{
	h_fmt(p,
	      "<!doctype html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	      "<title>%s - %s</title><link rel=\"stylesheet\" href=\"/portal/static/portal.css\">"
	      "<link rel=\"icon\" href=\"/portal/static/icon.svg\" type=\"image/svg+xml\">"
	      "</head><body>",
	      p->lang, T(p, title_key), T(p, "app.name"));
	portal_header(p);
	h_raw(p, "<main id=\"main\">");
	if (p->flash)
		h_fmt(p, "<p class=\"flash\" role=\"status\">%s</p>", T(p, p->flash));
	h_fmt(p, "<h1>%s</h1>", T(p, title_key));
}

void
portal_page_end(struct portal *p)
{
	h_fmt(p, "</main><footer><p>%s</p></footer></body></html>\n", T(p, "app.footer"));
	portal_send(p, p->status ? p->status : 200);
}

void
portal_send(struct portal *p, int status)
{
	struct req *rq = p->rq;

	if (p->out_full) {
		buf_reset(&p->out);
		h_raw(p, "<!doctype html><title>Error</title><p>This page is too large.");
		status = 500;
	}
	req_add_header(rq, "Content-Security-Policy", PORTAL_CSP);
	req_add_header(rq, "X-Content-Type-Options", "nosniff");
	req_add_header(rq, "X-Frame-Options", "DENY");
	req_add_header(rq, "Referrer-Policy", "same-origin");
	req_add_header(rq, "Cache-Control", "no-store");
	req_reply(rq, status, "text/html; charset=utf-8", p->out.data, p->out.len);
	portal_free(p);
}

void
portal_redirect(struct portal *p, const char *path, const char *flash_key)
{
	char *to;

	if (flash_key)
		to = xasprintf("/portal%s%sm=%s", path, strchr(path, '?') ? "&" : "?", flash_key);
	else
		to = xasprintf("/portal%s", path);
	req_add_header(p->rq, "Location", to);
	free(to);
	buf_reset(&p->out);
	portal_send(p, 303);
}

void
portal_error(struct portal *p, int status, const char *message)
{
	const char *key = status == 403   ? "error.forbidden"
	                  : status == 404 ? "error.not_found"
	                  : status == 409 ? "error.conflict"
	                  : status == 503 ? "error.unavailable"
	                  : status >= 500 ? "error.internal"
	                                  : "error.bad_request";

	buf_reset(&p->out);
	p->out_full = false;
	h_fmt(p,
	      "<!doctype html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
	      "<title>%s</title><link rel=\"stylesheet\" href=\"/portal/static/portal.css\">"
	      "<link rel=\"icon\" href=\"/portal/static/icon.svg\" type=\"image/svg+xml\">"
	      "</head><body>",
	      p->lang, T(p, key));
	portal_header(p);
	h_fmt(p, "<main id=\"main\"><h1>%s</h1>", T(p, key));
	if (message)
		h_fmt(p, "<p class=\"error\" role=\"alert\">%s</p>", message);
	h_fmt(p, "<p><a href=\"/portal/\">%s</a></p></main></body></html>\n", T(p, "error.back"));
	portal_send(p, status);
}

void
portal_download(struct portal *p, const char *content_type, const char *filename, const char *body,
                size_t len)
{
	char *disp = xasprintf("attachment; filename=\"%s\"", filename);

	req_add_header(p->rq, "Content-Disposition", disp);
	req_add_header(p->rq, "X-Content-Type-Options", "nosniff");
	req_add_header(p->rq, "Content-Security-Policy", "default-src 'none'; sandbox");
	req_add_header(p->rq, "Cache-Control", "no-store");
	free(disp);
	req_reply(p->rq, 200, content_type, body, len);
	portal_free(p);
}
