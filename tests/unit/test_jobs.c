/*
 * test_jobs.c - jobs_enqueue / jobs_enqueue_tx on a real PostgreSQL
 * with the project's migrations: a new job, a duplicate merged into the
 * pending one (kept id, newest payload, longer delivery window), a
 * duplicate of a running job kept apart, validator HEIs never given an
 * 'in' job, and a job enqueued inside a transaction existing only once
 * it commits. The runner itself is tested end to end in
 * tests/integration/jobs.test.mjs.
 */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "daemon.h"
#include "db.h"
#include "jobs.h"
#include "log.h"
#include "testutil.h"
#include "xmalloc.h"

static struct event_base *base;
static char *tmpdir, *pgdir;
static int port;
static char conninfo[512];
static struct db_pool *pool;
static PGconn *direct; /* blocking connection to look at the rows */

/* jobs_cnr.c holds catalogue snapshots; worker.c defines these in ewpd. */
struct snap *
snap_ref(struct snap *s)
{
	if (s)
		s->refs++;
	return s;
}

void
snap_unref(struct snap *s)
{
	if (s)
		s->refs--;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define RUN_UNTIL(cond, ms)                                                                        \
	do {                                                                                       \
		uint64_t end_ = now_ms() + (ms);                                                   \
		while (!(cond) && now_ms() < end_)                                                 \
			event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);                      \
	} while (0)

/* One value of a query on the direct connection (caller frees), "" for no row. */
static char *
value(const char *sql)
{
	PGresult *res = PQexec(direct, sql);
	char *v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(direct));
	v = xstrdup(PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return v;
}

static void
exec_direct(const char *sql)
{
	free(value(sql));
}

static int
group_setup(void **state)
{
	char *cmd;
	glob_t g;
	char err[256];
	struct db_pool_conf dc = {.size = 2, .statement_timeout_ms = 10000};

	(void)state;
	log_init(LOG_LEVEL_ERROR, "test_jobs");
	if (testutil_pg_start("ewpd-jobs", &tmpdir, &pgdir, &port, conninfo, sizeof(conninfo)) ==
	    -1)
		return -1;
	/* the project's migrations, each in its own transaction as ewpctl migrate does */
	if (glob("sql/[0-9][0-9][0-9][0-9]_*.sql", 0, NULL, &g) != 0)
		return -1;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		cmd = xasprintf("psql '%s' -q -v ON_ERROR_STOP=1 -1 -f %s >/dev/null", conninfo,
		                g.gl_pathv[i]);
		if (system(cmd) != 0) {
			fprintf(stderr, "migration %s failed\n", g.gl_pathv[i]);
			free(cmd);
			globfree(&g);
			return -1;
		}
		free(cmd);
	}
	globfree(&g);
	direct = PQconnectdb(conninfo);
	if (PQstatus(direct) != CONNECTION_OK)
		return -1;
	base = event_base_new();
	dc.conninfo = conninfo;
	if ((pool = db_pool_new(base, &dc, err, sizeof(err))) == NULL) {
		fprintf(stderr, "db_pool_new: %s\n", err);
		return -1;
	}
	RUN_UNTIL(db_pool_up(pool), 5000);
	return db_pool_up(pool) ? 0 : -1;
}

static int
group_teardown(void **state)
{
	char *cmd;

	(void)state;
	db_pool_free(pool);
	PQfinish(direct);
	if (pgdir != NULL) {
		cmd = xasprintf("tests/pg/pg.sh stop %s", pgdir);
		if (system(cmd) != 0)
			fprintf(stderr, "pg.sh stop failed\n");
		free(cmd);
	}
	if (tmpdir != NULL)
		rmdir(tmpdir);
	if (base)
		event_base_free(base);
	free(pgdir);
	free(tmpdir);
	return 0;
}

struct enq {
	int done;
	long long id;
	bool merged;
	char *err;
};

static void
enq_cb(long long id, bool merged, const char *err, void *arg)
{
	struct enq *e = arg;

	e->done++;
	e->id = id;
	e->merged = merged;
	e->err = err ? xstrdup(err) : NULL;
}

static long long
enqueue(const struct jobs_spec *s, bool *merged)
{
	struct enq e = {0};

	assert_non_null(jobs_enqueue(pool, s, enq_cb, &e));
	assert_int_equal(e.done, 0); /* never from inside the call */
	RUN_UNTIL(e.done, 5000);
	assert_int_equal(e.done, 1);
	if (e.err)
		fail_msg("enqueue: %s", e.err);
	*merged = e.merged;
	return e.id;
}

