/*
 * portal_keys.c - the keys page (Administrateur technique): the public
 * keys this node publishes in its Discovery manifest, each with its keyId
 * (hex SHA-256 of the DER public key), its role, whether ewpd signs with
 * it now, what ewp.keys records of it, and whether the Registry catalogue
 * ewpd holds already lists it (partners refuse signatures by a key they
 * cannot find there).
 *
 * The published set is read from the manifest ewpd serves (p->d->manifest,
 * rebuilt with the keys on every reload): the signing key of each role
 * first, then the extra [keys] publish_client / publish_server files, in
 * that order. Only public keys are ever read here; the private keys stay
 * behind keys.c.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "daemon.h"
#include "keys.h"
#include "portal.h"
#include "registry.h"
#include "xmalloc.h"

#define KEYS_PAGE_MAX 64 /* keys shown; the configuration allows far fewer */

static const char meta_sql[] =
    "SELECT keyid, file_name,"
    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS created,"
    " to_char(published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS published,"
    " to_char(in_use_since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS in_use_since,"
    " to_char(retired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS retired"
    " FROM ewp.keys WHERE keyid = ANY ($1::text[])";

static const char registry_sql[] =
    "SELECT to_char(fetched_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS fetched,"
    " to_char(last_checked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS checked"
    " FROM ewp.registry_current";

struct pkey {
	bool server;
	char *file; /* the configured file, or NULL when unknown */
	char keyid[65];
	int bits;
	bool signing;
};

struct keys_state {
	struct pkey k[KEYS_PAGE_MAX];
	int n;
	char *bad; /* a published key that does not parse (should not happen) */
};

static void
keys_state_free(struct keys_state *st)
{
	for (int i = 0; i < st->n; i++)
		free(st->k[i].file);
	free(st->bad);
	free(st);
}

/* The keys of one credentials element of our manifest. */
static void
keys_read_section(struct portal *p, struct keys_state *st, bool server)
{
	const char *elem = server ? "server-credentials-in-use" : "client-credentials-in-use";
	const struct keys_priv *signer = server ? p->d->server_key : p->d->client_key;
	const char *signer_file = server ? p->d->conf->server_key : p->d->conf->client_key;
	char *const *extra = server ? p->d->conf->publish_server : p->d->conf->publish_client;
	size_t nextra = server ? p->d->conf->npublish_server : p->d->conf->npublish_client;
	char open[64], close[64];
	const char *s, *end;
	int idx = 0;

	snprintf(open, sizeof(open), "<%s>", elem);
	snprintf(close, sizeof(close), "</%s>", elem);
	if ((s = strstr(buf_cstr(&p->d->manifest), open)) == NULL ||
	    (end = strstr(s, close)) == NULL)
		return;
	while ((s = strstr(s, "<rsa-public-key>")) != NULL && s < end && st->n < KEYS_PAGE_MAX) {
		const char *b64 = s + strlen("<rsa-public-key>"),
		           *stop = strstr(b64, "</rsa-public-key>");
		char *text;
		struct keys_pub *pub;
		struct pkey *k = &st->k[st->n];

		if (stop == NULL || stop > end)
			break;
		text = xstrndup(b64, (size_t)(stop - b64));
		pub = keys_pub_from_b64(text);
		free(text);
		s = stop;
		if (pub == NULL) {
			free(st->bad);
			st->bad = xstrdup(elem);
			idx++;
			continue;
		}
		memset(k, 0, sizeof(*k));
		k->server = server;
		snprintf(k->keyid, sizeof(k->keyid), "%s", keys_pub_keyid(pub));
		k->bits = keys_pub_bits(pub);
		keys_pub_free(pub);
		k->signing = signer && strcmp(keys_priv_keyid(signer), k->keyid) == 0;
		/* manifest order: the signing key (when loaded), then the extras */
		if (signer && idx == 0)
			k->file = xstrdup(signer_file);
		else if ((size_t)(idx - (signer ? 1 : 0)) < nextra)
			k->file = xstrdup(extra[idx - (signer ? 1 : 0)]);
		idx++;
		st->n++;
	}
}

static int
keys_meta_row(const struct portal_rows *m, const char *keyid)
{
	for (int i = 0; i < m->nrows; i++)
		if (strcmp(portal_cell(m, i, "keyid"), keyid) == 0)
			return i;
	return -1;
}

static void
keys_catalogue_cell(struct portal *p, const struct registry *reg, const struct pkey *k)
{
	const struct registry_key *rk = reg ? registry_key(reg, k->keyid) : NULL;
	bool as_role = rk && (k->server ? rk->server : rk->client);

	if (reg == NULL)
		h_fmt(p, "<td class=\"muted\">%s</td>", T(p, "keys.no_catalogue"));
	else if (as_role)
		h_fmt(p, "<td class=\"status-ok listed\">%s</td>", T(p, "keys.listed_yes"));
	else if (rk)
		h_fmt(p, "<td class=\"status-warn listed\">%s</td>",
		      T(p, "keys.listed_other_role"));
	else
		h_fmt(p, "<td class=\"status-bad listed\">%s</td>", T(p, "keys.listed_no"));
}

