/*
 * keys.c - RSA keys: loading and using our private keys, parsing partners'
 * public keys, keyIds, and key generation for ewpctl.
 *
 * The only module that touches private key material. OpenSSL errors are
 * turned into messages (or a NULL/false result) and the error queue is
 * cleared so that it never grows in a long-running worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "keys.h"
#include "xmalloc.h"

#define KEYS_MAX_BITS     16384       /* generating more takes minutes; nobody uses it */
#define KEYS_MAX_PEM_SIZE (64 * 1024) /* a 16384-bit PEM key is about 13 KiB */

struct keys_priv {
	EVP_PKEY *pkey;
	char keyid[CODEC_SHA256_HEX_LEN + 1];
	char *pub_b64;
	int bits;
};

struct keys_pub {
	/*
	 * An RSA key in the canonical form (keys_spki_rsa) is kept as n and
	 * e, and pkey is made from them on its first verification (see
	 * keys_pub_pkey): a catalogue holds thousands of keys, a worker
	 * verifies with a few, and an EVP_PKEY costs ~900 bytes. Any other
	 * key has the pkey OpenSSL parsed.
	 */
	EVP_PKEY *pkey;
	char keyid[CODEC_SHA256_HEX_LEN + 1];
	int bits;
	bool rsa;
	size_t nlen, elen;
	unsigned char ne[]; /* n then e, big-endian, without sign bytes */
};

static void keys_err(char *err, size_t errlen, const char *fmt, ...) EWP_PRINTF(3, 4);

static void
keys_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The last OpenSSL error as text; clears the queue. */
static const char *
keys_ssl_error(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

void
keys_fingerprint_der(const unsigned char *der, size_t len, char out[CODEC_SHA256_HEX_LEN + 1])
{
	unsigned char md[CODEC_SHA256_LEN];

	codec_sha256(der, len, md);
	codec_hex(md, sizeof(md), out);
}

/* DER SubjectPublicKeyInfo of pkey; caller owns *der. -1 on failure. */
static int
keys_spki_der(EVP_PKEY *pkey, unsigned char **der, size_t *len)
{
	unsigned char *p;
	int n = i2d_PUBKEY(pkey, NULL);

	if (n <= 0)
		return -1;
	*der = p = xmalloc((size_t)n);
	if (i2d_PUBKEY(pkey, &p) != n) {
		free(*der);
		*der = NULL;
		return -1;
	}
	*len = (size_t)n;
	return 0;
}

/* Never prompt on a terminal: encrypted keys simply fail to load. */
static int
keys_no_passphrase_cb(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return -1;
}

/* Checks type and size and computes the public parts; takes pkey. */
static struct keys_priv *
keys_priv_wrap(EVP_PKEY *pkey, int min_bits, char *err, size_t errlen)
{
	struct keys_priv *k;
	unsigned char *der;
	size_t len;
	int bits = EVP_PKEY_get_bits(pkey);

	if (!EVP_PKEY_is_a(pkey, "RSA")) {
		keys_err(err, errlen, "private key is not an RSA key (EWP uses rsa-sha256 only)");
		EVP_PKEY_free(pkey);
		return NULL;
	}
	if (bits < min_bits) {
		keys_err(err, errlen, "private key has %d bits; at least %d are required", bits,
		         min_bits);
		EVP_PKEY_free(pkey);
		return NULL;
	}
	if (keys_spki_der(pkey, &der, &len) == -1) {
		char ebuf[256];

		keys_err(err, errlen, "cannot encode the public key: %s",
		         keys_ssl_error(ebuf, sizeof(ebuf)));
		EVP_PKEY_free(pkey);
		return NULL;
	}
	k = xcalloc(1, sizeof(*k));
	k->pkey = pkey;
	k->bits = bits;
	keys_fingerprint_der(der, len, k->keyid);
	k->pub_b64 = codec_base64_encode(der, len);
	free(der);
	return k;
}

static struct keys_priv *
keys_priv_parse(const char *pem, size_t len, int min_bits, char *err, size_t errlen)
{
	EVP_PKEY *pkey;
	char ebuf[256];
	BIO *bio;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		keys_err(err, errlen, "cannot read the private key");
		return NULL;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, keys_no_passphrase_cb, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		keys_ssl_error(ebuf, sizeof(ebuf));
		if (memmem(pem, len, "ENCRYPTED", 9) != NULL)
			keys_err(err, errlen,
			         "private key is encrypted; ewpd needs it unencrypted");
		else
			keys_err(err, errlen, "no PEM private key found: %s", ebuf);
		return NULL;
	}
	return keys_priv_wrap(pkey, min_bits, err, errlen);
}

