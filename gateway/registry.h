/*
 * registry.h - the EWP Registry catalogue: loading, validating and
 * indexing it.
 *
 * A struct registry is an immutable snapshot. It is built from the
 * catalogue bytes, checked (namespace, structure, every key parses, is RSA
 * and matches its sha-256 attribute, every referenced key exists) and only
 * then handed out; callers swap snapshots atomically and free the old one.
 * Every lookup below is a hash-table lookup (O(1) on average).
 */
#ifndef REGISTRY_H
#define REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "ewpd.h"
#include "keys.h"

#define REGISTRY_NS "https://github.com/erasmus-without-paper/ewp-specs-api-registry/tree/stable-v1"

struct registry;

/* One <rsa-public-key> of <binaries>. */
struct registry_key {
	const char *keyid;
	const struct keys_pub *pub;
	bool client; /* listed in some host's client-credentials-in-use */
	bool server; /* listed in some host's server-credentials-in-use */
};

/* One API entry of one host's <apis-implemented>. */
struct registry_api {
	const char *ns;      /* namespace of the manifest entry */
	const char *name;    /* local element name, e.g. "echo" */
	const char *version; /* @version, may be "" */
	size_t host;         /* index of the host serving it */
	/* URL children (local name -> text), e.g. "url", "get-url", "index-url" */
	size_t nurls;
	const char *const *url_names;
	const char *const *url_values;
	/* max-*-ids style limits (local name -> value) */
	size_t nlimits;
	const char *const *limit_names;
	const int *limit_values;
	bool cliauth_httpsig; /* http-security allows httpsig client auth */
	bool srvauth_httpsig; /* http-security allows httpsig server auth */
};

/*
 * Builds a snapshot from catalogue bytes. origin is used in messages.
 * NULL with a reason in err when the catalogue is not acceptable.
 */
struct registry *registry_load_mem(const char *data, size_t len, const char *origin, char *err,
                                   size_t errlen);
struct registry *registry_load_file(const char *path, char *err, size_t errlen);
void registry_free(struct registry *r);

size_t registry_host_count(const struct registry *r);
size_t registry_hei_count(const struct registry *r);
size_t registry_key_count(const struct registry *r);
/* SCHAC id of HEI number i (0 .. registry_hei_count() - 1), catalogue order; lent. */
const char *registry_hei_at(const struct registry *r, size_t i);
/* Institutions covered by host number `host` (0 .. registry_host_count() - 1),
 * catalogue order; lent with the snapshot. */
size_t registry_host_heis(const struct registry *r, size_t host, const char *const **heis);
/* Every API entry of that host's apis-implemented, catalogue order; lent. */
size_t registry_host_apis(const struct registry *r, size_t host, const struct registry_api **apis);

const struct registry_key *registry_key(const struct registry *r, const char *keyid);
/*
 * HEIs covered by a client key: the union, in catalogue order and with
 * duplicates, of institutions-covered of every host listing keyid as a
 * client credential. Returns the count; *heis is lent with the snapshot.
 */
size_t registry_client_heis(const struct registry *r, const char *keyid, const char *const **heis);
/* True when keyid is a server credential of host index `host`. */
bool registry_host_has_server_key(const struct registry *r, size_t host, const char *keyid);

/* HEI names (first name, preferring English) or NULL when the HEI is unknown. */
const char *registry_hei_name(const struct registry *r, const char *hei_id);
bool registry_hei_known(const struct registry *r, const char *hei_id);
/*
 * SCHAC id for an other-id: type is "erasmus", "pic", "erasmus-charter",
 * "previous-schac" (others as written). Value compared after removing
 * spaces and ignoring case for erasmus codes. NULL when unknown, and
 * when two HEIs of the catalogue claim the value (guessing would attach a
 * partner's data to the wrong institution).
 */
const char *registry_hei_by_other_id(const struct registry *r, const char *type, const char *value);

/*
 * The entry of API `ns` (manifest-entry namespace) on the host covering
 * hei_id, with the highest version when several are listed; NULL if none.
 */
const struct registry_api *registry_api(const struct registry *r, const char *hei_id,
                                        const char *ns);
/* URL of a named endpoint ("url", "get-url", ...) or NULL. */
const char *registry_api_url(const struct registry_api *a, const char *name);
/* Limit by name ("max-hei-ids"); `fallback` when absent (spec: assume 1). */
int registry_api_limit(const struct registry_api *a, const char *name, int fallback);

/*
 * The host serving an endpoint URL (any "url" or "...-url" child of an API entry,
 * compared up to a '?'). 0 and *host set when found, -1 otherwise.
 */
int registry_host_by_url(const struct registry *r, const char *url, size_t *host);

#endif
