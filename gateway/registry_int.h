/*
 * registry_int.h - internal to the registry module; not part of its
 * contract.
 *
 * Shared by registry.c, registry_map.c, registry_load.c and
 * registry_elems.c, and included by nothing else: other code uses
 * registry.h only. Everything declared here may change with the module.
 */
#ifndef REGISTRY_INT_H
#define REGISTRY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "codec.h"
#include "ewpd.h"
#include "keys.h"
#include "registry.h"
#include "xmalloc.h"
#include "xml.h"

#define REG_NONE      UINT32_MAX
#define REG_MAX_ITEMS (UINT32_MAX - 1) /* table values are 32-bit indices */

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

/* XML white space. */
static inline bool
reg_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

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
	bool shared; /* another HEI claims it too: it identifies nobody */
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

/* ---- registry_map.c: arena, hashing, tables and their keys ---- */

/* size bytes aligned to align (a power of two) from the arena; never NULL. */
void *reg_alloc(struct reg_arena *a, size_t size, size_t align);
void reg_arena_free(struct reg_arena *a);
char *reg_strndup(struct reg_arena *a, const char *s, size_t n);
/* Hash of k1, or of the pair (k1, k2) when k2 is not NULL. */
uint64_t reg_hash(uint64_t seed, const char *k1, const char *k2);
/* The entry keyed (k1, k2) whose hash is `hash`, or REG_NONE. */
uint32_t reg_map_find(const struct reg_map *m, reg_eq_fn *eq, const void *ctx, uint64_t hash,
                      const char *k1, const char *k2);
/* Adds an entry whose key is known to be absent. */
void reg_map_add(struct reg_map *m, uint64_t hash, uint32_t val);
void reg_map_free(struct reg_map *m);
/* The comparators of key_map, hei_map and other_map (ctx: the snapshot). */
bool reg_eq_key(const void *ctx, uint32_t val, const char *keyid, const char *unused);
bool reg_eq_hei(const void *ctx, uint32_t val, const char *id, const char *unused);
bool reg_eq_other(const void *ctx, uint32_t val, const char *type, const char *value);
/* Lower-case copy of a 64-hex-digit keyId into out; false when malformed. */
bool reg_keyid_norm(const char *in, char out[CODEC_SHA256_HEX_LEN + 1]);
/* The key_map hash of a keyId normalised by reg_keyid_norm. */
uint64_t reg_keyid_hash(uint64_t seed, const char *norm);
/* Index in keys[] of a keyId in any case, or REG_NONE. */
uint32_t reg_key_index(const struct registry *r, const char *keyid);
/* other-id type and value as other_map keys them (out may be in). */
const char *reg_other_type(const char *type);
void reg_other_value(const char *type, const char *in, char *out);

/* ---- registry_load.c: the loader ---- */

/* Records a fault unless one that takes precedence is there already; returns -1. */
int reg_fail(struct reg_loader *l, enum reg_rank rank, const char *fmt, ...) EWP_PRINTF(3, 4);

/* ---- registry_elems.c: what the loader does with each kind of element ---- */

/* Appends to a load-time buffer (no ceiling of its own: the document has one). */
void reg_buf_add(struct buf *b, const char *s, size_t n);
/* Called as an element of each kind opens and closes. */
void reg_begin(struct reg_loader *l, enum reg_kind kind, const char *ns, const char *name,
               const struct xml_el *el);
void reg_end(struct reg_loader *l, enum reg_kind kind);
/* Resolves every host's credentials against <binaries>; 0 or -1 after reg_fail. */
int reg_resolve_hosts(struct reg_loader *l);

/* ---- registry.c: the derived indexes ---- */

/* Makes a fully read and checked snapshot ready for lookups. */
void reg_build_indexes(struct registry *r);

#endif
