/*
 * ctl_import.c - `ewpctl import KIND FILE`: loads SMILE's CSV exports of
 * composantes, formations, cours and nominations into the smile schema.
 *
 * All or nothing: every line is checked here first (the rules of the
 * schema's CHECKs, so that every bad line is reported, not just the first),
 * then written in ONE transaction, each row under a SAVEPOINT so that what
 * the database refuses is reported with its line too; one rejected line
 * rolls the whole file back. Rows are upserted by natural key (code, or
 * e-mail for nominations) and rewritten only when something changed, so a
 * re-import of the same file is a no-op.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "buf.h"
#include "csv.h"
#include "ctl.h"
#include "ctl_import.h"
#include "xmalloc.h"

#define IMPORT_MAX_BYTES (64 * 1024 * 1024)
/* pg_advisory_xact_lock key: one import at a time per database, so that
 * two runs cannot both insert the same new nomination */
#define IMPORT_LOCK "SELECT pg_advisory_xact_lock(4242002)"

/* ---- header ---- */

/* Lower case, accents of French headers dropped, spaces and dashes as '_'. */
static char *
header_norm(const char *h)
{
	struct buf b;

	buf_init(&b, 1024);
	while (*h == ' ' || *h == '\t')
		h++;
	for (const unsigned char *p = (const unsigned char *)h; *p; p++) {
		char c = (char)tolower(*p);
		if (p[0] == 0xC3 && p[1] >= 0x80 && p[1] <= 0xBF) {
			/* é è ê ë É È Ê Ë -> e, à â -> a, î ï -> i, ô -> o, ù û -> u */
			static const char map[] =
			    "aaaaaaaceeeeiiii?nooooo?ouuuuy??aaaaaaaceeeeiiii?nooooo?ouuuuy?y";
			c = map[p[1] - 0x80];
			p++;
		} else if (*p == ' ' || *p == '-' || *p == '.')
			c = '_';
		if (buf_add(&b, &c, 1) == -1)
			break;
	}
	while (b.len > 0 && b.data[b.len - 1] == '_')
		b.len--;
	return buf_take(&b);
}

/* Maps file columns to kind columns; -1 with a clear message when the header
 * is not the kind's. */
static int
header_map(struct import *im, struct csv *c, int *map)
{
	const struct kind *k = im->kind;
	struct buf missing, unknown;
	int found[IMPORT_MAX_COLS] = {0};
	bool bad = false;

	buf_init(&missing, 4096);
	buf_init(&unknown, 4096);
	for (size_t i = 0; i < c->nfields; i++) {
		char *h = header_norm(c->fields[i]);
		map[i] = -1;
		for (size_t j = 0; j < k->ncols; j++)
			if (strcmp(h, k->cols[j].name) == 0)
				map[i] = (int)j;
		if (map[i] == -1 || found[map[i]]++) {
			bad = true;
			if (buf_printf(&unknown, "%s\"%s\"", unknown.len ? ", " : "",
			               c->fields[i]) == -1)
				break; /* a header that long is listed in part */
		}
		free(h);
	}
	for (size_t j = 0; j < k->ncols; j++)
		if (!found[j]) {
			bad = true;
			if (buf_printf(&missing, "%s%s", missing.len ? ", " : "",
			               k->cols[j].name) == -1)
				break;
		}
	if (bad) {
		ctl_err("import: %s:%lu: the header is not that of %s", im->file, c->rec_line,
		        k->name);
		if (missing.len)
			ctl_err("  missing columns: %s", buf_cstr(&missing));
		if (unknown.len)
			ctl_err("  unknown or repeated columns: %s", buf_cstr(&unknown));
		fprintf(stderr, "ewpctl:   expected (separator '%c'): ", c->sep);
		for (size_t j = 0; j < k->ncols; j++)
			fprintf(stderr, "%s%s", j ? "," : "", k->cols[j].name);
		fputc('\n', stderr);
	}
	buf_free(&missing);
	buf_free(&unknown);
	return bad ? -1 : 0;
}

/* ---- reading and checking the file ---- */

static char *
import_trim(const char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return xstrndup(s, n);
}

static void
row_check(struct import *im, struct csv *c, const int *map, struct row *r)
{
	const struct kind *k = im->kind;

	for (size_t i = 0; i < c->nfields; i++) {
		const struct col *col = &k->cols[map[i]];
		char *v = import_trim(c->fields[i]);
		const char *why = import_check_value(col->type, v, &r->v[map[i]]);
		if (why != NULL)
			import_reject(im, r, col->name, "%s", why);
		free(v);
	}
}

