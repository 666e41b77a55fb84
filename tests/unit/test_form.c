/* test_form.c - strict application/x-www-form-urlencoded parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "form.h"

static void
test_form_keeps_order_and_duplicates(void **state)
{
	struct form f;
	char err[128];

	(void)state;
	assert_int_equal(form_parse("echo=a&echo=b&echo=a&x=1", 24, &f, err, sizeof(err)), 0);
	assert_int_equal(f.n, 4);
	assert_int_equal(form_count(&f, "echo"), 3);
	assert_string_equal(f.params[0].value, "a");
	assert_string_equal(f.params[1].value, "b");
	assert_string_equal(f.params[2].value, "a");
	assert_string_equal(form_get(&f, "x"), "1");
	assert_null(form_get(&f, "X")); /* names are case-sensitive */
	form_free(&f);
}

static void
test_form_decodes_escapes_and_plus(void **state)
{
	struct form f;
	char err[128];
	const char *in = "na%6De=a+b%20c%2B&empty=&bare&&";

	(void)state;
	assert_int_equal(form_parse(in, strlen(in), &f, err, sizeof(err)), 0);
	assert_int_equal(f.n, 3);
	assert_string_equal(form_get(&f, "name"), "a b c+");
	assert_string_equal(form_get(&f, "empty"), "");
	assert_string_equal(form_get(&f, "bare"), "");
	form_free(&f);
}

static void
test_form_rejects_bad_escapes(void **state)
{
	static const char *const bad[] = {"a=%", "a=%4", "a=%zz", "a=%00", "%=1", "a=b%2"};
	struct form f;
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(form_parse(bad[i], strlen(bad[i]), &f, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "percent-encoding"));
		assert_int_equal(f.n, 0);
	}
}

static void
test_form_limits_parameter_count(void **state)
{
	char in[4 * (EWP_MAX_PARAMS + 1) + 1];
	struct form f;
	char err[128];
	size_t o = 0;

	(void)state;
	for (int i = 0; i <= EWP_MAX_PARAMS; i++) {
		memcpy(in + o, "a=1&", 4);
		o += 4;
	}
	assert_int_equal(form_parse(in, o, &f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "parameters"));
	assert_int_equal(form_parse(in, o - 4, &f, err, sizeof(err)), 0);
	assert_int_equal(f.n, EWP_MAX_PARAMS);
	form_free(&f);
}

static void
test_form_empty_input(void **state)
{
	struct form f;
	char err[128];

	(void)state;
	assert_int_equal(form_parse("", 0, &f, err, sizeof(err)), 0);
	assert_int_equal(f.n, 0);
	form_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_form_keeps_order_and_duplicates),
	    cmocka_unit_test(test_form_decodes_escapes_and_plus),
	    cmocka_unit_test(test_form_rejects_bad_escapes),
	    cmocka_unit_test(test_form_limits_parameter_count),
	    cmocka_unit_test(test_form_empty_input),
	};
	return cmocka_run_group_tests_name("form", tests, NULL, NULL);
}
