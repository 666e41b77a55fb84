/*
 * portal_partners.c - the partners page: every partner HEI of the Registry
 * catalogue (the institutions the sync visits: all but our own), with what
 * the catalogue says of it (name, the EWP APIs and versions its hosts
 * offer) and what the database knows (Erasmus code, last institution sync
 * from ewp.partner_syncs, failed jobs). HEIs that ewp.partner_syncs still
 * lists but the catalogue no longer has are shown too, marked so.
 *
 * The catalogue is the daemon's current snapshot (p->d->snap), read when
 * the page is written; nothing of it is kept across events. ?q= filters on
 * SCHAC id, name and Erasmus code; ?format=csv|txt exports the same rows.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "daemon.h"
#include "portal.h"
#include "registry.h"
#include "xmalloc.h"

#define PARTNERS_MAX_Q 200 /* bytes of the filter */

static const char partners_sql[] =
    "WITH c AS (SELECT DISTINCT unnest($1::text[]) AS hei_id),"
    " h AS (SELECT hei_id, true AS in_catalogue FROM c"
    "  UNION ALL SELECT ps.hei_id::text, false FROM ewp.partner_syncs ps"
    "   WHERE ps.hei_id::text NOT IN (SELECT hei_id FROM c) AND ps.hei_id::text <> $2),"
    " f AS (SELECT j.hei_id::text AS hei_id, count(*) AS n FROM ewp.jobs j"
    "   WHERE j.status IN ('failed-max-attempts', 'rejected', 'expired') GROUP BY j.hei_id)"
    " SELECT h.hei_id, h.in_catalogue,"
    "  (SELECT nm->>'name' FROM jsonb_array_elements(e.names) nm"
    "    ORDER BY (nm->>'lang' = 'en') IS TRUE DESC LIMIT 1) AS db_name,"
    "  e.erasmus_code,"
    "  to_char(ps.last_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS last_attempt,"
    "  to_char(ps.last_success_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS last_success,"
    "  to_char(ps.last_error_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS last_error_at,"
    "  ps.last_error, coalesce(ps.consecutive_failures, 0) AS consecutive_failures,"
    "  CASE WHEN ps.last_attempt_at IS NULL THEN 'never'"
    "   WHEN ps.last_success_at IS NOT NULL"
    "    AND (ps.last_error_at IS NULL OR ps.last_success_at >= ps.last_error_at) THEN 'ok'"
    "   ELSE 'failed' END AS outcome,"
    "  coalesce(f.n, 0) AS failed_jobs"
    " FROM h LEFT JOIN smile.etablissement e ON e.schac_id = h.hei_id"
    "  LEFT JOIN ewp.partner_syncs ps ON ps.hei_id = h.hei_id"
    "  LEFT JOIN f ON f.hei_id = h.hei_id"
    " ORDER BY h.hei_id";

/* One (HEI, host) pair of the catalogue, sorted by HEI for bsearch. */
struct hei_host {
	const char *hei;
	size_t host;
};

struct partners {
	const struct registry *reg; /* the current snapshot, while writing */
	struct hei_host *pairs;
	size_t npairs;
};

/* ---- small helpers ------------------------------------------------------ */

/* A PostgreSQL array literal of the strings: {"a","b"} with \ and " escaped. */
static char *
pg_text_array(const char *const *v, size_t n)
{
	struct buf b;

	buf_init(&b, SIZE_MAX);
	(void)!buf_addstr(&b, "{");
	for (size_t i = 0; i < n; i++) {
		(void)!buf_addstr(&b, i ? ",\"" : "\"");
		for (const char *s = v[i]; *s; s++) {
			if (*s == '"' || *s == '\\')
				(void)!buf_add(&b, "\\", 1);
			(void)!buf_add(&b, s, 1);
		}
		(void)!buf_addstr(&b, "\"");
	}
	(void)!buf_addstr(&b, "}");
	return buf_take(&b);
}

/* Percent-encodes a query value (RFC 3986 unreserved characters kept). */
static char *
url_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xmalloc(strlen(s) * 3 + 1), *o = out;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

