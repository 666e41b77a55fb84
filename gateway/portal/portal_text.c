/*
 * portal_text.c - escaping for HTML, the Cookie header, CSV fields: the
 * three places where text from browsers, partners or the database meets
 * the portal's output.
 */
#include <string.h>

#include "portal_text.h"

int
portal_escape(struct buf *b, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *rep;

		switch (*s) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			continue;
		}
		if (buf_add(b, run, (size_t)(s - run)) == -1 || buf_addstr(b, rep) == -1)
			return -1;
		run = s + 1;
	}
	return buf_addstr(b, run);
}

bool
portal_cookie_parse(const char *header, const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name);

	for (const char *c = header; *c;) {
		size_t len;

		c += strspn(c, " \t;");
		len = strcspn(c, ";");
		if (len > n && strncmp(c, name, n) == 0 && c[n] == '=') {
			size_t vlen = len - n - 1;

			while (vlen > 0 && (c[n + vlen] == ' ' || c[n + vlen] == '\t'))
				vlen--;
			if (vlen >= outlen)
				return false;
			memcpy(out, c + n + 1, vlen);
			out[vlen] = '\0';
			return true;
		}
		c += len;
	}
	return false;
}

int
portal_csv_cell(struct buf *b, const char *v)
{
	bool quote = strpbrk(v, ",\"\r\n") != NULL;
	bool formula = v[0] != '\0' && strchr("=+-@\t\r", v[0]) != NULL;

	if (quote && buf_addstr(b, "\"") == -1)
		return -1;
	if (formula && buf_addstr(b, "'") == -1)
		return -1;
	for (const char *s = v; *s; s++)
		if (buf_add(b, s, 1) == -1 || (*s == '"' && buf_add(b, s, 1) == -1))
			return -1;
	return quote ? buf_addstr(b, "\"") : 0;
}
