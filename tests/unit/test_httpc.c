/*
 * test_httpc.c - outbound signed requests over real sockets.
 *
 * A fake EWP partner runs inside the test process on 127.0.0.1: an evhttp
 * server over bufferevent_openssl with a self-signed certificate made here
 * with OpenSSL. It verifies every request's signature with the httpsig
 * module against a catalogue written by this test (keys generated here)
 * and answers as the query string asks: a properly signed response, one
 * signed with another host's key, a body changed after signing, no or
 * someone else's X-Request-Signature, a signed 500, silence, a body past
 * the client's ceiling, or too many header lines. A second, raw partner
 * writes its response byte by byte (a 103 before the real response, a
 * folded header line, a chunked body with a trailer) to check which
 * header lines reach the signature check. Client and partners share one
 * event_base, as in the daemon.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "codec.h"
#include "httpc.h"
#include "httpsig.h"
#include "keys.h"
#include "registry.h"
#include "xmalloc.h"
#include "xml.h"

#define E2_NS                                                                                      \
	"https://github.com/erasmus-without-paper/ewp-specs-api-echo/blob/stable-v2/"              \
	"manifest-entry.xsd"
#define OK_BODY       "<echo>hello</echo>"
#define TAMPERED_BODY "<echo>HELLO</echo>"
#define ERROR_BODY    "<error-response><developer-message>boom</developer-message></error-response>"
#define BIG_LEN       (64 * 1024)
#define CEILING       (16 * 1024)
#define MAX_HELD      64
#define NCONCURRENT   50

/* The fake partner. */
struct partner {
	struct evhttp *http;
	SSL_CTX *ssl;
	int port;
	char host[64];            /* Host header it expects */
	int verified;             /* requests whose signature it accepted */
	int refused;              /* requests whose signature it refused */
	int errors;               /* its own failures (signing...) */
	char refusal[512];        /* why the last refusal */
	char last_request_id[40]; /* X-Request-Id of the last accepted request */
	char last_content_type[128];
	struct evhttp_request *held[MAX_HELD]; /* "hang": never answered until released */
	size_t nheld;
	void (*on_hold)(void); /* a test's hook, run when a request is held */
};

static struct {
	struct event_base *base;
	char dir[64];
	char ca_path[128];
	struct keys_priv *client;   /* ours: client key of us.example */
	struct keys_priv *server_a; /* server key of the host serving the partner's URL */
	struct keys_priv *server_b; /* server key of another host */
	struct registry *reg;
	struct partner srv;
	int closed_port;
	char url[128];              /* as listed in the catalogue */
	char closed_url[128];       /* listed too, nobody listens there */
	struct evconnlistener *raw; /* the raw partner */
	char raw_url[128];
	int raw_live; /* its connections not yet closed */
	struct httpc *hc;
} F;

static char big[BIG_LEN];

/* ---- keys, certificate, catalogue ---- */

static EVP_PKEY *
rsa_gen(void)
{
	EVP_PKEY *pk = EVP_RSA_gen(2048);

	assert_non_null(pk);
	return pk;
}

static struct keys_priv *
priv_of(EVP_PKEY *pk)
{
	BIO *b = BIO_new(BIO_s_mem());
	struct keys_priv *k;
	char err[256], *pem;
	long len;

	assert_non_null(b);
	assert_int_equal(PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL), 1);
	len = BIO_get_mem_data(b, &pem);
	pem = xstrndup(pem, (size_t)len);
	k = keys_priv_from_pem(pem, err, sizeof(err));
	if (k == NULL)
		fail_msg("keys_priv_from_pem: %s", err);
	free(pem);
	BIO_free(b);
	return k;
}

static void
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A self-signed certificate for 127.0.0.1, its own trust anchor. */
static X509 *
self_signed(EVP_PKEY *pk)
{
	X509 *x = X509_new();
	X509_NAME *n;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pk);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1,
	                           -1, 0);
	X509_set_issuer_name(x, n);
	add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
	add_ext(x, NID_key_usage, "critical,digitalSignature,keyEncipherment,keyCertSign");
	add_ext(x, NID_subject_key_identifier, "hash");
	add_ext(x, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	return x;
}

static void add(struct buf *b, const char *fmt, ...) EWP_PRINTF(2, 3);

static void
add(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	s = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	assert_int_equal(buf_add(b, s, (size_t)n), 0);
	free(s);
}

/*
 * Host A (a.example) serves the partner's URLs with server key A; host B
 * (b.example) serves elsewhere with server key B; our own host
 * (us.example) lists our client key.
 */
