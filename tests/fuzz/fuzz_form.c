/*
 * fuzz_form.c - libFuzzer target for the form parser (query strings and
 * POST bodies come straight from peers). Built by `make fuzz`.
 *
 * Invariants beyond "no crash, no leak": a refusal leaves an empty form
 * and says why; an accepted form has no NUL inside any name or value and
 * never more parameters than EWP_MAX_PARAMS.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct form f;
	char err[128] = "";

	if (form_parse((const char *)data, size, &f, err, sizeof(err)) == -1) {
		if (f.n != 0 || err[0] == '\0')
			abort();
		return 0;
	}
	if (f.n > EWP_MAX_PARAMS)
		abort();
	for (size_t i = 0; i < f.n; i++)
		if (strlen(f.params[i].name) > size || strlen(f.params[i].value) > size)
			abort();
	form_free(&f);
	return 0;
}
