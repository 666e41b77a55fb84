/*
 * httpc.c - outbound EWP requests on libcurl's multi socket interface,
 * driven by the process's libevent loop (STYLE 3.1).
 *
 * libcurl tells us which sockets to watch (httpc_sock_cb: one struct
 * httpc_sock per socket, attached with curl_multi_assign, re-armed on
 * every call and freed on CURL_POLL_REMOVE) and when to call it back
 * (httpc_timer_set_cb: one evtimer; a 0 ms request arms a zero-delay
 * timer, since libcurl must not be called from inside its timer
 * callback). When a socket or the timer fires we hand it to
 * curl_multi_socket_action, then drain curl_multi_info_read and finish
 * every CURLMSG_DONE: remove the handle, verify the response, call the
 * requester, free the request.
 *
 * A request owns everything it allocates: the easy handle, the parsed URL
 * (libcurl sends exactly the path we signed), the header list, a copy of
 * the body, the response header lines and the body buffer, whose ceiling
 * is also given to libcurl (CURLOPT_MAXFILESIZE_LARGE) so that an
 * announced oversized body is refused before it is read.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "buf.h"
#include "httpc.h"
#include "httpsig.h"
#include "log.h"
#include "registry.h"
#include "xmalloc.h"

/* One socket libcurl asked us to watch. */
struct httpc_sock {
	struct httpc *h;
	struct event *ev;
	struct httpc_sock *prev, *next;
};

struct httpc {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	char *ca_file;
	char *proxy;
	struct httpc_req *reqs; /* pending requests */
	size_t npending;
	struct httpc_sock *socks;
	int depth;    /* > 0 while a requester's callback runs */
	bool closing; /* httpc_free under way */
};

struct httpc_req {
	struct httpc *h;
	struct httpc_req *prev, *next;
	CURL *easy;
	CURLU *curlu;
	struct curl_slist *hdrs;
	char *method;
	char *url;
	char *target; /* path?query, as signed and sent */
	char *body;   /* our copy of the request body (never NULL) */
	size_t body_len;
	char *request_id;
	char *request_signature;
	struct httpsig_header sent[8]; /* request headers we set, for the message log */
	size_t nsent;
	const struct registry *reg;
	size_t host; /* catalogue host listing url */
	httpc_done_cb *cb;
	void *arg;
	struct timespec start;
	/* the response */
	struct buf resp;
	struct httpsig_header *headers; /* name and value share one allocation (name) */
	size_t nheaders, headers_cap;
	size_t header_bytes;
	bool headers_done; /* the blank line after the headers was seen */
	bool too_large;    /* a ceiling of ours stopped the transfer; message says which */
	bool delivering;   /* the callback is running */
	char errbuf[CURL_ERROR_SIZE];
	char message[CURL_ERROR_SIZE + 128];
};

const char *
httpc_error_name(enum httpc_error e)
{
	switch (e) {
	case HTTPC_ERR_NONE:
		return "none";
	case HTTPC_ERR_TIMEOUT:
		return "timeout";
	case HTTPC_ERR_CONNECT:
		return "connect";
	case HTTPC_ERR_TLS:
		return "tls";
	case HTTPC_ERR_TOO_LARGE:
		return "too_large";
	case HTTPC_ERR_TRANSFER:
		return "transfer";
	case HTTPC_ERR_SHUTDOWN:
		return "shutdown";
	case HTTPC_ERR_INTERNAL:
		return "internal";
	}
	return "unknown";
}

static void httpc_errf(char *err, size_t errlen, const char *fmt, ...) EWP_PRINTF(3, 4);

static void
httpc_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static long
httpc_elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - since->tv_sec) * 1000L +
	       (long)(now.tv_nsec - since->tv_nsec) / 1000000L;
}

/* ---- libcurl <-> libevent ---- */

static void httpc_check_done(struct httpc *h);

/* A watched socket is ready: let libcurl act on it. */
static void
httpc_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *h = arg;
	int flags = 0, running = 0;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	/* may free this socket's httpc_sock (CURL_POLL_REMOVE): touch nothing after */
	curl_multi_socket_action(h->multi, (curl_socket_t)fd, flags, &running);
	httpc_check_done(h);
}

