/*
 * api_institutions.c - Institutions API v2: what the SMILE core knows of
 * the HEIs asked for (hei_id, repeatable, required). Unknown ids are left
 * out, duplicates answered once, more than INST_MAX_HEI_IDS distinct ids
 * refused with 400. Answered from smile.etablissement and its exposed
 * composantes, in one query.
 */
#include <stdlib.h>

#include "api.h"
#include "api_db.h"
#include "req.h"
#include "xmlw.h"

#define INST_NS "https://github.com/erasmus-without-paper/ewp-specs-api-institutions/tree/stable-v2"
#define INST_ENTRY_NS                                                                              \
	"https://github.com/erasmus-without-paper/ewp-specs-api-institutions/blob/stable-v2/"      \
	"manifest-entry.xsd"

#define INST_MAX_HEI_IDS 10

/*
 * One row per XML element, in schema order: (group, pos, part, sub, elem,
 * attr, attr_value, text). group is the institution's key, pos its place
 * in the request, part the element's place in <hei>, sub the order within
 * a repeated element. root-ounit-id is not sent: SMILE's composantes are
 * faculties and departments, none stands for the whole institution.
 */
static const char inst_sql[] =
    "WITH h AS ("
    " SELECT e.*, array_position($1::text[], e.schac_id::text) AS pos"
    " FROM smile.etablissement e WHERE e.schac_id::text = ANY ($1::text[]))"
    " SELECT id, pos, 1 AS part, 0::bigint AS sub, 'hei-id' AS elem, NULL::text AS attr,"
    "  NULL::text AS attr_value, schac_id::text AS txt FROM h"
    " UNION ALL SELECT id, pos, 2, 0, 'other-id', 'type', 'erasmus', erasmus_code::text FROM h"
    " UNION ALL SELECT id, pos, 3, 0, 'other-id', 'type', 'pic', pic::text FROM h"
    " UNION ALL SELECT h.id, h.pos, 4, n.ord, 'name', 'xml:lang', n.e ->> 'lang', n.e ->> 'name'"
    "  FROM h, jsonb_array_elements(h.names) WITH ORDINALITY AS n (e, ord)"
    " UNION ALL SELECT id, pos, 5, 0, 'abbreviation', NULL, NULL, abbreviation FROM h"
    " UNION ALL " API_DB_ADDRESS_ROWS(
        "h", "etablissement_id",
        "6") " UNION ALL SELECT id, pos, 8, 0, 'website-url', NULL, NULL, website_url::text FROM h"
             " UNION ALL SELECT id, pos, 9, 0, 'logo-url', NULL, NULL, logo_url::text FROM h"
             " UNION ALL SELECT id, pos, 10, 0, 'mobility-factsheet-url', NULL, NULL, "
             "factsheet_url::text"
             "  FROM h"
             " UNION ALL " API_DB_CONTACT_ROWS("h", "etablissement_id",
                                               "11") " UNION ALL SELECT h.id, h.pos, 13, c.id, "
                                                     "'ounit-id', NULL, NULL, c.ounit_id::text"
                                                     "  FROM h JOIN smile.composante c ON "
                                                     "c.etablissement_id = h.id WHERE c.is_exposed"
                                                     " ORDER BY 2, 1, 3, 4";

static void
inst_done(struct req *rq, PGresult *res)
{
	struct buf b;
	int rc;

	buf_init(&b, 16 * 1024 * 1024);
	rc = buf_addstr(&b,
	                XMLW_DECL "<institutions-response xmlns=\"" INST_NS "\"" API_DB_XMLNS ">");
	if (rc == 0)
		rc = api_db_write_rows(&b, res, 4, "hei");
	if (rc == 0)
		rc = buf_addstr(&b, "</institutions-response>\n");
	api_db_send(rq, &b, rc, "institutions");
}

static void
inst_handle(struct req *rq)
{
	char *ids;
	int n;

	if (form_count(&rq->form, "hei_id") == 0) {
		req_error(rq, 400, "hei_id is required (repeat it for several HEIs)");
		return;
	}
	if ((n = api_db_param_array(rq, "hei_id", INST_MAX_HEI_IDS, &ids)) > INST_MAX_HEI_IDS) {
		req_error(rq, 400, "more than max-hei-ids (%d) distinct hei_id values",
		          INST_MAX_HEI_IDS);
		return;
	}
	if (n == -1) {
		req_error(rq, 400, "hei_id values too large");
		return;
	}
	api_db_query(rq, inst_sql, 1, (const char *const[]){ids}, inst_done);
	free(ids);
}

static int
inst_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	if (api_manifest_head(e, c, out) == -1)
		return -1;
	return buf_printf(out, "<max-hei-ids>%d</max-hei-ids></institutions>", INST_MAX_HEI_IDS);
}

const struct api_entry api_institutions_entry = {
    .name = "institutions",
    .ns = INST_ENTRY_NS,
    .version = "2.2.0",
    .path = "/ewp/institutions",
    .methods = API_GET | API_POST,
    .signed_only = true,
    .metric = METRICS_API_INSTITUTIONS,
    .handle = inst_handle,
    .manifest = inst_manifest,
};
