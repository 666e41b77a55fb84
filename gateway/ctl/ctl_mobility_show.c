/*
 * ctl_mobility_show.c - what staff look at before deciding:
 * `ewpctl mobility list` (filtered by partner, status, direction, year),
 * `ewpctl mobility show` (every field, the registration and its step,
 * the decisions with their state and the partner's message, the jobs and
 * exchanges about the mobility) and `ewpctl la show` (the learning
 * agreement's header, each current version with its components and ECTS
 * totals, and its history). Everything printed comes from the database
 * or from partners: it goes through show_safe() first, which also folds
 * line breaks and tabs (a partner's name or message must not add lines
 * that look like ours, e.g. a forged row of the list).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ctl.h"

#define LIST_DEFAULT_LIMIT 100

/* Every value of res terminal-safe and on one line. */
static void
show_safe(PGresult *res)
{
	for (int r = 0; r < PQntuples(res); r++)
		for (int c = 0; c < PQnfields(res); c++) {
			char *v = PQgetvalue(res, r, c);

			ctl_safe_text(v, strlen(v), false);
		}
}

/*
 * Prints s left-aligned in a column of width characters (UTF-8 code
 * points, not bytes: "Schäfer" takes 7 columns), then sep; like printf's
 * %-*s, a longer value is printed whole.
 */
static void
show_col(const char *s, int width, const char *sep)
{
	int n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xc0) != 0x80)
			n++;
	fputs(s, stdout);
	for (; n < width; n++)
		putchar(' ');
	fputs(sep, stdout);
}

/* Widths of the columns of mobility list before the last one. */
static const int list_widths[] = {7, 3, 28, 24, 28, 26, 9, 10, 8};

static const char list_sql[] =
    "SELECT m.id, CASE WHEN m.is_outgoing THEN 'out' ELSE 'in' END, m.sending_hei_id,"
    " m.omobility_id, m.receiving_hei_id, m.given_names || ' ' || m.family_name,"
    " m.receiving_academic_year_id, m.status || CASE WHEN m.gone_at IS NOT NULL"
    " THEN ' (gone)' ELSE '' END,"
    " CASE WHEN ewp.decision_la_proposal(m.id) IS NOT NULL THEN 'proposal'"
    " WHEN EXISTS (SELECT 1 FROM smile.learning_agreement la WHERE la.mobility_id = m.id)"
    " THEN 'yes' ELSE '-' END,"
    " coalesce((SELECT d.kind || ':' || d.state FROM ewp.decisions d WHERE d.mobility_id = m.id"
    " ORDER BY d.id DESC LIMIT 1), '-')"
    " FROM smile.mobility m"
    " WHERE ($1::text IS NULL OR m.sending_hei_id = $1 OR m.receiving_hei_id = $1)"
    " AND ($2::text IS NULL OR m.status = $2)"
    " AND ($3::boolean IS NULL OR m.is_outgoing = $3)"
    " AND ($4::text IS NULL OR m.receiving_academic_year_id LIKE $4 || '/%')"
    " ORDER BY m.modified_at DESC, m.id DESC LIMIT $5::int";

static const char show_sql[] =
    "SELECT m.id, CASE WHEN m.is_outgoing THEN 'outgoing (we are the sending HEI)'"
    " ELSE 'incoming (we are the receiving HEI)' END,"
    " m.sending_hei_id, m.omobility_id, m.receiving_hei_id, m.status,"
    " coalesce(m.status_comment, '-'), m.proposal_id,"
    " m.given_names, m.family_name, m.global_id, coalesce(m.birth_date::text, '-'),"
    " coalesce(m.nationality::text, '-'), coalesce(m.gender::text, '-'),"
    " coalesce(m.email, '-'), coalesce(m.sending_ounit_id, '-'),"
    " coalesce(m.receiving_ounit_id, '-'), coalesce(m.sending_iia_id, '-'),"
    " coalesce(m.receiving_iia_id, '-'), coalesce(m.sending_term_id, 'non-standard period'),"
    " m.receiving_academic_year_id, m.activity_type, m.activity_attributes,"
    " coalesce(m.agreement_isced, '-'), coalesce(m.nominee_isced, '-'),"
    " coalesce(m.eqf_level::text, '-'), coalesce(m.comment, '-'),"
    " coalesce(m.actual_arrival_date::text, '-'), coalesce(m.actual_departure_date::text, '-'),"
    " coalesce(to_char(m.fetched_at, 'YYYY-MM-DD HH24:MI:SS TZ'), '-'),"
    " coalesce(to_char(m.gone_at, 'YYYY-MM-DD HH24:MI:SS TZ'), '-'),"
    " to_char(m.created_at, 'YYYY-MM-DD HH24:MI:SS TZ'),"
    " to_char(m.modified_at, 'YYYY-MM-DD HH24:MI:SS TZ'),"
    " coalesce(ewp.decision_la_proposal(m.id), '-'),"
    " coalesce((SELECT i.id || ': ' || st.label || ' (' || st.status || '), step '"
    "  || s.code || ' - ' || s.label || ', academic year ' || i.academic_year"
    "  FROM smile.inscription i JOIN smile.inscription_status st ON st.status = i.status"
    "  JOIN smile.step s ON s.id = i.step_id WHERE i.id = m.inscription_id), '-')"
    " FROM smile.mobility m WHERE m.id = ewp.decision_mobility_ref($1)";

