/*
 * api_omobility_las.c - Outgoing Mobility Learning Agreements v1.2, the
 * sending side: the learning agreements of our outgoing students
 * (smile.mobility.is_outgoing, sql/0008_las_sending.sql), served to their
 * receiving HEI (MUST) and to the sending HEI, us (SHOULD), as in
 * OMobilities: a caller whose key covers the mobility's receiving or
 * sending HEI sees it; anyone else sees nothing, as if it did not exist.
 * Only the receiving HEI may update it (api_omobility_las_update.c).
 *
 *   get    sending_hei_id (once, ours, else 400), omobility_id (1 to
 *          LAS_MAX_OMOBILITY_IDS distinct values): the la elements, as
 *          assembled by smile.la_document() from the header and versions
 *   index  sending_hei_id (once; another HEI's: empty list), filters
 *          receiving_hei_id (repeatable), receiving_academic_year_id,
 *          global_id, mobility_type, modified_since: the omobility-ids get
 *          would return to the same caller. Every LA we hold was signed
 *          by the student and the sending HEI (`ewpctl la propose`
 *          requires both signatures), so every servable one is listed.
 *   stats  counts per receiving academic year (from 2021/2022), GET, any
 *          authenticated caller (the EWP Stats Portal among them)
 *   update api_omobility_las_update.c
 *
 * The API is one manifest entry with four URLs: the get entry writes it,
 * the three others write nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_db.h"
#include "api_omobilities.h"
#include "api_omobility_las.h"
#include "json.h"
#include "req.h"
#include "xmalloc.h"
#include "xmlw.h"

#define LAS_ENTRY_NS LAS_BASE_NS "manifest-entry.xsd"
#define LAS_GET_NS   LAS_BASE_NS "endpoints/get-response.xsd"
#define LAS_INDEX_NS LAS_BASE_NS "endpoints/index-response.xsd"
#define LAS_STATS_NS LAS_BASE_NS "endpoints/stats-response.xsd"

#define LAS_MAX_OMOBILITY_IDS 100

/* $1 sending_hei_id, $2 omobility_ids (text[]), $3 caller's HEIs (jsonb). */
static const char las_get_sql[] =
    "SELECT d.doc FROM smile.mobility m"
    " JOIN smile.learning_agreement la ON la.mobility_id = m.id"
    " CROSS JOIN LATERAL (SELECT smile.la_document(la.id) AS doc) d"
    " WHERE m.is_outgoing AND m.sending_hei_id = $1 AND m.omobility_id = ANY ($2::text[])"
    " AND ($3::jsonb ? m.receiving_hei_id OR $3::jsonb ? m.sending_hei_id) AND d.doc IS NOT NULL"
    " ORDER BY array_position($2::text[], m.omobility_id::text)";

/* $1 sending_hei_id, $2 caller's HEIs, $3 receiving_hei_ids (text[] or
 * NULL), $4 year, $5 global_id, $6 activity attributes, $7 modified_since. */
static const char las_index_sql[] =
    "SELECT o.omobility_id FROM smile.la_outgoing o"
    " WHERE o.sending_hei_id = $1"
    " AND ($2::jsonb ? o.receiving_hei_id OR $2::jsonb ? o.sending_hei_id)"
    " AND ($3::text[] IS NULL OR o.receiving_hei_id = ANY ($3::text[]))"
    " AND ($4::text IS NULL OR o.receiving_academic_year_id = $4)"
    " AND ($5::text IS NULL OR o.global_id = $5)"
    " AND ($6::text IS NULL OR o.activity_attributes = $6)"
    " AND ($7::timestamptz IS NULL OR o.modified_at > $7::timestamptz)"
    " AND (o.has_first_version OR o.proposal_state IS NOT NULL)"
    " ORDER BY o.omobility_id";

/* $1 our HEI. The latest version is "approved" when no proposal follows
 * the approved ones, "rejected" when the latest proposal was commented. */
static const char las_stats_sql[] =
    "SELECT receiving_academic_year_id, count(*),"
    " count(*) FILTER (WHERE has_first_version AND NOT has_approved_changes"
    "  AND proposal_state IS NULL),"
    " count(*) FILTER (WHERE has_first_version AND (has_approved_changes"
    "  OR proposal_state IS NOT NULL)),"
    " count(*) FILTER (WHERE has_first_version AND proposal_state IS NULL),"
    " count(*) FILTER (WHERE proposal_state = 'commented'),"
    " count(*) FILTER (WHERE proposal_state = 'current')"
    " FROM smile.la_outgoing WHERE sending_hei_id = $1"
    " AND receiving_academic_year_id >= '2021/2022'"
    " AND (has_first_version OR proposal_state IS NOT NULL)"
    " GROUP BY 1 ORDER BY 1";

char *
las_callers_json(const struct req *rq)
{
	struct buf b;
	int rc;
	char *s;

	buf_init(&b, 1024 * 1024);
	rc = buf_addstr(&b, "[");
	for (size_t i = 0; i < rq->ncaller_heis && rc == 0; i++)
		rc = (i > 0 ? buf_addstr(&b, ",") : 0) ?: json_str(&b, rq->caller_heis[i]);
	rc = rc ?: buf_addstr(&b, "]");
	s = rc == 0 ? xstrndup(b.data, b.len) : NULL;
	buf_free(&b);
	return s;
}

