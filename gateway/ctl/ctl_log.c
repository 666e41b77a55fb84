/*
 * ctl_log.c - `ewpctl log`: searching the EWP message log
 * (ewp.message_log) from a terminal, the first thing to do when a partner
 * says a call failed: `ewpctl log --partner uni.example --failed`, then
 * `ewpctl log show ID` for the headers and bodies of one exchange, XML
 * indented.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <libxml/tree.h>

#include "codec.h"
#include "ctl.h"
#include "xml.h"

#define LOG_DEFAULT_LIMIT 50
#define LOG_MAX_BODY      (4u * 1024 * 1024)

static int
log_usage(void)
{
	ctl_err(
	    "usage: ewpctl log [--partner HEI] [--api NAME] [--status N|Nxx] [--failed]\n"
	    "                  [--in|--out] [--request-id ID] [--since DURATION] [--grep TEXT]\n"
	    "                  [--limit N] [--conninfo STR]\n"
	    "       ewpctl log show ID [--conninfo STR]");
	return 2;
}

/* Filters are all parameters; NULL means "any". */
static const char list_sql[] =
    "SELECT id, to_char(created_at, 'YYYY-MM-DD HH24:MI:SS'), direction, method,"
    " coalesce(status::text, '-'), coalesce(api, '-'),"
    " coalesce(nullif(array_to_string(partner_hei_ids, ','), ''), '-'),"
    " coalesce(duration_ms::text, '-'), coalesce(request_id, '-'),"
    " coalesce(left(regexp_replace(coalesce(error, validation_error, ''), '\\s+', ' ', 'g'),"
    "  100), '')"
    " FROM ewp.message_log"
    " WHERE ($1::text IS NULL OR $1 = ANY (partner_hei_ids))"
    " AND ($2::text IS NULL OR api = $2)"
    " AND ($3::int IS NULL OR status = $3)"
    " AND ($4::int IS NULL OR status / 100 = $4)"
    " AND ($5::text IS NULL OR request_id = $5)"
    " AND ($6::bigint IS NULL OR created_at >= now() - make_interval(secs => $6::bigint))"
    " AND ($7::text IS NULL OR direction = $7)"
    " AND ($8::text IS NULL OR strpos(lower(concat_ws(' ', url, error, validation_error)),"
    "  lower($8)) > 0)"
    " AND (NOT $9::bool OR status IS NULL OR status >= 400 OR error IS NOT NULL"
    "  OR validation = 'invalid')"
    " ORDER BY id DESC LIMIT $10::int";

static const char show_sql[] =
    "SELECT to_char(created_at, 'YYYY-MM-DD HH24:MI:SS.MS TZ'), direction, method, url,"
    " array_to_string(partner_hei_ids, ', '), coalesce(api || ' ' || api_version, api, '-'),"
    " coalesce(status::text, '(no response)'), coalesce(duration_ms::text, '-'),"
    " coalesce(request_id, '-'), coalesce(key_id, '-'), validation,"
    " coalesce(validation_error, ''), coalesce(error, ''),"
    " (SELECT string_agg('  ' || (h ->> 0) || ': ' || (h ->> 1), E'\\n' ORDER BY o)"
    "  FROM jsonb_array_elements(l.request_headers) WITH ORDINALITY AS x (h, o)),"
    " (SELECT string_agg('  ' || (h ->> 0) || ': ' || (h ->> 1), E'\\n' ORDER BY o)"
    "  FROM jsonb_array_elements(l.response_headers) WITH ORDINALITY AS x (h, o)),"
    " encode(request_body, 'base64'), request_bytes, encode(response_body, 'base64'),"
    " response_bytes, coalesce(parent_id::text, ''), coalesce(job_id::text, ''),"
    " (SELECT string_agg(c.id::text, ', ' ORDER BY c.id) FROM ewp.message_log c"
    "  WHERE c.parent_id = l.id)"
    " FROM ewp.message_log l WHERE id = $1::bigint";

