/*
 * test_registry.c - catalogue loading, validation and lookups.
 *
 * Uses the official examples from $EWP_SPECS (default ../shared/ewp-specs
 * from the checkout root) and synthetic catalogues whose keys are made
 * here with OpenSSL, so that their digests are computed independently of
 * codec.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"
#include "fetch.h"
#include "registry.h"
#include "testutil.h"
#include "xmalloc.h"
#include "xml.h"

#define EXAMPLE_KEY "5531f9a02c44a894d0b706961259fec740ad4ae8a3555871f1a5cd9801285bd4"
#define E2_NS                                                                                      \
	"https://github.com/erasmus-without-paper/ewp-specs-api-echo/blob/stable-v2/"              \
	"manifest-entry.xsd"
#define E1_NS                                                                                      \
	"https://github.com/erasmus-without-paper/ewp-specs-api-echo/blob/stable-v1/"              \
	"manifest-entry.xsd"
#define D6_NS                                                                                      \
	"https://github.com/erasmus-without-paper/ewp-specs-api-discovery/blob/stable-v6/"         \
	"manifest-entry.xsd"
#define R1_NS                                                                                      \
	"https://github.com/erasmus-without-paper/ewp-specs-api-registry/blob/stable-v1/"          \
	"manifest-entry.xsd"
#define SEC_NS "https://github.com/erasmus-without-paper/ewp-specs-sec-intro/tree/stable-v2"
#define CLI_SIG_NS                                                                                 \
	"https://github.com/erasmus-without-paper/ewp-specs-sec-cliauth-httpsig/tree/stable-v1"
#define SRV_SIG_NS                                                                                 \
	"https://github.com/erasmus-without-paper/ewp-specs-sec-srvauth-httpsig/tree/stable-v1"
#define SAMPLE_PATH                                                                                \
	"ewp-registry-service/src/test/resources/test-files/catalogues/sample-catalogue.xml"
#define EXAMPLE_PATH "ewp-specs-api-registry/catalogue-example.xml"

/* A public key as a catalogue carries it. */
struct tkey {
	char *b64;
	char sha[65];
};

#define NKEYS 4
static struct tkey keys[NKEYS]; /* RSA-1024: the registry does not judge sizes */
static struct tkey ec_key;

static void
tkey_from_pkey(struct tkey *k, EVP_PKEY *pk)
{
	unsigned char *der = NULL, md[32];
	unsigned int mdlen = 0;
	int len = i2d_PUBKEY(pk, &der);
	static const char hex[] = "0123456789abcdef";

	assert_true(len > 0);
	k->b64 = xmalloc((size_t)len * 4 / 3 + 4);
	EVP_EncodeBlock((unsigned char *)k->b64, der, len);
	assert_int_equal(EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL), 1);
	for (unsigned int i = 0; i < mdlen; i++) {
		k->sha[2 * i] = hex[md[i] >> 4];
		k->sha[2 * i + 1] = hex[md[i] & 15];
	}
	k->sha[64] = '\0';
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
}

static int
group_setup(void **state)
{
	EVP_PKEY *pk;

	(void)state;
	if (!testutil_find_specs(EXAMPLE_PATH, "conformance tests"))
		return -1;
	xml_init(NULL);
	for (int i = 0; i < NKEYS; i++) {
		pk = EVP_RSA_gen(1024);
		if (pk == NULL)
			return -1;
		tkey_from_pkey(&keys[i], pk);
	}
	pk = EVP_EC_gen("P-256");
	if (pk == NULL)
		return -1;
	tkey_from_pkey(&ec_key, pk);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < NKEYS; i++)
		free(keys[i].b64);
	free(ec_key.b64);
	xml_cleanup();
	return 0;
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

static void
cat_open(struct buf *b)
{
	buf_init(b, 1 << 20);
	add(b,
	    "<catalogue xmlns=\"%s\" xmlns:e2=\"%s\" xmlns:sec=\"%s\" xmlns:a2=\"%s\" "
	    "xmlns:b2=\"%s\">\n",
	    REGISTRY_NS, E2_NS, SEC_NS, CLI_SIG_NS, SRV_SIG_NS);
}

