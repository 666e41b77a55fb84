/*
 * api_omobilities.h - what the Outgoing Mobilities v3 files share
 * (api_omobilities.c: get, index and the manifest entry;
 * api_omobilities_update.c: update).
 */
#ifndef API_OMOBILITIES_H
#define API_OMOBILITIES_H

#include "api.h"
#include "ewpd.h"

#define OMOB_ENTRY_NS                                                                              \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/"       \
	"manifest-entry.xsd"

/* max-omobility-ids: distinct omobility_id values one get may ask for. */
#define OMOB_MAX_IDS 100

/* The caller's HEIs as a text[] literal into *out (caller frees); -1: too large. */
int api_omobilities_callers(const struct req *rq, char **out) EWP_MUSTCHECK;

/* Manifest writer of the endpoints listed in another entry's element: nothing. */
int api_omobilities_no_manifest(const struct api_entry *e, const struct conf *c, struct buf *out);

#endif
