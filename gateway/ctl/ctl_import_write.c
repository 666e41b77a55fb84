/*
 * ctl_import_write.c - the statements of each kind of import: references
 * looked up by code, rows upserted by natural key and rewritten only when
 * something changed, every refusal of the database tied to its line.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_import.h"
#include "xmalloc.h"

/* Columns of SMILE's CSV imports (smile-model.md §7), in SMILE's order. */
static const struct col composante_cols[] = {
    {"code", C_CODE},
    {"libelle", C_TITLE},
    {"acronyme", C_TEXT},
    {"code_parent", C_REF},
};
static const struct col formation_cols[] = {
    {"code", C_CODE},
    {"libelle", C_TITLE},
    {"acronyme", C_TEXT},
    {"code_composante", C_REF},
    {"niveau_etude", C_LEVEL},
    {"langue", C_LANG},
    {"ouvert_mobilite", C_BOOL},
    {"objectifs", C_TEXT},
    {"programme", C_TEXT},
    {"prerequis", C_TEXT},
    {"bibliographie", C_TEXT},
    {"contacts", C_TEXT},
    {"informations_complementaires", C_TEXT},
};
static const struct col cours_cols[] = {
    {"code", C_CODE},
    {"libelle", C_TITLE},
    {"langue", C_LANG},
    {"s1", C_BOOL},
    {"s2", C_BOOL},
    {"ects", C_ECTS},
    {"vol", C_HOURS},
    {"ouvert_mobilite", C_BOOL},
    {"code_formation", C_REF},
    {"objectif", C_TEXT},
    {"description", C_TEXT},
};
static const struct col nomination_cols[] = {
    {"firstname", C_TITLE}, {"lastname", C_TITLE},     {"email", C_KEYEMAIL},
    {"year", C_YEAR},       {"birthdate", C_DATE},     {"esi", C_ESI},
    {"city", C_TEXT},       {"postalcode", C_TEXT},    {"street", C_TEXT},
    {"numstreet", C_TEXT},  {"mailreferent", C_EMAIL}, {"code_etablissement", C_HEI},
};

/* ---- writing ---- */

static PGresult *
db_run(struct import *im, const char *sql, int n, const char *const *params)
{
	return PQexecParams(im->db, sql, n, NULL, params, NULL, NULL, 0);
}

/* Reports a database refusal of the row; always 'r'. */
static char
db_reject(struct import *im, struct row *r, PGresult *res)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
	char why[512];

	snprintf(why, sizeof(why), "refused by the database: %s%s%s%s",
	         msg ? msg : PQresultErrorMessage(res), cons ? " (constraint " : "",
	         cons ? cons : "", cons ? ")" : "");
	import_reject(im, r, NULL, "%s", why);
	return 'r';
}

/* Looks up the id of a referenced row; false (and the line rejected) when
 * the query failed or found nothing. *id stays NULL for an empty reference. */
static bool
db_lookup(struct import *im, struct row *r, const char *sql, const char *const *params, int nparams,
          const char *col, const char *noun, char *id, size_t idlen, bool *isnull)
{
	PGresult *res;
	bool ok;

	*isnull = params[nparams - 1] == NULL;
	if (*isnull)
		return true;
	res = db_run(im, sql, nparams, params);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_reject(im, r, res);
		PQclear(res);
		return false;
	}
	ok = PQntuples(res) == 1;
	if (ok)
		snprintf(id, idlen, "%s", PQgetvalue(res, 0, 0));
	else
		import_reject(im, r, col, "unknown %s \"%s\" (import it first)", noun,
		              params[nparams - 1]);
	PQclear(res);
	return ok;
}

/* An upsert that RETURNS (xmax = 0): a row means inserted or updated, none
 * means the WHERE of DO UPDATE found nothing to change. */
static char
db_upsert(struct import *im, struct row *r, const char *sql, int n, const char *const *params)
{
	PGresult *res = db_run(im, sql, n, params);
	char out;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		out = db_reject(im, r, res);
	else if (PQntuples(res) == 0)
		out = 'n';
	else
		out = PQgetvalue(res, 0, 0)[0] == 't' ? 'i' : 'u';
	PQclear(res);
	return out;
}

