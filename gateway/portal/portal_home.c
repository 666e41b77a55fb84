/*
 * portal_home.c - the pages every visitor may reach: the home page (staff
 * go on to their dashboard), the stylesheet and the language switch.
 */
#include <string.h>

#include "portal.h"
#include "portal_int.h"
#include "req.h"

static void
home_page(struct portal *p)
{
	if (p->user.privs & (PRIV_STUDENTS | PRIV_REFERENT)) {
		portal_redirect(p, "/dashboard", p->flash);
		return;
	}
	portal_page_begin(p, "home.title");
	h_fmt(p, "<p>%s</p>", T(p, "home.no_rights"));
	portal_page_end(p);
}

static void
stylesheet(struct portal *p)
{
	req_add_header(p->rq, "Cache-Control", "max-age=3600");
	req_add_header(p->rq, "X-Content-Type-Options", "nosniff");
	req_reply(p->rq, 200, "text/css; charset=utf-8", portal_css, strlen(portal_css));
	portal_free(p);
}

/* The tab's icon: a blue square with a white E, so that browsers do not
 * ask for /favicon.ico (the EWP side of the host answers 404 there). */
static const char icon_svg[] =
    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">"
    "<rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#0b4f8a\"/>"
    "<path d=\"M5 4h6v1.6H6.8v1.6H10v1.6H6.8v1.6H11V12H5z\" fill=\"#fff\"/></svg>\n";

static void
icon(struct portal *p)
{
	req_add_header(p->rq, "Cache-Control", "max-age=86400");
	req_add_header(p->rq, "X-Content-Type-Options", "nosniff");
	req_reply(p->rq, 200, "image/svg+xml", icon_svg, sizeof(icon_svg) - 1);
	portal_free(p);
}

/* A path of ours to go back to: /portal/..., nothing that leaves the site. */
static bool
lang_back_ok(const char *back)
{
	if (back == NULL || strncmp(back, "/portal/", 8) != 0 || strstr(back, "//") ||
	    strchr(back, '\\'))
		return false;
	for (const char *s = back; *s; s++)
		if ((unsigned char)*s < 0x21 || *s == 0x7f)
			return false;
	return true;
}

static void
switch_lang(struct portal *p)
{
	const char *to = portal_param(p, "to"), *back = portal_param(p, "back");

	if (to == NULL || (strcmp(to, "fr") != 0 && strcmp(to, "en") != 0)) {
		portal_error(p, 400, "to=fr or to=en");
		return;
	}
	portal_set_cookie(p, PORTAL_LANG_COOKIE, to, 365L * 86400);
	portal_redirect(p, lang_back_ok(back) ? back + 7 : "/", NULL);
}

const struct portal_page portal_home_pages[] = {
    {"GET", "/", PRIV_NONE, false, home_page},
    {"GET", "/static/portal.css", PRIV_NONE, true, stylesheet},
    {"GET", "/static/icon.svg", PRIV_NONE, true, icon},
    {"GET", "/lang", PRIV_NONE, true, switch_lang},
    {NULL, NULL, 0, false, NULL},
};
