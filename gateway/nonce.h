/*
 * nonce.h - refusing a reused X-Request-Id within the date window.
 *
 * A fixed-size open-addressing table in shared memory, one 64-bit word per
 * slot (a 40-bit tag of the id and a 24-bit expiry), updated with
 * compare-and-swap so that all workers share it without locks. When every
 * slot of a probe window is live, the entry closest to expiry is replaced:
 * under a load above capacity / window the oldest ids are forgotten first.
 */
#ifndef NONCE_H
#define NONCE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct nonce_table;

/* capacity is rounded up to a power of two. shared: mapped for fork(). */
struct nonce_table *nonce_new(size_t capacity, bool shared);
void nonce_free(struct nonce_table *t);
/*
 * Records id as used until now + ttl. Returns true when it was already
 * recorded and has not expired (a replay).
 */
bool nonce_seen(struct nonce_table *t, const char *id, time_t now, int ttl);

#endif
