/* metrics.c - shared counters rendered in the Prometheus text format. */
#include <stddef.h>

#include "metrics.h"
#include "shm.h"

static const int metrics_statuses[METRICS_NSTATUS] = {200, 304, 400, 401, 403, 404,
                                                      405, 413, 415, 500, 503, 0};
/* Upper bounds in microseconds: 0.25 ms .. 10 s. */
static const uint64_t metrics_bounds[METRICS_NBUCKETS] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 500000, 1000000, 10000000};
static const char *const metrics_api_names[METRICS_API_COUNT] = {
    "manifest",      "echo",        "institutions",  "ounits",           "course-replication",
    "courses",       "factsheet",   "omobility-cnr", "omobility-la-cnr", "omobilities",
    "omobility-las", "imobilities", "imobility-cnr", "healthz",          "metrics",
    "portal",        "other"};

struct metrics *
metrics_new(void)
{
	return shm_alloc(sizeof(struct metrics));
}

void
metrics_free(struct metrics *m)
{
	shm_free(m, sizeof(*m));
}

const char *
metrics_api_name(enum metrics_api api)
{
	return metrics_api_names[api];
}

void
metrics_add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static int
metrics_status_index(int status)
{
	for (int i = 0; i < METRICS_NSTATUS - 1; i++)
		if (metrics_statuses[i] == status)
			return i;
	return METRICS_NSTATUS - 1; /* "other" */
}

void
metrics_request(struct metrics *m, enum metrics_api api, int status, uint64_t usecs)
{
	int b = 0;

	if (m == NULL)
		return;
	metrics_add(&m->requests[api][metrics_status_index(status)], 1);
	while (b < METRICS_NBUCKETS && usecs > metrics_bounds[b])
		b++;
	metrics_add(&m->buckets[api][b], 1);
	metrics_add(&m->sum_us[api], usecs);
}

void
metrics_sigfail(struct metrics *m, enum httpsig_reason r)
{
	if (m && r > HTTPSIG_OK && r < HTTPSIG_REASON_COUNT)
		metrics_add(&m->sigfail[r], 1);
}

