/*
 * codec.h - small encoders used on the wire: base64, hex, SHA-256,
 * RFC 7231 (IMF-fixdate) dates and canonical UUIDs.
 *
 * Pure functions with no global state; safe to call from any module.
 */
#ifndef CODEC_H
#define CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "ewpd.h"

#define CODEC_SHA256_LEN     32
#define CODEC_SHA256_HEX_LEN 64
#define CODEC_UUID_LEN       36
#define CODEC_HTTP_DATE_LEN  29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* base64 (standard alphabet, padded). Caller owns the result. */
char *codec_base64_encode(const void *data, size_t len);
/*
 * Decodes standard base64, ignoring ASCII whitespace (keys in XML are
 * line-wrapped). Caller owns *out (NUL-terminated for convenience).
 * Returns -1 on any invalid character or bad padding.
 */
int codec_base64_decode(const char *in, size_t inlen, unsigned char **out,
                        size_t *outlen) EWP_MUSTCHECK;

void codec_sha256(const void *data, size_t len, unsigned char out[CODEC_SHA256_LEN]);
/* Lower-case hex; out must hold 2 * len + 1 bytes. */
void codec_hex(const unsigned char *data, size_t len, char *out);

/* Fresh random v4 UUID in canonical lower-case form. */
void codec_uuid_v4(char out[CODEC_UUID_LEN + 1]);
/* 8-4-4-4-12 lower-case hex digits and dashes, nothing else. */
bool codec_is_canonical_uuid(const char *s);

/* "Sun, 06 Nov 1994 08:49:37 GMT". */
void codec_http_date(time_t t, char out[CODEC_HTTP_DATE_LEN + 1]);
/* Strict IMF-fixdate parse (two-digit day, "GMT"); -1 when malformed. */
int codec_parse_http_date(const char *s, time_t *out) EWP_MUSTCHECK;

#endif
