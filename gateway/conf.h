/*
 * conf.h - the INI configuration of ewpd and ewpctl.
 *
 * Parsed into a fresh struct conf by a table of typed keys; an unknown
 * section or key, a bad value or a missing required key makes the whole
 * load fail with "file:line: why". Reload parses a new struct and swaps it
 * only when it is complete (keys marked not reloadable keep their old
 * value, with a warning).
 */
#ifndef CONF_H
#define CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "ewpd.h"
#include "log.h"

#define CONF_MAX_PUBLISHED 8

struct conf {
	char *path;

	/* [server] */
	char *listen;      /* "127.0.0.1:8443" as written */
	char *listen_host; /* "127.0.0.1" */
	int listen_port;
	bool tls;
	char *tls_cert;
	char *tls_key;
	int workers;
	char *public_url;    /* "https://ewp.example.edu" (no trailing slash) */
	char *public_host;   /* Host partners send: "ewp.example.edu[:port]" */
	int request_timeout; /* seconds */
	int drain_timeout;   /* seconds */
	bool metrics;        /* serve /metrics and /healthz */

	/* [log] */
	enum log_level log_level;
	int message_body_max;  /* bytes of each body kept in ewp.message_log */
	int message_retention; /* seconds its rows are kept; 0: forever */

	/* [ewp] */
	char *hei_id;
	char *hei_name; /* in the HEI's own language */
	char *hei_name_lang;
	char *hei_name_en;  /* may be NULL */
	char *erasmus_code; /* may be NULL */
	char *pic;          /* may be NULL */
	char *admin_email;
	char *admin_provider;
	char *admin_notes;   /* may be NULL */
	char *manifest_path; /* "/ewp/manifest.xml" */
	int date_window;     /* seconds, >= 300 */
	char *factsheet;     /* Mobility Factsheet file; "" when the API is not served */
	char *schema_dir;    /* ewpd's own XML Schemas (ewp-schemas/ once installed) */

	/* [keys] */
	char *keys_dir;
	char *client_key; /* file name or path of the key signing our requests */
	char *server_key; /* file name or path of the key signing our responses */
	/* extra public keys published during rotation (.pub PEM files) */
	char *publish_client[CONF_MAX_PUBLISHED];
	size_t npublish_client;
	char *publish_server[CONF_MAX_PUBLISHED];
	size_t npublish_server;

	/* [registry] */
	char *registry_url;     /* https://... or file:///... */
	int registry_refresh;   /* seconds, 60 .. 10800 */
	char *registry_cache;   /* last good catalogue, kept on disk */
	char *registry_ca_file; /* may be NULL */

	/* [database] */
	char *db_conninfo; /* libpq connection string */

	/* [courses] SMILE has no teaching calendar: the dates of its two semesters */
	char *first_semester, *second_semester; /* "MM-DD/MM-DD" as written */
	struct conf_semester {
		int start_month, start_day, end_month, end_day;
	} semesters[2]; /* the academic year begins with semesters[0] */

	/* [sync] institutions and units of the partners, in a child process */
	int sync_interval;  /* seconds between runs; 0: only `ewpctl sync` */
	int sync_timeout;   /* seconds per partner request */
	char *sync_ca_file; /* PEM trust anchors for partners; NULL: system store */

	/* [jobs] the persistent outbox/inbox (jobs.h); durations in seconds */
	int jobs_concurrency;   /* jobs one worker runs at once */
	int jobs_lease;         /* a claimed job is another worker's after this */
	int jobs_timeout;       /* each partner request of a job */
	int jobs_retry_min;     /* first backoff step, doubled per attempt */
	int jobs_retry_max;     /* backoff ceiling */
	int jobs_give_up_after; /* from creation, then 'expired' */
	char *jobs_ca_file;     /* PEM trust anchors for partners; NULL: system store */

	/* [mobility] nominations received (jobs_resync.c) */
	int mobility_sync_hour; /* UTC hour of the nightly OMobilities re-sync; -1: off */

	/* [portal] the staff portal under /portal/ (gateway/portal/) */
	bool portal;             /* serve it */
	char *portal_strings;    /* directory of the fr/ and en/ string catalogues */
	int portal_session_idle; /* seconds without a request before a session ends */
	int portal_session_max;  /* seconds a session lasts at most */
	int portal_max_failures; /* failed sign-ins before the account is locked */
	int portal_lockout;      /* seconds the lock lasts */
	char *portal_sso_header; /* header carrying the user name; "" or NULL: no SSO */
	char *portal_sso_proxies[CONF_MAX_PUBLISHED]; /* addresses allowed to set it */
	size_t nportal_sso_proxies;
};

/* NULL with "path:line: reason" in err on any problem. */
struct conf *conf_load(const char *path, char *err, size_t errlen);
void conf_free(struct conf *c);
/* A key file path: absolute as is, otherwise relative to keys_dir. Caller frees. */
char *conf_key_path(const struct conf *c, const char *name);
/*
 * Compares two configurations and copies into `next` the values of keys
 * that cannot change without a restart, logging each one that differed.
 */
void conf_keep_unreloadable(struct conf *next, const struct conf *cur);

#endif
