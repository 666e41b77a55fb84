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

#include "daemon.h"
#include "jobs.h"
#include "jobs_call.h"
#include "xmalloc.h"

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

static void
cnr_done(const struct jobs_call_answer *a, void *arg)
{
	struct jobs_call *c = arg;
	struct jobs_run *run = c->run;

	jobs_call_reset(c);
	free(c);
	jobs_done(run, a->outcome, a->http_status, a->error);
}

static void
cnr_start(struct jobs_run *run)
{
	const struct jobs_job *job = jobs_run_job(run);
	struct ewpd *d = jobs_run_daemon(run);
	const struct cnr_api *api = NULL;
	struct jobs_call *c;
	enum jobs_outcome o;
	char err[512] = "";

	for (size_t i = 0; i < sizeof(cnr_apis) / sizeof(cnr_apis[0]); i++)
		if (strcmp(cnr_apis[i].name, job->api) == 0)
			api = &cnr_apis[i];
	if (api == NULL) {
		snprintf(err, sizeof(err), "ewpd knows no CNR API named \"%.64s\"", job->api);
		jobs_done(run, JOBS_NO_API, 0, err);
		return;
	}
	struct jobs_call_spec s = {
	    .ns = {api->ns[0], api->ns[1], api->ns[2]},
	    .url_name = "url",
	    .body = job->form,
	    .max_response = CNR_MAX_RESPONSE,
	    .any_2xx = true,
	};
	c = xcalloc(1, sizeof(*c));
	jobs_run_set_data(run, c);
	if (jobs_call_start(c, run, &s, cnr_done, c, &o, err, sizeof(err)) == -1) {
		if (o == JOBS_NO_API && registry_hei_known(d->snap->reg, job->hei_id))
			snprintf(
			    err, sizeof(err),
			    "no host covering HEI %.200s implements %s (any version ewpd knows)",
			    job->hei_id, api->name);
		jobs_run_set_data(run, NULL);
		free(c);
		jobs_done(run, o, 0, err);
	}
}

static void
cnr_cancel(struct jobs_run *run)
{
	struct jobs_call *c = jobs_run_data(run);

	if (c == NULL)
		return;
	jobs_call_reset(c);
	free(c);
}

const struct jobs_kind jobs_kind_cnr = {
    .direction = "out",
    .kind = "cnr",
    .start = cnr_start,
    .cancel = cnr_cancel,
};
