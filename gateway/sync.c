/*
 * sync.c - one institution sync run: set-up, the advisory lock, the
 * SCHAC ids of Erasmus-code-only institutions, then each partner in
 * its own transaction, with its outcome in ewp.partner_syncs.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "httpc.h"
#include "keys.h"
#include "log.h"
#include "sync.h"
#include "sync_int.h"
#include "xmalloc.h"
#include "xml.h"

/* pg_advisory_lock key of the sync: one run per database at a time */
#define SYNC_LOCK_KEY "7270411301"

static const char ok_sql[] =
    "INSERT INTO ewp.partner_syncs (hei_id, last_attempt_at, last_success_at,"
    " consecutive_failures, last_log_id) VALUES ($1, now(), now(), 0, $2)"
    " ON CONFLICT (hei_id) DO UPDATE SET last_attempt_at = now(), last_success_at = now(),"
    " consecutive_failures = 0, last_log_id = EXCLUDED.last_log_id";

static const char fail_sql[] =
    "INSERT INTO ewp.partner_syncs (hei_id, last_attempt_at, last_error_at, last_error,"
    " consecutive_failures, last_log_id)"
    " VALUES ($1, now(), now(), left($2, 2000), 1, $3)"
    " ON CONFLICT (hei_id) DO UPDATE SET last_attempt_at = now(), last_error_at = now(),"
    " last_error = EXCLUDED.last_error, last_log_id = EXCLUDED.last_log_id,"
    " consecutive_failures = partner_syncs.consecutive_failures + 1";

/* One partner, start to end; 0 on success, -1 with err. */
static int
sync_partner(struct sync *s, const char *hei_id, size_t *nunits, char *err, size_t errlen)
{
	struct sync_hei h;
	char derr[SYNC_ERR_LEN];
	int rc;

	char logid[24] = "";

	memset(&h, 0, sizeof(h));
	sync_extra_init(&h.extra);
	*nunits = 0;
	s->last_log_id = 0;
	rc = sync_fetch_partner(s, hei_id, &h, err, errlen);
	if (rc == 0)
		rc = sync_db_exec(s->db, "BEGIN", 0, NULL, NULL, err, errlen);
	if (s->last_log_id > 0)
		snprintf(logid, sizeof(logid), "%lld", s->last_log_id);
	if (rc == 0) {
		rc = sync_write_partner(s, &h, err, errlen);
		if (rc == 0)
			rc = sync_db_exec(s->db, ok_sql, 2,
			                  (const char *const[]){hei_id, logid[0] ? logid : NULL},
			                  NULL, err, errlen);
		if (rc == 0)
			rc = sync_db_exec(s->db, "COMMIT", 0, NULL, NULL, err, errlen);
		else
			(void)sync_db_exec(s->db, "ROLLBACK", 0, NULL, NULL, derr, sizeof(derr));
	}
	if (rc == 0)
		*nunits = h.nunits;
	else if (sync_db_exec(s->db, fail_sql, 3,
	                      (const char *const[]){hei_id, err, logid[0] ? logid : NULL}, NULL,
	                      derr, sizeof(derr)) == -1)
		log_warnx("sync: %s: status not recorded: %s", hei_id, derr);
	sync_hei_free(&h);
	return rc;
}

/* SCHAC ids for SMILE's Erasmus-code-only institutions; the count set, or -1. */
static int
fill_schac_ids(struct sync *s)
{
	PGresult *res;
	char err[SYNC_ERR_LEN];
	int filled = 0;

	if (sync_db_exec(s->db,
	                 "SELECT id, erasmus_code FROM smile.etablissement"
	                 " WHERE schac_id IS NULL AND erasmus_code IS NOT NULL ORDER BY id",
	                 0, NULL, &res, err, sizeof(err)) == -1) {
		log_warnx("sync: %s", err);
		return -1;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *schac =
		    registry_hei_by_other_id(s->reg, "erasmus", PQgetvalue(res, i, 1));
		PGresult *u;

		if (schac == NULL)
			continue;
		if (sync_db_exec(
		        s->db,
		        "UPDATE smile.etablissement SET schac_id = $1 WHERE id = $2"
		        " AND schac_id IS NULL AND NOT EXISTS (SELECT 1 FROM smile.etablissement"
		        " WHERE schac_id = $1)",
		        2, (const char *const[]){schac, PQgetvalue(res, i, 0)}, &u, err,
		        sizeof(err)) == -1) {
			log_warnx("sync: SCHAC id of %s: %s", PQgetvalue(res, i, 1), err);
			continue;
		}
		if (strcmp(PQcmdTuples(u), "1") == 0)
			filled++;
		PQclear(u);
	}
	PQclear(res);
	return filled;
}

static bool
is_partner(const struct sync *s, const char *hei, const char *own)
{
	/* the EWP validator's HEIs (validator-hei01.developers.erasmuswithoutpaper.eu...) */
	if (strcmp(hei, own) == 0 || strncmp(hei, "validator-hei01", 15) == 0 ||
	    strncmp(hei, "validator-hei02", 15) == 0)
		return false;
	return registry_api(s->reg, hei, INST_ENTRY_NS) != NULL;
}

