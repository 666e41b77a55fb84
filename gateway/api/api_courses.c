/*
 * api_courses.c - Courses API v0.7.1: the LOSes of our HEI's exchange
 * catalogue (the courses Simple Course Replication lists) chosen by los_id
 * or by los_code (repeatable, exactly one of the two kinds; more distinct
 * values than advertised → 400). hei_id is required once and must be the
 * local HEI (anything else → 400). lois_before, lois_after and los_at_date
 * must be YYYY-mm-dd dates; the first two filter the instances,
 * los_at_date is accepted and ignored (SMILE keeps no history).
 *
 * SMILE has no teaching calendar: a course taught in the first (second)
 * semester gets one instance in the current academic year, with the dates
 * of [courses] first_semester (second_semester), by default 1 September
 * to 31 January (1 February to 30 June), carrying its ECTS credits,
 * language of instruction and hours. The academic year begins on the
 * first day of the first semester. SMILE's course title (libelle) has no
 * language of its own, so <title> goes without xml:lang.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "api_db.h"
#include "req.h"
#include "xmlw.h"

#define COURSES_NS "https://github.com/erasmus-without-paper/ewp-specs-api-courses/tree/stable-v1"
#define COURSES_ENTRY_NS                                                                           \
	"https://github.com/erasmus-without-paper/ewp-specs-api-courses/blob/stable-v1/"           \
	"manifest-entry.xsd"

#define COURSES_MAX_IDS   10
#define COURSES_MAX_CODES 10

/*
 * Element stream as in api_ounits.c: (group, pos, part, sub, elem, attr,
 * attr_value, text), with a marker row of group 0 when hei_id is the local
 * HEI. key is the expression matched against $2 (constants only).
 */
#define COURSES_SQL(key)                                                                           \
	"WITH h AS (SELECT id FROM smile.etablissement WHERE schac_id::text = $1 AND is_local),"   \
	" u AS ("                                                                                  \
	" SELECT c.*, array_position($2::text[], " key ") AS pos,"                                 \
	"  (SELECT o.ounit_id::text FROM smile.composante o JOIN h ON h.id = o.etablissement_id"   \
	"   WHERE o.id = f.composante_id AND o.is_exposed) AS ounit"                               \
	" FROM smile.cours c LEFT JOIN smile.formation f ON f.id = c.formation_id"                 \
	" WHERE EXISTS (SELECT 1 FROM h) AND c.open_to_mobility"                                   \
	"  AND (f.id IS NULL OR f.open_to_mobility) AND " key " = ANY ($2::text[])),"              \
	" y AS (SELECT extract(year FROM $5::date)::int AS y),"                                    \
	" l AS (SELECT u.id, u.pos, s.n, 'CRI/' || u.id::text || '-' || y.y::text || '-S' ||"      \
	"  s.n::text AS loi, s.st, s.en, u.ects, u.language, u.hours"                              \
	"  FROM u CROSS JOIN y CROSS JOIN LATERAL (VALUES"                                         \
	"   (1, $5::date, $6::date, u.s1),"                                                        \
	"   (2, $7::date, $8::date, u.s2)) AS s (n, st, en, t)"                                    \
	"  WHERE s.t AND ($3::date IS NULL OR s.en < $3::date)"                                    \
	"  AND ($4::date IS NULL OR s.st > $4::date))"                                             \
	" SELECT 0::bigint AS grp, 0 AS pos, 0 AS part, 0 AS sub, 'hei' AS elem,"                  \
	"  NULL::text AS attr, NULL::text AS attr_value, NULL::text AS txt FROM h"                 \
	" UNION ALL SELECT id, pos, 1, 0, 'los-id', NULL, NULL, 'CR/' || id::text FROM u"          \
	" UNION ALL SELECT id, pos, 2, 0, 'los-code', NULL, NULL, code::text FROM u"               \
	" UNION ALL SELECT id, pos, 3, 0, 'ounit-id', NULL, NULL, ounit FROM u"                    \
	" UNION ALL SELECT id, pos, 4, 0, 'title', NULL, NULL, title FROM u"                       \
	" UNION ALL SELECT id, pos, 5, 0, 'type', NULL, NULL, 'Course' FROM u"                     \
	" UNION ALL SELECT id, pos, 6, 0, 'description', NULL, NULL,"                              \
	"  nullif(btrim(description), '') FROM u"                                                  \
	" UNION ALL SELECT DISTINCT id, pos, 7, 0, '+specifies', NULL, NULL, '' FROM l"            \
	" UNION ALL SELECT l.id, l.pos, 8, l.n * 100 + d.k, d.e, NULL, NULL, d.t FROM l"           \
	"  CROSS JOIN LATERAL (VALUES (0, '+learningOpportunityInstance', ''),"                    \
	"   (1, 'loi-id', l.loi), (2, 'start', l.st::text), (3, 'end', l.en::text),"               \
	"   (4, '+credit', CASE WHEN l.ects IS NOT NULL THEN '' END),"                             \
	"   (5, 'scheme', CASE WHEN l.ects IS NOT NULL THEN 'ects' END),"                          \
	"   (6, 'value', l.ects::text),"                                                           \
	"   (7, '-credit', CASE WHEN l.ects IS NOT NULL THEN '' END),"                             \
	"   (8, 'languageOfInstruction', l.language::text),"                                       \
	"   (9, 'engagementHours', l.hours::text),"                                                \
	"   (10, '-learningOpportunityInstance', '')) AS d (k, e, t)"                              \
	" UNION ALL SELECT DISTINCT id, pos, 9, 0, '-specifies', NULL, NULL, '' FROM l"            \
	" ORDER BY 2, 1, 3, 4"

static const char courses_sql_ids[] = COURSES_SQL("'CR/' || c.id::text");
static const char courses_sql_codes[] = COURSES_SQL("c.code::text");

