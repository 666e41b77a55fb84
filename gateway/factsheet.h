/*
 * factsheet.h - the Mobility Factsheet of our HEI, as configured.
 *
 * [ewp] factsheet names an XML file written by the administrator: a
 * complete Factsheet v1 <factsheet-response> holding exactly one
 * <factsheet>, whose <hei-id> is [ewp] hei_id. It is checked against
 * [ewp] schema_dir/factsheet-response.xsd (a document valid there is
 * valid against the official response.xsd) and kept in memory as the
 * response to send, comments and indentation removed. Loaded with the
 * other assets of a configuration (start-up, ewpd -n, SIGHUP), so a bad
 * file refuses the reload and the running factsheet stays. Immutable once
 * loaded; one per worker.
 */
#ifndef FACTSHEET_H
#define FACTSHEET_H

#include <stddef.h>

#include "conf.h"

#define FACTSHEET_NS                                                                               \
	"https://github.com/erasmus-without-paper/ewp-specs-api-factsheet/tree/stable-v1"
#define FACTSHEET_SCHEMA "factsheet-response.xsd"

struct factsheet {
	char *xml; /* the whole response with our factsheet, UTF-8 */
	size_t len;
};

/*
 * Loads c->factsheet (which must be set). NULL with "FILE: why" (or
 * "FILE: line N: why") in err when it cannot be read, is not well-formed,
 * does not match the schema, or is not one factsheet for c->hei_id.
 */
struct factsheet *factsheet_load(const struct conf *c, char *err, size_t errlen);
void factsheet_free(struct factsheet *f);

#endif
