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

#include <curl/curl.h>
#include <libxml/tree.h>

#include "buf.h"
#include "daemon.h"
#include "db.h"
#include "form.h"
#include "httpc.h"
#include "jobs.h"
#include "jobs_int.h"
#include "jobs_refetch_las.h"
#include "log.h"
#include "msglog.h"
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
	struct httpc_req *req;
	struct db_query *q;
	struct snap *snap;
	struct msglog_entry log;
	const char *partner[1];
	char *sending_hei;
	char api_name[64], api_version[32];
};

/* The compiled intake schema of this process, reloaded if schema_dir changes. */
static struct xsd *las_xsd;
static char *las_xsd_path;

static struct xsd *
las_schema(const struct ewpd *d, char *err, size_t errlen)
{
	char *path = xasprintf("%s/" LAS_SCHEMA, d->conf->schema_dir);

	if (las_xsd != NULL && strcmp(path, las_xsd_path) == 0) {
		free(path);
		return las_xsd;
	}
	xsd_free(las_xsd);
	free(las_xsd_path);
	las_xsd_path = path;
	if ((las_xsd = xsd_load(path, err, errlen)) == NULL) {
		free(las_xsd_path);
		las_xsd_path = NULL;
	}
	return las_xsd;
}

static void
las_free(struct las_call *c)
{
	snap_unref(c->snap);
	free(c->sending_hei);
	free(c);
}

