/*
 * ctl.h - shared pieces of ewpctl's commands.
 *
 * Each command file exports one `ctl_<command>(ctl, argc, argv)` that
 * returns the process exit status (0 success, 1 failure, 2 usage).
 */
#ifndef CTL_H
#define CTL_H

#include "conf.h"

struct ctl {
	const char *conf_path;
	struct conf *conf; /* loaded on first use by ctl_conf() */
};

/* The configuration, loaded once; exits with a readable error if unusable. */
struct conf *ctl_conf(struct ctl *ctl);
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

#endif
