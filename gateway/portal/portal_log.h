/*
 * portal_log.h - what the EWP log pages (portal_log.c) and the failed-jobs
 * pages (portal_jobs.c) share: links that carry the filters of a list,
 * the checks of list filters, and text made safe to show.
 */
#ifndef PORTAL_LOG_H
#define PORTAL_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "portal.h"

#define PLOG_PAGE_ROWS   100   /* rows of a list page */
#define PLOG_MAX_PAGE    10000 /* page numbers beyond are refused */
#define PLOG_EXPORT_ROWS 10000 /* rows of an export at most */

/* Appends "name=value" (percent-encoded, '&' before all but the first)
 * to a query string when value is neither NULL nor empty. */
void plog_qs_add(struct buf *qs, const char *name, const char *value);

/* Whether format is "csv" or "txt" (NULL: the HTML page). */
bool plog_format_ok(const char *format);

/*
 * A copy of len bytes that is valid UTF-8 without control characters
 * (tab, LF kept; CR dropped): invalid sequences and other controls become
 * U+FFFD. Caller frees.
 */
char *plog_safe_text(const char *s, size_t len);

/* Every cell of r through plog_safe_text (what partners sent may hold
 * control characters). */
void plog_clean_rows(struct portal_rows *r);

/* Whether s is NULL or "", i.e. a filter not given. */
bool plog_blank(const char *s);

/* A filter value: NULL when blank; false (with a 400 sent) when it is
 * longer than max or holds control characters. */
bool plog_text_param(struct portal *p, const char *name, size_t max, const char **out);

/* ?page=N: 1 when absent; -1 (with a 400 sent) when not 1..PLOG_MAX_PAGE. */
long plog_page_param(struct portal *p);

/* Previous / next links of a list page; qs holds the filters. */
void plog_pager(struct portal *p, const char *path, const char *qs, long page, bool more);

#endif
