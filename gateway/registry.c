/*
 * registry.c - the EWP Registry catalogue: loading, validating, indexing.
 * This file: the indexes derived once a catalogue is loaded, the public
 * lookups, and freeing a snapshot.
 *
 * A snapshot is made in two passes. The loader reads the catalogue once,
 * as a stream, filling the snapshot's arrays and the tables that need one
 * element at a time (keyIds, HEIs, other-ids); reg_build_indexes then
 * adds what needs the whole document. The (HEI, API namespace) table
 * already holds the best entry over every host covering the HEI, so
 * registry_api() is a single probe.
 *
 * The module is split by job; registry_int.h holds what the files share:
 *   registry.c        derived indexes, lookups, registry_free
 *   registry_map.c    arena, hashing, hash tables and the keys they use
 *   registry_load.c   reading a catalogue: element kinds, stream, load_mem/load_file
 *   registry_elems.c  what the loader does with each kind of element
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "registry.h"
#include "registry_int.h"
#include "xmalloc.h"

/* ---- derived indexes ---- */

/* Numeric x.y.z comparison; missing parts count as 0, junk after digits is ignored. */
static int
reg_version_cmp(const char *a, const char *b)
{
	unsigned long x, y;

	while (*a != '\0' || *b != '\0') {
		for (x = 0; *a >= '0' && *a <= '9'; a++)
			x = x < ULONG_MAX / 16 ? x * 10 + (unsigned long)(*a - '0') : x;
		for (y = 0; *b >= '0' && *b <= '9'; b++)
			y = y < ULONG_MAX / 16 ? y * 10 + (unsigned long)(*b - '0') : y;
		if (x != y)
			return x < y ? -1 : 1;
		while (*a != '\0' && *a++ != '.')
			;
		while (*b != '\0' && *b++ != '.')
			;
	}
	return 0;
}

/*
 * Gives back the slack of the arrays grown while loading; never NULL, so
 * that reg_link_apis can point into an empty one.
 */
static void
reg_shrink(struct registry *r)
{
	REG_SHRINK(r->hosts, r->nhosts);
	REG_SHRINK(r->keys, r->nkeys);
	REG_SHRINK(r->heis, r->nheis);
	REG_SHRINK(r->apis, r->napis);
	REG_SHRINK(r->url_names, r->nurls);
	REG_SHRINK(r->url_values, r->nurls);
	REG_SHRINK(r->url_api, r->nurls);
	REG_SHRINK(r->limit_names, r->nlimits);
	REG_SHRINK(r->limit_values, r->nlimits);
	REG_SHRINK(r->others, r->nothers);
}

/* Points every API entry at its slice of the URL and limit arrays, which no longer move. */
static void
reg_link_apis(struct registry *r)
{
	size_t i, u = 0, m = 0;

	for (i = 0; i < r->napis; i++) {
		r->apis[i].url_names = r->url_names + u;
		r->apis[i].url_values = r->url_values + u;
		r->apis[i].limit_names = r->limit_names + m;
		r->apis[i].limit_values = r->limit_values + m;
		u += r->apis[i].nurls;
		m += r->apis[i].nlimits;
	}
}

static bool
reg_eq_hei_api(const void *ctx, uint32_t val, const char *hei, const char *ns)
{
	const struct registry *r = ctx;
	const struct reg_hei_api *e = &r->hei_apis[val];

	return strcmp(e->hei, hei) == 0 && strcmp(e->ns, ns) == 0;
}

/* One host's entries into api_map, for one HEI it covers. */
static void
reg_index_host_hei(struct registry *r, const struct reg_host *h, const char *id, size_t *cap)
{
	const struct registry_api *a;
	uint32_t e;
	uint64_t hash;
	size_t k;

	for (k = h->api_first; k < h->api_first + h->napis; k++) {
		a = &r->apis[k];
		hash = reg_hash(r->seed, id, a->ns);
		e = reg_map_find(&r->api_map, reg_eq_hei_api, r, hash, id, a->ns);
		if (e != REG_NONE) {
			if (reg_version_cmp(a->version, r->apis[r->hei_apis[e].api].version) > 0)
				r->hei_apis[e].api = (uint32_t)k;
			continue;
		}
		/* HEIs x entries of a host is the one product that could outgrow 32 bits. */
		if (r->nhei_apis == REG_MAX_ITEMS)
			fatalx("registry: too many (HEI, API) pairs");
		REG_GROW(r->hei_apis, r->nhei_apis, *cap);
		r->hei_apis[r->nhei_apis] = (struct reg_hei_api){id, a->ns, (uint32_t)k};
		reg_map_add(&r->api_map, hash, (uint32_t)r->nhei_apis++);
	}
}