static int
hei_host_cmp(const void *a, const void *b)
{
	const struct hei_host *x = a, *y = b;
	int c = strcmp(x->hei, y->hei);

	return c ? c : (x->host > y->host) - (x->host < y->host);
}

static void
partners_index(struct partners *pt)
{
	size_t cap = 0;

	pt->pairs = NULL;
	pt->npairs = 0;
	if (pt->reg == NULL)
		return;
	for (size_t h = 0; h < registry_host_count(pt->reg); h++) {
		const char *const *heis;
		size_t n = registry_host_heis(pt->reg, h, &heis);

		for (size_t i = 0; i < n; i++) {
			if (pt->npairs == cap) {
				cap = cap ? cap * 2 : 64;
				pt->pairs = xreallocarray(pt->pairs, cap, sizeof(*pt->pairs));
			}
			pt->pairs[pt->npairs++] = (struct hei_host){heis[i], h};
		}
	}
	if (pt->npairs)
		qsort(pt->pairs, pt->npairs, sizeof(*pt->pairs), hei_host_cmp);
}

/*
 * "echo 2.0.1, institutions 2.2.0": every API entry of every host covering
 * the HEI, in catalogue order, each name and version once. Caller frees.
 */
static char *
partners_apis(const struct partners *pt, const char *hei)
{
	struct buf b;
	char **items = NULL;
	size_t nitems = 0, lo = 0, hi = pt->npairs;

	buf_init(&b, SIZE_MAX);
	while (lo < hi) { /* first pair of this HEI */
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(pt->pairs[mid].hei, hei) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < pt->npairs && strcmp(pt->pairs[i].hei, hei) == 0; i++) {
		const struct registry_api *apis;
		size_t n = registry_host_apis(pt->reg, pt->pairs[i].host, &apis);

		for (size_t k = 0; k < n; k++) {
			char *item = apis[k].version[0]
			                 ? xasprintf("%s %s", apis[k].name, apis[k].version)
			                 : xstrdup(apis[k].name);
			bool dup = false;

			/* the same entry on another host of this HEI is listed once */
			for (size_t j = 0; j < nitems && !dup; j++)
				dup = strcmp(items[j], item) == 0;
			if (dup) {
				free(item);
				continue;
			}
			if (nitems)
				(void)!buf_addstr(&b, ", ");
			(void)!buf_addstr(&b, item);
			items = xreallocarray(items, nitems + 1, sizeof(*items));
			items[nitems++] = item;
		}
	}
	for (size_t j = 0; j < nitems; j++)
		free(items[j]);
	free(items);
	if (b.data == NULL)
		return xstrdup("");
	return buf_take(&b);
}

/* The name to show: the catalogue's, else the one the sync stored. */
static const char *
partners_name(const struct partners *pt, const struct portal_rows *r, int i)
{
	const char *n = pt->reg ? registry_hei_name(pt->reg, portal_cell(r, i, "hei_id")) : NULL;

	return n ? n : portal_cell(r, i, "db_name");
}

static bool
partners_match(const struct partners *pt, const struct portal_rows *r, int i, const char *q)
{
	const char *fields[3] = {portal_cell(r, i, "hei_id"), partners_name(pt, r, i),
	                         portal_cell(r, i, "erasmus_code")};

	if (q == NULL || q[0] == '\0')
		return true;
	for (int k = 0; k < 3; k++)
		if (fields[k] && strcasestr(fields[k], q))
			return true;
	return false;
}

static const char *
outcome_key(const char *outcome)
{
	if (outcome && strcmp(outcome, "ok") == 0)
		return "partners.sync_ok";
	if (outcome && strcmp(outcome, "failed") == 0)
		return "partners.sync_failed";
	return "partners.sync_never";
}

/* ---- exports ------------------------------------------------------------ */

#define NCOLS 11

static const struct portal_column export_cols[NCOLS] = {
    {"hei_id", "partners.hei_id"},
    {"name", "partners.name"},
    {"erasmus_code", "partners.erasmus_code"},
    {"in_catalogue", "partners.in_catalogue"},
    {"apis", "partners.apis"},
    {"last_attempt", "partners.last_attempt"},
    {"outcome", "partners.outcome"},
    {"last_success", "partners.last_success"},
    {"last_error_at", "partners.last_error_at"},
    {"last_error", "partners.last_error"},
    {"failed_jobs", "partners.failed_jobs"},
};