/* The one timer libcurl asked for has expired. */
static void
httpc_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *h = arg;
	int running = 0;

	(void)fd;
	(void)what;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	httpc_check_done(h);
}

static void
httpc_sock_release(struct httpc *h, struct httpc_sock *sp)
{
	event_free(sp->ev);
	if (sp->prev != NULL)
		sp->prev->next = sp->next;
	else
		h->socks = sp->next;
	if (sp->next != NULL)
		sp->next->prev = sp->prev;
	free(sp);
}

/*
 * CURLMOPT_SOCKETFUNCTION: start, change or stop watching s. Also called
 * for libcurl's internal sockets and during curl_multi_cleanup.
 */
static int
httpc_sock_cb(CURL *easy, curl_socket_t s, int what, void *clientp, void *socketp)
{
	struct httpc *h = clientp;
	struct httpc_sock *sp = socketp;
	short kind;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (sp != NULL) {
			httpc_sock_release(h, sp);
			curl_multi_assign(h->multi, s, NULL);
		}
		return 0;
	}
	if (sp == NULL) {
		sp = xcalloc(1, sizeof(*sp));
		sp->h = h;
		sp->ev = event_new(h->base, s, 0, httpc_event_cb, h);
		if (sp->ev == NULL)
			fatalx("httpc: cannot allocate a socket event");
		sp->next = h->socks;
		if (h->socks != NULL)
			h->socks->prev = sp;
		h->socks = sp;
		curl_multi_assign(h->multi, s, sp);
	}
	kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
	               ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
	event_del(sp->ev);
	if (event_assign(sp->ev, h->base, s, kind, httpc_event_cb, h) == -1 ||
	    event_add(sp->ev, NULL) == -1) {
		log_warnx("httpc: cannot watch socket %d", (int)s);
		return -1; /* libcurl fails the transfers on this multi handle */
	}
	return 0;
}

/*
 * CURLMOPT_TIMERFUNCTION: one one-shot timer; -1 removes it. libcurl must
 * not be called from here, so 0 ms arms a zero-delay timer that the loop
 * runs on its next pass.
 */
static int
httpc_timer_set_cb(CURLM *multi, long timeout_ms, void *clientp)
{
	struct httpc *h = clientp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(h->timer, &tv) == 0 ? 0 : -1;
}

/* ---- response collection ---- */

static size_t
httpc_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct httpc_req *r = arg;
	size_t n = size * nmemb;

	if (buf_add(&r->resp, data, n) == -1) {
		r->too_large = true;
		snprintf(r->message, sizeof(r->message),
		         "response body larger than the ceiling of %zu bytes", r->resp.max);
		return CURL_WRITEFUNC_ERROR;
	}
	return n;
}

static void
httpc_headers_clear(struct httpc_req *r)
{
	for (size_t i = 0; i < r->nheaders; i++)
		free((char *)r->headers[i].name);
	r->nheaders = 0;
}

static bool
httpc_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* An obs-fold continuation line: joined to the previous value with one space. */
static void
httpc_header_fold(struct httpc_req *r, const char *s, const char *end)
{
	struct httpsig_header *last;
	size_t nlen, vlen;
	char *p;

	while (s < end && httpc_is_ows(*s))
		s++;
	if (r->nheaders == 0 || s == end)
		return;
	last = &r->headers[r->nheaders - 1];
	nlen = strlen(last->name);
	vlen = strlen(last->value);
	p = xmalloc(nlen + 1 + vlen + 1 + (size_t)(end - s) + 1);
	memcpy(p, last->name, nlen + 1);
	memcpy(p + nlen + 1, last->value, vlen);
	p[nlen + 1 + vlen] = ' ';
	memcpy(p + nlen + 1 + vlen + 1, s, (size_t)(end - s));
	p[nlen + 1 + vlen + 1 + (size_t)(end - s)] = '\0';
	free((char *)last->name);
	last->name = p;
	last->value = p + nlen + 1;
}

