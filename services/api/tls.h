/* TLS of the api's own listener (CHAT_API_TLS_CERT / _KEY), for deployments without a
 * terminating proxy: the certificate chain and key, checked by common/tls.c, turned into
 * GnuTLS credentials that libmicrohttpd asks for at every handshake
 * (MHD_OPTION_HTTPS_CERT_CALLBACK). A reload (SIGHUP) swaps them for new handshakes;
 * connections already established keep theirs; a bad pair is logged and the old one stays. */
#ifndef CHAT_API_TLS_H
#define CHAT_API_TLS_H

#include <stdbool.h>

#include "common/err.h"

/* GnuTLS priorities of the listener: TLS 1.2 and 1.3 only. */
#define API_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* Loads the pair (errors logged naming the variable). One TLS listener per process. */
chat_err_t api_tls_open(const char *cert_path, const char *key_path);

/* Reads the files again; true if the new pair serves new handshakes from now on. */
bool api_tls_reload(void);

/* True if the files changed since the last (re)load (chat_tls_files_stamp). */
bool api_tls_files_changed(void);

/* The gnutls_certificate_retrieve_function2 to hand to MHD_OPTION_HTTPS_CERT_CALLBACK. */
void *api_tls_callback(void);

/* Frees every pair loaded (after the listener stopped). */
void api_tls_close(void);

#endif
