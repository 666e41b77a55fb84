/*
 * worker.h - a worker process: one libevent loop serving HTTP.
 *
 * The assets of a configuration (the parsed file, our two keys, the TLS
 * context, the manifest and the factsheet) are loaded together by worker_assets_load, so
 * that the supervisor can check a new configuration exactly as a worker
 * will apply it, and a reload swaps all of them or none.
 */
#ifndef WORKER_H
#define WORKER_H

#include <openssl/ssl.h>

#include "buf.h"
#include "conf.h"
#include "keys.h"
#include "metrics.h"
#include "nonce.h"

struct factsheet;

struct worker_assets {
	struct conf *conf;
	struct keys_priv *client_key;
	struct keys_priv *server_key;
	SSL_CTX *tls;
	struct buf manifest;
	struct factsheet *factsheet; /* NULL when [ewp] factsheet is not set */
};

/*
 * Loads and checks everything a configuration file needs. When `running`
 * is given, settings that need a restart keep their running values.
 */
int worker_assets_load(const char *path, const struct conf *running, struct worker_assets *a,
                       char *err, size_t errlen) EWP_MUSTCHECK;
void worker_assets_free(struct worker_assets *a);

/* Runs a worker until it is told to stop; returns the exit status. */
int worker_run(struct worker_assets *a, struct metrics *m, struct nonce_table *n, int id);

#endif
