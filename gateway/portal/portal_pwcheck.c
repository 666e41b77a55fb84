/*
 * portal_pwcheck.c - scrypt on a detached thread per check; the thread
 * hands its finished job back to the loop through a pipe (one pointer per
 * write, atomic below PIPE_BUF), and the loop calls the page back.
 * Nothing but the job itself is shared with the thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "daemon.h"
#include "log.h"
#include "portal_password.h"
#include "portal_pwcheck.h"
#include "xmalloc.h"

struct pwcheck_job {
	struct portal *p;
	portal_pwcheck_done *done;
	char *password, *stored;
	bool ok;
};

static int pipe_fds[2] = {-1, -1};
static struct event *pipe_ev;
static unsigned running;

static void
pwcheck_job_free(struct pwcheck_job *j)
{
	OPENSSL_cleanse(j->password, strlen(j->password));
	free(j->password);
	free(j->stored);
	free(j);
}

static void *
pwcheck_thread(void *arg)
{
	struct pwcheck_job *j = arg;
	ssize_t n;

	if (j->stored) {
		j->ok = portal_password_verify(j->password, j->stored);
	} else {
		portal_password_burn(j->password);
		j->ok = false;
	}
	do
		n = write(pipe_fds[1], &j, sizeof(j));
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)sizeof(j))
		fatal("portal: cannot hand a password check back to the loop");
	return NULL;
}

static void
pwcheck_finished(evutil_socket_t fd, short what, void *arg)
{
	struct pwcheck_job *j;

	(void)what;
	(void)arg;
	while (read(fd, &j, sizeof(j)) == (ssize_t)sizeof(j)) {
		running--;
		j->done(j->p, j->ok);
		pwcheck_job_free(j);
	}
}

static int
pwcheck_setup(struct event_base *base)
{
	if (pipe_ev)
		return 0;
	if (pipe2(pipe_fds, O_CLOEXEC) == -1) {
		log_warn("portal: pipe");
		return -1;
	}
	/* only the loop's end is non-blocking: a thread's write always completes */
	if (fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK) == -1 ||
	    (pipe_ev = event_new(base, pipe_fds[0], EV_READ | EV_PERSIST, pwcheck_finished,
	                         NULL)) == NULL ||
	    event_add(pipe_ev, NULL) == -1) {
		log_warnx("portal: cannot watch password checks");
		return -1;
	}
	return 0;
}

int
portal_pwcheck(struct portal *p, const char *password, const char *stored,
               portal_pwcheck_done *done)
{
	struct pwcheck_job *j;
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	if (running >= PORTAL_PWCHECK_MAX || pwcheck_setup(p->d->base) == -1)
		return -1;
	j = xcalloc(1, sizeof(*j));
	j->p = p;
	j->done = done;
	j->password = xstrdup(password);
	j->stored = stored ? xstrdup(stored) : NULL;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, pwcheck_thread, j);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		log_warnx("portal: cannot start a password check: %s", strerror(rc));
		pwcheck_job_free(j);
		return -1;
	}
	running++;
	return 0;
}