static PGconn *
log_connect(struct ctl *ctl, const char *conninfo)
{
	PGconn *db = PQconnectdb(conninfo ? conninfo : ctl_conf(ctl)->db_conninfo);

	if (PQstatus(db) != CONNECTION_OK) {
		ctl_err("log: cannot connect to the database: %s", PQerrorMessage(db));
		PQfinish(db);
		return NULL;
	}
	return db;
}

/* "90", "90s", "15m", "3h", "2d" in seconds; -1 if not a duration. */
static long
log_duration(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || v < 0 || v > 36500L * 86400)
		return -1;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		v *= 60;
		break;
	case 'h':
		v *= 3600;
		break;
	case 'd':
		v *= 86400;
		break;
	default:
		return -1;
	}
	return *end && end[1] ? -1 : v;
}

static int
log_list(struct ctl *ctl, int argc, char **argv)
{
	const char *p[10] = {NULL};
	char status[8], klass[8], since[24], limit[16];
	const char *conninfo = NULL;
	PGconn *db;
	PGresult *res;
	int rc = 1;

	p[8] = "false";
	snprintf(limit, sizeof(limit), "%d", LOG_DEFAULT_LIMIT);
	p[9] = limit;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--failed") == 0) {
			p[8] = "true";
			continue;
		}
		if (strcmp(a, "--in") == 0 || strcmp(a, "--out") == 0) {
			p[6] = a + 2;
			continue;
		}
		if (v == NULL)
			return log_usage();
		i++;
		if (strcmp(a, "--partner") == 0) {
			p[0] = v;
		} else if (strcmp(a, "--api") == 0) {
			p[1] = v;
		} else if (strcmp(a, "--status") == 0) {
			if (strlen(v) == 3 && v[0] >= '1' && v[0] <= '5' &&
			    strcmp(v + 1, "xx") == 0) {
				snprintf(klass, sizeof(klass), "%c", v[0]);
				p[3] = klass;
			} else if (strlen(v) == 3 && strspn(v, "0123456789") == 3) {
				snprintf(status, sizeof(status), "%s", v);
				p[2] = status;
			} else {
				ctl_err("log: --status wants a status (404) or a class (5xx), not "
				        "\"%s\"",
				        v);
				return 2;
			}
		} else if (strcmp(a, "--request-id") == 0) {
			p[4] = v;
		} else if (strcmp(a, "--since") == 0) {
			long s = log_duration(v);

			if (s < 0) {
				ctl_err(
				    "log: --since wants a duration (90s, 15m, 3h, 2d), not \"%s\"",
				    v);
				return 2;
			}
			snprintf(since, sizeof(since), "%ld", s);
			p[5] = since;
		} else if (strcmp(a, "--grep") == 0) {
			p[7] = v;
		} else if (strcmp(a, "--limit") == 0) {
			char *end;
			long n = strtol(v, &end, 10);

			if (*end || n < 1 || n > 100000) {
				ctl_err("log: --limit wants 1 to 100000, not \"%s\"", v);
				return 2;
			}
			snprintf(limit, sizeof(limit), "%ld", n);
		} else if (strcmp(a, "--conninfo") == 0) {
			conninfo = v;
		} else {
			return log_usage();
		}
	}
	if ((db = log_connect(ctl, conninfo)) == NULL)
		return 1;
	res = PQexecParams(db, list_sql, 10, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ctl_err("log: %s", PQerrorMessage(db));
		goto out;
	}
	ctl_safe_result(res);
	printf("%-8s %-19s %-3s %-6s %-6s %-22s %-30s %7s %-36s %s\n", "ID", "TIME", "DIR",
	       "METHOD", "STATUS", "API", "PARTNER", "MS", "REQUEST ID", "ERROR");
	for (int r = 0; r < PQntuples(res); r++)
		printf("%-8s %-19s %-3s %-6s %-6s %-22s %-30s %7s %-36s %s\n",
		       PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), PQgetvalue(res, r, 2),
		       PQgetvalue(res, r, 3), PQgetvalue(res, r, 4), PQgetvalue(res, r, 5),
		       PQgetvalue(res, r, 6), PQgetvalue(res, r, 7), PQgetvalue(res, r, 8),
		       PQgetvalue(res, r, 9));
	rc = 0;