/* ": <developer-message>" of an <error-response>, or "". */
static void
las_developer_message(const struct httpc_result *res, char *out, size_t outlen)
{
	char xerr[64];
	xmlDocPtr doc;
	xmlNode *root;

	out[0] = '\0';
	if (res->body_len == 0 || (doc = xml_parse(res->body, res->body_len, LAS_MAX_RESPONSE, xerr,
	                                           sizeof(xerr))) == NULL)
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
		/* 22xxx/23xxx: the document contradicts the request or the data */
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

/*
 * Checks the answer; NULL with the outcome in *o and the reason in err,
 * or the document (UTF-8, serialised again) to store.
 */
static char *
las_check(struct las_call *c, const struct httpc_result *res, enum jobs_outcome *o, char *err,
          size_t errlen, char *verr, size_t verrlen, struct xsd *xsd)
{
	char dev[1100], xerr[600];
	long st = res->status;
	xmlDocPtr doc;
	char *out = NULL, *copy;
	size_t len;

	*o = JOBS_RETRY;
	if (res->error != HTTPC_ERR_NONE) {
		snprintf(err, errlen, "%s: %.1000s", httpc_error_name(res->error),
		         res->error_message);
		return NULL;
	}
	if (st >= 400 && st < 500) {
		las_developer_message(res, dev, sizeof(dev));
		*o = JOBS_REJECTED;
		snprintf(err, errlen, "HTTP %ld%.1050s%s%.300s%s", st, dev,
		         res->verified ? "" : " (response signature refused: ",
		         res->verified ? "" : (res->verdict ? res->verdict->message : "no verdict"),
		         res->verified ? "" : ")");
		return NULL;
	}
	if (!res->verified) {
		snprintf(err, errlen, "HTTP %ld, response signature refused: %.1000s", st,
		         res->verdict ? res->verdict->message : "no verdict");
		return NULL;
	}
	if (st != 200) {
		las_developer_message(res, dev, sizeof(dev));
		snprintf(err, errlen, "HTTP %ld%.1050s", st, dev);
		return NULL;
	}
	if ((doc = xml_parse(res->body, res->body_len, LAS_MAX_RESPONSE, xerr, sizeof(xerr))) ==
	    NULL) {
		c->log.validation = MSGLOG_INVALID;
		snprintf(verr, verrlen, "invalid XML: %.600s", xerr);
		snprintf(err, errlen, "omobility-las get: %.700s", verr);
		return NULL;
	}
	if (xsd_validate(xsd, doc, xerr, sizeof(xerr)) == -1) {
		c->log.validation = MSGLOG_INVALID;
		snprintf(verr, verrlen, "does not match " LAS_SCHEMA ": %.600s", xerr);
		snprintf(err, errlen, "omobility-las get: the response %.700s", verr);
		xmlFreeDoc(doc);
		return NULL;
	}
	c->log.validation = MSGLOG_VALID;
	xml_dump(doc, &out, &len);
	xmlFreeDoc(doc);
	copy = xstrdup(out);
	xmlFree(out);
	*o = JOBS_SUCCESS;
	return copy;
}

static void
las_fetched(const struct httpc_result *res, void *arg)
{
	struct las_call *c = arg;
	struct jobs_run *run = c->run;
	const struct jobs_job *job = jobs_run_job(run);
	struct ewpd *d = jobs_run_daemon(run);
	struct msglog_entry *e = &c->log;
	enum jobs_outcome o;
	char err[1800] = "", verr[800] = "", jid[32], sent[48];
	char *doc = NULL;
	struct xsd *xsd;

	c->req = NULL;
	if ((xsd = las_schema(d, err, sizeof(err))) != NULL)
		doc = las_check(c, res, &o, err, sizeof(err), verr, sizeof(verr), xsd);
	else
		o = JOBS_RETRY;
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
	e->validation_error = verr[0] ? verr : NULL;
	e->error = err[0] ? err : NULL;
	msglog_add(d->msglog, e);
	if (doc == NULL) {
		long st = res->status;

		las_free(c);
		jobs_done(run, o, st > 0 ? (int)st : 0, err);
		return;
	}
	snprintf(jid, sizeof(jid), "%lld", job->id);
	snprintf(sent, sizeof(sent), "%lld.%06ld", (long long)e->started, e->started_us);
	const char *params[] = {doc, job->hei_id, c->sending_hei, job->dedupe_key, jid, sent};
	c->q = db_query(d->db, las_store_sql, 6, params, las_stored, c);
	free(doc);
}

void
jobs_refetch_las_start(struct jobs_run *run)
{
	const struct jobs_job *job = jobs_run_job(run);
	struct ewpd *d = jobs_run_daemon(run);
	struct httpc_endpoint ep;
	struct las_call *c;
	struct form f;
	struct buf body;
	char err[512] = "";
	char *he, *oe;
	const char *sending;

	if (d->snap == NULL) {
		jobs_done(run, JOBS_RETRY, 0, "no catalogue loaded yet");
		return;
	}
	if (las_schema(d, err, sizeof(err)) == NULL) {
		jobs_done(run, JOBS_RETRY, 0, err);
		return;
	}
	if (httpc_endpoint(d->snap->reg, job->hei_id, LAS_ENTRY_NS, "get-url", &ep, err,
	                   sizeof(err)) == -1) {
		char why[700];

		snprintf(
		    why, sizeof(why),
		    "HEI %.200s publishes no Outgoing Mobility Learning Agreements API v1 "
		    "(get-url) in the catalogue, so its learning agreement cannot be fetched%s%s",
		    job->hei_id, err[0] ? ": " : "", err);
		jobs_done(run, JOBS_NO_API, 0, why);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	if (form_parse(job->form, strlen(job->form), &f, err, sizeof(err)) == 0 &&
	    (sending = form_get(&f, "sending_hei_id")) != NULL && sending[0] != '\0')
		c->sending_hei = xstrdup(sending);
	else
		c->sending_hei = xstrdup(job->hei_id);
	form_free(&f);
	c->run = run;
	c->snap = snap_ref(d->snap);
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

	he = curl_easy_escape(NULL, c->sending_hei, 0);
	oe = curl_easy_escape(NULL, job->dedupe_key, 0);
	buf_init(&body, 4096);
	if (he == NULL || oe == NULL ||
	    buf_printf(&body, "sending_hei_id=%s&omobility_id=%s", he, oe) != 0) {
		curl_free(he);
		curl_free(oe);
		buf_free(&body);
		las_free(c);
		jobs_done(run, JOBS_RETRY, 0, "cannot build the get request");
		return;
	}
	curl_free(he);
	curl_free(oe);
	struct httpc_params p = {
	    .method = "POST",
	    .url = ep.url,
	    .body = buf_cstr(&body),
	    .body_len = body.len,
	    .key = d->client_key,
	    .reg = c->snap->reg,
	    .timeout_ms = (long)d->conf->jobs_timeout * 1000,
	    .max_response_bytes = LAS_MAX_RESPONSE,
	};
	jobs_run_set_data(run, c);
	c->req = httpc_request(jobs_run_httpc(run), &p, las_fetched, c, err, sizeof(err));
	buf_free(&body);
	if (c->req == NULL) {
		jobs_run_set_data(run, NULL);
		las_free(c);
		jobs_done(run, JOBS_RETRY, 0, err);
	}
}

void
jobs_refetch_las_cancel(struct jobs_run *run)
{
	struct las_call *c = jobs_run_data(run);

	if (c == NULL)
		return;
	httpc_cancel(c->req);
	if (c->q != NULL)
		db_query_cancel(c->q);
	las_free(c);
}
