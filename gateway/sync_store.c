/*
 * sync_store.c - what a partner published, written into the SMILE core:
 * smile.etablissement and smile.composante (with the parent of each
 * unit), their addresses and contacts (replaced only when changed, so
 * modified_at moves only when something did).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync_int.h"
#include "xmalloc.h"

/* Postgres array literal of strings ("{\"a\",\"b\"}"); NULL when too large. */
static char *
pg_array(char *const *v, size_t n)
{
	struct buf b;
	bool ok;
	char *out;

	buf_init(&b, SYNC_MAX_RESPONSE);
	ok = buf_add(&b, "{", 1) == 0;
	for (size_t i = 0; ok && i < n; i++) {
		ok = buf_add(&b, i ? ",\"" : "\"", i ? 2 : 1) == 0;
		for (const char *p = v[i]; ok && *p; p++) {
			if (*p == '"' || *p == '\\')
				ok = buf_add(&b, "\\", 1) == 0;
			if (ok)
				ok = buf_add(&b, p, 1) == 0;
		}
		if (ok)
			ok = buf_add(&b, "\"", 1) == 0;
	}
	if (ok)
		ok = buf_add(&b, "}", 1) == 0;
	out = ok ? xstrdup(buf_cstr(&b)) : NULL;
	buf_free(&b);
	return out;
}

/*
 * Statements with parameters are prepared once per connection: a partner
 * takes some twenty of them, and parsing and planning each anew was most
 * of the database's time in a sync of many partners. Keyed by the SQL's
 * address (the statements are string constants).
 */
#define SYNC_MAX_PREPARED 32

static struct {
	PGconn *db;
	const char *sql[SYNC_MAX_PREPARED];
	size_t n;
} prepared;

void
sync_db_forget(PGconn *db)
{
	if (prepared.db == db)
		memset(&prepared, 0, sizeof(prepared));
}

/* The name of sql prepared on db ("" to run it unprepared), or NULL with res set. */
static const char *
sync_db_prepare(PGconn *db, const char *sql, int n, PGresult **res, char *name, size_t namelen)
{
	size_t i;

	name[0] = '\0';
	if (n == 0)
		return name;
	if (prepared.db != db) {
		memset(&prepared, 0, sizeof(prepared));
		prepared.db = db;
	}
	for (i = 0; i < prepared.n && prepared.sql[i] != sql; i++)
		;
	snprintf(name, namelen, "ewp_sync_%zu", i);
	if (i < prepared.n)
		return name;
	if (i == SYNC_MAX_PREPARED) {
		name[0] = '\0';
		return name;
	}
	*res = PQprepare(db, name, sql, n, NULL);
	if (PQresultStatus(*res) != PGRES_COMMAND_OK)
		return NULL;
	PQclear(*res);
	*res = NULL;
	prepared.sql[prepared.n++] = sql;
	return name;
}

/* Runs a parameterised statement; -1 with the server's message in err. */
int
sync_db_exec(PGconn *db, const char *sql, int n, const char *const *params, PGresult **out,
             char *err, size_t errlen)
{
	PGresult *res = NULL;
	char name[32];
	const char *stmt = sync_db_prepare(db, sql, n, &res, name, sizeof(name));
	ExecStatusType st;

	if (stmt != NULL)
		res = stmt[0] ? PQexecPrepared(db, stmt, n, params, NULL, NULL, 0)
		              : PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		/* no result at all (connection lost): libpq's own message says why */
		const char *why = res != NULL && PQresultErrorMessage(res)[0]
		                      ? PQresultErrorMessage(res)
		                      : PQerrorMessage(db);

		snprintf(err, errlen, "database: %s%s",
		         PQstatus(db) == CONNECTION_BAD ? "connection lost: " : "",
		         why[0] ? why : "no answer");
		/* one line is enough for the table */
		for (char *p = err; *p; p++)
			if (*p == '\n')
				*p = *(p + 1) ? ' ' : '\0';
		PQclear(res);
		return -1;
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return 0;
}

