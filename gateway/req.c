/*
 * req.c - request context, replies, error responses and response signing.
 *
 * This file and server.c are the only ones that include evhttp headers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "codec.h"
#include "log.h"
#include "msglog.h"
#include "req.h"
#include "xmalloc.h"
#include "xmlw.h"

#define COMMON_TYPES_NS                                                                            \
	"https://github.com/erasmus-without-paper/ewp-specs-architecture/blob/stable-v1/"          \
	"common-types.xsd"

static const char *
req_method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	}
	return "UNKNOWN";
}

static void
req_free(struct req *rq)
{
	if (rq == NULL)
		return;
	free(rq->path);
	free(rq->headers);
	free(rq->received);
	form_free(&rq->form);
	httpsig_verdict_free(&rq->verdict);
	snap_unref(rq->snap);
	rq->d->inflight--;
	free(rq);
}

/* Copies header pointers (they live as long as the evhttp request). */
static int
req_collect_headers(struct req *rq)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(rq->ev);
	struct evkeyval *kv;
	size_t n = 0;

	TAILQ_FOREACH(kv, in, next)
	n++;
	if (n > EWP_MAX_HEADERS)
		return -1;
	rq->headers = xcalloc(n ? n : 1, sizeof(*rq->headers));
	TAILQ_FOREACH(kv, in, next)
	{
		rq->headers[rq->nheaders].name = kv->key;
		rq->headers[rq->nheaders].value = kv->value;
		rq->nheaders++;
	}
	rq->received = xcalloc(n ? n : 1, sizeof(*rq->received));
	memcpy(rq->received, rq->headers, n * sizeof(*rq->received));
	rq->nreceived = n;
	return 0;
}

struct req *
req_new(struct ewpd *d, struct evhttp_request *ev)
{
	struct req *rq = xcalloc(1, sizeof(*rq));
	struct evbuffer *body = evhttp_request_get_input_buffer(ev);
	struct msglog_entry when;
	const char *q;

	clock_gettime(CLOCK_MONOTONIC, &rq->start);
	msglog_entry_start(&when);
	rq->started_at = when.started;
	rq->started_us = when.started_us;
	d->inflight++;
	rq->d = d;
	rq->ev = ev;
	rq->metric = METRICS_API_OTHER;
	rq->method = req_method_name(evhttp_request_get_command(ev));
	rq->target = evhttp_request_get_uri(ev);
	q = strchr(rq->target, '?');
	rq->path = q ? xstrndup(rq->target, (size_t)(q - rq->target)) : xstrdup(rq->target);
	rq->query = q ? q + 1 : "";
	rq->body_len = evbuffer_get_length(body);
	rq->body = rq->body_len ? (const char *)evbuffer_pullup(body, -1) : "";
	rq->close = d->draining;
	if (req_collect_headers(rq) == -1) {
		rq->close = true;
		req_error(rq, 400, "more than %d request headers", EWP_MAX_HEADERS);
		return NULL;
	}
	return rq;
}

const char *
req_header(const struct req *rq, const char *name)
{
	for (size_t i = 0; i < rq->nheaders; i++)
		if (strcasecmp(rq->headers[i].name, name) == 0)
			return rq->headers[i].value;
	return NULL;
}

size_t
req_header_count(const struct req *rq, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < rq->nheaders; i++)
		if (strcasecmp(rq->headers[i].name, name) == 0)
			n++;
	return n;
}

void
req_keep_signed_headers(struct req *rq)
{
	size_t kept = 0;

	for (size_t i = 0; i < rq->nheaders; i++)
		if (httpsig_verdict_signed(&rq->verdict, rq->headers[i].name))
			rq->headers[kept++] = rq->headers[i];
	rq->nheaders = kept;
}

void
req_add_header(struct req *rq, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(rq->ev), name, value);
}

/* Signs the reply as srvauth-httpsig says; failure is logged, not fatal. */
static void
req_sign_reply(struct req *rq, const char *body, size_t len, time_t now)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(rq->ev);
	const char *rid = rq->verdict.request_id[0] ? rq->verdict.request_id : NULL;
	struct httpsig_out sig = {.n = 0};

	/* A refused request still gets its X-Request-Id back, when well formed. */
	if (rid == NULL && req_header_count(rq, "X-Request-Id") == 1 &&
	    codec_is_canonical_uuid(req_header(rq, "X-Request-Id")))
		rid = req_header(rq, "X-Request-Id");

	if (rq->d->server_key == NULL)
		return;
	if (httpsig_sign_response(rq->d->server_key, body, len, rid, rq->verdict.signature, now,
	                          &sig) == -1) {
		log_warnx("could not sign the response to %s %s", rq->method, rq->path);
		return;
	}
	for (size_t i = 0; i < sig.n; i++) {
		evhttp_remove_header(out, sig.h[i].name);
		evhttp_add_header(out, sig.h[i].name, sig.h[i].value);
	}
	httpsig_out_free(&sig);
	metrics_add(&rq->d->metrics->signed_responses, 1);
}

static uint64_t
req_elapsed_us(const struct req *rq)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - rq->start.tv_sec) * 1000000 +
	       (uint64_t)((now.tv_nsec - rq->start.tv_nsec) / 1000);
}

