/*
 * sync_fetch.c - the partner's side of the institution sync: its
 * Institutions v2 and OUnits v2 APIs called (signed, responses verified
 * and validated against our schemas), every exchange written to the
 * message log; sync_read.c reads the answers.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "httpc.h"
#include "json.h"
#include "keys.h"
#include "log.h"
#include "sync_int.h"
#include "xmalloc.h"
#include "xml.h"

/* ": <developer-message>" of an <error-response>, or "". */
static void
developer_message(const struct httpc_result *res, char *out, size_t outlen)
{
	char dev[301];

	out[0] = '\0';
	if (xml_root_child_text(res->body, res->body_len, SYNC_MAX_RESPONSE, "developer-message",
	                        dev, sizeof(dev)))
		snprintf(out, outlen, ": %s", dev);
}

/* Checks the answer (transport, signature, status, XML, schema) into c. */
static void
call_check(struct sync_call *c, const struct httpc_result *res)
{
	char xerr[SYNC_ERR_LEN], dev[320];

	if (res->error != HTTPC_ERR_NONE) {
		snprintf(c->err, c->errlen, "%s: %s: %s", c->log.api, httpc_error_name(res->error),
		         res->error_message);
		return;
	}
	if (!res->verified) {
		snprintf(c->err, c->errlen, "%s: HTTP %ld, response signature refused: %s",
		         c->log.api, res->status,
		         res->verdict ? res->verdict->message : "no verdict");
		return;
	}
	if (res->status != 200) {
		developer_message(res, dev, sizeof(dev));
		snprintf(c->err, c->errlen, "%s: HTTP %ld%s", c->log.api, res->status, dev);
		return;
	}
	c->doc = xml_parse(res->body, res->body_len, SYNC_MAX_RESPONSE, xerr, sizeof(xerr));
	if (c->doc == NULL) {
		snprintf(c->err, c->errlen, "%s: invalid XML: %.400s", c->log.api, xerr);
		c->log.validation = MSGLOG_INVALID;
		return;
	}
	if (xsd_validate(c->xsd, c->doc, xerr, sizeof(xerr)) == -1) {
		snprintf(c->err, c->errlen, "%s: response does not match the schema: %.400s",
		         c->log.api, xerr);
		c->log.validation = MSGLOG_INVALID;
		xmlFreeDoc(c->doc);
		c->doc = NULL;
		return;
	}
	c->log.validation = MSGLOG_VALID;
}

static void
call_done(const struct httpc_result *res, void *arg)
{
	struct sync_call *c = arg;
	struct msglog_entry *e = &c->log;
	char lerr[SYNC_ERR_LEN];

	c->done = true;
	call_check(c, res);
	msglog_entry_exchange(e, res);
	if (e->validation == MSGLOG_INVALID)
		e->validation_error = c->err;
	e->error = c->doc ? NULL : c->err;
	if (msglog_insert_pg(c->s->db, e, c->s->body_max, &c->s->last_log_id, lerr, sizeof(lerr)) ==
	    -1)
		log_warnx("%s", lerr);
}

/* POSTs form to the API's url; the verified, schema-valid document or NULL with err set. */
static xmlDocPtr
sync_post(struct sync *s, const char *hei_id, const struct httpc_endpoint *ep, const char *form,
          struct xsd *xsd, char *err, size_t errlen)
{
	const char *partner[] = {hei_id};
	struct sync_call c = {
	    .s = s,
	    .hei_id = hei_id,
	    .api = ep->api,
	    .xsd = xsd,
	    .err = err,
	    .errlen = errlen,
	    .log = {.outbound = true,
	            .partner_heis = partner,
	            .npartner_heis = 1,
	            .api = ep->api->name,
	            .api_version = ep->api->version,
	            .key_id = keys_priv_keyid(s->key)},
	};
	struct httpc_params p = {
	    .method = "POST",
	    .url = ep->url,
	    .body = form,
	    .body_len = strlen(form),
	    .key = s->key,
	    .reg = s->reg,
	    .timeout_ms = s->timeout_ms,
	    .max_response_bytes = SYNC_MAX_RESPONSE,
	};

	msglog_entry_start(&c.log);
	if (httpc_request(s->http, &p, call_done, &c, err, errlen) == NULL)
		return NULL;
	while (!c.done)
		if (event_base_loop(s->base, EVLOOP_ONCE) == -1) {
			snprintf(err, errlen, "event loop failed");
			return NULL;
		}
	return c.doc;
}

/* "name=v1&name=v2..." for ids[from, to) */
static char *
form_of(const char *name, char *const *ids, size_t from, size_t to, const char *first)
{
	struct buf b;
	char *e, *out;
	bool ok = true;

	buf_init(&b, SYNC_MAX_RESPONSE);
	if (first != NULL) {
		e = curl_easy_escape(NULL, first, 0);
		ok = e != NULL && buf_printf(&b, "hei_id=%s", e) == 0;
		curl_free(e);
	}
	for (size_t i = from; ok && i < to; i++) {
		e = curl_easy_escape(NULL, ids[i], 0);
		ok = e != NULL && buf_printf(&b, "%s%s=%s", b.len ? "&" : "", name, e) == 0;
		curl_free(e);
	}
	out = ok ? xstrdup(buf_cstr(&b)) : NULL;
	buf_free(&b);
	return out;
}

/* Asks the partner; 0 with h filled, -1 with err. */
int
sync_fetch_partner(struct sync *s, const char *hei_id, struct sync_hei *h, char *err, size_t errlen)
{
	struct httpc_endpoint ie, oe;
	char *form;
	xmlDocPtr doc;
	int rc, max;

	if (httpc_endpoint(s->reg, hei_id, INST_ENTRY_NS, "url", &ie, err, errlen) == -1)
		return -1;
	/* one HEI per partner: max-hei-ids (>= 1) never splits it further */
	form = form_of("hei_id", NULL, 0, 0, hei_id);
	doc = sync_post(s, hei_id, &ie, form, s->inst_xsd, err, errlen);
	free(form);
	if (doc == NULL)
		return -1;
	rc = sync_read_hei(xmlDocGetRootElement(doc), hei_id, h);
	xmlFreeDoc(doc);
	if (rc == -1) {
		snprintf(err, errlen, "the Institutions API does not know %s", hei_id);
		return -1;
	}
	if (h->ounits_overflow) {
		snprintf(err, errlen, "the Institutions answer lists more than %d units",
		         SYNC_MAX_OUNITS);
		return -1;
	}
	if (h->nounit_ids == 0 ||
	    httpc_endpoint(s->reg, hei_id, OUNITS_ENTRY_NS, "url", &oe, err, errlen) == -1) {
		err[0] = '\0';
		return 0;
	}
	max = httpc_endpoint_limit(&oe, "max-ounit-ids", 1);
	if (max < 1)
		max = 1;
	for (size_t i = 0; i < h->nounit_ids; i += (size_t)max) {
		size_t to = i + (size_t)max < h->nounit_ids ? i + (size_t)max : h->nounit_ids;

		form = form_of("ounit_id", h->ounit_ids, i, to, hei_id);
		doc = sync_post(s, hei_id, &oe, form, s->ou_xsd, err, errlen);
		free(form);
		if (doc == NULL)
			return -1;
		rc = sync_read_units(xmlDocGetRootElement(doc), h);
		xmlFreeDoc(doc);
		if (rc == -1) {
			snprintf(err, errlen, "OUnits response too large");
			return -1;
		}
	}
	return 0;
}
