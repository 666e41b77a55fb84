/*
 * jobs.c - the job runner of a worker over ewp.jobs: claim with a lease,
 * run by kind, finish with an outcome (retry with backoff, final states),
 * wake on LISTEN ewp_jobs and on a timer. See jobs.h for the rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "daemon.h"
#include "db.h"
#include "httpc.h"
#include "jobs.h"
#include "jobs_int.h"
#include "log.h"
#include "xmalloc.h"

#define JOBS_ERROR_RETRY_MS  1000 /* after a failed claim */
#define JOBS_DEFAULT_GIVE_UP 86400

static const struct jobs_kind *const jobs_kinds[] = {&jobs_kind_cnr, &jobs_kind_refetch};
#define NKINDS (sizeof(jobs_kinds) / sizeof(jobs_kinds[0]))

static const char *const validator_heis[] = {
    "validator-hei01.developers.erasmuswithoutpaper.eu",
    "validator-hei02.developers.erasmuswithoutpaper.eu",
};

struct jobs_run {
	struct jobs *j;
	struct jobs_run *prev, *next;
	const struct jobs_kind *k;
	struct jobs_job job;
	char *strs[8]; /* owned copies behind job's strings */
	void *data;
	bool finishing; /* jobs_done called, its UPDATE in flight */
	bool retried;   /* the UPDATE was re-sent once after a duplicate race */
	/* while the database is away, the outcome is kept and written again
	 * every JOBS_ERROR_RETRY_MS until the lease runs out */
	struct event *again;
	struct timespec claimed;
	struct db_query *q;
	char *params[6];
};

struct jobs {
	struct ewpd *d;
	struct httpc *http;
	struct event *timer;
	struct jobs_run *runs;
	unsigned nrun;
	struct db_query *claim_q, *due_q;
	bool stopped, rescan, listening;
	char leased_by[256];
	char kinds[512]; /* text[] literal of "direction/kind" handled */
	unsigned claim_limit;
};

/* ---- SQL ---- */

/* Form parameters of the payload, keys and values in hex, "k=v&k=v". */
#define FORM_HEX_SQL                                                                               \
	"(SELECT string_agg(encode(convert_to(e.key, 'UTF8'), 'hex') || '=' ||"                    \
	" encode(convert_to(v.x, 'UTF8'), 'hex'), '&' ORDER BY e.ord, v.o)"                        \
	" FROM jsonb_each(j.payload) WITH ORDINALITY AS e (key, value, ord),"                      \
	" LATERAL jsonb_array_elements_text(CASE jsonb_typeof(e.value) WHEN 'array' THEN e.value"  \
	" ELSE jsonb_build_array(e.value) END) WITH ORDINALITY AS v (x, o))"

static const char claim_sql[] =
    "WITH c AS (SELECT id FROM ewp.jobs"
    " WHERE ((status = 'pending' AND next_attempt_at <= now())"
    " OR (status = 'running' AND lease_until < now()))"
    " AND (direction || '/' || kind) = ANY ($1::text[])"
    " ORDER BY next_attempt_at LIMIT $2::int FOR UPDATE SKIP LOCKED),"
    " x AS (SELECT j.id, coalesce(j.expires_at, j.created_at + make_interval(secs => $5::int))"
    " AS exp FROM ewp.jobs j JOIN c USING (id))"
    " UPDATE ewp.jobs j SET status = 'running',"
    " lease_until = now() + make_interval(secs => $3::int), leased_by = $4,"
    " expires_at = x.exp,"
    " attempts = j.attempts + CASE WHEN x.exp <= now() THEN 0 ELSE 1 END"
    " FROM x WHERE j.id = x.id"
    " RETURNING j.id, j.direction, j.kind, j.hei_id, j.api, j.dedupe_key, j.payload::text,"
    " j.attempts, j.expires_at <= now(), coalesce(" FORM_HEX_SQL ", '')";

static const char due_sql[] =
    "SELECT floor(extract(epoch FROM least("
    "(SELECT min(next_attempt_at) FROM ewp.jobs WHERE status = 'pending'"
    " AND (direction || '/' || kind) = ANY ($1::text[])),"
    "(SELECT min(lease_until) FROM ewp.jobs WHERE status = 'running'"
    " AND (direction || '/' || kind) = ANY ($1::text[]))) - now()) * 1000)::bigint";

