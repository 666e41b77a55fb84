/*
 * jobs_int.h - what the job runner lends to the handlers of its kinds
 * (jobs_*.c), beyond jobs.h.
 */
#ifndef JOBS_INT_H
#define JOBS_INT_H

#include "jobs.h"

struct httpc;

/* The worker's outbound HTTP client, owned by the runner. */
struct httpc *jobs_run_httpc(const struct jobs_run *run);

/* 'refetch' handlers (jobs_refetch.c's table), one file each. */
void jobs_refetch_imobilities_start(struct jobs_run *run);
void jobs_refetch_imobilities_cancel(struct jobs_run *run);

#endif
