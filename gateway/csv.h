/*
 * csv.h - strict RFC 4180 CSV reader over a buffer in memory.
 *
 * Quoted fields (with doubled quotes, separators and line breaks inside),
 * CRLF or LF line ends, a configurable one-byte separator (SMILE exports
 * often use ';'), an optional UTF-8 BOM. Input must be valid UTF-8 without
 * NUL bytes. Anything else stops the reader with an error that names the
 * line and column (columns count characters, from 1), because a CSV file
 * cannot be resynchronised reliably after a syntax error.
 */
#ifndef CSV_H
#define CSV_H

#include <stddef.h>

#include "buf.h"

struct csv_limits {
	size_t max_field;   /* bytes in one field */
	size_t max_fields;  /* fields in one record */
	size_t max_records; /* records in the input, header included */
};

struct csv {
	const char *data;
	size_t len, pos;
	char sep;
	struct csv_limits lim;
	unsigned long line, col; /* position of the next byte to read */
	size_t nrecords;
	/* the current record: fields point into `text`, valid until the next call */
	unsigned long rec_line; /* line where the record starts */
	size_t nfields;
	const char **fields;
	size_t *offs;
	size_t cap;
	struct buf text;
	/* the error, once csv_next returned -1 */
	unsigned long err_line, err_col;
	char err[192]; /* "line L, column C: why" */
};

/* Default limits: 1 MiB per field, 1,000 fields, 1,000,000 records. */
void csv_init(struct csv *c, const char *data, size_t len, char sep, const struct csv_limits *lim);
/* 1 with a record in c->fields / c->nfields, 0 at the end, -1 on error
 * (then every later call returns -1 too). */
int csv_next(struct csv *c);
void csv_free(struct csv *c);

#endif
