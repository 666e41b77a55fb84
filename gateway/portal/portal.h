/*
 * portal.h - the staff portal served by ewpd under /portal/.
 *
 * One request is one struct portal. The router (portal.c) finds the page,
 * loads the session from its cookie, checks the page's privilege and, for
 * a POST, the CSRF token; only then does it call the page's handler. A
 * handler never sees a request it is not allowed to answer.
 *
 * A handler queues its SQL with portal_sql() (values always as $n
 * parameters) and calls portal_run(): the statements run in one
 * transaction (read-only for a GET, so every list on a page comes from the
 * same snapshot), their rows are copied into p->rows[i], and the page's
 * `done` callback renders them. Writes happen only in POST handlers, which
 * answer with a 303 redirect (post/redirect/get) and a flash message.
 *
 * HTML is written only through the h_*() functions: h_fmt()'s %s escapes
 * its argument, so a value from a partner or a user can never become
 * markup. Interface strings come from the catalogue (portal_i18n.c):
 * T(p, "key") in the user's language, French by default.
 */
#ifndef PORTAL_H
#define PORTAL_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "ewpd.h"
#include "form.h"

struct req;

/* What a signed-in user may do; a role grants a set of these. */
enum portal_priv {
	PRIV_NONE = 0,          /* any signed-in user (home, sign-out) */
	PRIV_STUDENTS = 1 << 0, /* dashboard, students' files (read) */
	PRIV_DECIDE = 1 << 1,   /* approve / reject nominations and LAs */
	PRIV_PARTNERS = 1 << 2, /* partners page */
	PRIV_LOG = 1 << 3,      /* EWP message log, outbox jobs */
	PRIV_RETRY = 1 << 4,    /* retry a failed outbox job */
	PRIV_WORKFLOW = 1 << 5, /* workflow configuration */
	PRIV_KEYS = 1 << 6,     /* keys page */
	PRIV_REFERENT = 1 << 7, /* files of the students one is referent of */
};

#define PORTAL_MAX_SQL 8 /* statements one page may run */

/* A copy of one statement's rows, valid until the request ends. */
struct portal_rows {
	int nrows, ncols;
	char **names;  /* column names */
	char **cells;  /* nrows * ncols, row-major; NULL cell = SQL NULL */
	long affected; /* rows an UPDATE/DELETE/INSERT touched (PQcmdTuples) */
};

/* The signed-in user, as the session query found them. */
struct portal_user {
	long id;
	char *username, *display_name, *email;
	unsigned privs;    /* enum portal_priv bits */
	char *roles;       /* role labels, comma-separated, for display */
	char *composantes; /* PostgreSQL array literal of composante ids the
	                      user is limited to, or NULL: all of them */
};

struct portal;
typedef void portal_done(struct portal *p);

struct portal {
	struct req *rq;
	struct ewpd *d;
	const struct portal_page *page;
	struct portal_user user; /* id 0: nobody signed in */
	const char *lang;        /* "fr" or "en" */
	const char *csrf;        /* this session's token for forms (hex) */
	char csrf_buf[65];
	char *token;              /* the session (or sign-in form) cookie's token */
	bool lang_chosen;         /* the language cookie decided p->lang */
	bool session_ended;       /* a session cookie came, its session is over */
	bool session_unavailable; /* the database could not be asked */
	struct form *params;      /* query (GET) or body (POST) parameters */
	struct form own_params;
	const char *path_arg; /* the part after the page's prefix, e.g. "42" */
	char *flash;          /* message shown once, from the redirect */
	struct buf out;       /* the HTML being written */
	bool out_full;        /* it passed its ceiling: a 500 is sent */
	int status;           /* of portal_page_end(); 0: 200 */
	int not_found_status; /* 404 or 405 when no page matched */
	/* statements of portal_run() and their results */
	int nsql;
	char *sql[PORTAL_MAX_SQL];
	char **sql_params[PORTAL_MAX_SQL];
	int sql_nparams[PORTAL_MAX_SQL];
	struct portal_rows rows[PORTAL_MAX_SQL];
	char *db_err;         /* "SSSSS: message" when the transaction failed */
	char *db_err_message; /* the server's primary message alone */
	portal_done *done;
	void *data; /* the page's own state */
};

