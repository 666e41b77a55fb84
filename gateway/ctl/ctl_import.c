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
#include "xmalloc.h"

#define IMPORT_MAX_BYTES (64 * 1024 * 1024)
#define IMPORT_MAX_COLS  16
/* pg_advisory_xact_lock key: one import at a time per database, so that
 * two runs cannot both insert the same new nomination */
#define IMPORT_LOCK "SELECT pg_advisory_xact_lock(4242002)"

enum ctype {
	C_TEXT,     /* free text, NULL when empty */
	C_TITLE,    /* required, not blank */
	C_CODE,     /* required smile.code */
	C_REF,      /* optional code of another row (looked up in the database) */
	C_LANG,     /* optional BCP 47 tag */
	C_BOOL,     /* optional boolean, column default when empty */
	C_ECTS,     /* optional numeric(5,1) >= 0 */
	C_HOURS,    /* optional numeric(6,2) >= 0 */
	C_LEVEL,    /* optional EQF level 0-8 */
	C_EMAIL,    /* optional e-mail */
	C_KEYEMAIL, /* required e-mail */
	C_YEAR,     /* required academic year 2000-2100 */
	C_DATE,     /* optional d/m/Y date (or ISO), from 1900 */
	C_ESI,      /* optional European Student Identifier */
	C_HEI,      /* required Erasmus code or SCHAC id of a known institution */
};

struct col {
	const char *name;
	enum ctype type;
};

struct row {
	unsigned long line;
	char *v[IMPORT_MAX_COLS]; /* normalised values in kind order; NULL = SQL NULL */
	bool rejected;
};

struct import;
struct kind {
	const char *name;
	const struct col *cols;
	size_t ncols;
	/* 'i' inserted, 'u' updated, 'n' unchanged, 'r' rejected (reported) */
	char (*write)(struct import *im, struct row *r);
};

struct import {
	const char *file;
	const struct kind *kind;
	PGconn *db;
	char local_hei[24]; /* id of our etablissement, for composantes */
	size_t rejected_lines;
};

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

/* ---- value checks: the rules of sql/0001_smile_core.sql's domains ---- */

static bool
is_code(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 64 || v[0] == ' ' || v[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7E)
			return false;
	return true;
}

static bool
is_lang(const char *v)
{
	size_t i = 0, n;

	for (n = 0; isalpha((unsigned char)v[i]) && v[i] < 0x7F; i++)
		n++;
	if (n < 2 || n > 8)
		return false;
	while (v[i] == '-') {
		i++;
		for (n = 0; isalnum((unsigned char)v[i]) && v[i] < 0x7F; i++)
			n++;
		if (n < 1 || n > 8)
			return false;
	}
	return v[i] == '\0';
}

