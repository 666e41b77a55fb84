/*
 * portal_int.h - what the portal's own framework files share (router,
 * session, HTML, catalogue). Pages use portal.h only.
 */
#ifndef PORTAL_INT_H
#define PORTAL_INT_H

#include <stdbool.h>

#include "portal.h"

#define PORTAL_TOKEN_BYTES 32 /* random bytes of a session token */
#define PORTAL_TOKEN_LEN   43 /* their base64url form, no padding */
#define PORTAL_CSRF_LEN    64 /* hex of an HMAC-SHA256 */

/* Cookie names: the __Host- prefix (Secure, Path=/, no Domain) under TLS. */
#define PORTAL_COOKIE_TLS  "__Host-ewp-session"
#define PORTAL_COOKIE      "ewp-session"
#define PORTAL_PRE_TLS     "__Host-ewp-pre"
#define PORTAL_PRE         "ewp-pre"
#define PORTAL_LANG_COOKIE "ewp-lang"

/* Reads the catalogue directory (again only when it changed). */
void portal_i18n_load(const char *dir);
/* The text of key in lang, or NULL. */
const char *portal_i18n_find(const char *lang, const char *key);

/* The stylesheet, built from gateway/portal/portal.css. */
extern const char portal_css[];

/* Value of cookie `name` in the request, copied into out; false if absent. */
bool portal_cookie(const struct portal *p, const char *name, char *out, size_t outlen);
/* Adds a Set-Cookie (HttpOnly, SameSite=Strict, Path=/, Secure under TLS);
 * max_age < 0: a session cookie, 0: delete it. */
void portal_set_cookie(struct portal *p, const char *name, const char *value, long max_age);
const char *portal_session_cookie_name(const struct portal *p);
const char *portal_pre_cookie_name(const struct portal *p);

/* A new random token (base64url) into out[PORTAL_TOKEN_LEN + 1]. */
void portal_new_token(char *out);
/* SHA-256 of a token as \x-hex bytea text for a parameter. */
void portal_token_hash(const char *token, char *out, size_t outlen);
/* The CSRF value bound to a token: hex HMAC-SHA256(token, "csrf"). */
void portal_csrf_for(const char *token, char *out);

/* Loads the session of the request, then calls next (user.id 0: none). */
void portal_session_load(struct portal *p, portal_done *next);
/* Creates a session for user id in the same transaction as the page's
 * statements (queued with portal_sql), setting the cookie. */
void portal_session_start(struct portal *p, long user_id);
/* The client's address as text (for SSO trust and the audit log). */
const char *portal_client_addr(const struct portal *p);

/* Frees the request's portal state (after the reply). */
void portal_free(struct portal *p);
/* Sends the buffered HTML with the security headers; frees p. */
void portal_send(struct portal *p, int status);

#endif
