/*
 * registry_map.c - what a registry snapshot is stored in: an arena for
 * its strings and small arrays, the hash, the open-addressing tables,
 * and the normalised keys of those tables (keyIds and other-ids).
 *
 * A snapshot owns everything it hands out: strings and small arrays live
 * in one arena (freed in one sweep), the tables are owned arrays, and
 * the parsed public keys are freed one by one.
 *
 * Lookups go through open-addressing hash tables (linear probing, a
 * word-at-a-time multiplicative hash with a per-snapshot random seed,
 * load factor <= 3/4). A slot is 8 bytes: 32 bits of the hash and the
 * index of an entry in one of the snapshot's arrays, where the key is
 * read back; a probe rarely goes further than the slot's hash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "registry_int.h"
#include "xmalloc.h"

#define REG_CHUNK_BYTES (64 * 1024)

/* ---- arena: bump allocation in chunks, freed all at once ---- */

void *
reg_alloc(struct reg_arena *a, size_t size, size_t align)
{
	struct reg_chunk *c = a->head, *big;
	size_t off;

	if (c != NULL) {
		off = (c->used + align - 1) & ~(align - 1);
		if (off <= c->cap && size <= c->cap - off) {
			c->used = off + size;
			return (char *)c->mem + off;
		}
	}
	if (size > REG_CHUNK_BYTES / 4 && c != NULL) {
		/* A large block gets its own chunk behind the current one. */
		big = xmalloc(sizeof(*big) + size);
		big->cap = big->used = size;
		big->next = c->next;
		c->next = big;
		return big->mem;
	}
	c = xmalloc(sizeof(*c) + (size > REG_CHUNK_BYTES ? size : REG_CHUNK_BYTES));
	c->cap = size > REG_CHUNK_BYTES ? size : REG_CHUNK_BYTES;
	c->used = size;
	c->next = a->head;
	a->head = c;
	return c->mem;
}

void
reg_arena_free(struct reg_arena *a)
{
	struct reg_chunk *c, *next;

	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
}

