/*
 * conf.c - INI configuration parsed through a table of typed keys.
 *
 * Each key names its section, type, default and whether it can change on
 * reload. Parsing fills a fresh struct conf; the first problem stops the
 * load with "file:line: reason", so a bad file never half-applies.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "xmalloc.h"

#ifndef EWP_PORTAL_STRINGS /* set by the Makefile from PREFIX */
#define EWP_PORTAL_STRINGS "/usr/local/share/ewpd/portal"
#endif
#ifndef EWP_SCHEMA_DIR /* set by the Makefile from PREFIX */
#define EWP_SCHEMA_DIR "/usr/local/share/ewpd/schemas"
#endif

enum conf_type { CONF_STR, CONF_INT, CONF_BOOL, CONF_DURATION, CONF_LEVEL, CONF_LIST };

#define CONF_REQUIRED 0x1
#define CONF_NORELOAD 0x2
#define CONF_PATH     0x4 /* relative paths resolved against the file's directory */

struct conf_key {
	const char *section;
	const char *name;
	enum conf_type type;
	size_t offset;    /* of the field in struct conf */
	size_t count_off; /* CONF_LIST: offset of the size_t count */
	const char *def;  /* default as it would be written, NULL: none */
	int flags;
	long min, max; /* CONF_INT and CONF_DURATION */
};

#define F(field) offsetof(struct conf, field)

