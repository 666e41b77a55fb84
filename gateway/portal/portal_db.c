/*
 * portal_db.c - the statements of one portal request: queued by the page,
 * run in one transaction (read-only for pages), rows copied so the page
 * can render them at leisure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db.h"
#include "log.h"
#include "portal.h"
#include "portal_int.h"
#include "req.h"
#include "xmalloc.h"

/*
 * One portal_run(): done() is called once the COMMIT (or ROLLBACK) has
 * answered AND every statement's callback has run. After a failed
 * statement, db.c fails the later ones through a timer but sends the
 * ROLLBACK at once, so their callbacks may come after the transaction's;
 * done() usually ends the request, so it must come last.
 */
struct portal_batch {
	struct portal *p;
	int pending;   /* statement callbacks still to come */
	bool ended;    /* the transaction's callback has run */
	char *end_err; /* its error */
};

struct portal_stmt {
	struct portal_batch *b;
	int index;
};

int
portal_sql(struct portal *p, const char *sql, int nparams, const char *const *params)
{
	int i = p->nsql;

	if (i == PORTAL_MAX_SQL)
		fatalx("portal: more than %d statements on %s", PORTAL_MAX_SQL, p->page->path);
	p->sql[i] = xstrdup(sql);
	p->sql_nparams[i] = nparams;
	p->sql_params[i] = nparams ? xcalloc((size_t)nparams, sizeof(char *)) : NULL;
	for (int j = 0; j < nparams; j++)
		p->sql_params[i][j] = params[j] ? xstrdup(params[j]) : NULL;
	p->nsql++;
	return i;
}

static void
portal_keep_err(struct portal *p, const char *err)
{
	const char *msg;

	if (p->db_err || err == NULL)
		return;
	p->db_err = xstrdup(err);
	/* "SSSSS: message": the message alone is what a user may read */
	msg = strlen(err) > 7 && err[5] == ':' ? err + 7 : err;
	p->db_err_message = xstrndup(msg, strcspn(msg, "\n"));
}

static void
portal_copy_rows(struct portal_rows *r, PGresult *res)
{
	r->nrows = PQntuples(res);
	r->ncols = PQnfields(res);
	r->affected = strtol(PQcmdTuples(res), NULL, 10);
	r->names = xcalloc((size_t)r->ncols + 1, sizeof(char *));
	for (int c = 0; c < r->ncols; c++)
		r->names[c] = xstrdup(PQfname(res, c));
	r->cells = xcalloc((size_t)r->nrows * (size_t)r->ncols + 1, sizeof(char *));
	for (int i = 0; i < r->nrows; i++)
		for (int c = 0; c < r->ncols; c++)
			if (!PQgetisnull(res, i, c))
				r->cells[i * r->ncols + c] = xstrdup(PQgetvalue(res, i, c));
}

static void
portal_batch_done(struct portal_batch *b)
{
	struct portal *p = b->p;

	portal_keep_err(p, b->end_err);
	free(b->end_err);
	free(b);
	if (p->db_err && !db_err_unavailable(p->db_err))
		log_info("portal %s %s: %s", p->page->method, p->page->path, p->db_err);
	p->done(p);
}

static void
portal_stmt_cb(PGresult *res, const char *err, void *arg)
{
	struct portal_stmt *st = arg;
	struct portal_batch *b = st->b;

	if (err)
		portal_keep_err(b->p, err);
	else
		portal_copy_rows(&b->p->rows[st->index], res);
	free(st);
	if (--b->pending == 0 && b->ended)
		portal_batch_done(b);
}

static void
portal_commit_cb(const char *err, void *arg)
{
	struct portal_batch *b = arg;

	b->ended = true;
	b->end_err = err ? xstrdup(err) : NULL;
	if (b->pending == 0)
		portal_batch_done(b);
}

void
portal_run(struct portal *p, bool write, portal_done *done)
{
	struct db_tx *tx;
	struct portal_batch *b;

	p->done = done;
	if (p->d->db == NULL) {
		portal_keep_err(p, "08001: no database configured");
		done(p);
		return;
	}
	b = xcalloc(1, sizeof(*b));
	b->p = p;
	b->pending = p->nsql;
	tx = db_tx_begin(p->d->db, NULL, NULL);
	if (!write)
		db_tx_query(tx, "SET TRANSACTION READ ONLY", 0, NULL, NULL, NULL);
	for (int i = 0; i < p->nsql; i++) {
		struct portal_stmt *st = xcalloc(1, sizeof(*st));

		st->b = b;
		st->index = i;
		db_tx_query(tx, p->sql[i], p->sql_nparams[i], (const char *const *)p->sql_params[i],
		            portal_stmt_cb, st);
	}
	db_tx_commit(tx, portal_commit_cb, b);
}

const char *
portal_cell(const struct portal_rows *r, int row, const char *col)
{
	if (row < 0 || row >= r->nrows)
		return NULL;
	for (int c = 0; c < r->ncols; c++)
		if (strcmp(r->names[c], col) == 0)
			return r->cells[row * r->ncols + c];
	return NULL;
}

bool
portal_db_failed(struct portal *p)
{
	if (p->db_err == NULL)
		return false;
	if (db_err_unavailable(p->db_err))
		portal_error(p, 503, NULL);
	else if (db_err_is(p->db_err, "23") || db_err_is(p->db_err, "P0001") ||
	         db_err_is(p->db_err, "22"))
		/* a rule of the core refused the change: the user can act on it */
		portal_error(p, 409, p->db_err_message);
	else
		portal_error(p, 500, NULL);
	return true;
}

/* Forgets the statements and rows so a request can run a second batch. */
void
portal_sql_reset(struct portal *p)
{
	for (int i = 0; i < p->nsql; i++) {
		struct portal_rows *r = &p->rows[i];

		free(p->sql[i]);
		for (int j = 0; j < p->sql_nparams[i]; j++)
			free(p->sql_params[i][j]);
		free(p->sql_params[i]);
		for (int c = 0; c < r->ncols; c++)
			free(r->names[c]);
		for (int k = 0; k < r->nrows * r->ncols; k++)
			free(r->cells[k]);
		free(r->names);
		free(r->cells);
		memset(r, 0, sizeof(*r));
		p->sql[i] = NULL;
		p->sql_params[i] = NULL;
		p->sql_nparams[i] = 0;
	}
	p->nsql = 0;
	free(p->db_err);
	free(p->db_err_message);
	p->db_err = p->db_err_message = NULL;
}

void
portal_audit(struct portal *p, const char *action, const char *object_type, const char *object_id)
{
	static const char sql[] =
	    "INSERT INTO ewp.audit_log (actor, utilisateur_id, action, object_type, object_id,"
	    " client_addr) VALUES ($1, $2::bigint, $3, $4, $5, $6::inet)";
	const char *addr = portal_client_addr(p);
	char uid[24];
	const char *params[6] = {p->user.username ? p->user.username : "anonymous",
	                         p->user.id ? uid : NULL,
	                         action,
	                         object_type,
	                         object_id,
	                         addr[0] ? addr : NULL};

	snprintf(uid, sizeof(uid), "%ld", p->user.id);
	portal_sql(p, sql, 6, params);
}
