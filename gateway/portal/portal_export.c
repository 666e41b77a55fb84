/*
 * portal_export.c - the lists of the portal as downloads: `?format=csv`
 * (RFC 4180, UTF-8 with a byte-order mark so spreadsheets read accents
 * right) and `?format=txt` (columns aligned for a terminal or an e-mail).
 *
 * A cell a spreadsheet would take for a formula (= + - @, tab, carriage
 * return first) is prefixed with a quote: partners' data must not run in
 * a user's spreadsheet. Text export replaces control characters so a
 * value cannot break the columns.
 */
#include <stdlib.h>
#include <string.h>

#include "portal.h"
#include "portal_text.h"
#include "xmalloc.h"

#define EXPORT_MAX (64 * 1024 * 1024) /* bytes of one download */

static int
export_csv(struct portal *p, const struct portal_rows *r, const struct portal_column *cols,
           size_t ncols, struct buf *b)
{
	if (buf_addstr(b, "\xef\xbb\xbf") == -1)
		return -1;
	for (size_t c = 0; c < ncols; c++)
		if ((c && buf_addstr(b, ",") == -1) ||
		    portal_csv_cell(b, T(p, cols[c].title_key)) == -1)
			return -1;
	if (buf_addstr(b, "\r\n") == -1)
		return -1;
	for (int i = 0; i < r->nrows; i++) {
		for (size_t c = 0; c < ncols; c++) {
			const char *v = portal_cell(r, i, cols[c].col);

			if ((c && buf_addstr(b, ",") == -1) || portal_csv_cell(b, v ? v : "") == -1)
				return -1;
		}
		if (buf_addstr(b, "\r\n") == -1)
			return -1;
	}
	return 0;
}

/* Characters (UTF-8 sequences) in s: the width of a column. */
static size_t
text_width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static int
text_cell(struct buf *b, const char *v, size_t width, bool last)
{
	size_t w = 0;

	for (const char *s = v; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char c = ch < 0x20 || ch == 0x7f ? ' ' : *s;

		if (buf_add(b, &c, 1) == -1)
			return -1;
		if ((ch & 0xc0) != 0x80)
			w++;
	}
	if (last)
		return 0;
	for (; w < width + 2; w++)
		if (buf_addstr(b, " ") == -1)
			return -1;
	return 0;
}

static int
export_text(struct portal *p, const struct portal_rows *r, const struct portal_column *cols,
            size_t ncols, struct buf *b)
{
	size_t *width = xcalloc(ncols, sizeof(*width));
	int rc = 0;

	for (size_t c = 0; c < ncols; c++) {
		width[c] = text_width(T(p, cols[c].title_key));
		for (int i = 0; i < r->nrows; i++) {
			const char *v = portal_cell(r, i, cols[c].col);
			size_t w = v ? text_width(v) : 0;

			if (w > width[c])
				width[c] = w;
		}
	}
	for (int i = -1; i < r->nrows && rc == 0; i++) {
		for (size_t c = 0; c < ncols && rc == 0; c++) {
			const char *v =
			    i < 0 ? T(p, cols[c].title_key) : portal_cell(r, i, cols[c].col);

			rc = text_cell(b, v ? v : "", width[c], c + 1 == ncols);
		}
		if (rc == 0)
			rc = buf_addstr(b, "\n");
	}
	free(width);
	return rc;
}

bool
portal_export(struct portal *p, const struct portal_rows *r, const struct portal_column *cols,
              size_t ncols, const char *name)
{
	const char *format = portal_param(p, "format");
	bool csv;
	struct buf b;
	char *file;
	int rc;

	if (format == NULL || format[0] == '\0')
		return false;
	csv = strcmp(format, "csv") == 0;
	if (!csv && strcmp(format, "txt") != 0) {
		portal_error(p, 400, T(p, "export.format"));
		return true;
	}
	buf_init(&b, EXPORT_MAX);
	rc = csv ? export_csv(p, r, cols, ncols, &b) : export_text(p, r, cols, ncols, &b);
	if (rc == -1) {
		buf_free(&b);
		portal_error(p, 500, T(p, "export.too_large"));
		return true;
	}
	file = xasprintf("%s.%s", name, csv ? "csv" : "txt");
	portal_download(p, csv ? "text/csv; charset=utf-8" : "text/plain; charset=utf-8", file,
	                b.data ? b.data : "", b.len);
	free(file);
	buf_free(&b);
	return true;
}
