/*
 * portal_workflow.c - the workflow configuration page: the steps of
 * smile.step in order, with how many registrations wait at each, and
 * the actions of an Administrateur fonctionnel on them.
 *
 * Actions (POST /workflow, action=...):
 *   up, down             swap a step with its neighbour. Both steps move, so
 *                        both must be movable and neither fixed; the step
 *                        that ends first must be active (new registrations
 *                        start at the first active step, `ewpctl import` at
 *                        position 1: the two must stay the same step).
 *   activate, deactivate the engine (smile.inscription_advance) skips
 *                        inactive steps, so a step holding registrations may
 *                        be deactivated (the LA flow's approval_host too:
 *                        the engine looks it up by code and moves past it);
 *                        never the first step, where new ones start.
 *   role                 the role whose holders validate the step.
 *
 * The checks run on a first read for readable messages; the write then
 * repeats them in its WHERE clause and fails unless exactly the expected
 * rows changed, so a change made in between is refused, not half-applied.
 * The audit row is queued before the guarded write so that the write is the
 * transaction's last statement: when it fails, no later statement is left
 * to be failed after the transaction's end (whose callback frees the
 * request; portal_db.c does not wait for such late callbacks).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "portal.h"

#define WF_CODE_MAX 64

/* The write matched fewer rows than its checks expected. */
#define WF_CHANGED "22012"

static const char steps_sql[] =
    "SELECT s.code, s.label, s.position, s.active, s.need_validation, s.movable, s.fixed,"
    " s.deletable, r.code AS role_code, r.label AS role_label,"
    " (SELECT count(*) FROM smile.inscription i WHERE i.step_id = s.id"
    "   AND ($1::bigint[] IS NULL OR i.composante_id = ANY ($1::bigint[]))) AS registrations"
    " FROM smile.step s LEFT JOIN smile.role r ON r.id = s.role_id ORDER BY s.position";

static const char roles_sql[] = "SELECT code, label FROM smile.role ORDER BY label, code";

/* Both rows or nothing: count(*) <> 2 divides by zero, which rolls back. */
static const char swap_sql[] =
    "WITH u AS (UPDATE smile.step s"
    "   SET position = CASE WHEN s.code = $1 THEN $4::int ELSE $3::int END"
    " WHERE ((s.code = $1 AND s.position = $3::int) OR (s.code = $2 AND s.position = $4::int))"
    "   AND s.movable AND NOT s.fixed"
    "   AND (CASE WHEN s.code = $1 THEN $4::int ELSE $3::int END <> 1 OR s.active)"
    " RETURNING 1)"
    " SELECT 1 / (CASE WHEN count(*) = 2 THEN 1 ELSE 0 END) AS ok FROM u";

static const char active_sql[] =
    "WITH u AS (UPDATE smile.step SET active = $2::boolean"
    " WHERE code = $1 AND active <> $2::boolean"
    "   AND ($2::boolean OR position <> 1) RETURNING 1)"
    " SELECT 1 / (CASE WHEN count(*) = 1 THEN 1 ELSE 0 END) AS ok FROM u";

static const char role_sql[] =
    "WITH u AS (UPDATE smile.step SET role_id = (SELECT id FROM smile.role WHERE code = $2)"
    " WHERE code = $1 AND EXISTS (SELECT 1 FROM smile.role WHERE code = $2) RETURNING 1)"
    " SELECT 1 / (CASE WHEN count(*) = 1 THEN 1 ELSE 0 END) AS ok FROM u";

static bool
wf_true(const char *v)
{
	return v && strcmp(v, "t") == 0;
}

/* A step code as smile.step's CHECK accepts it. */
static bool
wf_code_ok(const char *c)
{
	size_t n;

	if (c == NULL || c[0] < 'a' || c[0] > 'z')
		return false;
	for (n = 0; c[n]; n++)
		if (!((c[n] >= 'a' && c[n] <= 'z') || (c[n] >= '0' && c[n] <= '9') || c[n] == '_' ||
		      c[n] == '-'))
			return false;
	return n <= WF_CODE_MAX;
}

