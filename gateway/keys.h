/*
 * keys.h - RSA key material: our private keys (the only code that reads
 * them) and partners' public keys from the registry.
 *
 * A key is identified on the EWP network by its keyId: the lower-case hex
 * SHA-256 of the DER SubjectPublicKeyInfo, as the Registry writes it in
 * the catalogue's sha-256 attributes.
 */
#ifndef KEYS_H
#define KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "codec.h"
#include "ewpd.h"

#define KEYS_MIN_BITS 2048 /* the Registry refuses smaller keys */

struct keys_priv;
struct keys_pub;

/*
 * Loads a PEM private key (PKCS#8 or PKCS#1). Refuses a file that group or
 * others can read, unless allow_loose_mode is set (unit tests on vectors).
 * On failure returns NULL and writes a readable reason into err.
 */
struct keys_priv *keys_priv_load(const char *path, bool allow_loose_mode, char *err, size_t errlen);
/* Same from a PEM string in memory (tests). */
struct keys_priv *keys_priv_from_pem(const char *pem, char *err, size_t errlen);
/*
 * Tests only: as keys_priv_from_pem but without the KEYS_MIN_BITS rule, for
 * the 1024-bit draft-cavage test key. Never use it on a production key.
 */
struct keys_priv *keys_priv_from_pem_unchecked(const char *pem, char *err, size_t errlen);
void keys_priv_free(struct keys_priv *k);
/* Lent until keys_priv_free(). */
const char *keys_priv_keyid(const struct keys_priv *k);
/* base64 of the DER SubjectPublicKeyInfo, unwrapped; lent until free. */
const char *keys_priv_public_b64(const struct keys_priv *k);
int keys_priv_bits(const struct keys_priv *k);
/*
 * RSASSA-PKCS1-v1_5 with SHA-256 over data. Returns the base64 signature
 * (caller owns it) or NULL on an OpenSSL failure.
 */
char *keys_priv_sign(const struct keys_priv *k, const void *data, size_t len);

/* Public keys from DER SubjectPublicKeyInfo or its base64 (whitespace ok). */
struct keys_pub *keys_pub_from_der(const unsigned char *der, size_t len);
struct keys_pub *keys_pub_from_b64(const char *b64);
void keys_pub_free(struct keys_pub *k);
const char *keys_pub_keyid(const struct keys_pub *k);
int keys_pub_bits(const struct keys_pub *k);
bool keys_pub_is_rsa(const struct keys_pub *k);
/* True when sig_b64 is a valid rsa-sha256 signature of data. */
bool keys_pub_verify(const struct keys_pub *k, const void *data, size_t len, const char *sig_b64);

/* keyId of DER bytes: hex SHA-256; out holds 65 bytes. */
void keys_fingerprint_der(const unsigned char *der, size_t len, char out[CODEC_SHA256_HEX_LEN + 1]);

/*
 * Generates an RSA key of `bits` (>= KEYS_MIN_BITS) and writes it as PKCS#8
 * PEM to path, created 0600 with O_EXCL (never overwrites). The public key
 * is written beside it as path + ".pub" (PEM SubjectPublicKeyInfo, 0644).
 */
int keys_generate(const char *path, int bits, char *err, size_t errlen) EWP_MUSTCHECK;

#endif
