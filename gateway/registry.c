/*
 * registry.c - the EWP Registry catalogue: loading, validating, indexing.
 *
 * A snapshot owns everything it hands out: strings and small arrays live
 * in one arena (freed in one sweep), the top-level tables are owned
 * arrays, and the parsed public keys are freed one by one. The libxml2
 * tree is dropped as soon as the snapshot is built.
 *
 * Lookups go through open-addressing hash tables (linear probing, a
 * word-at-a-time multiplicative hash with a per-snapshot random seed,
 * load factor <= 1/2). The (HEI, API namespace) table already holds the
 * best entry over every host covering the HEI, so registry_api() is a
 * single probe.
 *
 * What is checked is integrity, not policy: keys must decode, be RSA and
 * match their sha-256 attribute, references must resolve, ids must not be
 * empty. Key sizes, URL schemes and the like are the Registry's job; this
 * module logs nothing and leaves reporting to the caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <libxml/tree.h>

#include "buf.h"
#include "codec.h"
#include "keys.h"
#include "log.h"
#include "registry.h"
#include "xmalloc.h"
#include "xml.h"

#define REG_NS_SEC "https://github.com/erasmus-without-paper/ewp-specs-sec-intro/tree/stable-v2"
#define REG_NS_CLI_HTTPSIG                                                                         \
	"https://github.com/erasmus-without-paper/ewp-specs-sec-cliauth-httpsig/tree/stable-v1"
#define REG_NS_SRV_HTTPSIG                                                                         \
	"https://github.com/erasmus-without-paper/ewp-specs-sec-srvauth-httpsig/tree/stable-v1"

#define REG_CHUNK_BYTES (64 * 1024)
#define REG_NONE        UINT32_MAX
#define REG_MAX_ITEMS   (UINT32_MAX - 1) /* table values are 32-bit indices */

/* ---- arena: bump allocation in chunks, freed all at once ---- */

struct reg_chunk {
	struct reg_chunk *next;
	size_t cap;
	size_t used;
	max_align_t mem[];
};

struct reg_arena {
	struct reg_chunk *head;
};

static void *
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

static void
reg_arena_free(struct reg_arena *a)
{
	struct reg_chunk *c, *next;

	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
}