static void
wf_queue_read(struct portal *p)
{
	const char *params[1] = {p->user.composantes};

	portal_sql(p, steps_sql, 1, params);
	portal_sql(p, roles_sql, 0, NULL);
}

/* ---- the page ---------------------------------------------------------- */

static void
wf_yes_no(struct portal *p, const char *v)
{
	h_fmt(p, "<td>%s</td>", T(p, wf_true(v) ? "workflow.yes" : "workflow.no"));
}

static void
wf_move_form(struct portal *p, const char *dir, const char *code, const char *label)
{
	h_fmt(p, "<form method=\"post\" action=\"/portal/workflow\" id=\"%s-%s\">", dir, code);
	h_csrf(p);
	h_fmt(p, "<input type=\"hidden\" name=\"action\" value=\"%s\">", dir);
	h_fmt(p, "<input type=\"hidden\" name=\"step\" value=\"%s\">", code);
	h_fmt(p, "<button type=\"submit\" class=\"secondary\">%s</button></form>", label);
}

/* Whether the step at row i may swap with the one at row j. */
static bool
wf_can_swap(const struct portal_rows *s, int i, int j)
{
	if (j < 0 || j >= s->nrows)
		return false;
	for (int k = 0; k < 2; k++) {
		int r = k ? j : i;

		if (!wf_true(portal_cell(s, r, "movable")) || wf_true(portal_cell(s, r, "fixed")))
			return false;
	}
	/* the step that would come first must be active */
	if (i == 1 && j == 0)
		return wf_true(portal_cell(s, i, "active"));
	if (j == 1 && i == 0)
		return wf_true(portal_cell(s, j, "active"));
	return true;
}

static void
wf_role_form(struct portal *p, const struct portal_rows *roles, const char *code,
             const char *current)
{
	h_fmt(p, "<form method=\"post\" action=\"/portal/workflow\" id=\"role-%s\">", code);
	h_csrf(p);
	h_raw(p, "<input type=\"hidden\" name=\"action\" value=\"role\">");
	h_fmt(p, "<input type=\"hidden\" name=\"step\" value=\"%s\">", code);
	h_fmt(p, "<label for=\"role-of-%s\">%s</label>", code, T(p, "workflow.role"));
	h_fmt(p, "<select id=\"role-of-%s\" name=\"role\">", code);
	for (int i = 0; i < roles->nrows; i++) {
		const char *rc = portal_cell(roles, i, "code");

		h_fmt(p,
		      current && strcmp(current, rc) == 0
		          ? "<option value=\"%s\" selected>%s</option>"
		          : "<option value=\"%s\">%s</option>",
		      rc, portal_cell(roles, i, "label"));
	}
	h_fmt(p, "</select> <button type=\"submit\" class=\"secondary\">%s</button></form>",
	      T(p, "workflow.set_role"));
}

