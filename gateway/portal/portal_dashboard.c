/*
 * portal_dashboard.c - the dashboard of incoming students (GET /dashboard):
 * what needs action now, counts by status and by workflow step, and the
 * students matching the filters (year, partner, composante, step, status,
 * name), paged, or exported whole as CSV or aligned text.
 *
 * Who sees whom is sql/0017's smile.portal_incoming(): a gestionnaire
 * every student or those of their composantes, a Référent the students
 * whose registration names their e-mail. Every statement goes through it,
 * so a count, a list and an export never disagree on the scope.
 *
 * Filters come from the query string and are checked before any SQL: a
 * value of the wrong form is a 400 naming the filter. They are re-read in
 * the `done` callback (the check cannot fail twice), so the page keeps no
 * state of its own between the two.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "portal.h"
#include "xmalloc.h"

#define DASH_PAGE_SIZE 100    /* students on one page */
#define DASH_MAX_PAGE  100000 /* highest page number accepted */
#define DASH_MAX_Q     100    /* bytes of the name searched */
#define DASH_QUERY_MAX 4096   /* bytes of a link's query string */

enum dash_format { DASH_HTML, DASH_CSV, DASH_TXT };

/* The filters of one request, as checked; NULL: not filtered. */
struct dash_filter {
	const char *year, *partner, *composante, *step, *status, *q;
	const char *sort; /* "name", "date", "partner" or "step" */
	long page;
	enum dash_format format;
};

/* Indexes of the statements of the HTML page. */
enum {
	SQL_STATUS,
	SQL_STEPS,
	SQL_LIST,
	SQL_OPTIONS,
	SQL_NEEDS_NOM,
	SQL_NEEDS_LA,
	SQL_NEEDS_DEC,
};

/* ---- the filters ------------------------------------------------------ */

static const char *
dash_value(const struct portal *p, const char *name)
{
	const char *v = portal_param(p, name);

	return v == NULL || v[0] == '\0' ? NULL : v;
}

/* Digits only, 1..maxlen of them, no leading zero, value in [lo, hi]. */
static bool
dash_number(const char *v, size_t maxlen, long lo, long hi)
{
	size_t n = strlen(v);
	long x;

	if (n == 0 || n > maxlen || v[0] == '0' || strspn(v, "0123456789") != n)
		return false;
	x = strtol(v, NULL, 10);
	return x >= lo && x <= hi;
}

/* A HEI id as the core stores it: lower-case letters, digits, dots, hyphens. */
static bool
dash_hei_id(const char *v)
{
	size_t n = strlen(v);

	return n >= 1 && n <= 64 && strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789.-") == n;
}

