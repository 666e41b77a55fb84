/*
 * jobs_update.c - job kind ('out', 'update'): sends one staff decision
 * (a row of ewp.decisions, sql/0010_decisions.sql) to the sending HEI's
 * update endpoint: OMobilities v3 omobilities-update-request (approve or
 * reject a nomination) or OMobility LAs v1.2 omobility-las-update-request
 * (approve or comment a changes proposal, signed by our staff member).
 *
 * The job's payload names the decision ({"decision_id": N, ...}); its
 * hei_id is the sending HEI, its api "omobilities" or "omobility-las".
 * The request document is written by ewp.decision_request() from the
 * decision and its mobility, POSTed as text/xml, signed with our client
 * key, to the update-url of the partner's entry in the cached catalogue
 * (OMobilities stable-v3, OMobility LAs stable-v1); the response's
 * signature is verified and every attempt is a message-log row with the
 * job's id.
 *
 * Outcomes, recorded by ewp.decision_answered() before the job ends:
 *   2xx, signature verified  decision accepted, re-fetch queued, workflow
 *                            moved; job success
 *   409                      decision conflict (the partner's
 *                            user-message), re-fetch queued; job rejected
 *   other 4xx                decision refused (developer-message); job
 *                            rejected, never retried
 *   5xx, timeout, transport, 2xx whose signature is refused: retry with
 *   backoff; when the job expires, or the partner publishes no update
 *   endpoint (job no-cnr-api), the trigger decisions_job_ended fails the
 *   decision with the job's reason.
 * A decision already accepted or in conflict (the outcome of an earlier
 * run was written but not the job's) is not sent again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#define UPDATE_MAX_RESPONSE (1024 * 1024)
#define UPDATE_MAX_MESSAGE  1500
#define UPDATE_ENTRY_NS(api, v)                                                                    \
	"https://github.com/erasmus-without-paper/ewp-specs-api-" api "/blob/stable-v" v           \
	"/manifest-entry.xsd"

/* The update APIs by job api, with the manifest entry they are sent to. */
static const struct update_api {
	const char *name;
	const char *ns;
	const char *label;
} update_apis[] = {
    {"omobilities", UPDATE_ENTRY_NS("omobilities", "3"), "Outgoing Mobilities v3"},
    {"omobility-las", UPDATE_ENTRY_NS("omobility-las", "1"),
     "Outgoing Mobility Learning Agreements v1"},
};

static const char request_sql[] =
    "SELECT state, partner, api, omobility_id, body"
    " FROM ewp.decision_request(($1::jsonb ->> 'decision_id')::bigint)";

static const char answered_sql[] = "SELECT ewp.decision_answered("
                                   "($1::jsonb ->> 'decision_id')::bigint, $2, $3::int, $4)";

struct update_call {
	struct jobs_run *run;
	struct db_query *q;
	struct httpc_req *req;
	struct snap *snap;
	struct msglog_entry log;
	const char *partner[1];
	char api_name[64], api_version[32];
	char *body;
	/* the outcome, kept while ewp.decision_answered() runs */
	enum jobs_outcome outcome;
	int http_status;
	char err[1800];
};

static void
update_free(struct update_call *c)
{
	snap_unref(c->snap);
	free(c->body);
	free(c);
}

/* Ends the job; c is freed (after jobs_done copied err, which may be c->err). */
static void
update_finish(struct update_call *c, enum jobs_outcome o, int http_status, const char *err)
{
	struct jobs_run *run = c->run;

	jobs_run_set_data(run, NULL);
	jobs_done(run, o, http_status, err && err[0] ? err : NULL);
	update_free(c);
}

/*
 * The text of the first child of the response's root named `name`
 * ("developer-message", "user-message", "success-user-message"), in
 * out; false when there is none.
 */
