/*
 * worker.c - one worker: loads its assets, serves until SIGTERM, reloads
 * on SIGHUP (configuration, keys, TLS, catalogue) and on SIGUSR2
 * (catalogue only, after the supervisor refreshed it).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "daemon.h"
#include "db.h"
#include "factsheet.h"
#include "jobs.h"
#include "log.h"
#include "manifest.h"
#include "msglog.h"
#include "server.h"
#include "tls.h"
#include "worker.h"
#include "xmalloc.h"

#define WORKER_DB_POOL_SIZE            4
#define WORKER_DB_STATEMENT_TIMEOUT_MS 10000

struct worker {
	struct ewpd d;
	struct event *sig_hup, *sig_usr2, *sig_term, *sig_int, *drain_timer;
	struct timespec drain_start;
	int terms;
};

struct snap *
snap_ref(struct snap *s)
{
	if (s)
		s->refs++;
	return s;
}

void
snap_unref(struct snap *s)
{
	if (s && --s->refs == 0) {
		registry_free(s->reg);
		free(s);
	}
}

static struct keys_priv *
worker_load_key(const struct conf *c, const char *name, char *err, size_t errlen)
{
	char *path = conf_key_path(c, name);
	struct keys_priv *k = keys_priv_load(path, false, err, errlen);

	free(path);
	return k;
}

int
worker_assets_load(const char *path, const struct conf *running, struct worker_assets *a, char *err,
                   size_t errlen)
{
	memset(a, 0, sizeof(*a));
	buf_init(&a->manifest, 1024 * 1024);
	if ((a->conf = conf_load(path, err, errlen)) == NULL)
		goto fail;
	if (running)
		conf_keep_unreloadable(a->conf, running);
	if ((a->client_key = worker_load_key(a->conf, a->conf->client_key, err, errlen)) == NULL ||
	    (a->server_key = worker_load_key(a->conf, a->conf->server_key, err, errlen)) == NULL)
		goto fail;
	if (strcmp(keys_priv_keyid(a->client_key), keys_priv_keyid(a->server_key)) == 0) {
		snprintf(err, errlen, "client_key and server_key are the same key");
		goto fail;
	}
	if (a->conf->tls &&
	    (a->tls = tls_server_ctx(a->conf->tls_cert, a->conf->tls_key, err, errlen)) == NULL)
		goto fail;
	if (manifest_build(a->conf, a->client_key, a->server_key, &a->manifest, err, errlen) == -1)
		goto fail;
	if (a->conf->factsheet[0] != '\0' &&
	    (a->factsheet = factsheet_load(a->conf, err, errlen)) == NULL)
		goto fail;
	return 0;
fail:
	worker_assets_free(a);
	return -1;
}

void
worker_assets_free(struct worker_assets *a)
{
	conf_free(a->conf);
	keys_priv_free(a->client_key);
	keys_priv_free(a->server_key);
	SSL_CTX_free(a->tls);
	buf_free(&a->manifest);
	factsheet_free(a->factsheet);
	memset(a, 0, sizeof(*a));
}

/* Moves assets into the running context, freeing the ones replaced. */
static void
worker_adopt(struct ewpd *d, struct worker_assets *a)
{
	struct worker_assets old = {.conf = d->conf,
	                            .client_key = d->client_key,
	                            .server_key = d->server_key,
	                            .tls = d->tls,
	                            .manifest = d->manifest,
	                            .factsheet = d->factsheet};

	d->conf = a->conf;
	d->client_key = a->client_key;
	d->server_key = a->server_key;
	d->tls = a->tls;
	d->manifest = a->manifest;
	d->factsheet = a->factsheet;
	memset(a, 0, sizeof(*a));
	worker_assets_free(&old);
	log_set_level(d->conf->log_level);
}

static void
worker_load_registry(struct ewpd *d)
{
	char err[512];
	struct registry *r = registry_load_file(d->conf->registry_cache, err, sizeof(err));
	struct snap *s;

	if (r == NULL) {
		log_warnx("catalogue not (re)loaded: %s", err);
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->reg = r;
	s->refs = 1;
	snap_unref(d->snap); /* requests holding the old one keep it alive */
	d->snap = s;
	log_debug("catalogue loaded: %zu hosts, %zu HEIs, %zu keys", registry_host_count(r),
	          registry_hei_count(r), registry_key_count(r));
}

static void
worker_reload(struct worker *w)
{
	struct worker_assets a;
	char err[512];

	if (worker_assets_load(w->d.conf->path, w->d.conf, &a, err, sizeof(err)) == -1) {
		log_warnx("reload refused, running configuration kept: %s", err);
		return;
	}
	worker_adopt(&w->d, &a);
	server_reconfigure(w->d.server, w->d.conf);
	msglog_set_body_max(w->d.msglog, (size_t)w->d.conf->message_body_max);
	if (w->d.worker_id == 0) /* one worker deletes old rows */
		msglog_set_retention(w->d.msglog, w->d.conf->message_retention);
	worker_load_registry(&w->d);
	log_info("configuration reloaded");
}

static void
worker_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct timespec now;
	long ms;

	(void)fd;
	(void)what;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (now.tv_sec - w->drain_start.tv_sec) * 1000 +
	     (now.tv_nsec - w->drain_start.tv_nsec) / 1000000;
	/* Done when nothing is in flight, every client has hung up
	 * (responses sent while draining carry Connection: close) and the
	 * message log is written. */
	if (w->d.inflight == 0 && server_open_connections(w->d.server) == 0 &&
	    jobs_running(w->d.jobs) == 0)
		msglog_flush(w->d.msglog);
	if ((w->d.inflight == 0 && server_open_connections(w->d.server) == 0 &&
	     jobs_running(w->d.jobs) == 0 && !msglog_busy(w->d.msglog)) ||
	    ms >= w->d.conf->drain_timeout * 1000L)
		event_base_loopexit(w->d.base, NULL);
}

