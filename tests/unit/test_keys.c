/*
 * test_keys.c - private and public keys, keyIds, key generation.
 *
 * Vectors come from the shared ewp-specs test-vectors directory ($EWP_SPECS,
 * default ../shared/ewp-specs from the repository root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "keys.h"
#include "testutil.h"
#include "xmalloc.h"

#define CATALOGUE_KEYID "5531f9a02c44a894d0b706961259fec740ad4ae8a3555871f1a5cd9801285bd4"

static char *known_answer; /* httpsig-known-answer.txt */
static char *fingerprint;  /* ewp-key-fingerprint.txt */
static char *tmpdir;

/* Text between `begin` and `end` (both excluded). */
static char *
between(const char *from, const char *begin, const char *end)
{
	const char *b = strstr(from, begin), *e = NULL;

	if (b == NULL || (e = strstr(b + strlen(begin), end)) == NULL)
		fail_msg("vector marker %s not found", begin);
	b += strlen(begin);
	return xstrndup(b, (size_t)(e - b));
}

/* The line after the comment line containing label. */
static char *
line_after(const char *text, const char *label)
{
	const char *p = strstr(text, label), *e;

	if (p == NULL || (p = strchr(p, '\n')) == NULL)
		fail_msg("vector label %s not found", label);
	p++;
	e = strchrnul(p, '\n');
	return xstrndup(p, (size_t)(e - p));
}

static char *
vector_key_pem(void)
{
	return testutil_span(known_answer, "-----BEGIN RSA PRIVATE KEY-----",
	                     "-----END RSA PRIVATE KEY-----");
}

static char *
tmp_path(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	testutil_write_file(path, text);
	assert_int_equal(chmod(path, mode), 0);
}