/*
 * The rows of the page as portal_export() takes them: what the database
 * said, with the catalogue's name and APIs and the words of the page.
 */
static void
partners_export(struct portal *p, const struct partners *pt, const int *sel, int nsel)
{
	const struct portal_rows *r = &p->rows[0];
	struct portal_rows out = {.nrows = nsel, .ncols = NCOLS};

	out.names = xcalloc(NCOLS + 1, sizeof(char *));
	for (int c = 0; c < NCOLS; c++)
		out.names[c] = xstrdup(export_cols[c].col);
	out.cells = xcalloc((size_t)nsel * NCOLS + 1, sizeof(char *));
	for (int k = 0; k < nsel; k++) {
		char **row = &out.cells[k * NCOLS];
		int i = sel[k];
		const char *name = partners_name(pt, r, i);

		for (int c = 0; c < NCOLS; c++) {
			const char *v = portal_cell(r, i, export_cols[c].col);

			row[c] = v ? xstrdup(v) : NULL;
		}
		free(row[1]);
		row[1] = name ? xstrdup(name) : NULL;
		free(row[3]);
		row[3] = xstrdup(T(p, strcmp(portal_cell(r, i, "in_catalogue"), "t") == 0
		                          ? "partners.yes"
		                          : "partners.no"));
		row[4] = partners_apis(pt, portal_cell(r, i, "hei_id"));
		free(row[6]);
		row[6] = xstrdup(T(p, outcome_key(portal_cell(r, i, "outcome"))));
	}
	(void)portal_export(p, &out, export_cols, NCOLS, "partners");
	for (int k = 0; k < nsel * NCOLS; k++)
		free(out.cells[k]);
	for (int c = 0; c < NCOLS; c++)
		free(out.names[c]);
	free(out.cells);
	free(out.names);
}

/* ---- the page ----------------------------------------------------------- */

static void
partners_html_row(struct portal *p, const struct partners *pt, const struct portal_rows *r, int i)
{
	const char *hei = portal_cell(r, i, "hei_id"), *outcome = portal_cell(r, i, "outcome");
	const char *err = portal_cell(r, i, "last_error");
	char *apis = partners_apis(pt, hei), *enc = url_encode(hei);
	bool in_cat = strcmp(portal_cell(r, i, "in_catalogue"), "t") == 0;

	h_fmt(p, "<tr><th scope=\"row\">%s", hei);
	if (!in_cat)
		h_fmt(p, " <span class=\"status-warn\">(%s)</span>",
		      T(p, "partners.not_in_catalogue"));
	h_fmt(p, "</th><td>%s</td><td>%s</td>", partners_name(pt, r, i),
	      portal_cell(r, i, "erasmus_code"));
	if (apis[0])
		h_fmt(p, "<td class=\"apis\">%s</td>", apis);
	else
		h_fmt(p, "<td class=\"muted\">%s</td>", T(p, "partners.no_apis"));
	h_fmt(p, "<td><span class=\"%s\">%s</span>",
	      strcmp(outcome, "ok") == 0       ? "status-ok"
	      : strcmp(outcome, "failed") == 0 ? "status-bad"
	                                       : "muted",
	      T(p, outcome_key(outcome)));
	if (portal_cell(r, i, "last_attempt"))
		h_fmt(p, " %s", portal_cell(r, i, "last_attempt"));
	if (strcmp(outcome, "failed") == 0 && err)
		h_fmt(p, "<br><span class=\"muted\">%s (%s)</span>", err,
		      portal_cell(r, i, "last_error_at"));
	if (portal_cell(r, i, "last_success") && strcmp(outcome, "ok") != 0)
		h_fmt(p, "<br>%s %s", T(p, "partners.last_success"),
		      portal_cell(r, i, "last_success"));
	h_fmt(p, "</td><td class=\"num\"><a href=\"/portal/jobs?partner=%s\">%s</a></td>", enc,
	      portal_cell(r, i, "failed_jobs"));
	h_fmt(p, "<td><a href=\"/portal/log?partner=%s\">%s</a></td></tr>", enc,
	      T(p, "partners.log_link"));
	free(enc);
	free(apis);
}

