/* The api's TLS credentials: every pair loaded stays allocated until api_tls_close, since a
 * GnuTLS session may still point at the pair it was handed at its handshake; a reload adds
 * one (a few kilobytes per SIGHUP). */
#include "services/api/tls.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "common/log.h"
#include "common/tls.h"

#define CHAIN_MAX 16 /* certificates of a chain file */

typedef struct creds {
    gnutls_pcert_st pcerts[CHAIN_MAX];
    unsigned int npcerts;
    gnutls_privkey_t key;
    struct creds *older;
} creds_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static creds_t *current; /* newest first, then the ones it replaced */
static char *cert_file, *key_file;
static uint64_t files_stamp; /* chat_tls_files_stamp at the last (re)load */

static void creds_free(creds_t *c)
{
    for (unsigned int i = 0; i < c->npcerts; i++)
        gnutls_pcert_deinit(&c->pcerts[i]);
    if (c->key != NULL)
        gnutls_privkey_deinit(c->key);
    free(c);
}

/* Checked by common/tls.c first (clear errors), then imported into GnuTLS. */
static chat_err_t creds_load(creds_t **out)
{
    chat_tls_cert_t *pair = NULL;
    chat_err_t err =
        chat_tls_cert_load(cert_file, key_file, "CHAT_API_TLS_CERT", "CHAT_API_TLS_KEY", &pair);
    if (err != CHAT_OK)
        return err;
    creds_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        chat_tls_cert_free(pair);
        return CHAT_ERR_NOMEM;
    }
    size_t len;
    const char *pem = chat_tls_cert_pem(pair, &len);
    gnutls_datum_t d = {.data = (unsigned char *)pem, .size = (unsigned int)len};
    c->npcerts = CHAIN_MAX;
    int rc = gnutls_pcert_list_import_x509_raw(c->pcerts, &c->npcerts, &d, GNUTLS_X509_FMT_PEM, 0);
    const char *var = "CHAT_API_TLS_CERT";
    if (rc < 0) {
        c->npcerts = 0;
    } else {
        pem = chat_tls_key_pem(pair, &len);
        d = (gnutls_datum_t){.data = (unsigned char *)pem, .size = (unsigned int)len};
        var = "CHAT_API_TLS_KEY";
        rc = gnutls_privkey_init(&c->key);
        if (rc >= 0)
            rc = gnutls_privkey_import_x509_raw(c->key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
    }
    if (rc < 0) {
        chat_log_error("tls: GnuTLS refused the certificate or key", CHAT_F_STR("var", var),
                       CHAT_F_STR("reason", gnutls_strerror(rc)));
        chat_tls_cert_free(pair);
        creds_free(c);
        return CHAT_ERR_CONFIG;
    }
    chat_tls_cert_log(pair,
                      current == NULL ? "tls: certificate loaded" : "tls: certificate reloaded",
                      "CHAT_API_TLS_CERT");
    chat_tls_cert_free(pair);
    *out = c;
    return CHAT_OK;
}

chat_err_t api_tls_open(const char *cert_path, const char *key_path)
{
    cert_file = strdup(cert_path);
    key_file = strdup(key_path);
    if (cert_file == NULL || key_file == NULL)
        return CHAT_ERR_NOMEM;
    creds_t *c = NULL;
    files_stamp = chat_tls_files_stamp(cert_file, key_file);
    chat_err_t err = creds_load(&c);
    if (err == CHAT_OK)
        current = c;
    return err;
}

bool api_tls_reload(void)
{
    if (cert_file == NULL) {
        chat_log_info("reload requested (SIGHUP): nothing to reload without TLS");
        return false;
    }
    creds_t *c = NULL;
    files_stamp = chat_tls_files_stamp(cert_file, key_file);
    if (creds_load(&c) != CHAT_OK) {
        chat_log_error("tls: reload failed; still serving the previous certificate",
                       CHAT_F_STR("var", "CHAT_API_TLS_CERT"));
        return false;
    }
    pthread_mutex_lock(&lock);
    c->older = current;
    current = c;
    pthread_mutex_unlock(&lock);
    return true;
}

bool api_tls_files_changed(void)
{
    if (cert_file == NULL)
        return false;
    uint64_t stamp = chat_tls_files_stamp(cert_file, key_file);
    return stamp != 0 && stamp != files_stamp;
}

/* gnutls_certificate_retrieve_function2: the newest pair, whatever the client asked. */
static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                    const gnutls_pk_algorithm_t *algos, int nalgos, gnutls_pcert_st **pcert,
                    unsigned int *pcert_length, gnutls_privkey_t *key)
{
    (void)session;
    (void)req_ca_dn;
    (void)nreqs;
    (void)algos;
    (void)nalgos;
    pthread_mutex_lock(&lock);
    creds_t *c = current;
    pthread_mutex_unlock(&lock);
    if (c == NULL)
        return -1;
    *pcert = c->pcerts;
    *pcert_length = c->npcerts;
    *key = c->key;
    return 0;
}

void *api_tls_callback(void)
{
    return (void *)&retrieve;
}

void api_tls_close(void)
{
    pthread_mutex_lock(&lock);
    creds_t *c = current;
    current = NULL;
    pthread_mutex_unlock(&lock);
    while (c != NULL) {
        creds_t *older = c->older;
        creds_free(c);
        c = older;
    }
    free(cert_file);
    free(key_file);
    cert_file = key_file = NULL;
}
