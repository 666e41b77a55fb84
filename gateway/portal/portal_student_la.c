/*
 * portal_student_la.c - the learning agreement in a student's file: the
 * first version, the last approved changes and the changes proposal
 * waiting, each with its tables of components (A: studied at the
 * receiving HEI, B: recognised at the sending HEI, and the other lists
 * when present) and ECTS totals (smile.la_version_ects), its signatures
 * and comment; then the history of every version.
 */
#include <stdio.h>
#include <string.h>

#include "portal.h"
#include "portal_student.h"

#define SIG(party, field, as)                                                                      \
	" " STUDENT_X("v.content", "/*/" LN(party "-signature") "/" LN(field)) " AS " as ","
#define SIGS(party, as)                                                                            \
	SIG(party, "signer-name", as "_name")                                                      \
	SIG(party, "signer-position", as "_position")                                              \
	SIG(party, "signer-email", as "_email")                                                    \
	SIG(party, "timestamp", as "_at") SIG(party, "signer-app", as "_app")

/* clang-format off */
static const char versions_sql[] =
    "SELECT v.id::text AS id, v.kind, v.proposal_id, v.state, v.comment,"
    SIGS("student", "student") SIGS("sending-hei", "sending") SIGS("receiving-hei", "receiving")
    " " STUDENT_UTC("v.created_at") " AS created_at, " STUDENT_UTC("v.ended_at") " AS ended_at"
    " FROM smile.learning_agreement la JOIN smile.la_version v ON v.learning_agreement_id = la.id"
    " WHERE la.mobility_id = $1::bigint ORDER BY v.id";
/* clang-format on */

/* clang-format off */
static const char components_sql[] =
    "SELECT la_version_id::text AS version, list, position::text AS position, title, los_code,"
    " los_id, term_number::text AS term_number, total_terms::text AS total_terms,"
    " ects::text AS ects, status, reason_code, reason_text"
    " FROM smile.la_version_components WHERE mobility_id = $1::bigint AND state = 'current'"
    " ORDER BY la_version_id, list, position";
/* clang-format on */

/* clang-format off */
static const char ects_sql[] =
    "SELECT la_version_id::text AS version, list, components::text AS components,"
    " ects_listed::text AS listed, ects_inserted::text AS inserted,"
    " ects_deleted::text AS deleted, ects_net::text AS net"
    " FROM smile.la_version_ects WHERE mobility_id = $1::bigint AND state = 'current'";
/* clang-format on */

/* The component lists, in the order of the LA (tables A, B, C...). */
static const char *const la_lists[] = {"studied", "recognized", "virtual", "blended",
                                       "short-term-doctoral"};

int
student_la_queue(struct portal *p, const char *id)
{
	const char *params[1] = {id};
	int first = portal_sql(p, versions_sql, 1, params);

	portal_sql(p, components_sql, 1, params);
	portal_sql(p, ects_sql, 1, params);
	return first;
}

/* The row of the current version of a kind, or -1. */
static int
la_current(const struct portal_rows *v, const char *kind)
{
	for (int i = 0; i < v->nrows; i++)
		if (student_eq(portal_cell(v, i, "kind"), kind) &&
		    student_eq(portal_cell(v, i, "state"), "current"))
			return i;
	return -1;
}

static void
la_totals(struct portal *p, const struct portal_rows *e, const char *version, const char *list)
{
	for (int i = 0; i < e->nrows; i++) {
		const char *ins, *del, *listed, *net;
		bool changes;

		if (!student_eq(portal_cell(e, i, "version"), version) ||
		    !student_eq(portal_cell(e, i, "list"), list))
			continue;
		ins = portal_cell(e, i, "inserted");
		del = portal_cell(e, i, "deleted");
		listed = portal_cell(e, i, "listed");
		net = portal_cell(e, i, "net");
		/* a version made of changes has a variation, not a total */
		changes = !student_eq(ins, "0") || !student_eq(del, "0");
		h_fmt(p,
		      "<tfoot><tr><th scope=\"row\" colspan=\"4\">%s</th>"
		      "<td class=\"num ects-total\">%s%s</td><td>",
		      T(p, changes ? "student.la.variation" : "student.la.total"),
		      changes && net && net[0] != '-' && !student_eq(net, "0") ? "+" : "", net);
		if (changes) {
			if (!student_eq(listed, "0"))
				h_fmt(p, "%s %s, ", T(p, "student.la.listed"), listed);
			h_fmt(p, "%s +%s, %s −%s", T(p, "student.la.inserted"), ins,
			      T(p, "student.la.deleted"), del);
		}
		h_raw(p, "</td></tr></tfoot>");
		return;
	}
}

