/*
 * portal_pwcheck.h - password checks off the event loop.
 *
 * One scrypt costs about 85 ms of CPU. Run on the loop, every sign-in
 * attempt (anyone can make one) would stall the EWP APIs that worker
 * serves; so the check runs on a thread of its own and the loop carries
 * on. At most PORTAL_PWCHECK_MAX checks run at once per worker, which also
 * bounds the CPU and memory (32 MiB each) a flood of attempts can take.
 */
#ifndef PORTAL_PWCHECK_H
#define PORTAL_PWCHECK_H

#include <stdbool.h>

#include "portal.h"

#define PORTAL_PWCHECK_MAX 2

typedef void portal_pwcheck_done(struct portal *p, bool ok);

/*
 * Checks password against stored (NULL: no account to check, the same
 * work is spent and the answer is false); done(p, ok) runs later on the
 * loop. -1, and done never runs, when PORTAL_PWCHECK_MAX checks are
 * already running or no thread could be started: the caller answers 503.
 */
int portal_pwcheck(struct portal *p, const char *password, const char *stored,
                   portal_pwcheck_done *done) EWP_MUSTCHECK;

#endif