/* Text without control characters, at most DASH_MAX_Q bytes. */
static bool
dash_text(const char *v)
{
	if (strlen(v) > DASH_MAX_Q)
		return false;
	for (const unsigned char *s = (const unsigned char *)v; *s; s++)
		if (*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/*
 * Reads and checks the filters; on a bad value answers 400 with a message
 * that names the filter and returns false.
 */
static bool
dash_filter_read(struct portal *p, struct dash_filter *f)
{
	const char *page = dash_value(p, "page"), *format = dash_value(p, "format");
	const char *bad = NULL;

	memset(f, 0, sizeof(*f));
	f->year = dash_value(p, "year");
	f->partner = dash_value(p, "partner");
	f->composante = dash_value(p, "composante");
	f->step = dash_value(p, "step");
	f->status = dash_value(p, "status");
	f->q = dash_value(p, "q");
	f->sort = dash_value(p, "sort");
	f->page = 1;
	if (f->year && !dash_number(f->year, 4, 2000, 2100))
		bad = "dashboard.bad_year";
	else if (f->partner && !dash_hei_id(f->partner))
		bad = "dashboard.bad_partner";
	else if (f->composante && !dash_number(f->composante, 18, 1, 999999999999999999L))
		bad = "dashboard.bad_composante";
	else if (f->step && !dash_number(f->step, 18, 1, 999999999999999999L))
		bad = "dashboard.bad_step";
	else if (f->status && !dash_number(f->status, 5, 1, 32767))
		bad = "dashboard.bad_status";
	else if (f->q && !dash_text(f->q))
		bad = "dashboard.bad_q";
	else if (f->sort && strcmp(f->sort, "name") != 0 && strcmp(f->sort, "date") != 0 &&
	         strcmp(f->sort, "partner") != 0 && strcmp(f->sort, "step") != 0)
		bad = "dashboard.bad_sort";
	else if (page && !dash_number(page, 6, 1, DASH_MAX_PAGE))
		bad = "dashboard.bad_page";
	else if (format && strcmp(format, "csv") != 0 && strcmp(format, "txt") != 0)
		bad = "dashboard.bad_format";
	if (bad) {
		portal_error(p, 400, T(p, bad));
		return false;
	}
	if (f->sort == NULL)
		f->sort = "name";
	if (page)
		f->page = strtol(page, NULL, 10);
	if (format && strcmp(format, "csv") == 0)
		f->format = DASH_CSV;
	else if (format && strcmp(format, "txt") == 0)
		f->format = DASH_TXT;
	return true;
}

/* ---- SQL -------------------------------------------------------------- */

/*
 * Parameters: $1 students, $2 composantes, $3 referent, $4 e-mail, $5 lang
 * (the user's rights and language), then $6 year, $7 partner,
 * $8 composante, $9 step, $10 status, $11 name (the filters).
 */
#define DASH_NPARAMS 11
#define DASH_SCOPE   "$1::boolean, $2::bigint[], $3::boolean, $4::text, $5::text"
#define DASH_FILTERED                                                                              \
	"smile.portal_incoming(" DASH_SCOPE ", $6::smallint, $7::text, $8::bigint, $9::bigint,"    \
	" $10::smallint, $11::text)"
#define DASH_UNFILTERED "smile.portal_incoming(" DASH_SCOPE ", NULL, NULL, NULL, NULL, NULL, NULL)"

static const char sql_status[] = "SELECT st.status, st.label, count(s.mobility_id) AS n"
                                 "  FROM smile.inscription_status st"
                                 "  LEFT JOIN " DASH_FILTERED " s ON s.status = st.status"
                                 " GROUP BY st.status, st.label ORDER BY st.status";

static const char sql_steps[] =
    "SELECT t.id, t.code, t.label, t.position, t.active, count(s.mobility_id) AS n"
    "  FROM smile.step t"
    "  LEFT JOIN " DASH_FILTERED " s ON s.step_id = t.id"
    " GROUP BY t.id ORDER BY t.position";

/* $12 sort, then for a page $13 limit and $14 offset. */
#define DASH_LIST_COLS                                                                             \
	"SELECT s.mobility_id, s.given_names, s.family_name, s.sending_hei_id, s.partner_name,"    \
	" s.composante_name, s.academic_year, s.step_code, s.step_label, s.step_active, s.status," \
	" s.status_label, to_char(s.nominated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS"     \
	" nominated, s.la_state, s.status_label AS status_text, s.la_state AS la_text"             \
	"  FROM " DASH_FILTERED " s"                                                               \
	" ORDER BY CASE WHEN $12::text = 'date' THEN s.nominated_at END DESC,"                     \
	" CASE WHEN $12::text = 'partner' THEN lower(s.partner_name) END,"                         \
	" CASE WHEN $12::text = 'step' THEN s.step_position END,"                                  \
	" lower(s.family_name), lower(s.given_names), s.mobility_id"

static const char sql_list_page[] = DASH_LIST_COLS " LIMIT $13::int OFFSET $14::int";
static const char sql_list_all[] = DASH_LIST_COLS;

/* The values the filters' menus offer: among the students one may see. */
static const char sql_options[] =
    "WITH s AS MATERIALIZED (SELECT academic_year, sending_hei_id, composante_id"
    "                          FROM " DASH_UNFILTERED ")"
    " SELECT 'year' AS kind, academic_year::text AS value,"
    "        academic_year || '/' || (academic_year + 1) AS label, academic_year::text AS k"
    "   FROM (SELECT DISTINCT academic_year FROM s) y"
    " UNION ALL"
    " SELECT 'partner', e.schac_id::text, n.name, lower(n.name)"
    "   FROM (SELECT DISTINCT sending_hei_id FROM s) h"
    "   JOIN smile.etablissement e ON e.schac_id = h.sending_hei_id,"
    "   LATERAL (SELECT coalesce(smile.name_in(e.names, $5::text), e.schac_id) AS name) n"
    " UNION ALL"
    " SELECT 'composante', c.id::text, n.name, lower(n.name)"
    "   FROM (SELECT DISTINCT composante_id FROM s) u"
    "   JOIN smile.composante c ON c.id = u.composante_id,"
    "   LATERAL (SELECT coalesce(smile.name_in(c.names, $5::text), c.code) AS name) n"
    " ORDER BY 1, 4, 2";

/* Nominations waiting for our decision: pending, still published, and no
 * decision on their proposal on its way or accepted (what
 * ewp.decision_queue() would take). */
static const char sql_needs_nom[] =
    "SELECT s.mobility_id, s.given_names, s.family_name, s.partner_name,"
    "       to_char(s.nominated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS at,"
    "       count(*) OVER () AS total"
    "  FROM " DASH_UNFILTERED " s JOIN smile.mobility m ON m.id = s.mobility_id"
    " WHERE m.status = 'pending' AND m.gone_at IS NULL"
    "   AND NOT EXISTS (SELECT 1 FROM ewp.decisions d WHERE d.mobility_id = m.id"
    "          AND d.proposal_id = m.proposal_id"
    "          AND d.kind IN ('nomination-approve', 'nomination-reject')"
    "          AND d.state IN ('queued', 'accepted'))"
    " ORDER BY s.nominated_at, s.mobility_id LIMIT 50";

/* Learning agreements whose changes proposal waits for our approval. */
static const char sql_needs_la[] =
    "SELECT s.mobility_id, s.given_names, s.family_name, s.partner_name,"
    "       to_char(v.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS at,"
    "       count(*) OVER () AS total"
    "  FROM " DASH_UNFILTERED " s JOIN smile.mobility m ON m.id = s.mobility_id"
    "  JOIN smile.learning_agreement la ON la.mobility_id = m.id AND la.gone_at IS NULL"
    "  JOIN smile.la_version v ON v.learning_agreement_id = la.id"
    "       AND v.kind = 'changes-proposal' AND v.state = 'current'"
    " WHERE m.gone_at IS NULL AND m.status <> 'cancelled'"
    "   AND NOT EXISTS (SELECT 1 FROM ewp.decisions d WHERE d.mobility_id = m.id"
    "          AND d.proposal_id = v.proposal_id AND d.kind IN ('la-approve', 'la-comment')"
    "          AND d.state IN ('queued', 'accepted'))"
    " ORDER BY v.created_at, s.mobility_id LIMIT 50";

/* Our decisions the partner refused or whose sending failed, unless a
 * later decision of the same kind (nomination / LA) replaced them. */
static const char sql_needs_dec[] =
    "SELECT s.mobility_id, s.given_names, s.family_name, s.partner_name, d.kind, d.state,"
    "       coalesce(d.partner_message, j.last_error) AS message,"
    "       to_char(d.modified_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS at,"
    "       count(*) OVER () AS total"
    "  FROM " DASH_UNFILTERED " s JOIN ewp.decisions d ON d.mobility_id = s.mobility_id"
    "  LEFT JOIN ewp.jobs j ON j.id = d.job_id"
    " WHERE d.state IN ('refused', 'failed')"
    "   AND NOT EXISTS (SELECT 1 FROM ewp.decisions l WHERE l.mobility_id = d.mobility_id"
    "          AND l.id > d.id AND (l.kind LIKE 'la-%') = (d.kind LIKE 'la-%'))"
    " ORDER BY d.modified_at DESC, d.id DESC LIMIT 50";

/* The parameters of every statement (the first DASH_NPARAMS), plus room
 * for the list's sort, limit and offset. */
struct dash_params {
	const char *v[DASH_NPARAMS + 3];
	char limit[24], offset[24];
};

static void
dash_params_fill(struct portal *p, const struct dash_filter *f, struct dash_params *pp)
{
	bool students = (p->user.privs & PRIV_STUDENTS) != 0;
	bool referent = (p->user.privs & PRIV_REFERENT) != 0;

	memset(pp, 0, sizeof(*pp));
	pp->v[0] = students ? "t" : "f";
	pp->v[1] = p->user.composantes;
	/* as the students' file does: the Référent rule for a Référent alone */
	pp->v[2] = referent && !students ? "t" : "f";
	pp->v[3] = p->user.email;
	pp->v[4] = p->lang;
	pp->v[5] = f->year;
	pp->v[6] = f->partner;
	pp->v[7] = f->composante;
	pp->v[8] = f->step;
	pp->v[9] = f->status;
	pp->v[10] = f->q;
	pp->v[11] = f->sort;
	snprintf(pp->limit, sizeof(pp->limit), "%d", DASH_PAGE_SIZE + 1);
	snprintf(pp->offset, sizeof(pp->offset), "%ld", (f->page - 1) * DASH_PAGE_SIZE);
	pp->v[12] = pp->limit;
	pp->v[13] = pp->offset;
}

/* ---- labels ----------------------------------------------------------- */

/* The catalogue's text for key, or fallback when the catalogue has none. */
static const char *
dash_label(const struct portal *p, const char *key, const char *fallback)
{
	const char *t = T(p, key);

	return strcmp(t, key) == 0 && fallback ? fallback : t;
}

static const char *
dash_status_label(const struct portal *p, const char *status, const char *db_label)
{
	char key[48];

	snprintf(key, sizeof(key), "dashboard.status.%s", status ? status : "");
	return dash_label(p, key, db_label);
}

static const char *
dash_la_label(const struct portal *p, const char *state)
{
	char key[48];

	snprintf(key, sizeof(key), "dashboard.la.%s", state ? state : "none");
	return dash_label(p, key, state);
}

/* ---- links ------------------------------------------------------------ */

static void
dash_add(struct buf *b, bool *full, const char *s, size_t n)
{
	if (buf_add(b, s, n) == -1)
		*full = true;
}

static void
dash_adds(struct buf *b, bool *full, const char *s)
{
	dash_add(b, full, s, strlen(s));
}

/* Appends name=value (percent-encoded) to a query string. */
static void
dash_query_add(struct buf *b, bool *full, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";

	if (value == NULL)
		return;
	if (b->len)
		dash_adds(b, full, "&");
	dash_adds(b, full, name);
	dash_adds(b, full, "=");
	for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
		char e[3] = {'%', hex[*s >> 4], hex[*s & 15]};

		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr("-._~", *s))
			dash_add(b, full, (const char *)s, 1);
		else
			dash_add(b, full, e, 3);
	}
}

