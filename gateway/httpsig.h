/*
 * httpsig.h - EWP HTTP Signatures (draft-cavage-http-signatures-07 as
 * profiled by ewp-specs-sec-cliauth-httpsig and -srvauth-httpsig).
 *
 * Transport-neutral: messages are given as method, request-target, the
 * header lines exactly as received (order and duplicates kept) and the raw
 * body. Server side verifies requests and signs responses; client side
 * signs requests and verifies responses. Key lookups go through callbacks
 * so that this module knows nothing of the registry.
 */
#ifndef HTTPSIG_H
#define HTTPSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "ewpd.h"
#include "keys.h"

#define HTTPSIG_MAX_SIGNED_HEADERS 32

struct httpsig_header {
	const char *name;
	const char *value;
};

struct httpsig_msg {
	const char *method; /* "GET", "POST" (any case) */
	const char *target; /* path and query exactly as received */
	const struct httpsig_header *headers;
	size_t nheaders;
	const void *body;
	size_t body_len;
};

/* Why a message was refused; also the label of the failure metric. */
enum httpsig_reason {
	HTTPSIG_OK = 0,
	HTTPSIG_UNSIGNED,          /* no Authorization: Signature -> 401 */
	HTTPSIG_BAD_PARAMS,        /* unparseable signature parameters -> 400 */
	HTTPSIG_BAD_ALGORITHM,     /* not rsa-sha256 -> 400 */
	HTTPSIG_MISSING_SIGNED,    /* a required header not in headers="" -> 400 */
	HTTPSIG_MISSING_HEADER,    /* a header listed in headers="" is absent -> 400 */
	HTTPSIG_DUPLICATE_HEADER,  /* a signed security header sent twice -> 400 */
	HTTPSIG_BAD_HOST,          /* Host differs from ours -> 400 */
	HTTPSIG_UNKNOWN_KEY,       /* keyId not a client key in the catalogue -> 403 */
	HTTPSIG_SERVER_KEY,        /* keyId is only a server key -> 403 */
	HTTPSIG_BAD_DATE,          /* Date/Original-Date unparseable or off -> 400 */
	HTTPSIG_BAD_REQUEST_ID,    /* X-Request-Id missing or not a canonical UUID -> 400 */
	HTTPSIG_REPLAY,            /* X-Request-Id seen within the window -> 400 */
	HTTPSIG_BAD_SIGNATURE,     /* signature does not verify -> 400 */
	HTTPSIG_BAD_DIGEST,        /* Digest missing, no SHA-256, or mismatch -> 400 */
	HTTPSIG_RESPONSE_MISMATCH, /* client side: X-Request-Id/-Signature not ours */
	HTTPSIG_REASON_COUNT
};

/* Short stable name of a reason ("bad_digest"), for metrics and logs. */
const char *httpsig_reason_name(enum httpsig_reason r);

/* Result of a key lookup made by the verifier. */
enum httpsig_key_kind {
	HTTPSIG_KEY_NONE,   /* unknown keyId */
	HTTPSIG_KEY_CLIENT, /* usable as a client key */
	HTTPSIG_KEY_SERVER_ONLY
};
typedef enum httpsig_key_kind httpsig_key_lookup_cb(void *arg, const char *keyid,
                                                    const struct keys_pub **pub);
/* Returns true if this request id was already used (and records it if not). */
typedef bool httpsig_replay_cb(void *arg, const char *request_id, time_t now);

struct httpsig_verify_opts {
	const char *expected_host; /* compared case-insensitively; NULL skips */
	time_t now;
	int max_skew; /* seconds, >= EWP_DATE_WINDOW_SECS */
	httpsig_key_lookup_cb *lookup;
	void *lookup_arg;
	httpsig_replay_cb *replay; /* NULL: no replay check */
	void *replay_arg;
};

