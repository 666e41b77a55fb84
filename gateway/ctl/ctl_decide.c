/*
 * ctl_decide.c - staff decisions on partners' nominations and learning
 * agreements (we are the receiving HEI): `ewpctl mobility approve|reject`
 * and `ewpctl la approve|comment`. Each writes one ewp.decisions row, its
 * ('out', 'update') job and an audit-log row in one transaction
 * (ewp.decision_queue(), sql/0010_decisions.sql), on the current proposal
 * id of the core; ewpd's workers send it (gateway/jobs_update.c). When
 * there is nothing to decide (an outgoing mobility, a cancelled or
 * already decided nomination, no changes proposal waiting) the command
 * says why and writes nothing.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pwd.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "ctl.h"

#define DECIDE_MAX_TEXT 4000 /* bytes of a comment or a signature field */

static const char queue_sql[] =
    "SELECT decision_id, job_id, proposal_id, partner FROM ewp.decision_queue("
    "ewp.decision_mobility_ref($1), $2, $3, $4, $5, $6, $7, 'ewpctl')";

static const char ref_sql[] = "SELECT ewp.decision_mobility_ref($1)";

struct decide_args {
	const char *id, *by, *comment, *signer_name, *signer_position, *signer_email, *conninfo;
};

PGconn *
ctl_mobility_connect(struct ctl *ctl, const char *conninfo)
{
	PGconn *db = PQconnectdb(conninfo ? conninfo : ctl_conf(ctl)->db_conninfo);

	if (PQstatus(db) != CONNECTION_OK) {
		char *m = strdup(PQerrorMessage(db));

		if (m)
			ctl_safe_text(m, strlen(m), true);
		ctl_err("cannot connect to the database: %s", m ? m : "?");
		free(m);
		PQfinish(db);
		return NULL;
	}
	return db;
}

void
ctl_mobility_db_err(const char *what, PGconn *db, PGresult *res)
{
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char *copy = strdup(m ? m : PQerrorMessage(db));

	if (copy == NULL) {
		ctl_err("%s: out of memory", what);
		return;
	}
	copy[strcspn(copy, "\n")] = '\0'; /* the first line says it */
	ctl_safe_text(copy, strlen(copy), false);
	ctl_err("%s: %s", what, copy);
	free(copy);
}

static int
decide_usage(const char *command, const char *sub)
{
	if (strcmp(command, "mobility") == 0)
		ctl_err("usage: ewpctl mobility %s ID|SENDING_HEI:OMOBILITY_ID%s [--by NAME]"
		        " [--conninfo STR]",
		        sub, strcmp(sub, "reject") == 0 ? " --comment TEXT" : "");
	else
		ctl_err("usage: ewpctl la %s ID|SENDING_HEI:OMOBILITY_ID%s --signer-name NAME"
		        " --signer-position POSITION --signer-email EMAIL [--by NAME]"
		        " [--conninfo STR]",
		        sub, strcmp(sub, "comment") == 0 ? " --comment TEXT" : "");
	return 2;
}