/*
 * The href of the dashboard with the current filters, except that `name`
 * (if not NULL) takes `value` (NULL: dropped), page `page` (0: none) and
 * format `format` (NULL: the page). Returned in the caller's buffer.
 */
static const char *
dash_href(struct buf *b, const struct dash_filter *f, const char *name, const char *value,
          long page, const char *format)
{
	struct {
		const char *name, *value;
	} kv[] = {
	    {"year", f->year},
	    {"partner", f->partner},
	    {"composante", f->composante},
	    {"step", f->step},
	    {"status", f->status},
	    {"q", f->q},
	    {"sort", strcmp(f->sort, "name") ? f->sort : NULL},
	};
	bool full = false;
	char num[24];

	buf_reset(b);
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		dash_query_add(b, &full, kv[i].name,
		               name && strcmp(name, kv[i].name) == 0 ? value : kv[i].value);
	if (page > 1) {
		snprintf(num, sizeof(num), "%ld", page);
		dash_query_add(b, &full, "page", num);
	}
	dash_query_add(b, &full, "format", format);
	if (full)
		buf_reset(b);
	return buf_cstr(b);
}

/* ---- HTML ------------------------------------------------------------- */

static void
dash_student_link(struct portal *p, const struct portal_rows *r, int i)
{
	h_fmt(p, "<a href=\"/portal/students/%s\">%s, %s</a>", portal_cell(r, i, "mobility_id"),
	      portal_cell(r, i, "family_name"), portal_cell(r, i, "given_names"));
}

