/*
 * ctl_user.c - `ewpctl user`: the accounts of the staff portal
 * (smile.utilisateur, its roles and their composante limits).
 *
 * An account signs in through Shibboleth, or with a local password when
 * it has one (only its scrypt hash is stored, portal_password.c). Every
 * change is one transaction that also writes its ewp.audit_log row
 * (actor 'ewpctl', the operator's login in details.user); an unknown
 * user, role or composante is refused before anything is written.
 * Passwords come from standard input only, never from the command line,
 * and neither a password nor a hash is ever printed.
 *
 * Exit status: 0 done (or nothing to change), 1 refused or failed,
 * 2 usage.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "buf.h"
#include "ctl.h"
#include "portal/portal_password.h"
#include "xmalloc.h"

#define USER_MAX_ROLES       16
#define USER_MAX_COMPOSANTES 64
#define USER_RECENT_CHANGES  10 /* audit rows `user show` prints */

/* Options a subcommand takes (--conninfo and --help: all of them). */
enum user_opt {
	USER_OPT_NAME = 1 << 0,
	USER_OPT_EMAIL = 1 << 1,
	USER_OPT_ROLE = 1 << 2,
	USER_OPT_LANG = 1 << 3,
	USER_OPT_PASSWORD = 1 << 4,
	USER_OPT_COMPOSANTE = 1 << 5,
	USER_OPT_REMOVE = 1 << 6,
};

struct user_args {
	const char *sub;
	const char *pos[2];
	int npos;
	const char *name, *email, *lang, *conninfo;
	const char *roles[USER_MAX_ROLES];
	int nroles;
	const char *composantes[USER_MAX_COMPOSANTES];
	int ncomposantes;
	bool password_stdin, remove;
};

struct user_subcommand {
	const char *name;
	int (*run)(struct ctl *ctl, struct user_args *a);
	int npos;          /* positional arguments, all required */
	unsigned opts;     /* enum user_opt accepted */
	unsigned required; /* enum user_opt required */
	const char *usage; /* arguments after the subcommand's name */
	const char *help;  /* what it does, for --help */
};

/* The account, locked for the transaction. */
struct user_row {
	char *id, *username;
	bool active, has_password;
	long failed_logins;
	bool locked;
};

/* One value of an audit row's details; keys are literals of this file. */
struct user_detail {
	const char *key;
	const char *value; /* NULL: JSON null (an empty list for 'l') */
	char type;         /* 's' text, 'i' integer, 'b' boolean "t"/"f", 'l' lines -> array */
};

/* ---- database helpers ---------------------------------------------- */

/* Runs one statement; the result (terminal-safe), or NULL after a message. */
static PGresult *
user_exec(PGconn *db, const char *what, const char *sql, int n, const char *const *p)
{
	PGresult *res = PQexecParams(db, sql, n, NULL, p, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		ctl_mobility_db_err(what, db, res);
		PQclear(res);
		return NULL;
	}
	ctl_safe_result(res);
	return res;
}

/* A statement whose result is not needed; 0 or -1. */
static int
user_do(PGconn *db, const char *what, const char *sql, int n, const char *const *p)
{
	PGresult *res = user_exec(db, what, sql, n, p);

	PQclear(res);
	return res ? 0 : -1;
}

/* Who ran the command, for the audit log: $USER, $LOGNAME or the uid's name. */
static const char *
user_os_login(void)
{
	const char *u = getenv("USER");
	struct passwd *pw;

	if (u == NULL || u[0] == '\0')
		u = getenv("LOGNAME");
	if ((u == NULL || u[0] == '\0') && (pw = getpwuid(getuid())) != NULL)
		u = pw->pw_name;
	return u && u[0] ? u : "unknown";
}

/*
 * The audit row of a change on account `username`, in the transaction:
 * details = {"user": <operator's login>, <d[i].key>: <d[i].value>...}.
 */
static int
user_audit(PGconn *db, const char *what, const char *action, const char *username,
           const struct user_detail *d, int nd)
{
	const char *p[3 + 8];
	struct buf sql;
	int rc = 0;

	if (nd > 8)
		return -1;
	buf_init(&sql, 4096);
	p[0] = action;
	p[1] = username;
	p[2] = user_os_login();
	rc |= buf_addstr(&sql, "INSERT INTO ewp.audit_log (actor, action, object_type, object_id,"
	                       " details) VALUES ('ewpctl', $1, 'user', $2,"
	                       " jsonb_build_object('user', $3::text");
	for (int i = 0; i < nd; i++) {
		int n = i + 4;

		p[i + 3] = d[i].value;
		switch (d[i].type) {
		case 'i':
			rc |= buf_printf(&sql, ", '%s', $%d::bigint", d[i].key, n);
			break;
		case 'b':
			rc |= buf_printf(&sql, ", '%s', $%d::boolean", d[i].key, n);
			break;
		case 'l':
			rc |= buf_printf(
			    &sql,
			    ", '%s', coalesce(to_jsonb(string_to_array($%d::text, E'\\n')),"
			    " '[]'::jsonb)",
			    d[i].key, n);
			break;
		default:
			rc |= buf_printf(&sql, ", '%s', $%d::text", d[i].key, n);
		}
	}
	rc |= buf_addstr(&sql, "))");
	if (rc == 0)
		rc = user_do(db, what, buf_cstr(&sql), nd + 3, p);
	buf_free(&sql);
	return rc;
}

static PGconn *
user_begin(struct ctl *ctl, struct user_args *a, const char *what)
{
	PGconn *db = ctl_mobility_connect(ctl, a->conninfo);

	if (db && user_do(db, what, "BEGIN", 0, NULL) != 0) {
		PQfinish(db);
		return NULL;
	}
	return db;
}

