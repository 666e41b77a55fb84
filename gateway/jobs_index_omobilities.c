/*
 * jobs_index_omobilities.c - index handler "omobilities": lists the
 * mobilities a partner's Outgoing Mobilities v3 index shows us and queues
 * a refetch job for each (ewp.omobilities_index_done(),
 * sql/0007_omobilities_receiving.sql).
 *
 * The payload, written by ewp.omobilities_queue_index(), carries
 * modified_since (the previous successful listing minus ten minutes)
 * unless a full listing was asked for or the partner was never listed. A full listing also queues a
 * refetch of every mobility of that partner we hold and it no longer lists, so that the get's
 * answer sets gone_at. Request: POST index-url with sending_hei_id (the partner), receiving_hei_id
 * (our HEI) and modified_since when given; v3 servers ignore the parameters they do not know.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "db.h"
#include "form.h"
#include "jobs.h"
#include "jobs_int.h"
#include "jobs_omobilities.h"
#include "log.h"
#include "xmalloc.h"
#include "xml.h"

#define INDEX_NS                                                                                   \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/"       \
	"endpoints/index-response.xsd"

/* What the listing keeps until it is recorded. */
struct index_state {
	bool full;        /* no modified_since sent */
	char started[32]; /* when we asked, UTC */
};

static const char done_sql[] =
    "SELECT ewp.omobilities_index_done($1, $2::timestamptz,"
    " ARRAY(SELECT btrim(i.id) FROM XMLTABLE(XMLNAMESPACES('" INDEX_NS "' AS x),"
    "  '/x:omobilities-index-response/x:omobility-id' PASSING xmlparse(DOCUMENT $3::text)"
    "  COLUMNS id text PATH '.') AS i), $4::boolean, $5::bigint)";

static void
index_done_cb(PGresult *res, const char *err, void *arg)
{
	struct omob_call *c = arg;
	struct jobs_run *run = c->run;
	const struct jobs_job *job = jobs_run_job(run);
	char msg[1200];

	c->q = NULL;
	if (err != NULL) {
		snprintf(msg, sizeof(msg), "listing not recorded: %s", err);
		omob_call_free(c);
		jobs_done(run, JOBS_RETRY, 200, msg);
		return;
	}
	log_info("jobs: job %lld: omobilities index of %s: %s refetch job(s) queued", job->id,
	         job->hei_id, PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "?");
	omob_call_free(c);
	jobs_done(run, JOBS_SUCCESS, 200, NULL);
}

static void
index_got(struct omob_call *c, xmlDocPtr doc, const char *body, size_t len)
{
	struct index_state *st = c->arg;
	const struct jobs_job *job = jobs_run_job(c->run);
	struct ewpd *d = jobs_run_daemon(c->run);
	char *utf8, id[32];
	size_t n;

	(void)body;
	(void)len;
	xml_dump(doc, &utf8, &n);
	snprintf(id, sizeof(id), "%lld", job->id);
	c->q = db_query(
	    d->db, done_sql, 5,
	    (const char *const[]){job->hei_id, st->started, utf8, st->full ? "true" : "false", id},
	    index_done_cb, c);
	xmlFree(utf8);
}

void
jobs_index_omobilities_start(struct jobs_run *run)
{
	const struct jobs_job *job = jobs_run_job(run);
	struct ewpd *d = jobs_run_daemon(run);
	struct index_state *st;
	const char *since = NULL;
	struct form f;
	struct buf b;
	char err[128];
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	st = xcalloc(1, sizeof(*st));
	gmtime_r(&now, &tm);
	strftime(st->started, sizeof(st->started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (form_parse(job->form, strlen(job->form), &f, err, sizeof(err)) == 0)
		since = form_get(&f, "modified_since");
	st->full = since == NULL;
	buf_init(&b, 4096);
	rc = jobs_call_form_add(&b, "sending_hei_id", job->hei_id);
	if (rc == 0)
		rc = jobs_call_form_add(&b, "receiving_hei_id", d->conf->hei_id);
	if (rc == 0 && since != NULL)
		rc = jobs_call_form_add(&b, "modified_since", since);
	form_free(&f);
	if (rc == -1) {
		buf_free(&b);
		free(st);
		jobs_done(run, JOBS_CANCELLED, 0, "cannot build the index request");
		return;
	}
	omob_call_start(run, "index-url", buf_cstr(&b), "intake/omobilities-index-response.xsd",
	                OMOB_INDEX_MAX_RESPONSE, index_got, st);
	buf_free(&b);
}
