/*
 * portal_log.c - the EWP message log in the staff portal: the search
 * (GET /log: partner, API, status or class, direction, dates, request id,
 * job, free text; newest first, 100 a page; CSV and text exports) and one
 * exchange (GET /log/<id>: request and response with their headers and
 * bodies, XML indented, the validation verdict, related exchanges).
 *
 * Both only read (ewp.message_log, ewp.jobs, and smile.mobility for the
 * student's file a re-fetch stored), in one read-only transaction. Bodies are what a partner sent,
 * so they are never trusted: XML is parsed by xml_parse (no DTD, no entity, no network; a body that
 * does not parse is shown as it is), and every byte reaches the page as
 * escaped, valid UTF-8 text.
 *
 * XSD verdict: the page shows the one recorded when the exchange happened
 * (ewpd validates the documents partners return to its own calls). It
 * does not validate again on display: which schema applies depends on
 * the API, version and endpoint the job called, a cut body cannot be
 * validated, and a page view should not spend the worker's loop on a
 * partner's megabyte document. "Not checked" says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "codec.h"
#include "db.h"
#include "portal.h"
#include "portal_log.h"
#include "req.h"
#include "xml.h"
#include "xmalloc.h"

#define LOG_MAX_PARSE (1024u * 1024) /* the message_log body ceiling */
#define LOG_MAX_SHOWN (512u * 1024)  /* bytes of one body put on the page */
#define LOG_MAX_Q     200            /* characters of the free text */
#define LOG_MAX_TEXT  255            /* partner, API, request id */

/* ---- shared with portal_jobs.c ------------------------------------- */

bool
plog_blank(const char *s)
{
	return s == NULL || s[0] == '\0';
}

void
plog_qs_add(struct buf *qs, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";

	if (plog_blank(value))
		return;
	if ((qs->len && buf_add(qs, "&", 1) == -1) || buf_addstr(qs, name) == -1 ||
	    buf_add(qs, "=", 1) == -1)
		return;
	for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
		char enc[3] = {'%', hex[*s >> 4], hex[*s & 15]};

		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr("-._~", *s)) {
			if (buf_add(qs, s, 1) == -1)
				return;
		} else if (buf_add(qs, enc, 3) == -1) {
			return;
		}
	}
}

bool
plog_format_ok(const char *format)
{
	return format == NULL || strcmp(format, "csv") == 0 || strcmp(format, "txt") == 0;
}

/* Length of the UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t
plog_utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

char *
plog_safe_text(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	char *out = xmalloc(len * 3 + 1), *o = out;

	for (size_t i = 0; i < len;) {
		size_t n = plog_utf8_len(u + i, len - i);

		if (n == 1 && (u[i] == '\n' || u[i] == '\t')) {
			*o++ = (char)u[i++];
		} else if (n == 1 && u[i] == '\r') {
			i++;
		} else if (n == 0 || (n == 1 && (u[i] < 0x20 || u[i] == 0x7f))) {
			memcpy(o, "\xef\xbf\xbd", 3); /* U+FFFD */
			o += 3;
			i++;
		} else {
			memcpy(o, u + i, n);
			o += n;
			i += n;
		}
	}
	*o = '\0';
	return out;
}

void
plog_clean_rows(struct portal_rows *r)
{
	for (int k = 0; k < r->nrows * r->ncols; k++)
		if (r->cells[k] != NULL) {
			char *c = plog_safe_text(r->cells[k], strlen(r->cells[k]));

			free(r->cells[k]);
			r->cells[k] = c;
		}
}

bool
plog_text_param(struct portal *p, const char *name, size_t max, const char **out)
{
	const char *v = portal_param(p, name);
	char msg[160];

	*out = NULL;
	if (plog_blank(v))
		return true;
	for (const unsigned char *s = (const unsigned char *)v; *s; s++)
		if (*s < 0x20 || *s == 0x7f) {
			snprintf(msg, sizeof(msg), "%s: %s", name, T(p, "log.bad_text"));
			portal_error(p, 400, msg);
			return false;
		}
	if (strlen(v) > max) {
		snprintf(msg, sizeof(msg), "%s: %s (%zu)", name, T(p, "log.too_long"), max);
		portal_error(p, 400, msg);
		return false;
	}
	*out = v;
	return true;
}

long
plog_page_param(struct portal *p)
{
	const char *v = portal_param(p, "page");
	char *end;
	long n;

	if (plog_blank(v))
		return 1;
	n = strtol(v, &end, 10);
	if (*end != '\0' || v[0] < '1' || v[0] > '9' || n < 1 || n > PLOG_MAX_PAGE) {
		portal_error(p, 400, T(p, "log.bad_page"));
		return -1;
	}
	return n;
}

