/*
 * fuzz_json.c - libFuzzer target for the JSON strings of the message log
 * (json.c), written from whatever bytes partners send. Built by
 * `make fuzz`.
 *
 * Invariants: the output is one JSON string whose decoded value is
 * well-formed UTF-8 without NUL (what jsonb accepts), and an input that
 * already is such text comes back unchanged.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Appends code point cp as UTF-8. */
static size_t
put_utf8(unsigned cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	out[0] = (unsigned char)(0xe0 | cp >> 12);
	out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	out[2] = (unsigned char)(0x80 | (cp & 0x3f));
	return 3;
}

/* Strict UTF-8 check (no overlongs, surrogates, > U+10FFFF, NUL). */
static bool
utf8_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i];
		size_t len = c < 0x80                 ? 1
		             : c >= 0xc2 && c <= 0xdf ? 2
		             : c >= 0xe0 && c <= 0xef ? 3
		             : c >= 0xf0 && c <= 0xf4 ? 4
		                                      : 0;

		if (c == 0 || len == 0 || i + len > n)
			return false;
		for (size_t k = 1; k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
		if ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] >= 0xa0) ||
		    (c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] >= 0x90))
			return false;
		i += len;
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf b;
	const char *s;
	unsigned char *dec;
	size_t n = 0, len;

	buf_init(&b, 16 * size + 16);
	if (json_strn(&b, (const char *)data, size) == -1)
		abort(); /* 16 bytes per input byte are always enough */
	s = buf_cstr(&b);
	len = b.len;
	if (len < 2 || s[0] != '"' || s[len - 1] != '"')
		abort();
	dec = malloc(3 * len + 1);
	for (size_t i = 1; i < len - 1; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == '"')
			abort();
		if (c != '\\') {
			dec[n++] = c;
			continue;
		}
		c = (unsigned char)s[++i];
		if (c == '"' || c == '\\') {
			dec[n++] = c;
		} else if (c == 'u' && i + 4 < len - 1) {
			unsigned cp = 0;

			for (int k = 1; k <= 4; k++) {
				int v = hexval(s[i + k]);

				if (v < 0)
					abort();
				cp = cp << 4 | (unsigned)v;
			}
			if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
				abort();
			n += put_utf8(cp, dec + n);
			i += 4;
		} else {
			abort();
		}
	}
	if (!utf8_ok(dec, n))
		abort();
	if (utf8_ok(data, size) && (n != size || memcmp(dec, data, size) != 0))
		abort();
	free(dec);
	buf_free(&b);
	return 0;
}
