/*
 * ctl_call.c - `ewpctl call`: one signed EWP request to any endpoint, for
 * debugging a partner (or ourselves). The request is signed with our
 * client key; the response's signature is checked against the catalogue
 * (the key must be a server key of the host that serves that URL).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "buf.h"
#include "ctl.h"
#include "httpsig.h"
#include "keys.h"
#include "registry.h"
#include "xmalloc.h"

#define CALL_MAX_HEADERS 100

struct call_args {
	const char *method;
	const char *data; /* the body: the -d argument, or the file it names */
	char *data_file;  /* -d @FILE read into memory (owned) */
	const char *cacert;
	const char *url;
	const char *extra[16];
	size_t nextra;
};

struct call_response {
	struct buf body;
	struct httpsig_header headers[CALL_MAX_HEADERS];
	size_t nheaders;
};

static void
call_usage(FILE *out)
{
	fprintf(out,
	        "usage: ewpctl call [-X METHOD] [-d DATA | -d @FILE] [-H 'Name: value']... "
	        "[--cacert FILE]"
	        " URL\n"
	        "Sends one request signed with our client key and prints the status, the body\n"
	        "and whether the response signature verified against the catalogue.\n"
	        "  -d DATA    a form body (POST): 'hei_id=x&omobility_id=y'\n"
	        "  -d @FILE   the body read from FILE; an XML document (an update request)\n"
	        "             is sent as text/xml unless -H gives another Content-Type\n");
}

/* Reads -d @FILE: at most EWP_MAX_RESPONSE_BYTES. */
static char *
call_read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[8192];
	size_t n;

	if (f == NULL) {
		ctl_err("call: cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&b, EWP_MAX_RESPONSE_BYTES);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_add(&b, chunk, n) == -1) {
			ctl_err("call: %s is larger than %d bytes", path, EWP_MAX_RESPONSE_BYTES);
			fclose(f);
			buf_free(&b);
			return NULL;
		}
	if (ferror(f) || memchr(b.data ? b.data : "", '\0', b.len) != NULL) {
		ctl_err("call: %s: %s", path,
		        ferror(f) ? strerror(errno) : "binary data (a NUL byte)");
		fclose(f);
		buf_free(&b);
		return NULL;
	}
	fclose(f);
	if (buf_add(&b, "", 1) == -1) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

static bool
call_has_header(const struct call_args *a, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < a->nextra; i++)
		if (strncasecmp(a->extra[i], name, len) == 0 && a->extra[i][len] == ':')
			return true;
	return false;
}

static int
call_parse_args(int argc, char **argv, struct call_args *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			call_usage(stdout);
			return 1;
		} else if (strcmp(argv[i], "-X") == 0 && i + 1 < argc)
			a->method = argv[++i];
		else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
			a->data = argv[++i];
		else if (strcmp(argv[i], "--cacert") == 0 && i + 1 < argc)
			a->cacert = argv[++i];
		else if (strcmp(argv[i], "-H") == 0 && i + 1 < argc && a->nextra < 16)
			a->extra[a->nextra++] = argv[++i];
		else if (argv[i][0] != '-' && a->url == NULL)
			a->url = argv[i];
		else {
			ctl_err("call: unexpected argument \"%s\"", argv[i]);
			return -1;
		}
	}
	if (a->url == NULL) {
		ctl_err("call needs a URL");
		call_usage(stderr);
		return -1;
	}
	if (a->data && a->data[0] == '@') {
		if ((a->data_file = call_read_file(a->data + 1)) == NULL)
			return -1;
		a->data = a->data_file;
	}
	if (a->method == NULL)
		a->method = a->data ? "POST" : "GET";
	return 0;
}

static size_t
call_body_cb(char *data, size_t size, size_t n, void *arg)
{
	struct call_response *r = arg;

	return buf_add(&r->body, data, size * n) == 0 ? size * n : 0;
}

/* Keeps every response header line (a new status line restarts the list). */
static size_t
call_header_cb(char *data, size_t size, size_t n, void *arg)
{
	struct call_response *r = arg;
	size_t len = size * n;
	char *line = xstrndup(data, len), *colon;

	line[strcspn(line, "\r\n")] = '\0';
	if (strncmp(line, "HTTP/", 5) == 0) {
		for (size_t i = 0; i < r->nheaders; i++)
			free((char *)r->headers[i].name);
		r->nheaders = 0;
	} else if ((colon = strchr(line, ':')) != NULL && r->nheaders < CALL_MAX_HEADERS) {
		*colon = '\0';
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		/* name and value share one allocation, freed through name */
		r->headers[r->nheaders].name = line;
		r->headers[r->nheaders].value = v;
		r->nheaders++;
		return len;
	}
	free(line);
	return len;
}

/* The request-target and Host of a URL, as the server will see them. */
static int
call_split_url(const char *url, char **host, char **target)
{
	CURLU *u = curl_url();
	char *h = NULL, *port = NULL, *path = NULL, *query = NULL;
	int rc = -1;

	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
		curl_url_get(u, CURLUPART_PORT, &port, 0);
		curl_url_get(u, CURLUPART_QUERY, &query, 0);
		*host = port ? xasprintf("%s:%s", h, port) : xstrdup(h);
		*target = query ? xasprintf("%s?%s", path, query) : xstrdup(path);
		rc = 0;
	}
	curl_free(h);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	return rc;
}

struct call_lookup {
	const struct registry *reg;
	const char *url;
};

