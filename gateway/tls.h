/*
 * tls.h - the server TLS context (certificate chain and key from files).
 *
 * Rebuilt on reload; connections already open keep the context they
 * started with (OpenSSL reference-counts it).
 */
#ifndef TLS_H
#define TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* TLS 1.2+ server context; NULL with a reason in err. */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errlen);

#endif
