/*
 * api_omobilities_update.c - Outgoing Mobilities v3 update: the receiving
 * HEI approves or rejects the current proposal of one of our nominations.
 *
 * POST, signed, the body an omobilities-update-request document (not form
 * parameters), checked against ewp-schemas/intake/omobilities-update-
 * request.xsd ([ewp] schema_dir) and holding approve-proposal-v1
 * (omobility-id, proposal-id) or reject-proposal-v1 (the same and a
 * comment, which must not be blank). The decision is taken in one
 * statement (smile.omobility_decide, sql/0006), whose trigger queues the
 * OMobility CNR back to the receiving HEI (it hears of the change its own
 * call made, as the specs ask).
 *
 * Answers: 200 omobilities-update-response with a success-user-message;
 * 400 for a body that is not such a document, and for a mobility that is
 * not ours or not received by an HEI the caller's key covers (one message
 * for both: nobody learns which ids exist); 409 with a user-message when
 * the proposal is no longer the current one, or the nomination was
 * cancelled.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/tree.h>

#include "api.h"
#include "api_db.h"
#include "api_omobilities.h"
#include "log.h"
#include "req.h"
#include "xmalloc.h"
#include "xml.h"
#include "xmlw.h"

#define UPD_REQ_NS                                                                                 \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/"       \
	"endpoints/update-request.xsd"
#define UPD_COMMON_NS                                                                              \
	"https://github.com/erasmus-without-paper/ewp-specs-architecture/blob/stable-v1/"          \
	"common-types.xsd"
#define UPD_RESP_NS                                                                                \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/"       \
	"endpoints/update-response.xsd"
#define UPD_SCHEMA "intake/omobilities-update-request.xsd"
/* An update request is a few hundred bytes; a comment may be long. */
#define UPD_MAX_BODY (256 * 1024)

/* $1 the caller's HEIs, $2 omobility-id, $3 proposal-id, $4 decision, $5 comment. */
static const char upd_sql[] =
    "SELECT code, current_proposal FROM smile.omobility_decide($1::text[], $2, $3, $4, $5)";

/*
 * Compiled on first use in each worker and kept; compiled again when a
 * reload changes [ewp] schema_dir, and tried again on the next request
 * while it cannot be loaded (each such request: 500, logged).
 */
static struct xsd *upd_xsd;
static char *upd_xsd_dir;

static struct xsd *
upd_schema(const struct conf *c, char *err, size_t errlen)
{
	char *path;

	if (upd_xsd != NULL && upd_xsd_dir != NULL && strcmp(upd_xsd_dir, c->schema_dir) == 0)
		return upd_xsd;
	path = xasprintf("%s/" UPD_SCHEMA, c->schema_dir);
	xsd_free(upd_xsd);
	free(upd_xsd_dir);
	upd_xsd_dir = NULL;
	if ((upd_xsd = xsd_load(path, err, errlen)) != NULL)
		upd_xsd_dir = xstrdup(c->schema_dir);
	else
		log_warnx("omobilities update: schema %s: %s (see [ewp] schema_dir)", path, err);
	free(path);
	return upd_xsd;
}

/* An error-response with a user-message for the partner's staff; frees rq. */
static void EWP_PRINTF(4, 5)
    upd_error_user(struct req *rq, int status, const char *user, const char *fmt, ...)
{
	char msg[1024];
	struct buf b;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_init(&b, 16 * 1024);
	rc = buf_addstr(&b, XMLW_DECL "<error-response xmlns=\"" UPD_COMMON_NS "\">");
	if (rc == 0)
		rc = xmlw_elem(&b, "developer-message", msg);
	if (rc == 0)
		rc = xmlw_elem(&b, "user-message", user);
	if (rc == 0)
		rc = buf_addstr(&b, "</error-response>\n");
	if (rc == -1) {
		buf_free(&b);
		req_error(rq, status, "%s", msg);
		return;
	}
	rq->error_message = msg;
	req_reply(rq, status, "text/xml; charset=utf-8", b.data, b.len);
	buf_free(&b);
}

struct upd_decision {
	const char *decision; /* "approved" or "rejected" */
	char *omobility_id, *proposal_id, *comment;
};

