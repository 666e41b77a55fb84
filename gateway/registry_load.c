/*
 * registry_load.c - loading a catalogue: reading it, knowing what each
 * element is, and checking what needs the whole document.
 *
 * The catalogue is read as a stream (xml_stream, with the hardening of
 * xml_parse) and no tree is built: a tree is about eight times the size
 * of the document, and every worker loads the catalogue. Each open
 * element gets a kind from its parent's kind and its own name (see
 * reg_child_kind); what the loader does with an element depends on that
 * kind alone (reg_begin and reg_end, in registry_elems.c). Host
 * credentials name keys of <binaries>, which usually comes last, so they
 * are kept aside and resolved once the whole document has been read.
 *
 * What is checked is integrity, not policy: keys must decode, be RSA and
 * match their sha-256 attribute, references must resolve, ids must not be
 * empty. Key sizes, URL schemes and the like are the Registry's job; this
 * module logs nothing and leaves reporting to the caller. Of several
 * faults, the one reported is the first by the order of enum reg_rank.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "registry.h"
#include "registry_int.h"
#include "xmalloc.h"
#include "xml.h"

#define REG_NS_SEC "https://github.com/erasmus-without-paper/ewp-specs-sec-intro/tree/stable-v2"
#define REG_NS_CLI_HTTPSIG                                                                         \
	"https://github.com/erasmus-without-paper/ewp-specs-sec-cliauth-httpsig/tree/stable-v1"
#define REG_NS_SRV_HTTPSIG                                                                         \
	"https://github.com/erasmus-without-paper/ewp-specs-sec-srvauth-httpsig/tree/stable-v1"

#define REG_READ_BYTES (64 * 1024) /* catalogue file read (and parsed) at a time */

/*
 * Writes "origin: reason" into the caller's buffer unless a fault that
 * takes precedence is there already. Returns -1.
 */