/* One host covering `hei` with key k as client and server credential. */
static void
cat_host(struct buf *b, const char *hei, const char *sha, const char *apis)
{
	add(b,
	    "<host><apis-implemented>%s</apis-implemented>\n"
	    "<institutions-covered><hei-id>%s</hei-id></institutions-covered>\n"
	    "<client-credentials-in-use><rsa-public-key sha-256=\"%s\"/>"
	    "</client-credentials-in-use>\n"
	    "<server-credentials-in-use><rsa-public-key sha-256=\"%s\"/>"
	    "</server-credentials-in-use></host>\n",
	    apis, hei, sha, sha);
}

static void
cat_binary(struct buf *b, const char *sha, const char *b64)
{
	add(b, "<rsa-public-key sha-256=\"%s\">\n%s\n</rsa-public-key>\n", sha, b64);
}

/* A catalogue of one host and one HEI using keys[0]. */
static char *
simple_catalogue(const char *apis, const char *hei_body, const char *sha_ref,
                 const struct tkey *bin, const char *bin_sha)
{
	struct buf b;

	cat_open(&b);
	cat_host(&b, "x.example", sha_ref, apis);
	add(&b, "<institutions><hei id=\"x.example\">%s</hei></institutions>\n<binaries>",
	    hei_body);
	cat_binary(&b, bin_sha, bin->b64);
	add(&b, "</binaries></catalogue>\n");
	return buf_take(&b);
}

static struct registry *
load_str(const char *s, char *err, size_t errlen)
{
	return registry_load_mem(s, strlen(s), "test", err, errlen);
}

/* Loads catalogue s, which must be refused with exactly the error `want`;
 * frees both (the refusals below differ only in catalogue and message). */
static void
expect_refused(char *s, char *want)
{
	char err[512];

	assert_null(load_str(s, err, sizeof(err)));
	assert_string_equal(err, want);
	free(want);
	free(s);
}

static struct registry *
load_spec(const char *rel, char *err, size_t errlen)
{
	char *path = testutil_spec_path(rel);
	struct registry *r = registry_load_file(path, err, errlen);

	free(path);
	return r;
}

static void
test_registry_example_loads(void **state)
{
	char err[512] = "";
	struct registry *r = load_spec(EXAMPLE_PATH, err, sizeof(err));
	const struct registry_key *k;

	(void)state;
	if (r == NULL)
		print_error("%s\n", err);
	assert_non_null(r);
	assert_int_equal(registry_host_count(r), 2);
	assert_int_equal(registry_hei_count(r), 1);
	assert_int_equal(registry_key_count(r), 1);
	k = registry_key(r, EXAMPLE_KEY);
	assert_non_null(k);
	assert_string_equal(k->keyid, EXAMPLE_KEY);
	assert_true(k->client);
	assert_true(k->server);
	assert_true(keys_pub_is_rsa(k->pub));
	assert_int_equal(keys_pub_bits(k->pub), 2048);
	assert_null(
	    registry_key(r, "f47643e26f10fd1e5ffe2c933f0a5e6ccf831d789cd80a12720392e90a8f7d42"));
	registry_free(r);
}

static void
test_registry_keyid_lookup_forms(void **state)
{
	char err[512], upper[65];
	struct registry *r = load_spec(EXAMPLE_PATH, err, sizeof(err));

	(void)state;
	assert_non_null(r);
	for (int i = 0; i < 65; i++)
		upper[i] = (char)(EXAMPLE_KEY[i] >= 'a' ? EXAMPLE_KEY[i] - 32 : EXAMPLE_KEY[i]);
	assert_non_null(registry_key(r, upper));
	assert_null(registry_key(r, EXAMPLE_KEY "00"));
	assert_null(registry_key(r, "5531f9"));
	assert_null(registry_key(r, ""));
	assert_null(registry_key(r, NULL));
	registry_free(r);
}

