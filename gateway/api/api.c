/*
 * api.c - routing of EWP requests: path, method, authentication,
 * parameters, then the API's handler.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "xmlw.h"
#include "log.h"
#include "registry.h"
#include "req.h"

const struct api_entry *const api_table[] = {
    &api_discovery_entry,
    &api_echo_entry,
    &api_institutions_entry,
    &api_ounits_entry,
    &api_course_replication_entry,
    &api_courses_entry,
    &api_factsheet_entry, /* only when [ewp] factsheet is set */
    &api_omobility_cnr_v1_entry,
    &api_omobility_cnr_v2_entry,
    &api_omobility_la_cnr_entry,
    /* its stats endpoint, listed as stats-url in the entry above */
    &api_omobility_la_cnr_stats_entry,
    &api_omobilities_get_entry,
    &api_omobilities_index_entry,
    &api_omobilities_update_entry,
    &api_las_get_entry,
    &api_las_index_entry,
    &api_las_update_entry,
    &api_las_stats_entry,
    &api_imobilities_entry,
    &api_imobility_cnr_v2_entry,
    NULL,
};

int
api_manifest_http_security(struct buf *out)
{
	return buf_addstr(out, "<http-security>"
	                       "<sec:client-auth-methods>"
	                       "<httpsig xmlns=\"https://github.com/erasmus-without-paper/"
	                       "ewp-specs-sec-cliauth-httpsig/tree/stable-v1\"/>"
	                       "</sec:client-auth-methods>"
	                       "<sec:server-auth-methods>"
	                       "<tlscert xmlns=\"https://github.com/erasmus-without-paper/"
	                       "ewp-specs-sec-srvauth-tlscert/tree/stable-v1\"/>"
	                       "<httpsig xmlns=\"https://github.com/erasmus-without-paper/"
	                       "ewp-specs-sec-srvauth-httpsig/tree/stable-v1\"/>"
	                       "</sec:server-auth-methods>"
	                       "</http-security>");
}

int
api_manifest_head(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	if (buf_printf(out, "<%s xmlns=\"%s\" version=\"%s\">", e->name, e->ns, e->version) == -1 ||
	    api_manifest_http_security(out) == -1 || buf_addstr(out, "<url>") == -1 ||
	    xmlw_escape(out, c->public_url) == -1 || xmlw_escape(out, e->path) == -1)
		return -1;
	return buf_addstr(out, "</url>");
}

bool
api_enabled(const struct api_entry *e, const struct conf *c)
{
	return e->enabled == NULL || e->enabled(c);
}

static const char *
api_path(const struct api_entry *e, const struct conf *c)
{
	return e->path ? e->path : c->manifest_path;
}

static const struct api_entry *
api_find(const struct req *rq)
{
	for (size_t i = 0; api_table[i]; i++)
		if (strcmp(rq->path, api_path(api_table[i], rq->d->conf)) == 0 &&
		    api_enabled(api_table[i], rq->d->conf))
			return api_table[i];
	return NULL;
}

/* Key lookup for the verifier, against the request's catalogue snapshot. */
static enum httpsig_key_kind
api_lookup_cb(void *arg, const char *keyid, const struct keys_pub **pub)
{
	const struct registry *reg = arg;
	const struct registry_key *k = registry_key(reg, keyid);

	if (k == NULL)
		return HTTPSIG_KEY_NONE;
	if (!k->client)
		return HTTPSIG_KEY_SERVER_ONLY;
	*pub = k->pub;
	return HTTPSIG_KEY_CLIENT;
}

static bool
api_replay_cb(void *arg, const char *request_id, time_t now)
{
	struct ewpd *d = arg;

	/* Remember ids for two windows: a Date may lead our clock by one. */
	return nonce_seen(d->nonce, request_id, now, 2 * d->conf->date_window);
}

/* 0 when the caller is authenticated; otherwise the request is answered. */
static int
api_authenticate(struct req *rq)
{
	struct ewpd *d = rq->d;
	struct httpsig_msg m = {.method = rq->method,
	                        .target = rq->target,
	                        .headers = rq->headers,
	                        .nheaders = rq->nheaders,
	                        .body = rq->body,
	                        .body_len = rq->body_len};
	struct httpsig_verify_opts o = {.expected_host = d->conf->public_host,
	                                .now = time(NULL),
	                                .max_skew = d->conf->date_window,
	                                .lookup = api_lookup_cb,
	                                .replay = api_replay_cb,
	                                .replay_arg = d};

	if (d->snap == NULL) {
		req_error(rq, 503,
		          "the registry catalogue is not loaded yet; callers cannot be "
		          "authenticated");
		return -1;
	}
	rq->snap = snap_ref(d->snap);
	o.lookup_arg = rq->snap->reg;
	if (httpsig_verify_request(&m, &o, &rq->verdict) != 200) {
		metrics_sigfail(d->metrics, rq->verdict.reason);
		req_error(rq, rq->verdict.status, "%s", rq->verdict.message);
		return -1;
	}
	rq->authenticated = true;
	rq->ncaller_heis = registry_client_heis(rq->snap->reg, rq->verdict.keyid, &rq->caller_heis);
	req_keep_signed_headers(rq);
	return 0;
}

