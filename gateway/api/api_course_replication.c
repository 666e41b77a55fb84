/*
 * api_course_replication.c - Simple Course Replication v1: the los-ids of
 * the exchange-student catalogue of our HEI (hei_id, required, single;
 * anything but the local HEI → 400), i.e. the courses open to mobility in
 * a programme open to mobility (or in none). modified_since (optional,
 * single, an xs:dateTime with a time part) keeps only the courses changed
 * after it, or whose programme changed after it; a date in the future gives
 * an empty answer.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "api.h"
#include "api_db.h"
#include "req.h"
#include "xmlw.h"

#define CREPL_NS                                                                                   \
	"https://github.com/erasmus-without-paper/ewp-specs-api-course-replication/tree/stable-v1"
#define CREPL_ENTRY_NS                                                                             \
	"https://github.com/erasmus-without-paper/ewp-specs-api-course-replication/blob/"          \
	"stable-v1/manifest-entry.xsd"

/*
 * A marker row (k 0) when hei_id is the local HEI, then one row per course
 * (k its key). Courses are the local HEI's catalogue: nothing is returned
 * for any other hei_id.
 */
static const char crepl_sql[] =
    "WITH h AS (SELECT id FROM smile.etablissement WHERE schac_id::text = $1 AND is_local)"
    " SELECT 0::bigint AS k, NULL::text AS los_id FROM h"
    " UNION ALL SELECT c.id, 'CR/' || c.id::text FROM smile.cours c"
    "  LEFT JOIN smile.formation f ON f.id = c.formation_id"
    "  WHERE EXISTS (SELECT 1 FROM h) AND c.open_to_mobility"
    "  AND (f.id IS NULL OR f.open_to_mobility)"
    "  AND ($2::timestamptz IS NULL"
    "   OR greatest(c.modified_at, coalesce(f.modified_at, c.modified_at)) > $2::timestamptz)"
    " ORDER BY 1";

static void
crepl_done(struct req *rq, PGresult *res)
{
	struct buf b;
	int rc, n = PQntuples(res);

	if (n == 0 || strcmp(PQgetvalue(res, 0, 0), "0") != 0) {
		req_error(rq, 400,
		          "hei_id \"%s\" is not an institution whose courses are served here",
		          form_get(&rq->form, "hei_id"));
		return;
	}
	buf_init(&b, 16 * 1024 * 1024);
	rc = buf_addstr(&b, XMLW_DECL "<course-replication-response xmlns=\"" CREPL_NS "\">");
	for (int i = 1; rc == 0 && i < n; i++) {
		rc = buf_addstr(&b, "<los-id>");
		if (rc == 0)
			rc = xmlw_escape(&b, PQgetvalue(res, i, 1));
		if (rc == 0)
			rc = buf_addstr(&b, "</los-id>");
	}
	if (rc == 0)
		rc = buf_addstr(&b, "</course-replication-response>\n");
	api_db_send(rq, &b, rc, "course-replication");
}

static void
crepl_handle(struct req *rq)
{
	size_t nhei = form_count(&rq->form, "hei_id");
	size_t nms = form_count(&rq->form, "modified_since");
	const char *ms = form_get(&rq->form, "modified_since");

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
	if (nms > 1) {
		req_error(rq, 400, "modified_since may be given at most once (got %zu)", nms);
		return;
	}
	if (ms != NULL && !api_datetime_ok(ms)) {
		req_error(rq, 400,
		          "modified_since must be an xs:dateTime with a time part, e.g. "
		          "2004-02-12T15:19:21+01:00");
		return;
	}
	api_db_query(rq, crepl_sql, 2, (const char *const[]){form_get(&rq->form, "hei_id"), ms},
	             crepl_done);
}

static int
crepl_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	if (api_manifest_head(e, c, out) == -1)
		return -1;
	return buf_addstr(out, "<allows-anonymous-access>false</allows-anonymous-access>"
	                       "<supports-modified-since>true</supports-modified-since>"
	                       "</simple-course-replication>");
}

const struct api_entry api_course_replication_entry = {
    .name = "simple-course-replication",
    .ns = CREPL_ENTRY_NS,
    .version = "1.0.0",
    .path = "/ewp/course-replication",
    .methods = API_GET | API_POST,
    .signed_only = true,
    .metric = METRICS_API_COURSE_REPLICATION,
    .handle = crepl_handle,
    .manifest = crepl_manifest,
};
