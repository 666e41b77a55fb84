/*
 * api_echo.c - Echo API v2: tells a caller which HEIs its key covers and
 * repeats its echo parameters, in order, duplicates kept. Used by partners
 * and by the EWP validator to test security; anonymous callers are refused.
 */
#include <string.h>

#include "api.h"
#include "req.h"
#include "xmlw.h"

#define ECHO_NS "https://github.com/erasmus-without-paper/ewp-specs-api-echo/tree/stable-v2"
#define ECHO_ENTRY_NS                                                                              \
	"https://github.com/erasmus-without-paper/ewp-specs-api-echo/blob/stable-v2/"              \
	"manifest-entry.xsd"

static void
api_echo_handle(struct req *rq)
{
	struct buf b;
	int rc;

	buf_init(&b, EWP_MAX_BODY_BYTES + 64 * 1024);
	rc = buf_addstr(&b, XMLW_DECL "<response xmlns=\"" ECHO_NS "\">");
	for (size_t i = 0; i < rq->ncaller_heis && rc == 0; i++)
		rc = xmlw_elem(&b, "hei-id", rq->caller_heis[i]);
	for (size_t i = 0; i < rq->form.n && rc == 0; i++)
		if (strcmp(rq->form.params[i].name, "echo") == 0)
			rc = xmlw_elem(&b, "echo", rq->form.params[i].value);
	if (rc == 0)
		rc = buf_addstr(&b, "</response>\n");
	if (rc == -1)
		req_error(rq, 400, "echo values too large");
	else
		req_reply(rq, 200, "text/xml; charset=utf-8", b.data, b.len);
	buf_free(&b);
}

static int
api_echo_manifest(const struct api_entry *e, const struct conf *c, struct buf *out)
{
	if (api_manifest_head(e, c, out) == -1)
		return -1;
	return buf_addstr(out, "</echo>");
}

const struct api_entry api_echo_entry = {
    .name = "echo",
    .ns = ECHO_ENTRY_NS,
    .version = "2.0.1",
    .path = "/ewp/echo",
    .methods = API_GET | API_POST,
    .signed_only = true,
    .metric = METRICS_API_ECHO,
    .handle = api_echo_handle,
    .manifest = api_echo_manifest,
};
