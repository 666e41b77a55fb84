/*
 * jobs_refetch.c - job kind ('in', 'refetch'): fetch again an object a
 * partner told us about (a CNR) or that the periodic re-sync found
 * changed, and store what its get endpoint now returns. The job's hei_id
 * is the partner, its api the API to call back ("omobilities",
 * "omobility-las", "imobilities"), its dedupe_key the object's id. Each
 * API has its own handler (jobs_refetch_<api>.c); this file only picks it.
 */
#include <stddef.h>
#include <string.h>

#include "jobs.h"
#include "jobs_int.h"
#include "jobs_omobilities.h"
#include "jobs_refetch_las.h"

static const struct refetch_api {
	const char *api;
	void (*start)(struct jobs_run *run);
	void (*cancel)(struct jobs_run *run);
} refetch_apis[] = {
    {.api = "omobilities", .start = jobs_refetch_omobilities_start, .cancel = omob_call_cancel},
    {"omobility-las", jobs_refetch_las_start, jobs_refetch_las_cancel},
    {"imobilities", jobs_refetch_imobilities_start, jobs_refetch_imobilities_cancel},
    {NULL, NULL, NULL}, /* end */
};

static const struct refetch_api *
refetch_find(const struct jobs_run *run)
{
	const char *api = jobs_run_job(run)->api;

	for (const struct refetch_api *a = refetch_apis; a->api != NULL; a++)
		if (strcmp(a->api, api) == 0)
			return a;
	return NULL;
}

static void
refetch_start(struct jobs_run *run)
{
	const struct refetch_api *a = refetch_find(run);

	if (a == NULL) {
		jobs_done(run, JOBS_CANCELLED, 0, "no re-fetch handler for this API");
		return;
	}
	a->start(run);
}

static void
refetch_cancel(struct jobs_run *run)
{
	const struct refetch_api *a = refetch_find(run);

	if (a != NULL && a->cancel != NULL)
		a->cancel(run);
}

const struct jobs_kind jobs_kind_refetch = {"in", "refetch", refetch_start, refetch_cancel};
