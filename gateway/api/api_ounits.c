/*
 * api_ounits.c - Organizational Units API v2: the exposed composantes of
 * one HEI (hei_id, required, single; unknown → 400) chosen by ounit_id or
 * by ounit_code (repeatable, exactly one of the two kinds). Unknown ids are
 * left out, duplicates answered once, more than the advertised maximum
 * refused with 400. The HEI is part of the WHERE clause, so ids of another
 * institution's units never match.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_db.h"
#include "req.h"
#include "xmlw.h"

#define OUNITS_NS "https://github.com/erasmus-without-paper/ewp-specs-api-ounits/tree/stable-v2"
#define OUNITS_ENTRY_NS                                                                            \
	"https://github.com/erasmus-without-paper/ewp-specs-api-ounits/blob/stable-v2/"            \
	"manifest-entry.xsd"

#define OUNITS_MAX_IDS   10
#define OUNITS_MAX_CODES 10

/*
 * One row per XML element, as in api_institutions.c: (group, pos, part,
 * sub, elem, attr, attr_value, text), plus a marker row of group 0 when
 * the HEI exists at all (unknown hei_id is a 400, no HEI is an empty
 * answer). col is the column matched: ounit_id or code (constants only).
 * A parent that is not exposed is not named either.
 */
#define OUNITS_SQL(col)                                                                            \
	"WITH u AS ("                                                                              \
	" SELECT c.*, array_position($2::text[], c." col "::text) AS pos,"                         \
	"  (SELECT p.ounit_id::text FROM smile.composante p"                                       \
	"   WHERE p.id = c.parent_id AND p.is_exposed) AS parent_ounit"                            \
	" FROM smile.composante c JOIN smile.etablissement e ON e.id = c.etablissement_id"         \
	" WHERE e.schac_id::text = $1 AND c.is_exposed AND c." col "::text = ANY ($2::text[]))"    \
	" SELECT 0::bigint AS grp, 0 AS pos, 0 AS part, 0::bigint AS sub, 'hei' AS elem,"          \
	"  NULL::text AS attr, NULL::text AS attr_value, NULL::text AS txt"                        \
	"  FROM smile.etablissement WHERE schac_id::text = $1"                                     \
	" UNION ALL SELECT id, pos, 1, 0, 'ounit-id', NULL, NULL, ounit_id::text FROM u"           \
	" UNION ALL SELECT id, pos, 2, 0, 'ounit-code', NULL, NULL, code::text FROM u"             \
	" UNION ALL SELECT u.id, u.pos, 3, n.ord, 'name', 'xml:lang', n.e ->> 'lang',"             \
	"  n.e ->> 'name' FROM u, jsonb_array_elements(u.names) WITH ORDINALITY AS n (e, ord)"     \
	" UNION ALL SELECT id, pos, 4, 0, 'abbreviation', NULL, NULL, abbreviation FROM u"         \
	" UNION ALL SELECT id, pos, 5, 0, 'parent-ounit-id', NULL, NULL, parent_ounit FROM u"      \
	" UNION ALL " API_DB_ADDRESS_ROWS(                                                         \
	    "u", "composante_id",                                                                  \
	    "6") " UNION ALL SELECT id, pos, 8, 0, 'website-url', NULL, NULL, website_url::text "  \
	         "FROM u"                                                                          \
	         " UNION ALL SELECT id, pos, 9, 0, 'logo-url', NULL, NULL, logo_url::text FROM u"  \
	         " UNION ALL SELECT id, pos, 10, 0, 'mobility-factsheet-url', NULL, NULL,"         \
	         "  factsheet_url::text FROM u"                                                    \
	         " UNION ALL " API_DB_CONTACT_ROWS("u", "composante_id",                           \
	                                           "11") " ORDER BY 2, 1, 3, 4"

static const char ounits_sql_ids[] = OUNITS_SQL("ounit_id");
static const char ounits_sql_codes[] = OUNITS_SQL("code");

