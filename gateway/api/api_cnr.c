/*
 * api_cnr.c - the shared body of the CNR listeners (OMobility CNR v1 and
 * v2, OMobility LA CNR v1): parameter checks, who may notify for which
 * HEI, the deduplicated re-fetch jobs, the empty answer.
 */
#include <stdlib.h>
#include <string.h>

#include "api_cnr.h"
#include "api_db.h"
#include "json.h"
#include "log.h"
#include "req.h"
#include "xmalloc.h"
#include "xmlw.h"

/*
 * One pending re-fetch per (HEI, API, id): jobs_pending_unique makes a
 * second notification of an id still waiting a no-op, whoever sends it.
 * A job already running is outside that index, so a change notified while
 * the previous fetch is on the wire gets a job of its own, as it should.
 * $1 hei_id, $2 API to call back, $3 the CNR API and $4 its version, $5
 * the notifier's HEIs (jsonb array), $6 sending_hei_id or NULL when the
 * API does not name it (OMobility CNR v2), $7 the distinct ids (text[]),
 * $8 the notification's X-Request-Id: its ewp.message_log row is written
 * after the reply, so the job names it by request id (origin_log_id can
 * be filled from it later).
 */
static const char cnr_sql[] =
    "INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload)"
    " SELECT 'in', 'refetch', $1, $2, i.id,"
    "  jsonb_build_object('omobility_id', i.id, 'sending_hei_id', $6::text,"
    "   'notifier_hei_ids', $5::jsonb, 'cnr_api', $3::text, 'cnr_version', $4::text,"
    "   'cnr_request_id', $8::text)"
    " FROM unnest($7::text[]) WITH ORDINALITY AS i (id, ord) ORDER BY i.ord"
    " ON CONFLICT (direction, kind, hei_id, api, dedupe_key) WHERE status = 'pending'"
    " DO NOTHING RETURNING id";

bool
api_cnr_validator_hei(const char *hei)
{
	return strcmp(hei, "validator-hei01.developers.erasmuswithoutpaper.eu") == 0 ||
	       strcmp(hei, "validator-hei02.developers.erasmuswithoutpaper.eu") == 0;
}

static bool
cnr_caller_covers(const struct req *rq, const char *hei)
{
	for (size_t i = 0; i < rq->ncaller_heis; i++)
		if (strcmp(rq->caller_heis[i], hei) == 0)
			return true;
	return false;
}

static void
cnr_reply(struct req *rq, const struct api_cnr *cnr)
{
	struct buf b;
	int rc;

	buf_init(&b, 1024);
	rc = buf_printf(&b, XMLW_DECL "<%s xmlns=\"%s\"/>\n", cnr->response_root, cnr->response_ns);
	api_db_send(rq, &b, rc, cnr->response_root);
}

void
api_cnr_done(struct req *rq, PGresult *res, const struct api_cnr *cnr)
{
	log_debug("%s: %d re-fetch job(s) queued (%s), the others were pending already", rq->path,
	          PQntuples(res), cnr->fetch_api);
	cnr_reply(rq, cnr);
}

/*
 * The HEI whose objects changed: sending_hei_id when the API has it (the
 * caller must cover it), else one of the caller's HEIs (the smallest, so
 * that repeated notifications land on the same job). NULL when refused.
 */
static const char *
cnr_sending_hei(struct req *rq, const struct api_cnr *cnr)
{
	const char *hei = NULL;

	if (cnr->sending_hei_param && form_count(&rq->form, "sending_hei_id") == 1) {
		hei = form_get(&rq->form, "sending_hei_id");
		if (!cnr_caller_covers(rq, hei)) {
			req_error(rq, 403,
			          "the key that signed this request does not cover sending_hei_id "
			          "\"%s\" in the registry catalogue (it covers %zu HEI(s)%s%s): "
			          "notify only about mobilities of your own HEIs",
			          hei, rq->ncaller_heis, rq->ncaller_heis ? ", e.g. " : "",
			          rq->ncaller_heis ? rq->caller_heis[0] : "");
			return NULL;
		}
		return hei;
	}
	for (size_t i = 0; i < rq->ncaller_heis; i++)
		if (hei == NULL || strcmp(rq->caller_heis[i], hei) < 0)
			hei = rq->caller_heis[i];
	if (hei == NULL)
		req_error(rq, 403,
		          "the key that signed this request covers no HEI in the registry "
		          "catalogue, so there is no sending HEI to fetch from");
	return hei;
}

