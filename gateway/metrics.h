/*
 * metrics.h - counters for /metrics, shared by all workers.
 *
 * Lives in shared memory (see shm.h); every update is one atomic add, so a
 * scrape through any worker sees the totals of the whole daemon.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stdint.h>

#include "buf.h"
#include "httpsig.h"

enum metrics_api {
	METRICS_API_MANIFEST,
	METRICS_API_ECHO,
	METRICS_API_INSTITUTIONS,
	METRICS_API_OUNITS,
	METRICS_API_COURSE_REPLICATION,
	METRICS_API_COURSES,
	METRICS_API_FACTSHEET,
	METRICS_API_OMOBILITY_CNR,
	METRICS_API_OMOBILITY_LA_CNR,
	METRICS_API_OMOBILITIES,
	METRICS_API_OMOBILITY_LAS,
	METRICS_API_IMOBILITIES,
	METRICS_API_IMOBILITY_CNR,
	METRICS_API_HEALTH,
	METRICS_API_METRICS,
	METRICS_API_PORTAL,
	METRICS_API_OTHER,
	METRICS_API_COUNT
};

#define METRICS_NSTATUS  12
#define METRICS_NBUCKETS 12

struct metrics {
	uint64_t requests[METRICS_API_COUNT][METRICS_NSTATUS];
	uint64_t sigfail[HTTPSIG_REASON_COUNT];
	uint64_t buckets[METRICS_API_COUNT][METRICS_NBUCKETS + 1]; /* last = +Inf */
	uint64_t sum_us[METRICS_API_COUNT];
	uint64_t signed_responses;
	uint64_t reloads;
	uint64_t registry_loads;
	uint64_t registry_failures;
	int64_t registry_loaded_at; /* unix time of the snapshot in use */
	uint64_t registry_heis;
	uint64_t worker_restarts;
	uint64_t message_log_rows;    /* rows written to ewp.message_log */
	uint64_t message_log_dropped; /* rows lost (database away too long, or refused) */
	uint64_t sync_runs;           /* scheduled institution syncs finished */
	uint64_t sync_partners_ok;
	uint64_t sync_partners_failed;
	int64_t sync_finished_at; /* unix time of the last finished run */
};

/* Maps the shared counters (supervisor, before fork). */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);
const char *metrics_api_name(enum metrics_api api);
void metrics_request(struct metrics *m, enum metrics_api api, int status, uint64_t usecs);
void metrics_sigfail(struct metrics *m, enum httpsig_reason r);
void metrics_add(uint64_t *counter, uint64_t n);
/* Prometheus text exposition format 0.0.4. */
int metrics_render(const struct metrics *m, struct buf *out) EWP_MUSTCHECK;

#endif
