/*
 * registry_elems.c - what the catalogue loader does when an element of
 * each kind opens (reg_begin) and closes (reg_end): keys of <binaries>
 * are decoded, fingerprinted and parsed; <hei> entries get their name and
 * other-ids; API entries their URLs, limits and http-security; hosts
 * their HEIs and credentials, which reg_resolve_hosts checks against
 * <binaries> once the whole document has been read.
 *
 * The element kinds and the order of the faults are in registry_load.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/tree.h> /* XML_XML_NAMESPACE */

#include "buf.h"
#include "codec.h"
#include "keys.h"
#include "log.h"
#include "registry_int.h"
#include "xmalloc.h"
#include "xml.h"

/* ---- interned strings ---- */

static bool
reg_eq_interned(const void *ctx, uint32_t val, const char *s, const char *unused)
{
	const struct reg_loader *l = ctx;

	(void)unused;
	return strcmp(l->interned[val], s) == 0;
}

static const char *
reg_intern(struct reg_loader *l, const char *s)
{
	uint64_t h = reg_hash(l->r->seed, s, NULL);
	uint32_t i = reg_map_find(&l->strings, reg_eq_interned, l, h, s, NULL);

	if (i != REG_NONE)
		return l->interned[i];
	REG_GROW(l->interned, l->ninterned, l->internedcap);
	l->interned[l->ninterned] = reg_strndup(&l->r->arena, s, strlen(s));
	reg_map_add(&l->strings, h, (uint32_t)l->ninterned);
	return l->interned[l->ninterned++];
}

/* ---- loading: text and attributes ---- */

/* Appends to a load-time buffer: they have no ceiling of their own (the document has one). */
void
reg_buf_add(struct buf *b, const char *s, size_t n)
{
	if (buf_add(b, s, n) == -1)
		fatalx("registry: load buffer overflow"); /* unreachable: the ceiling is SIZE_MAX */
}

/* Starts collecting the text of the element just opened, descendants' text included. */
static void
reg_capture(struct reg_loader *l)
{
	buf_reset(&l->text);
	l->capture_at = l->depth;
}

/* The collected text, trimmed and NUL-terminated in place. */
static char *
reg_text(struct reg_loader *l, size_t *len)
{
	char *s, *e;

	if (l->text.data == NULL)
		reg_buf_add(&l->text, "", 0); /* nothing captured yet: make it "" */
	s = l->text.data;
	e = s + l->text.len;
	while (s < e && reg_space(*s))
		s++;
	while (e > s && reg_space(e[-1]))
		e--;
	*e = '\0';
	*len = (size_t)(e - s);
	return s;
}

/*
 * Attribute in no namespace, trimmed and NUL-terminated; NULL when
 * absent. Valid until the next call.
 */
static const char *
reg_attr(struct reg_loader *l, const struct xml_el *el, const char *name)
{
	size_t len;
	const char *v = xml_el_attr(el, NULL, name, &len);

	if (v == NULL)
		return NULL;
	while (len > 0 && reg_space(*v))
		v++, len--;
	while (len > 0 && reg_space(v[len - 1]))
		len--;
	buf_reset(&l->attr);
	reg_buf_add(&l->attr, v, len);
	return buf_cstr(&l->attr);
}

/* ---- loading: binaries ---- */

static void
reg_bin_key_begin(struct reg_loader *l, const struct xml_el *el)
{
	struct registry *r = l->r;
	const char *sha = reg_attr(l, el, "sha-256");
	size_t index = l->nbin_keys++;

	if (sha == NULL || !reg_keyid_norm(sha, l->keyid)) {
		l->keyid[0] = '\0';
		reg_fail(l, REG_ERR_BINARIES,
		         "binaries key %zu: sha-256 attribute missing or not 64 hex digits", index);
		return;
	}
	if (reg_map_find(&r->key_map, reg_eq_key, r, reg_keyid_hash(r->seed, l->keyid), l->keyid,
	                 NULL) != REG_NONE) {
		l->keyid[0] = '\0'; /* same digest, same bytes: a harmless repeat */
		return;
	}
	reg_capture(l);
}

static void
reg_add_key(struct reg_loader *l, struct keys_pub *pub)
{
	struct registry *r = l->r;
	struct reg_key *k;

	REG_GROW(r->keys, r->nkeys, l->keycap);
	k = &r->keys[r->nkeys];
	memset(k, 0, sizeof(*k));
	k->owned = pub;
	k->pub.pub = pub;
	k->pub.keyid = keys_pub_keyid(pub); /* the digest that matched l->keyid: the same text */
	reg_map_add(&r->key_map, reg_keyid_hash(r->seed, l->keyid), (uint32_t)r->nkeys++);
}

