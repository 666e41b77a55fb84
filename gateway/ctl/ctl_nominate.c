/*
 * ctl_nominate.c - `ewpctl mobility nominate` and `ewpctl mobility
 * cancel`: the sending side of nominations, our outgoing students.
 *
 * nominate FILE reads one Outgoing Mobilities v3 student-mobility
 * element, checks it against ewp-schemas/omobility-nomination.xsd
 * (proposal-id and status may be left out; they are dropped when given,
 * as is the layout between elements), and hands it to
 * smile.omobility_nominate (sql/0006), which checks that the sending HEI
 * is ours, keeps the student and both HEIs of an existing omobility-id
 * unchanged, and creates or updates the mobility in one transaction; its
 * triggers set the proposal-id and queue the OMobility CNR to the
 * receiving HEI when what it sees changed. cancel ID sets the status to
 * cancelled (final).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <libxml/tree.h>

#include "ctl.h"
#include "xmalloc.h"
#include "xml.h"

#define NOM_SCHEMA    "omobility-nomination.xsd"
#define NOM_MAX_BYTES (1024 * 1024)
#define NOM_NS                                                                                     \
	"https://github.com/erasmus-without-paper/ewp-specs-api-omobilities/blob/stable-v3/"       \
	"endpoints/get-response.xsd"

static const char nominate_sql[] =
    "SELECT action, omobility_id, proposal_id, status, receiving_hei_id, notified"
    " FROM smile.omobility_nominate($1::xml)";

/* $1 omobility-id: ours (sent by the local HEI), status before, changed? */
static const char cancel_sql[] =
    "WITH o AS (SELECT m.id, m.status, m.receiving_hei_id FROM smile.mobility m"
    "  JOIN smile.etablissement e ON e.is_local AND e.schac_id = m.sending_hei_id"
    "  WHERE m.is_outgoing AND m.omobility_id = $1 FOR UPDATE OF m),"
    " u AS (UPDATE smile.mobility m SET status = 'cancelled' FROM o"
    "  WHERE m.id = o.id AND o.status <> 'cancelled' RETURNING m.id)"
    " SELECT o.status, o.receiving_hei_id, (SELECT count(*) FROM u) FROM o";

static int
nominate_usage(void)
{
	ctl_err("usage: ewpctl mobility nominate FILE.xml [--schemas DIR] [--conninfo STR]\n"
	        "       ewpctl mobility cancel OMOBILITY_ID [--conninfo STR]");
	return 2;
}

static PGconn *
nominate_connect(struct ctl *ctl, const char *conninfo)
{
	PGconn *db = PQconnectdb(conninfo ? conninfo : ctl_conf(ctl)->db_conninfo);

	if (PQstatus(db) != CONNECTION_OK) {
		ctl_err("mobility: cannot connect to the database: %s", PQerrorMessage(db));
		PQfinish(db);
		return NULL;
	}
	return db;
}

/* The file, whole, NUL-terminated; NULL after saying why. */
static char *
nominate_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data;

	if (f == NULL) {
		ctl_err("mobility nominate: cannot open %s: %m", path);
		return NULL;
	}
	data = xmalloc(NOM_MAX_BYTES + 1);
	*len = fread(data, 1, NOM_MAX_BYTES + 1, f);
	if (ferror(f) || *len > NOM_MAX_BYTES) {
		ctl_err("mobility nominate: %s: %s", path,
		        ferror(f) ? "read error" : "larger than 1 MiB");
		fclose(f);
		free(data);
		return NULL;
	}
	fclose(f);
	data[*len] = '\0';
	return data;
}

/* Whether n is a text node of white space only. */
static bool
nominate_blank(const xmlNode *n)
{
	return (n->type == XML_TEXT_NODE && xmlIsBlankNode(n)) || n->type == XML_COMMENT_NODE;
}

/*
 * The layout between elements (indentation, comments) goes, so that the
 * document kept is the same for the same nomination however the file is
 * laid out; text inside a leaf element is kept as written.
 */
static void
nominate_compact(xmlNode *el)
{
	bool has_elements = false;
	xmlNode *n, *next;

	for (n = el->children; n != NULL; n = n->next)
		if (n->type == XML_ELEMENT_NODE)
			has_elements = true;
	for (n = el->children; n != NULL; n = next) {
		next = n->next;
		if (n->type == XML_ELEMENT_NODE) {
			nominate_compact(n);
		} else if (has_elements && nominate_blank(n)) {
			xmlUnlinkNode(n);
			xmlFreeNode(n);
		}
	}
}

/* Drops what we set ourselves (proposal-id, status): ignored when given. */
static void
nominate_strip(xmlNode *root)
{
	xmlNode *nom = xml_child(root, NOM_NS, "nomination");
	xmlNode *status = xml_child(root, NOM_NS, "status");

	if (nom != NULL)
		xmlUnsetProp(nom, BAD_CAST "proposal-id");
	if (status != NULL) {
		xmlUnlinkNode(status);
		xmlFreeNode(status);
	}
	nominate_compact(root);
}