static struct registry *
make_catalogue(void)
{
	const struct keys_priv *k[3] = {F.server_a, F.server_b, F.client};
	struct registry *r;
	char err[512];
	struct buf b;

	buf_init(&b, 1 << 20);
	add(&b, "<catalogue xmlns=\"%s\" xmlns:e2=\"%s\">\n", REGISTRY_NS, E2_NS);
	add(&b,
	    "<host><apis-implemented><e2:echo version=\"2.0.0\"><e2:url>%s</e2:url>"
	    "<e2:closed-url>%s</e2:closed-url><e2:raw-url>%s</e2:raw-url>"
	    "<e2:max-echo-values>7</e2:max-echo-values>"
	    "</e2:echo></apis-implemented>\n"
	    "<institutions-covered><hei-id>a.example</hei-id></institutions-covered>\n"
	    "<server-credentials-in-use><rsa-public-key sha-256=\"%s\"/>"
	    "</server-credentials-in-use></host>\n",
	    F.url, F.closed_url, F.raw_url, keys_priv_keyid(F.server_a));
	add(&b,
	    "<host><apis-implemented><e2:echo version=\"2.0.0\">"
	    "<e2:url>https://b.example/ewp</e2:url></e2:echo></apis-implemented>\n"
	    "<institutions-covered><hei-id>b.example</hei-id></institutions-covered>\n"
	    "<server-credentials-in-use><rsa-public-key sha-256=\"%s\"/>"
	    "</server-credentials-in-use></host>\n",
	    keys_priv_keyid(F.server_b));
	add(&b,
	    "<host><institutions-covered><hei-id>us.example</hei-id></institutions-covered>\n"
	    "<client-credentials-in-use><rsa-public-key sha-256=\"%s\"/>"
	    "</client-credentials-in-use></host>\n",
	    keys_priv_keyid(F.client));
	add(&b, "<institutions>");
	add(&b, "<hei id=\"a.example\"><name xml:lang=\"en\">A</name></hei>");
	add(&b, "<hei id=\"b.example\"><name xml:lang=\"en\">B</name></hei>");
	add(&b, "<hei id=\"us.example\"><name xml:lang=\"en\">Us</name></hei>");
	add(&b, "</institutions>\n<binaries>\n");
	for (int i = 0; i < 3; i++)
		add(&b, "<rsa-public-key sha-256=\"%s\">%s</rsa-public-key>\n",
		    keys_priv_keyid(k[i]), keys_priv_public_b64(k[i]));
	add(&b, "</binaries></catalogue>\n");
	r = registry_load_mem(b.data, b.len, "test_httpc", err, sizeof(err));
	if (r == NULL)
		fail_msg("catalogue refused: %s", err);
	buf_free(&b);
	return r;
}

/* ---- the fake partner ---- */

/* Our client key is known as a client key; anything else is not accepted. */
static enum httpsig_key_kind
partner_lookup_cb(void *arg, const char *keyid, const struct keys_pub **pub)
{
	const struct registry_key *k = registry_key(arg, keyid);

	if (k == NULL)
		return HTTPSIG_KEY_NONE;
	if (!k->client)
		return HTTPSIG_KEY_SERVER_ONLY;
	*pub = k->pub;
	return HTTPSIG_KEY_CLIENT;
}

/*
 * Signs `signed_body` with key (echoing our request id, and our request
 * signature when with_req_sig) and sends `body`, which tests may make
 * differ from what was signed.
 */
static void
partner_reply(struct evhttp_request *req, int code, const struct keys_priv *key,
              const char *signed_body, size_t signed_len, const char *body, size_t len,
              const struct httpsig_verdict *v, bool with_req_sig)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	struct httpsig_out out;
	struct evbuffer *eb;

	if (httpsig_sign_response(key, signed_body, signed_len, v->request_id,
	                          with_req_sig ? v->signature : NULL, time(NULL), &out) == -1) {
		F.srv.errors++;
		evhttp_send_error(req, 500, NULL);
		return;
	}
	for (size_t i = 0; i < out.n; i++)
		evhttp_add_header(oh, out.h[i].name, out.h[i].value);
	httpsig_out_free(&out);
	evhttp_add_header(oh, "Content-Type", "application/xml");
	/* unsigned duplicates: the client must keep both, in order */
	evhttp_add_header(oh, "X-Dup", "1");
	evhttp_add_header(oh, "X-Dup", "2");
	eb = evbuffer_new();
	evbuffer_add(eb, body, len);
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Internal Server Error", eb);
	evbuffer_free(eb);
}

/* The same, chunked: no Content-Length for the client to refuse early. */
static void
partner_reply_chunked(struct evhttp_request *req, const char *body, size_t len,
                      const struct httpsig_verdict *v)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	struct httpsig_out out;
	struct evbuffer *eb;

	if (httpsig_sign_response(F.server_a, body, len, v->request_id, v->signature, time(NULL),
	                          &out) == -1) {
		F.srv.errors++;
		evhttp_send_error(req, 500, NULL);
		return;
	}
	for (size_t i = 0; i < out.n; i++)
		evhttp_add_header(oh, out.h[i].name, out.h[i].value);
	httpsig_out_free(&out);
	evhttp_send_reply_start(req, 200, "OK");
	for (size_t off = 0; off < len; off += 4096) {
		eb = evbuffer_new();
		evbuffer_add(eb, body + off, len - off < 4096 ? len - off : 4096);
		evhttp_send_reply_chunk(req, eb);
		evbuffer_free(eb);
	}
	evhttp_send_reply_end(req);
}

static const char *
method_name(enum evhttp_cmd_type c)
{
	return c == EVHTTP_REQ_GET ? "GET" : c == EVHTTP_REQ_POST ? "POST" : "OTHER";
}

static bool
is_case(const char *uri, const char *name)
{
	const char *q = strstr(uri, "case=");

	return q != NULL && strcmp(q + 5, name) == 0;
}

