/*
 * registry.c - the EWP Registry catalogue: loading, validating, indexing.
 *
 * The catalogue is read as a stream (xml_stream, with the hardening of
 * xml_parse) and no tree is built: a tree is about eight times the size
 * of the document, and every worker loads the catalogue. Each open
 * element gets a kind from its parent's kind and its own name (see
 * reg_child_kind); what the loader does with an element depends on that
 * kind alone. Host credentials name keys of <binaries>, which usually
 * comes last, so they are kept aside and resolved once the whole
 * document has been read.
 *
 * A snapshot owns everything it hands out: strings and small arrays live
 * in one arena (freed in one sweep), the tables are owned arrays, and
 * the parsed public keys are freed one by one.
 *
 * Lookups go through open-addressing hash tables (linear probing, a
 * word-at-a-time multiplicative hash with a per-snapshot random seed,
 * load factor <= 3/4). A slot is 8 bytes: 32 bits of the hash and the
 * index of an entry in one of the snapshot's arrays, where the key is
 * read back; a probe rarely goes further than the slot's hash. The
 * (HEI, API namespace) table already holds the best entry over every
 * host covering the HEI, so registry_api() is a single probe.
 *
 * What is checked is integrity, not policy: keys must decode, be RSA and
 * match their sha-256 attribute, references must resolve, ids must not be
 * empty. Key sizes, URL schemes and the like are the Registry's job; this
 * module logs nothing and leaves reporting to the caller. Of several
 * faults, the one reported is the first by the order of enum reg_rank.
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
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/tree.h> /* XML_XML_NAMESPACE */

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
#define REG_READ_BYTES  (64 * 1024) /* catalogue file read (and parsed) at a time */
#define REG_NONE        UINT32_MAX
#define REG_MAX_ITEMS   (UINT32_MAX - 1) /* table values are 32-bit indices */

/*
 * Makes room for one more item at a[n] in a growable array. Items are
 * counted in 32-bit indices; 64 MiB of XML cannot name 4G of anything
 * (see reg_index_apis for the one product that could).
 */
#define REG_GROW(a, n, cap)                                                                        \
	do {                                                                                       \
		if ((n) == (cap)) {                                                                \
			(cap) = (cap) != 0 ? (cap)*2 : 16;                                         \
			(a) = xreallocarray((a), (cap), sizeof(*(a)));                             \
		}                                                                                  \
	} while (0)

/* Gives back the slack of a grown array; never NULL, so that a + 0 stays valid. */
#define REG_SHRINK(a, n) ((a) = xreallocarray((a), (n) != 0 ? (n) : 1, sizeof(*(a))))

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

static uint64_t
reg_hash(uint64_t seed, const char *k1, const char *k2)
{
	uint64_t h = reg_mix(seed, k1);

	if (k2 != NULL)
		h = reg_mix(h ^ 0xff51afd7ed558ccdULL, k2);
	return reg_fmix(h);
}

/* ---- hash tables: (k1[, k2]) -> index of an entry that carries the key ---- */

/* Is entry `val` of the table's array the one keyed (k1, k2)? One per table. */
typedef bool reg_eq_fn(const void *ctx, uint32_t val, const char *k1, const char *k2);

struct reg_slot {
	uint32_t hash; /* low half of the key's hash: bucket, and a cheap first compare */
	uint32_t val;  /* REG_NONE when the slot is free */
};

struct reg_map {
	struct reg_slot *slots;
	size_t cap; /* power of two, 0 when empty */
	size_t n;
};

