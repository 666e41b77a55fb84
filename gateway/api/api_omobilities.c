/*
 * api_omobilities.c - Outgoing Mobilities v3, get and index: our outgoing
 * students (smile.mobility rows with is_outgoing) as the receiving HEI
 * sees them. The update endpoint is in api_omobilities_update.c; the
 * manifest entry, written here, names all three.
 *
 * Who sees what (ewp-notes 1.3): a mobility is shown to a caller whose key
 * covers its receiving HEI (MUST) or its sending HEI, i.e. us (SHOULD);
 * to anyone else it does not exist: left out of get, absent from index,
 * which lists exactly what get would return to the same caller.
 *
 * get: omobility_id (repeatable, required, at most OMOB_MAX_IDS distinct
 * values; a malformed one is ignored as an unknown one); sending_hei_id (optional: v3 dropped it,
 * v2 callers still send it; when given it must be the HEI this node serves). index: the same
 * sending_hei_id, receiving_hei_id (repeatable, OR-ed), one
 * receiving_academic_year_id (YYYY/YYYY), one modified_since
 * (xs:dateTime). The XML of each mobility is written by the database
 * (smile.omobility_xml, sql/0006), the very value whose changes queue the
 * CNRs.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_db.h"
#include "api_omobilities.h"
#include "req.h"
#include "xmalloc.h"
#include "xmlw.h"

#define OMOB_GET_NS                                                                                \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/"       \
	"endpoints/get-response.xsd"
#define OMOB_INDEX_NS                                                                              \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/"       \
	"endpoints/index-response.xsd"

/*
 * $1 ids (text[]), $2 the caller's HEIs (text[]). Our mobilities only
 * (the sending HEI is the local etablissement), in request order.
 */
static const char get_sql[] =
    "SELECT smile.omobility_xml(m)::text FROM smile.mobility m"
    " JOIN smile.etablissement e ON e.is_local AND e.schac_id = m.sending_hei_id"
    " WHERE m.is_outgoing AND m.omobility_id = ANY ($1::text[])"
    " AND (m.receiving_hei_id = ANY ($2::text[]) OR m.sending_hei_id = ANY ($2::text[]))"
    " ORDER BY array_position($1::text[], m.omobility_id::text)";

/*
 * $1 the caller's HEIs, $2 receiving_hei_id values (NULL: any), $3
 * receiving_academic_year_id (NULL: any), $4 modified_since (NULL: any).
 */
static const char index_sql[] =
    "SELECT m.omobility_id FROM smile.mobility m"
    " JOIN smile.etablissement e ON e.is_local AND e.schac_id = m.sending_hei_id"
    " WHERE m.is_outgoing"
    " AND (m.receiving_hei_id = ANY ($1::text[]) OR m.sending_hei_id = ANY ($1::text[]))"
    " AND ($2::text[] IS NULL OR m.receiving_hei_id = ANY ($2::text[]))"
    " AND ($3::text IS NULL OR m.receiving_academic_year_id = $3)"
    " AND ($4::timestamptz IS NULL OR m.modified_at > $4::timestamptz)"
    " ORDER BY m.omobility_id";

int
api_omobilities_callers(const struct req *rq, char **out)
{
	return api_db_literal((const char *const *)rq->caller_heis, (int)rq->ncaller_heis, out);
}

/* 0 when sending_hei_id is absent or ours; otherwise rq is answered. */
static int
omob_check_sending_hei(struct req *rq)
{
	size_t n = form_count(&rq->form, "sending_hei_id");
	const char *hei = form_get(&rq->form, "sending_hei_id");

	if (n > 1) {
		req_error(rq, 400, "sending_hei_id may be given at most once (got %zu)", n);
		return -1;
	}
	if (n == 1 && strcmp(hei, rq->d->conf->hei_id) != 0) {
		req_error(rq, 400,
		          "sending_hei_id \"%s\" is not served here: this node serves the outgoing "
		          "mobilities of %s only",
		          hei, rq->d->conf->hei_id);
		return -1;
	}
	return 0;
}

static void
get_done(struct req *rq, PGresult *res)
{
	struct buf b;
	int rc;

	buf_init(&b, 16 * 1024 * 1024);
	rc = buf_addstr(&b, XMLW_DECL "<omobilities-get-response xmlns=\"" OMOB_GET_NS "\">");
	for (int i = 0; rc == 0 && i < PQntuples(res); i++)
		rc = buf_addstr(&b, PQgetvalue(res, i, 0));
	if (rc == 0)
		rc = buf_addstr(&b, "</omobilities-get-response>\n");
	api_db_send(rq, &b, rc, "omobilities get");
}

static void
get_handle(struct req *rq)
{
	char *ids, *callers;
	int n;

	if (omob_check_sending_hei(rq) == -1)
		return;
	if (form_count(&rq->form, "omobility_id") == 0) {
		req_error(rq, 400,
		          "omobility_id is required (repeat it for several mobilities, at most %d "
		          "distinct values)",
		          OMOB_MAX_IDS);
		return;
	}
	if ((n = api_db_param_array(rq, "omobility_id", OMOB_MAX_IDS, &ids)) > OMOB_MAX_IDS) {
		req_error(rq, 400, "more than max-omobility-ids (%d) distinct omobility_id values",
		          OMOB_MAX_IDS);
		return;
	}
	if (n == -1) {
		req_error(rq, 400, "omobility_id values too large");
		return;
	}
	if (api_omobilities_callers(rq, &callers) == -1) {
		free(ids);
		req_error(rq, 500, "the caller's HEIs do not fit in a query");
		return;
	}
	api_db_query(rq, get_sql, 2, (const char *const[]){ids, callers}, get_done);
	free(ids);
	free(callers);
}