static void
test_jobs_enqueue_and_merge(void **state)
{
	struct jobs_spec s = {.direction = "out",
	                      .kind = "cnr",
	                      .hei_id = "uni.example.org",
	                      .api = "omobility-cnr",
	                      .dedupe_key = "m1",
	                      .payload = "{\"omobility_id\": \"m1\", \"v\": 1}",
	                      .give_up_after = 3600};
	bool merged;
	long long a, b, c;
	char sql[256], *v;

	(void)state;
	a = enqueue(&s, &merged);
	assert_true(a > 0);
	assert_false(merged);
	snprintf(
	    sql, sizeof(sql),
	    "SELECT status || ' ' || attempts || ' ' ||"
	    " round(extract(epoch FROM expires_at - created_at)) FROM ewp.jobs WHERE id = %lld",
	    a);
	v = value(sql);
	assert_string_equal(v, "pending 0 3600");
	free(v);

	/* a duplicate while pending: the same row, the newest payload, a longer window */
	s.payload = "{\"omobility_id\": \"m1\", \"v\": 2}";
	s.give_up_after = 7200;
	b = enqueue(&s, &merged);
	assert_int_equal(b, a);
	assert_true(merged);
	snprintf(sql, sizeof(sql),
	         "SELECT (payload ->> 'v') || ' ' || round(extract(epoch FROM expires_at -"
	         " created_at)) FROM ewp.jobs WHERE id = %lld",
	         a);
	v = value(sql);
	assert_string_equal(v, "2 7200");
	free(v);
	v = value("SELECT count(*) FROM ewp.jobs WHERE dedupe_key = 'm1'");
	assert_string_equal(v, "1");
	free(v);

	/* another object, another partner: jobs of their own */
	s.dedupe_key = "m2";
	c = enqueue(&s, &merged);
	assert_true(c != a);
	assert_false(merged);
	s.dedupe_key = "m1";
	s.hei_id = "other.example.org";
	c = enqueue(&s, &merged);
	assert_true(c != a);
	assert_false(merged);

	/* running jobs are outside the merge: a change during the send is a new job */
	snprintf(sql, sizeof(sql),
	         "UPDATE ewp.jobs SET status = 'running', lease_until = now() + interval '1 min',"
	         " leased_by = 'test:1' WHERE id = %lld",
	         a);
	exec_direct(sql);
	s.hei_id = "uni.example.org";
	c = enqueue(&s, &merged);
	assert_true(c != a);
	assert_false(merged);
}

static void
test_jobs_validator_heis_never_get_in_jobs(void **state)
{
	struct jobs_spec s = {.direction = "in",
	                      .kind = "refetch",
	                      .hei_id = "validator-hei01.developers.erasmuswithoutpaper.eu",
	                      .api = "omobilities",
	                      .dedupe_key = "x"};
	struct enq e = {0};
	bool merged;
	char *v;

	(void)state;
	assert_true(jobs_validator_hei("validator-hei01.developers.erasmuswithoutpaper.eu"));
	assert_true(jobs_validator_hei("VALIDATOR-HEI02.developers.erasmuswithoutpaper.eu"));
	assert_false(jobs_validator_hei("validator-hei03.developers.erasmuswithoutpaper.eu"));
	assert_false(jobs_validator_hei("uni.example.org"));
	assert_null(jobs_enqueue(pool, &s, enq_cb, &e));
	s.hei_id = "validator-hei02.developers.erasmuswithoutpaper.eu";
	assert_null(jobs_enqueue(pool, &s, enq_cb, &e));
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(e.done, 0);
	v = value("SELECT count(*) FROM ewp.jobs WHERE hei_id LIKE 'validator-hei0%'");
	assert_string_equal(v, "0");
	free(v);
	/* out jobs to them are fine (a CNR to the validator is part of its tests) */
	s.direction = "out";
	s.kind = "cnr";
	s.api = "omobility-cnr";
	assert_true(enqueue(&s, &merged) > 0);
}

struct done {
	int done;
	char *err;
};

static void
done_cb(const char *err, void *arg)
{
	struct done *d = arg;

	d->done++;
	d->err = err ? xstrdup(err) : NULL;
}

static void
test_jobs_enqueue_in_transaction(void **state)
{
	struct jobs_spec s = {.direction = "out",
	                      .kind = "cnr",
	                      .hei_id = "tx.example.org",
	                      .api = "omobility-la-cnr",
	                      .dedupe_key = "la-1",
	                      .payload = "{\"omobility_id\": \"la-1\"}"};
	struct enq e = {0};
	struct done d = {0};
	struct db_tx *tx;
	char *v;

	(void)state;
	tx = db_tx_begin(pool, NULL, NULL);
	assert_non_null(jobs_enqueue_tx(tx, &s, enq_cb, &e));
	RUN_UNTIL(e.done, 5000);
	assert_int_equal(e.done, 1);
	assert_null(e.err);
	v = value("SELECT count(*) FROM ewp.jobs WHERE hei_id = 'tx.example.org'");
	assert_string_equal(v, "0"); /* not before COMMIT */
	free(v);
	db_tx_rollback(tx);
	RUN_UNTIL(false, 200);

	memset(&e, 0, sizeof(e));
	tx = db_tx_begin(pool, NULL, NULL);
	assert_non_null(jobs_enqueue_tx(tx, &s, enq_cb, &e));
	db_tx_commit(tx, done_cb, &d);
	RUN_UNTIL(d.done, 5000);
	assert_int_equal(d.done, 1);
	assert_null(d.err);
	assert_int_equal(e.done, 1);
	v = value("SELECT count(*) FROM ewp.jobs WHERE hei_id = 'tx.example.org'");
	assert_string_equal(v, "1");
	free(v);
	free(e.err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jobs_enqueue_and_merge),
	    cmocka_unit_test(test_jobs_validator_heis_never_get_in_jobs),
	    cmocka_unit_test(test_jobs_enqueue_in_transaction),
	};
	return cmocka_run_group_tests_name("jobs", tests, group_setup, group_teardown);
}
