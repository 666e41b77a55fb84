/*
 * ctl_la_send.c - `ewpctl la create` and `ewpctl la propose`: the sending
 * side of an online learning agreement, for one of our outgoing
 * mobilities (smile.mobility.is_outgoing), served to the receiving HEI by
 * the OMobility LAs API (gateway/api/api_omobility_las.c).
 *
 *   la create OMOBILITY_ID FILE   FILE holds an `la` element (OMobility
 *       LAs get-response namespace) without versions: omobility-id, both
 *       HEIs with their contact persons, receiving-academic-year-id,
 *       student, dates, EQF level, ISCED-F code, language skill, URLs.
 *       Its identifiers must be the mobility's. Creates the LA, or
 *       replaces its header.
 *   la propose OMOBILITY_ID FILE  FILE holds a `changes-proposal` signed
 *       by the student and the sending HEI (components, signatures,
 *       optional changed student data). It supersedes the proposal in
 *       place. Without @id the id is computed: the SHA-256 (hex) of the
 *       element without @id in exclusive canonical form, comments and
 *       indentation dropped, so it changes iff the content does. An @id
 *       given is kept, but never for two contents.
 *
 * Both files are checked against [ewp] schema_dir/ewpctl-la-input.xsd
 * (or --schemas DIR) and written in one transaction by the SQL functions
 * of sql/0008_las_sending.sql, whose triggers queue the OLA CNR.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <libxml/c14n.h>
#include <libxml/tree.h>

#include "codec.h"
#include "ctl.h"
#include "xmalloc.h"
#include "xml.h"

#define LA_NS                                                                                      \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobility-las/blob/stable-v1/"     \
	"endpoints/get-response.xsd"
#define LA_XSI_NS    "http://www.w3.org/2001/XMLSchema-instance"
#define LA_INPUT_XSD "ewpctl-la-input.xsd"
#define LA_MAX_FILE  (4 * 1024 * 1024)

struct la_opts {
	const char *omobility_id;
	const char *file;
	const char *schemas;
	const char *conninfo;
};

static int
la_usage(const char *sub)
{
	ctl_err("usage: ewpctl la %s OMOBILITY_ID FILE.xml [--schemas DIR] [--conninfo STR]", sub);
	return 2;
}

/* 0 with o filled; 2 after printing the usage. */
static int
la_args(const char *sub, int argc, char **argv, struct la_opts *o)
{
	const char *pos[2] = {NULL, NULL};
	int npos = 0;

	memset(o, 0, sizeof(*o));
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--schemas") == 0 && i + 1 < argc)
			o->schemas = argv[++i];
		else if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
			o->conninfo = argv[++i];
		else if ((argv[i][0] == '-' && argv[i][1] != '\0') || npos == 2)
			return la_usage(sub);
		else
			pos[npos++] = argv[i];
	}
	if (npos != 2)
		return la_usage(sub);
	o->omobility_id = pos[0];
	o->file = pos[1];
	return 0;
}

