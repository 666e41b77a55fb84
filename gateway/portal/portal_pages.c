/*
 * portal_pages.c - the portal's modules; each file lists its own pages
 * (method, path, privilege, handler) and the router searches them all.
 */
#include "portal.h"

extern const struct portal_page portal_home_pages[];
extern const struct portal_page portal_login_pages[];
extern const struct portal_page portal_dashboard_pages[];
extern const struct portal_page portal_student_pages[];
extern const struct portal_page portal_log_pages[];
extern const struct portal_page portal_jobs_pages[];
extern const struct portal_page portal_workflow_pages[];
extern const struct portal_page portal_partners_pages[];
extern const struct portal_page portal_keys_pages[];

/* One module a line, so that branches adding one merge cleanly. */
const struct portal_page *const portal_modules[] = {
    portal_home_pages,      /* home, stylesheet, language */
    portal_login_pages,     /* sign-in, sign-out, single sign-on */
    portal_dashboard_pages, /* incoming students */
    portal_student_pages,   /* a student's file, decisions */
    portal_log_pages,       /* the EWP message log */
    portal_jobs_pages,      /* failed sendings, retry */
    portal_workflow_pages,  /* workflow configuration */
    portal_partners_pages,  /* partner HEIs */
    portal_keys_pages,      /* our published keys */
    NULL,
};
