/*
 * api_omobility_la_cnr.c - Outgoing Mobility Learning Agreement CNR
 * v1.1.0: a sending HEI tells us which mobilities' learning agreements
 * changed (sending_hei_id, required once and covered by the caller, else
 * 403; omobility_id, repeatable), and we queue a re-fetch through its
 * Outgoing Mobility LAs API. POST only, signed callers only.
 *
 * v1.1.0 also defines an optional stats endpoint (GET, for the EWP Stats
 * Portal, counts of incoming LAs per academic year). It is not served yet:
 * the SMILE core keeps no learning agreements to count, and publishing
 * counts of nothing would mislead the Stats Portal. stats-url is optional
 * in the manifest entry, so the entry stays valid without it.
 */
#include "api.h"
#include "api_cnr.h"

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

const struct api_entry api_omobility_la_cnr_entry = {
    .name = "omobility-la-cnr",
    .ns = OLC_ENTRY_NS,
    .version = "1.1.0",
    .path = "/ewp/omobility-la-cnr",
    .methods = API_POST,
    .signed_only = true,
    .metric = METRICS_API_OMOBILITY_LA_CNR,
    .handle = olc_handle,
    .manifest = api_cnr_manifest,
};