char *
reg_strndup(struct reg_arena *a, const char *s, size_t n)
{
	char *p = reg_alloc(a, n + 1, 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* ---- hashing ---- */

/* splitmix64's finaliser: every input bit reaches the low (bucket) bits. */
static uint64_t
reg_fmix(uint64_t h)
{
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

/*
 * Eight bytes per step (namespaces are ~100 bytes and a byte-wise FNV was
 * the main cost of registry_api); the tail carries its length.
 */
static uint64_t
reg_mix(uint64_t h, const char *s)
{
	size_t n = strlen(s);
	uint64_t w;

	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 32;
	}
	w = 0;
	memcpy(&w, s, n);
	h = (h ^ w ^ ((uint64_t)n << 56)) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 32);
}

uint64_t
reg_hash(uint64_t seed, const char *k1, const char *k2)
{
	uint64_t h = reg_mix(seed, k1);

	if (k2 != NULL)
		h = reg_mix(h ^ 0xff51afd7ed558ccdULL, k2);
	return reg_fmix(h);
}

/* ---- hash tables: (k1[, k2]) -> index of an entry that carries the key ---- */

uint32_t
reg_map_find(const struct reg_map *m, reg_eq_fn *eq, const void *ctx, uint64_t hash, const char *k1,
             const char *k2)
{
	uint32_t h = (uint32_t)hash;
	size_t i, mask;

	if (m->cap == 0)
		return REG_NONE;
	mask = m->cap - 1;
	for (i = h & mask; m->slots[i].val != REG_NONE; i = (i + 1) & mask)
		if (m->slots[i].hash == h && eq(ctx, m->slots[i].val, k1, k2))
			return m->slots[i].val;
	return REG_NONE;
}

static void
reg_map_put(struct reg_slot *slots, size_t mask, struct reg_slot s)
{
	size_t i;

	for (i = s.hash & mask; slots[i].val != REG_NONE; i = (i + 1) & mask)
		;
	slots[i] = s;
}

static void
reg_map_grow(struct reg_map *m)
{
	struct reg_slot *old = m->slots;
	size_t oldcap = m->cap, i;

	m->cap = oldcap ? oldcap * 2 : 64;
	m->slots = xreallocarray(NULL, m->cap, sizeof(*m->slots));
	memset(m->slots, 0xff, m->cap * sizeof(*m->slots)); /* every val REG_NONE */
	for (i = 0; i < oldcap; i++)
		if (old[i].val != REG_NONE)
			reg_map_put(m->slots, m->cap - 1, old[i]);
	free(old);
}

/*
 * Adds an entry whose key is known to be absent. Up to 3/4 full: with
 * 8-byte slots and the hash in each, longer probe runs cost little, and
 * the tables are a fifth of a snapshot.
 */
void
reg_map_add(struct reg_map *m, uint64_t hash, uint32_t val)
{
	if ((m->n + 1) * 4 > m->cap * 3)
		reg_map_grow(m);
	reg_map_put(m->slots, m->cap - 1, (struct reg_slot){(uint32_t)hash, val});
	m->n++;
}

void
reg_map_free(struct reg_map *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->n = 0;
}

/* ---- the comparators of the tables filled while loading ---- */

bool
reg_eq_key(const void *ctx, uint32_t val, const char *keyid, const char *unused)
{
	const struct registry *r = ctx;

	(void)unused;
	return strcmp(r->keys[val].pub.keyid, keyid) == 0;
}

bool
reg_eq_hei(const void *ctx, uint32_t val, const char *id, const char *unused)
{
	const struct registry *r = ctx;

	(void)unused;
	return strcmp(r->heis[val].id, id) == 0;
}

bool
reg_eq_other(const void *ctx, uint32_t val, const char *type, const char *value)
{
	const struct registry *r = ctx;

	return strcmp(r->others[val].type, type) == 0 && strcmp(r->others[val].value, value) == 0;
}

/* ---- keyIds ---- */

/* Hex digit -> its lower-case form; 0 for anything else. Branch-free lookups. */
static const char reg_hexlc[256] = {
    ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4', ['5'] = '5',
    ['6'] = '6', ['7'] = '7', ['8'] = '8', ['9'] = '9', ['a'] = 'a', ['b'] = 'b',
    ['c'] = 'c', ['d'] = 'd', ['e'] = 'e', ['f'] = 'f', ['A'] = 'a', ['B'] = 'b',
    ['C'] = 'c', ['D'] = 'd', ['E'] = 'e', ['F'] = 'f',
};

/* Lower-case copy of a 64-hex-digit keyId into out; false when malformed. */
bool
reg_keyid_norm(const char *in, char out[CODEC_SHA256_HEX_LEN + 1])
{
	unsigned bad = 0;
	size_t i;

	for (i = 0; i < CODEC_SHA256_HEX_LEN; i++) {
		if (in[i] == '\0')
			return false;
		out[i] = reg_hexlc[(unsigned char)in[i]];
		bad |= out[i] == 0;
	}
	out[i] = '\0';
	return !bad && in[i] == '\0';
}

/*
 * A keyId is already a SHA-256 digest: its first 16 hex digits, mixed
 * with the seed (so keys ground to share low bits do not share buckets),
 * make the hash without walking the string.
 */
uint64_t
reg_keyid_hash(uint64_t seed, const char *norm)
{
	uint64_t h = 0;
	size_t i;

	for (i = 0; i < 16; i++)
		h = (h << 4) | (uint64_t)((norm[i] & 15) + (norm[i] >> 6) * 9);
	return reg_fmix(h ^ seed);
}

uint32_t
reg_key_index(const struct registry *r, const char *keyid)
{
	char norm[CODEC_SHA256_HEX_LEN + 1];

	if (keyid == NULL || !reg_keyid_norm(keyid, norm))
		return REG_NONE;
	return reg_map_find(&r->key_map, reg_eq_key, r, reg_keyid_hash(r->seed, norm), norm, NULL);
}

/* ---- other-ids ---- */

/* "euc" is the deprecated spelling of "erasmus-charter". */
const char *
reg_other_type(const char *type)
{
	return strcmp(type, "euc") == 0 ? "erasmus-charter" : type;
}

/*
 * Normalised other-id value into out (at most strlen(in) + 1 bytes; out
 * may be in): trimmed; Erasmus codes also lose inner spaces and case, so
 * that "PL WARSZAW01" = "plwarszaw01".
 */
void
reg_other_value(const char *type, const char *in, char *out)
{
	bool erasmus = strcmp(type, "erasmus") == 0;
	const char *e = in + strlen(in);

	while (reg_space(*in))
		in++;
	while (e > in && reg_space(e[-1]))
		e--;
	for (; in < e; in++) {
		if (erasmus && reg_space(*in))
			continue;
		*out++ = erasmus && *in >= 'a' && *in <= 'z' ? (char)(*in - 'a' + 'A') : *in;
	}
	*out = '\0';
}