static void
keys_done(struct portal *p)
{
	struct keys_state *st = p->data;
	const struct portal_rows *meta = &p->rows[0], *cat = &p->rows[1];
	const struct registry *reg = p->d->snap ? p->d->snap->reg : NULL;

	if (portal_db_failed(p)) {
		keys_state_free(st);
		return;
	}
	portal_page_begin(p, "keys.title");
	h_fmt(p, "<p>%s</p>", T(p, "keys.intro"));
	if (reg == NULL)
		h_fmt(p, "<p class=\"error\">%s</p>", T(p, "keys.no_catalogue"));
	else if (cat->nrows > 0)
		h_fmt(p, "<p class=\"muted\">%s %s (%s %s)</p>", T(p, "keys.catalogue_fetched"),
		      portal_cell(cat, 0, "fetched"), T(p, "keys.catalogue_checked"),
		      portal_cell(cat, 0, "checked"));
	if (st->bad)
		h_fmt(p, "<p class=\"error\">%s %s</p>", T(p, "keys.unreadable"), st->bad);
	h_fmt(p, "<table id=\"keys\"><caption>%s</caption><thead><tr>", T(p, "keys.caption"));
	h_fmt(p,
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\" class=\"num\">%s</th><th scope=\"col\">%s</th>"
	      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
	      "</tr></thead><tbody>",
	      T(p, "keys.keyid"), T(p, "keys.role"), T(p, "keys.file"), T(p, "keys.bits"),
	      T(p, "keys.signing"), T(p, "keys.created"), T(p, "keys.retired"),
	      T(p, "keys.in_catalogue"));
	for (int i = 0; i < st->n; i++) {
		const struct pkey *k = &st->k[i];
		int m = keys_meta_row(meta, k->keyid);

		h_fmt(p, "<tr id=\"key-%s-%s\"><th scope=\"row\"><code>%s</code></th>",
		      k->server ? "server" : "client", k->keyid, k->keyid);
		h_fmt(p, "<td>%s</td><td>%s</td><td class=\"num\">%d</td>",
		      T(p, k->server ? "keys.role_server" : "keys.role_client"),
		      k->file ? k->file : (m >= 0 ? portal_cell(meta, m, "file_name") : ""),
		      k->bits);
		if (k->signing)
			h_fmt(p, "<td class=\"status-ok signing\">%s</td>",
			      T(p, k->server ? "keys.signs_responses" : "keys.signs_requests"));
		else
			h_fmt(p, "<td class=\"muted signing\">%s</td>",
			      T(p, "keys.published_only"));
		if (m >= 0)
			h_fmt(p, "<td>%s</td><td>%s</td>", portal_cell(meta, m, "created"),
			      portal_cell(meta, m, "retired") ? portal_cell(meta, m, "retired")
			                                      : "–");
		else
			h_fmt(p, "<td class=\"muted\" colspan=\"2\">%s</td>",
			      T(p, "keys.not_recorded"));
		keys_catalogue_cell(p, reg, k);
		h_raw(p, "</tr>");
	}
	h_raw(p, "</tbody></table>");
	if (st->n == 0)
		h_fmt(p, "<p class=\"muted\">%s</p>", T(p, "keys.none"));
	h_fmt(p, "<p class=\"muted\">%s</p>", T(p, "keys.rotation"));
	keys_state_free(st);
	portal_page_end(p);
}

static void
keys_page(struct portal *p)
{
	struct keys_state *st = xcalloc(1, sizeof(*st));
	struct buf arr;
	const char *params[1];

	keys_read_section(p, st, false);
	keys_read_section(p, st, true);
	buf_init(&arr, SIZE_MAX);
	(void)!buf_addstr(&arr, "{");
	for (int i = 0; i < st->n; i++) /* keyIds are hex: no quoting needed */
		(void)!buf_printf(&arr, "%s%s", i ? "," : "", st->k[i].keyid);
	(void)!buf_addstr(&arr, "}");
	params[0] = buf_cstr(&arr);
	portal_sql(p, meta_sql, 1, params);
	portal_sql(p, registry_sql, 0, NULL);
	buf_free(&arr);
	p->data = st;
	portal_run(p, false, keys_done);
}

const struct portal_page portal_keys_pages[] = {
    {"GET", "/keys", PRIV_KEYS, false, keys_page},
    {NULL, NULL, 0, false, NULL},
};
