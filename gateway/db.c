/*
 * db.c - libpq connection pool driven by the event loop (see db.h).
 *
 * Each struct db_conn is a small state machine:
 *
 *   WAIT --timer--> CONNECTING --PQconnectPoll OK--> READY <--> BUSY
 *     ^                  |                             |         |
 *     +------------------+-----------------------------+---------+
 *             failure, timeout, loss: close, backoff timer
 *
 * The protocol follows STYLE.md 3.2: PQconnectStartParams/PQconnectPoll
 * with our own timeout timer and PQsocket() re-read before every wait;
 * PQsetnonblocking once connected; PQsendQueryParams then PQflush (1:
 * wait read|write, 0: wait read); on read PQconsumeInput, PQnotifies, and
 * PQgetResult while !PQisBusy until NULL; event_del before PQfinish.
 *
 * Nothing a caller does runs a callback synchronously: failures found
 * inside a db_* call go to pool->failed and are delivered by a deferred
 * event, so the loop's callbacks are the only places user code is entered.
 * Every query lives in exactly one place (enum db_where) until it is freed.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "db.h"
#include "log.h"
#include "xmalloc.h"

#define DB_MAX_ERROR 512 /* bytes of an error message we keep */

enum db_kind { DB_Q_USER, DB_Q_BEGIN, DB_Q_COMMIT, DB_Q_ROLLBACK, DB_Q_LISTEN };

enum db_where {
	DB_AT_NONE,   /* being moved or finished */
	DB_AT_POOL,   /* pool->queue */
	DB_AT_TX,     /* tx->queue */
	DB_AT_FAILED, /* pool->failed, error waiting for delivery */
	DB_AT_CONN,   /* a connection's cur */
	DB_AT_CALL,   /* its callback is running */
};

struct db_query {
	TAILQ_ENTRY(db_query) entry;
	struct db_pool *pool;
	struct db_tx *tx;         /* statements of a transaction */
	struct db_listen *listen; /* DB_Q_LISTEN */
	enum db_kind kind;
	enum db_where where;
	char *sql;
	int nparams;
	char **params; /* copies; NULL entries are SQL NULLs */
	db_result_cb *cb;
	void *arg;
	uint64_t deadline; /* monotonic ms, while in pool->queue */
	char *err;         /* while in pool->failed */
	bool cancelled;
	bool sent;
	bool rolled_back; /* a COMMIT sent as ROLLBACK: the tx had failed */
};
TAILQ_HEAD(db_queries, db_query);

/* Queries with parameters outside transactions (the APIs' and the message
 * log's, a few distinct texts) are prepared once per connection: parsing
 * and planning them anew was most of the database's time per request. */
#define DB_MAX_PREPARED 32

enum db_conn_state { DB_CONN_WAIT, DB_CONN_CONNECTING, DB_CONN_READY, DB_CONN_BUSY };

struct db_conn {
	struct db_pool *pool;
	PGconn *pg;
	struct event *io;
	struct event *timer; /* connect timeout (CONNECTING), backoff (WAIT) */
	evutil_socket_t io_fd;
	short io_what; /* 0: io not added */
	enum db_conn_state state;
	bool listener;
	bool flushing;
	int index;
	unsigned backoff_ms; /* next backoff step; 0 = DB_BACKOFF_MIN_MS */
	unsigned failures;   /* connect failures in a row */
	struct db_query *cur;
	PGresult *res; /* last result of cur */
	char *res_err; /* first error of cur */
	struct db_tx *tx;
	/* Statements prepared on this session (copies of their SQL), by index:
	 * statement i is named "ewp_s<i>". Reset when the connection closes. */
	char *prepared[DB_MAX_PREPARED];
	int nprepared;
	bool preparing; /* cur's statement is being prepared, not yet run */
};

struct db_tx {
	TAILQ_ENTRY(db_tx) entry;
	struct db_pool *pool;
	struct db_conn *conn; /* pinned from BEGIN dispatch to COMMIT/ROLLBACK */
	struct db_queries queue;
	struct db_query *begin; /* until BEGIN is finished */
	db_done_cb *begin_cb;
	void *begin_arg;
	db_done_cb *commit_cb;
	void *commit_arg;
	char *err;  /* first failure */
	int refs;   /* queries of this tx not yet freed */
	bool ended; /* commit or rollback called */
};

struct db_listen {
	TAILQ_ENTRY(db_listen) entry;
	char *channel;
	db_notify_cb *cb;
	void *arg;
	bool sent;   /* LISTEN sent on the current connection */
	bool active; /* LISTEN succeeded on the current connection */
};

struct db_pool {
	struct event_base *base;
	char **keywords; /* for PQconnectStartParams, NULL-terminated */
	char **values;
	int size;
	int connect_timeout_ms;
	int queue_timeout_ms;
	struct db_conn conns[DB_POOL_MAX_SIZE];
	struct db_conn *listener; /* created by the first db_pool_listen() */
	struct db_queries queue;
	struct db_queries failed;
	TAILQ_HEAD(, db_tx) txs;
	TAILQ_HEAD(, db_listen) listens;
	struct event *queue_timer;
	struct event *fail_ev;
	uint64_t rng;
	bool was_up;
	bool stopping;
	char last_err[DB_MAX_ERROR]; /* why the last connection failed */
};

static void db_conn_io_cb(evutil_socket_t fd, short what, void *arg);
static void db_conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void db_conn_close(struct db_conn *c, const char *why, const char *qerr);
static void db_pool_dispatch(struct db_pool *pool);
static void db_tx_step(struct db_tx *tx);
static void db_listen_step(struct db_conn *c);