static const char *const show_labels[] = {
    "id",
    "direction",
    "sending hei",
    "omobility id",
    "receiving hei",
    "status",
    "status comment",
    "proposal id",
    "given names",
    "family name",
    "global id (ESI)",
    "birth date",
    "nationality",
    "gender",
    "e-mail",
    "sending ounit",
    "receiving ounit",
    "sending iia",
    "receiving iia",
    "sending term",
    "receiving year",
    "activity type",
    "activity attrs",
    "agreement isced",
    "nominee isced",
    "eqf level",
    "comment",
    "actual arrival",
    "actual departure",
    "fetched",
    "gone",
    "created",
    "modified",
    "la proposal",
    "registration",
};

static const char decisions_sql[] =
    "SELECT d.id, d.kind, d.proposal_id, d.state, d.decided_by,"
    " to_char(d.created_at, 'YYYY-MM-DD HH24:MI:SS'), coalesce(d.job_id::text, '-'),"
    " coalesce(j.status, '-'), coalesce(d.comment, ''), coalesce(d.partner_message, ''),"
    " coalesce(d.signer_name || ', ' || d.signer_position || ' <' || d.signer_email || '>', '')"
    " FROM ewp.decisions d LEFT JOIN ewp.jobs j ON j.id = d.job_id"
    " WHERE d.mobility_id = $1::bigint ORDER BY d.id";

/* Jobs about the mobility: its decisions' jobs, re-fetches and CNRs of it. */
#define MOBILITY_JOBS                                                                              \
	"SELECT j.id FROM ewp.jobs j, smile.mobility m WHERE m.id = $1::bigint AND ("              \
	" j.id IN (SELECT job_id FROM ewp.decisions WHERE mobility_id = m.id)"                     \
	" OR (j.dedupe_key IN (m.omobility_id, m.sending_hei_id || ' ' || m.omobility_id)"         \
	" AND coalesce(j.payload ->> 'sending_hei_id', m.sending_hei_id) = m.sending_hei_id))"

static const char jobs_sql[] =
    "SELECT id, direction, kind, api, hei_id, status, attempts, coalesce(last_http_status::text,"
    " '-'), to_char(created_at, 'YYYY-MM-DD HH24:MI:SS'),"
    " coalesce(left(regexp_replace(last_error, '\\s+', ' ', 'g'), 100), '')"
    " FROM ewp.jobs WHERE id IN (" MOBILITY_JOBS ") ORDER BY id";

static const char exchanges_sql[] =
    "SELECT id, to_char(created_at, 'YYYY-MM-DD HH24:MI:SS'), direction, method,"
    " coalesce(status::text, '-'), coalesce(api, '-'), coalesce(job_id::text, '-'), url"
    " FROM ewp.message_log WHERE job_id IN (" MOBILITY_JOBS ") ORDER BY id DESC LIMIT 50";

#define LA_NS                                                                                      \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-las/blob/stable-v1/"     \
	"endpoints/get-response.xsd"

