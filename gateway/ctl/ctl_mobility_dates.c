/*
 * ctl_mobility_dates.c - `ewpctl mobility dates`: staff enter the actual
 * arrival and departure dates of an incoming student (a partner's
 * nomination, smile.mobility with is_outgoing false). We are the
 * receiving HEI, the master of these dates: ewpd serves them through
 * IMobilities v2, and the change queues an IMobility CNR to the sending
 * HEI (trigger of sql/0011, same transaction).
 *
 *   ewpctl mobility dates ID|SENDING_HEI:OMOBILITY_ID
 *          [--arrival YYYY-MM-DD|none] [--departure YYYY-MM-DD|none]
 *          [--conninfo STR]
 *
 * A date left out keeps its value; "none" clears it. Refused, with
 * nothing written: an outgoing mobility (the partner's dates), an unknown
 * mobility, a malformed or impossible date, a departure before the
 * arrival (counting the value kept). Each change is in ewp.audit_log.
 * Exit 0 done (or nothing to change), 1 refused or failed, 2 usage.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ctl.h"
#include "xmalloc.h"

#define DATES_USAGE                                                                                \
	"usage: ewpctl mobility dates ID|SENDING_HEI:OMOBILITY_ID [--arrival YYYY-MM-DD|none]\n"   \
	"              [--departure YYYY-MM-DD|none] [--conninfo STR]"

/* $1 id (or NULL), $2 sending HEI, $3 omobility_id. */
static const char find_sql[] =
    "SELECT id, sending_hei_id, omobility_id, receiving_hei_id, is_outgoing,"
    " coalesce(to_char(actual_arrival_date, 'YYYY-MM-DD'), ''),"
    " coalesce(to_char(actual_departure_date, 'YYYY-MM-DD'), '')"
    " FROM smile.mobility WHERE ($1::bigint IS NOT NULL AND id = $1::bigint)"
    " OR ($1::bigint IS NULL AND sending_hei_id = $2 AND omobility_id = $3) FOR UPDATE";

/*
 * $1 id, $2 arrival, $3 departure, $4 and $5 the previous ones (NULL:
 * none), $6 the login of who ran the command, for the audit log.
 */
static const char update_sql[] =
    "WITH u AS (UPDATE smile.mobility SET actual_arrival_date = $2::date,"
    " actual_departure_date = $3::date WHERE id = $1::bigint RETURNING id),"
    " a AS (INSERT INTO ewp.audit_log (actor, action, object_type, object_id, details)"
    " SELECT 'ewpctl', 'mobility.dates', 'mobility', id::text,"
    " jsonb_build_object('arrival', $2::date, 'departure', $3::date,"
    " 'previous_arrival', $4::date, 'previous_departure', $5::date, 'user', $6::text) FROM u)"
    " SELECT id FROM u";

/* The IMobility CNR the trigger queued (or merged into). */
static const char job_sql[] =
    "SELECT id FROM ewp.jobs WHERE direction = 'out' AND kind = 'cnr' AND api = 'imobility-cnr'"
    " AND hei_id = $1 AND dedupe_key = $1 || ' ' || $2 AND status = 'pending'";

static int
dates_usage(void)
{
	ctl_err("%s", DATES_USAGE);
	return 2;
}

static bool
dates_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* A real calendar date written YYYY-MM-DD (years 1000-9999). */
static bool
dates_valid(const char *s)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1000 || m < 1 || m > 12 || d < 1)
		return false;
	return d <= mdays[m - 1] + (m == 2 && dates_leap(y));
}

/*
 * An option's value: "" for none, the date itself, or NULL after a
 * message (malformed).
 */
static const char *
dates_value(const char *opt, const char *v)
{
	if (strcmp(v, "none") == 0)
		return "";
	if (!dates_valid(v)) {
		ctl_err("mobility dates: %s wants a date YYYY-MM-DD (a real one) or none, not "
		        "\"%s\"",
		        opt, v);
		return NULL;
	}
	return v;
}

static bool
dates_is_id(const char *s)
{
	return s[0] != '\0' && strlen(s) <= 18 && strspn(s, "0123456789") == strlen(s);
}

static int
dates_fail(PGconn *db, const char *what)
{
	ctl_err("mobility dates: %s: %s", what, PQerrorMessage(db));
	return 1;
}

/* What a date prints as. */
static const char *
dates_show(const char *v)
{
	return v[0] ? v : "none";
}