/* The heading line of a "needs action" table: caption and count. */
static void
dash_needs_caption(struct portal *p, const struct portal_rows *r, const char *key)
{
	const char *total = r->nrows ? portal_cell(r, 0, "total") : "0";

	h_fmt(p, "<caption>%s (%s)</caption>", T(p, key), total);
}

static void
dash_needs_simple(struct portal *p, const struct portal_rows *r, const char *id,
                  const char *caption_key, const char *when_key)
{
	if (r->nrows == 0) {
		h_fmt(p, "<p id=\"%s\" class=\"muted\">%s (0) — %s</p>", id, T(p, caption_key),
		      T(p, "dashboard.needs.none"));
		return;
	}
	h_fmt(p, "<table id=\"%s\">", id);
	dash_needs_caption(p, r, caption_key);
	h_fmt(
	    p,
	    "<thead><tr><th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	    "</tr></thead><tbody>",
	    T(p, "dashboard.col.student"), T(p, "dashboard.col.partner"), T(p, when_key));
	for (int i = 0; i < r->nrows; i++) {
		h_fmt(p, "<tr id=\"%s-%s\"><td>", id, portal_cell(r, i, "mobility_id"));
		dash_student_link(p, r, i);
		h_fmt(p, "</td><td>%s</td><td>%s</td></tr>", portal_cell(r, i, "partner_name"),
		      portal_cell(r, i, "at"));
	}
	h_raw(p, "</tbody></table>");
	if (strtol(portal_cell(r, 0, "total"), NULL, 10) > r->nrows)
		h_fmt(p, "<p class=\"muted\">%s</p>", T(p, "dashboard.needs.more"));
}