/* Whether the marker row says the HEI exists (it sorts first). */
static bool
ounits_hei_known(PGresult *res)
{
	return PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 0), "0") == 0;
}

static void
ounits_done(struct req *rq, PGresult *res)
{
	struct buf b;
	int rc;

	if (!ounits_hei_known(res)) {
		req_error(rq, 400, "unknown hei_id \"%s\": no such institution here",
		          form_get(&rq->form, "hei_id"));
		return;
	}
	buf_init(&b, 16 * 1024 * 1024);
	rc = buf_addstr(&b, XMLW_DECL "<ounits-response xmlns=\"" OUNITS_NS "\"" API_DB_XMLNS ">");
	if (rc == 0)
		rc = api_db_write_rows(&b, res, 4, "ounit");
	if (rc == 0)
		rc = buf_addstr(&b, "</ounits-response>\n");
	api_db_send(rq, &b, rc, "ounits");
}

/* The two ways of choosing units: by surrogate id or by human code. */
struct ounits_kind {
	const char *param; /* request parameter */
	const char *limit; /* manifest element stating the maximum */
	int max;
	const char *sql;
};

static const struct ounits_kind ounits_by_id = {"ounit_id", "max-ounit-ids", OUNITS_MAX_IDS,
                                                ounits_sql_ids};
static const struct ounits_kind ounits_by_code = {"ounit_code", "max-ounit-codes", OUNITS_MAX_CODES,
                                                  ounits_sql_codes};

/* The kind asked for when hei_id and the parameters are acceptable;
 * otherwise NULL and the request is answered. */
static const struct ounits_kind *
ounits_check(struct req *rq)
{
	size_t nhei = form_count(&rq->form, "hei_id");
	size_t nids = form_count(&rq->form, "ounit_id");
	size_t ncodes = form_count(&rq->form, "ounit_code");

	if (nhei != 1) {
		req_error(rq, 400, "hei_id is required exactly once (got %zu)", nhei);
		return NULL;
	}
	if (!api_db_valid_id(form_get(&rq->form, "hei_id"))) {
		req_error(rq, 400,
		          "hei_id is not an EWP identifier (1 to 64 printable ASCII "
		          "characters)");
		return NULL;
	}
	if ((nids > 0) == (ncodes > 0)) {
		req_error(rq, 400, "give either ounit_id or ounit_code (got %zu and %zu)", nids,
		          ncodes);
		return NULL;
	}
	return nids > 0 ? &ounits_by_id : &ounits_by_code;
}

static void
ounits_handle(struct req *rq)
{
	const struct ounits_kind *k;
	char *vals;
	int n;

	if ((k = ounits_check(rq)) == NULL)
		return;
	if ((n = api_db_param_array(rq, k->param, k->max, &vals)) > k->max) {
		req_error(rq, 400, "more than %s (%d) distinct %s values", k->limit, k->max,
		          k->param);
		return;
	}
	if (n == -1) {
		req_error(rq, 400, "%s values too large", k->param);
		return;
	}
	api_db_query(rq, k->sql, 2, (const char *const[]){form_get(&rq->form, "hei_id"), vals},
	             ounits_done);
	free(vals);
}

static int
ounits_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	if (api_manifest_head(e, c, out) == -1)
		return -1;
	return buf_printf(out,
	                  "<max-ounit-ids>%d</max-ounit-ids>"
	                  "<max-ounit-codes>%d</max-ounit-codes></organizational-units>",
	                  OUNITS_MAX_IDS, OUNITS_MAX_CODES);
}

const struct api_entry api_ounits_entry = {
    .name = "organizational-units",
    .ns = OUNITS_ENTRY_NS,
    .version = "2.1.1",
    .path = "/ewp/ounits",
    .methods = API_GET | API_POST,
    .signed_only = true,
    .metric = METRICS_API_OUNITS,
    .handle = ounits_handle,
    .manifest = ounits_manifest,
};