static void
worker_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tick = {0, 50 * 1000};

	(void)what;
	switch (sig) {
	case SIGHUP:
		worker_reload(w);
		break;
	case SIGUSR2:
		worker_load_registry(&w->d);
		break;
	default: /* SIGTERM, SIGINT: drain, then exit; a second one exits now */
		if (w->terms++ > 0) {
			event_base_loopbreak(w->d.base);
			break;
		}
		log_info("draining: no new connections, %u requests in flight", w->d.inflight);
		server_stop_accepting(w->d.server);
		jobs_stop(w->d.jobs);
		w->d.draining = true;
		clock_gettime(CLOCK_MONOTONIC, &w->drain_start);
		w->drain_timer = event_new(w->d.base, -1, EV_PERSIST, worker_drain_cb, w);
		event_add(w->drain_timer, &tick);
	}
}

/* The worker's pool to the SMILE core; a refused conninfo only disables
 * the APIs that need it (they answer 503), the others keep serving. */
static struct db_pool *
worker_db(struct ewpd *d)
{
	struct db_pool_conf dc = {.conninfo = d->conf->db_conninfo,
	                          .size = WORKER_DB_POOL_SIZE,
	                          .statement_timeout_ms = WORKER_DB_STATEMENT_TIMEOUT_MS};
	char err[512];
	struct db_pool *p = db_pool_new(d->base, &dc, err, sizeof(err));

	if (p == NULL)
		log_error("database disabled: %s", err);
	return p;
}

static struct event *
worker_signal(struct worker *w, int sig)
{
	struct event *ev = evsignal_new(w->d.base, sig, worker_signal_cb, w);

	if (ev == NULL || event_add(ev, NULL) == -1)
		fatalx("cannot watch signal %d", sig);
	return ev;
}

int
worker_run(struct worker_assets *a, struct metrics *m, struct nonce_table *n, int id)
{
	struct worker w;
	char err[512];

	memset(&w, 0, sizeof(w));
	buf_init(&w.d.manifest, 0);
	w.d.metrics = m;
	w.d.nonce = n;
	w.d.worker_id = id;
	worker_adopt(&w.d, a);
	if ((w.d.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	worker_load_registry(&w.d);
	w.d.db = worker_db(&w.d);
	if (w.d.db)
		w.d.msglog = msglog_new(w.d.base, w.d.db, m, (size_t)w.d.conf->message_body_max);
	if (id == 0)
		msglog_set_retention(w.d.msglog, w.d.conf->message_retention);
	w.d.jobs = jobs_new(&w.d);
	if ((w.d.server = server_new(&w.d, err, sizeof(err))) == NULL) {
		log_error("%s", err);
		jobs_free(w.d.jobs);
		db_pool_free(w.d.db);
		return 1;
	}
	w.sig_hup = worker_signal(&w, SIGHUP);
	w.sig_usr2 = worker_signal(&w, SIGUSR2);
	w.sig_term = worker_signal(&w, SIGTERM);
	w.sig_int = worker_signal(&w, SIGINT);
	log_info("worker %d serving %s on %s", id, w.d.conf->tls ? "https" : "http",
	         w.d.conf->listen);
	event_base_dispatch(w.d.base);

	/* Before the server: queries still pending answer their requests (503);
	 * those last replies are not logged (the writer goes after the jobs,
	 * its pointer cleared so that they do not reach it). */
	jobs_free(w.d.jobs);
	w.d.jobs = NULL;
	{
		struct msglog *ml = w.d.msglog;

		w.d.msglog = NULL;
		msglog_free(ml);
	}
	db_pool_free(w.d.db);
	server_free(w.d.server);
	event_free(w.sig_hup);
	event_free(w.sig_usr2);
	event_free(w.sig_term);
	event_free(w.sig_int);
	if (w.drain_timer)
		event_free(w.drain_timer);
	snap_unref(w.d.snap);
	struct worker_assets left = {.conf = w.d.conf,
	                             .client_key = w.d.client_key,
	                             .server_key = w.d.server_key,
	                             .tls = w.d.tls,
	                             .manifest = w.d.manifest,
	                             .factsheet = w.d.factsheet};
	worker_assets_free(&left);
	event_base_free(w.d.base);
	log_debug("worker %d stopped", id);
	return 0;
}
