/*
 * jobs_call.c - the signed exchange of a job with a partner: endpoint
 * from the catalogue, signed request, verified and judged answer, one
 * message-log row with the job's id (see jobs_call.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <libxml/tree.h>

#include "daemon.h"
#include "httpc.h"
#include "jobs.h"
#include "jobs_call.h"
#include "jobs_int.h"
#include "log.h"
#include "msglog.h"
#include "xmalloc.h"
#include "xml.h"

#define JOBS_CALL_XSD_CACHE 8

/* The intake schemas this process compiled, by path. */
static struct jobs_call_xsd {
	char *path;
	struct xsd *xsd;
} jobs_call_xsds[JOBS_CALL_XSD_CACHE];

struct xsd *
jobs_call_xsd(const char *schema_dir, const char *name, char *err, size_t errlen)
{
	char *path = xasprintf("%s/%s", schema_dir, name);
	struct xsd *x;
	size_t i;

	for (i = 0; i < JOBS_CALL_XSD_CACHE && jobs_call_xsds[i].path; i++)
		if (strcmp(jobs_call_xsds[i].path, path) == 0) {
			free(path);
			return jobs_call_xsds[i].xsd;
		}
	if ((x = xsd_load(path, err, errlen)) == NULL) {
		log_warnx("jobs: intake schema %s: %s (see [ewp] schema_dir)", path, err);
		free(path);
		return NULL;
	}
	if (i == JOBS_CALL_XSD_CACHE) { /* full: the oldest goes */
		free(jobs_call_xsds[0].path);
		xsd_free(jobs_call_xsds[0].xsd);
		memmove(&jobs_call_xsds[0], &jobs_call_xsds[1],
		        sizeof(jobs_call_xsds[0]) * (JOBS_CALL_XSD_CACHE - 1));
		i = JOBS_CALL_XSD_CACHE - 1;
	}
	jobs_call_xsds[i].path = path;
	jobs_call_xsds[i].xsd = x;
	return x;
}

int
jobs_call_form_add(struct buf *b, const char *name, const char *value)
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
jobs_call_developer_message(const struct jobs_call *c, const struct httpc_result *res, char *out,
                            size_t outlen)
{
	char dev[JOBS_CALL_MAX_DEV + 1];

	out[0] = '\0';
	if (xml_root_child_text(res->body, res->body_len, c->max_response, "developer-message", dev,
	                        sizeof(dev)))
		snprintf(out, outlen, ": %s", dev);
}

