/*
 * fetch.c - blocking download of a catalogue over https:// or file://.
 *
 * libcurl easy interface, so the calling process blocks for up to
 * timeout_secs: fine in the supervisor (which serves no requests) and in
 * ewpctl, never in a worker. TLS verification cannot be turned off; the
 * body is bounded by max_bytes (the write callback refuses the byte past
 * it); redirects are not followed, so the URL configured is the one used.
 * curl_global_init runs lazily on first use: these callers are
 * single-threaded.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "buf.h"
#include "fetch.h"
#include "xmalloc.h"

#define FETCH_CONNECT_TIMEOUT 10L

/* What the callbacks share during one transfer. */
struct fetch_state {
	struct fetch_result *res;
	bool too_big;
};

static bool fetch_curl_ready;

static int
fetch_global_init(void)
{
	if (fetch_curl_ready)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	fetch_curl_ready = true;
	return 0;
}

static void fetch_error(struct fetch_result *res, const char *fmt, ...) EWP_PRINTF(2, 3);

static void
fetch_error(struct fetch_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
}

static size_t
fetch_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fetch_state *st = arg;
	size_t n = size * nmemb;

	if (buf_add(&st->res->body, data, n) == -1) {
		st->too_big = true;
		return 0; /* anything short of n aborts the transfer */
	}
	return n;
}

/* "Name: value" -> owned trimmed value when the name matches; NULL otherwise. */
static char *
fetch_header_value(const char *line, size_t len, const char *name)
{
	size_t nlen = strlen(name);
	const char *v, *end = line + len;

	if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
		return NULL;
	v = line + nlen + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return xstrndup(v, (size_t)(end - v));
}

static void
fetch_replace(char **slot, char *value)
{
	free(*slot);
	*slot = value;
}

/* Keeps the validators of the last response (a new status line resets them). */
static size_t
fetch_header_cb(char *line, size_t size, size_t nmemb, void *arg)
{
	struct fetch_state *st = arg;
	size_t n = size * nmemb;
	char *v;

	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		fetch_replace(&st->res->etag, NULL);
		fetch_replace(&st->res->last_modified, NULL);
	} else if ((v = fetch_header_value(line, n, "ETag")) != NULL) {
		fetch_replace(&st->res->etag, v);
	} else if ((v = fetch_header_value(line, n, "Last-Modified")) != NULL) {
		fetch_replace(&st->res->last_modified, v);
	}
	return n;
}

static bool
fetch_scheme_ok(const char *url)
{
	return strncasecmp(url, "https://", 8) == 0 || strncasecmp(url, "file://", 7) == 0;
}

/* A header value we send must not be able to start another header. */
static bool
fetch_header_safe(const char *v)
{
	return strpbrk(v, "\r\n") == NULL;
}

/* Conditional-request headers; -1 when a stored validator is unusable. */
static int
fetch_conditionals(const struct fetch_opts *o, struct curl_slist **hdrs)
{
	struct curl_slist *l;
	char *h;

	if (o->etag != NULL && *o->etag != '\0') {
		if (!fetch_header_safe(o->etag))
			return -1;
		h = xasprintf("If-None-Match: %s", o->etag);
		l = curl_slist_append(*hdrs, h);
		free(h);
		if (l == NULL)
			return -1;
		*hdrs = l;
	}
	if (o->last_modified != NULL && *o->last_modified != '\0') {
		if (!fetch_header_safe(o->last_modified))
			return -1;
		h = xasprintf("If-Modified-Since: %s", o->last_modified);
		l = curl_slist_append(*hdrs, h);
		free(h);
		if (l == NULL)
			return -1;
		*hdrs = l;
	}
	return 0;
}

static int
fetch_setup(CURL *c, const struct fetch_opts *o, struct fetch_state *st, struct curl_slist *hdrs,
            char *errbuf)
{
	long timeout = o->timeout_secs > 0 ? o->timeout_secs : 0;
	CURLcode rc = CURLE_OK;

	/* Each call is checked by the chain; the first failure sticks. */
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_URL, o->url);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,file");
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (o->ca_file != NULL)
		rc = rc ? rc : curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
	rc = rc ? rc
	        : curl_easy_setopt(
	              c, CURLOPT_CONNECTTIMEOUT,
	              timeout && timeout < FETCH_CONNECT_TIMEOUT ? timeout : FETCH_CONNECT_TIMEOUT);
	if (o->max_bytes > 0) /* 0 would mean "unlimited" to libcurl */
		rc = rc ? rc
		        : curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_USERAGENT, "ewpd/" EWPD_VERSION);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_write_cb);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_WRITEDATA, st);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, fetch_header_cb);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_HEADERDATA, st);
	rc = rc ? rc : curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	return rc == CURLE_OK ? 0 : -1;
}

/* Maps the finished transfer onto a status. */
static enum fetch_status
fetch_outcome(CURL *c, CURLcode rc, const struct fetch_opts *o, struct fetch_state *st,
              const char *errbuf)
{
	struct fetch_result *res = st->res;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->http_status);
	if (st->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		fetch_error(res, "%s: body larger than %zu bytes", o->url, o->max_bytes);
		return FETCH_ERROR;
	}
	if (rc != CURLE_OK) {
		fetch_error(res, "%s: %s", o->url, *errbuf ? errbuf : curl_easy_strerror(rc));
		return FETCH_ERROR;
	}
	if (res->http_status == 304)
		return FETCH_NOT_MODIFIED;
	if (res->http_status == 200 ||
	    (res->http_status == 0 && strncasecmp(o->url, "file:", 5) == 0))
		return FETCH_OK;
	fetch_error(res, "%s: HTTP status %ld", o->url, res->http_status);
	return FETCH_ERROR;
}

static void
fetch_result_init(struct fetch_result *res, size_t max_bytes)
{
	buf_init(&res->body, max_bytes);
	res->etag = NULL;
	res->last_modified = NULL;
	res->http_status = 0;
	res->error[0] = '\0';
}

enum fetch_status
fetch_url(const struct fetch_opts *o, struct fetch_result *res)
{
	struct fetch_state st = {res, false};
	struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	enum fetch_status status = FETCH_ERROR;
	CURL *c = NULL;

	fetch_result_init(res, o->max_bytes);
	if (o->url == NULL || !fetch_scheme_ok(o->url))
		fetch_error(res, "%s: only https:// and file:// URLs are fetched",
		            o->url != NULL ? o->url : "(no URL)");
	else if (fetch_global_init() == -1 || (c = curl_easy_init()) == NULL)
		fetch_error(res, "%s: cannot initialise libcurl", o->url);
	else if (fetch_conditionals(o, &hdrs) == -1)
		fetch_error(res, "%s: stored ETag or Last-Modified is not a valid header value",
		            o->url);
	else if (fetch_setup(c, o, &st, hdrs, errbuf) == -1)
		fetch_error(res, "%s: libcurl refused an option (TLS backend or protocol missing?)",
		            o->url);
	else
		status = fetch_outcome(c, curl_easy_perform(c), o, &st, errbuf);
	curl_slist_free_all(hdrs);
	if (c != NULL)
		curl_easy_cleanup(c);
	if (status != FETCH_OK)
		buf_free(&res->body);
	return status;
}

void
fetch_result_free(struct fetch_result *res)
{
	if (res == NULL)
		return;
	buf_free(&res->body);
	free(res->etag);
	free(res->last_modified);
	res->etag = NULL;
	res->last_modified = NULL;
}
