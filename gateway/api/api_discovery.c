/*
 * api_discovery.c - Discovery Manifest API v6: serves the manifest built
 * by manifest.c (anonymous, as the Registry fetches it).
 */
#include "api.h"
#include "req.h"
#include "xmlw.h"

#define DISCOVERY_ENTRY_NS                                                                         \
	"https://github.com/erasmus-without-paper/ewp-specs-api-discovery/blob/stable-v6/"         \
	"manifest-entry.xsd"

static void
api_discovery_handle(struct req *rq)
{
	req_reply(rq, 200, "text/xml; charset=utf-8", rq->d->manifest.data, rq->d->manifest.len);
}

static int
api_discovery_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	if (buf_printf(out, "<discovery xmlns=\"%s\" version=\"%s\"><url>", e->ns, e->version) ==
	        -1 ||
	    xmlw_escape(out, c->public_url) == -1 || xmlw_escape(out, c->manifest_path) == -1)
		return -1;
	return buf_addstr(out, "</url></discovery>");
}

const struct api_entry api_discovery_entry = {
    .name = "discovery",
    .ns = DISCOVERY_ENTRY_NS,
    .version = "6.0.0",
    .path = NULL, /* [ewp] manifest_path */
    .methods = API_GET,
    .signed_only = false,
    .metric = METRICS_API_MANIFEST,
    .handle = api_discovery_handle,
    .manifest = api_discovery_manifest,
};
