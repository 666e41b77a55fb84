/*
 * api_db.h - what the APIs served from the SMILE core share: parameter
 * checks, one asynchronous query per request, and turning its rows into
 * XML.
 *
 * A handler checks its parameters, then calls api_db_query() and returns;
 * the request is finished from the query's callback (503 when the database
 * is unreachable, 500 on any other database error, else the API's done
 * function writes the answer). rq->d->inflight already counts the request,
 * so a draining worker waits for it.
 */
#ifndef API_DB_H
#define API_DB_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "buf.h"
#include "ewpd.h"

struct req;

/* Finishes rq from a successful result (res lent for the call only). */
typedef void api_db_done(struct req *rq, PGresult *res);

/* Queues sql for rq; the request is answered in every case. */
void api_db_query(struct req *rq, const char *sql, int nparams, const char *const *params,
                  api_db_done *done);

/*
 * The distinct values of parameter `name`, in first-seen order, as a
 * PostgreSQL text[] literal ("{\"a\",\"b\"}", every element quoted and
 * escaped) in *out (caller frees). Returns how many distinct values there
 * are; max + 1 (and *out NULL) as soon as there are more than max; -1 when
 * the literal would be too large.
 */
/* An EWP identifier: 1 to 64 printable ASCII characters (common-types.xsd). */
bool api_db_valid_id(const char *s);

/*
 * Finishes a request whose XML was written into b: 200 with it when rc is
 * 0, else 500 saying the `what` response outgrew its buffer. Frees b.
 */
void api_db_send(struct req *rq, struct buf *b, int rc, const char *what);

int api_db_param_array(const struct req *rq, const char *name, int max, char **out) EWP_MUSTCHECK;
/* The text[] literal of n strings into *out (caller frees); -1 when too large. */
int api_db_literal(const char *const *v, int n, char **out) EWP_MUSTCHECK;

/*
 * Writes the rows of an "element stream" query: columns
 * (group, ..., elem, attr, attr_value, text) where the last four are at
 * column `first`. A new `wrapper` element opens whenever group changes;
 * rows whose group is "0" are markers and produce nothing. Each row is
 * <elem attr="attr_value">text</elem> (the attribute left out when NULL),
 * except that an elem "+name" opens <name> and "-name" closes it, for the
 * nested types (addresses, contacts). Element and attribute names come
 * from our own SQL, values are escaped.
 */
int api_db_write_rows(struct buf *b, PGresult *res, int first, const char *wrapper) EWP_MUSTCHECK;

/*
 * Row producers shared by the APIs, for a CTE `cte` with columns id (the
 * owner's key, also the group) and pos. Columns as above.
 */

/* street-address (part) and mailing-address (part + 1), namespace prefix a. */
#define API_DB_ADDRESS_ROWS(cte, owner, part)                                                      \
	"SELECT " cte ".id, " cte ".pos, " part " + (ad.kind = 'mailing')::int, s.k, s.e, NULL,"   \
	" NULL, s.t FROM " cte " JOIN smile.address ad ON ad." owner " = " cte ".id"               \
	" CROSS JOIN LATERAL ("                                                                    \
	"  SELECT 0::bigint AS k, '+a:' || ad.kind || '-address' AS e, '' AS t"                    \
	"  UNION ALL SELECT 100 + o, 'a:recipientName', x"                                         \
	"   FROM unnest(ad.recipient_names) WITH ORDINALITY AS u (x, o)"                           \
	"  UNION ALL SELECT 200 + o, 'a:addressLine', x"                                           \
	"   FROM unnest(ad.lines) WITH ORDINALITY AS u (x, o)"                                     \
	"  UNION ALL SELECT 300, 'a:buildingNumber', ad.building_number"                           \
	"  UNION ALL SELECT 301, 'a:buildingName', ad.building_name"                               \
	"  UNION ALL SELECT 302, 'a:streetName', ad.street_name"                                   \
	"  UNION ALL SELECT 303, 'a:unit', ad.unit"                                                \
	"  UNION ALL SELECT 304, 'a:floor', ad.floor"                                              \
	"  UNION ALL SELECT 305, 'a:postOfficeBox', ad.post_office_box"                            \
	"  UNION ALL SELECT 400 + o, 'a:deliveryPointCode', x"                                     \
	"   FROM unnest(ad.delivery_point_codes) WITH ORDINALITY AS u (x, o)"                      \
	"  UNION ALL SELECT 500, 'a:postalCode', ad.postal_code"                                   \
	"  UNION ALL SELECT 501, 'a:locality', ad.locality"                                        \
	"  UNION ALL SELECT 502, 'a:region', ad.region"                                            \
	"  UNION ALL SELECT 503, 'a:country', ad.country::text"                                    \
	"  UNION ALL SELECT 999, '-a:' || ad.kind || '-address', '') AS s (k, e, t)"

