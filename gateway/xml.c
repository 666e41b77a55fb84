/*
 * xml.c - hardened XML intake and schema validation on libxml2.
 *
 * Peer documents: size checked first, then parsed by libxml2 with two SAX
 * hooks of ours. One refuses any DOCTYPE at its first callback (EWP
 * documents never carry one, and this kills XXE and entity expansion
 * bombs before an entity is even declared); the other counts element
 * nesting and stops the parser past EWP_MAX_XML_DEPTH, so a depth bomb
 * never grows into a tree. Errors go to a per-call structured handler, so
 * nothing is printed and no state passes from one call to the next.
 *
 * Schemas: files on disk whose imports name https URLs. Our entity loader
 * (process-wide, installed by xml_init) maps those through the OASIS
 * catalog to local files and refuses every other remote location; it is
 * what keeps schema compilation off the network, since libxml2 2.9 gives
 * the schema parser no NONET switch of its own.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/catalog.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/SAX2.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>

#include "buf.h"
#include "log.h"
#include "xmalloc.h"
#include "xml.h"

#define XML_MAX_SCHEMA_ERRORS 5

/* Parse options for peer input: no network, no entity substitution, no DTD. */
#define XML_PEER_OPTIONS (XML_PARSE_NONET | XML_PARSE_BIG_LINES)

struct xsd {
	xmlSchemaPtr schema;
};

/* What one xml_parse / xsd_* call collects from libxml2's callbacks. */
struct xml_errs {
	char *out;
	size_t outlen;
	int count;    /* errors written into out */
	int max;      /* stop writing after this many */
	int depth;    /* current element nesting (parsing only) */
	bool stopped; /* our own hook stopped the parser (message already set) */
};

static xmlExternalEntityLoader xml_default_loader;
static bool xml_have_catalog;

/* Appends "line N: msg" (or "msg" when line is 0) to the collected errors. */
static void
xml_errs_add(struct xml_errs *e, int line, const char *msg)
{
	size_t used, mlen;

	if (e->count >= e->max || e->out == NULL || e->outlen == 0)
		return;
	mlen = strlen(msg);
	while (mlen > 0 && (msg[mlen - 1] == '\n' || msg[mlen - 1] == ' '))
		mlen--; /* libxml2 messages end with a newline */
	used = e->count ? strlen(e->out) : 0;
	if (used >= e->outlen - 1)
		return;
	if (line > 0)
		snprintf(e->out + used, e->outlen - used, "%sline %d: %.*s", e->count ? "; " : "",
		         line, (int)mlen, msg);
	else
		snprintf(e->out + used, e->outlen - used, "%s%.*s", e->count ? "; " : "", (int)mlen,
		         msg);
	e->count++;
}

/* Structured error handler; warnings are not worth reporting. */
static void
xml_error_cb(void *data, xmlErrorPtr err)
{
	struct xml_errs *e = data;

	if (err == NULL || err->level < XML_ERR_ERROR)
		return;
	xml_errs_add(e, err->line, err->message ? err->message : "unknown XML error");
}

/*
 * For schema compilation warnings matter: an import that cannot be
 * loaded is only a warning, and it explains the errors that follow.
 */
static void
xml_schema_error_cb(void *data, xmlErrorPtr err)
{
	struct xml_errs *e = data;

	if (err == NULL || err->level < XML_ERR_WARNING)
		return;
	xml_errs_add(e, err->line, err->message ? err->message : "unknown schema error");
}

/*
 * The parser's userData is the context itself, so the structured handler
 * on ctxt->sax receives the ctxt; our collector hangs off _private.
 */
static void
xml_parse_error_cb(void *ctx, xmlErrorPtr err)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct xml_errs *e = ctxt->_private;

	if (e->stopped)
		return; /* the reason is already recorded; skip the echo */
	xml_error_cb(e, err);
}

static bool
xml_has_scheme(const char *url, const char *scheme)
{
	size_t n = strlen(scheme);

	return strncasecmp(url, scheme, n) == 0 && url[n] == ':';
}