static uint64_t
db_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval
db_tv(uint64_t ms)
{
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
	                     .tv_usec = (suseconds_t)(ms % 1000) * 1000};

	return tv;
}

/* One line, no trailing blanks, at most DB_MAX_ERROR bytes: libpq messages
 * span lines ("FATAL: ...\n" or "server closed ...\n\tThis probably..."). */
static void
db_clean(char *out, size_t outlen, const char *msg)
{
	size_t n = 0;
	bool blank = false;

	for (; msg != NULL && *msg != '\0' && n + 1 < outlen; msg++) {
		if (*msg == '\n' || *msg == '\t' || *msg == '\r' || *msg == ' ') {
			blank = n > 0;
			continue;
		}
		if (blank && n + 2 < outlen)
			out[n++] = ' ';
		blank = false;
		out[n++] = *msg;
	}
	out[n] = '\0';
}

static char *db_errf(const char *fmt, ...) EWP_PRINTF(1, 2);

/* "SSSSS: message" as one clean line; caller owns it. */
static char *
db_errf(const char *fmt, ...)
{
	char raw[DB_MAX_ERROR], line[DB_MAX_ERROR];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	db_clean(line, sizeof(line), raw);
	return xstrdup(line);
}

bool
db_err_is(const char *err, const char *code)
{
	size_t n = strlen(code);

	return err != NULL && n > 0 && n <= 5 && strlen(err) >= 5 && strncmp(err, code, n) == 0;
}

bool
db_err_unavailable(const char *err)
{
	return db_err_is(err, "08") || db_err_is(err, "57P");
}

/* Random in [step/2, step]: reconnects of many workers do not align. */
static unsigned
db_jitter(struct db_pool *pool, unsigned step)
{
	uint64_t x = pool->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	pool->rng = x;
	return step / 2 + (unsigned)(x % (step / 2 + 1));
}

/* ---- queries ---------------------------------------------------------- */

static struct db_query *
db_query_new(struct db_pool *pool, enum db_kind kind, const char *sql, int nparams,
             const char *const *params, db_result_cb *cb, void *arg)
{
	struct db_query *q = xcalloc(1, sizeof(*q));

	q->pool = pool;
	q->kind = kind;
	q->sql = xstrdup(sql);
	q->cb = cb;
	q->arg = arg;
	if (nparams > 0 && nparams <= DB_MAX_PARAMS) {
		q->nparams = nparams;
		q->params = xcalloc((size_t)nparams, sizeof(*q->params));
		for (int i = 0; i < nparams; i++)
			q->params[i] = params[i] != NULL ? xstrdup(params[i]) : NULL;
	}
	return q;
}

static void db_tx_maybe_free(struct db_tx *tx);

static void
db_query_free(struct db_query *q)
{
	struct db_tx *tx = q->tx;

	for (int i = 0; i < q->nparams; i++)
		free(q->params[i]);
	free(q->params);
	free(q->sql);
	free(q->err);
	free(q);
	if (tx != NULL) {
		tx->refs--;
		db_tx_maybe_free(tx);
	}
}

/* Fails q later, from the loop, with `err` (copied). */
static void
db_fail(struct db_query *q, const char *err)
{
	struct db_pool *pool = q->pool;
	struct timeval tv = {0, 0};

	free(q->err);
	q->err = xstrdup(err);
	q->where = DB_AT_FAILED;
	TAILQ_INSERT_TAIL(&pool->failed, q, entry);
	evtimer_add(pool->fail_ev, &tv);
}

/* The error given to a statement of a transaction that has failed. */
static char *
db_tx_failure(const struct db_tx *tx)
{
	if (tx->err == NULL)
		return xstrdup("XX000: transaction already over");
	if (db_err_unavailable(tx->err) || db_err_is(tx->err, "25P02"))
		return xstrdup(tx->err);
	return db_errf("25P02: transaction aborted by an earlier error: %s", tx->err);
}

static void
db_tx_unpin(struct db_tx *tx)
{
	if (tx->conn != NULL) {
		tx->conn->tx = NULL;
		tx->conn = NULL;
	}
}

/*
 * The one place where a query ends: runs its callback (or the internal
 * step for BEGIN, COMMIT, ROLLBACK, LISTEN) and frees it. The connection
 * that carried it is already idle, so callbacks may queue more work.
 */
static void
db_query_finish(struct db_query *q, PGresult *res, const char *err)
{
	struct db_tx *tx = q->tx;
	char *msg = NULL;

	q->where = DB_AT_CALL;
	switch (q->kind) {
	case DB_Q_USER:
		if (err != NULL && tx != NULL && tx->err == NULL)
			tx->err = xstrdup(err);
		if (q->cancelled)
			break;
		if (q->cb != NULL)
			q->cb(res, err, q->arg);
		else if (err != NULL)
			log_warnx("db: %s (statement without callback: %.60s)", err, q->sql);
		break;
	case DB_Q_BEGIN:
		tx->begin = NULL;
		if (err != NULL) {
			if (tx->err == NULL)
				tx->err = xstrdup(err);
			db_tx_unpin(tx); /* no transaction is open on the server */
		}
		if (!q->cancelled && tx->begin_cb != NULL)
			tx->begin_cb(err, tx->begin_arg);
		break;
	case DB_Q_COMMIT:
		db_tx_unpin(tx);
		if (q->rolled_back)
			msg = db_tx_failure(tx);
		else if (err != NULL)
			msg = xstrdup(err);
		else if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0)
			msg = xstrdup("40000: transaction rolled back by the server at COMMIT");
		if (tx->commit_cb != NULL)
			tx->commit_cb(msg, tx->commit_arg);
		else if (msg != NULL)
			log_warnx("db: transaction not committed: %s", msg);
		free(msg);
		break;
	case DB_Q_ROLLBACK:
		db_tx_unpin(tx);
		if (err != NULL && q->sent && !db_err_unavailable(err))
			log_warnx("db: ROLLBACK failed: %s", err);
		break;
	case DB_Q_LISTEN:
		if (err != NULL) {
			if (!db_err_unavailable(err))
				log_warnx("db: LISTEN %s failed: %s", q->listen->channel, err);
		} else if (!q->pool->stopping) {
			q->listen->active = true;
			q->listen->cb(q->listen->channel, NULL, q->listen->arg);
		}
		break;
	}
	if (tx != NULL)
		db_tx_step(tx); /* the next statement, or fail the rest */
	db_query_free(q);
}

