/*
 * api_omobility_las.h - what the endpoints of the Outgoing Mobility
 * Learning Agreements API (api_omobility_las.c: get, index, stats and the
 * manifest entry; api_omobility_las_update.c: update) share.
 */
#ifndef API_OMOBILITY_LAS_H
#define API_OMOBILITY_LAS_H

struct req;

#define LAS_BASE_NS                                                                                \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-las/blob/stable-v1/"

/* The caller's HEIs as a JSON array of strings (caller frees), NULL when
 * too large; the SQL tests visibility with `$n::jsonb ? receiving_hei_id`. */
char *las_callers_json(const struct req *rq);

#endif
