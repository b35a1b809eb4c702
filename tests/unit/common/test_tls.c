/* Unit tests of common/tls: a good pair (a chain of leaf + intermediate) loads and is
 * described (fingerprint, serial, chain length, PEM kept) and installs in an SSL_CTX; a
 * missing file, a file without PEM, a key of another certificate, an expired certificate and
 * a missing path are refused with CHAT_ERR_CONFIG; the files' stamp changes when a file is
 * replaced. The certificates are made here with OpenSSL. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/tls.h"

static char dir[64];

static EVP_PKEY *key_new(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(k);
    return k;
}

/* A certificate for cn with key's public key, signed by issuer_key (issuer's subject, or its
 * own for a self-signed one), valid from now + from_s to now + to_s. */
static X509 *cert_new(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                      long serial, long from_s, long to_s)
{
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name);
    ck_assert_int_gt(X509_sign(x, issuer_key, EVP_sha256()), 0);
    return x;
}

static const char *path(const char *name)
{
    static char buf[4][128];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void write_certs(const char *name, X509 *a, X509 *b)
{
    FILE *f = fopen(path(name), "w");
    ck_assert_ptr_nonnull(f);
    PEM_write_X509(f, a);
    if (b != NULL)
        PEM_write_X509(f, b);
    fclose(f);
}

static void write_key(const char *name, EVP_PKEY *k)
{
    FILE *f = fopen(path(name), "w");
    ck_assert_ptr_nonnull(f);
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

/* chain.pem (leaf + intermediate) and leaf.key; other.key; expired.pem/.key; text.pem. */
static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/chat-test-tls-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    EVP_PKEY *ca_key = key_new(), *leaf_key = key_new(), *other = key_new();
    X509 *ca = cert_new("test intermediate", ca_key, NULL, ca_key, 1, 0, 86400);
    X509 *leaf = cert_new("localhost", leaf_key, ca, ca_key, 0x1234, 0, 86400);
    X509 *old = cert_new("expired", leaf_key, ca, ca_key, 7, -7200, -3600);
    write_certs("chain.pem", leaf, ca);
    write_key("leaf.key", leaf_key);
    write_key("other.key", other);
    write_certs("expired.pem", old, NULL);
    FILE *f = fopen(path("text.pem"), "w");
    ck_assert_ptr_nonnull(f);
    fputs("not a certificate\n", f);
    fclose(f);
    X509_free(ca);
    X509_free(leaf);
    X509_free(old);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(other);
}

static void teardown(void)
{
    const char *names[] = {"chain.pem", "leaf.key", "other.key", "expired.pem", "text.pem"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(path(names[i]));
    rmdir(dir);
}

START_TEST(test_good_pair)
{
    chat_tls_cert_t *c = NULL;
    ck_assert_int_eq(chat_tls_cert_load(path("chain.pem"), path("leaf.key"), "C", "K", &c),
                     CHAT_OK);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(chat_tls_cert_chain_len(c), 2);
    ck_assert_str_eq(chat_tls_cert_serial(c), "1234");
    ck_assert_int_eq((int)strlen(chat_tls_cert_fingerprint(c)), 64);
    ck_assert_ptr_nonnull(strstr(chat_tls_cert_subject(c), "localhost"));
    ck_assert_int_gt(chat_tls_cert_not_after(c), 0);
    size_t len = 0;
    ck_assert_ptr_nonnull(strstr(chat_tls_cert_pem(c, &len), "BEGIN CERTIFICATE"));
    ck_assert_uint_gt(len, 0);
    ck_assert_ptr_nonnull(strstr(chat_tls_key_pem(c, &len), "PRIVATE KEY"));
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    ck_assert(chat_tls_ctx_harden(ctx));
    ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    ck_assert(chat_tls_cert_apply(c, ctx));
    ck_assert_int_eq(SSL_CTX_check_private_key(ctx), 1);
    STACK_OF(X509) *chain = NULL;
    ck_assert_int_eq(SSL_CTX_get0_chain_certs(ctx, &chain), 1);
    ck_assert_int_eq(sk_X509_num(chain), 1); /* the intermediate goes out with the leaf */
    SSL_CTX_free(ctx);
    chat_tls_cert_free(c);
}
END_TEST

static void refused(const char *cert, const char *key)
{
    chat_tls_cert_t *c = (chat_tls_cert_t *)1;
    ck_assert_int_eq(chat_tls_cert_load(cert, key, "C", "K", &c), CHAT_ERR_CONFIG);
    ck_assert_ptr_null(c);
}

START_TEST(test_refusals)
{
    refused(path("missing.pem"), path("leaf.key"));
    refused(path("chain.pem"), path("missing.key"));
    refused(path("text.pem"), path("leaf.key"));
    refused(path("chain.pem"), path("text.pem"));
    refused(path("chain.pem"), path("other.key"));
    refused(path("expired.pem"), path("leaf.key"));
    refused("", path("leaf.key"));
    refused(path("chain.pem"), "");
}
END_TEST

START_TEST(test_stamp)
{
    uint64_t a = chat_tls_files_stamp(path("chain.pem"), path("leaf.key"));
    ck_assert_uint_ne(a, 0);
    ck_assert_uint_eq(chat_tls_files_stamp(path("chain.pem"), path("leaf.key")), a);
    ck_assert_uint_eq(chat_tls_files_stamp(path("missing.pem"), path("leaf.key")), 0);
    /* replaced by another file (a Secret's mount swaps them): another stamp */
    ck_assert_int_eq(rename(path("other.key"), path("leaf.key")), 0);
    ck_assert_uint_ne(chat_tls_files_stamp(path("chain.pem"), path("leaf.key")), a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_good_pair);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_stamp);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
