/*
 * jobs_refetch_omobilities.c - refetch handler "omobilities": a partner
 * told us (OMobility CNR) or the re-sync found that one of its
 * mobilities changed; we call its Outgoing Mobilities v3 get with that
 * omobility_id and store the answer in the SMILE core with
 * ewp.omobility_store() (sql/0007_omobilities_receiving.sql), which
 * upserts smile.mobility and the incoming registration in one
 * transaction. Also the call machinery shared with the index re-sync
 * (jobs_omobilities.h).
 *
 * The request: POST get-url with sending_hei_id (the CNR's, else the
 * job's HEI; OMobilities v3 no longer needs it, servers ignore it) and
 * omobility_id. What the answer becomes:
 *   created / updated / unchanged / gone / absent   success
 *   not-ours (the receiving HEI is not us)          cancelled, nothing stored
 *   refused data (SQLSTATE EW001: another sending HEI than the partner,
 *   an id or name the core cannot hold; 22xxx, 23xxx)  rejected, nothing stored
 *   any other database error                        retry
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <libxml/tree.h>

#include "daemon.h"
#include "db.h"
#include "form.h"
#include "httpc.h"
#include "jobs.h"
#include "jobs_int.h"
#include "jobs_omobilities.h"
#include "log.h"
#include "msglog.h"
#include "xmalloc.h"
#include "xml.h"

#define OMOB_XSD_CACHE 4
#define OMOB_ERR_LEN   1800

/*
 * Our intake schemas, compiled once per process and path ([ewp]
 * schema_dir may change on reload: a new path is compiled anew).
 */
static struct omob_xsd {
	char *path;
	struct xsd *xsd;
} omob_xsds[OMOB_XSD_CACHE];

static struct xsd *
omob_xsd(const char *dir, const char *name, char *err, size_t errlen)
{
	char *path = xasprintf("%s/%s", dir, name);
	struct xsd *x;
	size_t i;

	for (i = 0; i < OMOB_XSD_CACHE && omob_xsds[i].path; i++)
		if (strcmp(omob_xsds[i].path, path) == 0) {
			free(path);
			return omob_xsds[i].xsd;
		}
	if ((x = xsd_load(path, err, errlen)) == NULL) {
		free(path);
		return NULL;
	}
	if (i == OMOB_XSD_CACHE) { /* full: the oldest goes */
		free(omob_xsds[0].path);
		xsd_free(omob_xsds[0].xsd);
		memmove(&omob_xsds[0], &omob_xsds[1], sizeof(omob_xsds[0]) * (OMOB_XSD_CACHE - 1));
		i = OMOB_XSD_CACHE - 1;
	}
	omob_xsds[i].path = path;
	omob_xsds[i].xsd = x;
	return x;
}

int
omob_form_add(struct buf *b, const char *name, const char *value)
{
	char *e = curl_easy_escape(NULL, value, 0);
	int rc;

	if (e == NULL)
		return -1;
	rc = buf_printf(b, "%s%s=%s", b->len ? "&" : "", name, e);
	curl_free(e);
	return rc;
}

/* ": <developer-message>" of an <error-response>, or "". */
static void
omob_developer_message(const struct httpc_result *res, size_t max, char *out, size_t outlen)
{
	char xerr[64];
	xmlDocPtr doc;
	xmlNode *root;

	out[0] = '\0';
	if (res->body_len == 0 ||
	    (doc = xml_parse(res->body, res->body_len, max, xerr, sizeof(xerr))) == NULL)
		return;
	if ((root = xmlDocGetRootElement(doc)) != NULL)
		for (xmlNode *n = root->children; n; n = n->next)
			if (n->type == XML_ELEMENT_NODE &&
			    strcmp((const char *)n->name, "developer-message") == 0) {
				xmlChar *t = xmlNodeGetContent(n);

				snprintf(out, outlen, ": %.1200s", t ? (const char *)t : "");
				xmlFree(t);
				break;
			}
	xmlFreeDoc(doc);
}

/*
 * The verdict on an answer: JOBS_SUCCESS with *doc set (schema-valid), or
 * the outcome to end the job with and err set.
 */
