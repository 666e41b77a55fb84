/*
 * api_omobility_la_cnr.c - Outgoing Mobility Learning Agreement CNR
 * v1.1.0: a sending HEI tells us which mobilities' learning agreements
 * changed (sending_hei_id, required once and covered by the caller, else
 * 403; omobility_id, repeatable), and we queue a re-fetch through its
 * Outgoing Mobility LAs API. POST only, signed callers only.
 *
 * v1.1.0 also defines a stats endpoint (for the EWP Stats Portal, counts
 * of incoming LAs per academic year): api_omobility_la_cnr_stats.c. This
 * entry's manifest element carries its URL (stats-url).
 */
#include "api.h"
#include "api_cnr.h"
#include "xmlw.h"

#define OLC_NS                                                                                     \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-la-cnr/tree/stable-v1"
#define OLC_ENTRY_NS                                                                               \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-la-cnr/blob/stable-v1/"  \
	"manifest-entry.xsd"

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

/* <omobility-la-cnr><http-security/><url/><stats-url/><max-omobility-ids/> */
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
