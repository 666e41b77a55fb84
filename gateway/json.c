/*
 * json.c - JSON string escaping that jsonb always accepts.
 */
#include <stdio.h>
#include <string.h>

#include "json.h"

#define JSON_REPLACEMENT "\\ufffd"

/* Length of the well-formed UTF-8 sequence at p (at most n bytes), or 0. */
static size_t
json_utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	/* overlong forms, UTF-16 surrogates and code points past U+10FFFF */
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;
	return len;
}

int
json_strn(struct buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	if (buf_add(b, "\"", 1) == -1)
		return -1;
	while (i < len) {
		size_t run = i, n;
		int rc = 0;

		/* copy the longest stretch that needs no escape at once */
		while (run < len && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' &&
		       p[run] != '\\')
			run++;
		if (run > i && buf_add(b, s + i, run - i) == -1)
			return -1;
		if ((i = run) == len)
			break;
		if (p[i] == '"' || p[i] == '\\') {
			rc = buf_printf(b, "\\%c", p[i]);
			n = 1;
		} else if (p[i] == 0) {
			rc = buf_addstr(b, JSON_REPLACEMENT);
			n = 1;
		} else if (p[i] < 0x20) {
			rc = buf_printf(b, "\\u%04x", p[i]);
			n = 1;
		} else if ((n = json_utf8_len(p + i, len - i)) == 0) {
			rc = buf_addstr(b, JSON_REPLACEMENT);
			n = 1;
		} else {
			rc = buf_add(b, s + i, n);
		}
		if (rc == -1)
			return -1;
		i += n;
	}
	return buf_add(b, "\"", 1);
}

int
json_str(struct buf *b, const char *s)
{
	return json_strn(b, s, strlen(s));
}