/* A plain path or a file: URI; anything else with a scheme is remote. */
static bool
xml_is_local(const char *url)
{
	const char *p;

	if (xml_has_scheme(url, "file"))
		return true;
	for (p = url; *p != '\0'; p++) {
		if (*p == ':')
			return false; /* "http:", "ftp:", "data:", ... */
		if (*p == '/')
			break;
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))
			break;
	}
	return true;
}

/* Catalog lookup for a remote location; NULL when unmapped. Caller xmlFrees. */
static xmlChar *
xml_catalog_resolve(const char *url, const char *id)
{
	xmlChar *r;

	if (!xml_have_catalog)
		return NULL; /* never fall back to /etc/xml/catalog */
	r = xmlCatalogResolveURI((const xmlChar *)url);
	if (r == NULL)
		r = xmlCatalogResolve((const xmlChar *)id, (const xmlChar *)url);
	return r;
}

/*
 * Process-wide entity loader: local files load, remote locations only
 * when the catalog maps them to a local file. Returning NULL makes
 * libxml2 report "failed to load external entity" to the caller.
 */
static xmlParserInputPtr
xml_entity_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	xmlParserInputPtr in;
	xmlChar *mapped = NULL;
	const char *target = url;

	if (url == NULL)
		return NULL;
	if (!xml_is_local(url)) {
		mapped = xml_catalog_resolve(url, id);
		if (mapped == NULL)
			return NULL;
		target = (const char *)mapped;
		if (!xml_is_local(target)) {
			xmlFree(mapped);
			return NULL;
		}
	}
	in = xmlNewInputFromFile(ctxt, target);
	xmlFree(mapped);
	return in;
}

void
xml_init(const char *catalog)
{
	xmlInitParser();
	if (xml_default_loader == NULL)
		xml_default_loader = xmlGetExternalEntityLoader();
	xmlSetExternalEntityLoader(xml_entity_loader);
	/* Ignore <?oasis-xml-catalog?> PIs: only our catalog counts. */
	xmlCatalogSetDefaults(XML_CATA_ALLOW_GLOBAL);
	if (catalog == NULL)
		return;
	if (xmlLoadCatalog(catalog) == 0)
		xml_have_catalog = true;
	else /* schemas importing by URL will then fail to compile, saying which */
		log_warnx("cannot load XML catalog %s", catalog);
}

void
xml_cleanup(void)
{
	if (xml_have_catalog)
		xmlCatalogCleanup();
	xml_have_catalog = false;
	if (xml_default_loader != NULL)
		xmlSetExternalEntityLoader(xml_default_loader);
	xml_default_loader = NULL;
	xmlCleanupParser();
}

static int
xml_line(xmlParserCtxtPtr ctxt)
{
	return ctxt->input != NULL ? ctxt->input->line : 0;
}

/* Records our own refusal and halts the parser. */
static void
xml_stop(xmlParserCtxtPtr ctxt, const char *msg)
{
	struct xml_errs *e = ctxt->_private;

	if (e->stopped)
		return;
	xml_errs_add(e, xml_line(ctxt), msg);
	e->stopped = true;
	xmlStopParser(ctxt);
}

/* First callback of a DOCTYPE, before any entity of it is declared. */
static void
xml_internal_subset_cb(void *ctx, const xmlChar *name, const xmlChar *ext_id, const xmlChar *sys_id)
{
	(void)name;
	(void)ext_id;
	(void)sys_id;
	xml_stop(ctx, "DOCTYPE not allowed");
}

/* Counts one more level of nesting; false (parser stopped) past the limit. */
static bool
xml_enter(xmlParserCtxtPtr ctxt)
{
	struct xml_errs *e = ctxt->_private;
	char msg[64];

	if (++e->depth <= EWP_MAX_XML_DEPTH)
		return true;
	snprintf(msg, sizeof(msg), "element nesting deeper than %d", EWP_MAX_XML_DEPTH);
	xml_stop(ctxt, msg);
	return false;
}

static void
xml_leave(xmlParserCtxtPtr ctxt)
{
	struct xml_errs *e = ctxt->_private;

	e->depth--;
}

static void
xml_start_cb(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
             int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
             const xmlChar **attributes)
{
	if (xml_enter(ctx))
		xmlSAX2StartElementNs(ctx, localname, prefix, uri, nb_namespaces, namespaces,
		                      nb_attributes, nb_defaulted, attributes);
}