/* Options of a decision; 0, or 2 after a usage message. */
static int
decide_parse(const char *command, const char *sub, int argc, char **argv, struct decide_args *a)
{
	bool la = strcmp(command, "la") == 0;
	bool wants_comment = strcmp(sub, "reject") == 0 || strcmp(sub, "comment") == 0;

	for (int i = 0; i < argc; i++) {
		const char *o = argv[i], **dst = NULL;

		if (strcmp(o, "--by") == 0)
			dst = &a->by;
		else if (strcmp(o, "--comment") == 0 && wants_comment)
			dst = &a->comment;
		else if (strcmp(o, "--signer-name") == 0 && la)
			dst = &a->signer_name;
		else if (strcmp(o, "--signer-position") == 0 && la)
			dst = &a->signer_position;
		else if (strcmp(o, "--signer-email") == 0 && la)
			dst = &a->signer_email;
		else if (strcmp(o, "--conninfo") == 0)
			dst = &a->conninfo;
		if (dst != NULL) {
			if (i + 1 >= argc) {
				ctl_err("%s %s: %s wants a value", command, sub, o);
				return decide_usage(command, sub);
			}
			*dst = argv[++i];
			if (dst != &a->conninfo && strlen(*dst) > DECIDE_MAX_TEXT) {
				ctl_err("%s %s: %s is longer than %d bytes", command, sub, o,
				        DECIDE_MAX_TEXT);
				return 2;
			}
		} else if (o[0] == '-' && o[1] != '\0') {
			ctl_err("%s %s: unknown option %s", command, sub, o);
			return decide_usage(command, sub);
		} else if (a->id == NULL) {
			a->id = o;
		} else {
			ctl_err("%s %s: one mobility at a time (\"%s\" and \"%s\")", command, sub,
			        a->id, o);
			return 2;
		}
	}
	if (a->id == NULL) {
		ctl_err("%s %s: which mobility? (its id, or SENDING_HEI:OMOBILITY_ID)", command,
		        sub);
		return decide_usage(command, sub);
	}
	if (wants_comment &&
	    (a->comment == NULL || strspn(a->comment, " \t\r\n") == strlen(a->comment))) {
		ctl_err("%s %s: --comment TEXT is required (the partner reads why)", command, sub);
		return 2;
	}
	if (la &&
	    (a->signer_name == NULL || a->signer_position == NULL || a->signer_email == NULL)) {
		ctl_err("la %s: the decision is signed: --signer-name, --signer-position and "
		        "--signer-email are required",
		        sub);
		return 2;
	}
	if (a->by == NULL)
		a->by = getenv("SUDO_USER") ? getenv("SUDO_USER") : getenv("USER");
	if (a->by == NULL || a->by[0] == '\0') {
		struct passwd *pw = getpwuid(geteuid());

		a->by = pw ? pw->pw_name : NULL;
	}
	if (a->by == NULL || a->by[0] == '\0') {
		ctl_err("%s %s: who decides? (--by NAME)", command, sub);
		return 2;
	}
	return 0;
}

static int
decide(struct ctl *ctl, const char *command, const char *sub, const char *kind, int argc,
       char **argv)
{
	struct decide_args a = {0};
	PGconn *db;
	PGresult *res;
	char what[64];
	int rc;

	if ((rc = decide_parse(command, sub, argc, argv, &a)) != 0)
		return rc;
	if ((db = ctl_mobility_connect(ctl, a.conninfo)) == NULL)
		return 1;
	snprintf(what, sizeof(what), "%s %s", command, sub);
	rc = 1;
	res = PQexecParams(db, ref_sql, 1, NULL, &a.id, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ctl_mobility_db_err(what, db, res);
		goto out;
	}
	if (PQgetisnull(res, 0, 0)) {
		char *id = strdup(a.id);

		if (id)
			ctl_safe_text(id, strlen(id), false);
		ctl_err("%s: no mobility \"%s\" (give its id, or SENDING_HEI:OMOBILITY_ID)", what,
		        id ? id : "?");
		free(id);
		goto out;
	}
	PQclear(res);
	const char *p[7] = {a.id,           kind, a.comment, a.signer_name, a.signer_position,
	                    a.signer_email, a.by};
	res = PQexecParams(db, queue_sql, 7, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		ctl_mobility_db_err(what, db, res);
		goto out;
	}
	ctl_safe_result(res);
	printf("decision %s (%s of proposal %s) queued as job %s: ewpd sends it to %s\n",
	       PQgetvalue(res, 0, 0), kind, PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 1),
	       PQgetvalue(res, 0, 3));
	rc = 0;
out:
	PQclear(res);
	PQfinish(db);
	return rc;
}

int
ctl_mobility_approve(struct ctl *ctl, int argc, char **argv)
{
	return decide(ctl, "mobility", "approve", "nomination-approve", argc, argv);
}

int
ctl_mobility_reject(struct ctl *ctl, int argc, char **argv)
{
	return decide(ctl, "mobility", "reject", "nomination-reject", argc, argv);
}

int
ctl_la_approve(struct ctl *ctl, int argc, char **argv)
{
	return decide(ctl, "la", "approve", "la-approve", argc, argv);
}

int
ctl_la_comment(struct ctl *ctl, int argc, char **argv)
{
	return decide(ctl, "la", "comment", "la-comment", argc, argv);
}