void
plog_pager(struct portal *p, const char *path, const char *qs, long page, bool more)
{
	if (page <= 1 && !more)
		return;
	h_fmt(p, "<nav class=\"pager\" aria-label=\"%s\"><p>", T(p, "log.pages"));
	if (page > 1)
		h_fmt(p, "<a id=\"prev-page\" rel=\"prev\" href=\"/portal%s?%s%spage=%ld\">%s</a> ",
		      path, qs, qs[0] ? "&" : "", page - 1, T(p, "log.prev"));
	h_fmt(p, "<span>%s %ld</span>", T(p, "log.page"), page);
	if (more)
		h_fmt(p, " <a id=\"next-page\" rel=\"next\" href=\"/portal%s?%s%spage=%ld\">%s</a>",
		      path, qs, qs[0] ? "&" : "", page + 1, T(p, "log.next"));
	h_raw(p, "</p></nav>");
}

/* Characters of a UTF-8 string (the length of the free text). */
static size_t
plog_width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* ---- the search ---------------------------------------------------- */

/* The failures of ctl_log.c's --failed, which message_log_failures indexes. */
#define LOG_FAILED_SQL                                                                             \
	"(l.status IS NULL OR l.status >= 400 OR l.error IS NOT NULL OR l.validation = 'invalid')"

#define LOG_FROM_SQL "(($7::date)::timestamp AT TIME ZONE 'UTC')"
#define LOG_TO_SQL   "(($8::date + 1)::timestamp AT TIME ZONE 'UTC')"

/*
 * $1 partner, $2 API, $3 status, $4 status class (2 for 2xx), $5 failures
 * only, $6 direction, $7 from and $8 to (dates, UTC, both included), $9
 * request id, $10 free text, $11 job id, $12 limit, $13 offset, $14
 * whether bodies may be searched. The free text is looked for in the URL
 * and the errors (any case) everywhere, and in the bodies (bytes as sent)
 * only within the chosen dates, the last 7 days when none is given and 31
 * days at most: bodies have no index. A user limited to some composantes
 * does not search the bodies, nor see them (they carry the personal data
 * of every composante's students).
 */
static const char log_list_sql[] =
    "SELECT l.id, to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS time,"
    " to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS time_s,"
    " l.direction, array_to_string(l.partner_hei_ids, ' ') AS partner, l.api, l.api_version,"
    " coalesce(l.api || ' ' || l.api_version, l.api) AS api_v, l.method, l.url, l.status,"
    " l.duration_ms, l.request_id, l.job_id, l.validation,"
    " left(coalesce(l.error, l.validation_error), 500) AS error"
    " FROM ewp.message_log l"
    " WHERE ($1::text IS NULL OR l.partner_hei_ids @> ARRAY[$1::text])"
    " AND ($2::text IS NULL OR l.api = $2::text)"
    " AND ($3::int IS NULL OR l.status = $3::int)"
    " AND ($4::int IS NULL OR (l.status >= $4::int * 100 AND l.status < $4::int * 100 + 100))"
    " AND (NOT $5::bool OR " LOG_FAILED_SQL ")"
    " AND ($6::text IS NULL OR l.direction = $6::text)"
    " AND ($7::date IS NULL OR l.created_at >= " LOG_FROM_SQL ")"
    " AND ($8::date IS NULL OR l.created_at < " LOG_TO_SQL ")"
    " AND ($9::text IS NULL OR l.request_id = $9::text)"
    " AND ($10::text IS NULL"
    "  OR strpos(lower(concat_ws(' ', l.url, l.error, l.validation_error)), lower($10::text)) > 0"
    "  OR ($14::bool AND l.created_at >= greatest(coalesce(" LOG_FROM_SQL ","
    "       now() - interval '7 days'),"
    "       coalesce(" LOG_TO_SQL ", now()) - interval '31 days')"
    "   AND (position(convert_to($10::text, 'UTF8') IN l.request_body) > 0"
    "    OR position(convert_to($10::text, 'UTF8') IN l.response_body) > 0)))"
    " AND ($11::bigint IS NULL OR l.job_id = $11::bigint)"
    " ORDER BY l.created_at DESC, l.id DESC LIMIT $12::int OFFSET $13::int";

struct log_filters {
	const char *partner, *api, *status, *direction, *from, *to, *request_id, *q, *job;
	const char *format;
	long page;
	char status_n[8], klass[4];
	bool failed;
};

static bool
log_is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* YYYY-MM-DD of a real day. */
static bool
log_is_date(const char *s)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || strspn(s, "0123456789") != 4 ||
	    strspn(s + 5, "0123456789") != 2 || strspn(s + 8, "0123456789") != 2)
		return false;
	y = (int)strtol(s, NULL, 10);
	m = (int)strtol(s + 5, NULL, 10);
	d = (int)strtol(s + 8, NULL, 10);
	if (y < 1970 || m < 1 || m > 12 || d < 1)
		return false;
	return d <= mdays[m - 1] + (m == 2 && log_is_leap(y));
}

static bool
log_bad(struct portal *p, const char *key)
{
	portal_error(p, 400, T(p, key));
	return false;
}