/* (HEI, namespace) -> the highest version over every host covering the HEI. */
static void
reg_index_apis(struct registry *r)
{
	size_t i, j, cap = 0;

	for (i = 0; i < r->nhosts; i++)
		for (j = 0; j < r->hosts[i].nheis; j++)
			reg_index_host_hei(r, &r->hosts[i], r->hosts[i].heis[j], &cap);
	REG_SHRINK(r->hei_apis, r->nhei_apis);
}

static bool
reg_eq_url(const void *ctx, uint32_t val, const char *url, const char *unused)
{
	const struct registry *r = ctx;

	(void)unused;
	return strcmp(r->url_values[val], url) == 0;
}

/* Endpoint URL -> its first occurrence (and so the API entry and host serving it). */
static void
reg_index_urls(struct registry *r)
{
	uint64_t hash;
	size_t i;

	for (i = 0; i < r->nurls; i++) {
		hash = reg_hash(r->seed, r->url_values[i], NULL);
		if (reg_map_find(&r->url_map, reg_eq_url, r, hash, r->url_values[i], NULL) ==
		    REG_NONE)
			reg_map_add(&r->url_map, hash, (uint32_t)i);
	}
}

/* Per client key: the institutions-covered of every host using it, in order. */
static void
reg_index_client_heis(struct registry *r)
{
	const struct reg_host *h;
	struct reg_key *k;
	size_t i, j;

	for (i = 0; i < r->nhosts; i++)
		for (j = 0; j < r->hosts[i].nclient; j++)
			r->keys[r->hosts[i].client[j]].nclient_heis += r->hosts[i].nheis;
	for (i = 0; i < r->nkeys; i++) {
		k = &r->keys[i];
		k->client_heis = reg_alloc(
		    &r->arena, (k->nclient_heis ? k->nclient_heis : 1) * sizeof(*k->client_heis),
		    _Alignof(const char *));
		k->nclient_heis = 0; /* refilled below */
	}
	for (i = 0; i < r->nhosts; i++) {
		h = &r->hosts[i];
		for (j = 0; j < h->nclient; j++) {
			k = &r->keys[h->client[j]];
			if (h->nheis > 0)
				memcpy(k->client_heis + k->nclient_heis, h->heis,
				       h->nheis * sizeof(*h->heis));
			k->nclient_heis += h->nheis;
		}
	}
}

/*
 * Makes a snapshot whose whole catalogue has been read and checked ready
 * for lookups.
 */
void
reg_build_indexes(struct registry *r)
{
	reg_shrink(r);
	reg_link_apis(r);
	reg_index_apis(r);
	reg_index_client_heis(r);
	reg_index_urls(r);
}

void
registry_free(struct registry *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nkeys; i++)
		keys_pub_free(r->keys[i].owned);
	free(r->keys);
	free(r->hosts);
	free(r->heis);
	free(r->apis);
	free(r->url_names);
	free(r->url_values);
	free(r->url_api);
	free(r->limit_names);
	free(r->limit_values);
	free(r->hei_apis);
	free(r->others);
	reg_map_free(&r->key_map);
	reg_map_free(&r->hei_map);
	reg_map_free(&r->api_map);
	reg_map_free(&r->other_map);
	reg_map_free(&r->url_map);
	reg_arena_free(&r->arena);
	free(r);
}

/* ---- lookups ---- */

size_t
registry_host_count(const struct registry *r)
{
	return r->nhosts;
}

size_t
registry_hei_count(const struct registry *r)
{
	return r->nheis;
}

const char *
registry_hei_at(const struct registry *r, size_t i)
{
	return i < r->nheis ? r->heis[i].id : NULL;
}

size_t
registry_key_count(const struct registry *r)
{
	return r->nkeys;
}