/* Stores "Name: value" (value without surrounding white space). */
static void
httpc_header_add(struct httpc_req *r, const char *line, const char *colon, const char *end)
{
	const char *v = colon + 1;
	size_t nlen = (size_t)(colon - line);
	char *p;

	while (v < end && httpc_is_ows(*v))
		v++;
	while (end > v && httpc_is_ows(end[-1]))
		end--;
	if (r->nheaders == r->headers_cap) {
		r->headers_cap = r->headers_cap ? r->headers_cap * 2 : 16;
		r->headers = xreallocarray(r->headers, r->headers_cap, sizeof(*r->headers));
	}
	p = xmalloc(nlen + 1 + (size_t)(end - v) + 1);
	memcpy(p, line, nlen);
	p[nlen] = '\0';
	memcpy(p + nlen + 1, v, (size_t)(end - v));
	p[nlen + 1 + (size_t)(end - v)] = '\0';
	r->headers[r->nheaders].name = p;
	r->headers[r->nheaders].value = p + nlen + 1;
	r->nheaders++;
}

/*
 * Every header line of every response libcurl reads. A status line starts
 * a new list (a 1xx was followed by the real response); lines after the
 * blank line that ends the headers are trailers and are not kept.
 */
static size_t
httpc_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct httpc_req *r = arg;
	size_t n = size * nmemb;
	const char *end = data + n, *colon;

	r->header_bytes += n;
	if (r->header_bytes > HTTPC_MAX_RESPONSE_HEADER_BYTES) {
		r->too_large = true;
		snprintf(r->message, sizeof(r->message),
		         "response headers larger than the ceiling of %d bytes",
		         HTTPC_MAX_RESPONSE_HEADER_BYTES);
		return CURL_WRITEFUNC_ERROR;
	}
	while (end > data && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		httpc_headers_clear(r);
		r->headers_done = false;
	} else if (end == data) {
		r->headers_done = true;
	} else if (r->headers_done) {
		/* a trailer: not a header the signature covers */
	} else if (httpc_is_ows(*data)) {
		httpc_header_fold(r, data, end);
	} else if ((colon = memchr(data, ':', (size_t)(end - data))) != NULL && colon != data) {
		if (r->nheaders == HTTPC_MAX_RESPONSE_HEADERS) {
			r->too_large = true;
			snprintf(r->message, sizeof(r->message),
			         "response has more than %d header lines",
			         HTTPC_MAX_RESPONSE_HEADERS);
			return CURL_WRITEFUNC_ERROR;
		}
		httpc_header_add(r, data, colon, end);
	}
	return n;
}

/* ---- completion ---- */

struct httpc_lookup {
	const struct registry *reg;
	size_t host;
};

/*
 * The response's keyId must be a server credential of the very host whose
 * catalogue entry lists the URL we called; any other key is refused.
 */
static enum httpsig_key_kind
httpc_lookup_cb(void *arg, const char *keyid, const struct keys_pub **pub)
{
	const struct httpc_lookup *l = arg;
	const struct registry_key *k = registry_key(l->reg, keyid);

	if (k == NULL || !registry_host_has_server_key(l->reg, l->host, keyid))
		return HTTPSIG_KEY_NONE;
	*pub = k->pub;
	return HTTPSIG_KEY_CLIENT; /* i.e. acceptable for this response */
}

static enum httpc_error
httpc_classify(CURLcode cc)
{
	switch (cc) {
	case CURLE_OK:
		return HTTPC_ERR_NONE;
	case CURLE_OPERATION_TIMEDOUT:
		return HTTPC_ERR_TIMEOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return HTTPC_ERR_CONNECT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_USE_SSL_FAILED:
		return HTTPC_ERR_TLS;
	case CURLE_FILESIZE_EXCEEDED:
		return HTTPC_ERR_TOO_LARGE;
	case CURLE_OUT_OF_MEMORY:
		fatalx("httpc: libcurl is out of memory");
	case CURLE_FAILED_INIT:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_NOT_BUILT_IN:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return HTTPC_ERR_INTERNAL;
	default:
		return HTTPC_ERR_TRANSFER;
	}
}

static void
httpc_unlink(struct httpc_req *r)
{
	struct httpc *h = r->h;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		h->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	h->npending--;
}

