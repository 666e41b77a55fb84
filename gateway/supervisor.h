/*
 * supervisor.h - the parent process of ewpd.
 *
 * It serves no request, so it may block: it fetches the registry
 * catalogue (validating it before anyone uses it), keeps the last good
 * copy on disk, starts the workers and restarts any that dies, and turns
 * signals into actions: SIGHUP checks the new configuration and reloads
 * every worker, SIGTERM drains them and exits.
 */
#ifndef SUPERVISOR_H
#define SUPERVISOR_H

#include "worker.h"

/* Takes over the assets; returns the process exit status. */
int supervisor_run(struct worker_assets *a);
/*
 * Fetches the catalogue once and stores it in the cache file if it is
 * valid; for `ewpd -n` and start-up. 0 when a usable catalogue (fresh or
 * cached) is in the cache file.
 */
int supervisor_check_registry(const struct conf *c, char *msg, size_t msglen);

#endif
