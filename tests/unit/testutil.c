/*
 * testutil.c - helpers shared by the cmocka unit tests (see testutil.h).
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "testutil.h"
#include "xmalloc.h"

/* The largest file a test reads: far above any spec file or catalogue. */
#define TESTUTIL_MAX_FILE (64 * 1024 * 1024)

static char specs[PATH_MAX]; /* absolute path of the specs, once found */

char *
testutil_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[8192];
	size_t n;
	int rc = 0;

	if (f == NULL)
		return NULL;
	buf_init(&b, TESTUTIL_MAX_FILE);
	while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = buf_add(&b, chunk, n);
	if (rc != 0 || ferror(f)) {
		fclose(f);
		buf_free(&b);
		return NULL;
	}
	fclose(f);
	if (len != NULL)
		*len = b.len;
	return buf_take(&b);
}

bool
testutil_find_specs(const char *probe, const char *what)
{
	const char *dir = getenv("EWP_SPECS");
	char *path;
	bool found;

	if (dir == NULL || *dir == '\0')
		dir = "../shared/ewp-specs";
	path = xasprintf("%s/%s", dir, probe);
	found = realpath(dir, specs) != NULL && access(path, R_OK) == 0;
	free(path);
	if (!found) {
		specs[0] = '\0';
		fprintf(stderr, "EWP specs not found at %s: %s cannot run\n", dir, what);
	}
	return found;
}

char *
testutil_spec_path(const char *rel)
{
	assert_true(specs[0] != '\0'); /* testutil_find_specs() first */
	return xasprintf("%s/%s", specs, rel);
}

char *
testutil_read_spec(const char *rel, size_t *len)
{
	char *path = testutil_spec_path(rel);
	char *text = testutil_read_file(path, len);

	if (text == NULL)
		fail_msg("cannot read %s", path);
	free(path);
	return text;
}

char *
testutil_span(const char *from, const char *begin, const char *end)
{
	const char *b = strstr(from, begin), *e = NULL;

	if (b == NULL || (e = strstr(b, end)) == NULL)
		fail_msg("vector marker \"%s\" not found", begin);
	return xstrndup(b, (size_t)(e - b) + strlen(end));
}

char *
testutil_mkdtemp(const char *name)
{
	char *dir = xasprintf("/tmp/%s.XXXXXX", name);

	if (mkdtemp(dir) == NULL) {
		free(dir);
		return NULL;
	}
	return dir;
}

int
testutil_pg_start(const char *name, char **dir, char **pgdir, int *port, char *conninfo, size_t len)
{
	char *cmd;
	FILE *p;
	size_t n;

	if ((*dir = testutil_mkdtemp(name)) == NULL || chmod(*dir, 0755) == -1)
		return -1;
	*pgdir = xasprintf("%s/pg", *dir);
	*port = 20000 + (int)(getpid() % 20000); /* Unix socket only: no clash */
	cmd = xasprintf("tests/pg/pg.sh start %s %d", *pgdir, *port);
	p = popen(cmd, "r");
	free(cmd);
	if (p == NULL)
		return -1;
	if (fgets(conninfo, (int)len, p) == NULL)
		conninfo[0] = '\0';
	if (pclose(p) != 0 || conninfo[0] == '\0') {
		fprintf(stderr, "tests/pg/pg.sh start failed (run from the repository root)\n");
		return -1;
	}
	n = strlen(conninfo);
	if (n > 0 && conninfo[n - 1] == '\n')
		conninfo[n - 1] = '\0';
	return 0;
}

void
testutil_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}