/* The single value of a parameter that may appear at most once: 0 with
 * *out (NULL when absent), -1 when rq was answered (repeated). */
static int
las_single(struct req *rq, const char *name, const char **out)
{
	size_t n = form_count(&rq->form, name);

	*out = NULL;
	if (n > 1) {
		req_error(rq, 400, "%s must not be repeated (got %zu values)", name, n);
		return -1;
	}
	if (n == 1)
		*out = form_get(&rq->form, name);
	return 0;
}

/* sending_hei_id: required, exactly once. NULL when rq was answered. */
static const char *
las_sending_hei(struct req *rq)
{
	size_t n = form_count(&rq->form, "sending_hei_id");

	if (n != 1) {
		req_error(rq, 400, "sending_hei_id is required exactly once (got %zu)", n);
		return NULL;
	}
	return form_get(&rq->form, "sending_hei_id");
}

static void
las_get_done(struct req *rq, PGresult *res)
{
	struct buf b;
	int rc;

	buf_init(&b, EWP_MAX_RESPONSE_BYTES);
	rc = buf_addstr(&b, XMLW_DECL "<omobility-las-get-response xmlns=\"" LAS_GET_NS "\">");
	for (int i = 0; i < PQntuples(res) && rc == 0; i++)
		rc = buf_addstr(&b, PQgetvalue(res, i, 0));
	rc = rc ?: buf_addstr(&b, "</omobility-las-get-response>\n");
	api_db_send(rq, &b, rc, "omobility-las get");
}

static void
las_get_handle(struct req *rq)
{
	const char *hei;
	char *ids, *callers;
	int n;

	if ((hei = las_sending_hei(rq)) == NULL)
		return;
	if (strcmp(hei, rq->d->conf->hei_id) != 0) {
		req_error(rq, 400,
		          "sending_hei_id \"%s\" is not covered by this server (it serves the "
		          "learning agreements of %s)",
		          hei, rq->d->conf->hei_id);
		return;
	}
	if (form_count(&rq->form, "omobility_id") == 0) {
		req_error(rq, 400, "omobility_id is required (repeat it for several mobilities)");
		return;
	}
	n = api_db_param_array(rq, "omobility_id", LAS_MAX_OMOBILITY_IDS, &ids);
	if (n > LAS_MAX_OMOBILITY_IDS) {
		req_error(rq, 400, "more than max-omobility-ids (%d) distinct omobility_id values",
		          LAS_MAX_OMOBILITY_IDS);
		return;
	}
	if (n == -1) {
		req_error(rq, 400, "omobility_id values too large");
		return;
	}
	if ((callers = las_callers_json(rq)) == NULL) {
		free(ids);
		req_error(rq, 500, "the caller's HEI list is too large");
		return;
	}
	api_db_query(rq, las_get_sql, 3, (const char *const[]){hei, ids, callers}, las_get_done);
	free(callers);
	free(ids);
}

static void
las_index_done(struct req *rq, PGresult *res)
{
	struct buf b;
	int rc;

	buf_init(&b, EWP_MAX_RESPONSE_BYTES);
	rc = buf_addstr(&b, XMLW_DECL "<omobility-las-index-response xmlns=\"" LAS_INDEX_NS "\">");
	for (int i = 0; i < PQntuples(res) && rc == 0; i++)
		rc = xmlw_elem(&b, "omobility-id", PQgetvalue(res, i, 0));
	rc = rc ?: buf_addstr(&b, "</omobility-las-index-response>\n");
	api_db_send(rq, &b, rc, "omobility-las index");
}

/* mobility_type values and the smile.mobility.activity_attributes they select. */
static const char *
las_mobility_type(const char *v)
{
	if (strcmp(v, "semester") == 0 || strcmp(v, "long-term") == 0)
		return "long-term";
	if (strcmp(v, "blended") == 0 || strcmp(v, "short-term-blended") == 0)
		return "short-term-blended";
	if (strcmp(v, "doctoral") == 0 || strcmp(v, "short-term-doctoral") == 0)
		return "short-term-doctoral";
	return NULL;
}