static void
req_log_reply(const struct req *rq, int status, uint64_t us)
{
	const char *key = rq->verdict.keyid[0] ? rq->verdict.keyid : "-";
	const char *rid = rq->verdict.request_id[0] ? rq->verdict.request_id : "-";

	if (status >= 500)
		log_warnx("%s %s %d %.2fms key=%.12s rid=%s", rq->method, rq->path, status,
		          us / 1000.0, key, rid);
	else if (log_enabled(LOG_LEVEL_INFO))
		log_info("%s %s %d %.2fms key=%.12s rid=%s", rq->method, rq->path, status,
		         us / 1000.0, key, rid);
}

/* One row of the message log, written before evhttp may free what it points to. */
static void
req_log_exchange(const struct req *rq, int status, const char *body, size_t len, uint64_t us)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(rq->ev);
	struct httpsig_header sent[EWP_MAX_HEADERS];
	struct evkeyval *kv;
	size_t nsent = 0;
	struct msglog_entry e = {
	    .outbound = false,
	    .started = rq->started_at,
	    .started_us = rq->started_us,
	    .method = rq->method,
	    .url = rq->target,
	    .partner_heis = rq->caller_heis,
	    .npartner_heis = rq->ncaller_heis,
	    .api = rq->api_name,
	    .api_version = rq->api_version,
	    .status = status,
	    .duration_ms = (long)(us / 1000),
	    .key_id = rq->verdict.keyid[0] ? rq->verdict.keyid : NULL,
	    .request_headers = rq->received,
	    .nrequest_headers = rq->nreceived,
	    .request_body = rq->body,
	    .request_body_len = rq->body_len,
	    .response_body = body,
	    .response_body_len = len,
	    .error = status >= 400 ? rq->error_message : NULL,
	    .body_max = rq->authenticated ? 0 : MSGLOG_ANON_BODY_MAX,
	};

	if (rq->verdict.request_id[0])
		e.request_id = rq->verdict.request_id;
	else if (req_header_count(rq, "X-Request-Id") == 1)
		e.request_id = req_header(rq, "X-Request-Id");
	TAILQ_FOREACH(kv, out, next)
	{
		if (nsent == EWP_MAX_HEADERS)
			break;
		sent[nsent].name = kv->key;
		sent[nsent].value = kv->value;
		nsent++;
	}
	e.response_headers = sent;
	e.nresponse_headers = nsent;
	msglog_add(rq->d->msglog, &e);
}

void
req_reply(struct req *rq, int status, const char *content_type, const char *body, size_t len)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(rq->ev);
	struct evbuffer *ob = evbuffer_new();
	char date[CODEC_HTTP_DATE_LEN + 1];
	time_t now = time(NULL);
	uint64_t us;

	/* Set every header ourselves so nothing is added after signing. */
	evhttp_add_header(out, "Content-Type", content_type);
	if (rq->sign_response) {
		req_sign_reply(rq, body, len, now);
	} else {
		codec_http_date(now, date);
		evhttp_add_header(out, "Date", date);
	}
	if (rq->close)
		evhttp_add_header(out, "Connection", "close");
	if (ob == NULL)
		fatalx("out of memory (evbuffer)");
	if (len && evbuffer_add(ob, body, len) == -1)
		fatalx("out of memory (evbuffer_add)");
	us = req_elapsed_us(rq);
	if (rq->log_exchange)
		req_log_exchange(rq, status, body, len, us);
	evhttp_send_reply(rq->ev, status, NULL, ob);
	evbuffer_free(ob);
	metrics_request(rq->d->metrics, rq->metric, status, us);
	req_log_reply(rq, status, us);
	req_free(rq);
}

/*
 * A message cut by vsnprintf may end inside a multi-byte character, and
 * echoed input may not be UTF-8 at all: keep the text well-formed XML by
 * replacing every byte that is not part of a complete UTF-8 sequence.
 */
static void
req_utf8_clean(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		size_t len = *p < 0x80             ? 1
		             : (*p & 0xe0) == 0xc0 ? 2
		             : (*p & 0xf0) == 0xe0 ? 3
		             : (*p & 0xf8) == 0xf0 ? 4
		                                   : 0;
		size_t i = 1;

		while (i < len && (p[i] & 0xc0) == 0x80)
			i++;
		if (len == 0 || i < len) {
			*p++ = '?';
			continue;
		}
		p += len;
	}
}

void
req_error(struct req *rq, int status, const char *fmt, ...)
{
	char msg[1024];
	struct buf b;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	req_utf8_clean(msg);
	buf_init(&b, 16 * 1024);
	if (buf_addstr(&b, XMLW_DECL "<error-response xmlns=\"" COMMON_TYPES_NS "\">") == -1 ||
	    xmlw_elem(&b, "developer-message", msg) == -1 ||
	    buf_addstr(&b, "</error-response>\n") == -1)
		fatalx("error response too large");
	if (status == 401) {
		req_add_header(rq, "WWW-Authenticate", "Signature realm=\"EWP\"");
		req_add_header(rq, "Want-Digest", "SHA-256");
	}
	log_debug("%s %s -> %d: %s", rq->method, rq->path, status, msg);
	rq->error_message = msg;
	req_reply(rq, status, "text/xml; charset=utf-8", b.data, b.len);
	buf_free(&b);
}
