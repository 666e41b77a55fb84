/*
 * xmalloc.h - allocation that never returns NULL.
 *
 * Running out of memory is fatal for the process (a worker is restarted by
 * the supervisor); callers never test for NULL.
 */
#ifndef XMALLOC_H
#define XMALLOC_H

#include <stddef.h>

#include "ewpd.h"

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Caller owns the result. */
char *xasprintf(const char *fmt, ...) EWP_PRINTF(1, 2);

#endif
