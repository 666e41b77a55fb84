/* test_codec.c - base64, hex, SHA-256, UUIDs and IMF-fixdate dates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"

/* Decodes s; asserts success and that the result equals want/wantlen. */
static void
expect_decode(const char *s, const void *want, size_t wantlen)
{
	unsigned char *out = NULL;
	size_t len = 99;

	if (codec_base64_decode(s, strlen(s), &out, &len) != 0)
		fail_msg("base64 \"%s\" refused", s);
	assert_int_equal(len, wantlen);
	assert_memory_equal(out, want, wantlen);
	assert_int_equal(out[len], '\0');
	free(out);
}

static void
expect_decode_refused(const char *s)
{
	unsigned char *out = (unsigned char *)"sentinel";
	size_t len = 99;

	if (codec_base64_decode(s, strlen(s), &out, &len) != -1)
		fail_msg("base64 \"%s\" accepted", s);
	assert_null(out);
	assert_int_equal(len, 0);
}

static void
test_codec_base64_rfc4648_vectors(void **state)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
	                                  "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

	(void)state;
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		char *e = codec_base64_encode(plain[i], strlen(plain[i]));

		assert_string_equal(e, enc[i]);
		free(e);
		expect_decode(enc[i], plain[i], strlen(plain[i]));
	}
}

static void
test_codec_base64_binary_round_trip(void **state)
{
	unsigned char data[256], *out;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(255 - i);
	for (size_t n = 0; n <= sizeof(data); n += 37) {
		char *e = codec_base64_encode(data, n);

		assert_int_equal(strlen(e), (n + 2) / 3 * 4);
		assert_int_equal(codec_base64_decode(e, strlen(e), &out, &len), 0);
		assert_int_equal(len, n);
		assert_memory_equal(out, data, n);
		free(out);
		free(e);
	}
}

static void
test_codec_base64_decode_ignores_whitespace(void **state)
{
	(void)state;
	expect_decode("Zm9v\nYmFy", "foobar", 6);
	expect_decode("  Zm9v\r\n\tYmFy \n", "foobar", 6);
	expect_decode("Zm 9v Yg =\n=", "foob", 4);
	expect_decode(" \n\t", "", 0);
	expect_decode("Zm8=\n", "fo", 2);
}

static void
test_codec_base64_decode_rejects_bad_characters(void **state)
{
	(void)state;
	expect_decode_refused("Zm9v!mFy");
	expect_decode_refused("Zm9-YmFy"); /* base64url is another alphabet */
	expect_decode_refused("Zm9_YmFy");
	expect_decode_refused("Zm9v\x80mFy");
	expect_decode_refused("Zm9v.");
}

static void
test_codec_base64_decode_rejects_embedded_nul(void **state)
{
	unsigned char *out;
	size_t len;

	(void)state;
	assert_int_equal(codec_base64_decode("Zm9v\0YmFy", 9, &out, &len), -1);
}

static void
test_codec_base64_decode_rejects_bad_padding(void **state)
{
	(void)state;
	expect_decode_refused("Zg");    /* padding missing */
	expect_decode_refused("Zg=");   /* incomplete padding */
	expect_decode_refused("Zm9vY"); /* a lone sextet */
	expect_decode_refused("Z===");  /* too much padding */
	expect_decode_refused("====");
	expect_decode_refused("=Zg=");
	expect_decode_refused("Zg==Zg=="); /* data after the final quantum */
	expect_decode_refused("Zg===");
	expect_decode_refused("Zm9=v");
	expect_decode_refused("Zm=9");
	expect_decode_refused("Zh=="); /* non-zero unused bits */
	expect_decode_refused("Zm9=");
}