/*
 * Delivers the failures queued by db_fail(). Those queued meanwhile wait
 * for the next round (a zero timer: after the next poll), so a caller
 * retrying at once cannot keep the loop from its sockets. The queries stay
 * on pool->failed until finished so that db_tx_rollback() finds them.
 */
static void
db_pool_fail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_pool *pool = arg;
	struct db_query *q, *last = TAILQ_LAST(&pool->failed, db_queries);
	bool stop = last == NULL;

	(void)fd;
	(void)what;
	while (!stop && (q = TAILQ_FIRST(&pool->failed)) != NULL) {
		TAILQ_REMOVE(&pool->failed, q, entry);
		stop = q == last;
		db_query_finish(q, NULL, q->err);
	}
	db_pool_dispatch(pool);
}

/* ---- connections ------------------------------------------------------ */

/* Watches the connection's current socket for `what` (0: nothing). */
static void
db_conn_watch(struct db_conn *c, short what)
{
	evutil_socket_t fd = c->pg != NULL ? PQsocket(c->pg) : -1;

	if (fd < 0)
		what = 0;
	if (what == c->io_what && (what == 0 || fd == c->io_fd))
		return;
	if (c->io_what != 0)
		event_del(c->io);
	c->io_what = what;
	c->io_fd = fd;
	if (what == 0)
		return;
	event_assign(c->io, c->pool->base, fd, (short)(what | EV_PERSIST), db_conn_io_cb, c);
	if (event_add(c->io, NULL) == -1)
		fatalx("db: event_add failed");
}

static void
db_conn_rewatch(struct db_conn *c)
{
	switch (c->state) {
	case DB_CONN_READY:
		db_conn_watch(c, EV_READ); /* notifications, and noticing loss */
		break;
	case DB_CONN_BUSY:
		db_conn_watch(c, (short)(EV_READ | (c->flushing ? EV_WRITE : 0)));
		break;
	default:
		break;
	}
}

static void
db_notice_cb(void *arg, const PGresult *res)
{
	char line[DB_MAX_ERROR];
	struct db_conn *c = arg;

	if (!log_enabled(LOG_LEVEL_DEBUG))
		return;
	db_clean(line, sizeof(line), PQresultErrorMessage(res));
	log_debug("db: connection %d: %s", c->index, line);
}

static void
db_conn_schedule(struct db_conn *c)
{
	unsigned step = c->backoff_ms ? c->backoff_ms : DB_BACKOFF_MIN_MS;
	struct timeval tv = db_tv(db_jitter(c->pool, step));

	c->backoff_ms = step * 2 < DB_BACKOFF_MAX_MS ? step * 2 : DB_BACKOFF_MAX_MS;
	evtimer_add(c->timer, &tv);
}

static void
db_conn_start(struct db_conn *c)
{
	struct db_pool *pool = c->pool;
	struct timeval tv = db_tv((uint64_t)pool->connect_timeout_ms);

	c->pg = PQconnectStartParams((const char *const *)pool->keywords,
	                             (const char *const *)pool->values, 0);
	if (c->pg == NULL)
		fatalx("db: out of memory");
	PQsetNoticeReceiver(c->pg, db_notice_cb, c);
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		db_conn_close(c, PQerrorMessage(c->pg), NULL);
		return;
	}
	c->state = DB_CONN_CONNECTING;
	evtimer_add(c->timer, &tv);
	db_conn_watch(c, EV_WRITE); /* the manual: wait for write first */
}

static void
db_conn_connected(struct db_conn *c)
{
	evtimer_del(c->timer);
	if (PQsetnonblocking(c->pg, 1) != 0) {
		db_conn_close(c, PQerrorMessage(c->pg), NULL);
		return;
	}
	c->state = DB_CONN_READY;
	c->backoff_ms = 0;
	c->failures = 0;
	log_debug("db: connection %d up (server pid %d)", c->index, PQbackendPID(c->pg));
	db_conn_watch(c, EV_READ);
}

static void
db_conn_connect_poll(struct db_conn *c)
{
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		db_conn_watch(c, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		db_conn_watch(c, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		db_conn_connected(c);
		break;
	default:
		db_conn_close(c, PQerrorMessage(c->pg), NULL);
		break;
	}
}

/* Puts a query that never reached the server back where it came from. */
static void
db_query_requeue(struct db_query *q)
{
	struct db_pool *pool = q->pool;

	switch (q->kind) {
	case DB_Q_USER:
		if (q->tx == NULL) {
			q->where = DB_AT_POOL;
			TAILQ_INSERT_HEAD(&pool->queue, q, entry);
			return;
		}
		break;
	case DB_Q_BEGIN:
		db_tx_unpin(q->tx);
		q->where = DB_AT_POOL;
		TAILQ_INSERT_HEAD(&pool->queue, q, entry);
		return;
	case DB_Q_LISTEN:
		q->listen->sent = false;
		db_query_free(q);
		return;
	default:
		break;
	}
	q->where = DB_AT_TX;
	TAILQ_INSERT_HEAD(&q->tx->queue, q, entry);
}

/* The result of a failed statement as "SSSSS: primary message". */
static char *
db_result_error(struct db_conn *c, const PGresult *r)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	if (msg == NULL)
		msg = PQresultErrorMessage(r);
	if (state == NULL || strlen(state) != 5) /* made by libpq itself */
		state = PQstatus(c->pg) == CONNECTION_BAD ? "08006" : "XX000";
	return db_errf("%s: %s", state, msg);
}

