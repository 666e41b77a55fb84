/*
 * portal_jobs.c - the jobs that need a human, in the staff portal
 * (GET /jobs): outbox and inbox jobs that ended in failure (rejected by
 * the partner, out of attempts, partner without the API), expired, or
 * still pending after failed attempts, with the partner's last error and
 * links to their exchanges in the message log; CSV and text exports.
 *
 * POST /jobs/<id>/retry makes one of them due now through
 * ewp.job_retry() (sql/0018): a job that ended in failure goes back to
 * pending with the UPDATE of `ewpctl jobs retry` (same states, same new
 * delivery window), a pending job waiting out its backoff is due now, as
 * `ewpctl jobs retry --partner` does. The audit row is written in the
 * same transaction; any refusal rolls both back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "daemon.h"
#include "db.h"
#include "portal.h"
#include "portal_log.h"
#include "xmalloc.h"

/* $1 partner, $2 state (failed, expired, retrying), $3 limit, $4 offset. */
static const char jobs_list_sql[] =
    "SELECT j.id, j.direction, j.kind, j.hei_id, j.api, j.dedupe_key, j.status, j.attempts,"
    " CASE WHEN j.status = 'pending' THEN"
    "  to_char(j.next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') END AS next_attempt,"
    " to_char(j.modified_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS changed,"
    " to_char(j.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS created,"
    " j.last_http_status, left(j.last_error, 1000) AS last_error,"
    " (SELECT count(*) FROM ewp.message_log l WHERE l.job_id = j.id) AS exchanges,"
    " j.payload ->> 'cnr_request_id' AS cnr_request_id"
    " FROM ewp.jobs j"
    " WHERE (j.status IN ('rejected', 'failed-max-attempts', 'no-cnr-api', 'expired')"
    "  OR (j.status = 'pending' AND j.attempts > 0))"
    " AND ($1::text IS NULL OR j.hei_id = $1::text)"
    " AND ($2::text IS NULL"
    "  OR ($2 = 'failed' AND j.status IN ('rejected', 'failed-max-attempts', 'no-cnr-api'))"
    "  OR ($2 = 'expired' AND j.status = 'expired')"
    "  OR ($2 = 'retrying' AND j.status = 'pending'))"
    " ORDER BY j.modified_at DESC, j.id DESC LIMIT $3::int OFFSET $4::int";

static const char jobs_retry_sql[] = "SELECT ewp.job_retry($1::bigint, $2::int) AS was";

struct jobs_filters {
	const char *partner, *state, *format;
	long page;
};

static const struct portal_column jobs_export_cols[] = {
    {"id", "log.jobs.col_id"},
    {"direction", "log.col_dir"},
    {"kind", "log.jobs.col_kind"},
    {"hei_id", "log.col_partner"},
    {"api", "log.col_api"},
    {"dedupe_key", "log.jobs.col_object"},
    {"status", "log.jobs.col_status"},
    {"attempts", "log.jobs.col_attempts"},
    {"next_attempt", "log.jobs.col_next"},
    {"changed", "log.jobs.col_changed"},
    {"last_http_status", "log.jobs.col_http"},
    {"last_error", "log.jobs.col_error"},
    {"exchanges", "log.jobs.col_log"},
};

static bool
jobs_filters_read(struct portal *p, struct jobs_filters *f)
{
	memset(f, 0, sizeof(*f));
	if (!plog_text_param(p, "partner", 255, &f->partner) ||
	    !plog_text_param(p, "state", 16, &f->state))
		return false;
	if (f->state && strcmp(f->state, "failed") != 0 && strcmp(f->state, "expired") != 0 &&
	    strcmp(f->state, "retrying") != 0) {
		portal_error(p, 400, T(p, "log.jobs.bad_state"));
		return false;
	}
	f->format = portal_param(p, "format");
	if (plog_blank(f->format))
		f->format = NULL;
	if (!plog_format_ok(f->format)) {
		portal_error(p, 400, T(p, "log.bad_format"));
		return false;
	}
	return (f->page = plog_page_param(p)) > 0;
}

static void
jobs_option(struct portal *p, const char *value, const char *key, const char *current)
{
	bool sel =
	    (current == NULL && value[0] == '\0') || (current && strcmp(current, value) == 0);

	h_fmt(p, "<option value=\"%s\"%s>%s</option>", value, sel ? " selected" : "", T(p, key));
}

