/* supervisor.c - parent process: registry refresh, workers, signals. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "fetch.h"
#include "log.h"
#include "registry.h"
#include "server.h"
#include "supervisor.h"
#include "sync.h"
#include "xmalloc.h"

#define SUP_MAX_WORKERS 64
#define SUP_RETRY_SECS  60 /* after a failed catalogue fetch */
#define SUP_NONCE_SLOTS (1u << 19)
#define SUP_FIRST_SYNC  60 /* seconds after start-up, at most */

struct supervisor {
	struct worker_assets a;
	struct metrics *metrics;
	struct nonce_table *nonce;
	pid_t pids[SUP_MAX_WORKERS];
	time_t started[SUP_MAX_WORKERS];
	int nworkers;
	bool stopping;
	bool worker_failed; /* a worker did not stop cleanly */
	time_t next_refresh;
	pid_t sync_pid; /* the institution sync running, 0: none */
	time_t next_sync;
	char *etag, *last_modified;
	unsigned char last_digest[CODEC_SHA256_LEN];
	bool have_digest;
};

/* systemd readiness protocol, without linking libsystemd. */
static void
sup_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (sendto(fd, state, strlen(state), 0, (struct sockaddr *)&sun,
	           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path))) == -1)
		log_warn("sd_notify");
	close(fd);
}