static void
xml_end_cb(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
	xml_leave(ctx);
	xmlSAX2EndElementNs(ctx, localname, prefix, uri);
}

static void
xml_errs_init(struct xml_errs *e, char *err, size_t errlen, int max)
{
	memset(e, 0, sizeof(*e));
	e->out = err;
	e->outlen = errlen;
	e->max = max;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
}

static void
xml_errs_default(struct xml_errs *e, const char *msg)
{
	if (e->count == 0)
		xml_errs_add(e, 0, msg);
}

/* A memory parser context with our hooks on its private SAX handler. */
static xmlParserCtxtPtr
xml_peer_ctxt(const char *data, size_t len, struct xml_errs *e)
{
	xmlParserCtxtPtr ctxt;

	ctxt = xmlCreateMemoryParserCtxt(data, (int)len);
	if (ctxt == NULL)
		return NULL;
	ctxt->_private = e;
	ctxt->sax->initialized = XML_SAX2_MAGIC;
	ctxt->sax->serror = xml_parse_error_cb;
	ctxt->sax->internalSubset = xml_internal_subset_cb;
	ctxt->sax->externalSubset = NULL;
	ctxt->sax->startElementNs = xml_start_cb;
	ctxt->sax->endElementNs = xml_end_cb;
	xmlCtxtUseOptions(ctxt, XML_PEER_OPTIONS);
	return ctxt;
}

xmlDocPtr
xml_parse(const char *data, size_t len, size_t max_len, char *err, size_t errlen)
{
	struct xml_errs e;
	xmlParserCtxtPtr ctxt;
	xmlDocPtr doc = NULL;
	char msg[96];

	xml_errs_init(&e, err, errlen, 1);
	if (len > max_len || len > INT_MAX) {
		snprintf(msg, sizeof(msg), "document too large (%zu bytes, limit %zu)", len,
		         max_len < INT_MAX ? max_len : (size_t)INT_MAX);
		xml_errs_add(&e, 0, msg);
		return NULL;
	}
	if (len == 0) {
		xml_errs_add(&e, 0, "empty document");
		return NULL;
	}
	ctxt = xml_peer_ctxt(data, len, &e);
	if (ctxt == NULL) {
		xml_errs_add(&e, 0, "cannot create XML parser");
		return NULL;
	}
	(void)xmlParseDocument(ctxt);
	/* Namespace errors (an undeclared prefix) do not clear wellFormed. */
	if (ctxt->wellFormed && ctxt->nsWellFormed && !e.stopped && ctxt->myDoc != NULL) {
		doc = ctxt->myDoc;
		ctxt->myDoc = NULL;
	}
	if (doc == NULL)
		xml_errs_default(&e, "malformed XML");
	xmlFreeDoc(ctxt->myDoc);
	ctxt->myDoc = NULL;
	xmlFreeParserCtxt(ctxt);
	xmlResetLastError(); /* no global residue for the next caller */
	return doc;
}

/* ---- streaming ---- */

struct xml_stream {
	struct xml_errs errs; /* first: the shared hooks reach it as ctxt->_private */
	const struct xml_stream_cb *cb;
	void *user;
	xml_next_fn *next;
	void *next_ctx;
	const char *piece; /* what is left of the caller's last piece */
	size_t left;
	bool eof; /* the caller has no more */
	size_t total, max_len;
	struct buf scratch; /* decoded attribute values */
};

struct xml_el {
	struct xml_stream *stream;
	const xmlChar **attrs; /* libxml2's (local, prefix, URI, value, end) quintuples */
	int nattrs;
};

static bool
xml_ns_equal(const xmlChar *uri, const char *ns)
{
	if (uri == NULL || ns == NULL)
		return (const char *)uri == ns;
	return strcmp((const char *)uri, ns) == 0;
}

/*
 * Without entity substitution libxml2 hands a '&' inside an attribute
 * value (written as &amp; or &#38;) on as the text "&#38;", for the tree
 * builder to decode later; there is no tree here, so decode it. No other
 * reference can remain: predefined ones and character references are
 * already decoded, and any other entity is undeclared (no DOCTYPE).
 */