int
reg_fail(struct reg_loader *l, enum reg_rank rank, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (rank >= l->rank)
		return -1;
	l->rank = rank;
	if (l->err == NULL || l->errlen == 0)
		return -1;
	n = snprintf(l->err, l->errlen, "%s: ", l->origin);
	if (n < 0 || (size_t)n >= l->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- loading: what each element is ---- */

static bool
reg_is(const char *ns, const char *name, const char *want_ns, const char *want)
{
	return strcmp(name, want) == 0 && strcmp(ns, want_ns) == 0;
}

/* True for the first once-only child of the current host (see REG_SEEN_*). */
static bool
reg_first(struct reg_loader *l, unsigned what)
{
	bool first = (l->seen & what) == 0;

	l->seen |= what;
	return first;
}

static enum reg_kind
reg_root_kind(struct reg_loader *l, const char *ns, const char *name)
{
	l->seen_root = true;
	if (reg_is(ns, name, REGISTRY_NS, "catalogue"))
		return REG_CATALOGUE;
	reg_fail(l, REG_ERR_ROOT, "root element is {%s}%s, expected {%s}catalogue", ns, name,
	         REGISTRY_NS);
	return REG_SKIP;
}

static enum reg_kind
reg_catalogue_child_kind(const char *name)
{
	if (strcmp(name, "host") == 0)
		return REG_HOST;
	if (strcmp(name, "institutions") == 0)
		return REG_INSTITUTIONS;
	if (strcmp(name, "binaries") == 0)
		return REG_BINARIES;
	return REG_SKIP;
}

static enum reg_kind
reg_host_child_kind(struct reg_loader *l, const char *name)
{
	if (strcmp(name, "apis-implemented") == 0)
		return reg_first(l, REG_SEEN_APIS) ? REG_APIS : REG_SKIP;
	if (strcmp(name, "institutions-covered") == 0)
		return reg_first(l, REG_SEEN_COVERED) ? REG_COVERED : REG_SKIP;
	if (strcmp(name, "client-credentials-in-use") == 0)
		return reg_first(l, REG_SEEN_CLI) ? REG_CLI_CREDS : REG_SKIP;
	if (strcmp(name, "server-credentials-in-use") == 0)
		return reg_first(l, REG_SEEN_SRV) ? REG_SRV_CREDS : REG_SKIP;
	return REG_SKIP;
}

static bool
reg_is_url_name(const char *name)
{
	size_t n = strlen(name);

	return strcmp(name, "url") == 0 || (n > 4 && strcmp(name + n - 4, "-url") == 0);
}

/* Children of an API entry are known by their local name, whatever their namespace. */
static enum reg_kind
reg_api_child_kind(const char *name)
{
	if (reg_is_url_name(name))
		return REG_API_URL;
	if (strncmp(name, "max-", 4) == 0)
		return REG_API_LIMIT;
	if (strcmp(name, "http-security") == 0)
		return REG_API_SEC;
	return REG_SKIP;
}

static enum reg_kind
reg_hei_child_kind(const struct reg_loader *l, const char *name)
{
	if (l->hei == REG_NONE)
		return REG_SKIP;
	if (strcmp(name, "other-id") == 0)
		return REG_OTHER_ID;
	if (strcmp(name, "name") == 0)
		return REG_NAME;
	return REG_SKIP;
}

/* The kind of an element, from its parent's kind, its namespace and its local name. */
static enum reg_kind
reg_child_kind(struct reg_loader *l, enum reg_kind parent, const char *ns, const char *name)
{
	bool reg = strcmp(ns, REGISTRY_NS) == 0;

	switch (parent) {
	case REG_CATALOGUE:
		return reg ? reg_catalogue_child_kind(name) : REG_SKIP;
	case REG_HOST:
		return reg ? reg_host_child_kind(l, name) : REG_SKIP;
	case REG_APIS:
		return REG_API;
	case REG_API:
		return reg_api_child_kind(name);
	case REG_API_SEC:
		if (reg_is(ns, name, REG_NS_SEC, "client-auth-methods"))
			return REG_SEC_CLI;
		return reg_is(ns, name, REG_NS_SEC, "server-auth-methods") ? REG_SEC_SRV : REG_SKIP;
	case REG_SEC_CLI:
		return reg_is(ns, name, REG_NS_CLI_HTTPSIG, "httpsig") ? REG_CLI_HTTPSIG : REG_SKIP;
	case REG_SEC_SRV:
		return reg_is(ns, name, REG_NS_SRV_HTTPSIG, "httpsig") ? REG_SRV_HTTPSIG : REG_SKIP;
	case REG_COVERED:
		return reg && strcmp(name, "hei-id") == 0 ? REG_HEI_ID : REG_SKIP;
	case REG_CLI_CREDS:
		return reg && strcmp(name, "rsa-public-key") == 0 ? REG_CLI_KEY : REG_SKIP;
	case REG_SRV_CREDS:
		return reg && strcmp(name, "rsa-public-key") == 0 ? REG_SRV_KEY : REG_SKIP;
	case REG_INSTITUTIONS:
		return reg && strcmp(name, "hei") == 0 ? REG_HEI : REG_SKIP;
	case REG_HEI:
		return reg ? reg_hei_child_kind(l, name) : REG_SKIP;
	case REG_BINARIES:
		return reg && strcmp(name, "rsa-public-key") == 0 ? REG_BIN_KEY : REG_SKIP;
	default:
		return REG_SKIP;
	}
}

/* ---- the stream callbacks ---- */

static void
reg_on_start(void *user, const char *ns, const char *name, const struct xml_el *el)
{
	struct reg_loader *l = user;
	enum reg_kind kind;

	/* xml_stream stops a document nested deeper than the limit: this cannot fire. */
	if (l->depth == EWP_MAX_XML_DEPTH)
		fatalx("registry: element nesting past the XML limit");
	if (l->depth == 0)
		kind = reg_root_kind(l, ns, name);
	else
		kind = reg_child_kind(l, l->kinds[l->depth - 1], ns, name);
	l->kinds[l->depth++] = kind;
	reg_begin(l, kind, ns, name, el);
}

static void
reg_on_end(void *user)
{
	struct reg_loader *l = user;

	reg_end(l, l->kinds[l->depth - 1]);
	if (l->capture_at == l->depth)
		l->capture_at = 0;
	l->depth--;
}

static void
reg_on_text(void *user, const char *s, size_t len)
{
	struct reg_loader *l = user;

	if (l->capture_at != 0)
		reg_buf_add(&l->text, s, len);
}

/* ---- loading: start to finish ---- */

static uint64_t
reg_seed(void)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)(uintptr_t)&seed ^ (uint64_t)getpid();
	return seed;
}

static const struct xml_stream_cb reg_stream_cb = {reg_on_start, reg_on_end, reg_on_text};