static mode_t
file_mode(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void
test_keys_catalogue_fingerprint_vector(void **state)
{
	char *attr = between(fingerprint, "<rsa-public-key sha-256=\"", "\"");
	char *b64 = between(fingerprint, CATALOGUE_KEYID "\">", "</rsa-public-key>");
	struct keys_pub *k = keys_pub_from_b64(b64);

	(void)state;
	assert_string_equal(attr, CATALOGUE_KEYID);
	assert_non_null(k);
	assert_string_equal(keys_pub_keyid(k), attr);
	assert_true(keys_pub_is_rsa(k));
	assert_int_equal(keys_pub_bits(k), 2048);
	keys_pub_free(k);
	free(attr);
	free(b64);
}

static void
test_keys_manifest_wrapping_gives_same_keyid(void **state)
{
	const char *manifest = strstr(fingerprint, "<client-credentials-in-use>");
	char *b64;
	struct keys_pub *k;

	(void)state;
	assert_non_null(manifest);
	b64 = between(manifest, "<rsa-public-key>", "</rsa-public-key>");
	k = keys_pub_from_b64(b64);
	assert_non_null(k);
	assert_string_equal(keys_pub_keyid(k), CATALOGUE_KEYID);
	keys_pub_free(k);
	free(b64);
}

static void
test_keys_fingerprint_der_is_hex_sha256(void **state)
{
	char out[CODEC_SHA256_HEX_LEN + 1];

	(void)state;
	keys_fingerprint_der((const unsigned char *)"abc", 3, out);
	assert_string_equal(out,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_keys_priv_from_pem_refuses_1024_bits(void **state)
{
	char *pem = vector_key_pem(), err[256] = "";

	(void)state;
	assert_null(keys_priv_from_pem(pem, err, sizeof(err)));
	assert_non_null(strstr(err, "1024 bits"));
	assert_non_null(strstr(err, "2048"));
	free(pem);
}

static void
test_keys_priv_unchecked_loads_vector_key(void **state)
{
	char *pem = vector_key_pem(), *keyid = line_after(known_answer, "# EWP keyId of this key");
	char *pub_pem =
	    testutil_span(known_answer, "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----");
	char *pub_b64 = between(pub_pem, "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----");
	char err[256] = "";
	struct keys_priv *k = keys_priv_from_pem_unchecked(pem, err, sizeof(err));
	struct keys_pub *pub;

	(void)state;
	assert_non_null(k);
	assert_int_equal(keys_priv_bits(k), 1024);
	assert_string_equal(keys_priv_keyid(k), keyid);
	/* The derived public key is the published one, and hashes to the same keyId. */
	pub = keys_pub_from_b64(pub_b64);
	assert_non_null(pub);
	assert_string_equal(keys_pub_keyid(pub), keyid);
	keys_pub_free(pub);
	pub = keys_pub_from_b64(keys_priv_public_b64(k));
	assert_non_null(pub);
	assert_string_equal(keys_pub_keyid(pub), keyid);
	assert_null(strchr(keys_priv_public_b64(k), '\n'));
	keys_pub_free(pub);
	keys_priv_free(k);
	free(pem);
	free(keyid);
	free(pub_pem);
	free(pub_b64);
}

static void
test_keys_sign_reproduces_draft_vector(void **state)
{
	char *pem = vector_key_pem(), *str = line_after(known_answer, "# B1 string to sign:");
	char *want = line_after(known_answer, "# B1 signature:"), *sig;
	struct keys_priv *k = keys_priv_from_pem_unchecked(pem, NULL, 0);
	struct keys_pub *pub;

	(void)state;
	assert_non_null(k);
	sig = keys_priv_sign(k, str, strlen(str));
	assert_non_null(sig);
	assert_string_equal(sig, want);
	pub = keys_pub_from_b64(keys_priv_public_b64(k));
	assert_true(keys_pub_verify(pub, str, strlen(str), want));
	str[0] = 'D';
	assert_false(keys_pub_verify(pub, str, strlen(str), want));
	keys_pub_free(pub);
	keys_priv_free(k);
	free(sig);
	free(pem);
	free(str);
	free(want);
}

static void
test_keys_pub_verify_refuses_bad_signatures(void **state)
{
	char *pem = vector_key_pem(), *sig;
	struct keys_priv *k = keys_priv_from_pem_unchecked(pem, NULL, 0);
	struct keys_pub *pub = keys_pub_from_b64(keys_priv_public_b64(k));

	(void)state;
	sig = keys_priv_sign(k, "hello", 5);
	assert_true(keys_pub_verify(pub, "hello", 5, sig));
	assert_false(keys_pub_verify(pub, "hellO", 5, sig));
	assert_false(keys_pub_verify(pub, "hello", 5, "not base64!"));
	assert_false(keys_pub_verify(pub, "hello", 5, ""));
	assert_false(keys_pub_verify(pub, "hello", 5, "AAAA"));
	sig[10] = sig[10] == 'A' ? 'B' : 'A';
	assert_false(keys_pub_verify(pub, "hello", 5, sig));
	free(sig);
	keys_pub_free(pub);
	keys_priv_free(k);
	free(pem);
}

static void
test_keys_pub_from_der_refuses_garbage(void **state)
{
	char *pem = vector_key_pem();
	struct keys_priv *k = keys_priv_from_pem_unchecked(pem, NULL, 0);
	char *b64 = xasprintf("%sAAAA", keys_priv_public_b64(k));
	unsigned char der[3] = {0x30, 0x01, 0x00};

	(void)state;
	assert_null(keys_pub_from_der(der, 0));
	assert_null(keys_pub_from_der(der, sizeof(der)));
	assert_null(keys_pub_from_b64("not base64"));
	assert_null(keys_pub_from_b64(""));
	/* Trailing bytes after the SubjectPublicKeyInfo are refused. */
	assert_null(keys_pub_from_b64(b64));
	free(b64);
	keys_priv_free(k);
	free(pem);
}

/* What OpenSSL's general decoder makes of der: NULL, or the key with every byte used. */
static EVP_PKEY *
reference_pubkey(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)len);

	if (pk != NULL && p != der + len) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	ERR_clear_error();
	return pk;
}

/* keys_pub_from_der must accept exactly what d2i_PUBKEY accepts, as the same key. */
static void
check_like_openssl(const unsigned char *der, size_t len)
{
	struct keys_pub *k = keys_pub_from_der(der, len);
	EVP_PKEY *ref = reference_pubkey(der, len);

	if (ref == NULL) {
		assert_null(k);
		return;
	}
	assert_non_null(k);
	assert_int_equal(keys_pub_bits(k), EVP_PKEY_get_bits(ref));
	assert_int_equal(keys_pub_is_rsa(k), EVP_PKEY_is_a(ref, "RSA"));
	keys_pub_free(k);
	EVP_PKEY_free(ref);
}

/* base64 of an rsa-sha256 (PKCS#1 v1.5) signature of msg. */
static char *
sign_b64(EVP_PKEY *pk, const char *msg)
{
	unsigned char sig[512];
	char *b64 = xmalloc(sizeof(sig) * 4 / 3 + 4);
	size_t len = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pk), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &len, (const unsigned char *)msg, strlen(msg)),
	                 1);
	EVP_EncodeBlock((unsigned char *)b64, sig, (int)len);
	EVP_MD_CTX_free(ctx);
	return b64;
}