/* jsonb names from two parallel text[] parameters */
#define NAMES_SQL(l, n)                                                                            \
	"(SELECT jsonb_agg(CASE WHEN t.l = '' THEN jsonb_build_object('name', t.n)"                \
	" ELSE jsonb_build_object('lang', t.l, 'name', t.n) END ORDER BY t.o)"                     \
	" FROM unnest(" l "::text[], " n "::text[]) WITH ORDINALITY AS t (l, n, o))"

static const char hei_sql[] =
    "INSERT INTO smile.etablissement (schac_id, erasmus_code, pic, names, abbreviation,"
    " website_url, logo_url, factsheet_url)"
    " VALUES ($1, $2, $3, " NAMES_SQL(
        "$4",
        "$5") ", $6, $7, $8, $9)"
              " ON CONFLICT (schac_id) DO UPDATE SET"
              " erasmus_code = COALESCE(EXCLUDED.erasmus_code, etablissement.erasmus_code),"
              " pic = COALESCE(EXCLUDED.pic, etablissement.pic), names = EXCLUDED.names,"
              " abbreviation = EXCLUDED.abbreviation, website_url = EXCLUDED.website_url,"
              " logo_url = EXCLUDED.logo_url, factsheet_url = EXCLUDED.factsheet_url"
              " WHERE NOT etablissement.is_local AND (etablissement.erasmus_code, "
              "etablissement.pic,"
              " etablissement.names, etablissement.abbreviation, etablissement.website_url,"
              " etablissement.logo_url, etablissement.factsheet_url) IS DISTINCT FROM"
              " (COALESCE(EXCLUDED.erasmus_code, etablissement.erasmus_code),"
              " COALESCE(EXCLUDED.pic, etablissement.pic), EXCLUDED.names, EXCLUDED.abbreviation,"
              " EXCLUDED.website_url, EXCLUDED.logo_url, EXCLUDED.factsheet_url)";

static const char unit_sql[] =
    "INSERT INTO smile.composante (etablissement_id, ounit_id, code, names, abbreviation,"
    " website_url, logo_url, factsheet_url, source)"
    " VALUES ($1, $2, $3, " NAMES_SQL(
        "$4",
        "$5") ", $6, $7, $8, $9, 'ewp')"
              " ON CONFLICT (etablissement_id, ounit_id) DO UPDATE SET code = EXCLUDED.code,"
              " names = EXCLUDED.names, abbreviation = EXCLUDED.abbreviation,"
              " website_url = EXCLUDED.website_url, logo_url = EXCLUDED.logo_url,"
              " factsheet_url = EXCLUDED.factsheet_url, source = 'ewp'"
              " WHERE (composante.code, composante.names, composante.abbreviation, "
              "composante.website_url,"
              " composante.logo_url, composante.factsheet_url, composante.source) IS DISTINCT FROM"
              " (EXCLUDED.code, EXCLUDED.names, EXCLUDED.abbreviation, EXCLUDED.website_url,"
              " EXCLUDED.logo_url, EXCLUDED.factsheet_url, 'ewp')";

static const char parent_sql[] =
    "UPDATE smile.composante c SET parent_id = (SELECT p.id FROM smile.composante p"
    "  WHERE p.etablissement_id = $1 AND p.ounit_id = $3)"
    " WHERE c.etablissement_id = $1 AND c.ounit_id = $2 AND c.parent_id IS DISTINCT FROM"
    " (SELECT p.id FROM smile.composante p WHERE p.etablissement_id = $1 AND p.ounit_id = $3)";

/*
 * Addresses and contacts of one owner ($1 the id, $2 the JSON array),
 * replaced only when they differ from what is stored: the rows have no
 * identity of their own, and rewriting them would touch the owner's
 * modified_at on every run. Two statements: the one that deletes when
 * something changed, then the one that inserts into an owner left with
 * none; in a single statement the new rows would meet the old ones in
 * the unique index (one address per kind), as data-modifying CTEs all
 * run against the same snapshot.
 */
#define ADDR_COLS                                                                                  \
	"kind, recipient_names, lines, building_number, building_name, street_name, unit, floor,"  \
	" post_office_box, delivery_point_codes, postal_code, locality, region, country"