static const char *
xml_attr_decode(struct buf *b, const char *v, size_t len, size_t *outlen)
{
	static const char amp[] = "&#38;";
	const char *end = v + len, *at;

	buf_reset(b);
	while ((at = memmem(v, (size_t)(end - v), amp, sizeof(amp) - 1)) != NULL) {
		if (buf_add(b, v, (size_t)(at - v)) == -1 || buf_add(b, "&", 1) == -1)
			return NULL;
		v = at + sizeof(amp) - 1;
	}
	if (buf_add(b, v, (size_t)(end - v)) == -1)
		return NULL;
	*outlen = b->len;
	return buf_cstr(b);
}

const char *
xml_el_attr(const struct xml_el *el, const char *ns, const char *name, size_t *len)
{
	const xmlChar **a;
	const char *v;
	int i;

	for (i = 0; i < el->nattrs; i++) {
		a = el->attrs + 5 * i;
		if (strcmp((const char *)a[0], name) != 0 || !xml_ns_equal(a[2], ns))
			continue;
		v = (const char *)a[3];
		*len = (size_t)(a[4] - a[3]);
		if (memchr(v, '&', *len) == NULL)
			return v;
		return xml_attr_decode(&el->stream->scratch, v, *len, len);
	}
	return NULL;
}

static void
xml_stream_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
                 int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
                 const xmlChar **attributes)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct xml_stream *s = ctxt->_private;
	struct xml_el el = {s, attributes, nb_attributes};

	(void)prefix;
	(void)nb_namespaces;
	(void)namespaces;
	(void)nb_defaulted; /* only a DTD defaults attributes, and there is none */
	if (xml_enter(ctxt))
		s->cb->start(s->user, uri != NULL ? (const char *)uri : "", (const char *)localname,
		             &el);
}

static void
xml_stream_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct xml_stream *s = ctxt->_private;

	(void)localname;
	(void)prefix;
	(void)uri;
	xml_leave(ctxt);
	s->cb->end(s->user);
}

/* Character data, ignorable whitespace and CDATA alike: what xmlNodeGetContent joins. */
static void
xml_stream_text(void *ctx, const xmlChar *text, int len)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct xml_stream *s = ctxt->_private;

	if (len > 0)
		s->cb->text(s->user, (const char *)text, (size_t)len);
}

/* Only our callbacks: nothing builds a tree, and a DOCTYPE stops the parse. */
static void
xml_stream_sax(xmlSAXHandler *sax)
{
	memset(sax, 0, sizeof(*sax));
	sax->initialized = XML_SAX2_MAGIC;
	sax->serror = xml_parse_error_cb;
	sax->internalSubset = xml_internal_subset_cb;
	sax->startElementNs = xml_stream_start;
	sax->endElementNs = xml_stream_end;
	sax->characters = xml_stream_text;
	sax->ignorableWhitespace = xml_stream_text;
	sax->cdataBlock = xml_stream_text;
}

/* Records why the document is refused; libxml2's own complaint that follows is dropped. */
static int
xml_stream_refuse(struct xml_stream *s, const char *msg)
{
	xml_errs_add(&s->errs, 0, msg);
	s->errs.stopped = true;
	return -1;
}

/* Takes the caller's next piece: its size, 0 at the end, -1 when refused. */
static ssize_t
xml_stream_next(struct xml_stream *s)
{
	ssize_t n;
	char msg[96];

	if (s->eof || s->errs.stopped)
		return s->eof ? 0 : -1;
	n = s->next(s->next_ctx, &s->piece);
	if (n < 0)
		return xml_stream_refuse(s, "cannot read the document");
	if ((size_t)n > s->max_len - s->total) {
		snprintf(msg, sizeof(msg), "document too large (limit %zu bytes)", s->max_len);
		return xml_stream_refuse(s, msg);
	}
	s->eof = n == 0;
	s->total += (size_t)n;
	s->left = (size_t)n;
	return n;
}

/*
 * libxml2's input callback. Requests are filled as far as the document
 * goes, whatever the size of the caller's pieces: the parser takes a
 * short first read for the whole document (and then misses its XML
 * declaration, for one).
 */