struct keys_priv *
keys_priv_from_pem(const char *pem, char *err, size_t errlen)
{
	return keys_priv_parse(pem, strlen(pem), KEYS_MIN_BITS, err, errlen);
}

struct keys_priv *
keys_priv_from_pem_unchecked(const char *pem, char *err, size_t errlen)
{
	return keys_priv_parse(pem, strlen(pem), 0, err, errlen);
}

/* Reads an open regular file of at most KEYS_MAX_PEM_SIZE bytes; caller owns *out. */
static int
keys_read_fd(int fd, const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
	char *data = xmalloc(KEYS_MAX_PEM_SIZE + 1);
	size_t len = 0;
	ssize_t n;

	do {
		n = read(fd, data + len, KEYS_MAX_PEM_SIZE + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			keys_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
			free(data);
			return -1;
		}
		len += (size_t)n;
	} while (n != 0 && len <= KEYS_MAX_PEM_SIZE);
	if (len > KEYS_MAX_PEM_SIZE) {
		keys_err(err, errlen, "%s is larger than %d bytes: not a PEM key", path,
		         KEYS_MAX_PEM_SIZE);
		OPENSSL_cleanse(data, len);
		free(data);
		return -1;
	}
	data[len] = '\0';
	*out = data;
	*outlen = len;
	return 0;
}

/* Refuses anything but a regular file that only its owner can access. */
static int
keys_check_mode(int fd, const char *path, bool allow_loose_mode, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) == -1) {
		keys_err(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		keys_err(err, errlen, "%s is not a regular file", path);
		return -1;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) && !allow_loose_mode) {
		keys_err(err, errlen,
		         "private key %s has mode %04o: group or others can access it "
		         "(run chmod 600 %s)",
		         path, (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	return 0;
}

struct keys_priv *
keys_priv_load(const char *path, bool allow_loose_mode, char *err, size_t errlen)
{
	struct keys_priv *k;
	size_t len;
	char *pem;
	int fd;

	/* Check the mode on the descriptor we read, not on the path (no race). */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		keys_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (keys_check_mode(fd, path, allow_loose_mode, err, errlen) == -1 ||
	    keys_read_fd(fd, path, &pem, &len, err, errlen) == -1) {
		close(fd);
		return NULL;
	}
	close(fd);
	k = keys_priv_parse(pem, len, KEYS_MIN_BITS, err, errlen);
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (k == NULL && err != NULL && errlen > 0) {
		/* Name the file in the message: "<path>: <reason>". */
		char *why = xstrdup(err);

		keys_err(err, errlen, "%s: %s", path, why);
		free(why);
	}
	return k;
}

void
keys_priv_free(struct keys_priv *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->pub_b64);
	free(k);
}

const char *
keys_priv_keyid(const struct keys_priv *k)
{
	return k->keyid;
}

const char *
keys_priv_public_b64(const struct keys_priv *k)
{
	return k->pub_b64;
}

int
keys_priv_bits(const struct keys_priv *k)
{
	return k->bits;
}

/* Selects RSASSA-PKCS1-v1_5 explicitly rather than trusting the default. */
static int
keys_set_pkcs1(EVP_PKEY_CTX *pctx)
{
	return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0 ? 0 : -1;
}

char *
keys_priv_sign(const struct keys_priv *k, const void *data, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *sig = NULL;
	char *b64 = NULL;
	size_t siglen = 0;

	if (ctx == NULL)
		goto out;
	if (EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, k->pkey) != 1 ||
	    keys_set_pkcs1(pctx) == -1 || EVP_DigestSign(ctx, NULL, &siglen, data, len) != 1)
		goto out;
	sig = xmalloc(siglen);
	if (EVP_DigestSign(ctx, sig, &siglen, data, len) != 1)
		goto out;
	b64 = codec_base64_encode(sig, siglen);
out:
	if (b64 == NULL)
		ERR_clear_error();
	free(sig);
	EVP_MD_CTX_free(ctx);
	return b64;
}

/* ---- public keys from DER ---- */

