/* test_conf.c - INI configuration: values, defaults and precise errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

static const char minimal[] = "[server]\n"
                              "listen = 127.0.0.1:9443\n"
                              "tls = off\n"
                              "public_url = https://ewp.example.edu/\n"
                              "[ewp]\n"
                              "hei_id = example.edu\n"
                              "hei_name = Exemple\n"
                              "admin_email = ewp@example.edu\n"
                              "[keys]\n"
                              "keys_dir = keys\n"
                              "[registry]\n"
                              "url = file:///tmp/catalogue.xml\n"
                              "cache = cache.xml\n";

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ewpd-test-conf-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/ewpd.conf", dir);
	unlink(path);
	return rmdir(dir);
}

/* Writes text as the configuration file and loads it. */
static struct conf *
load(const char *text, char *err, size_t errlen)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/ewpd.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return conf_load(path, err, errlen);
}

static void
test_conf_minimal_gets_defaults(void **state)
{
	char err[512] = "", path[128];
	struct conf *c = load(minimal, err, sizeof(err));

	(void)state;
	assert_non_null(c);
	assert_string_equal(c->listen_host, "127.0.0.1");
	assert_int_equal(c->listen_port, 9443);
	assert_false(c->tls);
	assert_int_equal(c->workers, 2);
	assert_string_equal(c->public_url, "https://ewp.example.edu");
	assert_string_equal(c->public_host, "ewp.example.edu");
	assert_int_equal(c->date_window, 300);
	assert_int_equal(c->registry_refresh, 900);
	assert_string_equal(c->manifest_path, "/ewp/manifest.xml");
	snprintf(path, sizeof(path), "%s/keys", dir);
	assert_string_equal(c->keys_dir, path); /* relative to the file */
	conf_free(c);
}

static void
test_conf_unknown_key_names_file_and_line(void **state)
{
	char err[512], text[2048], expect[256];
	struct conf *c;

	(void)state;
	snprintf(text, sizeof(text), "%s[server]\nlisten_port = 1\n", minimal);
	c = load(text, err, sizeof(err));
	assert_null(c);
	snprintf(expect, sizeof(expect), "%s/ewpd.conf:15: unknown key \"listen_port\"", dir);
	assert_non_null(strstr(err, expect));
}

static void
test_conf_rejects_bad_values(void **state)
{
	static const struct {
		const char *extra;
		const char *expect;
	} cases[] = {
	    {"[server]\nworkers = zero\n", "not a whole number"},
	    {"[server]\nworkers = 0\n", "outside 1..64"},
	    {"[server]\nmetrics = maybe\n", "not on/off"},
	    {"[server]\nrequest_timeout = soon\n", "not a duration"},
	    {"[registry]\nrefresh = 4h\n", "outside 60s..10800s"},
	    {"[ewp]\ndate_window = 1m\n", "outside 300s"},
	    {"[log]\nlevel = loud\n", "not one of error"},
	    {"[nowhere]\n", "unknown section [nowhere]"},
	    {"[server\n", "malformed section"},
	    {"[server]\njust words\n", "expected key = value"},
	    {"[ewp]\nhei_id = again\n", "set twice"},
	};
	char err[512], text[2048];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", minimal, cases[i].extra);
		assert_null(load(text, err, sizeof(err)));
		if (strstr(err, cases[i].expect) == NULL)
			fail_msg("case %zu: \"%s\" not in \"%s\"", i, cases[i].expect, err);
		assert_non_null(strstr(err, ":1")); /* a line number is given */
	}
}

static void
test_conf_checks_whole_file(void **state)
{
	char err[512];

	(void)state;
	assert_null(load("[server]\ntls = off\n", err, sizeof(err)));
	assert_non_null(strstr(err, "missing required key \"public_url\""));
	assert_null(
	    load("[server]\ntls = on\npublic_url = https://a.example\n"
	         "[ewp]\nhei_id = a\nhei_name = A\nadmin_email = a@a\n[keys]\nkeys_dir = k\n"
	         "[registry]\nurl = file:///x\ncache = c\n",
	         err, sizeof(err)));
	assert_non_null(strstr(err, "tls_cert"));
}

static void
test_conf_rejects_public_url_with_path(void **state)
{
	char err[512], text[2048];
	char *p;

	(void)state;
	snprintf(text, sizeof(text), "%s", minimal);
	p = strstr(text, "https://ewp.example.edu/");
	memcpy(p, "ftp://ewp.example.edu/a", 23);
	assert_null(load(text, err, sizeof(err)));
	assert_non_null(strstr(err, "public_url"));
	snprintf(text, sizeof(text), "%s", minimal);
	p = strstr(text, "https://ewp.example.edu/\n");
	memcpy(p, "http://h.example:81/ewp\n", 24);
	assert_null(load(text, err, sizeof(err)));
	assert_non_null(strstr(err, "without a path"));
}

static void
test_conf_lists_and_key_paths(void **state)
{
	char err[512], text[2048];
	struct conf *c;
	char *p;

	(void)state;
	snprintf(text, sizeof(text), "%s[keys]\n", minimal);
	/* a second [keys] section header is fine; keys stay unique */
	snprintf(text, sizeof(text),
	         "%s"
	         "[server]\npublic_url = http://127.0.0.1:9443\n",
	         minimal);
	assert_null(load(text, err, sizeof(err))); /* public_url twice */
	snprintf(text, sizeof(text), "%s",
	         "[server]\ntls = off\npublic_url = http://127.0.0.1:9443\n"
	         "[ewp]\nhei_id = a\nhei_name = A\nadmin_email = a@a\n"
	         "[keys]\nkeys_dir = /k\npublish_client = new.pem.pub , other.pub,\n"
	         "[registry]\nurl = file:///x\ncache = /c\n");
	c = load(text, err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->public_host, "127.0.0.1:9443");
	assert_int_equal(c->npublish_client, 2);
	assert_string_equal(c->publish_client[0], "new.pem.pub");
	assert_string_equal(c->publish_client[1], "other.pub");
	p = conf_key_path(c, c->client_key);
	assert_string_equal(p, "/k/client.pem");
	free(p);
	p = conf_key_path(c, "/abs/key.pem");
	assert_string_equal(p, "/abs/key.pem");
	free(p);
	conf_free(c);
}

static void
test_conf_reload_keeps_unreloadable(void **state)
{
	char err[512], text[2048];
	struct conf *cur, *next;

	(void)state;
	cur = load(minimal, err, sizeof(err));
	assert_non_null(cur);
	snprintf(text, sizeof(text), "%s", minimal);
	memcpy(strstr(text, "9443"), "9444", 4);
	memcpy(strstr(text, "Exemple"), "Nouveau", 7);
	next = load(text, err, sizeof(err));
	assert_non_null(next);
	assert_int_equal(next->listen_port, 9444);
	conf_keep_unreloadable(next, cur);
	assert_int_equal(next->listen_port, 9443);
	assert_string_equal(next->listen, "127.0.0.1:9443");
	assert_string_equal(next->hei_name, "Nouveau"); /* reloadable */
	conf_free(cur);
	conf_free(next);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_conf_minimal_gets_defaults),
	    cmocka_unit_test(test_conf_unknown_key_names_file_and_line),
	    cmocka_unit_test(test_conf_rejects_bad_values),
	    cmocka_unit_test(test_conf_checks_whole_file),
	    cmocka_unit_test(test_conf_rejects_public_url_with_path),
	    cmocka_unit_test(test_conf_lists_and_key_paths),
	    cmocka_unit_test(test_conf_reload_keeps_unreloadable),
	};
	return cmocka_run_group_tests_name("conf", tests, setup, teardown);
}