static bool
update_message(const struct httpc_result *res, const char *name, char *out, size_t outlen)
{
	char xerr[64];
	xmlDocPtr doc;
	xmlNode *root;
	bool found = false;

	out[0] = '\0';
	if (res->body_len == 0 || (doc = xml_parse(res->body, res->body_len, UPDATE_MAX_RESPONSE,
	                                           xerr, sizeof(xerr))) == NULL)
		return false;
	if ((root = xmlDocGetRootElement(doc)) != NULL)
		for (xmlNode *n = root->children; n && !found; n = n->next)
			if (n->type == XML_ELEMENT_NODE &&
			    strcmp((const char *)n->name, name) == 0) {
				xmlChar *t = xmlNodeGetContent(n);

				snprintf(out, outlen, "%.*s", UPDATE_MAX_MESSAGE,
				         t ? (const char *)t : "");
				xmlFree(t);
				found = true;
			}
	xmlFreeDoc(doc);
	return found;
}

static void
update_answered_cb(PGresult *res, const char *err, void *arg)
{
	struct update_call *c = arg;
	char buf[2000];

	(void)res;
	c->q = NULL;
	if (err != NULL) {
		/* the answer is not recorded: the next attempt sends again */
		snprintf(buf, sizeof(buf),
		         "partner answered (%s) but the decision was not updated: %s",
		         c->err[0] ? c->err : "success", err);
		update_finish(c, JOBS_RETRY, c->http_status, buf);
		return;
	}
	update_finish(c, c->outcome, c->http_status, c->err);
}

static void
update_http_cb(const struct httpc_result *res, void *arg)
{
	struct update_call *c = arg;
	struct jobs_run *run = c->run;
	struct ewpd *d = jobs_run_daemon(run);
	struct msglog_entry *e = &c->log;
	const char *state = NULL; /* for ewp.decision_answered() */
	char msg[UPDATE_MAX_MESSAGE + 16] = "", sigerr[400] = "";
	long st = res->status;

	c->req = NULL;
	c->err[0] = '\0';
	if (res->error == HTTPC_ERR_NONE && !res->verified)
		snprintf(sigerr, sizeof(sigerr), " (response signature refused: %.300s)",
		         res->verdict ? res->verdict->message : "no verdict");
	if (res->error != HTTPC_ERR_NONE) {
		c->outcome = JOBS_RETRY;
		snprintf(c->err, sizeof(c->err), "%s: %s", httpc_error_name(res->error),
		         res->error_message);
	} else if (st >= 200 && st < 300 && res->verified) {
		c->outcome = JOBS_SUCCESS;
		state = "accepted";
		update_message(res, "success-user-message", msg, sizeof(msg));
	} else if (st >= 200 && st < 300) {
		c->outcome = JOBS_RETRY;
		snprintf(c->err, sizeof(c->err), "HTTP %ld%s", st, sigerr);
	} else if (st == 409) {
		c->outcome = JOBS_REJECTED;
		state = "conflict";
		if (!update_message(res, "user-message", msg, sizeof(msg)))
			update_message(res, "developer-message", msg, sizeof(msg));
		snprintf(c->err, sizeof(c->err), "HTTP 409 (the proposal changed meanwhile)%s%s%s",
		         msg[0] ? ": " : "", msg, sigerr);
	} else if (st >= 400 && st < 500) {
		c->outcome = JOBS_REJECTED;
		state = "refused";
		update_message(res, "developer-message", msg, sizeof(msg));
		snprintf(c->err, sizeof(c->err), "HTTP %ld%s%s%s", st, msg[0] ? ": " : "", msg,
		         sigerr);
	} else {
		char dev[UPDATE_MAX_MESSAGE + 1];

		c->outcome = JOBS_RETRY;
		update_message(res, "developer-message", dev, sizeof(dev));
		snprintf(c->err, sizeof(c->err), "HTTP %ld%s%s%s", st, dev[0] ? ": " : "", dev,
		         sigerr);
	}
	c->http_status = st > 0 ? (int)st : 0;
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
	e->error = c->err[0] ? c->err : NULL;
	msglog_add(d->msglog, e);
	if (state == NULL) {
		update_finish(c, c->outcome, c->http_status, c->err);
		return;
	}
	const char *p[4] = {jobs_run_job(run)->payload, state, NULL, msg[0] ? msg : NULL};
	char sts[16];

	snprintf(sts, sizeof(sts), "%d", c->http_status);
	p[2] = sts;
	c->q = db_query(d->db, answered_sql, 4, p, update_answered_cb, c);
}

