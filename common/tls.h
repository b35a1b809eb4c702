/* TLS certificates of the services that serve TLS themselves (the gateway over lws/OpenSSL,
 * the api over libmicrohttpd/GnuTLS): a certificate chain and its private key read from PEM
 * files, checked before anything uses them (readable, parseable, the key matches the leaf,
 * the leaf not expired), so that a bad pair is refused at start and at a reload (SIGHUP)
 * with a log line naming the variable, the file and the reason, and a failed reload keeps
 * the certificate in use. chat_tls_files_stamp tells when the files changed (the services
 * also reload then, without a signal). The PEM text stays available for GnuTLS; OpenSSL contexts
 * take the parsed objects (chat_tls_cert_apply). */
#ifndef CHAT_COMMON_TLS_H
#define CHAT_COMMON_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CHAT_TLS_FILE_MAX (1024 * 1024) /* larger certificate or key files are refused */
#define CHAT_TLS_FINGERPRINT_LEN 65     /* SHA-256 of the leaf in hex, and the NUL */

typedef struct chat_tls_cert chat_tls_cert_t;

/* Reads and checks a pair into *out (the caller frees it with chat_tls_cert_free; NULL on
 * failure). cert_var and key_var name the variables the paths came from (for the error
 * line). CHAT_ERR_CONFIG (logged with var, file and reason) if a path is empty, a file
 * cannot be read, holds no PEM certificate or key, the key is not the leaf's, or the leaf
 * has expired; CHAT_ERR_NOMEM. */
chat_err_t chat_tls_cert_load(const char *cert_path, const char *key_path, const char *cert_var,
                              const char *key_var, chat_tls_cert_t **out);

/* Frees the pair (the key's PEM text is wiped first). Accepts NULL. */
void chat_tls_cert_free(chat_tls_cert_t *c);

/* The leaf's SHA-256 fingerprint (hex), serial (hex), subject, and notAfter (Unix s); the
 * strings belong to c. */
const char *chat_tls_cert_fingerprint(const chat_tls_cert_t *c);
const char *chat_tls_cert_serial(const chat_tls_cert_t *c);
const char *chat_tls_cert_subject(const chat_tls_cert_t *c);
int64_t chat_tls_cert_not_after(const chat_tls_cert_t *c);
/* Certificates in the chain file (the leaf and its intermediates). */
int chat_tls_cert_chain_len(const chat_tls_cert_t *c);

/* The PEM text of the chain file and of the key file (NUL-terminated), for GnuTLS; they
 * belong to c. */
const char *chat_tls_cert_pem(const chat_tls_cert_t *c, size_t *len);
const char *chat_tls_key_pem(const chat_tls_cert_t *c, size_t *len);

/* Installs the pair in an OpenSSL SSL_CTX (passed as void * so that users need no OpenSSL
 * header): the leaf, the intermediates as its chain, the key (the context takes its own
 * references: c may be freed after). Connections already
 * established keep the certificate they were made with. False (nothing is half-applied: the
 * pair was checked at load) only if OpenSSL refuses it. */
bool chat_tls_cert_apply(const chat_tls_cert_t *c, void *ssl_ctx);

/* How often the services look at the files for a change (a renewed Kubernetes Secret is
 * swapped into its mount atomically; the image has no shell to send SIGHUP from). */
#define CHAT_TLS_WATCH_MS 5000

/* A stamp of the two files (device, inode, size, modification time): another value means
 * they changed. 0 if either cannot be stat'ed. */
uint64_t chat_tls_files_stamp(const char *cert_path, const char *key_path);

/* TLS 1.2 and later only, on an OpenSSL SSL_CTX. */
bool chat_tls_ctx_harden(void *ssl_ctx);

/* Logs "tls certificate loaded" (or what says) with the fingerprint, serial, subject and
 * expiry; warns if it expires within 14 days. */
void chat_tls_cert_log(const chat_tls_cert_t *c, const char *what, const char *service_var);

#endif