static void
upd_done(struct req *rq, PGresult *res)
{
	const char *code = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
	const char *current = PQntuples(res) == 1 ? PQgetvalue(res, 0, 1) : "";
	struct buf b;
	int rc;

	if (strcmp(code, "stale") == 0) {
		upd_error_user(
		    rq, 409,
		    "The sending institution changed this nomination after you read it. "
		    "Refresh it and decide on its current version.",
		    "proposal-id is not the current proposal of this mobility (it is now "
		    "\"%s\"): fetch it again through get",
		    current);
		return;
	}
	if (strcmp(code, "cancelled") == 0) {
		upd_error_user(
		    rq, 409,
		    "The sending institution cancelled this nomination: there is nothing "
		    "left to decide.",
		    "this mobility was cancelled by the sending HEI; a cancelled "
		    "nomination can no longer be approved or rejected");
		return;
	}
	if (strcmp(code, "ok") != 0 && strcmp(code, "unchanged") != 0) {
		req_error(rq, 400,
		          "no mobility with this omobility-id is sent by %s to an HEI your key "
		          "covers (%zu HEI(s) in the registry catalogue)",
		          rq->d->conf->hei_id, rq->ncaller_heis);
		return;
	}
	buf_init(&b, 4096);
	rc = buf_addstr(&b, XMLW_DECL "<omobilities-update-response xmlns=\"" UPD_RESP_NS
	                              "\" xmlns:ewp=\"" UPD_COMMON_NS "\">");
	if (rc == 0)
		rc = xmlw_elem(&b, "ewp:success-user-message",
		               strcmp(code, "unchanged") == 0
		                   ? "The nomination already had this decision."
		                   : "Your decision on the nomination was recorded.");
	if (rc == 0)
		rc = buf_addstr(&b, "</omobilities-update-response>\n");
	api_db_send(rq, &b, rc, "omobilities update");
}

/* Reads the decision out of a valid document; -1 with rq answered. */
static int
upd_read(struct req *rq, xmlNode *root, struct upd_decision *d)
{
	xmlNode *el = NULL;

	for (xmlNode *n = root->children; n != NULL && el == NULL; n = n->next)
		if (n->type == XML_ELEMENT_NODE)
			el = n;
	if (el == NULL) {
		req_error(rq, 400, "omobilities-update-request holds no decision");
		return -1;
	}
	d->decision = xml_is(el, UPD_REQ_NS, "approve-proposal-v1") ? "approved" : "rejected";
	d->omobility_id = xml_text(xml_child(el, UPD_REQ_NS, "omobility-id"));
	d->proposal_id = xml_text(xml_child(el, UPD_REQ_NS, "proposal-id"));
	if (strcmp(d->decision, "rejected") == 0) {
		d->comment = xml_text(xml_child(el, UPD_REQ_NS, "comment"));
		if (d->comment[0] == '\0') {
			req_error(rq, 400,
			          "reject-proposal-v1 needs a comment saying why the nomination is "
			          "rejected (it is empty)");
			return -1;
		}
	}
	if (d->proposal_id[0] == '\0') {
		req_error(rq, 400, "proposal-id is empty");
		return -1;
	}
	return 0;
}

/* Content-Type as received: a framing header, read even when not signed. */
static const char *
upd_content_type(const struct req *rq)
{
	for (size_t i = 0; i < rq->nreceived; i++)
		if (strcasecmp(rq->received[i].name, "Content-Type") == 0)
			return rq->received[i].value;
	return NULL;
}

static void
upd_handle(struct req *rq)
{
	const char *ct = upd_content_type(rq);
	struct upd_decision d = {0};
	char err[512], *callers = NULL;
	struct xsd *x;
	xmlDocPtr doc;
	xmlNode *root;

	if (ct != NULL && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0) {
		req_error(rq, 415,
		          "the update body is an omobilities-update-request XML document "
		          "(Content-Type: text/xml), not form parameters");
		return;
	}
	if (rq->body_len == 0) {
		req_error(rq, 400,
		          "the body must be an omobilities-update-request document (it is "
		          "empty)");
		return;
	}
	if ((x = upd_schema(rq->d->conf, err, sizeof(err))) == NULL) {
		req_error(rq, 500, "the update request schema cannot be loaded");
		return;
	}
	if ((doc = xml_parse(rq->body, rq->body_len, UPD_MAX_BODY, err, sizeof(err))) == NULL) {
		req_error(rq, 400, "the body is not a well-formed XML document: %s", err);
		return;
	}
	root = xmlDocGetRootElement(doc);
	if (!xml_is(root, UPD_REQ_NS, "omobilities-update-request")) {
		req_error(
		    rq, 400,
		    "the root element must be omobilities-update-request in namespace " UPD_REQ_NS);
		goto out;
	}
	if (xsd_validate(x, doc, err, sizeof(err)) == -1) {
		req_error(rq, 400, "omobilities-update-request is not valid: %s", err);
		goto out;
	}
	if (upd_read(rq, root, &d) == -1)
		goto out;
	if (api_omobilities_callers(rq, &callers) == -1) {
		req_error(rq, 500, "the caller's HEIs do not fit in a query");
		goto out;
	}
	api_db_query(
	    rq, upd_sql, 5,
	    (const char *const[]){callers, d.omobility_id, d.proposal_id, d.decision, d.comment},
	    upd_done);
out:
	free(callers);
	free(d.omobility_id);
	free(d.proposal_id);
	free(d.comment);
	xmlFreeDoc(doc);
}

const struct api_entry api_omobilities_update_entry = {
    .name = "omobilities",
    .ns = OMOB_ENTRY_NS,
    .version = "3.0.0",
    .path = "/ewp/omobilities/v3/update",
    .methods = API_POST,
    .signed_only = true,
    .xml_body = true,
    .metric = METRICS_API_OMOBILITIES,
    .handle = upd_handle,
    .manifest = api_omobilities_no_manifest,
};
