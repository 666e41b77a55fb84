/*
 * portal_student_act.c - the staff decisions of a student's file:
 *
 *   POST /portal/students/<id>/nomination  action=approve | reject (+ comment)
 *   POST /portal/students/<id>/la          action=approve | comment (+ comment),
 *                                          signer_name, signer_position, signer_email
 *
 * They do what `ewpctl mobility approve|reject` and `ewpctl la
 * approve|comment` do (gateway/ctl/ctl_decide.c): one call of
 * ewp.decision_queue() (sql/0010_decisions.sql), which writes the
 * decision, its update job and its audit-log row or refuses with a
 * readable reason when there is nothing to decide; the signed-in user is
 * the decider. The portal adds its own audit row (client address, user)
 * in the same transaction. Before that, a read-only look checks that the
 * student is within the user's scope: outside it, 404 and nothing written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portal.h"
#include "portal_student.h"
#include "xmalloc.h"

static const char scope_sql[] =
    "SELECT m.id FROM smile.mobility m LEFT JOIN smile.inscription i ON i.id = m.inscription_id"
    " WHERE m.id = $1::bigint" STUDENT_SCOPE;

/* As ctl_decide.c's queue_sql, the actor being the portal. */
static const char queue_sql[] =
    "SELECT decision_id, job_id, proposal_id, partner FROM ewp.decision_queue("
    "ewp.decision_mobility_ref($1), $2, $3, $4, $5, $6, $7, 'portal')";

struct student_act {
	char id[24];
	const char *kind; /* nomination-approve ... la-comment */
	const char *comment, *signer_name, *signer_position, *signer_email;
};

static bool
blank(const char *s)
{
	return s == NULL || s[strspn(s, " \t\r\n")] == '\0';
}

static void
act_done(struct portal *p)
{
	struct student_act *a = p->data;
	char *to;

	if (portal_db_failed(p)) {
		free(a);
		return;
	}
	to = xasprintf("/students/%s", a->id);
	free(a);
	portal_redirect(p, to, "student.decision_queued");
	free(to);
}

static void
act_scoped(struct portal *p)
{
	struct student_act *a = p->data;
	char action[64];
	const char *params[7];

	if (portal_db_failed(p)) {
		free(a);
		return;
	}
	if (p->rows[0].nrows != 1) {
		free(a);
		portal_error(p, 404, T(p, "student.unknown"));
		return;
	}
	portal_sql_reset(p);
	params[0] = a->id;
	params[1] = a->kind;
	params[2] = a->comment;
	params[3] = a->signer_name;
	params[4] = a->signer_position;
	params[5] = a->signer_email;
	params[6] = p->user.username;
	portal_sql(p, queue_sql, 7, params);
	snprintf(action, sizeof(action), "decision.%s", a->kind);
	portal_audit(p, action, "mobility", a->id);
	portal_run(p, true, act_done);
}

/* The parameters of the action; NULL after a 400 or 404 answer. */
static struct student_act *
act_parse(struct portal *p, long id, const char *what)
{
	const char *action = portal_param(p, "action");
	bool la = strcmp(what, "la") == 0, wants_comment;
	struct student_act a = {0};
	const char *fields[4];

	if (!la && strcmp(what, "nomination") != 0) {
		portal_error(p, 404, NULL);
		return NULL;
	}
	if (action && strcmp(action, "approve") == 0)
		a.kind = la ? "la-approve" : "nomination-approve";
	else if (action && strcmp(action, la ? "comment" : "reject") == 0)
		a.kind = la ? "la-comment" : "nomination-reject";
	else {
		portal_error(p, 400, T(p, la ? "student.bad_la_action" : "student.bad_action"));
		return NULL;
	}
	wants_comment = strcmp(action, "approve") != 0;
	if (wants_comment) {
		a.comment = portal_param(p, "comment");
		if (blank(a.comment)) {
			portal_error(p, 400, T(p, "student.comment_required"));
			return NULL;
		}
	}
	if (la) {
		a.signer_name = portal_param(p, "signer_name");
		a.signer_position = portal_param(p, "signer_position");
		a.signer_email = portal_param(p, "signer_email");
		if (blank(a.signer_name) || blank(a.signer_position) || blank(a.signer_email)) {
			portal_error(p, 400, T(p, "student.signer_required"));
			return NULL;
		}
	}
	fields[0] = a.comment;
	fields[1] = a.signer_name;
	fields[2] = a.signer_position;
	fields[3] = a.signer_email;
	for (int i = 0; i < 4; i++)
		if (fields[i] && strlen(fields[i]) > STUDENT_MAX_TEXT) {
			portal_error(p, 400, T(p, "student.too_long"));
			return NULL;
		}
	snprintf(a.id, sizeof(a.id), "%ld", id);
	{
		struct student_act *copy = xcalloc(1, sizeof(*copy));

		*copy = a;
		return copy;
	}
}

void
portal_student_decide(struct portal *p)
{
	struct student_act *a;
	const char *rest, *params[3];
	long id = student_path(p, &rest);

	if (id < 0) {
		portal_error(p, 400, T(p, "student.bad_id"));
		return;
	}
	if ((a = act_parse(p, id, rest)) == NULL)
		return;
	p->data = a;
	params[0] = a->id;
	student_scope(p, params);
	portal_sql(p, scope_sql, 3, params);
	portal_run(p, false, act_scoped);
}
