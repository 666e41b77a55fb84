/* csv.c - strict RFC 4180 CSV reader (see csv.h). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "xmalloc.h"

#define CSV_DEF_FIELD   (1024 * 1024)
#define CSV_DEF_FIELDS  1000
#define CSV_DEF_RECORDS 1000000

void
csv_init(struct csv *c, const char *data, size_t len, char sep, const struct csv_limits *lim)
{
	memset(c, 0, sizeof(*c));
	c->data = data;
	c->len = len;
	c->sep = sep;
	c->lim.max_field = lim && lim->max_field ? lim->max_field : CSV_DEF_FIELD;
	c->lim.max_fields = lim && lim->max_fields ? lim->max_fields : CSV_DEF_FIELDS;
	c->lim.max_records = lim && lim->max_records ? lim->max_records : CSV_DEF_RECORDS;
	c->line = 1;
	c->col = 1;
	/* the text buffer holds one record: at most max_fields fields and NULs */
	buf_init(&c->text, SIZE_MAX / 2);
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		c->pos = 3;
}

void
csv_free(struct csv *c)
{
	free(c->fields);
	free(c->offs);
	buf_free(&c->text);
	c->fields = NULL;
	c->offs = NULL;
}

static int EWP_PRINTF(4, 5)
    csv_fail(struct csv *c, unsigned long line, unsigned long col, const char *fmt, ...)
{
	char why[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	c->err_line = line;
	c->err_col = col;
	snprintf(c->err, sizeof(c->err), "line %lu, column %lu: %s", line, col, why);
	c->pos = c->len;
	return -1;
}

/* Length of the valid UTF-8 sequence at p (1-4), 0 when invalid. Rejects
 * overlong forms, surrogates and code points above U+10FFFF. */
static size_t
csv_utf8_len(const unsigned char *p, size_t avail)
{
	size_t n;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		n = 2;
		cp = p[0] & 0x1F;
	} else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		n = 3;
		cp = p[0] & 0x0F;
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return n;
}

/* Appends one character (a whole UTF-8 sequence) of the field, or fails. */
static int
csv_take_char(struct csv *c, size_t field_start)
{
	const unsigned char *p = (const unsigned char *)c->data + c->pos;
	size_t n;

	if (p[0] == '\0')
		return csv_fail(c, c->line, c->col, "NUL byte");
	if ((n = csv_utf8_len(p, c->len - c->pos)) == 0)
		return csv_fail(c, c->line, c->col, "invalid UTF-8 byte 0x%02X", p[0]);
	if (c->text.len - field_start + n > c->lim.max_field)
		return csv_fail(c, c->line, c->col, "field longer than %zu bytes",
		                c->lim.max_field);
	if (buf_add(&c->text, p, n) == -1)
		return csv_fail(c, c->line, c->col, "record too large");
	c->pos += n;
	if (p[0] == '\n') {
		c->line++;
		c->col = 1;
	} else
		c->col++;
	return 0;
}

static int
csv_end_field(struct csv *c, size_t field_start)
{
	if (c->nfields == c->lim.max_fields)
		return csv_fail(c, c->line, c->col, "more than %zu fields in the record",
		                c->lim.max_fields);
	if (buf_add(&c->text, "", 1) == -1)
		return csv_fail(c, c->line, c->col, "record too large");
	if (c->nfields == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->offs = xreallocarray(c->offs, c->cap, sizeof(*c->offs));
		c->fields = xreallocarray(c->fields, c->cap, sizeof(*c->fields));
	}
	c->offs[c->nfields++] = field_start;
	return 0;
}

/* A quoted field, the opening quote at c->pos: up to the closing quote. */
static int
csv_quoted(struct csv *c, size_t field_start)
{
	unsigned long qline = c->line, qcol = c->col;

	c->pos++;
	c->col++;
	for (;;) {
		if (c->pos == c->len)
			return csv_fail(c, qline, qcol, "quoted field not closed before the end");
		if (c->data[c->pos] == '"') {
			if (c->pos + 1 < c->len && c->data[c->pos + 1] == '"') {
				if (c->text.len - field_start + 1 > c->lim.max_field)
					return csv_fail(c, c->line, c->col,
					                "field longer than %zu bytes",
					                c->lim.max_field);
				if (buf_add(&c->text, "\"", 1) == -1)
					return csv_fail(c, c->line, c->col, "record too large");
				c->pos += 2;
				c->col += 2;
				continue;
			}
			c->pos++;
			c->col++;
			return 0;
		}
		if (csv_take_char(c, field_start) == -1)
			return -1;
	}
}

int
csv_next(struct csv *c)
{
	if (c->err[0] != '\0')
		return -1;
	c->nfields = 0;
	buf_reset(&c->text);
	if (c->pos == c->len)
		return 0;
	if (c->nrecords == c->lim.max_records)
		return csv_fail(c, c->line, c->col, "more than %zu records", c->lim.max_records);
	c->rec_line = c->line;
	for (;;) {
		size_t start = c->text.len;
		char ch;

		if (c->pos < c->len && c->data[c->pos] == '"') {
			if (csv_quoted(c, start) == -1)
				return -1;
			/* after the closing quote: a separator, a line end or the end */
			if (c->pos < c->len && c->data[c->pos] != c->sep &&
			    c->data[c->pos] != '\n' &&
			    !(c->data[c->pos] == '\r' && c->pos + 1 < c->len &&
			      c->data[c->pos + 1] == '\n'))
				return csv_fail(c, c->line, c->col,
				                "unexpected character after a closing quote");
		} else {
			while (c->pos < c->len && c->data[c->pos] != c->sep &&
			       c->data[c->pos] != '\n' && c->data[c->pos] != '\r') {
				if (c->data[c->pos] == '"')
					return csv_fail(c, c->line, c->col,
					                "quote inside an unquoted field (quote the "
					                "whole field and double the quote)");
				if (csv_take_char(c, start) == -1)
					return -1;
			}
		}
		if (csv_end_field(c, start) == -1)
			return -1;
		if (c->pos == c->len)
			break;
		ch = c->data[c->pos];
		if (ch == c->sep) {
			c->pos++;
			c->col++;
			continue;
		}
		if (ch == '\r') {
			if (c->pos + 1 == c->len || c->data[c->pos + 1] != '\n')
				return csv_fail(c, c->line, c->col,
				                "carriage return not followed by a line feed");
			c->pos++;
		}
		c->pos++; /* the line feed */
		c->line++;
		c->col = 1;
		break;
	}
	for (size_t i = 0; i < c->nfields; i++)
		c->fields[i] = c->text.data + c->offs[i];
	c->nrecords++;
	return 1;
}
