/*
 * portal_student.c - a student's file: GET /portal/students/<mobility id>.
 *
 * What the sending HEI nominated (student, units, term, level, status),
 * the registration it created in the core, our decisions on it and what
 * the partner answered, the learning agreement (portal_student_la.c), the
 * forms of the decisions still to take (portal_student_act.c receives
 * them) and the history: workflow steps and, for users of the EWP log,
 * the exchanges and jobs about this mobility.
 *
 * Every statement runs in one read-only transaction. The first one finds
 * the mobility only inside the user's scope (STUDENT_SCOPE): a student of
 * another composante, or not one's own as Référent, is a 404 like an
 * unknown id, so the page tells nothing about students one may not see.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portal.h"
#include "portal_student.h"

/* A name of an institution or unit (names jsonb) in lang, else English,
 * else the first. */
#define STUDENT_NAME(names)                                                                        \
	"(SELECT n->>'name' FROM jsonb_array_elements(" names ") WITH ORDINALITY AS x(n, o)"       \
	" ORDER BY (n->>'lang' = $4) DESC NULLS LAST, (n->>'lang' = 'en') DESC NULLS LAST, o "     \
	"LIMIT 1)"

/* clang-format off */
static const char file_sql[] =
    "SELECT m.id, m.sending_hei_id, m.omobility_id, m.receiving_hei_id, m.is_outgoing,"
    " m.given_names, m.family_name, m.global_id, to_char(m.birth_date, 'YYYY-MM-DD') AS birth_date,"
    " m.nationality, m.gender::text AS gender, m.email, m.sending_ounit_id, m.receiving_ounit_id,"
    " m.sending_term_id, m.receiving_academic_year_id, m.activity_type, m.activity_attributes,"
    " m.agreement_isced, m.nominee_isced, m.eqf_level::text AS eqf_level, m.comment,"
    " m.proposal_id, m.status, m.status_comment,"
    " to_char(m.actual_arrival_date, 'YYYY-MM-DD') AS arrival,"
    " to_char(m.actual_departure_date, 'YYYY-MM-DD') AS departure,"
    " " STUDENT_UTC("m.gone_at") " AS gone_at, " STUDENT_UTC("m.fetched_at") " AS fetched_at,"
    " " STUDENT_UTC("m.created_at") " AS created_at,"
    " (SELECT " STUDENT_NAME("e.names") " FROM smile.etablissement e"
    "   WHERE e.schac_id = m.sending_hei_id) AS sending_hei_name,"
    " (SELECT " STUDENT_NAME("c.names") " FROM smile.composante c"
    "   JOIN smile.etablissement e ON e.id = c.etablissement_id"
    "   WHERE e.schac_id = m.sending_hei_id AND c.ounit_id = m.sending_ounit_id) AS sending_ounit_name,"
    " (SELECT " STUDENT_NAME("c.names") " FROM smile.composante c"
    "   JOIN smile.etablissement e ON e.id = c.etablissement_id"
    "   WHERE e.schac_id = m.receiving_hei_id AND c.ounit_id = m.receiving_ounit_id)"
    "   AS receiving_ounit_name,"
    " " STUDENT_X("la.header", "/*/" LN("sending-hei") "/" LN("ounit-name")) " AS la_sending_ounit,"
    " " STUDENT_X("la.header", "/*/" LN("receiving-hei") "/" LN("ounit-name")) " AS la_receiving_ounit,"
    " coalesce(" STUDENT_X("m.document", "/*/" LN("nomination") "/" LN("non-standard-mobility-period") "/" LN("start-date")) ","
    "   " STUDENT_X("la.header", "/*/" LN("start-date")) ","
    "   " STUDENT_X("la.header", "/*/" LN("start-year-month")) ") AS planned_start,"
    " coalesce(" STUDENT_X("m.document", "/*/" LN("nomination") "/" LN("non-standard-mobility-period") "/" LN("end-date")) ","
    "   " STUDENT_X("la.header", "/*/" LN("end-date")) ","
    "   " STUDENT_X("la.header", "/*/" LN("end-year-month")) ") AS planned_end,"
    " (SELECT string_agg(concat_ws(' ', btrim(s.language), btrim(s.cefr)), ', ' ORDER BY s.o)"
    "    FROM XMLTABLE('/*/" LN("student-language-skill") "' PASSING la.header"
    "         COLUMNS o FOR ORDINALITY, language text PATH '" LN("language") "',"
    "                 cefr text PATH '" LN("cefr-level") "') AS s) AS languages,"
    " i.id AS inscription_id, st.label AS step_label, i.status::text AS insc_status,"
    " ist.label AS insc_status_label, i.referent_email, i.academic_year::text AS academic_year,"
    " comp.code AS composante_code,"
    " (SELECT " STUDENT_NAME("comp.names") ") AS composante_name,"
    /* what ewp.decision_queue() would accept, so that a form shows only then */
    " (NOT m.is_outgoing AND m.gone_at IS NULL AND m.status = 'pending' AND NOT EXISTS ("
    "   SELECT 1 FROM ewp.decisions d WHERE d.mobility_id = m.id AND d.proposal_id = m.proposal_id"
    "      AND d.kind LIKE 'nomination-%' AND d.state IN ('queued', 'accepted')))::text"
    "   AS nomination_open,"
    " CASE WHEN NOT m.is_outgoing AND m.gone_at IS NULL AND m.status <> 'cancelled'"
    "       AND la.id IS NOT NULL AND la.gone_at IS NULL THEN"
    "   (SELECT prop FROM ewp.decision_la_proposal(m.id) AS prop WHERE prop IS NOT NULL"
    "      AND NOT EXISTS (SELECT 1 FROM ewp.decisions d WHERE d.mobility_id = m.id"
    "        AND d.proposal_id = prop AND d.kind LIKE 'la-%' AND d.state IN ('queued', 'accepted')))"
    "  END AS la_open"
    " FROM smile.mobility m"
    " LEFT JOIN smile.inscription i ON i.id = m.inscription_id"
    " LEFT JOIN smile.step st ON st.id = i.step_id"
    " LEFT JOIN smile.inscription_status ist ON ist.status = i.status"
    " LEFT JOIN smile.composante comp ON comp.id = i.composante_id"
    " LEFT JOIN smile.learning_agreement la ON la.mobility_id = m.id"
    " WHERE m.id = $1::bigint" STUDENT_SCOPE;
