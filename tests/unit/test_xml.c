/*
 * test_xml.c - hardened XML intake and offline schema validation.
 *
 * Needs the local EWP schema copies: $EWP_SPECS, or ../shared/ewp-specs
 * relative to the working directory (tests run from the checkout root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <libxml/xmlerror.h>

#include "buf.h"
#include "testutil.h"
#include "xmalloc.h"
#include "xml.h"

#define ECHO_NS "https://github.com/erasmus-without-paper/ewp-specs-api-echo/tree/stable-v2"

static int
group_setup(void **state)
{
	char *catalog;

	(void)state;
	if (!testutil_find_specs("catalog.xml", "conformance tests"))
		return -1;
	catalog = testutil_spec_path("catalog.xml");
	xml_init(catalog);
	free(catalog);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	xml_cleanup();
	return 0;
}

/* ---- xml_stream: the document in small pieces, events as text ---- */

struct piecer {
	const char *data;
	size_t len, piece;
	bool fail; /* report a read error once the data is used up */
};

static ssize_t
next_piece(void *ctx, const char **data)
{
	struct piecer *p = ctx;
	size_t n = p->len < p->piece ? p->len : p->piece;

	if (n == 0 && p->fail)
		return -1;
	*data = p->data;
	p->data += n;
	p->len -= n;
	return (ssize_t)n;
}

static void
ev_add(struct buf *b, const char *s, size_t len)
{
	assert_int_equal(buf_add(b, s, len), 0);
}

/* "<{ns}name a=.. lang=.. p:b=..>" with the attributes the tests look at. */
static void
ev_start(void *user, const char *ns, const char *name, const struct xml_el *el)
{
	static const char *const attrs[][2] = {
	    {NULL, "a"}, {"http://www.w3.org/XML/1998/namespace", "lang"}, {"urn:x", "b"}};
	struct buf *b = user;
	const char *v;
	size_t len;

	assert_int_equal(buf_printf(b, "<{%s}%s", ns, name), 0);
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		if ((v = xml_el_attr(el, attrs[i][0], attrs[i][1], &len)) == NULL)
			continue;
		assert_int_equal(buf_printf(b, " %s=[", attrs[i][1]), 0);
		ev_add(b, v, len);
		ev_add(b, "]", 1);
	}
	ev_add(b, ">", 1);
}

static void
ev_end(void *user)
{
	ev_add(user, "</>", 3);
}

static void
ev_text(void *user, const char *s, size_t len)
{
	ev_add(user, s, len);
}

static const struct xml_stream_cb ev_cb = {ev_start, ev_end, ev_text};

/* Streams doc in `piece`-byte pieces; the events go to *events when not NULL. */
static int
stream(const char *doc, size_t len, size_t piece, size_t max_len, struct buf *events, char *err,
       size_t errlen)
{
	struct piecer p = {doc, len, piece, false};
	struct buf junk;
	int rc;

	buf_init(&junk, SIZE_MAX / 2);
	rc = xml_stream(&ev_cb, events != NULL ? events : &junk, next_piece, &p, max_len, err,
	                errlen);
	buf_free(&junk);
	return rc;
}

/* Parses a string that must be refused, by xml_parse and xml_stream alike; returns the reason. */
static void
refused(const char *doc, size_t len, char *err, size_t errlen)
{
	xmlDocPtr d = xml_parse(doc, len, 1024 * 1024, err, errlen);
	char serr[512];

	assert_null(d);
	assert_true(err[0] != '\0');
	assert_int_equal(stream(doc, len, 7, 1024 * 1024, NULL, serr, errlen), -1);
	assert_string_equal(serr, err);
}

