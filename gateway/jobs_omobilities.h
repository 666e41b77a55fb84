/*
 * jobs_omobilities.h - the receiving side of nominations: calls to a
 * partner's Outgoing Mobilities v3 API made by jobs (get after a CNR or a
 * re-sync, index for the re-sync), shared by jobs_refetch_omobilities.c
 * and jobs_index_omobilities.c.
 *
 * omob_call_start() makes the call with jobs_call.h: the partner's
 * OMobilities v3 endpoint from the cached catalogue (none: the job ends
 * 'no-cnr-api', the engine's "no such API" state, with a readable error),
 * the form POSTed signed, the answer checked (transport, response
 * signature, status, XML, our intake schema) and the exchange written to
 * the message log with the job's id.
 * Timeouts, connection errors, 5xx, refused signatures, malformed or
 * schema-invalid documents end the job 'retry'; a 4xx ends it
 * 'rejected' with the partner's developer-message. A good answer goes to
 * the caller's `got` callback, which ends the job itself (after storing)
 * and then calls omob_call_free().
 */
#ifndef JOBS_OMOBILITIES_H
#define JOBS_OMOBILITIES_H

#include <libxml/tree.h>

#include "jobs.h"
#include "jobs_call.h"

#define OMOB_ENTRY_NS                                                                              \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/"       \
	"manifest-entry.xsd"
#define OMOB_GET_MAX_RESPONSE   (2 * 1024 * 1024)
#define OMOB_INDEX_MAX_RESPONSE (16 * 1024 * 1024)

struct omob_call;
struct db_query;

/* A schema-valid answer: body (NUL-terminated) and its parsed tree, lent. */
typedef void omob_got_cb(struct omob_call *c, xmlDocPtr doc, const char *body, size_t len);

struct omob_call {
	struct jobs_run *run;
	struct jobs_call call; /* call.snap: the catalogue the call was made with */
	struct db_query *q;    /* the caller's pending query, cancelled with the call */
	void *arg;             /* the caller's */
	/* private */
	omob_got_cb *got;
};

/*
 * Calls endpoint url_name ("get-url", "index-url") of the job's partner
 * with form (copied), validating against schema_dir/xsd_name (a string
 * literal: lent until the call ends). On any failure the job is ended
 * and the call freed; got is called only with a valid document. arg
 * (malloc'ed or NULL) is kept in c->arg and freed with the call, or at
 * once when the call cannot start.
 */
void omob_call_start(struct jobs_run *run, const char *url_name, const char *form,
                     const char *xsd_name, size_t max_response, omob_got_cb *got, void *arg);
/* Frees the call (cancelling its request or query); NULL ok. */
void omob_call_free(struct omob_call *c);
/* The job's cancel(): frees the call kept as the run's data. */
void omob_call_cancel(struct jobs_run *run);

/* The nightly re-sync of a worker (jobs_resync.c); NULL without database. */
struct jobs_resync;
struct ewpd;
struct jobs_resync *jobs_resync_new(struct ewpd *d);
void jobs_resync_free(struct jobs_resync *r);

/* Handlers (jobs_refetch.c's table, jobs_index.c's table). */
void jobs_refetch_omobilities_start(struct jobs_run *run);
void jobs_index_omobilities_start(struct jobs_run *run);

#endif
