/*
 * sync.h - institution sync: each partner HEI of the catalogue is asked
 * for its institution (Institutions v2) and its units (OUnits v2), and
 * what it says is written into the SMILE core, one transaction per
 * partner, so a partner that fails in any way changes nothing.
 *
 * Partners are the HEIs of the cached catalogue that implement
 * Institutions, other than our own and the EWP validator's. Before them,
 * SMILE institutions known only by their Erasmus code get their SCHAC id
 * from the catalogue. Every exchange goes to ewp.message_log; the outcome
 * of each partner to ewp.partner_syncs (last attempt, success, error).
 *
 * Blocking (its own libpq connection and event loop): run it from ewpctl
 * or from the child process ewpd forks on [sync] interval. One run at a
 * time per database (a PostgreSQL advisory lock).
 */
#ifndef SYNC_H
#define SYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

struct sync_outcome {
	const char *hei_id;
	bool ok;
	size_t nunits;     /* units written (ok) */
	const char *error; /* why it failed (!ok) */
};

typedef void sync_report_cb(const struct sync_outcome *o, void *arg);

struct sync_opts {
	const struct conf *conf; /* our HEI, keys, catalogue cache, message_body_max */
	const char *conninfo;    /* NULL: conf's [database] conninfo */
	const char *schema_dir;  /* NULL: conf's [ewp] schema_dir; answers are checked
	                            against its intake/ schemas (as wide as EWP's own) */
	const char *ca_file;     /* partners' TLS trust anchors; NULL or "": system store */
	long timeout_ms;         /* per request; 0: conf's [sync] timeout */
	const char *const *heis; /* only these partners; none: every partner */
	size_t nheis;
	sync_report_cb *report; /* after each partner; may be NULL */
	void *arg;
};

struct sync_summary {
	size_t ok, failed;
	int schac_filled; /* SMILE institutions that got their SCHAC id */
};

/*
 * 0 once every partner was tried (see summary for failures); -1 with the
 * reason in err when the run could not start: catalogue, key, schema or
 * database unusable, or another sync running on this database.
 */
int sync_institutions_run(const struct sync_opts *o, struct sync_summary *sum, char *err,
                          size_t errlen);

#endif
