/*
 * httpsig_client.c - client side: verifying a partner's signed response
 * (ewp-notes 2.5) to a request we sent.
 *
 * The steps run in order and stop at the first refusal; those shared with
 * request verification are in httpsig.c, parsing in httpsig_parse.c.
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "httpsig.h"
#include "httpsig_int.h"

/* Headers whose second copy could smuggle a value past the signature check. */
static const char *const httpsig_response_unique[] = {
    "date", "original-date", "digest", "x-request-id", "x-request-signature", "signature", NULL};

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