/* clang-format on */

/* clang-format off */
static const char decisions_sql[] =
    "SELECT d.id::text AS id, d.kind, d.proposal_id, d.comment, d.signer_name, d.signer_position,"
    " d.signer_email, d.decided_by, d.state, d.partner_message, d.job_id::text AS job_id,"
    " j.status AS job_status, j.attempts::text AS attempts, j.last_error,"
    " " STUDENT_UTC("d.created_at") " AS created_at, " STUDENT_UTC("d.modified_at") " AS modified_at"
    " FROM ewp.decisions d LEFT JOIN ewp.jobs j ON j.id = d.job_id"
    " WHERE d.mobility_id = $1::bigint ORDER BY d.id";
/* clang-format on */

/* clang-format off */
static const char steps_sql[] =
    "SELECT " STUDENT_UTC("sm.created_at") " AS created_at, s.label AS step, sm.type, sm.comment,"
    " u.display_name AS validator"
    " FROM smile.mobility m JOIN smile.stepmessage sm ON sm.inscription_id = m.inscription_id"
    " JOIN smile.step s ON s.id = sm.step_id"
    " LEFT JOIN smile.utilisateur u ON u.id = sm.validator_id"
    " WHERE m.id = $1::bigint ORDER BY sm.created_at, sm.id";
/* clang-format on */

/*
 * The exchanges with either HEI that name the omobility id (in the URL or
 * the request body: CNRs, get and update requests) or were attempts of
 * its decisions' jobs; the newest first. Response bodies are not searched
 * (an index response names every mobility), nor what came before the
 * mobility was known here, so the search stays small on a large log.
 */
