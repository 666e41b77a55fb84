/*
 * ctl.h - shared pieces of ewpctl's commands.
 *
 * Each command file exports one `ctl_<command>(ctl, argc, argv)` that
 * returns the process exit status (0 success, 1 failure, 2 usage).
 */
#ifndef CTL_H
#define CTL_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "conf.h"

struct ctl {
	const char *conf_path;
	struct conf *conf; /* loaded on first use by ctl_conf() */
};

/* The configuration, loaded once; exits with a readable error if unusable. */
struct conf *ctl_conf(struct ctl *ctl);
/*
 * Makes text from the database or the network safe for a terminal, in
 * place and at the same length: C0 controls (but \n and \t when
 * keep_lines), DEL and the C1 controls U+0080-U+009F become '?', so that
 * no partner or scanner can send escape sequences to an admin's screen.
 */
void ctl_safe_text(char *s, size_t len, bool keep_lines);
/* The same for every value of a result. */
void ctl_safe_result(PGresult *res);
/* Prints "ewpctl: <message>" on stderr. */
void ctl_err(const char *fmt, ...) EWP_PRINTF(1, 2);

int ctl_keys(struct ctl *ctl, int argc, char **argv);
int ctl_call(struct ctl *ctl, int argc, char **argv);
int ctl_registry(struct ctl *ctl, int argc, char **argv);
int ctl_migrate(struct ctl *ctl, int argc, char **argv);
int ctl_import(struct ctl *ctl, int argc, char **argv);
int ctl_sync(struct ctl *ctl, int argc, char **argv);
int ctl_log(struct ctl *ctl, int argc, char **argv);
int ctl_jobs(struct ctl *ctl, int argc, char **argv);
int ctl_mobility(struct ctl *ctl, int argc, char **argv);
int ctl_la(struct ctl *ctl, int argc, char **argv);
/* ctl_nominate.c: our outgoing nominations */
int ctl_mobility_nominate(struct ctl *ctl, int argc, char **argv);
int ctl_mobility_cancel(struct ctl *ctl, int argc, char **argv);
/* mobility subcommands (ctl_mobility_*.c) */
int ctl_mobility_sync(struct ctl *ctl, int argc, char **argv);
/* ctl_la_send.c: our outgoing students' learning agreements */
int ctl_la_create(struct ctl *ctl, int argc, char **argv);
int ctl_la_propose(struct ctl *ctl, int argc, char **argv);

/* Decisions on partners' nominations and LAs (ctl_decide.c, ctl_mobility_show.c). */
int ctl_mobility_list(struct ctl *ctl, int argc, char **argv);
int ctl_mobility_show(struct ctl *ctl, int argc, char **argv);
int ctl_mobility_approve(struct ctl *ctl, int argc, char **argv);
int ctl_mobility_reject(struct ctl *ctl, int argc, char **argv);
int ctl_la_show(struct ctl *ctl, int argc, char **argv);
int ctl_la_approve(struct ctl *ctl, int argc, char **argv);
int ctl_la_comment(struct ctl *ctl, int argc, char **argv);
/* The database of conninfo (NULL: the configuration's); NULL after an error message. */
PGconn *ctl_mobility_connect(struct ctl *ctl, const char *conninfo);
/* "ewpctl: <what>: <the server's message, first line>", terminal-safe. */
void ctl_mobility_db_err(const char *what, PGconn *db, PGresult *res);
int ctl_mobility_dates(struct ctl *ctl, int argc, char **argv);
/* ctl_user.c: accounts of the staff portal */
int ctl_user(struct ctl *ctl, int argc, char **argv);

#endif