static char
write_composante(struct import *im, struct row *r)
{
	char parent[24] = "";
	bool noparent;
	const char *look[2] = {im->local_hei, r->v[3]};
	const char *p[5];

	if (!db_lookup(im, r,
	               "SELECT id FROM smile.composante WHERE etablissement_id = $1 AND code = $2",
	               look, 2, "code_parent", "composante", parent, sizeof(parent), &noparent))
		return 'r';
	if (r->rejected)
		return 'r'; /* references checked, nothing to write */
	p[0] = im->local_hei;
	p[1] = r->v[0];
	p[2] = r->v[1];
	p[3] = r->v[2];
	p[4] = noparent ? NULL : parent;
	return db_upsert(
	    im, r,
	    "INSERT INTO smile.composante AS t (etablissement_id, code, names, abbreviation, "
	    "parent_id, source) VALUES ($1, $2, jsonb_build_array(jsonb_build_object('lang', "
	    "'fr', 'name', $3::text)), $4, $5, 'csv') "
	    "ON CONFLICT (etablissement_id, code) DO UPDATE SET names = EXCLUDED.names, "
	    "abbreviation = EXCLUDED.abbreviation, parent_id = EXCLUDED.parent_id, source = "
	    "EXCLUDED.source WHERE (t.names, t.abbreviation, t.parent_id, t.source) IS DISTINCT "
	    "FROM (EXCLUDED.names, EXCLUDED.abbreviation, EXCLUDED.parent_id, EXCLUDED.source) "
	    "RETURNING (xmax = 0)",
	    5, p);
}

static char
write_formation(struct import *im, struct row *r)
{
	char comp[24] = "";
	bool nocomp;
	const char *look[2] = {im->local_hei, r->v[3]};
	const char *p[13];

	if (!db_lookup(im, r,
	               "SELECT id FROM smile.composante WHERE etablissement_id = $1 AND code = $2",
	               look, 2, "code_composante", "composante", comp, sizeof(comp), &nocomp))
		return 'r';
	if (r->rejected)
		return 'r'; /* references checked, nothing to write */
	for (size_t i = 0; i < 13; i++)
		p[i] = r->v[i];
	p[3] = nocomp ? NULL : comp;
	return db_upsert(
	    im, r,
	    "INSERT INTO smile.formation AS t (code, title, abbreviation, composante_id, "
	    "study_level, language, open_to_mobility, objectives, programme, prerequisites, "
	    "bibliography, contacts, more_info, source) VALUES ($1, $2, $3, $4, $5, $6, "
	    "coalesce($7::boolean, true), $8, $9, $10, $11, $12, $13, 'csv') "
	    "ON CONFLICT (code) DO UPDATE SET title = EXCLUDED.title, abbreviation = "
	    "EXCLUDED.abbreviation, composante_id = EXCLUDED.composante_id, study_level = "
	    "EXCLUDED.study_level, language = EXCLUDED.language, open_to_mobility = "
	    "EXCLUDED.open_to_mobility, objectives = EXCLUDED.objectives, programme = "
	    "EXCLUDED.programme, prerequisites = EXCLUDED.prerequisites, bibliography = "
	    "EXCLUDED.bibliography, contacts = EXCLUDED.contacts, more_info = EXCLUDED.more_info, "
	    "source = EXCLUDED.source WHERE (t.title, t.abbreviation, t.composante_id, "
	    "t.study_level, t.language, t.open_to_mobility, t.objectives, t.programme, "
	    "t.prerequisites, t.bibliography, t.contacts, t.more_info, t.source) IS DISTINCT FROM "
	    "(EXCLUDED.title, EXCLUDED.abbreviation, EXCLUDED.composante_id, "
	    "EXCLUDED.study_level, EXCLUDED.language, EXCLUDED.open_to_mobility, "
	    "EXCLUDED.objectives, EXCLUDED.programme, EXCLUDED.prerequisites, "
	    "EXCLUDED.bibliography, EXCLUDED.contacts, EXCLUDED.more_info, EXCLUDED.source) "
	    "RETURNING (xmax = 0)",
	    13, p);
}