struct httpsig_verdict {
	int status; /* 200, 400, 401 or 403 */
	enum httpsig_reason reason;
	char message[512]; /* precise developer-message on failure */
	char keyid[CODEC_SHA256_HEX_LEN + 1];
	char request_id[CODEC_UUID_LEN + 1];
	char *signature; /* the request's signature parameter (owned) */
	/* lower-case names from headers="", in order, owned */
	char *signed_headers[HTTPSIG_MAX_SIGNED_HEADERS];
	size_t nsigned;
};

/*
 * Verifies a request in the Registry validator's order (ewp-notes 2.3).
 * Always fills v (free it with httpsig_verdict_free). Returns v->status.
 */
int httpsig_verify_request(const struct httpsig_msg *m, const struct httpsig_verify_opts *o,
                           struct httpsig_verdict *v);
void httpsig_verdict_free(struct httpsig_verdict *v);
/* True when name (any case) is among the verdict's signed headers. */
bool httpsig_verdict_signed(const struct httpsig_verdict *v, const char *name);

/* "SHA-256=<base64>" of body into out (>= 60 bytes). */
void httpsig_digest_value(const void *body, size_t len, char *out, size_t outlen);
/*
 * Checks a Digest header value (comma-separated alg=value pairs, algorithm
 * names case-insensitive) against body. 0 on match; -1 with a message
 * ("expected X, received Y") otherwise.
 */
int httpsig_check_digest(const char *header_value, const void *body, size_t len, char *msg,
                         size_t msglen) EWP_MUSTCHECK;
/* True when an Accept-Signature value lists rsa-sha256 (any case). */
bool httpsig_accepts_rsa_sha256(const char *accept_signature);

/* A header produced by the signing helpers; both strings owned. */
struct httpsig_out_header {
	char *name;
	char *value;
};
struct httpsig_out {
	struct httpsig_out_header h[8];
	size_t n;
};
void httpsig_out_free(struct httpsig_out *o);
/* Value of a produced header by name (case-insensitive), or NULL. */
const char *httpsig_out_get(const struct httpsig_out *o, const char *name);

/*
 * Server side: the headers to add to a response so that it is signed as
 * srvauth-httpsig says: Date, Digest (of body as sent), X-Request-Id (when
 * request_id is not NULL), X-Request-Signature (when request_signature is
 * not NULL), and Signature. Returns -1 only on an OpenSSL failure.
 */
int httpsig_sign_response(const struct keys_priv *key, const void *body, size_t len,
                          const char *request_id, const char *request_signature, time_t now,
                          struct httpsig_out *out) EWP_MUSTCHECK;

/*
 * Client side: the headers to add to a request: Host, Date, Digest,
 * X-Request-Id (fresh v4 UUID), Accept-Signature: rsa-sha256 and
 * Authorization: Signature ... covering (request-target) host date digest
 * x-request-id. `host` is the Host value to send (with :port if not
 * default).
 */
int httpsig_sign_request(const struct keys_priv *key, const char *method, const char *target,
                         const char *host, const void *body, size_t len, time_t now,
                         struct httpsig_out *out) EWP_MUSTCHECK;

/*
 * Client side: verifies a partner's response (ewp-notes 2.5): X-Request-Id
 * echoes ours, Signature present with rsa-sha256, required headers signed,
 * X-Request-Signature equals ours, dates within max_skew, keyId accepted by
 * lookup (which must only answer HTTPSIG_KEY_CLIENT for a server key of the
 * host serving the endpoint), signature, then Digest. `(request-target)`
 * in headers="" is rebuilt from method/target of our request.
 */
struct httpsig_response_opts {
	const char *request_method;
	const char *request_target;
	const char *request_id;
	const char *request_signature;
	time_t now;
	int max_skew;
	httpsig_key_lookup_cb *lookup;
	void *lookup_arg;
};
int httpsig_verify_response(const struct httpsig_header *headers, size_t nheaders, const void *body,
                            size_t len, const struct httpsig_response_opts *o,
                            struct httpsig_verdict *v);

#endif