/* YYYY/YYYY, the second year the first or the next (as EWP uses them). */
static bool
omob_year_ok(const char *s)
{
	int a, b;

	return strlen(s) == 9 && s[4] == '/' && api_digits(s, 4, &a) && api_digits(s + 5, 4, &b) &&
	       (b == a || b == a + 1);
}

static void
index_done(struct req *rq, PGresult *res)
{
	struct buf b;
	int rc;

	buf_init(&b, 16 * 1024 * 1024);
	rc = buf_addstr(&b, XMLW_DECL "<omobilities-index-response xmlns=\"" OMOB_INDEX_NS "\">");
	for (int i = 0; rc == 0 && i < PQntuples(res); i++)
		rc = xmlw_elem(&b, "omobility-id", PQgetvalue(res, i, 0));
	if (rc == 0)
		rc = buf_addstr(&b, "</omobilities-index-response>\n");
	api_db_send(rq, &b, rc, "omobilities index");
}

static void
index_handle(struct req *rq)
{
	size_t nyear = form_count(&rq->form, "receiving_academic_year_id");
	size_t nms = form_count(&rq->form, "modified_since");
	const char *year = form_get(&rq->form, "receiving_academic_year_id");
	const char *ms = form_get(&rq->form, "modified_since");
	char *callers, *receivers = NULL;

	if (omob_check_sending_hei(rq) == -1)
		return;
	if (nyear > 1) {
		req_error(rq, 400, "receiving_academic_year_id may be given at most once (got %zu)",
		          nyear);
		return;
	}
	if (nyear == 1 && !omob_year_ok(year)) {
		req_error(rq, 400,
		          "receiving_academic_year_id \"%s\" is not an academic year id such as "
		          "2026/2027",
		          year);
		return;
	}
	if (nms > 1) {
		req_error(rq, 400, "modified_since may be given at most once (got %zu)", nms);
		return;
	}
	if (nms == 1 && !api_datetime_ok(ms)) {
		req_error(rq, 400,
		          "modified_since \"%s\" is not an xs:dateTime with a time, such as "
		          "2026-02-12T15:19:21+01:00",
		          ms);
		return;
	}
	if (form_count(&rq->form, "receiving_hei_id") > 0) {
		int n = api_db_param_array(rq, "receiving_hei_id", EWP_MAX_PARAMS, &receivers);

		if (n == -1) {
			req_error(rq, 400, "receiving_hei_id values too large");
			return;
		}
		if (receivers == NULL) /* only values that are no ids: they match nothing */
			receivers = xstrdup("{}");
	}
	if (api_omobilities_callers(rq, &callers) == -1) {
		free(receivers);
		req_error(rq, 500, "the caller's HEIs do not fit in a query");
		return;
	}
	api_db_query(
	    rq, index_sql, 4,
	    (const char *const[]){callers, receivers, nyear ? year : NULL, nms ? ms : NULL},
	    index_done);
	free(callers);
	free(receivers);
}

static int
omob_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	static const char *const urls[] = {"get-url", "index-url", "update-url"};
	const char *paths[] = {api_omobilities_get_entry.path, api_omobilities_index_entry.path,
	                       api_omobilities_update_entry.path};

	if (buf_printf(out, "<%s xmlns=\"%s\" version=\"%s\">", e->name, e->ns, e->version) == -1 ||
	    api_manifest_http_security(out) == -1)
		return -1;
	for (size_t i = 0; i < 3; i++)
		if (buf_printf(out, "<%s>", urls[i]) == -1 ||
		    xmlw_escape(out, c->public_url) == -1 || xmlw_escape(out, paths[i]) == -1 ||
		    buf_printf(out, "</%s>", urls[i]) == -1)
			return -1;
	return buf_printf(out, "<max-omobility-ids>%d</max-omobility-ids></%s>", OMOB_MAX_IDS,
	                  e->name);
}

/* The index and update endpoints are in the get entry's manifest element. */
int
api_omobilities_no_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	(void)e, (void)c, (void)out;
	return 0;
}

const struct api_entry api_omobilities_get_entry = {
    .name = "omobilities",
    .ns = OMOB_ENTRY_NS,
    .version = "3.0.0",
    .path = "/ewp/omobilities/v3/get",
    .methods = API_GET | API_POST,
    .signed_only = true,
    .metric = METRICS_API_OMOBILITIES,
    .handle = get_handle,
    .manifest = omob_manifest,
};

const struct api_entry api_omobilities_index_entry = {
    .name = "omobilities",
    .ns = OMOB_ENTRY_NS,
    .version = "3.0.0",
    .path = "/ewp/omobilities/v3/index",
    .methods = API_GET | API_POST,
    .signed_only = true,
    .metric = METRICS_API_OMOBILITIES,
    .handle = index_handle,
    .manifest = api_omobilities_no_manifest,
};