/*
 * $1 id, $2 outcome ('success', 'rejected', 'no-cnr-api', 'cancelled',
 * 'expired' or 'retry'), $3 backoff in ms, $4 error, $5 HTTP status,
 * $6 leased_by. A retry becomes 'merged' when a newer pending duplicate
 * exists, 'expired' when the next attempt would come too late.
 */
static const char finish_sql[] =
    "WITH me AS (SELECT id, direction, kind, hei_id, api, dedupe_key, expires_at FROM ewp.jobs"
    " WHERE id = $1::bigint AND status = 'running' AND leased_by = $6 FOR UPDATE),"
    " newer AS (SELECT n.id FROM ewp.jobs n JOIN me ON n.direction = me.direction"
    " AND n.kind = me.kind AND n.hei_id = me.hei_id AND n.api = me.api"
    " AND n.dedupe_key = me.dedupe_key WHERE n.status = 'pending' AND n.id <> me.id LIMIT 1),"
    " st AS (SELECT CASE WHEN $2 <> 'retry' THEN $2"
    " WHEN EXISTS (SELECT 1 FROM newer) THEN 'merged'"
    " WHEN me.expires_at IS NOT NULL"
    " AND now() + make_interval(secs => $3::float8 / 1000) >= me.expires_at THEN 'expired'"
    " ELSE 'pending' END AS s FROM me)"
    " UPDATE ewp.jobs j SET status = st.s,"
    " merged_into = CASE WHEN st.s = 'merged' THEN (SELECT id FROM newer) END,"
    " next_attempt_at = CASE WHEN st.s = 'pending'"
    " THEN now() + make_interval(secs => $3::float8 / 1000) ELSE j.next_attempt_at END,"
    " finished_at = CASE WHEN st.s = 'pending' THEN NULL ELSE now() END,"
    " lease_until = NULL, leased_by = NULL, last_error = left($4, 2000),"
    " last_http_status = $5::smallint"
    " FROM st WHERE j.id = $1::bigint RETURNING st.s, j.next_attempt_at - now()";

static const char enqueue_sql[] =
    "INSERT INTO ewp.jobs (direction, kind, hei_id, api, dedupe_key, payload, expires_at,"
    " origin_log_id) VALUES ($1, $2, $3, $4, $5, coalesce($6::jsonb, '{}'),"
    " now() + make_interval(secs => $7::int), $8::bigint)"
    " ON CONFLICT (direction, kind, hei_id, api, dedupe_key) WHERE status = 'pending'"
    " DO UPDATE SET payload = EXCLUDED.payload,"
    " expires_at = greatest(ewp.jobs.expires_at, EXCLUDED.expires_at)"
    " RETURNING id, xmax::text <> '0'";

static void jobs_scan(struct jobs *j);

bool
jobs_validator_hei(const char *hei_id)
{
	for (size_t i = 0; i < sizeof(validator_heis) / sizeof(validator_heis[0]); i++)
		if (strcasecmp(hei_id, validator_heis[i]) == 0)
			return true;
	return false;
}

/* ---- the timer ---- */

static void
jobs_arm(struct jobs *j, long ms)
{
	struct timeval tv;

	if (j->stopped)
		return;
	if (ms < 0)
		ms = 0;
	if (ms > JOBS_POLL_MAX_MS)
		ms = JOBS_POLL_MAX_MS;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_del(j->timer);
	evtimer_add(j->timer, &tv);
}

static void
jobs_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	jobs_scan(arg);
}

static void
jobs_notify_cb(const char *channel, const char *payload, void *arg)
{
	struct jobs *j = arg;

	(void)channel;
	if (payload == NULL)
		log_debug("jobs: listening on %s, rescanning", JOBS_CHANNEL);
	jobs_scan(j);
}

static void
jobs_due_cb(PGresult *res, const char *err, void *arg)
{
	struct jobs *j = arg;
	long ms = JOBS_POLL_MAX_MS;

	j->due_q = NULL;
	if (err != NULL) {
		jobs_arm(j, JOBS_ERROR_RETRY_MS);
		return;
	}
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		ms = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	if (j->rescan) {
		j->rescan = false;
		jobs_arm(j, 0);
		return;
	}
	/* due now but nothing claimed: locked by another claim, look again soon */
	jobs_arm(j, ms < JOBS_POLL_MIN_MS ? JOBS_POLL_MIN_MS : ms);
}

