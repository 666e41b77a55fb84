/*
 * ctl_import_check.c - the value rules of SMILE's CSV imports, the same
 * as the domains and CHECKs of sql/0001_smile_core.sql, so that every bad
 * value of a file is reported with its line before anything is written.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl_import.h"
#include "xmalloc.h"

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
const char *
import_check_value(enum ctype t, const char *v, char **out)
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
void
import_reject(struct import *im, struct row *r, const char *col, const char *fmt, ...)
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