#define STUDENT_MAX_LOG "100"
/* clang-format off */
static const char log_sql[] =
    "SELECT l.id::text AS id, " STUDENT_UTC("l.created_at") " AS created_at, l.direction,"
    " l.method, l.url, l.api, l.status::text AS status, l.error, l.job_id::text AS job_id"
    " FROM smile.mobility m JOIN ewp.message_log l"
    "   ON l.partner_hei_ids && ARRAY[m.sending_hei_id, m.receiving_hei_id]::text[]"
    " WHERE m.id = $1::bigint AND l.created_at > m.created_at - interval '1 day'"
    "   AND (strpos(l.url, m.omobility_id) > 0"
    "   OR position(convert_to(m.omobility_id, 'UTF8') IN coalesce(l.request_body, '')) > 0"
    "   OR l.job_id IN (SELECT d.job_id FROM ewp.decisions d WHERE d.mobility_id = m.id))"
    " ORDER BY l.id DESC LIMIT " STUDENT_MAX_LOG;
/* clang-format on */

/* clang-format off */
static const char jobs_sql[] =
    "SELECT j.id::text AS id, " STUDENT_UTC("j.created_at") " AS created_at, j.direction, j.kind,"
    " j.api, j.hei_id, j.status, j.attempts::text AS attempts, j.last_http_status::text AS http,"
    " j.last_error, " STUDENT_UTC("j.finished_at") " AS finished_at"
    " FROM smile.mobility m JOIN ewp.jobs j ON j.hei_id IN (m.sending_hei_id, m.receiving_hei_id)"
    " WHERE m.id = $1::bigint AND (j.dedupe_key IN (m.omobility_id, m.sending_hei_id || ' ' || m.omobility_id)"
    "   OR j.payload->>'omobility_id' = m.omobility_id"
    "   OR coalesce(j.payload->'omobility_id' ? m.omobility_id, false)"
    "   OR j.id IN (SELECT d.job_id FROM ewp.decisions d WHERE d.mobility_id = m.id))"
    " ORDER BY j.id DESC LIMIT " STUDENT_MAX_LOG;
/* clang-format on */

/* Indexes of the statements in p->rows, in the order they are queued. */
enum student_stmt {
	ST_FILE,
	ST_DECISIONS,
	ST_LA,                /* and the two after it (student_la_queue) */
	ST_STEPS = ST_LA + 3, /* last one for every user */
	ST_LOG,               /* these two for users of the EWP log only */
	ST_JOBS,
};

long
student_path(const struct portal *p, const char **rest)
{
	long id = portal_arg_id(p);
	const char *slash;

	if (id < 0)
		return -1;
	slash = strchr(p->path_arg, '/');
	*rest = slash ? slash + 1 : "";
	return id;
}

void
student_scope(const struct portal *p, const char **params)
{
	params[1] = p->user.composantes;
	/* a Référent alone sees the students they are referent of; no e-mail, none */
	params[2] = NULL;
	if (!(p->user.privs & PRIV_STUDENTS))
		params[2] = p->user.email ? p->user.email : "";
}

bool
student_eq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

void
student_dl(struct portal *p, const char *key, const char *value)
{
	h_fmt(p, "<dt>%s</dt><dd>%s</dd>", T(p, key), value && value[0] ? value : "—");
}

/* A catalogue text for a coded value: prefix + value, or the value as it is. */
static const char *
student_coded(const struct portal *p, const char *prefix, const char *value, char *key,
              size_t keylen)
{
	const char *t;

	if (value == NULL)
		return NULL;
	snprintf(key, keylen, "%s%s", prefix, value);
	t = T(p, key);
	return strcmp(t, key) == 0 ? value : t;
}

static const char *
cell(const struct portal *p, int st, const char *col)
{
	return portal_cell(&p->rows[st], 0, col);
}

/* "name (id)", or whichever of them is known. */
static void
student_dl_named(struct portal *p, const char *key, const char *name, const char *id)
{
	h_fmt(p, "<dt>%s</dt><dd>", T(p, key));
	if (name && id)
		h_fmt(p, "%s <span class=\"muted\">(%s)</span>", name, id);
	else
		h_text(p, name ? name : id ? id : "—");
	h_raw(p, "</dd>");
}

