/*
 * api_factsheet.c - Mobility Factsheet API v1: the factsheet of our HEI,
 * from the file named by [ewp] factsheet (loaded and checked with the
 * configuration, see factsheet.c), for the HEIs asked for (hei_id,
 * repeatable, required). Only our own HEI has a factsheet here: unknown
 * ids are left out (an empty <factsheet-response> is a valid answer),
 * duplicates answered once, more than FS_MAX_HEI_IDS distinct ids refused
 * with 400. Served and advertised only when the file is configured. Needs
 * no database, so it answers while PostgreSQL is down.
 */
#include <string.h>

#include "api.h"
#include "factsheet.h"
#include "req.h"
#include "xmlw.h"

#define FS_ENTRY_NS                                                                                \
	"https://github.com/erasmus-without-paper/ewp-specs-api-factsheet/blob/stable-v1/"         \
	"manifest-entry.xsd"

#define FS_MAX_HEI_IDS 10

static const char fs_empty[] = XMLW_DECL "<factsheet-response xmlns=\"" FACTSHEET_NS "\"/>\n";

static bool
fs_seen(const char *const *kept, int n, const char *v)
{
	for (int i = 0; i < n; i++)
		if (strcmp(kept[i], v) == 0)
			return true;
	return false;
}

static void
fs_handle(struct req *rq)
{
	/* Only distinct values are kept, so the work is bounded by
	 * parameters x FS_MAX_HEI_IDS however many duplicates are sent. */
	const char *kept[FS_MAX_HEI_IDS + 1];
	const struct factsheet *f = rq->d->factsheet;
	bool ours = false;
	int n = 0;

	for (size_t i = 0; i < rq->form.n && n <= FS_MAX_HEI_IDS; i++) {
		const char *v = rq->form.params[i].value;

		if (strcmp(rq->form.params[i].name, "hei_id") != 0 || fs_seen(kept, n, v))
			continue;
		kept[n++] = v;
		ours = ours || strcmp(v, rq->d->conf->hei_id) == 0;
	}
	if (n == 0) {
		req_error(rq, 400, "hei_id is required (repeat it for several HEIs)");
		return;
	}
	if (n > FS_MAX_HEI_IDS) {
		req_error(rq, 400, "more than max-hei-ids (%d) distinct hei_id values",
		          FS_MAX_HEI_IDS);
		return;
	}
	if (ours && f != NULL)
		req_reply(rq, 200, "text/xml; charset=utf-8", f->xml, f->len);
	else
		req_reply(rq, 200, "text/xml; charset=utf-8", fs_empty, sizeof(fs_empty) - 1);
}

static int
fs_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	if (api_manifest_head(e, c, out) == -1)
		return -1;
	return buf_printf(out, "<max-hei-ids>%d</max-hei-ids></factsheet>", FS_MAX_HEI_IDS);
}

static bool
fs_enabled(const struct conf *c)
{
	return c->factsheet[0] != '\0';
}

const struct api_entry api_factsheet_entry = {
    .name = "factsheet",
    .ns = FS_ENTRY_NS,
    .version = "1.2.0",
    .path = "/ewp/factsheet",
    .methods = API_GET | API_POST,
    .signed_only = true,
    .metric = METRICS_API_FACTSHEET,
    .handle = fs_handle,
    .manifest = fs_manifest,
    .enabled = fs_enabled,
};