/* Index of q's statement among those prepared on c, -1 if none. */
static int
db_conn_prepared(const struct db_conn *c, const struct db_query *q)
{
	for (int i = 0; i < c->nprepared; i++)
		if (strcmp(c->prepared[i], q->sql) == 0)
			return i;
	return -1;
}

/* Sends q on the idle connection c: prepares its statement first when it
 * is worth it (db_conn_complete then sends q itself). */
static void
db_conn_send(struct db_conn *c, struct db_query *q)
{
	char why[DB_MAX_ERROR], name[16];
	bool prepare = q->kind == DB_Q_USER && q->tx == NULL && q->nparams > 0;
	int i = prepare ? db_conn_prepared(c, q) : -1, ok, r;

	if (prepare && i < 0 && c->nprepared < DB_MAX_PREPARED) {
		snprintf(name, sizeof(name), "ewp_s%d", c->nprepared);
		ok = PQsendPrepare(c->pg, name, q->sql, q->nparams, NULL);
		c->preparing = ok;
	} else if (i >= 0) {
		snprintf(name, sizeof(name), "ewp_s%d", i);
		ok = PQsendQueryPrepared(c->pg, name, q->nparams, (const char *const *)q->params,
		                         NULL, NULL, 0);
	} else {
		ok = PQsendQueryParams(c->pg, q->sql, q->nparams, NULL,
		                       (const char *const *)q->params, NULL, NULL, 0);
	}
	if (!ok) {
		db_clean(why, sizeof(why), PQerrorMessage(c->pg));
		if (PQstatus(c->pg) == CONNECTION_BAD) {
			db_query_requeue(q); /* nothing reached the server */
			db_conn_close(c, why, NULL);
		} else {
			char *err = db_errf("XX000: %s", why);

			db_fail(q, err);
			free(err);
		}
		return;
	}
	q->sent = true;
	q->where = DB_AT_CONN;
	c->cur = q;
	c->state = DB_CONN_BUSY;
	r = PQflush(c->pg);
	if (r == -1) {
		db_conn_close(c, PQerrorMessage(c->pg), NULL);
		return;
	}
	c->flushing = r == 1;
	db_conn_rewatch(c);
}

/* cur is done (PQgetResult gave NULL): idle the connection, then finish. */
static void
db_conn_complete(struct db_conn *c)
{
	struct db_query *q = c->cur;
	PGresult *res = c->res;
	char *err = c->res_err;

	c->cur = NULL;
	c->res = NULL;
	c->res_err = NULL;
	c->state = DB_CONN_READY;
	if (c->preparing) {
		c->preparing = false;
		PQclear(res);
		res = NULL;
		/* prepared on the server: recorded even if q was cancelled meanwhile,
		 * or the next PREPARE of that name would fail (42P05) */
		if (err == NULL)
			c->prepared[c->nprepared++] = xstrdup(q->sql);
		if (err == NULL && !q->cancelled) {
			db_conn_send(c, q); /* now run it */
			return;
		}
		if (err == NULL) /* a statement that does not prepare would not run either */
			err = xstrdup("57014: cancelled before it ran");
	}
	db_conn_rewatch(c);
	if (err == NULL && res == NULL)
		err = xstrdup("XX000: no result");
	db_query_finish(q, err != NULL ? NULL : res, err);
	PQclear(res);
	free(err);
}

static void
db_conn_collect(struct db_conn *c)
{
	PGresult *r;

	while (c->cur != NULL && !PQisBusy(c->pg)) {
		if ((r = PQgetResult(c->pg)) == NULL) {
			db_conn_complete(c);
			return;
		}
		switch (PQresultStatus(r)) {
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
		case PGRES_COPY_BOTH:
			PQclear(r);
			db_conn_close(c, "COPY is not supported", "0A000: COPY is not supported");
			return;
		case PGRES_BAD_RESPONSE:
		case PGRES_NONFATAL_ERROR:
		case PGRES_FATAL_ERROR:
			if (c->res_err == NULL)
				c->res_err = db_result_error(c, r);
			PQclear(r);
			break;
		default:
			PQclear(c->res);
			c->res = r;
			break;
		}
	}
}

static void
db_conn_notifies(struct db_conn *c)
{
	struct db_listen *l;
	PGnotify *n;

	while (c->pg != NULL && (n = PQnotifies(c->pg)) != NULL) {
		TAILQ_FOREACH(l, &c->pool->listens, entry)
		{
			if (l->active && strcmp(l->channel, n->relname) == 0)
				l->cb(n->relname, n->extra, l->arg);
		}
		PQfreemem(n);
	}
}

static void
db_conn_io(struct db_conn *c, short what)
{
	int r;

	if ((what & EV_READ) && !PQconsumeInput(c->pg)) {
		db_conn_close(c, PQerrorMessage(c->pg), NULL);
		return;
	}
	if (c->flushing) {
		/* read first: the server may wait for us to read a notice */
		if ((r = PQflush(c->pg)) == -1) {
			db_conn_close(c, PQerrorMessage(c->pg), NULL);
			return;
		}
		c->flushing = r == 1;
	}
	if (c->state == DB_CONN_BUSY)
		db_conn_collect(c); /* runs callbacks */
	if (c->pg != NULL)
		db_conn_notifies(c); /* runs callbacks */
	if (c->pg == NULL)
		return; /* closed meanwhile */
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		db_conn_close(c, PQerrorMessage(c->pg), NULL);
		return;
	}
	db_conn_rewatch(c);
}