static void
test_registry_example_client_heis(void **state)
{
	char err[512];
	struct registry *r = load_spec(EXAMPLE_PATH, err, sizeof(err));
	const char *const *heis;

	(void)state;
	assert_non_null(r);
	assert_int_equal(registry_client_heis(r, EXAMPLE_KEY, &heis), 1);
	assert_string_equal(heis[0], "uw.edu.pl");
	assert_int_equal(registry_client_heis(r, EXAMPLE_KEY "x", &heis), 0);
	assert_null(heis);
	registry_free(r);
}

static void
test_registry_example_api(void **state)
{
	char err[512];
	struct registry *r = load_spec(EXAMPLE_PATH, err, sizeof(err));
	const struct registry_api *a;

	(void)state;
	assert_non_null(r);
	a = registry_api(r, "uw.edu.pl", E2_NS);
	assert_non_null(a);
	assert_string_equal(a->ns, E2_NS);
	assert_string_equal(a->name, "echo");
	assert_string_equal(a->version, "2.0.0");
	assert_int_equal(a->host, 1);
	assert_int_equal(a->nurls, 1);
	assert_string_equal(registry_api_url(a, "url"), "https://example.com/ewp/echo");
	assert_null(registry_api_url(a, "get-url"));
	assert_true(a->cliauth_httpsig);
	assert_true(a->srvauth_httpsig);
	assert_int_equal(registry_api_limit(a, "max-echo-values", 1), 1);

	a = registry_api(r, "uw.edu.pl", D6_NS);
	assert_non_null(a);
	assert_string_equal(registry_api_url(a, "url"), "https://example.com/manifest.xml");
	assert_false(a->cliauth_httpsig);
	assert_false(a->srvauth_httpsig);

	/* The Registry's own host covers no HEI. */
	assert_null(registry_api(r, "uw.edu.pl", R1_NS));
	assert_null(registry_api(r, "unknown.example", E2_NS));
	registry_free(r);
}

static void
test_registry_example_server_key(void **state)
{
	char err[512];
	struct registry *r = load_spec(EXAMPLE_PATH, err, sizeof(err));

	(void)state;
	assert_non_null(r);
	assert_true(registry_host_has_server_key(r, 1, EXAMPLE_KEY));
	assert_false(registry_host_has_server_key(r, 0, EXAMPLE_KEY));
	assert_false(registry_host_has_server_key(r, 2, EXAMPLE_KEY));
	assert_false(registry_host_has_server_key(r, 1, "00"));
	registry_free(r);
}

static void
test_registry_host_by_url(void **state)
{
	char err[512];
	struct registry *r = load_spec(EXAMPLE_PATH, err, sizeof(err));
	size_t host = 99;

	(void)state;
	assert_non_null(r);
	assert_int_equal(registry_host_by_url(r, "https://example.com/ewp/echo", &host), 0);
	assert_int_equal(host, 1);
	host = 99;
	assert_int_equal(registry_host_by_url(r, "https://example.com/ewp/echo?echo=a", &host), 0);
	assert_int_equal(host, 1);
	assert_int_equal(registry_host_by_url(r, "https://example.com/ewp/echo2", &host), -1);
	assert_int_equal(registry_host_by_url(r, "https://other.example/ewp/echo", &host), -1);
	registry_free(r);
}

