/*
 * jobs_refetch_las.c - the 'refetch' handler for api "omobility-las": after
 * a partner's OMobility LA CNR (gateway/api/api_cnr.c), fetch the learning
 * agreement from its Outgoing Mobility Learning Agreements API v1 `get`
 * and store it in the core.
 *
 * The job's hei_id is the partner serving the get, its dedupe_key the
 * omobility_id, and its payload (as api_cnr.c writes it) names the
 * sending_hei_id (the job's hei_id when absent). The get-url is the one
 * the cached catalogue lists for that HEI; the call is a signed POST of
 * sending_hei_id and omobility_id, the response's signature is verified,
 * the document checked against ewp-schemas/intake/omobility-las-get-
 * response.xsd and the exchange written to the message log with the
 * job's id. A valid answer goes to smile.la_store_incoming()
 * (sql/0009_las_receiving.sql), which writes everything in one
 * transaction.
 *
 * Outcomes: stored, unchanged, gone (no longer returned), absent, or
 * stale (an answer older than the one stored, when two jobs of one LA
 * were on the wire at once: dropped): success. No such API in the catalogue: no-cnr-api (final,
 * with the reason). Timeouts, connection errors, 5xx and other statuses, a refused response
 * signature, a body that is not XML or not valid: retry. 4xx: rejected, with the partner's
 * developer-message. The mobility not known yet (LA before nomination): the function queued a
 * re-fetch of the nomination and the job is retried later. The database down: retry. The document
 * contradicting the request or the nomination (another sending or receiving HEI): rejected, nothing
 * written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "buf.h"
#include "daemon.h"
#include "db.h"
#include "form.h"
#include "jobs.h"
#include "jobs_call.h"
#include "jobs_refetch_las.h"
#include "log.h"
#include "xmalloc.h"
#include "xml.h"

#define LAS_MAX_RESPONSE (8 * 1024 * 1024)
#define LAS_ENTRY_NS                                                                               \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-las/blob/stable-v1/"     \
	"manifest-entry.xsd"
#define LAS_SCHEMA "intake/omobility-las-get-response.xsd"

/*
 * $1 response, $2 partner, $3 sending_hei_id, $4 omobility_id, $5 job id,
 * $6 when the get was sent (seconds since the epoch): an answer older
 * than the one stored (two jobs of one LA in flight) is dropped.
 */
static const char las_store_sql[] =
    "SELECT smile.la_store_incoming($1::xml, $2, $3, $4, $5::bigint,"
    " to_timestamp($6::double precision))";

struct las_call {
	struct jobs_run *run;
	struct jobs_call call;
	struct db_query *q;
	char *sending_hei;
};

static void
las_free(struct las_call *c)
{
	jobs_call_reset(&c->call);
	free(c->sending_hei);
	free(c);
}

static void
las_stored(PGresult *res, const char *dberr, void *arg)
{
	struct las_call *c = arg;
	struct jobs_run *run = c->run;
	const struct jobs_job *job = jobs_run_job(run);
	enum jobs_outcome o = JOBS_SUCCESS;
	char err[1800] = "";
	const char *what;

	c->q = NULL;
	if (dberr != NULL) {
		/* SQLSTATE classes 22 and 23: the document contradicts the request or the data */
		bool data = db_err_is(dberr, "22") || db_err_is(dberr, "23");

		o = data ? JOBS_REJECTED : JOBS_RETRY;
		snprintf(err, sizeof(err), "%s: %.1500s",
		         data ? "the partner's learning agreement cannot be stored"
		              : "storing the learning agreement failed",
		         dberr);
	} else {
		what = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
		if (strcmp(what, "no-mobility") == 0) {
			o = JOBS_RETRY;
			snprintf(
			    err, sizeof(err),
			    "mobility %.64s of %.200s is not known yet (learning agreement before "
			    "the nomination): its nomination is being fetched, the LA will be "
			    "fetched again",
			    job->dedupe_key, c->sending_hei);
		} else
			log_debug("job %lld: learning agreement %s/%s: %s", job->id, c->sending_hei,
			          job->dedupe_key, what);
	}
	las_free(c);
	jobs_done(run, o, o == JOBS_SUCCESS || o == JOBS_REJECTED ? 200 : 0, err[0] ? err : NULL);
}

static void
las_fetched(const struct jobs_call_answer *a, void *arg)
{
	struct las_call *c = arg;
	struct jobs_run *run = c->run;
	const struct jobs_job *job = jobs_run_job(run);
	struct ewpd *d = jobs_run_daemon(run);
	char jid[32], sent[48], *doc;
	size_t len;

	if (a->outcome != JOBS_SUCCESS) {
		las_free(c);
		jobs_done(run, a->outcome, a->http_status, a->error);
		return;
	}
	/* the document as UTF-8, whatever encoding the partner used */
	xml_dump(a->doc, &doc, &len);
	snprintf(jid, sizeof(jid), "%lld", job->id);
	snprintf(sent, sizeof(sent), "%lld.%06ld", (long long)c->call.log.started,
	         c->call.log.started_us);
	const char *params[] = {doc, job->hei_id, c->sending_hei, job->dedupe_key, jid, sent};
	c->q = db_query(d->db, las_store_sql, 6, params, las_stored, c);
	xmlFree(doc);
}

void
jobs_refetch_las_start(struct jobs_run *run)
{
	const struct jobs_job *job = jobs_run_job(run);
	struct las_call *c;
	struct form f;
	struct buf body;
	enum jobs_outcome o;
	char err[512] = "", why[700];
	const char *sending;

	c = xcalloc(1, sizeof(*c));
	c->run = run;
	if (form_parse(job->form, strlen(job->form), &f, err, sizeof(err)) == 0 &&
	    (sending = form_get(&f, "sending_hei_id")) != NULL && sending[0] != '\0')
		c->sending_hei = xstrdup(sending);
	else
		c->sending_hei = xstrdup(job->hei_id);
	form_free(&f);
	buf_init(&body, 4096);
	if (jobs_call_form_add(&body, "sending_hei_id", c->sending_hei) == -1 ||
	    jobs_call_form_add(&body, "omobility_id", job->dedupe_key) == -1) {
		buf_free(&body);
		las_free(c);
		jobs_done(run, JOBS_RETRY, 0, "cannot build the get request");
		return;
	}
	struct jobs_call_spec s = {
	    .ns = {LAS_ENTRY_NS},
	    .url_name = "get-url",
	    .body = buf_cstr(&body),
	    .max_response = LAS_MAX_RESPONSE,
	    .xsd = LAS_SCHEMA,
	};
	jobs_run_set_data(run, c);
	if (jobs_call_start(&c->call, run, &s, las_fetched, c, &o, err, sizeof(err)) == -1) {
		if (o == JOBS_NO_API)
			snprintf(
			    why, sizeof(why),
			    "HEI %.200s publishes no Outgoing Mobility Learning Agreements API "
			    "v1 (get-url) in the catalogue, so its learning agreement cannot be "
			    "fetched%s%s",
			    job->hei_id, err[0] ? ": " : "", err);
		jobs_run_set_data(run, NULL);
		las_free(c);
		jobs_done(run, o, 0, o == JOBS_NO_API ? why : err);
	}
	buf_free(&body);
}

void
jobs_refetch_las_cancel(struct jobs_run *run)
{
	struct las_call *c = jobs_run_data(run);

	if (c == NULL)
		return;
	if (c->q != NULL)
		db_query_cancel(c->q);
	las_free(c);
}