static void
db_conn_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *c = arg;

	(void)fd;
	if (c->state == DB_CONN_CONNECTING)
		db_conn_connect_poll(c);
	else if (c->pg != NULL)
		db_conn_io(c, what);
	db_pool_dispatch(c->pool);
}

static void
db_conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *c = arg;
	char why[64];

	(void)fd;
	(void)what;
	if (c->state == DB_CONN_WAIT) {
		db_conn_start(c);
	} else if (c->state == DB_CONN_CONNECTING) {
		snprintf(why, sizeof(why), "connect timeout after %d ms",
		         c->pool->connect_timeout_ms);
		db_conn_close(c, why, NULL);
	}
	db_pool_dispatch(c->pool);
}

/*
 * Closes c (event_del before PQfinish), fails its query with qerr (or
 * 08006 and `why`), marks its transaction lost, and arms the reconnect.
 */
static void
db_conn_close(struct db_conn *c, const char *why, const char *qerr)
{
	struct db_pool *pool = c->pool;
	char line[DB_MAX_ERROR];
	struct db_listen *l;
	struct db_tx *tx;
	bool was_preparing;
	char *err;

	db_clean(line, sizeof(line), why);
	if (c->state == DB_CONN_CONNECTING || c->state == DB_CONN_WAIT) {
		if (++c->failures == 1 && !pool->stopping)
			log_warnx("db: connection %d: cannot connect: %s", c->index, line);
		else
			log_debug("db: connection %d: cannot connect: %s", c->index, line);
	} else if (!pool->stopping) {
		log_warnx("db: connection %d lost: %s", c->index, line);
	}
	snprintf(pool->last_err, sizeof(pool->last_err), "%s", line);

	db_conn_watch(c, 0);
	evtimer_del(c->timer);
	PQfinish(c->pg);
	c->pg = NULL;
	c->state = DB_CONN_WAIT;
	c->flushing = false;
	was_preparing = c->preparing;
	c->preparing = false;
	for (int i = 0; i < c->nprepared; i++)
		free(c->prepared[i]);
	c->nprepared = 0;
	PQclear(c->res);
	c->res = NULL;

	err = db_errf("08006: connection lost: %s", line);
	if ((tx = c->tx) != NULL) {
		db_tx_unpin(tx);
		if (tx->err == NULL && qerr != NULL)
			tx->err = xstrdup(qerr);
		else if (tx->err == NULL)
			tx->err =
			    db_errf("08006: connection lost during the transaction: %s", line);
	}
	if (c->cur != NULL && was_preparing && c->cur->tx == NULL && !c->cur->cancelled) {
		/* only its PREPARE was sent: the statement never ran, try it again */
		c->cur->sent = false;
		db_query_requeue(c->cur);
		c->cur = NULL;
	}
	if (c->cur != NULL) { /* the server's own reason (57P01...) if it sent one */
		db_fail(c->cur, qerr != NULL ? qerr : c->res_err != NULL ? c->res_err : err);
		c->cur = NULL;
	}
	if (tx != NULL)
		db_tx_step(tx); /* fails what it still had queued */
	free(err);
	free(c->res_err);
	c->res_err = NULL;
	if (c->listener) {
		TAILQ_FOREACH(l, &pool->listens, entry)
		l->sent = l->active = false;
	}
	if (!pool->stopping)
		db_conn_schedule(c);
}

static void
db_conn_init(struct db_pool *pool, struct db_conn *c, int index, bool listener)
{
	c->pool = pool;
	c->index = index;
	c->listener = listener;
	c->state = DB_CONN_WAIT;
	c->io_fd = -1;
	c->io = event_new(pool->base, -1, 0, db_conn_io_cb, c);
	c->timer = evtimer_new(pool->base, db_conn_timer_cb, c);
	if (c->io == NULL || c->timer == NULL)
		fatalx("db: out of memory");
}

/* Stops c for good (db_pool_free): its query fails with 08003. */
static void
db_conn_shut(struct db_conn *c)
{
	if (c->io == NULL)
		return;
	if (c->pg != NULL)
		db_conn_close(c, "pool stopped", "08003: pool stopped");
	event_free(c->io);
	event_free(c->timer);
	c->io = c->timer = NULL;
}

/* ---- the pool --------------------------------------------------------- */

static bool
db_pool_connecting(const struct db_pool *pool)
{
	for (int i = 0; i < pool->size; i++)
		if (pool->conns[i].state == DB_CONN_CONNECTING)
			return true;
	return false;
}

bool
db_pool_up(const struct db_pool *pool)
{
	for (int i = 0; i < pool->size; i++)
		if (pool->conns[i].state == DB_CONN_READY || pool->conns[i].state == DB_CONN_BUSY)
			return true;
	return false;
}

static void
db_pool_queue_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_pool *pool = arg;
	uint64_t now = db_now_ms();
	struct db_query *q;
	char *err;

	(void)fd;
	(void)what;
	while ((q = TAILQ_FIRST(&pool->queue)) != NULL && q->deadline <= now) {
		TAILQ_REMOVE(&pool->queue, q, entry);
		err = db_errf("08001: no database connection free within %d ms",
		              pool->queue_timeout_ms);
		db_fail(q, err);
		free(err);
	}
	db_pool_dispatch(pool);
}