static void
test_xml_parses_valid(void **state)
{
	const char *s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	                "<response xmlns=\"" ECHO_NS "\" xmlns:o=\"urn:other\">\n"
	                "  <hei-id>  uw.edu.pl\n</hei-id>\n"
	                "  <o:echo>a &amp; b</o:echo>\n"
	                "  <echo><![CDATA[x<y]]></echo>\n"
	                "</response>\n";
	char err[256] = "junk";
	xmlDocPtr doc;
	xmlNode *root;
	char *t;

	(void)state;
	doc = xml_parse(s, strlen(s), 4096, err, sizeof(err));
	assert_non_null(doc);
	assert_string_equal(err, "");
	root = xmlDocGetRootElement(doc);
	assert_true(xml_is(root, ECHO_NS, "response"));
	assert_false(xml_is(root, NULL, "response"));
	assert_false(xml_is(root, "urn:other", "response"));
	t = xml_text(xml_child(root, ECHO_NS, "hei-id"));
	assert_string_equal(t, "uw.edu.pl");
	free(t);
	t = xml_text(xml_child(root, "urn:other", "echo"));
	assert_string_equal(t, "a & b");
	free(t);
	t = xml_text(xml_child(root, ECHO_NS, "echo"));
	assert_string_equal(t, "x<y");
	free(t);
	assert_null(xml_child(root, ECHO_NS, "nothing"));
	xmlFreeDoc(doc);
}

static void
test_xml_refuses_xxe(void **state)
{
	const char *s = "<?xml version=\"1.0\"?>\n"
	                "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
	                "<r>&x;</r>";
	char err[256];

	(void)state;
	refused(s, strlen(s), err, sizeof(err));
	assert_string_equal(err, "line 2: DOCTYPE not allowed");
}

static void
test_xml_refuses_external_dtd(void **state)
{
	const char *s = "<!DOCTYPE r SYSTEM \"http://127.0.0.1:1/evil.dtd\"><r/>";
	char err[256];

	(void)state;
	refused(s, strlen(s), err, sizeof(err));
	assert_non_null(strstr(err, "DOCTYPE not allowed"));
}

static void
test_xml_refuses_billion_laughs(void **state)
{
	struct buf b;
	char err[256];
	int i, j;

	(void)state;
	buf_init(&b, 1 << 20);
	assert_int_equal(buf_addstr(&b, "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n"
	                                " <!ENTITY lol \"lol\">\n"),
	                 0);
	for (i = 1; i < 10; i++) {
		assert_int_equal(buf_printf(&b, " <!ENTITY lol%d \"", i), 0);
		for (j = 0; j < 10; j++)
			assert_int_equal(buf_printf(&b, "&lol%.0d;", i - 1), 0);
		assert_int_equal(buf_addstr(&b, "\">\n"), 0);
	}
	assert_int_equal(buf_addstr(&b, "]>\n<lolz>&lol9;</lolz>\n"), 0);
	refused(b.data, b.len, err, sizeof(err));
	assert_non_null(strstr(err, "DOCTYPE not allowed"));
	buf_free(&b);
}

/* "<a><a>...</a></a>" nested `depth` deep. */
static char *
nested(int depth, size_t *len)
{
	struct buf b;
	int i;

	buf_init(&b, SIZE_MAX / 2);
	for (i = 0; i < depth; i++)
		assert_int_equal(buf_addstr(&b, "<a>"), 0);
	for (i = 0; i < depth; i++)
		assert_int_equal(buf_addstr(&b, "</a>"), 0);
	*len = b.len;
	return buf_take(&b);
}

static void
test_xml_depth_limit(void **state)
{
	char err[256], *s;
	xmlDocPtr doc;
	size_t len;

	(void)state;
	s = nested(EWP_MAX_XML_DEPTH, &len);
	doc = xml_parse(s, len, len, err, sizeof(err));
	assert_non_null(doc);
	xmlFreeDoc(doc);
	free(s);

	s = nested(EWP_MAX_XML_DEPTH + 1, &len);
	refused(s, len, err, sizeof(err));
	assert_string_equal(err, "line 1: element nesting deeper than 64");
	free(s);
}

static void
test_xml_refuses_depth_bomb(void **state)
{
	char err[256], *s;
	size_t len;

	(void)state;
	s = nested(200000, &len); /* 1.4 MB, stopped at element 65 */
	assert_null(xml_parse(s, len, len, err, sizeof(err)));
	assert_non_null(strstr(err, "nesting deeper"));
	free(s);
}

