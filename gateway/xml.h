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
#include <sys/types.h> /* ssize_t */

#include <libxml/tree.h>

#include "ewpd.h"

/* catalog may be NULL; otherwise an OASIS catalog resolving schema URLs offline. */
void xml_init(const char *catalog);
void xml_cleanup(void);

/* Parses a document; NULL with a reason in err (line:column) on failure. */
xmlDocPtr xml_parse(const char *data, size_t len, size_t max_len, char *err, size_t errlen);

/*
 * Streaming parse, for documents too large to keep as a tree (the
 * Registry catalogue): the same refusals as xml_parse (no DOCTYPE, no
 * nesting past EWP_MAX_XML_DEPTH, no network, at most max_len bytes),
 * but elements and text go to callbacks as they are read and no tree is
 * built; nor is the document ever held whole.
 */
struct xml_el; /* an element being started; valid during the start callback */
struct xml_stream_cb {
	/* ns is "" for no namespace; name is the local name. */
	void (*start)(void *user, const char *ns, const char *name, const struct xml_el *el);
	void (*end)(void *user);
	/* Character data and CDATA, in pieces, references decoded. */
	void (*text)(void *user, const char *s, size_t len);
};
/*
 * Hands out the document: points *data at the next bytes (valid until
 * the next call) and returns their count; 0 at the end, -1 on failure.
 */
typedef ssize_t xml_next_fn(void *ctx, const char **data);
/*
 * 0 when the document was read whole and is well-formed; -1 with the
 * first problem (line: message) in err otherwise. The callbacks may have
 * seen part of the document either way.
 */
int xml_stream(const struct xml_stream_cb *cb, void *user, xml_next_fn *next, void *next_ctx,
               size_t max_len, char *err, size_t errlen) EWP_MUSTCHECK;
/*
 * Value of attribute `name` in namespace ns (NULL: none) as (pointer,
 * *len), not NUL-terminated; NULL when absent. Valid until the next call
 * or the end of the start callback.
 */
const char *xml_el_attr(const struct xml_el *el, const char *ns, const char *name, size_t *len);

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

/*
 * data indented for a person to read (parsed as xml_parse does: no DTD,
 * no entity, no network), or NULL when it is not well-formed XML. The
 * caller frees the text with xmlFree.
 */
char *xml_indent(const char *data, size_t len, size_t max_len, size_t *outlen);
/* Serialises doc (UTF-8, XML declaration); caller frees *out with xmlFree. */
void xml_dump(xmlDocPtr doc, char **out, size_t *len);

/*
 * The text of the first child element of the root named `name` (any
 * namespace) of the document data (a partner's <error-response>:
 * "developer-message", "user-message"...), cut to fit out; false, with
 * out "", when data is empty, not XML, or has no such child.
 */
bool xml_root_child_text(const char *data, size_t len, size_t max_len, const char *name, char *out,
                         size_t outlen);

#endif