static void
reg_loader_init(struct reg_loader *l, const char *origin, char *err, size_t errlen)
{
	memset(l, 0, sizeof(*l));
	l->r = xcalloc(1, sizeof(*l->r));
	l->r->seed = reg_seed();
	l->origin = origin != NULL ? origin : "catalogue";
	l->err = err;
	l->errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	l->rank = REG_ERR_NONE;
	l->hei = REG_NONE;
	buf_init(&l->text, SIZE_MAX);
	buf_init(&l->attr, SIZE_MAX);
}

static void
reg_loader_free(struct reg_loader *l)
{
	buf_free(&l->text);
	buf_free(&l->attr);
	free(l->refs);
	free(l->cli_refs);
	free(l->srv_refs);
	free(l->host_heis);
	reg_arena_free(&l->scratch);
	reg_map_free(&l->strings);
	free(l->interned);
}

/* Reads the catalogue through `next`, checks what needs all of it, indexes it. */
static struct registry *
reg_load(struct reg_loader *l, xml_next_fn *next, void *ctx)
{
	struct registry *r = l->r;
	char xerr[512];

	if (xml_stream(&reg_stream_cb, l, next, ctx, EWP_MAX_CATALOGUE_BYTES, xerr, sizeof(xerr)) ==
	    -1)
		reg_fail(l, REG_ERR_XML, "%s", xerr);
	else if (!l->seen_root)
		reg_fail(l, REG_ERR_ROOT, "no root element");
	if (r->nhosts == 0)
		reg_fail(l, REG_ERR_NO_HOST, "catalogue lists no host");
	if (l->rank == REG_ERR_NONE)
		reg_resolve_hosts(l);
	reg_loader_free(l);
	if (l->rank != REG_ERR_NONE) {
		registry_free(r);
		return NULL;
	}
	reg_build_indexes(r);
	/* Hand back what loading freed (grown arrays, libxml2's buffers) to the system. */
	malloc_trim(0);
	return r;
}

struct reg_mem {
	const char *data;
	size_t len;
};

/* The whole buffer as one piece: xml_stream copies what libxml2 asks for. */
static ssize_t
reg_next_mem(void *ctx, const char **data)
{
	struct reg_mem *m = ctx;
	size_t n = m->len;

	*data = m->data;
	m->data += n;
	m->len = 0;
	return (ssize_t)n;
}

struct registry *
registry_load_mem(const char *data, size_t len, const char *origin, char *err, size_t errlen)
{
	struct reg_loader l;
	struct reg_mem m = {data, len};

	reg_loader_init(&l, origin, err, errlen);
	if (len > EWP_MAX_CATALOGUE_BYTES) {
		reg_fail(&l, REG_ERR_XML, "document too large (%zu bytes, limit %zu)", len,
		         (size_t)EWP_MAX_CATALOGUE_BYTES);
		m.len = 0;
	}
	return reg_load(&l, reg_next_mem, &m);
}

struct reg_file {
	struct reg_loader *l;
	int fd;
	size_t total;
	char buf[REG_READ_BYTES];
};

/* The file a piece at a time, so that it is never held whole; at most the catalogue limit. */
static ssize_t
reg_next_file(void *ctx, const char **data)
{
	struct reg_file *f = ctx;
	ssize_t n;

	if (f->l->rank == REG_ERR_XML)
		return -1; /* refused before it was read (see registry_load_file) */
	do
		n = read(f->fd, f->buf, sizeof(f->buf));
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return reg_fail(f->l, REG_ERR_XML, "%s", strerror(errno));
	f->total += (size_t)n;
	if (f->total > EWP_MAX_CATALOGUE_BYTES)
		return reg_fail(f->l, REG_ERR_XML, "file larger than the catalogue limit");
	*data = f->buf;
	return n;
}

struct registry *
registry_load_file(const char *path, char *err, size_t errlen)
{
	struct reg_loader l;
	struct reg_file *f;
	struct registry *r;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	reg_loader_init(&l, path, err, errlen);
	f = xcalloc(1, sizeof(*f));
	f->l = &l;
	f->fd = fd;
	/* A regular file too large is refused before any of it is parsed. */
	if (fstat(fd, &st) == 0 && st.st_size > (off_t)EWP_MAX_CATALOGUE_BYTES)
		reg_fail(&l, REG_ERR_XML, "file larger than the catalogue limit");
	r = reg_load(&l, reg_next_file, f);
	free(f);
	close(fd);
	return r;
}