static void
partner_cb(struct evhttp_request *req, void *arg)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *ib = evhttp_request_get_input_buffer(req);
	const char *uri = evhttp_request_get_uri(req), *ct;
	struct httpsig_header hs[64];
	struct httpsig_verdict v;
	struct evkeyval *kv;
	size_t n = 0, len = evbuffer_get_length(ib);
	const char *body = len ? (const char *)evbuffer_pullup(ib, -1) : "";
	struct httpsig_msg m;
	struct httpsig_verify_opts o = {.expected_host = F.srv.host,
	                                .now = time(NULL),
	                                .max_skew = EWP_DATE_WINDOW_SECS,
	                                .lookup = partner_lookup_cb,
	                                .lookup_arg = F.reg};

	(void)arg;
	TAILQ_FOREACH(kv, in, next)
	{
		if (n < 64) {
			hs[n].name = kv->key;
			hs[n].value = kv->value;
			n++;
		}
	}
	m = (struct httpsig_msg){
	    method_name(evhttp_request_get_command(req)), uri, hs, n, body, len};
	if (httpsig_verify_request(&m, &o, &v) != 200) {
		F.srv.refused++;
		snprintf(F.srv.refusal, sizeof(F.srv.refusal), "%s", v.message);
		evhttp_send_error(req, v.status, NULL);
		httpsig_verdict_free(&v);
		return;
	}
	F.srv.verified++;
	snprintf(F.srv.last_request_id, sizeof(F.srv.last_request_id), "%s", v.request_id);
	ct = evhttp_find_header(in, "Content-Type");
	snprintf(F.srv.last_content_type, sizeof(F.srv.last_content_type), "%s", ct ? ct : "");
	if (is_case(uri, "ok") && len > 0) /* POST: echo the body */
		partner_reply(req, 200, F.server_a, body, len, body, len, &v, true);
	else if (is_case(uri, "ok"))
		partner_reply(req, 200, F.server_a, OK_BODY, strlen(OK_BODY), OK_BODY,
		              strlen(OK_BODY), &v, true);
	else if (is_case(uri, "otherkey"))
		partner_reply(req, 200, F.server_b, OK_BODY, strlen(OK_BODY), OK_BODY,
		              strlen(OK_BODY), &v, true);
	else if (is_case(uri, "tamper"))
		partner_reply(req, 200, F.server_a, OK_BODY, strlen(OK_BODY), TAMPERED_BODY,
		              strlen(TAMPERED_BODY), &v, true);
	else if (is_case(uri, "noreqsig"))
		partner_reply(req, 200, F.server_a, OK_BODY, strlen(OK_BODY), OK_BODY,
		              strlen(OK_BODY), &v, false);
	else if (is_case(uri, "wrongreqsig")) {
		free(v.signature);
		v.signature = xstrdup("c29tZWJvZHkgZWxzZSdzIHNpZ25hdHVyZQ==");
		partner_reply(req, 200, F.server_a, OK_BODY, strlen(OK_BODY), OK_BODY,
		              strlen(OK_BODY), &v, true);
	} else if (is_case(uri, "error"))
		partner_reply(req, 500, F.server_a, ERROR_BODY, strlen(ERROR_BODY), ERROR_BODY,
		              strlen(ERROR_BODY), &v, true);
	else if (is_case(uri, "big"))
		partner_reply(req, 200, F.server_a, big, sizeof(big), big, sizeof(big), &v, true);
	else if (is_case(uri, "bigchunked"))
		partner_reply_chunked(req, big, sizeof(big), &v);
	else if (is_case(uri, "manyheaders")) {
		for (int i = 0; i < HTTPC_MAX_RESPONSE_HEADERS + 20; i++)
			evhttp_add_header(evhttp_request_get_output_headers(req), "X-Filler", "x");
		partner_reply(req, 200, F.server_a, OK_BODY, strlen(OK_BODY), OK_BODY,
		              strlen(OK_BODY), &v, true);
	} else if (is_case(uri, "hang") && F.srv.nheld < MAX_HELD) {
		F.srv.held[F.srv.nheld++] = req;
		if (F.srv.on_hold != NULL)
			F.srv.on_hold();
	} else
		evhttp_send_error(req, 404, NULL);
	httpsig_verdict_free(&v);
}

static struct bufferevent *
partner_bev_cb(struct event_base *base, void *arg)
{
	return bufferevent_openssl_socket_new(base, -1, SSL_new(arg), BUFFEREVENT_SSL_ACCEPTING,
	                                      BEV_OPT_CLOSE_ON_FREE);
}

static int
local_port(evutil_socket_t fd)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	return ntohs(sin.sin_port);
}

