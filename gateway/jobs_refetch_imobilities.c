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
#include "httpc.h"
#include "jobs.h"
#include "jobs_int.h"
#include "log.h"
#include "msglog.h"
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
	struct httpc_req *req;
	struct db_query *q;
	struct snap *snap;
	struct msglog_entry log;
	const char *partner[1];
	char api_name[64], api_version[32];
};

/* The intake schema, compiled once per process (again if schema_dir changes). */
static struct xsd *imob_xsd;
static char *imob_xsd_path;

static struct xsd *
imob_schema(const struct conf *c, char *err, size_t errlen)
{
	char *path = xasprintf("%s/" IMOB_INTAKE_XSD, c->schema_dir);

	if (imob_xsd != NULL && strcmp(path, imob_xsd_path) == 0) {
		free(path);
		return imob_xsd;
	}
	xsd_free(imob_xsd);
	free(imob_xsd_path);
	imob_xsd_path = path;
	if ((imob_xsd = xsd_load(path, err, errlen)) == NULL)
		log_warnx("jobs: IMobilities intake schema %s: %s (see [ewp] schema_dir)", path,
		          err);
	return imob_xsd;
}

/* ": <developer-message>" of an <error-response>, or "". */
static void
imob_developer_message(const struct httpc_result *res, char *out, size_t outlen)
{
	char xerr[64];
	xmlDocPtr doc;
	xmlNode *root;

	out[0] = '\0';
	if (res->body_len == 0 || (doc = xml_parse(res->body, res->body_len, IMOB_MAX_RESPONSE,
	                                           xerr, sizeof(xerr))) == NULL)
		return;
	if ((root = xmlDocGetRootElement(doc)) != NULL)
		for (xmlNode *n = root->children; n; n = n->next)
			if (n->type == XML_ELEMENT_NODE &&
			    strcmp((const char *)n->name, "developer-message") == 0) {
				xmlChar *t = xmlNodeGetContent(n);

				snprintf(out, outlen, ": %.1000s", t ? (const char *)t : "");
				xmlFree(t);
				break;
			}
	xmlFreeDoc(doc);
}

