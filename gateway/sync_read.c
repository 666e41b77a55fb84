/*
 * sync_read.c - a partner's Institutions v2 and OUnits v2 answers (already
 * verified and validated) read into struct sync_hei: ids, names,
 * abbreviation, URLs (the first of each), addresses and contacts as JSON
 * for jsonb_to_recordset, the units listed and their details. Only
 * libxml2 here, so the fuzz target can drive it alone.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
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

int
sync_read_hei(xmlNode *root, const char *hei_id, struct sync_hei *h)
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

/* Whether id is one of the units the institution listed, not yet read. */
static bool
unit_wanted(const struct sync_hei *h, const char *id)
{
	bool listed = false;

	for (size_t i = 0; i < h->nounit_ids && !listed; i++)
		listed = strcmp(h->ounit_ids[i], id) == 0;
	for (size_t i = 0; i < h->nunits && listed; i++)
		listed = strcmp(h->units[i].id, id) != 0;
	return listed;
}

int
sync_read_units(xmlNode *root, struct sync_hei *h)
{
	size_t examined = 0;

	for (xmlNode *n = root->children; n; n = n->next) {
		struct sync_unit *u;
		xmlNode *idn;
		char *id;
		bool wanted;

		if (!xml_is(n, OUNITS_NS, "ounit"))
			continue;
		/* a partner ignoring the ounit_id filter gets its answer refused,
		 * not read thousands of times */
		if (++examined > 4 * SYNC_MAX_OUNITS)
			return -1;
		if ((idn = xml_child(n, OUNITS_NS, "ounit-id")) == NULL)
			continue;
		id = xml_text(idn);
		wanted = unit_wanted(h, id);
		free(id);
		if (!wanted)
			continue; /* not asked for, or a duplicate */
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
