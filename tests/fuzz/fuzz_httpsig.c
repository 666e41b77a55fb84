/*
 * fuzz_httpsig.c - libFuzzer target for the peer-facing parsers of httpsig*.c.
 *
 * Build and run from the repository root:
 *   mkdir -p build/corpus-httpsig
 *   clang -g -O1 -std=c17 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Igateway \
 *       $(pkg-config --cflags openssl) -o build/fuzz_httpsig tests/fuzz/fuzz_httpsig.c \
 *       gateway/httpsig.c gateway/httpsig_parse.c gateway/httpsig_verify.c \
 *       gateway/httpsig_sign.c gateway/httpsig_client.c gateway/keys.c gateway/codec.c \
 *       gateway/buf.c gateway/log.c gateway/xmalloc.c $(pkg-config --libs openssl)
 *   build/fuzz_httpsig -max_len=4096 build/corpus-httpsig
 *
 * The input is split on '\n' into up to three values: the Authorization
 * header, the Digest header and the Accept-Signature header. The rest of
 * the request is fixed and valid, and the key lookup always answers with
 * the draft-cavage test key, so that inputs can reach the signature and
 * digest checks. The first value is also tried as a response's Signature
 * header. A useful seed is request C of httpsig-known-answer.txt: its
 * Authorization value, '\n', its Digest value, '\n', "rsa-sha256".
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "httpsig.h"
#include "xmalloc.h"

/* Public key of the draft-cavage Appendix C test key (1024-bit, tests only). */
#define FUZZ_PUBKEY                                                                                \
	"MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDCFENGw33yGihy92pDjZQhl0C3"                         \
	"6rPJj+CvfSC8+q28hxA161QFNUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6"                         \
	"Z4UMR7EOcpfdUE9Hf3m/hs+FUR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJw"                         \
	"oYi+1hqp1fIekaxsyQIDAQAB"
#define FUZZ_DATE "Sun, 05 Jan 2014 21:31:40 GMT"
#define FUZZ_ID   "dc05b425-4e86-4106-8dde-1257fccf53e5"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct keys_pub *fuzz_key;

static enum httpsig_key_kind
fuzz_lookup_cb(void *arg, const char *keyid, const struct keys_pub **pub)
{
	(void)arg;
	(void)keyid;
	*pub = fuzz_key;
	return HTTPSIG_KEY_CLIENT;
}

static bool
fuzz_replay_cb(void *arg, const char *request_id, time_t now)
{
	(void)arg;
	(void)now;
	return !codec_is_canonical_uuid(request_id); /* only verified ids get here */
}

/* Next '\n'-separated field of [*p, end) as a C string (caller frees). */
static char *
fuzz_field(const char **p, const char *end)
{
	const char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
	const char *e = nl ? nl : end;

	*p = nl ? nl + 1 : end;
	return xstrndup(s, (size_t)(e - s)); /* an embedded NUL ends the value early */
}

static void
fuzz_request(const char *auth, const char *digest)
{
	const struct httpsig_header h[] = {
	    {"Host", "ewp.example.org"}, {"Date", FUZZ_DATE},     {"X-Request-Id", FUZZ_ID},
	    {"Digest", digest},          {"Authorization", auth},
	};
	const struct httpsig_msg m = {"POST", "/ewp/echo", h, 5, "echo=a&echo=b", 13};
	struct httpsig_verify_opts o = {
	    .expected_host = "ewp.example.org",
	    .max_skew = EWP_DATE_WINDOW_SECS,
	    .lookup = fuzz_lookup_cb,
	    .replay = fuzz_replay_cb,
	};
	struct httpsig_verdict v;

	if (codec_parse_http_date(FUZZ_DATE, &o.now) != 0)
		abort();
	httpsig_verify_request(&m, &o, &v);
	if (v.status == 200 && !codec_is_canonical_uuid(v.request_id))
		abort(); /* a success must carry a verified request id */
	httpsig_verdict_free(&v);
	httpsig_verdict_free(&v);
}

static void
fuzz_response(const char *signature, const char *digest)
{
	const struct httpsig_header h[] = {
	    {"Date", FUZZ_DATE},
	    {"Digest", digest},
	    {"X-Request-Id", FUZZ_ID},
	    {"Signature", signature},
	};
	struct httpsig_response_opts o = {
	    .request_method = "POST",
	    .request_target = "/ewp/echo",
	    .request_id = FUZZ_ID,
	    .max_skew = EWP_DATE_WINDOW_SECS,
	    .lookup = fuzz_lookup_cb,
	};
	struct httpsig_verdict v;

	if (codec_parse_http_date(FUZZ_DATE, &o.now) != 0)
		abort();
	httpsig_verify_response(h, 4, "<r/>", 4, &o, &v);
	httpsig_verdict_free(&v);
}

/* A date that parses prints back as the same bytes (one form only). */
static void
fuzz_date(const char *s)
{
	char back[CODEC_HTTP_DATE_LEN + 1];
	time_t t;

	if (codec_parse_http_date(s, &t) != 0)
		return;
	codec_http_date(t, back);
	if (strcmp(back, s) != 0)
		abort();
}

/* Decoded base64 encodes back to the input minus whitespace (canonical only). */
static void
fuzz_base64(const char *in, size_t len)
{
	unsigned char *raw;
	size_t rawlen, j = 0;
	char *enc, *squeezed;

	if (codec_base64_decode(in, len, &raw, &rawlen) != 0)
		return;
	squeezed = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++)
		if (in[i] == '\0' || !strchr(" \t\n\r\v\f", in[i]))
			squeezed[j++] = in[i];
	squeezed[j] = '\0';
	enc = codec_base64_encode(raw, rawlen);
	if (strcmp(enc, squeezed) != 0)
		abort();
	free(enc);
	free(squeezed);
	free(raw);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char *auth, *digest, *accept, msg[256];

	if (fuzz_key == NULL && (fuzz_key = keys_pub_from_b64(FUZZ_PUBKEY)) == NULL)
		abort();
	auth = fuzz_field(&p, end);
	digest = fuzz_field(&p, end);
	accept = fuzz_field(&p, end);
	fuzz_request(auth, digest);
	fuzz_response(auth, digest);
	/* A match needs at least "SHA-256=" followed by a value. */
	if (httpsig_check_digest(digest, data, size, msg, sizeof(msg)) == 0 && strlen(digest) < 52)
		abort();
	(void)httpsig_accepts_rsa_sha256(accept);
	/* The codec parsers behind them see the same bytes. */
	fuzz_base64(auth, strlen(auth));
	fuzz_date(accept);
	free(auth);
	free(digest);
	free(accept);
	return 0;
}