int
ctl_mobility_dates(struct ctl *ctl, int argc, char **argv)
{
	const char *target = NULL, *conninfo = NULL, *arrival = NULL, *departure = NULL;
	const char *p[4] = {NULL};
	char *hei = NULL;
	PGconn *db;
	PGresult *res = NULL;
	int rc = 1;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--arrival") == 0 || strcmp(a, "--departure") == 0 ||
		    strcmp(a, "--conninfo") == 0) {
			if (v == NULL)
				return dates_usage();
			i++;
			if (strcmp(a, "--conninfo") == 0)
				conninfo = v;
			else if ((*(a[2] == 'a' ? &arrival : &departure) = dates_value(a, v)) ==
			         NULL)
				return 2;
		} else if (target == NULL && a[0] != '-') {
			target = a;
		} else {
			return dates_usage();
		}
	}
	if (target == NULL || (arrival == NULL && departure == NULL))
		return dates_usage();
	if (dates_is_id(target)) {
		p[0] = target;
	} else {
		const char *colon = strchr(target, ':');

		if (colon == NULL || colon == target || colon[1] == '\0') {
			ctl_err("mobility dates: \"%s\" is neither a mobility id (digits) nor "
			        "SENDING_HEI:OMOBILITY_ID",
			        target);
			return 2;
		}
		hei = xstrndup(target, (size_t)(colon - target));
		p[1] = hei;
		p[2] = colon + 1;
	}
	db = PQconnectdb(conninfo ? conninfo : ctl_conf(ctl)->db_conninfo);
	if (PQstatus(db) != CONNECTION_OK) {
		ctl_err("mobility dates: cannot connect to the database: %s", PQerrorMessage(db));
		goto out;
	}
	res = PQexec(db, "BEGIN");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = dates_fail(db, "BEGIN");
		goto out;
	}
	PQclear(res);
	res = PQexecParams(db, find_sql, 3, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = dates_fail(db, "looking the mobility up");
		goto out;
	}
	ctl_safe_result(res);
	if (PQntuples(res) == 0) {
		if (p[0])
			ctl_err("mobility dates: no mobility with id %s", p[0]);
		else
			ctl_err("mobility dates: no mobility %s of sending HEI %s", p[2], p[1]);
		goto out;
	}
	{
		char id[32], sending[80], omob[80], receiving[80], old_arr[16], old_dep[16];
		const char *arr, *dep;
		bool outgoing = strcmp(PQgetvalue(res, 0, 4), "t") == 0;

		snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
		snprintf(sending, sizeof(sending), "%s", PQgetvalue(res, 0, 1));
		snprintf(omob, sizeof(omob), "%s", PQgetvalue(res, 0, 2));
		snprintf(receiving, sizeof(receiving), "%s", PQgetvalue(res, 0, 3));
		snprintf(old_arr, sizeof(old_arr), "%s", PQgetvalue(res, 0, 5));
		snprintf(old_dep, sizeof(old_dep), "%s", PQgetvalue(res, 0, 6));
		PQclear(res);
		res = NULL;
		if (outgoing) {
			ctl_err(
			    "mobility dates: mobility %s (%s to %s, omobility_id %s) is one of our "
			    "outgoing mobilities: its actual dates belong to the receiving HEI %s, "
			    "which sends them through its IMobilities API; only incoming "
			    "mobilities take dates here",
			    id, sending, receiving, omob, receiving);
			goto out;
		}
		arr = arrival ? arrival : old_arr;
		dep = departure ? departure : old_dep;
		if (arr[0] && dep[0] && strcmp(dep, arr) < 0) {
			ctl_err(
			    "mobility dates: the departure date %s%s is before the arrival date "
			    "%s%s: nothing changed",
			    dep, departure ? "" : " (kept)", arr, arrival ? "" : " (kept)");
			goto out;
		}
		if (strcmp(arr, old_arr) == 0 && strcmp(dep, old_dep) == 0) {
			printf("mobility %s (%s, omobility_id %s): arrival %s, departure %s: "
			       "unchanged, no notification\n",
			       id, sending, omob, dates_show(arr), dates_show(dep));
			res = PQexec(db, "ROLLBACK");
			rc = 0;
			goto out;
		}
		res = PQexecParams(
		    db, update_sql, 6, NULL,
		    (const char *const[]){id, arr[0] ? arr : NULL, dep[0] ? dep : NULL,
		                          old_arr[0] ? old_arr : NULL, old_dep[0] ? old_dep : NULL,
		                          getenv("USER") ? getenv("USER") : "unknown"},
		    NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
			rc = dates_fail(db, "writing the dates");
			goto out;
		}
		PQclear(res);
		res = PQexecParams(db, job_sql, 2, NULL, (const char *const[]){sending, omob}, NULL,
		                   NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = dates_fail(db, "finding the notification");
			goto out;
		}
		char job[32];

		snprintf(job, sizeof(job), "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "?");
		PQclear(res);
		res = PQexec(db, "COMMIT");
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			rc = dates_fail(db, "COMMIT");
			goto out;
		}
		printf("mobility %s (%s, omobility_id %s): arrival %s, departure %s\n"
		       "IMobility CNR to %s queued (job %s)\n",
		       id, sending, omob, dates_show(arr), dates_show(dep), sending, job);
		rc = 0;
	}
out:
	PQclear(res);
	PQfinish(db);
	free(hei);
	return rc;
}