static void
httpc_req_free(struct httpc_req *r)
{
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	curl_url_cleanup(r->curlu);
	curl_slist_free_all(r->hdrs);
	httpc_headers_clear(r);
	free(r->headers);
	buf_free(&r->resp);
	free(r->method);
	free(r->url);
	free(r->target);
	free(r->body);
	free(r->request_id);
	free(r->request_signature);
	for (size_t i = 0; i < r->nsent; i++) {
		free((char *)r->sent[i].name);
		free((char *)r->sent[i].value);
	}
	free(r);
}

/* The part of a result every outcome shares. */
static void
httpc_result_init(struct httpc_req *r, struct httpc_result *res)
{
	memset(res, 0, sizeof(*res));
	res->error_message = "";
	res->method = r->method;
	res->url = r->url;
	res->request_id = r->request_id;
	res->duration_ms = httpc_elapsed_ms(&r->start);
	res->headers = r->headers;
	res->nheaders = r->nheaders;
	res->request_headers = r->sent;
	res->nrequest_headers = r->nsent;
	res->request_body = r->body;
	res->request_body_len = r->body_len;
	res->body = "";
	if (r->easy != NULL)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res->status);
}

/* Unlinks r, tells its requester, frees it. The handle is already off the multi. */
static void
httpc_deliver(struct httpc_req *r, const struct httpc_result *res)
{
	struct httpc *h = r->h;

	httpc_unlink(r);
	r->delivering = true;
	h->depth++;
	r->cb(res, r->arg);
	h->depth--;
	httpc_req_free(r);
}

static void
httpc_finish(struct httpc_req *r, CURLcode cc)
{
	struct httpsig_verdict v;
	struct httpc_result res;
	struct httpc_lookup l = {.reg = r->reg, .host = r->host};
	struct httpsig_response_opts o = {
	    .request_method = r->method,
	    .request_target = r->target,
	    .request_id = r->request_id,
	    .request_signature = r->request_signature,
	    .now = time(NULL),
	    .max_skew = EWP_DATE_WINDOW_SECS,
	    .lookup = httpc_lookup_cb,
	    .lookup_arg = &l,
	};
	bool ran = false;

	httpc_result_init(r, &res);
	res.error = r->too_large ? HTTPC_ERR_TOO_LARGE : httpc_classify(cc);
	if (res.error == HTTPC_ERR_NONE) {
		res.body = buf_cstr(&r->resp);
		res.body_len = r->resp.len;
		httpsig_verify_response(r->headers, r->nheaders, r->resp.data, r->resp.len, &o, &v);
		ran = true;
		res.verdict = &v;
		res.verified = v.status == 200;
	} else {
		if (!r->too_large) {
			if (cc == CURLE_FILESIZE_EXCEEDED)
				snprintf(r->message, sizeof(r->message),
				         "response announces a body larger than the ceiling of "
				         "%zu bytes",
				         r->resp.max);
			else
				snprintf(r->message, sizeof(r->message), "%s",
				         r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc));
		}
		res.error_message = r->message;
	}
	log_debug("httpc: %s %s %s: %s, status %ld, %ld ms, %s", r->method, r->url, r->request_id,
	          httpc_error_name(res.error), res.status, res.duration_ms,
	          ran ? (res.verified ? "signature verified" : v.message) : res.error_message);
	httpc_deliver(r, &res);
	if (ran)
		httpsig_verdict_free(&v);
}

static void
httpc_check_done(struct httpc *h)
{
	struct httpc_req *r;
	CURLMsg *m;
	CURLcode cc;
	CURL *easy;
	char *priv;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		easy = m->easy_handle;
		cc = m->data.result;
		priv = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		/* m is invalid from here on */
		curl_multi_remove_handle(h->multi, easy);
		r = (struct httpc_req *)(void *)priv;
		if (r != NULL)
			httpc_finish(r, cc);
	}
}

/* ---- starting a request ---- */

/* The signature parameter of our own Authorization value. */
static char *
httpc_own_signature(const char *auth)
{
	const char *s = auth != NULL ? strstr(auth, "signature=\"") : NULL;

	if (s == NULL)
		return NULL;
	s += strlen("signature=\"");
	return xstrndup(s, strcspn(s, "\""));
}

