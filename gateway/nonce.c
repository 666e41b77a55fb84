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

bool
nonce_seen(struct nonce_table *t, const char *id, time_t now, int ttl)
{
	uint64_t h = nonce_hash(id);
	uint64_t tag = h >> NONCE_EXP_BITS;
	uint64_t now_rel = nonce_exp(t, now);
	uint64_t mine = (tag << NONCE_EXP_BITS) | nonce_exp(t, now + ttl);
	size_t victim = (size_t)(h & t->mask), first_free = SIZE_MAX;
	uint64_t victim_exp = UINT64_MAX;

	if (tag == 0)
		tag = 1, mine |= UINT64_C(1) << NONCE_EXP_BITS;
	for (size_t i = 0; i < NONCE_PROBES; i++) {
		size_t idx = (size_t)((h + i) & t->mask);
		uint64_t v = __atomic_load_n(&t->slots[idx], __ATOMIC_ACQUIRE);

		if (!nonce_live(v, now_rel)) {
			if (first_free == SIZE_MAX)
				first_free = idx;
			continue;
		}
		if ((v >> NONCE_EXP_BITS) == tag)
			return true;
		if (((v & NONCE_EXP_MASK) - now_rel) < victim_exp) {
			victim_exp = (v & NONCE_EXP_MASK) - now_rel;
			victim = idx;
		}
	}
	size_t idx = first_free != SIZE_MAX ? first_free : victim;
	uint64_t old = __atomic_load_n(&t->slots[idx], __ATOMIC_ACQUIRE);
	/* A lost race means another worker stored an id here at the same
	 * instant; retrying once keeps the table consistent enough. */
	if (!__atomic_compare_exchange_n(&t->slots[idx], &old, mine, false, __ATOMIC_ACQ_REL,
	                                 __ATOMIC_ACQUIRE))
		__atomic_store_n(&t->slots[idx], mine, __ATOMIC_RELEASE);
	/* Two workers racing on the same id both see it twice: both refuse. */
	for (size_t i = 0; i < NONCE_PROBES; i++) {
		size_t j = (size_t)((h + i) & t->mask);
		uint64_t v = __atomic_load_n(&t->slots[j], __ATOMIC_ACQUIRE);

		if (j != idx && nonce_live(v, now_rel) && (v >> NONCE_EXP_BITS) == tag)
			return true;
	}
	return false;
}
