/*
 * httpsig.c - EWP HTTP Signatures (draft-cavage-07, rsa-sha256 only).
 *
 * Every input here comes from a peer: the Authorization / Signature
 * parameters, Digest and Accept-Signature are parsed by hand with explicit
 * bounds and fuzzed (tests/fuzz/fuzz_httpsig.c). The checks run in the
 * Registry validator's order (ewp-notes 2.3) so that each bad request gets
 * the status code and message the validator expects.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "codec.h"
#include "httpsig.h"
#include "xmalloc.h"

#define HTTPSIG_MAX_SIGNING_STRING (1024 * 1024)
#define HTTPSIG_DIGEST_BUF         64 /* "SHA-256=" + 44 base64 characters + NUL */
#define HTTPSIG_REQUEST_TARGET     "(request-target)"

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

/* Headers whose second copy could smuggle a value past the signature check. */
static const char *const httpsig_request_unique[] = {
    "host", "date", "original-date", "digest", "x-request-id", "authorization", NULL};
static const char *const httpsig_response_unique[] = {
    "date", "original-date", "digest", "x-request-id", "x-request-signature", "signature", NULL};

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

static int httpsig_fail(struct httpsig_ctx *c, enum httpsig_reason r, const char *fmt, ...)
    EWP_PRINTF(3, 4);

/* Records a refusal in the verdict; returns -1 for the caller to pass on. */
static int
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

static bool
httpsig_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 7230 tchar: the characters of a header or parameter name. */
static bool
httpsig_is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *
httpsig_skip_ows(const char *s)
{
	while (httpsig_is_ows(*s))
		s++;
	return s;
}

/* [s, end) without surrounding OWS, as *out / *len. */
static void
httpsig_trim(const char *s, const char *end, const char **out, size_t *len)
{
	while (s < end && httpsig_is_ows(*s))
		s++;
	while (end > s && httpsig_is_ows(end[-1]))
		end--;
	*out = s;
	*len = (size_t)(end - s);
}

/* Header value without surrounding OWS; caller owns it. */
static char *
httpsig_trimdup(const char *value)
{
	const char *s;
	size_t len;

	httpsig_trim(value, value + strlen(value), &s, &len);
	return xstrndup(s, len);
}

/* Next comma-separated item of *list, trimmed; false once the list is used up. */
static bool
httpsig_next_item(const char **list, const char **item, size_t *len)
{
	const char *s = *list, *end;

	if (s == NULL)
		return false;
	end = strchrnul(s, ',');
	httpsig_trim(s, end, item, len);
	*list = *end ? end + 1 : NULL;
	return true;
}

/* First value of header `name` (any case), NULL if absent; *count = occurrences. */
static const char *
httpsig_find(const struct httpsig_header *h, size_t n, const char *name, size_t *count)
{
	const char *first = NULL;

	*count = 0;
	for (size_t i = 0; i < n; i++) {
		if (h[i].name == NULL || h[i].value == NULL || strcasecmp(h[i].name, name) != 0)
			continue;
		if (first == NULL)
			first = h[i].value;
		(*count)++;
	}
	return first;
}

static const char *
httpsig_get(const struct httpsig_ctx *c, const char *name, size_t *count)
{
	return httpsig_find(c->headers, c->nheaders, name, count);
}

/* "(request-target): post /path" line body: lower-case method, target as given. */
static int
httpsig_add_target(struct buf *b, const char *method, const char *target)
{
	if (method == NULL || target == NULL || buf_addstr(b, HTTPSIG_REQUEST_TARGET ": ") == -1)
		return -1;
	for (const char *m = method; *m; m++) {
		char lc = (char)tolower((unsigned char)*m);

		if (buf_add(b, &lc, 1) == -1)
			return -1;
	}
	return buf_printf(b, " %s", target);
}

