/*
 * jobs_refetch_las.h - the 'refetch' handler for api "omobility-las"
 * (jobs_refetch_las.c): fetch a partner's learning agreement after its
 * OMobility LA CNR and store it.
 */
#ifndef JOBS_REFETCH_LAS_H
#define JOBS_REFETCH_LAS_H

struct jobs_run;

void jobs_refetch_las_start(struct jobs_run *run);
void jobs_refetch_las_cancel(struct jobs_run *run);

#endif
