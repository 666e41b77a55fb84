/*
 * jobs_cnr.c - job kind ('out', 'cnr'): sends one change notification to
 * a partner's CNR API. The job's api names the CNR API
 * ("omobility-cnr", ...); its payload is the form to POST (e.g.
 * {"sending_hei_id": "x", "omobility_id": ["a", "b"]}). The endpoint is
 * the one the cached catalogue lists for the partner HEI (highest major
 * version we know first); the request is signed with our client key and
 * the response verified. Each attempt is a row of the message log with
 * the job's id.
 *
 * Outcomes: 2xx with a verified signature: success. 4xx: rejected, with
 * the partner's developer-message. Timeouts, connection and TLS errors,
 * 5xx, any other status and responses whose signature is refused: retry.
 * No such API for the HEI in the catalogue: no-cnr-api.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "daemon.h"
#include "httpc.h"
#include "jobs.h"
#include "jobs_int.h"
#include "log.h"
#include "msglog.h"
#include "xmalloc.h"
#include "xml.h"

#define CNR_MAX_RESPONSE (1024 * 1024)
#define CNR_NS(api, v)                                                                             \
	"https://github.com/erasmus-without-paper/ewp-specs-api-" api "/blob/stable-v" v           \
	"/manifest-entry.xsd"

/* CNR APIs by name, the manifest-entry namespaces to look for, newest first. */
static const struct cnr_api {
	const char *name;
	const char *ns[3];
} cnr_apis[] = {
    {"omobility-cnr", {CNR_NS("omobility-cnr", "2"), CNR_NS("omobility-cnr", "1"), NULL}},
    {"omobility-la-cnr", {CNR_NS("omobility-la-cnr", "1"), NULL, NULL}},
    {"imobility-cnr", {CNR_NS("imobility-cnr", "2"), CNR_NS("imobility-cnr", "1"), NULL}},
    {"imobility-tor-cnr",
     {CNR_NS("imobility-tor-cnr", "2"), CNR_NS("imobility-tor-cnr", "1"), NULL}},
    {"iia-cnr", {CNR_NS("iia-cnr", "3"), CNR_NS("iia-cnr", "2"), CNR_NS("iia-cnr", "1")}},
    {"iia-approval-cnr", {CNR_NS("iia-approval-cnr", "2"), CNR_NS("iia-approval-cnr", "1"), NULL}},
};

struct cnr_call {
	struct jobs_run *run;
	struct httpc_req *req;
	struct snap *snap;
	struct msglog_entry log;
	const char *partner[1];
	char api_name[64], api_version[32];
};

/* ": <developer-message>" of an <error-response>, or "". */
static void
cnr_developer_message(const struct httpc_result *res, char *out, size_t outlen)
{
	char xerr[64];
	xmlDocPtr doc;
	xmlNode *root;

	out[0] = '\0';
	if (res->body_len == 0 || (doc = xml_parse(res->body, res->body_len, CNR_MAX_RESPONSE, xerr,
	                                           sizeof(xerr))) == NULL)
		return;
	if ((root = xmlDocGetRootElement(doc)) != NULL)
		for (xmlNode *n = root->children; n; n = n->next)
			if (n->type == XML_ELEMENT_NODE &&
			    strcmp((const char *)n->name, "developer-message") == 0) {
				xmlChar *t = xmlNodeGetContent(n);

				snprintf(out, outlen, ": %.1500s", t ? (const char *)t : "");
				xmlFree(t);
				break;
			}
	xmlFreeDoc(doc);
}