/* "name: v1, v2" with every value of the header, in message order. */
static int
httpsig_add_header(struct buf *b, const struct httpsig_header *h, size_t n, const char *name)
{
	bool found = false;

	if (buf_printf(b, "%s:", name) == -1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *val;
		size_t len;

		if (h[i].name == NULL || h[i].value == NULL || strcasecmp(h[i].name, name) != 0)
			continue;
		httpsig_trim(h[i].value, h[i].value + strlen(h[i].value), &val, &len);
		if (buf_addstr(b, found ? ", " : " ") == -1 || buf_add(b, val, len) == -1)
			return -1;
		found = true;
	}
	return found ? 0 : -1;
}

/*
 * The signing string of ewp-notes 2.1 for the lower-case names given.
 * NULL when a name is absent or the string would be absurdly long.
 */
static char *
httpsig_signing_string(const char *method, const char *target, const struct httpsig_header *h,
                       size_t nh, const char *const *names, size_t nnames, size_t *len)
{
	struct buf b;
	int rc = 0;

	buf_init(&b, HTTPSIG_MAX_SIGNING_STRING);
	for (size_t i = 0; i < nnames && rc == 0; i++) {
		if (i > 0)
			rc = buf_addstr(&b, "\n");
		if (rc == 0 && strcmp(names[i], HTTPSIG_REQUEST_TARGET) == 0)
			rc = httpsig_add_target(&b, method, target);
		else if (rc == 0)
			rc = httpsig_add_header(&b, h, nh, names[i]);
	}
	if (rc == -1) {
		buf_free(&b);
		return NULL;
	}
	*len = b.len;
	return buf_take(&b);
}

static void
httpsig_params_free(struct httpsig_params *p)
{
	free(p->keyid);
	free(p->algorithm);
	free(p->headers);
	free(p->signature);
	memset(p, 0, sizeof(*p));
}

/* Where a known parameter goes; NULL for the ones we ignore. */
static char **
httpsig_param_slot(struct httpsig_params *p, const char *name, size_t len)
{
	/* Names compared in any case, as the Registry's parser lower-cases them. */
	if (len == 5 && strncasecmp(name, "keyId", len) == 0)
		return &p->keyid;
	if (len == 9 && strncasecmp(name, "algorithm", len) == 0)
		return &p->algorithm;
	if (len == 7 && strncasecmp(name, "headers", len) == 0)
		return &p->headers;
	if (len == 9 && strncasecmp(name, "signature", len) == 0)
		return &p->signature;
	return NULL;
}

/* Parses one name="value" at *sp; advances past it. -1 with a reason. */
static int
httpsig_parse_param(const char **sp, struct httpsig_params *p, char *why, size_t whylen)
{
	const char *s = *sp, *name = s, *val, *end;
	char **slot;
	int nlen;

	while (httpsig_is_tchar(*s))
		s++;
	nlen = (int)(s - name > 40 ? 40 : s - name);
	if (s == name) {
		snprintf(why, whylen, "expected a parameter name at \"%.20s\"", s);
		return -1;
	}
	if (s[0] != '=' || s[1] != '"') {
		snprintf(why, whylen, "parameter %.*s is not of the form name=\"value\"", nlen,
		         name);
		return -1;
	}
	val = s + 2;
	if ((end = strchr(val, '"')) == NULL) {
		snprintf(why, whylen, "value of parameter %.*s has no closing quote", nlen, name);
		return -1;
	}
	if ((slot = httpsig_param_slot(p, name, (size_t)(s - name))) != NULL) {
		if (*slot != NULL) {
			snprintf(why, whylen, "parameter %.*s appears twice", nlen, name);
			return -1;
		}
		*slot = xstrndup(val, (size_t)(end - val));
	}
	*sp = end + 1;
	return 0;
}

/* keyId="..",algorithm="..",headers="..",signature=".." (unknown names ignored). */
static int
httpsig_parse_params(const char *s, struct httpsig_params *p, char *why, size_t whylen)
{
	for (;;) {
		s = httpsig_skip_ows(s);
		if (httpsig_parse_param(&s, p, why, whylen) == -1)
			return -1;
		s = httpsig_skip_ows(s);
		if (*s == '\0')
			break;
		if (*s != ',') {
			snprintf(why, whylen, "expected ',' between parameters, found \"%.20s\"",
			         s);
			return -1;
		}
		s++;
	}
	if (p->keyid == NULL || *p->keyid == '\0') {
		snprintf(why, whylen, "keyId parameter missing or empty");
		return -1;
	}
	if (p->signature == NULL || *p->signature == '\0') {
		snprintf(why, whylen, "signature parameter missing or empty");
		return -1;
	}
	return 0;
}

