/* test_password.c - scrypt password hashes and the password policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "portal/portal_password.h"

#define GOOD "correct horse battery staple"

/*
 * Known answers from another implementation (Python's hashlib.scrypt,
 * salt bytes 0..15, dklen 32, base64 without padding), so the stored
 * form and the use of the parameters are checked, not only our own
 * round trip.
 */
static const char kat_ln10[] =
    "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/AXJlRU";
static const char kat_ln11[] =
    "$scrypt$ln=11,r=4,p=2$AAECAwQFBgcICQoLDA0ODw$ik/zp4Lt7kurLtF0b9n68EZbUIV+rZWXK5UDhcZDniE";
/* at the bounds: 128 * r * N = 64 MiB; r = 32 and p = 4 */
static const char kat_ln16[] =
    "$scrypt$ln=16,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$1a0ZQtnx0oHhn48xj8fOQ5+iE1AgsBClgPgQyKBBRRw";
static const char kat_r32_p4[] =
    "$scrypt$ln=10,r=32,p=4$AAECAwQFBgcICQoLDA0ODw$FiRvNKqLNfxZJOx5/s2gMlGJ6VVRd3/HL9SoXtaVf2U";
static const char kat_ln11_password[] = "Mot de passe tr\xc3\xa8s s\xc3\xbbr";

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The stored form, character class by character class. */
static bool
well_formed(const char *s)
{
	static const char prefix[] = "$scrypt$ln=15,r=8,p=1$";
	const char *b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	if (strncmp(s, prefix, strlen(prefix)) != 0)
		return false;
	s += strlen(prefix);
	if (strspn(s, b64) != 22 || s[22] != '$')
		return false;
	s += 23;
	return strspn(s, b64) == 43 && s[43] == '\0';
}

static void
test_password_round_trip(void **state)
{
	char h[PORTAL_PASSWORD_HASH_LEN];

	(void)state;
	assert_int_equal(portal_password_hash(GOOD, h, sizeof(h)), 0);
	assert_true(well_formed(h));
	assert_true(portal_password_verify(GOOD, h));
}

static void
test_password_wrong_password(void **state)
{
	char h[PORTAL_PASSWORD_HASH_LEN];

	(void)state;
	assert_int_equal(portal_password_hash(GOOD, h, sizeof(h)), 0);
	assert_false(portal_password_verify("correct horse battery stapl", h));
	assert_false(portal_password_verify("correct horse battery staplf", h));
	assert_false(portal_password_verify("Correct horse battery staple", h));
	assert_false(portal_password_verify("", h));
	assert_false(portal_password_verify(NULL, h));
	assert_true(portal_password_verify(GOOD, h)); /* unchanged by the failures */
}