/* Reads and checks the filters; false with a 400 sent. */
static bool
log_filters_read(struct portal *p, struct log_filters *f)
{
	const char *v;

	memset(f, 0, sizeof(*f));
	if (!plog_text_param(p, "partner", LOG_MAX_TEXT, &f->partner) ||
	    !plog_text_param(p, "api", 64, &f->api) ||
	    !plog_text_param(p, "request_id", LOG_MAX_TEXT, &f->request_id) ||
	    !plog_text_param(p, "q", LOG_MAX_Q * 4, &f->q) ||
	    !plog_text_param(p, "status", 8, &f->status) ||
	    !plog_text_param(p, "direction", 8, &f->direction) ||
	    !plog_text_param(p, "from", 10, &f->from) || !plog_text_param(p, "to", 10, &f->to) ||
	    !plog_text_param(p, "job", 18, &f->job))
		return false;
	if (f->q && strlen(f->q) > LOG_MAX_Q && plog_width(f->q) > LOG_MAX_Q)
		return log_bad(p, "log.bad_q");
	if (f->api && (f->api[0] < 'a' || f->api[0] > 'z' ||
	               strspn(f->api, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(f->api)))
		return log_bad(p, "log.bad_api");
	if (f->status) {
		v = f->status;
		if (strcmp(v, "failed") == 0) {
			f->failed = true;
		} else if (strlen(v) == 3 && v[0] >= '1' && v[0] <= '5' &&
		           strcmp(v + 1, "xx") == 0) {
			snprintf(f->klass, sizeof(f->klass), "%c", v[0]);
		} else if (strlen(v) == 3 && strspn(v, "0123456789") == 3 && v[0] >= '1' &&
		           v[0] <= '5') {
			snprintf(f->status_n, sizeof(f->status_n), "%s", v);
		} else {
			return log_bad(p, "log.bad_status");
		}
	}
	if (f->direction && strcmp(f->direction, "in") != 0 && strcmp(f->direction, "out") != 0)
		return log_bad(p, "log.bad_direction");
	if (!plog_text_param(p, "date", 10, &v))
		return false;
	if (v != NULL) { /* one day: the shorthand of from = to */
		if (f->from || f->to)
			return log_bad(p, "log.bad_date_and_range");
		f->from = f->to = v;
	}
	if ((f->from && !log_is_date(f->from)) || (f->to && !log_is_date(f->to)))
		return log_bad(p, "log.bad_date");
	if (f->from && f->to && strcmp(f->from, f->to) > 0)
		return log_bad(p, "log.bad_range");
	if (f->job &&
	    (f->job[0] < '1' || f->job[0] > '9' || strspn(f->job, "0123456789") != strlen(f->job)))
		return log_bad(p, "log.bad_job");
	f->format = portal_param(p, "format");
	if (plog_blank(f->format))
		f->format = NULL;
	if (!plog_format_ok(f->format))
		return log_bad(p, "log.bad_format");
	if ((f->page = plog_page_param(p)) < 0)
		return false;
	return true;
}

/* The filters as a query string (without page and format). */
static void
log_filters_qs(const struct log_filters *f, struct buf *qs)
{
	plog_qs_add(qs, "partner", f->partner);
	plog_qs_add(qs, "api", f->api);
	plog_qs_add(qs, "status", f->status);
	plog_qs_add(qs, "direction", f->direction);
	plog_qs_add(qs, "from", f->from);
	plog_qs_add(qs, "to", f->to);
	plog_qs_add(qs, "request_id", f->request_id);
	plog_qs_add(qs, "q", f->q);
	plog_qs_add(qs, "job", f->job);
}

static const struct portal_column log_export_cols[] = {
    {"id", "log.col_id"},
    {"time_s", "log.col_time"},
    {"direction", "log.col_dir"},
    {"partner", "log.col_partner"},
    {"api", "log.col_api"},
    {"api_version", "log.col_version"},
    {"method", "log.col_method"},
    {"url", "log.url"},
    {"status", "log.col_status"},
    {"duration_ms", "log.col_ms"},
    {"request_id", "log.col_request_id"},
    {"job_id", "log.job"},
    {"validation", "log.validation"},
    {"error", "log.col_error"},
};

static void
log_input(struct portal *p, const char *name, const char *label_key, const char *value,
          const char *type, const char *extra)
{
	h_fmt(p, "<p><label for=\"f-%s\">%s</label>", name, T(p, label_key));
	h_fmt(p, "<input id=\"f-%s\" name=\"%s\" type=\"%s\" value=\"%s\"", name, name, type,
	      value ? value : "");
	h_raw(p, extra);
	h_raw(p, "></p>");
}

static void
log_option(struct portal *p, const char *value, const char *label, const char *current)
{
	bool sel =
	    (current == NULL && value[0] == '\0') || (current && strcmp(current, value) == 0);

	h_fmt(p, "<option value=\"%s\"%s>%s</option>", value, sel ? " selected" : "", label);
}

static void
log_form(struct portal *p, const struct log_filters *f)
{
	static const char *const statuses[] = {"2xx", "3xx", "4xx", "5xx"};

	h_fmt(p,
	      "<form method=\"get\" action=\"/portal/log\" class=\"filters\" id=\"log-search\""
	      " role=\"search\" aria-label=\"%s\">",
	      T(p, "log.search"));
	log_input(p, "partner", "log.partner", f->partner, "text", " maxlength=\"255\"");
	log_input(p, "api", "log.api", f->api, "text", " maxlength=\"64\"");
	/* a code (404) typed, or a class picked from the list */
	log_input(p, "status", "log.status", f->status, "text",
	          " list=\"status-classes\" maxlength=\"6\" aria-describedby=\"status-hint\"");
	h_fmt(p, "<datalist id=\"status-classes\"><option value=\"failed\">%s</option>",
	      T(p, "log.failed"));
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		h_fmt(p, "<option value=\"%s\"></option>", statuses[i]);
	h_raw(p, "</datalist>");
	h_fmt(p,
	      "<p><label for=\"f-direction\">%s</label><select id=\"f-direction\" "
	      "name=\"direction\">",
	      T(p, "log.direction"));
	log_option(p, "", T(p, "log.any"), f->direction);
	log_option(p, "in", T(p, "log.in"), f->direction);
	log_option(p, "out", T(p, "log.out"), f->direction);
	h_raw(p, "</select></p>");
	log_input(p, "from", "log.from", f->from, "date", "");
	log_input(p, "to", "log.to", f->to, "date", "");
	log_input(p, "request_id", "log.request_id", f->request_id, "text", " maxlength=\"255\"");
	log_input(p, "q", "log.q", f->q, "search",
	          " maxlength=\"200\" aria-describedby=\"q-hint\"");
	if (f->job)
		log_input(p, "job", "log.job", f->job, "text", " inputmode=\"numeric\"");
	h_fmt(p, "<p><button type=\"submit\" id=\"log-submit\">%s</button></p></form>",
	      T(p, "log.submit"));
	h_fmt(p, "<p class=\"muted\" id=\"status-hint\">%s</p>", T(p, "log.status_hint"));
	h_fmt(p, "<p class=\"muted\" id=\"q-hint\">%s</p>", T(p, "log.q_hint"));
}

/* A status with its class for colour (ok, warn, bad) and text for "none". */
static void
log_status_cell(struct portal *p, const char *status)
{
	const char *cls = status == NULL     ? "status-bad"
	                  : status[0] >= '4' ? "status-bad"
	                  : status[0] == '3' ? "status-warn"
	                                     : "status-ok";

	h_fmt(p, "<td class=\"num %s\">%s</td>", cls, status ? status : T(p, "log.no_response"));
}

static void
log_list_done(struct portal *p)
{
	struct log_filters *f = p->data;
	const struct portal_rows *r = &p->rows[0];
	bool more = r->nrows > PLOG_PAGE_ROWS;
	int shown = more ? PLOG_PAGE_ROWS : r->nrows;
	struct buf qs;

	/* statement_timeout: a search over the whole log that matched little */
	if (p->db_err && db_err_is(p->db_err, "57014")) {
		portal_error(p, 400, T(p, "log.too_broad"));
		free(f);
		return;
	}
	if (portal_db_failed(p)) {
		free(f);
		return;
	}
	plog_clean_rows(&p->rows[0]);
	if (f->format) {
		free(f);
		portal_export(p, r, log_export_cols,
		              sizeof(log_export_cols) / sizeof(log_export_cols[0]), "ewp-log");
		return;
	}
	buf_init(&qs, 16 * 1024);
	log_filters_qs(f, &qs);
	portal_page_begin(p, "log.title");
	log_form(p, f);
	h_fmt(
	    p,
	    "<p class=\"exports\"><a id=\"export-csv\" href=\"/portal/log?%s%sformat=csv\">%s</a> "
	    "<a id=\"export-txt\" href=\"/portal/log?%s%sformat=txt\">%s</a></p>",
	    buf_cstr(&qs), qs.len ? "&" : "", T(p, "export.csv"), buf_cstr(&qs), qs.len ? "&" : "",
	    T(p, "export.txt"));
	if (shown == 0) {
		h_fmt(p, "<p id=\"log-empty\">%s</p>", T(p, "log.none"));
	} else {
		h_fmt(p, "<table id=\"log-results\"><caption>%s</caption><thead><tr>",
		      T(p, "log.results"));
		h_fmt(
		    p,
		    "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
		    "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
		    "<th scope=\"col\" class=\"num\">%s</th><th scope=\"col\" class=\"num\">%s</th>"
		    "<th scope=\"col\">%s</th><th scope=\"col\">%s</th>",
		    T(p, "log.col_id"), T(p, "log.col_time"), T(p, "log.col_dir"),
		    T(p, "log.col_partner"), T(p, "log.col_api"), T(p, "log.col_method"),
		    T(p, "log.col_status"), T(p, "log.col_ms"), T(p, "log.col_request_id"),
		    T(p, "log.col_error"));
		h_raw(p, "</tr></thead><tbody>");
		for (int i = 0; i < shown; i++) {
			const char *id = portal_cell(r, i, "id");
			const char *dir = portal_cell(r, i, "direction");

			h_fmt(p, "<tr id=\"log-%s\"><td><a href=\"/portal/log/%s\">%s</a></td>", id,
			      id, id);
			h_fmt(p, "<td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>",
			      portal_cell(r, i, "time"),
			      T(p, strcmp(dir, "in") == 0 ? "log.in" : "log.out"),
			      portal_cell(r, i, "partner"), portal_cell(r, i, "api_v"),
			      portal_cell(r, i, "method"));
			log_status_cell(p, portal_cell(r, i, "status"));
			h_fmt(p,
			      "<td class=\"num\">%s</td><td class=\"rid\">%s</td><td>%s</td></tr>",
			      portal_cell(r, i, "duration_ms"), portal_cell(r, i, "request_id"),
			      portal_cell(r, i, "error"));
		}
		h_raw(p, "</tbody></table>");
	}
	plog_pager(p, "/log", buf_cstr(&qs), f->page, more);
	buf_free(&qs);
	free(f);
	portal_page_end(p);
}

static void
log_list(struct portal *p)
{
	struct log_filters *f = xcalloc(1, sizeof(*f));
	char limit[16], offset[24];
	const char *params[14];

	if (!log_filters_read(p, f)) {
		free(f);
		return;
	}
	if (f->format) {
		snprintf(limit, sizeof(limit), "%d", PLOG_EXPORT_ROWS);
		snprintf(offset, sizeof(offset), "0");
	} else {
		snprintf(limit, sizeof(limit), "%d", PLOG_PAGE_ROWS + 1);
		snprintf(offset, sizeof(offset), "%ld", (f->page - 1) * PLOG_PAGE_ROWS);
	}
	params[0] = f->partner;
	params[1] = f->api;
	params[2] = f->status_n[0] ? f->status_n : NULL;
	params[3] = f->klass[0] ? f->klass : NULL;
	params[4] = f->failed ? "true" : "false";
	params[5] = f->direction;
	params[6] = f->from;
	params[7] = f->to;
	params[8] = f->request_id;
	params[9] = f->q;
	params[10] = f->job;
	params[11] = limit;
	params[12] = offset;
	params[13] = p->user.composantes ? "false" : "true";
	portal_sql(p, log_list_sql, 14, params);
	p->data = f;
	portal_run(p, false, log_list_done);
}

/* ---- one exchange -------------------------------------------------- */

static const char log_show_sql[] =
    "SELECT l.id, to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') AS time,"
    " l.direction, l.method, l.url, array_to_string(l.partner_hei_ids, ', ') AS partners,"
    " coalesce(l.api || ' ' || l.api_version, l.api) AS api_v, l.status, l.duration_ms,"
    " l.request_id, l.key_id, l.validation, l.validation_error, l.error, l.parent_id, l.job_id,"
    " to_char(l.reported_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS reported,"
    " encode(l.request_body, 'base64') AS qb, l.request_bytes,"
    " encode(l.response_body, 'base64') AS sb, l.response_bytes"
    " FROM ewp.message_log l WHERE l.id = $1::bigint";

#define LOG_HEADERS_SQL(col)                                                                       \
	"SELECT x.h ->> 0 AS name, x.h ->> 1 AS value FROM ewp.message_log l,"                     \
	" jsonb_array_elements(coalesce(l." col ", '[]')) WITH ORDINALITY AS x (h, o)"             \
	" WHERE l.id = $1::bigint ORDER BY x.o"

/* Same request id, same job, the exchange that caused this one or that it caused. */
static const char log_related_sql[] =
    "SELECT r.id, to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS time,"
    " r.direction, r.method, coalesce(r.api || ' ' || r.api_version, r.api) AS api_v, r.status,"
    " array_to_string(r.partner_hei_ids, ' ') AS partner,"
    " concat_ws(', ',"
    "  CASE WHEN r.request_id = me.request_id THEN 'log.rel_request_id' END,"
    "  CASE WHEN r.job_id = me.job_id THEN 'log.rel_job' END,"
    "  CASE WHEN r.id = me.parent_id THEN 'log.rel_parent' END,"
    "  CASE WHEN r.parent_id = me.id THEN 'log.rel_child' END) AS why"
    " FROM ewp.message_log me, ewp.message_log r"
    " WHERE me.id = $1::bigint AND r.id <> me.id AND ("
    "  (me.request_id IS NOT NULL AND r.request_id = me.request_id)"
    "  OR (me.job_id IS NOT NULL AND r.job_id = me.job_id)"
    "  OR r.id = me.parent_id OR r.parent_id = me.id)"
    " ORDER BY r.created_at, r.id LIMIT 100";

/*
 * The chain of one object: the jobs this exchange belongs to (its own
 * job, the re-fetch jobs its CNR queued, a job it was the origin of),
 * widened to every job of the same direction, partner, API and object
 * created within a day of them.
 */
#define LOG_CHAIN_JOBS                                                                             \
	"WITH me AS (SELECT id, request_id, job_id FROM ewp.message_log WHERE id = $1::bigint),"   \
	" j0 AS (SELECT j.id, j.direction, j.hei_id, j.api, j.dedupe_key, j.created_at"            \
	"  FROM ewp.jobs j, me WHERE j.id = me.job_id"                                             \
	"  UNION SELECT j.id, j.direction, j.hei_id, j.api, j.dedupe_key, j.created_at"            \
	"  FROM ewp.jobs j, me WHERE me.request_id IS NOT NULL AND j.payload ? 'cnr_request_id'"   \
	"   AND j.payload ->> 'cnr_request_id' = me.request_id"                                    \
	"  UNION SELECT j.id, j.direction, j.hei_id, j.api, j.dedupe_key, j.created_at"            \
	"  FROM ewp.jobs j, me WHERE j.origin_log_id = me.id),"                                    \
	" js AS (SELECT DISTINCT j.* FROM ewp.jobs j JOIN j0 ON j.api = j0.api"                    \
	"  AND j.dedupe_key = j0.dedupe_key AND j.hei_id = j0.hei_id AND j.direction = "           \
	"j0.direction"                                                                             \
	"  AND j.created_at BETWEEN j0.created_at - interval '1 day'"                              \
	"   AND j0.created_at + interval '1 day')"

static const char log_chain_jobs_sql[] = LOG_CHAIN_JOBS
    " SELECT js.id, js.direction, js.kind, js.api, js.hei_id, js.dedupe_key, js.status,"
    " js.attempts, to_char(js.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS created,"
    " js.payload ->> 'cnr_request_id' AS cnr_request_id,"
    /* what a re-fetch stored: the partner's mobility, the student's file */
    " (SELECT m.id FROM smile.mobility m WHERE js.direction = 'in' AND js.kind = 'refetch'"
    "   AND NOT m.is_outgoing AND m.sending_hei_id = js.hei_id AND m.omobility_id = js.dedupe_key)"
    "  AS mobility_id"
    " FROM js ORDER BY js.created_at, js.id LIMIT 50";

static const char log_chain_rows_sql[] = LOG_CHAIN_JOBS
    " SELECT l.id, to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS time,"
    " l.direction, l.method, coalesce(l.api || ' ' || l.api_version, l.api) AS api_v,"
    " l.status, array_to_string(l.partner_hei_ids, ' ') AS partner, l.job_id,"
    " CASE WHEN l.job_id IS NULL THEN 'log.step_cnr'"
    "  WHEN (SELECT js.kind FROM js WHERE js.id = l.job_id) = 'refetch' THEN 'log.step_fetch'"
    "  ELSE 'log.step_attempt' END AS why"
    " FROM ewp.message_log l WHERE l.id <> $1::bigint AND (l.job_id IN (SELECT id FROM js)"
    "  OR (l.direction = 'in' AND l.request_id IN (SELECT js.payload ->> 'cnr_request_id'"
    "   FROM js WHERE js.payload ? 'cnr_request_id')))"
    " ORDER BY l.created_at, l.id LIMIT 100";

static void
log_fact(struct portal *p, const char *key, const char *value)
{
	h_fmt(p, "<dt>%s</dt><dd>%s</dd>", T(p, key), value && value[0] ? value : "-");
}

/* A body: indented when it is a whole, well-formed XML document, else as sent. */
static void
log_body(struct portal *p, const char *which, const char *b64, const char *bytes_s)
{
	unsigned char *raw = NULL;
	size_t len = 0, shown, n = 0;
	long long bytes = bytes_s ? strtoll(bytes_s, NULL, 10) : 0;
	char *mem = NULL;
	const char *text;
	char *safe;

	if (b64 == NULL || codec_base64_decode(b64, strlen(b64), &raw, &len) == -1 || len == 0) {
		h_fmt(p, "<p class=\"muted\" id=\"%s-body-none\">%s</p>", which,
		      T(p, "log.no_body"));
		free(raw);
		return;
	}
	if ((long long)len < bytes)
		h_fmt(p, "<p class=\"muted\" id=\"%s-body-cut\">%s (%zu / %lld)</p>", which,
		      T(p, "log.body_cut"), len, bytes);
	else
		mem = xml_indent((const char *)raw, len, LOG_MAX_PARSE, &n);
	if (mem != NULL) {
		text = mem;
		shown = n;
		h_fmt(p, "<p class=\"muted\">%s</p>", T(p, "log.body_xml"));
	} else {
		text = (const char *)raw;
		shown = len;
		h_fmt(p, "<p class=\"muted\">%s</p>", T(p, "log.body_raw"));
	}
	if (shown > LOG_MAX_SHOWN) {
		h_fmt(p, "<p class=\"muted\">%s (%zu / %zu)</p>", T(p, "log.body_shown_part"),
		      (size_t)LOG_MAX_SHOWN, shown);
		shown = LOG_MAX_SHOWN;
	}
	safe = plog_safe_text(text, shown);
	h_fmt(p, "<pre id=\"%s-body\" class=\"body\">%s</pre>", which, safe);
	free(safe);
	if (mem)
		xmlFree(mem);
	free(raw);
}

static void
log_headers(struct portal *p, const char *which, const char *caption_key,
            const struct portal_rows *r)
{
	if (r->nrows == 0) {
		h_fmt(p, "<p class=\"muted\" id=\"%s-headers-none\">%s</p>", which,
		      T(p, "log.no_headers"));
		return;
	}
	h_fmt(p,
	      "<table id=\"%s-headers\" class=\"headers\"><caption>%s</caption><thead><tr>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th></tr></thead><tbody>",
	      which, T(p, caption_key), T(p, "log.header_name"), T(p, "log.header_value"));
	for (int i = 0; i < r->nrows; i++)
		h_fmt(p, "<tr><th scope=\"row\">%s</th><td>%s</td></tr>", portal_cell(r, i, "name"),
		      portal_cell(r, i, "value"));
	h_raw(p, "</tbody></table>");
}

/* A table of linked exchanges; "why" holds catalogue keys, comma-separated. */
static void
log_links(struct portal *p, const char *id_attr, const char *caption_key,
          const struct portal_rows *r)
{
	if (r->nrows == 0)
		return;
	h_fmt(p, "<table id=\"%s\"><caption>%s</caption><thead><tr>", id_attr, T(p, caption_key));
	h_fmt(p,
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th></tr></thead><tbody>",
	      T(p, "log.col_id"), T(p, "log.col_link"), T(p, "log.col_time"), T(p, "log.col_dir"),
	      T(p, "log.col_partner"), T(p, "log.col_api"), T(p, "log.col_status"));
	for (int i = 0; i < r->nrows; i++) {
		const char *id = portal_cell(r, i, "id"), *why = portal_cell(r, i, "why");
		const char *status = portal_cell(r, i, "status");
		char *w = xstrdup(why ? why : ""), *save = NULL;
		bool first = true;

		h_fmt(p, "<tr><td><a href=\"/portal/log/%s\">%s</a></td><td>", id, id);
		for (char *k = strtok_r(w, ", ", &save); k; k = strtok_r(NULL, ", ", &save)) {
			h_fmt(p, "%s%s", first ? "" : ", ", T(p, k));
			first = false;
		}
		free(w);
		h_fmt(
		    p, "</td><td>%s</td><td>%s %s</td><td>%s</td><td>%s</td>",
		    portal_cell(r, i, "time"),
		    T(p, strcmp(portal_cell(r, i, "direction"), "in") == 0 ? "log.in" : "log.out"),
		    portal_cell(r, i, "method"), portal_cell(r, i, "partner"),
		    portal_cell(r, i, "api_v"));
		log_status_cell(p, status);
		h_raw(p, "</tr>");
	}
	h_raw(p, "</tbody></table>");
}

static void
log_chain_jobs(struct portal *p, const struct portal_rows *r)
{
	if (r->nrows == 0)
		return;
	h_fmt(p, "<table id=\"chain-jobs\"><caption>%s</caption><thead><tr>",
	      T(p, "log.chain_jobs"));
	h_fmt(p,
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\" "
	      "class=\"num\">%s</th><th scope=\"col\">%s</th></tr></thead><tbody>",
	      T(p, "log.jobs.col_id"), T(p, "log.jobs.col_kind"), T(p, "log.col_partner"),
	      T(p, "log.jobs.col_object"), T(p, "log.jobs.col_status"),
	      T(p, "log.jobs.col_attempts"), T(p, "log.jobs.col_created"));
	for (int i = 0; i < r->nrows; i++) {
		const char *id = portal_cell(r, i, "id"), *status = portal_cell(r, i, "status");
		const char *mob = portal_cell(r, i, "mobility_id");
		bool stored = strcmp(status, "success") == 0 &&
		              strcmp(portal_cell(r, i, "kind"), "refetch") == 0;

		h_fmt(p,
		      "<tr id=\"chain-job-%s\"><td><a href=\"/portal/log?job=%s\">%s</a></td>"
		      "<td>%s %s</td><td>%s</td><td>%s</td><td>%s%s%s",
		      id, id, id, portal_cell(r, i, "kind"), portal_cell(r, i, "api"),
		      portal_cell(r, i, "hei_id"), portal_cell(r, i, "dedupe_key"), status,
		      stored ? " - " : "", stored ? T(p, "log.stored") : "");
		/* the student's file, for those who may open it (it checks the scope) */
		if (mob && (p->user.privs & (PRIV_STUDENTS | PRIV_REFERENT)))
			h_fmt(p, " <a id=\"chain-file-%s\" href=\"/portal/students/%s\">%s</a>", id,
			      mob, T(p, "log.student_file"));
		h_fmt(p, "</td><td class=\"num\">%s</td><td>%s</td></tr>",
		      portal_cell(r, i, "attempts"), portal_cell(r, i, "created"));
	}
	h_raw(p, "</tbody></table>");
}

static void
log_show_done(struct portal *p)
{
	const struct portal_rows *r = &p->rows[0];
	const char *v;

	if (portal_db_failed(p))
		return;
	if (r->nrows == 0) {
		portal_error(p, 404, T(p, "log.no_such"));
		return;
	}
	for (int i = 0; i < p->nsql; i++)
		plog_clean_rows(&p->rows[i]);
	portal_page_begin(p, "log.show_title");
	h_fmt(p, "<p><a href=\"/portal/log\">%s</a></p>", T(p, "log.back"));
	h_raw(p, "<dl class=\"facts\" id=\"exchange\">");
	log_fact(p, "log.col_id", portal_cell(r, 0, "id"));
	log_fact(p, "log.time", portal_cell(r, 0, "time"));
	log_fact(p, "log.direction",
	         T(p, strcmp(portal_cell(r, 0, "direction"), "in") == 0 ? "log.in" : "log.out"));
	log_fact(p, "log.col_method", portal_cell(r, 0, "method"));
	log_fact(p, "log.url", portal_cell(r, 0, "url"));
	log_fact(p, "log.partner", portal_cell(r, 0, "partners"));
	log_fact(p, "log.api", portal_cell(r, 0, "api_v"));
	v = portal_cell(r, 0, "status");
	log_fact(p, "log.col_status", v ? v : T(p, "log.no_response"));
	log_fact(p, "log.col_ms", portal_cell(r, 0, "duration_ms"));
	log_fact(p, "log.request_id", portal_cell(r, 0, "request_id"));
	log_fact(p, "log.key_id", portal_cell(r, 0, "key_id"));
	if ((v = portal_cell(r, 0, "error")) != NULL)
		h_fmt(p, "<dt>%s</dt><dd class=\"error\" id=\"exchange-error\">%s</dd>",
		      T(p, "log.col_error"), v);
	if ((v = portal_cell(r, 0, "job_id")) != NULL)
		h_fmt(
		    p,
		    "<dt>%s</dt><dd><a id=\"exchange-job\" href=\"/portal/log?job=%s\">%s</a></dd>",
		    T(p, "log.job"), v, v);
	if ((v = portal_cell(r, 0, "reported")) != NULL)
		log_fact(p, "log.reported", v);
	h_raw(p, "</dl>");

	h_fmt(p, "<h2>%s</h2>", T(p, "log.validation"));
	v = portal_cell(r, 0, "validation");
	if (strcmp(v, "valid") == 0)
		h_fmt(p, "<p id=\"validation\" class=\"status-ok\">%s</p>", T(p, "log.valid"));
	else if (strcmp(v, "invalid") == 0)
		h_fmt(p, "<p id=\"validation\" class=\"error\">%s %s</p>", T(p, "log.invalid"),
		      portal_cell(r, 0, "validation_error"));
	else
		h_fmt(p, "<p id=\"validation\" class=\"muted\">%s</p>", T(p, "log.not_checked"));

	h_fmt(p, "<h2>%s</h2>", T(p, "log.request"));
	log_headers(p, "request", "log.request_headers", &p->rows[1]);
	if (p->user.composantes)
		h_fmt(p, "<p class=\"muted\" id=\"request-body-hidden\">%s</p>",
		      T(p, "log.body_scoped"));
	else
		log_body(p, "request", portal_cell(r, 0, "qb"), portal_cell(r, 0, "request_bytes"));
	h_fmt(p, "<h2>%s</h2>", T(p, "log.response"));
	log_headers(p, "response", "log.response_headers", &p->rows[2]);
	if (p->user.composantes)
		h_fmt(p, "<p class=\"muted\" id=\"response-body-hidden\">%s</p>",
		      T(p, "log.body_scoped"));
	else
		log_body(p, "response", portal_cell(r, 0, "sb"),
		         portal_cell(r, 0, "response_bytes"));

	h_fmt(p, "<h2>%s</h2>", T(p, "log.related"));
	if (p->rows[3].nrows == 0 && p->rows[4].nrows == 0 && p->rows[5].nrows == 0)
		h_fmt(p, "<p class=\"muted\" id=\"related-none\">%s</p>", T(p, "log.no_related"));
	log_links(p, "related", "log.related_same", &p->rows[3]);
	log_chain_jobs(p, &p->rows[4]);
	log_links(p, "chain", "log.chain", &p->rows[5]);
	portal_page_end(p);
}

static void
log_show(struct portal *p)
{
	long id = portal_arg_id(p);
	char ids[24];
	const char *params[1] = {ids};

	if (id < 0 || strspn(p->path_arg, "0123456789") != strlen(p->path_arg)) {
		portal_error(p, 404, T(p, "log.no_such"));
		return;
	}
	snprintf(ids, sizeof(ids), "%ld", id);
	portal_sql(p, log_show_sql, 1, params);
	portal_sql(p, LOG_HEADERS_SQL("request_headers"), 1, params);
	portal_sql(p, LOG_HEADERS_SQL("response_headers"), 1, params);
	portal_sql(p, log_related_sql, 1, params);
	portal_sql(p, log_chain_jobs_sql, 1, params);
	portal_sql(p, log_chain_rows_sql, 1, params);
	portal_run(p, false, log_show_done);
}

const struct portal_page portal_log_pages[] = {
    {"GET", "/log", PRIV_LOG, false, log_list},
    {"GET", "/log/", PRIV_LOG, false, log_show},
    {NULL, NULL, 0, false, NULL},
};