static bool
httpsig_valid_name(const char *name)
{
	if (strcmp(name, HTTPSIG_REQUEST_TARGET) == 0)
		return true;
	for (const char *s = name; *s; s++)
		if (!httpsig_is_tchar(*s))
			return false;
	return *name != '\0';
}

/* Splits headers="" into the verdict's lower-case name list. */
static int
httpsig_parse_names(struct httpsig_ctx *c, const char *list)
{
	struct httpsig_verdict *v = c->v;
	const char *s = list;

	while (*s) {
		const char *start;
		char *name;

		if (httpsig_is_ows(*s)) {
			s++;
			continue;
		}
		for (start = s; *s && !httpsig_is_ows(*s); s++)
			;
		if (v->nsigned == HTTPSIG_MAX_SIGNED_HEADERS)
			return httpsig_fail(c, HTTPSIG_BAD_PARAMS,
			                    "headers parameter lists more than %d names",
			                    HTTPSIG_MAX_SIGNED_HEADERS);
		name = xstrndup(start, (size_t)(s - start));
		for (char *n = name; *n; n++)
			*n = (char)tolower((unsigned char)*n);
		if (!httpsig_valid_name(name)) {
			httpsig_fail(c, HTTPSIG_BAD_PARAMS,
			             "headers parameter has an invalid header name \"%.40s\"",
			             name);
			free(name);
			return -1;
		}
		v->signed_headers[v->nsigned++] = name;
	}
	return 0;
}

/* Parses a parameter list into c->p and fills the verdict's copies. */
static int
httpsig_take_params(struct httpsig_ctx *c, const char *params, const char *header)
{
	struct httpsig_verdict *v = c->v;
	char why[160];

	if (httpsig_parse_params(params, &c->p, why, sizeof(why)) == -1)
		return httpsig_fail(c, HTTPSIG_BAD_PARAMS, "cannot parse the %s header: %s", header,
		                    why);
	v->signature = xstrdup(c->p.signature);
	if (strlen(c->p.keyid) <= CODEC_SHA256_HEX_LEN)
		memcpy(v->keyid, c->p.keyid, strlen(c->p.keyid) + 1);
	/* draft-cavage-07: without a headers parameter only Date is signed. */
	return httpsig_parse_names(c, c->p.headers ? c->p.headers : "date");
}

/* Step 1 and 1a: an Authorization: Signature header whose parameters parse. */
static int
httpsig_req_authorization(struct httpsig_ctx *c)
{
	size_t count;
	const char *auth = httpsig_get(c, "authorization", &count), *s;

	if (auth == NULL)
		return httpsig_fail(c, HTTPSIG_UNSIGNED,
		                    "request is not signed: no Authorization: Signature header");
	if (count > 1)
		return httpsig_fail(c, HTTPSIG_DUPLICATE_HEADER,
		                    "Authorization header sent %zu times; it must appear once",
		                    count);
	s = httpsig_skip_ows(auth);
	/* Do not echo another scheme's value: it may hold credentials. */
	if (strncasecmp(s, "Signature", 9) != 0 || (s[9] != '\0' && !httpsig_is_ows(s[9])))
		return httpsig_fail(c, HTTPSIG_UNSIGNED,
		                    "request is not signed: the Authorization scheme is not "
		                    "Signature");
	return httpsig_take_params(c, s + 9, "Authorization");
}

/* Step 1b. A missing algorithm is accepted: draft-cavage-07 makes it optional. */
static int
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
static int
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
static int
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
static int
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

/* Step 2: Host names the host this endpoint is served on. */
static int
httpsig_req_host(struct httpsig_ctx *c, const char *expected)
{
	size_t count;
	const char *host = httpsig_get(c, "host", &count);
	char *got;
	int rc = 0;

	if (expected == NULL)
		return 0;
	got = httpsig_trimdup(host ? host : "");
	if (strcasecmp(got, expected) != 0)
		rc = httpsig_fail(c, HTTPSIG_BAD_HOST, "Host header: expected %s, received %.100s",
		                  expected, got);
	free(got);
	return rc;
}