/* Natural key of a row, to find lines that repeat one another. */
static char *
row_key(const struct import *im, const struct row *r)
{
	const char *name = im->kind->name;

	if (strcmp(name, "cours") == 0)
		return xasprintf("%s\x1f%s", r->v[8] ? r->v[8] : "", r->v[0] ? r->v[0] : "");
	if (strcmp(name, "nominations") == 0) {
		char *k = xstrdup(r->v[2] ? r->v[2] : "");
		for (char *p = k; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		return k;
	}
	return xstrdup(r->v[0] ? r->v[0] : "");
}

struct keyed {
	char *key;
	size_t idx;
};

static int
keyed_cmp(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static void
rows_dedupe(struct import *im, struct row *rows, size_t n)
{
	struct keyed *k = xcalloc(n + 1, sizeof(*k));
	size_t m = 0;

	for (size_t i = 0; i < n; i++)
		if (!rows[i].rejected)
			k[m++] = (struct keyed){row_key(im, &rows[i]), i};
	qsort(k, m, sizeof(*k), keyed_cmp);
	for (size_t i = 1; i < m; i++) {
		size_t first = i - 1;
		while (first > 0 && strcmp(k[first - 1].key, k[i].key) == 0)
			first--;
		if (strcmp(k[i - 1].key, k[i].key) == 0) {
			import_reject(im, &rows[k[i].idx], NULL,
			              "same key as line %lu (a file may hold each row once)",
			              rows[k[first].idx].line);
		}
	}
	for (size_t i = 0; i < m; i++)
		free(k[i].key);
	free(k);
}

/* A statement of the import itself (SAVEPOINT, BEGIN...); false: said on stderr. */
static bool
db_cmd(struct import *im, const char *sql)
{
	PGresult *res = PQexec(im->db, sql);
	ExecStatusType st = PQresultStatus(res);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		ctl_err("import: %s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
	return ok;
}

/* Every row under its own SAVEPOINT, so a refusal is tied to its line and
 * the following rows still get checked; rows already rejected only get
 * their references looked up, so that a line's report is complete.
 * counts: inserted, updated, same. */
static int
import_write(struct import *im, struct row *rows, size_t n, size_t counts[3])
{
	for (size_t i = 0; i < n; i++) {
		char out;

		if (!db_cmd(im, "SAVEPOINT ewpctl_row"))
			return -1;
		out = im->kind->write(im, &rows[i]);
		if (!db_cmd(im, out == 'r' ? "ROLLBACK TO SAVEPOINT ewpctl_row"
		                           : "RELEASE SAVEPOINT ewpctl_row"))
			return -1;
		if (out == 'i')
			counts[0]++;
		else if (out == 'u')
			counts[1]++;
		else if (out == 'n')
			counts[2]++;
	}
	return 0;
}

static int
import_db(struct import *im, const char *conninfo, struct row *rows, size_t n, bool dry_run)
{
	size_t counts[3] = {0, 0, 0};
	PGresult *res;
	int rc = 1;

	im->db = PQconnectdb(conninfo);
	if (PQstatus(im->db) != CONNECTION_OK) {
		ctl_err("import: cannot connect to the database: %s", PQerrorMessage(im->db));
		PQfinish(im->db);
		return 1;
	}
	if (!db_cmd(im, "SET client_min_messages = warning") || !db_cmd(im, "BEGIN") ||
	    !db_cmd(im, IMPORT_LOCK))
		goto out;
	res = PQexec(im->db, "SELECT id FROM smile.etablissement WHERE is_local");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ctl_err("import: %s", PQresultErrorMessage(res));
		PQclear(res);
		goto out;
	}
	if (PQntuples(res) == 1)
		snprintf(im->local_hei, sizeof(im->local_hei), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (im->local_hei[0] == '\0' && strcmp(im->kind->name, "nominations") != 0 &&
	    strcmp(im->kind->name, "cours") != 0) {
		ctl_err("import: no local institution in smile.etablissement (is_local): "
		        "composantes belong to it, set it up first");
		goto out;
	}
	if (import_write(im, rows, n, counts) == -1)
		goto out;
	if (im->rejected_lines > 0) {
		ctl_err("import: %s: %zu of %zu lines rejected, nothing imported", im->file,
		        im->rejected_lines, n);
		goto out;
	}
	if (dry_run) {
		printf("%s: %zu inserted, %zu updated, %zu unchanged (dry run: nothing "
		       "written)\n",
		       im->file, counts[0], counts[1], counts[2]);
		rc = 0;
		goto out;
	}
	if (!db_cmd(im, "COMMIT"))
		goto out;
	printf("%s: %zu inserted, %zu updated, %zu unchanged\n", im->file, counts[0], counts[1],
	       counts[2]);
	rc = 0;
out:
	/* after COMMIT this is a no-op (with a warning PostgreSQL keeps quiet) */
	if (PQtransactionStatus(im->db) != PQTRANS_IDLE)
		db_cmd(im, "ROLLBACK");
	PQfinish(im->db);
	return rc;
}

static char *
import_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[65536];
	size_t n;

	if (f == NULL) {
		ctl_err("import: %s: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&b, IMPORT_MAX_BYTES);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_add(&b, chunk, n) == -1) {
			ctl_err("import: %s: larger than %d bytes", path, IMPORT_MAX_BYTES);
			fclose(f);
			buf_free(&b);
			return NULL;
		}
	}
	if (ferror(f)) {
		ctl_err("import: %s: read error", path);
		fclose(f);
		buf_free(&b);
		return NULL;
	}
	fclose(f);
	*len = b.len;
	if (b.data == NULL)
		return xstrdup("");
	return buf_take(&b);
}

/* Reads and checks the whole file; -1 when it cannot be read as a whole. */
static int
import_parse(struct import *im, const char *data, size_t len, char sep, struct row **out,
             size_t *nout)
{
	struct csv c;
	int map[IMPORT_MAX_COLS * 4];
	struct row *rows = NULL;
	size_t n = 0, cap = 0;
	int got;
	struct csv_limits lim = {.max_fields = IMPORT_MAX_COLS * 4};

	csv_init(&c, data, len, sep, &lim);
	if ((got = csv_next(&c)) != 1) {
		if (got == 0)
			ctl_err("import: %s: empty file (a header line is expected)", im->file);
		else
			ctl_err("import: %s: %s", im->file, c.err);
		csv_free(&c);
		return -1;
	}
	if (header_map(im, &c, map) == -1) {
		csv_free(&c);
		return -1;
	}
	while ((got = csv_next(&c)) == 1) {
		struct row *r;
		if (c.nfields == 1 && c.fields[0][0] == '\0')
			continue; /* blank line */
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			rows = xreallocarray(rows, cap, sizeof(*rows));
		}
		r = &rows[n++];
		memset(r, 0, sizeof(*r));
		r->line = c.rec_line;
		if (c.nfields != im->kind->ncols) {
			import_reject(im, r, NULL, "%zu fields, expected %zu as in the header",
			              c.nfields, im->kind->ncols);
			continue;
		}
		row_check(im, &c, map, r);
	}
	if (got == -1) {
		ctl_err("import: %s: %s (nothing imported)", im->file, c.err);
		csv_free(&c);
		*out = rows;
		*nout = n;
		return -1;
	}
	csv_free(&c);
	rows_dedupe(im, rows, n);
	*out = rows;
	*nout = n;
	return 0;
}

static void
rows_free(struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < IMPORT_MAX_COLS; j++)
			free(rows[i].v[j]);
	free(rows);
}