static void
wf_page_done(struct portal *p)
{
	const struct portal_rows *s = &p->rows[0], *roles = &p->rows[1];

	if (portal_db_failed(p))
		return;
	portal_page_begin(p, "workflow.title");
	h_fmt(p, "<p>%s</p>", T(p, "workflow.intro"));
	h_fmt(p, "<table id=\"steps\"><caption>%s</caption><thead><tr>", T(p, "workflow.caption"));
	h_fmt(p,
	      "<th scope=\"col\" class=\"num\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\" class=\"num\">%s</th><th scope=\"col\">%s</th>",
	      T(p, "workflow.position"), T(p, "workflow.code"), T(p, "workflow.label"),
	      T(p, "workflow.active"), T(p, "workflow.need_validation"), T(p, "workflow.movable"),
	      T(p, "workflow.fixed"), T(p, "workflow.role"), T(p, "workflow.registrations"),
	      T(p, "workflow.actions"));
	h_raw(p, "</tr></thead><tbody>");
	for (int i = 0; i < s->nrows; i++) {
		const char *code = portal_cell(s, i, "code");
		bool active = wf_true(portal_cell(s, i, "active"));

		h_fmt(p, active ? "<tr id=\"step-%s\">" : "<tr id=\"step-%s\" class=\"muted\">",
		      code);
		h_fmt(p, "<td class=\"num\">%s</td><th scope=\"row\">%s</th>",
		      portal_cell(s, i, "position"), code);
		h_fmt(p, "<td>%s</td>", portal_cell(s, i, "label"));
		h_fmt(p, "<td class=\"%s\">%s</td>", active ? "status-ok" : "status-warn",
		      T(p, active ? "workflow.is_active" : "workflow.is_inactive"));
		wf_yes_no(p, portal_cell(s, i, "need_validation"));
		wf_yes_no(p, portal_cell(s, i, "movable"));
		wf_yes_no(p, portal_cell(s, i, "fixed"));
		h_raw(p, "<td>");
		wf_role_form(p, roles, code, portal_cell(s, i, "role_code"));
		h_fmt(p, "</td><td class=\"num\">%s</td><td><div class=\"actions\">",
		      portal_cell(s, i, "registrations"));
		if (wf_can_swap(s, i, i - 1))
			wf_move_form(p, "up", code, T(p, "workflow.up"));
		if (wf_can_swap(s, i, i + 1))
			wf_move_form(p, "down", code, T(p, "workflow.down"));
		if (!active || i > 0)
			wf_move_form(p, "toggle", code,
			             T(p, active ? "workflow.deactivate" : "workflow.activate"));
		h_raw(p, "</div></td></tr>");
	}
	h_raw(p, "</tbody></table>");
	h_fmt(p, "<p class=\"muted\">%s</p>", T(p, "workflow.rules"));
	portal_page_end(p);
}

static void
wf_page(struct portal *p)
{
	wf_queue_read(p);
	portal_run(p, false, wf_page_done);
}

/* ---- the actions ------------------------------------------------------- */

static void
wf_write_done(struct portal *p)
{
	/* fewer rows than checked, or positions another change took meanwhile */
	if (p->db_err && (db_err_is(p->db_err, WF_CHANGED) || db_err_is(p->db_err, "23505") ||
	                  db_err_is(p->db_err, "23514"))) {
		portal_error(p, 409, T(p, "workflow.err_changed"));
		return;
	}
	if (portal_db_failed(p))
		return;
	portal_redirect(p, "/workflow", p->data);
}

static int
wf_find(const struct portal_rows *s, const char *code)
{
	for (int i = 0; i < s->nrows; i++)
		if (strcmp(portal_cell(s, i, "code"), code) == 0)
			return i;
	return -1;
}

/* up / down: the checks, then one UPDATE swapping the two positions. */
static void
wf_move(struct portal *p, const struct portal_rows *s, int i, bool up)
{
	int j = up ? i - 1 : i + 1;
	char c0[WF_CODE_MAX + 1], c1[WF_CODE_MAX + 1], p0[16], p1[16];
	const char *params[4] = {c0, c1, p0, p1};

	if (j < 0 || j >= s->nrows) {
		portal_error(p, 409, T(p, up ? "workflow.err_top" : "workflow.err_bottom"));
		return;
	}
	if (wf_true(portal_cell(s, i, "fixed")) || !wf_true(portal_cell(s, i, "movable"))) {
		portal_error(p, 409, T(p, "workflow.err_fixed"));
		return;
	}
	if (wf_true(portal_cell(s, j, "fixed")) || !wf_true(portal_cell(s, j, "movable"))) {
		portal_error(p, 409, T(p, "workflow.err_past_fixed"));
		return;
	}
	if (!wf_can_swap(s, i, j)) {
		portal_error(p, 409, T(p, "workflow.err_first_inactive"));
		return;
	}
	/* the rows go with the reset: copy what the write needs first */
	snprintf(c0, sizeof(c0), "%s", portal_cell(s, i, "code"));
	snprintf(c1, sizeof(c1), "%s", portal_cell(s, j, "code"));
	snprintf(p0, sizeof(p0), "%s", portal_cell(s, i, "position"));
	snprintf(p1, sizeof(p1), "%s", portal_cell(s, j, "position"));
	portal_sql_reset(p);
	portal_audit(p, up ? "workflow.up" : "workflow.down", "step", c0);
	portal_sql(p, swap_sql, 4, params);
	p->data = "workflow.moved";
	portal_run(p, true, wf_write_done);
}

