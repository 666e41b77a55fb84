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

#include "daemon.h"
#include "db.h"
#include "httpc.h"
#include "jobs.h"
#include "jobs_call.h"
#include "log.h"
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
	struct jobs_call call;
	/* the answer, kept while ewp.decision_answered() runs */
	const char *state; /* for ewp.decision_answered(); NULL: not to record */
	char msg[UPDATE_MAX_MESSAGE + 16];
	enum jobs_outcome outcome;
	int http_status;
	char err[JOBS_CALL_ERR_LEN];
};

static void
update_free(struct update_call *c)
{
	jobs_call_reset(&c->call);
	free(c);
}

/* Ends the job; c is freed (after the job, since err may be c->err). */
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
 * out (UPDATE_MAX_MESSAGE + 1 bytes at least); false when there is none.
 */
static bool
update_message(const struct httpc_result *res, const char *name, char *out)
{
	return xml_root_child_text(res->body, res->body_len, UPDATE_MAX_RESPONSE, name, out,
	                           UPDATE_MAX_MESSAGE + 1);
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

/* The jobs_call judge: a 409 is a conflict, a 2xx needs a verified signature. */
static enum jobs_outcome
update_judge(const struct httpc_result *res, void *arg, char *err, size_t errlen)
{
	struct update_call *c = arg;
	char *msg = c->msg, sigerr[400] = "";
	long st = res->status;
	enum jobs_outcome o;

	c->state = NULL;
	msg[0] = '\0';
	if (res->error == HTTPC_ERR_NONE && !res->verified)
		snprintf(sigerr, sizeof(sigerr), " (response signature refused: %.300s)",
		         res->verdict ? res->verdict->message : "no verdict");
	if (res->error != HTTPC_ERR_NONE) {
		o = JOBS_RETRY;
		snprintf(err, errlen, "%s: %s", httpc_error_name(res->error), res->error_message);
	} else if (st >= 200 && st < 300 && res->verified) {
		o = JOBS_SUCCESS;
		c->state = "accepted";
		update_message(res, "success-user-message", msg);
	} else if (st >= 200 && st < 300) {
		o = JOBS_RETRY;
		snprintf(err, errlen, "HTTP %ld%s", st, sigerr);
	} else if (st == 409) {
		o = JOBS_REJECTED;
		c->state = "conflict";
		if (!update_message(res, "user-message", msg))
			update_message(res, "developer-message", msg);
		snprintf(err, errlen, "HTTP 409 (the proposal changed meanwhile)%s%s%s",
		         msg[0] ? ": " : "", msg, sigerr);
	} else if (jobs_call_replay_refused(&c->call, res)) {
		o = JOBS_RETRY; /* our request id taken for a replay: sent again with a new one */
		update_message(res, "developer-message", msg);
		snprintf(err, errlen,
		         "HTTP %ld: %s (taken for a replay: sent again with a new request id)", st,
		         msg);
		msg[0] = '\0';
	} else if (st >= 400 && st < 500) {
		o = JOBS_REJECTED;
		c->state = "refused";
		update_message(res, "developer-message", msg);
		snprintf(err, errlen, "HTTP %ld%s%s%s", st, msg[0] ? ": " : "", msg, sigerr);
	} else {
		char dev[UPDATE_MAX_MESSAGE + 1];

		o = JOBS_RETRY;
		update_message(res, "developer-message", dev);
		snprintf(err, errlen, "HTTP %ld%s%s%s", st, dev[0] ? ": " : "", dev, sigerr);
	}
	return o;
}

static void
update_http_cb(const struct jobs_call_answer *a, void *arg)
{
	struct update_call *c = arg;
	struct ewpd *d = jobs_run_daemon(c->run);
	const char *p[4] = {jobs_run_job(c->run)->payload, c->state, NULL,
	                    c->msg[0] ? c->msg : NULL};
	char sts[16];

	c->outcome = a->outcome;
	c->http_status = a->http_status;
	snprintf(c->err, sizeof(c->err), "%s", a->error ? a->error : "");
	if (c->state == NULL) {
		update_finish(c, c->outcome, c->http_status, c->err);
		return;
	}
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
	const struct update_api *api = NULL;
	enum jobs_outcome o;
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
	struct jobs_call_spec s = {
	    .ns = {api->ns},
	    .url_name = "update-url",
	    .hei_id = PQgetvalue(res, 0, 1),
	    .body = PQgetvalue(res, 0, 4),
	    .content_type = "text/xml; charset=utf-8",
	    .max_response = UPDATE_MAX_RESPONSE,
	    .judge = update_judge,
	};
	if (jobs_call_start(&c->call, run, &s, update_http_cb, c, &o, buf, sizeof(buf)) == -1) {
		char why[1200];

		if (o == JOBS_NO_API)
			snprintf(
			    why, sizeof(why),
			    "%s publishes no update endpoint of %s (update-url) in the catalogue: "
			    "the decision cannot be sent (%s)",
			    PQgetvalue(res, 0, 1), api->label, buf[0] ? buf : "HEI unknown");
		update_finish(c, o, 0, o == JOBS_NO_API ? why : buf);
	}
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
	jobs_run_set_data(run, NULL);
	update_free(c);
}

const struct jobs_kind jobs_kind_update = {
    .direction = "out",
    .kind = "update",
    .start = update_start,
    .cancel = update_cancel,
};
