/*
 * xml.h - hardened XML intake and schema validation on libxml2.
 *
 * Parsing never touches the network, never loads a DTD and never expands
 * external entities; documents deeper than EWP_MAX_XML_DEPTH or larger
 * than the given limit are refused before libxml2 builds a tree.
 * xml_init() must run once before any other call (it installs an entity
 * loader that refuses everything not resolved by a local XML catalog).
 */
#ifndef XML_H
#define XML_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "ewpd.h"

/* catalog may be NULL; otherwise an OASIS catalog resolving schema URLs offline. */
void xml_init(const char *catalog);
void xml_cleanup(void);

/* Parses a document; NULL with a reason in err (line:column) on failure. */
xmlDocPtr xml_parse(const char *data, size_t len, size_t max_len, char *err, size_t errlen);

struct xsd;
/* Compiles an XSD file (imports resolved through the catalog). */
struct xsd *xsd_load(const char *path, char *err, size_t errlen);
void xsd_free(struct xsd *x);
/* 0 when valid; -1 with the first problems (line: message) in err. */
int xsd_validate(struct xsd *x, xmlDocPtr doc, char *err, size_t errlen) EWP_MUSTCHECK;

/* Namespace-aware helpers for walking trees. */
bool xml_is(const xmlNode *n, const char *ns, const char *name);
/* First element child with that namespace and name, or NULL. */
xmlNode *xml_child(const xmlNode *n, const char *ns, const char *name);
/* Text content with surrounding whitespace trimmed; caller frees. */
char *xml_text(const xmlNode *n);

/* Serialises doc (UTF-8, XML declaration); caller frees *out with xmlFree. */
void xml_dump(xmlDocPtr doc, char **out, size_t *len);

#endif
