/*
 * form.h - strict application/x-www-form-urlencoded parser.
 *
 * EWP parameters come in the query string (GET) or the body (POST), with
 * repeated names for lists. Names are case-sensitive; order and duplicates
 * are kept. Malformed percent-escapes and NUL bytes are refused rather
 * than guessed at.
 */
#ifndef FORM_H
#define FORM_H

#include <stddef.h>

#include "ewpd.h"

struct form_param {
	char *name;
	char *value;
};

struct form {
	struct form_param *params;
	size_t n;
};

/* Parses data into f (always initialised). -1 with a reason in err. */
int form_parse(const char *data, size_t len, struct form *f, char *err,
               size_t errlen) EWP_MUSTCHECK;
void form_free(struct form *f);
size_t form_count(const struct form *f, const char *name);
/* First value of name, or NULL; lent until form_free(). */
const char *form_get(const struct form *f, const char *name);

#endif
