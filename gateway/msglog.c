/*
 * msglog.c - rows of ewp.message_log: one JSON object per exchange,
 * inserted in batches by the workers or one at a time by ewpctl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include "codec.h"
#include "db.h"
#include "httpc.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "msglog.h"
#include "xmalloc.h"

#define MSGLOG_MAX_URL        8192 /* message_log.url check */
#define MSGLOG_MAX_REQUEST_ID 255
#define MSGLOG_MAX_PARTNERS   10000
#define MSGLOG_RETRY_MS       1000 /* after the database was unavailable */

/* $1: a JSON array of objects written by msglog_entry_json. */
static const char msglog_insert_sql[] =
    "INSERT INTO ewp.message_log (created_at, direction, method, url, partner_hei_ids, api,"
    " api_version, status, duration_ms, request_id, key_id, request_headers, response_headers,"
    " request_body, request_bytes, response_body, response_bytes, validation,"
    " validation_error, error, job_id)"
    " SELECT to_timestamp(r.t), r.d, r.m, r.u,"
    "  ARRAY(SELECT jsonb_array_elements_text(r.p)), r.a, r.v, r.s, r.ms, r.rid, r.k, r.qh,"
    "  r.sh, decode(r.qb, 'base64'), r.qn, decode(r.sb, 'base64'), r.sn, r.val, r.ve, r.e, r.j"
    " FROM jsonb_to_recordset($1::jsonb) AS r (t float8, d text, m text, u text, p jsonb,"
    "  a text, v text, s smallint, ms integer, rid text, k text, qh jsonb, sh jsonb, qb text,"
    "  qn bigint, sb text, sn bigint, val text, ve text, e text, j bigint)"
    " RETURNING id";

void
msglog_entry_start(struct msglog_entry *e)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	e->started = tv.tv_sec;
	e->started_us = tv.tv_usec;
}

void
msglog_entry_exchange(struct msglog_entry *e, const struct httpc_result *res)
{
	e->method = res->method;
	e->url = res->url;
	e->status = (int)res->status;
	e->duration_ms = res->duration_ms;
	e->request_id = res->request_id;
	e->request_headers = res->request_headers;
	e->nrequest_headers = res->nrequest_headers;
	e->request_body = res->request_body;
	e->request_body_len = res->request_body_len;
	e->response_headers = res->headers;
	e->nresponse_headers = res->nheaders;
	e->response_body = res->body;
	e->response_body_len = res->body_len;
}

static bool
msglog_is_method(const char *m)
{
	size_t n = 0;

	for (; m[n]; n++)
		if (m[n] < 'A' || m[n] > 'Z' || n >= 16)
			return false;
	return n > 0;
}

static bool
msglog_is_keyid(const char *k)
{
	size_t n = 0;

	for (; k[n]; n++)
		if (!((k[n] >= '0' && k[n] <= '9') || (k[n] >= 'a' && k[n] <= 'f')))
			return false;
	return n == 64;
}

static bool
msglog_is_version(const char *v)
{
	int dots = 0;
	bool digit = false;

	for (; *v; v++) {
		if (*v >= '0' && *v <= '9') {
			digit = true;
		} else if (*v == '.' && digit && dots < 2) {
			dots++;
			digit = false;
		} else {
			return false;
		}
	}
	return dots == 2 && digit;
}

/* ,"key":"value" or ,"key":null */
static int
msglog_field(struct buf *b, const char *key, const char *value, size_t max)
{
	if (buf_printf(b, ",\"%s\":", key) == -1)
		return -1;
	if (value == NULL)
		return buf_addstr(b, "null");
	return json_strn(b, value, strnlen(value, max));
}

static int
msglog_headers(struct buf *b, const char *key, const struct httpsig_header *h, size_t n)
{
	if (buf_printf(b, ",\"%s\":", key) == -1)
		return -1;
	if (h == NULL)
		return buf_addstr(b, "null");
	if (buf_add(b, "[", 1) == -1)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((i && buf_add(b, ",", 1) == -1) || buf_add(b, "[", 1) == -1 ||
		    json_str(b, h[i].name) == -1 || buf_add(b, ",", 1) == -1 ||
		    json_str(b, h[i].value) == -1 || buf_add(b, "]", 1) == -1)
			return -1;
	return buf_add(b, "]", 1);
}