static void
test_password_salted(void **state)
{
	char a[PORTAL_PASSWORD_HASH_LEN], b[PORTAL_PASSWORD_HASH_LEN];

	(void)state;
	assert_int_equal(portal_password_hash(GOOD, a, sizeof(a)), 0);
	assert_int_equal(portal_password_hash(GOOD, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	/* the salts differ, not only the hashes */
	assert_memory_not_equal(a + 22, b + 22, 22);
	assert_true(portal_password_verify(GOOD, a));
	assert_true(portal_password_verify(GOOD, b));
}

static void
test_password_known_answers(void **state)
{
	(void)state;
	assert_true(portal_password_verify(GOOD, kat_ln10));
	assert_true(portal_password_verify(kat_ln11_password, kat_ln11));
	assert_false(portal_password_verify(GOOD, kat_ln11));
	assert_false(portal_password_verify(kat_ln11_password, kat_ln10));
}

/* Each character of the salt and of the hash matters. */
static void
test_password_tampered(void **state)
{
	char s[sizeof(kat_ln10)];
	size_t start = strlen("$scrypt$ln=10,r=8,p=1$");

	(void)state;
	for (size_t i = start; i < strlen(kat_ln10); i++) {
		if (kat_ln10[i] == '$')
			continue;
		memcpy(s, kat_ln10, sizeof(s));
		s[i] = s[i] == 'A' ? 'B' : 'A';
		if (!portal_password_verify(GOOD, s))
			continue;
		fail_msg("tampered at %zu still verifies: %s", i, s);
	}
	/* the parameters are part of what is checked */
	memcpy(s, kat_ln10, sizeof(s));
	s[strlen("$scrypt$ln=1")] = '1';
	assert_false(portal_password_verify(GOOD, s));
	memcpy(s, kat_ln10, sizeof(s));
	s[strlen("$scrypt$ln=10,r=")] = '4';
	assert_false(portal_password_verify(GOOD, s));
	memcpy(s, kat_ln10, sizeof(s));
	s[strlen("$scrypt$ln=10,r=8,p=")] = '2';
	assert_false(portal_password_verify(GOOD, s));
}

/* Parameters out of bounds are refused before scrypt runs. */
static void
test_password_refuses_costly_parameters(void **state)
{
	static const char *const params[] = {
	    "ln=20,r=8,p=1",  /* 1 GiB */
	    "ln=17,r=8,p=1",  /* 128 MiB */
	    "ln=16,r=32,p=1", /* 256 MiB */
	    "ln=16,r=8,p=4",  /* 64 MiB but 8x the default work */
	    "ln=21,r=1,p=1",  "ln=9,r=8,p=1",  "ln=15,r=33,p=1", "ln=15,r=0,p=1",
	    "ln=15,r=8,p=5",  "ln=15,r=8,p=0", "ln=99,r=99,p=9",
	};
	const char *tail = strchr(kat_ln10 + strlen("$scrypt$"), '$');
	char s[256];
	double t0, worst = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		snprintf(s, sizeof(s), "$scrypt$%s%s", params[i], tail);
		t0 = now_ms();
		assert_false(portal_password_verify(GOOD, s));
		if (now_ms() - t0 > worst)
			worst = now_ms() - t0;
	}
	/* one real verify with ln=10 costs ~1 ms, ln=15 ~85 ms: nothing ran */
	if (worst > 5.0)
		fail_msg("refusing out-of-bounds parameters took %.1f ms", worst);
	/* the bounds themselves pass: 64 MiB; r and p at their maximum */
	assert_true(portal_password_verify(GOOD, kat_ln16));
	assert_true(portal_password_verify(GOOD, kat_r32_p4));
}

static void
test_password_malformed(void **state)
{
	static const char *const bad[] = {
	    "", "$scrypt$", "$scrypt$ln=10,r=8,p=1$",
	    "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw",
	    "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$",
	    /* padding, trailing or missing characters */
	    "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw==$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/"
	    "AXJlRU",
	    "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/"
	    "AXJlRU=",
	    "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/"
	    "AXJlRU$",
	    "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0OD$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/"
	    "AXJlRU",
	    "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/"
	    "AXJlR",
	    /* non-canonical last characters (unused bits set) */
	    "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODx$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/"
	    "AXJlRU",
	    "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/"
	    "AXJlRV",
	    /* URL-safe alphabet, leading zero, spaces, order, prefix */
	    "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S_"
	    "AXJlRU",
	    "$scrypt$ln=010,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/"
	    "AXJlRU",
	    "$scrypt$ln=10, r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/"
	    "AXJlRU",
	    "$scrypt$r=8,ln=10,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/"
	    "AXJlRU",
	    "$scrypt$ln=10,r=8$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/AXJlRU",
	    "$scrypt$ln=-10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/"
	    "AXJlRU",
	    "$SCRYPT$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/"
	    "AXJlRU",
	    " $scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S/"
	    "AXJlRU",
	    "$2b$12$abcdefghijklmnopqrstuuB0Xq7nH1Zx6d8r4bqJhZ2b3p6FQm3Ye",
	    GOOD, /* a plaintext left in the column */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (portal_password_verify(GOOD, bad[i]))
			fail_msg("malformed stored string accepted: \"%s\"", bad[i]);
	assert_false(portal_password_verify(GOOD, NULL));
	assert_true(portal_password_verify(GOOD, kat_ln10)); /* the control */
}

static void
test_password_hash_limits(void **state)
{
	char h[PORTAL_PASSWORD_HASH_LEN], small[64], *big;

	(void)state;
	memset(small, 'x', sizeof(small));
	assert_int_equal(portal_password_hash(GOOD, small, sizeof(small)), -1);
	assert_int_equal(small[0], '\0'); /* no partial string left */
	assert_int_equal(portal_password_hash(NULL, h, sizeof(h)), -1);
	big = malloc(PORTAL_PASSWORD_MAX + 2);
	assert_non_null(big);
	memset(big, 'a', PORTAL_PASSWORD_MAX + 1);
	big[PORTAL_PASSWORD_MAX + 1] = '\0';
	assert_int_equal(portal_password_hash(big, h, sizeof(h)), -1);
	big[PORTAL_PASSWORD_MAX] = '\0'; /* exactly the maximum */
	assert_int_equal(portal_password_hash(big, h, sizeof(h)), 0);
	assert_true(portal_password_verify(big, h));
	big[PORTAL_PASSWORD_MAX] = 'a'; /* one more byte: refused */
	assert_false(portal_password_verify(big, h));
	free(big);
}

static void
test_password_policy(void **state)
{
	static const struct {
		const char *pw;
		bool ok;
		const char *why;
	} cases[] = {
	    {"elevenbytes", false, "too short"},
	    {"twelve bytes", true, NULL},
	    {"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", true, NULL}, /* 6 x U+00E9 */
	    {"mot de passe \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x91", true, NULL},
	    {"twelve\tbytes", false, "control"},
	    {"twelve bytes\n", false, "control"},
	    {"twelve bytes\x7f", false, "control"},
	    {"twelve bytes\xc2\x85", false, "control"}, /* U+0085 (C1) */
	    {"twelve bytes\xc2\xa0", true, NULL},       /* U+00A0 is not one */
	    {"twelve bytes\xff", false, "UTF-8"},
	    {"twelve bytes\xc3", false, "UTF-8"},             /* truncated */
	    {"twelve bytes\xc0\xa0", false, "UTF-8"},         /* overlong */
	    {"twelve bytes\xe0\x80\xa0", false, "UTF-8"},     /* overlong */
	    {"twelve bytes\xed\xa0\x80", false, "UTF-8"},     /* surrogate */
	    {"twelve bytes\xf4\x90\x80\x80", false, "UTF-8"}, /* past U+10FFFF */
	    {"twelve bytes\x80", false, "UTF-8"},             /* lone continuation */
	};
	const char *why;
	char *big;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why = "unset";
		if (portal_password_acceptable(cases[i].pw, &why) != cases[i].ok)
			fail_msg("case %zu: expected %s", i, cases[i].ok ? "accepted" : "refused");
		if (cases[i].ok)
			assert_null(why);
		else if (why == NULL || strstr(why, cases[i].why) == NULL)
			fail_msg("case %zu: reason \"%s\" lacks \"%s\"", i, why ? why : "(null)",
			         cases[i].why);
	}
	assert_false(portal_password_acceptable(NULL, &why));
	assert_false(portal_password_acceptable("short", NULL)); /* why may be NULL */
	big = malloc(PORTAL_PASSWORD_MAX + 2);
	assert_non_null(big);
	memset(big, 'a', PORTAL_PASSWORD_MAX + 1);
	big[PORTAL_PASSWORD_MAX + 1] = '\0';
	assert_false(portal_password_acceptable(big, &why));
	assert_non_null(strstr(why, "too long"));
	big[PORTAL_PASSWORD_MAX] = '\0';
	assert_true(portal_password_acceptable(big, &why));
	free(big);
}

/* burn costs what a verify with the default parameters costs. */
static void
test_password_burn_costs_a_verify(void **state)
{
	char h[PORTAL_PASSWORD_HASH_LEN];
	double t0, verify = 1e9, burn = 1e9;

	(void)state;
	assert_int_equal(portal_password_hash(GOOD, h, sizeof(h)), 0);
	for (int i = 0; i < 3; i++) {
		t0 = now_ms();
		assert_false(portal_password_verify("not the password", h));
		if (now_ms() - t0 < verify)
			verify = now_ms() - t0;
		t0 = now_ms();
		portal_password_burn("not the password");
		if (now_ms() - t0 < burn)
			burn = now_ms() - t0;
	}
	print_message("one verify with the default parameters: %.1f ms, burn %.1f ms\n", verify,
	              burn);
	if (burn < verify * 0.6 || burn > verify * 1.6)
		fail_msg("burn %.1f ms vs verify %.1f ms", burn, verify);
	t0 = now_ms();
	portal_password_burn(NULL); /* no crash, still costs the same */
	assert_true(now_ms() - t0 > verify * 0.6);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_password_round_trip),
	    cmocka_unit_test(test_password_wrong_password),
	    cmocka_unit_test(test_password_salted),
	    cmocka_unit_test(test_password_known_answers),
	    cmocka_unit_test(test_password_tampered),
	    cmocka_unit_test(test_password_refuses_costly_parameters),
	    cmocka_unit_test(test_password_malformed),
	    cmocka_unit_test(test_password_hash_limits),
	    cmocka_unit_test(test_password_policy),
	    cmocka_unit_test(test_password_burn_costs_a_verify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