static bool
la_blank(const xmlChar *s)
{
	for (; s && *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	return true;
}

/* Drops comments, PIs and indentation (white-space text beside elements). */
static void
la_tidy(xmlNode *n)
{
	bool has_elements = false;
	xmlNode *c, *next;

	for (c = n->children; c; c = c->next)
		has_elements = has_elements || c->type == XML_ELEMENT_NODE;
	for (c = n->children; c; c = next) {
		next = c->next;
		if (c->type == XML_COMMENT_NODE || c->type == XML_PI_NODE ||
		    (c->type == XML_TEXT_NODE && has_elements && la_blank(c->content))) {
			xmlUnlinkNode(c);
			xmlFreeNode(c);
		} else if (c->type == XML_ELEMENT_NODE) {
			la_tidy(c);
		}
	}
}

/* Reads and parses FILE; its root must be LA_NS:root. NULL after an error. */
static xmlDocPtr
la_read(const char *file, const char *root)
{
	char err[512];
	FILE *f = fopen(file, "rb");
	char *data;
	size_t len;
	xmlDocPtr doc;
	xmlNode *r, *c, *next;
	xmlNs *xsi;

	if (f == NULL) {
		ctl_err("la: cannot open %s: %m", file);
		return NULL;
	}
	data = xmalloc(LA_MAX_FILE + 1);
	len = fread(data, 1, LA_MAX_FILE + 1, f);
	fclose(f);
	if (len > LA_MAX_FILE) {
		free(data);
		ctl_err("la: %s is larger than %d bytes", file, LA_MAX_FILE);
		return NULL;
	}
	doc = xml_parse(data, len, LA_MAX_FILE, err, sizeof(err));
	free(data);
	if (doc == NULL) {
		ctl_err("la: %s is not well-formed XML: %s", file, err);
		return NULL;
	}
	r = xmlDocGetRootElement(doc);
	if (!xml_is(r, LA_NS, root)) {
		ctl_err("la: the root element of %s must be %s in namespace %s", file, root, LA_NS);
		xmlFreeDoc(doc);
		return NULL;
	}
	for (c = doc->children; c; c = next) {
		next = c->next;
		if (c->type == XML_COMMENT_NODE || c->type == XML_PI_NODE) {
			xmlUnlinkNode(c);
			xmlFreeNode(c);
		}
	}
	la_tidy(r);
	/* A schemaLocation hint names a file on the admin's machine. */
	if ((xsi = xmlSearchNsByHref(doc, r, (const xmlChar *)LA_XSI_NS)) != NULL)
		xmlUnsetNsProp(r, xsi, (const xmlChar *)"schemaLocation");
	return doc;
}

/* The document in exclusive canonical form, without comments (caller frees). */
static char *
la_c14n(xmlDocPtr doc)
{
	xmlChar *out = NULL;
	int n = xmlC14NDocDumpMemory(doc, NULL, XML_C14N_EXCLUSIVE_1_0, NULL, 0, &out);
	char *s;

	if (n < 0)
		return NULL;
	s = xstrndup((const char *)out, (size_t)n);
	xmlFree(out);
	return s;
}

static int
la_validate(const struct la_opts *o, struct ctl *ctl, xmlDocPtr doc)
{
	char err[1024];
	const char *dir = o->schemas ? o->schemas : ctl_conf(ctl)->schema_dir;
	char *path = xasprintf("%s/" LA_INPUT_XSD, dir);
	struct xsd *x = xsd_load(path, err, sizeof(err));
	int rc = 0;

	if (x == NULL) {
		ctl_err("la: cannot load the schema %s: %s (see --schemas)", path, err);
		rc = -1;
	} else if (xsd_validate(x, doc, err, sizeof(err)) == -1) {
		ctl_err("la: %s does not match the schema (%s): %s", o->file, LA_INPUT_XSD, err);
		rc = -1;
	}
	xsd_free(x);
	free(path);
	return rc;
}

/* Runs the SQL function; prints its answer. Exit status. */
static int
la_call(struct ctl *ctl, const struct la_opts *o, const char *sql, int n, const char *const *params,
        const char *what)
{
	PGconn *db = PQconnectdb(o->conninfo ? o->conninfo : ctl_conf(ctl)->db_conninfo);
	PGresult *res;
	int rc = 1;

	if (PQstatus(db) != CONNECTION_OK) {
		ctl_err("la: cannot connect to the database: %s", PQerrorMessage(db));
		PQfinish(db);
		return 1;
	}
	res = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		ctl_safe_result(res);
		printf("%s %s: %s\n", what, o->omobility_id, PQgetvalue(res, 0, 0));
		rc = 0;
	} else {
		const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);

		ctl_err("la: %s %s refused: %s%s%s", what, o->omobility_id,
		        PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
		            ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
		            : PQerrorMessage(db),
		        hint ? "\n  hint: " : "", hint ? hint : "");
	}
	PQclear(res);
	PQfinish(db);
	return rc;
}

static int
la_create(struct ctl *ctl, int argc, char **argv)
{
	struct la_opts o;
	xmlDocPtr doc;
	char *text;
	int rc;

	if ((rc = la_args("create", argc, argv, &o)) != 0)
		return rc;
	if ((doc = la_read(o.file, "la")) == NULL)
		return 1;
	if (la_validate(&o, ctl, doc) == -1) {
		xmlFreeDoc(doc);
		return 1;
	}
	text = la_c14n(doc);
	xmlFreeDoc(doc);
	if (text == NULL) {
		ctl_err("la: cannot serialise %s", o.file);
		return 1;
	}
	rc = la_call(ctl, &o, "SELECT smile.la_set_header($1, $2::xml)", 2,
	             (const char *const[]){o.omobility_id, text}, "learning agreement of");
	free(text);
	return rc;
}

static int
la_propose(struct ctl *ctl, int argc, char **argv)
{
	unsigned char digest[CODEC_SHA256_LEN];
	char hash[2 * CODEC_SHA256_LEN + 1];
	struct la_opts o;
	xmlDocPtr doc;
	xmlNode *root;
	xmlChar *given;
	char *canon, *id, *text;
	int rc;

	if ((rc = la_args("propose", argc, argv, &o)) != 0)
		return rc;
	if ((doc = la_read(o.file, "changes-proposal")) == NULL)
		return 1;
	root = xmlDocGetRootElement(doc);
	given = xmlGetNoNsProp(root, (const xmlChar *)"id");
	xmlUnsetProp(root, (const xmlChar *)"id");
	/* The hash of the content alone: the id is not part of it. */
	if ((canon = la_c14n(doc)) == NULL) {
		xmlFree(given);
		xmlFreeDoc(doc);
		ctl_err("la: cannot serialise %s", o.file);
		return 1;
	}
	codec_sha256(canon, strlen(canon), digest);
	codec_hex(digest, sizeof(digest), hash);
	free(canon);
	id = xstrdup(given && given[0] ? (const char *)given : hash);
	xmlFree(given);
	xmlSetProp(root, (const xmlChar *)"id", (const xmlChar *)id);
	if (la_validate(&o, ctl, doc) == -1 || (text = la_c14n(doc)) == NULL) {
		free(id);
		xmlFreeDoc(doc);
		return 1;
	}
	xmlFreeDoc(doc);
	rc = la_call(
	    ctl, &o, "SELECT smile.la_propose($1, $2::xml, $3, $4) || ' (proposal ' || $3 || ')'",
	    4, (const char *const[]){o.omobility_id, text, id, hash}, "changes proposal for");
	free(text);
	free(id);
	return rc;
}

int
ctl_la_create(struct ctl *ctl, int argc, char **argv)
{
	return la_create(ctl, argc, argv);
}

int
ctl_la_propose(struct ctl *ctl, int argc, char **argv)
{
	return la_propose(ctl, argc, argv);
}