/* LA: the header, from the la element kept without its versions. */
static const char la_sql[] =
    "SELECT la.id, m.id, m.sending_hei_id, m.omobility_id, m.receiving_hei_id,"
    " coalesce(h.student, ''), coalesce(h.year, ''), coalesce(h.start, ''), coalesce(h.stop, ''),"
    " coalesce(h.eqf, ''), coalesce(h.isced, ''),"
    " coalesce(h.scontact, ''), coalesce(h.rcontact, ''),"
    " coalesce(to_char(la.fetched_at, 'YYYY-MM-DD HH24:MI:SS TZ'), '-'),"
    " coalesce(to_char(la.gone_at, 'YYYY-MM-DD HH24:MI:SS TZ'), '-'),"
    " coalesce(ewp.decision_la_proposal(m.id), '-')"
    " FROM smile.learning_agreement la JOIN smile.mobility m ON m.id = la.mobility_id,"
    " XMLTABLE(XMLNAMESPACES('" LA_NS "' AS l), '/l:la' PASSING la.header COLUMNS"
    "  student text PATH"
    "   'normalize-space(concat(l:student/l:given-names, \" \", l:student/l:family-name))',"
    "  year text PATH 'l:receiving-academic-year-id',"
    "  start text PATH 'concat(l:start-date, l:start-year-month)',"
    "  stop text PATH 'concat(l:end-date, l:end-year-month)',"
    "  eqf text PATH 'l:eqf-level-studied-at-departure',"
    "  isced text PATH 'l:isced-f-code',"
    "  scontact text PATH 'normalize-space(concat(l:sending-hei/l:contact-person/l:given-names,"
    "   \" \", l:sending-hei/l:contact-person/l:family-name))',"
    "  rcontact text PATH 'normalize-space(concat(l:receiving-hei/l:contact-person/l:given-names,"
    "   \" \", l:receiving-hei/l:contact-person/l:family-name))') h"
    " WHERE la.mobility_id = ewp.decision_mobility_ref($1)";

static const char *const la_labels[] = {
    "learning agreement",
    "mobility",
    "sending hei",
    "omobility id",
    "receiving hei",
    "student",
    "year",
    "start",
    "end",
    "eqf level",
    "isced-f",
    "sending contact",
    "receiving contact",
    "fetched",
    "gone",
    "waiting proposal",
};

static const char versions_sql[] =
    "SELECT v.id, v.kind, coalesce(v.proposal_id, '-'), v.state,"
    " to_char(v.created_at, 'YYYY-MM-DD HH24:MI:SS'),"
    " coalesce(to_char(v.ended_at, 'YYYY-MM-DD HH24:MI:SS'), '-'), coalesce(v.comment, ''),"
    " (SELECT string_agg(s.who, ', ' ORDER BY s.who)"
    "  FROM XMLTABLE(XMLNAMESPACES('" LA_NS "' AS l),"
    "   '/*/*[substring(local-name(), string-length(local-name()) - 9) = \"-signature\"]'"
    "   PASSING v.content COLUMNS who text PATH"
    "   'concat(substring-before(local-name(), \"-signature\"), \": \", l:signer-name, \" \","
    "    l:timestamp)') s)"
    " FROM smile.la_version v WHERE v.learning_agreement_id = $1::bigint"
    " ORDER BY v.created_at, v.id";

/* The components of a version, with the ECTS total of each list (deleted ones left out). */
static const char components_sql[] =
    "SELECT c.list, coalesce(c.code, ''), coalesce(c.title, ''), coalesce(c.credit, ''),"
    " coalesce(c.scheme, ''), coalesce(c.status, ''), coalesce(c.reason, ''),"
    " coalesce(sum(CASE WHEN lower(btrim(c.scheme)) = 'ects'"
    "  AND coalesce(c.status, '') <> 'deleted'"
    "  AND btrim(c.credit) ~ '^[0-9]{1,6}(\\.[0-9]{1,6})?$' THEN btrim(c.credit)::numeric END)"
    "  OVER (PARTITION BY c.list), 0)::text"
    " FROM smile.la_version v,"
    " XMLTABLE(XMLNAMESPACES('" LA_NS "' AS l), '/*/*/l:component' PASSING v.content COLUMNS"
    "  ord FOR ORDINALITY, list text PATH 'local-name(..)',"
    "  code text PATH 'l:los-code',"
    "  title text PATH 'normalize-space(l:title[1])',"
    "  credit text PATH 'l:credit[1]/l:value',"
    "  scheme text PATH 'l:credit[1]/l:scheme',"
    "  status text PATH '@status', reason text PATH '@reason-code') c"
    " WHERE v.id = $1::bigint ORDER BY c.ord";

