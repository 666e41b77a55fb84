/*
 * ctl_migrate.c - `ewpctl migrate`: applies the numbered SQL migrations
 * (sql/NNNN_<what>.sql) that the database has not seen yet.
 *
 * Each migration runs in its own transaction together with the row that
 * records it in ewp.schema_migrations (number, file name, SHA-256), so a
 * failing file leaves the schema exactly as it was. A gap in the numbers
 * or an applied file whose content changed stops everything before any
 * change: released migrations are never edited, fixes come as new files.
 * An advisory lock keeps two concurrent runs from interleaving.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "buf.h"
#include "codec.h"
#include "ctl.h"
#include "xmalloc.h"

#ifndef EWP_SQL_DIR
#define EWP_SQL_DIR "/usr/local/share/ewpd/sql"
#endif
#define MIGRATE_MAX_FILES 999
#define MIGRATE_MAX_BYTES (16 * 1024 * 1024)
/* pg_advisory_lock key of ewpctl migrate: one run at a time per database */
#define MIGRATE_LOCK "SELECT pg_advisory_lock(4242001)"

struct migration {
	int number;
	char *name; /* file name, e.g. 0001_smile_core.sql */
	char *path;
	char sha256[CODEC_SHA256_HEX_LEN + 1];
	char *sql;
};

struct migrate_args {
	const char *dir;
	const char *conninfo;
	bool dry_run;
};

static int
migrate_parse_args(int argc, char **argv, struct migrate_args *a)
{
	a->dir = EWP_SQL_DIR;
	a->conninfo = NULL;
	a->dry_run = false;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			a->dir = argv[++i];
		else if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
			a->conninfo = argv[++i];
		else if (strcmp(argv[i], "--dry-run") == 0)
			a->dry_run = true;
		else {
			ctl_err("migrate: unexpected argument \"%s\"", argv[i]);
			return -1;
		}
	}
	return 0;
}

/* NNNN_<name>.sql with four digits; -1 for other files. */
static int
migrate_number(const char *name)
{
	size_t len = strlen(name);
	int n = 0;

	if (len < 10 || name[4] != '_' || strcmp(name + len - 4, ".sql") != 0)
		return -1;
	for (int i = 0; i < 4; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		n = n * 10 + (name[i] - '0');
	}
	return n > 0 ? n : -1;
}

static char *
migrate_read(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[8192];
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&b, MIGRATE_MAX_BYTES);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_add(&b, chunk, n) == -1) {
			snprintf(err, errlen, "%s: larger than %d bytes", path, MIGRATE_MAX_BYTES);
			fclose(f);
			buf_free(&b);
			return NULL;
		}
	}
	fclose(f);
	return buf_take(&b);
}

static void
migrations_free(struct migration *m, int n)
{
	for (int i = 0; i < n; i++) {
		free(m[i].name);
		free(m[i].path);
		free(m[i].sql);
	}
	free(m);
}

/* The files of dir, numbered 1..n without gap. -1 with a reason otherwise. */
static int
migrate_scan(const char *dir, struct migration **out, int *count, char *err, size_t errlen)
{
	struct dirent **names;
	struct migration *m;
	int n, found = 0;

	if ((n = scandir(dir, &names, NULL, alphasort)) == -1) {
		snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
		return -1;
	}
	m = xcalloc((size_t)n + 1, sizeof(*m));
	for (int i = 0; i < n; i++) {
		int num = migrate_number(names[i]->d_name);
		if (num > 0 && found < MIGRATE_MAX_FILES) {
			m[found].number = num;
			m[found].name = xstrdup(names[i]->d_name);
			m[found].path = xasprintf("%s/%s", dir, names[i]->d_name);
			found++;
		}
		free(names[i]);
	}
	free(names);
	for (int i = 0; i < found; i++) {
		unsigned char digest[CODEC_SHA256_LEN];
		if (m[i].number != i + 1) {
			snprintf(err, errlen,
			         "%s: expected migration number %04d here (gap or duplicate)",
			         m[i].path, i + 1);
			migrations_free(m, found);
			return -1;
		}
		if ((m[i].sql = migrate_read(m[i].path, err, errlen)) == NULL) {
			migrations_free(m, found);
			return -1;
		}
		codec_sha256(m[i].sql, strlen(m[i].sql), digest);
		codec_hex(digest, sizeof(digest), m[i].sha256);
	}
	*out = m;
	*count = found;
	return 0;
}