/* ,"qb":"<base64 of at most max bytes>","qn":len */
static int
msglog_body(struct buf *b, const char *key, const char *len_key, const char *body, size_t len,
            size_t max)
{
	char *b64;
	int rc;

	if (body == NULL || len == 0)
		return buf_printf(b, ",\"%s\":null,\"%s\":0", key, len_key);
	b64 = codec_base64_encode(body, len < max ? len : max);
	rc = buf_printf(b, ",\"%s\":\"%s\",\"%s\":%zu", key, b64, len_key, len);
	free(b64);
	return rc;
}

int
msglog_entry_json(struct buf *out, const struct msglog_entry *e, size_t body_max)
{
	static const char *const validation[] = {"not-checked", "valid", "invalid"};
	const char *url = e->url && e->url[0] ? e->url : "/";
	size_t np = e->npartner_heis < MSGLOG_MAX_PARTNERS ? e->npartner_heis : MSGLOG_MAX_PARTNERS;

	if (e->body_max > 0 && e->body_max < body_max)
		body_max = e->body_max;

	if (buf_printf(out, "{\"t\":%lld.%06ld,\"d\":\"%s\",\"m\":\"%s\"", (long long)e->started,
	               e->started_us, e->outbound ? "out" : "in",
	               e->method && msglog_is_method(e->method) ? e->method : "UNKNOWN") == -1 ||
	    msglog_field(out, "u", url, MSGLOG_MAX_URL) == -1 || buf_addstr(out, ",\"p\":[") == -1)
		return -1;
	for (size_t i = 0; i < np; i++)
		if ((i && buf_add(out, ",", 1) == -1) || json_str(out, e->partner_heis[i]) == -1)
			return -1;
	if (buf_add(out, "]", 1) == -1 || msglog_field(out, "a", e->api, 64) == -1 ||
	    msglog_field(out, "v",
	                 e->api_version && msglog_is_version(e->api_version) ? e->api_version
	                                                                     : NULL,
	                 32) == -1)
		return -1;
	if (e->status >= 100 && e->status <= 599 ? buf_printf(out, ",\"s\":%d", e->status) == -1
	                                         : buf_addstr(out, ",\"s\":null") == -1)
		return -1;
	if (buf_printf(out, ",\"ms\":%ld", e->duration_ms > 0 ? e->duration_ms : 0) == -1 ||
	    msglog_field(out, "rid", e->request_id, MSGLOG_MAX_REQUEST_ID) == -1 ||
	    msglog_field(out, "k", e->key_id && msglog_is_keyid(e->key_id) ? e->key_id : NULL,
	                 64) == -1 ||
	    msglog_headers(out, "qh", e->request_headers, e->nrequest_headers) == -1 ||
	    msglog_headers(out, "sh", e->response_headers, e->nresponse_headers) == -1 ||
	    msglog_body(out, "qb", "qn", e->request_body, e->request_body_len, body_max) == -1 ||
	    msglog_body(out, "sb", "sn", e->response_body, e->response_body_len, body_max) == -1 ||
	    buf_printf(out, ",\"val\":\"%s\"", validation[e->validation]) == -1 ||
	    msglog_field(out, "ve", e->validation_error, 4096) == -1 ||
	    msglog_field(out, "e", e->error, 4096) == -1)
		return -1;
	if (e->job_id > 0 ? buf_printf(out, ",\"j\":%lld}", e->job_id) == -1
	                  : buf_addstr(out, ",\"j\":null}") == -1)
		return -1;
	return 0;
}