static void
la_table(struct portal *p, int first, const char *slot, const char *version, const char *list)
{
	const struct portal_rows *c = &p->rows[first + 1];
	char key[96];
	bool any = false;

	for (int i = 0; i < c->nrows; i++) {
		const char *term = portal_cell(c, i, "term_number"), *status;

		if (!student_eq(portal_cell(c, i, "version"), version) ||
		    !student_eq(portal_cell(c, i, "list"), list))
			continue;
		if (!any) {
			snprintf(key, sizeof(key), "student.la.list.%s", list);
			h_fmt(
			    p,
			    "<table id=\"la-%s-%s\" class=\"la-components\"><caption>%s</caption>"
			    "<thead><tr><th scope=\"col\">#</th><th scope=\"col\">%s</th>"
			    "<th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
			    "<th scope=\"col\" class=\"num\">%s</th><th scope=\"col\">%s</th></tr>"
			    "</thead><tbody>",
			    slot, list, T(p, key), T(p, "student.la.code"),
			    T(p, "student.la.title"), T(p, "student.la.term"),
			    T(p, "student.la.ects"), T(p, "student.la.change"));
			any = true;
		}
		h_fmt(p, "<tr><td>%s</td><td>%s</td><td>%s</td><td>", portal_cell(c, i, "position"),
		      portal_cell(c, i, "los_code") ? portal_cell(c, i, "los_code")
		                                    : portal_cell(c, i, "los_id"),
		      portal_cell(c, i, "title"));
		if (term)
			h_fmt(p, "%s/%s", term, portal_cell(c, i, "total_terms"));
		h_fmt(p, "</td><td class=\"num\">%s</td><td>", portal_cell(c, i, "ects"));
		if ((status = portal_cell(c, i, "status")) != NULL) {
			snprintf(key, sizeof(key), "student.la.%s", status);
			h_fmt(p, "%s", T(p, key));
			if (portal_cell(c, i, "reason_code") || portal_cell(c, i, "reason_text"))
				h_fmt(p, " <span class=\"muted\">%s %s</span>",
				      portal_cell(c, i, "reason_code"),
				      portal_cell(c, i, "reason_text"));
		}
		h_raw(p, "</td></tr>");
	}
	if (!any)
		return;
	h_raw(p, "</tbody>");
	la_totals(p, &p->rows[first + 2], version, list);
	h_raw(p, "</table>");
}

static void
la_signatures(struct portal *p, const struct portal_rows *v, int row)
{
	static const struct {
		const char *col, *key;
	} parties[] = {{"student", "student.la.sig_student"},
	               {"sending", "student.la.sig_sending"},
	               {"receiving", "student.la.sig_receiving"}};
	char col[32];

	h_fmt(p,
	      "<table class=\"la-signatures\"><caption>%s</caption><thead><tr>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th></tr></thead><tbody>",
	      T(p, "student.la.signatures"), T(p, "student.la.party"), T(p, "student.signer_name"),
	      T(p, "student.signer_position"), T(p, "student.signer_email"),
	      T(p, "student.la.signed_at"));
	for (size_t k = 0; k < sizeof(parties) / sizeof(parties[0]); k++) {
		const char *name;

		snprintf(col, sizeof(col), "%s_name", parties[k].col);
		name = portal_cell(v, row, col);
		h_fmt(p, "<tr><th scope=\"row\">%s</th>", T(p, parties[k].key));
		if (name == NULL) {
			h_fmt(p, "<td colspan=\"4\" class=\"muted\">%s</td></tr>",
			      T(p, "student.la.not_signed"));
			continue;
		}
		h_fmt(p, "<td>%s</td>", name);
		snprintf(col, sizeof(col), "%s_position", parties[k].col);
		h_fmt(p, "<td>%s</td>", portal_cell(v, row, col));
		snprintf(col, sizeof(col), "%s_email", parties[k].col);
		h_fmt(p, "<td>%s</td>", portal_cell(v, row, col));
		snprintf(col, sizeof(col), "%s_at", parties[k].col);
		h_fmt(p, "<td>%s", portal_cell(v, row, col));
		snprintf(col, sizeof(col), "%s_app", parties[k].col);
		if (portal_cell(v, row, col))
			h_fmt(p, " <span class=\"muted\">(%s)</span>", portal_cell(v, row, col));
		h_raw(p, "</td></tr>");
	}
	h_raw(p, "</tbody></table>");
}

