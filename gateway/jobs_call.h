/*
 * jobs_call.h - the signed exchange of a job with a partner, shared by
 * the job kinds that call partners (jobs_cnr.c, jobs_update.c, the
 * refetch and index handlers).
 *
 * jobs_call_start() finds the partner's endpoint in the cached catalogue
 * (the first of the spec's manifest-entry namespaces the partner
 * publishes, e.g. newest version first), POSTs the body signed with our
 * client key and, when the answer comes, judges it:
 *   transport error (timeout, connection, TLS...)        retry
 *   4xx                                                  rejected, with the
 *                                                        partner's developer-message
 *   response signature refused                           retry
 *   another status than 200 (any 2xx when any_2xx)       retry
 *   with an intake schema: our schema cannot be loaded,
 *   the body is not XML or does not match it             retry
 *   else                                                 success
 * (or the spec's own judge does), writes the exchange to the message log
 * with the job's id (and the schema verdict), then hands the verdict to
 * the kind's callback, which ends the job (jobs_done) or goes on (e.g.
 * stores the document).
 *
 * A struct jobs_call is embedded in the kind's own state (zeroed); the
 * kind keeps that state as the run's data and calls jobs_call_reset()
 * when it frees it (cancel included).
 */
#ifndef JOBS_CALL_H
#define JOBS_CALL_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "buf.h"
#include "ewpd.h"
#include "jobs.h"
#include "msglog.h"

struct httpc_req;
struct httpc_result;
struct snap;
struct xsd;

#define JOBS_CALL_MAX_NS  3
#define JOBS_CALL_ERR_LEN 1800 /* bytes of an error handed to the callback */
#define JOBS_CALL_MAX_DEV 1200 /* bytes of a partner's developer-message quoted */

/*
 * Judges an answer in place of the default rules: the outcome, and the
 * reason in err (left "" on success). arg is the callback's.
 */
typedef enum jobs_outcome jobs_call_judge_fn(const struct httpc_result *res, void *arg, char *err,
                                             size_t errlen);

struct jobs_call_spec {
	/* manifest-entry namespaces, tried in order (newest first); unused NULL */
	const char *ns[JOBS_CALL_MAX_NS];
	const char *url_name;     /* the endpoint: "url", "get-url", "update-url"... */
	const char *hei_id;       /* whose endpoint; NULL: the job's HEI */
	const char *body;         /* POSTed, copied */
	const char *content_type; /* NULL: application/x-www-form-urlencoded */
	size_t max_response;
	bool any_2xx; /* every 2xx is good (else only 200) */
	/*
	 * Our intake schema, relative to [ewp] schema_dir; NULL: the body is
	 * not checked. xsd_label names it in errors (NULL: xsd). Both lent
	 * until the call ends (string literals).
	 */
	const char *xsd;
	const char *xsd_label;
	jobs_call_judge_fn *judge; /* NULL: the rules above */
};

/* What the callback is told; everything lent during the callback only. */
struct jobs_call_answer {
	enum jobs_outcome outcome; /* JOBS_SUCCESS: a good answer */
	int http_status;           /* the response's, 0 when none came */
	const char *error;         /* why not, NULL on success */
	xmlDocPtr doc;             /* success with an xsd: the schema-valid document */
	const struct httpc_result *res;
};

typedef void jobs_call_cb(const struct jobs_call_answer *a, void *arg);

struct jobs_call {
	struct jobs_run *run;
	struct snap *snap;       /* the catalogue the call was made with */
	struct msglog_entry log; /* log.started: when the request was sent */
	/* private */
	struct httpc_req *req;
	jobs_call_cb *cb;
	void *arg;
	jobs_call_judge_fn *judge;
	const char *xsd, *xsd_label;
	size_t max_response;
	bool any_2xx;
	const char *partner[1];
	char api_name[64], api_version[32];
};

/*
 * Starts the call (c zeroed or reset). 0: cb(answer, arg) runs later,
 * exactly once, unless jobs_call_reset() comes first. -1: nothing was
 * sent, *o says how to end the job (JOBS_RETRY: no catalogue loaded yet,
 * or the request could not start; JOBS_NO_API: the partner publishes
 * none of the namespaces with url_name: err is then httpc_endpoint's
 * reason for the last one) and err why.
 */
int jobs_call_start(struct jobs_call *c, struct jobs_run *run, const struct jobs_call_spec *s,
                    jobs_call_cb *cb, void *arg, enum jobs_outcome *o, char *err,
                    size_t errlen) EWP_MUSTCHECK;
/* Cancels the request in flight (cb not called) and drops the catalogue. */
void jobs_call_reset(struct jobs_call *c);

/*
 * Our intake schema schema_dir/name, compiled once per process and path
 * (schema_dir may change on reload: a new path is compiled anew); NULL
 * with err when it cannot be loaded.
 */
struct xsd *jobs_call_xsd(const char *schema_dir, const char *name, char *err, size_t errlen);

/* "name=value" URL-encoded, appended to b with '&' when b is not empty. */
int jobs_call_form_add(struct buf *b, const char *name, const char *value) EWP_MUSTCHECK;

/*
 * Whether the partner refused the request as a replay of its X-Request-Id
 * (a 400 whose developer-message says so). It happens when our HTTP client
 * resends a request on a fresh connection after the first one died with no
 * answer, the partner having recorded the id meanwhile: the next attempt is
 * signed again with a new id, so such a 400 is retried, never final.
 */
bool jobs_call_replay_refused(const struct jobs_call *c, const struct httpc_result *res);

#endif