static void
test_xml_refuses_oversize(void **state)
{
	const char *s = "<r>0123456789</r>";
	char err[256];

	(void)state;
	assert_null(xml_parse(s, strlen(s), strlen(s) - 1, err, sizeof(err)));
	assert_string_equal(err, "document too large (17 bytes, limit 16)");
	assert_null(xml_parse(s, 0, 100, err, sizeof(err)));
	assert_string_equal(err, "empty document");
}

static void
test_xml_malformed_has_line(void **state)
{
	const char *s = "<a>\n<b>\n</a>\n";
	char err[256];

	(void)state;
	refused(s, strlen(s), err, sizeof(err));
	assert_int_equal(strncmp(err, "line 3: ", 8), 0);
	assert_non_null(strstr(err, "mismatch"));
	assert_null(strchr(err, '\n'));
}

static void
test_xml_refuses_undefined_entity(void **state)
{
	const char *s = "<r>&xxe;</r>";
	char err[256];

	(void)state;
	refused(s, strlen(s), err, sizeof(err));
	assert_non_null(strstr(err, "xxe"));
}

static void
test_xml_refuses_undeclared_prefix(void **state)
{
	const char *s = "<a xmlns:p=\"urn:x\">\n<q:b/></a>";
	char err[256];

	(void)state;
	refused(s, strlen(s), err, sizeof(err));
	assert_string_equal(err, "line 2: Namespace prefix q on b is not defined");
}

static void
test_xml_errors_do_not_leak(void **state)
{
	const char *bad = "<a><b></a>", *good = "<a/>";
	char err[256];
	xmlDocPtr doc;

	(void)state;
	assert_null(xml_parse(bad, strlen(bad), 100, err, sizeof(err)));
	assert_null(xmlGetLastError());
	doc = xml_parse(good, strlen(good), 100, err, sizeof(err));
	assert_non_null(doc);
	assert_string_equal(err, "");
	xmlFreeDoc(doc);
	/* A tiny error buffer is never overrun. */
	assert_null(xml_parse(bad, strlen(bad), 100, err, 8));
	assert_int_equal(strlen(err), 7);
}

static void
test_xml_stream_events(void **state)
{
	const char *s = "<?xml version=\"1.0\"?>\n<?pi x?>"
	                "<r xmlns=\"urn:r\" xmlns:p=\"urn:x\" a=\" 1&amp;2&#38;3&lt;4 \">"
	                "<p:e p:b=\"v\" xml:lang=\"en\">t&amp;<!--c-->u<![CDATA[<x>]]></p:e>"
	                "<n xmlns=\"\" a=\"&#38;amp;\"/></r>";
	const char *want = "<{urn:r}r a=[ 1&2&3<4 ]><{urn:x}e lang=[en] b=[v]>t&u<x></>"
	                   "<{}n a=[&amp;]></></>";
	char err[256] = "junk";
	struct buf ev;

	(void)state;
	for (size_t piece = 1; piece <= strlen(s); piece += 13) {
		buf_init(&ev, 4096);
		assert_int_equal(stream(s, strlen(s), piece, 4096, &ev, err, sizeof(err)), 0);
		assert_string_equal(err, "");
		assert_string_equal(buf_cstr(&ev), want);
		buf_free(&ev);
	}
}