static void
las_index_handle(struct req *rq)
{
	const char *hei, *year, *global_id, *type, *attrs = NULL, *since;
	char *recv = NULL, *callers;
	int n;

	if ((hei = las_sending_hei(rq)) == NULL ||
	    las_single(rq, "receiving_academic_year_id", &year) ||
	    las_single(rq, "global_id", &global_id) || las_single(rq, "mobility_type", &type) ||
	    las_single(rq, "modified_since", &since))
		return;
	if (year && !(strlen(year) == 9 && year[4] == '/' && strspn(year, "0123456789") == 4 &&
	              strspn(year + 5, "0123456789") == 4)) {
		req_error(rq, 400, "receiving_academic_year_id \"%s\" is not of the form YYYY/YYYY",
		          year);
		return;
	}
	if (type && (attrs = las_mobility_type(type)) == NULL) {
		req_error(rq, 400,
		          "mobility_type \"%s\" is unknown (semester, blended or doctoral; "
		          "long-term, short-term-blended or short-term-doctoral)",
		          type);
		return;
	}
	if (since && !api_datetime_ok(since)) {
		req_error(rq, 400,
		          "modified_since \"%s\" is not an xs:dateTime (e.g. "
		          "2019-04-02T15:19:21+01:00)",
		          since);
		return;
	}
	if (form_count(&rq->form, "receiving_hei_id") > 0) {
		/* Values that are no identifier match nothing (allowed, not ignored). */
		n = api_db_param_array(rq, "receiving_hei_id", EWP_MAX_PARAMS, &recv);
		if (n == -1 || n > EWP_MAX_PARAMS) {
			req_error(rq, 400, "receiving_hei_id values too large");
			return;
		}
	}
	if ((callers = las_callers_json(rq)) == NULL) {
		free(recv);
		req_error(rq, 500, "the caller's HEI list is too large");
		return;
	}
	api_db_query(rq, las_index_sql, 7,
	             (const char *const[]){hei, callers, recv, year, global_id, attrs, since},
	             las_index_done);
	free(callers);
	free(recv);
}

static void
las_stats_done(struct req *rq, PGresult *res)
{
	static const char *const counts[] = {
	    "la-outgoing-total",
	    "la-outgoing-not-modified-after-approval",
	    "la-outgoing-modified-after-approval",
	    "la-outgoing-latest-version-approved",
	    "la-outgoing-latest-version-rejected",
	    "la-outgoing-latest-version-awaiting",
	};
	struct buf b;
	int rc;

	buf_init(&b, 1024 * 1024);
	rc = buf_addstr(&b, XMLW_DECL "<las-outgoing-stats-response xmlns=\"" LAS_STATS_NS "\">");
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		rc = buf_addstr(&b, "<academic-year-la-stats>")
		         ?: xmlw_elem(&b, "receiving-academic-year-id", PQgetvalue(res, i, 0));
		for (int k = 0; k < 6 && rc == 0; k++)
			rc = xmlw_elem(&b, counts[k], PQgetvalue(res, i, k + 1));
		rc = rc ?: buf_addstr(&b, "</academic-year-la-stats>");
	}
	rc = rc ?: buf_addstr(&b, "</las-outgoing-stats-response>\n");
	api_db_send(rq, &b, rc, "omobility-las stats");
}

static void
las_stats_handle(struct req *rq)
{
	api_db_query(rq, las_stats_sql, 1, (const char *const[]){rq->d->conf->hei_id},
	             las_stats_done);
}

static int
las_url(struct buf *out, const char *elem, const struct conf *c, const struct api_entry *e)
{
	if (buf_printf(out, "<%s>", elem) == -1 || xmlw_escape(out, c->public_url) == -1 ||
	    xmlw_escape(out, e->path) == -1)
		return -1;
	return buf_printf(out, "</%s>", elem);
}

static int
las_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	if (buf_printf(out, "<%s xmlns=\"%s\" version=\"%s\">", e->name, e->ns, e->version) == -1 ||
	    api_manifest_http_security(out) == -1 || las_url(out, "get-url", c, e) == -1 ||
	    las_url(out, "index-url", c, &api_las_index_entry) == -1 ||
	    las_url(out, "update-url", c, &api_las_update_entry) == -1 ||
	    las_url(out, "stats-url", c, &api_las_stats_entry) == -1)
		return -1;
	return buf_printf(out, "<max-omobility-ids>%d</max-omobility-ids></%s>",
	                  LAS_MAX_OMOBILITY_IDS, e->name);
}

/* The other endpoints are in the get entry's manifest element. */
static int
las_no_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	(void)e;
	(void)c;
	(void)out;
	return 0;
}

const struct api_entry api_las_get_entry = {
    .name = "omobility-las",
    .ns = LAS_ENTRY_NS,
    .version = "1.2.0",
    .path = "/ewp/omobility-las/get",
    .methods = API_GET | API_POST,
    .signed_only = true,
    .metric = METRICS_API_OMOBILITY_LAS,
    .handle = las_get_handle,
    .manifest = las_manifest,
};

const struct api_entry api_las_index_entry = {
    .name = "omobility-las",
    .ns = LAS_ENTRY_NS,
    .version = "1.2.0",
    .path = "/ewp/omobility-las/index",
    .methods = API_GET | API_POST,
    .signed_only = true,
    .metric = METRICS_API_OMOBILITY_LAS,
    .handle = las_index_handle,
    .manifest = las_no_manifest,
};

const struct api_entry api_las_stats_entry = {
    .name = "omobility-las",
    .ns = LAS_ENTRY_NS,
    .version = "1.2.0",
    .path = "/ewp/omobility-las/stats",
    .methods = API_GET,
    .signed_only = true,
    .metric = METRICS_API_OMOBILITY_LAS,
    .handle = las_stats_handle,
    .manifest = las_no_manifest,
};
