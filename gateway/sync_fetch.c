/*
 * sync_fetch.c - the partner's side of the institution sync: its
 * Institutions v2 and OUnits v2 APIs called (signed, responses verified
 * and validated against our schemas), every exchange written to the
 * message log, and the answers read into struct sync_hei.
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

static void
names_free(struct sync_names *n)
{
	for (size_t i = 0; i < n->n; i++) {
		free(n->lang[i]);
		free(n->name[i]);
	}
	free(n->lang);
	free(n->name);
	memset(n, 0, sizeof(*n));
}

void
sync_hei_free(struct sync_hei *h)
{
	free(h->id);
	free(h->erasmus);
	free(h->pic);
	free(h->abbreviation);
	free(h->website);
	free(h->logo);
	free(h->factsheet);
	names_free(&h->names);
	buf_free(&h->extra.addresses);
	buf_free(&h->extra.contacts);
	for (size_t i = 0; i < h->nounit_ids; i++)
		free(h->ounit_ids[i]);
	free(h->ounit_ids);
	for (size_t i = 0; i < h->nunits; i++) {
		struct sync_unit *u = &h->units[i];

		free(u->id);
		free(u->code);
		free(u->abbreviation);
		free(u->parent);
		free(u->website);
		free(u->logo);
		free(u->factsheet);
		names_free(&u->names);
		buf_free(&u->extra.addresses);
		buf_free(&u->extra.contacts);
	}
	free(h->units);
	memset(h, 0, sizeof(*h));
}

/* The developer-message of an <error-response>, or "". */
static void
developer_message(const struct httpc_result *res, char *out, size_t outlen)
{
	char xerr[64];
	xmlDocPtr doc;
	xmlNode *n;

	out[0] = '\0';
	if (res->body_len == 0 || (doc = xml_parse(res->body, res->body_len, SYNC_MAX_RESPONSE,
	                                           xerr, sizeof(xerr))) == NULL)
		return;
	for (n = xmlDocGetRootElement(doc)->children; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE &&
		    strcmp((const char *)n->name, "developer-message") == 0) {
			xmlChar *t = xmlNodeGetContent(n);

			snprintf(out, outlen, ": %.300s", t ? (const char *)t : "");
			xmlFree(t);
			break;
		}
	xmlFreeDoc(doc);
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
	e->method = res->method;
	e->url = res->url;
	e->status = (int)res->status;
	e->duration_ms = res->duration_ms;
	e->request_id = res->request_id;
	e->request_headers = res->request_headers;
	e->nrequest_headers = res->nrequest_headers;
	e->request_body = res->request_body;
	e->request_body_len = res->request_body_len;
	e->response_headers = res->headers;
	e->nresponse_headers = res->nheaders;
	e->response_body = res->body;
	e->response_body_len = res->body_len;
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

/* ---- reading the responses ---- */

static void
push(char ***v, size_t *n, char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = s;
}

static void
name_add(struct sync_names *n, const xmlNode *el)
{
	xmlChar *lang = xmlGetNsProp(el, (const xmlChar *)"lang", (const xmlChar *)XML_NS);
	size_t k = n->n;

	push(&n->name, &k, xml_text(el));
	push(&n->lang, &n->n, xstrdup(lang ? (const char *)lang : ""));
	xmlFree(lang);
}

/* *slot = the text of el, unless already set (the first one wins). */
static void
take(char **slot, const xmlNode *el)
{
	if (*slot == NULL)
		*slot = xml_text(el);
}

#define ADDR_NS    "https://github.com/erasmus-without-paper/ewp-specs-types-address/tree/stable-v1"
#define CONTACT_NS "https://github.com/erasmus-without-paper/ewp-specs-types-contact/tree/stable-v1"
#define PHONE_NS                                                                                   \
	"https://github.com/erasmus-without-paper/ewp-specs-types-phonenumber/tree/stable-v1"

void
sync_extra_init(struct sync_extra *x)
{
	buf_init(&x->addresses, SYNC_MAX_RESPONSE);
	buf_init(&x->contacts, SYNC_MAX_RESPONSE);
}

/* "key": text of el, or "key": [texts of the children named el's name] */
struct json_field {
	const char *elem, *key;
	bool array;
	const char *attr_lang; /* names-shaped arrays: [{"lang","name"}] */
};

static const struct json_field addr_fields[] = {
    {"recipientName", "recipient_names", true, NULL},
    {"addressLine", "lines", true, NULL},
    {"buildingNumber", "building_number", false, NULL},
    {"buildingName", "building_name", false, NULL},
    {"streetName", "street_name", false, NULL},
    {"unit", "unit", false, NULL},
    {"floor", "floor", false, NULL},
    {"postOfficeBox", "post_office_box", false, NULL},
    {"deliveryPointCode", "delivery_point_codes", true, NULL},
    {"postalCode", "postal_code", false, NULL},
    {"locality", "locality", false, NULL},
    {"region", "region", false, NULL},
    {"country", "country", false, NULL},
};

static const struct json_field contact_fields[] = {
    {"contact-name", "names", true, "lang"},
    {"person-given-names", "given_names", false, NULL},
    {"person-family-name", "family_name", false, NULL},
    {"phone-number", "phones", true, NULL},
    {"email", "emails", true, NULL},
    {"role-description", "role_descriptions", true, "lang"},
};

/* One JSON object from the children of el in namespace ns. */
static int
json_object(struct buf *b, const xmlNode *el, const char *ns, const struct json_field *f, size_t nf,
            const char *first_key, const char *first_value)
{
	int rc = buf_add(b, b->len ? ",{" : "[{", 2);

	if (rc == 0 && first_key != NULL)
		rc = buf_printf(b, "\"%s\":", first_key) == 0 && json_str(b, first_value) == 0 ? 0
		                                                                               : -1;
	for (size_t i = 0; rc == 0 && i < nf; i++) {
		bool any = false;

		for (const xmlNode *c = el->children; rc == 0 && c; c = c->next) {
			char *t;

			if (!xml_is(c, ns, f[i].elem) && !(strcmp(f[i].elem, "phone-number") == 0 &&
			                                   xml_is(c, PHONE_NS, "phone-number")))
				continue;
			if (strcmp(f[i].elem, "phone-number") == 0) {
				const xmlNode *e164 = xml_child(c, PHONE_NS, "e164");

				if (e164 == NULL)
					continue;
				t = xml_text(e164);
			} else
				t = xml_text(c);
			if (!any)
				rc = buf_printf(b, "%s\"%s\":%s", first_key || i ? "," : "",
				                f[i].key, f[i].array ? "[" : "");
			else
				rc = buf_add(b, ",", 1);
			if (rc == 0 && f[i].attr_lang) {
				xmlChar *lang = xmlGetNsProp(c, (const xmlChar *)"lang",
				                             (const xmlChar *)XML_NS);

				rc = buf_add(b, "{", 1);
				if (rc == 0 && lang)
					rc = buf_add(b, "\"lang\":", 7) == 0 &&
					             json_str(b, (const char *)lang) == 0 &&
					             buf_add(b, ",", 1) == 0
					         ? 0
					         : -1;
				if (rc == 0)
					rc = buf_add(b, "\"name\":", 7) == 0 &&
					             json_str(b, t) == 0 && buf_add(b, "}", 1) == 0
					         ? 0
					         : -1;
				xmlFree(lang);
			} else if (rc == 0)
				rc = json_str(b, t);
			free(t);
			any = true;
			if (!f[i].array)
				break;
		}
		if (rc == 0 && any && f[i].array)
			rc = buf_add(b, "]", 1);
		else if (rc == 0 && !any && first_key == NULL && i == 0)
			rc = buf_add(b, "\"_\":null", 8); /* keeps the commas right */
	}
	return rc == 0 ? buf_add(b, "}", 1) : -1;
}

/* Addresses and contacts among the children of an <hei> or <ounit>. */
static int
read_extra(const xmlNode *c, struct sync_extra *x)
{
	if (xml_is(c, ADDR_NS, "street-address"))
		return json_object(&x->addresses, c, ADDR_NS, addr_fields,
		                   sizeof(addr_fields) / sizeof(addr_fields[0]), "kind", "street");
	if (xml_is(c, ADDR_NS, "mailing-address"))
		return json_object(&x->addresses, c, ADDR_NS, addr_fields,
		                   sizeof(addr_fields) / sizeof(addr_fields[0]), "kind", "mailing");
	if (xml_is(c, CONTACT_NS, "contact"))
		return json_object(&x->contacts, c, CONTACT_NS, contact_fields,
		                   sizeof(contact_fields) / sizeof(contact_fields[0]), NULL, NULL);
	return 0;
}

/* The JSON array of what was read ("[]" when nothing); caller frees. */
char *
sync_json_array(const struct buf *b)
{
	char *out;

	if (b->len == 0)
		return xstrdup("[]");
	out = xmalloc(b->len + 2);
	memcpy(out, b->data, b->len);
	out[b->len] = ']';
	out[b->len + 1] = '\0';
	return out;
}

/*
 * Keeps each unit id once, and at most SYNC_MAX_OUNITS of them: the
 * partner's answer decides how many OUnits calls follow, so it is bounded.
 */
static void
add_ounit_id(struct sync_hei *h, char *id)
{
	/* Comparisons stay bounded: past 4 x the limit nothing is compared. */
	if (++h->nounit_seen > 4 * SYNC_MAX_OUNITS) {
		h->ounits_overflow = true;
		free(id);
		return;
	}
	for (size_t i = 0; i < h->nounit_ids; i++) {
		if (strcmp(h->ounit_ids[i], id) == 0) {
			free(id);
			return;
		}
	}
	if (h->nounit_ids >= SYNC_MAX_OUNITS) {
		h->ounits_overflow = true;
		free(id);
		return;
	}
	push(&h->ounit_ids, &h->nounit_ids, id);
}

static int
read_hei(xmlNode *root, const char *hei_id, struct sync_hei *h)
{
	for (xmlNode *n = root->children; n; n = n->next) {
		xmlNode *id;
		char *t;
		bool match;

		if (!xml_is(n, INST_NS, "hei") || (id = xml_child(n, INST_NS, "hei-id")) == NULL)
			continue;
		t = xml_text(id);
		match = strcmp(t, hei_id) == 0;
		free(t);
		if (!match || h->id != NULL)
			continue;
		h->id = xstrdup(hei_id);
		for (xmlNode *c = n->children; c; c = c->next) {
			if (c->type != XML_ELEMENT_NODE)
				continue;
			if (read_extra(c, &h->extra) == -1)
				return -1;
			if (xml_is(c, INST_NS, "other-id")) {
				xmlChar *type = xmlGetProp(c, (const xmlChar *)"type");

				if (type && strcmp((const char *)type, "erasmus") == 0)
					take(&h->erasmus, c);
				else if (type && strcmp((const char *)type, "pic") == 0)
					take(&h->pic, c);
				xmlFree(type);
			} else if (xml_is(c, INST_NS, "name"))
				name_add(&h->names, c);
			else if (xml_is(c, INST_NS, "abbreviation"))
				take(&h->abbreviation, c);
			else if (xml_is(c, INST_NS, "website-url"))
				take(&h->website, c);
			else if (xml_is(c, INST_NS, "logo-url"))
				take(&h->logo, c);
			else if (xml_is(c, INST_NS, "mobility-factsheet-url"))
				take(&h->factsheet, c);
			else if (xml_is(c, INST_NS, "ounit-id"))
				add_ounit_id(h, xml_text(c));
		}
	}
	return h->id ? 0 : -1;
}

static int
read_units(xmlNode *root, struct sync_hei *h)
{
	for (xmlNode *n = root->children; n; n = n->next) {
		struct sync_unit *u;

		if (!xml_is(n, OUNITS_NS, "ounit"))
			continue;
		h->units = xreallocarray(h->units, h->nunits + 1, sizeof(*h->units));
		u = &h->units[h->nunits++];
		memset(u, 0, sizeof(*u));
		sync_extra_init(&u->extra);
		for (xmlNode *c = n->children; c; c = c->next) {
			if (read_extra(c, &u->extra) == -1)
				return -1;
			if (xml_is(c, OUNITS_NS, "ounit-id"))
				take(&u->id, c);
			else if (xml_is(c, OUNITS_NS, "ounit-code"))
				take(&u->code, c);
			else if (xml_is(c, OUNITS_NS, "name"))
				name_add(&u->names, c);
			else if (xml_is(c, OUNITS_NS, "abbreviation"))
				take(&u->abbreviation, c);
			else if (xml_is(c, OUNITS_NS, "parent-ounit-id"))
				take(&u->parent, c);
			else if (xml_is(c, OUNITS_NS, "website-url"))
				take(&u->website, c);
			else if (xml_is(c, OUNITS_NS, "logo-url"))
				take(&u->logo, c);
			else if (xml_is(c, OUNITS_NS, "mobility-factsheet-url"))
				take(&u->factsheet, c);
		}
	}
	return 0;
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
	rc = read_hei(xmlDocGetRootElement(doc), hei_id, h);
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
		rc = read_units(xmlDocGetRootElement(doc), h);
		xmlFreeDoc(doc);
		if (rc == -1) {
			snprintf(err, errlen, "OUnits response too large");
			return -1;
		}
	}
	return 0;
}