static uint32_t
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
static void
reg_map_add(struct reg_map *m, uint64_t hash, uint32_t val)
{
	if ((m->n + 1) * 4 > m->cap * 3)
		reg_map_grow(m);
	reg_map_put(m->slots, m->cap - 1, (struct reg_slot){(uint32_t)hash, val});
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

/* An entry of api_map: the best API entry of a namespace for an HEI. */
struct reg_hei_api {
	const char *hei; /* the keys, here rather than behind indices: one cache miss less */
	const char *ns;
	uint32_t api;
};

/* An entry of other_map: normalised (see reg_other_value). */
struct reg_other {
	const char *type;
	const char *value;
	uint32_t hei;
};

struct registry {
	struct reg_arena arena;
	uint64_t seed;
	struct reg_host *hosts;
	size_t nhosts;
	struct reg_key *keys;
	size_t nkeys;
	struct reg_hei *heis;
	size_t nheis;
	struct registry_api *apis;
	size_t napis;
	/* URL and limit children of every API entry, one entry after the other */
	const char **url_names, **url_values;
	uint32_t *url_api; /* the entry each URL belongs to */
	size_t nurls;
	const char **limit_names;
	int *limit_values;
	size_t nlimits;
	struct reg_hei_api *hei_apis;
	size_t nhei_apis;
	struct reg_other *others;
	size_t nothers;
	struct reg_map key_map;   /* keyid -> keys[] */
	struct reg_map hei_map;   /* HEI id -> heis[] */
	struct reg_map api_map;   /* (HEI id, namespace) -> hei_apis[] */
	struct reg_map other_map; /* (type, value) -> others[] */
	struct reg_map url_map;   /* endpoint URL -> url_values[] */
};

static bool
reg_eq_key(const void *ctx, uint32_t val, const char *keyid, const char *unused)
{
	const struct registry *r = ctx;

	(void)unused;
	return strcmp(r->keys[val].pub.keyid, keyid) == 0;
}

static bool
reg_eq_hei(const void *ctx, uint32_t val, const char *id, const char *unused)
{
	const struct registry *r = ctx;

	(void)unused;
	return strcmp(r->heis[val].id, id) == 0;
}

static bool
reg_eq_hei_api(const void *ctx, uint32_t val, const char *hei, const char *ns)
{
	const struct registry *r = ctx;
	const struct reg_hei_api *e = &r->hei_apis[val];

	return strcmp(e->hei, hei) == 0 && strcmp(e->ns, ns) == 0;
}

static bool
reg_eq_other(const void *ctx, uint32_t val, const char *type, const char *value)
{
	const struct registry *r = ctx;

	return strcmp(r->others[val].type, type) == 0 && strcmp(r->others[val].value, value) == 0;
}

static bool
reg_eq_url(const void *ctx, uint32_t val, const char *url, const char *unused)
{
	const struct registry *r = ctx;

	(void)unused;
	return strcmp(r->url_values[val], url) == 0;
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

	if (keyid == NULL || !reg_keyid_norm(keyid, norm))
		return REG_NONE;
	return reg_map_find(&r->key_map, reg_eq_key, r, reg_keyid_hash(r->seed, norm), norm, NULL);
}

/* ---- loading: the loader's state ---- */

/* What an open element is to the loader. Every child of REG_SKIP is REG_SKIP. */
enum reg_kind {
	REG_SKIP, /* not ours (or not the first of its kind): ignored, content and all */
	REG_CATALOGUE,
	REG_HOST,
	REG_APIS,        /* host/apis-implemented */
	REG_API,         /* an entry of it, in any namespace */
	REG_API_URL,     /* entry/url, entry/get-url, ... */
	REG_API_LIMIT,   /* entry/max-hei-ids, ... */
	REG_API_SEC,     /* entry/http-security */
	REG_SEC_CLI,     /* http-security/client-auth-methods */
	REG_SEC_SRV,     /* http-security/server-auth-methods */
	REG_CLI_HTTPSIG, /* client-auth-methods/httpsig */
	REG_SRV_HTTPSIG, /* server-auth-methods/httpsig */
	REG_COVERED,     /* host/institutions-covered */
	REG_HEI_ID,
	REG_CLI_CREDS, /* host/client-credentials-in-use */
	REG_SRV_CREDS, /* host/server-credentials-in-use */
	REG_CLI_KEY,   /* client-credentials-in-use/rsa-public-key */
	REG_SRV_KEY,   /* server-credentials-in-use/rsa-public-key */
	REG_INSTITUTIONS,
	REG_HEI,
	REG_OTHER_ID,
	REG_NAME,
	REG_BINARIES,
	REG_BIN_KEY, /* binaries/rsa-public-key */
};

/*
 * Faults by precedence: the order in which a loader working on the whole
 * tree meets them. Of several faults, the lowest rank is reported, and
 * the first in the document of that rank.
 */
enum reg_rank {
	REG_ERR_XML = 1, /* not readable, not well-formed or refused by xml_stream */
	REG_ERR_ROOT,
	REG_ERR_NO_HOST,
	REG_ERR_BINARIES,
	REG_ERR_INSTITUTIONS,
	REG_ERR_HOSTS,
	REG_ERR_NONE,
};

/* Host children of which only the first counts, as with xml_child(). */
enum {
	REG_SEEN_APIS = 1 << 0,
	REG_SEEN_COVERED = 1 << 1,
	REG_SEEN_CLI = 1 << 2,
	REG_SEEN_SRV = 1 << 3,
};

/* What is checked of a host once the whole document has been read. */
struct reg_host_refs {
	size_t cli, ncli; /* its range of cli_refs */
	size_t srv, nsrv; /* its range of srv_refs */
	bool empty_hei;
};

struct reg_loader {
	struct registry *r;
	const char *origin;
	char *err;
	size_t errlen;
	enum reg_rank rank; /* of the fault in err; REG_ERR_NONE while there is none */

	enum reg_kind kinds[EWP_MAX_XML_DEPTH]; /* of the open elements */
	size_t depth;
	bool seen_root;
	struct buf text;   /* content of the element being captured */
	size_t capture_at; /* its depth, 0 when none */
	struct buf attr;   /* see reg_attr */

	/* About the elements now open. */
	unsigned seen;          /* REG_SEEN_* of the current host */
	const char *child_name; /* interned name of the current URL or limit element */
	const char *other_type; /* interned type of the current other-id */
	bool name_en;           /* the current name is English */
	uint32_t hei;           /* the current <hei>, REG_NONE when it has no id */
	size_t nhei_els;        /* <hei> elements so far, for messages */
	char keyid[CODEC_SHA256_HEX_LEN + 1]; /* the current binaries key; "" to skip it */
	size_t nbin_keys;                     /* binaries keys so far, for messages */

	/* Hosts, checked by reg_resolve_hosts once <binaries> has been read. */
	struct reg_host_refs *refs; /* one per host */
	const char **cli_refs;      /* sha-256 attributes as written, NULL when absent */
	const char **srv_refs;
	size_t ncli_refs, nsrv_refs;
	const char **host_heis; /* of the current host */
	size_t nhost_heis;
	struct reg_arena scratch; /* load-time strings */

	/* One shared copy of the names, namespaces and versions that repeat on every host. */
	struct reg_map strings;
	const char **interned;
	size_t ninterned;

	/* Capacities of the arrays above and of the snapshot's growing arrays. */
	size_t refcap, clicap, srvcap, hostheicap, internedcap;
	size_t hostcap, keycap, heicap, apicap, urlcap, limitcap, othercap;
};

static int reg_fail(struct reg_loader *l, enum reg_rank rank, const char *fmt, ...)
    EWP_PRINTF(3, 4);

/*
 * Writes "origin: reason" into the caller's buffer unless a fault that
 * takes precedence is there already. Returns -1.
 */
static int
reg_fail(struct reg_loader *l, enum reg_rank rank, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (rank >= l->rank)
		return -1;
	l->rank = rank;
	if (l->err == NULL || l->errlen == 0)
		return -1;
	n = snprintf(l->err, l->errlen, "%s: ", l->origin);
	if (n < 0 || (size_t)n >= l->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static bool
reg_eq_interned(const void *ctx, uint32_t val, const char *s, const char *unused)
{
	const struct reg_loader *l = ctx;

	(void)unused;
	return strcmp(l->interned[val], s) == 0;
}

static const char *
reg_intern(struct reg_loader *l, const char *s)
{
	uint64_t h = reg_hash(l->r->seed, s, NULL);
	uint32_t i = reg_map_find(&l->strings, reg_eq_interned, l, h, s, NULL);

	if (i != REG_NONE)
		return l->interned[i];
	REG_GROW(l->interned, l->ninterned, l->internedcap);
	l->interned[l->ninterned] = reg_strndup(&l->r->arena, s, strlen(s));
	reg_map_add(&l->strings, h, (uint32_t)l->ninterned);
	return l->interned[l->ninterned++];
}

/* ---- loading: text and attributes ---- */

static bool
reg_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Appends to a load-time buffer: they have no ceiling of their own (the document has one). */
static void
reg_buf_add(struct buf *b, const char *s, size_t n)
{
	if (buf_add(b, s, n) == -1)
		fatalx("registry: load buffer overflow"); /* unreachable: the ceiling is SIZE_MAX */
}

/* Starts collecting the text of the element just opened, descendants' text included. */
static void
reg_capture(struct reg_loader *l)
{
	buf_reset(&l->text);
	l->capture_at = l->depth;
}

/* The collected text, trimmed and NUL-terminated in place. */
static char *
reg_text(struct reg_loader *l, size_t *len)
{
	char *s, *e;

	if (l->text.data == NULL)
		reg_buf_add(&l->text, "", 0); /* nothing captured yet: make it "" */
	s = l->text.data;
	e = s + l->text.len;
	while (s < e && reg_space(*s))
		s++;
	while (e > s && reg_space(e[-1]))
		e--;
	*e = '\0';
	*len = (size_t)(e - s);
	return s;
}

/*
 * Attribute in no namespace, trimmed and NUL-terminated; NULL when
 * absent. Valid until the next call.
 */
static const char *
reg_attr(struct reg_loader *l, const struct xml_el *el, const char *name)
{
	size_t len;
	const char *v = xml_el_attr(el, NULL, name, &len);

	if (v == NULL)
		return NULL;
	while (len > 0 && reg_space(*v))
		v++, len--;
	while (len > 0 && reg_space(v[len - 1]))
		len--;
	buf_reset(&l->attr);
	reg_buf_add(&l->attr, v, len);
	return buf_cstr(&l->attr);
}

/* ---- loading: binaries ---- */

static void
reg_bin_key_begin(struct reg_loader *l, const struct xml_el *el)
{
	struct registry *r = l->r;
	const char *sha = reg_attr(l, el, "sha-256");
	size_t index = l->nbin_keys++;

	if (sha == NULL || !reg_keyid_norm(sha, l->keyid)) {
		l->keyid[0] = '\0';
		reg_fail(l, REG_ERR_BINARIES,
		         "binaries key %zu: sha-256 attribute missing or not 64 hex digits", index);
		return;
	}
	if (reg_map_find(&r->key_map, reg_eq_key, r, reg_keyid_hash(r->seed, l->keyid), l->keyid,
	                 NULL) != REG_NONE) {
		l->keyid[0] = '\0'; /* same digest, same bytes: a harmless repeat */
		return;
	}
	reg_capture(l);
}

static void
reg_add_key(struct reg_loader *l, struct keys_pub *pub)
{
	struct registry *r = l->r;
	struct reg_key *k;

	REG_GROW(r->keys, r->nkeys, l->keycap);
	k = &r->keys[r->nkeys];
	memset(k, 0, sizeof(*k));
	k->owned = pub;
	k->pub.pub = pub;
	k->pub.keyid = keys_pub_keyid(pub); /* the digest that matched l->keyid: the same text */
	reg_map_add(&r->key_map, reg_keyid_hash(r->seed, l->keyid), (uint32_t)r->nkeys++);
}

/* Decodes, fingerprints and parses the key whose sha-256 reg_bin_key_begin accepted. */
static void
reg_bin_key_end(struct reg_loader *l)
{
	char got[CODEC_SHA256_HEX_LEN + 1];
	unsigned char md[CODEC_SHA256_LEN], *der;
	struct keys_pub *pub;
	const char *b64;
	size_t len, derlen;

	if (l->keyid[0] == '\0')
		return;
	b64 = reg_text(l, &len);
	if (codec_base64_decode(b64, len, &der, &derlen) == -1) {
		reg_fail(l, REG_ERR_BINARIES, "binaries key %s: content is not valid base64",
		         l->keyid);
		return;
	}
	codec_sha256(der, derlen, md);
	codec_hex(md, sizeof(md), got);
	if (strcmp(got, l->keyid) != 0) {
		free(der);
		reg_fail(l, REG_ERR_BINARIES,
		         "binaries key %s: sha-256 attribute does not match the key (its digest is "
		         "%s)",
		         l->keyid, got);
		return;
	}
	pub = keys_pub_from_der(der, derlen);
	free(der);
	if (pub == NULL) {
		reg_fail(l, REG_ERR_BINARIES, "binaries key %s: not a DER SubjectPublicKeyInfo",
		         l->keyid);
	} else if (!keys_pub_is_rsa(pub)) {
		keys_pub_free(pub);
		reg_fail(l, REG_ERR_BINARIES, "binaries key %s: not an RSA key", l->keyid);
	} else {
		reg_add_key(l, pub);
	}
}

/* ---- loading: institutions ---- */

/* Index of HEI `id`, created (with a copy of id) on first sight. */
static uint32_t
reg_hei_get(struct reg_loader *l, const char *id)
{
	struct registry *r = l->r;
	uint64_t h = reg_hash(r->seed, id, NULL);
	uint32_t i = reg_map_find(&r->hei_map, reg_eq_hei, r, h, id, NULL);

	if (i != REG_NONE)
		return i;
	REG_GROW(r->heis, r->nheis, l->heicap);
	r->heis[r->nheis] = (struct reg_hei){reg_strndup(&r->arena, id, strlen(id)), NULL, false};
	reg_map_add(&r->hei_map, h, (uint32_t)r->nheis);
	return (uint32_t)r->nheis++;
}

static void
reg_hei_begin(struct reg_loader *l, const struct xml_el *el)
{
	const char *id = reg_attr(l, el, "id");
	size_t index = l->nhei_els++;

	l->hei = REG_NONE; /* its children are then skipped */
	if (id == NULL || *id == '\0')
		reg_fail(l, REG_ERR_INSTITUTIONS, "institutions: hei %zu has no id", index);
	else
		l->hei = reg_hei_get(l, id);
}

static bool
reg_lang_is_en(const struct xml_el *el)
{
	size_t len;
	const char *lang = xml_el_attr(el, (const char *)XML_XML_NAMESPACE, "lang", &len);

	return lang != NULL && len >= 2 && strncasecmp(lang, "en", 2) == 0 &&
	       (len == 2 || lang[2] == '-');
}

/* Keeps the first name, replaced once by the first English one. */
static void
reg_name_end(struct reg_loader *l)
{
	struct reg_hei *hei = &l->r->heis[l->hei];
	const char *name;
	size_t len;

	if (hei->name_en || (hei->name != NULL && !l->name_en))
		return;
	name = reg_text(l, &len);
	hei->name = reg_strndup(&l->r->arena, name, len);
	hei->name_en = l->name_en;
}

/* "euc" is the deprecated spelling of "erasmus-charter". */
static const char *
reg_other_type(const char *type)
{
	return strcmp(type, "euc") == 0 ? "erasmus-charter" : type;
}

/*
 * Normalised other-id value into out (at most strlen(in) + 1 bytes; out
 * may be in): trimmed; Erasmus codes also lose inner spaces and case, so
 * that "PL WARSZAW01" = "plwarszaw01".
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
reg_other_begin(struct reg_loader *l, const struct xml_el *el)
{
	const char *type = reg_attr(l, el, "type");

	l->other_type = NULL; /* an other-id without a type is ignored */
	if (type != NULL && *type != '\0') {
		l->other_type = reg_intern(l, reg_other_type(type));
		reg_capture(l);
	}
}

static void
reg_other_end(struct reg_loader *l)
{
	struct registry *r = l->r;
	size_t len;
	char *value;
	uint64_t h;

	if (l->other_type == NULL)
		return;
	value = reg_text(l, &len);
	reg_other_value(l->other_type, value, value);
	if (*value == '\0')
		return;
	h = reg_hash(r->seed, l->other_type, value);
	if (reg_map_find(&r->other_map, reg_eq_other, r, h, l->other_type, value) != REG_NONE)
		return; /* the first mapping wins */
	REG_GROW(r->others, r->nothers, l->othercap);
	r->others[r->nothers] =
	    (struct reg_other){l->other_type, reg_strndup(&r->arena, value, strlen(value)), l->hei};
	reg_map_add(&r->other_map, h, (uint32_t)r->nothers++);
}

/* ---- loading: API entries ---- */

static struct registry_api *
reg_cur_api(struct reg_loader *l)
{
	return &l->r->apis[l->r->napis - 1];
}

/* Entries point at their URLs and limits only at the end (reg_link_apis): the arrays move. */
static void
reg_api_begin(struct reg_loader *l, const char *ns, const char *name, const struct xml_el *el)
{
	struct registry *r = l->r;
	const char *version = reg_attr(l, el, "version");
	struct registry_api *a;

	REG_GROW(r->apis, r->napis, l->apicap);
	a = &r->apis[r->napis++];
	memset(a, 0, sizeof(*a));
	a->version = reg_intern(l, version != NULL ? version : "");
	a->ns = reg_intern(l, ns);
	a->name = reg_intern(l, name);
	a->host = r->nhosts - 1;
}

static bool
reg_is_url_name(const char *name)
{
	size_t n = strlen(name);

	return strcmp(name, "url") == 0 || (n > 4 && strcmp(name + n - 4, "-url") == 0);
}

static void
reg_url_end(struct reg_loader *l)
{
	struct registry *r = l->r;
	size_t len;
	const char *url = reg_text(l, &len);

	if (r->nurls == l->urlcap) {
		l->urlcap = l->urlcap ? l->urlcap * 2 : 64;
		r->url_names = xreallocarray(r->url_names, l->urlcap, sizeof(*r->url_names));
		r->url_values = xreallocarray(r->url_values, l->urlcap, sizeof(*r->url_values));
		r->url_api = xreallocarray(r->url_api, l->urlcap, sizeof(*r->url_api));
	}
	r->url_names[r->nurls] = l->child_name;
	r->url_values[r->nurls] = reg_strndup(&r->arena, url, len);
	r->url_api[r->nurls++] = (uint32_t)(r->napis - 1);
	reg_cur_api(l)->nurls++;
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

/* A limit that is not a whole number is left out: the caller's fallback applies. */
static void
reg_limit_end(struct reg_loader *l)
{
	struct registry *r = l->r;
	size_t len;
	int v;

	if (!reg_parse_int(reg_text(l, &len), &v))
		return;
	if (r->nlimits == l->limitcap) {
		l->limitcap = l->limitcap ? l->limitcap * 2 : 64;
		r->limit_names =
		    xreallocarray(r->limit_names, l->limitcap, sizeof(*r->limit_names));
		r->limit_values =
		    xreallocarray(r->limit_values, l->limitcap, sizeof(*r->limit_values));
	}
	r->limit_names[r->nlimits] = l->child_name;
	r->limit_values[r->nlimits++] = v;
	reg_cur_api(l)->nlimits++;
}

/* ---- loading: hosts ---- */

static void
reg_host_begin(struct reg_loader *l)
{
	struct registry *r = l->r;

	REG_GROW(r->hosts, r->nhosts, l->hostcap);
	REG_GROW(l->refs, r->nhosts, l->refcap);
	memset(&r->hosts[r->nhosts], 0, sizeof(r->hosts[r->nhosts]));
	r->hosts[r->nhosts].api_first = r->napis;
	l->refs[r->nhosts] = (struct reg_host_refs){.cli = l->ncli_refs, .srv = l->nsrv_refs};
	r->nhosts++;
	l->seen = 0;
	l->nhost_heis = 0;
}

static void
reg_host_end(struct reg_loader *l)
{
	struct registry *r = l->r;
	struct reg_host *h = &r->hosts[r->nhosts - 1];
	struct reg_host_refs *refs = &l->refs[r->nhosts - 1];

	h->napis = r->napis - h->api_first;
	h->nheis = l->nhost_heis;
	h->heis = reg_alloc(&r->arena, (h->nheis ? h->nheis : 1) * sizeof(*h->heis),
	                    _Alignof(const char *));
	if (h->nheis > 0)
		memcpy(h->heis, l->host_heis, h->nheis * sizeof(*h->heis));
	refs->ncli = l->ncli_refs - refs->cli;
	refs->nsrv = l->nsrv_refs - refs->srv;
}

static void
reg_hei_id_end(struct reg_loader *l)
{
	size_t len;
	const char *id = reg_text(l, &len);
	uint32_t hei;

	if (len == 0) {
		l->refs[l->r->nhosts - 1].empty_hei = true; /* reported in host order, later */
		return;
	}
	hei = reg_hei_get(l, id);
	REG_GROW(l->host_heis, l->nhost_heis, l->hostheicap);
	l->host_heis[l->nhost_heis++] = l->r->heis[hei].id;
}

/* Keeps a credential's sha-256 as written: <binaries> may not have been read yet. */
static void
reg_cred_ref(struct reg_loader *l, const struct xml_el *el, bool client)
{
	const char *sha = reg_attr(l, el, "sha-256");
	const char *copy = sha != NULL ? reg_strndup(&l->scratch, sha, strlen(sha)) : NULL;

	if (client) {
		REG_GROW(l->cli_refs, l->ncli_refs, l->clicap);
		l->cli_refs[l->ncli_refs++] = copy;
	} else {
		REG_GROW(l->srv_refs, l->nsrv_refs, l->srvcap);
		l->srv_refs[l->nsrv_refs++] = copy;
	}
}

/*
 * Resolves shas[first .. first + n) of one host into key indices (every
 * one must be in <binaries>), without duplicates, and flags the keys.
 */
static int
reg_resolve_creds(struct reg_loader *l, size_t host, bool client, const char *const *shas,
                  size_t first, size_t n, uint32_t **out, size_t *nout)
{
	struct registry *r = l->r;
	uint32_t k, *list = reg_alloc(&r->arena, (n ? n : 1) * sizeof(*list), _Alignof(uint32_t));
	const char *sha;
	size_t i, j;

	*out = list;
	*nout = 0;
	for (i = 0; i < n; i++) {
		sha = shas[first + i];
		k = reg_key_index(r, sha);
		if (k == REG_NONE)
			return reg_fail(l, REG_ERR_HOSTS,
			                "host index %zu: %s key %s is not in binaries", host,
			                client ? "client" : "server", sha != NULL ? sha : "(none)");
		for (j = 0; j < *nout && list[j] != k; j++)
			;
		if (j == *nout)
			list[(*nout)++] = k;
		if (client)
			r->keys[k].pub.client = true;
		else
			r->keys[k].pub.server = true;
	}
	return 0;
}

static int
reg_resolve_hosts(struct reg_loader *l)
{
	struct registry *r = l->r;
	const struct reg_host_refs *f;
	struct reg_host *h;
	size_t i;

	for (i = 0; i < r->nhosts; i++) {
		f = &l->refs[i];
		h = &r->hosts[i];
		if (f->empty_hei)
			return reg_fail(l, REG_ERR_HOSTS, "host index %zu: empty hei-id", i);
		if (reg_resolve_creds(l, i, true, l->cli_refs, f->cli, f->ncli, &h->client,
		                      &h->nclient) == -1 ||
		    reg_resolve_creds(l, i, false, l->srv_refs, f->srv, f->nsrv, &h->server,
		                      &h->nserver) == -1)
			return -1;
	}
	return 0;
}

/* ---- loading: what each element is ---- */

static bool
reg_is(const char *ns, const char *name, const char *want_ns, const char *want)
{
	return strcmp(name, want) == 0 && strcmp(ns, want_ns) == 0;
}

/* True for the first once-only child of the current host (see REG_SEEN_*). */
static bool
reg_first(struct reg_loader *l, unsigned what)
{
	bool first = (l->seen & what) == 0;

	l->seen |= what;
	return first;
}

static enum reg_kind
reg_root_kind(struct reg_loader *l, const char *ns, const char *name)
{
	l->seen_root = true;
	if (reg_is(ns, name, REGISTRY_NS, "catalogue"))
		return REG_CATALOGUE;
	reg_fail(l, REG_ERR_ROOT, "root element is {%s}%s, expected {%s}catalogue", ns, name,
	         REGISTRY_NS);
	return REG_SKIP;
}

static enum reg_kind
reg_catalogue_child_kind(const char *name)
{
	if (strcmp(name, "host") == 0)
		return REG_HOST;
	if (strcmp(name, "institutions") == 0)
		return REG_INSTITUTIONS;
	if (strcmp(name, "binaries") == 0)
		return REG_BINARIES;
	return REG_SKIP;
}

static enum reg_kind
reg_host_child_kind(struct reg_loader *l, const char *name)
{
	if (strcmp(name, "apis-implemented") == 0)
		return reg_first(l, REG_SEEN_APIS) ? REG_APIS : REG_SKIP;
	if (strcmp(name, "institutions-covered") == 0)
		return reg_first(l, REG_SEEN_COVERED) ? REG_COVERED : REG_SKIP;
	if (strcmp(name, "client-credentials-in-use") == 0)
		return reg_first(l, REG_SEEN_CLI) ? REG_CLI_CREDS : REG_SKIP;
	if (strcmp(name, "server-credentials-in-use") == 0)
		return reg_first(l, REG_SEEN_SRV) ? REG_SRV_CREDS : REG_SKIP;
	return REG_SKIP;
}

/* Children of an API entry are known by their local name, whatever their namespace. */
static enum reg_kind
reg_api_child_kind(const char *name)
{
	if (reg_is_url_name(name))
		return REG_API_URL;
	if (strncmp(name, "max-", 4) == 0)
		return REG_API_LIMIT;
	if (strcmp(name, "http-security") == 0)
		return REG_API_SEC;
	return REG_SKIP;
}

static enum reg_kind
reg_hei_child_kind(const struct reg_loader *l, const char *name)
{
	if (l->hei == REG_NONE)
		return REG_SKIP;
	if (strcmp(name, "other-id") == 0)
		return REG_OTHER_ID;
	if (strcmp(name, "name") == 0)
		return REG_NAME;
	return REG_SKIP;
}

/* The kind of an element, from its parent's kind, its namespace and its local name. */
static enum reg_kind
reg_child_kind(struct reg_loader *l, enum reg_kind parent, const char *ns, const char *name)
{
	bool reg = strcmp(ns, REGISTRY_NS) == 0;

	switch (parent) {
	case REG_CATALOGUE:
		return reg ? reg_catalogue_child_kind(name) : REG_SKIP;
	case REG_HOST:
		return reg ? reg_host_child_kind(l, name) : REG_SKIP;
	case REG_APIS:
		return REG_API;
	case REG_API:
		return reg_api_child_kind(name);
	case REG_API_SEC:
		if (reg_is(ns, name, REG_NS_SEC, "client-auth-methods"))
			return REG_SEC_CLI;
		return reg_is(ns, name, REG_NS_SEC, "server-auth-methods") ? REG_SEC_SRV : REG_SKIP;
	case REG_SEC_CLI:
		return reg_is(ns, name, REG_NS_CLI_HTTPSIG, "httpsig") ? REG_CLI_HTTPSIG : REG_SKIP;
	case REG_SEC_SRV:
		return reg_is(ns, name, REG_NS_SRV_HTTPSIG, "httpsig") ? REG_SRV_HTTPSIG : REG_SKIP;
	case REG_COVERED:
		return reg && strcmp(name, "hei-id") == 0 ? REG_HEI_ID : REG_SKIP;
	case REG_CLI_CREDS:
		return reg && strcmp(name, "rsa-public-key") == 0 ? REG_CLI_KEY : REG_SKIP;
	case REG_SRV_CREDS:
		return reg && strcmp(name, "rsa-public-key") == 0 ? REG_SRV_KEY : REG_SKIP;
	case REG_INSTITUTIONS:
		return reg && strcmp(name, "hei") == 0 ? REG_HEI : REG_SKIP;
	case REG_HEI:
		return reg ? reg_hei_child_kind(l, name) : REG_SKIP;
	case REG_BINARIES:
		return reg && strcmp(name, "rsa-public-key") == 0 ? REG_BIN_KEY : REG_SKIP;
	default:
		return REG_SKIP;
	}
}

/* ---- loading: what is done when an element opens and closes ---- */

static void
reg_begin(struct reg_loader *l, enum reg_kind kind, const char *ns, const char *name,
          const struct xml_el *el)
{
	switch (kind) {
	case REG_HOST:
		reg_host_begin(l);
		break;
	case REG_API:
		reg_api_begin(l, ns, name, el);
		break;
	case REG_API_URL:
	case REG_API_LIMIT:
		l->child_name = reg_intern(l, name);
		reg_capture(l);
		break;
	case REG_CLI_HTTPSIG:
		reg_cur_api(l)->cliauth_httpsig = true;
		break;
	case REG_SRV_HTTPSIG:
		reg_cur_api(l)->srvauth_httpsig = true;
		break;
	case REG_HEI_ID:
		reg_capture(l);
		break;
	case REG_CLI_KEY:
	case REG_SRV_KEY:
		reg_cred_ref(l, el, kind == REG_CLI_KEY);
		break;
	case REG_HEI:
		reg_hei_begin(l, el);
		break;
	case REG_OTHER_ID:
		reg_other_begin(l, el);
		break;
	case REG_NAME:
		l->name_en = reg_lang_is_en(el);
		reg_capture(l);
		break;
	case REG_BIN_KEY:
		reg_bin_key_begin(l, el);
		break;
	default:
		break;
	}
}

static void
reg_end(struct reg_loader *l, enum reg_kind kind)
{
	switch (kind) {
	case REG_HOST:
		reg_host_end(l);
		break;
	case REG_API_URL:
		reg_url_end(l);
		break;
	case REG_API_LIMIT:
		reg_limit_end(l);
		break;
	case REG_HEI_ID:
		reg_hei_id_end(l);
		break;
	case REG_OTHER_ID:
		reg_other_end(l);
		break;
	case REG_NAME:
		reg_name_end(l);
		break;
	case REG_BIN_KEY:
		reg_bin_key_end(l);
		break;
	default:
		break;
	}
}

static void
reg_on_start(void *user, const char *ns, const char *name, const struct xml_el *el)
{
	struct reg_loader *l = user;
	enum reg_kind kind;

	/* xml_stream stops a document nested deeper than the limit: this cannot fire. */
	if (l->depth == EWP_MAX_XML_DEPTH)
		fatalx("registry: element nesting past the XML limit");
	if (l->depth == 0)
		kind = reg_root_kind(l, ns, name);
	else
		kind = reg_child_kind(l, l->kinds[l->depth - 1], ns, name);
	l->kinds[l->depth++] = kind;
	reg_begin(l, kind, ns, name, el);
}

static void
reg_on_end(void *user)
{
	struct reg_loader *l = user;

	reg_end(l, l->kinds[l->depth - 1]);
	if (l->capture_at == l->depth)
		l->capture_at = 0;
	l->depth--;
}

static void
reg_on_text(void *user, const char *s, size_t len)
{
	struct reg_loader *l = user;

	if (l->capture_at != 0)
		reg_buf_add(&l->text, s, len);
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

/* ---- loading: start to finish ---- */

static uint64_t
reg_seed(void)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)(uintptr_t)&seed ^ (uint64_t)getpid();
	return seed;
}

static const struct xml_stream_cb reg_stream_cb = {reg_on_start, reg_on_end, reg_on_text};

static void
reg_loader_init(struct reg_loader *l, const char *origin, char *err, size_t errlen)
{
	memset(l, 0, sizeof(*l));
	l->r = xcalloc(1, sizeof(*l->r));
	l->r->seed = reg_seed();
	l->origin = origin != NULL ? origin : "catalogue";
	l->err = err;
	l->errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	l->rank = REG_ERR_NONE;
	l->hei = REG_NONE;
	buf_init(&l->text, SIZE_MAX);
	buf_init(&l->attr, SIZE_MAX);
}

static void
reg_loader_free(struct reg_loader *l)
{
	buf_free(&l->text);
	buf_free(&l->attr);
	free(l->refs);
	free(l->cli_refs);
	free(l->srv_refs);
	free(l->host_heis);
	reg_arena_free(&l->scratch);
	reg_map_free(&l->strings);
	free(l->interned);
}

/* Reads the catalogue through `next`, checks what needs all of it, indexes it. */
static struct registry *
reg_load(struct reg_loader *l, xml_next_fn *next, void *ctx)
{
	struct registry *r = l->r;
	char xerr[512];

	if (xml_stream(&reg_stream_cb, l, next, ctx, EWP_MAX_CATALOGUE_BYTES, xerr, sizeof(xerr)) ==
	    -1)
		reg_fail(l, REG_ERR_XML, "%s", xerr);
	else if (!l->seen_root)
		reg_fail(l, REG_ERR_ROOT, "no root element");
	if (r->nhosts == 0)
		reg_fail(l, REG_ERR_NO_HOST, "catalogue lists no host");
	if (l->rank == REG_ERR_NONE)
		reg_resolve_hosts(l);
	reg_loader_free(l);
	if (l->rank != REG_ERR_NONE) {
		registry_free(r);
		return NULL;
	}
	reg_shrink(r);
	reg_link_apis(r);
	reg_index_apis(r);
	reg_index_client_heis(r);
	reg_index_urls(r);
	/* Hand back what loading freed (grown arrays, libxml2's buffers) to the system. */
	malloc_trim(0);
	return r;
}

struct reg_mem {
	const char *data;
	size_t len;
};

/* The whole buffer as one piece: xml_stream copies what libxml2 asks for. */
static ssize_t
reg_next_mem(void *ctx, const char **data)
{
	struct reg_mem *m = ctx;
	size_t n = m->len;

	*data = m->data;
	m->data += n;
	m->len = 0;
	return (ssize_t)n;
}

struct registry *
registry_load_mem(const char *data, size_t len, const char *origin, char *err, size_t errlen)
{
	struct reg_loader l;
	struct reg_mem m = {data, len};

	reg_loader_init(&l, origin, err, errlen);
	if (len > EWP_MAX_CATALOGUE_BYTES) {
		reg_fail(&l, REG_ERR_XML, "document too large (%zu bytes, limit %zu)", len,
		         (size_t)EWP_MAX_CATALOGUE_BYTES);
		m.len = 0;
	}
	return reg_load(&l, reg_next_mem, &m);
}

struct reg_file {
	struct reg_loader *l;
	int fd;
	size_t total;
	char buf[REG_READ_BYTES];
};

/* The file a piece at a time, so that it is never held whole; at most the catalogue limit. */
static ssize_t
reg_next_file(void *ctx, const char **data)
{
	struct reg_file *f = ctx;
	ssize_t n;

	if (f->l->rank == REG_ERR_XML)
		return -1; /* refused before it was read (see registry_load_file) */
	do
		n = read(f->fd, f->buf, sizeof(f->buf));
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return reg_fail(f->l, REG_ERR_XML, "%s", strerror(errno));
	f->total += (size_t)n;
	if (f->total > EWP_MAX_CATALOGUE_BYTES)
		return reg_fail(f->l, REG_ERR_XML, "file larger than the catalogue limit");
	*data = f->buf;
	return n;
}

struct registry *
registry_load_file(const char *path, char *err, size_t errlen)
{
	struct reg_loader l;
	struct reg_file *f;
	struct registry *r;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	reg_loader_init(&l, path, err, errlen);
	f = xcalloc(1, sizeof(*f));
	f->l = &l;
	f->fd = fd;
	/* A regular file too large is refused before any of it is parsed. */
	if (fstat(fd, &st) == 0 && st.st_size > (off_t)EWP_MAX_CATALOGUE_BYTES)
		reg_fail(&l, REG_ERR_XML, "file larger than the catalogue limit");
	r = reg_load(&l, reg_next_file, f);
	free(f);
	close(fd);
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
	return i != REG_NONE ? r->heis[r->others[i].hei].id : NULL;
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