/* A response key must be a server key of the host serving this URL. */
static enum httpsig_key_kind
call_lookup_cb(void *arg, const char *keyid, const struct keys_pub **pub)
{
	const struct call_lookup *l = arg;
	const struct registry_key *k = registry_key(l->reg, keyid);
	size_t host;

	/* A URL listed by no host has no trusted server key at all. */
	if (k == NULL || registry_host_by_url(l->reg, l->url, &host) == -1 ||
	    !registry_host_has_server_key(l->reg, host, keyid))
		return HTTPSIG_KEY_NONE;
	*pub = k->pub;
	return HTTPSIG_KEY_CLIENT;
}

static void
call_print(long status, const struct call_response *r)
{
	printf("HTTP %ld\n", status);
	for (size_t i = 0; i < r->nheaders; i++)
		printf("%s: %s\n", r->headers[i].name, r->headers[i].value);
	printf("\n%s%s", buf_cstr((struct buf *)&r->body),
	       r->body.len && r->body.data[r->body.len - 1] != '\n' ? "\n" : "");
}

static int
call_verify(struct ctl *ctl, const struct call_args *a, const char *target,
            const struct httpsig_out *sig, const struct call_response *r)
{
	char err[512];
	struct registry *reg = registry_load_file(ctl_conf(ctl)->registry_cache, err, sizeof(err));
	struct call_lookup l = {.reg = reg, .url = a->url};
	const char *auth = httpsig_out_get(sig, "Authorization");
	const char *s = auth ? strstr(auth, "signature=\"") : NULL;
	char *request_sig = s ? xstrndup(s + 11, strcspn(s + 11, "\"")) : NULL;
	struct httpsig_response_opts o = {.request_method = a->method,
	                                  .request_target = target,
	                                  .request_id = httpsig_out_get(sig, "X-Request-Id"),
	                                  .request_signature = request_sig,
	                                  .now = time(NULL),
	                                  .max_skew = 300,
	                                  .lookup = call_lookup_cb,
	                                  .lookup_arg = &l};
	struct httpsig_verdict v;
	int rc;

	if (reg == NULL) {
		printf("response signature: NOT CHECKED (no catalogue: %s)\n", err);
		free(request_sig);
		return 1;
	}
	rc = httpsig_verify_response(r->headers, r->nheaders, r->body.data, r->body.len, &o, &v);
	if (rc == 200)
		printf("response signature: verified (server keyId %s)\n", v.keyid);
	else if (registry_host_by_url(reg, a->url, &(size_t){0}) == -1)
		printf("response signature: INVALID: %s (no host in the catalogue serves %s, so "
		       "no server key is trusted for it)\n",
		       v.message, a->url);
	else
		printf("response signature: INVALID: %s\n", v.message);
	httpsig_verdict_free(&v);
	registry_free(reg);
	free(request_sig);
	return rc == 200 ? 0 : 1;
}

int
ctl_call(struct ctl *ctl, int argc, char **argv)
{
	struct call_args a;
	struct call_response r = {.nheaders = 0};
	struct httpsig_out sig = {.n = 0};
	struct curl_slist *hl = NULL;
	struct keys_priv *key;
	char err[512], *host = NULL, *target = NULL, *path;
	const char *body;
	long status = 0;
	CURLcode cc;
	CURL *c;
	int rc = 1;

	switch (call_parse_args(argc, argv, &a)) {
	case -1:
		free(a.data_file);
		return 2;
	case 1:
		return 0;
	}
	path = conf_key_path(ctl_conf(ctl), ctl_conf(ctl)->client_key);
	key = keys_priv_load(path, false, err, sizeof(err));
	free(path);
	if (key == NULL) {
		ctl_err("%s", err);
		free(a.data_file);
		return 1;
	}
	if (call_split_url(a.url, &host, &target) == -1) {
		ctl_err("call: \"%s\" is not a URL", a.url);
		keys_priv_free(key);
		free(a.data_file);
		return 2;
	}
	body = a.data ? a.data : "";
	if (httpsig_sign_request(key, a.method, target, host, body, strlen(body), time(NULL),
	                         &sig) == -1) {
		ctl_err("call: signing failed");
		goto out;
	}
	for (size_t i = 0; i < sig.n; i++) {
		char *line = xasprintf("%s: %s", sig.h[i].name, sig.h[i].value);
		hl = curl_slist_append(hl, line);
		free(line);
	}
	if (a.data && !call_has_header(&a, "Content-Type"))
		hl = curl_slist_append(hl, a.data[strspn(a.data, " \t\r\n")] == '<'
		                               ? "Content-Type: text/xml; charset=utf-8"
		                               : "Content-Type: application/x-www-form-urlencoded");
	for (size_t i = 0; i < a.nextra; i++)
		hl = curl_slist_append(hl, a.extra[i]);
	buf_init(&r.body, EWP_MAX_RESPONSE_BYTES);
	c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, a.url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, a.method);
	if (a.data) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, call_body_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, call_header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
	if (a.cacert)
		curl_easy_setopt(c, CURLOPT_CAINFO, a.cacert);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (cc != CURLE_OK) {
		ctl_err("call %s: %s", a.url, curl_easy_strerror(cc));
	} else {
		call_print(status, &r);
		rc = call_verify(ctl, &a, target, &sig, &r);
		if (status < 200 || status > 299)
			rc = 1;
	}
	curl_slist_free_all(hl);
	buf_free(&r.body);
	for (size_t i = 0; i < r.nheaders; i++)
		free((char *)r.headers[i].name);
out:
	httpsig_out_free(&sig);
	keys_priv_free(key);
	free(host);
	free(target);
	free(a.data_file);
	return rc;
}