static const struct conf_key conf_keys[] = {
    {"server", "listen", CONF_STR, F(listen), 0, "127.0.0.1:8443", CONF_NORELOAD, 0, 0},
    {"server", "tls", CONF_BOOL, F(tls), 0, "on", CONF_NORELOAD, 0, 0},
    {"server", "tls_cert", CONF_STR, F(tls_cert), 0, "", CONF_PATH, 0, 0},
    {"server", "tls_key", CONF_STR, F(tls_key), 0, "", CONF_PATH, 0, 0},
    {"server", "workers", CONF_INT, F(workers), 0, "2", CONF_NORELOAD, 1, 64},
    {"server", "public_url", CONF_STR, F(public_url), 0, NULL, CONF_REQUIRED, 0, 0},
    {"server", "request_timeout", CONF_DURATION, F(request_timeout), 0, "30s", 0, 1, 3600},
    {"server", "drain_timeout", CONF_DURATION, F(drain_timeout), 0, "10s", 0, 0, 3600},
    {"server", "metrics", CONF_BOOL, F(metrics), 0, "on", 0, 0, 0},
    {"log", "level", CONF_LEVEL, F(log_level), 0, "info", 0, 0, 0},
    {"log", "message_body_max", CONF_INT, F(message_body_max), 0, "65536", 0, 0, 1048576},
    {"log", "message_retention", CONF_DURATION, F(message_retention), 0, "180d", 0, 0,
     3650L * 86400},
    {"ewp", "hei_id", CONF_STR, F(hei_id), 0, NULL, CONF_REQUIRED, 0, 0},
    {"ewp", "hei_name", CONF_STR, F(hei_name), 0, NULL, CONF_REQUIRED, 0, 0},
    {"ewp", "hei_name_lang", CONF_STR, F(hei_name_lang), 0, "fr", 0, 0, 0},
    {"ewp", "hei_name_en", CONF_STR, F(hei_name_en), 0, "", 0, 0, 0},
    {"ewp", "erasmus_code", CONF_STR, F(erasmus_code), 0, "", 0, 0, 0},
    {"ewp", "pic", CONF_STR, F(pic), 0, "", 0, 0, 0},
    {"ewp", "admin_email", CONF_STR, F(admin_email), 0, NULL, CONF_REQUIRED, 0, 0},
    {"ewp", "admin_provider", CONF_STR, F(admin_provider), 0, "SMILE EWP gateway", 0, 0, 0},
    {"ewp", "admin_notes", CONF_STR, F(admin_notes), 0, "", 0, 0, 0},
    {"ewp", "manifest_path", CONF_STR, F(manifest_path), 0, "/ewp/manifest.xml", 0, 0, 0},
    {"ewp", "date_window", CONF_DURATION, F(date_window), 0, "5m", 0, EWP_DATE_WINDOW_SECS, 86400},
    {"ewp", "factsheet", CONF_STR, F(factsheet), 0, "", CONF_PATH, 0, 0},
    {"ewp", "schema_dir", CONF_STR, F(schema_dir), 0, EWP_SCHEMA_DIR, CONF_PATH, 0, 0},
    {"keys", "keys_dir", CONF_STR, F(keys_dir), 0, NULL, CONF_REQUIRED | CONF_PATH, 0, 0},
    {"keys", "client_key", CONF_STR, F(client_key), 0, "client.pem", 0, 0, 0},
    {"keys", "server_key", CONF_STR, F(server_key), 0, "server.pem", 0, 0, 0},
    {"keys", "publish_client", CONF_LIST, F(publish_client), F(npublish_client), "", 0, 0, 0},
    {"keys", "publish_server", CONF_LIST, F(publish_server), F(npublish_server), "", 0, 0, 0},
    {"registry", "url", CONF_STR, F(registry_url), 0, NULL, CONF_REQUIRED, 0, 0},
    {"registry", "refresh", CONF_DURATION, F(registry_refresh), 0, "15m", 0, 60, 10800},
    {"registry", "cache", CONF_STR, F(registry_cache), 0, NULL, CONF_REQUIRED | CONF_PATH, 0, 0},
    {"database", "conninfo", CONF_STR, F(db_conninfo), 0, "dbname=ewpd", 0, 0, 0},
    {"registry", "ca_file", CONF_STR, F(registry_ca_file), 0, "", CONF_PATH, 0, 0},
    {"courses", "first_semester", CONF_STR, F(first_semester), 0, "09-01/01-31", 0, 0, 0},
    {"courses", "second_semester", CONF_STR, F(second_semester), 0, "02-01/06-30", 0, 0, 0},
    {"sync", "interval", CONF_DURATION, F(sync_interval), 0, "6h", 0, 0, 604800},
    {"sync", "timeout", CONF_DURATION, F(sync_timeout), 0, "60s", 0, 1, 3600},
    {"sync", "ca_file", CONF_STR, F(sync_ca_file), 0, "", CONF_PATH, 0, 0},
    {"jobs", "concurrency", CONF_INT, F(jobs_concurrency), 0, "8", 0, 1, 256},
    {"jobs", "lease", CONF_DURATION, F(jobs_lease), 0, "2m", 0, 2, 86400},
    {"jobs", "timeout", CONF_DURATION, F(jobs_timeout), 0, "30s", 0, 1, 3600},
    {"jobs", "retry_min", CONF_DURATION, F(jobs_retry_min), 0, "1m", 0, 1, 86400},
    {"jobs", "retry_max", CONF_DURATION, F(jobs_retry_max), 0, "1h", 0, 1, 7 * 86400},
    {"jobs", "give_up_after", CONF_DURATION, F(jobs_give_up_after), 0, "24h", 0, 1, 30 * 86400},
    {"jobs", "ca_file", CONF_STR, F(jobs_ca_file), 0, "", CONF_PATH, 0, 0},
    {"mobility", "sync_hour", CONF_INT, F(mobility_sync_hour), 0, "2", 0, -1, 23},
    {"portal", "enabled", CONF_BOOL, F(portal), 0, "on", 0, 0, 0},
    {"portal", "strings", CONF_STR, F(portal_strings), 0, EWP_PORTAL_STRINGS, CONF_PATH, 0, 0},
    {"portal", "session_idle", CONF_DURATION, F(portal_session_idle), 0, "30m", 0, 60, 86400},
    {"portal", "session_max", CONF_DURATION, F(portal_session_max), 0, "10h", 0, 60, 7 * 86400},
    {"portal", "max_failures", CONF_INT, F(portal_max_failures), 0, "5", 0, 1, 100},
    {"portal", "lockout", CONF_DURATION, F(portal_lockout), 0, "15m", 0, 1, 86400},
    {"portal", "sso_header", CONF_STR, F(portal_sso_header), 0, "", 0, 0, 0},
    {"portal", "sso_proxies", CONF_LIST, F(portal_sso_proxies), F(nportal_sso_proxies), "", 0, 0,
     0},
};

#define NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

struct conf_parse {
	const char *file;
	char *dir; /* directory of the file, for relative paths */
	int line;
	char *err;
	size_t errlen;
	bool seen[NKEYS];
	int lines[NKEYS]; /* where each key was set, for checks made at the end */
};

static int conf_fail(struct conf_parse *p, const char *fmt, ...) EWP_PRINTF(2, 3);

static int
conf_fail(struct conf_parse *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->line > 0)
		snprintf(p->err, p->errlen, "%s:%d: %s", p->file, p->line, msg);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->file, msg);
	return -1;
}