static void
partner_start(EVP_PKEY *tls_key, X509 *cert)
{
	struct evhttp_bound_socket *bs;

	F.srv.ssl = SSL_CTX_new(TLS_server_method());
	assert_non_null(F.srv.ssl);
	assert_int_equal(SSL_CTX_use_certificate(F.srv.ssl, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(F.srv.ssl, tls_key), 1);
	F.srv.http = evhttp_new(F.base);
	assert_non_null(F.srv.http);
	evhttp_set_bevcb(F.srv.http, partner_bev_cb, F.srv.ssl);
	evhttp_set_gencb(F.srv.http, partner_cb, NULL);
	evhttp_set_allowed_methods(F.srv.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	bs = evhttp_bind_socket_with_handle(F.srv.http, "127.0.0.1", 0);
	assert_non_null(bs);
	F.srv.port = local_port(evhttp_bound_socket_get_fd(bs));
	snprintf(F.srv.host, sizeof(F.srv.host), "127.0.0.1:%d", F.srv.port);
}

/* ---- the raw partner ---- */

/* Value of header `name` in a raw request head, or NULL; caller frees. */
static char *
raw_header(const char *head, const char *name)
{
	size_t nlen = strlen(name);
	const char *v;

	for (const char *l = strstr(head, "\r\n"); l != NULL; l = strstr(l, "\r\n")) {
		l += 2;
		if (strncasecmp(l, name, nlen) == 0 && l[nlen] == ':') {
			for (v = l + nlen + 1; *v == ' '; v++)
				;
			return xstrndup(v, strcspn(v, "\r\n"));
		}
	}
	return NULL;
}

static void
raw_close(struct bufferevent *bev)
{
	bufferevent_free(bev);
	F.raw_live--;
}

static void
raw_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		raw_close(bev);
}

/* The response is written: close, as Connection: close said. */
static void
raw_write_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		raw_close(bev);
}

static void
raw_add(struct buf *b, const char *s)
{
	if (buf_addstr(b, s) == -1)
		abort();
}

/*
 * Once the request head is in: a 103 with its own header, then the real
 * response, signed, with a folded header line, a chunked body and a
 * trailer. Only the real response's header lines may reach the verifier.
 */
static void
raw_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char *head, *id, *auth, *sig = NULL, *s;
	struct httpsig_out out = {.n = 0};
	struct buf r;

	(void)arg;
	if (end.pos < 0)
		return;
	head = xstrndup((const char *)evbuffer_pullup(in, end.pos + 4), (size_t)end.pos + 4);
	evbuffer_drain(in, (size_t)end.pos + 4);
	id = raw_header(head, "X-Request-Id");
	auth = raw_header(head, "Authorization");
	if (auth != NULL && (s = strstr(auth, "signature=\"")) != NULL)
		sig = xstrndup(s + 11, strcspn(s + 11, "\""));
	if (id == NULL || sig == NULL ||
	    httpsig_sign_response(F.server_a, OK_BODY, strlen(OK_BODY), id, sig, time(NULL),
	                          &out) == -1) {
		F.srv.errors++;
		raw_close(bev);
	} else {
		buf_init(&r, (size_t)-1);
		raw_add(&r, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
		            "HTTP/1.1 200 OK\r\n");
		for (size_t i = 0; i < out.n; i++)
			if (buf_printf(&r, "%s: %s\r\n", out.h[i].name, out.h[i].value) == -1)
				abort();
		if (buf_printf(&r,
		               "X-Folded: first\r\n\t  second\r\nTransfer-Encoding: chunked\r\n"
		               "Trailer: X-Trailer\r\nConnection: close\r\n\r\n"
		               "%zx\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n",
		               strlen(OK_BODY), OK_BODY) == -1)
			abort();
		bufferevent_setcb(bev, NULL, raw_write_cb, raw_event_cb, NULL);
		bufferevent_write(bev, r.data, r.len);
		buf_free(&r);
	}
	httpsig_out_free(&out);
	free(head);
	free(id);
	free(auth);
	free(sig);
}