static char *
reg_strndup(struct reg_arena *a, const char *s, size_t n)
{
	char *p = reg_alloc(a, n + 1, 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* Arena array of n pointers (at least one slot, never NULL). */
static const char **
reg_ptrs(struct reg_arena *a, size_t n)
{
	return reg_alloc(a, (n ? n : 1) * sizeof(const char *), _Alignof(const char *));
}

/* ---- hash tables: (k1[, k2]) -> 32-bit value ---- */

struct reg_slot {
	const char *k1;
	const char *k2; /* NULL for single-string keys */
	uint64_t hash;
	uint32_t val;
};

struct reg_map {
	struct reg_slot *slots;
	size_t cap; /* power of two, 0 when empty */
	size_t n;
};

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

static uint64_t
reg_hash(uint64_t seed, const char *k1, const char *k2)
{
	uint64_t h = reg_mix(seed, k1);

	if (k2 != NULL)
		h = reg_mix(h ^ 0xff51afd7ed558ccdULL, k2);
	return reg_fmix(h);
}

static bool
reg_slot_is(const struct reg_slot *s, uint64_t hash, const char *k1, const char *k2)
{
	if (s->hash != hash || strcmp(s->k1, k1) != 0)
		return false;
	if (s->k2 == NULL || k2 == NULL)
		return s->k2 == k2;
	return strcmp(s->k2, k2) == 0;
}

static struct reg_slot *
reg_map_find(const struct reg_map *m, uint64_t hash, const char *k1, const char *k2)
{
	size_t i, mask;

	if (m->cap == 0)
		return NULL;
	mask = m->cap - 1;
	for (i = hash & mask; m->slots[i].k1 != NULL; i = (i + 1) & mask)
		if (reg_slot_is(&m->slots[i], hash, k1, k2))
			return &m->slots[i];
	return NULL;
}

static void
reg_map_grow(struct reg_map *m)
{
	struct reg_slot *old = m->slots;
	size_t oldcap = m->cap, i, j, mask;

	m->cap = oldcap ? oldcap * 2 : 64;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	mask = m->cap - 1;
	for (i = 0; i < oldcap; i++) {
		if (old[i].k1 == NULL)
			continue;
		for (j = old[i].hash & mask; m->slots[j].k1 != NULL; j = (j + 1) & mask)
			;
		m->slots[j] = old[i];
	}
	free(old);
}

/* Inserts a key known to be absent; the strings must outlive the map. */
static void
reg_map_add(struct reg_map *m, uint64_t hash, const char *k1, const char *k2, uint32_t val)
{
	size_t i, mask;

	if ((m->n + 1) * 2 > m->cap)
		reg_map_grow(m);
	mask = m->cap - 1;
	for (i = hash & mask; m->slots[i].k1 != NULL; i = (i + 1) & mask)
		;
	m->slots[i] = (struct reg_slot){k1, k2, hash, val};
	m->n++;
}

static void
reg_map_free(struct reg_map *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->n = 0;
}

/* ---- the snapshot ---- */

struct reg_key {
	struct registry_key pub; /* what registry_key() lends */
	struct keys_pub *owned;
	const char **client_heis;
	size_t nclient_heis;
};

struct reg_host {
	const char **heis; /* institutions-covered, catalogue order */
	size_t nheis;
	uint32_t *client; /* key indices, duplicates removed */
	size_t nclient;
	uint32_t *server;
	size_t nserver;
	size_t api_first;
	size_t napis;
};

struct reg_hei {
	const char *id;
	const char *name; /* preferred name, or NULL */
	bool name_en;     /* name came with xml:lang="en" */
};

struct registry {
	struct reg_arena arena;
	uint64_t seed;
	struct reg_host *hosts;
	size_t nhosts;
	struct reg_key *keys;
	size_t nkeys;
	struct reg_hei *heis;
	size_t nheis, heicap;
	struct registry_api *apis;
	size_t napis;
	struct reg_map key_map;   /* keyid -> keys[] */
	struct reg_map hei_map;   /* hei id -> heis[] */
	struct reg_map api_map;   /* (hei id, ns) -> apis[] */
	struct reg_map other_map; /* (type, value) -> heis[] */
	struct reg_map url_map;   /* (endpoint URL, "") -> apis[] */
	struct reg_map strings;   /* interned namespaces, names, versions */
	/* Load-time state. */
	const char *origin;
	char *err;
	size_t errlen;
};

static int reg_fail(struct registry *r, const char *fmt, ...) EWP_PRINTF(2, 3);

/* Writes "origin: reason" into the caller's buffer; returns -1. */
static int
reg_fail(struct registry *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->err == NULL || r->errlen == 0)
		return -1;
	n = snprintf(r->err, r->errlen, "%s: ", r->origin);
	if (n < 0 || (size_t)n >= r->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* One shared copy of strings that repeat on every host. */
static const char *
reg_intern(struct registry *r, const char *s)
{
	uint64_t h = reg_hash(r->seed, s, NULL);
	struct reg_slot *slot = reg_map_find(&r->strings, h, s, NULL);
	char *copy;

	if (slot != NULL)
		return slot->k1;
	copy = reg_strndup(&r->arena, s, strlen(s));
	reg_map_add(&r->strings, h, copy, NULL, 0);
	return copy;
}

/* ---- reading the tree without needless copies ---- */

static bool
reg_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Trimmed text of an element as (pointer, length). Usually a view of its
 * single text node; otherwise libxml2's concatenation, left in *tmp for
 * the caller to free.
 */
static const char *
reg_text_view(const xmlNode *n, char **tmp, size_t *len)
{
	const xmlNode *c = n->children;
	const char *s, *e;

	*tmp = NULL;
	if (c == NULL) {
		*len = 0;
		return "";
	}
	if (c->next == NULL && c->type == XML_TEXT_NODE && c->content != NULL) {
		s = (const char *)c->content;
		e = s + strlen(s);
		while (s < e && reg_space(*s))
			s++;
		while (e > s && reg_space(e[-1]))
			e--;
		*len = (size_t)(e - s);
		return s;
	}
	*tmp = xml_text(n);
	*len = strlen(*tmp);
	return *tmp;
}

/* Trimmed text copied into the arena. */
static const char *
reg_text(struct registry *r, const xmlNode *n)
{
	char *tmp;
	size_t len;
	const char *s = reg_text_view(n, &tmp, &len);
	const char *copy = reg_strndup(&r->arena, s, len);

	free(tmp);
	return copy;
}

/* Attribute value as a view; NULL when absent. *tmp is freed by the caller. */
static const char *
reg_attr_view(const xmlNode *n, const char *name, const char *ns, xmlChar **tmp)
{
	xmlAttr *a = xmlHasNsProp(n, (const xmlChar *)name, (const xmlChar *)ns);

	*tmp = NULL;
	if (a == NULL || a->type != XML_ATTRIBUTE_NODE)
		return NULL;
	if (a->children == NULL)
		return "";
	if (a->children->next == NULL && a->children->type == XML_TEXT_NODE)
		return (const char *)a->children->content;
	*tmp = xmlNodeListGetString(n->doc, a->children, 1);
	return *tmp != NULL ? (const char *)*tmp : "";
}

/* Trimmed attribute value in the arena, or NULL when absent. */
static const char *
reg_attr(struct registry *r, const xmlNode *n, const char *name)
{
	xmlChar *tmp;
	const char *s = reg_attr_view(n, name, NULL, &tmp), *e;
	const char *copy;

	if (s == NULL)
		return NULL;
	while (reg_space(*s))
		s++;
	e = s + strlen(s);
	while (e > s && reg_space(e[-1]))
		e--;
	copy = reg_strndup(&r->arena, s, (size_t)(e - s));
	xmlFree(tmp);
	return copy;
}

static bool
reg_is_el(const xmlNode *n)
{
	return n->type == XML_ELEMENT_NODE;
}

static const char *
reg_ns_of(const xmlNode *n)
{
	return n->ns != NULL && n->ns->href != NULL ? (const char *)n->ns->href : "";
}

static size_t
reg_count(const xmlNode *parent, const char *ns, const char *name)
{
	const xmlNode *c;
	size_t n = 0;

	for (c = parent->children; c != NULL; c = c->next)
		if (xml_is(c, ns, name))
			n++;
	return n;
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
static bool
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
static uint64_t
reg_keyid_hash(uint64_t seed, const char *norm)
{
	uint64_t h = 0;
	size_t i;

	for (i = 0; i < 16; i++)
		h = (h << 4) | (uint64_t)((norm[i] & 15) + (norm[i] >> 6) * 9);
	return reg_fmix(h ^ seed);
}

static uint32_t
reg_key_index(const struct registry *r, const char *keyid)
{
	char norm[CODEC_SHA256_HEX_LEN + 1];
	const struct reg_slot *s;

	if (keyid == NULL || !reg_keyid_norm(keyid, norm))
		return REG_NONE;
	s = reg_map_find(&r->key_map, reg_keyid_hash(r->seed, norm), norm, NULL);
	return s != NULL ? s->val : REG_NONE;
}

/* ---- binaries ---- */

/* Decodes, fingerprints and parses one <rsa-public-key> of <binaries>. */
static int
reg_load_key(struct registry *r, const xmlNode *n, size_t index)
{
	char want[CODEC_SHA256_HEX_LEN + 1], got[CODEC_SHA256_HEX_LEN + 1];
	unsigned char md[CODEC_SHA256_LEN], *der = NULL;
	const char *sha, *b64;
	struct keys_pub *pub;
	struct reg_key *k;
	size_t derlen, b64len;
	char *tmp;
	uint64_t h;
	int rc;

	sha = reg_attr(r, n, "sha-256");
	if (sha == NULL || !reg_keyid_norm(sha, want))
		return reg_fail(
		    r, "binaries key %zu: sha-256 attribute missing or not 64 hex digits", index);
	h = reg_keyid_hash(r->seed, want);
	if (reg_map_find(&r->key_map, h, want, NULL) != NULL)
		return 0; /* same digest, same bytes: a harmless repeat */
	b64 = reg_text_view(n, &tmp, &b64len);
	rc = codec_base64_decode(b64, b64len, &der, &derlen);
	free(tmp);
	if (rc == -1)
		return reg_fail(r, "binaries key %s: content is not valid base64", want);
	codec_sha256(der, derlen, md);
	codec_hex(md, sizeof(md), got);
	if (strcmp(got, want) != 0) {
		free(der);
		return reg_fail(r,
		                "binaries key %s: sha-256 attribute does not match the key (its "
		                "digest is %s)",
		                want, got);
	}
	pub = keys_pub_from_der(der, derlen);
	free(der);
	if (pub == NULL)
		return reg_fail(r, "binaries key %s: not a DER SubjectPublicKeyInfo", want);
	if (!keys_pub_is_rsa(pub)) {
		keys_pub_free(pub);
		return reg_fail(r, "binaries key %s: not an RSA key", want);
	}
	k = &r->keys[r->nkeys];
	k->owned = pub;
	k->pub.pub = pub;
	k->pub.keyid = reg_strndup(&r->arena, want, CODEC_SHA256_HEX_LEN);
	reg_map_add(&r->key_map, h, k->pub.keyid, NULL, (uint32_t)r->nkeys);
	r->nkeys++;
	return 0;
}

static int
reg_load_binaries(struct registry *r, const xmlNode *const *bins, size_t nbins)
{
	const xmlNode *c;
	size_t i, total = 0, index = 0;

	for (i = 0; i < nbins; i++)
		total += reg_count(bins[i], REGISTRY_NS, "rsa-public-key");
	if (total > REG_MAX_ITEMS)
		return reg_fail(r, "too many keys");
	r->keys = xcalloc(total, sizeof(*r->keys));
	for (i = 0; i < nbins; i++)
		for (c = bins[i]->children; c != NULL; c = c->next)
			if (xml_is(c, REGISTRY_NS, "rsa-public-key") &&
			    reg_load_key(r, c, index++) == -1)
				return -1;
	return 0;
}

/* ---- institutions ---- */

/* Index of HEI `id` (arena string), created on first sight. */
static uint32_t
reg_hei_get(struct registry *r, const char *id)
{
	uint64_t h = reg_hash(r->seed, id, NULL);
	struct reg_slot *s = reg_map_find(&r->hei_map, h, id, NULL);
	struct reg_hei *hei;

	if (s != NULL)
		return s->val;
	if (r->nheis == REG_MAX_ITEMS) /* unreachable: 64 MB cannot name 4G HEIs */
		fatalx("registry: HEI table full");
	if (r->nheis == r->heicap) {
		r->heicap = r->heicap ? r->heicap * 2 : 64;
		r->heis = xreallocarray(r->heis, r->heicap, sizeof(*r->heis));
	}
	hei = &r->heis[r->nheis];
	hei->id = id;
	hei->name = NULL;
	hei->name_en = false;
	reg_map_add(&r->hei_map, h, id, NULL, (uint32_t)r->nheis);
	return (uint32_t)r->nheis++;
}

static bool
reg_lang_is_en(const xmlNode *n)
{
	xmlChar *tmp;
	const char *lang = reg_attr_view(n, "lang", (const char *)XML_XML_NAMESPACE, &tmp);
	bool en =
	    lang != NULL && strncasecmp(lang, "en", 2) == 0 && (lang[2] == '\0' || lang[2] == '-');

	xmlFree(tmp);
	return en;
}

/* Keeps the first name, replaced once by the first English one. */
static void
reg_hei_name(struct registry *r, struct reg_hei *hei, const xmlNode *n)
{
	bool en;

	if (hei->name_en)
		return;
	en = reg_lang_is_en(n);
	if (hei->name != NULL && !en)
		return;
	hei->name = reg_text(r, n);
	hei->name_en = en;
}

/* "euc" is the deprecated spelling of "erasmus-charter". */
static const char *
reg_other_type(const char *type)
{
	return strcmp(type, "euc") == 0 ? "erasmus-charter" : type;
}

/*
 * Normalised other-id value into out (at most strlen(in) + 1 bytes):
 * trimmed; Erasmus codes also lose inner spaces and case, so that
 * "PL WARSZAW01" = "plwarszaw01".
 */
static void
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

static void
reg_other_id(struct registry *r, uint32_t hei, const xmlNode *n)
{
	const char *type, *raw;
	char *value;
	uint64_t h;

	type = reg_attr(r, n, "type");
	if (type == NULL || *type == '\0')
		return;
	type = reg_intern(r, reg_other_type(type));
	raw = reg_text(r, n);
	value = reg_alloc(&r->arena, strlen(raw) + 1, 1);
	reg_other_value(type, raw, value);
	if (*value == '\0')
		return;
	h = reg_hash(r->seed, type, value);
	if (reg_map_find(&r->other_map, h, type, value) == NULL)
		reg_map_add(&r->other_map, h, type, value, hei); /* first mapping wins */
}

static int
reg_load_hei(struct registry *r, const xmlNode *n, size_t index)
{
	const xmlNode *c;
	const char *id = reg_attr(r, n, "id");
	uint32_t hei;

	if (id == NULL || *id == '\0')
		return reg_fail(r, "institutions: hei %zu has no id", index);
	hei = reg_hei_get(r, id);
	for (c = n->children; c != NULL; c = c->next) {
		if (xml_is(c, REGISTRY_NS, "other-id"))
			reg_other_id(r, hei, c);
		else if (xml_is(c, REGISTRY_NS, "name"))
			reg_hei_name(r, &r->heis[hei], c);
	}
	return 0;
}

static int
reg_load_institutions(struct registry *r, const xmlNode *const *insts, size_t ninsts)
{
	const xmlNode *c;
	size_t i, index = 0;

	for (i = 0; i < ninsts; i++)
		for (c = insts[i]->children; c != NULL; c = c->next)
			if (xml_is(c, REGISTRY_NS, "hei") && reg_load_hei(r, c, index++) == -1)
				return -1;
	return 0;
}

/* ---- API entries ---- */

static bool
reg_is_url_name(const char *name)
{
	size_t n = strlen(name);

	return strcmp(name, "url") == 0 || (n > 4 && strcmp(name + n - 4, "-url") == 0);
}

/* Whole-string base-10 int; false for anything else. */
static bool
reg_parse_int(const char *s, int *out)
{
	char *end;
	long v;

	if (*s == '\0')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < INT_MIN || v > INT_MAX)
		return false;
	*out = (int)v;
	return true;
}

/* Is there an <httpsig> of namespace ns inside sec/<methods> (sec-intro namespace)? */
static bool
reg_has_httpsig(const xmlNode *sec, const char *methods, const char *ns)
{
	const xmlNode *c;

	for (c = sec->children; c != NULL; c = c->next)
		if (xml_is(c, REG_NS_SEC, methods) && xml_child(c, ns, "httpsig") != NULL)
			return true;
	return false;
}

static void
reg_api_security(struct registry_api *a, const xmlNode *sec)
{
	a->cliauth_httpsig =
	    a->cliauth_httpsig || reg_has_httpsig(sec, "client-auth-methods", REG_NS_CLI_HTTPSIG);
	a->srvauth_httpsig =
	    a->srvauth_httpsig || reg_has_httpsig(sec, "server-auth-methods", REG_NS_SRV_HTTPSIG);
}

/* Sizes the URL and limit arrays of one entry. */
static void
reg_api_count(const xmlNode *n, size_t *nurls, size_t *nlimits)
{
	const xmlNode *c;

	*nurls = *nlimits = 0;
	for (c = n->children; c != NULL; c = c->next) {
		if (!reg_is_el(c))
			continue;
		if (reg_is_url_name((const char *)c->name))
			(*nurls)++;
		else if (strncmp((const char *)c->name, "max-", 4) == 0)
			(*nlimits)++;
	}
}

static void
reg_api_child(struct registry *r, struct registry_api *a, const xmlNode *c, const char **unames,
              const char **uvals, const char **lnames, int *lvals)
{
	const char *name = (const char *)c->name;
	const char *text;
	int v;

	if (reg_is_url_name(name)) {
		unames[a->nurls] = reg_intern(r, name);
		uvals[a->nurls++] = reg_text(r, c);
	} else if (strncmp(name, "max-", 4) == 0) {
		text = reg_text(r, c);
		if (reg_parse_int(text, &v)) {
			lnames[a->nlimits] = reg_intern(r, name);
			lvals[a->nlimits++] = v;
		}
	} else if (strcmp(name, "http-security") == 0) {
		reg_api_security(a, c);
	}
}

/* Fills one entry of <apis-implemented> for host `host`. */
static void
reg_load_api(struct registry *r, struct registry_api *a, const xmlNode *n, size_t host)
{
	const char **unames, **uvals, **lnames;
	const char *version;
	const xmlNode *c;
	size_t nurls, nlimits;
	int *lvals;

	memset(a, 0, sizeof(*a));
	a->ns = reg_intern(r, reg_ns_of(n));
	a->name = reg_intern(r, (const char *)n->name);
	version = reg_attr(r, n, "version");
	a->version = reg_intern(r, version != NULL ? version : "");
	a->host = host;
	reg_api_count(n, &nurls, &nlimits);
	unames = reg_ptrs(&r->arena, nurls);
	uvals = reg_ptrs(&r->arena, nurls);
	lnames = reg_ptrs(&r->arena, nlimits);
	lvals = reg_alloc(&r->arena, (nlimits ? nlimits : 1) * sizeof(int), _Alignof(int));
	for (c = n->children; c != NULL; c = c->next)
		if (reg_is_el(c))
			reg_api_child(r, a, c, unames, uvals, lnames, lvals);
	a->url_names = unames;
	a->url_values = uvals;
	a->limit_names = lnames;
	a->limit_values = lvals;
}

/* ---- hosts ---- */

static size_t
reg_host_api_count(const xmlNode *host)
{
	const xmlNode *apis = xml_child(host, REGISTRY_NS, "apis-implemented"), *c;
	size_t n = 0;

	if (apis == NULL)
		return 0;
	for (c = apis->children; c != NULL; c = c->next)
		if (reg_is_el(c))
			n++;
	return n;
}

static void
reg_load_host_apis(struct registry *r, struct reg_host *h, const xmlNode *host, size_t index)
{
	const xmlNode *apis = xml_child(host, REGISTRY_NS, "apis-implemented"), *c;

	h->api_first = r->napis;
	if (apis == NULL)
		return;
	for (c = apis->children; c != NULL; c = c->next)
		if (reg_is_el(c))
			reg_load_api(r, &r->apis[r->napis++], c, index);
	h->napis = r->napis - h->api_first;
}

static int
reg_load_host_heis(struct registry *r, struct reg_host *h, const xmlNode *host, size_t index)
{
	const xmlNode *cov = xml_child(host, REGISTRY_NS, "institutions-covered"), *c;
	const char *id;
	uint32_t hei;

	h->heis = reg_ptrs(&r->arena, cov != NULL ? reg_count(cov, REGISTRY_NS, "hei-id") : 0);
	if (cov == NULL)
		return 0;
	for (c = cov->children; c != NULL; c = c->next) {
		if (!xml_is(c, REGISTRY_NS, "hei-id"))
			continue;
		id = reg_text(r, c);
		if (*id == '\0')
			return reg_fail(r, "host index %zu: empty hei-id", index);
		hei = reg_hei_get(r, id); /* may move r->heis: index it afterwards */
		h->heis[h->nheis++] = r->heis[hei].id;
	}
	return 0;
}

/*
 * Resolves the <rsa-public-key sha-256> references of one credentials
 * element into key indices; every one must exist in <binaries>.
 */
static int
reg_load_creds(struct registry *r, const xmlNode *host, const char *what, bool client, size_t index,
               uint32_t **out, size_t *nout)
{
	const xmlNode *creds = xml_child(host, REGISTRY_NS, what), *c;
	uint32_t k, *list;
	const char *sha;
	size_t i, n;

	n = creds != NULL ? reg_count(creds, REGISTRY_NS, "rsa-public-key") : 0;
	list = reg_alloc(&r->arena, (n ? n : 1) * sizeof(*list), _Alignof(uint32_t));
	*out = list;
	*nout = 0;
	for (c = creds != NULL ? creds->children : NULL; c != NULL; c = c->next) {
		if (!xml_is(c, REGISTRY_NS, "rsa-public-key"))
			continue;
		sha = reg_attr(r, c, "sha-256");
		k = reg_key_index(r, sha);
		if (k == REG_NONE)
			return reg_fail(r, "host index %zu: %s key %s is not in binaries", index,
			                client ? "client" : "server", sha != NULL ? sha : "(none)");
		for (i = 0; i < *nout && list[i] != k; i++)
			;
		if (i == *nout)
			list[(*nout)++] = k;
		if (client)
			r->keys[k].pub.client = true;
		else
			r->keys[k].pub.server = true;
	}
	return 0;
}

static int
reg_load_host(struct registry *r, const xmlNode *host, size_t index)
{
	struct reg_host *h = &r->hosts[index];

	if (reg_load_host_heis(r, h, host, index) == -1 ||
	    reg_load_creds(r, host, "client-credentials-in-use", true, index, &h->client,
	                   &h->nclient) == -1 ||
	    reg_load_creds(r, host, "server-credentials-in-use", false, index, &h->server,
	                   &h->nserver) == -1)
		return -1;
	reg_load_host_apis(r, h, host, index);
	return 0;
}

static int
reg_load_hosts(struct registry *r, const xmlNode *const *hosts)
{
	size_t i, total = 0;

	for (i = 0; i < r->nhosts; i++)
		total += reg_host_api_count(hosts[i]);
	if (total > REG_MAX_ITEMS)
		return reg_fail(r, "too many API entries");
	r->apis = xcalloc(total, sizeof(*r->apis));
	r->hosts = xcalloc(r->nhosts, sizeof(*r->hosts));
	for (i = 0; i < r->nhosts; i++)
		if (reg_load_host(r, hosts[i], i) == -1)
			return -1;
	return 0;
}

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

/* (HEI, namespace) -> the highest version over every host covering the HEI. */
static void
reg_index_apis(struct registry *r)
{
	const struct reg_host *h;
	const struct registry_api *a;
	struct reg_slot *s;
	size_t i, j, k;
	uint64_t hash;

	for (i = 0; i < r->nhosts; i++) {
		h = &r->hosts[i];
		for (j = 0; j < h->nheis; j++) {
			for (k = h->api_first; k < h->api_first + h->napis; k++) {
				a = &r->apis[k];
				hash = reg_hash(r->seed, h->heis[j], a->ns);
				s = reg_map_find(&r->api_map, hash, h->heis[j], a->ns);
				if (s == NULL)
					reg_map_add(&r->api_map, hash, h->heis[j], a->ns,
					            (uint32_t)k);
				else if (reg_version_cmp(a->version, r->apis[s->val].version) > 0)
					s->val = (uint32_t)k;
			}
		}
	}
}

/* Endpoint URL -> the API entry (and so the host) serving it; first one wins. */
static void
reg_index_urls(struct registry *r)
{
	for (size_t i = 0; i < r->napis; i++) {
		const struct registry_api *a = &r->apis[i];

		for (size_t j = 0; j < a->nurls; j++) {
			uint64_t hash = reg_hash(r->seed, a->url_values[j], "");

			if (reg_map_find(&r->url_map, hash, a->url_values[j], "") == NULL)
				reg_map_add(&r->url_map, hash, a->url_values[j], "", (uint32_t)i);
		}
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
		r->keys[i].client_heis = reg_ptrs(&r->arena, r->keys[i].nclient_heis);
		r->keys[i].nclient_heis = 0; /* refilled below */
	}
	for (i = 0; i < r->nhosts; i++) {
		h = &r->hosts[i];
		for (j = 0; j < h->nclient; j++) {
			k = &r->keys[h->client[j]];
			memcpy(k->client_heis + k->nclient_heis, h->heis,
			       h->nheis * sizeof(*h->heis));
			k->nclient_heis += h->nheis;
		}
	}
}

/* ---- loading ---- */

struct reg_parts {
	const xmlNode **hosts;
	const xmlNode **insts;
	const xmlNode **bins;
	size_t nhosts, ninsts, nbins;
};

/* Sorts the root's children by kind; unknown elements are ignored. */
static void
reg_split(const xmlNode *root, struct reg_parts *p)
{
	const xmlNode *c;
	size_t n = 0;

	for (c = root->children; c != NULL; c = c->next)
		n += reg_is_el(c);
	p->hosts = xcalloc(n, sizeof(*p->hosts));
	p->insts = xcalloc(n, sizeof(*p->insts));
	p->bins = xcalloc(n, sizeof(*p->bins));
	p->nhosts = p->ninsts = p->nbins = 0;
	for (c = root->children; c != NULL; c = c->next) {
		if (xml_is(c, REGISTRY_NS, "host"))
			p->hosts[p->nhosts++] = c;
		else if (xml_is(c, REGISTRY_NS, "institutions"))
			p->insts[p->ninsts++] = c;
		else if (xml_is(c, REGISTRY_NS, "binaries"))
			p->bins[p->nbins++] = c;
	}
}

static void
reg_parts_free(struct reg_parts *p)
{
	free(p->hosts);
	free(p->insts);
	free(p->bins);
}

static int
reg_check_root(struct registry *r, const xmlNode *root)
{
	if (root == NULL)
		return reg_fail(r, "no root element");
	if (xml_is(root, REGISTRY_NS, "catalogue"))
		return 0;
	return reg_fail(r, "root element is {%s}%s, expected {%s}catalogue", reg_ns_of(root),
	                (const char *)root->name, REGISTRY_NS);
}

static int
reg_build(struct registry *r, const xmlNode *root)
{
	struct reg_parts p;
	int rc = -1;

	if (reg_check_root(r, root) == -1)
		return -1;
	reg_split(root, &p);
	r->nhosts = p.nhosts;
	if (p.nhosts == 0)
		reg_fail(r, "catalogue lists no host");
	else if (reg_load_binaries(r, p.bins, p.nbins) == 0 &&
	         reg_load_institutions(r, p.insts, p.ninsts) == 0 &&
	         reg_load_hosts(r, p.hosts) == 0)
		rc = 0;
	reg_parts_free(&p);
	if (rc == 0) {
		reg_index_apis(r);
		reg_index_client_heis(r);
		reg_index_urls(r);
	}
	return rc;
}

static uint64_t
reg_seed(void)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)(uintptr_t)&seed ^ (uint64_t)getpid();
	return seed;
}

struct registry *
registry_load_mem(const char *data, size_t len, const char *origin, char *err, size_t errlen)
{
	struct registry *r = xcalloc(1, sizeof(*r));
	char xerr[512];
	xmlDocPtr doc;
	int rc;

	r->seed = reg_seed();
	r->origin = origin != NULL ? origin : "catalogue";
	r->err = err;
	r->errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	doc = xml_parse(data, len, EWP_MAX_CATALOGUE_BYTES, xerr, sizeof(xerr));
	if (doc == NULL) {
		reg_fail(r, "%s", xerr);
		registry_free(r);
		return NULL;
	}
	rc = reg_build(r, xmlDocGetRootElement(doc));
	xmlFreeDoc(doc);
	/*
	 * The tree of a large catalogue is several times its size and glibc
	 * keeps the freed pages: hand them back rather than hold them in
	 * every process until the next refresh.
	 */
	malloc_trim(0);
	reg_map_free(&r->strings); /* only needed while building */
	r->origin = NULL;
	r->err = NULL;
	if (rc == -1) {
		registry_free(r);
		return NULL;
	}
	return r;
}

/* Reads at most max + 1 bytes so that an oversize file is recognised as such. */
static int
reg_read_file(const char *path, size_t max, struct buf *b, char *err, size_t errlen)
{
	char chunk[64 * 1024];
	ssize_t n;
	int fd;

	buf_init(b, max + 1);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || buf_add(b, chunk, (size_t)n) == -1) {
			snprintf(err, errlen, "%s: %s", path,
			         n == -1 ? strerror(errno)
			                 : "file larger than the catalogue limit");
			close(fd);
			buf_free(b);
			return -1;
		}
	}
	close(fd);
	return 0;
}