static void
jobs_form(struct portal *p, const struct jobs_filters *f)
{
	h_fmt(p,
	      "<form method=\"get\" action=\"/portal/jobs\" class=\"filters\" id=\"jobs-filter\""
	      " role=\"search\" aria-label=\"%s\">",
	      T(p, "log.jobs.filter"));
	h_fmt(p,
	      "<p><label for=\"f-partner\">%s</label><input id=\"f-partner\" name=\"partner\""
	      " type=\"text\" maxlength=\"255\" value=\"%s\"></p>",
	      T(p, "log.partner"), f->partner ? f->partner : "");
	h_fmt(p, "<p><label for=\"f-state\">%s</label><select id=\"f-state\" name=\"state\">",
	      T(p, "log.jobs.state"));
	jobs_option(p, "", "log.jobs.state_all", f->state);
	jobs_option(p, "failed", "log.jobs.state_failed", f->state);
	jobs_option(p, "expired", "log.jobs.state_expired", f->state);
	jobs_option(p, "retrying", "log.jobs.state_retrying", f->state);
	h_fmt(p,
	      "</select></p><p><button type=\"submit\" id=\"jobs-submit\">%s</button></p></form>",
	      T(p, "log.submit"));
}

static void
jobs_list_done(struct portal *p)
{
	struct jobs_filters *f = p->data;
	const struct portal_rows *r = &p->rows[0];
	bool more = r->nrows > PLOG_PAGE_ROWS, can_retry = p->user.privs & PRIV_RETRY;
	int shown = more ? PLOG_PAGE_ROWS : r->nrows;
	struct buf qs;

	if (portal_db_failed(p)) {
		free(f);
		return;
	}
	plog_clean_rows(&p->rows[0]);
	if (f->format) {
		free(f);
		portal_export(p, r, jobs_export_cols,
		              sizeof(jobs_export_cols) / sizeof(jobs_export_cols[0]), "ewp-jobs");
		return;
	}
	buf_init(&qs, 4096);
	plog_qs_add(&qs, "partner", f->partner);
	plog_qs_add(&qs, "state", f->state);
	portal_page_begin(p, "log.jobs.title");
	jobs_form(p, f);
	h_fmt(
	    p,
	    "<p class=\"exports\"><a id=\"export-csv\" href=\"/portal/jobs?%s%sformat=csv\">%s</a> "
	    "<a id=\"export-txt\" href=\"/portal/jobs?%s%sformat=txt\">%s</a></p>",
	    buf_cstr(&qs), qs.len ? "&" : "", T(p, "export.csv"), buf_cstr(&qs), qs.len ? "&" : "",
	    T(p, "export.txt"));
	if (shown == 0) {
		h_fmt(p, "<p id=\"jobs-empty\">%s</p>", T(p, "log.jobs.none"));
	} else {
		h_fmt(p, "<table id=\"jobs\"><caption>%s</caption><thead><tr>",
		      T(p, "log.jobs.caption"));
		h_fmt(p,
		      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
		      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\" "
		      "class=\"num\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
		      "<th scope=\"col\">%s</th>",
		      T(p, "log.jobs.col_id"), T(p, "log.jobs.col_kind"), T(p, "log.col_partner"),
		      T(p, "log.jobs.col_object"), T(p, "log.jobs.col_status"),
		      T(p, "log.jobs.col_attempts"), T(p, "log.jobs.col_next"),
		      T(p, "log.jobs.col_error"), T(p, "log.jobs.col_log"));
		if (can_retry)
			h_fmt(p, "<th scope=\"col\">%s</th>", T(p, "log.jobs.col_action"));
		h_raw(p, "</tr></thead><tbody>");
		for (int i = 0; i < shown; i++) {
			const char *id = portal_cell(r, i, "id"),
			           *http = portal_cell(r, i, "last_http_status");
			const char *cnr = portal_cell(r, i, "cnr_request_id");
			const char *err = portal_cell(r, i, "last_error");

			h_fmt(
			    p,
			    "<tr id=\"job-%s\"><td>%s</td><td>%s %s %s</td><td>%s</td><td>%s</td>",
			    id, id,
			    T(p, strcmp(portal_cell(r, i, "direction"), "in") == 0 ? "log.in"
			                                                           : "log.out"),
			    portal_cell(r, i, "kind"), portal_cell(r, i, "api"),
			    portal_cell(r, i, "hei_id"), portal_cell(r, i, "dedupe_key"));
			h_fmt(
			    p,
			    "<td class=\"status-bad\">%s</td><td class=\"num\">%s</td><td>%s</td>",
			    portal_cell(r, i, "status"), portal_cell(r, i, "attempts"),
			    portal_cell(r, i, "next_attempt"));
			/* the partner's message, as the job recorded it */
			if (err)
				h_fmt(p, "<td class=\"job-error\">%s</td>", err);
			else
				h_fmt(p, "<td class=\"job-error\">%s%s</td>", http ? "HTTP " : "",
				      http);
			h_fmt(p, "<td><a id=\"job-log-%s\" href=\"/portal/log?job=%s\">%s (%s)</a>",
			      id, id, T(p, "log.jobs.exchanges"), portal_cell(r, i, "exchanges"));
			if (cnr)
				h_fmt(p, " <a href=\"/portal/log?request_id=%s\">%s</a>", cnr,
				      T(p, "log.jobs.cnr"));
			h_raw(p, "</td>");
			if (can_retry) {
				h_fmt(p,
				      "<td><form method=\"post\" action=\"/portal/jobs/%s/retry\""
				      " id=\"retry-%s\">",
				      id, id);
				h_csrf(p);
				if (f->partner)
					h_fmt(
					    p,
					    "<input type=\"hidden\" name=\"partner\" value=\"%s\">",
					    f->partner);
				if (f->state)
					h_fmt(p,
					      "<input type=\"hidden\" name=\"state\" value=\"%s\">",
					      f->state);
				h_fmt(p,
				      "<button type=\"submit\">%s <span "
				      "class=\"muted\">%s</span></button>",
				      T(p, "log.jobs.retry"), id);
				h_raw(p, "</form></td>");
			}
			h_raw(p, "</tr>");
		}
		h_raw(p, "</tbody></table>");
	}
	plog_pager(p, "/jobs", buf_cstr(&qs), f->page, more);
	buf_free(&qs);
	free(f);
	portal_page_end(p);
}

