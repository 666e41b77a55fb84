/*
 * xmlw.h - writing XML responses into a struct buf.
 *
 * EWP responses are small, flat documents; writing them as text with
 * every value escaped is faster and easier to read than building a tree.
 * Element and namespace names passed here are trusted constants; only
 * text and attribute values come from data, and they are always escaped.
 */
#ifndef XMLW_H
#define XMLW_H

#include "buf.h"
#include "ewpd.h"

#define XMLW_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

/* Appends s with &, <, >, " and ' escaped; control characters dropped. */
int xmlw_escape(struct buf *b, const char *s) EWP_MUSTCHECK;
/* <name>escaped text</name> */
int xmlw_elem(struct buf *b, const char *name, const char *text) EWP_MUSTCHECK;
/* <name attr="escaped value">escaped text</name> */
int xmlw_elem_attr(struct buf *b, const char *name, const char *attr, const char *value,
                   const char *text) EWP_MUSTCHECK;

#endif