static void
student_nomination(struct portal *p, int st)
{
	char key[96], dates[64];
	const char *start = cell(p, st, "planned_start"), *end = cell(p, st, "planned_end");
	const char *arr = cell(p, st, "arrival"), *dep = cell(p, st, "departure");

	h_fmt(p, "<section id=\"nomination\"><h2>%s</h2><dl class=\"facts\">",
	      T(p, "student.nomination"));
	student_dl(p, "student.given_names", cell(p, st, "given_names"));
	student_dl(p, "student.family_name", cell(p, st, "family_name"));
	student_dl(p, "student.birth_date", cell(p, st, "birth_date"));
	student_dl(p, "student.email", cell(p, st, "email"));
	student_dl(p, "student.nationality", cell(p, st, "nationality"));
	student_dl(p, "student.gender",
	           student_coded(p, "student.gender.", cell(p, st, "gender"), key, sizeof(key)));
	student_dl(p, "student.global_id", cell(p, st, "global_id"));
	student_dl_named(p, "student.sending_hei", cell(p, st, "sending_hei_name"),
	                 cell(p, st, "sending_hei_id"));
	student_dl_named(p, "student.sending_unit",
	                 cell(p, st, "sending_ounit_name") ? cell(p, st, "sending_ounit_name")
	                                                   : cell(p, st, "la_sending_ounit"),
	                 cell(p, st, "sending_ounit_id"));
	student_dl_named(p, "student.receiving_unit",
	                 cell(p, st, "receiving_ounit_name") ? cell(p, st, "receiving_ounit_name")
	                                                     : cell(p, st, "la_receiving_ounit"),
	                 cell(p, st, "receiving_ounit_id"));
	student_dl(p, "student.term", cell(p, st, "sending_term_id"));
	student_dl(p, "student.academic_year", cell(p, st, "receiving_academic_year_id"));
	snprintf(dates, sizeof(dates), "%s → %s", start ? start : "?", end ? end : "?");
	student_dl(p, "student.planned_dates", start || end ? dates : NULL);
	snprintf(dates, sizeof(dates), "%s → %s", arr ? arr : "?", dep ? dep : "?");
	student_dl(p, "student.actual_dates", arr || dep ? dates : NULL);
	student_dl(p, "student.eqf", cell(p, st, "eqf_level"));
	student_dl(p, "student.isced", cell(p, st, "agreement_isced"));
	student_dl(p, "student.languages", cell(p, st, "languages"));
	student_dl(p, "student.comment", cell(p, st, "comment"));
	student_dl(p, "student.proposal", cell(p, st, "proposal_id"));
	h_fmt(p, "<dt>%s</dt><dd id=\"nomination-status\">%s", T(p, "student.status"),
	      student_coded(p, "student.status.", cell(p, st, "status"), key, sizeof(key)));
	if (student_eq(cell(p, st, "status"), "cancelled"))
		h_fmt(p, " <strong class=\"status-bad\">%s</strong>", T(p, "student.cancelled"));
	h_raw(p, "</dd>");
	if (cell(p, st, "status_comment"))
		student_dl(p, "student.status_comment", cell(p, st, "status_comment"));
	if (cell(p, st, "gone_at"))
		student_dl(p, "student.gone_at", cell(p, st, "gone_at"));
	student_dl(p, "student.fetched_at", cell(p, st, "fetched_at"));
	h_raw(p, "</dl></section>");
}

static void
student_registration(struct portal *p, int st)
{
	char unit[512];
	const char *code = cell(p, st, "composante_code"), *name = cell(p, st, "composante_name");

	h_fmt(p, "<section id=\"registration\"><h2>%s</h2>", T(p, "student.registration"));
	if (cell(p, st, "inscription_id") == NULL) {
		h_fmt(p, "<p class=\"muted\">%s</p></section>", T(p, "student.no_registration"));
		return;
	}
	h_raw(p, "<dl class=\"facts\">");
	student_dl(p, "student.step", cell(p, st, "step_label"));
	student_dl(p, "student.insc_status", cell(p, st, "insc_status_label"));
	snprintf(unit, sizeof(unit), "%s%s%s", name ? name : "", name && code ? " – " : "",
	         code ? code : "");
	student_dl(p, "student.composante", unit);
	student_dl(p, "student.referent", cell(p, st, "referent_email"));
	h_raw(p, "</dl></section>");
}