#define ADDR_WANT                                                                                  \
	"WITH want AS (SELECT kind, coalesce(recipient_names, '{}') AS recipient_names,"           \
	"  coalesce(lines, '{}') AS lines, building_number, building_name, street_name, unit,"     \
	"  floor, post_office_box, coalesce(delivery_point_codes, '{}') AS delivery_point_codes,"  \
	"  postal_code, locality, region, country"                                                 \
	"  FROM jsonb_to_recordset($2::jsonb) AS x (kind text, recipient_names text[],"            \
	"  lines text[], building_number text, building_name text, street_name text, unit text,"   \
	"  floor text, post_office_box text, delivery_point_codes text[], postal_code text,"       \
	"  locality text, region text, country text))"
#define ADDR_DEL_SQL(owner)                                                                        \
	ADDR_WANT ", cur AS (SELECT " ADDR_COLS " FROM smile.address WHERE " owner " = $1),"       \
	          " changed AS (SELECT 1 WHERE EXISTS (SELECT * FROM want EXCEPT ALL"              \
	          "  SELECT kind, recipient_names, lines, building_number, building_name,"         \
	          "  street_name, unit, floor, post_office_box, delivery_point_codes,"             \
	          "  postal_code, locality, region, country::text FROM cur)"                       \
	          "  OR EXISTS (SELECT kind, recipient_names, lines, building_number,"             \
	          "  building_name, street_name, unit, floor, post_office_box,"                    \
	          "  delivery_point_codes, postal_code, locality, region, country::text"           \
	          "  FROM cur EXCEPT ALL SELECT * FROM want))"                                     \
	          " DELETE FROM smile.address WHERE " owner                                        \
	          " = $1 AND EXISTS (SELECT FROM changed)"
#define ADDR_INS_SQL(owner)                                                                        \
	ADDR_WANT " INSERT INTO smile.address (" owner ", " ADDR_COLS ")"                          \
	          " SELECT $1, " ADDR_COLS " FROM want"                                            \
	          " WHERE NOT EXISTS (SELECT FROM smile.address WHERE " owner " = $1)"

#define CONTACT_WANT                                                                               \
	"WITH want AS (SELECT o::integer AS position, names, given_names, family_name,"            \
	"  coalesce(emails, '{}') AS emails, coalesce(phones, '{}') AS phones, role_descriptions"  \
	"  FROM ROWS FROM (jsonb_to_recordset($2::jsonb) AS (names jsonb, given_names text,"       \
	"  family_name text, emails text[], phones text[], role_descriptions jsonb))"              \
	"  WITH ORDINALITY AS x (names, given_names, family_name, emails, phones,"                 \
	"  role_descriptions, o))"
#define CONTACT_DEL_SQL(owner)                                                                     \
	CONTACT_WANT ", cur AS (SELECT position, names, given_names, family_name,"                 \
	             "  emails::text[] AS emails, phones::text[] AS phones, role_descriptions"     \
	             "  FROM smile.contact WHERE " owner " = $1),"                                 \
	             " changed AS (SELECT 1 WHERE EXISTS (SELECT * FROM want EXCEPT ALL"           \
	             "  SELECT * FROM cur) OR EXISTS (SELECT * FROM cur EXCEPT ALL"                \
	             "  SELECT * FROM want))"                                                      \
	             " DELETE FROM smile.contact WHERE " owner                                     \
	             " = $1 AND EXISTS (SELECT FROM changed)"
#define CONTACT_INS_SQL(owner)                                                                     \
	CONTACT_WANT " INSERT INTO smile.contact (" owner ", position, names, given_names,"        \
	             " family_name, emails, phones, role_descriptions)"                            \
	             " SELECT $1, position, names, given_names, family_name,"                      \
	             " emails::smile.email[], phones::smile.phone[], role_descriptions FROM want"  \
	             " WHERE NOT EXISTS (SELECT FROM smile.contact WHERE " owner " = $1)"