/*
 * Parses the URL once: libcurl sends exactly this parse (CURLOPT_CURLU),
 * so the request-target and Host we sign are the ones the partner sees.
 */
static int
httpc_parse_url(struct httpc_req *r, char **host, char *err, size_t errlen)
{
	char *scheme = NULL, *hostname = NULL, *port = NULL, *path = NULL, *query = NULL;
	char *user = NULL;
	int rc = -1;

	r->curlu = curl_url();
	if (r->curlu == NULL)
		fatalx("httpc: out of memory");
	if (curl_url_set(r->curlu, CURLUPART_URL, r->url, 0) != CURLUE_OK ||
	    curl_url_get(r->curlu, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(r->curlu, CURLUPART_HOST, &hostname, 0) != CURLUE_OK ||
	    curl_url_get(r->curlu, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		httpc_errf(err, errlen, "\"%.200s\" is not a URL", r->url);
		goto out;
	}
	if (strcmp(scheme, "https") != 0) {
		httpc_errf(err, errlen, "\"%.200s\": only https:// URLs are called", r->url);
		goto out;
	}
	if (curl_url_get(r->curlu, CURLUPART_USER, &user, 0) == CURLUE_OK) {
		httpc_errf(err, errlen, "\"%.200s\": credentials in a URL are refused", r->url);
		goto out;
	}
	(void)curl_url_get(r->curlu, CURLUPART_PORT, &port, 0);
	(void)curl_url_get(r->curlu, CURLUPART_QUERY, &query, 0);
	*host = port != NULL && strcmp(port, "443") != 0 ? xasprintf("%s:%s", hostname, port)
	                                                 : xstrdup(hostname);
	r->target = query != NULL ? xasprintf("%s?%s", path, query) : xstrdup(path);
	rc = 0;
out:
	curl_free(scheme);
	curl_free(hostname);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_free(user);
	return rc;
}

static void
httpc_add_header(struct httpc_req *r, const char *name, const char *value)
{
	char *line = xasprintf("%s: %s", name, value);
	struct curl_slist *l = curl_slist_append(r->hdrs, line);

	if (r->nsent < sizeof(r->sent) / sizeof(r->sent[0])) {
		r->sent[r->nsent].name = xstrdup(name);
		r->sent[r->nsent].value = xstrdup(value);
		r->nsent++;
	}
	free(line);
	if (l == NULL)
		fatalx("httpc: out of memory");
	r->hdrs = l;
}

/* Signs the request and builds the header list. */
static int
httpc_sign(struct httpc_req *r, const struct httpc_params *p, const char *host, char *err,
           size_t errlen)
{
	struct httpsig_out out;
	const char *id;

	if (httpsig_sign_request(p->key, r->method, r->target, host, r->body, r->body_len,
	                         time(NULL), &out) == -1) {
		httpc_errf(err, errlen, "signing the request to %.200s failed", r->url);
		return -1;
	}
	for (size_t i = 0; i < out.n; i++)
		httpc_add_header(r, out.h[i].name, out.h[i].value);
	id = httpsig_out_get(&out, "X-Request-Id");
	r->request_id = xstrdup(id != NULL ? id : "");
	r->request_signature = httpc_own_signature(httpsig_out_get(&out, "Authorization"));
	httpsig_out_free(&out);
	if (strcmp(r->method, "POST") == 0)
		httpc_add_header(r, "Content-Type",
		                 p->content_type != NULL ? p->content_type
		                                         : "application/x-www-form-urlencoded");
	/* no "Expect: 100-continue" round trip; the body goes with the headers */
	r->hdrs = curl_slist_append(r->hdrs, "Expect:");
	if (r->hdrs == NULL)
		fatalx("httpc: out of memory");
	return 0;
}

static int
httpc_setup(struct httpc_req *r, const struct httpc_params *p)
{
	struct httpc *h = r->h;
	long connect_ms =
	    p->connect_timeout_ms > 0 ? p->connect_timeout_ms : HTTPC_DEFAULT_CONNECT_TIMEOUT_MS;
	long total_ms = p->timeout_ms > 0 ? p->timeout_ms : HTTPC_DEFAULT_TIMEOUT_MS;
	CURL *c = r->easy;
	CURLcode rc = CURLE_OK;

	/* Each call is checked by the chain; the first failure sticks. */
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_CURLU, r->curlu);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (h->ca_file != NULL)
		rc = rc ? rc : curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_PROXY, h->proxy != NULL ? h->proxy : "");
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total_ms);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->resp.max);
	/* the Digest covers the body as sent: never let libcurl decode it */
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_USERAGENT, "ewpd/" EWPD_VERSION);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->hdrs);
	if (strcmp(r->method, "POST") == 0) {
		rc = rc ? rc
		        : curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
		rc = rc ? rc : curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
	} else {
		rc = rc ? rc : curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, httpc_write_cb);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, httpc_header_cb);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_PRIVATE, (void *)r);
	return rc == CURLE_OK ? 0 : -1;
}

