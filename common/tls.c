/* PEM certificate chains and keys for the services' own TLS listeners: read, checked and
 * described here once, used by the gateway (OpenSSL, via lws) and the api (GnuTLS). */
#include "common/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/log.h"

#define EXPIRY_WARN_S (14 * 24 * 3600)

struct chat_tls_cert {
    X509 *leaf;
    STACK_OF(X509) * chain; /* the intermediates after the leaf */
    EVP_PKEY *key;
    char *cert_pem, *key_pem;
    size_t cert_pem_len, key_pem_len;
    char fingerprint[CHAT_TLS_FINGERPRINT_LEN];
    char serial[80];
    char subject[256];
    int64_t not_after;
};

/* what, then the last OpenSSL error as text (and the queue cleared). */
static const char *ssl_reason(char *buf, size_t len, const char *what)
{
    char e[160] = "";
    unsigned long code = ERR_peek_last_error();
    if (code != 0)
        ERR_error_string_n(code, e, sizeof e);
    ERR_clear_error();
    snprintf(buf, len, "%s%s%s%s", what, e[0] != '\0' ? " (OpenSSL: " : "", e,
             e[0] != '\0' ? ")" : "");
    return buf;
}

static chat_err_t refuse(const char *var, const char *path, const char *reason)
{
    chat_log_error("tls: unusable certificate or key", CHAT_F_STR("var", var),
                   CHAT_F_STR("file", path), CHAT_F_STR("reason", reason));
    return CHAT_ERR_CONFIG;
}

/* The whole file, NUL-terminated; NULL with errno set (EFBIG over CHAT_TLS_FILE_MAX). */
static char *file_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > CHAT_TLS_FILE_MAX) {
        fclose(f);
        errno = EFBIG;
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = buf != NULL ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    int failed = buf == NULL || ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        errno = buf == NULL ? ENOMEM : EIO;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void describe(chat_tls_cert_t *c)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    c->fingerprint[0] = '\0';
    if (X509_digest(c->leaf, EVP_sha256(), md, &mdlen) == 1)
        for (unsigned int i = 0; i < mdlen && 2 * i + 2 < sizeof c->fingerprint; i++)
            snprintf(c->fingerprint + 2 * i, 3, "%02x", md[i]);
    c->serial[0] = '\0';
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c->leaf), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    if (hex != NULL)
        snprintf(c->serial, sizeof c->serial, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    X509_NAME_oneline(X509_get_subject_name(c->leaf), c->subject, sizeof c->subject);
    struct tm tm;
    c->not_after = 0;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(c->leaf), &tm) == 1)
        c->not_after = (int64_t)timegm(&tm);
}

/* The chain file: the leaf first, then its intermediates. */
static chat_err_t chain_parse(chat_tls_cert_t *c, const char *var, const char *path)
{
    BIO *bio = BIO_new_mem_buf(c->cert_pem, (int)c->cert_pem_len);
    if (bio == NULL)
        return CHAT_ERR_NOMEM;
    c->leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (c->leaf == NULL) {
        char why[256];
        BIO_free(bio);
        return refuse(var, path,
                      ssl_reason(why, sizeof why,
                                 "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file"));
    }
    c->chain = sk_X509_new_null();
    X509 *x;
    while (c->chain != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(c->chain, x)) {
            X509_free(x);
            break;
        }
    ERR_clear_error(); /* the end of the file reads as an error */
    BIO_free(bio);
    return c->chain != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
}

chat_err_t chat_tls_cert_load(const char *cert_path, const char *key_path, const char *cert_var,
                              const char *key_var, chat_tls_cert_t **out)
{
    *out = NULL;
    if (cert_path == NULL || cert_path[0] == '\0')
        return refuse(cert_var, "",
                      "not set (a certificate needs its key and the key its "
                      "certificate)");
    if (key_path == NULL || key_path[0] == '\0')
        return refuse(key_var, "",
                      "not set (a certificate needs its key and the key its "
                      "certificate)");
    chat_tls_cert_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = CHAT_OK;
    if ((c->cert_pem = file_read(cert_path, &c->cert_pem_len)) == NULL)
        err = refuse(cert_var, cert_path, strerror(errno));
    else if ((c->key_pem = file_read(key_path, &c->key_pem_len)) == NULL)
        err = refuse(key_var, key_path, strerror(errno));
    else
        err = chain_parse(c, cert_var, cert_path);
    if (err == CHAT_OK) {
        BIO *bio = BIO_new_mem_buf(c->key_pem, (int)c->key_pem_len);
        c->key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        if (c->key == NULL) {
            char why[256];
            err =
                refuse(key_var, key_path,
                       ssl_reason(why, sizeof why, "no PEM private key (unencrypted) in the file"));
        }
    }
    if (err == CHAT_OK && X509_check_private_key(c->leaf, c->key) != 1) {
        ERR_clear_error();
        err = refuse(key_var, key_path,
                     "the key does not match the certificate (the first one of the chain file)");
    }
    if (err == CHAT_OK) {
        describe(c);
        if (c->not_after != 0 && c->not_after < (int64_t)time(NULL))
            err = refuse(cert_var, cert_path, "the certificate has expired");
    }
    if (err != CHAT_OK) {
        chat_tls_cert_free(c);
        return err;
    }
    *out = c;
    return CHAT_OK;
}