static void
student_decisions(struct portal *p, int st)
{
	const struct portal_rows *r = &p->rows[st];
	char key[96], key2[96];

	h_fmt(p, "<section id=\"decisions\"><h2>%s</h2>", T(p, "student.decisions"));
	if (r->nrows == 0) {
		h_fmt(p, "<p class=\"muted\">%s</p></section>", T(p, "student.no_decision"));
		return;
	}
	h_fmt(p,
	      "<table><caption>%s</caption><thead><tr><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	      "</tr></thead><tbody>",
	      T(p, "student.decisions"), T(p, "student.d.when"), T(p, "student.d.kind"),
	      T(p, "student.d.by"), T(p, "student.d.comment"), T(p, "student.d.state"),
	      T(p, "student.d.partner"), T(p, "student.d.job"));
	for (int i = 0; i < r->nrows; i++) {
		const char *signer = portal_cell(r, i, "signer_name");
		const char *job = portal_cell(r, i, "job_id");

		h_fmt(
		    p, "<tr><td>%s</td><td>%s</td><td>%s", portal_cell(r, i, "created_at"),
		    student_coded(p, "student.kind.", portal_cell(r, i, "kind"), key, sizeof(key)),
		    portal_cell(r, i, "decided_by"));
		if (signer)
			h_fmt(p, "<br><span class=\"muted\">%s, %s, %s</span>", signer,
			      portal_cell(r, i, "signer_position"),
			      portal_cell(r, i, "signer_email"));
		h_fmt(p, "</td><td>%s</td><td class=\"decision-%s\">%s</td><td>%s</td><td>",
		      portal_cell(r, i, "comment"), portal_cell(r, i, "state"),
		      student_coded(p, "student.dstate.", portal_cell(r, i, "state"), key,
		                    sizeof(key)),
		      portal_cell(r, i, "partner_message"));
		if (job)
			h_fmt(p, "%s %s (%s)", job,
			      student_coded(p, "student.jstate.", portal_cell(r, i, "job_status"),
			                    key2, sizeof(key2)),
			      portal_cell(r, i, "attempts"));
		h_raw(p, "</td></tr>");
	}
	h_raw(p, "</tbody></table></section>");
}

/* The two nomination forms, when there is something to decide. */
static void
student_nomination_forms(struct portal *p, long id)
{
	h_fmt(p, "<section id=\"decide-nomination\"><h2>%s</h2><div class=\"actions\">",
	      T(p, "student.decide_nomination"));
	h_fmt(p,
	      "<form method=\"post\" action=\"/portal/students/%ld/nomination\" "
	      "id=\"approve-nomination\">",
	      id);
	h_csrf(p);
	h_fmt(p,
	      "<input type=\"hidden\" name=\"action\" value=\"approve\">"
	      "<p><button type=\"submit\">%s</button></p></form>",
	      T(p, "student.approve_nomination"));
	h_fmt(p,
	      "<form method=\"post\" action=\"/portal/students/%ld/nomination\" "
	      "id=\"reject-nomination\">",
	      id);
	h_csrf(p);
	h_fmt(p,
	      "<input type=\"hidden\" name=\"action\" value=\"reject\">"
	      "<p><label for=\"reject-comment\">%s</label>"
	      "<textarea id=\"reject-comment\" name=\"comment\" required "
	      "maxlength=\"4000\"></textarea>"
	      "</p><p><button type=\"submit\" "
	      "class=\"danger\">%s</button></p></form></div></section>",
	      T(p, "student.reject_comment"), T(p, "student.reject_nomination"));
}

/* The signer's fields of an LA form, prefilled with the user's own. */
static void
student_signer(struct portal *p, const char *form)
{
	h_fmt(p,
	      "<p><label for=\"%s-name\">%s</label><input id=\"%s-name\" name=\"signer_name\" "
	      "required maxlength=\"4000\" value=\"%s\"></p>",
	      form, T(p, "student.signer_name"), form, p->user.display_name);
	h_fmt(p,
	      "<p><label for=\"%s-position\">%s</label><input id=\"%s-position\" "
	      "name=\"signer_position\" required maxlength=\"4000\"></p>",
	      form, T(p, "student.signer_position"), form);
	h_fmt(p,
	      "<p><label for=\"%s-email\">%s</label><input id=\"%s-email\" name=\"signer_email\" "
	      "type=\"email\" required maxlength=\"4000\" value=\"%s\"></p>",
	      form, T(p, "student.signer_email"), form, p->user.email ? p->user.email : "");
}