static void
test_registry_example_heis(void **state)
{
	char err[512];
	struct registry *r = load_spec(EXAMPLE_PATH, err, sizeof(err));

	(void)state;
	assert_non_null(r);
	assert_true(registry_hei_known(r, "uw.edu.pl"));
	assert_false(registry_hei_known(r, "UW.EDU.PL"));
	assert_string_equal(registry_hei_name(r, "uw.edu.pl"), "University of Warsaw");
	assert_null(registry_hei_name(r, "nope"));
	assert_string_equal(registry_hei_by_other_id(r, "erasmus", "PL WARSZAW01"), "uw.edu.pl");
	assert_string_equal(registry_hei_by_other_id(r, "erasmus", " plwarszaw01 "), "uw.edu.pl");
	assert_string_equal(registry_hei_by_other_id(r, "erasmus", "PL  WARSZAW 01"), "uw.edu.pl");
	assert_string_equal(registry_hei_by_other_id(r, "pic", "999572294"), "uw.edu.pl");
	assert_string_equal(registry_hei_by_other_id(r, "pic", " 999572294\n"), "uw.edu.pl");
	assert_null(registry_hei_by_other_id(r, "pic", "99957229"));
	assert_null(registry_hei_by_other_id(r, "PIC", "999572294"));
	assert_string_equal(
	    registry_hei_by_other_id(r, "erasmus-charter", "45834-EPP-1-2014-1-PL-EPPKA3-ECHE"),
	    "uw.edu.pl");
	assert_string_equal(registry_hei_by_other_id(r, "euc", "45834-EPP-1-2014-1-PL-EPPKA3-ECHE"),
	                    "uw.edu.pl");
	/* Only Erasmus codes ignore case. */
	assert_null(
	    registry_hei_by_other_id(r, "erasmus-charter", "45834-epp-1-2014-1-pl-eppka3-eche"));
	registry_free(r);
}

static void
test_registry_version_selection(void **state)
{
	const char *apis = "<e2:echo version=\"1.2.0\"><e2:url>https://a/1.2</e2:url></e2:echo>"
	                   "<e2:echo version=\"1.10.0\"><e2:get-url> https://a/get </e2:get-url>"
	                   "<e2:index-url>https://a/index</e2:index-url>"
	                   "<e2:max-hei-ids>5</e2:max-hei-ids><e2:max-ids>x</e2:max-ids>"
	                   "<e2:max-echo-values> 77 </e2:max-echo-values></e2:echo>"
	                   "<e2:echo version=\"1.9.9\"><e2:url>https://a/1.9.9</e2:url></e2:echo>"
	                   "<e2:echo version=\"1.10\"><e2:url>https://a/1.10</e2:url></e2:echo>";
	char err[512], *s;
	struct registry *r;
	const struct registry_api *a;

	(void)state;
	s = simple_catalogue(apis, "<name>X</name>", keys[0].sha, &keys[0], keys[0].sha);
	r = load_str(s, err, sizeof(err));
	if (r == NULL)
		print_error("%s\n", err);
	assert_non_null(r);
	a = registry_api(r, "x.example", E2_NS);
	assert_non_null(a);
	assert_string_equal(a->version, "1.10.0"); /* 1.10 == 1.10.0: the first one stays */
	assert_int_equal(a->nurls, 2);
	assert_string_equal(registry_api_url(a, "get-url"), "https://a/get");
	assert_string_equal(registry_api_url(a, "index-url"), "https://a/index");
	assert_null(registry_api_url(a, "url"));
	assert_int_equal(a->nlimits, 2);
	assert_int_equal(registry_api_limit(a, "max-hei-ids", 1), 5);
	assert_int_equal(registry_api_limit(a, "max-echo-values", 1), 77);
	assert_int_equal(registry_api_limit(a, "max-ids", 1), 1);
	assert_false(a->cliauth_httpsig);
	assert_false(a->srvauth_httpsig);
	registry_free(r);
	free(s);
}

static void
test_registry_http_security(void **state)
{
	const char *apis = "<e2:echo version=\"2.0.0\"><e2:http-security>"
	                   "<sec:client-auth-methods><a2:httpsig/></sec:client-auth-methods>"
	                   "<sec:server-auth-methods><b2:tlscert "
	                   "xmlns:b2=\"urn:other\"/></sec:server-auth-methods>"
	                   "</e2:http-security><e2:url>https://a/echo</e2:url></e2:echo>"
	                   /* httpsig in a wrong namespace is not httpsig */
	                   "<r:x xmlns:r=\"urn:r\" version=\"1.0.0\"><r:http-security>"
	                   "<sec:client-auth-methods><httpsig/></sec:client-auth-methods>"
	                   "<sec:server-auth-methods><b2:httpsig/></sec:server-auth-methods>"
	                   "</r:http-security></r:x>";
	char err[512], *s;
	struct registry *r;
	const struct registry_api *a;

	(void)state;
	s = simple_catalogue(apis, "<name>X</name>", keys[0].sha, &keys[0], keys[0].sha);
	r = load_str(s, err, sizeof(err));
	assert_non_null(r);
	a = registry_api(r, "x.example", E2_NS);
	assert_non_null(a);
	assert_true(a->cliauth_httpsig);
	assert_false(a->srvauth_httpsig);
	a = registry_api(r, "x.example", "urn:r");
	assert_non_null(a);
	assert_false(a->cliauth_httpsig);
	assert_true(a->srvauth_httpsig);
	registry_free(r);
	free(s);
}

