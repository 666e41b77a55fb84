/*
 * jobs_resync.c - the nightly OMobilities re-sync of a worker. Every
 * RESYNC_CHECK_SECS (and a few seconds after start), once [mobility]
 * sync_hour has passed (UTC), each worker offers the day's run to
 * ewp.omobilities_nightly_run() with the partners of its catalogue that
 * publish Outgoing Mobilities v3 (our HEI and the validator's left out);
 * the first offer of the UTC day, from any worker of any node, queues one
 * ('in', 'index') job per partner, the others find the day taken. The
 * index jobs (jobs_index_omobilities.c) ask for what changed since the
 * partner's previous listing. sync_hour = -1 turns it off; `ewpctl
 * mobility sync` queues the same jobs on demand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "buf.h"
#include "daemon.h"
#include "db.h"
#include "jobs.h"
#include "jobs_omobilities.h"
#include "json.h"
#include "log.h"
#include "xmalloc.h"

#define RESYNC_CHECK_SECS 600
#define RESYNC_FIRST_SECS 3
#define RESYNC_MAX_LIST   (16 * 1024 * 1024)

struct jobs_resync {
	struct ewpd *d;
	struct event *timer;
	struct db_query *q;
};

static const char nightly_sql[] =
    "SELECT ewp.omobilities_nightly_run(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)),"
    " $2::int)";

static void
resync_arm(struct jobs_resync *r, int secs)
{
	struct timeval tv = {.tv_sec = secs};

	evtimer_add(r->timer, &tv);
}

static void
resync_done_cb(PGresult *res, const char *err, void *arg)
{
	struct jobs_resync *r = arg;

	r->q = NULL;
	if (err != NULL)
		log_warnx("jobs: nightly OMobilities re-sync not offered: %s", err);
	else if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		log_info("jobs: nightly OMobilities re-sync: %s index job(s) queued",
		         PQgetvalue(res, 0, 0));
	resync_arm(r, RESYNC_CHECK_SECS);
}

/* The partners to list, as a JSON array; -1 when too many for the buffer. */
static int
resync_partners(const struct ewpd *d, struct buf *b)
{
	const struct registry *reg = d->snap->reg;
	size_t n = 0;

	if (buf_addstr(b, "[") == -1)
		return -1;
	for (size_t i = 0; i < registry_hei_count(reg); i++) {
		const char *hei = registry_hei_at(reg, i);

		if (strcasecmp(hei, d->conf->hei_id) == 0 || jobs_validator_hei(hei) ||
		    registry_api(reg, hei, OMOB_ENTRY_NS) == NULL)
			continue;
		if ((n++ ? buf_addstr(b, ",") : 0) || json_str(b, hei))
			return -1;
	}
	return buf_addstr(b, "]");
}

static void
resync_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct jobs_resync *r = arg;
	struct ewpd *d = r->d;
	char hour[8];
	struct buf b;

	(void)fd;
	(void)ev;
	if (d->conf->mobility_sync_hour < 0 || d->snap == NULL || d->draining) {
		resync_arm(r, RESYNC_CHECK_SECS);
		return;
	}
	buf_init(&b, RESYNC_MAX_LIST);
	if (resync_partners(d, &b) == -1) {
		log_warnx("jobs: nightly OMobilities re-sync: too many partners");
		buf_free(&b);
		resync_arm(r, RESYNC_CHECK_SECS);
		return;
	}
	snprintf(hour, sizeof(hour), "%d", d->conf->mobility_sync_hour);
	r->q = db_query(d->db, nightly_sql, 2, (const char *const[]){buf_cstr(&b), hour},
	                resync_done_cb, r);
	buf_free(&b);
}

struct jobs_resync *
jobs_resync_new(struct ewpd *d)
{
	struct jobs_resync *r;

	if (d->db == NULL)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->d = d;
	if ((r->timer = evtimer_new(d->base, resync_timer_cb, r)) == NULL)
		fatalx("jobs: evtimer_new failed");
	resync_arm(r, RESYNC_FIRST_SECS);
	return r;
}

void
jobs_resync_free(struct jobs_resync *r)
{
	if (r == NULL)
		return;
	if (r->q)
		db_query_cancel(r->q);
	event_free(r->timer);
	free(r);
}