/* Decodes, fingerprints and parses the key whose sha-256 reg_bin_key_begin accepted. */
static void
reg_bin_key_end(struct reg_loader *l)
{
	char got[CODEC_SHA256_HEX_LEN + 1];
	unsigned char md[CODEC_SHA256_LEN], *der;
	struct keys_pub *pub;
	const char *b64;
	size_t len, derlen;

	if (l->keyid[0] == '\0')
		return;
	b64 = reg_text(l, &len);
	if (codec_base64_decode(b64, len, &der, &derlen) == -1) {
		reg_fail(l, REG_ERR_BINARIES, "binaries key %s: content is not valid base64",
		         l->keyid);
		return;
	}
	codec_sha256(der, derlen, md);
	codec_hex(md, sizeof(md), got);
	if (strcmp(got, l->keyid) != 0) {
		free(der);
		reg_fail(l, REG_ERR_BINARIES,
		         "binaries key %s: sha-256 attribute does not match the key (its digest is "
		         "%s)",
		         l->keyid, got);
		return;
	}
	pub = keys_pub_from_der(der, derlen);
	free(der);
	if (pub == NULL) {
		reg_fail(l, REG_ERR_BINARIES, "binaries key %s: not a DER SubjectPublicKeyInfo",
		         l->keyid);
	} else if (!keys_pub_is_rsa(pub)) {
		keys_pub_free(pub);
		reg_fail(l, REG_ERR_BINARIES, "binaries key %s: not an RSA key", l->keyid);
	} else {
		reg_add_key(l, pub);
	}
}

/* ---- loading: institutions ---- */

/* Index of HEI `id`, created (with a copy of id) on first sight. */
static uint32_t
reg_hei_get(struct reg_loader *l, const char *id)
{
	struct registry *r = l->r;
	uint64_t h = reg_hash(r->seed, id, NULL);
	uint32_t i = reg_map_find(&r->hei_map, reg_eq_hei, r, h, id, NULL);

	if (i != REG_NONE)
		return i;
	REG_GROW(r->heis, r->nheis, l->heicap);
	r->heis[r->nheis] = (struct reg_hei){reg_strndup(&r->arena, id, strlen(id)), NULL, false};
	reg_map_add(&r->hei_map, h, (uint32_t)r->nheis);
	return (uint32_t)r->nheis++;
}

static void
reg_hei_begin(struct reg_loader *l, const struct xml_el *el)
{
	const char *id = reg_attr(l, el, "id");
	size_t index = l->nhei_els++;

	l->hei = REG_NONE; /* its children are then skipped */
	if (id == NULL || *id == '\0')
		reg_fail(l, REG_ERR_INSTITUTIONS, "institutions: hei %zu has no id", index);
	else
		l->hei = reg_hei_get(l, id);
}

static bool
reg_lang_is_en(const struct xml_el *el)
{
	size_t len;
	const char *lang = xml_el_attr(el, (const char *)XML_XML_NAMESPACE, "lang", &len);

	return lang != NULL && len >= 2 && strncasecmp(lang, "en", 2) == 0 &&
	       (len == 2 || lang[2] == '-');
}

/* Keeps the first name, replaced once by the first English one. */
static void
reg_name_end(struct reg_loader *l)
{
	struct reg_hei *hei = &l->r->heis[l->hei];
	const char *name;
	size_t len;

	if (hei->name_en || (hei->name != NULL && !l->name_en))
		return;
	name = reg_text(l, &len);
	hei->name = reg_strndup(&l->r->arena, name, len);
	hei->name_en = l->name_en;
}

static void
reg_other_begin(struct reg_loader *l, const struct xml_el *el)
{
	const char *type = reg_attr(l, el, "type");

	l->other_type = NULL; /* an other-id without a type is ignored */
	if (type != NULL && *type != '\0') {
		l->other_type = reg_intern(l, reg_other_type(type));
		reg_capture(l);
	}
}

static void
reg_other_end(struct reg_loader *l)
{
	struct registry *r = l->r;
	size_t len;
	char *value;
	uint64_t h;
	uint32_t i;

	if (l->other_type == NULL)
		return;
	value = reg_text(l, &len);
	reg_other_value(l->other_type, value, value);
	if (*value == '\0')
		return;
	h = reg_hash(r->seed, l->other_type, value);
	if ((i = reg_map_find(&r->other_map, reg_eq_other, r, h, l->other_type, value)) !=
	    REG_NONE) {
		if (r->others[i].hei != l->hei)
			r->others[i].shared = true;
		return;
	}
	REG_GROW(r->others, r->nothers, l->othercap);
	r->others[r->nothers] = (struct reg_other){
	    l->other_type, reg_strndup(&r->arena, value, strlen(value)), l->hei, false};
	reg_map_add(&r->other_map, h, (uint32_t)r->nothers++);
}