static int
xml_stream_input(void *ctx, char *out, int len)
{
	struct xml_stream *s = ctx;
	size_t got = 0, n;

	while (got < (size_t)len && (s->left > 0 || xml_stream_next(s) > 0)) {
		n = s->left < (size_t)len - got ? s->left : (size_t)len - got;
		memcpy(out + got, s->piece, n);
		s->piece += n;
		s->left -= n;
		got += n;
	}
	return s->errs.stopped ? -1 : (int)got;
}

/*
 * libxml2's pull parser on an I/O callback rather than its push parser:
 * the input is still never held whole, and its messages for a truncated
 * document are those of xml_parse ("Premature end of data in tag ...").
 */
static void
xml_stream_parse(struct xml_stream *s)
{
	xmlSAXHandler sax;
	xmlParserCtxtPtr ctxt;

	xml_stream_sax(&sax);
	ctxt = xmlCreateIOParserCtxt(&sax, NULL, xml_stream_input, NULL, s, XML_CHAR_ENCODING_NONE);
	if (ctxt == NULL) {
		xml_stream_refuse(s, "cannot create XML parser");
		return;
	}
	ctxt->_private = s;
	xmlCtxtUseOptions(ctxt, XML_PEER_OPTIONS);
	(void)xmlParseDocument(ctxt);
	/* Namespace errors (an undeclared prefix) do not clear wellFormed. */
	if (!ctxt->wellFormed || !ctxt->nsWellFormed)
		s->errs.stopped = true; /* refused; libxml2 gave the reason */
	xmlFreeParserCtxt(ctxt);
}

int
xml_stream(const struct xml_stream_cb *cb, void *user, xml_next_fn *next, void *next_ctx,
           size_t max_len, char *err, size_t errlen)
{
	struct xml_stream s = {
	    .cb = cb, .user = user, .next = next, .next_ctx = next_ctx, .max_len = max_len};

	xml_errs_init(&s.errs, err, errlen, 1);
	buf_init(&s.scratch, max_len);
	/* Read ahead: an empty document gets xml_parse's message, not libxml2's. */
	if (xml_stream_next(&s) == 0)
		xml_stream_refuse(&s, "empty document");
	if (!s.errs.stopped)
		xml_stream_parse(&s);
	if (s.errs.stopped)
		xml_errs_default(&s.errs, "malformed XML");
	buf_free(&s.scratch);
	xmlResetLastError(); /* no global residue for the next caller */
	return s.errs.stopped ? -1 : 0;
}

struct xsd *
xsd_load(const char *path, char *err, size_t errlen)
{
	struct xml_errs e;
	xmlSchemaParserCtxtPtr pctxt;
	xmlStructuredErrorFunc saved_fn;
	void *saved_ctx;
	xmlSchemaPtr schema;
	struct xsd *x;

	xml_errs_init(&e, err, errlen, XML_MAX_SCHEMA_ERRORS);
	pctxt = xmlSchemaNewParserCtxt(path);
	if (pctxt == NULL) {
		xml_errs_add(&e, 0, "cannot create schema parser");
		return NULL;
	}
	xmlSchemaSetParserStructuredErrors(pctxt, xml_schema_error_cb, &e);
	/*
	 * libxml2 reads each schema document with an internal parser context
	 * of its own that reports I/O and syntax errors only to the global
	 * handler: borrow that for the duration of this call.
	 */
	saved_fn = xmlStructuredError;
	saved_ctx = xmlStructuredErrorContext;
	xmlSetStructuredErrorFunc(&e, xml_schema_error_cb);
	schema = xmlSchemaParse(pctxt);
	xmlSetStructuredErrorFunc(saved_ctx, saved_fn);
	xmlSchemaFreeParserCtxt(pctxt);
	xmlResetLastError();
	if (schema == NULL) {
		xml_errs_default(&e, "cannot compile schema");
		return NULL;
	}
	if (err != NULL && errlen > 0)
		err[0] = '\0'; /* warnings of a schema that compiled are noise */
	x = xmalloc(sizeof(*x));
	x->schema = schema;
	return x;
}

void
xsd_free(struct xsd *x)
{
	if (x == NULL)
		return;
	xmlSchemaFree(x->schema);
	free(x);
}