void chat_tls_cert_free(chat_tls_cert_t *c)
{
    if (c == NULL)
        return;
    X509_free(c->leaf);
    sk_X509_pop_free(c->chain, X509_free);
    EVP_PKEY_free(c->key);
    if (c->key_pem != NULL)
        OPENSSL_cleanse(c->key_pem, c->key_pem_len);
    free(c->key_pem);
    free(c->cert_pem);
    free(c);
}

const char *chat_tls_cert_fingerprint(const chat_tls_cert_t *c)
{
    return c->fingerprint;
}

const char *chat_tls_cert_serial(const chat_tls_cert_t *c)
{
    return c->serial;
}

const char *chat_tls_cert_subject(const chat_tls_cert_t *c)
{
    return c->subject;
}

int64_t chat_tls_cert_not_after(const chat_tls_cert_t *c)
{
    return c->not_after;
}

int chat_tls_cert_chain_len(const chat_tls_cert_t *c)
{
    return 1 + sk_X509_num(c->chain);
}

const char *chat_tls_cert_pem(const chat_tls_cert_t *c, size_t *len)
{
    *len = c->cert_pem_len;
    return c->cert_pem;
}

const char *chat_tls_key_pem(const chat_tls_cert_t *c, size_t *len)
{
    *len = c->key_pem_len;
    return c->key_pem;
}

bool chat_tls_cert_apply(const chat_tls_cert_t *c, void *ssl_ctx)
{
    SSL_CTX *ctx = ssl_ctx;
    /* The new leaf first (OpenSSL drops the old key that no longer matches it), its chain,
     * then its key. */
    bool ok = SSL_CTX_use_certificate(ctx, c->leaf) == 1 && SSL_CTX_clear_chain_certs(ctx) == 1;
    for (int i = 0; ok && i < sk_X509_num(c->chain); i++)
        ok = SSL_CTX_add1_chain_cert(ctx, sk_X509_value(c->chain, i)) == 1;
    ok = ok && SSL_CTX_use_PrivateKey(ctx, c->key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    if (!ok) {
        char why[256];
        chat_log_error("tls: OpenSSL refused the certificate",
                       CHAT_F_STR("reason", ssl_reason(why, sizeof why, "cannot install it")));
    }
    return ok;
}

/* FNV-1a over the fields of both stats. */
static uint64_t stamp_mix(uint64_t h, const struct stat *st)
{
    const uint64_t v[] = {(uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_size,
                          (uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        for (int b = 0; b < 64; b += 8) {
            h ^= (v[i] >> b) & 0xff;
            h *= 1099511628211ULL;
        }
    return h;
}

uint64_t chat_tls_files_stamp(const char *cert_path, const char *key_path)
{
    struct stat c, k;
    if (stat(cert_path, &c) != 0 || stat(key_path, &k) != 0)
        return 0;
    uint64_t h = stamp_mix(stamp_mix(14695981039346656037ULL, &c), &k);
    return h != 0 ? h : 1;
}

bool chat_tls_ctx_harden(void *ssl_ctx)
{
    return SSL_CTX_set_min_proto_version((SSL_CTX *)ssl_ctx, TLS1_2_VERSION) == 1;
}

void chat_tls_cert_log(const chat_tls_cert_t *c, const char *what, const char *service_var)
{
    int64_t left = c->not_after - (int64_t)time(NULL);
    chat_log_info(what, CHAT_F_STR("var", service_var), CHAT_F_STR("subject", c->subject),
                  CHAT_F_STR("serial", c->serial), CHAT_F_STR("sha256", c->fingerprint),
                  CHAT_F_INT("chain", chat_tls_cert_chain_len(c)),
                  CHAT_F_INT("not_after", c->not_after));
    if (c->not_after != 0 && left < EXPIRY_WARN_S)
        chat_log_warn("tls: the certificate expires soon", CHAT_F_STR("var", service_var),
                      CHAT_F_STR("sha256", c->fingerprint), CHAT_F_INT("seconds_left", left));
}