static void
raw_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int socklen,
              void *arg)
{
	struct bufferevent *bev = bufferevent_openssl_socket_new(
	    F.base, fd, SSL_new(F.srv.ssl), BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);

	(void)l;
	(void)sa;
	(void)socklen;
	(void)arg;
	assert_non_null(bev);
	F.raw_live++;
	bufferevent_setcb(bev, raw_read_cb, NULL, raw_event_cb, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void
raw_start(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	F.raw = evconnlistener_new_bind(F.base, raw_accept_cb, NULL,
	                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
	                                (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(F.raw);
	snprintf(F.raw_url, sizeof(F.raw_url), "https://127.0.0.1:%d/raw",
	         local_port(evconnlistener_get_fd(F.raw)));
}

/* Answers every held request late (the client is gone by then); libevent frees them. */
static void partner_release(void);

/* ---- running the loop ---- */

static int outstanding; /* callbacks still expected */
static bool deadline_hit;

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	deadline_hit = true;
	event_base_loopbreak(F.base);
}

/* Runs the loop for ms, or until every expected callback came when until_done. */
static void
run(long ms, bool until_done)
{
	struct event *t = evtimer_new(F.base, deadline_cb, NULL);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	deadline_hit = false;
	evtimer_add(t, &tv);
	while (!deadline_hit && !(until_done && outstanding <= 0))
		event_base_loop(F.base, EVLOOP_ONCE);
	event_free(t);
}

static void
partner_release(void)
{
	for (size_t i = 0; i < F.srv.nheld; i++)
		evhttp_send_error(F.srv.held[i], 503, NULL);
	F.srv.nheld = 0;
	run(50, false);
}

/* ---- the client side ---- */

/* What a callback was told, copied out of the lent result. */
struct outcome {
	int calls;
	enum httpc_error error;
	char message[512];
	long status;
	bool verified;
	bool have_verdict;
	enum httpsig_reason reason;
	char vmessage[512];
	char keyid[CODEC_SHA256_HEX_LEN + 1];
	char request_id[CODEC_UUID_LEN + 1];
	long duration_ms;
	char *body;
	size_t body_len;
	char *headers; /* "name: value\n" lines */
};

static void
done_cb(const struct httpc_result *res, void *arg)
{
	struct outcome *o = arg;
	struct buf hb;

	o->calls++;
	o->error = res->error;
	snprintf(o->message, sizeof(o->message), "%s", res->error_message);
	o->status = res->status;
	o->verified = res->verified;
	o->have_verdict = res->verdict != NULL;
	if (res->verdict != NULL) {
		o->reason = res->verdict->reason;
		snprintf(o->vmessage, sizeof(o->vmessage), "%s", res->verdict->message);
		snprintf(o->keyid, sizeof(o->keyid), "%s", res->verdict->keyid);
	}
	snprintf(o->request_id, sizeof(o->request_id), "%s", res->request_id);
	o->duration_ms = res->duration_ms;
	free(o->body);
	o->body = xstrndup(res->body, res->body_len);
	o->body_len = res->body_len;
	buf_init(&hb, (size_t)-1);
	for (size_t i = 0; i < res->nheaders; i++)
		if (buf_printf(&hb, "%s: %s\n", res->headers[i].name, res->headers[i].value) == -1)
			abort();
	free(o->headers);
	o->headers = buf_take(&hb);
	buf_free(&hb);
	outstanding--;
}

static void
outcome_free(struct outcome *o)
{
	free(o->body);
	free(o->headers);
	o->body = o->headers = NULL;
}

static char *
case_url(const char *c)
{
	return xasprintf("%s?case=%s", F.url, c);
}

static struct httpc_req *
start_on(struct httpc *hc, const char *url, const char *method, const char *body, long timeout_ms,
         struct outcome *o)
{
	struct httpc_params p = {.method = method,
	                         .url = url,
	                         .body = body,
	                         .body_len = body ? strlen(body) : 0,
	                         .key = F.client,
	                         .reg = F.reg,
	                         .connect_timeout_ms = 2000,
	                         .timeout_ms = timeout_ms > 0 ? timeout_ms : 5000,
	                         .max_response_bytes = CEILING};
	struct httpc_req *r;
	char err[512];

	r = httpc_request(hc, &p, done_cb, o, err, sizeof(err));
	if (r == NULL)
		fail_msg("httpc_request %s: %s", url, err);
	outstanding++;
	return r;
}

/* One request of case c on the shared client, run to completion. */
static void
call_case(const char *c, const char *method, const char *body, long timeout_ms, struct outcome *o)
{
	char *url = case_url(c);

	memset(o, 0, sizeof(*o));
	start_on(F.hc, url, method, body, timeout_ms, o);
	run(10000, true);
	free(url);
	assert_int_equal(o->calls, 1);
	assert_int_equal(httpc_pending(F.hc), 0);
}

/* ---- setup ---- */

static int
group_setup(void **state)
{
	EVP_PKEY *tls_key, *a, *b, *c;
	X509 *cert;
	FILE *fp;
	int fd;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);

	(void)state;
	signal(SIGPIPE, SIG_IGN); /* as the daemon: late replies to gone clients */
	xml_init(NULL);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	memset(big, 'x', sizeof(big));
	F.base = event_base_new();
	assert_non_null(F.base);
	snprintf(F.dir, sizeof(F.dir), "/tmp/test_httpc.XXXXXX");
	assert_non_null(mkdtemp(F.dir));
	snprintf(F.ca_path, sizeof(F.ca_path), "%s/ca.pem", F.dir);

	tls_key = rsa_gen();
	cert = self_signed(tls_key);
	fp = fopen(F.ca_path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, cert), 1);
	assert_int_equal(fclose(fp), 0);
	a = rsa_gen();
	b = rsa_gen();
	c = rsa_gen();
	F.server_a = priv_of(a);
	F.server_b = priv_of(b);
	F.client = priv_of(c);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	EVP_PKEY_free(c);

	partner_start(tls_key, cert);
	raw_start();
	X509_free(cert);
	EVP_PKEY_free(tls_key);

	/* a port nobody listens on */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sl), 0);
	F.closed_port = local_port(fd);
	close(fd);

	snprintf(F.url, sizeof(F.url), "https://127.0.0.1:%d/ewp", F.srv.port);
	snprintf(F.closed_url, sizeof(F.closed_url), "https://127.0.0.1:%d/ewp", F.closed_port);
	F.reg = make_catalogue();
	F.hc = httpc_new(F.base, &(struct httpc_opts){.ca_file = F.ca_path});
	assert_non_null(F.hc);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	httpc_free(F.hc);
	evhttp_free(F.srv.http);
	evconnlistener_free(F.raw);
	SSL_CTX_free(F.srv.ssl);
	event_base_free(F.base);
	registry_free(F.reg);
	keys_priv_free(F.client);
	keys_priv_free(F.server_a);
	keys_priv_free(F.server_b);
	unlink(F.ca_path);
	rmdir(F.dir);
	curl_global_cleanup();
	xml_cleanup();
	return 0;
}

/* Every test leaves the partner without errors and nothing pending. */
static int
teardown(void **state)
{
	(void)state;
	partner_release();
	F.srv.on_hold = NULL;
	assert_int_equal(F.srv.errors, 0);
	assert_int_equal(F.raw_live, 0);
	assert_int_equal(httpc_pending(F.hc), 0);
	return 0;
}

/* ---- tests ---- */

