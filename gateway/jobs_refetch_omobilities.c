/*
 * jobs_refetch_omobilities.c - refetch handler "omobilities": a partner
 * told us (OMobility CNR) or the re-sync found that one of its
 * mobilities changed; we call its Outgoing Mobilities v3 get with that
 * omobility_id and store the answer in the SMILE core with
 * ewp.omobility_store() (sql/0007_omobilities_receiving.sql), which
 * upserts smile.mobility and the incoming registration in one
 * transaction. Also the call machinery shared with the index re-sync
 * (jobs_omobilities.h).
 *
 * The request: POST get-url with sending_hei_id (the CNR's, else the
 * job's HEI; OMobilities v3 no longer needs it, servers ignore it) and
 * omobility_id. What the answer becomes:
 *   created / updated / unchanged / gone / absent   success
 *   not-ours (the receiving HEI is not us)          cancelled, nothing stored
 *   refused data (SQLSTATE EW001: another sending HEI than the partner,
 *   an id or name the core cannot hold; SQLSTATE classes 22, 23)  rejected, nothing stored
 *   any other database error                        retry
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "daemon.h"
#include "db.h"
#include "form.h"
#include "httpc.h"
#include "jobs.h"
#include "jobs_call.h"
#include "jobs_omobilities.h"
#include "log.h"
#include "xmalloc.h"
#include "xml.h"

#define OMOB_ERR_LEN 1800

static void
omob_done_cb(const struct jobs_call_answer *a, void *arg)
{
	struct omob_call *c = arg;
	struct jobs_run *run = c->run;

	if (a->outcome != JOBS_SUCCESS) {
		omob_call_free(c);
		jobs_done(run, a->outcome, a->http_status, a->error);
		return;
	}
	c->got(c, a->doc, a->res->body, a->res->body_len);
}

void
omob_call_start(struct jobs_run *run, const char *url_name, const char *form, const char *xsd_name,
                size_t max_response, omob_got_cb *got, void *arg)
{
	struct ewpd *d = jobs_run_daemon(run);
	struct omob_call *c;
	enum jobs_outcome o;
	char err[512] = "", msg[700];

	if (d->snap != NULL && d->db == NULL) {
		free(arg);
		jobs_done(run, JOBS_RETRY, 0, "no database");
		return;
	}
	struct jobs_call_spec s = {
	    .ns = {OMOB_ENTRY_NS},
	    .url_name = url_name,
	    .body = form,
	    .max_response = max_response,
	    .xsd = xsd_name,
	};
	c = xcalloc(1, sizeof(*c));
	c->run = run;
	c->arg = arg;
	c->got = got;
	jobs_run_set_data(run, c);
	if (jobs_call_start(&c->call, run, &s, omob_done_cb, c, &o, err, sizeof(err)) == -1) {
		if (o == JOBS_NO_API)
			snprintf(msg, sizeof(msg), "no Outgoing Mobilities v3 %s to call: %s",
			         url_name, err);
		omob_call_free(c);
		jobs_done(run, o, 0, o == JOBS_NO_API ? msg : err);
	}
}

void
omob_call_free(struct omob_call *c)
{
	if (c == NULL)
		return;
	jobs_run_set_data(c->run, NULL);
	jobs_call_reset(&c->call);
	if (c->q)
		db_query_cancel(c->q);
	free(c->arg);
	free(c);
}

void
omob_call_cancel(struct jobs_run *run)
{
	omob_call_free(jobs_run_data(run));
}

/* ---- the refetch handler ---- */

/*
 * $1 partner, $2 omobility_id, $3 payload: the sending HEIs the answer may
 * name are the partner, the CNR's sending_hei_id, and when the CNR named
 * none (OMobility CNR v2) the notifier's HEIs; $4 the document, $5 the
 * partner's name in the catalogue.
 */
