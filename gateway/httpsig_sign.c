/*
 * httpsig_sign.c - signing: the headers that make a response signed as
 * srvauth-httpsig says (server side), and a request signed as
 * cliauth-httpsig says (client side). Both build their headers, then sign
 * them with the one helper httpsig_out_sign.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "codec.h"
#include "httpsig.h"
#include "httpsig_int.h"
#include "keys.h"
#include "xmalloc.h"

void
httpsig_out_free(struct httpsig_out *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->h[i].name);
		free(o->h[i].value);
		o->h[i].name = o->h[i].value = NULL;
	}
	o->n = 0;
}

const char *
httpsig_out_get(const struct httpsig_out *o, const char *name)
{
	for (size_t i = 0; i < o->n; i++)
		if (strcasecmp(o->h[i].name, name) == 0)
			return o->h[i].value;
	return NULL;
}

/* Appends a header; takes ownership of value. */
static void
httpsig_out_add(struct httpsig_out *o, const char *name, char *value)
{
	if (o->n == sizeof(o->h) / sizeof(o->h[0]))
		abort(); /* a programming error: the helpers add at most six */
	o->h[o->n].name = xstrdup(name);
	o->h[o->n].value = value;
	o->n++;
}

/*
 * Signs the headers of o named in `names` and appends header `header`
 * holding prefix + the parameter list. On failure frees o and returns -1.
 */
static int
httpsig_out_sign(struct httpsig_out *o, const struct keys_priv *key, const char *method,
                 const char *target, const char *const *names, size_t nnames, const char *header,
                 const char *prefix)
{
	struct httpsig_header view[sizeof(o->h) / sizeof(o->h[0])];
	char *str, *sig = NULL;
	struct buf list;
	size_t len;

	for (size_t i = 0; i < o->n; i++) {
		view[i].name = o->h[i].name;
		view[i].value = o->h[i].value;
	}
	str = httpsig_signing_string(method, target, view, o->n, names, nnames, &len);
	if (str != NULL)
		sig = keys_priv_sign(key, str, len);
	free(str);
	if (sig == NULL) {
		httpsig_out_free(o);
		return -1;
	}
	buf_init(&list, (size_t)-1);
	for (size_t i = 0; i < nnames; i++)
		if (buf_printf(&list, "%s%s", i ? " " : "", names[i]) == -1)
			abort(); /* unbounded buffer: cannot fail */
	httpsig_out_add(o, header,
	                xasprintf("%skeyId=\"%s\",algorithm=\"rsa-sha256\",headers=\"%s\","
	                          "signature=\"%s\"",
	                          prefix, keys_priv_keyid(key), buf_cstr(&list), sig));
	buf_free(&list);
	free(sig);
	return 0;
}

int
httpsig_sign_response(const struct keys_priv *key, const void *body, size_t len,
                      const char *request_id, const char *request_signature, time_t now,
                      struct httpsig_out *out)
{
	const char *names[4] = {"date", "digest"};
	char date[CODEC_HTTP_DATE_LEN + 1], digest[HTTPSIG_DIGEST_BUF];
	size_t n = 2;

	memset(out, 0, sizeof(*out));
	codec_http_date(now, date);
	httpsig_digest_value(body, len, digest, sizeof(digest));
	httpsig_out_add(out, "Date", xstrdup(date));
	httpsig_out_add(out, "Digest", xstrdup(digest));
	if (request_id != NULL) {
		httpsig_out_add(out, "X-Request-Id", xstrdup(request_id));
		names[n++] = "x-request-id";
	}
	if (request_signature != NULL) {
		httpsig_out_add(out, "X-Request-Signature", xstrdup(request_signature));
		names[n++] = "x-request-signature";
	}
	return httpsig_out_sign(out, key, NULL, NULL, names, n, "Signature", "");
}

int
httpsig_sign_request(const struct keys_priv *key, const char *method, const char *target,
                     const char *host, const void *body, size_t len, time_t now,
                     struct httpsig_out *out)
{
	static const char *const names[] = {HTTPSIG_REQUEST_TARGET, "host", "date", "digest",
	                                    "x-request-id"};
	char date[CODEC_HTTP_DATE_LEN + 1], digest[HTTPSIG_DIGEST_BUF], id[CODEC_UUID_LEN + 1];

	memset(out, 0, sizeof(*out));
	codec_http_date(now, date);
	httpsig_digest_value(body, len, digest, sizeof(digest));
	codec_uuid_v4(id);
	httpsig_out_add(out, "Host", xstrdup(host));
	httpsig_out_add(out, "Date", xstrdup(date));
	httpsig_out_add(out, "Digest", xstrdup(digest));
	httpsig_out_add(out, "X-Request-Id", xstrdup(id));
	httpsig_out_add(out, "Accept-Signature", xstrdup("rsa-sha256"));
	return httpsig_out_sign(out, key, method, target, names, sizeof(names) / sizeof(names[0]),
	                        "Authorization", "Signature ");
}
