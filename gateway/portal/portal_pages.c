/*
 * portal_pages.c - the portal's modules; each file lists its own pages
 * (method, path, privilege, handler) and the router searches them all.
 */
#include "portal.h"

extern const struct portal_page portal_home_pages[];
extern const struct portal_page portal_login_pages[];
extern const struct portal_page portal_log_pages[];
extern const struct portal_page portal_jobs_pages[];
extern const struct portal_page portal_student_pages[];

/* One module a line, so that branches adding one merge cleanly. */
/* clang-format off */
const struct portal_page *const portal_modules[] = {
    portal_home_pages,
    portal_login_pages,
    portal_log_pages,
    portal_jobs_pages,
    portal_student_pages,
    NULL,
};
/* clang-format on */