/* Method and body rules; fills r->method and r->body. */
static int
httpc_check_params(struct httpc_req *r, const struct httpc_params *p, char *err, size_t errlen)
{
	const char *m = p->method != NULL ? p->method : p->body_len > 0 ? "POST" : "GET";

	if (strcasecmp(m, "GET") == 0) {
		r->method = xstrdup("GET");
	} else if (strcasecmp(m, "POST") == 0) {
		r->method = xstrdup("POST");
	} else {
		httpc_errf(err, errlen, "method \"%.20s\" is not used by EWP (GET or POST)", m);
		return -1;
	}
	if (p->body_len > 0 && p->body == NULL) {
		httpc_errf(err, errlen, "a body length without a body");
		return -1;
	}
	if (p->body_len > 0 && strcmp(r->method, "GET") == 0) {
		httpc_errf(err, errlen, "a GET request has no body");
		return -1;
	}
	if (p->content_type != NULL &&
	    (*p->content_type == '\0' || strpbrk(p->content_type, "\r\n") != NULL)) {
		httpc_errf(err, errlen, "content type \"%.60s\" is not a header value",
		           p->content_type);
		return -1;
	}
	r->body = xmalloc(p->body_len + 1);
	if (p->body_len > 0)
		memcpy(r->body, p->body, p->body_len);
	r->body[p->body_len] = '\0';
	r->body_len = p->body_len;
	return 0;
}

struct httpc_req *
httpc_request(struct httpc *h, const struct httpc_params *p, httpc_done_cb *cb, void *arg,
              char *err, size_t errlen)
{
	struct httpc_req *r;
	char *host = NULL;

	if (h->closing) {
		httpc_errf(err, errlen, "shutting down: no new outbound requests");
		return NULL;
	}
	if (p->url == NULL || p->key == NULL || p->reg == NULL || cb == NULL) {
		httpc_errf(err, errlen, "a request needs a URL, a key, a catalogue and a callback");
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->h = h;
	r->cb = cb;
	r->arg = arg;
	r->reg = p->reg;
	r->url = xstrdup(p->url);
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	buf_init(&r->resp, p->max_response_bytes > 0 ? p->max_response_bytes
	                                             : (size_t)EWP_MAX_RESPONSE_BYTES);
	if (httpc_check_params(r, p, err, errlen) == -1 ||
	    httpc_parse_url(r, &host, err, errlen) == -1)
		goto fail;
	if (registry_host_by_url(p->reg, p->url, &r->host) == -1) {
		httpc_errf(err, errlen,
		           "no host in the catalogue lists %.200s, so no server key could verify "
		           "its response",
		           p->url);
		goto fail;
	}
	if (httpc_sign(r, p, host, err, errlen) == -1)
		goto fail;
	if ((r->easy = curl_easy_init()) == NULL || httpc_setup(r, p) == -1) {
		httpc_errf(err, errlen, "libcurl refused the request to %.200s", p->url);
		goto fail;
	}
	if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
		httpc_errf(err, errlen, "libcurl cannot queue the request to %.200s", p->url);
		goto fail;
	}
	free(host);
	r->next = h->reqs;
	if (h->reqs != NULL)
		h->reqs->prev = r;
	h->reqs = r;
	h->npending++;
	return r;
fail:
	free(host);
	httpc_req_free(r);
	return NULL;
}