/* 0 when the parameters are acceptable; else rq is answered. */
static int
cnr_check_params(struct req *rq, const struct api_cnr *cnr)
{
	size_t nids = form_count(&rq->form, "omobility_id"), k = 0;

	if (cnr->sending_hei_param) {
		size_t nhei = form_count(&rq->form, "sending_hei_id");

		if (nhei > 1 || (nhei == 0 && !cnr->sending_hei_optional)) {
			req_error(rq, 400, "sending_hei_id is required exactly once (got %zu)",
			          nhei);
			return -1;
		}
		if (nhei == 1 && !api_db_valid_id(form_get(&rq->form, "sending_hei_id"))) {
			req_error(rq, 400,
			          "sending_hei_id is not an EWP identifier (1 to 64 printable "
			          "ASCII characters)");
			return -1;
		}
	}
	if (nids == 0) {
		req_error(rq, 400,
		          "omobility_id is required (repeat it for several mobilities, at most "
		          "%d distinct values)",
		          API_CNR_MAX_OMOBILITY_IDS);
		return -1;
	}
	for (size_t i = 0; i < rq->form.n; i++) {
		if (strcmp(rq->form.params[i].name, "omobility_id") != 0)
			continue;
		k++;
		if (!api_db_valid_id(rq->form.params[i].value)) {
			req_error(rq, 400,
			          "omobility_id number %zu is not an EWP identifier (1 to 64 "
			          "printable ASCII characters)",
			          k);
			return -1;
		}
	}
	return 0;
}

/* Whether caller HEI i already appeared before (a key listed by two hosts
 * covering the same HEI yields it twice). */
static bool
cnr_seen_before(const struct req *rq, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (strcmp(rq->caller_heis[j], rq->caller_heis[i]) == 0)
			return true;
	return false;
}

/* The caller's distinct HEIs as a JSON array, for the job's payload. */
static char *
cnr_notifiers_json(const struct req *rq)
{
	struct buf b;
	int rc;
	char *s;

	buf_init(&b, 1024 * 1024);
	rc = buf_addstr(&b, "[");
	for (size_t i = 0; i < rq->ncaller_heis && rc == 0; i++)
		if (!cnr_seen_before(rq, i))
			rc = (b.len > 1 ? buf_addstr(&b, ",") : 0)
			         ?: json_str(&b, rq->caller_heis[i]);
	rc = rc ?: buf_addstr(&b, "]");
	s = rc == 0 ? xstrndup(b.data, b.len) : NULL;
	buf_free(&b);
	return s;
}

void
api_cnr_handle(struct req *rq, const struct api_cnr *cnr, void (*done)(struct req *, PGresult *))
{
	const char *hei;
	char *ids, *notifiers;
	int n;

	if (cnr_check_params(rq, cnr) == -1)
		return;
	n = api_db_param_array(rq, "omobility_id", API_CNR_MAX_OMOBILITY_IDS, &ids);
	if (n > API_CNR_MAX_OMOBILITY_IDS) {
		req_error(rq, 400, "more than max-omobility-ids (%d) distinct omobility_id values",
		          API_CNR_MAX_OMOBILITY_IDS);
		return;
	}
	if (n == -1) {
		req_error(rq, 400, "omobility_id values too large");
		return;
	}
	if ((hei = cnr_sending_hei(rq, cnr)) == NULL) {
		free(ids);
		return;
	}
	/* The Registry validator's HEIs exist nowhere: answered, never fetched. */
	for (size_t i = 0; i < rq->ncaller_heis; i++)
		if (api_cnr_validator_hei(rq->caller_heis[i]) || api_cnr_validator_hei(hei)) {
			log_info("%s: notification from the EWP validator (%s): nothing queued",
			         rq->path, rq->caller_heis[i]);
			free(ids);
			cnr_reply(rq, cnr);
			return;
		}
	if ((notifiers = cnr_notifiers_json(rq)) == NULL) {
		free(ids);
		req_error(rq, 500, "the caller's HEI list is too large");
		return;
	}
	api_db_query(
	    rq, cnr_sql, 8,
	    (const char *const[]){hei, cnr->fetch_api, rq->api_name, rq->api_version, notifiers,
	                          form_count(&rq->form, "sending_hei_id") == 1 ? hei : NULL, ids,
	                          req_header(rq, "X-Request-Id")},
	    done);
	free(notifiers);
	free(ids);
}

int
api_cnr_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	if (api_manifest_head(e, c, out) == -1)
		return -1;
	return buf_printf(out, "<max-omobility-ids>%d</max-omobility-ids></%s>",
	                  API_CNR_MAX_OMOBILITY_IDS, e->name);
}