/*
 * Gives queued work to idle connections, then bounds the waiting: with no
 * connection usable and none connecting the queue fails at once; else the
 * timer fails each query at its deadline. Runs no callback.
 */
static void
db_pool_dispatch(struct db_pool *pool)
{
	struct db_query *q;
	struct db_conn *c;
	uint64_t now;
	bool up;
	char *err;

	if (pool->stopping)
		return;
	for (int i = 0; i < pool->size; i++) {
		c = &pool->conns[i];
		if (c->state == DB_CONN_READY && c->tx != NULL)
			db_tx_step(c->tx);
		while (c->state == DB_CONN_READY && c->tx == NULL &&
		       (q = TAILQ_FIRST(&pool->queue)) != NULL) {
			TAILQ_REMOVE(&pool->queue, q, entry);
			q->where = DB_AT_NONE;
			if (q->kind == DB_Q_BEGIN) {
				c->tx = q->tx;
				q->tx->conn = c;
			}
			db_conn_send(c, q);
		}
	}
	if (pool->listener != NULL)
		db_listen_step(pool->listener);

	up = db_pool_up(pool);
	if ((q = TAILQ_FIRST(&pool->queue)) == NULL) {
		evtimer_del(pool->queue_timer);
	} else if (!up && !db_pool_connecting(pool)) {
		err = db_errf("08001: database unavailable: %s", pool->last_err);
		while ((q = TAILQ_FIRST(&pool->queue)) != NULL) {
			TAILQ_REMOVE(&pool->queue, q, entry);
			db_fail(q, err);
		}
		free(err);
		evtimer_del(pool->queue_timer);
	} else {
		struct timeval tv;

		now = db_now_ms();
		tv = db_tv(q->deadline > now ? q->deadline - now : 0);
		evtimer_add(pool->queue_timer, &tv);
	}
	if (up != pool->was_up) {
		pool->was_up = up;
		if (up)
			log_info("db: database available");
		else
			log_warnx("db: database unavailable: %s", pool->last_err);
	}
}

static void
db_pool_enqueue(struct db_pool *pool, struct db_query *q)
{
	q->deadline = db_now_ms() + (uint64_t)pool->queue_timeout_ms;
	q->where = DB_AT_POOL;
	TAILQ_INSERT_TAIL(&pool->queue, q, entry);
	db_pool_dispatch(pool);
}

/* Name lookups block inside libpq: say so once, at start. */
static void
db_check_hosts(const char *hosts)
{
	unsigned char addr[16];
	char name[256];
	size_t n;

	while (*hosts != '\0') {
		n = strcspn(hosts, ",");
		if (n > 0 && n < sizeof(name) && hosts[0] != '/' && hosts[0] != '@') {
			memcpy(name, hosts, n);
			name[n] = '\0';
			if (inet_pton(AF_INET, name, addr) != 1 &&
			    inet_pton(AF_INET6, name, addr) != 1)
				log_warnx(
				    "db: host \"%s\" needs a DNS lookup, which blocks the event "
				    "loop while connecting; give hostaddr= or a socket directory",
				    name);
		}
		hosts += n;
		if (*hosts == ',')
			hosts++;
	}
}

/* Keywords for PQconnectStartParams: the conninfo's own, then ours. */
static int
db_pool_params(struct db_pool *pool, const struct db_pool_conf *conf, char *err, size_t errlen)
{
	PQconninfoOption *opts, *o;
	const char *user_options = NULL, *host = NULL, *hostaddr = NULL;
	char *errmsg = NULL, line[DB_MAX_ERROR];
	size_t n = 0, count = 0;

	if ((opts = PQconninfoParse(conf->conninfo, &errmsg)) == NULL) {
		db_clean(line, sizeof(line), errmsg != NULL ? errmsg : "out of memory");
		snprintf(err, errlen, "invalid conninfo: %s", line);
		PQfreemem(errmsg);
		return -1;
	}
	for (o = opts; o->keyword != NULL; o++)
		count++;
	pool->keywords = xcalloc(count + 4, sizeof(char *));
	pool->values = xcalloc(count + 4, sizeof(char *));
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "options") == 0) {
			user_options = o->val;
			continue;
		}
		if (strcmp(o->keyword, "application_name") == 0 ||
		    strcmp(o->keyword, "fallback_application_name") == 0 ||
		    strcmp(o->keyword, "client_encoding") == 0)
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		pool->keywords[n] = xstrdup(o->keyword);
		pool->values[n++] = xstrdup(o->val);
	}
	if (host != NULL && (hostaddr == NULL || *hostaddr == '\0'))
		db_check_hosts(host);
	pool->keywords[n] = xstrdup("application_name");
	pool->values[n++] = xstrdup("ewpd");
	pool->keywords[n] = xstrdup("client_encoding");
	pool->values[n++] = xstrdup("UTF8");
	pool->keywords[n] = xstrdup("options");
	pool->values[n++] =
	    xasprintf("%s%s-c statement_timeout=%d -c idle_in_transaction_session_timeout=%d",
	              user_options != NULL ? user_options : "", user_options != NULL ? " " : "",
	              conf->statement_timeout_ms, DB_IDLE_TX_TIMEOUT_MS);
	PQconninfoFree(opts);
	return 0;
}

