/*
 * portal_password.h - local passwords of portal accounts: scrypt hashes
 * (OpenSSL 3), their stored form, and the password policy.
 *
 * Stored form (smile.utilisateur.password_hash, checked there too):
 *
 *   $scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>
 *
 * salt 16 random bytes, hash 32 bytes, both standard base64 without
 * padding. New hashes use ln=15 r=8 p=1 (32 MiB, about 85 ms on the CI
 * machine kind). A stored string is refused without any work when it
 * does not parse or asks for more than the bounds below, so a tampered
 * row cannot make the daemon spend memory or CPU.
 *
 * Used by ewpctl (ewpctl user) and by ewpd's login page. A hash, a
 * verify and a burn each take one scrypt (about 85 ms of CPU and 32 MiB)
 * and block the calling thread meanwhile: ewpd calls them on threads of
 * their own (portal_pwcheck.c), never on a worker's event loop.
 */
#ifndef PORTAL_PASSWORD_H
#define PORTAL_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "ewpd.h"

#define PORTAL_PASSWORD_MIN 12   /* bytes */
#define PORTAL_PASSWORD_MAX 1024 /* bytes */

/* A buffer this size holds any stored string (89 bytes at most). */
#define PORTAL_PASSWORD_HASH_LEN 128

/* Parameters of new hashes. */
#define PORTAL_PASSWORD_LN 15
#define PORTAL_PASSWORD_R  8
#define PORTAL_PASSWORD_P  1

/* Bounds of a stored string's parameters; anything else is refused. */
#define PORTAL_PASSWORD_LN_MIN   10
#define PORTAL_PASSWORD_LN_MAX   20
#define PORTAL_PASSWORD_R_MAX    32
#define PORTAL_PASSWORD_P_MAX    4
#define PORTAL_PASSWORD_MEM_MAX  (64u * 1024 * 1024) /* 128 * r * N bytes */
#define PORTAL_PASSWORD_WORK_MAX (1ul << 20)         /* N * r * p: 4x the default */

/*
 * Hashes password (at most PORTAL_PASSWORD_MAX bytes) with a fresh salt
 * and the default parameters into out, NUL-terminated. 0, or -1 (out too
 * small, password too long, no randomness, OpenSSL failure).
 */
int portal_password_hash(const char *password, char *out, size_t outlen) EWP_MUSTCHECK;

/*
 * Whether password matches the stored string. False without computing
 * anything for a NULL, over-long or unparsable input, or parameters out
 * of bounds; the comparison itself takes constant time.
 */
bool portal_password_verify(const char *password, const char *stored);

/*
 * The policy for a new password: PORTAL_PASSWORD_MIN..MAX bytes of valid
 * UTF-8 without control characters (C0, DEL, C1). On false, *why (when
 * not NULL) is a short English reason.
 */
bool portal_password_acceptable(const char *password, const char **why);

/*
 * Spends what a verify with the default parameters spends, for a login
 * with an unknown user name or an account without a local password, so
 * the answer's timing does not tell which names exist.
 */
void portal_password_burn(const char *password);

#endif
