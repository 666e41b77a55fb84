/* test_nonce.c - request-id replay table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "nonce.h"

static void
test_nonce_detects_reuse_within_ttl(void **state)
{
	struct nonce_table *t = nonce_new(1024, false);
	time_t now = time(NULL);

	(void)state;
	assert_false(nonce_seen(t, "dc05b425-4e86-4106-8dde-1257fccf53e5", now, 600));
	assert_true(nonce_seen(t, "dc05b425-4e86-4106-8dde-1257fccf53e5", now + 10, 600));
	assert_false(nonce_seen(t, "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", now, 600));
	nonce_free(t);
}

static void
test_nonce_forgets_after_ttl(void **state)
{
	struct nonce_table *t = nonce_new(1024, false);
	time_t now = time(NULL);

	(void)state;
	assert_false(nonce_seen(t, "id-1", now, 600));
	assert_false(nonce_seen(t, "id-1", now + 601, 600));
	assert_true(nonce_seen(t, "id-1", now + 602, 600));
	nonce_free(t);
}

static void
test_nonce_survives_overload(void **state)
{
	struct nonce_table *t = nonce_new(1024, false);
	time_t now = time(NULL);
	char id[32];

	(void)state;
	/* Ten times the capacity: old ids are evicted, recent ones still caught. */
	for (int i = 0; i < 10240; i++) {
		snprintf(id, sizeof(id), "id-%d", i);
		nonce_seen(t, id, now, 600);
	}
	assert_true(nonce_seen(t, "id-10239", now, 600));
	nonce_free(t);
}

static void
test_nonce_shared_across_processes(void **state)
{
	struct nonce_table *t = nonce_new(1024, true);
	time_t now = time(NULL);
	pid_t pid;
	int status;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(nonce_seen(t, "from-child", now, 600) ? 1 : 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(nonce_seen(t, "from-child", now, 600));
	nonce_free(t);
}

/* Two processes racing on the same ids: each id is accepted exactly once. */
static void
test_nonce_race_accepts_each_id_once(void **state)
{
	enum { IDS = 100000, RACERS = 3 };
	struct nonce_table *t = nonce_new(1u << 18, true);
	unsigned char *accepted =
	    mmap(NULL, IDS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	time_t now = time(NULL);
	char id[32];

	(void)state;
	assert_true(accepted != MAP_FAILED);
	memset(accepted, 0, IDS + 1);
	for (int r = 0; r < RACERS; r++) {
		if (fork() == 0) {
			/* Start together, so that the racers meet on the same ids. */
			__atomic_fetch_add(&accepted[IDS], 1, __ATOMIC_ACQ_REL);
			while (__atomic_load_n(&accepted[IDS], __ATOMIC_ACQUIRE) < RACERS)
				;
			for (int i = 0; i < IDS; i++) {
				snprintf(id, sizeof(id), "race-%d", i);
				if (!nonce_seen(t, id, now, 600))
					__atomic_fetch_add(&accepted[i], 1, __ATOMIC_RELAXED);
			}
			_exit(0);
		}
	}
	for (int r = 0; r < RACERS; r++)
		wait(NULL);
	for (int i = 0; i < IDS; i++)
		if (accepted[i] > 1)
			fail_msg("id race-%d accepted %d times", i, accepted[i]);
	munmap(accepted, IDS + 1);
	nonce_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nonce_detects_reuse_within_ttl),
	    cmocka_unit_test(test_nonce_forgets_after_ttl),
	    cmocka_unit_test(test_nonce_survives_overload),
	    cmocka_unit_test(test_nonce_shared_across_processes),
	    cmocka_unit_test(test_nonce_race_accepts_each_id_once),
	};
	return cmocka_run_group_tests_name("nonce", tests, NULL, NULL);
}