struct db_pool *
db_pool_new(struct event_base *base, const struct db_pool_conf *conf, char *err, size_t errlen)
{
	struct db_pool *pool;

	if (conf->conninfo == NULL || conf->size < 1 || conf->size > DB_POOL_MAX_SIZE) {
		snprintf(err, errlen, "pool size must be 1..%d", DB_POOL_MAX_SIZE);
		return NULL;
	}
	if (conf->statement_timeout_ms < 0 || conf->connect_timeout_ms < 0 ||
	    conf->queue_timeout_ms < 0) {
		snprintf(err, errlen, "negative timeout");
		return NULL;
	}
	pool = xcalloc(1, sizeof(*pool));
	if (db_pool_params(pool, conf, err, errlen) == -1) {
		free(pool);
		return NULL;
	}
	pool->base = base;
	pool->size = conf->size;
	pool->connect_timeout_ms =
	    conf->connect_timeout_ms ? conf->connect_timeout_ms : DB_CONNECT_TIMEOUT_MS;
	pool->queue_timeout_ms =
	    conf->queue_timeout_ms ? conf->queue_timeout_ms : DB_QUEUE_TIMEOUT_MS;
	pool->rng = db_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)pool;
	if (pool->rng == 0)
		pool->rng = 1;
	TAILQ_INIT(&pool->queue);
	TAILQ_INIT(&pool->failed);
	TAILQ_INIT(&pool->txs);
	TAILQ_INIT(&pool->listens);
	snprintf(pool->last_err, sizeof(pool->last_err), "not connected yet");
	pool->queue_timer = evtimer_new(base, db_pool_queue_timer_cb, pool);
	pool->fail_ev = evtimer_new(base, db_pool_fail_cb, pool);
	if (pool->queue_timer == NULL || pool->fail_ev == NULL)
		fatalx("db: out of memory");
	for (int i = 0; i < pool->size; i++) {
		db_conn_init(pool, &pool->conns[i], i, false);
		db_conn_start(&pool->conns[i]);
	}
	return pool;
}

/* Delivers everything still pending with its error (08003 for the
 * queue); callbacks may queue more, which is delivered in turn. */
static void
db_pool_drain(struct db_pool *pool)
{
	struct db_query *q;
	struct db_tx *tx;
	bool more = true;

	while (more) {
		more = false;
		while ((q = TAILQ_FIRST(&pool->queue)) != NULL) {
			TAILQ_REMOVE(&pool->queue, q, entry);
			db_fail(q, "08003: pool stopped");
		}
		TAILQ_FOREACH(tx, &pool->txs, entry)
		{
			if (tx->err == NULL)
				tx->err = xstrdup("08003: pool stopped");
			if (!TAILQ_EMPTY(&tx->queue))
				db_tx_step(tx);
		}
		while ((q = TAILQ_FIRST(&pool->failed)) != NULL) {
			TAILQ_REMOVE(&pool->failed, q, entry);
			db_query_finish(q, NULL, q->err);
			more = true;
		}
	}
}

void
db_pool_free(struct db_pool *pool)
{
	struct db_listen *l;
	struct db_tx *tx;

	if (pool == NULL)
		return;
	pool->stopping = true;
	for (int i = 0; i < pool->size; i++)
		db_conn_shut(&pool->conns[i]);
	if (pool->listener != NULL)
		db_conn_shut(pool->listener);
	db_pool_drain(pool);
	while ((tx = TAILQ_FIRST(&pool->txs)) != NULL) { /* not ended by their owner */
		TAILQ_REMOVE(&pool->txs, tx, entry);
		free(tx->err);
		free(tx);
	}
	while ((l = TAILQ_FIRST(&pool->listens)) != NULL) {
		TAILQ_REMOVE(&pool->listens, l, entry);
		free(l->channel);
		free(l);
	}
	free(pool->listener);
	for (size_t i = 0; pool->keywords[i] != NULL; i++) {
		free(pool->keywords[i]);
		free(pool->values[i]);
	}
	free(pool->keywords);
	free(pool->values);
	event_free(pool->queue_timer);
	event_free(pool->fail_ev);
	free(pool);
}

struct db_query *
db_query(struct db_pool *pool, const char *sql, int nparams, const char *const *params,
         db_result_cb *cb, void *arg)
{
	struct db_query *q = db_query_new(pool, DB_Q_USER, sql, nparams, params, cb, arg);

	if (nparams < 0 || nparams > DB_MAX_PARAMS) {
		db_fail(q, "54023: too many parameters");
		return q;
	}
	db_pool_enqueue(pool, q);
	return q;
}

void
db_query_cancel(struct db_query *q)
{
	if (q == NULL)
		return;
	switch (q->where) {
	case DB_AT_POOL:
		TAILQ_REMOVE(&q->pool->queue, q, entry);
		db_query_free(q);
		break;
	case DB_AT_CALL:
		break;
	default:
		q->cancelled = true;
		break;
	}
}

/* ---- transactions ----------------------------------------------------- */

static void
db_tx_maybe_free(struct db_tx *tx)
{
	if (!tx->ended || tx->refs > 0 || tx->conn != NULL)
		return;
	TAILQ_REMOVE(&tx->pool->txs, tx, entry);
	free(tx->err);
	free(tx);
}

/*
 * Moves the transaction on: sends its next statement when its connection
 * is idle, or, once it has failed, fails statements without running them
 * (a COMMIT becomes a ROLLBACK while the connection lives). Runs no
 * callback and frees nothing.
 */
static void
db_tx_step(struct db_tx *tx)
{
	struct db_conn *c = tx->conn;
	struct db_query *q;
	char *err;

	while ((q = TAILQ_FIRST(&tx->queue)) != NULL) {
		if (tx->begin != NULL)
			return; /* BEGIN queued, in flight or failing */
		if (c != NULL && (c->state != DB_CONN_READY || c->cur != NULL))
			return; /* busy */
		TAILQ_REMOVE(&tx->queue, q, entry);
		q->where = DB_AT_NONE;
		if (c == NULL || (tx->err != NULL && q->kind == DB_Q_USER)) {
			err = db_tx_failure(tx);
			db_fail(q, err);
			free(err);
			continue;
		}
		if (tx->err != NULL && q->kind == DB_Q_COMMIT) {
			free(q->sql);
			q->sql = xstrdup("ROLLBACK");
			q->rolled_back = true;
		}
		db_conn_send(c, q);
		c = tx->conn; /* NULL if that lost the connection */
	}
}