static void
imob_free(struct imob_fetch *f)
{
	snap_unref(f->snap);
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

/*
 * Checks the answer; the document re-serialised as UTF-8 in *xml (caller
 * frees) when it is to be stored, else the outcome and reason.
 */
static enum jobs_outcome
imob_check(struct imob_fetch *f, const struct httpc_result *res, char **xml, char *err,
           size_t errlen)
{
	struct ewpd *d = jobs_run_daemon(f->run);
	char xerr[700], dev[1100];
	struct xsd *xsd;
	xmlDocPtr doc;
	xmlChar *mem = NULL;
	int len = 0;
	long st = res->status;

	*xml = NULL;
	if (res->error != HTTPC_ERR_NONE) {
		snprintf(err, errlen, "%s: %s", httpc_error_name(res->error), res->error_message);
		return JOBS_RETRY;
	}
	if (st >= 400 && st < 500) {
		imob_developer_message(res, dev, sizeof(dev));
		snprintf(err, errlen, "HTTP %ld%s%s%s%s", st, dev,
		         res->verified ? "" : " (response signature refused: ",
		         res->verified ? "" : (res->verdict ? res->verdict->message : "no verdict"),
		         res->verified ? "" : ")");
		return JOBS_REJECTED;
	}
	if (!res->verified) {
		snprintf(err, errlen, "HTTP %ld, response signature refused: %s", st,
		         res->verdict ? res->verdict->message : "no verdict");
		return JOBS_RETRY;
	}
	if (st != 200) {
		imob_developer_message(res, dev, sizeof(dev));
		snprintf(err, errlen, "HTTP %ld%s", st, dev);
		return JOBS_RETRY;
	}
	if ((doc = xml_parse(res->body, res->body_len, IMOB_MAX_RESPONSE, xerr, sizeof(xerr))) ==
	    NULL) {
		snprintf(err, errlen, "invalid XML: %s", xerr);
		f->log.validation = MSGLOG_INVALID;
		return JOBS_RETRY;
	}
	if ((xsd = imob_schema(d->conf, xerr, sizeof(xerr))) == NULL) {
		snprintf(err, errlen, "cannot check the answer: %s", xerr);
		xmlFreeDoc(doc);
		return JOBS_RETRY;
	}
	if (xsd_validate(xsd, doc, xerr, sizeof(xerr)) == -1) {
		snprintf(err, errlen, "the answer does not match the IMobilities v2 get schema: %s",
		         xerr);
		f->log.validation = MSGLOG_INVALID;
		xmlFreeDoc(doc);
		return JOBS_RETRY;
	}
	f->log.validation = MSGLOG_VALID;
	xmlDocDumpMemoryEnc(doc, &mem, &len, "UTF-8");
	xmlFreeDoc(doc);
	if (mem == NULL)
		fatalx("jobs: out of memory serialising an XML document");
	*xml = xstrndup((const char *)mem, (size_t)len);
	xmlFree(mem);
	return JOBS_SUCCESS;
}

static void
imob_fetched(const struct httpc_result *res, void *arg)
{
	struct imob_fetch *f = arg;
	struct jobs_run *run = f->run;
	const struct jobs_job *job = jobs_run_job(run);
	struct ewpd *d = jobs_run_daemon(run);
	struct msglog_entry *e = &f->log;
	char err[1800] = "", *xml;
	enum jobs_outcome o;

	f->req = NULL;
	o = imob_check(f, res, &xml, err, sizeof(err));
	e->method = res->method;
	e->url = res->url;
	e->status = (int)res->status;
	e->duration_ms = res->duration_ms;
	e->request_id = res->request_id;
	e->request_headers = res->request_headers;
	e->nrequest_headers = res->nrequest_headers;
	e->request_body = res->request_body;
	e->request_body_len = res->request_body_len;
	e->response_headers = res->headers;
	e->nresponse_headers = res->nheaders;
	e->response_body = res->body;
	e->response_body_len = res->body_len;
	e->validation_error = e->validation == MSGLOG_INVALID ? err : NULL;
	e->error = err[0] ? err : NULL;
	msglog_add(d->msglog, e);
	if (o != JOBS_SUCCESS) {
		jobs_run_set_data(run, NULL);
		imob_free(f);
		jobs_done(run, o, res->status > 0 ? (int)res->status : 0, err);
		return;
	}
	f->q = db_query(
	    d->db, store_sql, 5,
	    (const char *const[]){xml, d->conf->hei_id, job->hei_id, job->payload, job->dedupe_key},
	    imob_stored, f);
	free(xml);
}

void
jobs_refetch_imobilities_start(struct jobs_run *run)
{
	const struct jobs_job *job = jobs_run_job(run);
	struct ewpd *d = jobs_run_daemon(run);
	struct httpc_endpoint ep;
	struct imob_fetch *f;
	char err[512] = "", *id, *form;

	if (d->snap == NULL) {
		jobs_done(run, JOBS_RETRY, 0, "no catalogue loaded yet");
		return;
	}
	if (httpc_endpoint(d->snap->reg, job->hei_id, IMOB_ENTRY_NS, "get-url", &ep, err,
	                   sizeof(err)) == -1) {
		jobs_done(run, JOBS_NO_API, 0, err);
		return;
	}
	if ((id = curl_easy_escape(NULL, job->dedupe_key, 0)) == NULL)
		fatalx("jobs: out of memory escaping an omobility_id");
	form = xasprintf("omobility_id=%s", id);
	curl_free(id);
	f = xcalloc(1, sizeof(*f));
	f->run = run;
	f->snap = snap_ref(d->snap);
	f->partner[0] = job->hei_id;
	snprintf(f->api_name, sizeof(f->api_name), "%s", ep.api->name);
	snprintf(f->api_version, sizeof(f->api_version), "%s", ep.api->version);
	f->log.outbound = true;
	f->log.partner_heis = f->partner;
	f->log.npartner_heis = 1;
	f->log.api = f->api_name;
	f->log.api_version = f->api_version[0] ? f->api_version : NULL;
	f->log.key_id = keys_priv_keyid(d->client_key);
	f->log.job_id = job->id;
	msglog_entry_start(&f->log);
	struct httpc_params p = {
	    .method = "POST",
	    .url = ep.url,
	    .body = form,
	    .body_len = strlen(form),
	    .key = d->client_key,
	    .reg = f->snap->reg,
	    .timeout_ms = (long)d->conf->jobs_timeout * 1000,
	    .max_response_bytes = IMOB_MAX_RESPONSE,
	};
	jobs_run_set_data(run, f);
	f->req = httpc_request(jobs_run_httpc(run), &p, imob_fetched, f, err, sizeof(err));
	free(form);
	if (f->req == NULL) {
		jobs_run_set_data(run, NULL);
		imob_free(f);
		jobs_done(run, JOBS_RETRY, 0, err);
	}
}

void
jobs_refetch_imobilities_cancel(struct jobs_run *run)
{
	struct imob_fetch *f = jobs_run_data(run);

	if (f == NULL)
		return;
	httpc_cancel(f->req);
	if (f->q != NULL)
		db_query_cancel(f->q);
	imob_free(f);
}
