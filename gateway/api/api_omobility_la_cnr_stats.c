/*
 * api_omobility_la_cnr_stats.c - the stats endpoint of the Outgoing
 * Mobility Learning Agreement CNR API v1.1.0: counts of the learning
 * agreements we received as the receiving HEI (partners' LAs stored by
 * sql/0009), per receiving academic year from 2021/2022 on, as the EWP
 * Stats Portal harvests them every month (las-incoming-stats-response).
 * The counts come from smile.la_incoming_stats() (sql/0012), which
 * mirrors the sending side's (api_omobility_las.c stats).
 *
 * Who may call: the EWP architecture says the server MUST let the Stats
 * Portal (HEI stats.erasmuswithoutpaper.eu) in and says nothing of other
 * callers. The answer is aggregate counts with no personal data, so, as
 * for our outgoing LA stats, any caller with a client key of the
 * catalogue is answered (the same counts for everybody); anonymous
 * callers are refused (401). No parameters; GET as the specification
 * says, POST accepted too (as every other EWP endpoint), any other method
 * 405.
 *
 * Served at public_url + /ewp/omobility-la-cnr/stats; the CNR listener's
 * manifest entry (api_omobility_la_cnr.c) carries it as stats-url.
 */
#include "api.h"
#include "api_db.h"
#include "req.h"
#include "xmlw.h"

#define OLC_STATS_NS                                                                               \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-la-cnr/tree/stable-v1/"  \
	"endpoints/stats-response.xsd"
#define OLC_ENTRY_NS                                                                               \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-la-cnr/blob/stable-v1/"  \
	"manifest-entry.xsd"

/* $1 our HEI. Columns: year, then the five counts in schema order. */
static const char olc_stats_sql[] =
    "SELECT receiving_academic_year_id, total, some_version_approved,"
    " latest_approved, latest_rejected, latest_awaiting"
    " FROM smile.la_incoming_stats($1)";

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

/* The listener's entry (api_omobility_la_cnr.c) lists this URL. */
static int
olc_stats_no_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	(void)e;
	(void)c;
	(void)out;
	return 0;
}

const struct api_entry api_omobility_la_cnr_stats_entry = {
    .name = "omobility-la-cnr",
    .ns = OLC_ENTRY_NS,
    .version = "1.1.0",
    .path = "/ewp/omobility-la-cnr/stats",
    .methods = API_GET | API_POST,
    .signed_only = true,
    .metric = METRICS_API_OMOBILITY_LA_CNR,
    .handle = olc_stats_handle,
    .manifest = olc_stats_no_manifest,
};