static const char store_sql[] =
    "SELECT ewp.omobility_store($1, $2,"
    " array_remove(ARRAY[$1::text, $3::jsonb ->> 'sending_hei_id'] ||"
    "  CASE WHEN jsonb_typeof($3::jsonb -> 'sending_hei_id') = 'string' THEN ARRAY[]::text[]"
    "  ELSE ARRAY(SELECT jsonb_array_elements_text(CASE jsonb_typeof($3::jsonb ->"
    "   'notifier_hei_ids') WHEN 'array' THEN $3::jsonb -> 'notifier_hei_ids' ELSE '[]' END))"
    "  END, NULL),"
    " xmlparse(DOCUMENT $4::text), $5)";

static void
refetch_stored_cb(PGresult *res, const char *err, void *arg)
{
	struct omob_call *c = arg;
	struct jobs_run *run = c->run;
	const struct jobs_job *job = jobs_run_job(run);
	char msg[OMOB_ERR_LEN];
	const char *what;

	c->q = NULL;
	if (err != NULL) {
		/*
		 * EW001, data exceptions (22) and CHECK / NOT NULL violations:
		 * the partner's data, final. Anything else (a unique violation
		 * racing another fetch, a lost connection...) is tried again.
		 */
		enum jobs_outcome o = db_err_is(err, "EW001") || db_err_is(err, "22") ||
		                              db_err_is(err, "23514") || db_err_is(err, "23502")
		                          ? JOBS_REJECTED
		                          : JOBS_RETRY;

		snprintf(msg, sizeof(msg), "%s: %s",
		         o == JOBS_REJECTED ? "not stored, the answer was refused" : "not stored",
		         err);
		omob_call_free(c);
		jobs_done(run, o, 200, msg);
		return;
	}
	what = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
	log_info("jobs: job %lld: omobility %s of %s: %s", job->id, job->dedupe_key, job->hei_id,
	         what);
	if (strcmp(what, "not-ours") == 0) {
		omob_call_free(c);
		jobs_done(run, JOBS_CANCELLED, 200,
		          "the mobility's receiving HEI is not our institution: not stored");
		return;
	}
	omob_call_free(c);
	jobs_done(run, JOBS_SUCCESS, 200, NULL);
}

static void
refetch_got(struct omob_call *c, xmlDocPtr doc, const char *body, size_t len)
{
	const struct jobs_job *job = jobs_run_job(c->run);
	struct ewpd *d = jobs_run_daemon(c->run);
	const char *name = registry_hei_name(c->call.snap->reg, job->hei_id);
	char *utf8;
	size_t n;

	(void)body;
	(void)len;
	/* the document as UTF-8, whatever encoding the partner used */
	xml_dump(doc, &utf8, &n);
	c->q =
	    db_query(d->db, store_sql, 5,
	             (const char *const[]){job->hei_id, job->dedupe_key, job->payload, utf8, name},
	             refetch_stored_cb, c);
	xmlFree(utf8);
}

void
jobs_refetch_omobilities_start(struct jobs_run *run)
{
	const struct jobs_job *job = jobs_run_job(run);
	struct form f;
	struct buf b;
	const char *sending = NULL;
	char err[128];

	if (form_parse(job->form, strlen(job->form), &f, err, sizeof(err)) == 0)
		sending = form_get(&f, "sending_hei_id");
	buf_init(&b, 4096);
	if (jobs_call_form_add(&b, "sending_hei_id", sending ? sending : job->hei_id) == -1 ||
	    jobs_call_form_add(&b, "omobility_id", job->dedupe_key) == -1) {
		form_free(&f);
		buf_free(&b);
		jobs_done(run, JOBS_CANCELLED, 0, "omobility_id too large for a request");
		return;
	}
	form_free(&f);
	omob_call_start(run, "get-url", buf_cstr(&b), "intake/omobilities-get-response.xsd",
	                OMOB_GET_MAX_RESPONSE, refetch_got, NULL);
	buf_free(&b);
}