static char *
conf_trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Seconds from "45", "45s", "15m", "3h", "1d". */
static int
conf_parse_duration(const char *s, long *out)
{
	char *end;
	long mult = 1;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || errno || v < 0)
		return -1;
	if (*end == 's')
		end++;
	else if (*end == 'm')
		mult = 60, end++;
	else if (*end == 'h')
		mult = 3600, end++;
	else if (*end == 'd')
		mult = 86400, end++;
	if (*end != '\0' || v > LONG_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

static char *
conf_resolve_path(const struct conf_parse *p, const char *v)
{
	if (v[0] == '\0' || v[0] == '/' || p->dir == NULL)
		return xstrdup(v);
	return xasprintf("%s/%s", p->dir, v);
}

static int
conf_set_list(struct conf_parse *p, struct conf *c, const struct conf_key *k, const char *v)
{
	char **items = (char **)((char *)c + k->offset);
	size_t *count = (size_t *)((char *)c + k->count_off);
	char *copy = xstrdup(v), *cur = copy, *comma;

	for (size_t i = 0; i < *count; i++)
		free(items[i]);
	*count = 0;
	while (cur != NULL) {
		comma = strchr(cur, ',');
		if (comma)
			*comma = '\0';
		char *item = conf_trim(cur);
		if (*item != '\0') {
			if (*count == CONF_MAX_PUBLISHED) {
				free(copy);
				return conf_fail(p, "%s: at most %d entries", k->name,
				                 CONF_MAX_PUBLISHED);
			}
			items[(*count)++] = xstrdup(item);
		}
		cur = comma ? comma + 1 : NULL;
	}
	free(copy);
	return 0;
}

static int
conf_set(struct conf_parse *p, struct conf *c, const struct conf_key *k, const char *v)
{
	void *field = (char *)c + k->offset;
	long n;
	char *end;

	switch (k->type) {
	case CONF_STR: {
		char **s = field;
		free(*s);
		*s = (k->flags & CONF_PATH) ? conf_resolve_path(p, v) : xstrdup(v);
		return 0;
	}
	case CONF_INT:
		errno = 0;
		n = strtol(v, &end, 10);
		if (end == v || *end != '\0' || errno)
			return conf_fail(p, "%s: \"%s\" is not a whole number", k->name, v);
		if (n < k->min || n > k->max)
			return conf_fail(p, "%s: %ld is outside %ld..%ld", k->name, n, k->min,
			                 k->max);
		*(int *)field = (int)n;
		return 0;
	case CONF_DURATION:
		if (conf_parse_duration(v, &n) == -1)
			return conf_fail(p, "%s: \"%s\" is not a duration (e.g. 30s, 15m, 3h)",
			                 k->name, v);
		if (n < k->min || n > k->max)
			return conf_fail(p, "%s: %lds is outside %lds..%lds", k->name, n, k->min,
			                 k->max);
		*(int *)field = (int)n;
		return 0;
	case CONF_BOOL:
		if (strcmp(v, "on") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0)
			*(bool *)field = true;
		else if (strcmp(v, "off") == 0 || strcmp(v, "no") == 0 || strcmp(v, "false") == 0)
			*(bool *)field = false;
		else
			return conf_fail(p, "%s: \"%s\" is not on/off", k->name, v);
		return 0;
	case CONF_LEVEL:
		if (log_level_parse(v, (enum log_level *)field) == -1)
			return conf_fail(p, "%s: \"%s\" is not one of error, warn, info, debug",
			                 k->name, v);
		return 0;
	case CONF_LIST:
		return conf_set_list(p, c, k, v);
	}
	return conf_fail(p, "%s: internal error (type)", k->name);
}

static const struct conf_key *
conf_find(const char *section, const char *name, size_t *idx)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(conf_keys[i].section, section) == 0 &&
		    strcmp(conf_keys[i].name, name) == 0) {
			*idx = i;
			return &conf_keys[i];
		}
	}
	return NULL;
}

static bool
conf_section_known(const char *section)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(conf_keys[i].section, section) == 0)
			return true;
	return false;
}

