/*
 * portal_student.h - what the files of a student's file share: the page
 * (portal_student.c), its learning-agreement part (portal_student_la.c)
 * and the staff decisions (portal_student_act.c).
 */
#ifndef PORTAL_STUDENT_H
#define PORTAL_STUDENT_H

#include "portal.h"

#define STUDENT_MAX_TEXT 4000 /* bytes of a comment or a signature field, as ewpctl */

/* A timestamp column as the portal shows it: YYYY-MM-DD HH:MM, UTC. */
#define STUDENT_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"

/* Text of the first element at a path of local names in an xml value. */
#define STUDENT_X(doc, path) "(xpath('" path "/text()', " doc "))[1]::text"
#define LN(n)                "*[local-name()=\"" n "\"]"

/*
 * Who may see a mobility, for a statement whose registration is `i`
 * (smile.inscription, LEFT JOINed) and whose parameters $2 and $3 come
 * from student_scope(): a gestionnaire limited to some composantes sees
 * only their students, a Référent only those they are referent of.
 */
#define STUDENT_SCOPE                                                                              \
	" AND ($2::bigint[] IS NULL OR i.composante_id = ANY ($2::bigint[]))"                      \
	" AND ($3::text IS NULL OR lower(i.referent_email) = lower($3::text))"

/*
 * The mobility id at the start of p->path_arg and what follows its '/'
 * ("" when nothing does) in *rest; -1 when the id is malformed.
 */
long student_path(const struct portal *p, const char **rest);
/* Fills params[1] and params[2] ($2, $3 of STUDENT_SCOPE) for the user. */
void student_scope(const struct portal *p, const char **params);
/* Whether two texts are equal, neither NULL. */
bool student_eq(const char *a, const char *b);
/* A <dt>/<dd> pair: the label's catalogue key and the value (a dash when NULL). */
void student_dl(struct portal *p, const char *key, const char *value);

/* POST /students/<id>/nomination and /students/<id>/la. */
void portal_student_decide(struct portal *p);

/* Queues the learning agreement's statements (3) for mobility id; returns
 * the index of the first. */
int student_la_queue(struct portal *p, const char *id);
/* The learning-agreement section, from the rows at index first. */
void student_la_render(struct portal *p, int first);

#endif
