/*
 * sync_int.h - what the parts of the institution sync share: sync.c runs
 * it, sync_fetch.c asks a partner and reads its answers, sync_store.c
 * writes them into the SMILE core.
 */
#ifndef SYNC_INT_H
#define SYNC_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>
#include <libxml/tree.h>

#include "buf.h"
#include "msglog.h"
#include "registry.h"

struct event_base;
struct httpc;
struct keys_priv;
struct xsd;

#define INST_ENTRY_NS                                                                              \
	"https://github.com/erasmus-without-paper/ewp-specs-api-institutions/blob/stable-v2/"      \
	"manifest-entry.xsd"
#define INST_NS "https://github.com/erasmus-without-paper/ewp-specs-api-institutions/tree/stable-v2"
#define OUNITS_ENTRY_NS                                                                            \
	"https://github.com/erasmus-without-paper/ewp-specs-api-ounits/blob/stable-v2/"            \
	"manifest-entry.xsd"
#define OUNITS_NS "https://github.com/erasmus-without-paper/ewp-specs-api-ounits/tree/stable-v2"
#define XML_NS    "http://www.w3.org/XML/1998/namespace"

#define SYNC_MAX_RESPONSE (16u * 1024 * 1024)
#define SYNC_ERR_LEN      512
#define SYNC_MAX_OUNITS   2000 /* units listed per partner, far above any HEI's */

struct sync {
	struct registry *reg;
	struct keys_priv *key;
	struct event_base *base;
	struct httpc *http;
	struct xsd *inst_xsd, *ou_xsd;
	PGconn *db;
	long timeout_ms;
	size_t body_max;       /* message log: bytes of each body kept */
	long long last_log_id; /* message log row of the last exchange */
};

/* One blocking exchange: the callback checks, parses and logs the answer. */
struct sync_call {
	struct sync *s;
	const char *hei_id; /* the partner called */
	const struct registry_api *api;
	struct xsd *xsd;
	struct msglog_entry log;
	bool done;
	xmlDocPtr doc; /* the verified, schema-valid answer; NULL: err says why */
	char *err;
	size_t errlen;
};

/* What one partner told us. Strings owned (xml_text). */
struct sync_names {
	char **lang, **name;
	size_t n;
};

/* Addresses and contacts as JSON arrays, for jsonb_to_recordset. */
struct sync_extra {
	struct buf addresses, contacts;
};

struct sync_unit {
	char *id, *code, *abbreviation, *parent, *website, *logo, *factsheet;
	struct sync_names names;
	struct sync_extra extra;
};

struct sync_hei {
	char *id, *erasmus, *pic, *abbreviation, *website, *logo, *factsheet;
	struct sync_names names;
	struct sync_extra extra;
	char **ounit_ids;
	size_t nounit_ids;
	size_t nounit_seen;   /* ounit-id elements read, duplicates included */
	bool ounits_overflow; /* more units listed than SYNC_MAX_OUNITS */
	struct sync_unit *units;
	size_t nunits;
};

void sync_hei_free(struct sync_hei *h);
void sync_extra_init(struct sync_extra *x);
/* The JSON array of the objects in b ("[]" when empty). Caller frees. */
char *sync_json_array(const struct buf *b);
/* The <hei> of hei_id in an Institutions answer into h; -1 when absent or too large. */
int sync_read_hei(xmlNode *root, const char *hei_id, struct sync_hei *h);
/* The <ounit>s of an OUnits answer added to h; -1 when too large. */
int sync_read_units(xmlNode *root, struct sync_hei *h);
/* Asks the partner's Institutions and OUnits APIs; 0 with h filled, -1 with err. */
int sync_fetch_partner(struct sync *s, const char *hei_id, struct sync_hei *h, char *err,
                       size_t errlen);
/* Runs a parameterised statement; -1 with the server's message (one line) in err. */
int sync_db_exec(PGconn *db, const char *sql, int n, const char *const *params, PGresult **out,
                 char *err, size_t errlen);
/* The statements prepared on db are gone (the connection is closing). */
void sync_db_forget(PGconn *db);
/* Upserts one partner in the transaction under way. */
int sync_write_partner(struct sync *s, const struct sync_hei *h, char *err, size_t errlen);

#endif