static int
user_commit(PGconn *db, const char *what)
{
	return user_do(db, what, "COMMIT", 0, NULL);
}

static void
user_row_free(struct user_row *u)
{
	free(u->id);
	free(u->username);
}

/* Text given on the command line, for a message (terminal-safe copy). */
static char *
user_shown(const char *s)
{
	char *c = xstrdup(s);

	ctl_safe_text(c, strlen(c), false);
	return c;
}

/* The account named (case-insensitively), locked; 0, or -1 after a message. */
static int
user_find(PGconn *db, const char *what, const char *username, struct user_row *u)
{
	static const char sql[] =
	    "SELECT id, username, active, password_hash IS NOT NULL, failed_logins,"
	    " coalesce(locked_until > now(), false) FROM smile.utilisateur"
	    " WHERE lower(username) = lower($1) FOR UPDATE";
	PGresult *res = user_exec(db, what, sql, 1, &username);

	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		char *shown = user_shown(username);

		ctl_err("%s: no user \"%s\" (see ewpctl user list)", what, shown);
		free(shown);
		PQclear(res);
		return -1;
	}
	u->id = xstrdup(PQgetvalue(res, 0, 0));
	u->username = xstrdup(PQgetvalue(res, 0, 1));
	u->active = PQgetvalue(res, 0, 2)[0] == 't';
	u->has_password = PQgetvalue(res, 0, 3)[0] == 't';
	u->failed_logins = strtol(PQgetvalue(res, 0, 4), NULL, 10);
	u->locked = PQgetvalue(res, 0, 5)[0] == 't';
	PQclear(res);
	return 0;
}

/* Accents folded and case ignored, on both sides (whatever the locale). */
#define USER_FOLD(x)                                                                               \
	"translate(lower(" x "), 'ÀÂÄÇÉÈÊËÎÏÔÖÙÛÜàâäçéèêëîïôöùûü',"  \
	" 'aaaceeeeiioouuuaaaceeeeiioouuu')"

/*
 * The role called `name` (code or label): its id, code and whether it is
 * scopable. 0, or -1 after a message naming the roles there are.
 */
static int
user_role_find(PGconn *db, const char *what, const char *name, char **id, char **code,
               bool *scopable)
{
	static const char sql[] =
	    "SELECT id, code, scopable, code = $1 OR label = $1 FROM smile.role"
	    " WHERE " USER_FOLD("code") " = " USER_FOLD("$1") " OR " USER_FOLD(
	        "label") " = " USER_FOLD("$1") " ORDER BY 4 DESC, id";
	static const char all_sql[] =
	    "SELECT string_agg(CASE WHEN code = label THEN code ELSE code || ' (' || label || ')'"
	    " END, ', ' ORDER BY id) FROM smile.role";
	PGresult *res = user_exec(db, what, sql, 1, &name);
	char *shown;

	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1 || (PQntuples(res) > 1 && PQgetvalue(res, 0, 3)[0] == 't')) {
		*id = xstrdup(PQgetvalue(res, 0, 0));
		*code = xstrdup(PQgetvalue(res, 0, 1));
		*scopable = PQgetvalue(res, 0, 2)[0] == 't';
		PQclear(res);
		return 0;
	}
	shown = user_shown(name);
	if (PQntuples(res) > 1) {
		ctl_err("%s: role \"%s\" is ambiguous (%s or %s): give its exact code", what, shown,
		        PQgetvalue(res, 0, 1), PQgetvalue(res, 1, 1));
	} else {
		PQclear(res);
		res = user_exec(db, what, all_sql, 0, NULL);
		ctl_err("%s: no role \"%s\"; the roles are: %s", what, shown,
		        res ? PQgetvalue(res, 0, 0) : "?");
	}
	free(shown);
	PQclear(res);
	return -1;
}

/* Reads the one line of a password from standard input. */
static char *
user_read_line(const char *prompt)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO), echo_off = false;
	size_t cap = PORTAL_PASSWORD_MAX + 3, len = 0;
	char *line = xmalloc(cap);
	int c;
	bool nul = false;

	if (tty) {
		fputs(prompt, stderr);
		if (tcgetattr(STDIN_FILENO, &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
		}
	}
	while ((c = getchar()) != EOF && c != '\n') {
		if (c == '\0')
			nul = true;
		if (len < cap - 1)
			line[len++] = (char)c;
	}
	if (echo_off) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	if (nul) { /* a NUL would cut the password short: refused as a control */
		explicit_bzero(line, cap);
		line[0] = '\x01';
		line[1] = '\0';
	}
	if (len == 0 && c == EOF) {
		free(line);
		return NULL;
	}
	return line;
}