static void
dash_needs_decisions(struct portal *p, const struct portal_rows *r)
{
	if (r->nrows == 0) {
		h_fmt(p, "<p id=\"needs-decisions\" class=\"muted\">%s (0) — %s</p>",
		      T(p, "dashboard.needs.decisions"), T(p, "dashboard.needs.none"));
		return;
	}
	h_raw(p, "<table id=\"needs-decisions\">");
	dash_needs_caption(p, r, "dashboard.needs.decisions");
	h_fmt(
	    p,
	    "<thead><tr><th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	    "<th scope=\"col\">%s</th><th scope=\"col\">%s</th></tr></thead><tbody>",
	    T(p, "dashboard.col.student"), T(p, "dashboard.col.partner"),
	    T(p, "dashboard.col.decision"), T(p, "dashboard.col.message"),
	    T(p, "dashboard.col.when"));
	for (int i = 0; i < r->nrows; i++) {
		char kind[64], state[64];

		snprintf(kind, sizeof(kind), "dashboard.decision.%s", portal_cell(r, i, "kind"));
		snprintf(state, sizeof(state), "dashboard.decision_state.%s",
		         portal_cell(r, i, "state"));
		h_fmt(p, "<tr id=\"needs-decisions-%s\"><td>", portal_cell(r, i, "mobility_id"));
		dash_student_link(p, r, i);
		h_fmt(
		    p,
		    "</td><td>%s</td><td>%s — <span class=\"status-bad\">%s</span></td><td>%s</td>"
		    "<td>%s</td></tr>",
		    portal_cell(r, i, "partner_name"),
		    dash_label(p, kind, portal_cell(r, i, "kind")),
		    dash_label(p, state, portal_cell(r, i, "state")), portal_cell(r, i, "message"),
		    portal_cell(r, i, "at"));
	}
	h_raw(p, "</tbody></table>");
	if (strtol(portal_cell(r, 0, "total"), NULL, 10) > r->nrows)
		h_fmt(p, "<p class=\"muted\">%s</p>", T(p, "dashboard.needs.more"));
}

/* One <select> of the filter form; rows: (value, label) pairs from options
 * of `kind`, or the status/step statements. */
static void
dash_select_begin(struct portal *p, const char *name, const char *label_key)
{
	h_fmt(p,
	      "<p><label for=\"f-%s\">%s</label><select id=\"f-%s\" name=\"%s\">"
	      "<option value=\"\">%s</option>",
	      name, T(p, label_key), name, name, T(p, "dashboard.any"));
}

static void
dash_option(struct portal *p, const char *value, const char *label, const char *current, bool *seen)
{
	bool sel = current && value && strcmp(current, value) == 0;

	if (sel)
		*seen = true;
	h_fmt(p, "<option value=\"%s\"%s>%s</option>", value, sel ? " selected" : "", label);
}

/* A current value no row offers (no student has it): still shown. */
static void
dash_select_end(struct portal *p, const char *current, bool seen)
{
	if (current && !seen)
		h_fmt(p, "<option value=\"%s\" selected>%s</option>", current, current);
	h_raw(p, "</select></p>");
}

static void
dash_select_options(struct portal *p, const struct portal_rows *opt, const char *kind,
                    const char *current, const char *name, const char *label_key)
{
	bool seen = false;

	dash_select_begin(p, name, label_key);
	for (int i = 0; i < opt->nrows; i++)
		if (strcmp(portal_cell(opt, i, "kind"), kind) == 0)
			dash_option(p, portal_cell(opt, i, "value"), portal_cell(opt, i, "label"),
			            current, &seen);
	dash_select_end(p, current, seen);
}

