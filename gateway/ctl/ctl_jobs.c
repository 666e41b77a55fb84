/*
 * ctl_jobs.c - `ewpctl jobs`: the persistent job queue (ewp.jobs) seen
 * from a terminal: list (filtered by status, kind, partner), show one job
 * with every column and the message-log rows of its attempts, and retry
 * a job that ended in failure (back to pending, due now; written to the
 * audit log), or every pending job of one partner (due now: after the
 * partner's outage, instead of waiting out each job's backoff).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ctl.h"

#define JOBS_DEFAULT_LIMIT 50

static int
jobs_usage(void)
{
	ctl_err("usage: ewpctl jobs list [--status S] [--kind K] [--partner HEI] [--limit N]"
	        " [--conninfo STR]\n"
	        "       ewpctl jobs show ID [--conninfo STR]\n"
	        "       ewpctl jobs retry ID [--conninfo STR]\n"
	        "       ewpctl jobs retry --partner HEI [--conninfo STR]");
	return 2;
}

static const char list_sql[] =
    "SELECT id, status, direction, kind, api, hei_id, dedupe_key, attempts,"
    " to_char(next_attempt_at, 'YYYY-MM-DD HH24:MI:SS'), coalesce(last_http_status::text, '-'),"
    " coalesce(left(regexp_replace(last_error, '\\s+', ' ', 'g'), 80), '')"
    " FROM ewp.jobs WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2)"
    " AND ($3::text IS NULL OR hei_id = $3) ORDER BY id DESC LIMIT $4::int";

static const char show_sql[] =
    "SELECT id, direction, kind, hei_id, api, dedupe_key, payload::text, status, attempts,"
    " to_char(next_attempt_at, 'YYYY-MM-DD HH24:MI:SS.MS TZ'),"
    " coalesce(to_char(lease_until, 'YYYY-MM-DD HH24:MI:SS.MS TZ'), '-'),"
    " coalesce(leased_by, '-'),"
    " coalesce(to_char(expires_at, 'YYYY-MM-DD HH24:MI:SS TZ'), 'never'),"
    " coalesce(last_error, '-'), coalesce(last_http_status::text, '-'),"
    " coalesce(merged_into::text, '-'), coalesce(origin_log_id::text, '-'),"
    " to_char(created_at, 'YYYY-MM-DD HH24:MI:SS.MS TZ'),"
    " to_char(modified_at, 'YYYY-MM-DD HH24:MI:SS.MS TZ'),"
    " coalesce(to_char(finished_at, 'YYYY-MM-DD HH24:MI:SS.MS TZ'), '-'),"
    " (SELECT string_agg(m.id::text, ', ' ORDER BY m.id) FROM ewp.jobs m"
    "  WHERE m.merged_into = j.id)"
    " FROM ewp.jobs j WHERE id = $1::bigint";

static const char attempts_sql[] =
    "SELECT id, to_char(created_at, 'YYYY-MM-DD HH24:MI:SS'), method,"
    " coalesce(status::text, '-'), coalesce(duration_ms::text, '-'), url,"
    " coalesce(left(regexp_replace(error, '\\s+', ' ', 'g'), 100), '')"
    " FROM ewp.message_log WHERE job_id = $1::bigint ORDER BY id";

/* Back to pending, due now, with a fresh delivery window; only final failures. */
static const char retry_sql[] =
    "WITH r AS (UPDATE ewp.jobs SET status = 'pending', next_attempt_at = now(),"
    " finished_at = NULL, merged_into = NULL,"
    " expires_at = greatest(expires_at, now() + make_interval(secs => $2::int))"
    " WHERE id = $1::bigint"
    " AND status IN ('failed-max-attempts', 'expired', 'rejected', 'no-cnr-api')"
    " RETURNING id, status),"
    " a AS (INSERT INTO ewp.audit_log (actor, action, object_type, object_id, details)"
    " SELECT 'ewpctl', 'job.force-retry', 'job', id::text,"
    " jsonb_build_object('user', $3::text) FROM r)"
    " SELECT id FROM r";

/*
 * Every pending job of one partner due now (attempts and expiry kept: a job
 * that fails again backs off from where it was); one audit row with the
 * count. The jobs_notify trigger wakes the workers.
 */
static const char retry_partner_sql[] =
    "WITH r AS (UPDATE ewp.jobs SET next_attempt_at = now()"
    " WHERE hei_id = $1 AND status = 'pending' AND next_attempt_at > now() RETURNING id),"
    " n AS (SELECT count(*) AS c FROM r),"
    " a AS (INSERT INTO ewp.audit_log (actor, action, object_type, object_id, details)"
    " SELECT 'ewpctl', 'jobs.retry-partner', 'partner', $1,"
    " jsonb_build_object('user', $2::text, 'jobs', n.c) FROM n)"
    " SELECT c FROM n";

static const char status_sql[] = "SELECT status, coalesce(("
                                 "SELECT p.id::text FROM ewp.jobs p, ewp.jobs j2"
                                 " WHERE j2.id = $1::bigint AND p.status = 'pending'"
                                 " AND p.direction = j2.direction AND p.kind = j2.kind"
                                 " AND p.hei_id = j2.hei_id AND p.api = j2.api"
                                 " AND p.dedupe_key = j2.dedupe_key AND p.id <> j2.id), '')"
                                 " FROM ewp.jobs WHERE id = $1::bigint";