/* ---- loading: API entries ---- */

static struct registry_api *
reg_cur_api(struct reg_loader *l)
{
	return &l->r->apis[l->r->napis - 1];
}

/* Entries point at their URLs and limits only at the end (reg_link_apis): the arrays move. */
static void
reg_api_begin(struct reg_loader *l, const char *ns, const char *name, const struct xml_el *el)
{
	struct registry *r = l->r;
	const char *version = reg_attr(l, el, "version");
	struct registry_api *a;

	REG_GROW(r->apis, r->napis, l->apicap);
	a = &r->apis[r->napis++];
	memset(a, 0, sizeof(*a));
	a->version = reg_intern(l, version != NULL ? version : "");
	a->ns = reg_intern(l, ns);
	a->name = reg_intern(l, name);
	a->host = r->nhosts - 1;
}

static void
reg_url_end(struct reg_loader *l)
{
	struct registry *r = l->r;
	size_t len;
	const char *url = reg_text(l, &len);

	if (r->nurls == l->urlcap) {
		l->urlcap = l->urlcap ? l->urlcap * 2 : 64;
		r->url_names = xreallocarray(r->url_names, l->urlcap, sizeof(*r->url_names));
		r->url_values = xreallocarray(r->url_values, l->urlcap, sizeof(*r->url_values));
		r->url_api = xreallocarray(r->url_api, l->urlcap, sizeof(*r->url_api));
	}
	r->url_names[r->nurls] = l->child_name;
	r->url_values[r->nurls] = reg_strndup(&r->arena, url, len);
	r->url_api[r->nurls++] = (uint32_t)(r->napis - 1);
	reg_cur_api(l)->nurls++;
}

/* Whole-string base-10 int; false for anything else. */
static bool
reg_parse_int(const char *s, int *out)
{
	char *end;
	long v;

	if (*s == '\0')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < INT_MIN || v > INT_MAX)
		return false;
	*out = (int)v;
	return true;
}

/* A limit that is not a whole number is left out: the caller's fallback applies. */
static void
reg_limit_end(struct reg_loader *l)
{
	struct registry *r = l->r;
	size_t len;
	int v;

	if (!reg_parse_int(reg_text(l, &len), &v))
		return;
	if (r->nlimits == l->limitcap) {
		l->limitcap = l->limitcap ? l->limitcap * 2 : 64;
		r->limit_names =
		    xreallocarray(r->limit_names, l->limitcap, sizeof(*r->limit_names));
		r->limit_values =
		    xreallocarray(r->limit_values, l->limitcap, sizeof(*r->limit_values));
	}
	r->limit_names[r->nlimits] = l->child_name;
	r->limit_values[r->nlimits++] = v;
	reg_cur_api(l)->nlimits++;
}

/* ---- loading: hosts ---- */

static void
reg_host_begin(struct reg_loader *l)
{
	struct registry *r = l->r;

	REG_GROW(r->hosts, r->nhosts, l->hostcap);
	REG_GROW(l->refs, r->nhosts, l->refcap);
	memset(&r->hosts[r->nhosts], 0, sizeof(r->hosts[r->nhosts]));
	r->hosts[r->nhosts].api_first = r->napis;
	l->refs[r->nhosts] = (struct reg_host_refs){.cli = l->ncli_refs, .srv = l->nsrv_refs};
	r->nhosts++;
	l->seen = 0;
	l->nhost_heis = 0;
}

static void
reg_host_end(struct reg_loader *l)
{
	struct registry *r = l->r;
	struct reg_host *h = &r->hosts[r->nhosts - 1];
	struct reg_host_refs *refs = &l->refs[r->nhosts - 1];

	h->napis = r->napis - h->api_first;
	h->nheis = l->nhost_heis;
	h->heis = reg_alloc(&r->arena, (h->nheis ? h->nheis : 1) * sizeof(*h->heis),
	                    _Alignof(const char *));
	if (h->nheis > 0)
		memcpy(h->heis, l->host_heis, h->nheis * sizeof(*h->heis));
	refs->ncli = l->ncli_refs - refs->cli;
	refs->nsrv = l->nsrv_refs - refs->srv;
}

static void
reg_hei_id_end(struct reg_loader *l)
{
	size_t len;
	const char *id = reg_text(l, &len);
	uint32_t hei;

	if (len == 0) {
		l->refs[l->r->nhosts - 1].empty_hei = true; /* reported in host order, later */
		return;
	}
	hei = reg_hei_get(l, id);
	REG_GROW(l->host_heis, l->nhost_heis, l->hostheicap);
	l->host_heis[l->nhost_heis++] = l->r->heis[hei].id;
}

