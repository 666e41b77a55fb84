/*
 * api_db.c - shared plumbing of the APIs answered from the SMILE core:
 * distinct parameter values as a safely quoted text[] literal, one
 * asynchronous query per request, rows written as XML elements.
 */
#include <stdlib.h>
#include <string.h>

#include "api_db.h"
#include "db.h"
#include "log.h"
#include "req.h"
#include "xmalloc.h"
#include "xmlw.h"

/* Bound on the literal: ids are at most 64 bytes, lists at most a few dozen. */
#define API_DB_MAX_ARRAY (256 * 1024)

struct api_dbq {
	struct req *rq;
	api_db_done *done;
};

/* Whether v is among the n values already kept. */
static bool
api_db_kept(const char *const *kept, int n, const char *v)
{
	for (int i = 0; i < n; i++)
		if (strcmp(kept[i], v) == 0)
			return true;
	return false;
}

/* One array element, double-quoted: only '"' and '\' need a backslash. */
static int
api_db_quote_elem(struct buf *b, const char *v)
{
	if (buf_addstr(b, "\"") == -1)
		return -1;
	for (const char *p = v; *p; p++) {
		char c[3] = {'\\', *p, '\0'};

		if (buf_addstr(b, (*p == '"' || *p == '\\') ? c : c + 1) == -1)
			return -1;
	}
	return buf_addstr(b, "\"");
}

/* Writes the literal of the n kept values into *out. */
int
api_db_literal(const char *const *kept, int n, char **out)
{
	struct buf b;
	int rc;

	buf_init(&b, API_DB_MAX_ARRAY);
	rc = buf_addstr(&b, "{");
	for (int i = 0; i < n && rc == 0; i++)
		if ((i > 0 && buf_addstr(&b, ",") == -1) || api_db_quote_elem(&b, kept[i]) == -1)
			rc = -1;
	if (rc == 0)
		rc = buf_addstr(&b, "}");
	*out = rc == 0 ? xstrndup(b.data, b.len) : NULL;
	buf_free(&b);
	return rc;
}

bool
api_db_valid_id(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e || n >= 64)
			return false;
	return n > 0;
}

void
api_db_send(struct req *rq, struct buf *b, int rc, const char *what)
{
	if (rc == -1)
		req_error(rq, 500, "%s response larger than %zu bytes", what, b->max);
	else
		req_reply(rq, 200, "text/xml; charset=utf-8", b->data, b->len);
	buf_free(b);
}

int
api_db_param_array(const struct req *rq, const char *name, int max, char **out)
{
	/* Comparing only with the distinct values kept bounds the work by
	 * parameters x max, however many duplicates a caller sends. */
	const char **kept = xcalloc((size_t)max + 1, sizeof(*kept));
	int n = 0;

	*out = NULL;
	for (size_t i = 0; i < rq->form.n && n <= max; i++)
		/* A value that is no valid id can match nothing: like an unknown id. */
		if (strcmp(rq->form.params[i].name, name) == 0 &&
		    api_db_valid_id(rq->form.params[i].value) &&
		    !api_db_kept(kept, n, rq->form.params[i].value))
			kept[n++] = rq->form.params[i].value;
	if (n <= max && api_db_literal(kept, n, out) == -1)
		n = -1;
	free(kept);
	return n;
}

/* Query callback: the one place a database-backed request is finished. */
static void
api_db_cb(PGresult *res, const char *err, void *arg)
{
	struct api_dbq *q = arg;
	struct req *rq = q->rq;
	api_db_done *done = q->done;

	free(q);
	if (err && db_err_unavailable(err)) {
		log_warnx("%s: database unavailable: %s", rq->path, err);
		req_error(rq, 503, "database unavailable, retry later");
	} else if (err) {
		log_error("%s: database query failed: %s", rq->path, err);
		req_error(rq, 500, "database query failed: %s", err);
	} else {
		done(rq, res);
	}
}

void
api_db_query(struct req *rq, const char *sql, int nparams, const char *const *params,
             api_db_done *done)
{
	struct api_dbq *q;

	/* No pool means the conninfo was refused at start-up: a lasting
	 * misconfiguration, but still "come back later" for the caller. While
	 * the pool is down the query fails at once (08001) unless a connection
	 * is being made, in which case it waits for it: no 503 during start-up. */
	if (rq->d->db == NULL) {
		req_error(rq, 503, "database unavailable, retry later");
		return;
	}
	q = xcalloc(1, sizeof(*q));
	q->rq = rq;
	q->done = done;
	db_query(rq->d->db, sql, nparams, params, api_db_cb, q);
}

/* One row: <elem attr="value">text</elem> (attribute only when set), or
 * the opening (+) or closing (-) tag of a nested element. */
static int
api_db_write_row(struct buf *b, PGresult *res, int row, int first)
{
	const char *elem = PQgetvalue(res, row, first);
	const char *text = PQgetvalue(res, row, first + 3);

	if (elem[0] == '+')
		return buf_printf(b, "<%s>", elem + 1);
	if (elem[0] == '-')
		return buf_printf(b, "</%s>", elem + 1);
	if (PQgetisnull(res, row, first + 2))
		return xmlw_elem(b, elem, text);
	return xmlw_elem_attr(b, elem, PQgetvalue(res, row, first + 1),
	                      PQgetvalue(res, row, first + 2), text);
}

int
api_db_write_rows(struct buf *b, PGresult *res, int first, const char *wrapper)
{
	const char *group = NULL;
	int rows = PQntuples(res);

	for (int i = 0; i < rows; i++) {
		const char *g = PQgetvalue(res, i, 0);

		if (strcmp(g, "0") == 0 || PQgetisnull(res, i, first + 3))
			continue;
		if (group == NULL || strcmp(group, g) != 0) {
			if ((group && buf_printf(b, "</%s>", wrapper) == -1) ||
			    buf_printf(b, "<%s>", wrapper) == -1)
				return -1;
			group = g;
		}
		if (api_db_write_row(b, res, i, first) == -1)
			return -1;
	}
	if (group && buf_printf(b, "</%s>", wrapper) == -1)
		return -1;
	return 0;
}