/* Step 3 on a request: the keyId is a client key of the catalogue. */
static int
httpsig_req_key(struct httpsig_ctx *c, httpsig_key_lookup_cb *lookup, void *arg)
{
	enum httpsig_key_kind kind = HTTPSIG_KEY_NONE;
	const struct keys_pub *pub = NULL;

	if (lookup != NULL)
		kind = lookup(arg, c->p.keyid, &pub);
	if (kind == HTTPSIG_KEY_SERVER_ONLY)
		return httpsig_fail(c, HTTPSIG_SERVER_KEY,
		                    "keyId %.80s is a server key, not a client key in the registry "
		                    "catalogue",
		                    c->p.keyid);
	if (kind != HTTPSIG_KEY_CLIENT || pub == NULL)
		return httpsig_fail(c, HTTPSIG_UNKNOWN_KEY,
		                    "keyId %.80s is not a client key in the registry catalogue",
		                    c->p.keyid);
	c->pub = pub;
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
static int
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

/* Step 6: X-Request-Id is a canonical lower-case UUID; copied into the verdict. */
static int
httpsig_req_request_id(struct httpsig_ctx *c)
{
	size_t count;
	const char *raw = httpsig_get(c, "x-request-id", &count);
	char *val;
	int rc = 0;

	if (raw == NULL)
		return httpsig_fail(c, HTTPSIG_BAD_REQUEST_ID, "X-Request-Id header missing");
	val = httpsig_trimdup(raw);
	if (codec_is_canonical_uuid(val))
		memcpy(c->v->request_id, val, CODEC_UUID_LEN + 1);
	else
		rc = httpsig_fail(c, HTTPSIG_BAD_REQUEST_ID,
		                  "X-Request-Id \"%.60s\" is not a canonical lower-case UUID "
		                  "(8-4-4-4-12 hex digits)",
		                  val);
	free(val);
	return rc;
}

/* Step 7: the signature over the rebuilt signing string. */
static int
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
static int
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

/*
 * Step 5 (nonce), run last: recording ids before the signature is checked
 * would let anyone who knows a public keyId fill the nonce store, so only
 * fully verified requests are recorded.
 */
static int
httpsig_req_replay(struct httpsig_ctx *c, const struct httpsig_verify_opts *o)
{
	if (o->replay == NULL || !o->replay(o->replay_arg, c->v->request_id, o->now))
		return 0;
	return httpsig_fail(c, HTTPSIG_REPLAY, "X-Request-Id %s was already used",
	                    c->v->request_id);
}

static void
httpsig_verdict_init(struct httpsig_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->status = 400; /* overwritten by every path; never 200 by accident */
	v->reason = HTTPSIG_BAD_PARAMS;
}

static int
httpsig_ok(struct httpsig_ctx *c)
{
	c->v->status = 200;
	c->v->reason = HTTPSIG_OK;
	c->v->message[0] = '\0';
	return 0;
}

static int
httpsig_req_steps(struct httpsig_ctx *c, const struct httpsig_msg *m,
                  const struct httpsig_verify_opts *o)
{
	static const char *const required[] = {HTTPSIG_REQUEST_TARGET, "host", "digest",
	                                       "x-request-id", NULL};

	if (httpsig_req_authorization(c) == -1 || httpsig_check_algorithm(c) == -1 ||
	    httpsig_check_required(c, required) == -1 || httpsig_check_present(c) == -1 ||
	    httpsig_check_unique(c, httpsig_request_unique) == -1 ||
	    httpsig_req_host(c, o->expected_host) == -1 ||
	    httpsig_req_key(c, o->lookup, o->lookup_arg) == -1 ||
	    httpsig_check_dates(c, o->now, o->max_skew) == -1 || httpsig_req_request_id(c) == -1 ||
	    httpsig_check_signature(c) == -1 || httpsig_check_body(c, m->body, m->body_len) == -1 ||
	    httpsig_req_replay(c, o) == -1)
		return -1;
	return httpsig_ok(c);
}

int
httpsig_verify_request(const struct httpsig_msg *m, const struct httpsig_verify_opts *o,
                       struct httpsig_verdict *v)
{
	struct httpsig_ctx c = {
	    .what = "request",
	    .method = m->method,
	    .target = m->target,
	    .headers = m->headers,
	    .nheaders = m->nheaders,
	    .v = v,
	};

	httpsig_verdict_init(v);
	httpsig_req_steps(&c, m, o);
	httpsig_params_free(&c.p);
	return v->status;
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

void
httpsig_digest_value(const void *body, size_t len, char *out, size_t outlen)
{
	unsigned char md[CODEC_SHA256_LEN];
	char *b64;

	codec_sha256(body, len, md);
	b64 = codec_base64_encode(md, sizeof(md));
	snprintf(out, outlen, "SHA-256=%s", b64);
	free(b64);
}

int
httpsig_check_digest(const char *header_value, const void *body, size_t len, char *msg,
                     size_t msglen)
{
	char want[HTTPSIG_DIGEST_BUF];
	const char *list = header_value, *item, *want_b64 = want + 8;
	bool found = false, bad = false;
	size_t ilen;

	httpsig_digest_value(body, len, want, sizeof(want));
	while (httpsig_next_item(&list, &item, &ilen)) {
		/* Split on the first '=' only: base64 values end in '='. */
		const char *eq = memchr(item, '=', ilen), *alg, *val;
		size_t alen, vlen;

		if (eq == NULL)
			continue;
		httpsig_trim(item, eq, &alg, &alen);
		httpsig_trim(eq + 1, item + ilen, &val, &vlen);
		if (alen != 7 || strncasecmp(alg, "SHA-256", 7) != 0)
			continue;
		found = true;
		/* Several SHA-256 values must all match, or one could be forged. */
		if (vlen != strlen(want_b64) || memcmp(val, want_b64, vlen) != 0)
			bad = true;
	}
	if (found && !bad)
		return 0;
	if (msg != NULL && msglen > 0)
		snprintf(msg, msglen, "expected %s, received %s", want,
		         header_value ? header_value : "nothing");
	return -1;
}

bool
httpsig_accepts_rsa_sha256(const char *accept_signature)
{
	const char *list = accept_signature, *item;
	size_t len;

	while (httpsig_next_item(&list, &item, &len))
		if (len == 10 && strncasecmp(item, "rsa-sha256", 10) == 0)
			return true;
	return false;
}

void
httpsig_out_free(struct httpsig_out *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->h[i].name);
		free(o->h[i].value);
		o->h[i].name = o->h[i].value = NULL;
	}
	o->n = 0;
}

