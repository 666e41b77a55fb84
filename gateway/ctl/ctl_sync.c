/*
 * ctl_sync.c - `ewpctl sync institutions [HEI...]` runs the institution
 * sync now (gateway/sync.c) and prints one line per partner;
 * `ewpctl sync status` shows what ewp.partner_syncs knows of each
 * partner (last attempt, last success, last error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ctl.h"
#include "sync.h"
#include "xmalloc.h"

static int
sync_usage(void)
{
	ctl_err("usage: ewpctl sync institutions [--cacert FILE] [--conninfo STR] [--schemas DIR]"
	        " [--timeout SECONDS] [HEI...]\n"
	        "       ewpctl sync status [--conninfo STR]");
	return 2;
}

static void
sync_print(const struct sync_outcome *o, void *arg)
{
	char why[1024];

	(void)arg;
	snprintf(why, sizeof(why), "%s", o->ok ? "" : o->error);
	ctl_safe_text(why, strlen(why), false); /* partners' developer-messages */
	if (o->ok)
		printf("%-40s %-6s %-6zu\n", o->hei_id, "ok", o->nunits);
	else
		printf("%-40s %-6s %-6s %s\n", o->hei_id, "failed", "-", why);
	fflush(stdout);
}

static int
sync_institutions(struct ctl *ctl, int argc, char **argv)
{
	struct conf *conf = ctl_conf(ctl);
	struct sync_opts o = {.conf = conf, .ca_file = conf->sync_ca_file, .report = sync_print};
	struct sync_summary sum;
	const char **heis = NULL;
	char err[512];
	int rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--cacert") == 0 && i + 1 < argc)
			o.ca_file = argv[++i];
		else if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
			o.conninfo = argv[++i];
		else if (strcmp(argv[i], "--schemas") == 0 && i + 1 < argc)
			o.schema_dir = argv[++i];
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);

			if (*end != '\0' || v < 1 || v > 3600) {
				free(heis);
				return sync_usage();
			}
			o.timeout_ms = v * 1000;
		} else if (argv[i][0] != '-') {
			heis = xreallocarray(heis, o.nheis + 1, sizeof(*heis));
			heis[o.nheis++] = argv[i];
		} else {
			free(heis);
			return sync_usage();
		}
	}
	o.heis = heis;
	printf("%-40s %-6s %-6s %s\n", "HEI", "RESULT", "OUNITS", "ERROR");
	fflush(stdout);
	rc = sync_institutions_run(&o, &sum, err, sizeof(err));
	free(heis);
	if (rc == -1) {
		ctl_err("sync: %s", err);
		return 1;
	}
	if (sum.schac_filled > 0)
		printf("SCHAC ids filled from the catalogue: %d\n", sum.schac_filled);
	printf("%zu partners synced, %zu failed\n", sum.ok, sum.failed);
	return sum.failed ? 1 : 0;
}

static int
sync_status(struct ctl *ctl, int argc, char **argv)
{
	const char *conninfo = NULL;
	PGconn *db;
	PGresult *res;
	int rc = 1;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
			conninfo = argv[++i];
		else
			return sync_usage();
	}
	if (conninfo == NULL)
		conninfo = ctl_conf(ctl)->db_conninfo;
	db = PQconnectdb(conninfo);
	if (PQstatus(db) != CONNECTION_OK) {
		ctl_err("sync status: cannot connect to the database: %s", PQerrorMessage(db));
		PQfinish(db);
		return 1;
	}
	res = PQexec(db, "SELECT hei_id,"
	                 " coalesce(to_char(last_attempt_at, 'YYYY-MM-DD HH24:MI:SS'), '-'),"
	                 " coalesce(to_char(last_success_at, 'YYYY-MM-DD HH24:MI:SS'), '-'),"
	                 " consecutive_failures, coalesce(last_error, '')"
	                 " FROM ewp.partner_syncs ORDER BY hei_id");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ctl_err("sync status: %s", PQerrorMessage(db));
		goto out;
	}
	ctl_safe_result(res);
	printf("%-40s %-19s %-19s %-8s %s\n", "HEI", "LAST ATTEMPT", "LAST SUCCESS", "FAILURES",
	       "LAST ERROR");
	for (int i = 0; i < PQntuples(res); i++)
		printf("%-40s %-19s %-19s %-8s %s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		       PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
		       strcmp(PQgetvalue(res, i, 3), "0") == 0 ? "" : PQgetvalue(res, i, 4));
	rc = 0;
out:
	PQclear(res);
	PQfinish(db);
	return rc;
}

int
ctl_sync(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "institutions") == 0)
		return sync_institutions(ctl, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "status") == 0)
		return sync_status(ctl, argc - 1, argv + 1);
	return sync_usage();
}