/* contact* (prefix c, phone numbers prefix p), in position order. */
#define API_DB_CONTACT_ROWS(cte, owner, part)                                                      \
	"SELECT " cte ".id, " cte ".pos, " part ", ct.n * 100000 + s.k, s.e, s.a, s.v, s.t"        \
	" FROM " cte " JOIN (SELECT c.*, row_number() OVER (PARTITION BY c." owner                 \
	"  ORDER BY c.position, c.id) AS n FROM smile.contact c"                                   \
	"  WHERE c." owner " IN (SELECT id FROM " cte ")) ct ON ct." owner " = " cte ".id"         \
	" CROSS JOIN LATERAL ("                                                                    \
	"  SELECT 0::bigint AS k, '+c:contact' AS e, NULL::text AS a, NULL::text AS v, '' AS t"    \
	"  UNION ALL SELECT 1000 + o, 'c:contact-name', 'xml:lang', j ->> 'lang', j ->> 'name'"    \
	"   FROM jsonb_array_elements(ct.names) WITH ORDINALITY AS u (j, o)"                       \
	"  UNION ALL SELECT 20000, 'c:person-given-names', NULL, NULL, ct.given_names"             \
	"  UNION ALL SELECT 21000, 'c:person-family-name', NULL, NULL, ct.family_name"             \
	"  UNION ALL SELECT 30000 + 3 * o + d.k, d.e, NULL, NULL, d.t"                             \
	"   FROM unnest(ct.phones) WITH ORDINALITY AS u (x, o) CROSS JOIN LATERAL (VALUES"         \
	"    (0, '+p:phone-number', ''), (1, 'p:e164', x::text), (2, '-p:phone-number', ''))"      \
	"    AS d (k, e, t)"                                                                       \
	"  UNION ALL SELECT 40000 + o, 'c:email', NULL, NULL, x::text"                             \
	"   FROM unnest(ct.emails) WITH ORDINALITY AS u (x, o)"                                    \
	"  UNION ALL SELECT 50000 + o, 'c:role-description', 'xml:lang', j ->> 'lang',"            \
	"   j ->> 'name' FROM jsonb_array_elements(ct.role_descriptions) WITH ORDINALITY AS u "    \
	"(j, o)"                                                                                   \
	"  UNION ALL SELECT 99999, '-c:contact', NULL, NULL, '') AS s (k, e, a, v, t)"

/* Namespace declarations for the prefixes above, on the root element. */
#define API_DB_XMLNS                                                                               \
	" xmlns:a=\"https://github.com/erasmus-without-paper/ewp-specs-types-address/tree/"        \
	"stable-v1\""                                                                              \
	" xmlns:c=\"https://github.com/erasmus-without-paper/ewp-specs-types-contact/tree/"        \
	"stable-v1\""                                                                              \
	" xmlns:p=\"https://github.com/erasmus-without-paper/ewp-specs-types-phonenumber/tree/"    \
	"stable-v1\""

#endif