const char *
httpsig_out_get(const struct httpsig_out *o, const char *name)
{
	for (size_t i = 0; i < o->n; i++)
		if (strcasecmp(o->h[i].name, name) == 0)
			return o->h[i].value;
	return NULL;
}

/* Appends a header; takes ownership of value. */
static void
httpsig_out_add(struct httpsig_out *o, const char *name, char *value)
{
	if (o->n == sizeof(o->h) / sizeof(o->h[0]))
		abort(); /* a programming error: the helpers add at most six */
	o->h[o->n].name = xstrdup(name);
	o->h[o->n].value = value;
	o->n++;
}

/*
 * Signs the headers of o named in `names` and appends header `header`
 * holding prefix + the parameter list. On failure frees o and returns -1.
 */
static int
httpsig_out_sign(struct httpsig_out *o, const struct keys_priv *key, const char *method,
                 const char *target, const char *const *names, size_t nnames, const char *header,
                 const char *prefix)
{
	struct httpsig_header view[sizeof(o->h) / sizeof(o->h[0])];
	char *str, *sig = NULL;
	struct buf list;
	size_t len;

	for (size_t i = 0; i < o->n; i++) {
		view[i].name = o->h[i].name;
		view[i].value = o->h[i].value;
	}
	str = httpsig_signing_string(method, target, view, o->n, names, nnames, &len);
	if (str != NULL)
		sig = keys_priv_sign(key, str, len);
	free(str);
	if (sig == NULL) {
		httpsig_out_free(o);
		return -1;
	}
	buf_init(&list, (size_t)-1);
	for (size_t i = 0; i < nnames; i++)
		if (buf_printf(&list, "%s%s", i ? " " : "", names[i]) == -1)
			abort(); /* unbounded buffer: cannot fail */
	httpsig_out_add(o, header,
	                xasprintf("%skeyId=\"%s\",algorithm=\"rsa-sha256\",headers=\"%s\","
	                          "signature=\"%s\"",
	                          prefix, keys_priv_keyid(key), buf_cstr(&list), sig));
	buf_free(&list);
	free(sig);
	return 0;
}

