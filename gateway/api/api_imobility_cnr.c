/*
 * api_imobility_cnr.c - Incoming Mobility CNR v2: the receiving HEI of
 * one of our outgoing mobilities tells us (the sending HEI) that its part
 * of the mobility (the actual arrival and departure dates) changed, and
 * we queue a re-fetch through its Incoming Mobilities API
 * (jobs_refetch_imobilities.c).
 *
 * v2 (2.0.0) takes omobility_id only (repeatable; v1's receiving_hei_id
 * is gone): the receiving HEI is the caller's, as for OMobility CNR v2.
 * POST only, signed callers only; the shared body is api_cnr.c.
 */
#include "api.h"
#include "api_cnr.h"

#define IMC_V2_NS                                                                                  \
	"https://github.com/erasmus-without-paper/ewp-specs-api-imobility-cnr/tree/stable-v2"
#define IMC_ENTRY_NS                                                                               \
	"https://github.com/erasmus-without-paper/ewp-specs-api-imobility-cnr/blob/stable-v2/"     \
	"manifest-entry.xsd"

static const struct api_cnr imc_v2 = {
    .response_root = "imobility-cnr-response",
    .response_ns = IMC_V2_NS,
    .fetch_api = "imobilities",
    .sending_hei_param = false,
};

static void
imc_v2_done(struct req *rq, PGresult *res)
{
	api_cnr_done(rq, res, &imc_v2);
}

static void
imc_v2_handle(struct req *rq)
{
	api_cnr_handle(rq, &imc_v2, imc_v2_done);
}

const struct api_entry api_imobility_cnr_v2_entry = {
    .name = "imobility-cnr",
    .ns = IMC_ENTRY_NS,
    .version = "2.0.0",
    .path = "/ewp/imobility-cnr/v2",
    .methods = API_POST,
    .signed_only = true,
    .metric = METRICS_API_IMOBILITY_CNR,
    .handle = imc_v2_handle,
    .manifest = api_cnr_manifest,
};