static PGconn *
jobs_connect(struct ctl *ctl, const char *conninfo)
{
	PGconn *db = PQconnectdb(conninfo ? conninfo : ctl_conf(ctl)->db_conninfo);

	if (PQstatus(db) != CONNECTION_OK) {
		ctl_err("jobs: cannot connect to the database: %s", PQerrorMessage(db));
		PQfinish(db);
		return NULL;
	}
	return db;
}

static bool
jobs_is_id(const char *s)
{
	return s[0] != '\0' && strlen(s) <= 18 && strspn(s, "0123456789") == strlen(s);
}

static int
jobs_list(struct ctl *ctl, int argc, char **argv)
{
	static const char *const statuses[] = {
	    "pending",
	    "running",
	    "success",
	    "merged",
	    "no-cnr-api",
	    "rejected",
	    "failed-max-attempts",
	    "expired",
	    "cancelled",
	};
	const char *p[4] = {NULL};
	const char *conninfo = NULL;
	char limit[16];
	PGconn *db;
	PGresult *res;
	int rc = 1;

	snprintf(limit, sizeof(limit), "%d", JOBS_DEFAULT_LIMIT);
	p[3] = limit;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			return jobs_usage();
		i++;
		if (strcmp(a, "--status") == 0) {
			bool known = false;

			for (size_t k = 0; k < sizeof(statuses) / sizeof(statuses[0]); k++)
				known = known || strcmp(v, statuses[k]) == 0;
			if (!known) {
				ctl_err(
				    "jobs: unknown status \"%s\" (pending, running, success, "
				    "merged, no-cnr-api, rejected, failed-max-attempts, expired, "
				    "cancelled)",
				    v);
				return 2;
			}
			p[0] = v;
		} else if (strcmp(a, "--kind") == 0) {
			p[1] = v;
		} else if (strcmp(a, "--partner") == 0) {
			p[2] = v;
		} else if (strcmp(a, "--limit") == 0) {
			char *end;
			long n = strtol(v, &end, 10);

			if (*end || n < 1 || n > 100000) {
				ctl_err("jobs: --limit wants 1 to 100000, not \"%s\"", v);
				return 2;
			}
			snprintf(limit, sizeof(limit), "%ld", n);
		} else if (strcmp(a, "--conninfo") == 0) {
			conninfo = v;
		} else {
			return jobs_usage();
		}
	}
	if ((db = jobs_connect(ctl, conninfo)) == NULL)
		return 1;
	res = PQexecParams(db, list_sql, 4, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ctl_err("jobs: %s", PQerrorMessage(db));
		goto out;
	}
	printf("%-8s %-19s %-3s %-8s %-18s %-30s %-20s %4s %-19s %-4s %s\n", "ID", "STATUS", "DIR",
	       "KIND", "API", "PARTNER", "KEY", "TRY", "NEXT ATTEMPT", "HTTP", "LAST ERROR");
	for (int r = 0; r < PQntuples(res); r++)
		printf("%-8s %-19s %-3s %-8s %-18s %-30s %-20s %4s %-19s %-4s %s\n",
		       PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), PQgetvalue(res, r, 2),
		       PQgetvalue(res, r, 3), PQgetvalue(res, r, 4), PQgetvalue(res, r, 5),
		       PQgetvalue(res, r, 6), PQgetvalue(res, r, 7), PQgetvalue(res, r, 8),
		       PQgetvalue(res, r, 9), PQgetvalue(res, r, 10));
	rc = 0;
out:
	PQclear(res);
	PQfinish(db);
	return rc;
}

/* ID [--conninfo STR]; the id, or NULL after a usage message. */
static const char *
jobs_id_args(int argc, char **argv, const char **conninfo)
{
	const char *id = NULL;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
			*conninfo = argv[++i];
		else if (id == NULL && jobs_is_id(argv[i]))
			id = argv[i];
		else
			return NULL;
	}
	return id;
}

