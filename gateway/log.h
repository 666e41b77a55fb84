/*
 * log.h - leveled logging to stderr.
 *
 * One line per event: time, level, process tag, message. log_warn appends
 * strerror(errno), log_warnx does not (the OpenBSD convention). fatal()
 * is for start-up and broken invariants only, never for peer input.
 */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>

#include "ewpd.h"

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_init(enum log_level level, const char *tag);
void log_set_level(enum log_level level);
void log_set_tag(const char *tag);
/* Parses "error", "warn", "info", "debug"; -1 when unknown. */
int log_level_parse(const char *name, enum log_level *out) EWP_MUSTCHECK;
bool log_enabled(enum log_level level);

void log_warn(const char *fmt, ...) EWP_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) EWP_PRINTF(1, 2);
void log_info(const char *fmt, ...) EWP_PRINTF(1, 2);
void log_debug(const char *fmt, ...) EWP_PRINTF(1, 2);
void log_error(const char *fmt, ...) EWP_PRINTF(1, 2);
void fatal(const char *fmt, ...) EWP_PRINTF(1, 2) EWP_NORETURN;
void fatalx(const char *fmt, ...) EWP_PRINTF(1, 2) EWP_NORETURN;

#endif