static bool
migrate_exec(PGconn *db, const char *sql, const char *what)
{
	PGresult *r = PQexec(db, sql);
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		ctl_err("%s: %s", what, PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

static const char migrate_bookkeeping[] =
    "CREATE SCHEMA IF NOT EXISTS ewp;"
    "CREATE TABLE IF NOT EXISTS ewp.schema_migrations ("
    "  version integer PRIMARY KEY CHECK (version > 0),"
    "  name text NOT NULL,"
    "  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),"
    "  applied_at timestamptz NOT NULL DEFAULT now())";

/*
 * Compares what the database recorded with the files. Returns the number
 * of migrations already applied, or -1 when they disagree.
 */
static int
migrate_check_applied(PGconn *db, const struct migration *m, int n)
{
	PGresult *r = PQexec(db, "SELECT version, name, sha256 FROM ewp.schema_migrations "
	                         "ORDER BY version");
	int applied, rc;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		ctl_err("reading ewp.schema_migrations: %s", PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	applied = PQntuples(r);
	rc = applied;
	for (int i = 0; i < applied && rc >= 0; i++) {
		int version = (int)strtol(PQgetvalue(r, i, 0), NULL, 10);
		if (version != i + 1 || i >= n) {
			ctl_err("the database has migration %d (%s) that %s", version,
			        PQgetvalue(r, i, 1),
			        i >= n ? "is not among the files" : "breaks the sequence");
			rc = -1;
		} else if (strcmp(PQgetvalue(r, i, 2), m[i].sha256) != 0) {
			ctl_err("%s was changed after it was applied (recorded SHA-256 %s, file "
			        "%s): write a new migration instead",
			        m[i].path, PQgetvalue(r, i, 2), m[i].sha256);
			rc = -1;
		}
	}
	PQclear(r);
	return rc;
}

/* One migration and its bookkeeping row, all or nothing. */
static bool
migrate_apply(PGconn *db, const struct migration *m)
{
	char version[16];
	const char *params[3] = {version, m->name, m->sha256};
	PGresult *r;
	bool ok;

	snprintf(version, sizeof(version), "%d", m->number);
	if (!migrate_exec(db, "BEGIN", "BEGIN"))
		return false;
	if (!migrate_exec(db, m->sql, m->path)) {
		migrate_exec(db, "ROLLBACK", "ROLLBACK");
		return false;
	}
	r = PQexecParams(db,
	                 "INSERT INTO ewp.schema_migrations (version, name, sha256) "
	                 "VALUES ($1, $2, $3)",
	                 3, NULL, params, NULL, NULL, 0);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		ctl_err("recording %s: %s", m->name, PQresultErrorMessage(r));
	PQclear(r);
	if (!ok || !migrate_exec(db, "COMMIT", "COMMIT")) {
		migrate_exec(db, "ROLLBACK", "ROLLBACK");
		return false;
	}
	return true;
}

static int
migrate_run(PGconn *db, const struct migration *m, int n, bool dry_run)
{
	int applied;

	if (!migrate_exec(db, "SET client_min_messages = warning", "session setup") ||
	    !migrate_exec(db, MIGRATE_LOCK, "taking the migration lock") ||
	    !migrate_exec(db, migrate_bookkeeping, "creating ewp.schema_migrations"))
		return 1;
	if ((applied = migrate_check_applied(db, m, n)) < 0)
		return 1;
	if (applied == n) {
		printf("database is up to date (%d migrations)\n", n);
		return 0;
	}
	for (int i = applied; i < n; i++) {
		if (dry_run) {
			printf("would apply %s\n", m[i].name);
			continue;
		}
		if (!migrate_apply(db, &m[i])) {
			ctl_err("%s failed and was rolled back; %d of %d migrations applied",
			        m[i].name, i, n);
			return 1;
		}
		printf("applied %s\n", m[i].name);
	}
	return 0;
}

int
ctl_migrate(struct ctl *ctl, int argc, char **argv)
{
	struct migrate_args a;
	struct migration *m = NULL;
	char err[1024];
	int n = 0, rc;
	PGconn *db;

	if (migrate_parse_args(argc, argv, &a) == -1)
		return 2;
	if (a.conninfo == NULL)
		a.conninfo = ctl_conf(ctl)->db_conninfo;
	if (migrate_scan(a.dir, &m, &n, err, sizeof(err)) == -1) {
		ctl_err("migrate: %s", err);
		return 1;
	}
	db = PQconnectdb(a.conninfo);
	if (PQstatus(db) != CONNECTION_OK) {
		ctl_err("migrate: cannot connect to the database: %s", PQerrorMessage(db));
		PQfinish(db);
		migrations_free(m, n);
		return 1;
	}
	rc = migrate_run(db, m, n, a.dry_run);
	PQfinish(db);
	migrations_free(m, n);
	return rc;
}
