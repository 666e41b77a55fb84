/*
 * json.h - writing JSON strings for PostgreSQL's jsonb.
 *
 * jsonb refuses invalid UTF-8 and the \u0000 escape, and what we log
 * comes from the network: every byte that is not part of a well-formed
 * UTF-8 sequence, and NUL, becomes U+FFFD, so the result is always
 * accepted.
 */
#ifndef JSON_H
#define JSON_H

#include <stddef.h>

#include "buf.h"
#include "ewpd.h"

/* "s" with JSON escapes; -1 when the buffer is full. */
int json_str(struct buf *b, const char *s) EWP_MUSTCHECK;
/* The same for len bytes that may hold NUL. */
int json_strn(struct buf *b, const char *s, size_t len) EWP_MUSTCHECK;

#endif