static int
show_usage(const char *command)
{
	if (strcmp(command, "mobility list") == 0)
		ctl_err("usage: ewpctl mobility list [--partner HEI] [--status S] "
		        "[--incoming|--outgoing]"
		        " [--year YYYY] [--limit N] [--conninfo STR]");
	else
		ctl_err("usage: ewpctl %s ID|SENDING_HEI:OMOBILITY_ID [--conninfo STR]", command);
	return 2;
}

int
ctl_mobility_list(struct ctl *ctl, int argc, char **argv)
{
	static const char *const statuses[] = {"pending", "approved", "rejected", "cancelled"};
	const char *p[5] = {NULL}, *conninfo = NULL;
	char limit[16];
	PGconn *db;
	PGresult *res;

	snprintf(limit, sizeof(limit), "%d", LIST_DEFAULT_LIMIT);
	p[4] = limit;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--incoming") == 0 || strcmp(a, "--outgoing") == 0) {
			const char *want = a[2] == 'i' ? "false" : "true";

			if (p[2] != NULL && strcmp(p[2], want) != 0) {
				ctl_err("mobility list: --incoming or --outgoing, not both");
				return 2;
			}
			p[2] = want;
			continue;
		}
		if (v == NULL)
			return show_usage("mobility list");
		i++;
		if (strcmp(a, "--partner") == 0) {
			p[0] = v;
		} else if (strcmp(a, "--status") == 0) {
			bool known = false;

			for (size_t k = 0; k < sizeof(statuses) / sizeof(statuses[0]); k++)
				known = known || strcmp(v, statuses[k]) == 0;
			if (!known) {
				ctl_err(
				    "mobility list: unknown status \"%.64s\" (pending, approved, "
				    "rejected, cancelled)",
				    v);
				return 2;
			}
			p[1] = v;
		} else if (strcmp(a, "--year") == 0) {
			if (strlen(v) != 4 || strspn(v, "0123456789") != 4) {
				ctl_err(
				    "mobility list: --year wants the first year of the academic "
				    "year, e.g. 2026 for 2026/2027");
				return 2;
			}
			p[3] = v;
		} else if (strcmp(a, "--limit") == 0) {
			char *end;
			long n = strtol(v, &end, 10);

			if (*end || n < 1 || n > 100000) {
				ctl_err("mobility list: --limit wants 1 to 100000");
				return 2;
			}
			snprintf(limit, sizeof(limit), "%ld", n);
		} else if (strcmp(a, "--conninfo") == 0) {
			conninfo = v;
		} else {
			return show_usage("mobility list");
		}
	}
	if ((db = ctl_mobility_connect(ctl, conninfo)) == NULL)
		return 1;
	res = PQexecParams(db, list_sql, 5, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ctl_mobility_db_err("mobility list", db, res);
		PQclear(res);
		PQfinish(db);
		return 1;
	}
	show_safe(res);
	{
		static const char *const head[] = {"ID",           "DIR",           "SENDING HEI",
		                                   "OMOBILITY ID", "RECEIVING HEI", "STUDENT",
		                                   "YEAR",         "STATUS",        "LA"};

		for (size_t c = 0; c < sizeof(list_widths) / sizeof(list_widths[0]); c++)
			show_col(head[c], list_widths[c], " ");
		printf("LAST DECISION\n");
	}
	for (int r = 0; r < PQntuples(res); r++) {
		for (size_t c = 0; c < sizeof(list_widths) / sizeof(list_widths[0]); c++)
			show_col(PQgetvalue(res, r, (int)c), list_widths[c], " ");
		printf("%s\n", PQgetvalue(res, r, 9));
	}
	printf("(%d mobilit%s)\n", PQntuples(res), PQntuples(res) == 1 ? "y" : "ies");
	PQclear(res);
	PQfinish(db);
	return 0;
}

