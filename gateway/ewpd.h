/*
 * ewpd.h - limits shared by every module of the gateway.
 *
 * Every ceiling a peer can push against has a name here, so that the
 * library limits set at start-up (evhttp, libxml2, libcurl) and our own
 * parsers agree.
 */
#ifndef EWPD_H
#define EWPD_H

#define EWPD_VERSION "0.1.0"

#define EWP_MAX_HEADER_BYTES    (32 * 1024)        /* all request headers together */
#define EWP_MAX_HEADERS         100                /* header lines in one request */
#define EWP_MAX_BODY_BYTES      (4 * 1024 * 1024)  /* request body */
#define EWP_MAX_RESPONSE_BYTES  (16 * 1024 * 1024) /* partner response body */
#define EWP_MAX_PARAMS          1000               /* form parameters in one request */
#define EWP_MAX_XML_DEPTH       64                 /* element nesting accepted in XML */
#define EWP_MAX_CATALOGUE_BYTES (64 * 1024 * 1024)
#define EWP_MAX_FACTSHEET_BYTES (1024 * 1024) /* the [ewp] factsheet file */

#define EWP_DATE_WINDOW_SECS 300 /* |now - Date| accepted, spec minimum */

#if defined(__GNUC__)
#define EWP_MUSTCHECK    __attribute__((warn_unused_result))
#define EWP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define EWP_NORETURN     __attribute__((noreturn))
#else
#define EWP_MUSTCHECK
#define EWP_PRINTF(f, a)
#define EWP_NORETURN
#endif

#endif
