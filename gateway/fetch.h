/*
 * fetch.h - blocking download of a catalogue (https:// or file://).
 *
 * Used only where blocking is harmless: the supervisor process (which
 * serves no requests) and ewpctl. Conditional GET with ETag and
 * Last-Modified so that an unchanged catalogue costs one 304.
 */
#ifndef FETCH_H
#define FETCH_H

#include <stddef.h>

#include "buf.h"
#include "ewpd.h"

struct fetch_opts {
	const char *url;           /* https://... or file:///... */
	const char *ca_file;       /* NULL: system CA store */
	const char *etag;          /* from the last 200, or NULL */
	const char *last_modified; /* from the last 200, or NULL */
	long timeout_secs;
	size_t max_bytes;
};

enum fetch_status { FETCH_ERROR = -1, FETCH_OK = 0, FETCH_NOT_MODIFIED = 1 };

struct fetch_result {
	struct buf body;     /* the document on FETCH_OK */
	char *etag;          /* owned, may be NULL */
	char *last_modified; /* owned, may be NULL */
	long http_status;    /* 0 for file:// */
	char error[256];     /* why, on FETCH_ERROR */
};

/* Always initialises res; release it with fetch_result_free(). */
enum fetch_status fetch_url(const struct fetch_opts *o, struct fetch_result *res);
void fetch_result_free(struct fetch_result *res);

#endif