/* Loads one of our response schemas from dir. */
static struct xsd *
sync_schema(const char *dir, const char *name, char *err, size_t errlen)
{
	char *path = xasprintf("%s/%s", dir, name);
	struct xsd *x = xsd_load(path, err, errlen);

	free(path);
	return x;
}

static int
sync_setup(struct sync *s, const struct sync_opts *o, char *err, size_t errlen)
{
	const struct conf *c = o->conf;
	struct httpc_opts ho = {.ca_file = o->ca_file && o->ca_file[0] ? o->ca_file : NULL};
	const char *conninfo = o->conninfo ? o->conninfo : c->db_conninfo;
	PGresult *res;
	char *path;
	bool locked;

	const char *schemas = o->schema_dir ? o->schema_dir : c->schema_dir;

	s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : c->sync_timeout * 1000L;
	s->body_max = (size_t)c->message_body_max;
	if ((s->inst_xsd = sync_schema(schemas, "intake/institutions-response.xsd", err, errlen)) ==
	        NULL ||
	    (s->ou_xsd = sync_schema(schemas, "intake/ounits-response.xsd", err, errlen)) == NULL)
		return -1;
	if ((s->reg = registry_load_file(c->registry_cache, err, errlen)) == NULL)
		return -1;
	path = conf_key_path(c, c->client_key);
	s->key = keys_priv_load(path, false, err, errlen);
	free(path);
	if (s->key == NULL)
		return -1;
	s->db = PQconnectdb(conninfo);
	if (PQstatus(s->db) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to the database: %s", PQerrorMessage(s->db));
		for (char *p = err; *p; p++)
			if (*p == '\n')
				*p = *(p + 1) ? ' ' : '\0';
		return -1;
	}
	PQclear(PQexec(s->db, "SET client_min_messages = warning"));
	if (sync_db_exec(s->db, "SELECT pg_try_advisory_lock(" SYNC_LOCK_KEY ")", 0, NULL, &res,
	                 err, errlen) == -1)
		return -1;
	locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!locked) {
		snprintf(err, errlen, "another institution sync is running on this database");
		return -1;
	}
	if ((s->base = event_base_new()) == NULL || (s->http = httpc_new(s->base, &ho)) == NULL) {
		snprintf(err, errlen, "cannot set up the HTTP client");
		return -1;
	}
	return 0;
}

static void
sync_teardown(struct sync *s)
{
	httpc_free(s->http);
	if (s->base)
		event_base_free(s->base);
	if (s->db) {
		sync_db_forget(s->db);
		PQfinish(s->db); /* releases the advisory lock */
	}
	keys_priv_free(s->key);
	registry_free(s->reg);
	xsd_free(s->inst_xsd);
	xsd_free(s->ou_xsd);
}

int
sync_institutions_run(const struct sync_opts *o, struct sync_summary *sum, char *err, size_t errlen)
{
	const char *own = o->conf->hei_id;
	const char **heis = NULL;
	size_t nheis = 0;
	struct sync s;
	int rc = -1;

	memset(&s, 0, sizeof(s));
	memset(sum, 0, sizeof(*sum));
	if (sync_setup(&s, o, err, errlen) == -1)
		goto out;
	if ((sum->schac_filled = fill_schac_ids(&s)) == -1) {
		snprintf(err, errlen, "cannot read the institutions of the database");
		goto out;
	}
	if (o->nheis > 0) {
		heis = xreallocarray(NULL, o->nheis, sizeof(*heis));
		memcpy(heis, o->heis, o->nheis * sizeof(*heis));
		nheis = o->nheis;
	} else {
		for (size_t i = 0; i < registry_hei_count(s.reg); i++)
			if (is_partner(&s, registry_hei_at(s.reg, i), own)) {
				heis = xreallocarray(heis, nheis + 1, sizeof(*heis));
				heis[nheis++] = registry_hei_at(s.reg, i);
			}
	}
	for (size_t i = 0; i < nheis; i++) {
		struct sync_outcome out = {.hei_id = heis[i]};
		char perr[SYNC_ERR_LEN];

		if (strcmp(heis[i], own) == 0) {
			snprintf(perr, sizeof(perr), "our own institution");
			out.ok = false;
		} else {
			out.ok = sync_partner(&s, heis[i], &out.nunits, perr, sizeof(perr)) == 0;
		}
		out.error = out.ok ? NULL : perr;
		if (out.ok)
			sum->ok++;
		else
			sum->failed++;
		if (o->report)
			o->report(&out, o->arg);
		if (PQstatus(s.db) == CONNECTION_BAD) {
			/* every other partner would be asked, then fail the same way */
			snprintf(err, errlen,
			         "lost the database connection after %zu of %zu partners: %s",
			         i + 1, nheis, perr);
			goto out;
		}
	}
	rc = 0;
out:
	free(heis);
	sync_teardown(&s);
	return rc;
}