static void
jobs_list(struct portal *p)
{
	struct jobs_filters *f = xcalloc(1, sizeof(*f));
	char limit[16], offset[24];
	const char *params[4];

	if (!jobs_filters_read(p, f)) {
		free(f);
		return;
	}
	snprintf(limit, sizeof(limit), "%d", f->format ? PLOG_EXPORT_ROWS : PLOG_PAGE_ROWS + 1);
	snprintf(offset, sizeof(offset), "%ld", f->format ? 0 : (f->page - 1) * PLOG_PAGE_ROWS);
	params[0] = f->partner;
	params[1] = f->state;
	params[2] = limit;
	params[3] = offset;
	portal_sql(p, jobs_list_sql, 4, params);
	p->data = f;
	portal_run(p, false, jobs_list_done);
}

struct jobs_retry {
	char id[24];
	char back[1024]; /* /jobs with the list's filters */
};

static void
jobs_retry_done(struct portal *p)
{
	struct jobs_retry *jr = p->data;
	char msg[512];
	const char *m = p->db_err_message;

	if (p->db_err && db_err_is(p->db_err, "P0002")) {
		portal_error(p, 404, T(p, "log.jobs.no_such"));
	} else if (p->db_err && db_err_is(p->db_err, "P0001") && m &&
	           strncmp(m, "not-retryable:", 14) == 0) {
		snprintf(msg, sizeof(msg), "%s %s: %s", T(p, "log.jobs.job"), jr->id, m + 14);
		snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), ". %s",
		         T(p, "log.jobs.not_retryable"));
		portal_error(p, 409, msg);
	} else if (p->db_err && db_err_is(p->db_err, "P0001") && m &&
	           strncmp(m, "pending-duplicate:", 18) == 0) {
		snprintf(msg, sizeof(msg), "%s %s: %s %s.", T(p, "log.jobs.job"), jr->id,
		         T(p, "log.jobs.duplicate"), m + 18);
		portal_error(p, 409, msg);
	} else if (!portal_db_failed(p)) {
		portal_redirect(p, jr->back, "log.jobs.retried");
	}
	free(jr);
}

static void
jobs_retry(struct portal *p)
{
	struct jobs_retry *jr;
	struct jobs_filters f;
	long id = portal_arg_id(p);
	char window[16];
	const char *params[2], *slash;
	struct buf qs;

	slash = p->path_arg ? strchr(p->path_arg, '/') : NULL;
	if (id < 0 || slash == NULL || strcmp(slash, "/retry") != 0) {
		portal_error(p, 404, NULL);
		return;
	}
	memset(&f, 0, sizeof(f));
	if (!plog_text_param(p, "partner", 255, &f.partner) ||
	    !plog_text_param(p, "state", 16, &f.state))
		return;
	jr = xcalloc(1, sizeof(*jr));
	snprintf(jr->id, sizeof(jr->id), "%ld", id);
	buf_init(&qs, sizeof(jr->back) - 8);
	plog_qs_add(&qs, "partner", f.partner);
	plog_qs_add(&qs, "state", f.state);
	snprintf(jr->back, sizeof(jr->back), "/jobs%s%s", qs.len ? "?" : "", buf_cstr(&qs));
	buf_free(&qs);
	snprintf(window, sizeof(window), "%d", p->d->conf->jobs_give_up_after);
	params[0] = jr->id;
	params[1] = window;
	/* the audit row first: a refused retry is then the last statement, and
	 * its error rolls the audit row back with it */
	portal_audit(p, "job.force-retry", "job", jr->id);
	portal_sql(p, jobs_retry_sql, 2, params);
	p->data = jr;
	portal_run(p, true, jobs_retry_done);
}

const struct portal_page portal_jobs_pages[] = {
    {"GET", "/jobs", PRIV_LOG, false, jobs_list},
    {"POST", "/jobs/", PRIV_RETRY, false, jobs_retry},
    {NULL, NULL, 0, false, NULL},
};