static void
partners_done(struct portal *p)
{
	const struct portal_rows *r = &p->rows[0];
	const char *q = portal_param(p, "q"), *format = portal_param(p, "format");
	struct partners pt = {.reg = p->d->snap ? p->d->snap->reg : NULL};
	int *sel, nsel = 0;

	if (portal_db_failed(p))
		return;
	partners_index(&pt);
	sel = xcalloc((size_t)r->nrows + 1, sizeof(int));
	for (int i = 0; i < r->nrows; i++)
		if (partners_match(&pt, r, i, q))
			sel[nsel++] = i;
	if (format && format[0]) {
		partners_export(p, &pt, sel, nsel);
		free(sel);
		free(pt.pairs);
		return;
	}
	portal_page_begin(p, "partners.title");
	if (pt.reg == NULL)
		h_fmt(p, "<p class=\"error\">%s</p>", T(p, "partners.no_catalogue"));
	h_raw(p, "<form method=\"get\" action=\"/portal/partners\" class=\"filters\">");
	h_fmt(p, "<p><label for=\"q\">%s</label><input id=\"q\" name=\"q\" value=\"%s\"></p>",
	      T(p, "partners.filter"), q ? q : "");
	h_fmt(p, "<p><button type=\"submit\">%s</button></p></form>", T(p, "partners.search"));
	{
		char *eq = url_encode(q ? q : "");

		h_fmt(
		    p,
		    "<p><a id=\"export-csv\" href=\"/portal/partners?format=csv&amp;q=%s\">%s</a> "
		    "<a id=\"export-txt\" href=\"/portal/partners?format=txt&amp;q=%s\">%s</a></p>",
		    eq, T(p, "export.csv"), eq, T(p, "export.txt"));
		free(eq);
	}
	h_fmt(p, "<table id=\"partners\"><caption>%s (%d)</caption><thead><tr>",
	      T(p, "partners.caption"), nsel);
	h_fmt(p,
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\" "
	      "class=\"num\">%s</th>"
	      "<th scope=\"col\">%s</th></tr></thead><tbody>",
	      T(p, "partners.hei_id"), T(p, "partners.name"), T(p, "partners.erasmus_code"),
	      T(p, "partners.apis"), T(p, "partners.last_sync"), T(p, "partners.failed_jobs"),
	      T(p, "partners.log"));
	for (int k = 0; k < nsel; k++)
		partners_html_row(p, &pt, r, sel[k]);
	h_raw(p, "</tbody></table>");
	if (nsel == 0)
		h_fmt(p, "<p class=\"muted\">%s</p>", T(p, "partners.none"));
	free(sel);
	free(pt.pairs);
	portal_page_end(p);
}

static void
partners_page(struct portal *p)
{
	const char *q = portal_param(p, "q");
	const struct registry *reg = p->d->snap ? p->d->snap->reg : NULL;
	const char **heis = NULL, *params[2];
	size_t n = 0;
	char *arr;

	if (q && strlen(q) > PARTNERS_MAX_Q) {
		portal_error(p, 400, T(p, "partners.err_q"));
		return;
	}
	if (reg) {
		heis = xcalloc(registry_hei_count(reg) + 1, sizeof(*heis));
		for (size_t i = 0; i < registry_hei_count(reg); i++)
			if (strcmp(registry_hei_at(reg, i), p->d->conf->hei_id) != 0)
				heis[n++] = registry_hei_at(reg, i);
	}
	arr = pg_text_array(heis, n);
	params[0] = arr;
	params[1] = p->d->conf->hei_id;
	portal_sql(p, partners_sql, 2, params);
	free(arr);
	free(heis);
	portal_run(p, false, partners_done);
}

const struct portal_page portal_partners_pages[] = {
    {"GET", "/partners", PRIV_PARTNERS, false, partners_page},
    {NULL, NULL, 0, false, NULL},
};
