/*
 * httpc.h - outbound EWP requests: signed with our client key, sent over
 * libcurl's multi socket interface on the process's libevent loop, and
 * answered with the partner's response verified against the catalogue.
 *
 * One struct httpc per process (it holds the CURLM, hence the connection
 * pool and the TLS session cache). A request is signed with
 * httpsig_sign_request (cliauth-httpsig) before it leaves, goes out over
 * https only with certificate and host-name verification always on, and
 * is finished exactly once: its callback runs with the transport outcome,
 * the status, the raw header lines of the final response (order and
 * duplicates kept), the bounded body and the verdict of
 * httpsig_verify_response (srvauth-httpsig: X-Request-Id echo,
 * X-Request-Signature, dates, the keyId being a server key of the host
 * whose catalogue entry lists the URL, the signature, then Digest).
 *
 * Threading: everything runs on the loop of the event_base given to
 * httpc_new; nothing here blocks. curl_global_init() must have run before
 * httpc_new (main and ewpctl do it at start-up; tests too).
 *
 * Ownership: the caller keeps the key and the registry snapshot alive
 * until the request's callback has run or the request was cancelled; all
 * other parameters are copied. The result given to a callback, and
 * everything it points to, is lent for the duration of the callback only.
 */
#ifndef HTTPC_H
#define HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#include "ewpd.h"
#include "httpsig.h"
#include "keys.h"
#include "registry.h"

struct event_base;

#define HTTPC_DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define HTTPC_DEFAULT_TIMEOUT_MS         60000L
#define HTTPC_DEFAULT_MAX_CONNECTIONS    64L /* whole process */
#define HTTPC_DEFAULT_MAX_HOST_CONNS     8L  /* per partner host; more requests queue */
#define HTTPC_MAX_RESPONSE_HEADERS       EWP_MAX_HEADERS
#define HTTPC_MAX_RESPONSE_HEADER_BYTES  EWP_MAX_HEADER_BYTES /* all responses, 1xx included */

struct httpc;
struct httpc_req;

struct httpc_opts {
	const char *ca_file;       /* PEM trust anchors; NULL: the system store */
	const char *proxy;         /* NULL: none (http_proxy & co. are ignored) */
	long max_connections;      /* 0: HTTPC_DEFAULT_MAX_CONNECTIONS */
	long max_host_connections; /* 0: HTTPC_DEFAULT_MAX_HOST_CONNS */
};

/* NULL when libcurl cannot be set up (logged). Strings in o are copied. */
struct httpc *httpc_new(struct event_base *base, const struct httpc_opts *o);
/*
 * Finishes every pending request with HTTPC_ERR_SHUTDOWN (so that each
 * requester is told exactly once), then releases libcurl's multi handle.
 * Call it before event_base_free, never from an httpc callback. NULL ok.
 */
void httpc_free(struct httpc *h);

/* Transport outcome; only HTTPC_ERR_NONE means a response was received whole. */
enum httpc_error {
	HTTPC_ERR_NONE = 0,
	HTTPC_ERR_TIMEOUT,   /* connect or total timeout passed */
	HTTPC_ERR_CONNECT,   /* name resolution, refused, unreachable */
	HTTPC_ERR_TLS,       /* handshake failed, certificate not trusted or not for this host */
	HTTPC_ERR_TOO_LARGE, /* body past max_response_bytes, or headers past their ceiling */
	HTTPC_ERR_TRANSFER,  /* connection broke mid-exchange, malformed HTTP */
	HTTPC_ERR_SHUTDOWN,  /* httpc_free ran before the response came */
	HTTPC_ERR_INTERNAL   /* libcurl refused something it should not have */
	                     /* A cancelled request has no value here: it never gets a callback. */
};

/* Short stable name ("timeout"), for logs and metric labels. */
const char *httpc_error_name(enum httpc_error e);

/* What the callback is told. All pointers lent during the callback only. */
struct httpc_result {
	enum httpc_error error;
	const char *error_message; /* "" when error == HTTPC_ERR_NONE */
	const char *method;
	const char *url;
	const char *request_id; /* the X-Request-Id we sent */
	long duration_ms;       /* from httpc_request to completion, queueing included */
	/* What we sent: the headers we set (Host is curl's) and the body. */
	const struct httpsig_header *request_headers;
	size_t nrequest_headers;
	const char *request_body;
	size_t request_body_len;
	long status; /* HTTP status of the final response; 0 if none came */
	/* Header lines of the final response as received (1xx and trailers left out). */
	const struct httpsig_header *headers;
	size_t nheaders;
	/* The body, NUL-terminated past body_len; empty unless error == NONE. */
	const char *body;
	size_t body_len;
	/*
	 * Response signature, checked for every complete response (errors
	 * included: partners SHOULD sign them too). verified is true only
	 * when the verdict is 200. verdict is NULL when no check ran
	 * (error != NONE); its message says why a response was refused and
	 * its signed_headers which header lines may be relied upon.
	 */
	bool verified;
	const struct httpsig_verdict *verdict;
};

typedef void httpc_done_cb(const struct httpc_result *res, void *arg);

struct httpc_params {
	const char *method; /* "GET" or "POST"; NULL: POST with a body, else GET */
	const char *url;    /* https:// only, exactly as the catalogue lists it */
	const void *body;   /* POST only; NULL with body_len 0 for none */
	size_t body_len;
	const char *content_type;    /* POST; NULL: application/x-www-form-urlencoded */
	const struct keys_priv *key; /* our client key (signs the request) */
	const struct registry *reg;  /* snapshot that verifies the response */
	long connect_timeout_ms;     /* 0: HTTPC_DEFAULT_CONNECT_TIMEOUT_MS */
	long timeout_ms;             /* whole exchange; 0: HTTPC_DEFAULT_TIMEOUT_MS */
	size_t max_response_bytes;   /* body ceiling; 0: EWP_MAX_RESPONSE_BYTES */
};

/*
 * Signs and starts a request. cb(result, arg) runs later, from the loop,
 * exactly once, unless the request is cancelled first. Returns NULL with a
 * reason in err when the request cannot even start: not an https URL, a
 * URL that no host of p->reg lists (its response could never be
 * verified), a body on GET, an unusable content type, signing failed, or
 * httpc_free is under way. The handle is valid until cb has returned.
 */
struct httpc_req *httpc_request(struct httpc *h, const struct httpc_params *p, httpc_done_cb *cb,
                                void *arg, char *err, size_t errlen);
/*
 * The requester is gone: stops the transfer and frees the request; cb is
 * never called. NULL, or the request whose callback is running, is a no-op.
 */
void httpc_cancel(struct httpc_req *r);
/* Requests started and not yet finished or cancelled. */
size_t httpc_pending(const struct httpc *h);

/*
 * Where to send a call: the catalogue entry of API `api_ns` (the
 * manifest-entry namespace) on the host covering hei_id, highest version
 * first, and its endpoint `url_name` ("url", "get-url", "index-url", ...).
 * A thin wrapper over registry_api and registry_api_url; everything is
 * lent with the snapshot.
 */
struct httpc_endpoint {
	const struct registry_api *api;
	const char *url;
};
/* 0, or -1 with the reason ("no host covering ... implements ...") in err. */
int httpc_endpoint(const struct registry *reg, const char *hei_id, const char *api_ns,
                   const char *url_name, struct httpc_endpoint *out, char *err,
                   size_t errlen) EWP_MUSTCHECK;
/* Limit of the entry ("max-hei-ids"); fallback when absent (registry_api_limit). */
int httpc_endpoint_limit(const struct httpc_endpoint *e, const char *name, int fallback);

#endif
