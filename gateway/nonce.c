/* nonce.c - lock-free table of recently used request ids. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nonce.h"
#include "shm.h"
#include "xmalloc.h"

#define NONCE_PROBES   16
#define NONCE_EXP_BITS 24
#define NONCE_EXP_MASK ((UINT64_C(1) << NONCE_EXP_BITS) - 1)

struct nonce_table {
	uint64_t mask;
	time_t epoch; /* expiries are stored as seconds since this */
	bool shared;
	size_t bytes;
	uint64_t slots[];
};

struct nonce_table *
nonce_new(size_t capacity, bool shared)
{
	size_t n = 1024, bytes;
	struct nonce_table *t;

	while (n < capacity)
		n <<= 1;
	bytes = sizeof(*t) + n * sizeof(uint64_t);
	t = shared ? shm_alloc(bytes) : xcalloc(1, bytes);
	t->mask = n - 1;
	t->epoch = time(NULL);
	t->shared = shared;
	t->bytes = bytes;
	return t;
}

void
nonce_free(struct nonce_table *t)
{
	if (t == NULL)
		return;
	if (t->shared)
		shm_free(t, t->bytes);
	else
		free(t);
}

/* FNV-1a, 64 bits: ids are chosen by signers, so no trust in their bits. */
static uint64_t
nonce_hash(const char *s)
{
	uint64_t h = UINT64_C(14695981039346656037);

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= UINT64_C(1099511628211);
	}
	return h;
}

static uint64_t
nonce_exp(const struct nonce_table *t, time_t when)
{
	int64_t rel = (int64_t)(when - t->epoch);

	if (rel < 1)
		rel = 1;
	return (uint64_t)rel & NONCE_EXP_MASK;
}

static bool
nonce_live(uint64_t slot, uint64_t now_rel)
{
	uint64_t exp = slot & NONCE_EXP_MASK;

	/* Expiries wrap after 194 days; only a small forward distance is live. */
	return slot != 0 && ((exp - now_rel) & NONCE_EXP_MASK) < (NONCE_EXP_MASK >> 1) &&
	       exp != now_rel;
}

/*
 * One attempt: scan the probe window, then claim the chosen slot with a
 * compare-and-swap from the value seen during the scan. Returns 1 for a
 * replay, 0 when recorded, -1 when another worker changed the slot first
 * (the caller scans again, and then sees that worker's id if it was ours).
 */
static int
nonce_try(struct nonce_table *t, uint64_t h, uint64_t tag, uint64_t mine, uint64_t now_rel)
{
	size_t idx = SIZE_MAX, victim = (size_t)(h & t->mask);
	uint64_t seen = 0, victim_seen = 0, victim_exp = UINT64_MAX;

	for (size_t i = 0; i < NONCE_PROBES; i++) {
		size_t j = (size_t)((h + i) & t->mask);
		uint64_t v = __atomic_load_n(&t->slots[j], __ATOMIC_ACQUIRE);

		if (!nonce_live(v, now_rel)) {
			if (idx == SIZE_MAX)
				idx = j, seen = v;
			continue;
		}
		if ((v >> NONCE_EXP_BITS) == tag)
			return 1;
		if (((v & NONCE_EXP_MASK) - now_rel) < victim_exp) {
			victim_exp = (v & NONCE_EXP_MASK) - now_rel;
			victim = j;
			victim_seen = v;
		}
	}
	if (idx == SIZE_MAX)
		idx = victim, seen = victim_seen;
	if (!__atomic_compare_exchange_n(&t->slots[idx], &seen, mine, false, __ATOMIC_ACQ_REL,
	                                 __ATOMIC_ACQUIRE))
		return -1;
	/* Two workers that claimed different slots for one id both see it twice. */
	for (size_t i = 0; i < NONCE_PROBES; i++) {
		size_t j = (size_t)((h + i) & t->mask);
		uint64_t v = __atomic_load_n(&t->slots[j], __ATOMIC_ACQUIRE);

		if (j != idx && nonce_live(v, now_rel) && (v >> NONCE_EXP_BITS) == tag)
			return 1;
	}
	return 0;
}

bool
nonce_seen(struct nonce_table *t, const char *id, time_t now, int ttl)
{
	uint64_t h = nonce_hash(id);
	uint64_t tag = h >> NONCE_EXP_BITS;
	uint64_t now_rel = nonce_exp(t, now);
	uint64_t mine;
	int rc = -1;

	if (tag == 0)
		tag = 1;
	mine = (tag << NONCE_EXP_BITS) | nonce_exp(t, now + ttl);
	/* Contention ends quickly: each lost race means another id was stored. */
	for (int attempt = 0; attempt < 64 && rc == -1; attempt++)
		rc = nonce_try(t, h, tag, mine, now_rel);
	/* Still contended after that many rounds: refuse rather than forget. */
	return rc != 0;
}
