/*
 * ctl_mobility_sync.c - `ewpctl mobility sync [--full] [--conninfo STR]
 * [HEI...]`: queues the OMobilities re-sync of the partners named, or of
 * every partner the cached catalogue lists with an Outgoing Mobilities
 * v3 API (our own HEI and the validator's left out). Each becomes an
 * ('in', 'index') job that ewpd runs: the partner's index (what changed
 * since the previous listing; everything with --full, which also
 * re-fetches the mobilities it no longer lists, so that they are marked
 * gone), then a refetch job per id. See gateway/jobs_index_omobilities.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "ctl.h"
#include "json.h"
#include "registry.h"
#include "xmalloc.h"

#define SYNC_ENTRY_NS                                                                              \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/"       \
	"manifest-entry.xsd"

static const char queue_sql[] =
    "SELECT ewp.omobilities_queue_index(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)),"
    " $2::boolean)";

static int
sync_usage(void)
{
	ctl_err("usage: ewpctl mobility sync [--full] [--conninfo STR] [HEI...]");
	return 2;
}

static bool
sync_validator(const char *hei)
{
	return strcasecmp(hei, "validator-hei01.developers.erasmuswithoutpaper.eu") == 0 ||
	       strcasecmp(hei, "validator-hei02.developers.erasmuswithoutpaper.eu") == 0;
}

/* Every partner of the cached catalogue with OMobilities v3, as a JSON array into b. */
static int
sync_catalogue_partners(struct ctl *ctl, struct buf *b, size_t *n)
{
	char err[512];
	struct registry *r = registry_load_file(ctl_conf(ctl)->registry_cache, err, sizeof(err));

	if (r == NULL) {
		ctl_err("mobility sync: no catalogue to list partners from: %s", err);
		return -1;
	}
	for (size_t i = 0; i < registry_hei_count(r); i++) {
		const char *hei = registry_hei_at(r, i);

		if (strcasecmp(hei, ctl_conf(ctl)->hei_id) == 0 || sync_validator(hei) ||
		    registry_api(r, hei, SYNC_ENTRY_NS) == NULL)
			continue;
		if ((*n ? buf_addstr(b, ",") : 0) || json_str(b, hei)) {
			registry_free(r);
			ctl_err("mobility sync: too many partners");
			return -1;
		}
		(*n)++;
	}
	registry_free(r);
	return 0;
}

int
ctl_mobility_sync(struct ctl *ctl, int argc, char **argv)
{
	const char *conninfo = NULL;
	bool full = false;
	size_t n = 0;
	struct buf b;
	PGconn *db;
	PGresult *res;
	int rc = 1;

	buf_init(&b, 16 * 1024 * 1024);
	if (buf_addstr(&b, "[") == -1)
		return 1;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--full") == 0)
			full = true;
		else if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
			conninfo = argv[++i];
		else if (argv[i][0] == '-' || argv[i][0] == '\0') {
			buf_free(&b);
			return sync_usage();
		} else {
			if ((n ? buf_addstr(&b, ",") : 0) || json_str(&b, argv[i])) {
				buf_free(&b);
				return 1;
			}
			n++;
		}
	}
	if (n == 0 && sync_catalogue_partners(ctl, &b, &n) == -1) {
		buf_free(&b);
		return 1;
	}
	if (buf_addstr(&b, "]") == -1) {
		buf_free(&b);
		return 1;
	}
	if (n == 0) {
		printf("no partner publishes Outgoing Mobilities v3 in the catalogue: nothing "
		       "queued\n");
		buf_free(&b);
		return 0;
	}
	db = PQconnectdb(conninfo ? conninfo : ctl_conf(ctl)->db_conninfo);
	if (PQstatus(db) != CONNECTION_OK) {
		ctl_err("mobility sync: cannot connect to the database: %s", PQerrorMessage(db));
		PQfinish(db);
		buf_free(&b);
		return 1;
	}
	res = PQexecParams(db, queue_sql, 2, NULL,
	                   (const char *const[]){buf_cstr(&b), full ? "true" : "false"}, NULL, NULL,
	                   0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ctl_err("mobility sync: %s", PQerrorMessage(db));
	} else {
		printf("%s %s re-sync job(s) queued for %zu partner(s) (the others were pending "
		       "already); ewpd runs them\n",
		       PQgetvalue(res, 0, 0), full ? "full" : "incremental", n);
		rc = 0;
	}
	PQclear(res);
	PQfinish(db);
	buf_free(&b);
	return rc;
}