static void
update_loaded_cb(PGresult *res, const char *err, void *arg)
{
	struct update_call *c = arg;
	struct jobs_run *run = c->run;
	const struct jobs_job *job = jobs_run_job(run);
	struct ewpd *d = jobs_run_daemon(run);
	const struct update_api *api = NULL;
	struct httpc_endpoint ep;
	char buf[700] = "";
	const char *state;

	c->q = NULL;
	if (err != NULL) {
		snprintf(buf, sizeof(buf), "cannot read the decision: %s", err);
		update_finish(c, JOBS_RETRY, 0, buf);
		return;
	}
	if (PQntuples(res) != 1) {
		update_finish(c, JOBS_CANCELLED, 0, "the decision no longer exists");
		return;
	}
	state = PQgetvalue(res, 0, 0);
	if (strcmp(state, "accepted") == 0 || strcmp(state, "conflict") == 0) {
		log_info("jobs: job %lld: decision already answered (%s), not sent again", job->id,
		         state);
		update_finish(c, JOBS_SUCCESS, 0, NULL);
		return;
	}
	for (size_t i = 0; i < sizeof(update_apis) / sizeof(update_apis[0]); i++)
		if (strcmp(update_apis[i].name, PQgetvalue(res, 0, 2)) == 0)
			api = &update_apis[i];
	if (api == NULL) {
		update_finish(c, JOBS_CANCELLED, 0, "the decision names no update API ewpd knows");
		return;
	}
	if (d->snap == NULL) {
		update_finish(c, JOBS_RETRY, 0, "no catalogue loaded yet");
		return;
	}
	if (httpc_endpoint(d->snap->reg, PQgetvalue(res, 0, 1), api->ns, "update-url", &ep, buf,
	                   sizeof(buf)) == -1) {
		char why[1200];

		snprintf(why, sizeof(why),
		         "%s publishes no update endpoint of %s (update-url) in the catalogue: the "
		         "decision cannot be sent (%s)",
		         PQgetvalue(res, 0, 1), api->label, buf[0] ? buf : "HEI unknown");
		update_finish(c, JOBS_NO_API, 0, why);
		return;
	}
	c->body = xstrdup(PQgetvalue(res, 0, 4));
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
	    .body = c->body,
	    .body_len = strlen(c->body),
	    .content_type = "text/xml; charset=utf-8",
	    .key = d->client_key,
	    .reg = c->snap->reg,
	    .timeout_ms = (long)d->conf->jobs_timeout * 1000,
	    .max_response_bytes = UPDATE_MAX_RESPONSE,
	};
	c->req = httpc_request(jobs_run_httpc(run), &p, update_http_cb, c, buf, sizeof(buf));
	if (c->req == NULL)
		update_finish(c, JOBS_RETRY, 0, buf);
}

static void
update_start(struct jobs_run *run)
{
	struct ewpd *d = jobs_run_daemon(run);
	struct update_call *c = xcalloc(1, sizeof(*c));
	const char *p[1] = {jobs_run_job(run)->payload};

	c->run = run;
	jobs_run_set_data(run, c);
	c->q = db_query(d->db, request_sql, 1, p, update_loaded_cb, c);
}

static void
update_cancel(struct jobs_run *run)
{
	struct update_call *c = jobs_run_data(run);

	if (c == NULL)
		return;
	if (c->q)
		db_query_cancel(c->q);
	httpc_cancel(c->req);
	jobs_run_set_data(run, NULL);
	update_free(c);
}

const struct jobs_kind jobs_kind_update = {
    .direction = "out",
    .kind = "update",
    .start = update_start,
    .cancel = update_cancel,
};