static void
cnr_done(const struct httpc_result *res, void *arg)
{
	struct cnr_call *c = arg;
	struct jobs_run *run = c->run;
	struct ewpd *d = jobs_run_daemon(run);
	struct msglog_entry *e = &c->log;
	enum jobs_outcome o;
	char err[1800], dev[1600];
	long st = res->status;

	c->req = NULL;
	if (res->error != HTTPC_ERR_NONE) {
		o = JOBS_RETRY;
		snprintf(err, sizeof(err), "%s: %s", httpc_error_name(res->error),
		         res->error_message);
	} else {
		cnr_developer_message(res, dev, sizeof(dev));
		if (st >= 200 && st < 300 && res->verified) {
			o = JOBS_SUCCESS;
			err[0] = '\0';
		} else if (st >= 400 && st < 500) {
			o = JOBS_REJECTED;
			snprintf(err, sizeof(err), "HTTP %ld%s%s%s", st, dev,
			         res->verified ? "" : " (response signature refused: ",
			         res->verified
			             ? ""
			             : (res->verdict ? res->verdict->message : "no verdict"));
			if (!res->verified)
				strncat(err, ")", sizeof(err) - strlen(err) - 1);
		} else if (!res->verified) {
			o = JOBS_RETRY;
			snprintf(err, sizeof(err), "HTTP %ld, response signature refused: %s", st,
			         res->verdict ? res->verdict->message : "no verdict");
		} else {
			o = JOBS_RETRY;
			snprintf(err, sizeof(err), "HTTP %ld%s", st, dev);
		}
	}
	e->method = res->method;
	e->url = res->url;
	e->status = (int)st;
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
	e->error = err[0] ? err : NULL;
	msglog_add(d->msglog, e);
	snap_unref(c->snap);
	free(c);
	jobs_done(run, o, st > 0 ? (int)st : 0, err[0] ? err : NULL);
}

static void
cnr_start(struct jobs_run *run)
{
	const struct jobs_job *job = jobs_run_job(run);
	struct ewpd *d = jobs_run_daemon(run);
	const struct cnr_api *api = NULL;
	struct httpc_endpoint ep;
	struct cnr_call *c;
	char err[512] = "";
	int found = -1;

	for (size_t i = 0; i < sizeof(cnr_apis) / sizeof(cnr_apis[0]); i++)
		if (strcmp(cnr_apis[i].name, job->api) == 0)
			api = &cnr_apis[i];
	if (api == NULL) {
		snprintf(err, sizeof(err), "ewpd knows no CNR API named \"%.64s\"", job->api);
		jobs_done(run, JOBS_NO_API, 0, err);
		return;
	}
	if (d->snap == NULL) {
		jobs_done(run, JOBS_RETRY, 0, "no catalogue loaded yet");
		return;
	}
	for (size_t i = 0; found == -1 && i < 3 && api->ns[i]; i++)
		found = httpc_endpoint(d->snap->reg, job->hei_id, api->ns[i], "url", &ep, err,
		                       sizeof(err));
	if (found == -1) {
		if (registry_hei_known(d->snap->reg, job->hei_id))
			snprintf(
			    err, sizeof(err),
			    "no host covering HEI %.200s implements %s (any version ewpd knows)",
			    job->hei_id, api->name);
		jobs_done(run, JOBS_NO_API, 0, err);
		return;
	}
	c = xcalloc(1, sizeof(*c));
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
	struct httpc_params p = {
	    .method = "POST",
	    .url = ep.url,
	    .body = job->form,
	    .body_len = strlen(job->form),
	    .key = d->client_key,
	    .reg = c->snap->reg,
	    .timeout_ms = (long)d->conf->jobs_timeout * 1000,
	    .max_response_bytes = CNR_MAX_RESPONSE,
	};
	jobs_run_set_data(run, c);
	c->req = httpc_request(jobs_run_httpc(run), &p, cnr_done, c, err, sizeof(err));
	if (c->req == NULL) {
		snap_unref(c->snap);
		free(c);
		jobs_run_set_data(run, NULL);
		jobs_done(run, JOBS_RETRY, 0, err);
	}
}

static void
cnr_cancel(struct jobs_run *run)
{
	struct cnr_call *c = jobs_run_data(run);

	if (c == NULL)
		return;
	httpc_cancel(c->req);
	snap_unref(c->snap);
	free(c);
}

const struct jobs_kind jobs_kind_cnr = {
    .direction = "out",
    .kind = "cnr",
    .start = cnr_start,
    .cancel = cnr_cancel,
};
