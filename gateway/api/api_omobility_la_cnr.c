/*
 * api_omobility_la_cnr.c - Outgoing Mobility Learning Agreement CNR
 * v1.1.0: a sending HEI tells us which mobilities' learning agreements
 * changed (sending_hei_id, required once and covered by the caller, else
 * 403; omobility_id, repeatable), and we queue a re-fetch through its
 * Outgoing Mobility LAs API. POST only, signed callers only.
 *
 * v1.1.0 also defines a stats endpoint (GET, harvested by the EWP Stats
 * Portal): the learning agreements of our incoming students (fetched by
 * jobs_refetch_las.c into smile.learning_agreement, sql/0009) counted per
 * receiving academic year from 2021/2022: all of them; those with a first
 * version (signed by all three parties); those whose latest version is
 * approved (no proposal after it), rejected (the latest proposal carries
 * our comment, accepted by the sending HEI) or awaiting our decision.
 * LAs the sending HEI no longer serves (gone) are not counted.
 */
#include "api.h"
#include "api_cnr.h"
#include "api_db.h"
#include "req.h"
#include "xmlw.h"

#define OLC_NS                                                                                     \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-la-cnr/tree/stable-v1"
#define OLC_ENTRY_NS                                                                               \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-la-cnr/blob/stable-v1/"  \
	"manifest-entry.xsd"

#define OLC_STATS_NS                                                                               \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-la-cnr/tree/stable-v1/"  \
	"endpoints/stats-response.xsd"

/*
 * $1 our HEI. Per LA: a first version in place; the state of its latest
 * changes-proposal (current: awaiting us, or rejected when our comment on
 * it was accepted; commented: rejected); then counted per year.
 */
static const char olc_stats_sql[] =
    "SELECT year, count(*), count(*) FILTER (WHERE fv),"
    " count(*) FILTER (WHERE fv AND NOT coalesce(awaiting OR rejected, false)),"
    " count(*) FILTER (WHERE rejected), count(*) FILTER (WHERE awaiting)"
    " FROM (SELECT m.receiving_academic_year_id AS year,"
    "  EXISTS (SELECT 1 FROM smile.la_version v WHERE v.learning_agreement_id = la.id"
    "   AND v.kind = 'first-version' AND v.state = 'current') AS fv,"
    "  p.state = 'commented' OR (p.state = 'current' AND p.commented) AS rejected,"
    "  p.state = 'current' AND NOT p.commented AS awaiting"
    "  FROM smile.learning_agreement la JOIN smile.mobility m ON m.id = la.mobility_id"
    "  LEFT JOIN LATERAL (SELECT v.state, EXISTS (SELECT 1 FROM ewp.decisions d"
    "    WHERE d.mobility_id = m.id AND d.kind = 'la-comment' AND d.state = 'accepted'"
    "    AND d.proposal_id = v.proposal_id) AS commented"
    "   FROM smile.la_version v WHERE v.learning_agreement_id = la.id"
    "   AND v.kind = 'changes-proposal' ORDER BY v.id DESC LIMIT 1) p ON true"
    "  WHERE NOT m.is_outgoing AND m.receiving_hei_id = $1 AND la.gone_at IS NULL"
    "  AND m.receiving_academic_year_id >= '2021/2022') s"
    " GROUP BY year ORDER BY year";

static void
olc_stats_done(struct req *rq, PGresult *res)
{
	static const char *const counts[] = {
	    "la-incoming-total",
	    "la-incoming-some-version-approved",
	    "la-incoming-latest-version-approved",
	    "la-incoming-latest-version-rejected",
	    "la-incoming-latest-version-awaiting",
	};
	struct buf b;
	int rc;

	buf_init(&b, 1024 * 1024);
	rc = buf_addstr(&b, XMLW_DECL "<las-incoming-stats-response xmlns=\"" OLC_STATS_NS "\">");
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		rc = buf_addstr(&b, "<academic-year-la-stats>")
		         ?: xmlw_elem(&b, "receiving-academic-year-id", PQgetvalue(res, i, 0));
		for (int k = 0; k < 5 && rc == 0; k++)
			rc = xmlw_elem(&b, counts[k], PQgetvalue(res, i, k + 1));
		rc = rc ?: buf_addstr(&b, "</academic-year-la-stats>");
	}
	rc = rc ?: buf_addstr(&b, "</las-incoming-stats-response>\n");
	api_db_send(rq, &b, rc, "omobility-la-cnr stats");
}

static void
olc_stats_handle(struct req *rq)
{
	api_db_query(rq, olc_stats_sql, 1, (const char *const[]){rq->d->conf->hei_id},
	             olc_stats_done);
}

/* url, stats-url, max-omobility-ids (the stats entry writes nothing). */
static int
olc_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	if (api_manifest_head(e, c, out) == -1 || buf_addstr(out, "<stats-url>") == -1 ||
	    xmlw_escape(out, c->public_url) == -1 ||
	    xmlw_escape(out, api_omobility_la_cnr_stats_entry.path) == -1)
		return -1;
	return buf_printf(out, "</stats-url><max-omobility-ids>%d</max-omobility-ids></%s>",
	                  API_CNR_MAX_OMOBILITY_IDS, e->name);
}

static int
olc_no_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	(void)e, (void)c, (void)out;
	return 0;
}

static const struct api_cnr olc = {
    .response_root = "omobility-la-cnr-response",
    .response_ns = OLC_NS,
    .fetch_api = "omobility-las",
    .sending_hei_param = true,
};

static void
olc_done(struct req *rq, PGresult *res)
{
	api_cnr_done(rq, res, &olc);
}

static void
olc_handle(struct req *rq)
{
	api_cnr_handle(rq, &olc, olc_done);
}

const struct api_entry api_omobility_la_cnr_entry = {
    .name = "omobility-la-cnr",
    .ns = OLC_ENTRY_NS,
    .version = "1.1.0",
    .path = "/ewp/omobility-la-cnr",
    .methods = API_POST,
    .signed_only = true,
    .metric = METRICS_API_OMOBILITY_LA_CNR,
    .handle = olc_handle,
    .manifest = olc_manifest,
};

const struct api_entry api_omobility_la_cnr_stats_entry = {
    .name = "omobility-la-cnr",
    .ns = OLC_ENTRY_NS,
    .version = "1.1.0",
    .path = "/ewp/omobility-la-cnr/stats",
    .methods = API_GET,
    .signed_only = true,
    .metric = METRICS_API_OMOBILITY_LA_CNR,
    .handle = olc_stats_handle,
    .manifest = olc_no_manifest,
};