bool
jobs_call_replay_refused(const struct jobs_call *c, const struct httpc_result *res)
{
	char dev[JOBS_CALL_MAX_DEV + 1];

	if (res->error != HTTPC_ERR_NONE || res->status != 400 ||
	    !xml_root_child_text(res->body, res->body_len, c->max_response, "developer-message",
	                         dev, sizeof(dev)))
		return false;
	for (char *p = dev; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return (strstr(dev, "request-id") || strstr(dev, "request id")) &&
	       (strstr(dev, "already") || strstr(dev, "replay") || strstr(dev, "reuse") ||
	        strstr(dev, "duplicate") || strstr(dev, "used"));
}

/*
 * The default rules (jobs_call.h): the outcome, the reason in err, and
 * on success with a schema the valid document in *doc (caller frees).
 */
static enum jobs_outcome
jobs_call_judge(struct jobs_call *c, const struct httpc_result *res, xmlDocPtr *doc, char *err,
                size_t errlen)
{
	struct ewpd *d = jobs_run_daemon(c->run);
	char dev[JOBS_CALL_MAX_DEV + 8], xerr[900];
	struct xsd *xsd;
	long st = res->status;
	bool ok = c->any_2xx ? st >= 200 && st < 300 : st == 200;

	*doc = NULL;
	if (res->error != HTTPC_ERR_NONE) {
		snprintf(err, errlen, "%s: %s", httpc_error_name(res->error), res->error_message);
		return JOBS_RETRY;
	}
	if (jobs_call_replay_refused(c, res)) {
		jobs_call_developer_message(c, res, dev, sizeof(dev));
		snprintf(err, errlen,
		         "HTTP %ld%s (taken for a replay: sent again with a new request id)", st,
		         dev);
		return JOBS_RETRY;
	}
	if (st >= 400 && st < 500) {
		jobs_call_developer_message(c, res, dev, sizeof(dev));
		snprintf(err, errlen, "HTTP %ld%s%s%.300s%s", st, dev,
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
	if (!ok) {
		jobs_call_developer_message(c, res, dev, sizeof(dev));
		snprintf(err, errlen, "HTTP %ld%s", st, dev);
		return JOBS_RETRY;
	}
	if (c->xsd == NULL)
		return JOBS_SUCCESS;
	if ((xsd = jobs_call_xsd(d->conf->schema_dir, c->xsd, xerr, sizeof(xerr))) == NULL) {
		snprintf(err, errlen, "cannot load our schema %s (see [ewp] schema_dir): %s",
		         c->xsd, xerr);
		return JOBS_RETRY;
	}
	if ((*doc = xml_parse(res->body, res->body_len, c->max_response, xerr, sizeof(xerr))) ==
	    NULL) {
		snprintf(err, errlen, "invalid XML: %s", xerr);
		c->log.validation = MSGLOG_INVALID;
		return JOBS_RETRY;
	}
	if (xsd_validate(xsd, *doc, xerr, sizeof(xerr)) == -1) {
		snprintf(err, errlen, "the answer does not match %s: %s",
		         c->xsd_label ? c->xsd_label : c->xsd, xerr);
		c->log.validation = MSGLOG_INVALID;
		xmlFreeDoc(*doc);
		*doc = NULL;
		return JOBS_RETRY;
	}
	c->log.validation = MSGLOG_VALID;
	return JOBS_SUCCESS;
}

static void
jobs_call_done_cb(const struct httpc_result *res, void *arg)
{
	struct jobs_call *c = arg;
	struct ewpd *d = jobs_run_daemon(c->run);
	struct jobs_call_answer a = {.res = res};
	char err[JOBS_CALL_ERR_LEN] = "";

	c->req = NULL;
	if (c->judge != NULL)
		a.outcome = c->judge(res, c->arg, err, sizeof(err));
	else
		a.outcome = jobs_call_judge(c, res, &a.doc, err, sizeof(err));
	a.http_status = res->status > 0 ? (int)res->status : 0;
	a.error = err[0] ? err : NULL;
	msglog_entry_exchange(&c->log, res);
	if (c->log.validation == MSGLOG_INVALID)
		c->log.validation_error = err;
	c->log.error = a.error;
	msglog_add(d->msglog, &c->log);
	/* the callback may free c (and end the job): c is not used after it */
	c->cb(&a, c->arg);
	xmlFreeDoc(a.doc);
}

int
jobs_call_start(struct jobs_call *c, struct jobs_run *run, const struct jobs_call_spec *s,
                jobs_call_cb *cb, void *arg, enum jobs_outcome *o, char *err, size_t errlen)
{
	const struct jobs_job *job = jobs_run_job(run);
	struct ewpd *d = jobs_run_daemon(run);
	const char *hei = s->hei_id ? s->hei_id : job->hei_id;
	struct httpc_endpoint ep;
	int found = -1;

	*o = JOBS_RETRY;
	err[0] = '\0';
	if (d->snap == NULL) {
		snprintf(err, errlen, "no catalogue loaded yet");
		return -1;
	}
	for (size_t i = 0; found == -1 && i < JOBS_CALL_MAX_NS && s->ns[i]; i++)
		found = httpc_endpoint(d->snap->reg, hei, s->ns[i], s->url_name, &ep, err, errlen);
	if (found == -1) {
		*o = JOBS_NO_API;
		return -1;
	}
	c->run = run;
	c->snap = snap_ref(d->snap);
	c->cb = cb;
	c->arg = arg;
	c->judge = s->judge;
	c->xsd = s->xsd;
	c->xsd_label = s->xsd_label;
	c->max_response = s->max_response;
	c->any_2xx = s->any_2xx;
	c->partner[0] = job->hei_id;
	snprintf(c->api_name, sizeof(c->api_name), "%s", ep.api->name);
	snprintf(c->api_version, sizeof(c->api_version), "%s", ep.api->version);
	c->log = (struct msglog_entry){0};
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
	    .body = s->body,
	    .body_len = strlen(s->body),
	    .content_type = s->content_type,
	    .key = d->client_key,
	    .reg = c->snap->reg,
	    .timeout_ms = (long)d->conf->jobs_timeout * 1000,
	    .max_response_bytes = s->max_response,
	};
	c->req = httpc_request(jobs_run_httpc(run), &p, jobs_call_done_cb, c, err, errlen);
	if (c->req == NULL) {
		jobs_call_reset(c);
		return -1;
	}
	return 0;
}

void
jobs_call_reset(struct jobs_call *c)
{
	httpc_cancel(c->req);
	c->req = NULL;
	snap_unref(c->snap);
	c->snap = NULL;
}
