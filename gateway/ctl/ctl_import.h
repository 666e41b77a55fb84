/*
 * ctl_import.h - what the parts of `ewpctl import` share: the column
 * types and tables of SMILE's CSV formats, a checked row, the import under
 * way. ctl_import.c reads and checks the file and runs the transaction,
 * ctl_import_check.c holds the value rules, ctl_import_write.c the
 * statements of each kind.
 */
#ifndef CTL_IMPORT_H
#define CTL_IMPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "ewpd.h"

#define IMPORT_MAX_COLS 16

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

/* The kinds of file, with their columns in SMILE's order and their writer. */
extern const struct kind import_kinds[];
extern const size_t import_nkinds;

/* NULL with the normalised value in *out (NULL for SQL NULL), or why v is refused. */
const char *import_check_value(enum ctype t, const char *v, char **out);
/* "FILE:LINE: column X: why" on stderr; the line will not be imported. */
void import_reject(struct import *im, struct row *r, const char *col, const char *fmt, ...)
    EWP_PRINTF(4, 5);

#endif