int
msglog_insert_pg(PGconn *db, const struct msglog_entry *e, size_t body_max, long long *id,
                 char *err, size_t errlen)
{
	struct buf b;
	PGresult *res;
	const char *param;
	int rc = -1;

	buf_init(&b, 4 * MSGLOG_MAX_BODY_MAX);
	if (buf_add(&b, "[", 1) == -1 || msglog_entry_json(&b, e, body_max) == -1 ||
	    buf_add(&b, "]", 1) == -1) {
		snprintf(err, errlen, "message log entry too large");
		buf_free(&b);
		return -1;
	}
	param = buf_cstr(&b);
	res = PQexecParams(db, msglog_insert_sql, 1, NULL, &param, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		if (id)
			*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		rc = 0;
	} else {
		snprintf(err, errlen, "message log: %s", PQerrorMessage(db));
	}
	PQclear(res);
	buf_free(&b);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The batching writer of a worker                                      */

/*
 * Rows wait in chunks of at most MSGLOG_CHUNK_BYTES of JSON, sent one
 * chunk per statement: a backlog (the database slower than the traffic,
 * or away) never makes one huge statement, and neither our buffers nor
 * libpq's grow past a chunk.
 */
struct msglog_chunk {
	struct msglog_chunk *next;
	struct buf json; /* "[obj,obj,..." : the closing bracket is added when sent */
	size_t rows;
};

struct msglog {
	struct event_base *base;
	struct db_pool *db;
	struct metrics *metrics;
	size_t body_max;
	struct msglog_chunk *head, *tail; /* oldest first */
	size_t queued_bytes, queued_rows;
	struct msglog_chunk *sending; /* the chunk of q */
	struct buf entry;             /* scratch: one entry's JSON */
	struct db_query *q;
	struct event *timer;
	bool retry_wait; /* the database was down: wait before the next try */
	long retention;  /* seconds; 0: keep */
	struct event *purge_timer;
	struct db_query *purge_q;
};

static void msglog_timer_cb(evutil_socket_t fd, short what, void *arg);
static void msglog_purge_cb(evutil_socket_t fd, short what, void *arg);

static const char msglog_purge_sql[] =
    "DELETE FROM ewp.message_log WHERE id IN (SELECT id FROM ewp.message_log"
    " WHERE created_at < now() - make_interval(secs => $1::bigint) ORDER BY id LIMIT $2::int)";

struct msglog *
msglog_new(struct event_base *base, struct db_pool *db, struct metrics *m, size_t body_max)
{
	struct msglog *ml = xcalloc(1, sizeof(*ml));

	ml->base = base;
	ml->db = db;
	ml->metrics = m;
	ml->body_max = body_max;
	buf_init(&ml->entry, 4 * MSGLOG_MAX_BODY_MAX); /* two bodies in base64, headers */
	if ((ml->timer = evtimer_new(base, msglog_timer_cb, ml)) == NULL ||
	    (ml->purge_timer = evtimer_new(base, msglog_purge_cb, ml)) == NULL)
		fatalx("evtimer_new failed");
	return ml;
}

void
msglog_set_body_max(struct msglog *ml, size_t body_max)
{
	if (ml)
		ml->body_max = body_max;
}

static void
msglog_purge_arm(struct msglog *ml, long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_del(ml->purge_timer);
	if (ml->retention > 0)
		evtimer_add(ml->purge_timer, &tv);
}

static void
msglog_purged_cb(PGresult *res, const char *err, void *arg)
{
	struct msglog *ml = arg;
	long n;

	ml->purge_q = NULL;
	if (res == NULL) {
		log_warnx("message log: old rows not deleted: %s", err);
		msglog_purge_arm(ml, MSGLOG_PURGE_EVERY_MS);
		return;
	}
	n = strtol(PQcmdTuples(res), NULL, 10);
	if (n > 0)
		log_info("message log: %ld rows older than %lds deleted", n, ml->retention);
	/* a full batch: more are waiting, go on soon */
	msglog_purge_arm(ml, n >= MSGLOG_PURGE_BATCH ? 1000 : MSGLOG_PURGE_EVERY_MS);
}

static void
msglog_purge_cb(evutil_socket_t fd, short what, void *arg)
{
	struct msglog *ml = arg;
	char secs[24], batch[24];

	(void)fd;
	(void)what;
	if (ml->purge_q != NULL || ml->retention <= 0)
		return;
	snprintf(secs, sizeof(secs), "%ld", ml->retention);
	snprintf(batch, sizeof(batch), "%d", MSGLOG_PURGE_BATCH);
	ml->purge_q = db_query(ml->db, msglog_purge_sql, 2, (const char *const[]){secs, batch},
	                       msglog_purged_cb, ml);
}

void
msglog_set_retention(struct msglog *ml, long seconds)
{
	if (ml == NULL)
		return;
	ml->retention = seconds;
	if (ml->purge_q == NULL)
		msglog_purge_arm(ml, MSGLOG_PURGE_FIRST_MS);
}

static void
msglog_dropped(struct msglog *ml, size_t n)
{
	if (ml->metrics && n)
		metrics_add(&ml->metrics->message_log_dropped, n);
}

static void
msglog_arm(struct msglog *ml, long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (!evtimer_pending(ml->timer, NULL))
		evtimer_add(ml->timer, &tv);
}

static void
msglog_chunk_free(struct msglog_chunk *c)
{
	if (c != NULL) {
		buf_free(&c->json);
		free(c);
	}
}

/* Puts a chunk that could not be written back at the head of the queue. */
static void
msglog_requeue(struct msglog *ml, struct msglog_chunk *c)
{
	c->json.len--; /* the closing bracket added to send it */
	c->next = ml->head;
	ml->head = c;
	if (ml->tail == NULL)
		ml->tail = c;
	ml->queued_bytes += c->json.len;
	ml->queued_rows += c->rows;
}

static void
msglog_sent_cb(PGresult *res, const char *err, void *arg)
{
	struct msglog *ml = arg;
	struct msglog_chunk *c = ml->sending;

	ml->q = NULL;
	ml->sending = NULL;
	if (res != NULL) {
		if (ml->metrics)
			metrics_add(&ml->metrics->message_log_rows, c->rows);
		msglog_chunk_free(c);
	} else if ((db_err_is(err, "08001") || db_err_is(err, "08003")) &&
	           ml->queued_bytes + c->json.len <= MSGLOG_MAX_QUEUED_BYTES) {
		/* never reached the server (no connection): kept, older rows
		 * first, and tried again later. A connection lost while the
		 * INSERT ran (08006, 57P01) may have committed it: those rows
		 * are counted as dropped rather than risk writing them twice. */
		msglog_requeue(ml, c);
		ml->retry_wait = true;
	} else {
		log_warnx("message log: %zu rows not written: %s", c->rows, err);
		msglog_dropped(ml, c->rows);
		msglog_chunk_free(c);
	}
	if (ml->head != NULL)
		msglog_arm(ml, ml->retry_wait ? MSGLOG_RETRY_MS : 0);
}

void
msglog_flush(struct msglog *ml)
{
	struct msglog_chunk *c;
	const char *param;

	if (ml == NULL || ml->q != NULL || ml->head == NULL)
		return;
	c = ml->head;
	ml->head = c->next;
	if (ml->head == NULL)
		ml->tail = NULL;
	ml->queued_bytes -= c->json.len;
	ml->queued_rows -= c->rows;
	if (ml->db == NULL) {
		msglog_dropped(ml, c->rows);
		msglog_chunk_free(c);
		return;
	}
	ml->retry_wait = false;
	if (buf_add(&c->json, "]", 1) == -1)
		fatalx("message log chunk overflow");
	ml->sending = c;
	param = buf_cstr(&c->json);
	ml->q = db_query(ml->db, msglog_insert_sql, 1, &param, msglog_sent_cb, ml);
}

static void
msglog_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	msglog_flush(arg);
}