static bool
is_email(const char *v)
{
	const char *at = strchr(v, '@');

	if (strlen(v) > 254 || at == NULL || at == v || at[1] == '\0' || strchr(at + 1, '@'))
		return false;
	for (const char *p = v; *p; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return false;
	return true;
}

static bool
is_esi(const char *v)
{
	static const char prefix[] = "urn:schac:personalUniqueCode:";
	const char *p = v + sizeof(prefix) - 1;
	size_t n = 0;

	if (strlen(v) > 255 || strncasecmp(v, prefix, sizeof(prefix) - 1) != 0)
		return false;
	while (isalpha((unsigned char)p[n]) && p[n] < 0x7F)
		n++;
	if (n < 2 || n > 3 || p[n] != ':' || p[n + 1] == '\0')
		return false;
	for (p += n + 1; *p; p++)
		if (*p < '!' || *p > '~')
			return false;
	return true;
}

/* "oui"/"non" and friends, as spreadsheets write them. */
static const char *
parse_bool(const char *v)
{
	static const char *const yes[] = {"1", "t", "true", "o", "oui", "y", "yes", "vrai", "x"};
	static const char *const no[] = {"0", "f", "false", "n", "non", "no", "faux"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (strcasecmp(v, yes[i]) == 0)
			return "true";
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (strcasecmp(v, no[i]) == 0)
			return "false";
	return NULL;
}

/* Non-negative decimal with '.' or ',' (French exports) and at most
 * `ints` + `fracs` digits, as numeric(p,s) would hold it without rounding. */
static char *
parse_decimal(const char *v, int ints, int fracs)
{
	int ni = 0, nf = 0;
	const char *p = v;
	char *out;

	while (*p >= '0' && *p <= '9') {
		p++;
		ni++;
	}
	if (*p == '.' || *p == ',') {
		for (p++; *p >= '0' && *p <= '9'; p++)
			nf++;
		if (nf == 0)
			return NULL;
	}
	if (*p != '\0' || ni == 0 || ni > ints || nf > fracs)
		return NULL;
	out = xstrdup(v);
	if ((p = strchr(out, ',')) != NULL)
		out[p - out] = '.';
	return out;
}

static bool
leap(long y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* d/m/Y (SMILE's format) or Y-m-d; an ISO date, or NULL when not a date. */
static char *
parse_date(const char *v)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	long part[3] = {0, 0, 0};
	int len[3] = {0, 0, 0}, k = 0;
	char sep = strchr(v, '/') ? '/' : '-';
	long d, m, y;

	for (const char *p = v; *p; p++) {
		if (*p == sep && k < 2) {
			k++;
		} else if (*p >= '0' && *p <= '9' && len[k] < 4) {
			part[k] = part[k] * 10 + (*p - '0');
			len[k]++;
		} else
			return NULL;
	}
	if (k != 2)
		return NULL;
	if (sep == '/' && len[0] <= 2 && len[1] <= 2 && len[2] == 4 && len[0] && len[1]) {
		d = part[0];
		m = part[1];
		y = part[2];
	} else if (sep == '-' && len[0] == 4 && len[1] == 2 && len[2] == 2) {
		y = part[0];
		m = part[1];
		d = part[2];
	} else
		return NULL;
	if (y < 1900 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && leap(y) ? 1 : 0))
		return NULL;
	return xasprintf("%04ld-%02ld-%02ld", y, m, d);
}

/*
 * Checks one value; NULL when valid, with the normalised value (or NULL
 * for SQL NULL) in *out, else the reason.
 */
static const char *
check_value(enum ctype t, const char *v, char **out)
{
	*out = NULL;
	if (*v == '\0') {
		switch (t) {
		case C_TITLE:
		case C_CODE:
		case C_KEYEMAIL:
		case C_YEAR:
		case C_HEI:
			return "required, found an empty value";
		default:
			return NULL;
		}
	}
	switch (t) {
	case C_TEXT:
	case C_TITLE:
	case C_HEI:
		break;
	case C_CODE:
	case C_REF:
		if (!is_code(v))
			return "not a code (1-64 printable ASCII characters)";
		break;
	case C_LANG:
		if (!is_lang(v))
			return "not a language tag (such as fr, en, en-GB)";
		break;
	case C_BOOL:
		if ((v = parse_bool(v)) == NULL)
			return "not a boolean (1/0, oui/non, true/false)";
		break;
	case C_ECTS:
		if ((*out = parse_decimal(v, 4, 1)) == NULL)
			return "not a number of credits (0 to 9999.9, one decimal at most)";
		return NULL;
	case C_HOURS:
		if ((*out = parse_decimal(v, 4, 2)) == NULL)
			return "not a number of hours (0 to 9999.99, two decimals at most)";
		return NULL;
	case C_LEVEL:
		if (v[0] < '0' || v[0] > '8' || v[1] != '\0')
			return "not a study level (0 to 8)";
		break;
	case C_EMAIL:
	case C_KEYEMAIL:
		if (!is_email(v))
			return "not an e-mail address";
		break;
	case C_YEAR:
		if (strlen(v) != 4 || strspn(v, "0123456789") != 4 || strcmp(v, "2000") < 0 ||
		    strcmp(v, "2100") > 0)
			return "not an academic year (2000 to 2100)";
		break;
	case C_DATE:
		if ((*out = parse_date(v)) == NULL)
			return "not a date (dd/mm/yyyy, from 1900)";
		return NULL;
	case C_ESI:
		if (!is_esi(v))
			return "not an ESI (urn:schac:personalUniqueCode:<country>:...)";
		break;
	}
	*out = xstrdup(v);
	return NULL;
}

/* "FILE:LINE: column X: why" on stderr; the line will not be imported. */
static void EWP_PRINTF(4, 5)
    reject(struct import *im, struct row *r, const char *col, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%lu: ", im->file, r->line);
	if (col != NULL)
		fprintf(stderr, "column %s: ", col);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (!r->rejected)
		im->rejected_lines++;
	r->rejected = true;
}

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
		const char *why = check_value(col->type, v, &r->v[map[i]]);
		if (why != NULL)
			reject(im, r, col->name, "%s", why);
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
			reject(im, &rows[k[i].idx], NULL,
			       "same key as line %lu (a file may hold each row once)",
			       rows[k[first].idx].line);
		}
	}
	for (size_t i = 0; i < m; i++)
		free(k[i].key);
	free(k);
}

/* ---- writing ---- */

static PGresult *
db_run(struct import *im, const char *sql, int n, const char *const *params)
{
	return PQexecParams(im->db, sql, n, NULL, params, NULL, NULL, 0);
}

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
	reject(im, r, NULL, "%s", why);
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
		reject(im, r, col, "unknown %s \"%s\" (import it first)", noun,
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
		reject(im, r, "email", "%s matches several registrations already", r->v[2]);
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

static const struct kind kinds[] = {
    {"composantes", composante_cols, sizeof(composante_cols) / sizeof(composante_cols[0]),
     write_composante},
    {"formations", formation_cols, sizeof(formation_cols) / sizeof(formation_cols[0]),
     write_formation},
    {"cours", cours_cols, sizeof(cours_cols) / sizeof(cours_cols[0]), write_cours},
    {"nominations", nomination_cols, sizeof(nomination_cols) / sizeof(nomination_cols[0]),
     write_nomination},
};

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
			reject(im, r, NULL, "%zu fields, expected %zu as in the header", c.nfields,
			       im->kind->ncols);
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
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		if (strcmp(pos[0], kinds[k].name) == 0)
			im.kind = &kinds[k];
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