static int
write_extra(PGconn *db, const char *id, const struct sync_extra *x, bool unit, char *err,
            size_t errlen)
{
	const char *sql[] = {
	    unit ? ADDR_DEL_SQL("composante_id") : ADDR_DEL_SQL("etablissement_id"),
	    unit ? ADDR_INS_SQL("composante_id") : ADDR_INS_SQL("etablissement_id"),
	    unit ? CONTACT_DEL_SQL("composante_id") : CONTACT_DEL_SQL("etablissement_id"),
	    unit ? CONTACT_INS_SQL("composante_id") : CONTACT_INS_SQL("etablissement_id"),
	};
	char *addr = sync_json_array(&x->addresses), *contacts = sync_json_array(&x->contacts);
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < 4; i++)
		rc = sync_db_exec(db, sql[i], 2, (const char *const[]){id, i < 2 ? addr : contacts},
		                  NULL, err, errlen);
	free(addr);
	free(contacts);
	return rc;
}

/* The names as two parallel array literals; -1 (both NULL) when too large. */
static int
write_names(const struct sync_names *n, char **langs, char **names, const char *whose, char *err,
            size_t errlen)
{
	*langs = pg_array(n->lang, n->n);
	*names = pg_array(n->name, n->n);
	if (*langs != NULL && *names != NULL)
		return 0;
	free(*langs);
	free(*names);
	*langs = *names = NULL;
	snprintf(err, errlen, "the names of %.200s are too large", whose);
	return -1;
}

/* Upserts one partner in the current transaction. */
int
sync_write_partner(struct sync *s, const struct sync_hei *h, char *err, size_t errlen)
{
	char *langs, *names, eid[32];
	PGresult *res;
	int rc = 0;

	if (write_names(&h->names, &langs, &names, h->id, err, errlen) == -1)
		return -1;
	rc = sync_db_exec(s->db, hei_sql, 9,
	                  (const char *const[]){h->id, h->erasmus, h->pic, langs, names,
	                                        h->abbreviation, h->website, h->logo, h->factsheet},
	                  NULL, err, errlen);
	free(langs);
	free(names);
	if (rc == -1)
		return -1;
	if (sync_db_exec(s->db, "SELECT id, is_local FROM smile.etablissement WHERE schac_id = $1",
	                 1, (const char *const[]){h->id}, &res, err, errlen) == -1)
		return -1;
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
		snprintf(err, errlen, "%s is our own institution here", h->id);
		PQclear(res);
		return -1;
	}
	snprintf(eid, sizeof(eid), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (write_extra(s->db, eid, &h->extra, false, err, errlen) == -1)
		return -1;
	for (size_t i = 0; rc == 0 && i < h->nunits; i++) {
		const struct sync_unit *u = &h->units[i];

		if (u->id == NULL || u->code == NULL) {
			snprintf(err, errlen, "an ounit without ounit-id or ounit-code");
			return -1;
		}
		if (write_names(&u->names, &langs, &names, u->id, err, errlen) == -1)
			return -1;
		rc = sync_db_exec(s->db, unit_sql, 9,
		                  (const char *const[]){eid, u->id, u->code, langs, names,
		                                        u->abbreviation, u->website, u->logo,
		                                        u->factsheet},
		                  NULL, err, errlen);
		free(langs);
		free(names);
		if (rc == 0)
			rc = sync_db_exec(s->db,
			                  "SELECT id FROM smile.composante"
			                  " WHERE etablissement_id = $1 AND ounit_id = $2",
			                  2, (const char *const[]){eid, u->id}, &res, err, errlen);
		if (rc == 0) {
			char uid[32];

			snprintf(uid, sizeof(uid), "%s",
			         PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
			PQclear(res);
			rc = write_extra(s->db, uid, &u->extra, true, err, errlen);
		}
	}
	for (size_t i = 0; rc == 0 && i < h->nunits; i++) {
		const char *parent = h->units[i].parent;

		/* A unit naming itself as parent means "no parent", not a cycle. */
		if (parent && h->units[i].id && strcmp(parent, h->units[i].id) == 0)
			parent = NULL;
		rc = sync_db_exec(s->db, parent_sql, 3,
		                  (const char *const[]){eid, h->units[i].id, parent}, NULL, err,
		                  errlen);
	}
	return rc;
}
