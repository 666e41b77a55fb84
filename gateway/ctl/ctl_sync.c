/*
 * ctl_sync.c - `ewpctl sync institutions [HEI...]`: copies what partners
 * publish through their Institutions v2 and Organizational Units v2 APIs
 * into smile.etablissement and smile.composante, with their addresses
 * and contacts (smile.address, smile.contact; replaced only when changed).
 *
 * Partners are the HEIs of the cached Registry catalogue other than our
 * own and the EWP validator's; naming HEIs restricts the run to them.
 * Every response must be 200, signed by a server key of the host serving
 * the URL and valid against our copy of the response schema before
 * anything is read from it. One transaction per partner: a partner that
 * fails in any way leaves the database as it was. The outcome of each
 * partner goes to ewp.partner_syncs (when the institution has a row to
 * refer to) and to a table on stdout. Only units the Institutions answer
 * lists are asked for, by ounit_id, max-ounit-ids at a time (1 when the
 * catalogue gives none); each partner is one HEI, so one Institutions
 * request each. Units a partner stops listing are kept. Before all
 * that, SMILE institutions known only by their Erasmus code get their
 * SCHAC id from the catalogue.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "buf.h"
#include "ctl.h"
#include "httpc.h"
#include "keys.h"
#include "registry.h"
#include "xmalloc.h"
#include "xml.h"

#ifndef EWP_SCHEMA_DIR
#define EWP_SCHEMA_DIR "/usr/local/share/ewpd/schemas"
#endif

#define INST_ENTRY_NS                                                                              \
	"https://github.com/erasmus-without-paper/ewp-specs-api-institutions/blob/stable-v2/"      \
	"manifest-entry.xsd"
#define INST_NS "https://github.com/erasmus-without-paper/ewp-specs-api-institutions/tree/stable-v2"
#define OUNITS_ENTRY_NS                                                                            \
	"https://github.com/erasmus-without-paper/ewp-specs-api-ounits/blob/stable-v2/"            \
	"manifest-entry.xsd"
#define OUNITS_NS "https://github.com/erasmus-without-paper/ewp-specs-api-ounits/tree/stable-v2"
#define XML_NS    "http://www.w3.org/XML/1998/namespace"

#define SYNC_MAX_RESPONSE (16u * 1024 * 1024)
#define SYNC_ERR_LEN      512
#define SYNC_MAX_OUNITS   2000 /* units listed per partner, far above any HEI's */

struct sync {
	struct registry *reg;
	struct keys_priv *key;
	struct event_base *base;
	struct httpc *http;
	struct xsd *inst_xsd, *ou_xsd;
	PGconn *db;
	long timeout_ms;
};

/* One blocking exchange: the callback copies what is needed. */
struct sync_call {
	bool done;
	bool ok;
	struct buf body;
	char *err;
	size_t errlen;
};

/* What one partner told us. Strings owned (xml_text). */
struct sync_names {
	char **lang, **name;
	size_t n;
};

/* Addresses and contacts as JSON arrays, for jsonb_to_recordset. */
struct sync_extra {
	struct buf addresses, contacts;
};

struct sync_unit {
	char *id, *code, *abbreviation, *parent, *website, *logo, *factsheet;
	struct sync_names names;
	struct sync_extra extra;
};

struct sync_hei {
	char *id, *erasmus, *pic, *abbreviation, *website, *logo, *factsheet;
	struct sync_names names;
	struct sync_extra extra;
	char **ounit_ids;
	size_t nounit_ids;
	size_t nounit_seen;   /* ounit-id elements read, duplicates included */
	bool ounits_overflow; /* more units listed than SYNC_MAX_OUNITS */
	struct sync_unit *units;
	size_t nunits;
};

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

static void
hei_free(struct sync_hei *h)
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

/* ---- HTTP ---- */