/* ---- runs ---- */

static void
run_free(struct jobs_run *r)
{
	struct jobs *j = r->j;

	if (r->prev)
		r->prev->next = r->next;
	else
		j->runs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	j->nrun--;
	if (r->again)
		event_free(r->again);
	for (size_t i = 0; i < sizeof(r->strs) / sizeof(r->strs[0]); i++)
		free(r->strs[i]);
	for (size_t i = 0; i < sizeof(r->params) / sizeof(r->params[0]); i++)
		free(r->params[i]);
	free(r);
}

const struct jobs_job *
jobs_run_job(const struct jobs_run *run)
{
	return &run->job;
}

struct ewpd *
jobs_run_daemon(const struct jobs_run *run)
{
	return run->j->d;
}

struct httpc *
jobs_run_httpc(const struct jobs_run *run)
{
	return run->j->http;
}

void
jobs_run_set_data(struct jobs_run *run, void *data)
{
	run->data = data;
}

void *
jobs_run_data(const struct jobs_run *run)
{
	return run->data;
}

static void run_send_finish(struct jobs_run *r);

/* Milliseconds since the job was claimed. */
static long
run_age_ms(const struct jobs_run *r)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - r->claimed.tv_sec) * 1000 +
	       (now.tv_nsec - r->claimed.tv_nsec) / 1000000;
}

static void
run_again_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_send_finish(arg);
}

static void
jobs_finish_cb(PGresult *res, const char *err, void *arg)
{
	struct jobs_run *r = arg;
	struct jobs *j = r->j;

	r->q = NULL;
	if (err != NULL && db_err_is(err, "23505") && !r->retried) {
		/* a duplicate became pending between our look and our update */
		r->retried = true;
		run_send_finish(r);
		return;
	}
	if (err != NULL && db_err_unavailable(err) && !j->stopped &&
	    run_age_ms(r) + JOBS_ERROR_RETRY_MS < (long)j->d->conf->jobs_lease * 1000) {
		struct timeval tv = {JOBS_ERROR_RETRY_MS / 1000,
		                     (JOBS_ERROR_RETRY_MS % 1000) * 1000};

		log_debug("jobs: job %lld: outcome kept until the database is back: %s", r->job.id,
		          err);
		if (r->again == NULL &&
		    (r->again = evtimer_new(j->d->base, run_again_cb, r)) == NULL)
			fatalx("jobs: evtimer_new failed");
		evtimer_add(r->again, &tv);
		return;
	}
	if (err != NULL)
		log_warnx("jobs: job %lld: outcome not recorded (its lease will run out): %s",
		          r->job.id, err);
	else if (PQntuples(res) == 0)
		log_warnx("jobs: job %lld: lease lost before it finished", r->job.id);
	else if (strcmp(PQgetvalue(res, 0, 0), "expired") == 0 &&
	         strcmp(r->params[1], "retry") == 0)
		log_info("jobs: job %lld: %s %s to %s: given up (expired) after %d attempts",
		         r->job.id, r->job.kind, r->job.api, r->job.hei_id, r->job.attempts);
	else if (strcmp(PQgetvalue(res, 0, 0), "merged") == 0)
		log_info("jobs: job %lld: merged into a newer pending job for the same object",
		         r->job.id);
	else
		log_debug("jobs: job %lld (%s %s to %s) -> %s", r->job.id, r->job.kind, r->job.api,
		          r->job.hei_id, PQgetvalue(res, 0, 0));
	run_free(r);
	jobs_scan(j);
}

static void
run_send_finish(struct jobs_run *r)
{
	r->q =
	    db_query(r->j->d->db, finish_sql, 6, (const char *const *)r->params, jobs_finish_cb, r);
}

