/*
 * api.h - the table of EWP APIs served by ewpd.
 *
 * Each API file exports one const struct api_entry. The dispatcher in
 * api.c knows only the table: it matches the path, checks the method,
 * runs the HTTP Signature verification when the entry requires it, parses
 * the parameters and calls the handler. The manifest is built from the
 * same table, so an API is advertised exactly when it is served.
 */
#ifndef API_H
#define API_H

#include <stdbool.h>

#include "buf.h"
#include "conf.h"
#include "metrics.h"

struct req;

#define API_GET  0x1
#define API_POST 0x2

struct api_entry {
	const char *name;    /* element name in the manifest, e.g. "echo" */
	const char *ns;      /* namespace of its manifest entry */
	const char *version; /* version we implement, x.y.z */
	const char *path;    /* served at public_url + path */
	int methods;         /* API_GET | API_POST */
	bool signed_only;    /* refuse anonymous callers (httpsig client auth) */
	bool xml_body;       /* a POST body is an XML document, not form parameters */
	enum metrics_api metric;
	/* Called with authenticated caller and parsed parameters. */
	void (*handle)(struct req *rq);
	/* Writes the <name ...>...</name> manifest entry. */
	int (*manifest)(const struct api_entry *e, const struct conf *c, struct buf *out);
	/* NULL: always served. Otherwise the API is served and advertised
	 * only when this says so for the configuration (e.g. its data is set). */
	bool (*enabled)(const struct conf *c);
};

extern const struct api_entry *const api_table[];

/* Whether e is served (and in the manifest) under configuration c. */
bool api_enabled(const struct api_entry *e, const struct conf *c);

/* n decimal digits at s into *out; false if any is not a digit (date parsing). */
bool api_digits(const char *s, size_t n, int *out);
/*
 * Whether s is an xs:dateTime with a time part, as modified_since must be:
 * YYYY-MM-DDThh:mm:ss[.f+][Z|(+|-)hh:mm], fields in range.
 */
bool api_datetime_ok(const char *s);

/* Routes a request; finishes it in every case. */
void api_dispatch(struct req *rq);
/* Writes the http-security element we publish for signed APIs. */
int api_manifest_http_security(struct buf *out) EWP_MUSTCHECK;
/* <name xmlns version><http-security/><url>public_url + path</url>: the
 * start every entry shares; the caller adds its limits and </name>. */
int api_manifest_head(const struct api_entry *e, const struct conf *c,
                      struct buf *out) EWP_MUSTCHECK;

extern const struct api_entry api_echo_entry;
extern const struct api_entry api_discovery_entry;
extern const struct api_entry api_institutions_entry;
extern const struct api_entry api_ounits_entry;
extern const struct api_entry api_course_replication_entry;
extern const struct api_entry api_courses_entry;
extern const struct api_entry api_factsheet_entry;
extern const struct api_entry api_omobility_cnr_v1_entry;
extern const struct api_entry api_omobility_cnr_v2_entry;
extern const struct api_entry api_omobility_la_cnr_entry;
extern const struct api_entry api_omobility_la_cnr_stats_entry;
extern const struct api_entry api_omobilities_get_entry;
extern const struct api_entry api_omobilities_index_entry;
extern const struct api_entry api_omobilities_update_entry;
extern const struct api_entry api_las_get_entry;
extern const struct api_entry api_las_index_entry;
extern const struct api_entry api_las_update_entry;
extern const struct api_entry api_las_stats_entry;
extern const struct api_entry api_imobilities_entry;
extern const struct api_entry api_imobility_cnr_v2_entry;

#endif