/*
 * The canonical RSA form takes a fast path of our own; every one-byte
 * change, truncation and extension of a real key must still get the
 * answer OpenSSL gives, and the key must verify what it signed.
 */
static void
test_keys_pub_from_der_agrees_with_openssl(void **state)
{
	static const unsigned char flips[] = {0x01, 0x80, 0xff};
	EVP_PKEY *pk = EVP_RSA_gen(2048);
	unsigned char *der = NULL, *m;
	struct keys_pub *k;
	char *sig;
	int len;

	(void)state;
	assert_non_null(pk);
	len = i2d_PUBKEY(pk, &der);
	assert_true(len > 0);
	m = xmalloc((size_t)len + 1);
	memcpy(m, der, (size_t)len);
	check_like_openssl(m, (size_t)len);
	for (int i = 0; i < len; i++) {
		for (size_t f = 0; f < sizeof(flips); f++) {
			m[i] ^= flips[f];
			check_like_openssl(m, (size_t)len);
			m[i] ^= flips[f];
		}
		check_like_openssl(m, (size_t)i);
	}
	m[len] = 0;
	check_like_openssl(m, (size_t)len + 1);

	sig = sign_b64(pk, "hello");
	k = keys_pub_from_der(der, (size_t)len);
	assert_non_null(k);
	assert_true(keys_pub_verify(k, "hello", 5, sig));
	assert_false(keys_pub_verify(k, "hellp", 5, sig));
	keys_pub_free(k);
	free(sig);
	free(m);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
}

static void
test_keys_priv_from_pem_refuses_garbage(void **state)
{
	char err[256] = "";

	(void)state;
	assert_null(keys_priv_from_pem("hello", err, sizeof(err)));
	assert_non_null(strstr(err, "no PEM private key"));
	assert_null(keys_priv_from_pem("", NULL, 0));
}

/* PEM of a fresh key of another type, for the RSA-only rule. */
static char *
ec_key_pem(void)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *pem;
	long len;

	assert_non_null(pkey);
	assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
	len = BIO_get_mem_data(bio, &data);
	pem = xstrndup(data, (size_t)len);
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return pem;
}

static void
test_keys_priv_refuses_non_rsa(void **state)
{
	char *pem = ec_key_pem(), err[256] = "";

	(void)state;
	assert_null(keys_priv_from_pem(pem, err, sizeof(err)));
	assert_non_null(strstr(err, "not an RSA key"));
	assert_null(keys_priv_from_pem_unchecked(pem, err, sizeof(err)));
	free(pem);
}

static void
test_keys_priv_refuses_encrypted_pem(void **state)
{
	char *pem = vector_key_pem(), *data, *enc, err[256] = "";
	struct keys_priv *k = keys_priv_from_pem_unchecked(pem, NULL, 0);
	EVP_PKEY *pkey;
	BIO *in = BIO_new_mem_buf(pem, -1), *out = BIO_new(BIO_s_mem());
	long len;

	(void)state;
	assert_non_null(k);
	pkey = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
	assert_non_null(pkey);
	assert_int_equal(PEM_write_bio_PrivateKey(out, pkey, EVP_aes_128_cbc(),
	                                          (unsigned char *)"secret", 6, NULL, NULL),
	                 1);
	len = BIO_get_mem_data(out, &data);
	enc = xstrndup(data, (size_t)len);
	assert_null(keys_priv_from_pem_unchecked(enc, err, sizeof(err)));
	assert_non_null(strstr(err, "encrypted"));
	free(enc);
	BIO_free(in);
	BIO_free(out);
	EVP_PKEY_free(pkey);
	keys_priv_free(k);
	free(pem);
}