static void
call_done(const struct httpc_result *res, void *arg)
{
	struct sync_call *c = arg;

	c->done = true;
	if (res->error != HTTPC_ERR_NONE) {
		snprintf(c->err, c->errlen, "%s: %s", httpc_error_name(res->error),
		         res->error_message);
		return;
	}
	if (!res->verified) {
		snprintf(c->err, c->errlen, "HTTP %ld, response signature refused: %s", res->status,
		         res->verdict ? res->verdict->message : "no verdict");
		return;
	}
	if (res->status != 200) {
		snprintf(c->err, c->errlen, "HTTP %ld", res->status);
		return;
	}
	if (buf_add(&c->body, res->body, res->body_len) == -1) {
		snprintf(c->err, c->errlen, "response too large");
		return;
	}
	c->ok = true;
}

/* POSTs form to url; the verified, schema-valid document or NULL with err set. */
static xmlDocPtr
sync_post(struct sync *s, const char *url, const char *form, struct xsd *xsd, char *err,
          size_t errlen)
{
	struct sync_call c = {.err = err, .errlen = errlen};
	struct httpc_params p = {
	    .method = "POST",
	    .url = url,
	    .body = form,
	    .body_len = strlen(form),
	    .key = s->key,
	    .reg = s->reg,
	    .timeout_ms = s->timeout_ms,
	    .max_response_bytes = SYNC_MAX_RESPONSE,
	};
	char xerr[SYNC_ERR_LEN];
	xmlDocPtr doc;

	buf_init(&c.body, SYNC_MAX_RESPONSE);
	if (httpc_request(s->http, &p, call_done, &c, err, errlen) == NULL) {
		buf_free(&c.body);
		return NULL;
	}
	while (!c.done)
		if (event_base_loop(s->base, EVLOOP_ONCE) == -1) {
			snprintf(err, errlen, "event loop failed");
			buf_free(&c.body);
			return NULL;
		}
	if (!c.ok) {
		buf_free(&c.body);
		return NULL;
	}
	doc = xml_parse(c.body.data, c.body.len, SYNC_MAX_RESPONSE, xerr, sizeof(xerr));
	buf_free(&c.body);
	if (doc == NULL) {
		snprintf(err, errlen, "invalid XML: %.400s", xerr);
		return NULL;
	}
	if (xsd_validate(xsd, doc, xerr, sizeof(xerr)) == -1) {
		snprintf(err, errlen, "response does not match the schema: %.400s", xerr);
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
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

static void
extra_init(struct sync_extra *x)
{
	buf_init(&x->addresses, SYNC_MAX_RESPONSE);
	buf_init(&x->contacts, SYNC_MAX_RESPONSE);
}

/* A JSON string; -1 when the buffer is full. */
static int
json_str(struct buf *b, const char *s)
{
	int rc = buf_add(b, "\"", 1);

	for (; rc == 0 && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			rc = buf_printf(b, "\\%c", c);
		else if (c < 0x20)
			rc = buf_printf(b, "\\u%04x", c);
		else
			rc = buf_add(b, s, 1);
	}
	return rc == 0 ? buf_add(b, "\"", 1) : -1;
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
static char *
json_array(const struct buf *b)
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
		extra_init(&u->extra);
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
static int
fetch_partner(struct sync *s, const char *hei_id, struct sync_hei *h, char *err, size_t errlen)
{
	struct httpc_endpoint ie, oe;
	char *form;
	xmlDocPtr doc;
	int rc, max;

	if (httpc_endpoint(s->reg, hei_id, INST_ENTRY_NS, "url", &ie, err, errlen) == -1)
		return -1;
	/* one HEI per partner: max-hei-ids (>= 1) never splits it further */
	form = form_of("hei_id", NULL, 0, 0, hei_id);
	doc = sync_post(s, ie.url, form, s->inst_xsd, err, errlen);
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
		doc = sync_post(s, oe.url, form, s->ou_xsd, err, errlen);
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

/* ---- database ---- */

/* Postgres array literal of strings ("{\"a\",\"b\"}"). */
static char *
pg_array(char *const *v, size_t n)
{
	struct buf b;
	bool ok;
	char *out;

	buf_init(&b, SYNC_MAX_RESPONSE);
	ok = buf_add(&b, "{", 1) == 0;
	for (size_t i = 0; ok && i < n; i++) {
		ok = buf_add(&b, i ? ",\"" : "\"", i ? 2 : 1) == 0;
		for (const char *p = v[i]; ok && *p; p++) {
			if (*p == '"' || *p == '\\')
				ok = buf_add(&b, "\\", 1) == 0;
			if (ok)
				ok = buf_add(&b, p, 1) == 0;
		}
		if (ok)
			ok = buf_add(&b, "\"", 1) == 0;
	}
	if (ok)
		ok = buf_add(&b, "}", 1) == 0;
	out = xstrdup(ok ? buf_cstr(&b) : "{}");
	buf_free(&b);
	return out;
}

/* Runs a parameterised statement; -1 with the server's message in err. */
static int
db_exec(PGconn *db, const char *sql, int n, const char *const *params, PGresult **out, char *err,
        size_t errlen)
{
	PGresult *res = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "database: %s", PQresultErrorMessage(res));
		/* one line is enough for the table */
		for (char *p = err; *p; p++)
			if (*p == '\n')
				*p = *(p + 1) ? ' ' : '\0';
		PQclear(res);
		return -1;
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return 0;
}

/* jsonb names from two parallel text[] parameters */
#define NAMES_SQL(l, n)                                                                            \
	"(SELECT jsonb_agg(CASE WHEN t.l = '' THEN jsonb_build_object('name', t.n)"                \
	" ELSE jsonb_build_object('lang', t.l, 'name', t.n) END ORDER BY t.o)"                     \
	" FROM unnest(" l "::text[], " n "::text[]) WITH ORDINALITY AS t (l, n, o))"

static const char hei_sql[] =
    "INSERT INTO smile.etablissement (schac_id, erasmus_code, pic, names, abbreviation,"
    " website_url, logo_url, factsheet_url)"
    " VALUES ($1, $2, $3, " NAMES_SQL(
        "$4",
        "$5") ", $6, $7, $8, $9)"
              " ON CONFLICT (schac_id) DO UPDATE SET"
              " erasmus_code = COALESCE(EXCLUDED.erasmus_code, etablissement.erasmus_code),"
              " pic = COALESCE(EXCLUDED.pic, etablissement.pic), names = EXCLUDED.names,"
              " abbreviation = EXCLUDED.abbreviation, website_url = EXCLUDED.website_url,"
              " logo_url = EXCLUDED.logo_url, factsheet_url = EXCLUDED.factsheet_url"
              " WHERE NOT etablissement.is_local AND (etablissement.erasmus_code, "
              "etablissement.pic,"
              " etablissement.names, etablissement.abbreviation, etablissement.website_url,"
              " etablissement.logo_url, etablissement.factsheet_url) IS DISTINCT FROM"
              " (COALESCE(EXCLUDED.erasmus_code, etablissement.erasmus_code),"
              " COALESCE(EXCLUDED.pic, etablissement.pic), EXCLUDED.names, EXCLUDED.abbreviation,"
              " EXCLUDED.website_url, EXCLUDED.logo_url, EXCLUDED.factsheet_url)";

static const char unit_sql[] =
    "INSERT INTO smile.composante (etablissement_id, ounit_id, code, names, abbreviation,"
    " website_url, logo_url, factsheet_url, source)"
    " VALUES ($1, $2, $3, " NAMES_SQL(
        "$4",
        "$5") ", $6, $7, $8, $9, 'ewp')"
              " ON CONFLICT (etablissement_id, ounit_id) DO UPDATE SET code = EXCLUDED.code,"
              " names = EXCLUDED.names, abbreviation = EXCLUDED.abbreviation,"
              " website_url = EXCLUDED.website_url, logo_url = EXCLUDED.logo_url,"
              " factsheet_url = EXCLUDED.factsheet_url, source = 'ewp'"
              " WHERE (composante.code, composante.names, composante.abbreviation, "
              "composante.website_url,"
              " composante.logo_url, composante.factsheet_url, composante.source) IS DISTINCT FROM"
              " (EXCLUDED.code, EXCLUDED.names, EXCLUDED.abbreviation, EXCLUDED.website_url,"
              " EXCLUDED.logo_url, EXCLUDED.factsheet_url, 'ewp')";

static const char parent_sql[] =
    "UPDATE smile.composante c SET parent_id = (SELECT p.id FROM smile.composante p"
    "  WHERE p.etablissement_id = $1 AND p.ounit_id = $3)"
    " WHERE c.etablissement_id = $1 AND c.ounit_id = $2 AND c.parent_id IS DISTINCT FROM"
    " (SELECT p.id FROM smile.composante p WHERE p.etablissement_id = $1 AND p.ounit_id = $3)";

/*
 * Addresses and contacts of one owner ($1 the id, $2 the JSON array),
 * replaced only when they differ from what is stored: the rows have no
 * identity of their own, and rewriting them would touch the owner's
 * modified_at on every run.
 */
#define ADDR_COLS                                                                                  \
	"kind, recipient_names, lines, building_number, building_name, street_name, unit, floor,"  \
	" post_office_box, delivery_point_codes, postal_code, locality, region, country"
#define ADDR_SQL(owner)                                                                            \
	"WITH want AS (SELECT kind, coalesce(recipient_names, '{}') AS recipient_names,"           \
	"  coalesce(lines, '{}') AS lines, building_number, building_name, street_name, unit,"     \
	"  floor, post_office_box, coalesce(delivery_point_codes, '{}') AS delivery_point_codes,"  \
	"  postal_code, locality, region, country"                                                 \
	"  FROM jsonb_to_recordset($2::jsonb) AS x (kind text, recipient_names text[],"            \
	"  lines text[], building_number text, building_name text, street_name text, unit text,"   \
	"  floor text, post_office_box text, delivery_point_codes text[], postal_code text,"       \
	"  locality text, region text, country text)),"                                            \
	" cur AS (SELECT kind, recipient_names, lines, building_number, building_name,"            \
	"  street_name, unit, floor, post_office_box, delivery_point_codes, postal_code, "         \
	"locality,"                                                                                \
	"  region, country::text FROM smile.address WHERE " owner " = $1),"                        \
	" changed AS (SELECT 1 WHERE EXISTS (SELECT * FROM want EXCEPT ALL SELECT * FROM cur)"     \
	"  OR EXISTS (SELECT * FROM cur EXCEPT ALL SELECT * FROM want)),"                          \
	" del AS (DELETE FROM smile.address WHERE " owner                                          \
	" = $1 AND EXISTS (SELECT FROM changed))"                                                  \
	" INSERT INTO smile.address (" owner ", " ADDR_COLS ")"                                    \
	" SELECT $1, " ADDR_COLS " FROM want WHERE EXISTS (SELECT FROM changed)"

#define CONTACT_SQL(owner)                                                                         \
	"WITH want AS (SELECT o::integer AS position, names, given_names, family_name,"            \
	"  coalesce(emails, '{}') AS emails, coalesce(phones, '{}') AS phones, role_descriptions"  \
	"  FROM ROWS FROM (jsonb_to_recordset($2::jsonb) AS (names jsonb, given_names text,"       \
	"  family_name text, emails text[], phones text[], role_descriptions jsonb))"              \
	"  WITH ORDINALITY AS x (names, given_names, family_name, emails, phones,"                 \
	"  role_descriptions, o)),"                                                                \
	" cur AS (SELECT position, names, given_names, family_name, emails::text[] AS emails,"     \
	"  phones::text[] AS phones, role_descriptions FROM smile.contact WHERE " owner " = $1),"  \
	" changed AS (SELECT 1 WHERE EXISTS (SELECT * FROM want EXCEPT ALL SELECT * FROM cur)"     \
	"  OR EXISTS (SELECT * FROM cur EXCEPT ALL SELECT * FROM want)),"                          \
	" del AS (DELETE FROM smile.contact WHERE " owner                                          \
	" = $1 AND EXISTS (SELECT FROM changed))"                                                  \
	" INSERT INTO smile.contact (" owner                                                       \
	", position, names, given_names, family_name, emails,"                                     \
	" phones, role_descriptions)"                                                              \
	" SELECT $1, position, names, given_names, family_name, emails::smile.email[],"            \
	" phones::smile.phone[], role_descriptions FROM want WHERE EXISTS (SELECT FROM changed)"

static int
write_extra(PGconn *db, const char *id, const struct sync_extra *x, bool unit, char *err,
            size_t errlen)
{
	char *addr = json_array(&x->addresses), *contacts = json_array(&x->contacts);
	int rc;

	rc = db_exec(db, unit ? ADDR_SQL("composante_id") : ADDR_SQL("etablissement_id"), 2,
	             (const char *const[]){id, addr}, NULL, err, errlen);
	if (rc == 0)
		rc = db_exec(db,
		             unit ? CONTACT_SQL("composante_id") : CONTACT_SQL("etablissement_id"),
		             2, (const char *const[]){id, contacts}, NULL, err, errlen);
	free(addr);
	free(contacts);
	return rc;
}

static int
write_names(const struct sync_names *n, char **langs, char **names)
{
	*langs = pg_array(n->lang, n->n);
	*names = pg_array(n->name, n->n);
	return 0;
}

/* Upserts one partner in the current transaction. */
static int
write_partner(struct sync *s, const struct sync_hei *h, char *err, size_t errlen)
{
	char *langs, *names, eid[32];
	PGresult *res;
	int rc = 0;

	write_names(&h->names, &langs, &names);
	rc = db_exec(s->db, hei_sql, 9,
	             (const char *const[]){h->id, h->erasmus, h->pic, langs, names, h->abbreviation,
	                                   h->website, h->logo, h->factsheet},
	             NULL, err, errlen);
	free(langs);
	free(names);
	if (rc == -1)
		return -1;
	if (db_exec(s->db, "SELECT id, is_local FROM smile.etablissement WHERE schac_id = $1", 1,
	            (const char *const[]){h->id}, &res, err, errlen) == -1)
		return -1;
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
		snprintf(err, errlen, "%s is our own institution here", h->id);
		PQclear(res);
		return -1;
	}
	snprintf(eid, sizeof(eid), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (write_extra(s->db, eid, &h->extra, false, err, errlen) == -1)
		return -1;
	for (size_t i = 0; rc == 0 && i < h->nunits; i++) {
		const struct sync_unit *u = &h->units[i];

		if (u->id == NULL || u->code == NULL) {
			snprintf(err, errlen, "an ounit without ounit-id or ounit-code");
			return -1;
		}
		write_names(&u->names, &langs, &names);
		rc = db_exec(s->db, unit_sql, 9,
		             (const char *const[]){eid, u->id, u->code, langs, names,
		                                   u->abbreviation, u->website, u->logo,
		                                   u->factsheet},
		             NULL, err, errlen);
		free(langs);
		free(names);
		if (rc == 0)
			rc = db_exec(s->db,
			             "SELECT id FROM smile.composante"
			             " WHERE etablissement_id = $1 AND ounit_id = $2",
			             2, (const char *const[]){eid, u->id}, &res, err, errlen);
		if (rc == 0) {
			char uid[32];

			snprintf(uid, sizeof(uid), "%s",
			         PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
			PQclear(res);
			rc = write_extra(s->db, uid, &u->extra, true, err, errlen);
		}
	}
	for (size_t i = 0; rc == 0 && i < h->nunits; i++) {
		const char *parent = h->units[i].parent;

		/* A unit naming itself as parent means "no parent", not a cycle. */
		if (parent && h->units[i].id && strcmp(parent, h->units[i].id) == 0)
			parent = NULL;
		rc = db_exec(s->db, parent_sql, 3,
		             (const char *const[]){eid, h->units[i].id, parent}, NULL, err, errlen);
	}
	return rc;
}

static const char ok_sql[] =
    "INSERT INTO ewp.partner_syncs (hei_id, last_attempt_at, last_success_at,"
    " consecutive_failures) VALUES ($1, now(), now(), 0)"
    " ON CONFLICT (hei_id) DO UPDATE SET last_attempt_at = now(), last_success_at = now(),"
    " consecutive_failures = 0";

static const char fail_sql[] =
    "INSERT INTO ewp.partner_syncs (hei_id, last_attempt_at, last_error_at, last_error,"
    " consecutive_failures)"
    " SELECT $1::text, now(), now(), left($2, 2000), 1"
    " WHERE EXISTS (SELECT 1 FROM smile.etablissement WHERE schac_id = $1::text)"
    " ON CONFLICT (hei_id) DO UPDATE SET last_attempt_at = now(), last_error_at = now(),"
    " last_error = EXCLUDED.last_error,"
    " consecutive_failures = partner_syncs.consecutive_failures + 1";

/* One partner, start to end; 0 on success, -1 with err. */
static int
sync_partner(struct sync *s, const char *hei_id, size_t *nunits, char *err, size_t errlen)
{
	struct sync_hei h;
	char derr[SYNC_ERR_LEN];
	int rc;

	memset(&h, 0, sizeof(h));
	extra_init(&h.extra);
	*nunits = 0;
	rc = fetch_partner(s, hei_id, &h, err, errlen);
	if (rc == 0)
		rc = db_exec(s->db, "BEGIN", 0, NULL, NULL, err, errlen);
	if (rc == 0) {
		rc = write_partner(s, &h, err, errlen);
		if (rc == 0)
			rc = db_exec(s->db, ok_sql, 1, (const char *const[]){hei_id}, NULL, err,
			             errlen);
		if (rc == 0)
			rc = db_exec(s->db, "COMMIT", 0, NULL, NULL, err, errlen);
		else
			(void)db_exec(s->db, "ROLLBACK", 0, NULL, NULL, derr, sizeof(derr));
	}
	if (rc == 0)
		*nunits = h.nunits;
	else if (db_exec(s->db, fail_sql, 2, (const char *const[]){hei_id, err}, NULL, derr,
	                 sizeof(derr)) == -1)
		ctl_err("sync: %s: %s", hei_id, derr);
	hei_free(&h);
	return rc;
}

/* SCHAC ids for SMILE's Erasmus-code-only institutions; the count set, or -1. */
static int
fill_schac_ids(struct sync *s)
{
	PGresult *res;
	char err[SYNC_ERR_LEN];
	int filled = 0;

	if (db_exec(s->db,
	            "SELECT id, erasmus_code FROM smile.etablissement"
	            " WHERE schac_id IS NULL AND erasmus_code IS NOT NULL ORDER BY id",
	            0, NULL, &res, err, sizeof(err)) == -1) {
		ctl_err("sync: %s", err);
		return -1;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *schac =
		    registry_hei_by_other_id(s->reg, "erasmus", PQgetvalue(res, i, 1));
		PGresult *u;

		if (schac == NULL)
			continue;
		if (db_exec(
		        s->db,
		        "UPDATE smile.etablissement SET schac_id = $1 WHERE id = $2"
		        " AND schac_id IS NULL AND NOT EXISTS (SELECT 1 FROM smile.etablissement"
		        " WHERE schac_id = $1)",
		        2, (const char *const[]){schac, PQgetvalue(res, i, 0)}, &u, err,
		        sizeof(err)) == -1) {
			ctl_err("sync: %s: %s", PQgetvalue(res, i, 1), err);
			continue;
		}
		if (strcmp(PQcmdTuples(u), "1") == 0)
			filled++;
		PQclear(u);
	}
	PQclear(res);
	return filled;
}

static bool
is_partner(const struct sync *s, const char *hei, const char *own)
{
	/* the EWP validator's HEIs (validator-hei01.developers.erasmuswithoutpaper.eu...) */
	if (strcmp(hei, own) == 0 || strncmp(hei, "validator-hei01", 15) == 0 ||
	    strncmp(hei, "validator-hei02", 15) == 0)
		return false;
	return registry_api(s->reg, hei, INST_ENTRY_NS) != NULL;
}

static int
sync_usage(void)
{
	ctl_err("usage: ewpctl sync institutions [--cacert FILE] [--conninfo STR] [--schemas DIR]"
	        " [--timeout SECONDS] [HEI...]");
	return 2;
}

static int
sync_institutions(struct ctl *ctl, int argc, char **argv)
{
	struct conf *conf = ctl_conf(ctl);
	struct sync s = {.timeout_ms = 0};
	struct httpc_opts ho = {.ca_file = conf->registry_ca_file};
	const char *conninfo = conf->db_conninfo, *schemas = EWP_SCHEMA_DIR;
	const char **heis = NULL;
	size_t nheis = 0, nfailed = 0;
	char err[SYNC_ERR_LEN], *path;
	int rc = 1, filled;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--cacert") == 0 && i + 1 < argc)
			ho.ca_file = argv[++i];
		else if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
			conninfo = argv[++i];
		else if (strcmp(argv[i], "--schemas") == 0 && i + 1 < argc)
			schemas = argv[++i];
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);

			if (*end != '\0' || v < 1 || v > 3600) {
				free(heis);
				return sync_usage();
			}
			s.timeout_ms = v * 1000;
		} else if (argv[i][0] != '-') {
			heis = xreallocarray(heis, nheis + 1, sizeof(*heis));
			heis[nheis++] = argv[i];
		} else {
			free(heis);
			return sync_usage();
		}
	}

	path = xmalloc(strlen(schemas) + 64);
	snprintf(path, strlen(schemas) + 64, "%s/institutions-response.xsd", schemas);
	s.inst_xsd = xsd_load(path, err, sizeof(err));
	snprintf(path, strlen(schemas) + 64, "%s/ounits-response.xsd", schemas);
	if (s.inst_xsd != NULL)
		s.ou_xsd = xsd_load(path, err, sizeof(err));
	free(path);
	if (s.ou_xsd == NULL) {
		ctl_err("sync: %s", err);
		goto out;
	}
	if ((s.reg = registry_load_file(conf->registry_cache, err, sizeof(err))) == NULL) {
		ctl_err("sync: %s", err);
		goto out;
	}
	path = conf_key_path(conf, conf->client_key);
	s.key = keys_priv_load(path, false, err, sizeof(err));
	free(path);
	if (s.key == NULL) {
		ctl_err("sync: %s", err);
		goto out;
	}
	s.db = PQconnectdb(conninfo);
	if (PQstatus(s.db) != CONNECTION_OK) {
		ctl_err("sync: cannot connect to the database: %s", PQerrorMessage(s.db));
		goto out;
	}
	PQclear(PQexec(s.db, "SET client_min_messages = warning"));
	if ((s.base = event_base_new()) == NULL || (s.http = httpc_new(s.base, &ho)) == NULL) {
		ctl_err("sync: cannot set up the HTTP client");
		goto out;
	}
	if ((filled = fill_schac_ids(&s)) == -1)
		goto out;
	if (filled > 0)
		printf("SCHAC ids filled from the catalogue: %d\n", filled);

	if (nheis == 0)
		for (size_t i = 0; i < registry_hei_count(s.reg); i++)
			if (is_partner(&s, registry_hei_at(s.reg, i), conf->hei_id)) {
				heis = xreallocarray(heis, nheis + 1, sizeof(*heis));
				heis[nheis++] = registry_hei_at(s.reg, i);
			}
	printf("%-40s %-6s %-6s %s\n", "HEI", "RESULT", "OUNITS", "ERROR");
	for (size_t i = 0; i < nheis; i++) {
		size_t nunits = 0;
		int r;

		if (strcmp(heis[i], conf->hei_id) == 0) {
			snprintf(err, sizeof(err), "our own institution");
			r = -1;
		} else
			r = sync_partner(&s, heis[i], &nunits, err, sizeof(err));
		if (r == 0)
			printf("%-40s %-6s %-6zu\n", heis[i], "ok", nunits);
		else {
			printf("%-40s %-6s %-6s %s\n", heis[i], "failed", "-", err);
			nfailed++;
		}
	}
	fflush(stdout);
	rc = nfailed ? 1 : 0;
out:
	httpc_free(s.http);
	if (s.base)
		event_base_free(s.base);
	if (s.db)
		PQfinish(s.db);
	keys_priv_free(s.key);
	registry_free(s.reg);
	xsd_free(s.inst_xsd);
	xsd_free(s.ou_xsd);
	free(heis);
	return rc;
}

int
ctl_sync(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "institutions") == 0)
		return sync_institutions(ctl, argc - 1, argv + 1);
	return sync_usage();
}
