/*
 * api_omobility_las_update.c - Outgoing Mobility Learning Agreements
 * v1.2 update: the receiving HEI approves (approve-proposal-v1) or
 * comments (comment-proposal-v1) the changes-proposal of one of our
 * outgoing students' LAs. POST, the body an omobility-las-update-request
 * document (not a form: form-encoded is 415, as in OMobilities update),
 * signed callers only.
 *
 * The body is parsed (hardened parser) and checked against
 * [ewp] schema_dir/intake/omobility-las-update-request.xsd (compiled again
 * when a reload changes schema_dir): not XML, or
 * not such a request (missing or invalid elements) is a 400 saying why;
 * elements of other namespaces after the known ones are ignored. Then
 * smile.la_partner_update() (sql/0008_las_sending.sql) decides and writes
 * in one transaction: 400 when sending-hei-id is not ours or the LA is
 * unknown or not the caller's (its receiving HEI is not covered by the
 * caller's key), 409 with a user-message when changes-proposal-id is not
 * the proposal awaiting a decision, else 200 with the empty
 * omobility-las-update-response. The approval moves the proposal into
 * first-version (or approved-changes) with the receiving HEI's signature;
 * a comment marks it commented; either change queues an OLA CNR back to
 * the caller (triggers), as the spec asks even for its own update.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/tree.h>

#include "api.h"
#include "api_db.h"
#include "api_omobility_las.h"
#include "log.h"
#include "req.h"
#include "xmalloc.h"
#include "xml.h"
#include "xmlw.h"

#define LAS_UPDATE_RESPONSE_NS LAS_BASE_NS "endpoints/update-response.xsd"
#define LAS_UPDATE_SCHEMA      "intake/omobility-las-update-request.xsd"
#define LAS_COMMON_NS                                                                              \
	"https://github.com/erasmus-without-paper/ewp-specs-architecture/blob/stable-v1/"          \
	"common-types.xsd"

/* $1 the request document, $2 the caller's HEIs (jsonb), $3 our HEI. */
static const char las_update_sql[] = "SELECT status, message FROM smile.la_partner_update($1::xml,"
                                     " ARRAY(SELECT jsonb_array_elements_text($2::jsonb)), $3)";

/*
 * Compiled on first use in each worker and kept; compiled again when a
 * reload changes [ewp] schema_dir, and tried again on the next request
 * while it cannot be loaded (as api_omobilities_update.c).
 */
static struct xsd *las_update_xsd;
static char *las_update_xsd_dir;

static struct xsd *
las_update_schema(const struct conf *c, char *err, size_t errlen)
{
	char *path;

	if (las_update_xsd != NULL && las_update_xsd_dir != NULL &&
	    strcmp(las_update_xsd_dir, c->schema_dir) == 0)
		return las_update_xsd;
	path = xasprintf("%s/" LAS_UPDATE_SCHEMA, c->schema_dir);
	xsd_free(las_update_xsd);
	free(las_update_xsd_dir);
	las_update_xsd_dir = NULL;
	if ((las_update_xsd = xsd_load(path, err, errlen)) != NULL)
		las_update_xsd_dir = xstrdup(c->schema_dir);
	free(path);
	return las_update_xsd;
}

/* error-response with a user-message for the end user (409). */
static void
las_conflict(struct req *rq, const char *message)
{
	struct buf b;
	int rc;

	buf_init(&b, 64 * 1024);
	rc = buf_addstr(&b, XMLW_DECL "<error-response xmlns=\"" LAS_COMMON_NS "\">") ?:
	     xmlw_elem(&b, "developer-message",
	               "changes-proposal-id is not the proposal awaiting a decision: "
	               "fetch the learning agreement again (get) and decide on its current "
	               "changes-proposal") ?:
	     xmlw_elem(&b, "user-message", message) ?:
	     buf_addstr(&b, "</error-response>\n");
	rq->error_message = message;
	if (rc == -1)
		req_error(rq, 500, "409 answer larger than %zu bytes", b.max);
	else
		req_reply(rq, 409, "text/xml; charset=utf-8", b.data, b.len);
	buf_free(&b);
}