void
msglog_add(struct msglog *ml, const struct msglog_entry *e)
{
	struct msglog_chunk *c;

	if (ml == NULL)
		return;
	buf_reset(&ml->entry);
	if (msglog_entry_json(&ml->entry, e, ml->body_max) == -1 ||
	    ml->queued_bytes + ml->entry.len + 1 > MSGLOG_MAX_QUEUED_BYTES) {
		/* the database has been away (or slow) too long */
		msglog_dropped(ml, 1);
		return;
	}
	c = ml->tail;
	if (c == NULL || c->rows >= MSGLOG_FLUSH_ROWS ||
	    c->json.len + 1 + ml->entry.len + 1 > MSGLOG_CHUNK_BYTES) {
		c = xcalloc(1, sizeof(*c));
		/* a chunk may hold one row larger than MSGLOG_CHUNK_BYTES alone */
		buf_init(&c->json, MSGLOG_MAX_QUEUED_BYTES + 2);
		if (ml->tail != NULL)
			ml->tail->next = c;
		else
			ml->head = c;
		ml->tail = c;
	}
	if (buf_add(&c->json, c->rows ? "," : "[", 1) == -1 ||
	    buf_add(&c->json, ml->entry.data, ml->entry.len) == -1)
		fatalx("message log chunk overflow");
	c->rows++;
	ml->queued_rows++;
	ml->queued_bytes += ml->entry.len + 1;
	/* a full chunk goes at once; a partial one waits a little for company */
	if (ml->head != ml->tail && !ml->retry_wait)
		msglog_flush(ml);
	else
		msglog_arm(ml, ml->retry_wait ? MSGLOG_RETRY_MS : MSGLOG_FLUSH_MS);
}

bool
msglog_busy(struct msglog *ml)
{
	return ml && (ml->head != NULL || ml->q != NULL);
}

void
msglog_free(struct msglog *ml)
{
	struct msglog_chunk *c;

	if (ml == NULL)
		return;
	/* a chunk already sent is still written by its connection */
	if (ml->q)
		db_query_cancel(ml->q);
	if (ml->purge_q)
		db_query_cancel(ml->purge_q);
	msglog_dropped(ml, ml->queued_rows);
	while ((c = ml->head) != NULL) {
		ml->head = c->next;
		msglog_chunk_free(c);
	}
	msglog_chunk_free(ml->sending);
	buf_free(&ml->entry);
	event_free(ml->timer);
	event_free(ml->purge_timer);
	free(ml);
}