static int
conf_parse_line(struct conf_parse *p, struct conf *c, char *line, char *section, size_t seclen)
{
	char *s = conf_trim(line), *eq, *name, *value;
	const struct conf_key *k;
	size_t idx;

	if (*s == '\0' || *s == ';' || *s == '#')
		return 0;
	if (*s == '[') {
		char *close = strchr(s, ']');
		if (close == NULL || close[1] != '\0')
			return conf_fail(p, "malformed section header");
		*close = '\0';
		if (!conf_section_known(s + 1))
			return conf_fail(p, "unknown section [%s]", s + 1);
		snprintf(section, seclen, "%s", s + 1);
		return 0;
	}
	if ((eq = strchr(s, '=')) == NULL)
		return conf_fail(p, "expected key = value");
	*eq = '\0';
	name = conf_trim(s);
	value = conf_trim(eq + 1);
	if (*section == '\0')
		return conf_fail(p, "key \"%s\" outside of any [section]", name);
	if ((k = conf_find(section, name, &idx)) == NULL)
		return conf_fail(p, "unknown key \"%s\" in [%s]", name, section);
	if (p->seen[idx])
		return conf_fail(p, "key \"%s\" set twice in [%s]", name, section);
	p->seen[idx] = true;
	p->lines[idx] = p->line;
	return conf_set(p, c, k, value);
}

static int
conf_apply_defaults(struct conf_parse *p, struct conf *c)
{
	p->line = 0;
	for (size_t i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (p->seen[i])
			continue;
		if (k->flags & CONF_REQUIRED)
			return conf_fail(p, "missing required key \"%s\" in [%s]", k->name,
			                 k->section);
		if (conf_set(p, c, k, k->def) == -1)
			return -1;
	}
	return 0;
}

/* Points error messages at the line that set [section] name (0 if defaulted). */
static void
conf_at(struct conf_parse *p, const char *section, const char *name)
{
	size_t idx;

	p->line = conf_find(section, name, &idx) ? p->lines[idx] : 0;
}

/* Splits listen = host:port. */
static int
conf_check_listen(struct conf_parse *p, struct conf *c)
{
	char *colon = strrchr(c->listen, ':');
	long port;
	char *end;

	conf_at(p, "server", "listen");
	if (colon == NULL || colon == c->listen)
		return conf_fail(p, "listen: \"%s\" is not host:port", c->listen);
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || errno || port < 1 || port > 65535)
		return conf_fail(p, "listen: bad port in \"%s\"", c->listen);
	c->listen_host = xstrndup(c->listen, (size_t)(colon - c->listen));
	c->listen_port = (int)port;
	return 0;
}

/* public_url must be scheme://host[:port] with nothing after. */
static int
conf_check_public_url(struct conf_parse *p, struct conf *c)
{
	const char *u = c->public_url, *host;
	size_t len;

	conf_at(p, "server", "public_url");
	if (strncmp(u, "https://", 8) == 0)
		host = u + 8;
	else if (strncmp(u, "http://", 7) == 0)
		host = u + 7;
	else
		return conf_fail(p, "public_url: \"%s\" must start with https:// or http://", u);
	len = strlen(host);
	while (len > 0 && host[len - 1] == '/')
		len--;
	if (len == 0 || memchr(host, '/', len) || memchr(host, '?', len))
		return conf_fail(
		    p, "public_url: \"%s\" must be scheme://host[:port] without a path", u);
	c->public_host = xstrndup(host, len);
	c->public_url[(size_t)(host - u) + len] = '\0';
	return 0;
}

/* "MM-DD" into month and day; 29 February is refused (not every year has it). */
static bool
conf_month_day(const char *s, int *month, int *day)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (strlen(s) != 5 || s[2] != '-' || !isdigit((unsigned char)s[0]) ||
	    !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[3]) ||
	    !isdigit((unsigned char)s[4]))
		return false;
	*month = (s[0] - '0') * 10 + (s[1] - '0');
	*day = (s[3] - '0') * 10 + (s[4] - '0');
	return *month >= 1 && *month <= 12 && *day >= 1 && *day <= mdays[*month - 1];
}

/* first_semester / second_semester = MM-DD/MM-DD */
static int
conf_check_semester(struct conf_parse *p, const char *name, const char *v,
                    struct conf_semester *out)
{
	char start[8], end[8];
	const char *slash = strchr(v, '/');

	conf_at(p, "courses", name);
	if (slash == NULL || slash - v != 5 || strlen(slash + 1) != 5)
		return conf_fail(p, "[courses] %s: \"%s\" is not MM-DD/MM-DD", name, v);
	memcpy(start, v, 5);
	start[5] = '\0';
	memcpy(end, slash + 1, 6);
	if (!conf_month_day(start, &out->start_month, &out->start_day) ||
	    !conf_month_day(end, &out->end_month, &out->end_day))
		return conf_fail(p, "[courses] %s: \"%s\" is not MM-DD/MM-DD with real dates", name,
		                 v);
	return 0;
}