static void
test_httpc_good_signed_response_verifies(void **state)
{
	int before = F.srv.verified;
	struct outcome o;

	(void)state;
	call_case("ok", NULL, NULL, 0, &o);
	assert_int_equal(o.error, HTTPC_ERR_NONE);
	assert_string_equal(o.message, "");
	assert_int_equal(o.status, 200);
	assert_int_equal(F.srv.verified, before + 1); /* the partner accepted our signature */
	assert_true(o.have_verdict);
	if (!o.verified)
		fail_msg("response refused: %s", o.vmessage);
	assert_string_equal(o.keyid, keys_priv_keyid(F.server_a));
	assert_string_equal(o.body, OK_BODY);
	assert_int_equal(o.body_len, strlen(OK_BODY));
	assert_true(codec_is_canonical_uuid(o.request_id));
	assert_string_equal(o.request_id, F.srv.last_request_id);
	/* raw header lines, duplicates in order */
	assert_non_null(strstr(o.headers, "X-Dup: 1\nX-Dup: 2\n"));
	assert_non_null(strstr(o.headers, "Signature: keyId=\""));
	assert_true(o.duration_ms >= 0 && o.duration_ms < 10000);
	outcome_free(&o);
}

static void
test_httpc_post_body_is_signed_and_sent(void **state)
{
	int before = F.srv.verified;
	struct outcome o;

	(void)state;
	call_case("ok", NULL, "echo=a&echo=b", 0, &o); /* method NULL + body: POST */
	assert_int_equal(o.error, HTTPC_ERR_NONE);
	assert_int_equal(F.srv.verified, before + 1); /* Digest of the body matched */
	assert_string_equal(F.srv.last_content_type, "application/x-www-form-urlencoded");
	assert_true(o.verified);
	assert_string_equal(o.body, "echo=a&echo=b");
	outcome_free(&o);
}

static void
test_httpc_key_of_another_host_is_refused(void **state)
{
	struct outcome o;

	(void)state;
	call_case("otherkey", "GET", NULL, 0, &o);
	assert_int_equal(o.error, HTTPC_ERR_NONE);
	assert_int_equal(o.status, 200);
	assert_false(o.verified);
	assert_int_equal(o.reason, HTTPSIG_UNKNOWN_KEY);
	assert_non_null(strstr(o.vmessage, keys_priv_keyid(F.server_b)));
	assert_non_null(strstr(o.vmessage, "not a server key of the host"));
	outcome_free(&o);
}

static void
test_httpc_body_altered_after_signing_is_refused(void **state)
{
	struct outcome o;

	(void)state;
	call_case("tamper", "GET", NULL, 0, &o);
	assert_int_equal(o.error, HTTPC_ERR_NONE);
	assert_false(o.verified);
	assert_int_equal(o.reason, HTTPSIG_BAD_DIGEST);
	assert_string_equal(o.body, TAMPERED_BODY); /* delivered, but marked unverified */
	outcome_free(&o);
}

static void
test_httpc_missing_request_signature_is_refused(void **state)
{
	struct outcome o;

	(void)state;
	/* absent: our request was signed, so the response must sign it */
	call_case("noreqsig", "GET", NULL, 0, &o);
	assert_int_equal(o.error, HTTPC_ERR_NONE);
	assert_false(o.verified);
	assert_int_equal(o.reason, HTTPSIG_MISSING_SIGNED);
	assert_non_null(strstr(o.vmessage, "x-request-signature"));
	outcome_free(&o);
	/* present and signed, but not our request's signature */
	call_case("wrongreqsig", "GET", NULL, 0, &o);
	assert_int_equal(o.error, HTTPC_ERR_NONE);
	assert_false(o.verified);
	assert_int_equal(o.reason, HTTPSIG_RESPONSE_MISMATCH);
	assert_non_null(strstr(o.vmessage, "X-Request-Signature"));
	outcome_free(&o);
}

static void
test_httpc_error_status_is_delivered_with_body(void **state)
{
	struct outcome o;

	(void)state;
	call_case("error", "GET", NULL, 0, &o);
	assert_int_equal(o.error, HTTPC_ERR_NONE);
	assert_int_equal(o.status, 500);
	assert_string_equal(o.body, ERROR_BODY);
	assert_true(o.verified); /* signed like any response */
	outcome_free(&o);
}

static void
test_httpc_silent_server_times_out(void **state)
{
	struct outcome o;

	(void)state;
	call_case("hang", "GET", NULL, 400, &o);
	assert_int_equal(o.error, HTTPC_ERR_TIMEOUT);
	assert_string_equal(httpc_error_name(o.error), "timeout");
	assert_true(o.message[0] != '\0');
	assert_false(o.have_verdict);
	assert_int_equal(o.status, 0);
	assert_true(o.duration_ms >= 350);
	assert_true(o.duration_ms < 2000);
	assert_int_equal(F.srv.nheld, 1);
	outcome_free(&o);
}

static void
test_httpc_body_past_ceiling_is_too_large(void **state)
{
	struct outcome o;

	(void)state;
	/* announced by Content-Length: refused before the body is read */
	call_case("big", "GET", NULL, 0, &o);
	assert_int_equal(o.error, HTTPC_ERR_TOO_LARGE);
	assert_non_null(strstr(o.message, "ceiling of 16384 bytes"));
	assert_int_equal(o.body_len, 0);
	assert_false(o.have_verdict);
	outcome_free(&o);
	/* chunked: refused by the write callback at the byte past the ceiling */
	call_case("bigchunked", "GET", NULL, 0, &o);
	assert_int_equal(o.error, HTTPC_ERR_TOO_LARGE);
	assert_non_null(strstr(o.message, "response body larger than the ceiling of 16384"));
	assert_int_equal(o.body_len, 0);
	outcome_free(&o);
}

