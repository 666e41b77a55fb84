/*
 * jobs_index.c - job kind ('in', 'index'): the periodic re-sync with a
 * partner. The job asks the partner's index endpoint of an API which of
 * its objects it would show us (since the previous listing, or all of
 * them), and queues a refetch job per id; the refetch jobs do the
 * storing. The job's hei_id is the partner, its api the API to list
 * ("omobilities"), its dedupe_key the API again (one pending listing per
 * partner and API), its payload {"full": true|false}. Each API has its
 * own handler (jobs_index_<api>.c); this file only picks it.
 */
#include <stddef.h>
#include <string.h>

#include "jobs.h"
#include "jobs_int.h"
#include "jobs_omobilities.h"

static const struct index_api {
	const char *api;
	void (*start)(struct jobs_run *run);
	void (*cancel)(struct jobs_run *run);
} index_apis[] = {
    {.api = "omobilities", .start = jobs_index_omobilities_start, .cancel = omob_call_cancel},
    {NULL, NULL, NULL}, /* end */
};

static const struct index_api *
index_find(const struct jobs_run *run)
{
	const char *api = jobs_run_job(run)->api;

	for (const struct index_api *a = index_apis; a->api != NULL; a++)
		if (strcmp(a->api, api) == 0)
			return a;
	return NULL;
}

static void
index_start(struct jobs_run *run)
{
	const struct index_api *a = index_find(run);

	if (a == NULL) {
		jobs_done(run, JOBS_CANCELLED, 0, "no index handler for this API");
		return;
	}
	a->start(run);
}

static void
index_cancel(struct jobs_run *run)
{
	const struct index_api *a = index_find(run);

	if (a != NULL && a->cancel != NULL)
		a->cancel(run);
}

const struct jobs_kind jobs_kind_index = {"in", "index", index_start, index_cancel};
