/*
 * jobs.h - the persistent job engine (outbox and inbox) of a worker:
 * jobs are rows of ewp.jobs (sql/0002_gateway_state.sql), claimed with
 * FOR UPDATE SKIP LOCKED and a lease, so that any number of workers and
 * nodes may share one database; each job is run by the handler of its
 * (direction, kind) and finished with one outcome.
 *
 * Runner: each worker claims due jobs (pending with next_attempt_at
 * passed, or running with lease_until passed: their worker died), at most
 * [jobs] concurrency at once, marking them running with lease_until =
 * now + [jobs] lease and leased_by = host:pid. It wakes on LISTEN
 * ewp_jobs (a job became pending; after a reconnect of the listening
 * connection it rescans), on a timer at the next due attempt or lease end
 * (at most JOBS_POLL_MAX_MS apart), and when one of its jobs finishes.
 * On drain it stops claiming; the jobs it runs finish (the worker waits
 * for them up to drain_timeout) or their lease runs out and another
 * worker takes them: delivery is at least once.
 *
 * Outcomes (jobs_done): success; retry (timeout, 5xx, connection error:
 * pending again after a backoff of [jobs] retry_min doubling per attempt
 * up to retry_max, each delay drawn at random in 50-100% of that step,
 * unless the next attempt would come after expires_at: then 'expired',
 * final); rejected (a 4xx: final, the partner's developer-message kept in
 * last_error and the status in last_http_status); no-cnr-api (final).
 * attempts counts the claims. A job whose expires_at is NULL gets
 * created_at + [jobs] give_up_after when it is first claimed.
 *
 * Duplicates: at most one pending job per (direction, kind, hei_id, api,
 * dedupe_key). Enqueuing a duplicate of a pending job keeps that row (its
 * id, attempts and place in the backoff) and gives it the new payload and
 * a new expires_at (now + give_up_after): the newest change wins and gets
 * its full delivery window. A running job that must be retried while a
 * newer pending duplicate exists becomes 'merged' into it (older into
 * newer), since that one will carry the change.
 *
 * Validator HEIs (jobs_validator_hei(): the official validator's fake
 * institutions validator-hei01/02) never get an 'in' job: enqueueing one
 * is a no-op, and a row inserted by other means is cancelled when claimed
 * (once an 'in' kind exists), so their data never reaches the SMILE core.
 *
 * Database outages: a claim that fails is tried again every second; an
 * outcome that cannot be written is kept and written again every second
 * while the lease lasts (then the job is run again by whoever claims it).
 *
 * The kinds are a table in jobs.c (jobs_kinds[]); only jobs of a known
 * (direction, kind) are claimed, others wait for a node that knows them.
 */
#ifndef JOBS_H
#define JOBS_H

#include <stdbool.h>

#include "ewpd.h"

struct db_pool;
struct db_query;
struct db_tx;
struct ewpd;
struct jobs;
struct jobs_run;

#define JOBS_CHANNEL     "ewp_jobs"
#define JOBS_POLL_MAX_MS 30000 /* rescan at least this often */
#define JOBS_POLL_MIN_MS 200   /* never rescan sooner (jobs due but locked) */
#define JOBS_MAX_ERROR   2000  /* bytes of last_error kept */
#define JOBS_MAX_CLAIM   32    /* jobs claimed by one statement at most */

/* The job as the handler sees it; strings lent while the job runs. */
struct jobs_job {
	long long id;
	const char *direction; /* "out" or "in" */
	const char *kind;      /* "cnr", ... */
	const char *hei_id;    /* the partner HEI */
	const char *api;       /* e.g. "omobility-cnr" */
	const char *dedupe_key;
	const char *payload; /* JSON object as text */
	/*
	 * The payload's members as application/x-www-form-urlencoded (each
	 * array element a repeated parameter, members in jsonb order), for
	 * kinds whose payload is a form.
	 */
	const char *form;
	int attempts; /* this one included */
};

enum jobs_outcome {
	JOBS_SUCCESS,
	JOBS_RETRY,     /* later, with backoff, until expires_at */
	JOBS_REJECTED,  /* final: the partner refused it (4xx) */
	JOBS_NO_API,    /* final: the partner publishes no API for it */
	JOBS_CANCELLED, /* final: not to be done (e.g. a validator HEI) */
	JOBS_EXPIRED    /* final: given up (expires_at passed) */
};

/*
 * A kind of job. start() begins the work and returns; the handler then
 * calls jobs_done() exactly once, from start() itself or later from the
 * loop. cancel() (may be NULL when start always finishes at once) stops
 * the work when the runner is freed before the job is done: no
 * jobs_done() then; the lease runs out and the job is run again.
 */
struct jobs_kind {
	const char *direction;
	const char *kind;
	void (*start)(struct jobs_run *run);
	void (*cancel)(struct jobs_run *run);
};

/* Kinds implemented (jobs_cnr.c, jobs_refetch.c). */
extern const struct jobs_kind jobs_kind_cnr;
extern const struct jobs_kind jobs_kind_refetch;
extern const struct jobs_kind jobs_kind_index;  /* jobs_index.c */
extern const struct jobs_kind jobs_kind_update; /* jobs_update.c */

/* The runner of a worker; NULL when the worker has no database. */
struct jobs *jobs_new(struct ewpd *d);
/* Cancels the jobs in flight (see cancel above). NULL ok. */
void jobs_free(struct jobs *j);
/* Drain: claims nothing more. */
void jobs_stop(struct jobs *j);
/* Jobs of this runner still running. */
unsigned jobs_running(const struct jobs *j);

/* For handlers. */
const struct jobs_job *jobs_run_job(const struct jobs_run *run);
struct ewpd *jobs_run_daemon(const struct jobs_run *run);
void jobs_run_set_data(struct jobs_run *run, void *data);
void *jobs_run_data(const struct jobs_run *run);
/*
 * Ends the job with an outcome. http_status 0 when none; error NULL when
 * none (cut at JOBS_MAX_ERROR bytes). The run is freed: run and the job
 * are invalid after the call.
 */
void jobs_done(struct jobs_run *run, enum jobs_outcome o, int http_status, const char *error);

/* Whether hei_id is one of the validator's fake HEIs. */
bool jobs_validator_hei(const char *hei_id);

/* A job to enqueue; every string copied. */
struct jobs_spec {
	const char *direction, *kind, *hei_id, *api, *dedupe_key;
	const char *payload;     /* JSON object; NULL: {} */
	long give_up_after;      /* seconds; 0: [jobs] give_up_after's default, 24 h */
	long long origin_log_id; /* 0: none */
};

/* id of the job (new, or the pending one it was merged into: merged); err on failure. */
typedef void jobs_enqueued_cb(long long id, bool merged, const char *err, void *arg);

/*
 * Inserts the job, or merges it into its pending duplicate (see above),
 * on a pool or inside a transaction (then it exists when that commits).
 * cb may be NULL. Returns NULL, and cb is not called, when the job is
 * not to be queued: an 'in' job about a validator HEI. The handle is not
 * to be cancelled (db_pool_free still ends it).
 */
struct db_query *jobs_enqueue(struct db_pool *db, const struct jobs_spec *s, jobs_enqueued_cb *cb,
                              void *arg);
struct db_query *jobs_enqueue_tx(struct db_tx *tx, const struct jobs_spec *s, jobs_enqueued_cb *cb,
                                 void *arg);

#endif