out:
	PQclear(res);
	PQfinish(db);
	return rc;
}

static void
log_print_headers(const char *title, const char *lines)
{
	printf("%s\n%s\n", title, lines[0] ? lines : "  (none)");
}

/* A body: indented when it is XML, else as text with controls shown as '.'. */
static void
log_print_body(const char *title, const char *b64, const char *bytes)
{
	unsigned char *raw = NULL;
	size_t len = 0, n = 0;
	char *indented;

	if (b64[0] == '\0') {
		printf("%s: none\n", title);
		return;
	}
	if (codec_base64_decode(b64, strlen(b64), &raw, &len) == -1) {
		printf("%s: (undecodable)\n", title);
		return;
	}
	printf("%s (%s bytes%s):\n", title, bytes,
	       strtoull(bytes, NULL, 10) > len ? ", cut in the log" : "");
	indented = strtoull(bytes, NULL, 10) == len
	               ? xml_indent((const char *)raw, len, LOG_MAX_BODY, &n)
	               : NULL;
	if (indented != NULL) {
		ctl_safe_text(indented, n, true);
		fwrite(indented, 1, n, stdout);
		xmlFree(indented);
	} else {
		ctl_safe_text((char *)raw, len, true);
		fwrite(raw, 1, len, stdout);
		putchar('\n');
	}
	free(raw);
}

static int
log_show(struct ctl *ctl, int argc, char **argv)
{
	const char *conninfo = NULL, *id = NULL;
	PGconn *db;
	PGresult *res;
	int rc = 1;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
			conninfo = argv[++i];
		else if (id == NULL && argv[i][0] != '-' &&
		         strspn(argv[i], "0123456789") == strlen(argv[i]) && strlen(argv[i]) < 19)
			id = argv[i];
		else
			return log_usage();
	}
	if (id == NULL)
		return log_usage();
	if ((db = log_connect(ctl, conninfo)) == NULL)
		return 1;
	res = PQexecParams(db, show_sql, 1, NULL, &id, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ctl_err("log show: %s", PQerrorMessage(db));
		goto out;
	}
	if (PQntuples(res) == 0) {
		ctl_err("log show: no exchange %s in the message log", id);
		goto out;
	}
	ctl_safe_result(res);
#define F(i) PQgetvalue(res, 0, (i))
	printf("exchange %s, %s, %s\n", id, strcmp(F(1), "in") == 0 ? "received" : "sent", F(0));
	printf("  %s %s\n", F(2), F(3));
	printf("  partner:     %s\n", F(4)[0] ? F(4) : "-");
	printf("  api:         %s\n", F(5));
	printf("  status:      %s in %s ms\n", F(6), F(7));
	printf("  request id:  %s\n", F(8));
	printf("  key id:      %s\n", F(9));
	printf("  validation:  %s%s%s\n", F(10), F(11)[0] ? ": " : "", F(11));
	if (F(12)[0])
		printf("  error:       %s\n", F(12));
	if (F(19)[0])
		printf("  caused by:   exchange %s\n", F(19));
	if (!PQgetisnull(res, 0, 21))
		printf("  led to:      exchanges %s\n", F(21));
	if (F(20)[0])
		printf("  job:         %s\n", F(20));
	log_print_headers("request headers:", F(13));
	log_print_body("request body", F(15), F(16));
	log_print_headers("response headers:", F(14));
	log_print_body("response body", F(17), F(18));
#undef F
	rc = 0;
out:
	PQclear(res);
	PQfinish(db);
	return rc;
}

int
ctl_log(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "show") == 0)
		return log_show(ctl, argc - 1, argv + 1);
	if (argc >= 1 && (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0))
		return log_usage();
	return log_list(ctl, argc, argv);
}
