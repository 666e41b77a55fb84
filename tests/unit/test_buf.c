/* test_buf.c - bounded buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void
test_buf_appends_and_terminates(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 100);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_addstr(&b, "abc"), 0);
	assert_int_equal(buf_printf(&b, "-%d-", 42), 0);
	assert_int_equal(b.len, 7);
	assert_string_equal(buf_cstr(&b), "abc-42-");
	buf_free(&b);
}

static void
test_buf_refuses_past_ceiling(void **state)
{
	struct buf b;
	char big[64];

	(void)state;
	memset(big, 'x', sizeof(big));
	buf_init(&b, 100);
	assert_int_equal(buf_add(&b, big, 64), 0);
	assert_int_equal(buf_add(&b, big, 37), -1);
	assert_int_equal(b.len, 64); /* unchanged by the refused append */
	assert_int_equal(buf_add(&b, big, 36), 0);
	assert_int_equal(buf_printf(&b, "%s", "y"), -1);
	assert_int_equal(b.len, 100);
	buf_free(&b);
}

static void
test_buf_take_hands_over(void **state)
{
	struct buf b;
	char *p;

	(void)state;
	buf_init(&b, 10);
	assert_int_equal(buf_addstr(&b, "hello"), 0);
	p = buf_take(&b);
	assert_string_equal(p, "hello");
	assert_int_equal(b.len, 0);
	assert_null(b.data);
	free(p);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_appends_and_terminates),
	    cmocka_unit_test(test_buf_refuses_past_ceiling),
	    cmocka_unit_test(test_buf_take_hands_over),
	};
	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