static void
las_update_done(struct req *rq, PGresult *res)
{
	struct buf b;
	const char *message;
	int status, rc;

	if (PQntuples(res) != 1) {
		req_error(rq, 500, "smile.la_partner_update returned %d rows", PQntuples(res));
		return;
	}
	status = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	message = PQgetvalue(res, 0, 1);
	if (status == 409) {
		las_conflict(rq, message);
		return;
	}
	if (status != 200) {
		req_error(rq, status, "%s", message);
		return;
	}
	log_info("%s: %s (caller %s)", rq->path, message,
	         rq->ncaller_heis ? rq->caller_heis[0] : "-");
	buf_init(&b, 1024);
	rc = buf_addstr(&b, XMLW_DECL
	                "<omobility-las-update-response xmlns=\"" LAS_UPDATE_RESPONSE_NS "\"/>\n");
	api_db_send(rq, &b, rc, "omobility-las update");
}

/* Content-Type as received: a framing header, read even when not signed. */
static const char *
las_update_content_type(const struct req *rq)
{
	for (size_t i = 0; i < rq->nreceived; i++)
		if (strcasecmp(rq->received[i].name, "Content-Type") == 0)
			return rq->received[i].value;
	return NULL;
}

static void
las_update_handle(struct req *rq)
{
	const char *ct = las_update_content_type(rq);
	char err[1024];
	struct xsd *xsd;
	xmlDocPtr doc;
	char *body, *callers;
	size_t len;

	if (ct != NULL && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0) {
		req_error(rq, 415,
		          "the update body is an omobility-las-update-request XML document "
		          "(Content-Type: text/xml), not form parameters");
		return;
	}
	if (rq->body_len == 0) {
		req_error(rq, 400,
		          "the body must be an omobility-las-update-request XML document "
		          "(it is empty)");
		return;
	}
	if ((doc = xml_parse(rq->body, rq->body_len, EWP_MAX_BODY_BYTES, err, sizeof(err))) ==
	    NULL) {
		req_error(rq, 400, "the body is not well-formed XML: %s", err);
		return;
	}
	if ((xsd = las_update_schema(rq->d->conf, err, sizeof(err))) == NULL) {
		xmlFreeDoc(doc);
		log_warnx("%s: cannot load %s/%s: %s", rq->path, rq->d->conf->schema_dir,
		          LAS_UPDATE_SCHEMA, err);
		req_error(rq, 500, "the update request schema cannot be loaded ([ewp] schema_dir)");
		return;
	}
	if (xsd_validate(xsd, doc, err, sizeof(err)) == -1) {
		xmlFreeDoc(doc);
		req_error(rq, 400, "not a valid omobility-las-update-request: %s", err);
		return;
	}
	/* Handed over as parsed, in UTF-8 whatever encoding the caller used. */
	xml_dump(doc, &body, &len);
	xmlFreeDoc(doc);
	if ((callers = las_callers_json(rq)) == NULL) {
		xmlFree(body);
		req_error(rq, 500, "the caller's HEI list is too large");
		return;
	}
	api_db_query(rq, las_update_sql, 3,
	             (const char *const[]){body, callers, rq->d->conf->hei_id}, las_update_done);
	xmlFree(body);
	free(callers);
}

static int
las_update_no_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	(void)e;
	(void)c;
	(void)out;
	return 0;
}

const struct api_entry api_las_update_entry = {
    .name = "omobility-las",
    .ns = LAS_BASE_NS "manifest-entry.xsd",
    .version = "1.2.0",
    .path = "/ewp/omobility-las/update",
    .methods = API_POST,
    .signed_only = true,
    .xml_body = true,
    .metric = METRICS_API_OMOBILITY_LAS,
    .handle = las_update_handle,
    .manifest = las_update_no_manifest,
};