static void
test_httpc_too_many_header_lines_is_too_large(void **state)
{
	struct outcome o;

	(void)state;
	call_case("manyheaders", "GET", NULL, 0, &o);
	assert_int_equal(o.error, HTTPC_ERR_TOO_LARGE);
	assert_non_null(strstr(o.message, "more than 100 header lines"));
	outcome_free(&o);
}

static void
test_httpc_only_final_response_headers_are_kept(void **state)
{
	struct outcome o;

	(void)state;
	memset(&o, 0, sizeof(o));
	start_on(F.hc, F.raw_url, "GET", NULL, 0, &o);
	run(10000, true);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.error, HTTPC_ERR_NONE);
	assert_int_equal(o.status, 200);
	if (!o.verified)
		fail_msg("response refused: %s", o.vmessage);
	assert_string_equal(o.body, OK_BODY);
	assert_null(strstr(o.headers, "Link:"));                        /* the 103's */
	assert_non_null(strstr(o.headers, "X-Folded: first second\n")); /* unfolded */
	assert_null(strstr(o.headers, "X-Trailer: t"));                 /* a trailer */
	assert_non_null(strstr(o.headers, "Trailer: X-Trailer\n"));
	outcome_free(&o);
}

static void
test_httpc_many_concurrent_requests_complete(void **state)
{
	static struct outcome o[NCONCURRENT];
	int before = F.srv.verified;
	char *url = case_url("ok");

	(void)state;
	memset(o, 0, sizeof(o));
	for (int i = 0; i < NCONCURRENT; i++)
		start_on(F.hc, url, "GET", NULL, 0, &o[i]);
	assert_int_equal(httpc_pending(F.hc), NCONCURRENT);
	run(15000, true);
	free(url);
	assert_int_equal(outstanding, 0);
	assert_int_equal(F.srv.verified, before + NCONCURRENT);
	for (int i = 0; i < NCONCURRENT; i++) {
		assert_int_equal(o[i].calls, 1);
		assert_int_equal(o[i].error, HTTPC_ERR_NONE);
		assert_true(o[i].verified);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(o[i].request_id, o[j].request_id);
		outcome_free(&o[i]);
	}
}

static struct httpc_req *to_cancel;

static void
cancel_on_hold(void)
{
	httpc_cancel(to_cancel);
	outstanding--; /* no callback will come */
	to_cancel = NULL;
}

static void
test_httpc_cancel_calls_nothing(void **state)
{
	struct outcome a, b, c, d;
	char *ok = case_url("ok"), *hang = case_url("hang");

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	memset(&d, 0, sizeof(d));
	/* cancelled before any I/O */
	httpc_cancel(start_on(F.hc, ok, "GET", NULL, 0, &a));
	outstanding--;
	/* cancelled while the partner holds it; neighbours unaffected */
	start_on(F.hc, ok, "GET", NULL, 0, &b);
	to_cancel = start_on(F.hc, hang, "GET", NULL, 0, &c);
	F.srv.on_hold = cancel_on_hold;
	start_on(F.hc, ok, "POST", "x=1", 0, &d);
	run(10000, true);
	assert_null(to_cancel);
	run(300, false); /* anything late would show up now */
	assert_int_equal(a.calls, 0);
	assert_int_equal(c.calls, 0);
	assert_int_equal(b.calls, 1);
	assert_int_equal(d.calls, 1);
	assert_true(b.verified);
	assert_true(d.verified);
	assert_int_equal(httpc_pending(F.hc), 0);
	httpc_cancel(NULL); /* harmless */
	outcome_free(&b);
	outcome_free(&d);
	free(ok);
	free(hang);
}

/* A callback that cancels itself (a no-op) and starts the next call. */
struct chain {
	struct outcome first, second;
	struct httpc_req *self;
	char *url;
};

static void
chain_cb(const struct httpc_result *res, void *arg)
{
	struct chain *c = arg;

	done_cb(res, &c->first);
	httpc_cancel(c->self);
	start_on(F.hc, c->url, "GET", NULL, 0, &c->second);
}

static void
test_httpc_callback_may_start_and_cancel(void **state)
{
	struct httpc_params p = {
	    .url = NULL, .key = F.client, .reg = F.reg, .max_response_bytes = CEILING};
	struct chain c;
	char err[256];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.url = case_url("ok");
	p.url = c.url;
	c.self = httpc_request(F.hc, &p, chain_cb, &c, err, sizeof(err));
	assert_non_null(c.self);
	outstanding++;
	run(10000, true);
	assert_int_equal(c.first.calls, 1);
	assert_int_equal(c.second.calls, 1);
	assert_true(c.first.verified);
	assert_true(c.second.verified);
	assert_string_not_equal(c.first.request_id, c.second.request_id);
	outcome_free(&c.first);
	outcome_free(&c.second);
	free(c.url);
}

