/*
 * httpsig_parse.c - the parts of HTTP Signatures that both directions
 * share: header lookup and trimming, the signature parameters of
 * Authorization: Signature and Signature, the signing string of ewp-notes
 * 2.1, and the Digest and Accept-Signature headers.
 *
 * Every byte parsed here comes from a peer: parsing is by hand with
 * explicit bounds, and fuzzed (tests/fuzz/fuzz_httpsig.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "codec.h"
#include "httpsig.h"
#include "httpsig_int.h"
#include "xmalloc.h"

bool
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

const char *
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
char *
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

const char *
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
char *
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

void
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
int
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