static char
write_cours(struct import *im, struct row *r)
{
	char form[24] = "";
	bool noform;
	const char *look[1] = {r->v[8]};
	const char *p[11];

	if (!db_lookup(im, r, "SELECT id FROM smile.formation WHERE code = $1", look, 1,
	               "code_formation", "formation", form, sizeof(form), &noform))
		return 'r';
	if (r->rejected)
		return 'r'; /* references checked, nothing to write */
	for (size_t i = 0; i < 11; i++)
		p[i] = r->v[i];
	p[8] = noform ? NULL : form;
	return db_upsert(
	    im, r,
	    "INSERT INTO smile.cours AS t (code, title, language, s1, s2, ects, hours, "
	    "open_to_mobility, formation_id, objectives, description, source) VALUES ($1, $2, $3, "
	    "coalesce($4::boolean, false), coalesce($5::boolean, false), $6, $7, "
	    "coalesce($8::boolean, true), $9, $10, $11, 'csv') "
	    "ON CONFLICT ((coalesce(formation_id, 0)), code) DO UPDATE SET title = EXCLUDED.title, "
	    "language = EXCLUDED.language, s1 = EXCLUDED.s1, s2 = EXCLUDED.s2, ects = "
	    "EXCLUDED.ects, hours = EXCLUDED.hours, open_to_mobility = EXCLUDED.open_to_mobility, "
	    "objectives = EXCLUDED.objectives, description = EXCLUDED.description, source = "
	    "EXCLUDED.source WHERE (t.title, t.language, t.s1, t.s2, t.ects, t.hours, "
	    "t.open_to_mobility, t.objectives, t.description, t.source) IS DISTINCT FROM "
	    "(EXCLUDED.title, EXCLUDED.language, EXCLUDED.s1, EXCLUDED.s2, EXCLUDED.ects, "
	    "EXCLUDED.hours, EXCLUDED.open_to_mobility, EXCLUDED.objectives, "
	    "EXCLUDED.description, EXCLUDED.source) RETURNING (xmax = 0)",
	    11, p);
}

/* Nominations have no unique key in the schema: SMILE de-duplicates them
 * by e-mail, so do we (under the import lock). A new one starts at the
 * first workflow step with status 1 (Nomination); an update leaves the
 * workflow alone. */
static char
write_nomination(struct import *im, struct row *r)
{
	char hei[24] = "", *id = NULL;
	bool nohei;
	const char *look[1] = {r->v[11]};
	const char *p[13], *email[1] = {r->v[2]};
	PGresult *res;
	char out;

	if (!db_lookup(im, r,
	               "SELECT id FROM smile.etablissement WHERE erasmus_code = $1 OR "
	               "schac_id = $1",
	               look, 1, "code_etablissement", "institution", hei, sizeof(hei), &nohei))
		return 'r';
	if (r->rejected)
		return 'r'; /* references checked, nothing to write */
	res = db_run(im,
	             "SELECT id FROM smile.inscription WHERE lower(email) = lower($1) "
	             "FOR UPDATE",
	             1, email);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		out = db_reject(im, r, res);
		PQclear(res);
		return out;
	}
	if (PQntuples(res) > 1) {
		import_reject(im, r, "email", "%s matches several registrations already", r->v[2]);
		PQclear(res);
		return 'r';
	}
	if (PQntuples(res) == 1)
		id = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	for (size_t i = 0; i < 11; i++)
		p[i] = r->v[i];
	p[11] = hei;
	p[12] = id;
	if (id == NULL)
		return db_upsert(
		    im, r,
		    "INSERT INTO smile.inscription (given_names, family_name, email, "
		    "academic_year, "
		    "birth_date, esi, city, postal_code, street, street_number, referent_email, "
		    "home_etablissement_id, step_id, status) VALUES ($1, $2, $3, $4, $5, $6, $7, "
		    "$8, $9, $10, $11, $12, (SELECT id FROM smile.step WHERE position = 1), 1) "
		    "RETURNING true",
		    12, p);
	out = db_upsert(im, r,
	                "UPDATE smile.inscription t SET given_names = $1, family_name = $2, "
	                "email = $3, academic_year = $4, birth_date = $5, esi = $6, city = $7, "
	                "postal_code = $8, street = $9, street_number = $10, referent_email = "
	                "$11, home_etablissement_id = $12 WHERE id = $13 AND (t.given_names, "
	                "t.family_name, t.email::text, t.academic_year, t.birth_date, "
	                "t.esi::text, t.city, t.postal_code, t.street, t.street_number, "
	                "t.referent_email::text, t.home_etablissement_id) IS DISTINCT FROM "
	                "($1::text, $2::text, $3::text, $4::smallint, $5::date, $6::text, "
	                "$7::text, $8::text, $9::text, $10::text, $11::text, $12::bigint) "
	                "RETURNING false",
	                13, p);
	free(id);
	return out;
}

const struct kind import_kinds[] = {
    {"composantes", composante_cols, sizeof(composante_cols) / sizeof(composante_cols[0]),
     write_composante},
    {"formations", formation_cols, sizeof(formation_cols) / sizeof(formation_cols[0]),
     write_formation},
    {"cours", cours_cols, sizeof(cours_cols) / sizeof(cours_cols[0]), write_cours},
    {"nominations", nomination_cols, sizeof(nomination_cols) / sizeof(nomination_cols[0]),
     write_nomination},
};

const size_t import_nkinds = sizeof(import_kinds) / sizeof(import_kinds[0]);