static void
dash_filters_form(struct portal *p, const struct dash_filter *f)
{
	const struct portal_rows *st = &p->rows[SQL_STATUS], *steps = &p->rows[SQL_STEPS];
	static const char *const sorts[] = {"name", "date", "partner", "step"};
	bool seen = false;

	h_fmt(p,
	      "<section id=\"filters\" aria-labelledby=\"filters-h\"><h2 id=\"filters-h\">%s</h2>"
	      "<form class=\"filters\" method=\"get\" action=\"/portal/dashboard\">",
	      T(p, "dashboard.filters"));
	dash_select_options(p, &p->rows[SQL_OPTIONS], "year", f->year, "year", "dashboard.f.year");
	dash_select_options(p, &p->rows[SQL_OPTIONS], "partner", f->partner, "partner",
	                    "dashboard.f.partner");
	dash_select_options(p, &p->rows[SQL_OPTIONS], "composante", f->composante, "composante",
	                    "dashboard.f.composante");
	dash_select_begin(p, "step", "dashboard.f.step");
	for (int i = 0; i < steps->nrows; i++)
		dash_option(p, portal_cell(steps, i, "id"), portal_cell(steps, i, "label"), f->step,
		            &seen);
	dash_select_end(p, f->step, seen);
	seen = false;
	dash_select_begin(p, "status", "dashboard.f.status");
	for (int i = 0; i < st->nrows; i++)
		dash_option(
		    p, portal_cell(st, i, "status"),
		    dash_status_label(p, portal_cell(st, i, "status"), portal_cell(st, i, "label")),
		    f->status, &seen);
	dash_select_end(p, f->status, seen);
	h_fmt(p,
	      "<p><label for=\"f-q\">%s</label><input id=\"f-q\" name=\"q\" type=\"search\""
	      " maxlength=\"%d\" value=\"%s\"></p>",
	      T(p, "dashboard.f.q"), DASH_MAX_Q, f->q);
	h_fmt(p, "<p><label for=\"f-sort\">%s</label><select id=\"f-sort\" name=\"sort\">",
	      T(p, "dashboard.f.sort"));
	for (size_t i = 0; i < sizeof(sorts) / sizeof(sorts[0]); i++) {
		char key[40];

		snprintf(key, sizeof(key), "dashboard.sort.%s", sorts[i]);
		h_fmt(p, "<option value=\"%s\"%s>%s</option>", sorts[i],
		      strcmp(f->sort, sorts[i]) == 0 ? " selected" : "", T(p, key));
	}
	h_fmt(p,
	      "</select></p><p><button type=\"submit\" id=\"filter-submit\">%s</button>"
	      " <a id=\"filter-reset\" href=\"/portal/dashboard\">%s</a></p></form></section>",
	      T(p, "dashboard.filter"), T(p, "dashboard.reset"));
}

static void
dash_counts(struct portal *p, const struct dash_filter *f, struct buf *q)
{
	const struct portal_rows *st = &p->rows[SQL_STATUS], *steps = &p->rows[SQL_STEPS];

	h_fmt(p,
	      "<section id=\"counts\" aria-labelledby=\"counts-h\"><h2 id=\"counts-h\">%s</h2>"
	      "<div class=\"actions\">",
	      T(p, "dashboard.counts"));
	h_fmt(
	    p,
	    "<table id=\"counts-status\"><caption>%s</caption><thead><tr><th scope=\"col\">%s</th>"
	    "<th scope=\"col\" class=\"num\">%s</th></tr></thead><tbody>",
	    T(p, "dashboard.by_status"), T(p, "dashboard.col.status"), T(p, "dashboard.col.count"));
	for (int i = 0; i < st->nrows; i++) {
		const char *s = portal_cell(st, i, "status");

		h_fmt(p,
		      "<tr><th scope=\"row\"><a href=\"/portal/dashboard?%s\">%s</a></th>"
		      "<td class=\"num\" id=\"count-status-%s\">%s</td></tr>",
		      dash_href(q, f, "status", s, 0, NULL),
		      dash_status_label(p, s, portal_cell(st, i, "label")), s,
		      portal_cell(st, i, "n"));
	}
	h_raw(p, "</tbody></table>");
	h_fmt(p,
	      "<table id=\"counts-step\"><caption>%s</caption><thead><tr>"
	      "<th scope=\"col\" class=\"num\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\" class=\"num\">%s</th></tr></thead><tbody>",
	      T(p, "dashboard.by_step"), T(p, "dashboard.col.position"), T(p, "dashboard.col.step"),
	      T(p, "dashboard.col.count"));
	for (int i = 0; i < steps->nrows; i++) {
		bool active = strcmp(portal_cell(steps, i, "active"), "t") == 0;

		h_raw(p, active ? "<tr>" : "<tr class=\"muted step-inactive\">");
		h_fmt(p,
		      "<td class=\"num\">%s</td><th scope=\"row\"><a "
		      "href=\"/portal/dashboard?%s\">%s</a>",
		      portal_cell(steps, i, "position"),
		      dash_href(q, f, "step", portal_cell(steps, i, "id"), 0, NULL),
		      portal_cell(steps, i, "label"));
		if (!active)
			h_fmt(p, " <span class=\"inactive\">(%s)</span>",
			      T(p, "dashboard.inactive"));
		h_fmt(p, "</th><td class=\"num\" id=\"count-step-%s\">%s</td></tr>",
		      portal_cell(steps, i, "code"), portal_cell(steps, i, "n"));
	}
	h_raw(p, "</tbody></table></div></section>");
}