int
httpsig_sign_response(const struct keys_priv *key, const void *body, size_t len,
                      const char *request_id, const char *request_signature, time_t now,
                      struct httpsig_out *out)
{
	const char *names[4] = {"date", "digest"};
	char date[CODEC_HTTP_DATE_LEN + 1], digest[HTTPSIG_DIGEST_BUF];
	size_t n = 2;

	memset(out, 0, sizeof(*out));
	codec_http_date(now, date);
	httpsig_digest_value(body, len, digest, sizeof(digest));
	httpsig_out_add(out, "Date", xstrdup(date));
	httpsig_out_add(out, "Digest", xstrdup(digest));
	if (request_id != NULL) {
		httpsig_out_add(out, "X-Request-Id", xstrdup(request_id));
		names[n++] = "x-request-id";
	}
	if (request_signature != NULL) {
		httpsig_out_add(out, "X-Request-Signature", xstrdup(request_signature));
		names[n++] = "x-request-signature";
	}
	return httpsig_out_sign(out, key, NULL, NULL, names, n, "Signature", "");
}

int
httpsig_sign_request(const struct keys_priv *key, const char *method, const char *target,
                     const char *host, const void *body, size_t len, time_t now,
                     struct httpsig_out *out)
{
	static const char *const names[] = {HTTPSIG_REQUEST_TARGET, "host", "date", "digest",
	                                    "x-request-id"};
	char date[CODEC_HTTP_DATE_LEN + 1], digest[HTTPSIG_DIGEST_BUF], id[CODEC_UUID_LEN + 1];

	memset(out, 0, sizeof(*out));
	codec_http_date(now, date);
	httpsig_digest_value(body, len, digest, sizeof(digest));
	codec_uuid_v4(id);
	httpsig_out_add(out, "Host", xstrdup(host));
	httpsig_out_add(out, "Date", xstrdup(date));
	httpsig_out_add(out, "Digest", xstrdup(digest));
	httpsig_out_add(out, "X-Request-Id", xstrdup(id));
	httpsig_out_add(out, "Accept-Signature", xstrdup("rsa-sha256"));
	return httpsig_out_sign(out, key, method, target, names, sizeof(names) / sizeof(names[0]),
	                        "Authorization", "Signature ");
}

/* Response step 1: X-Request-Id echoes the id we sent. */
static int
httpsig_resp_request_id(struct httpsig_ctx *c, const char *ours)
{
	size_t count;
	const char *raw = httpsig_get(c, "x-request-id", &count);
	char *val;
	int rc = 0;

	if (ours == NULL)
		return 0;
	if (raw == NULL)
		return httpsig_fail(c, HTTPSIG_RESPONSE_MISMATCH,
		                    "response has no X-Request-Id; ours was %s", ours);
	if (count > 1)
		return httpsig_fail(c, HTTPSIG_DUPLICATE_HEADER,
		                    "header x-request-id sent %zu times in the response; it must "
		                    "appear once",
		                    count);
	val = httpsig_trimdup(raw);
	if (strcmp(val, ours) != 0)
		rc = httpsig_fail(c, HTTPSIG_RESPONSE_MISMATCH,
		                  "response X-Request-Id \"%.60s\" does not echo ours (%s)", val,
		                  ours);
	else if (strlen(ours) == CODEC_UUID_LEN)
		memcpy(c->v->request_id, ours, CODEC_UUID_LEN + 1);
	free(val);
	return rc;
}

