/*
 * portal_password.c - scrypt password hashes and the password policy
 * (see portal_password.h for the stored form).
 *
 * The stored string is parsed strictly before any work: fixed prefix,
 * decimal parameters without leading zeros inside their bounds, a salt
 * and a hash of exactly the lengths we write, canonical base64 (unused
 * low bits zero). Only then is scrypt run, with OpenSSL's memory ceiling
 * set to what those parameters need.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "portal_password.h"

#define PW_SALT_LEN 16
#define PW_HASH_LEN 32
#define PW_PREFIX   "$scrypt$"

struct pw_stored {
	unsigned ln, r, p;
	unsigned char salt[PW_SALT_LEN];
	unsigned char hash[PW_HASH_LEN];
};

static const char pw_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Characters of len bytes in base64 without padding. */
static size_t
pw_b64_len(size_t len)
{
	return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
}

/* out holds pw_b64_len(len) + 1 bytes. */
static void
pw_b64_encode(const unsigned char *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t n = len - i < 3 ? len - i : 3;

		if (n > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (n > 2)
			v |= in[i + 2];
		for (size_t k = 0; k <= n; k++)
			out[o++] = pw_b64[(v >> (18 - 6 * k)) & 0x3f];
	}
	out[o] = '\0';
}

static int
pw_b64_value(char c)
{
	const char *p = c ? strchr(pw_b64, c) : NULL;

	return p ? (int)(p - pw_b64) : -1;
}

/*
 * Decodes exactly pw_b64_len(len) characters at in into len bytes;
 * false for a wrong character or non-zero unused bits (a string that is
 * not the one we would write).
 */
static bool
pw_b64_decode(const char *in, unsigned char *out, size_t len)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0, n = pw_b64_len(len);

	for (size_t i = 0; i < n; i++) {
		int v = pw_b64_value(in[i]);

		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return o == len && acc == 0;
}

/* "<key>=<1-2 digits, no leading zero>" at *s; advances *s. */
static bool
pw_param(const char **s, const char *key, unsigned *out)
{
	size_t klen = strlen(key);
	const char *p = *s;
	unsigned v = 0;
	int digits = 0;

	if (strncmp(p, key, klen) != 0 || p[klen] != '=')
		return false;
	p += klen + 1;
	if (*p == '0')
		return false;
	while (*p >= '0' && *p <= '9' && digits < 3) {
		v = v * 10 + (unsigned)(*p++ - '0');
		digits++;
	}
	if (digits == 0 || digits > 2)
		return false;
	*out = v;
	*s = p;
	return true;
}

/* Whether these parameters are within the bounds of the header. */
static bool
pw_params_sane(unsigned ln, unsigned r, unsigned p)
{
	uint64_t n;

	if (ln < PORTAL_PASSWORD_LN_MIN || ln > PORTAL_PASSWORD_LN_MAX || r < 1 ||
	    r > PORTAL_PASSWORD_R_MAX || p < 1 || p > PORTAL_PASSWORD_P_MAX)
		return false;
	n = (uint64_t)1 << ln;
	return 128 * r * n <= PORTAL_PASSWORD_MEM_MAX && n * r * p <= PORTAL_PASSWORD_WORK_MAX;
}

static bool
pw_parse(const char *s, struct pw_stored *st)
{
	size_t salt_chars = pw_b64_len(PW_SALT_LEN), hash_chars = pw_b64_len(PW_HASH_LEN);

	if (strncmp(s, PW_PREFIX, strlen(PW_PREFIX)) != 0)
		return false;
	s += strlen(PW_PREFIX);
	if (!pw_param(&s, "ln", &st->ln) || *s++ != ',' || !pw_param(&s, "r", &st->r) ||
	    *s++ != ',' || !pw_param(&s, "p", &st->p) || *s++ != '$')
		return false;
	if (!pw_params_sane(st->ln, st->r, st->p))
		return false;
	if (strnlen(s, salt_chars + 1) < salt_chars + 1 || s[salt_chars] != '$' ||
	    !pw_b64_decode(s, st->salt, PW_SALT_LEN))
		return false;
	s += salt_chars + 1;
	return strlen(s) == hash_chars && pw_b64_decode(s, st->hash, PW_HASH_LEN);
}