static void
test_xml_stream_depth_and_size(void **state)
{
	char err[256], *s;
	struct piecer p;
	struct buf ev;
	size_t len;

	(void)state;
	s = nested(EWP_MAX_XML_DEPTH, &len);
	assert_int_equal(stream(s, len, 4096, len, NULL, err, sizeof(err)), 0);
	free(s);
	s = nested(200000, &len);
	assert_int_equal(stream(s, len, 4096, len, NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "line 1: element nesting deeper than 64");
	free(s);

	s = "<r>0123456789</r>";
	assert_int_equal(stream(s, strlen(s), 5, strlen(s) - 1, NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "document too large (limit 16 bytes)");
	assert_int_equal(stream(s, 0, 5, 100, NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "empty document");
	/* A read error refuses the document, even one that looks complete. */
	p = (struct piecer){s, strlen(s), 5, true};
	buf_init(&ev, 4096);
	assert_int_equal(xml_stream(&ev_cb, &ev, next_piece, &p, 100, err, sizeof(err)), -1);
	buf_free(&ev);
	assert_string_equal(err, "cannot read the document");
	/* A truncated document is named as such, as by xml_parse. */
	assert_int_equal(stream("<r><a>", 6, 2, 100, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Premature end of data"));
	assert_null(xmlGetLastError());
}

static void
test_xml_dump_round_trip(void **state)
{
	const char *s = "<r xmlns=\"urn:x\"><v>caf\xc3\xa9</v></r>";
	char err[256], *out;
	xmlDocPtr doc, again;
	size_t len;

	(void)state;
	doc = xml_parse(s, strlen(s), 100, err, sizeof(err));
	assert_non_null(doc);
	xml_dump(doc, &out, &len);
	assert_int_equal(strncmp(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38), 0);
	assert_non_null(strstr(out, "caf\xc3\xa9"));
	again = xml_parse(out, len, 1000, err, sizeof(err));
	assert_non_null(again);
	xmlFreeDoc(again);
	xmlFree(out);
	xmlFreeDoc(doc);
}

/* Loads schema `xsd` and validates file `xml` (both relative to the specs). */
static int
validate_file(const char *xsd_rel, const char *xml_rel, char *err, size_t errlen)
{
	char *xsd_path = testutil_spec_path(xsd_rel), *data;
	struct xsd *x;
	xmlDocPtr doc;
	size_t len;
	int rc;

	x = xsd_load(xsd_path, err, errlen);
	if (x == NULL)
		print_error("xsd_load: %s\n", err);
	assert_non_null(x);
	data = testutil_read_spec(xml_rel, &len);
	doc = xml_parse(data, len, EWP_MAX_CATALOGUE_BYTES, err, errlen);
	assert_non_null(doc);
	rc = xsd_validate(x, doc, err, errlen);
	xmlFreeDoc(doc);
	free(data);
	xsd_free(x);
	free(xsd_path);
	return rc;
}

static void
test_xsd_manifest_example_valid(void **state)
{
	char err[1024];
	int rc;

	(void)state;
	rc = validate_file("ewp-specs-api-discovery/manifest.xsd",
	                   "ewp-specs-api-discovery/manifest-example.xml", err, sizeof(err));
	if (rc != 0)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	assert_string_equal(err, "");
}

static void
test_xsd_catalogue_example_valid(void **state)
{
	char err[1024];
	int rc;

	(void)state;
	rc = validate_file("ewp-specs-api-registry/catalogue.xsd",
	                   "ewp-specs-api-registry/catalogue-example.xml", err, sizeof(err));
	if (rc != 0)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
}

static void
test_xsd_sample_catalogue_invalid(void **state)
{
	char err[1024];

	(void)state;
	/* The Registry's test fixture carries placeholder keys ("cc1"). */
	assert_int_equal(validate_file("ewp-specs-api-registry/catalogue.xsd",
	                               "ewp-registry-service/src/test/resources/test-files/"
	                               "catalogues/sample-catalogue.xml",
	                               err, sizeof(err)),
	                 -1);
	assert_int_equal(strncmp(err, "line 72: ", 9), 0);
	assert_non_null(strstr(err, "base64Binary"));
}

static void
echo_validate(struct xsd *x, const char *s, int expect, char *err, size_t errlen)
{
	xmlDocPtr doc = xml_parse(s, strlen(s), 4096, err, errlen);

	assert_non_null(doc);
	assert_int_equal(xsd_validate(x, doc, err, errlen), expect);
	xmlFreeDoc(doc);
}

static void
test_xsd_echo_response(void **state)
{
	char err[1024], *path = testutil_spec_path("ewp-specs-api-echo/response.xsd");
	struct xsd *x;

	(void)state;
	x = xsd_load(path, err, sizeof(err));
	assert_non_null(x);
	echo_validate(x,
	              "<response xmlns=\"" ECHO_NS "\"><hei-id>uw.edu.pl</hei-id>"
	              "<echo>a</echo><echo>b</echo></response>",
	              0, err, sizeof(err));
	echo_validate(x,
	              "<response xmlns=\"" ECHO_NS "\">\n<echo>a</echo>\n"
	              "<hei-id>late</hei-id>\n<bogus/>\n</response>",
	              -1, err, sizeof(err));
	assert_int_equal(strncmp(err, "line 3: ", 8), 0);
	assert_non_null(strstr(err, "hei-id"));
	echo_validate(x, "<response xmlns=\"urn:wrong\"/>", -1, err, sizeof(err));
	assert_non_null(strstr(err, "No matching global declaration"));
	xsd_free(x);
	free(path);
}

static void
test_xsd_manifest_broken(void **state)
{
	char err[2048], *xsd_path = testutil_spec_path("ewp-specs-api-discovery/manifest.xsd");
	char *data, *at;
	struct xsd *x;
	xmlDocPtr doc;
	struct buf b;
	size_t len;

	(void)state;
	data = testutil_read_spec("ewp-specs-api-discovery/manifest-example.xml", &len);
	at = strstr(data, "<host>");
	assert_non_null(at);
	at += strlen("<host>");
	buf_init(&b, 1 << 20);
	assert_int_equal(buf_add(&b, data, (size_t)(at - data)), 0);
	assert_int_equal(buf_addstr(&b, "<unexpected/>"), 0);
	assert_int_equal(buf_addstr(&b, at), 0);
	x = xsd_load(xsd_path, err, sizeof(err));
	assert_non_null(x);
	doc = xml_parse(b.data, b.len, b.len, err, sizeof(err));
	assert_non_null(doc);
	assert_int_equal(xsd_validate(x, doc, err, sizeof(err)), -1);
	assert_int_equal(strncmp(err, "line ", 5), 0);
	assert_non_null(strstr(err, "unexpected"));
	xmlFreeDoc(doc);
	xsd_free(x);
	buf_free(&b);
	free(data);
	free(xsd_path);
}

/* Writes a schema importing a type from a URL no catalog entry maps. */
static char *
write_remote_import_xsd(void)
{
	char *path = xasprintf("/tmp/test_xml_%d.xsd", (int)getpid());

	testutil_write_file(path, "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\"\n"
	                          "  xmlns:r=\"urn:remote\" targetNamespace=\"urn:local\">\n"
	                          " <xs:import namespace=\"urn:remote\"\n"
	                          "   schemaLocation=\"https://127.0.0.1:1/remote.xsd\"/>\n"
	                          " <xs:element name=\"e\" type=\"r:T\"/>\n"
	                          "</xs:schema>\n");
	return path;
}

static void
test_xsd_refuses_network(void **state)
{
	char err[1024], *path = write_remote_import_xsd();

	(void)state;
	assert_null(xsd_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "https://127.0.0.1:1/remote.xsd"));
	unlink(path);
	free(path);
}

static void
test_xsd_missing_file(void **state)
{
	char err[1024];

	(void)state;
	assert_null(xsd_load("/nonexistent/schema.xsd", err, sizeof(err)));
	assert_true(err[0] != '\0');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_xml_parses_valid),
	    cmocka_unit_test(test_xml_refuses_xxe),
	    cmocka_unit_test(test_xml_refuses_external_dtd),
	    cmocka_unit_test(test_xml_refuses_billion_laughs),
	    cmocka_unit_test(test_xml_depth_limit),
	    cmocka_unit_test(test_xml_refuses_depth_bomb),
	    cmocka_unit_test(test_xml_refuses_oversize),
	    cmocka_unit_test(test_xml_malformed_has_line),
	    cmocka_unit_test(test_xml_refuses_undefined_entity),
	    cmocka_unit_test(test_xml_refuses_undeclared_prefix),
	    cmocka_unit_test(test_xml_errors_do_not_leak),
	    cmocka_unit_test(test_xml_stream_events),
	    cmocka_unit_test(test_xml_stream_depth_and_size),
	    cmocka_unit_test(test_xml_dump_round_trip),
	    cmocka_unit_test(test_xsd_manifest_example_valid),
	    cmocka_unit_test(test_xsd_catalogue_example_valid),
	    cmocka_unit_test(test_xsd_sample_catalogue_invalid),
	    cmocka_unit_test(test_xsd_echo_response),
	    cmocka_unit_test(test_xsd_manifest_broken),
	    cmocka_unit_test(test_xsd_refuses_network),
	    cmocka_unit_test(test_xsd_missing_file),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