static int EWP_PRINTF(1, 2) import_usage(const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	ctl_err("%s", why);
	ctl_err("usage: ewpctl import composantes|formations|cours|nominations FILE [--dry-run] "
	        "[--separator C] [--conninfo STR]");
	return 2;
}

int
ctl_import(struct ctl *ctl, int argc, char **argv)
{
	struct import im = {0};
	const char *conninfo = NULL, *pos[2] = {NULL, NULL};
	bool dry_run = false;
	char sep = ',';
	int npos = 0, rc;
	struct row *rows = NULL;
	size_t nrows = 0;
	char *data;
	size_t len;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--dry-run") == 0)
			dry_run = true;
		else if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
			conninfo = argv[++i];
		else if (strcmp(argv[i], "--separator") == 0 && i + 1 < argc) {
			const char *s = argv[++i];
			if (strcmp(s, "\\t") == 0 || strcmp(s, "tab") == 0)
				s = "\t";
			if (strlen(s) != 1 || s[0] == '"' || s[0] == '\r' || s[0] == '\n')
				return import_usage("import: bad separator \"%s\" (one character, "
				                    "not a quote or a line break)",
				                    argv[i]);
			sep = s[0];
		} else if (argv[i][0] == '-' && argv[i][1] != '\0')
			return import_usage("import: unexpected option \"%s\"", argv[i]);
		else if (npos < 2)
			pos[npos++] = argv[i];
		else
			return import_usage("import: unexpected argument \"%s\"", argv[i]);
	}
	if (npos != 2)
		return import_usage("import: %s", "KIND and FILE are required");
	for (size_t k = 0; k < import_nkinds; k++)
		if (strcmp(pos[0], import_kinds[k].name) == 0)
			im.kind = &import_kinds[k];
	if (im.kind == NULL)
		return import_usage("import: unknown kind \"%s\"", pos[0]);
	im.file = pos[1];
	if (conninfo == NULL)
		conninfo = ctl_conf(ctl)->db_conninfo;
	if ((data = import_read(im.file, &len)) == NULL)
		return 1;
	if (import_parse(&im, data, len, sep, &rows, &nrows) == -1) {
		rows_free(rows, nrows);
		free(data);
		return 1;
	}
	free(data);
	/* the database pass runs even after rejections, to report its own too */
	rc = import_db(&im, conninfo, rows, nrows, dry_run);
	rows_free(rows, nrows);
	return rc;
}