/* A view of DER bytes: [p, end). */
struct keys_der {
	const unsigned char *p;
	const unsigned char *end;
};

/*
 * Takes the next element if it has tag `tag`, putting its contents in
 * *in. Strict DER only: definite lengths in their shortest form, at most
 * 64 KiB (far beyond any RSA key we take). Anything else returns false
 * and the caller leaves the bytes to OpenSSL's general decoder.
 */
static bool
keys_der_take(struct keys_der *d, unsigned char tag, struct keys_der *in)
{
	size_t avail = (size_t)(d->end - d->p), len, nlen, i;

	if (avail < 2 || d->p[0] != tag)
		return false;
	len = d->p[1];
	d->p += 2;
	avail -= 2;
	if (len & 0x80) {
		nlen = len & 0x7f;
		if (nlen == 0 || nlen > 2 || avail < nlen || d->p[0] == 0)
			return false;
		for (len = 0, i = 0; i < nlen; i++)
			len = len << 8 | *d->p++;
		avail -= nlen;
		if (len < 0x80)
			return false; /* the short form was required */
	}
	if (len > avail)
		return false;
	in->p = d->p;
	in->end = d->p + len;
	d->p += len;
	return true;
}

/* A positive INTEGER in its minimal form: its magnitude, big-endian, without sign byte. */
static bool
keys_der_uint(struct keys_der *d, struct keys_der *mag)
{
	if (!keys_der_take(d, 0x02, mag) || mag->p == mag->end || (mag->p[0] & 0x80))
		return false; /* empty or negative */
	if (mag->p[0] == 0) {
		mag->p++;
		if (mag->p == mag->end || !(mag->p[0] & 0x80))
			return false; /* zero, or a needless leading zero */
	}
	return true;
}

/*
 * SubjectPublicKeyInfo of rsaEncryption in its canonical form (RFC 3279:
 * NULL parameters, no unused bits) into the modulus and exponent
 * magnitudes; every byte must be accounted for. This is how the Registry
 * and every tool we know publish keys.
 */
static bool
keys_spki_rsa(const unsigned char *der, size_t len, struct keys_der *n, struct keys_der *e)
{
	static const unsigned char rsa_alg[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
	                                        0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
	struct keys_der all = {der, der + len}, spki, alg, bits, rsa;

	/* SEQUENCE { AlgorithmIdentifier, BIT STRING } and nothing after it */
	if (!keys_der_take(&all, 0x30, &spki) || all.p != all.end ||
	    !keys_der_take(&spki, 0x30, &alg) || !keys_der_take(&spki, 0x03, &bits) ||
	    spki.p != spki.end)
		return false;
	if ((size_t)(alg.end - alg.p) != sizeof(rsa_alg) ||
	    memcmp(alg.p, rsa_alg, sizeof(rsa_alg)) != 0)
		return false;
	/* No unused bits, then RSAPublicKey ::= SEQUENCE { n INTEGER, e INTEGER } */
	if (bits.p == bits.end || *bits.p++ != 0 || !keys_der_take(&bits, 0x30, &rsa) ||
	    bits.p != bits.end)
		return false;
	return keys_der_uint(&rsa, n) && keys_der_uint(&rsa, e) && rsa.p == rsa.end;
}

/* OSSL_PARAM big numbers are in native byte order; DER is big-endian. */
static void
keys_to_native(unsigned char *out, const unsigned char *be, size_t len)
{
	const union {
		unsigned short s;
		unsigned char c[sizeof(unsigned short)];
	} one = {1};
	size_t i;

	if (one.c[0] == 0) {
		memcpy(out, be, len);
		return;
	}
	for (i = 0; i < len; i++)
		out[i] = be[len - 1 - i];
}

/* An EVP_PKEY from n and e: about 3 us, where d2i_PUBKEY takes ~75 us. */
static EVP_PKEY *
keys_rsa_import(const struct keys_pub *k)
{
	unsigned char nbuf[KEYS_MAX_BITS / 8], ebuf[KEYS_MAX_BITS / 8];
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;

	keys_to_native(nbuf, k->ne, k->nlen);
	keys_to_native(ebuf, k->ne + k->nlen, k->elen);
	params[0] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_N, nbuf, k->nlen);
	params[1] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_E, ebuf, k->elen);
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

