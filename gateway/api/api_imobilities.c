/*
 * api_imobilities.c - Incoming Mobilities API v2 (get): the actual
 * arrival and departure dates our staff entered on the incoming
 * mobilities we are the receiving HEI of (smile.mobility, is_outgoing
 * false), for the sending HEI.
 *
 * Parameters: omobility_id (repeatable, required; unknown or malformed
 * values are ignored, duplicates answered once, more than
 * IMOB_MAX_OMOBILITY_IDS distinct values refused with 400). v2 dropped
 * v1's receiving_hei_id; a client still sending it must name our HEI
 * (once), else 400. A mobility is returned only to a caller covering its
 * sending HEI (ewp-notes 1.3: the sending HEI MUST see it; anyone else
 * sees nothing, not even that it exists). One query per request.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_db.h"
#include "json.h"
#include "req.h"
#include "xmalloc.h"
#include "xmlw.h"

#define IMOB_NS                                                                                    \
	"https://github.com/erasmus-without-paper/ewp-specs-api-imobilities/blob/stable-v2/"       \
	"endpoints/get-response.xsd"
#define IMOB_ENTRY_NS                                                                              \
	"https://github.com/erasmus-without-paper/ewp-specs-api-imobilities/blob/stable-v2/"       \
	"manifest-entry.xsd"

#define IMOB_MAX_OMOBILITY_IDS 100

/* $1 our HEI, $2 the caller's HEIs (jsonb array), $3 the ids (text[]), in request order. */
static const char imob_sql[] =
    "SELECT m.omobility_id::text, to_char(m.actual_arrival_date, 'YYYY-MM-DD'),"
    " to_char(m.actual_departure_date, 'YYYY-MM-DD')"
    " FROM smile.mobility m"
    " WHERE NOT m.is_outgoing AND m.receiving_hei_id = $1"
    " AND m.omobility_id = ANY ($3::text[])"
    " AND m.sending_hei_id IN (SELECT jsonb_array_elements_text($2::jsonb))"
    " ORDER BY array_position($3::text[], m.omobility_id::text), m.sending_hei_id";

static void
imob_done(struct req *rq, PGresult *res)
{
	struct buf b;
	int rc;

	buf_init(&b, 4 * 1024 * 1024);
	rc = buf_addstr(&b, XMLW_DECL "<imobilities-get-response xmlns=\"" IMOB_NS "\">");
	for (int r = 0; rc == 0 && r < PQntuples(res); r++) {
		rc = buf_addstr(&b, "<student-mobility>")
		         ?: xmlw_elem(&b, "omobility-id", PQgetvalue(res, r, 0));
		if (rc == 0 && !PQgetisnull(res, r, 1))
			rc = xmlw_elem(&b, "actual-arrival-date", PQgetvalue(res, r, 1));
		if (rc == 0 && !PQgetisnull(res, r, 2))
			rc = xmlw_elem(&b, "actual-departure-date", PQgetvalue(res, r, 2));
		rc = rc ?: buf_addstr(&b, "</student-mobility>");
	}
	rc = rc ?: buf_addstr(&b, "</imobilities-get-response>\n");
	api_db_send(rq, &b, rc, "imobilities");
}

/* The caller's HEIs as a JSON array (NULL when too large). */
static char *
imob_callers_json(const struct req *rq)
{
	struct buf b;
	char *s;
	int rc;

	buf_init(&b, 1024 * 1024);
	rc = buf_addstr(&b, "[");
	for (size_t i = 0; i < rq->ncaller_heis && rc == 0; i++)
		rc = (i ? buf_addstr(&b, ",") : 0) ?: json_str(&b, rq->caller_heis[i]);
	rc = rc ?: buf_addstr(&b, "]");
	s = rc == 0 ? xstrndup(b.data, b.len) : NULL;
	buf_free(&b);
	return s;
}

static void
imob_handle(struct req *rq)
{
	const char *ours = rq->d->conf->hei_id;
	size_t nrecv = form_count(&rq->form, "receiving_hei_id");
	char *ids, *callers;
	int n;

	if (nrecv > 1) {
		req_error(rq, 400,
		          "receiving_hei_id given %zu times (IMobilities v2 needs none; "
		          "if given, once)",
		          nrecv);
		return;
	}
	if (nrecv == 1 && strcmp(form_get(&rq->form, "receiving_hei_id"), ours) != 0) {
		req_error(rq, 400,
		          "receiving_hei_id \"%s\" is not covered by this node: it answers for "
		          "\"%s\" only (IMobilities v2 needs no receiving_hei_id)",
		          form_get(&rq->form, "receiving_hei_id"), ours);
		return;
	}
	if (form_count(&rq->form, "omobility_id") == 0) {
		req_error(rq, 400,
		          "omobility_id is required (repeat it for several mobilities, at most %d "
		          "distinct values)",
		          IMOB_MAX_OMOBILITY_IDS);
		return;
	}
	n = api_db_param_array(rq, "omobility_id", IMOB_MAX_OMOBILITY_IDS, &ids);
	if (n > IMOB_MAX_OMOBILITY_IDS) {
		req_error(rq, 400, "more than max-omobility-ids (%d) distinct omobility_id values",
		          IMOB_MAX_OMOBILITY_IDS);
		return;
	}
	if (n == -1) {
		req_error(rq, 400, "omobility_id values too large");
		return;
	}
	if ((callers = imob_callers_json(rq)) == NULL) {
		free(ids);
		req_error(rq, 500, "the caller's HEI list is too large");
		return;
	}
	api_db_query(rq, imob_sql, 3, (const char *const[]){ours, callers, ids}, imob_done);
	free(callers);
	free(ids);
}

static int
imob_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	if (buf_printf(out, "<%s xmlns=\"%s\" version=\"%s\">", e->name, e->ns, e->version) == -1 ||
	    api_manifest_http_security(out) == -1 || buf_addstr(out, "<get-url>") == -1 ||
	    xmlw_escape(out, c->public_url) == -1 || xmlw_escape(out, e->path) == -1)
		return -1;
	return buf_printf(out, "</get-url><max-omobility-ids>%d</max-omobility-ids></%s>",
	                  IMOB_MAX_OMOBILITY_IDS, e->name);
}

const struct api_entry api_imobilities_entry = {
    .name = "imobilities",
    .ns = IMOB_ENTRY_NS,
    .version = "2.0.0",
    .path = "/ewp/imobilities/v2",
    .methods = API_GET | API_POST,
    .signed_only = true,
    .metric = METRICS_API_IMOBILITIES,
    .handle = imob_handle,
    .manifest = imob_manifest,
};
