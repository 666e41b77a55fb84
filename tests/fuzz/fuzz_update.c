/*
 * fuzz_update.c - libFuzzer target for the update requests partners POST
 * to us (OMobilities v3 update, OMobility LAs v1.2 update): xml_parse()
 * with the limits the handlers use, then xsd_validate() against our
 * intake schemas (ewp-schemas/intake/omobilities-update-request.xsd and
 * omobility-las-update-request.xsd, read from the checkout root: run it
 * from there, as `make fuzz` does).
 *
 * Invariants checked beyond "no crash, no leak, no hang": a refusal says
 * why; a document one schema accepts has exactly what its handler reads
 * without further checks (api_omobilities_update.c reads the first
 * element child of the root, its omobility-id and proposal-id;
 * smile.la_partner_update() reads sending-hei-id and the decision's
 * omobility-id): present, an EWP identifier where the schema says so.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "xml.h"

#define FUZZ_MAX_LEN (256 * 1024)
#define OMOB_NS                                                                                    \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/"       \
	"endpoints/update-request.xsd"
#define LAS_NS                                                                                     \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-las/blob/stable-v1/"     \
	"endpoints/update-request.xsd"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct xsd *omob_xsd, *las_xsd;

static struct xsd *
fuzz_schema(const char *path)
{
	char err[1024];
	struct xsd *x = xsd_load(path, err, sizeof(err));

	if (x == NULL) {
		fprintf(stderr, "fuzz_update: %s: %s (run from the checkout root)\n", path, err);
		abort();
	}
	return x;
}

/* The first element child of n, or NULL. */
static xmlNode *
first_element(const xmlNode *n)
{
	for (xmlNode *c = n->children; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			return c;
	return NULL;
}

/* A child that must be there, holding an EWP identifier (1-64 of !..~). */
static void
need_id(const xmlNode *parent, const char *ns, const char *name)
{
	xmlNode *c = xml_child(parent, ns, name);
	char *t;
	size_t n;

	if (c == NULL)
		abort();
	t = xml_text(c);
	n = strlen(t);
	if (n == 0 || n > 64)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e)
			abort();
	free(t);
}

static void
check_omob(const xmlNode *root)
{
	xmlNode *el = first_element(root);

	if (!xml_is(root, OMOB_NS, "omobilities-update-request") || el == NULL)
		abort();
	if (!xml_is(el, OMOB_NS, "approve-proposal-v1") &&
	    !xml_is(el, OMOB_NS, "reject-proposal-v1"))
		abort();
	need_id(el, OMOB_NS, "omobility-id");
	if (xml_child(el, OMOB_NS, "proposal-id") == NULL)
		abort();
	if (xml_is(el, OMOB_NS, "reject-proposal-v1") && xml_child(el, OMOB_NS, "comment") == NULL)
		abort();
}

static void
check_las(const xmlNode *root)
{
	xmlNode *el;

	if (!xml_is(root, LAS_NS, "omobility-las-update-request"))
		abort();
	need_id(root, LAS_NS, "sending-hei-id");
	el = xml_child(root, LAS_NS, "approve-proposal-v1");
	if (el == NULL)
		el = xml_child(root, LAS_NS, "comment-proposal-v1");
	if (el == NULL)
		abort();
	need_id(el, LAS_NS, "omobility-id");
	if (xml_child(el, LAS_NS, "changes-proposal-id") == NULL ||
	    xml_child(el, LAS_NS, "signature") == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	xmlDocPtr doc;
	xmlNode *root;

	if (omob_xsd == NULL) {
		omob_xsd = fuzz_schema("ewp-schemas/intake/omobilities-update-request.xsd");
		las_xsd = fuzz_schema("ewp-schemas/intake/omobility-las-update-request.xsd");
	}
	doc = xml_parse((const char *)data, size, FUZZ_MAX_LEN, err, sizeof(err));
	if (doc == NULL) {
		if (err[0] == '\0')
			abort(); /* a refusal must carry a reason */
		return 0;
	}
	if (xmlGetIntSubset(doc) != NULL)
		abort(); /* DOCTYPE slipped through */
	root = xmlDocGetRootElement(doc);
	if (xsd_validate(omob_xsd, doc, err, sizeof(err)) == 0)
		check_omob(root);
	else if (err[0] == '\0')
		abort();
	if (xsd_validate(las_xsd, doc, err, sizeof(err)) == 0)
		check_las(root);
	else if (err[0] == '\0')
		abort();
	xmlFreeDoc(doc);
	return 0;
}