struct registry *
registry_load_file(const char *path, char *err, size_t errlen)
{
	struct registry *r;
	struct buf b;

	if (reg_read_file(path, EWP_MAX_CATALOGUE_BYTES, &b, err, errlen) == -1)
		return NULL;
	r = registry_load_mem(b.data != NULL ? b.data : "", b.len, path, err, errlen);
	buf_free(&b);
	return r;
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
	reg_map_free(&r->key_map);
	reg_map_free(&r->hei_map);
	reg_map_free(&r->api_map);
	reg_map_free(&r->other_map);
	reg_map_free(&r->url_map);
	reg_map_free(&r->strings);
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

size_t
registry_key_count(const struct registry *r)
{
	return r->nkeys;
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
	const struct reg_slot *s;

	if (hei_id == NULL)
		return NULL;
	s = reg_map_find(&r->hei_map, reg_hash(r->seed, hei_id, NULL), hei_id, NULL);
	return s != NULL ? &r->heis[s->val] : NULL;
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
	const struct reg_slot *s;
	size_t len;

	if (type == NULL || value == NULL)
		return NULL;
	type = reg_other_type(type);
	len = strlen(value);
	norm = len < sizeof(small) ? small : xmalloc(len + 1);
	reg_other_value(type, value, norm);
	s = reg_map_find(&r->other_map, reg_hash(r->seed, type, norm), type, norm);
	if (norm != small)
		free(norm);
	return s != NULL ? r->heis[s->val].id : NULL;
}

const struct registry_api *
registry_api(const struct registry *r, const char *hei_id, const char *ns)
{
	const struct reg_slot *s;

	if (hei_id == NULL || ns == NULL)
		return NULL;
	s = reg_map_find(&r->api_map, reg_hash(r->seed, hei_id, ns), hei_id, ns);
	return s != NULL ? &r->apis[s->val] : NULL;
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
	size_t len = strcspn(url, "?");
	char *base = xstrndup(url, len);
	const struct reg_slot *s = reg_map_find(&r->url_map, reg_hash(r->seed, base, ""), base, "");

	free(base);
	if (s == NULL)
		return -1;
	*host = r->apis[s->val].host;
	return 0;
}