static void
dash_list(struct portal *p, const struct dash_filter *f, struct buf *q, long total)
{
	const struct portal_rows *r = &p->rows[SQL_LIST];
	int shown = r->nrows > DASH_PAGE_SIZE ? DASH_PAGE_SIZE : r->nrows;
	long first = (f->page - 1) * DASH_PAGE_SIZE + 1;
	long pages = total ? (total + DASH_PAGE_SIZE - 1) / DASH_PAGE_SIZE : 1;

	h_fmt(p,
	      "<section id=\"students\" aria-labelledby=\"students-h\"><h2 id=\"students-h\">%s"
	      " (<span id=\"students-total\">%ld</span>)</h2>",
	      T(p, "dashboard.students"), total);
	h_fmt(p, "<p>%s <a id=\"export-csv\" href=\"/portal/dashboard?%s\">CSV</a>",
	      T(p, "dashboard.export"), dash_href(q, f, NULL, NULL, 0, "csv"));
	h_fmt(p, " <a id=\"export-txt\" href=\"/portal/dashboard?%s\">%s</a></p>",
	      dash_href(q, f, NULL, NULL, 0, "txt"), T(p, "dashboard.export_txt"));
	if (shown == 0) {
		h_fmt(p, "<p id=\"students-none\">%s</p>", T(p, "dashboard.no_students"));
	} else {
		h_fmt(p, "<table id=\"student-list\"><caption>%s %ld–%ld / %ld</caption>",
		      T(p, "dashboard.students"), first, first + shown - 1, total);
		h_fmt(p,
		      "<thead><tr><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
		      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
		      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
		      "</tr></thead><tbody>",
		      T(p, "dashboard.col.student"), T(p, "dashboard.col.partner"),
		      T(p, "dashboard.col.composante"), T(p, "dashboard.col.year"),
		      T(p, "dashboard.col.step"), T(p, "dashboard.col.status"),
		      T(p, "dashboard.col.nominated"), T(p, "dashboard.col.la"));
		for (int i = 0; i < shown; i++) {
			const char *la = portal_cell(r, i, "la_state");

			h_fmt(p, "<tr id=\"student-%s\"><td>", portal_cell(r, i, "mobility_id"));
			dash_student_link(p, r, i);
			h_fmt(
			    p,
			    "</td><td>%s <span class=\"muted\">%s</span></td><td>%s</td><td>%s</td>"
			    "<td>%s</td><td>%s</td><td>%s</td><td class=\"la-%s\">%s</td></tr>",
			    portal_cell(r, i, "partner_name"), portal_cell(r, i, "sending_hei_id"),
			    portal_cell(r, i, "composante_name"),
			    portal_cell(r, i, "academic_year"), portal_cell(r, i, "step_label"),
			    dash_status_label(p, portal_cell(r, i, "status"),
			                      portal_cell(r, i, "status_label")),
			    portal_cell(r, i, "nominated"), la, dash_la_label(p, la));
		}
		h_raw(p, "</tbody></table>");
	}
	if (f->page > 1 || r->nrows > DASH_PAGE_SIZE) {
		h_fmt(p, "<nav aria-label=\"%s\" class=\"pages\"><p>", T(p, "dashboard.pages"));
		if (f->page > 1)
			h_fmt(p,
			      "<a id=\"page-prev\" rel=\"prev\" "
			      "href=\"/portal/dashboard?%s\">%s</a> ",
			      dash_href(q, f, NULL, NULL, f->page - 1, NULL),
			      T(p, "dashboard.prev"));
		h_fmt(p, "<span id=\"page-current\">%s %ld / %ld</span>", T(p, "dashboard.page"),
		      f->page, pages);
		if (r->nrows > DASH_PAGE_SIZE)
			h_fmt(p,
			      " <a id=\"page-next\" rel=\"next\" "
			      "href=\"/portal/dashboard?%s\">%s</a>",
			      dash_href(q, f, NULL, NULL, f->page + 1, NULL),
			      T(p, "dashboard.next"));
		h_raw(p, "</p></nav>");
	}
	h_raw(p, "</section>");
}