static void
student_la_forms(struct portal *p, long id, const char *proposal)
{
	h_fmt(
	    p,
	    "<section id=\"decide-la\"><h2>%s</h2><p>%s <code>%s</code></p><div class=\"actions\">",
	    T(p, "student.decide_la"), T(p, "student.la_waiting"), proposal);
	h_fmt(p, "<form method=\"post\" action=\"/portal/students/%ld/la\" id=\"approve-la\">", id);
	h_csrf(p);
	h_raw(p, "<input type=\"hidden\" name=\"action\" value=\"approve\">");
	h_fmt(p, "<fieldset><legend>%s</legend>", T(p, "student.approve_la"));
	student_signer(p, "approve-la");
	h_fmt(p, "<p><button type=\"submit\">%s</button></p></fieldset></form>",
	      T(p, "student.approve_la"));
	h_fmt(p, "<form method=\"post\" action=\"/portal/students/%ld/la\" id=\"comment-la\">", id);
	h_csrf(p);
	h_raw(p, "<input type=\"hidden\" name=\"action\" value=\"comment\">");
	h_fmt(p, "<fieldset><legend>%s</legend>", T(p, "student.comment_la"));
	h_fmt(p,
	      "<p><label for=\"comment-la-text\">%s</label>"
	      "<textarea id=\"comment-la-text\" name=\"comment\" required maxlength=\"4000\">"
	      "</textarea></p>",
	      T(p, "student.la_comment_text"));
	student_signer(p, "comment-la");
	h_fmt(p,
	      "<p><button type=\"submit\" class=\"secondary\">%s</button></p></fieldset></form>"
	      "</div></section>",
	      T(p, "student.comment_la"));
}

static void
student_steps(struct portal *p, int st)
{
	const struct portal_rows *r = &p->rows[st];
	char key[96];

	h_fmt(p, "<section id=\"workflow\"><h2>%s</h2>", T(p, "student.workflow"));
	if (r->nrows == 0) {
		h_fmt(p, "<p class=\"muted\">%s</p></section>", T(p, "student.no_steps"));
		return;
	}
	h_fmt(p,
	      "<table><caption>%s</caption><thead><tr><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th></tr></thead><tbody>",
	      T(p, "student.workflow"), T(p, "student.d.when"), T(p, "student.step"),
	      T(p, "student.w.type"), T(p, "student.d.comment"), T(p, "student.w.validator"));
	for (int i = 0; i < r->nrows; i++)
		h_fmt(p, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>",
		      portal_cell(r, i, "created_at"), portal_cell(r, i, "step"),
		      student_coded(p, "student.w.", portal_cell(r, i, "type"), key, sizeof(key)),
		      portal_cell(r, i, "comment"),
		      portal_cell(r, i, "validator") ? portal_cell(r, i, "validator")
		                                     : T(p, "student.w.ewp"));
	h_raw(p, "</tbody></table></section>");
}

