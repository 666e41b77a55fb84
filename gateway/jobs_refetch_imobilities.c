/*
 * jobs_refetch_imobilities.c - the 'refetch' handler for API
 * "imobilities": a receiving HEI told us (IMobility CNR) that its part of
 * one of our outgoing mobilities changed; fetch it from its Incoming
 * Mobilities v2 get and store the actual arrival and departure dates on
 * our outgoing row.
 *
 * The job: hei_id = the receiving HEI (whose host serves the get),
 * dedupe_key = the omobility_id, payload as api_cnr.c writes it (its
 * notifier_hei_ids are the HEIs the notifier's key covers). The call is a
 * signed POST of omobility_id (v2 has no other parameter) to the get-url
 * the cached catalogue lists for hei_id; the response must carry a
 * verified signature, be 200, parse, and match
 * [ewp] schema_dir/intake/imobilities-get-response.xsd (as wide as the
 * official schema). Each attempt is a message-log row with the job's id
 * and the schema verdict. Then one statement
 * (smile.store_imobility_dates, sql/0011) writes the dates on the row we
 * are the sending HEI of, whose receiving HEI is hei_id or one of the
 * notifier's HEIs; nothing is written for ids the answer leaves out or
 * that are not such a row.
 *
 * Outcomes: stored, or nothing to store (absent, unknown): success (the
 * reason in last_error). Transport errors, 5xx and other statuses,
 * refused signatures, invalid XML, schema errors, database errors: retry
 * with backoff. 4xx: rejected with the partner's developer-message.
 * Dates that cannot be stored (listed twice, departure before arrival,
 * out of range): rejected. No IMobilities v2 in the catalogue for the
 * HEI: no-cnr-api (the engine's "the partner publishes no such API").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <libxml/tree.h>

#include "daemon.h"
#include "db.h"
#include "jobs.h"
#include "jobs_call.h"
#include "jobs_int.h"
#include "log.h"
#include "xmalloc.h"
#include "xml.h"

#define IMOB_ENTRY_NS                                                                              \
	"https://github.com/erasmus-without-paper/ewp-specs-api-imobilities/blob/stable-v2/"       \
	"manifest-entry.xsd"
#define IMOB_INTAKE_XSD   "intake/imobilities-get-response.xsd"
#define IMOB_MAX_RESPONSE (4 * 1024 * 1024)

/*
 * $1 the document, $2 our HEI, $3 the job's HEI, $4 the job's payload,
 * $5 the omobility_id asked for.
 */
static const char store_sql[] =
    "SELECT omobility_id, outcome FROM smile.store_imobility_dates($1::xml, $2,"
    " ARRAY[$3::text] || ARRAY(SELECT jsonb_array_elements_text(CASE"
    "  WHEN jsonb_typeof($4::jsonb -> 'notifier_hei_ids') = 'array'"
    "  THEN $4::jsonb -> 'notifier_hei_ids' ELSE '[]' END)),"
    " ARRAY[$5::text])";

struct imob_fetch {
	struct jobs_run *run;
	struct jobs_call call;
	struct db_query *q;
};

static void
imob_free(struct imob_fetch *f)
{
	jobs_call_reset(&f->call);
	free(f);
}

static void
imob_stored(PGresult *res, const char *dberr, void *arg)
{
	struct imob_fetch *f = arg;
	struct jobs_run *run = f->run;
	const struct jobs_job *job = jobs_run_job(run);
	enum jobs_outcome o = JOBS_SUCCESS;
	char msg[600] = "";
	const char *outcome;

	f->q = NULL;
	if (dberr != NULL) {
		snprintf(msg, sizeof(msg), "storing the dates failed: %.500s", dberr);
		jobs_run_set_data(run, NULL);
		imob_free(f);
		jobs_done(run, JOBS_RETRY, 200, msg);
		return;
	}
	outcome = PQntuples(res) == 1 ? PQgetvalue(res, 0, 1) : "absent";
	if (strcmp(outcome, "stored") == 0) {
		log_info("jobs: job %lld: actual dates of outgoing mobility %s stored from %s",
		         job->id, job->dedupe_key, job->hei_id);
	} else if (strcmp(outcome, "absent") == 0) {
		snprintf(msg, sizeof(msg),
		         "omobility_id %.100s is not in the partner's answer (unknown to it or not "
		         "visible to us): nothing stored",
		         job->dedupe_key);
	} else if (strcmp(outcome, "unknown") == 0) {
		snprintf(msg, sizeof(msg),
		         "omobility_id %.100s is no outgoing mobility of ours received by %.100s "
		         "(or the notifier's HEIs): nothing stored",
		         job->dedupe_key, job->hei_id);
	} else {
		o = JOBS_REJECTED;
		snprintf(msg, sizeof(msg),
		         "the partner's dates for omobility_id %.100s were not stored: %s",
		         job->dedupe_key,
		         strcmp(outcome, "duplicate") == 0 ? "the mobility is listed more than once"
		         : strcmp(outcome, "disordered") == 0 ? "actual-departure-date is before "
		                                                "actual-arrival-date"
		                                              : "a date out of range");
	}
	jobs_run_set_data(run, NULL);
	imob_free(f);
	jobs_done(run, o, 200, msg[0] ? msg : NULL);
}

static void
imob_fetched(const struct jobs_call_answer *a, void *arg)
{
	struct imob_fetch *f = arg;
	struct jobs_run *run = f->run;
	const struct jobs_job *job = jobs_run_job(run);
	struct ewpd *d = jobs_run_daemon(run);
	char *xml;
	size_t len;

	if (a->outcome != JOBS_SUCCESS) {
		jobs_run_set_data(run, NULL);
		imob_free(f);
		jobs_done(run, a->outcome, a->http_status, a->error);
		return;
	}
	xml_dump(a->doc, &xml, &len);
	f->q = db_query(
	    d->db, store_sql, 5,
	    (const char *const[]){xml, d->conf->hei_id, job->hei_id, job->payload, job->dedupe_key},
	    imob_stored, f);
	xmlFree(xml);
}

void
jobs_refetch_imobilities_start(struct jobs_run *run)
{
	const struct jobs_job *job = jobs_run_job(run);
	struct imob_fetch *f;
	enum jobs_outcome o;
	char err[512] = "", *id, *form;

	if ((id = curl_easy_escape(NULL, job->dedupe_key, 0)) == NULL)
		fatalx("jobs: out of memory escaping an omobility_id");
	form = xasprintf("omobility_id=%s", id);
	curl_free(id);
	struct jobs_call_spec s = {
	    .ns = {IMOB_ENTRY_NS},
	    .url_name = "get-url",
	    .body = form,
	    .max_response = IMOB_MAX_RESPONSE,
	    .xsd = IMOB_INTAKE_XSD,
	    .xsd_label = "the IMobilities v2 get schema",
	};
	f = xcalloc(1, sizeof(*f));
	f->run = run;
	jobs_run_set_data(run, f);
	if (jobs_call_start(&f->call, run, &s, imob_fetched, f, &o, err, sizeof(err)) == -1) {
		jobs_run_set_data(run, NULL);
		imob_free(f);
		jobs_done(run, o, 0, err);
	}
	free(form);
}

void
jobs_refetch_imobilities_cancel(struct jobs_run *run)
{
	struct imob_fetch *f = jobs_run_data(run);

	if (f == NULL)
		return;
	if (f->q != NULL)
		db_query_cancel(f->q);
	imob_free(f);
}
