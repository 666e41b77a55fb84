/*
 * test_json.c - JSON strings for jsonb (json.c) and the rows of the
 * message log (msglog_entry_json): whatever bytes come from the network,
 * the output is JSON that PostgreSQL accepts and the checks of
 * ewp.message_log pass.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "json.h"
#include "msglog.h"

static void
expect_json(const char *in, size_t len, const char *want)
{
	struct buf b;

	buf_init(&b, 4096);
	assert_int_equal(json_strn(&b, in, len), 0);
	assert_string_equal(buf_cstr(&b), want);
	buf_free(&b);
}

static void
test_json_plain_and_escapes(void **state)
{
	(void)state;
	expect_json("abc", 3, "\"abc\"");
	expect_json("", 0, "\"\"");
	expect_json("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
	expect_json("\n\t\x01\x1f", 4, "\"\\u000a\\u0009\\u0001\\u001f\"");
	expect_json("\x7f", 1, "\"\x7f\"");
}

static void
test_json_utf8_kept(void **state)
{
	(void)state;
	expect_json("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"");           /* é */
	expect_json("\xe2\x82\xac", 3, "\"\xe2\x82\xac\"");         /* € */
	expect_json("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\""); /* U+1F600 */
	expect_json("\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
}

static void
test_json_invalid_bytes_replaced(void **state)
{
	(void)state;
	expect_json("a\0b", 3, "\"a\\ufffdb\"");                     /* NUL: jsonb refuses \u0000 */
	expect_json("caf\xe9", 4, "\"caf\\ufffd\"");                 /* Latin-1 é */
	expect_json("\xff\xfe", 2, "\"\\ufffd\\ufffd\"");            /* never in UTF-8 */
	expect_json("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");            /* overlong '/' */
	expect_json("\xe0\x80\xaf", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* overlong, 3 bytes */
	expect_json("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* UTF-16 surrogate */
	expect_json("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
	expect_json("\xe2\x82", 2, "\"\\ufffd\\ufffd\"");   /* cut sequence at the end */
	expect_json("\xe2\x82x", 3, "\"\\ufffd\\ufffdx\""); /* cut sequence mid-string */
}

static void
test_json_full_buffer(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(json_str(&b, "0123456789"), -1);
	buf_free(&b);
}

/* msglog_entry_json keeps the row inside the table's checks. */
static void
test_msglog_entry_sanitised(void **state)
{
	struct httpsig_header h[] = {{"X-A", "1"}, {"X-B", "\xff"}};
	const char *heis[] = {"a.example", "b.example"};
	char url[9000];
	struct msglog_entry e = {
	    .started = 1700000000,
	    .started_us = 42,
	    .method = "get",
	    .partner_heis = heis,
	    .npartner_heis = 2,
	    .api = "echo",
	    .api_version = "2.0",
	    .status = 700,
	    .duration_ms = -5,
	    .key_id = "ABCDEF",
	    .request_headers = h,
	    .nrequest_headers = 2,
	    .response_body = "0123456789",
	    .response_body_len = 10,
	    .validation = MSGLOG_INVALID,
	    .error = "refused",
	};
	struct buf b;
	const char *out;

	(void)state;
	memset(url, 'u', sizeof(url) - 1);
	url[sizeof(url) - 1] = '\0';
	e.url = url;
	buf_init(&b, 64 * 1024);
	assert_int_equal(msglog_entry_json(&b, &e, 4), 0);
	out = buf_cstr(&b);
	assert_non_null(strstr(out, "\"t\":1700000000.000042"));
	assert_non_null(strstr(out, "\"d\":\"in\""));
	assert_non_null(strstr(out, "\"m\":\"UNKNOWN\"")); /* not ^[A-Z]{1,16}$ */
	assert_non_null(strstr(out, "\"p\":[\"a.example\",\"b.example\"]"));
	assert_non_null(strstr(out, "\"v\":null")); /* not x.y.z */
	assert_non_null(strstr(out, "\"s\":null")); /* not an HTTP status */
	assert_non_null(strstr(out, "\"ms\":0"));
	assert_non_null(strstr(out, "\"k\":null")); /* not 64 hex digits */
	assert_non_null(strstr(out, "[\"X-B\",\"\\ufffd\"]"));
	assert_non_null(strstr(out, "\"sb\":\"MDEyMw==\",\"sn\":10")); /* 4 bytes kept of 10 */
	assert_non_null(strstr(out, "\"qb\":null,\"qn\":0"));
	assert_non_null(strstr(out, "\"val\":\"invalid\""));
	assert_non_null(strstr(out, "\"j\":null}"));
	/* the URL is cut at the column's 8192 characters */
	assert_non_null(strstr(out, "\"u\":\""));
	assert_int_equal(strspn(strstr(out, "\"u\":\"") + 5, "u"), 8192);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_plain_and_escapes),
	    cmocka_unit_test(test_json_utf8_kept),
	    cmocka_unit_test(test_json_invalid_bytes_replaced),
	    cmocka_unit_test(test_json_full_buffer),
	    cmocka_unit_test(test_msglog_entry_sanitised),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