/* ID [--conninfo STR]; the id, or NULL after a usage message. */
static const char *
show_id_args(const char *command, int argc, char **argv, const char **conninfo)
{
	const char *id = NULL;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
			*conninfo = argv[++i];
		else if (id == NULL && argv[i][0] != '-')
			id = argv[i];
		else
			id = NULL, i = argc;
	}
	if (id == NULL)
		show_usage(command);
	return id;
}

/* Runs a query with one parameter; NULL after an error message. */
static PGresult *
show_query(PGconn *db, const char *what, const char *sql, const char *param)
{
	PGresult *res = PQexecParams(db, sql, 1, NULL, &param, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ctl_mobility_db_err(what, db, res);
		PQclear(res);
		return NULL;
	}
	show_safe(res);
	return res;
}

static void
show_not_found(const char *what, const char *id)
{
	char *copy = strdup(id);

	if (copy)
		ctl_safe_text(copy, strlen(copy), false);
	ctl_err("%s: no %s \"%s\" (give the mobility's id, or SENDING_HEI:OMOBILITY_ID)", what,
	        strcmp(what, "la show") == 0 ? "learning agreement for" : "mobility",
	        copy ? copy : "?");
	free(copy);
}

int
ctl_mobility_show(struct ctl *ctl, int argc, char **argv)
{
	const char *conninfo = NULL, *id = show_id_args("mobility show", argc, argv, &conninfo);
	PGresult *res = NULL, *dec = NULL, *jobs = NULL, *ex = NULL;
	PGconn *db;
	int rc = 1;

	if (id == NULL)
		return 2;
	if ((db = ctl_mobility_connect(ctl, conninfo)) == NULL)
		return 1;
	if ((res = show_query(db, "mobility show", show_sql, id)) == NULL)
		goto out;
	if (PQntuples(res) == 0) {
		show_not_found("mobility show", id);
		goto out;
	}
	for (int c = 0;
	     c < PQnfields(res) && c < (int)(sizeof(show_labels) / sizeof(show_labels[0])); c++)
		printf("%-17s %s\n", show_labels[c], PQgetvalue(res, 0, c));
	const char *mid = PQgetvalue(res, 0, 0);

	if ((dec = show_query(db, "mobility show", decisions_sql, mid)) == NULL ||
	    (jobs = show_query(db, "mobility show", jobs_sql, mid)) == NULL ||
	    (ex = show_query(db, "mobility show", exchanges_sql, mid)) == NULL)
		goto out;
	printf("\ndecisions (%d):\n", PQntuples(dec));
	for (int r = 0; r < PQntuples(dec); r++) {
		printf("  #%s %s of proposal %s: %s  (by %s, %s; job %s %s)\n",
		       PQgetvalue(dec, r, 0), PQgetvalue(dec, r, 1), PQgetvalue(dec, r, 2),
		       PQgetvalue(dec, r, 3), PQgetvalue(dec, r, 4), PQgetvalue(dec, r, 5),
		       PQgetvalue(dec, r, 6), PQgetvalue(dec, r, 7));
		if (PQgetvalue(dec, r, 10)[0])
			printf("      signed by: %s\n", PQgetvalue(dec, r, 10));
		if (PQgetvalue(dec, r, 8)[0])
			printf("      comment: %s\n", PQgetvalue(dec, r, 8));
		if (PQgetvalue(dec, r, 9)[0])
			printf("      partner: %s\n", PQgetvalue(dec, r, 9));
	}
	printf("\njobs (%d; ewpctl jobs show ID for one):\n", PQntuples(jobs));
	for (int r = 0; r < PQntuples(jobs); r++)
		printf("  %-8s %-3s %-8s %-14s %-28s %-10s try %-3s http %-4s %s%s%s\n",
		       PQgetvalue(jobs, r, 0), PQgetvalue(jobs, r, 1), PQgetvalue(jobs, r, 2),
		       PQgetvalue(jobs, r, 3), PQgetvalue(jobs, r, 4), PQgetvalue(jobs, r, 5),
		       PQgetvalue(jobs, r, 6), PQgetvalue(jobs, r, 7), PQgetvalue(jobs, r, 8),
		       PQgetvalue(jobs, r, 9)[0] ? "  " : "", PQgetvalue(jobs, r, 9));
	printf("\nexchanges (%d, newest first; ewpctl log show ID for one):\n", PQntuples(ex));
	for (int r = 0; r < PQntuples(ex); r++)
		printf("  %-8s %s %-3s %-4s %-4s %-14s job %-6s %s\n", PQgetvalue(ex, r, 0),
		       PQgetvalue(ex, r, 1), PQgetvalue(ex, r, 2), PQgetvalue(ex, r, 3),
		       PQgetvalue(ex, r, 4), PQgetvalue(ex, r, 5), PQgetvalue(ex, r, 6),
		       PQgetvalue(ex, r, 7));
	rc = 0;
out:
	PQclear(ex);
	PQclear(jobs);
	PQclear(dec);
	PQclear(res);
	PQfinish(db);
	return rc;
}

