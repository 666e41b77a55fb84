/* manifest.c - builds the Discovery v6 manifest. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "api/api.h"
#include "codec.h"
#include "manifest.h"
#include "xmalloc.h"
#include "xmlw.h"

#define DISCOVERY_NS                                                                               \
	"https://github.com/erasmus-without-paper/ewp-specs-api-discovery/tree/stable-v6"
#define COMMON_NS                                                                                  \
	"https://github.com/erasmus-without-paper/ewp-specs-architecture/blob/stable-v1/"          \
	"common-types.xsd"
#define SEC_NS "https://github.com/erasmus-without-paper/ewp-specs-sec-intro/tree/stable-v2"
#define REG_NS "https://github.com/erasmus-without-paper/ewp-specs-api-registry/tree/stable-v1"

/* base64 DER of the public key in a PEM .pub file; caller frees. */
static char *
manifest_read_pub(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *pk;
	unsigned char *der = NULL;
	int len;
	char *b64;

	if (f == NULL) {
		snprintf(err, errlen, "published key %s: %s", path, strerror(errno));
		return NULL;
	}
	pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (pk == NULL) {
		snprintf(err, errlen, "published key %s: not a PEM public key", path);
		return NULL;
	}
	len = i2d_PUBKEY(pk, &der);
	EVP_PKEY_free(pk);
	if (len <= 0) {
		snprintf(err, errlen, "published key %s: cannot encode it", path);
		return NULL;
	}
	b64 = codec_base64_encode(der, (size_t)len);
	OPENSSL_free(der);
	return b64;
}

static int
manifest_keys(const struct conf *c, const char *element, const struct keys_priv *k,
              char *const *extra, size_t nextra, struct buf *out, char *err, size_t errlen)
{
	if (buf_printf(out, "<%s>", element) == -1)
		return -1;
	if (k &&
	    buf_printf(out, "<rsa-public-key>%s</rsa-public-key>", keys_priv_public_b64(k)) == -1)
		return -1;
	for (size_t i = 0; i < nextra; i++) {
		char *path = conf_key_path(c, extra[i]);
		char *b64 = manifest_read_pub(path, err, errlen);
		int rc;

		free(path);
		if (b64 == NULL)
			return -1;
		rc = buf_printf(out, "<rsa-public-key>%s</rsa-public-key>", b64);
		free(b64);
		if (rc == -1)
			return -1;
	}
	return buf_printf(out, "</%s>", element);
}

static int
manifest_hei(const struct conf *c, struct buf *out)
{
	int rc = buf_addstr(out, "<institutions-covered><r:hei id=\"");

	rc = rc ?: xmlw_escape(out, c->hei_id);
	rc = rc ?: buf_addstr(out, "\">");
	if (c->erasmus_code[0])
		rc = rc ?: xmlw_elem_attr(out, "r:other-id", "type", "erasmus", c->erasmus_code);
	if (c->pic[0])
		rc = rc ?: xmlw_elem_attr(out, "r:other-id", "type", "pic", c->pic);
	rc = rc ?: xmlw_elem_attr(out, "r:name", "xml:lang", c->hei_name_lang, c->hei_name);
	if (c->hei_name_en[0])
		rc = rc ?: xmlw_elem_attr(out, "r:name", "xml:lang", "en", c->hei_name_en);
	return rc ?: buf_addstr(out, "</r:hei></institutions-covered>");
}

int
manifest_build(const struct conf *c, const struct keys_priv *client, const struct keys_priv *server,
               struct buf *out, char *err, size_t errlen)
{
	int rc;

	snprintf(err, errlen, "manifest too large");
	rc = buf_addstr(out, XMLW_DECL "<manifest xmlns=\"" DISCOVERY_NS "\" xmlns:ewp=\"" COMMON_NS
	                               "\" xmlns:sec=\"" SEC_NS "\" xmlns:r=\"" REG_NS "\"><host>");
	rc = rc ?: xmlw_elem(out, "ewp:admin-email", c->admin_email);
	rc = rc ?: xmlw_elem(out, "ewp:admin-provider", c->admin_provider);
	if (c->admin_notes[0])
		rc = rc ?: xmlw_elem(out, "ewp:admin-notes", c->admin_notes);
	rc = rc ?: buf_addstr(out, "<r:apis-implemented>");
	for (size_t i = 0; api_table[i] && rc == 0; i++)
		if (api_enabled(api_table[i], c))
			rc = api_table[i]->manifest(api_table[i], c, out);
	rc = rc ?: buf_addstr(out, "</r:apis-implemented>");
	rc = rc ?: manifest_hei(c, out);
	if (rc == -1)
		return -1;
	if (manifest_keys(c, "client-credentials-in-use", client, c->publish_client,
	                  c->npublish_client, out, err, errlen) == -1 ||
	    manifest_keys(c, "server-credentials-in-use", server, c->publish_server,
	                  c->npublish_server, out, err, errlen) == -1)
		return -1;
	return buf_addstr(out, "</host></manifest>\n");
}
