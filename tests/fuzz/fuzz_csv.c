/*
 * fuzz_csv.c - libFuzzer target for the CSV reader behind `ewpctl import`
 * (files exported from other systems, so treated as peer input). Built by
 * `make fuzz`.
 *
 * Invariants beyond "no crash, no leak": an error always names a line and a
 * column within the input and keeps failing; every record starts on a line
 * that exists; fields hold no NUL and respect the limits. The first byte
 * chooses the separator, so ';', ',' and tab are all explored.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char seps[] = {',', ';', '\t', '|'};
	struct csv_limits lim = {.max_field = 256, .max_fields = 32, .max_records = 1000};
	struct csv c;
	unsigned long lines = 1;
	int rc;

	if (size == 0)
		return 0;
	for (size_t i = 1; i < size; i++)
		lines += data[i] == '\n';
	csv_init(&c, (const char *)data + 1, size - 1, seps[data[0] % 4], &lim);
	while ((rc = csv_next(&c)) == 1) {
		if (c.nfields == 0 || c.nfields > lim.max_fields || c.rec_line < 1 ||
		    c.rec_line > lines)
			abort();
		for (size_t i = 0; i < c.nfields; i++)
			if (strlen(c.fields[i]) > lim.max_field)
				abort();
	}
	if (rc == -1 && (c.err_line < 1 || c.err_line > lines || c.err_col < 1 ||
	                 strncmp(c.err, "line ", 5) != 0 || csv_next(&c) != -1))
		abort();
	csv_free(&c);
	return 0;
}
