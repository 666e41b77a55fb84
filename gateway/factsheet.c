/*
 * factsheet.c - loading and checking the configured Mobility Factsheet.
 *
 * The file is read whole (it is small and written by the administrator,
 * but still bounded), parsed with the same hardening as peer documents,
 * validated against our schema, checked to be one factsheet for our own
 * HEI, then tidied and serialised once: the API handler only copies the
 * bytes out.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/tree.h>

#include "factsheet.h"
#include "xmalloc.h"
#include "xml.h"

#define XSI_NS "http://www.w3.org/2001/XMLSchema-instance"

static void factsheet_fail(char *err, size_t errlen, const char *fmt, ...) EWP_PRINTF(3, 4);

static void
factsheet_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The whole file, at most EWP_MAX_FACTSHEET_BYTES; caller frees. */
static char *
factsheet_read(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *data;
	size_t n;

	if (f == NULL) {
		factsheet_fail(err, errlen, "factsheet %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) == -1 || !S_ISREG(st.st_mode)) {
		factsheet_fail(err, errlen, "factsheet %s: not a regular file", path);
		fclose(f);
		return NULL;
	}
	if (st.st_size > EWP_MAX_FACTSHEET_BYTES) {
		factsheet_fail(err, errlen, "factsheet %s: %lld bytes, more than the %d allowed",
		               path, (long long)st.st_size, EWP_MAX_FACTSHEET_BYTES);
		fclose(f);
		return NULL;
	}
	data = xmalloc((size_t)st.st_size + 1);
	n = fread(data, 1, (size_t)st.st_size, f);
	if (ferror(f) || n != (size_t)st.st_size) {
		factsheet_fail(err, errlen, "factsheet %s: read error", path);
		free(data);
		fclose(f);
		return NULL;
	}
	fclose(f);
	data[n] = '\0';
	*len = n;
	return data;
}

static bool
factsheet_blank(const xmlChar *s)
{
	for (; s && *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	return true;
}

/*
 * Drops what partners need not receive: comments, processing
 * instructions and the indentation between elements (text that is only
 * white space, in an element that has element children; the schema has
 * no mixed content, so no value is touched).
 */
static void
factsheet_tidy(xmlNode *n)
{
	bool has_elements = false;
	xmlNode *c, *next;

	for (c = n->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			has_elements = true;
	for (c = n->children; c; c = next) {
		next = c->next;
		if (c->type == XML_COMMENT_NODE || c->type == XML_PI_NODE ||
		    (c->type == XML_TEXT_NODE && has_elements && factsheet_blank(c->content))) {
			xmlUnlinkNode(c);
			xmlFreeNode(c);
		} else if (c->type == XML_ELEMENT_NODE) {
			factsheet_tidy(c);
		}
	}
}

/* Comments and PIs around the root element go too. */
static void
factsheet_tidy_doc(xmlDocPtr doc, xmlNode *root)
{
	xmlNode *c, *next;
	xmlNs *xsi;

	for (c = doc->children; c; c = next) {
		next = c->next;
		if (c->type == XML_COMMENT_NODE || c->type == XML_PI_NODE) {
			xmlUnlinkNode(c);
			xmlFreeNode(c);
		}
	}
	factsheet_tidy(root);
	/* A schemaLocation hint names a file on the admin's machine. */
	if ((xsi = xmlSearchNsByHref(doc, root, (const xmlChar *)XSI_NS)) != NULL)
		xmlUnsetNsProp(root, xsi, (const xmlChar *)"schemaLocation");
}

/* 0 when doc is one factsheet, for c->hei_id; -1 with err set otherwise. */
static int
factsheet_check_hei(const struct conf *c, xmlNode *root, char *err, size_t errlen)
{
	xmlNode *fs = NULL, *hei;
	int count = 0;
	char *id;
	int rc = 0;

	for (xmlNode *n = root->children; n; n = n->next)
		if (xml_is(n, FACTSHEET_NS, "factsheet") && count++ == 0)
			fs = n;
	if (count != 1) {
		factsheet_fail(
		    err, errlen,
		    "factsheet %s: holds %d <factsheet> elements; exactly one is expected, "
		    "for this node's HEI ([ewp] hei_id \"%s\")",
		    c->factsheet, count, c->hei_id);
		return -1;
	}
	hei = xml_child(fs, FACTSHEET_NS, "hei-id");
	id = xml_text(hei);
	if (strcmp(id, c->hei_id) != 0) {
		factsheet_fail(err, errlen,
		               "factsheet %s: line %ld: <hei-id> is \"%.100s\" but [ewp] hei_id is "
		               "\"%s\"; a node serves the factsheet of its own HEI only",
		               c->factsheet, hei ? xmlGetLineNo(hei) : 0L, id, c->hei_id);
		rc = -1;
	}
	free(id);
	return rc;
}

struct factsheet *
factsheet_load(const struct conf *c, char *err, size_t errlen)
{
	char xerr[768], *data, *schema = NULL;
	struct factsheet *f = NULL;
	struct xsd *xsd = NULL;
	xmlDocPtr doc = NULL;
	xmlNode *root;
	size_t len;

	if ((data = factsheet_read(c->factsheet, &len, err, errlen)) == NULL)
		return NULL;
	if ((doc = xml_parse(data, len, EWP_MAX_FACTSHEET_BYTES, xerr, sizeof(xerr))) == NULL) {
		factsheet_fail(err, errlen, "factsheet %s: not well-formed XML: %s", c->factsheet,
		               xerr);
		goto done;
	}
	root = xmlDocGetRootElement(doc);
	if (!xml_is(root, FACTSHEET_NS, "factsheet-response")) {
		factsheet_fail(
		    err, errlen,
		    "factsheet %s: the root element is <%s> in namespace \"%s\"; expected "
		    "<factsheet-response xmlns=\"" FACTSHEET_NS "\"> "
		    "(see factsheet.example.xml)",
		    c->factsheet, root ? (const char *)root->name : "",
		    root && root->ns ? (const char *)root->ns->href : "");
		goto done;
	}
	schema = xasprintf("%s/" FACTSHEET_SCHEMA, c->schema_dir);
	if ((xsd = xsd_load(schema, xerr, sizeof(xerr))) == NULL) {
		factsheet_fail(
		    err, errlen,
		    "factsheet %s cannot be checked: schema %s: %s (see [ewp] schema_dir)",
		    c->factsheet, schema, xerr);
		goto done;
	}
	if (xsd_validate(xsd, doc, xerr, sizeof(xerr)) == -1) {
		factsheet_fail(err, errlen,
		               "factsheet %s does not match the Mobility Factsheet v1 schema: %s",
		               c->factsheet, xerr);
		goto done;
	}
	if (factsheet_check_hei(c, root, err, errlen) == -1)
		goto done;
	factsheet_tidy_doc(doc, root);
	f = xcalloc(1, sizeof(*f));
	xml_dump(doc, &f->xml, &f->len);
done:
	xsd_free(xsd);
	free(schema);
	if (doc)
		xmlFreeDoc(doc);
	free(data);
	return f;
}

void
factsheet_free(struct factsheet *f)
{
	if (f == NULL)
		return;
	xmlFree(f->xml);
	free(f);
}
