/*
 * testutil.h - helpers shared by the cmocka unit tests: reading files,
 * finding the official EWP specs ($EWP_SPECS, default ../shared/ewp-specs
 * relative to the working directory), known-answer vector text and
 * temporary files. Linked into every unit-test program by the Makefile.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>

/* The whole file, NUL-terminated (length in *len unless NULL), or NULL when
 * unreadable: one reader for every test, each caller choosing how to fail. */
char *testutil_read_file(const char *path, size_t *len);

/* Finds the specs with `probe` readable inside; else prints "EWP specs not
 * found at DIR: `what` cannot run" once, so one cause is named, not N tests. */
bool testutil_find_specs(const char *probe, const char *what);

/* Path of `rel` in the specs found (caller frees), so tests name files by
 * their place in ewp-specs. */
char *testutil_spec_path(const char *rel);

/* Specs file `rel`, read whole; fails the test or setup with "cannot read
 * PATH", since a test without its input cannot say anything. */
char *testutil_read_spec(const char *rel, size_t *len);

/* Text from `begin` up to and including `end` (a PEM block of the vectors),
 * failing the test when a marker is missing rather than reading garbage. */
char *testutil_span(const char *from, const char *begin, const char *end);

/* A fresh /tmp/<name>.<random suffix> (caller frees), or NULL, so that runs never meet
 * each other's files. */
char *testutil_mkdtemp(const char *name);

/*
 * A throwaway PostgreSQL cluster for one test program (tests/pg/pg.sh, run
 * from the repository root): a new /tmp/<name>.<random suffix> (0755, the server may
 * run as user postgres) in *dir, the cluster in *pgdir, its Unix-socket
 * port in *port and its libpq conninfo in conninfo. 0, or -1 (said on
 * stderr). Stop it with `tests/pg/pg.sh stop *pgdir`.
 */
int testutil_pg_start(const char *name, char **dir, char **pgdir, int *port, char *conninfo,
                      size_t len);

/* Writes `text` to path (created or truncated), failing the test on any
 * error so a half-written fixture is never tested. */
void testutil_write_file(const char *path, const char *text);

#endif