static enum jobs_outcome
omob_check(struct omob_call *c, const struct httpc_result *res, xmlDocPtr *doc, char *err,
           size_t errlen)
{
	struct ewpd *d = jobs_run_daemon(c->run);
	char dev[1300], xerr[900];
	struct xsd *xsd;
	long st = res->status;

	*doc = NULL;
	if (res->error != HTTPC_ERR_NONE) {
		snprintf(err, errlen, "%s: %s", httpc_error_name(res->error), res->error_message);
		return JOBS_RETRY;
	}
	if (st >= 400 && st < 500) {
		omob_developer_message(res, c->max_response, dev, sizeof(dev));
		snprintf(err, errlen, "HTTP %ld%.1300s%s%.300s%s", st, dev,
		         res->verified ? "" : " (response signature refused: ",
		         res->verified ? "" : (res->verdict ? res->verdict->message : "no verdict"),
		         res->verified ? "" : ")");
		return JOBS_REJECTED;
	}
	if (!res->verified) {
		snprintf(err, errlen, "HTTP %ld, response signature refused: %.300s", st,
		         res->verdict ? res->verdict->message : "no verdict");
		return JOBS_RETRY;
	}
	if (st != 200) {
		omob_developer_message(res, c->max_response, dev, sizeof(dev));
		snprintf(err, errlen, "HTTP %ld%s", st, dev);
		return JOBS_RETRY;
	}
	if ((xsd = omob_xsd(d->conf->schema_dir, c->xsd_name, xerr, sizeof(xerr))) == NULL) {
		snprintf(err, errlen, "cannot load our schema %s (see [ewp] schema_dir): %s",
		         c->xsd_name, xerr);
		return JOBS_RETRY;
	}
	*doc = xml_parse(res->body, res->body_len, c->max_response, xerr, sizeof(xerr));
	if (*doc == NULL) {
		snprintf(err, errlen, "invalid XML: %s", xerr);
		c->log_validation = MSGLOG_INVALID;
		return JOBS_RETRY;
	}
	if (xsd_validate(xsd, *doc, xerr, sizeof(xerr)) == -1) {
		snprintf(err, errlen, "the answer does not match %s: %s", c->xsd_name, xerr);
		c->log_validation = MSGLOG_INVALID;
		xmlFreeDoc(*doc);
		*doc = NULL;
		return JOBS_RETRY;
	}
	c->log_validation = MSGLOG_VALID;
	return JOBS_SUCCESS;
}

static void
omob_done_cb(const struct httpc_result *res, void *arg)
{
	struct omob_call *c = arg;
	struct jobs_run *run = c->run;
	struct ewpd *d = jobs_run_daemon(run);
	struct msglog_entry e = c->log;
	enum jobs_outcome o;
	xmlDocPtr doc;
	char err[OMOB_ERR_LEN] = "";

	c->req = NULL;
	o = omob_check(c, res, &doc, err, sizeof(err));
	e.method = res->method;
	e.url = res->url;
	e.status = (int)res->status;
	e.duration_ms = res->duration_ms;
	e.request_id = res->request_id;
	e.request_headers = res->request_headers;
	e.nrequest_headers = res->nrequest_headers;
	e.request_body = res->request_body;
	e.request_body_len = res->request_body_len;
	e.response_headers = res->headers;
	e.nresponse_headers = res->nheaders;
	e.response_body = res->body;
	e.response_body_len = res->body_len;
	e.validation = c->log_validation;
	if (c->log_validation == MSGLOG_INVALID)
		e.validation_error = err;
	e.error = o == JOBS_SUCCESS ? NULL : err;
	if (d->msglog)
		msglog_add(d->msglog, &e);
	if (o != JOBS_SUCCESS) {
		omob_call_free(c);
		jobs_done(run, o, res->status > 0 ? (int)res->status : 0, err);
		return;
	}
	c->got(c, doc, res->body, res->body_len);
	xmlFreeDoc(doc);
}

