/*
 * req.h - one inbound HTTP request, from arrival to the one reply.
 *
 * Handlers see a struct req and these helpers, never evhttp: the raw
 * target, the headers (after authentication, only the signed ones), the
 * raw body, the parsed parameters and the caller's HEIs. Everything the
 * request allocates hangs off it and is released by the reply, which is
 * sent exactly once; responses are signed there when the caller asked.
 */
#ifndef REQ_H
#define REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "daemon.h"
#include "ewpd.h"
#include "form.h"
#include "httpsig.h"
#include "metrics.h"

struct evhttp_request;

struct req {
	struct ewpd *d;
	struct evhttp_request *ev;
	const char *method;             /* "GET", "POST", ... */
	const char *target;             /* path and query exactly as received */
	char *path;                     /* target up to '?' */
	const char *query;              /* after '?', or "" */
	struct httpsig_header *headers; /* as received, order and duplicates kept */
	size_t nheaders;
	struct httpsig_header *received; /* all of them, even after unsigned ones are dropped */
	size_t nreceived;
	const char *body;
	size_t body_len;
	struct form form; /* parameters (query for GET, body for POST) */
	struct httpsig_verdict verdict;
	bool authenticated;
	struct snap *snap; /* catalogue the caller was checked against */
	const char *const *caller_heis;
	size_t ncaller_heis;
	enum metrics_api metric;
	struct timespec start;
	bool sign_response; /* Accept-Signature asked for rsa-sha256 */
	bool close;         /* send Connection: close */
	/* The EWP message log: requests routed to the API table are logged. */
	bool log_exchange;
	const char *api_name, *api_version; /* the API matched, NULL: none */
	const char *error_message;          /* developer-message of an error reply */
	long started_us;                    /* wall clock of arrival, for the log */
	time_t started_at;
};

/* Builds a request from evhttp's; NULL after answering it when unusable. */
struct req *req_new(struct ewpd *d, struct evhttp_request *ev);

/* First value of a header (any case), or NULL. */
const char *req_header(const struct req *rq, const char *name);
size_t req_header_count(const struct req *rq, const char *name);
/* Drops every header the caller did not sign (ewp-notes 2.3 step 9). */
void req_keep_signed_headers(struct req *rq);

/* Sends the reply, signs it when asked, logs it, frees rq. */
void req_reply(struct req *rq, int status, const char *content_type, const char *body, size_t len);
/* An EWP <error-response> with a developer-message; frees rq. */
void req_error(struct req *rq, int status, const char *fmt, ...) EWP_PRINTF(3, 4);
/* Adds a header to the reply (before req_reply). */
void req_add_header(struct req *rq, const char *name, const char *value);

#endif