static void
test_keys_generate_writes_0600_key_and_0644_pub(void **state)
{
	char *path = tmp_path("gen.pem"), *pub = tmp_path("gen.pem.pub"), err[256] = "";
	char *text, *ptext;
	struct keys_priv *k;
	mode_t old = umask(077); /* .pub must still end up 0644 */

	(void)state;
	assert_int_equal(keys_generate(path, 2048, err, sizeof(err)), 0);
	umask(old);
	assert_int_equal(file_mode(path), 0600);
	assert_int_equal(file_mode(pub), 0644);
	text = testutil_read_file(path, NULL);
	ptext = testutil_read_file(pub, NULL);
	assert_int_equal(strncmp(text, "-----BEGIN PRIVATE KEY-----\n", 28), 0); /* PKCS#8 */
	assert_int_equal(strncmp(ptext, "-----BEGIN PUBLIC KEY-----\n", 27), 0);
	k = keys_priv_load(path, false, err, sizeof(err));
	if (k == NULL)
		fail_msg("%s", err);
	assert_int_equal(keys_priv_bits(k), 2048);
	/* The .pub file holds the same key: its base64 body is our SPKI. */
	{
		char *b64 =
		    between(ptext, "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----");
		struct keys_pub *p = keys_pub_from_b64(b64);

		assert_non_null(p);
		assert_string_equal(keys_pub_keyid(p), keys_priv_keyid(k));
		keys_pub_free(p);
		free(b64);
	}
	keys_priv_free(k);
	unlink(path);
	unlink(pub);
	free(text);
	free(ptext);
	free(path);
	free(pub);
}

static void
test_keys_generate_never_overwrites(void **state)
{
	char *path = tmp_path("keep.pem"), *pub = tmp_path("keep.pem.pub"), err[256] = "";
	char *text;

	(void)state;
	write_file(path, "precious\n", 0600);
	assert_int_equal(keys_generate(path, 2048, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "File exists"));
	text = testutil_read_file(path, NULL);
	assert_string_equal(text, "precious\n");
	assert_int_equal(access(pub, F_OK), -1);
	free(text);
	unlink(path);
	free(path);
	free(pub);
}

static void
test_keys_generate_leaves_nothing_when_pub_exists(void **state)
{
	char *path = tmp_path("half.pem"), *pub = tmp_path("half.pem.pub"), err[256] = "";
	char *text;

	(void)state;
	write_file(pub, "old public\n", 0644);
	assert_int_equal(keys_generate(path, 2048, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ".pub"));
	assert_int_equal(access(path, F_OK), -1);
	text = testutil_read_file(pub, NULL);
	assert_string_equal(text, "old public\n");
	free(text);
	unlink(pub);
	free(path);
	free(pub);
}

static void
test_keys_generate_refuses_small_keys(void **state)
{
	char *path = tmp_path("small.pem"), *pub = tmp_path("small.pem.pub"), err[256] = "";

	(void)state;
	assert_int_equal(keys_generate(path, 1024, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "1024"));
	assert_int_equal(keys_generate(path, 2047, NULL, 0), -1);
	assert_int_equal(keys_generate(path, -1, err, sizeof(err)), -1);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(access(pub, F_OK), -1);
	free(path);
	free(pub);
}