static void
test_httpc_untrusted_certificate_is_tls_error(void **state)
{
	struct httpc *hc = httpc_new(F.base, NULL); /* system trust store only */
	int before = F.srv.verified;
	char *url = case_url("ok");
	struct outcome o;

	(void)state;
	assert_non_null(hc);
	memset(&o, 0, sizeof(o));
	start_on(hc, url, "GET", NULL, 0, &o);
	run(10000, true);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.error, HTTPC_ERR_TLS);
	assert_true(o.message[0] != '\0');
	assert_int_equal(F.srv.verified, before); /* nothing reached the partner */
	httpc_free(hc);
	outcome_free(&o);
	free(url);
}

static void
test_httpc_refused_connection_is_connect_error(void **state)
{
	struct outcome o;

	(void)state;
	memset(&o, 0, sizeof(o));
	start_on(F.hc, F.closed_url, "GET", NULL, 0, &o);
	run(10000, true);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.error, HTTPC_ERR_CONNECT);
	outcome_free(&o);
}

static void
test_httpc_free_finishes_pending_requests(void **state)
{
	struct httpc *hc = httpc_new(F.base, &(struct httpc_opts){.ca_file = F.ca_path});
	char *url = case_url("hang");
	struct outcome o;

	(void)state;
	memset(&o, 0, sizeof(o));
	start_on(hc, url, "GET", NULL, 0, &o);
	for (int i = 0; i < 200 && F.srv.nheld == 0; i++)
		run(50, false);
	assert_int_equal(F.srv.nheld, 1);
	httpc_free(hc);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.error, HTTPC_ERR_SHUTDOWN);
	assert_int_equal(outstanding, 0);
	outcome_free(&o);
	free(url);
}

static void
expect_refused(const struct httpc_params *p, const char *want)
{
	struct outcome o;
	char err[512] = "";

	memset(&o, 0, sizeof(o));
	assert_null(httpc_request(F.hc, p, done_cb, &o, err, sizeof(err)));
	if (strstr(err, want) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", want, err);
	assert_int_equal(httpc_pending(F.hc), 0);
}

static void
test_httpc_refuses_what_it_cannot_send_safely(void **state)
{
	struct httpc_params p = {.url = F.url, .key = F.client, .reg = F.reg};
	char *http = xasprintf("http://127.0.0.1:%d/ewp", F.srv.port);
	char *other = xasprintf("https://127.0.0.1:%d/elsewhere", F.srv.port);

	(void)state;
	p.url = http;
	expect_refused(&p, "only https://");
	p.url = other;
	expect_refused(&p, "no host in the catalogue lists");
	p.url = "not a url";
	expect_refused(&p, "is not a URL");
	p.url = F.url;
	p.method = "GET";
	p.body = "x=1";
	p.body_len = 3;
	expect_refused(&p, "GET request has no body");
	p.method = "PUT";
	expect_refused(&p, "not used by EWP");
	p.method = "POST";
	p.content_type = "text/plain\r\nX-Evil: 1";
	expect_refused(&p, "not a header value");
	p.content_type = NULL;
	p.reg = NULL;
	expect_refused(&p, "needs a URL, a key, a catalogue");
	free(http);
	free(other);
}

static void
test_httpc_endpoint_lookups(void **state)
{
	struct httpc_endpoint e;
	char err[512];

	(void)state;
	assert_int_equal(httpc_endpoint(F.reg, "a.example", E2_NS, "url", &e, err, sizeof(err)), 0);
	assert_string_equal(e.url, F.url);
	assert_string_equal(e.api->version, "2.0.0");
	assert_int_equal(httpc_endpoint_limit(&e, "max-echo-values", 1), 7);
	assert_int_equal(httpc_endpoint_limit(&e, "max-other-ids", 1), 1);
	assert_int_equal(httpc_endpoint(F.reg, "b.example", E2_NS, "url", &e, err, sizeof(err)), 0);
	assert_string_equal(e.url, "https://b.example/ewp");
	assert_int_equal(
	    httpc_endpoint(F.reg, "nobody.example", E2_NS, "url", &e, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not in the catalogue"));
	assert_int_equal(httpc_endpoint(F.reg, "us.example", E2_NS, "url", &e, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "implements"));
	assert_int_equal(
	    httpc_endpoint(F.reg, "a.example", E2_NS, "index-url", &e, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "has no <index-url>"));
}

int
main(void)
{
#define T(f) cmocka_unit_test_teardown(f, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_httpc_good_signed_response_verifies),
	    T(test_httpc_post_body_is_signed_and_sent),
	    T(test_httpc_key_of_another_host_is_refused),
	    T(test_httpc_body_altered_after_signing_is_refused),
	    T(test_httpc_missing_request_signature_is_refused),
	    T(test_httpc_error_status_is_delivered_with_body),
	    T(test_httpc_silent_server_times_out),
	    T(test_httpc_body_past_ceiling_is_too_large),
	    T(test_httpc_too_many_header_lines_is_too_large),
	    T(test_httpc_only_final_response_headers_are_kept),
	    T(test_httpc_many_concurrent_requests_complete),
	    T(test_httpc_cancel_calls_nothing),
	    T(test_httpc_callback_may_start_and_cancel),
	    T(test_httpc_untrusted_certificate_is_tls_error),
	    T(test_httpc_refused_connection_is_connect_error),
	    T(test_httpc_free_finishes_pending_requests),
	    T(test_httpc_refuses_what_it_cannot_send_safely),
	    T(test_httpc_endpoint_lookups),
	};
#undef T
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
