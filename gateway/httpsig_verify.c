/*
 * httpsig_verify.c - server side: verifying a signed request.
 *
 * The steps run in the Registry validator's order (ewp-notes 2.3) and
 * stop at the first refusal, so that each bad request gets the status
 * code and message the validator expects. Steps shared with response
 * verification are in httpsig.c, parsing in httpsig_parse.c.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
#include "httpsig.h"
#include "httpsig_int.h"

/* Headers whose second copy could smuggle a value past the signature check. */
static const char *const httpsig_request_unique[] = {
    "host", "date", "original-date", "digest", "x-request-id", "authorization", NULL};

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