/* Backoff before attempt n+1 after n attempts: min * 2^(n-1) up to max, 50-100%. */
static long
jobs_backoff_ms(const struct conf *c, int attempts)
{
	double step = (double)c->jobs_retry_min * 1000.0;
	unsigned int rnd = 0;

	for (int i = 1; i < attempts && step < (double)c->jobs_retry_max * 1000.0; i++)
		step *= 2;
	if (step > (double)c->jobs_retry_max * 1000.0)
		step = (double)c->jobs_retry_max * 1000.0;
	if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
		rnd = (unsigned int)random();
	return (long)(step * (0.5 + 0.5 * ((double)(rnd % 10001) / 10000.0)));
}

void
jobs_done(struct jobs_run *r, enum jobs_outcome o, int http_status, const char *error)
{
	static const char *const names[] = {
	    [JOBS_SUCCESS] = "success",     [JOBS_RETRY] = "retry",
	    [JOBS_REJECTED] = "rejected",   [JOBS_NO_API] = "no-cnr-api",
	    [JOBS_CANCELLED] = "cancelled", [JOBS_EXPIRED] = "expired",
	};
	long delay = o == JOBS_RETRY ? jobs_backoff_ms(r->j->d->conf, r->job.attempts) : 0;

	if (r->finishing)
		fatalx("jobs: job %lld finished twice", r->job.id);
	r->finishing = true;
	if (o == JOBS_SUCCESS)
		log_info("jobs: job %lld: %s %s to %s delivered (attempt %d)", r->job.id,
		         r->job.kind, r->job.api, r->job.hei_id, r->job.attempts);
	else
		log_info("jobs: job %lld: %s %s to %s: %s (attempt %d)%s%s", r->job.id, r->job.kind,
		         r->job.api, r->job.hei_id, names[o], r->job.attempts, error ? ": " : "",
		         error ? error : "");
	r->params[0] = xasprintf("%lld", r->job.id);
	r->params[1] = xstrdup(names[o]);
	r->params[2] = xasprintf("%ld", delay);
	r->params[3] = error ? xstrndup(error, JOBS_MAX_ERROR) : NULL;
	r->params[4] =
	    http_status >= 100 && http_status <= 599 ? xasprintf("%d", http_status) : NULL;
	r->params[5] = xstrdup(r->j->leased_by);
	run_send_finish(r);
}

/* Hex pairs of the claim into a form body: keys and values URL-encoded. */
static char *
form_from_hex(const char *hex)
{
	static const char safe[] = "-._~";
	size_t n = strlen(hex);
	char *out = xmalloc(n * 3 / 2 + 2), *o = out;

	for (const char *p = hex; *p;) {
		if (*p == '&' || *p == '=') {
			*o++ = *p++;
			continue;
		}
		if (p[1] == '\0')
			break;
		unsigned hi = (unsigned)(p[0] <= '9' ? p[0] - '0' : p[0] - 'a' + 10);
		unsigned lo = (unsigned)(p[1] <= '9' ? p[1] - '0' : p[1] - 'a' + 10);
		unsigned char c = (unsigned char)(hi << 4 | lo);

		p += 2;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (c != '\0' && strchr(safe, c)))
			*o++ = (char)c;
		else {
			static const char hexd[] = "0123456789ABCDEF";

			*o++ = '%';
			*o++ = hexd[c >> 4];
			*o++ = hexd[c & 15];
		}
	}
	*o = '\0';
	return out;
}

static const struct jobs_kind *
jobs_kind_find(const char *direction, const char *kind)
{
	for (size_t i = 0; i < NKINDS; i++)
		if (strcmp(jobs_kinds[i]->direction, direction) == 0 &&
		    strcmp(jobs_kinds[i]->kind, kind) == 0)
			return jobs_kinds[i];
	return NULL;
}

