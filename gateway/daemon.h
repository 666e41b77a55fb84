/*
 * daemon.h - the context of one ewpd worker process.
 *
 * One struct ewpd per worker, owned by worker.c. Modules receive it as an
 * argument. Everything that changes on reload (configuration, keys,
 * catalogue snapshot, TLS context, manifest) is swapped here as a whole,
 * between two events of the loop, never while a handler runs.
 */
#ifndef DAEMON_H
#define DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "buf.h"
#include "conf.h"
#include "keys.h"
#include "metrics.h"
#include "nonce.h"
#include "registry.h"

struct db_pool;
struct factsheet;
struct jobs;
struct msglog;
struct event_base;
struct server;

/* A catalogue snapshot shared by the requests that use it. */
struct snap {
	struct registry *reg;
	unsigned refs;
};

struct ewpd {
	struct event_base *base;
	struct conf *conf;
	struct keys_priv *client_key;
	struct keys_priv *server_key;
	struct snap *snap;       /* NULL until a catalogue was loaded */
	struct metrics *metrics; /* shared with the other workers */
	struct nonce_table *nonce;
	SSL_CTX *tls; /* NULL when tls = off */
	struct server *server;
	struct db_pool *db;    /* SMILE core; NULL when the conninfo was refused */
	struct msglog *msglog; /* ewp.message_log writer; NULL without database */
	struct jobs *jobs;     /* the job runner (jobs.h); NULL without database */
	struct buf manifest;   /* the Discovery manifest, rebuilt on reload */
	unsigned inflight;     /* requests accepted and not yet answered */
	/* NULL when [ewp] factsheet is not set */
	struct factsheet *factsheet;
	bool draining;
	int worker_id;
};

struct snap *snap_ref(struct snap *s);
void snap_unref(struct snap *s);

#endif
