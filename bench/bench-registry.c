/*
 * bench-registry.c - load+index time, lookup cost and memory of a
 * registry snapshot.
 *
 * Build (from the checkout root, after `make`):
 *   cc -std=c17 -D_GNU_SOURCE -O2 -Igateway $(pkg-config --cflags libxml-2.0 openssl) \
 *      bench/bench-registry.c build/gateway/{registry,registry_map,registry_load}.o \
 *      build/gateway/{registry_elems,xml,keys,codec,buf,xmalloc,log}.o \
 *      -o build/bench-registry $(pkg-config --libs libxml-2.0 openssl)
 * Run:
 *   node bench/gen-catalogue.mjs 5000
 *   build/bench-registry bench/out/catalogue-5000.xml [lookups]
 *
 * Query material (keyIds, HEI ids, other-ids, API namespaces) is scraped
 * from the catalogue text, so any catalogue works, not only generated
 * ones. Lookups pick uniformly random queries from those lists.
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "registry.h"
#include "xmalloc.h"
#include "xml.h"

#define BENCH_LOADS 5

struct list {
	char **v;
	size_t n, cap;
};

static void
list_add(struct list *l, const char *s, size_t len)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n++] = xstrndup(s, len);
}

static void
list_free(struct list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* Every value between `open` and the next `close` in the text. */
static void
scrape(const char *text, const char *open, const char *close, struct list *out)
{
	const char *p = text, *end;

	while ((p = strstr(p, open)) != NULL) {
		p += strlen(open);
		end = strstr(p, close);
		if (end == NULL)
			break;
		list_add(out, p, (size_t)(end - p));
		p = end;
	}
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char chunk[65536];
	struct buf b;
	size_t n;

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	buf_init(&b, EWP_MAX_CATALOGUE_BYTES);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_add(&b, chunk, n) == -1) {
			fprintf(stderr, "%s: too large\n", path);
			exit(1);
		}
	fclose(f);
	*len = b.len;
	return buf_take(&b);
}

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Resident set size now, from /proc/self/statm (second field, in pages). */
static long
rss_kib(void)
{
	char line[128], *p, *end;
	FILE *f = fopen("/proc/self/statm", "r");
	long resident;

	if (f == NULL)
		return -1;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	if (p == NULL)
		return -1;
	strtol(line, &end, 10);
	resident = strtol(end, NULL, 10);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static size_t
pick(size_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (size_t)(rng % n);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static struct registry *
timed_loads(const char *path)
{
	double t[BENCH_LOADS], t0;
	struct registry *r = NULL;
	char err[512];

	for (int i = 0; i < BENCH_LOADS; i++) {
		registry_free(r);
		t0 = now_ns();
		r = registry_load_file(path, err, sizeof(err));
		t[i] = (now_ns() - t0) / 1e6;
		if (r == NULL) {
			fprintf(stderr, "%s\n", err);
			exit(1);
		}
	}
	qsort(t, BENCH_LOADS, sizeof(t[0]), cmp_double);
	printf("load+index (registry_load_file), %d runs: min %.1f ms, median %.1f ms, max %.1f "
	       "ms\n",
	       BENCH_LOADS, t[0], t[BENCH_LOADS / 2], t[BENCH_LOADS - 1]);
	return r;
}

struct queries {
	struct list keys, heis, erasmus, pics, ns;
};

static void
report(const char *what, double t0, long n, size_t hits)
{
	printf("  %-28s %7.1f ns/lookup  (%zu of %ld found)\n", what, (now_ns() - t0) / (double)n,
	       hits, n);
}

static void
bench_lookups(const struct registry *r, const struct queries *q, long n)
{
	const char *const *heis;
	size_t hits = 0;
	double t0;
	long i;

	printf("%ld random lookups each:\n", n);
	t0 = now_ns();
	for (i = 0; i < n; i++)
		hits += registry_key(r, q->keys.v[pick(q->keys.n)]) != NULL;
	report("registry_key", t0, n, hits);
	t0 = now_ns();
	for (hits = 0, i = 0; i < n; i++)
		hits += registry_client_heis(r, q->keys.v[pick(q->keys.n)], &heis) > 0;
	report("registry_client_heis", t0, n, hits);
	t0 = now_ns();
	for (hits = 0, i = 0; i < n; i++)
		hits += registry_api(r, q->heis.v[pick(q->heis.n)], q->ns.v[pick(q->ns.n)]) != NULL;
	report("registry_api", t0, n, hits);
	t0 = now_ns();
	for (hits = 0, i = 0; i < n; i++) {
		if (i & 1)
			hits +=
			    registry_hei_by_other_id(r, "pic", q->pics.v[pick(q->pics.n)]) != NULL;
		else
			hits += registry_hei_by_other_id(r, "erasmus",
			                                 q->erasmus.v[pick(q->erasmus.n)]) != NULL;
	}
	report("registry_hei_by_other_id", t0, n, hits);
}

/* API namespaces: the root's xmlns:* declarations of manifest entries. */
static void
scrape_namespaces(const char *text, struct list *out)
{
	const char *root = strstr(text, "<catalogue"), *end, *p, *v, *q;
	static const char suffix[] = "/manifest-entry.xsd";

	if (root == NULL || (end = strchr(root, '>')) == NULL)
		return;
	for (p = root; (p = strstr(p, "xmlns:")) != NULL && p < end; p = q) {
		v = strstr(p, "=\"");
		if (v == NULL || v > end)
			break;
		v += 2;
		q = strchr(v, '"');
		if (q == NULL || q > end)
			break;
		if ((size_t)(q - v) > sizeof(suffix) &&
		    memcmp(q - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) == 0)
			list_add(out, v, (size_t)(q - v));
	}
}

static void
scrape_queries(const char *text, struct queries *q)
{
	const char *bin = strstr(text, "<binaries");

	memset(q, 0, sizeof(*q));
	scrape(bin != NULL ? bin : text, "<rsa-public-key sha-256=\"", "\"", &q->keys);
	scrape(text, "<hei-id>", "</hei-id>", &q->heis);
	scrape(text, "<other-id type=\"erasmus\">", "</other-id>", &q->erasmus);
	scrape(text, "<other-id type=\"pic\">", "</other-id>", &q->pics);
	scrape_namespaces(text, &q->ns);
}

int
main(int argc, char **argv)
{
	long lookups = argc > 2 ? strtol(argv[2], NULL, 10) : 1000000;
	struct rusage ru;
	struct queries q;
	struct registry *r;
	size_t len, heap0, heap1;
	long rss0, rss1;
	char *text;

	if (argc < 2 || lookups <= 0) {
		fprintf(stderr, "usage: bench-registry catalogue.xml [lookups]\n");
		return 2;
	}
	xml_init(NULL);
	text = slurp(argv[1], &len);
	scrape_queries(text, &q);
	free(text);
	if (q.keys.n == 0 || q.heis.n == 0 || q.erasmus.n == 0 || q.pics.n == 0 || q.ns.n == 0) {
		fprintf(stderr, "%s: not enough query material in the catalogue\n", argv[1]);
		return 1;
	}
	printf("catalogue %s: %.1f MiB\n", argv[1], (double)len / 1048576.0);
	heap0 = mallinfo2().uordblks + mallinfo2().hblkhd;
	r = timed_loads(argv[1]);
	heap1 = mallinfo2().uordblks + mallinfo2().hblkhd;
	rss0 = rss_kib();
	malloc_trim(0);
	rss1 = rss_kib();
	printf("snapshot: %zu hosts, %zu HEIs, %zu keys; heap in use by it %.1f MiB; RSS %ld KiB "
	       "after the loads, %ld KiB after malloc_trim\n",
	       registry_host_count(r), registry_hei_count(r), registry_key_count(r),
	       (double)(heap1 - heap0) / 1048576.0, rss0, rss1);
	bench_lookups(r, &q, lookups);
	getrusage(RUSAGE_SELF, &ru);
	printf("peak RSS (getrusage ru_maxrss): %ld KiB\n", ru.ru_maxrss);
	registry_free(r);
	list_free(&q.keys);
	list_free(&q.heis);
	list_free(&q.erasmus);
	list_free(&q.pics);
	list_free(&q.ns);
	xml_cleanup();
	return 0;
}