static void
courses_done(struct req *rq, PGresult *res)
{
	struct buf b;
	int rc;

	if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "0") != 0) {
		req_error(rq, 400,
		          "hei_id \"%s\" is not an institution whose courses are served here",
		          form_get(&rq->form, "hei_id"));
		return;
	}
	buf_init(&b, 16 * 1024 * 1024);
	rc = buf_addstr(&b, XMLW_DECL "<courses-response xmlns=\"" COURSES_NS "\">");
	if (rc == 0)
		rc = api_db_write_rows(&b, res, 4, "learningOpportunitySpecification");
	if (rc == 0)
		rc = buf_addstr(&b, "</courses-response>\n");
	api_db_send(rq, &b, rc, "courses");
}

struct courses_kind {
	const char *param; /* request parameter */
	const char *limit; /* manifest element stating the maximum */
	int max;
	const char *sql;
};

static const struct courses_kind courses_by_id = {"los_id", "max-los-ids", COURSES_MAX_IDS,
                                                  courses_sql_ids};
static const struct courses_kind courses_by_code = {"los_code", "max-los-codes", COURSES_MAX_CODES,
                                                    courses_sql_codes};

/* Whether s is a YYYY-mm-dd date that exists. */
static bool
courses_date_ok(const char *s)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !api_digits(s, 4, &y) ||
	    !api_digits(s + 5, 2, &m) || !api_digits(s + 8, 2, &d))
		return false;
	if (y < 1 || m < 1 || m > 12 || d < 1)
		return false;
	return d <= mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

/* The value of the optional single date parameter name in *out (NULL when
 * absent); false (request answered) when repeated or malformed. */
static bool
courses_date_param(struct req *rq, const char *name, const char **out)
{
	size_t n = form_count(&rq->form, name);

	*out = form_get(&rq->form, name);
	if (n > 1) {
		req_error(rq, 400, "%s may be given at most once (got %zu)", name, n);
		return false;
	}
	if (*out != NULL && !courses_date_ok(*out)) {
		req_error(rq, 400, "%s must be a date in the YYYY-mm-dd format", name);
		return false;
	}
	return true;
}

/*
 * The four dates of this academic year's semesters ("YYYY-MM-DD" x 4):
 * the year begins on the first day of the first semester; a later date
 * before that day in the calendar falls in the next civil year.
 */
static void
courses_calendar(const struct conf *c, time_t now, char out[4][32])
{
	const struct conf_semester *s = c->semesters;
	struct tm tm;
	int year;

	gmtime_r(&now, &tm);
	year = tm.tm_year + 1900;
	if (tm.tm_mon + 1 < s[0].start_month ||
	    (tm.tm_mon + 1 == s[0].start_month && tm.tm_mday < s[0].start_day))
		year--;
	for (int i = 0; i < 4; i++) {
		int m = i % 2 ? s[i / 2].end_month : s[i / 2].start_month;
		int d = i % 2 ? s[i / 2].end_day : s[i / 2].start_day;
		bool next = m < s[0].start_month || (m == s[0].start_month && d < s[0].start_day);

		snprintf(out[i], sizeof(out[i]), "%04d-%02d-%02d", (year + next) % 10000, m, d);
	}
}

static void
courses_handle(struct req *rq)
{
	char cal[4][32];
	size_t nhei = form_count(&rq->form, "hei_id");
	size_t nids = form_count(&rq->form, "los_id");
	size_t ncodes = form_count(&rq->form, "los_code");
	const struct courses_kind *k;
	const char *before, *after, *at;
	char *vals;
	int n;

	if (nhei != 1) {
		req_error(rq, 400, "hei_id is required exactly once (got %zu)", nhei);
		return;
	}
	if (!api_db_valid_id(form_get(&rq->form, "hei_id"))) {
		req_error(rq, 400,
		          "hei_id is not an EWP identifier (1 to 64 printable ASCII "
		          "characters)");
		return;
	}
	if ((nids > 0) == (ncodes > 0)) {
		req_error(rq, 400, "give either los_id or los_code (got %zu and %zu)", nids,
		          ncodes);
		return;
	}
	if (!courses_date_param(rq, "lois_before", &before) ||
	    !courses_date_param(rq, "lois_after", &after) ||
	    !courses_date_param(rq, "los_at_date", &at))
		return;
	k = nids > 0 ? &courses_by_id : &courses_by_code;
	if ((n = api_db_param_array(rq, k->param, k->max, &vals)) > k->max) {
		req_error(rq, 400, "more than %s (%d) distinct %s values", k->limit, k->max,
		          k->param);
		return;
	}
	if (n == -1) {
		req_error(rq, 400, "%s values too large", k->param);
		return;
	}
	courses_calendar(rq->d->conf, time(NULL), cal);
	api_db_query(rq, k->sql, 8,
	             (const char *const[]){form_get(&rq->form, "hei_id"), vals, before, after,
	                                   cal[0], cal[1], cal[2], cal[3]},
	             courses_done);
	free(vals);
}

static int
courses_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	if (api_manifest_head(e, c, out) == -1)
		return -1;
	return buf_printf(out,
	                  "<max-los-ids>%d</max-los-ids>"
	                  "<max-los-codes>%d</max-los-codes></courses>",
	                  COURSES_MAX_IDS, COURSES_MAX_CODES);
}

const struct api_entry api_courses_entry = {
    .name = "courses",
    .ns = COURSES_ENTRY_NS,
    .version = "0.7.1",
    .path = "/ewp/courses",
    .methods = API_GET | API_POST,
    .signed_only = true,
    .metric = METRICS_API_COURSES,
    .handle = courses_handle,
    .manifest = courses_manifest,
};
