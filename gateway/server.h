/*
 * server.h - the HTTP(S) listener of a worker, on evhttp.
 *
 * Sets every evhttp limit explicitly (its defaults are unlimited), checks
 * request framing, answers /healthz and /metrics, and hands everything
 * else to the API dispatcher. Only this file and req.c include evhttp.
 */
#ifndef SERVER_H
#define SERVER_H

#include "daemon.h"
#include "ewpd.h"

/* Binds listen (SO_REUSEPORT) and starts serving; -1 with err set. */
struct server *server_new(struct ewpd *d, char *err, size_t errlen);
/*
 * Whether nobody listens on host:port yet: workers bind with SO_REUSEPORT,
 * which would let a second ewpd of the same user share the port silently.
 * 0, or -1 with the reason in err. Checked once by the supervisor.
 */
int server_port_free(const char *host, int port, char *err, size_t errlen);
/* Applies reloadable settings (timeouts). */
void server_reconfigure(struct server *s, const struct conf *c);
/* Stops accepting new connections; open ones are served on. */
void server_stop_accepting(struct server *s);
/* Client connections still open (while draining). */
unsigned server_open_connections(const struct server *s);
void server_free(struct server *s);

#endif
