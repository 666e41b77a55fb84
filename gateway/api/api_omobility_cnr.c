/*
 * api_omobility_cnr.c - Outgoing Mobility CNR, v1 and v2: a sending HEI
 * tells us (the receiving HEI) which of its mobilities changed, and we
 * queue a re-fetch through its Outgoing Mobilities API.
 *
 * The majors differ in their parameters and namespaces, so each has its
 * own path and manifest entry. v1 (1.0.0): sending_hei_id (required by
 * the spec, once; the caller must cover it, else 403) and omobility_id
 * (repeatable). v2 (2.0.0) dropped sending_hei_id: the sending HEI is the
 * caller's. The Registry validator runs its v2 cases against v1 too,
 * without sending_hei_id: v1 then also takes the caller's HEI rather
 * than refuse a notification it can act on.
 * POST only, signed callers only.
 */
#include "api.h"
#include "api_cnr.h"

#define OMC_V1_NS                                                                                  \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-cnr/tree/stable-v1"
#define OMC_V2_NS                                                                                  \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-cnr/tree/stable-v2"
#define OMC_ENTRY_NS(v)                                                                            \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-cnr/blob/stable-" v      \
	"/manifest-entry.xsd"

static const struct api_cnr omc_v1 = {
    .response_root = "omobility-cnr-response",
    .response_ns = OMC_V1_NS,
    .fetch_api = "omobilities",
    .sending_hei_param = true,
    .sending_hei_optional = true,
};

static const struct api_cnr omc_v2 = {
    .response_root = "omobility-cnr-response",
    .response_ns = OMC_V2_NS,
    .fetch_api = "omobilities",
    .sending_hei_param = false,
};

static void
omc_v1_done(struct req *rq, PGresult *res)
{
	api_cnr_done(rq, res, &omc_v1);
}

static void
omc_v1_handle(struct req *rq)
{
	api_cnr_handle(rq, &omc_v1, omc_v1_done);
}

static void
omc_v2_done(struct req *rq, PGresult *res)
{
	api_cnr_done(rq, res, &omc_v2);
}

static void
omc_v2_handle(struct req *rq)
{
	api_cnr_handle(rq, &omc_v2, omc_v2_done);
}

const struct api_entry api_omobility_cnr_v1_entry = {
    .name = "omobility-cnr",
    .ns = OMC_ENTRY_NS("v1"),
    .version = "1.0.0",
    .path = "/ewp/omobility-cnr/v1",
    .methods = API_POST,
    .signed_only = true,
    .metric = METRICS_API_OMOBILITY_CNR,
    .handle = omc_v1_handle,
    .manifest = api_cnr_manifest,
};

const struct api_entry api_omobility_cnr_v2_entry = {
    .name = "omobility-cnr",
    .ns = OMC_ENTRY_NS("v2"),
    .version = "2.0.0",
    .path = "/ewp/omobility-cnr/v2",
    .methods = API_POST,
    .signed_only = true,
    .metric = METRICS_API_OMOBILITY_CNR,
    .handle = omc_v2_handle,
    .manifest = api_cnr_manifest,
};