int
xsd_validate(struct xsd *x, xmlDocPtr doc, char *err, size_t errlen)
{
	struct xml_errs e;
	xmlSchemaValidCtxtPtr vctxt;
	int rc;

	xml_errs_init(&e, err, errlen, XML_MAX_SCHEMA_ERRORS);
	vctxt = xmlSchemaNewValidCtxt(x->schema);
	if (vctxt == NULL) {
		xml_errs_add(&e, 0, "cannot create schema validator");
		return -1;
	}
	xmlSchemaSetValidStructuredErrors(vctxt, xml_error_cb, &e);
	rc = xmlSchemaValidateDoc(vctxt, doc);
	xmlSchemaFreeValidCtxt(vctxt);
	xmlResetLastError();
	if (rc == 0)
		return 0;
	xml_errs_default(&e, rc > 0 ? "document not valid" : "schema validation failed");
	return -1;
}

bool
xml_is(const xmlNode *n, const char *ns, const char *name)
{
	const char *href;

	if (n == NULL || n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, name) != 0)
		return false;
	href = n->ns != NULL ? (const char *)n->ns->href : NULL;
	if (ns == NULL || href == NULL)
		return ns == href; /* NULL ns asks for an element in no namespace */
	return strcmp(href, ns) == 0;
}

xmlNode *
xml_child(const xmlNode *n, const char *ns, const char *name)
{
	xmlNode *c;

	if (n == NULL)
		return NULL;
	for (c = n->children; c != NULL; c = c->next)
		if (xml_is(c, ns, name))
			return c;
	return NULL;
}

static bool
xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

char *
xml_text(const xmlNode *n)
{
	xmlChar *content;
	const char *s, *end;
	char *out;

	content = n != NULL ? xmlNodeGetContent(n) : NULL;
	if (content == NULL)
		return xstrdup("");
	s = (const char *)content;
	end = s + strlen(s);
	while (s < end && xml_space(*s))
		s++;
	while (end > s && xml_space(end[-1]))
		end--;
	out = xstrndup(s, (size_t)(end - s));
	xmlFree(content);
	return out;
}

void
xml_dump(xmlDocPtr doc, char **out, size_t *len)
{
	xmlChar *mem = NULL;
	int n = 0;

	xmlDocDumpMemoryEnc(doc, &mem, &n, "UTF-8");
	if (mem == NULL)
		fatalx("xml_dump: out of memory");
	*out = (char *)mem;
	*len = (size_t)n;
}

/* Drops whitespace-only text between elements, so the dump can indent. */
static void
xml_strip_blanks(xmlNode *n)
{
	xmlNode *c = n->children;

	while (c != NULL) {
		xmlNode *next = c->next;

		if (c->type == XML_TEXT_NODE && xmlIsBlankNode(c)) {
			xmlUnlinkNode(c);
			xmlFreeNode(c);
		} else if (c->type == XML_ELEMENT_NODE) {
			xml_strip_blanks(c);
		}
		c = next;
	}
}

char *
xml_indent(const char *data, size_t len, size_t max_len, size_t *outlen)
{
	char err[128];
	xmlDocPtr doc = xml_parse(data, len, max_len, err, sizeof(err));
	xmlChar *mem = NULL;
	int n = 0;

	if (doc == NULL)
		return NULL;
	xml_strip_blanks((xmlNode *)doc);
	xmlDocDumpFormatMemoryEnc(doc, &mem, &n, "UTF-8", 1);
	xmlFreeDoc(doc);
	*outlen = mem ? (size_t)n : 0;
	return (char *)mem;
}

bool
xml_root_child_text(const char *data, size_t len, size_t max_len, const char *name, char *out,
                    size_t outlen)
{
	char xerr[64];
	xmlDocPtr doc;
	xmlNode *root;
	bool found = false;

	out[0] = '\0';
	if (len == 0 || (doc = xml_parse(data, len, max_len, xerr, sizeof(xerr))) == NULL)
		return false;
	if ((root = xmlDocGetRootElement(doc)) != NULL)
		for (xmlNode *n = root->children; n && !found; n = n->next)
			if (n->type == XML_ELEMENT_NODE &&
			    strcmp((const char *)n->name, name) == 0) {
				xmlChar *t = xmlNodeGetContent(n);

				snprintf(out, outlen, "%s", t ? (const char *)t : "");
				xmlFree(t);
				found = true;
			}
	xmlFreeDoc(doc);
	return found;
}