size_t
registry_host_heis(const struct registry *r, size_t host, const char *const **heis)
{
	if (host >= r->nhosts) {
		*heis = NULL;
		return 0;
	}
	*heis = r->hosts[host].heis;
	return r->hosts[host].nheis;
}

size_t
registry_host_apis(const struct registry *r, size_t host, const struct registry_api **apis)
{
	if (host >= r->nhosts || r->hosts[host].napis == 0) {
		*apis = NULL;
		return 0;
	}
	*apis = &r->apis[r->hosts[host].api_first];
	return r->hosts[host].napis;
}

const struct registry_key *
registry_key(const struct registry *r, const char *keyid)
{
	uint32_t k = reg_key_index(r, keyid);

	return k != REG_NONE ? &r->keys[k].pub : NULL;
}

size_t
registry_client_heis(const struct registry *r, const char *keyid, const char *const **heis)
{
	uint32_t k = reg_key_index(r, keyid);

	if (k == REG_NONE) {
		*heis = NULL;
		return 0;
	}
	*heis = r->keys[k].client_heis;
	return r->keys[k].nclient_heis;
}

bool
registry_host_has_server_key(const struct registry *r, size_t host, const char *keyid)
{
	uint32_t k = reg_key_index(r, keyid);
	size_t i;

	if (k == REG_NONE || host >= r->nhosts)
		return false;
	for (i = 0; i < r->hosts[host].nserver; i++)
		if (r->hosts[host].server[i] == k)
			return true;
	return false;
}

static const struct reg_hei *
reg_hei_find(const struct registry *r, const char *hei_id)
{
	uint32_t i;

	if (hei_id == NULL)
		return NULL;
	i = reg_map_find(&r->hei_map, reg_eq_hei, r, reg_hash(r->seed, hei_id, NULL), hei_id, NULL);

	return i != REG_NONE ? &r->heis[i] : NULL;
}

const char *
registry_hei_name(const struct registry *r, const char *hei_id)
{
	const struct reg_hei *h = reg_hei_find(r, hei_id);

	return h != NULL ? h->name : NULL;
}

bool
registry_hei_known(const struct registry *r, const char *hei_id)
{
	return reg_hei_find(r, hei_id) != NULL;
}

const char *
registry_hei_by_other_id(const struct registry *r, const char *type, const char *value)
{
	char small[128], *norm;
	uint32_t i;
	size_t len;

	if (type == NULL || value == NULL)
		return NULL;
	type = reg_other_type(type);
	len = strlen(value);
	norm = len < sizeof(small) ? small : xmalloc(len + 1);
	reg_other_value(type, value, norm);
	i = reg_map_find(&r->other_map, reg_eq_other, r, reg_hash(r->seed, type, norm), type, norm);
	if (norm != small)
		free(norm);
	return i != REG_NONE && !r->others[i].shared ? r->heis[r->others[i].hei].id : NULL;
}

const struct registry_api *
registry_api(const struct registry *r, const char *hei_id, const char *ns)
{
	uint32_t i;

	if (hei_id == NULL || ns == NULL)
		return NULL;
	i = reg_map_find(&r->api_map, reg_eq_hei_api, r, reg_hash(r->seed, hei_id, ns), hei_id, ns);
	return i != REG_NONE ? &r->apis[r->hei_apis[i].api] : NULL;
}

const char *
registry_api_url(const struct registry_api *a, const char *name)
{
	size_t i;

	for (i = 0; a != NULL && i < a->nurls; i++)
		if (strcmp(a->url_names[i], name) == 0)
			return a->url_values[i];
	return NULL;
}

int
registry_api_limit(const struct registry_api *a, const char *name, int fallback)
{
	size_t i;

	for (i = 0; a != NULL && i < a->nlimits; i++)
		if (strcmp(a->limit_names[i], name) == 0)
			return a->limit_values[i];
	return fallback;
}

int
registry_host_by_url(const struct registry *r, const char *url, size_t *host)
{
	char *base = xstrndup(url, strcspn(url, "?"));
	uint32_t i =
	    reg_map_find(&r->url_map, reg_eq_url, r, reg_hash(r->seed, base, NULL), base, NULL);

	free(base);
	if (i == REG_NONE)
		return -1;
	*host = r->apis[r->url_api[i]].host;
	return 0;
}
