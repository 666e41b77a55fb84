/*
 * api_cnr.h - what the change-notification listeners (CNR APIs) share.
 *
 * A partner POSTs the ids of objects it changed; the listener checks the
 * request, queues one deduplicated re-fetch job per distinct id in
 * ewp.jobs (one statement) and answers the empty response document at
 * once. It never calls the partner while the request is open: unknown ids
 * are fine (the re-fetch finds out), only a malformed or unauthorised
 * request gets a 4xx (ewp-notes 5.1, architecture "bad CNR request").
 */
#ifndef API_CNR_H
#define API_CNR_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "api.h"

/* Distinct omobility_id values accepted in one notification (manifest). */
#define API_CNR_MAX_OMOBILITY_IDS 100

struct api_cnr {
	const char *response_root; /* e.g. "omobility-cnr-response" */
	const char *response_ns;   /* its namespace */
	const char *fetch_api;     /* API the re-fetch job calls back: ewp.jobs.api */
	bool sending_hei_param;    /* sending_hei_id is a parameter of the API */
	/* ...that may be left out: then the caller's HEI is taken, as when the
	 * API has none (the Registry validator calls OMobility CNR v1 so) */
	bool sending_hei_optional;
};

/* Checks rq and queues its jobs; `done` (which calls api_cnr_done with the
 * same cnr) finishes it. The request is answered in every case. */
void api_cnr_handle(struct req *rq, const struct api_cnr *cnr,
                    void (*done)(struct req *, PGresult *));
/* Query callback body: the jobs are queued, answer the empty document. */
void api_cnr_done(struct req *rq, PGresult *res, const struct api_cnr *cnr);
/* <name xmlns version><http-security/><url/><max-omobility-ids/></name> */
int api_cnr_manifest(const struct api_entry *e, const struct conf *c,
                     struct buf *out) EWP_MUSTCHECK;
/* Whether hei is one of the EWP Registry validator's fictitious HEIs. */
bool api_cnr_validator_hei(const char *hei);

#endif