/* True for application/x-www-form-urlencoded, with any parameters. */
static bool
api_is_form_type(const char *ct)
{
	static const char form[] = "application/x-www-form-urlencoded";
	size_t n = sizeof(form) - 1;

	while (*ct == ' ')
		ct++;
	return strncasecmp(ct, form, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* 0 when parameters are parsed; otherwise the request is answered. */
static int
api_parse_params(struct req *rq, const char *content_type)
{
	char err[128];
	const char *src = rq->query;
	size_t len = strlen(rq->query);

	if (strcmp(rq->method, "POST") == 0) {
		/* Parameters of a POST are in the body only (never the query). */
		if (rq->body_len > 0 && (content_type == NULL || !api_is_form_type(content_type))) {
			req_error(rq, 415,
			          "POST parameters must be sent as "
			          "application/x-www-form-urlencoded, not \"%s\"",
			          content_type ? content_type : "(no Content-Type)");
			return -1;
		}
		src = rq->body;
		len = rq->body_len;
	}
	if (form_parse(src, len, &rq->form, err, sizeof(err)) == -1) {
		req_error(rq, 400, "cannot parse parameters: %s", err);
		return -1;
	}
	return 0;
}

bool
api_digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool
api_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * Whether s is an xs:dateTime with a time part, as modified_since must be:
 * YYYY-MM-DDThh:mm:ss[.f+][Z|(+|-)hh:mm], fields in range.
 */
bool
api_datetime_ok(const char *s)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, th, tm;
	size_t n = strlen(s), i = 19;

	if (n < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return false;
	if (!api_digits(s, 4, &y) || !api_digits(s + 5, 2, &mo) || !api_digits(s + 8, 2, &d) ||
	    !api_digits(s + 11, 2, &h) || !api_digits(s + 14, 2, &mi) ||
	    !api_digits(s + 17, 2, &sec))
		return false;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && api_leap(y)) ||
	    h > 23 || mi > 59 || sec > 59)
		return false;
	if (i < n && s[i] == '.') {
		size_t start = ++i;

		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == start || i - start > 9)
			return false;
	}
	if (i == n)
		return true;
	if (s[i] == 'Z')
		return i + 1 == n;
	if ((s[i] != '+' && s[i] != '-') || n - i != 6 || s[i + 3] != ':')
		return false;
	return api_digits(s + i + 1, 2, &th) && api_digits(s + i + 4, 2, &tm) && th <= 14 &&
	       tm <= 59;
}

void
api_dispatch(struct req *rq)
{
	const struct api_entry *e = api_find(rq);
	const char *accept_sig, *content_type;
	int method;

	rq->log_exchange = true;
	if (e == NULL) {
		req_error(rq, 404, "no EWP API is served at %s", rq->path);
		return;
	}
	rq->metric = e->metric;
	rq->api_name = e->name;
	rq->api_version = e->version;
	accept_sig = req_header(rq, "Accept-Signature");
	rq->sign_response = accept_sig && httpsig_accepts_rsa_sha256(accept_sig);
	method = strcmp(rq->method, "GET") == 0    ? API_GET
	         : strcmp(rq->method, "POST") == 0 ? API_POST
	                                           : 0;
	/* Framing headers are read before unsigned headers are dropped. */
	content_type = req_header(rq, "Content-Type");
	/* Authenticate first, so that even a 405 goes back signed to its caller. */
	if (e->signed_only && api_authenticate(rq) == -1)
		return;
	if ((e->methods & method) == 0) {
		bool get = e->methods & API_GET, post = e->methods & API_POST;

		req_add_header(rq, "Allow", get && post ? "GET, POST" : post ? "POST" : "GET");
		req_error(rq, 405, "method %s is not allowed on %s (use %s)", rq->method, rq->path,
		          get && post ? "GET or POST"
		          : post      ? "POST"
		                      : "GET");
		return;
	}
	/* An XML body (an update request) is the handler's to read. */
	if (!e->xml_body && api_parse_params(rq, content_type) == -1)
		return;
	e->handle(rq);
}
