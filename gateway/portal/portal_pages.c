/*
 * portal_pages.c - the portal's modules; each file lists its own pages
 * (method, path, privilege, handler) and the router searches them all.
 */
#include "portal.h"

extern const struct portal_page portal_home_pages[];
extern const struct portal_page portal_login_pages[];
extern const struct portal_page portal_student_pages[];
extern const struct portal_page portal_workflow_pages[];
extern const struct portal_page portal_partners_pages[];
extern const struct portal_page portal_keys_pages[];

const struct portal_page *const portal_modules[] = {
    portal_home_pages,
    portal_login_pages,
    portal_student_pages,
    portal_workflow_pages, /* admin area */
    portal_partners_pages, /* admin area */
    portal_keys_pages,     /* admin area */
    NULL,
};
