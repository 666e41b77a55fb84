/*
 * msglog.h - the EWP message log: every exchange with a partner, in and
 * out, as one row of ewp.message_log. It is what an admin searches when
 * a partner says "your node refused us yesterday": who, what, when, the
 * headers and bodies exactly as they went, and why it failed.
 *
 * An entry is turned into a JSON object at once (msglog_entry_json), so
 * the caller's buffers may go away; rows are inserted with one statement
 * per batch (MSGLOG_INSERT_SQL, $1 = a JSON array of those objects).
 *
 * ewpd's workers use the batching writer below: entries queue in memory
 * and are flushed every MSGLOG_FLUSH_MS or MSGLOG_FLUSH_ROWS rows over the
 * worker's database pool, never delaying a reply, in chunks of at most
 * MSGLOG_CHUNK_BYTES. While the database is down (or slower than the
 * traffic) rows are kept up to MSGLOG_MAX_QUEUED_BYTES, then new ones are
 * dropped and counted (metric ewpd_message_log_dropped_total).
 * Programs that own a blocking connection (ewpctl, the sync) insert
 * directly with msglog_insert_pg.
 */
#ifndef MSGLOG_H
#define MSGLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <libpq-fe.h>

#include "buf.h"
#include "ewpd.h"
#include "httpsig.h"

struct db_pool;
struct event_base;
struct metrics;

#define MSGLOG_DEFAULT_BODY_MAX (64u * 1024) /* bytes of a body kept; the rest cut */
#define MSGLOG_MAX_BODY_MAX     (1024u * 1024)
/* bodies of requests nobody authenticated (scanners, wrong URLs): a glimpse
 * is enough, and they must not fill the database */
#define MSGLOG_ANON_BODY_MAX    1024u
#define MSGLOG_FLUSH_MS         200
#define MSGLOG_FLUSH_ROWS       200
#define MSGLOG_MAX_QUEUED_BYTES (8u * 1024 * 1024)
#define MSGLOG_CHUNK_BYTES      (256u * 1024) /* JSON sent by one INSERT at most */
#define MSGLOG_PURGE_BATCH      5000
#define MSGLOG_PURGE_FIRST_MS   5000
#define MSGLOG_PURGE_EVERY_MS   (10 * 60 * 1000)

enum msglog_validation {
	MSGLOG_NOT_CHECKED = 0,
	MSGLOG_VALID,
	MSGLOG_INVALID,
};

struct msglog_entry {
	bool outbound;   /* false: a partner called us */
	time_t started;  /* wall clock, when the exchange began */
	long started_us; /* microseconds within that second */
	const char *method, *url;
	const char *const *partner_heis; /* out: the HEI called; in: the caller's HEIs */
	size_t npartner_heis;
	const char *api;         /* manifest element name ("institutions"); NULL: none matched */
	const char *api_version; /* x.y.z or NULL */
	int status;              /* 0: no response */
	long duration_ms;
	const char *request_id; /* X-Request-Id; NULL when none */
	const char *key_id;     /* keyId of the request signature; kept only if 64 hex */
	const struct httpsig_header *request_headers;
	size_t nrequest_headers;
	const struct httpsig_header *response_headers;
	size_t nresponse_headers;
	const char *request_body;
	size_t request_body_len;
	const char *response_body;
	size_t response_body_len;
	enum msglog_validation validation; /* of the body we received */
	const char *validation_error;
	const char *error; /* transport error, signature refusal, developer-message */
	long long job_id;  /* 0: none */
	size_t body_max;   /* a smaller cap for this row's bodies; 0: the writer's */
};

/* Start time of an entry: now. */
void msglog_entry_start(struct msglog_entry *e);
struct httpc_result;
/*
 * Copies what an outbound exchange sent and received (method, URL,
 * status, duration, request id, headers and bodies) from res into e;
 * the pointers are lent with res.
 */
void msglog_entry_exchange(struct msglog_entry *e, const struct httpc_result *res);
/* Appends e as one JSON object for MSGLOG_INSERT_SQL; bodies cut at body_max. */
int msglog_entry_json(struct buf *out, const struct msglog_entry *e, size_t body_max) EWP_MUSTCHECK;

/* Inserts one entry on a blocking connection; its id in *id (may be NULL).
 * 0, or -1 with the reason in err. */
int msglog_insert_pg(PGconn *db, const struct msglog_entry *e, size_t body_max, long long *id,
                     char *err, size_t errlen);

/* The batching writer of a worker. metrics may be NULL. */
struct msglog *msglog_new(struct event_base *base, struct db_pool *db, struct metrics *m,
                          size_t body_max);
void msglog_set_body_max(struct msglog *ml, size_t body_max);
/*
 * Rows older than `seconds` are deleted by this writer, MSGLOG_PURGE_BATCH
 * at a time, MSGLOG_PURGE_FIRST_MS after the call, then every
 * MSGLOG_PURGE_EVERY_MS (one worker does it). 0: rows are kept forever.
 */
void msglog_set_retention(struct msglog *ml, long seconds);
/* Queues an entry (copied into JSON now). NULL ml: nothing. */
void msglog_add(struct msglog *ml, const struct msglog_entry *e);
/* Sends what is queued now (drain); true while rows are queued or in flight. */
bool msglog_busy(struct msglog *ml);
void msglog_flush(struct msglog *ml);
/* Drops whatever was not written (counted as dropped). */
void msglog_free(struct msglog *ml);

#endif