/* Writes the catalogue beside the cache file; returns that file's path. */
static char *
sup_write_tmp(const char *path, const struct buf *body, char *msg, size_t msglen)
{
	char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t off = 0;

	if (fd == -1) {
		snprintf(msg, msglen, "cannot write %s: %s", tmp, strerror(errno));
		free(tmp);
		return NULL;
	}
	while (off < body->len) {
		ssize_t n = write(fd, body->data + off, body->len - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (off < body->len || fsync(fd) == -1) {
		snprintf(msg, msglen, "cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		free(tmp);
		return NULL;
	}
	close(fd);
	return tmp;
}

enum sup_refresh { SUP_REFRESH_FAILED = -1, SUP_UNCHANGED = 0, SUP_CHANGED = 1 };

/* Fetches, validates and stores the catalogue. */
static enum sup_refresh
sup_refresh(struct supervisor *s, const struct conf *c, char *msg, size_t msglen)
{
	struct fetch_opts o = {.url = c->registry_url,
	                       .ca_file = c->registry_ca_file[0] ? c->registry_ca_file : NULL,
	                       .etag = s ? s->etag : NULL,
	                       .last_modified = s ? s->last_modified : NULL,
	                       .timeout_secs = 60,
	                       .max_bytes = EWP_MAX_CATALOGUE_BYTES};
	struct fetch_result res;
	enum fetch_status st = fetch_url(&o, &res);
	unsigned char digest[CODEC_SHA256_LEN];
	enum sup_refresh rc = SUP_REFRESH_FAILED;
	struct registry *r;
	char *tmp = NULL, err[512];

	if (st == FETCH_NOT_MODIFIED) {
		rc = SUP_UNCHANGED;
		goto out;
	}
	if (st == FETCH_ERROR) {
		snprintf(msg, msglen, "catalogue: %s", res.error);
		goto out;
	}
	codec_sha256(res.body.data, res.body.len, digest);
	if (s && s->have_digest && memcmp(digest, s->last_digest, sizeof(digest)) == 0) {
		rc = SUP_UNCHANGED;
		goto out;
	}
	/*
	 * Never let an invalid catalogue replace the last good one. It is
	 * checked from a file beside the cache, after the download buffer is
	 * freed, so the supervisor never holds both.
	 */
	if ((tmp = sup_write_tmp(c->registry_cache, &res.body, msg, msglen)) == NULL)
		goto out;
	buf_free(&res.body);
	if ((r = registry_load_file(tmp, err, sizeof(err))) == NULL) {
		snprintf(msg, msglen, "catalogue from %s refused: %s", c->registry_url, err);
		unlink(tmp);
		goto out;
	}
	if (s) {
		__atomic_store_n(&s->metrics->registry_heis, (uint64_t)registry_hei_count(r),
		                 __ATOMIC_RELAXED);
		__atomic_store_n(&s->metrics->registry_loaded_at, (int64_t)time(NULL),
		                 __ATOMIC_RELAXED);
	}
	registry_free(r);
	if (rename(tmp, c->registry_cache) == -1) {
		snprintf(msg, msglen, "cannot replace %s: %s", c->registry_cache, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (s) {
		memcpy(s->last_digest, digest, sizeof(digest));
		s->have_digest = true;
		free(s->etag);
		free(s->last_modified);
		s->etag = res.etag ? xstrdup(res.etag) : NULL;
		s->last_modified = res.last_modified ? xstrdup(res.last_modified) : NULL;
	}
	rc = SUP_CHANGED;
out:
	free(tmp);
	fetch_result_free(&res);
	return rc;
}

int
supervisor_check_registry(const struct conf *c, char *msg, size_t msglen)
{
	char err[512];
	struct registry *r;

	if (sup_refresh(NULL, c, msg, msglen) != SUP_REFRESH_FAILED)
		return 0;
	if ((r = registry_load_file(c->registry_cache, err, sizeof(err))) == NULL) {
		size_t used = strlen(msg);
		snprintf(msg + used, msglen - used, "; no usable cached copy (%s)", err);
		return -1;
	}
	registry_free(r);
	return 0;
}

static void
sup_signal_workers(struct supervisor *s, int sig)
{
	for (int i = 0; i < s->nworkers; i++)
		if (s->pids[i] > 0)
			kill(s->pids[i], sig);
}

static void
sup_refresh_now(struct supervisor *s)
{
	char msg[512];
	enum sup_refresh rc = sup_refresh(s, s->a.conf, msg, sizeof(msg));

	if (rc == SUP_REFRESH_FAILED) {
		metrics_add(&s->metrics->registry_failures, 1);
		log_warnx("%s; keeping the last good catalogue, retry in %ds", msg, SUP_RETRY_SECS);
		s->next_refresh = time(NULL) + SUP_RETRY_SECS;
		return;
	}
	s->next_refresh = time(NULL) + s->a.conf->registry_refresh;
	if (rc == SUP_CHANGED) {
		metrics_add(&s->metrics->registry_loads, 1);
		log_info("catalogue updated from %s", s->a.conf->registry_url);
		sup_signal_workers(s, SIGUSR2);
	}
}

static void
sup_spawn(struct supervisor *s, int i)
{
	pid_t pid = fork();
	sigset_t none;

	if (pid == -1) {
		log_warn("fork worker %d", i);
		return;
	}
	if (pid == 0) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		log_set_tag("ewpd-worker");
		/* exit(), not _exit(): leak checkers run at exit in sanitizer builds. */
		exit(worker_run(&s->a, s->metrics, s->nonce, i));
	}
	s->pids[i] = pid;
	s->started[i] = time(NULL);
}

static void
sup_sync_report(const struct sync_outcome *o, void *arg)
{
	struct metrics *m = arg;

	if (o->ok) {
		metrics_add(&m->sync_partners_ok, 1);
		log_debug("sync: %s: %zu units", o->hei_id, o->nunits);
	} else {
		metrics_add(&m->sync_partners_failed, 1);
		log_warnx("sync: %s: %s", o->hei_id, o->error);
	}
}

/* The child process of one scheduled institution sync. */
static int
sup_sync_child(struct supervisor *s)
{
	struct sync_opts o = {.conf = s->a.conf,
	                      .ca_file = s->a.conf->sync_ca_file,
	                      .report = sup_sync_report,
	                      .arg = s->metrics};
	struct sync_summary sum;
	char err[512];
	int rc = sync_institutions_run(&o, &sum, err, sizeof(err));

	if (rc == -1)
		log_warnx("sync stopped: %s", err);
	else
		log_info("sync finished: %zu partners synced, %zu failed%s", sum.ok, sum.failed,
		         sum.schac_filled > 0 ? ", SCHAC ids filled from the catalogue" : "");
	metrics_add(&s->metrics->sync_runs, 1);
	__atomic_store_n(&s->metrics->sync_finished_at, (int64_t)time(NULL), __ATOMIC_RELAXED);
	return rc == -1 ? 1 : 0;
}

/* Forks the sync unless one is still running (a slow partner set). */
static void
sup_sync_now(struct supervisor *s)
{
	sigset_t none;
	pid_t pid;

	if (s->a.conf->sync_interval > 0)
		s->next_sync = time(NULL) + s->a.conf->sync_interval;
	if (s->sync_pid > 0) {
		log_warnx("sync: the previous run (pid %d) is still going; not starting another",
		          (int)s->sync_pid);
		return;
	}
	if ((pid = fork()) == -1) {
		log_warn("fork sync");
		return;
	}
	if (pid == 0) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		log_set_tag("ewpd-sync");
		exit(sup_sync_child(s));
	}
	s->sync_pid = pid;
	log_info("sync of partner institutions started (pid %d)", (int)pid);
}

static void
sup_reap(struct supervisor *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == s->sync_pid) {
			s->sync_pid = 0;
			if (WIFEXITED(status))
				continue;
			if (s->stopping)
				log_info("sync (pid %d) interrupted by the stop", (int)pid);
			else
				log_warnx("sync (pid %d) killed by signal %d", (int)pid,
				          WTERMSIG(status));
			continue;
		}
		for (int i = 0; i < s->nworkers; i++) {
			if (s->pids[i] != pid)
				continue;
			s->pids[i] = 0;
			if (s->stopping) {
				if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
					log_warnx("worker %d (pid %d) did not stop cleanly (%s %d)",
					          i, (int)pid,
					          WIFSIGNALED(status) ? "signal" : "status",
					          WIFSIGNALED(status) ? WTERMSIG(status)
					                              : WEXITSTATUS(status));
					s->worker_failed = true;
				}
				break;
			}
			log_warnx("worker %d (pid %d) %s %d; restarting it", i, (int)pid,
			          WIFSIGNALED(status) ? "killed by signal" : "exited with",
			          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			metrics_add(&s->metrics->worker_restarts, 1);
			/* A worker dying at birth must not make us spin. */
			if (time(NULL) - s->started[i] < 1)
				sleep(1);
			sup_spawn(s, i);
		}
	}
}

static void
sup_reload(struct supervisor *s)
{
	struct worker_assets next;
	char err[512];

	sup_notify("RELOADING=1");
	if (worker_assets_load(s->a.conf->path, s->a.conf, &next, err, sizeof(err)) == -1) {
		log_warnx("reload refused, running configuration kept: %s", err);
		sup_notify("READY=1");
		return;
	}
	worker_assets_free(&s->a);
	s->a = next;
	log_set_level(s->a.conf->log_level);
	s->have_digest = false; /* re-read the catalogue even if unchanged */
	char msg[512];
	if (sup_refresh(s, s->a.conf, msg, sizeof(msg)) == SUP_REFRESH_FAILED)
		log_warnx("%s; workers keep the last good catalogue", msg);
	s->next_refresh = time(NULL) + s->a.conf->registry_refresh;
	sup_signal_workers(s, SIGHUP);
	metrics_add(&s->metrics->reloads, 1);
	log_info("reload: configuration checked, workers told to reload");
	sup_notify("READY=1");
}

static int
sup_live_workers(const struct supervisor *s)
{
	int n = 0;

	for (int i = 0; i < s->nworkers; i++)
		n += s->pids[i] > 0;
	return n + (s->sync_pid > 0);
}

/* SIGTERM: workers drain; past the deadline they are killed. */
static void
sup_stop(struct supervisor *s, sigset_t *set)
{
	time_t deadline = time(NULL) + s->a.conf->drain_timeout + 5;
	struct timespec tick = {0, 100 * 1000 * 1000};
	siginfo_t info;

	sup_notify("STOPPING=1");
	s->stopping = true;
	sup_signal_workers(s, SIGTERM);
	/* a partner's transaction not committed is rolled back by PostgreSQL */
	if (s->sync_pid > 0)
		kill(s->sync_pid, SIGTERM);
	while (sup_live_workers(s) > 0) {
		int sig = sigtimedwait(set, &info, &tick);
		if (sig == SIGTERM || sig == SIGINT)
			sup_signal_workers(s, SIGTERM); /* second TERM: workers exit now */
		sup_reap(s);
		if (time(NULL) > deadline) {
			log_warnx("workers still running after the drain timeout; killing them");
			sup_signal_workers(s, SIGKILL);
			if (s->sync_pid > 0)
				kill(s->sync_pid, SIGKILL);
			deadline = time(NULL) + 3600;
		}
	}
}

int
supervisor_run(struct worker_assets *a)
{
	struct supervisor s = {.a = *a};
	char msg[512];
	sigset_t set;
	siginfo_t info;

	memset(a, 0, sizeof(*a));
	if (server_port_free(s.a.conf->listen_host, s.a.conf->listen_port, msg, sizeof(msg)) ==
	    -1) {
		log_error("%s", msg);
		worker_assets_free(&s.a);
		return 1;
	}
	s.metrics = metrics_new();
	s.nonce = nonce_new(SUP_NONCE_SLOTS, true);
	s.nworkers = s.a.conf->workers;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);

	sup_refresh_now(&s);
	for (int i = 0; i < s.nworkers; i++)
		sup_spawn(&s, i);
	log_info("ewpd started: %d workers, public URL %s, HEI %s", s.nworkers,
	         s.a.conf->public_url, s.a.conf->hei_id);
	sup_notify("READY=1");
	if (s.a.conf->sync_interval > 0)
		s.next_sync =
		    time(NULL) + (s.a.conf->sync_interval < SUP_FIRST_SYNC ? s.a.conf->sync_interval
		                                                           : SUP_FIRST_SYNC);
	for (;;) {
		time_t now = time(NULL);
		time_t next = s.next_refresh;
		bool sync_on = s.a.conf->sync_interval > 0;
		int sig;

		if (sync_on && s.next_sync == 0) /* turned on by a reload */
			s.next_sync = now + s.a.conf->sync_interval;
		if (sync_on && s.next_sync < next)
			next = s.next_sync;
		struct timespec wait = {next > now ? next - now : 0, 0};
		sig = sigtimedwait(&set, &info, &wait);
		if (sig == -1 && errno == EAGAIN) {
			now = time(NULL);
			if (now >= s.next_refresh)
				sup_refresh_now(&s);
			if (sync_on && now >= s.next_sync)
				sup_sync_now(&s);
		} else if (sig == SIGUSR1)
			sup_sync_now(&s);
		else if (sig == SIGCHLD)
			sup_reap(&s);
		else if (sig == SIGHUP)
			sup_reload(&s);
		else if (sig == SIGUSR2)
			sup_refresh_now(&s);
		else if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	log_info("stopping: draining workers");
	sup_stop(&s, &set);
	free(s.etag);
	free(s.last_modified);
	worker_assets_free(&s.a);
	nonce_free(s.nonce);
	metrics_free(s.metrics);
	log_info("stopped");
	return s.worker_failed ? 1 : 0;
}