/* Bits of a big-endian magnitude whose first byte is not 0, as BN_num_bits counts them. */
static int
keys_magnitude_bits(const unsigned char *p, size_t len)
{
	int bits = (int)(len - 1) * 8;
	unsigned c;

	for (c = p[0]; c != 0; c >>= 1)
		bits++;
	return bits;
}

/* The canonical RSA form, kept as n and e (see struct keys_pub); NULL for any other. */
static struct keys_pub *
keys_pub_rsa(const unsigned char *der, size_t len)
{
	struct keys_der n, e;
	struct keys_pub *k;
	size_t nlen, elen;

	if (!keys_spki_rsa(der, len, &n, &e))
		return NULL;
	nlen = (size_t)(n.end - n.p);
	elen = (size_t)(e.end - e.p);
	if (nlen > KEYS_MAX_BITS / 8 || elen > KEYS_MAX_BITS / 8)
		return NULL; /* larger than any key we make: left to OpenSSL */
	k = xcalloc(1, sizeof(*k) + nlen + elen);
	memcpy(k->ne, n.p, nlen);
	memcpy(k->ne + nlen, e.p, elen);
	k->nlen = nlen;
	k->elen = elen;
	k->bits = keys_magnitude_bits(n.p, nlen);
	k->rsa = true;
	return k;
}

/* Any key type and encoding OpenSSL accepts, all bytes consumed; NULL otherwise. */
static struct keys_pub *
keys_pub_openssl(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	struct keys_pub *k;
	EVP_PKEY *pkey;

	if (len > LONG_MAX)
		return NULL;
	pkey = d2i_PUBKEY(NULL, &p, (long)len);
	/* Trailing bytes would make the keyId differ for the same key. */
	if (pkey == NULL || p != der + len) {
		EVP_PKEY_free(pkey);
		ERR_clear_error();
		return NULL;
	}
	k = xcalloc(1, sizeof(*k));
	k->pkey = pkey;
	k->bits = EVP_PKEY_get_bits(pkey);
	k->rsa = EVP_PKEY_is_a(pkey, "RSA");
	return k;
}

/*
 * The canonical RSA form takes our own path: d2i_PUBKEY costs about 75 us
 * a key in OpenSSL 3 (it sets up a decoder chain on every call), most of
 * a catalogue load. Everything else, other key types and any encoding
 * our strict reader declines, goes to OpenSSL as before.
 */
struct keys_pub *
keys_pub_from_der(const unsigned char *der, size_t len)
{
	struct keys_pub *k;

	if (len == 0)
		return NULL;
	k = keys_pub_rsa(der, len);
	if (k == NULL)
		k = keys_pub_openssl(der, len);
	if (k == NULL)
		return NULL;
	/* The Registry hashes the bytes it publishes, so hash them as given. */
	keys_fingerprint_der(der, len, k->keyid);
	return k;
}

struct keys_pub *
keys_pub_from_b64(const char *b64)
{
	struct keys_pub *k;
	unsigned char *der;
	size_t len;

	if (codec_base64_decode(b64, strlen(b64), &der, &len) == -1)
		return NULL;
	k = keys_pub_from_der(der, len);
	free(der);
	return k;
}

void
keys_pub_free(struct keys_pub *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

const char *
keys_pub_keyid(const struct keys_pub *k)
{
	return k->keyid;
}

int
keys_pub_bits(const struct keys_pub *k)
{
	return k->bits;
}

bool
keys_pub_is_rsa(const struct keys_pub *k)
{
	return k->rsa;
}

/*
 * The EVP_PKEY of k, made from n and e on first use and kept. Only that
 * cache changes in a key handed out as const; it is published with a
 * compare-and-swap, so that concurrent verifications stay safe (the
 * loser frees its copy).
 */
static EVP_PKEY *
keys_pub_pkey(const struct keys_pub *k)
{
	EVP_PKEY **cache = &((struct keys_pub *)k)->pkey;
	EVP_PKEY *pkey = __atomic_load_n(cache, __ATOMIC_ACQUIRE), *none = NULL;

	if (pkey != NULL || (pkey = keys_rsa_import(k)) == NULL)
		return pkey;
	if (!__atomic_compare_exchange_n(cache, &none, pkey, false, __ATOMIC_ACQ_REL,
	                                 __ATOMIC_ACQUIRE)) {
		EVP_PKEY_free(pkey);
		pkey = none; /* the winner's */
	}
	return pkey;
}

bool
keys_pub_verify(const struct keys_pub *k, const void *data, size_t len, const char *sig_b64)
{
	EVP_MD_CTX *ctx;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *pkey;
	unsigned char *sig;
	size_t siglen;
	bool ok;

	if (!k->rsa || codec_base64_decode(sig_b64, strlen(sig_b64), &sig, &siglen) == -1)
		return false;
	pkey = keys_pub_pkey(k);
	ctx = EVP_MD_CTX_new();
	ok = pkey != NULL && ctx != NULL &&
	     EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, pkey) == 1 &&
	     keys_set_pkcs1(pctx) == 0 && EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
	if (!ok)
		ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	free(sig);
	return ok;
}