/* Response step 2: one Signature header whose parameters parse. */
static int
httpsig_resp_signature_header(struct httpsig_ctx *c)
{
	size_t count;
	const char *sig = httpsig_get(c, "signature", &count);

	if (sig == NULL)
		return httpsig_fail(c, HTTPSIG_UNSIGNED,
		                    "response is not signed: no Signature header");
	if (count > 1)
		return httpsig_fail(c, HTTPSIG_DUPLICATE_HEADER,
		                    "Signature header sent %zu times; it must appear once", count);
	return httpsig_take_params(c, sig, "Signature");
}

/* Response step 4: X-Request-Signature is ours, or absent if we did not sign. */
static int
httpsig_resp_request_signature(struct httpsig_ctx *c, const char *ours)
{
	size_t count;
	const char *raw = httpsig_get(c, "x-request-signature", &count);
	char *val;
	int rc = 0;

	if (ours == NULL && raw == NULL)
		return 0;
	if (ours == NULL)
		return httpsig_fail(c, HTTPSIG_RESPONSE_MISMATCH,
		                    "response has X-Request-Signature but our request was not "
		                    "signed");
	if (raw == NULL)
		return httpsig_fail(c, HTTPSIG_RESPONSE_MISMATCH,
		                    "response has no X-Request-Signature; our request was signed");
	val = httpsig_trimdup(raw);
	if (strcmp(val, ours) != 0)
		rc = httpsig_fail(c, HTTPSIG_RESPONSE_MISMATCH,
		                  "X-Request-Signature \"%.60s...\" is not our request's signature",
		                  val);
	free(val);
	return rc;
}

/* Response step 6: only a server key of the host serving the endpoint. */
static int
httpsig_resp_key(struct httpsig_ctx *c, httpsig_key_lookup_cb *lookup, void *arg)
{
	const struct keys_pub *pub = NULL;

	if (lookup != NULL && lookup(arg, c->p.keyid, &pub) == HTTPSIG_KEY_CLIENT && pub != NULL) {
		c->pub = pub;
		return 0;
	}
	return httpsig_fail(c, HTTPSIG_UNKNOWN_KEY,
	                    "keyId %.80s is not a server key of the host serving this endpoint",
	                    c->p.keyid);
}

static int
httpsig_resp_steps(struct httpsig_ctx *c, const void *body, size_t len,
                   const struct httpsig_response_opts *o)
{
	const char *required[4] = {"digest"};
	size_t n = 1;

	if (o->request_id != NULL)
		required[n++] = "x-request-id";
	if (o->request_signature != NULL)
		required[n++] = "x-request-signature";
	required[n] = NULL;
	if (httpsig_resp_request_id(c, o->request_id) == -1 ||
	    httpsig_resp_signature_header(c) == -1 || httpsig_check_algorithm(c) == -1 ||
	    httpsig_check_required(c, required) == -1 || httpsig_check_present(c) == -1 ||
	    httpsig_check_unique(c, httpsig_response_unique) == -1 ||
	    httpsig_resp_request_signature(c, o->request_signature) == -1 ||
	    httpsig_check_dates(c, o->now, o->max_skew) == -1 ||
	    httpsig_resp_key(c, o->lookup, o->lookup_arg) == -1 ||
	    httpsig_check_signature(c) == -1 || httpsig_check_body(c, body, len) == -1)
		return -1;
	return httpsig_ok(c);
}

/*
 * Statuses follow the request side (401 unsigned, 403 key, else 400) so
 * that callers can treat any non-200 verdict as a refusal.
 */
int
httpsig_verify_response(const struct httpsig_header *headers, size_t nheaders, const void *body,
                        size_t len, const struct httpsig_response_opts *o,
                        struct httpsig_verdict *v)
{
	struct httpsig_ctx c = {
	    .what = "response",
	    .method = o->request_method,
	    .target = o->request_target,
	    .headers = headers,
	    .nheaders = nheaders,
	    .v = v,
	};

	httpsig_verdict_init(v);
	httpsig_resp_steps(&c, body, len, o);
	httpsig_params_free(&c.p);
	return v->status;
}