struct db_tx *
db_tx_begin(struct db_pool *pool, db_done_cb *cb, void *arg)
{
	struct db_tx *tx = xcalloc(1, sizeof(*tx));
	struct db_query *q;

	tx->pool = pool;
	tx->begin_cb = cb;
	tx->begin_arg = arg;
	TAILQ_INIT(&tx->queue);
	TAILQ_INSERT_TAIL(&pool->txs, tx, entry);
	q = db_query_new(pool, DB_Q_BEGIN, "BEGIN", 0, NULL, NULL, NULL);
	q->tx = tx;
	tx->refs++;
	tx->begin = q;
	db_pool_enqueue(pool, q);
	return tx;
}

static struct db_query *
db_tx_add(struct db_tx *tx, enum db_kind kind, const char *sql, int nparams,
          const char *const *params, db_result_cb *cb, void *arg)
{
	struct db_query *q = db_query_new(tx->pool, kind, sql, nparams, params, cb, arg);

	q->tx = tx;
	tx->refs++;
	if (nparams < 0 || nparams > DB_MAX_PARAMS) {
		db_fail(q, "54023: too many parameters");
		return q;
	}
	q->where = DB_AT_TX;
	TAILQ_INSERT_TAIL(&tx->queue, q, entry);
	db_tx_step(tx);
	return q;
}

struct db_query *
db_tx_query(struct db_tx *tx, const char *sql, int nparams, const char *const *params,
            db_result_cb *cb, void *arg)
{
	return db_tx_add(tx, DB_Q_USER, sql, nparams, params, cb, arg);
}

void
db_tx_commit(struct db_tx *tx, db_done_cb *cb, void *arg)
{
	tx->ended = true;
	tx->commit_cb = cb;
	tx->commit_arg = arg;
	(void)db_tx_add(tx, DB_Q_COMMIT, "COMMIT", 0, NULL, NULL, NULL);
}

void
db_tx_rollback(struct db_tx *tx)
{
	struct db_query *q, *next;
	struct db_pool *pool = tx->pool;

	tx->ended = true;
	if (tx->begin != NULL) {
		tx->begin->cancelled = true;
		if (tx->begin->where == DB_AT_POOL) { /* never dispatched */
			q = tx->begin;
			tx->begin = NULL;
			TAILQ_REMOVE(&pool->queue, q, entry);
			tx->refs++; /* keep tx while freeing q */
			db_query_free(q);
			tx->refs--;
		}
	}
	while ((q = TAILQ_FIRST(&tx->queue)) != NULL) { /* never sent */
		TAILQ_REMOVE(&tx->queue, q, entry);
		tx->refs++;
		db_query_free(q);
		tx->refs--;
	}
	/* Those in flight or failing still finish, silently. */
	if (tx->conn != NULL && tx->conn->cur != NULL && tx->conn->cur->tx == tx)
		tx->conn->cur->cancelled = true;
	for (q = TAILQ_FIRST(&pool->failed); q != NULL; q = next) {
		next = TAILQ_NEXT(q, entry);
		if (q->tx == tx)
			q->cancelled = true;
	}
	if (tx->conn != NULL)
		(void)db_tx_add(tx, DB_Q_ROLLBACK, "ROLLBACK", 0, NULL, NULL, NULL);
	else
		db_tx_maybe_free(tx);
}

/* ---- LISTEN ----------------------------------------------------------- */

/* Sends the next LISTEN the listening connection still owes. */
static void
db_listen_step(struct db_conn *c)
{
	struct db_listen *l;
	struct db_query *q;
	char *ident, *sql;

	if (c->state != DB_CONN_READY || c->cur != NULL)
		return;
	TAILQ_FOREACH(l, &c->pool->listens, entry)
	{
		if (l->sent)
			continue;
		/* An identifier, not a value: it cannot be a $n parameter, so
		 * it is checked in db_pool_listen() and quoted by libpq. */
		ident = PQescapeIdentifier(c->pg, l->channel, strlen(l->channel));
		if (ident == NULL)
			fatalx("db: out of memory");
		sql = xasprintf("LISTEN %s", ident);
		PQfreemem(ident);
		q = db_query_new(c->pool, DB_Q_LISTEN, sql, 0, NULL, NULL, NULL);
		free(sql);
		q->listen = l;
		l->sent = true;
		db_conn_send(c, q);
		return;
	}
}

int
db_pool_listen(struct db_pool *pool, const char *channel, db_notify_cb *cb, void *arg)
{
	struct db_listen *l;
	size_t n = strlen(channel);

	if (pool->stopping || n == 0 || n > DB_MAX_CHANNEL || cb == NULL ||
	    strspn(channel, "abcdefghijklmnopqrstuvwxyz0123456789_") != n ||
	    (channel[0] >= '0' && channel[0] <= '9'))
		return -1;
	l = xcalloc(1, sizeof(*l));
	l->channel = xstrdup(channel);
	l->cb = cb;
	l->arg = arg;
	TAILQ_INSERT_TAIL(&pool->listens, l, entry);
	if (pool->listener == NULL) {
		pool->listener = xcalloc(1, sizeof(*pool->listener));
		db_conn_init(pool, pool->listener, pool->size, true);
		db_conn_start(pool->listener);
	}
	db_pool_dispatch(pool);
	return 0;
}