/* scrypt with OpenSSL's memory ceiling at what the parameters need. */
static bool
pw_scrypt(const char *password, const unsigned char *salt, unsigned ln, unsigned r, unsigned p,
          unsigned char out[PW_HASH_LEN])
{
	uint64_t n = (uint64_t)1 << ln;
	uint64_t need = 128 * (uint64_t)r * (n + 2) + 128 * (uint64_t)r * p;

	return EVP_PBE_scrypt(password, strlen(password), salt, PW_SALT_LEN, n, r, p, need, out,
	                      PW_HASH_LEN) == 1;
}

int
portal_password_hash(const char *password, char *out, size_t outlen)
{
	unsigned char salt[PW_SALT_LEN], hash[PW_HASH_LEN];
	char salt64[32], hash64[48];
	int n;

	if (password == NULL || strlen(password) > PORTAL_PASSWORD_MAX || outlen == 0)
		return -1;
	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    !pw_scrypt(password, salt, PORTAL_PASSWORD_LN, PORTAL_PASSWORD_R, PORTAL_PASSWORD_P,
	               hash))
		return -1;
	pw_b64_encode(salt, sizeof(salt), salt64);
	pw_b64_encode(hash, sizeof(hash), hash64);
	OPENSSL_cleanse(hash, sizeof(hash));
	n = snprintf(out, outlen, PW_PREFIX "ln=%d,r=%d,p=%d$%s$%s", PORTAL_PASSWORD_LN,
	             PORTAL_PASSWORD_R, PORTAL_PASSWORD_P, salt64, hash64);
	OPENSSL_cleanse(hash64, sizeof(hash64));
	if (n < 0 || (size_t)n >= outlen) {
		OPENSSL_cleanse(out, outlen);
		out[0] = '\0';
		return -1;
	}
	return 0;
}

bool
portal_password_verify(const char *password, const char *stored)
{
	struct pw_stored st;
	unsigned char hash[PW_HASH_LEN];
	bool ok;

	if (password == NULL || stored == NULL || strlen(password) > PORTAL_PASSWORD_MAX ||
	    !pw_parse(stored, &st))
		return false;
	ok = pw_scrypt(password, st.salt, st.ln, st.r, st.p, hash) &&
	     CRYPTO_memcmp(hash, st.hash, PW_HASH_LEN) == 0;
	OPENSSL_cleanse(hash, sizeof(hash));
	return ok;
}

void
portal_password_burn(const char *password)
{
	static const unsigned char salt[PW_SALT_LEN];
	unsigned char hash[PW_HASH_LEN];

	if (password == NULL || strlen(password) > PORTAL_PASSWORD_MAX)
		password = "";
	(void)pw_scrypt(password, salt, PORTAL_PASSWORD_LN, PORTAL_PASSWORD_R, PORTAL_PASSWORD_P,
	                hash);
	OPENSSL_cleanse(hash, sizeof(hash));
}

/*
 * Length of the UTF-8 sequence at s (shortest form, no surrogates, at
 * most U+10FFFF) and its code point in *cp; 0 when invalid.
 */
static size_t
pw_utf8(const unsigned char *s, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t n;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2, c &= 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, c &= 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0; /* also stops at the terminating NUL */
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

bool
portal_password_acceptable(const char *password, const char **why)
{
	const char *dummy;
	size_t len;

	if (why == NULL)
		why = &dummy;
	if (password == NULL) {
		*why = "no password";
		return false;
	}
	len = strlen(password);
	if (len < PORTAL_PASSWORD_MIN) {
		*why = "too short (at least 12 bytes)";
		return false;
	}
	if (len > PORTAL_PASSWORD_MAX) {
		*why = "too long (at most 1024 bytes)";
		return false;
	}
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = pw_utf8((const unsigned char *)password + i, &cp);

		if (n == 0) {
			*why = "not valid UTF-8";
			return false;
		}
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
			*why = "contains a control character";
			return false;
		}
		i += n;
	}
	*why = NULL;
	return true;
}