static int
conf_check(struct conf_parse *p, struct conf *c)
{
	if (conf_check_listen(p, c) == -1 || conf_check_public_url(p, c) == -1)
		return -1;
	if (conf_check_semester(p, "first_semester", c->first_semester, &c->semesters[0]) == -1 ||
	    conf_check_semester(p, "second_semester", c->second_semester, &c->semesters[1]) == -1)
		return -1;
	conf_at(p, "server", "tls");
	if (c->tls && (c->tls_cert[0] == '\0' || c->tls_key[0] == '\0'))
		return conf_fail(p, "[server] tls = on needs tls_cert and tls_key");
	conf_at(p, "ewp", "manifest_path");
	if (c->manifest_path[0] != '/')
		return conf_fail(p, "[ewp] manifest_path must start with /");
	conf_at(p, "ewp", "admin_email");
	if (strchr(c->admin_email, '@') == NULL)
		return conf_fail(p, "[ewp] admin_email: \"%s\" is not an e-mail address",
		                 c->admin_email);
	conf_at(p, "registry", "url");
	if (strncmp(c->registry_url, "https://", 8) != 0 &&
	    strncmp(c->registry_url, "file://", 7) != 0)
		return conf_fail(p, "[registry] url: \"%s\" must be https:// or file://",
		                 c->registry_url);
	conf_at(p, "keys", "server_key");
	if (strcmp(c->client_key, c->server_key) == 0)
		return conf_fail(p, "[keys] client_key and server_key must be different keys");
	conf_at(p, "jobs", "lease");
	if (c->jobs_lease <= c->jobs_timeout)
		return conf_fail(p,
		                 "[jobs] lease (%ds) must be longer than timeout (%ds), or a "
		                 "job still running would be taken by another worker",
		                 c->jobs_lease, c->jobs_timeout);
	conf_at(p, "jobs", "retry_max");
	if (c->jobs_retry_max < c->jobs_retry_min)
		return conf_fail(p, "[jobs] retry_max must not be below retry_min");
	return 0;
}

struct conf *
conf_load(const char *path, char *err, size_t errlen)
{
	struct conf_parse p = {.file = path, .err = err, .errlen = errlen};
	struct conf *c = xcalloc(1, sizeof(*c));
	char section[64] = "", *line = NULL, *slash;
	size_t cap = 0;
	FILE *f;

	c->path = xstrdup(path);
	p.dir = xstrdup(path);
	if ((slash = strrchr(p.dir, '/')) != NULL)
		*slash = '\0';
	else {
		free(p.dir);
		p.dir = NULL;
	}
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	while (getline(&line, &cap, f) != -1) {
		p.line++;
		if (conf_parse_line(&p, c, line, section, sizeof(section)) == -1) {
			fclose(f);
			goto fail;
		}
	}
	fclose(f);
	if (conf_apply_defaults(&p, c) == -1 || conf_check(&p, c) == -1)
		goto fail;
	free(line);
	free(p.dir);
	return c;
fail:
	free(line);
	free(p.dir);
	conf_free(c);
	return NULL;
}

void
conf_free(struct conf *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		void *field = (char *)c + k->offset;
		if (k->type == CONF_STR) {
			free(*(char **)field);
		} else if (k->type == CONF_LIST) {
			char **items = field;
			size_t n = *(size_t *)((char *)c + k->count_off);
			for (size_t j = 0; j < n; j++)
				free(items[j]);
		}
	}
	free(c->listen_host);
	free(c->public_host);
	free(c->path);
	free(c);
}

char *
conf_key_path(const struct conf *c, const char *name)
{
	if (name[0] == '/')
		return xstrdup(name);
	return xasprintf("%s/%s", c->keys_dir, name);
}

void
conf_keep_unreloadable(struct conf *next, const struct conf *cur)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		void *nf = (char *)next + k->offset;
		const void *cf = (const char *)cur + k->offset;
		bool differs;

		if (!(k->flags & CONF_NORELOAD))
			continue;
		if (k->type == CONF_STR) {
			differs = strcmp(*(char **)nf, *(char *const *)cf) != 0;
			if (differs) {
				free(*(char **)nf);
				*(char **)nf = xstrdup(*(char *const *)cf);
			}
		} else if (k->type == CONF_BOOL) {
			differs = *(bool *)nf != *(const bool *)cf;
			*(bool *)nf = *(const bool *)cf;
		} else {
			differs = *(int *)nf != *(const int *)cf;
			*(int *)nf = *(const int *)cf;
		}
		if (differs)
			log_warnx("reload: [%s] %s changed; it takes effect only after a restart",
			          k->section, k->name);
	}
	free(next->listen_host);
	next->listen_host = xstrdup(cur->listen_host);
	next->listen_port = cur->listen_port;
}