/* In-place replacement of every occurrence of `from` by `to`. */
static char *
replace_all(char *s, const char *from, const char *to)
{
	struct buf b;
	char *p = s, *at;

	buf_init(&b, 1 << 20);
	while ((at = strstr(p, from)) != NULL) {
		assert_int_equal(buf_add(&b, p, (size_t)(at - p)), 0);
		assert_int_equal(buf_addstr(&b, to), 0);
		p = at + strlen(from);
	}
	assert_int_equal(buf_addstr(&b, p), 0);
	free(s);
	return buf_take(&b);
}

static void
test_registry_sample_placeholders_refused(void **state)
{
	char err[512];

	(void)state;
	/* Its binaries are "cc1", "cc2", "cc3": the fixture is not a real catalogue. */
	assert_null(load_spec(SAMPLE_PATH, err, sizeof(err)));
	assert_non_null(strstr(err,
	                       "sample-catalogue.xml: binaries key "
	                       "1111111111111111111111111111111111111111111111111111111111111111"
	                       ": content is not valid base64"));
}

/* The Registry's sample with real keys in place of its placeholders. */
static struct registry *
load_repaired_sample(void)
{
	char err[512], *s = testutil_read_spec(SAMPLE_PATH, NULL), digit[65];
	struct registry *r;

	for (int i = 0; i < 3; i++) {
		memset(digit, '1' + i, 64);
		digit[64] = '\0';
		s = replace_all(s, digit, keys[i].sha);
		snprintf(digit, sizeof(digit), ">cc%d<", i + 1);
		char *body = xasprintf(">%s<", keys[i].b64);
		s = replace_all(s, digit, body);
		free(body);
	}
	r = load_str(s, err, sizeof(err));
	if (r == NULL)
		print_error("%s\n", err);
	free(s);
	return r;
}

/* Each host's institutions and API entries, as the portal's partners page lists them. */
static void
test_registry_host_heis_and_apis(void **state)
{
	struct registry *r = load_repaired_sample();
	const struct registry_api *apis;
	const char *const *heis;
	bool e1_v12 = false;

	(void)state;
	assert_non_null(r);
	for (size_t h = 0; h < registry_host_count(r); h++) {
		size_t n = registry_host_apis(r, h, &apis);

		assert_true(n > 0);
		for (size_t k = 0; k < n; k++) {
			assert_int_equal(apis[k].host, h);
			if (strcmp(apis[k].ns, E1_NS) == 0 && strcmp(apis[k].version, "1.2.0") == 0)
				e1_v12 = true;
		}
	}
	assert_true(e1_v12);
	/* example2.com is covered by the second host (and the first) */
	assert_true(registry_host_heis(r, 1, &heis) >= 1);
	assert_string_equal(heis[0], "example2.com");
	assert_int_equal(registry_host_heis(r, 2, &heis), 0);
	assert_null(heis);
	assert_int_equal(registry_host_apis(r, 2, &apis), 0);
	assert_null(apis);
	registry_free(r);
}

