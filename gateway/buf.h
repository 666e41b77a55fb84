/*
 * buf.h - growable byte buffer with a ceiling fixed at init.
 *
 * Appends fail (return -1, buffer unchanged) once the ceiling would be
 * passed; data is always NUL-terminated past len for convenience.
 */
#ifndef BUF_H
#define BUF_H

#include <stddef.h>

#include "ewpd.h"

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

void buf_init(struct buf *b, size_t max);
int buf_add(struct buf *b, const void *data, size_t len) EWP_MUSTCHECK;
int buf_addstr(struct buf *b, const char *s) EWP_MUSTCHECK;
int buf_printf(struct buf *b, const char *fmt, ...) EWP_PRINTF(2, 3) EWP_MUSTCHECK;
/* Returns a NUL-terminated view ("" when empty); valid until the next change. */
const char *buf_cstr(struct buf *b);
/* Hands the data to the caller (who frees it) and resets the buffer. */
char *buf_take(struct buf *b);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