static void
student_exchanges(struct portal *p, int log, int jobs)
{
	const struct portal_rows *r = &p->rows[log];

	h_fmt(p, "<section id=\"exchanges\"><h2>%s</h2>", T(p, "student.exchanges"));
	if (r->nrows == 0) {
		h_fmt(p, "<p class=\"muted\">%s</p>", T(p, "student.no_exchanges"));
	} else {
		h_fmt(p,
		      "<table><caption>%s</caption><thead><tr><th scope=\"col\">%s</th>"
		      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
		      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th></tr></thead><tbody>",
		      T(p, "student.exchanges"), T(p, "student.x.id"), T(p, "student.d.when"),
		      T(p, "student.x.direction"), T(p, "student.x.request"),
		      T(p, "student.x.status"), T(p, "student.x.error"));
		for (int i = 0; i < r->nrows; i++) {
			const char *id = portal_cell(r, i, "id");

			h_fmt(p,
			      "<tr><td><a href=\"/portal/log/%s\">%s</a></td><td>%s</td><td>%s</td>"
			      "<td>%s <span "
			      "class=\"student-url\">%s</span></td><td>%s</td><td>%s</td></tr>",
			      id, id, portal_cell(r, i, "created_at"),
			      T(p, student_eq(portal_cell(r, i, "direction"), "in")
			               ? "student.x.in"
			               : "student.x.out"),
			      portal_cell(r, i, "method"), portal_cell(r, i, "url"),
			      portal_cell(r, i, "status") ? portal_cell(r, i, "status") : "—",
			      portal_cell(r, i, "error"));
		}
		h_raw(p, "</tbody></table>");
	}
	r = &p->rows[jobs];
	if (r->nrows == 0) {
		h_fmt(p, "<p class=\"muted\">%s</p></section>", T(p, "student.no_jobs"));
		return;
	}
	h_fmt(p,
	      "<table id=\"jobs\"><caption>%s</caption><thead><tr><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th></tr></thead><tbody>",
	      T(p, "student.jobs"), T(p, "student.x.id"), T(p, "student.d.when"),
	      T(p, "student.j.what"), T(p, "student.j.partner"), T(p, "student.x.status"),
	      T(p, "student.x.error"));
	for (int i = 0; i < r->nrows; i++)
		h_fmt(p,
		      "<tr><td>%s</td><td>%s</td><td>%s %s %s</td><td>%s</td>"
		      "<td>%s (%s)</td><td>%s</td></tr>",
		      portal_cell(r, i, "id"), portal_cell(r, i, "created_at"),
		      portal_cell(r, i, "direction"), portal_cell(r, i, "kind"),
		      portal_cell(r, i, "api"), portal_cell(r, i, "hei_id"),
		      portal_cell(r, i, "status"), portal_cell(r, i, "attempts"),
		      portal_cell(r, i, "last_error"));
	h_raw(p, "</tbody></table></section>");
}

static void
student_page_done(struct portal *p)
{
	int f = ST_FILE;
	long id;
	const char *open;

	if (portal_db_failed(p))
		return;
	if (p->rows[f].nrows != 1) {
		portal_error(p, 404, T(p, "student.unknown"));
		return;
	}
	id = strtol(cell(p, f, "id"), NULL, 10);
	portal_page_begin(p, "student.title");
	h_fmt(p, "<p class=\"student-who\" id=\"student-name\">%s %s</p>",
	      cell(p, f, "given_names"), cell(p, f, "family_name"));
	h_fmt(p, "<p class=\"muted\">%s <code>%s:%s</code>%s</p>", T(p, "student.mobility"),
	      cell(p, f, "sending_hei_id"), cell(p, f, "omobility_id"),
	      student_eq(cell(p, f, "is_outgoing"), "t") ? T(p, "student.outgoing") : "");
	student_nomination(p, f);
	student_registration(p, f);
	student_decisions(p, ST_DECISIONS);
	if ((p->user.privs & PRIV_DECIDE) && student_eq(cell(p, f, "nomination_open"), "true"))
		student_nomination_forms(p, id);
	student_la_render(p, ST_LA);
	if ((p->user.privs & PRIV_DECIDE) && (open = cell(p, f, "la_open")) != NULL)
		student_la_forms(p, id, open);
	student_steps(p, ST_STEPS);
	if (p->nsql > ST_LOG)
		student_exchanges(p, ST_LOG, ST_JOBS);
	portal_page_end(p);
}

static void
student_page(struct portal *p)
{
	const char *rest, *params[4];
	char id[24];
	long mid = student_path(p, &rest);

	if (mid < 0) {
		portal_error(p, 400, T(p, "student.bad_id"));
		return;
	}
	if (rest[0] != '\0') {
		portal_error(p, 404, NULL);
		return;
	}
	snprintf(id, sizeof(id), "%ld", mid);
	params[0] = id;
	student_scope(p, params);
	params[3] = p->lang;
	portal_sql(p, file_sql, 4, params);
	portal_sql(p, decisions_sql, 1, params);
	student_la_queue(p, id);
	portal_sql(p, steps_sql, 1, params);
	if (p->user.privs & PRIV_LOG) {
		portal_sql(p, log_sql, 1, params);
		portal_sql(p, jobs_sql, 1, params);
	}
	portal_run(p, false, student_page_done);
}

const struct portal_page portal_student_pages[] = {
    {"GET", "/students/", PRIV_STUDENTS | PRIV_REFERENT, false, student_page},
    {"POST", "/students/", PRIV_DECIDE, false, portal_student_decide},
    {NULL, NULL, 0, false, NULL},
};