void
omob_call_start(struct jobs_run *run, const char *url_name, const char *form, const char *xsd_name,
                size_t max_response, omob_got_cb *got, void *arg)
{
	const struct jobs_job *job = jobs_run_job(run);
	struct ewpd *d = jobs_run_daemon(run);
	struct httpc_endpoint ep;
	struct omob_call *c;
	char err[512] = "";

	if (d->snap == NULL) {
		free(arg);
		jobs_done(run, JOBS_RETRY, 0, "no catalogue loaded yet");
		return;
	}
	if (d->db == NULL) {
		free(arg);
		jobs_done(run, JOBS_RETRY, 0, "no database");
		return;
	}
	if (httpc_endpoint(d->snap->reg, job->hei_id, OMOB_ENTRY_NS, url_name, &ep, err,
	                   sizeof(err)) == -1) {
		char msg[700];

		snprintf(msg, sizeof(msg), "no Outgoing Mobilities v3 %s to call: %s", url_name,
		         err);
		free(arg);
		jobs_done(run, JOBS_NO_API, 0, msg);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->run = run;
	c->snap = snap_ref(d->snap);
	c->arg = arg;
	c->got = got;
	c->xsd_name = xsd_name;
	c->max_response = max_response;
	c->partner[0] = job->hei_id;
	snprintf(c->api_name, sizeof(c->api_name), "%s", ep.api->name);
	snprintf(c->api_version, sizeof(c->api_version), "%s", ep.api->version);
	c->log.outbound = true;
	c->log.partner_heis = c->partner;
	c->log.npartner_heis = 1;
	c->log.api = c->api_name;
	c->log.api_version = c->api_version[0] ? c->api_version : NULL;
	c->log.key_id = keys_priv_keyid(d->client_key);
	c->log.job_id = job->id;
	msglog_entry_start(&c->log);
	struct httpc_params p = {
	    .method = "POST",
	    .url = ep.url,
	    .body = form,
	    .body_len = strlen(form),
	    .key = d->client_key,
	    .reg = c->snap->reg,
	    .timeout_ms = (long)d->conf->jobs_timeout * 1000,
	    .max_response_bytes = max_response,
	};
	jobs_run_set_data(run, c);
	c->req = httpc_request(jobs_run_httpc(run), &p, omob_done_cb, c, err, sizeof(err));
	if (c->req == NULL) {
		omob_call_free(c);
		jobs_done(run, JOBS_RETRY, 0, err);
	}
}

void
omob_call_free(struct omob_call *c)
{
	if (c == NULL)
		return;
	jobs_run_set_data(c->run, NULL);
	httpc_cancel(c->req);
	if (c->q)
		db_query_cancel(c->q);
	snap_unref(c->snap);
	free(c->arg);
	free(c);
}

void
omob_call_cancel(struct jobs_run *run)
{
	omob_call_free(jobs_run_data(run));
}

/* ---- the refetch handler ---- */

/*
 * $1 partner, $2 omobility_id, $3 payload: the sending HEIs the answer may
 * name are the partner, the CNR's sending_hei_id, and when the CNR named
 * none (OMobility CNR v2) the notifier's HEIs; $4 the document, $5 the
 * partner's name in the catalogue.
 */
static const char store_sql[] =
    "SELECT ewp.omobility_store($1, $2,"
    " array_remove(ARRAY[$1::text, $3::jsonb ->> 'sending_hei_id'] ||"
    "  CASE WHEN jsonb_typeof($3::jsonb -> 'sending_hei_id') = 'string' THEN ARRAY[]::text[]"
    "  ELSE ARRAY(SELECT jsonb_array_elements_text(CASE jsonb_typeof($3::jsonb ->"
    "   'notifier_hei_ids') WHEN 'array' THEN $3::jsonb -> 'notifier_hei_ids' ELSE '[]' END))"
    "  END, NULL),"
    " xmlparse(DOCUMENT $4::text), $5)";

static void
refetch_stored_cb(PGresult *res, const char *err, void *arg)
{
	struct omob_call *c = arg;
	struct jobs_run *run = c->run;
	const struct jobs_job *job = jobs_run_job(run);
	char msg[OMOB_ERR_LEN];
	const char *what;

	c->q = NULL;
	if (err != NULL) {
		/*
		 * EW001, data exceptions (22) and CHECK / NOT NULL violations:
		 * the partner's data, final. Anything else (a unique violation
		 * racing another fetch, a lost connection...) is tried again.
		 */
		enum jobs_outcome o = db_err_is(err, "EW001") || db_err_is(err, "22") ||
		                              db_err_is(err, "23514") || db_err_is(err, "23502")
		                          ? JOBS_REJECTED
		                          : JOBS_RETRY;

		snprintf(msg, sizeof(msg), "%s: %s",
		         o == JOBS_REJECTED ? "not stored, the answer was refused" : "not stored",
		         err);
		omob_call_free(c);
		jobs_done(run, o, 200, msg);
		return;
	}
	what = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
	log_info("jobs: job %lld: omobility %s of %s: %s", job->id, job->dedupe_key, job->hei_id,
	         what);
	if (strcmp(what, "not-ours") == 0) {
		omob_call_free(c);
		jobs_done(run, JOBS_CANCELLED, 200,
		          "the mobility's receiving HEI is not our institution: not stored");
		return;
	}
	omob_call_free(c);
	jobs_done(run, JOBS_SUCCESS, 200, NULL);
}

static void
refetch_got(struct omob_call *c, xmlDocPtr doc, const char *body, size_t len)
{
	const struct jobs_job *job = jobs_run_job(c->run);
	struct ewpd *d = jobs_run_daemon(c->run);
	const char *name = registry_hei_name(c->snap->reg, job->hei_id);
	char *utf8;
	size_t n;

	(void)body;
	(void)len;
	/* the document as UTF-8, whatever encoding the partner used */
	xml_dump(doc, &utf8, &n);
	c->q =
	    db_query(d->db, store_sql, 5,
	             (const char *const[]){job->hei_id, job->dedupe_key, job->payload, utf8, name},
	             refetch_stored_cb, c);
	xmlFree(utf8);
}

void
jobs_refetch_omobilities_start(struct jobs_run *run)
{
	const struct jobs_job *job = jobs_run_job(run);
	struct form f;
	struct buf b;
	const char *sending = NULL;
	char err[128];

	if (form_parse(job->form, strlen(job->form), &f, err, sizeof(err)) == 0)
		sending = form_get(&f, "sending_hei_id");
	buf_init(&b, 4096);
	if (omob_form_add(&b, "sending_hei_id", sending ? sending : job->hei_id) == -1 ||
	    omob_form_add(&b, "omobility_id", job->dedupe_key) == -1) {
		form_free(&f);
		buf_free(&b);
		jobs_done(run, JOBS_CANCELLED, 0, "omobility_id too large for a request");
		return;
	}
	form_free(&f);
	omob_call_start(run, "get-url", buf_cstr(&b), "intake/omobilities-get-response.xsd",
	                OMOB_GET_MAX_RESPONSE, refetch_got, NULL);
	buf_free(&b);
}
