/*
 * fuzz_portal.c - libFuzzer target for the portal's text handling: the
 * Cookie header browsers send, and the HTML and CSV escaping applied to
 * every value partners and users put in front of staff.
 *
 * Input: one selector byte, then the text (NUL bytes end it, as in the C
 * strings these functions receive). Invariants:
 *   - escaped HTML holds no < > " ' and no '&' that does not start one of
 *     the five entities, and decodes back to the input;
 *   - a cookie value found is a substring of the header without ';' and
 *     fits the buffer;
 *   - a CSV field is quoted exactly when it must be, with every inner
 *     quote doubled, and never starts with a formula character.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "portal/portal_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_escape(const char *s)
{
	struct buf b, back;

	buf_init(&b, 16 * 1024 * 1024);
	buf_init(&back, 16 * 1024 * 1024);
	if (portal_escape(&b, s) == -1)
		abort();
	for (size_t i = 0; i < b.len; i++) {
		static const char *const ent[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
		static const char dec[] = "&<>\"'";
		char c = b.data[i];
		size_t k;

		if (c == '<' || c == '>' || c == '"' || c == '\'')
			abort();
		if (c != '&') {
			if (buf_add(&back, &c, 1) == -1)
				abort();
			continue;
		}
		for (k = 0; k < 5; k++)
			if (strncmp(b.data + i, ent[k], strlen(ent[k])) == 0)
				break;
		if (k == 5 || buf_add(&back, &dec[k], 1) == -1)
			abort();
		i += strlen(ent[k]) - 1;
	}
	if (back.len != strlen(s) || memcmp(back.data ? back.data : "", s, back.len) != 0)
		abort();
	buf_free(&b);
	buf_free(&back);
}

static void
check_cookie(const char *header)
{
	char out[64];
	static const char *const names[] = {"ewp-session", "__Host-ewp-session", "ewp-lang", "a"};

	for (size_t i = 0; i < 4; i++) {
		if (!portal_cookie_parse(header, names[i], out, sizeof(out)))
			continue;
		if (strlen(out) >= sizeof(out) || strchr(out, ';') || strstr(header, out) == NULL)
			abort();
	}
}

static void
check_csv(const char *v)
{
	struct buf b;
	bool must_quote = strpbrk(v, ",\"\r\n") != NULL;
	size_t start;

	buf_init(&b, 16 * 1024 * 1024);
	if (portal_csv_cell(&b, v) == -1)
		abort();
	if (must_quote != (b.len > 0 && b.data[0] == '"'))
		abort();
	start = must_quote ? 1 : 0;
	if (b.len > start && strchr("=+-@\t\r", b.data[start]) && b.data[start] != '\0')
		abort();
	if (must_quote) {
		/* inside the quotes, quotes come in pairs */
		for (size_t i = 1; i + 1 < b.len; i++)
			if (b.data[i] == '"') {
				if (b.data[i + 1] != '"')
					abort();
				i++;
			}
		if (b.data[b.len - 1] != '"')
			abort();
	}
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size == 0)
		return 0;
	s = malloc(size);
	if (s == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		check_escape(s);
		break;
	case 1:
		check_cookie(s);
		break;
	default:
		check_csv(s);
		break;
	}
	free(s);
	return 0;
}
