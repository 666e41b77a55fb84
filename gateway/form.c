/* form.c - strict application/x-www-form-urlencoded parser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"
#include "xmalloc.h"

static int
form_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes one component; NULL when it holds a bad escape or a NUL byte. */
static char *
form_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi, lo;
			if (len - i < 3) { /* '%' needs two hex digits after it */
				free(out);
				return NULL;
			}
			hi = form_hexval(s[i + 1]);
			lo = form_hexval(s[i + 2]);
			if (hi < 0 || lo < 0) {
				free(out);
				return NULL;
			}
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0') {
			free(out);
			return NULL;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return out;
}

static int
form_add(struct form *f, const char *pair, size_t len, char *err, size_t errlen)
{
	const char *eq = memchr(pair, '=', len);
	size_t nlen = eq ? (size_t)(eq - pair) : len;
	char *name, *value;

	if (f->n == EWP_MAX_PARAMS) {
		snprintf(err, errlen, "more than %d parameters", EWP_MAX_PARAMS);
		return -1;
	}
	name = form_decode(pair, nlen);
	value = eq ? form_decode(eq + 1, len - nlen - 1) : xstrdup("");
	if (name == NULL || value == NULL) {
		snprintf(err, errlen, "malformed percent-encoding in parameter %zu", f->n + 1);
		free(name);
		free(value);
		return -1;
	}
	f->params = xreallocarray(f->params, f->n + 1, sizeof(*f->params));
	f->params[f->n].name = name;
	f->params[f->n].value = value;
	f->n++;
	return 0;
}

int
form_parse(const char *data, size_t len, struct form *f, char *err, size_t errlen)
{
	size_t start = 0;

	f->params = NULL;
	f->n = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && data[i] != '&')
			continue;
		if (i > start && form_add(f, data + start, i - start, err, errlen) == -1) {
			form_free(f);
			return -1;
		}
		start = i + 1;
	}
	return 0;
}

void
form_free(struct form *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->params[i].name);
		free(f->params[i].value);
	}
	free(f->params);
	f->params = NULL;
	f->n = 0;
}

size_t
form_count(const struct form *f, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->params[i].name, name) == 0)
			n++;
	return n;
}

const char *
form_get(const struct form *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->params[i].name, name) == 0)
			return f->params[i].value;
	return NULL;
}
