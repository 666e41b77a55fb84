/*
 * db.h - PostgreSQL on the event loop: a small pool of libpq connections
 * driven asynchronously (nothing here ever blocks the loop).
 *
 * One pool per process, on that process's event_base, single-threaded.
 * The pool keeps `size` connections to one conninfo, plus one dedicated
 * connection for LISTEN once db_pool_listen() is first called.
 *
 * Queries: db_query() copies the SQL and the text parameters, queues the
 * query (FIFO) and returns a handle. Its callback runs exactly once, from
 * the loop and never from inside the db_* call that queued it, with either
 * a result or an error string, unless the query was cancelled first. Values
 * always travel as $1..$n parameters (PQsendQueryParams), never inside the
 * SQL text. One statement per query; COPY is not supported.
 *
 * Errors are strings "SSSSS: message" whose first five characters are a
 * SQLSTATE: the server's own for server errors, and for errors found on
 * our side:
 *   08006  the connection was lost (outcome of the statement unknown)
 *   08001  no connection: the database is down, or none became free within
 *          the queue timeout
 *   08003  the pool was stopped (db_pool_free)
 *   25P02  the transaction had already failed (the first error follows)
 *   40000  the server answered COMMIT with ROLLBACK
 *   0A000  COPY, which the pool does not support
 * db_err_is() tests the code or its class; db_err_unavailable() tells the
 * errors meaning "the database is not reachable now" (ewpd answers 503).
 *
 * When nothing waits: a query is refused at once (08001, still through its
 * callback) while no connection is usable and none is connecting, i.e.
 * every connection sits in its reconnect backoff; otherwise it waits in the
 * queue at most queue_timeout_ms for a free connection.
 *
 * Reconnect: a lost connection is closed, the query it carried fails with
 * 08006 (or the server's reason, e.g. 57P01 at shutdown), and a new connection is tried after a
 * backoff growing from DB_BACKOFF_MIN_MS, doubling to DB_BACKOFF_MAX_MS, with jitter (random
 * 50-100% of the step); connecting is bounded by connect_timeout_ms on our
 * own timer. Each connection runs with application_name=ewpd,
 * client_encoding=UTF8, the server-side statement_timeout given and
 * idle_in_transaction_session_timeout=DB_IDLE_TX_TIMEOUT_MS, so a
 * forgotten transaction cannot pin a connection for ever. PostgreSQL
 * notices are logged with log_debug.
 *
 * Host names in the conninfo are resolved by libpq with a blocking lookup:
 * use a Unix-socket directory or hostaddr= (a warning is logged otherwise).
 */
#ifndef DB_H
#define DB_H

#include <stdbool.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "ewpd.h"

#define DB_POOL_MAX_SIZE      8     /* query connections in one pool */
#define DB_MAX_PARAMS         1000  /* parameters of one statement */
#define DB_CONNECT_TIMEOUT_MS 5000  /* default connect_timeout_ms */
#define DB_QUEUE_TIMEOUT_MS   5000  /* default queue_timeout_ms */
#define DB_IDLE_TX_TIMEOUT_MS 60000 /* server kills a transaction idle this long */
#define DB_BACKOFF_MIN_MS     100
#define DB_BACKOFF_MAX_MS     5000
#define DB_MAX_CHANNEL        63 /* LISTEN channel name length */

struct db_pool;
struct db_query;
struct db_tx;

struct db_pool_conf {
	const char *conninfo;     /* libpq "key=value ..." or URI; copied */
	int size;                 /* query connections, 1..DB_POOL_MAX_SIZE */
	int statement_timeout_ms; /* server-side statement_timeout; 0 = none */
	int connect_timeout_ms;   /* 0 = DB_CONNECT_TIMEOUT_MS */
	int queue_timeout_ms;     /* 0 = DB_QUEUE_TIMEOUT_MS */
};

/*
 * Result of one statement: exactly one of res and err is non-NULL. Both
 * are lent for the duration of the call only (copy what you keep; never
 * PQclear res). The callback may queue further queries and transactions.
 */
typedef void db_result_cb(PGresult *res, const char *err, void *arg);
/* End of a step of a transaction (BEGIN, COMMIT): err NULL on success. */
typedef void db_done_cb(const char *err, void *arg);
/*
 * A notification on a channel we listen to. payload NULL means "LISTEN is
 * (again) in place": after a reconnect anything sent meanwhile was missed,
 * so a listener should look at the state itself (e.g. rescan the outbox).
 */