void
httpc_cancel(struct httpc_req *r)
{
	if (r == NULL || r->delivering)
		return;
	httpc_unlink(r);
	/* also drops a CURLMSG_DONE of r still queued for httpc_check_done */
	curl_multi_remove_handle(r->h->multi, r->easy);
	httpc_req_free(r);
}

size_t
httpc_pending(const struct httpc *h)
{
	return h->npending;
}

/* ---- the client ---- */

struct httpc *
httpc_new(struct event_base *base, const struct httpc_opts *o)
{
	struct httpc *h = xcalloc(1, sizeof(*h));
	long total = o != NULL && o->max_connections > 0 ? o->max_connections
	                                                 : HTTPC_DEFAULT_MAX_CONNECTIONS;
	long per_host = o != NULL && o->max_host_connections > 0 ? o->max_host_connections
	                                                         : HTTPC_DEFAULT_MAX_HOST_CONNS;
	CURLMcode rc = CURLM_OK;

	h->base = base;
	if ((h->multi = curl_multi_init()) == NULL) {
		log_warnx("httpc: cannot create a libcurl multi handle");
		free(h);
		return NULL;
	}
	if ((h->timer = evtimer_new(base, httpc_timeout_cb, h)) == NULL)
		fatalx("httpc: cannot allocate the timer event");
	rc = rc ? rc : curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, httpc_sock_cb);
	rc = rc ? rc : curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	rc = rc ? rc : curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, httpc_timer_set_cb);
	rc = rc ? rc : curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	rc = rc ? rc : curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, total);
	rc = rc ? rc : curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
	rc = rc ? rc : curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, total);
	if (rc != CURLM_OK) {
		log_warnx("httpc: libcurl refused a multi option: %s", curl_multi_strerror(rc));
		curl_multi_cleanup(h->multi);
		event_free(h->timer);
		free(h);
		return NULL;
	}
	if (o != NULL && o->ca_file != NULL)
		h->ca_file = xstrdup(o->ca_file);
	if (o != NULL && o->proxy != NULL)
		h->proxy = xstrdup(o->proxy);
	return h;
}

void
httpc_free(struct httpc *h)
{
	struct httpc_result res;
	struct httpc_req *r;

	if (h == NULL)
		return;
	if (h->depth > 0)
		fatalx("httpc_free called from an httpc callback");
	h->closing = true;
	while ((r = h->reqs) != NULL) {
		curl_multi_remove_handle(h->multi, r->easy);
		httpc_result_init(r, &res);
		res.error = HTTPC_ERR_SHUTDOWN;
		res.error_message = "shutting down before the response arrived";
		httpc_deliver(r, &res);
	}
	/* may still call httpc_sock_cb (CURL_POLL_REMOVE) and the timer callback */
	curl_multi_cleanup(h->multi);
	while (h->socks != NULL)
		httpc_sock_release(h, h->socks);
	event_free(h->timer);
	free(h->ca_file);
	free(h->proxy);
	free(h);
}

/* ---- endpoints ---- */

int
httpc_endpoint(const struct registry *reg, const char *hei_id, const char *api_ns,
               const char *url_name, struct httpc_endpoint *out, char *err, size_t errlen)
{
	const struct registry_api *a;
	const char *url;

	if ((a = registry_api(reg, hei_id, api_ns)) == NULL) {
		if (!registry_hei_known(reg, hei_id))
			httpc_errf(err, errlen, "HEI %.100s is not in the catalogue", hei_id);
		else
			httpc_errf(err, errlen, "no host covering HEI %.100s implements %.300s",
			           hei_id, api_ns);
		return -1;
	}
	url = registry_api_url(a, url_name);
	if (url == NULL || *url == '\0') {
		httpc_errf(err, errlen,
		           "the %.40s API (version %.20s) of HEI %.100s has no <%.40s>", a->name,
		           a->version, hei_id, url_name);
		return -1;
	}
	out->api = a;
	out->url = url;
	return 0;
}

int
httpc_endpoint_limit(const struct httpc_endpoint *e, const char *name, int fallback)
{
	return registry_api_limit(e->api, name, fallback);
}
