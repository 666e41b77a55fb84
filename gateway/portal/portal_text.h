/*
 * portal_text.h - the portal's text transformations that take untrusted
 * input, kept free of any request state so they can be fuzzed alone.
 */
#ifndef PORTAL_TEXT_H
#define PORTAL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "ewpd.h"

/* Appends s escaped for HTML content and attribute values (& < > " '). */
int portal_escape(struct buf *b, const char *s) EWP_MUSTCHECK;
/* The value of cookie `name` in a Cookie header, copied into out; false
 * when absent or longer than outlen - 1. */
bool portal_cookie_parse(const char *header, const char *name, char *out, size_t outlen);
/* Appends v as one CSV field (RFC 4180), a formula-looking value defused. */
int portal_csv_cell(struct buf *b, const char *v) EWP_MUSTCHECK;

#endif