typedef void db_notify_cb(const char *channel, const char *payload, void *arg);

/*
 * Checks the conninfo and starts connecting (asynchronously); NULL with a
 * reason in err (errlen bytes) when the conninfo or a setting is invalid.
 * The caller owns the pool: db_pool_free() before event_base_free(base).
 */
struct db_pool *db_pool_new(struct event_base *base, const struct db_pool_conf *conf, char *err,
                            size_t errlen);
/*
 * Closes every connection and calls every pending callback (not the
 * cancelled ones) with 08003; transactions not yet ended are freed and
 * their handles become invalid. NULL is a no-op. Never call it from a db
 * callback.
 */
void db_pool_free(struct db_pool *pool);
/* Whether at least one query connection is usable now (else: 503). */
bool db_pool_up(const struct db_pool *pool);

/*
 * Queues `sql` with nparams text parameters (params[i] NULL = SQL NULL;
 * everything is copied, nothing need outlive the call). cb may be NULL
 * (errors are then logged). Returns a handle, never NULL, valid until the
 * callback has returned or db_query_cancel() has been called.
 */
struct db_query *db_query(struct db_pool *pool, const char *sql, int nparams,
                          const char *const *params, db_result_cb *cb, void *arg);
/*
 * The requester has gone: the callback will not be called. A pool query
 * not yet sent is dropped; one in flight is still drained on its
 * connection. A statement of a transaction still runs (the order of the
 * transaction is kept). A no-op from inside the query's own callback.
 */
void db_query_cancel(struct db_query *q);

/*
 * Transactions pin one connection from BEGIN to COMMIT/ROLLBACK. BEGIN is
 * queued like a query; cb (may be NULL) learns once whether it succeeded.
 * Statements may be added at once, before BEGIN completes: they run in
 * order on the pinned connection. Once the transaction has failed (a
 * statement's server error, BEGIN failing, or the connection lost, which
 * rolls it back on the server), every later statement fails without
 * running - with the first error itself when that was a connection error
 * (08xxx, 57Pxx), else with 25P02 quoting it - and db_tx_commit() reports
 * the same. Every tx returned must be ended by exactly one db_tx_commit()
 * or db_tx_rollback(); the handle is invalid after that call (the
 * callbacks of statements already queued still run after db_tx_commit()).
 */
struct db_tx *db_tx_begin(struct db_pool *pool, db_done_cb *cb, void *arg);
/* As db_query(), inside the transaction; cancellable with db_query_cancel(). */
struct db_query *db_tx_query(struct db_tx *tx, const char *sql, int nparams,
                             const char *const *params, db_result_cb *cb, void *arg);
/*
 * Runs the queued statements, then COMMIT (ROLLBACK if the transaction
 * has failed); cb (may be NULL: failures are then logged) gets NULL only
 * if the transaction committed, else the reason: as above, 40000 when the
 * server rolled back at COMMIT, or the server's error at COMMIT (e.g. a
 * deferred constraint); 08006 during COMMIT means the outcome is unknown.
 */
void db_tx_commit(struct db_tx *tx, db_done_cb *cb, void *arg);
/*
 * Abandons the transaction: statements not yet sent are dropped, no
 * further callback of this tx runs (BEGIN's included), ROLLBACK is sent
 * when a connection is pinned. Also the way out for a requester that has
 * gone. After db_tx_commit() it is not allowed (the handle is invalid).
 */
void db_tx_rollback(struct db_tx *tx);

/*
 * LISTEN on `channel` ([a-z_][a-z0-9_]*, at most DB_MAX_CHANNEL bytes) on
 * the pool's dedicated listening connection, re-done after every
 * reconnect; cb is called for every notification until db_pool_free().
 * -1 (and nothing done) for an invalid channel name. Notify with
 * db_query(pool, "SELECT pg_notify($1, $2)", ...).
 */
int db_pool_listen(struct db_pool *pool, const char *channel, db_notify_cb *cb,
                   void *arg) EWP_MUSTCHECK;

/* Whether err's SQLSTATE is `code` (5 characters) or starts with it ("08"). */
bool db_err_is(const char *err, const char *code);
/* Database unreachable now (classes 08 and 57P: connection, shutdown). */
bool db_err_unavailable(const char *err);

#endif