static void
dash_page_done(struct portal *p)
{
	struct dash_filter f;
	struct buf q;
	long total = 0;

	if (portal_db_failed(p))
		return;
	if (!dash_filter_read(p, &f))
		return;
	for (int i = 0; i < p->rows[SQL_STATUS].nrows; i++)
		total += strtol(portal_cell(&p->rows[SQL_STATUS], i, "n"), NULL, 10);
	buf_init(&q, DASH_QUERY_MAX);
	portal_page_begin(p, "dashboard.title");
	if (!(p->user.privs & PRIV_STUDENTS))
		h_fmt(p, "<p class=\"muted\" id=\"scope-referent\">%s</p>",
		      T(p, "dashboard.scope_referent"));
	else if (p->user.composantes)
		h_fmt(p, "<p class=\"muted\" id=\"scope-composantes\">%s</p>",
		      T(p, "dashboard.scope_composantes"));
	h_fmt(p,
	      "<section id=\"needs-action\" aria-labelledby=\"needs-h\"><h2 id=\"needs-h\">%s</h2>"
	      "<p class=\"muted\">%s</p>",
	      T(p, "dashboard.needs"), T(p, "dashboard.needs.scope"));
	dash_needs_simple(p, &p->rows[SQL_NEEDS_NOM], "needs-nominations",
	                  "dashboard.needs.nominations", "dashboard.col.received");
	dash_needs_simple(p, &p->rows[SQL_NEEDS_LA], "needs-las", "dashboard.needs.las",
	                  "dashboard.col.proposed");
	dash_needs_decisions(p, &p->rows[SQL_NEEDS_DEC]);
	h_raw(p, "</section>");
	dash_filters_form(p, &f);
	dash_counts(p, &f, &q);
	dash_list(p, &f, &q, total);
	buf_free(&q);
	portal_page_end(p);
}

/* ---- exports ---------------------------------------------------------- */

static const struct portal_column dash_export_cols[] = {
    {"mobility_id", "dashboard.x.id"},
    {"family_name", "dashboard.x.family_name"},
    {"given_names", "dashboard.x.given_names"},
    {"sending_hei_id", "dashboard.x.partner_id"},
    {"partner_name", "dashboard.x.partner"},
    {"composante_name", "dashboard.x.composante"},
    {"academic_year", "dashboard.x.year"},
    {"step_label", "dashboard.x.step"},
    {"status_text", "dashboard.x.status"},
    {"nominated", "dashboard.x.nominated"},
    {"la_text", "dashboard.x.la"},
};

/* Replaces cell (i, col) of r by text (the rows own their cells). */
static void
dash_set_cell(struct portal_rows *r, int i, const char *col, const char *text)
{
	for (int c = 0; c < r->ncols; c++)
		if (strcmp(r->names[c], col) == 0) {
			char **cell = &r->cells[i * r->ncols + c];

			free(*cell);
			*cell = xstrdup(text ? text : "");
			return;
		}
}

static void
dash_export_done(struct portal *p)
{
	struct portal_rows *r = &p->rows[0];

	if (portal_db_failed(p))
		return;
	/* status and LA state in the user's language */
	for (int i = 0; i < r->nrows; i++) {
		dash_set_cell(r, i, "status_text",
		              dash_status_label(p, portal_cell(r, i, "status"),
		                                portal_cell(r, i, "status_label")));
		dash_set_cell(r, i, "la_text", dash_la_label(p, portal_cell(r, i, "la_state")));
	}
	if (!portal_export(p, r, dash_export_cols,
	                   sizeof(dash_export_cols) / sizeof(dash_export_cols[0]),
	                   "incoming-students"))
		portal_error(p, 400, T(p, "dashboard.bad_format"));
}

/* ---- the page --------------------------------------------------------- */

static void
dashboard(struct portal *p)
{
	struct dash_filter f;
	struct dash_params pp;

	if (!dash_filter_read(p, &f))
		return;
	dash_params_fill(p, &f, &pp);
	if (f.format != DASH_HTML) {
		portal_sql(p, sql_list_all, DASH_NPARAMS + 1, pp.v);
		portal_run(p, false, dash_export_done);
		return;
	}
	portal_sql(p, sql_status, DASH_NPARAMS, pp.v);
	portal_sql(p, sql_steps, DASH_NPARAMS, pp.v);
	portal_sql(p, sql_list_page, DASH_NPARAMS + 3, pp.v);
	portal_sql(p, sql_options, 5, pp.v);
	portal_sql(p, sql_needs_nom, 5, pp.v);
	portal_sql(p, sql_needs_la, 5, pp.v);
	portal_sql(p, sql_needs_dec, 5, pp.v);
	portal_run(p, false, dash_page_done);
}

const struct portal_page portal_dashboard_pages[] = {
    {"GET", "/dashboard", PRIV_STUDENTS | PRIV_REFERENT, false, dashboard},
    {NULL, NULL, 0, false, NULL},
};
