/*
 * test_db.c - the libpq pool on a real PostgreSQL: a throwaway cluster
 * started by tests/pg/pg.sh (run from the repository root), the loop
 * driven with event_base_loop. The outage test stops and restarts that
 * server with pg_ctl while queries run.
 */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "db.h"
#include "log.h"
#include "testutil.h"
#include "xmalloc.h"

#define BIG_PARAM (1024 * 1024)

static struct event_base *base;
static struct event *tick;
static char *tmpdir; /* mkdtemp, 0755 so that postgres can pass */
static char *pgdir;  /* the cluster: tmpdir/pg */
static char *bindir; /* PostgreSQL server binaries */
static char conninfo[512];
static int port;

/* ---- harness ---------------------------------------------------------- */

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until cond holds or ms have passed; the tick keeps each
 * round short. */
#define RUN_UNTIL(cond, ms)                                                                        \
	do {                                                                                       \
		uint64_t end_ = now_ms() + (ms);                                                   \
		while (!(cond) && now_ms() < end_)                                                 \
			event_base_loop(base, EVLOOP_ONCE);                                        \
	} while (0)

static void
run_for(int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (now_ms() < end)
		event_base_loop(base, EVLOOP_ONCE);
}

/* pg_ctl as the cluster's owner: postgres when we are root (CI). */
static int
pg_ctl(const char *args)
{
	char *cmd;
	int rc;

	cmd = xasprintf("%s%s/pg_ctl -D %s/data %s >/dev/null 2>&1",
	                getuid() == 0 ? "runuser -u postgres -- " : "", bindir, pgdir, args);
	rc = system(cmd);
	free(cmd);
	return rc;
}

static void
server_stop(void)
{
	assert_int_equal(pg_ctl("-m fast -w stop"), 0);
}

static void
server_start(void)
{
	char *args = xasprintf("-w -l %s/server.log -o \"-k %s -p %d -c listen_addresses= -c "
	                       "fsync=off\" start",
	                       pgdir, pgdir, port);

	assert_int_equal(pg_ctl(args), 0);
	free(args);
}