/*
 * The student-mobility element of FILE, checked against the schema and
 * serialised alone (UTF-8, its namespace declarations kept); NULL after
 * saying why.
 */
static char *
nominate_element(const char *path, const char *schemas)
{
	char err[1024], *schema, *data, *out = NULL;
	struct xsd *x;
	xmlDocPtr doc;
	xmlBufferPtr b;
	size_t len;

	if ((data = nominate_read(path, &len)) == NULL)
		return NULL;
	doc = xml_parse(data, len, NOM_MAX_BYTES, err, sizeof(err));
	free(data);
	if (doc == NULL) {
		ctl_err("mobility nominate: %s is not well-formed XML: %s", path, err);
		return NULL;
	}
	schema = xasprintf("%s/" NOM_SCHEMA, schemas);
	if ((x = xsd_load(schema, err, sizeof(err))) == NULL) {
		ctl_err("mobility nominate: cannot load the schema %s: %s (see --schemas or [ewp] "
		        "schema_dir)",
		        schema, err);
		goto out;
	}
	if (xsd_validate(x, doc, err, sizeof(err)) == -1) {
		ctl_err("mobility nominate: %s is not a student-mobility element of OMobilities v3 "
		        "(namespace https://github.com/erasmus-without-paper/ewp-specs-api-"
		        "omobilities/blob/stable-v3/endpoints/get-response.xsd) as %s describes "
		        "it:\n%s",
		        path, NOM_SCHEMA, err);
		goto out;
	}
	nominate_strip(xmlDocGetRootElement(doc));
	b = xmlBufferCreate();
	if (xmlNodeDump(b, doc, xmlDocGetRootElement(doc), 0, 0) < 0)
		ctl_err("mobility nominate: %s: cannot serialise the element", path);
	else
		out = xstrdup((const char *)xmlBufferContent(b));
	xmlBufferFree(b);
out:
	xsd_free(x);
	free(schema);
	xmlFreeDoc(doc);
	return out;
}

/* The database's reason, without the SQLSTATE decoration. */
static const char *
nominate_reason(PGresult *res, PGconn *db)
{
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	return m ? m : PQerrorMessage(db);
}

int
ctl_mobility_nominate(struct ctl *ctl, int argc, char **argv)
{
	const char *file = NULL, *conninfo = NULL, *schemas = NULL;
	char *element;
	PGconn *db;
	PGresult *res;
	int rc = 1;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
			conninfo = argv[++i];
		else if (strcmp(argv[i], "--schemas") == 0 && i + 1 < argc)
			schemas = argv[++i];
		else if (argv[i][0] != '-' && file == NULL)
			file = argv[i];
		else
			return nominate_usage();
	}
	if (file == NULL)
		return nominate_usage();
	if ((element = nominate_element(file, schemas ? schemas : ctl_conf(ctl)->schema_dir)) ==
	    NULL)
		return 1;
	if ((db = nominate_connect(ctl, conninfo)) == NULL) {
		free(element);
		return 1;
	}
	res =
	    PQexecParams(db, nominate_sql, 1, NULL, (const char *const[]){element}, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		ctl_err("mobility nominate: %s refused: %s", file, nominate_reason(res, db));
		goto out;
	}
	ctl_safe_result(res);
	if (strcmp(PQgetvalue(res, 0, 5), "t") != 0)
		printf("%s %s: proposal %s, status %s (nothing the receiving HEI sees changed: no "
		       "notification)\n",
		       PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
		       PQgetvalue(res, 0, 3));
	else
		printf("%s %s: proposal %s, status %s; OMobility CNR to %s queued\n",
		       PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
		       PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4));
	rc = 0;
out:
	PQclear(res);
	PQfinish(db);
	free(element);
	return rc;
}

int
ctl_mobility_cancel(struct ctl *ctl, int argc, char **argv)
{
	const char *id = NULL, *conninfo = NULL;
	PGconn *db;
	PGresult *res;
	int rc = 1;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
			conninfo = argv[++i];
		else if (argv[i][0] != '-' && id == NULL)
			id = argv[i];
		else
			return nominate_usage();
	}
	if (id == NULL)
		return nominate_usage();
	if ((db = nominate_connect(ctl, conninfo)) == NULL)
		return 1;
	res = PQexecParams(db, cancel_sql, 1, NULL, (const char *const[]){id}, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ctl_err("mobility cancel: %s", nominate_reason(res, db));
	} else if (PQntuples(res) == 0) {
		ctl_err("mobility cancel: no outgoing mobility of ours has omobility-id \"%s\"",
		        id);
	} else {
		ctl_safe_result(res);
		if (strcmp(PQgetvalue(res, 0, 2), "0") == 0)
			printf("%s was already cancelled: nothing changed\n", id);
		else
			printf("cancelled %s (was %s); OMobility CNR to %s queued\n", id,
			       PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
		rc = 0;
	}
	PQclear(res);
	PQfinish(db);
	return rc;
}
