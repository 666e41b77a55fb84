/*
 * httpsig.c - EWP HTTP Signatures (draft-cavage-07, rsa-sha256 only):
 * verdicts and the checks that requests and responses share.
 *
 * Every input here comes from a peer: the Authorization / Signature
 * parameters, Digest and Accept-Signature are parsed by hand with explicit
 * bounds and fuzzed (tests/fuzz/fuzz_httpsig.c). The checks run in the
 * Registry validator's order (ewp-notes 2.3) so that each bad request gets
 * the status code and message the validator expects.
 *
 * The module is split by job; httpsig_int.h holds what the files share:
 *   httpsig.c         reason names, verdicts, the checks both directions run
 *   httpsig_parse.c   header lookup, signature parameters, signing string, Digest
 *   httpsig_verify.c  server side: verifying a request, step by step
 *   httpsig_sign.c    signing responses (server) and requests (client)
 *   httpsig_client.c  client side: verifying a partner's response
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "codec.h"
#include "httpsig.h"
#include "httpsig_int.h"

static const char *const httpsig_reason_names[HTTPSIG_REASON_COUNT] = {
    [HTTPSIG_OK] = "ok",
    [HTTPSIG_UNSIGNED] = "unsigned",
    [HTTPSIG_BAD_PARAMS] = "bad_params",
    [HTTPSIG_BAD_ALGORITHM] = "bad_algorithm",
    [HTTPSIG_MISSING_SIGNED] = "missing_signed",
    [HTTPSIG_MISSING_HEADER] = "missing_header",
    [HTTPSIG_DUPLICATE_HEADER] = "duplicate_header",
    [HTTPSIG_BAD_HOST] = "bad_host",
    [HTTPSIG_UNKNOWN_KEY] = "unknown_key",
    [HTTPSIG_SERVER_KEY] = "server_key",
    [HTTPSIG_BAD_DATE] = "bad_date",
    [HTTPSIG_BAD_REQUEST_ID] = "bad_request_id",
    [HTTPSIG_REPLAY] = "replay",
    [HTTPSIG_BAD_SIGNATURE] = "bad_signature",
    [HTTPSIG_BAD_DIGEST] = "bad_digest",
    [HTTPSIG_RESPONSE_MISMATCH] = "response_mismatch",
};

const char *
httpsig_reason_name(enum httpsig_reason r)
{
	if ((unsigned)r >= HTTPSIG_REASON_COUNT)
		return "unknown";
	return httpsig_reason_names[r];
}

static int
httpsig_status(enum httpsig_reason r)
{
	switch (r) {
	case HTTPSIG_OK:
		return 200;
	case HTTPSIG_UNSIGNED:
		return 401;
	case HTTPSIG_UNKNOWN_KEY:
	case HTTPSIG_SERVER_KEY:
		return 403;
	default:
		return 400;
	}
}

/* Records a refusal in the verdict; returns -1 for the caller to pass on. */
int
httpsig_fail(struct httpsig_ctx *c, enum httpsig_reason r, const char *fmt, ...)
{
	struct httpsig_verdict *v = c->v;
	va_list ap;

	v->reason = r;
	v->status = httpsig_status(r);
	va_start(ap, fmt);
	vsnprintf(v->message, sizeof(v->message), fmt, ap);
	va_end(ap);
	/* Peer bytes end up in logs and XML: keep the message printable ASCII. */
	for (char *s = v->message; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
	return -1;
}

void
httpsig_verdict_init(struct httpsig_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->status = 400; /* overwritten by every path; never 200 by accident */
	v->reason = HTTPSIG_BAD_PARAMS;
}

int
httpsig_ok(struct httpsig_ctx *c)
{
	c->v->status = 200;
	c->v->reason = HTTPSIG_OK;
	c->v->message[0] = '\0';
	return 0;
}

void
httpsig_verdict_free(struct httpsig_verdict *v)
{
	free(v->signature);
	v->signature = NULL;
	for (size_t i = 0; i < v->nsigned; i++) {
		free(v->signed_headers[i]);
		v->signed_headers[i] = NULL;
	}
	v->nsigned = 0;
}

bool
httpsig_verdict_signed(const struct httpsig_verdict *v, const char *name)
{
	for (size_t i = 0; i < v->nsigned; i++)
		if (strcasecmp(v->signed_headers[i], name) == 0)
			return true;
	return false;
}

/* Step 1b. A missing algorithm is accepted: draft-cavage-07 makes it optional. */
int
httpsig_check_algorithm(struct httpsig_ctx *c)
{
	if (c->p.algorithm == NULL || strcasecmp(c->p.algorithm, "rsa-sha256") == 0)
		return 0;
	return httpsig_fail(c, HTTPSIG_BAD_ALGORITHM,
	                    "algorithm \"%.40s\" is not supported: EWP uses rsa-sha256",
	                    c->p.algorithm);
}

/* The signed names joined by spaces, for messages; caller owns it. */
static char *
httpsig_names_joined(const struct httpsig_verdict *v)
{
	struct buf b;

	buf_init(&b, (size_t)-1);
	for (size_t i = 0; i < v->nsigned; i++)
		if (buf_printf(&b, "%s%s", i ? " " : "", v->signed_headers[i]) == -1)
			break;
	return buf_take(&b);
}

/*
 * Step 1c: each of `required` is signed, and date or original-date too.
 * Names every missing one in the message.
 */
int
httpsig_check_required(struct httpsig_ctx *c, const char *const *required)
{
	const struct httpsig_verdict *v = c->v;
	char *names;
	struct buf miss;
	int rc = 0;

	buf_init(&miss, 1024);
	for (size_t i = 0; required[i] != NULL; i++)
		if (!httpsig_verdict_signed(v, required[i]))
			rc |= buf_printf(&miss, "%s%s", miss.len ? ", " : "", required[i]);
	if (!httpsig_verdict_signed(v, "date") && !httpsig_verdict_signed(v, "original-date"))
		rc |= buf_printf(&miss, "%sdate or original-date", miss.len ? ", " : "");
	if (miss.len == 0 && rc == 0) {
		buf_free(&miss);
		return 0;
	}
	names = httpsig_names_joined(v);
	httpsig_fail(c, HTTPSIG_MISSING_SIGNED, "headers=\"%s\" must also cover: %s", names,
	             buf_cstr(&miss));
	free(names);
	buf_free(&miss);
	return -1;
}

/* True when the message can supply a value for a signed name. */
static bool
httpsig_has(const struct httpsig_ctx *c, const char *name)
{
	size_t count;

	if (strcmp(name, HTTPSIG_REQUEST_TARGET) == 0)
		return c->method != NULL && c->target != NULL;
	return httpsig_get(c, name, &count) != NULL;
}

/* Every signed name is present in the message. */
int
httpsig_check_present(struct httpsig_ctx *c)
{
	const struct httpsig_verdict *v = c->v;

	for (size_t i = 0; i < v->nsigned; i++) {
		if (!httpsig_has(c, v->signed_headers[i]))
			return httpsig_fail(
			    c, HTTPSIG_MISSING_HEADER,
			    "header %s is listed in headers=\"\" but absent from the %s",
			    v->signed_headers[i], c->what);
	}
	return 0;
}

/* Security headers appear at most once, signed or not. */
int
httpsig_check_unique(struct httpsig_ctx *c, const char *const *names)
{
	size_t count;

	for (size_t i = 0; names[i] != NULL; i++) {
		if (httpsig_get(c, names[i], &count) != NULL && count > 1)
			return httpsig_fail(
			    c, HTTPSIG_DUPLICATE_HEADER,
			    "header %s sent %zu times in the %s; it must appear once", names[i],
			    count, c->what);
	}
	return 0;
}

/* One Date-like header, if present: parses and lies within max_skew of now. */
static int
httpsig_check_date(struct httpsig_ctx *c, const char *name, time_t now, int max_skew)
{
	size_t count;
	const char *raw = httpsig_get(c, name, &count);
	double off;
	char *val;
	time_t t;
	int rc = 0;

	if (raw == NULL)
		return 0;
	val = httpsig_trimdup(raw);
	if (codec_parse_http_date(val, &t) == -1) {
		rc = httpsig_fail(c, HTTPSIG_BAD_DATE,
		                  "%s header \"%.60s\" is not an RFC 7231 date such as "
		                  "\"Sun, 06 Nov 1994 08:49:37 GMT\"",
		                  name, val);
	} else if ((off = difftime(t, now)) > max_skew || off < -max_skew) {
		rc = httpsig_fail(
		    c, HTTPSIG_BAD_DATE,
		    "%s header \"%s\" is %.0f seconds %s our clock (at most %d allowed)", name, val,
		    off < 0 ? -off : off, off < 0 ? "behind" : "ahead of", max_skew);
	}
	free(val);
	return rc;
}

/* Step 4: every present Date and Original-Date, signed or not. */
int
httpsig_check_dates(struct httpsig_ctx *c, time_t now, int max_skew)
{
	/* The spec allows more than 5 minutes but never less. */
	if (max_skew < EWP_DATE_WINDOW_SECS)
		max_skew = EWP_DATE_WINDOW_SECS;
	if (httpsig_check_date(c, "Date", now, max_skew) == -1 ||
	    httpsig_check_date(c, "Original-Date", now, max_skew) == -1)
		return -1;
	return 0;
}

/* Step 7: the signature over the rebuilt signing string. */
int
httpsig_check_signature(struct httpsig_ctx *c)
{
	const struct httpsig_verdict *v = c->v;
	size_t len;
	char *str, *names;
	int rc = 0;

	str = httpsig_signing_string(c->method, c->target, c->headers, c->nheaders,
	                             (const char *const *)v->signed_headers, v->nsigned, &len);
	if (str == NULL)
		return httpsig_fail(c, HTTPSIG_BAD_PARAMS, "signing string longer than %d bytes",
		                    HTTPSIG_MAX_SIGNING_STRING);
	if (!keys_pub_verify(c->pub, str, len, c->p.signature)) {
		names = httpsig_names_joined(v);
		rc = httpsig_fail(c, HTTPSIG_BAD_SIGNATURE,
		                  "signature does not verify with key %s over headers=\"%s\"",
		                  keys_pub_keyid(c->pub), names);
		free(names);
	}
	free(str);
	return rc;
}

/* Step 8: Digest carries the SHA-256 of the body bytes as received. */
int
httpsig_check_body(struct httpsig_ctx *c, const void *body, size_t len)
{
	char want[HTTPSIG_DIGEST_BUF];
	size_t count;
	const char *digest = httpsig_get(c, "digest", &count);

	if (digest != NULL && httpsig_check_digest(digest, body, len, NULL, 0) == 0)
		return 0;
	httpsig_digest_value(body, len, want, sizeof(want));
	return httpsig_fail(
	    c, HTTPSIG_BAD_DIGEST,
	    "Digest mismatch: calculated %s, received %.200s, body length %zu bytes", want,
	    digest ? digest : "no Digest header", len);
}