/* One version: heading, component tables with totals, signatures, comment. */
static void
la_version(struct portal *p, int first, int row, const char *slot, const char *title_key)
{
	const struct portal_rows *v = &p->rows[first];
	const char *version = portal_cell(v, row, "id");

	h_fmt(p, "<section id=\"la-%s\" class=\"la-version\"><h3>%s</h3><p class=\"muted\">", slot,
	      T(p, title_key));
	if (portal_cell(v, row, "proposal_id"))
		h_fmt(p, "%s <code>%s</code> · ", T(p, "student.proposal"),
		      portal_cell(v, row, "proposal_id"));
	h_fmt(p, "%s %s</p>", T(p, "student.la.received"), portal_cell(v, row, "created_at"));
	for (size_t k = 0; k < sizeof(la_lists) / sizeof(la_lists[0]); k++)
		la_table(p, first, slot, version, la_lists[k]);
	la_signatures(p, v, row);
	if (portal_cell(v, row, "comment"))
		h_fmt(p, "<p class=\"la-comment\"><strong>%s</strong> %s</p>",
		      T(p, "student.la.our_comment"), portal_cell(v, row, "comment"));
	h_raw(p, "</section>");
}

static void
la_history(struct portal *p, const struct portal_rows *v)
{
	char key[96], key2[96];

	h_fmt(p,
	      "<table id=\"la-history\"><caption>%s</caption><thead><tr><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th></tr></thead><tbody>",
	      T(p, "student.la.history"), T(p, "student.la.received"), T(p, "student.la.kind"),
	      T(p, "student.proposal"), T(p, "student.la.state"), T(p, "student.la.ended"),
	      T(p, "student.d.comment"));
	for (int i = 0; i < v->nrows; i++) {
		snprintf(key, sizeof(key), "student.la.kind.%s", portal_cell(v, i, "kind"));
		snprintf(key2, sizeof(key2), "student.la.state.%s", portal_cell(v, i, "state"));
		h_fmt(p,
		      "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>",
		      portal_cell(v, i, "created_at"), T(p, key), portal_cell(v, i, "proposal_id"),
		      T(p, key2), portal_cell(v, i, "ended_at"), portal_cell(v, i, "comment"));
	}
	h_raw(p, "</tbody></table>");
}

void
student_la_render(struct portal *p, int first)
{
	const struct portal_rows *v = &p->rows[first];
	int fv, ac, cp;

	h_fmt(p, "<section id=\"la\"><h2>%s</h2>", T(p, "student.la"));
	if (v->nrows == 0) {
		h_fmt(p, "<p class=\"muted\">%s</p></section>", T(p, "student.la.none"));
		return;
	}
	fv = la_current(v, "first-version");
	ac = la_current(v, "approved-changes");
	cp = la_current(v, "changes-proposal");
	if (fv >= 0)
		la_version(p, first, fv, "first", "student.la.first");
	else
		h_fmt(p, "<p class=\"muted\">%s</p>", T(p, "student.la.no_first"));
	if (ac >= 0)
		la_version(p, first, ac, "approved", "student.la.approved");
	else if (fv >= 0)
		h_fmt(p, "<p class=\"muted\">%s</p>", T(p, "student.la.approved_is_first"));
	if (cp >= 0)
		la_version(p, first, cp, "proposal", "student.la.proposal");
	else
		h_fmt(p, "<p class=\"muted\">%s</p>", T(p, "student.la.no_proposal"));
	la_history(p, v);
	h_raw(p, "</section>");
}