static void
test_codec_sha256_known_values(void **state)
{
	unsigned char md[CODEC_SHA256_LEN];
	char hex[CODEC_SHA256_HEX_LEN + 1];

	(void)state;
	codec_sha256("", 0, md);
	codec_hex(md, sizeof(md), hex);
	assert_string_equal(hex,
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	codec_sha256(NULL, 0, md);
	codec_hex(md, sizeof(md), hex);
	assert_string_equal(hex,
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	codec_sha256("abc", 3, md);
	codec_hex(md, sizeof(md), hex);
	assert_string_equal(hex,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_codec_hex_lower_case(void **state)
{
	static const unsigned char data[] = {0x00, 0x0f, 0xa0, 0xff};
	char out[9];

	(void)state;
	codec_hex(data, sizeof(data), out);
	assert_string_equal(out, "000fa0ff");
	codec_hex(data, 0, out);
	assert_string_equal(out, "");
}

static void
test_codec_uuid_v4_is_canonical_and_fresh(void **state)
{
	char a[CODEC_UUID_LEN + 1], b[CODEC_UUID_LEN + 1];

	(void)state;
	codec_uuid_v4(a);
	codec_uuid_v4(b);
	assert_true(codec_is_canonical_uuid(a));
	assert_true(codec_is_canonical_uuid(b));
	assert_int_equal(a[14], '4');
	assert_non_null(strchr("89ab", a[19]));
	assert_string_not_equal(a, b);
}

static void
test_codec_is_canonical_uuid_rules(void **state)
{
	(void)state;
	assert_true(codec_is_canonical_uuid("dc05b425-4e86-4106-8dde-1257fccf53e5"));
	assert_true(codec_is_canonical_uuid("00000000-0000-0000-0000-000000000000"));
	assert_false(codec_is_canonical_uuid("DC05B425-4E86-4106-8DDE-1257FCCF53E5"));
	assert_false(codec_is_canonical_uuid("dc05b4254e8641068dde1257fccf53e5"));
	assert_false(codec_is_canonical_uuid("{dc05b425-4e86-4106-8dde-1257fccf53e5}"));
	assert_false(codec_is_canonical_uuid("dc05b425-4e86-4106-8dde-1257fccf53e"));
	assert_false(codec_is_canonical_uuid("dc05b425-4e86-4106-8dde-1257fccf53e5a"));
	assert_false(codec_is_canonical_uuid("dc05b425-4e86-4106-8dde-1257fccf53g5"));
	assert_false(codec_is_canonical_uuid("dc05b425-4e86-4106-8dde_1257fccf53e5"));
	assert_false(codec_is_canonical_uuid(" dc05b425-4e86-4106-8dde-1257fccf53e5"));
	assert_false(codec_is_canonical_uuid(""));
	assert_false(codec_is_canonical_uuid("12345"));
}

static void
test_codec_http_date_format(void **state)
{
	char out[CODEC_HTTP_DATE_LEN + 1];

	(void)state;
	codec_http_date(784111777, out);
	assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
	codec_http_date(0, out);
	assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
	codec_http_date(1388957500, out);
	assert_string_equal(out, "Sun, 05 Jan 2014 21:31:40 GMT");
	codec_http_date(1709210096, out); /* a leap day */
	assert_string_equal(out, "Thu, 29 Feb 2024 12:34:56 GMT");
}

static void
test_codec_parse_http_date_accepts_imf_fixdate(void **state)
{
	time_t t;
	char out[CODEC_HTTP_DATE_LEN + 1];

	(void)state;
	assert_int_equal(codec_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
	assert_int_equal(t, 784111777);
	assert_int_equal(codec_parse_http_date("Sun, 05 Jan 2014 21:31:40 GMT", &t), 0);
	assert_int_equal(t, 1388957500);
	assert_int_equal(codec_parse_http_date("Thu, 29 Feb 2024 12:34:56 GMT", &t), 0);
	assert_int_equal(t, 1709210096);
	assert_int_equal(codec_parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(codec_parse_http_date("Wed, 31 Dec 1969 23:59:59 GMT", &t), 0);
	assert_int_equal(t, -1);
	for (time_t x = 1700000000; x < 1800000000; x += 8640017) {
		codec_http_date(x, out);
		assert_int_equal(codec_parse_http_date(out, &t), 0);
		assert_int_equal(t, x);
	}
}

static void
test_codec_parse_http_date_rejects_other_forms(void **state)
{
	static const char *const bad[] = {
	    "",
	    "Sun, 6 Nov 1994 08:49:37 GMT",  /* one-digit day */
	    "Sun, 06 Nov 1994 08:49:37 UTC", /* not GMT */
	    "Sun, 06 Nov 1994 08:49:37 +0000",
	    "Sunday, 06-Nov-94 08:49:37 GMT", /* RFC 850 */
	    "Sun Nov  6 08:49:37 1994",       /* asctime */
	    "Mon, 06 Nov 1994 08:49:37 GMT",  /* wrong weekday */
	    "sun, 06 Nov 1994 08:49:37 GMT",  /* names are case-sensitive */
	    "Sun, 06 nov 1994 08:49:37 GMT",
	    "Sun, 06 Nov 1994 08:49:37 gmt",
	    "Sat, 31 Feb 2024 08:49:37 GMT", /* no such day */
	    "Thu, 29 Feb 2023 08:49:37 GMT",
	    "Sun, 00 Nov 1994 08:49:37 GMT",
	    "Sun, 06 Nov 1994 24:00:00 GMT",
	    "Sun, 06 Nov 1994 08:60:37 GMT",
	    "Sun, 06 Nov 1994 08:49:60 GMT",
	    "Sun, 06 Nov 1994 8:49:37 GMT",
	    "Sun, 06 Nov 94 08:49:37 GMT",
	    " Sun, 06 Nov 1994 08:49:37 GMT",
	    "Sun, 06 Nov 1994 08:49:37 GMT ",
	    "Sun,  06 Nov 1994 08:49:37 GMT",
	    "Sun, 06 Nov 1994 08:49:37GMT ",
	    "Sun, 06 Nov 1994 08-49-37 GMT",
	    "Sun, 0x Nov 1994 08:49:37 GMT",
	    "Sun, 06 Nov 1994 08:49:37 GMT\n",
	    "Sun, 06 Xyz 1994 08:49:37 GMT",
	    "Xyz, 06 Nov 1994 08:49:37 GMT",
	};
	time_t t = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (codec_parse_http_date(bad[i], &t) != -1)
			fail_msg("date \"%s\" accepted", bad[i]);
		assert_int_equal(t, 12345);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_codec_base64_rfc4648_vectors),
	    cmocka_unit_test(test_codec_base64_binary_round_trip),
	    cmocka_unit_test(test_codec_base64_decode_ignores_whitespace),
	    cmocka_unit_test(test_codec_base64_decode_rejects_bad_characters),
	    cmocka_unit_test(test_codec_base64_decode_rejects_embedded_nul),
	    cmocka_unit_test(test_codec_base64_decode_rejects_bad_padding),
	    cmocka_unit_test(test_codec_sha256_known_values),
	    cmocka_unit_test(test_codec_hex_lower_case),
	    cmocka_unit_test(test_codec_uuid_v4_is_canonical_and_fresh),
	    cmocka_unit_test(test_codec_is_canonical_uuid_rules),
	    cmocka_unit_test(test_codec_http_date_format),
	    cmocka_unit_test(test_codec_parse_http_date_accepts_imf_fixdate),
	    cmocka_unit_test(test_codec_parse_http_date_rejects_other_forms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