/* Keeps a credential's sha-256 as written: <binaries> may not have been read yet. */
static void
reg_cred_ref(struct reg_loader *l, const struct xml_el *el, bool client)
{
	const char *sha = reg_attr(l, el, "sha-256");
	const char *copy = sha != NULL ? reg_strndup(&l->scratch, sha, strlen(sha)) : NULL;

	if (client) {
		REG_GROW(l->cli_refs, l->ncli_refs, l->clicap);
		l->cli_refs[l->ncli_refs++] = copy;
	} else {
		REG_GROW(l->srv_refs, l->nsrv_refs, l->srvcap);
		l->srv_refs[l->nsrv_refs++] = copy;
	}
}

/*
 * Resolves shas[first .. first + n) of one host into key indices (every
 * one must be in <binaries>), without duplicates, and flags the keys.
 */
static int
reg_resolve_creds(struct reg_loader *l, size_t host, bool client, const char *const *shas,
                  size_t first, size_t n, uint32_t **out, size_t *nout)
{
	struct registry *r = l->r;
	uint32_t k, *list = reg_alloc(&r->arena, (n ? n : 1) * sizeof(*list), _Alignof(uint32_t));
	const char *sha;
	size_t i, j;

	*out = list;
	*nout = 0;
	for (i = 0; i < n; i++) {
		sha = shas[first + i];
		k = reg_key_index(r, sha);
		if (k == REG_NONE)
			return reg_fail(l, REG_ERR_HOSTS,
			                "host index %zu: %s key %s is not in binaries", host,
			                client ? "client" : "server", sha != NULL ? sha : "(none)");
		for (j = 0; j < *nout && list[j] != k; j++)
			;
		if (j == *nout)
			list[(*nout)++] = k;
		if (client)
			r->keys[k].pub.client = true;
		else
			r->keys[k].pub.server = true;
	}
	return 0;
}

int
reg_resolve_hosts(struct reg_loader *l)
{
	struct registry *r = l->r;
	const struct reg_host_refs *f;
	struct reg_host *h;
	size_t i;

	for (i = 0; i < r->nhosts; i++) {
		f = &l->refs[i];
		h = &r->hosts[i];
		if (f->empty_hei)
			return reg_fail(l, REG_ERR_HOSTS, "host index %zu: empty hei-id", i);
		if (reg_resolve_creds(l, i, true, l->cli_refs, f->cli, f->ncli, &h->client,
		                      &h->nclient) == -1 ||
		    reg_resolve_creds(l, i, false, l->srv_refs, f->srv, f->nsrv, &h->server,
		                      &h->nserver) == -1)
			return -1;
	}
	return 0;
}

/* ---- loading: what is done when an element opens and closes ---- */

void
reg_begin(struct reg_loader *l, enum reg_kind kind, const char *ns, const char *name,
          const struct xml_el *el)
{
	switch (kind) {
	case REG_HOST:
		reg_host_begin(l);
		break;
	case REG_API:
		reg_api_begin(l, ns, name, el);
		break;
	case REG_API_URL:
	case REG_API_LIMIT:
		l->child_name = reg_intern(l, name);
		reg_capture(l);
		break;
	case REG_CLI_HTTPSIG:
		reg_cur_api(l)->cliauth_httpsig = true;
		break;
	case REG_SRV_HTTPSIG:
		reg_cur_api(l)->srvauth_httpsig = true;
		break;
	case REG_HEI_ID:
		reg_capture(l);
		break;
	case REG_CLI_KEY:
	case REG_SRV_KEY:
		reg_cred_ref(l, el, kind == REG_CLI_KEY);
		break;
	case REG_HEI:
		reg_hei_begin(l, el);
		break;
	case REG_OTHER_ID:
		reg_other_begin(l, el);
		break;
	case REG_NAME:
		l->name_en = reg_lang_is_en(el);
		reg_capture(l);
		break;
	case REG_BIN_KEY:
		reg_bin_key_begin(l, el);
		break;
	default:
		break;
	}
}

void
reg_end(struct reg_loader *l, enum reg_kind kind)
{
	switch (kind) {
	case REG_HOST:
		reg_host_end(l);
		break;
	case REG_API_URL:
		reg_url_end(l);
		break;
	case REG_API_LIMIT:
		reg_limit_end(l);
		break;
	case REG_HEI_ID:
		reg_hei_id_end(l);
		break;
	case REG_OTHER_ID:
		reg_other_end(l);
		break;
	case REG_NAME:
		reg_name_end(l);
		break;
	case REG_BIN_KEY:
		reg_bin_key_end(l);
		break;
	default:
		break;
	}
}
