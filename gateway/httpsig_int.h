/*
 * httpsig_int.h - internal to the httpsig module; not part of its contract.
 *
 * Shared by httpsig.c, httpsig_parse.c, httpsig_verify.c, httpsig_sign.c
 * and httpsig_client.c, and included by nothing else: other code uses
 * httpsig.h only. Everything declared here may change with the module.
 */
#ifndef HTTPSIG_INT_H
#define HTTPSIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "ewpd.h"
#include "httpsig.h"
#include "keys.h"

#define HTTPSIG_MAX_SIGNING_STRING (1024 * 1024)
#define HTTPSIG_DIGEST_BUF         64 /* "SHA-256=" + 44 base64 characters + NUL */
#define HTTPSIG_REQUEST_TARGET     "(request-target)"

/* The parameters of a signature; all owned, NULL when absent. */
struct httpsig_params {
	char *keyid;
	char *algorithm;
	char *headers;
	char *signature;
};

/* A message being verified, plus what the checks found so far. */
struct httpsig_ctx {
	const char *what; /* "request" or "response", for messages */
	const char *method;
	const char *target;
	const struct httpsig_header *headers;
	size_t nheaders;
	struct httpsig_params p;
	const struct keys_pub *pub;
	struct httpsig_verdict *v;
};

/* httpsig.c: verdicts and the checks that requests and responses share. */

/* Records a refusal in the verdict; returns -1 for the caller to pass on. */
int httpsig_fail(struct httpsig_ctx *c, enum httpsig_reason r, const char *fmt, ...)
    EWP_PRINTF(3, 4);
/* Starts a verdict as a refusal (400, bad_params) that only httpsig_ok turns into 200. */
void httpsig_verdict_init(struct httpsig_verdict *v);
/* Marks the verdict accepted once every step has passed; returns 0. */
int httpsig_ok(struct httpsig_ctx *c);
/* The steps below return 0, or -1 after httpsig_fail. */
int httpsig_check_algorithm(struct httpsig_ctx *c);
int httpsig_check_required(struct httpsig_ctx *c, const char *const *required);
int httpsig_check_present(struct httpsig_ctx *c);
int httpsig_check_unique(struct httpsig_ctx *c, const char *const *names);
int httpsig_check_dates(struct httpsig_ctx *c, time_t now, int max_skew);
int httpsig_check_signature(struct httpsig_ctx *c);
int httpsig_check_body(struct httpsig_ctx *c, const void *body, size_t len);

/* httpsig_parse.c: header values, signature parameters, the signing string. */

/* Optional white space: space or tab. */
bool httpsig_is_ows(char c);
const char *httpsig_skip_ows(const char *s);
/* Header value without surrounding OWS; caller owns it. */
char *httpsig_trimdup(const char *value);
/* First value of header `name` (any case), NULL if absent; *count = occurrences. */
const char *httpsig_get(const struct httpsig_ctx *c, const char *name, size_t *count);
/*
 * The signing string of ewp-notes 2.1 for the lower-case names given.
 * NULL when a name is absent or the string would be absurdly long.
 */
char *httpsig_signing_string(const char *method, const char *target, const struct httpsig_header *h,
                             size_t nh, const char *const *names, size_t nnames, size_t *len);
void httpsig_params_free(struct httpsig_params *p);
/* Parses a parameter list into c->p and fills the verdict's copies. */
int httpsig_take_params(struct httpsig_ctx *c, const char *params, const char *header);

#endif