static void
test_registry_sample_multi_host(void **state)
{
	struct registry *r = load_repaired_sample();
	const struct registry_api *a;
	const char *const *heis;

	(void)state;
	assert_non_null(r);
	assert_int_equal(registry_host_count(r), 2);
	assert_int_equal(registry_hei_count(r), 2);
	assert_int_equal(registry_key_count(r), 3);
	/* example2.com is covered by both hosts: the best version wins. */
	a = registry_api(r, "example2.com", E1_NS);
	assert_non_null(a);
	assert_string_equal(a->version, "1.2.0");
	assert_int_equal(a->host, 1);
	a = registry_api(r, "example1.com", E1_NS);
	assert_non_null(a);
	assert_string_equal(a->version, "1.1.0");
	assert_int_equal(a->host, 0);
	a = registry_api(r, "example2.com", D6_NS);
	assert_non_null(a);
	assert_string_equal(a->version, "6.0.0");
	/* Client keys: the union over hosts, in order, with duplicates. */
	assert_int_equal(registry_client_heis(r, keys[0].sha, &heis), 2);
	assert_string_equal(heis[0], "example1.com");
	assert_string_equal(heis[1], "example2.com");
	assert_int_equal(registry_client_heis(r, keys[1].sha, &heis), 3);
	assert_string_equal(heis[0], "example1.com");
	assert_string_equal(heis[1], "example2.com");
	assert_string_equal(heis[2], "example2.com");
	assert_int_equal(registry_client_heis(r, keys[2].sha, &heis), 1);
	assert_string_equal(heis[0], "example2.com");
	assert_true(registry_host_has_server_key(r, 0, keys[1].sha));
	assert_true(registry_host_has_server_key(r, 1, keys[1].sha));
	assert_false(registry_host_has_server_key(r, 0, keys[2].sha));
	assert_string_equal(registry_hei_name(r, "example2.com"), "University 2");
	registry_free(r);
}

static void
test_registry_sha_mismatch_refused(void **state)
{
	(void)state;
	/* keys[1] published under the digest of keys[0]. */
	expect_refused(simple_catalogue("", "<name>X</name>", keys[0].sha, &keys[1], keys[0].sha),
	               xasprintf("test: binaries key %s: sha-256 attribute does not match the key "
	                         "(its digest is %s)",
	                         keys[0].sha, keys[1].sha));
}

static void
test_registry_uppercase_sha_accepted(void **state)
{
	char err[512], upper[65], *s;
	struct registry *r;

	(void)state;
	for (int i = 0; i < 65; i++)
		upper[i] = (char)(keys[0].sha[i] >= 'a' ? keys[0].sha[i] - 32 : keys[0].sha[i]);
	s = simple_catalogue("", "<name>X</name>", upper, &keys[0], upper);
	r = load_str(s, err, sizeof(err));
	assert_non_null(r);
	assert_string_equal(registry_key(r, keys[0].sha)->keyid, keys[0].sha);
	assert_int_equal(keys_pub_bits(registry_key(r, keys[0].sha)->pub), 1024);
	registry_free(r);
	free(s);
}

static void
test_registry_missing_key_refused(void **state)
{
	(void)state;
	expect_refused(
	    simple_catalogue("", "<name>X</name>", keys[1].sha, &keys[0], keys[0].sha),
	    xasprintf("test: host index 0: client key %s is not in binaries", keys[1].sha));
}

static void
test_registry_missing_server_key_refused(void **state)
{
	char err[512];
	struct buf b;

	(void)state;
	cat_open(&b);
	cat_host(&b, "a.example", keys[0].sha, "");
	add(&b,
	    "<host><server-credentials-in-use><rsa-public-key sha-256=\"%s\"/>"
	    "</server-credentials-in-use></host>",
	    keys[2].sha);
	add(&b, "<institutions/><binaries>");
	cat_binary(&b, keys[0].sha, keys[0].b64);
	add(&b, "</binaries></catalogue>");
	assert_null(load_str(b.data, err, sizeof(err)));
	assert_non_null(strstr(err, "host index 1: server key"));
	assert_non_null(strstr(err, keys[2].sha));
	buf_free(&b);
}