static void
wf_toggle(struct portal *p, const struct portal_rows *s, int i, const char *code)
{
	bool activate = !wf_true(portal_cell(s, i, "active"));
	const char *params[2] = {code, activate ? "true" : "false"};

	if (!activate && i == 0) {
		portal_error(p, 409, T(p, "workflow.err_first"));
		return;
	}
	portal_sql_reset(p);
	portal_audit(p, activate ? "workflow.activate" : "workflow.deactivate", "step", code);
	portal_sql(p, active_sql, 2, params);
	p->data = activate ? "workflow.activated" : "workflow.deactivated";
	portal_run(p, true, wf_write_done);
}

static void
wf_set_role(struct portal *p, const struct portal_rows *roles, const char *code)
{
	const char *role = portal_param(p, "role");
	const char *params[2] = {code, role};
	bool known = false;

	for (int i = 0; role && i < roles->nrows; i++)
		known |= strcmp(portal_cell(roles, i, "code"), role) == 0;
	if (!known) {
		portal_error(p, 400, T(p, "workflow.err_role"));
		return;
	}
	portal_sql_reset(p);
	portal_audit(p, "workflow.role", "step", code);
	portal_sql(p, role_sql, 2, params);
	p->data = "workflow.role_set";
	portal_run(p, true, wf_write_done);
}

static void
wf_post_read_done(struct portal *p)
{
	const char *action = portal_param(p, "action");
	char code[WF_CODE_MAX + 1];
	int i;

	if (portal_db_failed(p))
		return;
	snprintf(code, sizeof(code), "%s", portal_param(p, "step"));
	if ((i = wf_find(&p->rows[0], code)) == -1) {
		portal_error(p, 404, T(p, "workflow.err_unknown_step"));
		return;
	}
	if (strcmp(action, "up") == 0 || strcmp(action, "down") == 0) {
		wf_move(p, &p->rows[0], i, strcmp(action, "up") == 0);
	} else if (strcmp(action, "role") == 0) {
		wf_set_role(p, &p->rows[1], code);
	} else {
		bool active = wf_true(portal_cell(&p->rows[0], i, "active"));

		/* toggle follows the state; activate/deactivate must match it */
		if ((strcmp(action, "activate") == 0 && active) ||
		    (strcmp(action, "deactivate") == 0 && !active)) {
			portal_error(p, 409, T(p, "workflow.err_already"));
			return;
		}
		wf_toggle(p, &p->rows[0], i, code);
	}
}

static void
wf_post(struct portal *p)
{
	static const char *const actions[] = {"up",         "down",   "activate",
	                                      "deactivate", "toggle", "role"};
	const char *action = portal_param(p, "action"), *step = portal_param(p, "step");
	bool known = false;

	for (size_t i = 0; action && i < sizeof(actions) / sizeof(actions[0]); i++)
		known |= strcmp(action, actions[i]) == 0;
	if (!known) {
		portal_error(p, 400, T(p, "workflow.err_action"));
		return;
	}
	if (!wf_code_ok(step)) {
		portal_error(p, 400, T(p, "workflow.err_step"));
		return;
	}
	/* read first (readable refusals), then write (checks repeated) */
	wf_queue_read(p);
	portal_run(p, false, wf_post_read_done);
}

const struct portal_page portal_workflow_pages[] = {
    {"GET", "/workflow", PRIV_WORKFLOW, false, wf_page},
    {"POST", "/workflow", PRIV_WORKFLOW, false, wf_post},
    {NULL, NULL, 0, false, NULL},
};