static uint64_t
metrics_get(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

static int
metrics_render_requests(const struct metrics *m, struct buf *out)
{
	int rc = buf_addstr(out, "# HELP ewpd_requests_total HTTP requests answered, by API and "
	                         "status.\n# TYPE ewpd_requests_total counter\n");

	for (int a = 0; a < METRICS_API_COUNT && rc == 0; a++) {
		for (int s = 0; s < METRICS_NSTATUS && rc == 0; s++) {
			uint64_t v = metrics_get(&m->requests[a][s]);
			if (v == 0)
				continue;
			if (metrics_statuses[s])
				rc = buf_printf(
				    out, "ewpd_requests_total{api=\"%s\",status=\"%d\"} %llu\n",
				    metrics_api_names[a], metrics_statuses[s],
				    (unsigned long long)v);
			else
				rc = buf_printf(
				    out, "ewpd_requests_total{api=\"%s\",status=\"other\"} %llu\n",
				    metrics_api_names[a], (unsigned long long)v);
		}
	}
	return rc;
}

static int
metrics_render_sigfail(const struct metrics *m, struct buf *out)
{
	int rc = buf_addstr(out, "# HELP ewpd_signature_failures_total Requests refused by the "
	                         "HTTP Signature checks, by reason.\n"
	                         "# TYPE ewpd_signature_failures_total counter\n");

	for (int r = HTTPSIG_OK + 1; r < HTTPSIG_REASON_COUNT && rc == 0; r++)
		rc = buf_printf(out, "ewpd_signature_failures_total{reason=\"%s\"} %llu\n",
		                httpsig_reason_name((enum httpsig_reason)r),
		                (unsigned long long)metrics_get(&m->sigfail[r]));
	return rc;
}

static int
metrics_render_latency(const struct metrics *m, struct buf *out)
{
	int rc = buf_addstr(out, "# HELP ewpd_request_duration_seconds Time from request to "
	                         "response, by API.\n"
	                         "# TYPE ewpd_request_duration_seconds histogram\n");

	for (int a = 0; a < METRICS_API_COUNT && rc == 0; a++) {
		uint64_t cum = 0;
		for (int b = 0; b <= METRICS_NBUCKETS && rc == 0; b++) {
			cum += metrics_get(&m->buckets[a][b]);
			if (b < METRICS_NBUCKETS)
				rc = buf_printf(out,
				                "ewpd_request_duration_seconds_bucket{api=\"%s\","
				                "le=\"%g\"} %llu\n",
				                metrics_api_names[a], metrics_bounds[b] / 1e6,
				                (unsigned long long)cum);
			else
				rc = buf_printf(
				    out,
				    "ewpd_request_duration_seconds_bucket{api=\"%s\","
				    "le=\"+Inf\"} %llu\n"
				    "ewpd_request_duration_seconds_sum{api=\"%s\"} %.6f\n"
				    "ewpd_request_duration_seconds_count{api=\"%s\"} "
				    "%llu\n",
				    metrics_api_names[a], (unsigned long long)cum,
				    metrics_api_names[a], metrics_get(&m->sum_us[a]) / 1e6,
				    metrics_api_names[a], (unsigned long long)cum);
		}
	}
	return rc;
}

int
metrics_render(const struct metrics *m, struct buf *out)
{
	if (metrics_render_requests(m, out) == -1 || metrics_render_sigfail(m, out) == -1 ||
	    metrics_render_latency(m, out) == -1)
		return -1;
	return buf_printf(
	    out,
	    "# HELP ewpd_signed_responses_total Responses signed on request (Accept-Signature).\n"
	    "# TYPE ewpd_signed_responses_total counter\newpd_signed_responses_total %llu\n"
	    "# HELP ewpd_reloads_total Configuration reloads applied (SIGHUP).\n"
	    "# TYPE ewpd_reloads_total counter\newpd_reloads_total %llu\n"
	    "# HELP ewpd_registry_loads_total Catalogues fetched, validated and indexed.\n"
	    "# TYPE ewpd_registry_loads_total counter\newpd_registry_loads_total %llu\n"
	    "# HELP ewpd_registry_failures_total Catalogue fetches or validations that failed.\n"
	    "# TYPE ewpd_registry_failures_total counter\newpd_registry_failures_total %llu\n"
	    "# HELP ewpd_registry_loaded_timestamp_seconds When the catalogue in use was loaded.\n"
	    "# TYPE ewpd_registry_loaded_timestamp_seconds gauge\n"
	    "ewpd_registry_loaded_timestamp_seconds %lld\n"
	    "# HELP ewpd_registry_heis HEIs in the catalogue in use.\n"
	    "# TYPE ewpd_registry_heis gauge\newpd_registry_heis %llu\n"
	    "# HELP ewpd_worker_restarts_total Workers restarted after an unexpected exit.\n"
	    "# TYPE ewpd_worker_restarts_total counter\newpd_worker_restarts_total %llu\n"
	    "# HELP ewpd_message_log_rows_total Exchanges written to ewp.message_log.\n"
	    "# TYPE ewpd_message_log_rows_total counter\newpd_message_log_rows_total %llu\n"
	    "# HELP ewpd_message_log_dropped_total Exchanges that could not be logged.\n"
	    "# TYPE ewpd_message_log_dropped_total counter\newpd_message_log_dropped_total %llu\n"
	    "# HELP ewpd_sync_runs_total Scheduled institution syncs finished.\n"
	    "# TYPE ewpd_sync_runs_total counter\newpd_sync_runs_total %llu\n"
	    "# HELP ewpd_sync_partners_total Partners synced, by outcome.\n"
	    "# TYPE ewpd_sync_partners_total counter\n"
	    "ewpd_sync_partners_total{outcome=\"ok\"} %llu\n"
	    "ewpd_sync_partners_total{outcome=\"failed\"} %llu\n"
	    "# HELP ewpd_sync_finished_timestamp_seconds When the last scheduled sync finished.\n"
	    "# TYPE ewpd_sync_finished_timestamp_seconds gauge\n"
	    "ewpd_sync_finished_timestamp_seconds %lld\n",
	    (unsigned long long)metrics_get(&m->signed_responses),
	    (unsigned long long)metrics_get(&m->reloads),
	    (unsigned long long)metrics_get(&m->registry_loads),
	    (unsigned long long)metrics_get(&m->registry_failures),
	    (long long)__atomic_load_n(&m->registry_loaded_at, __ATOMIC_RELAXED),
	    (unsigned long long)metrics_get(&m->registry_heis),
	    (unsigned long long)metrics_get(&m->worker_restarts),
	    (unsigned long long)metrics_get(&m->message_log_rows),
	    (unsigned long long)metrics_get(&m->message_log_dropped),
	    (unsigned long long)metrics_get(&m->sync_runs),
	    (unsigned long long)metrics_get(&m->sync_partners_ok),
	    (unsigned long long)metrics_get(&m->sync_partners_failed),
	    (long long)__atomic_load_n(&m->sync_finished_at, __ATOMIC_RELAXED));
}