static void
jobs_start_row(struct jobs *j, PGresult *res, int row)
{
	struct jobs_run *r = xcalloc(1, sizeof(*r));
	bool expired = strcmp(PQgetvalue(res, row, 8), "t") == 0;

	r->j = j;
	clock_gettime(CLOCK_MONOTONIC, &r->claimed);
	r->next = j->runs;
	if (j->runs)
		j->runs->prev = r;
	j->runs = r;
	j->nrun++;
	r->job.id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
	r->job.direction = r->strs[0] = xstrdup(PQgetvalue(res, row, 1));
	r->job.kind = r->strs[1] = xstrdup(PQgetvalue(res, row, 2));
	r->job.hei_id = r->strs[2] = xstrdup(PQgetvalue(res, row, 3));
	r->job.api = r->strs[3] = xstrdup(PQgetvalue(res, row, 4));
	r->job.dedupe_key = r->strs[4] = xstrdup(PQgetvalue(res, row, 5));
	r->job.payload = r->strs[5] = xstrdup(PQgetvalue(res, row, 6));
	r->job.attempts = (int)strtol(PQgetvalue(res, row, 7), NULL, 10);
	r->job.form = r->strs[6] = form_from_hex(PQgetvalue(res, row, 9));
	r->k = jobs_kind_find(r->job.direction, r->job.kind);
	if (r->k == NULL) /* the claim only takes kinds we know */
		jobs_done(r, JOBS_CANCELLED, 0, "no handler for this kind of job");
	else if (expired)
		jobs_done(r, JOBS_EXPIRED, 0, "gave up: expires_at passed before the attempt");
	else if (strcmp(r->job.direction, "in") == 0 && jobs_validator_hei(r->job.hei_id))
		jobs_done(r, JOBS_CANCELLED, 0,
		          "validator HEI: its data never reaches the SMILE core");
	else
		r->k->start(r);
}

static void
jobs_claim_cb(PGresult *res, const char *err, void *arg)
{
	struct jobs *j = arg;
	int n;
	const char *params[1];

	j->claim_q = NULL;
	if (err != NULL) {
		if (db_err_unavailable(err))
			log_debug("jobs: claim failed: %s", err);
		else
			log_warnx("jobs: claim failed: %s", err);
		jobs_arm(j, JOBS_ERROR_RETRY_MS);
		return;
	}
	n = PQntuples(res);
	for (int i = 0; i < n; i++)
		jobs_start_row(j, res, i);
	if (j->stopped)
		return;
	if ((unsigned)n == j->claim_limit || j->rescan) {
		/* maybe more are due: claim again as soon as a slot is free */
		j->rescan = false;
		if (j->nrun < (unsigned)j->d->conf->jobs_concurrency)
			jobs_arm(j, 0);
		return;
	}
	params[0] = j->kinds;
	j->due_q = db_query(j->d->db, due_sql, 1, params, jobs_due_cb, j);
}

static void
jobs_scan(struct jobs *j)
{
	char lim[16], lease[16], leased_by[256], give[16];
	const char *params[5] = {j->kinds, lim, lease, leased_by, give};
	unsigned room;

	if (j->stopped || j->d->db == NULL)
		return;
	if (j->claim_q || j->due_q) {
		j->rescan = true;
		return;
	}
	if (j->nrun >= (unsigned)j->d->conf->jobs_concurrency)
		return; /* a finishing job scans again */
	room = (unsigned)j->d->conf->jobs_concurrency - j->nrun;
	j->claim_limit = room < JOBS_MAX_CLAIM ? room : JOBS_MAX_CLAIM;
	snprintf(lim, sizeof(lim), "%u", j->claim_limit);
	snprintf(lease, sizeof(lease), "%d", j->d->conf->jobs_lease);
	snprintf(leased_by, sizeof(leased_by), "%s", j->leased_by);
	snprintf(give, sizeof(give), "%d", j->d->conf->jobs_give_up_after);
	evtimer_del(j->timer);
	j->claim_q = db_query(j->d->db, claim_sql, 5, params, jobs_claim_cb, j);
}

/* ---- life cycle ---- */

struct jobs *
jobs_new(struct ewpd *d)
{
	struct jobs *j;
	struct httpc_opts ho = {0};
	char host[200];
	size_t off;

	if (d->db == NULL)
		return NULL;
	ho.ca_file = d->conf->jobs_ca_file[0] ? d->conf->jobs_ca_file : NULL;
	j = xcalloc(1, sizeof(*j));
	j->d = d;
	if ((j->http = httpc_new(d->base, &ho)) == NULL) {
		log_error("jobs: no HTTP client: jobs will not run in this worker");
		free(j);
		return NULL;
	}
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(j->leased_by, sizeof(j->leased_by), "%s:%d", host, (int)getpid());
	off = (size_t)snprintf(j->kinds, sizeof(j->kinds), "{");
	for (size_t i = 0; i < NKINDS; i++)
		off +=
		    (size_t)snprintf(j->kinds + off, sizeof(j->kinds) - off, "%s\"%s/%s\"",
		                     i ? "," : "", jobs_kinds[i]->direction, jobs_kinds[i]->kind);
	snprintf(j->kinds + off, sizeof(j->kinds) - off, "}");
	j->timer = evtimer_new(d->base, jobs_timer_cb, j);
	if (j->timer == NULL)
		fatalx("jobs: evtimer_new failed");
	if (db_pool_listen(d->db, JOBS_CHANNEL, jobs_notify_cb, j) == -1)
		log_warnx("jobs: cannot listen on %s: polling only", JOBS_CHANNEL);
	jobs_arm(j, 0);
	return j;
}