int
ctl_la_show(struct ctl *ctl, int argc, char **argv)
{
	const char *conninfo = NULL, *id = show_id_args("la show", argc, argv, &conninfo);
	PGresult *res = NULL, *ver = NULL;
	PGconn *db;
	int rc = 1;

	if (id == NULL)
		return 2;
	if ((db = ctl_mobility_connect(ctl, conninfo)) == NULL)
		return 1;
	if ((res = show_query(db, "la show", la_sql, id)) == NULL)
		goto out;
	if (PQntuples(res) == 0) {
		show_not_found("la show", id);
		goto out;
	}
	for (int c = 0; c < PQnfields(res) && c < (int)(sizeof(la_labels) / sizeof(la_labels[0]));
	     c++)
		printf("%-18s %s\n", la_labels[c],
		       PQgetvalue(res, 0, c)[0] ? PQgetvalue(res, 0, c) : "-");
	if ((ver = show_query(db, "la show", versions_sql, PQgetvalue(res, 0, 0))) == NULL)
		goto out;
	for (int r = 0; r < PQntuples(ver); r++) {
		PGresult *comp;
		const char *last = "";

		if (strcmp(PQgetvalue(ver, r, 3), "current") != 0)
			continue;
		printf("\n%s (proposal %s), since %s\n", PQgetvalue(ver, r, 1),
		       PQgetvalue(ver, r, 2), PQgetvalue(ver, r, 4));
		if (PQgetvalue(ver, r, 7)[0])
			printf("  signatures: %s\n", PQgetvalue(ver, r, 7));
		if (PQgetvalue(ver, r, 6)[0])
			printf("  our comment: %s\n", PQgetvalue(ver, r, 6));
		if ((comp = show_query(db, "la show", components_sql, PQgetvalue(ver, r, 0))) ==
		    NULL)
			goto out;
		if (PQntuples(comp) == 0)
			printf("  (no components)\n");
		for (int k = 0; k < PQntuples(comp); k++) {
			if (strcmp(last, PQgetvalue(comp, k, 0)) != 0) {
				last = PQgetvalue(comp, k, 0);
				printf("  %s: %s ECTS\n", last, PQgetvalue(comp, k, 7));
			}
			printf("    ");
			show_col(PQgetvalue(comp, k, 1), 12, " ");
			show_col(PQgetvalue(comp, k, 2), 40, " ");
			printf("%6s ", PQgetvalue(comp, k, 3));
			show_col(PQgetvalue(comp, k, 4), 5, "");
			printf("%s%s%s%s\n", PQgetvalue(comp, k, 5)[0] ? " " : "",
			       PQgetvalue(comp, k, 5), PQgetvalue(comp, k, 6)[0] ? " " : "",
			       PQgetvalue(comp, k, 6));
		}
		PQclear(comp);
	}
	printf("\nhistory (%d version%s):\n", PQntuples(ver), PQntuples(ver) == 1 ? "" : "s");
	for (int r = 0; r < PQntuples(ver); r++)
		printf("  %-8s %-17s %-40s %-10s %s - %s%s%s\n", PQgetvalue(ver, r, 0),
		       PQgetvalue(ver, r, 1), PQgetvalue(ver, r, 2), PQgetvalue(ver, r, 3),
		       PQgetvalue(ver, r, 4), PQgetvalue(ver, r, 5),
		       PQgetvalue(ver, r, 6)[0] ? "  comment: " : "", PQgetvalue(ver, r, 6));
	rc = 0;
out:
	PQclear(ver);
	PQclear(res);
	PQfinish(db);
	return rc;
}