/*
 * One page or action. A path ending in '/' is a prefix: what follows it
 * is p->path_arg ("/students/" serves /portal/students/42/la with
 * path_arg "42/la"); otherwise the path must match exactly.
 */
struct portal_page {
	const char *method; /* "GET" or "POST" */
	const char *path;   /* under /portal, e.g. "/students/" */
	unsigned priv;      /* any one of these bits; PRIV_NONE: any signed-in user */
	bool anonymous;     /* served without a session (sign-in, stylesheet) */
	void (*handle)(struct portal *p);
};

/* Each module's pages, ending with an entry whose method is NULL;
 * portal_pages.c lists the modules. */
extern const struct portal_page *const portal_modules[];

/* Entry from server.c for every path under /portal. */
void portal_dispatch(struct req *rq);

/* ---- data ---------------------------------------------------------- */

/* Queues a statement for portal_run(); its rows land in p->rows[index]. */
int portal_sql(struct portal *p, const char *sql, int nparams, const char *const *params);
/*
 * Runs the queued statements in one transaction (read-only unless
 * `write`), then calls done(p). On a database error p->db_err is set and
 * nothing was written; portal_db_failed() answers the common cases.
 */
void portal_run(struct portal *p, bool write, portal_done *done);
/* Forgets the statements and their rows, for a second portal_run(). */
void portal_sql_reset(struct portal *p);
/* Queues an ewp.audit_log row for the signed-in user's action (e.g.
 * "decision.approve", "mobility", "42"): part of the same transaction. */
void portal_audit(struct portal *p, const char *action, const char *object_type,
                  const char *object_id);
/* Cell by column name; NULL for SQL NULL or an unknown column. */
const char *portal_cell(const struct portal_rows *r, int row, const char *col);
/* Answers an error page when p->db_err is set (503 if unreachable). */
bool portal_db_failed(struct portal *p);

/* ---- parameters ---------------------------------------------------- */

/* First value of a parameter, or NULL. */
const char *portal_param(const struct portal *p, const char *name);
/* path_arg as a positive id, or -1. */
long portal_arg_id(const struct portal *p);

/* ---- HTML ---------------------------------------------------------- */

/* Appends trusted markup as is (literals only, never data). */
void h_raw(struct portal *p, const char *markup);
/* Appends text, escaped for element content and attribute values. */
void h_text(struct portal *p, const char *text);
/*
 * printf-like: fmt is trusted markup; %s arguments are escaped (NULL
 * prints nothing), %d %ld %lld %u %zu print numbers, %% a percent sign.
 * Nothing else is understood.
 */
void h_fmt(struct portal *p, const char *fmt, ...);
/* <!doctype html>, head, header with the navigation for the user's
 * privileges, the flash message and <main>; title is a catalogue key. */
void portal_page_begin(struct portal *p, const char *title_key);
/* </main>, footer; sends 200 with the strict CSP. */
void portal_page_end(struct portal *p);
/* The hidden CSRF input every form carries. */
void h_csrf(struct portal *p);
/* Text in the user's language for a catalogue key (the key itself when
 * the catalogue lacks it, so a missing string shows and a test sees it). */
const char *T(const struct portal *p, const char *key);

/* ---- answers ------------------------------------------------------- */

/* 303 to /portal + path, with a flash message (catalogue key or NULL). */
void portal_redirect(struct portal *p, const char *path, const char *flash_key);
/* An error page: 400 bad input, 403 refused, 404 unknown, 409 conflict. */
void portal_error(struct portal *p, int status, const char *message);
/* A column of an export: the rows' column and its title (catalogue key). */
struct portal_column {
	const char *col;
	const char *title_key;
};
/*
 * When the request asks for ?format=csv or ?format=txt, sends the rows as
 * that download (name.csv / name.txt) and returns true; 400 for another
 * format. False without a format: the caller renders its page.
 */
bool portal_export(struct portal *p, const struct portal_rows *r, const struct portal_column *cols,
                   size_t ncols, const char *name);
/* A download (CSV or text/plain): body sent as is, with a file name. */
void portal_download(struct portal *p, const char *content_type, const char *filename,
                     const char *body, size_t len);

#endif