static void
test_registry_wrong_namespace_refused(void **state)
{
	char err[512], *s;

	(void)state;
	s = simple_catalogue("", "<name>X</name>", keys[0].sha, &keys[0], keys[0].sha);
	s = replace_all(s, "xmlns=\"" REGISTRY_NS "\"", "xmlns=\"urn:not-the-registry\"");
	assert_null(load_str(s, err, sizeof(err)));
	assert_string_equal(err, "test: root element is {urn:not-the-registry}catalogue, expected "
	                         "{" REGISTRY_NS "}catalogue");
	free(s);
	assert_null(load_str("<manifest xmlns=\"" REGISTRY_NS "\"/>", err, sizeof(err)));
	assert_non_null(strstr(err, "}manifest, expected"));
}

static void
test_registry_non_rsa_refused(void **state)
{
	(void)state;
	expect_refused(simple_catalogue("", "<name>X</name>", ec_key.sha, &ec_key, ec_key.sha),
	               xasprintf("test: binaries key %s: not an RSA key", ec_key.sha));
}

static void
test_registry_garbage_key_refused(void **state)
{
	char err[512];
	struct tkey junk = {.b64 = "AAAA"};

	(void)state;
	/* sha-256 of the three zero bytes that "AAAA" decodes to */
	memcpy(junk.sha, "709e80c88487a2411e1ee4dfb9f22a861492d20c4765150c0c794abd70f8147c", 65);
	char *s = simple_catalogue("", "<name>X</name>", junk.sha, &junk, junk.sha);
	assert_null(load_str(s, err, sizeof(err)));
	assert_non_null(strstr(err, "not a DER SubjectPublicKeyInfo"));
	free(s);
}

static void
test_registry_empty_hei_refused(void **state)
{
	char err[512], *s;
	struct buf b;

	(void)state;
	cat_open(&b);
	cat_host(&b, "  ", keys[0].sha, "");
	add(&b, "<institutions/><binaries>");
	cat_binary(&b, keys[0].sha, keys[0].b64);
	add(&b, "</binaries></catalogue>");
	assert_null(load_str(b.data, err, sizeof(err)));
	assert_string_equal(err, "test: host index 0: empty hei-id");
	buf_free(&b);

	s = simple_catalogue("", "<name>X</name>", keys[0].sha, &keys[0], keys[0].sha);
	s = replace_all(s, "<hei id=\"x.example\">", "<hei id=\"\">");
	assert_null(load_str(s, err, sizeof(err)));
	assert_string_equal(err, "test: institutions: hei 0 has no id");
	free(s);
}

