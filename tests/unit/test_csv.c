/* test_csv.c - the strict RFC 4180 reader behind `ewpctl import`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "csv.h"

/* Reads `in` whole; the fields joined with '|' and records with '/' into
 * out, so that one string says what was parsed. Returns csv_next's last. */
static int
csv_dump(const char *in, size_t len, char sep, const struct csv_limits *lim, char *out,
         size_t outlen, struct csv *c)
{
	int rc;
	size_t o = 0;

	out[0] = '\0';
	csv_init(c, in, len, sep, lim);
	while ((rc = csv_next(c)) == 1) {
		for (size_t i = 0; i < c->nfields; i++)
			o += (size_t)snprintf(out + o, outlen - o, "%s%s", i ? "|" : "",
			                      c->fields[i]);
		o += (size_t)snprintf(out + o, outlen - o, "/");
	}
	return rc;
}

static void
test_csv_plain_lf_and_crlf(void **state)
{
	struct csv c;
	char out[256];

	(void)state;
	assert_int_equal(csv_dump("a,b,c\n1,2,3\n", 12, ',', NULL, out, sizeof(out), &c), 0);
	assert_string_equal(out, "a|b|c/1|2|3/");
	csv_free(&c);
	assert_int_equal(csv_dump("a;b\r\n1;2", 8, ';', NULL, out, sizeof(out), &c), 0);
	assert_string_equal(out, "a|b/1|2/"); /* no final line break: still a record */
	csv_free(&c);
	assert_int_equal(csv_dump("a,,\n,\n", 6, ',', NULL, out, sizeof(out), &c), 0);
	assert_string_equal(out, "a||/|/"); /* empty fields are kept */
	csv_free(&c);
	assert_int_equal(csv_dump("", 0, ',', NULL, out, sizeof(out), &c), 0);
	assert_string_equal(out, "");
	csv_free(&c);
}

static void
test_csv_quotes_separators_and_newlines(void **state)
{
	static const char in[] = "\"a;b\";\"say \"\"hi\"\"\";\"two\r\nlines\"\n\"\";x\n";
	struct csv c;
	char out[256];

	(void)state;
	assert_int_equal(csv_dump(in, sizeof(in) - 1, ';', NULL, out, sizeof(out), &c), 0);
	assert_string_equal(out, "a;b|say \"hi\"|two\r\nlines/|x/");
	csv_free(&c);
}

static void
test_csv_record_line_counts_embedded_newlines(void **state)
{
	static const char in[] = "h\n\"x\ny\nz\"\nlast\n";
	struct csv c;

	(void)state;
	csv_init(&c, in, sizeof(in) - 1, ',', NULL);
	assert_int_equal(csv_next(&c), 1);
	assert_int_equal(c.rec_line, 1);
	assert_int_equal(csv_next(&c), 1);
	assert_int_equal(c.rec_line, 2);
	assert_int_equal(csv_next(&c), 1);
	assert_int_equal(c.rec_line, 5); /* the quoted field spans lines 2-4 */
	assert_string_equal(c.fields[0], "last");
	assert_int_equal(csv_next(&c), 0);
	csv_free(&c);
}

static void
test_csv_bom_and_utf8(void **state)
{
	static const char in[] = "\xEF\xBB\xBF"
	                         "libell\xC3\xA9,\xE2\x82\xAC\n";
	struct csv c;
	char out[256];

	(void)state;
	assert_int_equal(csv_dump(in, sizeof(in) - 1, ',', NULL, out, sizeof(out), &c), 0);
	assert_string_equal(out, "libell\xC3\xA9|\xE2\x82\xAC/");
	csv_free(&c);
}

struct bad {
	const char *in;
	unsigned long line, col;
	const char *why;
};

static void
test_csv_errors_name_line_and_column(void **state)
{
	static const struct bad bad[] = {
	    {"a,b\nc,\"open\n", 2, 3, "not closed"},
	    {"a,b\nc,d\"e\n", 2, 4, "quote inside an unquoted field"},
	    {"a,\"b\"x\n", 1, 6, "after a closing quote"},
	    {"a\rb\n", 1, 2, "carriage return"},
	    {"ok\n\xC3\xA9\xFF\n", 2, 2, "invalid UTF-8"},
	    {"\xC0\xAF\n", 1, 1, "invalid UTF-8"},              /* overlong '/' */
	    {"\xED\xA0\x80\n", 1, 1, "invalid UTF-8"},          /* surrogate */
	    {"\"x\n\xF4\x90\x80\x80\"", 2, 1, "invalid UTF-8"}, /* above U+10FFFF */
	};
	struct csv c;
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		    csv_dump(bad[i].in, strlen(bad[i].in), ',', NULL, out, sizeof(out), &c), -1);
		assert_int_equal(c.err_line, bad[i].line);
		assert_int_equal(c.err_col, bad[i].col);
		assert_non_null(strstr(c.err, bad[i].why));
		assert_int_equal(csv_next(&c), -1); /* stays failed */
		csv_free(&c);
	}
	/* NUL bytes are refused rather than cutting a field short */
	assert_int_equal(csv_dump("a,b\0c\n", 6, ',', NULL, out, sizeof(out), &c), -1);
	assert_non_null(strstr(c.err, "line 1, column 4: NUL byte"));
	csv_free(&c);
}

static void
test_csv_limits(void **state)
{
	struct csv_limits lim = {.max_field = 4, .max_fields = 3, .max_records = 2};
	struct csv c;
	char out[256];

	(void)state;
	assert_int_equal(csv_dump("abcd,\"ab\"\"c\"\n", 13, ',', &lim, out, sizeof(out), &c), 0);
	csv_free(&c);
	assert_int_equal(csv_dump("abcde\n", 6, ',', &lim, out, sizeof(out), &c), -1);
	assert_non_null(strstr(c.err, "longer than 4 bytes"));
	csv_free(&c);
	assert_int_equal(csv_dump("\"abc\"\"\"\"\"\n", 10, ',', &lim, out, sizeof(out), &c), -1);
	assert_non_null(strstr(c.err, "longer than 4 bytes"));
	csv_free(&c);
	assert_int_equal(csv_dump("a,b,c,d\n", 8, ',', &lim, out, sizeof(out), &c), -1);
	assert_non_null(strstr(c.err, "more than 3 fields"));
	csv_free(&c);
	assert_int_equal(csv_dump("a\nb\nc\n", 6, ',', &lim, out, sizeof(out), &c), -1);
	assert_non_null(strstr(c.err, "line 3, column 1: more than 2 records"));
	csv_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_csv_plain_lf_and_crlf),
	    cmocka_unit_test(test_csv_quotes_separators_and_newlines),
	    cmocka_unit_test(test_csv_record_line_counts_embedded_newlines),
	    cmocka_unit_test(test_csv_bom_and_utf8),
	    cmocka_unit_test(test_csv_errors_name_line_and_column),
	    cmocka_unit_test(test_csv_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