static void
user_wipe(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/*
 * A new password from standard input, checked against the policy and
 * hashed into hash; 0, or -1 after a message.
 */
static int
user_new_password(const char *what, char hash[PORTAL_PASSWORD_HASH_LEN])
{
	char *pw = user_read_line("New password: "), *again;
	const char *why;
	int rc = -1;

	if (pw == NULL) {
		ctl_err("%s: --password-stdin: no password on standard input", what);
		return -1;
	}
	if (!portal_password_acceptable(pw, &why)) {
		ctl_err("%s: password refused: %s; a password is %d to %d bytes of UTF-8 without "
		        "control characters",
		        what, why, PORTAL_PASSWORD_MIN, PORTAL_PASSWORD_MAX);
		goto out;
	}
	if (isatty(STDIN_FILENO)) {
		again = user_read_line("Again: ");
		if (again == NULL || strcmp(again, pw) != 0) {
			ctl_err("%s: the two passwords differ", what);
			user_wipe(again);
			goto out;
		}
		user_wipe(again);
	}
	if (portal_password_hash(pw, hash, PORTAL_PASSWORD_HASH_LEN) != 0) {
		ctl_err("%s: cannot hash the password (OpenSSL scrypt failed)", what);
		goto out;
	}
	rc = 0;
out:
	user_wipe(pw);
	return rc;
}

/* Revokes the account's open portal sessions; their number, or -1. */
static long
user_revoke_sessions(PGconn *db, const char *what, const char *id)
{
	PGresult *res = user_exec(db, what,
	                          "UPDATE ewp.portal_sessions SET revoked_at = now()"
	                          " WHERE utilisateur_id = $1 AND revoked_at IS NULL",
	                          1, &id);
	long n;

	if (res == NULL)
		return -1;
	n = strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return n;
}

/* Lines as a comma-separated list, in place, for a message. */
static const char *
user_commas(struct buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if (b->data[i] == '\n')
			b->data[i] = ',';
	return buf_cstr(b);
}

/* ---- add ------------------------------------------------------------ */

static int
user_add(struct ctl *ctl, struct user_args *a)
{
	static const char what[] = "user add";
	static const char exists_sql[] =
	    "SELECT username FROM smile.utilisateur WHERE lower(username) = lower($1)";
	static const char insert_sql[] =
	    "INSERT INTO smile.utilisateur (username, display_name, email, lang, password_hash)"
	    " VALUES ($1, $2, $3, $4, $5) RETURNING id";
	static const char roles_sql[] =
	    "INSERT INTO smile.utilisateur_role (utilisateur_id, role_id)"
	    " SELECT $1, id FROM smile.role WHERE is_default OR id = ANY ($2::bigint[])"
	    " RETURNING (SELECT code FROM smile.role r WHERE r.id = role_id)";
	char hash[PORTAL_PASSWORD_HASH_LEN] = "";
	struct buf ids, codes;
	PGconn *db = NULL;
	PGresult *res = NULL;
	char *id = NULL;
	int rc = 1;

	buf_init(&ids, 64 * 1024);
	buf_init(&codes, 64 * 1024);
	if (a->lang && strcmp(a->lang, "fr") != 0 && strcmp(a->lang, "en") != 0) {
		ctl_err("%s: --lang is fr or en", what);
		rc = 2;
		goto out;
	}
	for (const unsigned char *c = (const unsigned char *)a->pos[0]; *c; c++)
		if (*c <= ' ' || *c == 0x7f) {
			ctl_err("%s: a user name has no spaces or control characters", what);
			rc = 2;
			goto out;
		}
	if (a->name[strspn(a->name, " \t")] == '\0') {
		ctl_err("%s: --name must not be blank", what);
		rc = 2;
		goto out;
	}
	if (a->password_stdin && user_new_password(what, hash) != 0)
		goto out;
	if ((db = user_begin(ctl, a, what)) == NULL)
		goto out;
	if ((res = user_exec(db, what, exists_sql, 1, &a->pos[0])) == NULL)
		goto out;
	if (PQntuples(res) > 0) {
		ctl_err("%s: user \"%s\" already exists", what, PQgetvalue(res, 0, 0));
		goto out;
	}
	PQclear(res);
	res = NULL;
	if (buf_addstr(&ids, "{") != 0)
		goto out;
	for (int i = 0; i < a->nroles; i++) {
		char *rid, *code;
		bool scopable;

		if (user_role_find(db, what, a->roles[i], &rid, &code, &scopable) != 0)
			goto out;
		if (buf_printf(&ids, "%s%s", i ? "," : "", rid) != 0) {
			free(rid);
			free(code);
			goto out;
		}
		free(rid);
		free(code);
	}
	if (buf_addstr(&ids, "}") != 0)
		goto out;
	res = user_exec(
	    db, what, insert_sql, 5,
	    (const char *const[]){a->pos[0], a->name, a->email, a->lang, hash[0] ? hash : NULL});
	explicit_bzero(hash, sizeof(hash));
	if (res == NULL)
		goto out;
	id = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	res = user_exec(db, what, roles_sql, 2, (const char *const[]){id, buf_cstr(&ids)});
	if (res == NULL)
		goto out;
	for (int i = 0; i < PQntuples(res); i++)
		if (buf_printf(&codes, "%s%s", i ? "\n" : "", PQgetvalue(res, i, 0)) != 0)
			goto out;
	PQclear(res);
	res = NULL;
	{
		const struct user_detail d[] = {
		    {"display_name", a->name, 's'},
		    {"email", a->email, 's'},
		    {"lang", a->lang, 's'},
		    {"roles", buf_cstr(&codes), 'l'},
		    {"local_password", a->password_stdin ? "t" : "f", 'b'},
		};

		if (user_audit(db, what, "user.add", a->pos[0], d, 5) != 0 ||
		    user_commit(db, what) != 0)
			goto out;
	}
	printf("user %s added (id %s), roles %s; %s\n", a->pos[0], id, user_commas(&codes),
	       a->password_stdin ? "local password set" : "no local password: single sign-on only");
	rc = 0;
out:
	explicit_bzero(hash, sizeof(hash));
	PQclear(res);
	PQfinish(db);
	buf_free(&ids);
	buf_free(&codes);
	free(id);
	return rc;
}

/* ---- passwd ---------------------------------------------------------- */

static int
user_passwd(struct ctl *ctl, struct user_args *a)
{
	static const char what[] = "user passwd";
	char hash[PORTAL_PASSWORD_HASH_LEN] = "", nrev[24];
	struct user_row u = {0};
	PGconn *db = NULL;
	long revoked;
	int rc = 1;

	if (user_new_password(what, hash) != 0)
		return 1;
	if ((db = user_begin(ctl, a, what)) == NULL || user_find(db, what, a->pos[0], &u) != 0)
		goto out;
	if (user_do(db, what,
	            "UPDATE smile.utilisateur SET password_hash = $2, failed_logins = 0,"
	            " locked_until = NULL WHERE id = $1",
	            2, (const char *const[]){u.id, hash}) != 0)
		goto out;
	explicit_bzero(hash, sizeof(hash));
	if ((revoked = user_revoke_sessions(db, what, u.id)) < 0)
		goto out;
	snprintf(nrev, sizeof(nrev), "%ld", revoked);
	{
		const struct user_detail d[] = {
		    {"had_password", u.has_password ? "t" : "f", 'b'},
		    {"was_locked", u.locked ? "t" : "f", 'b'},
		    {"sessions_revoked", nrev, 'i'},
		};

		if (user_audit(db, what, "user.passwd", u.username, d, 3) != 0 ||
		    user_commit(db, what) != 0)
			goto out;
	}
	printf("user %s: password %s, failed logins reset, %ld open session%s revoked%s\n",
	       u.username, u.has_password ? "changed" : "set", revoked, revoked == 1 ? "" : "s",
	       u.active ? "" : " (the account stays disabled: ewpctl user enable)");
	rc = 0;
out:
	explicit_bzero(hash, sizeof(hash));
	PQfinish(db);
	user_row_free(&u);
	return rc;
}

/* ---- role ------------------------------------------------------------ */

static int
user_id_cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/*
 * The composantes of our institution named by --composante: their ids as
 * an array literal (sorted, no duplicates) in ids, their codes one a line
 * in codes. 0, or -1 after a message.
 */
static int
user_composantes(PGconn *db, const char *what, struct user_args *a, struct buf *ids,
                 struct buf *codes)
{
	static const char sql[] =
	    "SELECT c.id, c.code, c.code = $1 FROM smile.composante c"
	    " JOIN smile.etablissement e ON e.id = c.etablissement_id AND e.is_local"
	    " WHERE lower(c.code) = lower($1) ORDER BY 3 DESC, c.id";
	long long found[USER_MAX_COMPOSANTES];
	int n = 0;

	for (int i = 0; i < a->ncomposantes; i++) {
		PGresult *res = user_exec(db, what, sql, 1, &a->composantes[i]);
		char *shown;

		if (res == NULL)
			return -1;
		if (PQntuples(res) == 1 ||
		    (PQntuples(res) > 1 && PQgetvalue(res, 0, 2)[0] == 't')) {
			found[n++] = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			PQclear(res);
			continue;
		}
		shown = user_shown(a->composantes[i]);
		if (PQntuples(res) == 0)
			ctl_err(
			    "%s: no composante \"%s\" in our institution (smile.composante code "
			    "of the is_local etablissement)",
			    what, shown);
		else
			ctl_err(
			    "%s: composante \"%s\" is ambiguous (%s or %s): give its exact code",
			    what, shown, PQgetvalue(res, 0, 1), PQgetvalue(res, 1, 1));
		free(shown);
		PQclear(res);
		return -1;
	}
	qsort(found, (size_t)n, sizeof(found[0]), user_id_cmp);
	if (buf_addstr(ids, "{") != 0)
		return -1;
	for (int i = 0; i < n; i++)
		if ((i == 0 || found[i] != found[i - 1]) &&
		    buf_printf(ids, "%s%lld", ids->len > 1 ? "," : "", found[i]) != 0)
			return -1;
	if (buf_addstr(ids, "}") != 0)
		return -1;
	{
		PGresult *res =
		    user_exec(db, what,
		              "SELECT coalesce(string_agg(code, E'\\n' ORDER BY code), '')"
		              " FROM smile.composante WHERE id = ANY ($1::bigint[])",
		              1, (const char *const[]){buf_cstr(ids)});

		if (res == NULL || buf_addstr(codes, PQgetvalue(res, 0, 0)) != 0) {
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	return 0;
}

static int
user_role(struct ctl *ctl, struct user_args *a)
{
	static const char what[] = "user role";
	static const char state_sql[] =
	    "SELECT EXISTS (SELECT 1 FROM smile.utilisateur_role WHERE utilisateur_id = $1"
	    "  AND role_id = $2),"
	    " (SELECT coalesce(array_agg(composante_id ORDER BY composante_id)::text, '{}')"
	    "  FROM smile.utilisateur_composante WHERE utilisateur_id = $1 AND role_id = $2),"
	    " (SELECT coalesce(string_agg(c.code, E'\\n' ORDER BY c.code), '')"
	    "  FROM smile.utilisateur_composante uc JOIN smile.composante c"
	    "  ON c.id = uc.composante_id WHERE uc.utilisateur_id = $1 AND uc.role_id = $2)";
	struct user_row u = {0};
	struct buf ids, codes, previous;
	char *role_id = NULL, *role_code = NULL;
	bool scopable, held;
	PGconn *db = NULL;
	PGresult *res = NULL;
	int rc = 1;

	buf_init(&ids, 64 * 1024);
	buf_init(&codes, 64 * 1024);
	buf_init(&previous, 64 * 1024);
	if (a->remove && a->ncomposantes > 0) {
		ctl_err("%s: --remove takes the whole role away and has no --composante; to change "
		        "its composantes, grant it again with the new --composante list",
		        what);
		rc = 2;
		goto out;
	}
	if ((db = user_begin(ctl, a, what)) == NULL || user_find(db, what, a->pos[0], &u) != 0 ||
	    user_role_find(db, what, a->pos[1], &role_id, &role_code, &scopable) != 0)
		goto out;
	if (a->ncomposantes > 0 && !scopable) {
		ctl_err("%s: role %s cannot be limited to composantes (only a scopable role can, "
		        "such as gestionnaire): nothing changed",
		        what, role_code);
		goto out;
	}
	if (a->ncomposantes > 0 && user_composantes(db, what, a, &ids, &codes) != 0)
		goto out;
	if (a->ncomposantes == 0 && buf_addstr(&ids, "{}") != 0)
		goto out;
	res = user_exec(db, what, state_sql, 2, (const char *const[]){u.id, role_id});
	if (res == NULL)
		goto out;
	held = PQgetvalue(res, 0, 0)[0] == 't';
	if (buf_addstr(&previous, PQgetvalue(res, 0, 2)) != 0)
		goto out;
	if (a->remove ? !held : (held && strcmp(PQgetvalue(res, 0, 1), buf_cstr(&ids)) == 0)) {
		printf("user %s: %s role %s: unchanged\n", u.username,
		       a->remove ? "does not hold" : "already holds", role_code);
		rc = 0;
		goto out;
	}
	PQclear(res);
	res = NULL;
	if (a->remove) {
		if (user_do(db, what,
		            "DELETE FROM smile.utilisateur_role WHERE utilisateur_id = $1"
		            " AND role_id = $2",
		            2, (const char *const[]){u.id, role_id}) != 0)
			goto out;
	} else if (user_do(db, what,
	                   "INSERT INTO smile.utilisateur_role (utilisateur_id, role_id)"
	                   " VALUES ($1, $2) ON CONFLICT DO NOTHING",
	                   2, (const char *const[]){u.id, role_id}) != 0 ||
	           user_do(db, what,
	                   "DELETE FROM smile.utilisateur_composante WHERE utilisateur_id = $1"
	                   " AND role_id = $2",
	                   2, (const char *const[]){u.id, role_id}) != 0 ||
	           user_do(db, what,
	                   "INSERT INTO smile.utilisateur_composante (utilisateur_id, role_id,"
	                   " composante_id) SELECT $1, $2, unnest($3::bigint[])",
	                   3, (const char *const[]){u.id, role_id, buf_cstr(&ids)}) != 0) {
		goto out;
	}
	{
		const struct user_detail d[] = {
		    {"change", a->remove ? "remove" : "grant", 's'},
		    {"role", role_code, 's'},
		    {"composantes", a->remove ? NULL : buf_cstr(&codes), 'l'},
		    {"previously_held", held ? "t" : "f", 'b'},
		    {"previous_composantes", buf_cstr(&previous), 'l'},
		};

		if (user_audit(db, what, "user.role", u.username, d, 5) != 0 ||
		    user_commit(db, what) != 0)
			goto out;
	}
	if (a->remove)
		printf("user %s: role %s removed\n", u.username, role_code);
	else if (a->ncomposantes > 0)
		printf("user %s: role %s %s, limited to %s\n", u.username, role_code,
		       held ? "kept" : "granted", user_commas(&codes));
	else
		printf("user %s: role %s %s%s\n", u.username, role_code, held ? "kept" : "granted",
		       scopable ? ", every composante" : "");
	rc = 0;
out:
	PQclear(res);
	PQfinish(db);
	user_row_free(&u);
	free(role_id);
	free(role_code);
	buf_free(&ids);
	buf_free(&codes);
	buf_free(&previous);
	return rc;
}

/* ---- disable, enable, unlock ----------------------------------------- */

static int
user_set_active(struct ctl *ctl, struct user_args *a, bool active)
{
	const char *what = active ? "user enable" : "user disable";
	struct user_row u = {0};
	PGconn *db = NULL;
	long revoked = 0;
	char nrev[24];
	int rc = 1;

	if ((db = user_begin(ctl, a, what)) == NULL || user_find(db, what, a->pos[0], &u) != 0)
		goto out;
	if (!active && (revoked = user_revoke_sessions(db, what, u.id)) < 0)
		goto out;
	if (u.active == active && revoked == 0) {
		printf("user %s: already %s\n", u.username, active ? "enabled" : "disabled");
		rc = 0;
		goto out;
	}
	if (user_do(db, what, "UPDATE smile.utilisateur SET active = $2 WHERE id = $1", 2,
	            (const char *const[]){u.id, active ? "t" : "f"}) != 0)
		goto out;
	snprintf(nrev, sizeof(nrev), "%ld", revoked);
	{
		const struct user_detail d[] = {{"sessions_revoked", nrev, 'i'}};

		if (user_audit(db, what, active ? "user.enable" : "user.disable", u.username, d,
		               active ? 0 : 1) != 0 ||
		    user_commit(db, what) != 0)
			goto out;
	}
	if (active)
		printf("user %s: enabled\n", u.username);
	else
		printf("user %s: disabled, %ld open session%s revoked\n", u.username, revoked,
		       revoked == 1 ? "" : "s");
	rc = 0;
out:
	PQfinish(db);
	user_row_free(&u);
	return rc;
}

static int
user_disable(struct ctl *ctl, struct user_args *a)
{
	return user_set_active(ctl, a, false);
}

static int
user_enable(struct ctl *ctl, struct user_args *a)
{
	return user_set_active(ctl, a, true);
}

static int
user_unlock(struct ctl *ctl, struct user_args *a)
{
	static const char what[] = "user unlock";
	static const char sql[] =
	    "UPDATE smile.utilisateur u SET failed_logins = 0, locked_until = NULL"
	    " FROM smile.utilisateur old WHERE u.id = $1 AND old.id = u.id"
	    " AND (old.failed_logins <> 0 OR old.locked_until IS NOT NULL)"
	    " RETURNING old.failed_logins, old.locked_until::text";
	struct user_row u = {0};
	PGconn *db = NULL;
	PGresult *res = NULL;
	int rc = 1;

	if ((db = user_begin(ctl, a, what)) == NULL || user_find(db, what, a->pos[0], &u) != 0)
		goto out;
	if ((res = user_exec(db, what, sql, 1, (const char *const[]){u.id})) == NULL)
		goto out;
	if (PQntuples(res) == 0) {
		printf("user %s: not locked, no failed logins: unchanged\n", u.username);
		rc = 0;
		goto out;
	}
	{
		const struct user_detail d[] = {
		    {"previous_failed_logins", PQgetvalue(res, 0, 0), 'i'},
		    {"previous_locked_until", PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1),
		     's'},
		};

		if (user_audit(db, what, "user.unlock", u.username, d, 2) != 0 ||
		    user_commit(db, what) != 0)
			goto out;
	}
	printf("user %s: unlocked (%s failed login%s cleared%s)\n", u.username,
	       PQgetvalue(res, 0, 0), strcmp(PQgetvalue(res, 0, 0), "1") == 0 ? "" : "s",
	       u.locked ? ", lock lifted" : "");
	rc = 0;
out:
	PQclear(res);
	PQfinish(db);
	user_row_free(&u);
	return rc;
}

/* ---- list, show ------------------------------------------------------ */

/* Columns a UTF-8 string takes (code points; no wide characters here). */
static size_t
user_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static int
user_list(struct ctl *ctl, struct user_args *a)
{
	static const char sql[] =
	    "SELECT u.username, u.display_name, coalesce(u.email, '-'),"
	    " coalesce((SELECT string_agg(r.code, ',' ORDER BY r.id) FROM smile.utilisateur_role ur"
	    "  JOIN smile.role r ON r.id = ur.role_id WHERE ur.utilisateur_id = u.id), '-'),"
	    " coalesce((SELECT string_agg(r.code || ':' || l.codes, ' ' ORDER BY r.id)"
	    "  FROM (SELECT uc.role_id, string_agg(c.code, ',' ORDER BY c.code) AS codes"
	    "   FROM smile.utilisateur_composante uc JOIN smile.composante c"
	    "   ON c.id = uc.composante_id WHERE uc.utilisateur_id = u.id GROUP BY uc.role_id) l"
	    "  JOIN smile.role r ON r.id = l.role_id), '-'),"
	    " CASE WHEN u.active THEN 'yes' ELSE 'no' END,"
	    " CASE WHEN u.locked_until > now() THEN 'until '"
	    "  || to_char(u.locked_until, 'YYYY-MM-DD HH24:MI') ELSE 'no' END,"
	    " CASE WHEN u.password_hash IS NULL THEN 'no (SSO)' ELSE 'yes' END,"
	    " coalesce(to_char(u.last_login_at, 'YYYY-MM-DD HH24:MI'), 'never')"
	    " FROM smile.utilisateur u ORDER BY lower(u.username)";
	static const char *const heads[] = {"USERNAME", "NAME",   "E-MAIL",   "ROLES",     "LIMITS",
	                                    "ACTIVE",   "LOCKED", "PASSWORD", "LAST LOGIN"};
	enum { NCOL = sizeof(heads) / sizeof(heads[0]) };
	size_t width[NCOL];
	PGconn *db;
	PGresult *res;

	if ((db = ctl_mobility_connect(ctl, a->conninfo)) == NULL)
		return 1;
	if ((res = user_exec(db, "user list", sql, 0, NULL)) == NULL) {
		PQfinish(db);
		return 1;
	}
	for (int c = 0; c < NCOL; c++) {
		width[c] = strlen(heads[c]);
		for (int r = 0; r < PQntuples(res); r++) {
			ctl_safe_text(PQgetvalue(res, r, c), strlen(PQgetvalue(res, r, c)), false);
			if (user_width(PQgetvalue(res, r, c)) > width[c])
				width[c] = user_width(PQgetvalue(res, r, c));
		}
	}
	for (int r = -1; r < PQntuples(res); r++)
		for (int c = 0; c < NCOL; c++) {
			const char *v = r < 0 ? heads[c] : PQgetvalue(res, r, c);

			if (c == NCOL - 1)
				printf("%s\n", v);
			else
				printf("%s%*s", v, (int)(width[c] - user_width(v) + 2), "");
		}
	if (PQntuples(res) == 0)
		printf("(no users)\n");
	PQclear(res);
	PQfinish(db);
	return 0;
}

static int
user_show(struct ctl *ctl, struct user_args *a)
{
	static const char what[] = "user show";
	static const char sql[] =
	    "SELECT username, display_name, coalesce(email, '-'),"
	    " coalesce(lang || '', 'fr (default)'), CASE WHEN active THEN 'yes' ELSE 'no' END,"
	    " CASE WHEN password_hash IS NULL THEN 'none: single sign-on only'"
	    "  ELSE 'local (scrypt ' || split_part(password_hash, '$', 3) || ')' END,"
	    " failed_logins::text,"
	    " CASE WHEN locked_until > now() THEN 'until ' || locked_until::text ELSE 'no' END,"
	    " created_at::text, coalesce(last_login_at::text, 'never'),"
	    " (SELECT count(*) FROM ewp.portal_sessions s WHERE s.utilisateur_id = u.id"
	    "  AND s.revoked_at IS NULL AND s.expires_at > now())::text, id"
	    " FROM smile.utilisateur u WHERE lower(username) = lower($1)";
	static const char roles_sql[] =
	    "SELECT r.code, r.label, r.scopable, (SELECT string_agg(c.code, ', ' ORDER BY c.code)"
	    "  FROM smile.utilisateur_composante uc JOIN smile.composante c"
	    "  ON c.id = uc.composante_id WHERE uc.utilisateur_id = ur.utilisateur_id"
	    "  AND uc.role_id = ur.role_id)"
	    " FROM smile.utilisateur_role ur JOIN smile.role r ON r.id = ur.role_id"
	    " WHERE ur.utilisateur_id = $1 ORDER BY r.id";
	static const char audit_sql[] =
	    "SELECT to_char(created_at, 'YYYY-MM-DD HH24:MI:SS'), action, actor,"
	    " coalesce(details->>'user', '') FROM ewp.audit_log"
	    " WHERE object_type = 'user' AND object_id = $1 ORDER BY id DESC LIMIT $2";
	static const char *const labels[] = {"username", "name",       "e-mail",        "language",
	                                     "active",   "password",   "failed logins", "locked",
	                                     "created",  "last login", "open sessions"};
	char limit[16];
	PGconn *db;
	PGresult *res, *roles = NULL, *audit = NULL;
	int rc = 1;

	if ((db = ctl_mobility_connect(ctl, a->conninfo)) == NULL)
		return 1;
	if ((res = user_exec(db, what, sql, 1, &a->pos[0])) == NULL)
		goto out;
	if (PQntuples(res) != 1) {
		char *shown = user_shown(a->pos[0]);

		ctl_err("%s: no user \"%s\" (see ewpctl user list)", what, shown);
		free(shown);
		goto out;
	}
	snprintf(limit, sizeof(limit), "%d", USER_RECENT_CHANGES);
	if ((roles = user_exec(db, what, roles_sql, 1,
	                       (const char *const[]){PQgetvalue(res, 0, 11)})) == NULL ||
	    (audit = user_exec(db, what, audit_sql, 2,
	                       (const char *const[]){PQgetvalue(res, 0, 0), limit})) == NULL)
		goto out;
	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		printf("%-14s %s\n", labels[i], PQgetvalue(res, 0, (int)i));
	printf("roles\n");
	for (int r = 0; r < PQntuples(roles); r++) {
		const char *code = PQgetvalue(roles, r, 0), *label = PQgetvalue(roles, r, 1);

		printf("  %s", code);
		if (strcmp(code, label) != 0)
			printf(" (%s)", label);
		if (!PQgetisnull(roles, r, 3))
			printf(": limited to %s", PQgetvalue(roles, r, 3));
		else if (PQgetvalue(roles, r, 2)[0] == 't')
			printf(": every composante");
		printf("\n");
	}
	if (PQntuples(roles) == 0)
		printf("  (none)\n");
	printf("recent changes\n");
	for (int r = 0; r < PQntuples(audit); r++)
		printf("  %s  %-12s by %s%s%s\n", PQgetvalue(audit, r, 0), PQgetvalue(audit, r, 1),
		       PQgetvalue(audit, r, 2), PQgetvalue(audit, r, 3)[0] ? " as " : "",
		       PQgetvalue(audit, r, 3));
	if (PQntuples(audit) == 0)
		printf("  (none)\n");
	rc = 0;
out:
	PQclear(res);
	PQclear(roles);
	PQclear(audit);
	PQfinish(db);
	return rc;
}

/* ---- dispatch -------------------------------------------------------- */

static const struct user_subcommand user_subcommands[] = {
    {"add", user_add, 1,
     USER_OPT_NAME | USER_OPT_EMAIL | USER_OPT_ROLE | USER_OPT_LANG | USER_OPT_PASSWORD,
     USER_OPT_NAME,
     "USERNAME --name \"Display Name\" [--email E] [--role ROLE]... [--lang fr|en]"
     " [--password-stdin]",
     "new account with the default role (Standard) and each ROLE; without\n"
     "--password-stdin it has no local password (single sign-on only)"},
    {"passwd", user_passwd, 1, USER_OPT_PASSWORD, USER_OPT_PASSWORD, "USERNAME --password-stdin",
     "set the local password; clears the lockout and revokes the user's\n"
     "open portal sessions"},
    {"role", user_role, 2, USER_OPT_COMPOSANTE | USER_OPT_REMOVE, 0,
     "USERNAME ROLE [--composante CODE]... [--remove]",
     "grant ROLE (code or label, any case, accents optional); --composante\n"
     "limits a scopable role (gestionnaire) to those composantes of our\n"
     "institution, replacing its previous limit (none given: every\n"
     "composante); --remove takes the role away"},
    {"disable", user_disable, 1, 0, 0, "USERNAME",
     "no more logins of any kind; revokes the open sessions"},
    {"enable", user_enable, 1, 0, 0, "USERNAME", "allow logins again"},
    {"unlock", user_unlock, 1, 0, 0, "USERNAME",
     "lift the lockout after failed passwords (failed logins back to 0)"},
    {"list", user_list, 0, 0, 0, "", "every account: roles, limits, state, last login"},
    {"show", user_show, 1, 0, 0, "USERNAME",
     "one account: fields, roles and limits, open sessions, recent changes"},
    {NULL, NULL, 0, 0, 0, NULL, NULL}, /* end */
};

static void
user_help(FILE *out, const struct user_subcommand *only)
{
	if (only == NULL)
		fprintf(out,
		        "usage: ewpctl user SUBCOMMAND [arguments] [--conninfo STR]\n\n"
		        "Accounts of the staff portal (smile.utilisateur). USERNAME is matched\n"
		        "without regard to case. Every change is recorded in ewp.audit_log in\n"
		        "the same transaction; an unknown user, role or composante changes\n"
		        "nothing (exit 1).\n\n");
	for (const struct user_subcommand *s = user_subcommands; s->name != NULL; s++) {
		if (only != NULL && s != only)
			continue;
		fprintf(out, "  ewpctl user %s%s%s\n", s->name, s->usage[0] ? " " : "", s->usage);
		fputs("      ", out);
		for (const char *h = s->help; *h; h++)
			if (*h == '\n')
				fputs("\n      ", out);
			else
				fputc(*h, out);
		fputc('\n', out);
	}
	if (only == NULL || only->opts & USER_OPT_PASSWORD)
		fprintf(out,
		        "\nA password is read from standard input, one line (never from the\n"
		        "command line): %d to %d bytes of UTF-8 without control characters.\n"
		        "On a terminal it is asked twice, without echo. For instance:\n"
		        "  printf '%%s\\n' \"$PW\" | ewpctl user passwd alice --password-stdin\n",
		        PORTAL_PASSWORD_MIN, PORTAL_PASSWORD_MAX);
	if (only == NULL)
		fprintf(
		    out,
		    "\nRoles: Standard (default), gestionnaire (Gestionnaire, scopable),\n"
		    "Référent, admin_fonctionnel (Administrateur fonctionnel),\n"
		    "administrateur (Administrateur technique), guest (Invité), Etudiant.\n"
		    "The portal locks an account for 15 minutes after 5 wrong passwords\n"
		    "in a row; `ewpctl user unlock` lifts it. See docs/accounts.md.\n"
		    "--conninfo STR: the database (default: [database] of the configuration).\n");
}

static int
user_usage(const struct user_subcommand *s)
{
	fprintf(stderr, "usage: ewpctl user %s%s%s [--conninfo STR]\n", s->name,
	        s->usage[0] ? " " : "", s->usage);
	return 2;
}

/* Options of argv into a; 0, 1 (help printed) or 2 after a usage message. */
static int
user_parse(const struct user_subcommand *s, int argc, char **argv, struct user_args *a)
{
	static const struct {
		const char *name;
		unsigned opt;
	} valued[] = {
	    {"--name", USER_OPT_NAME},
	    {"--email", USER_OPT_EMAIL},
	    {"--role", USER_OPT_ROLE},
	    {"--lang", USER_OPT_LANG},
	    {"--composante", USER_OPT_COMPOSANTE},
	};
	unsigned seen = 0;

	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		unsigned opt = 0;

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			user_help(stdout, s);
			return 1;
		}
		if (strcmp(arg, "--conninfo") == 0) {
			if (v == NULL)
				return user_usage(s);
			a->conninfo = v;
			i++;
			continue;
		}
		if (strcmp(arg, "--password-stdin") == 0)
			opt = USER_OPT_PASSWORD;
		else if (strcmp(arg, "--remove") == 0)
			opt = USER_OPT_REMOVE;
		for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]); k++)
			if (strcmp(arg, valued[k].name) == 0)
				opt = valued[k].opt;
		if (opt == 0) {
			if (arg[0] == '-' && arg[1] != '\0') {
				ctl_err("user %s: unknown option %s", s->name, arg);
				return user_usage(s);
			}
			if (a->npos == s->npos) {
				ctl_err("user %s: too many arguments", s->name);
				return user_usage(s);
			}
			a->pos[a->npos++] = arg;
			continue;
		}
		if (!(s->opts & opt)) {
			ctl_err("user %s does not take %s", s->name, arg);
			return user_usage(s);
		}
		if (opt == USER_OPT_PASSWORD || opt == USER_OPT_REMOVE) {
			*(opt == USER_OPT_PASSWORD ? &a->password_stdin : &a->remove) = true;
			seen |= opt;
			continue;
		}
		if (v == NULL) {
			ctl_err("user %s: %s wants a value", s->name, arg);
			return user_usage(s);
		}
		i++;
		if (opt == USER_OPT_ROLE || opt == USER_OPT_COMPOSANTE) {
			bool role = opt == USER_OPT_ROLE;
			int *n = role ? &a->nroles : &a->ncomposantes;

			if (*n == (role ? USER_MAX_ROLES : USER_MAX_COMPOSANTES)) {
				ctl_err("user %s: at most %d %s", s->name,
				        role ? USER_MAX_ROLES : USER_MAX_COMPOSANTES, arg);
				return 2;
			}
			(role ? a->roles : a->composantes)[(*n)++] = v;
		} else if (seen & opt) {
			ctl_err("user %s: %s given twice", s->name, arg);
			return user_usage(s);
		} else {
			*(opt == USER_OPT_NAME    ? &a->name
			  : opt == USER_OPT_EMAIL ? &a->email
			                          : &a->lang) = v;
		}
		seen |= opt;
	}
	if (a->npos < s->npos || (seen & s->required) != s->required)
		return user_usage(s);
	return 0;
}

int
ctl_user(struct ctl *ctl, int argc, char **argv)
{
	struct user_args a = {0};
	int rc;

	if (argc < 1) {
		user_help(stderr, NULL);
		return 2;
	}
	if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0 ||
	    strcmp(argv[0], "help") == 0) {
		user_help(stdout, NULL);
		return 0;
	}
	for (const struct user_subcommand *s = user_subcommands; s->name != NULL; s++) {
		if (strcmp(s->name, argv[0]) != 0)
			continue;
		a.sub = s->name;
		if ((rc = user_parse(s, argc - 1, argv + 1, &a)) != 0)
			return rc == 1 ? 0 : rc;
		return s->run(ctl, &a);
	}
	ctl_err("unknown subcommand \"user %s\" (try ewpctl user --help)", argv[0]);
	return 2;
}