static void
test_registry_malformed_refused(void **state)
{
	char err[512];

	(void)state;
	assert_null(load_str("<catalogue xmlns=\"" REGISTRY_NS "\">\n<host>\n</catalogue>", err,
	                     sizeof(err)));
	assert_int_equal(strncmp(err, "test: line 3: ", 14), 0);
	assert_null(load_str("<catalogue xmlns=\"" REGISTRY_NS "\"><institutions/></catalogue>",
	                     err, sizeof(err)));
	assert_string_equal(err, "test: catalogue lists no host");
	assert_null(registry_load_file("/nonexistent/catalogue.xml", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/catalogue.xml: "));
}

static void
test_registry_names_and_other_ids(void **state)
{
	const char *hei = "<other-id type=\"pic\">111</other-id>"
	                  "<other-id type=\"custom\"> Ab C </other-id>"
	                  "<other-id type=\"erasmus\">x  example01</other-id>"
	                  "<name xml:lang=\"pl\">Iks</name><name>Ex</name>"
	                  "<name xml:lang=\"EN-gb\">X University</name>"
	                  "<name xml:lang=\"en\">Second English</name>";
	char err[512], *s;
	struct registry *r;
	struct buf b;

	(void)state;
	s = simple_catalogue("", hei, keys[0].sha, &keys[0], keys[0].sha);
	r = load_str(s, err, sizeof(err));
	assert_non_null(r);
	assert_string_equal(registry_hei_name(r, "x.example"), "X University");
	assert_string_equal(registry_hei_by_other_id(r, "custom", "Ab C"), "x.example");
	assert_null(registry_hei_by_other_id(r, "custom", "abc"));
	assert_string_equal(registry_hei_by_other_id(r, "erasmus", "X EXAMPLE01"), "x.example");
	registry_free(r);
	free(s);

	/* An other-id claimed by two HEIs identifies neither; no English name: the first. */
	cat_open(&b);
	cat_host(&b, "a.example", keys[0].sha, "");
	add(&b, "<institutions><hei id=\"a.example\"><other-id type=\"pic\">7</other-id>"
	        "<name xml:lang=\"fr\">A</name><name xml:lang=\"de\">B</name></hei>"
	        "<hei id=\"b.example\"><other-id type=\"pic\">7</other-id><name>B</name></hei>"
	        "</institutions><binaries>");
	cat_binary(&b, keys[0].sha, keys[0].b64);
	add(&b, "</binaries></catalogue>");
	r = load_str(b.data, err, sizeof(err));
	assert_non_null(r);
	assert_null(registry_hei_by_other_id(r, "pic", "7"));
	assert_string_equal(registry_hei_name(r, "a.example"), "A");
	assert_true(registry_hei_known(r, "b.example"));
	registry_free(r);
	buf_free(&b);
}

static void
test_registry_fetch_file(void **state)
{
	char err[512], *path = testutil_spec_path(EXAMPLE_PATH);
	char *url = xasprintf("file://%s", path);
	struct fetch_opts o = {.url = url, .timeout_secs = 5, .max_bytes = 1 << 20};
	struct fetch_result res;
	struct registry *r;

	(void)state;
	assert_int_equal(fetch_url(&o, &res), FETCH_OK);
	r = registry_load_mem(res.body.data, res.body.len, url, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(registry_key_count(r), 1);
	registry_free(r);
	fetch_result_free(&res);

	o.max_bytes = 1000;
	assert_int_equal(fetch_url(&o, &res), FETCH_ERROR);
	assert_non_null(strstr(res.error, "larger than 1000 bytes"));
	assert_int_equal(res.body.len, 0);
	fetch_result_free(&res);

	o.url = "http://127.0.0.1:1/catalogue.xml";
	assert_int_equal(fetch_url(&o, &res), FETCH_ERROR);
	assert_non_null(strstr(res.error, "only https:// and file://"));
	fetch_result_free(&res);

	o.url = "file:///nonexistent/catalogue.xml";
	assert_int_equal(fetch_url(&o, &res), FETCH_ERROR);
	assert_true(res.error[0] != '\0');
	fetch_result_free(&res);

	o.url = "https://127.0.0.1:1/catalogue.xml";
	o.etag = "\"a\"\r\nX-Evil: 1";
	assert_int_equal(fetch_url(&o, &res), FETCH_ERROR);
	assert_non_null(strstr(res.error, "not a valid header value"));
	fetch_result_free(&res);
	free(url);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registry_example_loads),
	    cmocka_unit_test(test_registry_keyid_lookup_forms),
	    cmocka_unit_test(test_registry_host_by_url),
	    cmocka_unit_test(test_registry_example_client_heis),
	    cmocka_unit_test(test_registry_example_api),
	    cmocka_unit_test(test_registry_example_server_key),
	    cmocka_unit_test(test_registry_example_heis),
	    cmocka_unit_test(test_registry_version_selection),
	    cmocka_unit_test(test_registry_http_security),
	    cmocka_unit_test(test_registry_sample_placeholders_refused),
	    cmocka_unit_test(test_registry_sample_multi_host),
	    cmocka_unit_test(test_registry_host_heis_and_apis),
	    cmocka_unit_test(test_registry_sha_mismatch_refused),
	    cmocka_unit_test(test_registry_uppercase_sha_accepted),
	    cmocka_unit_test(test_registry_missing_key_refused),
	    cmocka_unit_test(test_registry_missing_server_key_refused),
	    cmocka_unit_test(test_registry_wrong_namespace_refused),
	    cmocka_unit_test(test_registry_non_rsa_refused),
	    cmocka_unit_test(test_registry_garbage_key_refused),
	    cmocka_unit_test(test_registry_empty_hei_refused),
	    cmocka_unit_test(test_registry_malformed_refused),
	    cmocka_unit_test(test_registry_names_and_other_ids),
	    cmocka_unit_test(test_registry_fetch_file),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