static int
group_setup(void **state)
{
	const char *env = getenv("PG_BINDIR");
	glob_t g;

	(void)state;
	log_init(getenv("DB_TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR, "test_db");
	if (env != NULL && *env != '\0') {
		bindir = xstrdup(env);
	} else if (glob("/usr/lib/postgresql/*/bin", 0, NULL, &g) == 0) {
		bindir = xstrdup(g.gl_pathv[g.gl_pathc - 1]);
		globfree(&g);
	} else {
		fprintf(stderr, "PostgreSQL server binaries not found: test_db cannot run\n");
		return -1;
	}
	if (testutil_pg_start("ewpd-db", &tmpdir, &pgdir, &port, conninfo, sizeof(conninfo)) == -1)
		return -1;
	base = event_base_new();
	tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
	struct timeval tv = {0, 10000};
	event_add(tick, &tv);
	return 0;
}

static int
group_teardown(void **state)
{
	char *cmd;

	(void)state;
	if (pgdir != NULL) {
		cmd = xasprintf("tests/pg/pg.sh stop %s", pgdir);
		if (system(cmd) != 0)
			fprintf(stderr, "pg.sh stop failed\n");
		free(cmd);
	}
	if (tmpdir != NULL)
		rmdir(tmpdir);
	if (tick != NULL)
		event_free(tick);
	if (base != NULL)
		event_base_free(base);
	free(pgdir);
	free(tmpdir);
	free(bindir);
	return 0;
}

static struct db_pool *
pool_open_conf(struct db_pool_conf *conf)
{
	char err[256] = "";
	struct db_pool *pool;

	conf->conninfo = conninfo;
	pool = db_pool_new(base, conf, err, sizeof(err));
	if (pool == NULL)
		fail_msg("db_pool_new: %s", err);
	RUN_UNTIL(db_pool_up(pool), 5000);
	assert_true(db_pool_up(pool));
	return pool;
}

static struct db_pool *
pool_open(int size)
{
	struct db_pool_conf conf = {.size = size, .statement_timeout_ms = 10000};

	return pool_open_conf(&conf);
}

/* What a query's callback saw: row 0, up to four columns. */
struct result {
	int done;
	int ntuples;
	char *err;
	char *val[4];
	bool null[4];
	int *order; /* when set, the callback appends `index` here */
	int *norder;
	int index;
};

static void
result_cb(PGresult *res, const char *err, void *arg)
{
	struct result *r = arg;

	r->done++;
	if (r->order != NULL)
		r->order[(*r->norder)++] = r->index;
	if (err != NULL) {
		assert_null(res);
		r->err = xstrdup(err);
		return;
	}
	assert_non_null(res);
	r->ntuples = PQntuples(res);
	for (int i = 0; i < PQnfields(res) && i < 4 && r->ntuples > 0; i++) {
		r->null[i] = PQgetisnull(res, 0, i);
		r->val[i] = xstrdup(PQgetvalue(res, 0, i));
	}
}

static void
result_reset(struct result *r)
{
	free(r->err);
	for (int i = 0; i < 4; i++)
		free(r->val[i]);
	memset(r, 0, sizeof(*r));
}

/* One query, waited for. */
static void
query_wait(struct db_pool *pool, const char *sql, int n, const char *const *params,
           struct result *r)
{
	result_reset(r);
	(void)db_query(pool, sql, n, params, result_cb, r);
	assert_int_equal(r->done, 0); /* never called from inside db_query() */
	RUN_UNTIL(r->done, 5000);
	assert_int_equal(r->done, 1);
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
	free(d->err);
	d->err = err != NULL ? xstrdup(err) : NULL;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_db_simple_query(void **state)
{
	struct db_pool *pool = pool_open(2);
	const char *p[] = {"41"};
	struct result r = {0};

	(void)state;
	query_wait(pool,
	           "SELECT $1::int + 1, current_setting('application_name'), "
	           "current_setting('statement_timeout'), current_setting('client_encoding')",
	           1, p, &r);
	assert_null(r.err);
	assert_int_equal(r.ntuples, 1);
	assert_string_equal(r.val[0], "42");
	assert_string_equal(r.val[1], "ewpd");
	assert_string_equal(r.val[2], "10s");
	assert_string_equal(r.val[3], "UTF8");
	query_wait(pool, "SELECT 1 WHERE false", 0, NULL, &r);
	assert_null(r.err);
	assert_int_equal(r.ntuples, 0);
	result_reset(&r);
	db_pool_free(pool);
}

static void
test_db_params_null_quotes_big(void **state)
{
	struct db_pool *pool = pool_open(1);
	const char *quotes = "O'Reilly \"x\" \\ '); DROP TABLE pg_class; -- $1 é";
	char *big = xmalloc(BIG_PARAM + 1);
	struct result r = {0};
	const char *p[3];

	(void)state;
	for (size_t i = 0; i < BIG_PARAM; i++)
		big[i] = "ab'\"\\;x$"[i % 8];
	big[BIG_PARAM] = '\0';
	p[0] = NULL;
	p[1] = quotes;
	p[2] = big;
	query_wait(pool, "SELECT $1::text IS NULL, $2::text, length($3::text), $3::text, $1::text",
	           3, p, &r);
	assert_null(r.err);
	assert_string_equal(r.val[0], "t");
	assert_string_equal(r.val[1], quotes);
	assert_string_equal(r.val[2], "1048576");
	assert_string_equal(r.val[3], big);
	assert_false(r.null[2]);
	/* a NULL comes back as NULL */
	query_wait(pool, "SELECT $1::text", 1, p, &r);
	assert_true(r.null[0]);
	result_reset(&r);
	free(big);
	db_pool_free(pool);
}

/* Queries with parameters are prepared once per connection, then reused;
 * one that cannot be prepared fails as it would have run; a lost
 * connection forgets them and prepares again. */
static void
test_db_prepared_once_per_connection(void **state)
{
	struct db_pool *pool = pool_open(1);
	const char *p[] = {"1"}, *bad[] = {"1"};
	const char *list =
	    "SELECT string_agg(name || '=' || left(statement, 20), ',' ORDER BY name)"
	    " FROM pg_prepared_statements WHERE $1::int = 1";
	struct result r = {0};

	(void)state;
	for (int i = 0; i < 3; i++) {
		query_wait(pool, "SELECT $1::int + 1", 1, p, &r);
		assert_null(r.err);
		assert_string_equal(r.val[0], "2");
	}
	query_wait(pool, list, 1, p, &r);
	assert_null(r.err);
	assert_string_equal(r.val[0], "ewp_s0=SELECT $1::int + 1,ewp_s1=SELECT string_agg(na");
	/* a statement that does not parse: the error of the prepare, nothing kept */
	query_wait(pool, "SELEKT $1", 1, bad, &r);
	assert_true(db_err_is(r.err, "42601"));
	query_wait(pool, "SELECT $1::int + 1", 1, p, &r);
	assert_string_equal(r.val[0], "2");
	query_wait(pool, list, 1, p, &r);
	assert_string_equal(r.val[0], "ewp_s0=SELECT $1::int + 1,ewp_s1=SELECT string_agg(na");
	/* cancelled while its statement was being prepared: the statement is
	 * still known to be prepared, so the next ones neither fail on its name */
	{
		struct result c = {0};
		struct db_query *q = db_query(pool, "SELECT $1::int * 3", 1, p, result_cb, &c);

		db_query_cancel(q);
		query_wait(pool, "SELECT $1::int * 3", 1, p, &r);
		assert_null(r.err);
		assert_string_equal(r.val[0], "3");
		query_wait(pool, "SELECT $1::int * 4", 1, p, &r);
		assert_null(r.err);
		assert_string_equal(r.val[0], "4");
		assert_int_equal(c.done, 0);
	}
	/* the server drops the session: the next one prepares anew */
	query_wait(pool, "SELECT pg_terminate_backend(pg_backend_pid()) WHERE $1::int = 1", 1, p,
	           &r);
	assert_non_null(r.err);
	RUN_UNTIL(db_pool_up(pool), 5000);
	query_wait(pool, "SELECT $1::int + 41", 1, p, &r);
	assert_null(r.err);
	assert_string_equal(r.val[0], "42");
	query_wait(pool, list, 1, p, &r);
	assert_string_equal(r.val[0], "ewp_s0=SELECT $1::int + 41,ewp_s1=SELECT string_agg(na");
	result_reset(&r);
	db_pool_free(pool);
}

static void
test_db_fifo_beyond_pool_size(void **state)
{
	enum { N = 40 };
	struct db_pool *pool = pool_open(2);
	struct result r[N] = {0};
	int order[N], norder = 0, last[2] = {-1, -1}, pids[2] = {0, 0}, npids = 0;
	char num[N][12];

	(void)state;
	run_for(300); /* up means one connection: let the second connect too */
	for (int i = 0; i < N; i++) {
		const char *p[] = {num[i]};

		snprintf(num[i], sizeof(num[i]), "%d", i);
		r[i].order = order;
		r[i].norder = &norder;
		r[i].index = i;
		(void)db_query(pool, "SELECT $1::int, pg_backend_pid()", 1, p, result_cb, &r[i]);
	}
	RUN_UNTIL(norder == N, 10000);
	assert_int_equal(norder, N);
	for (int i = 0; i < N; i++) {
		int pid, k;

		assert_null(r[i].err);
		assert_int_equal(r[i].done, 1);
		assert_string_equal(r[i].val[0], num[i]);
		/* on each connection the queries ran in the order queued */
		pid = (int)strtol(r[order[i]].val[1], NULL, 10);
		for (k = 0; k < npids && pids[k] != pid; k++)
			;
		if (k == npids) {
			assert_true(npids < 2);
			pids[npids++] = pid;
		}
		assert_true(order[i] > last[k]);
		last[k] = order[i];
	}
	assert_int_equal(npids, 2); /* both connections worked */
	/* the first two were sent at once, the third only once one was done */
	assert_true(order[0] <= 1);
	for (int i = 0; i < N; i++)
		result_reset(&r[i]);
	db_pool_free(pool);
}

static void
test_db_server_error_has_sqlstate(void **state)
{
	struct db_pool_conf conf = {.size = 1, .statement_timeout_ms = 200};
	struct db_pool *pool = pool_open_conf(&conf);
	struct result r = {0};

	(void)state;
	query_wait(pool, "SELECT 1/0", 0, NULL, &r);
	assert_non_null(r.err);
	assert_true(db_err_is(r.err, "22012"));
	assert_true(db_err_is(r.err, "22"));
	assert_false(db_err_unavailable(r.err));
	assert_non_null(strstr(r.err, "division by zero"));
	query_wait(pool, "SELEKT 1", 0, NULL, &r);
	assert_true(db_err_is(r.err, "42601"));
	/* the server-side statement_timeout given to the pool */
	query_wait(pool, "SELECT pg_sleep(2)", 0, NULL, &r);
	assert_true(db_err_is(r.err, "57014"));
	/* COPY is refused; the connection it spoilt is replaced */
	query_wait(pool, "COPY (SELECT 1) TO STDOUT", 0, NULL, &r);
	assert_true(db_err_is(r.err, "0A000"));
	RUN_UNTIL(db_pool_up(pool), 3000);
	/* and the connection is good */
	query_wait(pool, "SELECT 'ok'", 0, NULL, &r);
	assert_null(r.err);
	assert_string_equal(r.val[0], "ok");
	result_reset(&r);
	db_pool_free(pool);
}

static void
test_db_cancel_skips_callback(void **state)
{
	struct db_pool *pool = pool_open(1);
	struct result sleeping = {0}, queued = {0}, after = {0};
	struct done begun = {0};
	struct db_query *q1, *q2;
	struct db_tx *tx;

	(void)state;
	query_wait(pool, "CREATE TABLE cancel_t (id int)", 0, NULL, &after);
	assert_null(after.err);
	/* q1 is sent at once (in flight), q2 waits in the queue */
	q1 = db_query(pool, "SELECT pg_sleep(0.2)", 0, NULL, result_cb, &sleeping);
	q2 = db_query(pool, "INSERT INTO cancel_t VALUES (1)", 0, NULL, result_cb, &queued);
	db_query_cancel(q1);
	db_query_cancel(q2);
	query_wait(pool, "SELECT count(*) FROM cancel_t", 0, NULL, &after);
	assert_null(after.err);
	assert_string_equal(after.val[0], "0"); /* the queued one never ran */
	run_for(50);
	assert_int_equal(sleeping.done, 0);
	assert_int_equal(queued.done, 0);

	/* a transaction abandoned while its BEGIN waits for the connection */
	q1 = db_query(pool, "SELECT pg_sleep(0.1)", 0, NULL, result_cb, &sleeping);
	tx = db_tx_begin(pool, done_cb, &begun);
	(void)db_tx_query(tx, "INSERT INTO cancel_t VALUES (2)", 0, NULL, result_cb, &queued);
	db_tx_rollback(tx);
	query_wait(pool, "SELECT count(*) FROM cancel_t", 0, NULL, &after);
	assert_string_equal(after.val[0], "0");
	assert_int_equal(sleeping.done, 1);
	assert_int_equal(begun.done, 0);
	assert_int_equal(queued.done, 0);
	result_reset(&sleeping);
	result_reset(&after);
	db_pool_free(pool);
}

/* A callback that cancels its own query: a harmless no-op. */
static struct db_query *self_q;

static void
self_cancel_cb(PGresult *res, const char *err, void *arg)
{
	(void)res;
	(void)err;
	(*(int *)arg)++;
	db_query_cancel(self_q);
}

static void
test_db_queue_timeout_and_free(void **state)
{
	struct db_pool_conf conf = {.size = 1, .queue_timeout_ms = 200};
	struct db_pool *pool = pool_open_conf(&conf);
	struct result slow = {0}, waiting = {0}, pending = {0};
	uint64_t t0 = now_ms();
	int calls = 0;

	(void)state;
	(void)db_query(pool, "SELECT pg_sleep(1)", 0, NULL, result_cb, &slow);
	(void)db_query(pool, "SELECT 1", 0, NULL, result_cb, &waiting);
	RUN_UNTIL(waiting.done, 2000);
	assert_int_equal(waiting.done, 1);
	assert_true(db_err_is(waiting.err, "08001"));
	assert_true(db_err_unavailable(waiting.err));
	assert_true(now_ms() - t0 >= 150 && now_ms() - t0 < 900);
	assert_int_equal(slow.done, 0);
	RUN_UNTIL(slow.done, 2000);
	assert_null(slow.err);
	self_q = db_query(pool, "SELECT 1", 0, NULL, self_cancel_cb, &calls);
	RUN_UNTIL(calls, 2000);
	assert_int_equal(calls, 1);
	/* db_pool_free() fails what is pending with 08003 */
	(void)db_query(pool, "SELECT pg_sleep(1)", 0, NULL, result_cb, &pending);
	(void)db_query(pool, "SELECT 2", 0, NULL, result_cb, &waiting);
	result_reset(&waiting);
	db_pool_free(pool);
	assert_int_equal(pending.done, 1);
	assert_true(db_err_is(pending.err, "08003"));
	assert_int_equal(waiting.done, 1);
	assert_true(db_err_is(waiting.err, "08003"));
	result_reset(&slow);
	result_reset(&waiting);
	result_reset(&pending);
}

static void
test_db_tx_commit_and_rollback(void **state)
{
	struct db_pool *pool = pool_open(2);
	struct result r = {0}, s1 = {0}, s2 = {0}, s3 = {0}, other = {0};
	struct done begun = {0}, committed = {0};
	const char *p1[] = {"1", "one"}, *p2[] = {"2", "two"}, *p3[] = {"3", "three"};
	struct db_tx *tx;

	(void)state;
	query_wait(pool, "CREATE TABLE tx_t (id int PRIMARY KEY, v text)", 0, NULL, &r);
	assert_null(r.err);

	/* statements may be queued before BEGIN has completed */
	tx = db_tx_begin(pool, done_cb, &begun);
	(void)db_tx_query(tx, "INSERT INTO tx_t VALUES ($1::int, $2)", 2, p1, result_cb, &s1);
	(void)db_tx_query(tx, "INSERT INTO tx_t VALUES ($1::int, $2)", 2, p2, result_cb, &s2);
	/* the other connection stays free for the rest of the pool */
	(void)db_query(pool, "SELECT count(*) FROM tx_t", 0, NULL, result_cb, &other);
	RUN_UNTIL(s2.done && other.done, 5000);
	assert_int_equal(begun.done, 1);
	assert_null(begun.err);
	assert_null(s1.err);
	assert_null(s2.err);
	assert_string_equal(other.val[0], "0"); /* not visible before COMMIT */
	db_tx_commit(tx, done_cb, &committed);
	RUN_UNTIL(committed.done, 5000);
	assert_int_equal(committed.done, 1);
	assert_null(committed.err);

	/* rolled back: neither row stays */
	result_reset(&s1);
	tx = db_tx_begin(pool, NULL, NULL);
	(void)db_tx_query(tx, "INSERT INTO tx_t VALUES ($1::int, $2)", 2, p3, result_cb, &s1);
	RUN_UNTIL(s1.done, 5000);
	assert_null(s1.err);
	db_tx_rollback(tx);

	/* a failing statement aborts the rest, and COMMIT says so */
	result_reset(&s1);
	result_reset(&s2);
	memset(&committed, 0, sizeof(committed));
	tx = db_tx_begin(pool, NULL, NULL);
	(void)db_tx_query(tx, "INSERT INTO tx_t VALUES ($1::int, $2)", 2, p3, result_cb, &s1);
	(void)db_tx_query(tx, "INSERT INTO tx_t VALUES ($1::int, $2)", 2, p1, result_cb, &s2);
	(void)db_tx_query(tx, "SELECT 1", 0, NULL, result_cb, &s3);
	db_tx_commit(tx, done_cb, &committed);
	RUN_UNTIL(committed.done, 5000);
	assert_null(s1.err);
	assert_true(db_err_is(s2.err, "23505"));
	assert_true(db_err_is(s3.err, "25P02"));
	assert_non_null(strstr(s3.err, "23505"));
	assert_int_equal(committed.done, 1);
	assert_true(db_err_is(committed.err, "25P02"));

	/* abandoned before BEGIN even ran: no callback at all */
	memset(&begun, 0, sizeof(begun));
	result_reset(&s1);
	tx = db_tx_begin(pool, done_cb, &begun);
	(void)db_tx_query(tx, "INSERT INTO tx_t VALUES ($1::int, $2)", 2, p3, result_cb, &s1);
	db_tx_rollback(tx);

	query_wait(pool, "SELECT string_agg(id::text || v, ',' ORDER BY id) FROM tx_t", 0, NULL,
	           &r);
	assert_null(r.err);
	assert_string_equal(r.val[0], "1one,2two");
	run_for(50);
	assert_int_equal(begun.done, 0);
	assert_int_equal(s1.done, 0);
	free(begun.err);
	free(committed.err);
	result_reset(&r);
	result_reset(&s1);
	result_reset(&s2);
	result_reset(&s3);
	result_reset(&other);
	db_pool_free(pool);
}

struct notes {
	int listening; /* payload NULL: LISTEN (again) in place */
	int got;
	char *payload;
};

static void
notify_cb(const char *channel, const char *payload, void *arg)
{
	struct notes *n = arg;

	assert_string_equal(channel, "ewpd_test");
	if (payload == NULL) {
		n->listening++;
		return;
	}
	n->got++;
	free(n->payload);
	n->payload = xstrdup(payload);
}

static void
test_db_listen_notify(void **state)
{
	struct db_pool *pool = pool_open(1);
	const char *p[] = {"ewpd_test", "hello 'world'"};
	struct notes n = {0};
	struct result r = {0};

	(void)state;
	assert_int_equal(db_pool_listen(pool, "Bad-Name", notify_cb, &n), -1);
	assert_int_equal(db_pool_listen(pool, "x; DROP", notify_cb, &n), -1);
	assert_int_equal(db_pool_listen(pool, "", notify_cb, &n), -1);
	assert_int_equal(db_pool_listen(pool, "ewpd_test", notify_cb, &n), 0);
	RUN_UNTIL(n.listening, 5000);
	assert_int_equal(n.listening, 1);
	query_wait(pool, "SELECT pg_notify($1, $2)", 2, p, &r);
	assert_null(r.err);
	RUN_UNTIL(n.got, 5000);
	assert_int_equal(n.got, 1);
	assert_string_equal(n.payload, "hello 'world'");
	free(n.payload);
	result_reset(&r);
	db_pool_free(pool);
}

static void
test_db_bad_conninfo(void **state)
{
	struct db_pool_conf conf = {.conninfo = "host=/tmp port=", .size = 2};
	char err[256];

	(void)state;
	conf.conninfo = "nonsense";
	assert_null(db_pool_new(base, &conf, err, sizeof(err)));
	assert_non_null(strstr(err, "conninfo"));
	conf.conninfo = conninfo;
	conf.size = DB_POOL_MAX_SIZE + 1;
	assert_null(db_pool_new(base, &conf, err, sizeof(err)));
}

/* A server that accepts the connection and never answers: our own timer
 * ends the attempt, and with nothing connecting any more the waiting
 * query fails at once rather than at its queue timeout. */
static void
test_db_connect_timeout(void **state)
{
	struct db_pool_conf conf = {.size = 1, .connect_timeout_ms = 200, .queue_timeout_ms = 3000};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct result r = {0};
	struct db_pool *pool;
	char err[256], *dir, *info;
	uint64_t t0;
	int fd;

	(void)state;
	dir = xasprintf("%s/hang", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/.s.PGSQL.5999", dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 16), 0);
	info = xasprintf("host=%s port=5999 user=postgres dbname=postgres", dir);
	conf.conninfo = info;

	t0 = now_ms();
	pool = db_pool_new(base, &conf, err, sizeof(err));
	assert_non_null(pool);
	(void)db_query(pool, "SELECT 1", 0, NULL, result_cb, &r);
	RUN_UNTIL(r.done, 3000);
	assert_int_equal(r.done, 1);
	assert_true(db_err_is(r.err, "08001"));
	assert_non_null(strstr(r.err, "connect timeout"));
	assert_true(now_ms() - t0 >= 150 && now_ms() - t0 < 1500);
	assert_false(db_pool_up(pool));
	db_pool_free(pool);
	close(fd);
	unlink(sun.sun_path);
	rmdir(dir);
	free(dir);
	free(info);
	result_reset(&r);
}

/* db_pool_free() with a transaction open and one waiting for BEGIN. */
static void
test_db_free_with_open_tx(void **state)
{
	struct db_pool *pool = pool_open(1);
	struct result s = {0}, t = {0};
	struct done begun = {0}, committed = {0};
	struct db_tx *open, *waiting;

	(void)state;
	open = db_tx_begin(pool, NULL, NULL);
	(void)db_tx_query(open, "SELECT 1", 0, NULL, result_cb, &s);
	RUN_UNTIL(s.done, 5000);
	assert_null(s.err);
	waiting = db_tx_begin(pool, done_cb, &begun);
	(void)db_tx_query(waiting, "SELECT 2", 0, NULL, result_cb, &t);
	db_tx_commit(waiting, done_cb, &committed);
	run_for(50);
	assert_int_equal(begun.done, 0); /* the only connection is pinned */
	db_pool_free(pool);
	assert_int_equal(begun.done, 1);
	assert_true(db_err_is(begun.err, "08003"));
	assert_int_equal(t.done, 1);
	assert_true(db_err_is(t.err, "08003"));
	assert_int_equal(committed.done, 1);
	assert_true(db_err_is(committed.err, "08003"));
	free(begun.err);
	free(committed.err);
	result_reset(&s);
	result_reset(&t);
}

static void
test_db_outage_and_reconnect(void **state)
{
	enum { N = 4 };
	struct db_pool *pool = pool_open(2);
	struct result r[N] = {0}, late = {0}, s = {0};
	struct done committed = {0};
	struct notes n = {0};
	const char *p[] = {"ewpd_test", "back"};
	struct db_tx *tx;
	uint64_t t0;

	(void)state;
	assert_int_equal(db_pool_listen(pool, "ewpd_test", notify_cb, &n), 0);
	RUN_UNTIL(n.listening == 1, 5000);
	assert_int_equal(n.listening, 1);
	/* an open transaction pins one connection; two long queries follow */
	tx = db_tx_begin(pool, NULL, NULL);
	(void)db_tx_query(tx, "SELECT 1", 0, NULL, result_cb, &s);
	RUN_UNTIL(s.done, 5000);
	assert_null(s.err);
	for (int i = 0; i < N; i++)
		(void)db_query(pool, "SELECT pg_sleep(5)", 0, NULL, result_cb, &r[i]);
	run_for(100); /* the first is on the server now */

	server_stop();
	RUN_UNTIL(r[0].done && r[1].done && r[2].done && r[3].done, 3000);
	for (int i = 0; i < N; i++) {
		assert_int_equal(r[i].done, 1);
		assert_non_null(r[i].err);
		assert_true(db_err_unavailable(r[i].err));
	}
	assert_false(db_pool_up(pool));

	/* the transaction is lost: later statements and COMMIT say so */
	result_reset(&s);
	(void)db_tx_query(tx, "SELECT 2", 0, NULL, result_cb, &s);
	db_tx_commit(tx, done_cb, &committed);
	RUN_UNTIL(committed.done, 1000);
	assert_int_equal(s.done, 1);
	assert_true(db_err_is(s.err, "08006"));
	assert_non_null(strstr(s.err, "transaction"));
	assert_int_equal(committed.done, 1);
	assert_true(db_err_is(committed.err, "08006"));

	/* while down, queries fail fast instead of waiting */
	t0 = now_ms();
	(void)db_query(pool, "SELECT 1", 0, NULL, result_cb, &late);
	RUN_UNTIL(late.done, 3000);
	assert_int_equal(late.done, 1);
	assert_true(db_err_unavailable(late.err));
	assert_true(now_ms() - t0 < 1000);
	run_for(300); /* a few reconnect attempts fail */
	assert_false(db_pool_up(pool));

	server_start();
	t0 = now_ms();
	RUN_UNTIL(db_pool_up(pool) && n.listening == 2, (DB_BACKOFF_MAX_MS + 2000));
	assert_true(db_pool_up(pool));
	assert_int_equal(n.listening, 2); /* LISTEN again after the reconnect */
	query_wait(pool, "SELECT pg_notify($1, $2)", 2, p, &late);
	assert_null(late.err);
	RUN_UNTIL(n.got, 5000);
	assert_int_equal(n.got, 1);
	assert_string_equal(n.payload, "back");
	query_wait(pool, "SELECT 'again'", 0, NULL, &late);
	assert_null(late.err);
	assert_string_equal(late.val[0], "again");

	for (int i = 0; i < N; i++)
		result_reset(&r[i]);
	result_reset(&late);
	result_reset(&s);
	free(committed.err);
	free(n.payload);
	db_pool_free(pool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_db_simple_query),
	    cmocka_unit_test(test_db_params_null_quotes_big),
	    cmocka_unit_test(test_db_prepared_once_per_connection),
	    cmocka_unit_test(test_db_fifo_beyond_pool_size),
	    cmocka_unit_test(test_db_server_error_has_sqlstate),
	    cmocka_unit_test(test_db_cancel_skips_callback),
	    cmocka_unit_test(test_db_queue_timeout_and_free),
	    cmocka_unit_test(test_db_tx_commit_and_rollback),
	    cmocka_unit_test(test_db_listen_notify),
	    cmocka_unit_test(test_db_bad_conninfo),
	    cmocka_unit_test(test_db_connect_timeout),
	    cmocka_unit_test(test_db_free_with_open_tx),
	    cmocka_unit_test(test_db_outage_and_reconnect),
	};
	return cmocka_run_group_tests_name("db", tests, group_setup, group_teardown);
}