static int
jobs_show(struct ctl *ctl, int argc, char **argv)
{
	static const char *const labels[] = {
	    "id",          "direction",  "kind",    "partner",    "api",
	    "dedupe key",  "payload",    "status",  "attempts",   "next attempt",
	    "lease until", "leased by",  "expires", "last error", "last http status",
	    "merged into", "origin log", "created", "modified",   "finished",
	    "merged here",
	};
	const char *conninfo = NULL, *id = jobs_id_args(argc, argv, &conninfo);
	PGconn *db;
	PGresult *res, *att = NULL;
	int rc = 1;

	if (id == NULL)
		return jobs_usage();
	if ((db = jobs_connect(ctl, conninfo)) == NULL)
		return 1;
	res = PQexecParams(db, show_sql, 1, NULL, &id, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ctl_err("jobs: %s", PQerrorMessage(db));
		goto out;
	}
	if (PQntuples(res) == 0) {
		ctl_err("jobs: no job %s", id);
		goto out;
	}
	for (int c = 0; c < PQnfields(res) && c < (int)(sizeof(labels) / sizeof(labels[0])); c++)
		printf("%-17s %s\n", labels[c],
		       PQgetisnull(res, 0, c) ? "-" : PQgetvalue(res, 0, c));
	att = PQexecParams(db, attempts_sql, 1, NULL, &id, NULL, NULL, 0);
	if (PQresultStatus(att) != PGRES_TUPLES_OK) {
		ctl_err("jobs: %s", PQerrorMessage(db));
		goto out;
	}
	printf("\nmessage log (%d exchange%s; ewpctl log show ID for one):\n", PQntuples(att),
	       PQntuples(att) == 1 ? "" : "s");
	for (int r = 0; r < PQntuples(att); r++)
		printf("  %-8s %s %-4s %-4s %6s ms  %s%s%s\n", PQgetvalue(att, r, 0),
		       PQgetvalue(att, r, 1), PQgetvalue(att, r, 2), PQgetvalue(att, r, 3),
		       PQgetvalue(att, r, 4), PQgetvalue(att, r, 5),
		       PQgetvalue(att, r, 6)[0] ? "  " : "", PQgetvalue(att, r, 6));
	rc = 0;
out:
	PQclear(att);
	PQclear(res);
	PQfinish(db);
	return rc;
}

static int
jobs_retry_partner(struct ctl *ctl, int argc, char **argv, const char *user)
{
	const char *conninfo = NULL, *hei = NULL;
	PGconn *db;
	PGresult *res;
	int rc = 1;

	for (int i = 0; i < argc; i++) {
		if (i + 1 >= argc)
			return jobs_usage();
		if (strcmp(argv[i], "--partner") == 0 && hei == NULL)
			hei = argv[++i];
		else if (strcmp(argv[i], "--conninfo") == 0)
			conninfo = argv[++i];
		else
			return jobs_usage();
	}
	if (hei == NULL || hei[0] == '\0' || strlen(hei) > 255) {
		ctl_err("jobs: --partner wants a HEI id");
		return 2;
	}
	if ((db = jobs_connect(ctl, conninfo)) == NULL)
		return 1;
	const char *p[2] = {hei, user};

	res = PQexecParams(db, retry_partner_sql, 2, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		ctl_err("jobs: %s", PQerrorMessage(db));
		goto out;
	}
	printf("%s pending job%s of %s due now\n", PQgetvalue(res, 0, 0),
	       strcmp(PQgetvalue(res, 0, 0), "1") == 0 ? "" : "s", hei);
	rc = 0;
out:
	PQclear(res);
	PQfinish(db);
	return rc;
}

static int
jobs_retry(struct ctl *ctl, int argc, char **argv)
{
	const char *user = getenv("SUDO_USER") ? getenv("SUDO_USER") : getenv("USER");

	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--partner") == 0)
			return jobs_retry_partner(ctl, argc, argv, user ? user : "?");

	const char *conninfo = NULL, *id = jobs_id_args(argc, argv, &conninfo);
	char give[24];
	const char *p[3] = {id, give, user ? user : "?"};
	PGconn *db;
	PGresult *res;
	int rc = 1;

	if (id == NULL)
		return jobs_usage();
	if ((db = jobs_connect(ctl, conninfo)) == NULL)
		return 1;
	/* the configuration's delivery window when there is one, else 24 h */
	snprintf(give, sizeof(give), "%d", conninfo ? 86400 : ctl_conf(ctl)->jobs_give_up_after);
	res = PQexecParams(db, retry_sql, 3, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (state && strcmp(state, "23505") == 0) {
			PQclear(res);
			res = PQexecParams(db, status_sql, 1, NULL, &id, NULL, NULL, 0);
			ctl_err("jobs: job %s not retried: job %s is already pending for the same "
			        "object and will carry the change",
			        id,
			        PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
			            ? PQgetvalue(res, 0, 1)
			            : "?");
		} else
			ctl_err("jobs: %s", PQerrorMessage(db));
		goto out;
	}
	if (PQntuples(res) == 1) {
		printf("job %s is pending again, due now\n", id);
		rc = 0;
		goto out;
	}
	PQclear(res);
	res = PQexecParams(db, status_sql, 1, NULL, &id, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		ctl_err("jobs: %s", PQerrorMessage(db));
	else if (PQntuples(res) == 0)
		ctl_err("jobs: no job %s", id);
	else
		ctl_err("jobs: job %s is %s: only a job that ended in failure (rejected, "
		        "no-cnr-api, expired, failed-max-attempts) can be retried",
		        id, PQgetvalue(res, 0, 0));
out:
	PQclear(res);
	PQfinish(db);
	return rc;
}

int
ctl_jobs(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 1)
		return jobs_usage();
	if (strcmp(argv[0], "list") == 0)
		return jobs_list(ctl, argc - 1, argv + 1);
	if (strcmp(argv[0], "show") == 0)
		return jobs_show(ctl, argc - 1, argv + 1);
	if (strcmp(argv[0], "retry") == 0)
		return jobs_retry(ctl, argc - 1, argv + 1);
	return jobs_usage();
}