void
jobs_stop(struct jobs *j)
{
	if (j == NULL)
		return;
	j->stopped = true;
	evtimer_del(j->timer);
	if (j->claim_q == NULL && j->due_q)
		db_query_cancel(j->due_q), j->due_q = NULL;
}

unsigned
jobs_running(const struct jobs *j)
{
	return j ? j->nrun : 0;
}

void
jobs_free(struct jobs *j)
{
	if (j == NULL)
		return;
	j->stopped = true;
	if (j->claim_q)
		db_query_cancel(j->claim_q);
	if (j->due_q)
		db_query_cancel(j->due_q);
	while (j->runs) {
		struct jobs_run *r = j->runs;

		if (r->finishing) {
			if (r->q)
				db_query_cancel(r->q);
			else
				log_info(
				    "jobs: job %lld: outcome lost at exit (its lease will run out)",
				    r->job.id);
		} else {
			log_info("jobs: job %lld abandoned at exit (its lease will run out)",
			         r->job.id);
			if (r->k && r->k->cancel)
				r->k->cancel(r);
		}
		run_free(r);
	}
	httpc_free(j->http);
	event_free(j->timer);
	free(j);
}

/* ---- enqueue ---- */

struct jobs_enq {
	jobs_enqueued_cb *cb;
	void *arg;
};

static void
jobs_enqueue_cb(PGresult *res, const char *err, void *arg)
{
	struct jobs_enq *e = arg;

	if (err != NULL) {
		if (e->cb)
			e->cb(0, false, err, e->arg);
		else
			log_warnx("jobs: not enqueued: %s", err);
	} else if (e->cb)
		e->cb(strtoll(PQgetvalue(res, 0, 0), NULL, 10),
		      strcmp(PQgetvalue(res, 0, 1), "t") == 0, NULL, e->arg);
	free(e);
}

static struct db_query *
jobs_enqueue_any(struct db_pool *db, struct db_tx *tx, const struct jobs_spec *s,
                 jobs_enqueued_cb *cb, void *arg)
{
	char give[24], origin[24];
	const char *params[8] = {s->direction,  s->kind,    s->hei_id, s->api,
	                         s->dedupe_key, s->payload, give,      NULL};
	struct jobs_enq *e;

	if (strcmp(s->direction, "in") == 0 && jobs_validator_hei(s->hei_id)) {
		log_debug("jobs: %s %s job for validator HEI %s not enqueued", s->kind, s->api,
		          s->hei_id);
		return NULL;
	}
	snprintf(give, sizeof(give), "%ld",
	         s->give_up_after > 0 ? s->give_up_after : JOBS_DEFAULT_GIVE_UP);
	if (s->origin_log_id > 0) {
		snprintf(origin, sizeof(origin), "%lld", s->origin_log_id);
		params[7] = origin;
	}
	e = xcalloc(1, sizeof(*e));
	e->cb = cb;
	e->arg = arg;
	if (tx)
		return db_tx_query(tx, enqueue_sql, 8, params, jobs_enqueue_cb, e);
	return db_query(db, enqueue_sql, 8, params, jobs_enqueue_cb, e);
}

struct db_query *
jobs_enqueue(struct db_pool *db, const struct jobs_spec *s, jobs_enqueued_cb *cb, void *arg)
{
	return jobs_enqueue_any(db, NULL, s, cb, arg);
}

struct db_query *
jobs_enqueue_tx(struct db_tx *tx, const struct jobs_spec *s, jobs_enqueued_cb *cb, void *arg)
{
	return jobs_enqueue_any(NULL, tx, s, cb, arg);
}