static void
test_keys_generate_fails_cleanly_in_missing_dir(void **state)
{
	char *path = tmp_path("nodir/k.pem"), err[256] = "";

	(void)state;
	assert_int_equal(keys_generate(path, 2048, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nodir/k.pem"));
	free(path);
}

static void
test_keys_priv_load_refuses_loose_mode(void **state)
{
	char *path = tmp_path("loose.pem"), err[256] = "";
	struct keys_priv *k;

	(void)state;
	assert_int_equal(keys_generate(path, 2048, err, sizeof(err)), 0);
	assert_int_equal(chmod(path, 0644), 0);
	assert_null(keys_priv_load(path, false, err, sizeof(err)));
	assert_non_null(strstr(err, "0644"));
	assert_non_null(strstr(err, path));
	assert_int_equal(chmod(path, 0640), 0);
	assert_null(keys_priv_load(path, false, err, sizeof(err)));
	assert_non_null(strstr(err, "0640"));
	assert_int_equal(chmod(path, 0604), 0);
	assert_null(keys_priv_load(path, false, err, sizeof(err)));
	/* Unit tests on vectors may opt out. */
	k = keys_priv_load(path, true, err, sizeof(err));
	assert_non_null(k);
	keys_priv_free(k);
	assert_int_equal(chmod(path, 0400), 0);
	k = keys_priv_load(path, false, err, sizeof(err));
	assert_non_null(k);
	keys_priv_free(k);
	unlink(path);
	free(path);
	path = tmp_path("loose.pem.pub");
	unlink(path);
	free(path);
}

static void
test_keys_priv_load_refuses_small_key_file(void **state)
{
	char *path = tmp_path("small-vector.pem"), *pem = vector_key_pem(), err[256] = "";

	(void)state;
	write_file(path, pem, 0600);
	assert_null(keys_priv_load(path, false, err, sizeof(err)));
	assert_non_null(strstr(err, "1024 bits"));
	assert_non_null(strstr(err, path));
	assert_null(keys_priv_load(path, true, err, sizeof(err)));
	unlink(path);
	free(path);
	free(pem);
}

static void
test_keys_priv_load_names_missing_file(void **state)
{
	char *path = tmp_path("absent.pem"), err[256] = "";

	(void)state;
	assert_null(keys_priv_load(path, false, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
	assert_null(keys_priv_load(tmpdir, false, err, sizeof(err)));
	assert_non_null(strstr(err, "not a regular file"));
	free(path);
}

static int
tmp_setup(void **state)
{
	(void)state;
	tmpdir = testutil_mkdtemp("test_keys");
	return tmpdir == NULL ? -1 : 0;
}

static int
tmp_teardown(void **state)
{
	int rc = rmdir(tmpdir);

	(void)state;
	free(tmpdir);
	tmpdir = NULL;
	return rc;
}

static int
vector_setup(void **state)
{
	known_answer = testutil_read_spec("test-vectors/httpsig-known-answer.txt", NULL);
	fingerprint = testutil_read_spec("test-vectors/ewp-key-fingerprint.txt", NULL);
	return tmp_setup(state);
}

static int
vector_teardown(void **state)
{
	free(known_answer);
	free(fingerprint);
	return tmp_teardown(state);
}

int
main(void)
{
	const struct CMUnitTest plain[] = {
	    cmocka_unit_test(test_keys_fingerprint_der_is_hex_sha256),
	    cmocka_unit_test(test_keys_priv_from_pem_refuses_garbage),
	    cmocka_unit_test(test_keys_pub_from_der_agrees_with_openssl),
	    cmocka_unit_test(test_keys_priv_refuses_non_rsa),
	    cmocka_unit_test(test_keys_generate_writes_0600_key_and_0644_pub),
	    cmocka_unit_test(test_keys_generate_never_overwrites),
	    cmocka_unit_test(test_keys_generate_leaves_nothing_when_pub_exists),
	    cmocka_unit_test(test_keys_generate_refuses_small_keys),
	    cmocka_unit_test(test_keys_generate_fails_cleanly_in_missing_dir),
	    cmocka_unit_test(test_keys_priv_load_refuses_loose_mode),
	    cmocka_unit_test(test_keys_priv_load_names_missing_file),
	};
	const struct CMUnitTest vectors[] = {
	    cmocka_unit_test(test_keys_catalogue_fingerprint_vector),
	    cmocka_unit_test(test_keys_manifest_wrapping_gives_same_keyid),
	    cmocka_unit_test(test_keys_priv_from_pem_refuses_1024_bits),
	    cmocka_unit_test(test_keys_priv_unchecked_loads_vector_key),
	    cmocka_unit_test(test_keys_sign_reproduces_draft_vector),
	    cmocka_unit_test(test_keys_pub_verify_refuses_bad_signatures),
	    cmocka_unit_test(test_keys_pub_from_der_refuses_garbage),
	    cmocka_unit_test(test_keys_priv_refuses_encrypted_pem),
	    cmocka_unit_test(test_keys_priv_load_refuses_small_key_file),
	};
	int failed;

	failed = cmocka_run_group_tests_name("keys", plain, tmp_setup, tmp_teardown);
	if (!testutil_find_specs("test-vectors/httpsig-known-answer.txt", "vector tests"))
		return 1;
	return failed +
	       cmocka_run_group_tests_name("keys vectors", vectors, vector_setup, vector_teardown);
}