static EVP_PKEY *
keys_rsa_generate(int bits, char *err, size_t errlen)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *pkey = NULL;
	char ebuf[256];

	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) != 1 ||
	    EVP_PKEY_generate(ctx, &pkey) != 1) {
		keys_err(err, errlen, "RSA key generation failed: %s",
		         keys_ssl_error(ebuf, sizeof(ebuf)));
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static int
keys_write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes the PEM made by one of the PEM_write_bio_* calls, then syncs. */
static int
keys_write_pem(int fd, EVP_PKEY *pkey, bool private, const char *path, char *err, size_t errlen)
{
	/* The private key's PEM text lives in the secure heap while in memory. */
	BIO *bio = BIO_new(private ? BIO_s_secmem() : BIO_s_mem());
	char ebuf[256], *data;
	long len;
	int ok;

	if (bio == NULL)
		ok = 0;
	else if (private)
		ok = PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
	else
		ok = PEM_write_bio_PUBKEY(bio, pkey);
	if (!ok || (len = BIO_get_mem_data(bio, &data)) <= 0) {
		keys_err(err, errlen, "cannot encode the key for %s: %s", path,
		         keys_ssl_error(ebuf, sizeof(ebuf)));
		BIO_free(bio);
		return -1;
	}
	if (keys_write_all(fd, data, (size_t)len) == -1 || fsync(fd) == -1) {
		keys_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
		BIO_free(bio);
		return -1;
	}
	BIO_free(bio);
	return 0;
}

/* Creates path (never replacing anything) with exactly `mode`. */
static int
keys_create(const char *path, mode_t mode, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

	if (fd == -1) {
		keys_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	/* The umask may have removed bits from .pub; set the mode we promise. */
	if (fchmod(fd, mode) == -1) {
		keys_err(err, errlen, "cannot chmod %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

/* Closes fd if open; a failed close of a written file is a failed write. */
static void
keys_close(int fd, const char *path, int *rc, char *err, size_t errlen)
{
	if (fd == -1)
		return;
	if (close(fd) == -1 && *rc == 0) {
		keys_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
		*rc = -1;
	}
}

int
keys_generate(const char *path, int bits, char *err, size_t errlen)
{
	char *pubpath = xasprintf("%s.pub", path);
	int fd = -1, pubfd = -1, rc = -1;
	EVP_PKEY *pkey = NULL;

	if (bits < KEYS_MIN_BITS || bits > KEYS_MAX_BITS) {
		keys_err(err, errlen, "refusing a %d-bit key: bits must be between %d and %d", bits,
		         KEYS_MIN_BITS, KEYS_MAX_BITS);
		goto out;
	}
	/* Create both files before the slow generation: fail early if either exists. */
	if ((fd = keys_create(path, 0600, err, errlen)) == -1 ||
	    (pubfd = keys_create(pubpath, 0644, err, errlen)) == -1 ||
	    (pkey = keys_rsa_generate(bits, err, errlen)) == NULL ||
	    keys_write_pem(fd, pkey, true, path, err, errlen) == -1 ||
	    keys_write_pem(pubfd, pkey, false, pubpath, err, errlen) == -1)
		goto out;
	rc = 0;
out:
	keys_close(fd, path, &rc, err, errlen);
	keys_close(pubfd, pubpath, &rc, err, errlen);
	/* Leave no partial key behind; only remove files this call created. */
	if (rc == -1 && fd != -1)
		unlink(path);
	if (rc == -1 && pubfd != -1)
		unlink(pubpath);
	EVP_PKEY_free(pkey);
	free(pubpath);
	return rc;
}
