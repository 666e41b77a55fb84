/* server.c - evhttp listener, limits, TLS, framing checks and routing. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netdb.h>
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>

#include "api/api.h"
#include "log.h"
#include "portal/portal.h"
#include "req.h"
#include "db.h"
#include "server.h"
#include "xmalloc.h"

struct server {
	struct ewpd *d;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
};

static int
server_bind(const char *host, int port, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai;
	char portstr[8];
	int fd, one = 1, rc;

	snprintf(portstr, sizeof(portstr), "%d", port);
	if ((rc = getaddrinfo(host, portstr, &hints, &ai)) != 0) {
		snprintf(err, errlen, "listen %s:%d: %s (give a numeric address)", host, port,
		         gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    /* inherited by accepted sockets (Linux): a response written in
	     * several pieces (TLS records) must not wait for the peer's
	     * delayed ACK, ~40 ms per response otherwise */
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 || listen(fd, 1024) == -1) {
		snprintf(err, errlen, "listen %s:%d: %s", host, port, strerror(errno));
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

int
server_port_free(const char *host, int port, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai;
	char portstr[8];
	int fd, one = 1, rc = 0;

	snprintf(portstr, sizeof(portstr), "%d", port);
	if (getaddrinfo(host, portstr, &hints, &ai) != 0)
		return 0; /* server_bind says why */
	/* no SO_REUSEPORT here: a socket of another process, even one with
	 * SO_REUSEPORT set, makes this bind fail */
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd != -1 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	                 bind(fd, ai->ai_addr, ai->ai_addrlen) == -1)) {
		snprintf(err, errlen, "listen %s:%d: %s%s", host, port, strerror(errno),
		         errno == EADDRINUSE ? " (another ewpd or another program has it)" : "");
		rc = -1;
	}
	if (fd != -1)
		close(fd);
	freeaddrinfo(ai);
	return rc;
}

/* A TLS bufferevent per accepted connection, with the current context. */
static struct bufferevent *
server_tls_bev_cb(struct event_base *base, void *arg)
{
	struct server *s = arg;
	SSL *ssl = SSL_new(s->d->tls);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                      BEV_OPT_CLOSE_ON_FREE);
}

/*
 * Ambiguous framing is refused: a proxy in front may read the body
 * differently from evhttp (request smuggling).
 */
static bool
server_framing_ok(struct req *rq)
{
	size_t cl = req_header_count(rq, "Content-Length");

	if (cl > 1) {
		rq->close = true;
		req_error(rq, 400, "several Content-Length headers");
		return false;
	}
	if (cl == 1 && req_header(rq, "Transfer-Encoding")) {
		rq->close = true;
		req_error(rq, 400, "both Content-Length and Transfer-Encoding");
		return false;
	}
	return true;
}

static void
server_metrics(struct req *rq)
{
	struct buf b;

	rq->metric = METRICS_API_METRICS;
	if (!rq->d->conf->metrics) {
		req_error(rq, 404, "metrics are turned off ([server] metrics)");
		return;
	}
	buf_init(&b, 1024 * 1024);
	if (metrics_render(rq->d->metrics, &b) == -1)
		req_error(rq, 500, "metrics too large");
	else
		req_reply(rq, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	buf_free(&b);
}

/*
 * 503 only without a catalogue (nothing can be authenticated). A database
 * that is down keeps 200, "ok (database down)": Echo and the manifest still
 * work, the APIs needing it answer 503 themselves, and a load balancer
 * should not take the whole node out for it.
 */
static void
server_healthz(struct req *rq)
{
	static const char nocat[] = "no catalogue\n", ok[] = "ok\n",
	                  dbdown[] = "ok (database down)\n";
	const char *body = ok;

	rq->metric = METRICS_API_HEALTH;
	if (rq->d->snap == NULL) {
		req_reply(rq, 503, "text/plain; charset=utf-8", nocat, sizeof(nocat) - 1);
		return;
	}
	if (rq->d->db == NULL || !db_pool_up(rq->d->db))
		body = dbdown;
	req_reply(rq, 200, "text/plain; charset=utf-8", body, strlen(body));
}

static void
server_request_cb(struct evhttp_request *ev, void *arg)
{
	struct server *s = arg;
	struct req *rq = req_new(s->d, ev);

	if (rq == NULL || !server_framing_ok(rq))
		return;
	if (strcmp(rq->path, "/healthz") == 0) {
		server_healthz(rq);
		return;
	}
	if (strcmp(rq->path, "/metrics") == 0) {
		server_metrics(rq);
		return;
	}
	if (strncmp(rq->path, "/portal", 7) == 0 && (rq->path[7] == '\0' || rq->path[7] == '/')) {
		portal_dispatch(rq);
		return;
	}
	api_dispatch(rq);
}

void
server_reconfigure(struct server *s, const struct conf *c)
{
	evhttp_set_timeout(s->http, c->request_timeout);
}

struct server *
server_new(struct ewpd *d, char *err, size_t errlen)
{
	struct server *s = xcalloc(1, sizeof(*s));
	int fd;

	s->d = d;
	if ((s->http = evhttp_new(d->base)) == NULL)
		fatalx("evhttp_new failed");
	/* evhttp's defaults are unlimited: set every limit ourselves. */
	evhttp_set_max_headers_size(s->http, EWP_MAX_HEADER_BYTES);
	evhttp_set_max_body_size(s->http, EWP_MAX_BODY_BYTES);
	evhttp_set_default_content_type(s->http, "text/xml; charset=utf-8");
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                        EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	server_reconfigure(s, d->conf);
	evhttp_set_gencb(s->http, server_request_cb, s);
	if (d->conf->tls)
		evhttp_set_bevcb(s->http, server_tls_bev_cb, s);
	fd = server_bind(d->conf->listen_host, d->conf->listen_port, err, errlen);
	if (fd == -1 || (s->bound = evhttp_accept_socket_with_handle(s->http, fd)) == NULL) {
		if (fd != -1) {
			snprintf(err, errlen, "cannot serve on %s", d->conf->listen);
			close(fd);
		}
		server_free(s);
		return NULL;
	}
	return s;
}

void
server_stop_accepting(struct server *s)
{
	if (s->bound) {
		evhttp_del_accept_socket(s->http, s->bound);
		s->bound = NULL;
	}
}

/*
 * evhttp cannot tell how many connections it holds, so the drain counts
 * them from the process's descriptors: TCP sockets connected to a peer
 * on our listening port. Only called while draining.
 */
unsigned
server_open_connections(const struct server *s)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	if (dir == NULL)
		return 0;
	while ((e = readdir(dir)) != NULL) {
		struct sockaddr_storage local, peer;
		socklen_t llen = sizeof(local), plen = sizeof(peer);
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		int port;

		if (*end != '\0' || fd == dirfd(dir))
			continue;
		if (getsockname((int)fd, (struct sockaddr *)&local, &llen) == -1 ||
		    getpeername((int)fd, (struct sockaddr *)&peer, &plen) == -1)
			continue;
		if (local.ss_family == AF_INET)
			port = ntohs(((struct sockaddr_in *)&local)->sin_port);
		else if (local.ss_family == AF_INET6)
			port = ntohs(((struct sockaddr_in6 *)&local)->sin6_port);
		else
			continue;
		n += port == s->d->conf->listen_port;
	}
	closedir(dir);
	return n;
}

void
server_free(struct server *s)
{
	if (s == NULL)
		return;
	if (s->http)
		evhttp_free(s->http);
	free(s);
}
