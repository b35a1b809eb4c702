/* Unit tests of common/egress: the addresses refused and allowed (IPv4, IPv6, the IPv4 inside
 * an IPv6 address), the URL checks, and real transfers: a name that passes the URL check but
 * resolves (CURLOPT_RESOLVE, no DNS) to loopback is refused at connect time, and the same
 * transfer under a policy that allows private addresses reaches a local server and does not
 * follow its redirect. No network is needed. */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/egress.h"
#include "tests/support/util.h"

static const chat_egress_policy_t strict = {.allow_http = false, .allow_private = false};
static const chat_egress_policy_t open_policy = {.allow_http = true, .allow_private = true};

/* chat_egress_addr_allowed for a textual IPv4 or IPv6 address. */
static bool allowed(const chat_egress_policy_t *p, const char *text)
{
    if (strchr(text, ':') != NULL) {
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
        ck_assert_int_eq(inet_pton(AF_INET6, text, &in6.sin6_addr), 1);
        return chat_egress_addr_allowed(p, (struct sockaddr *)&in6, sizeof in6);
    }
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(443)};
    ck_assert_int_eq(inet_pton(AF_INET, text, &in.sin_addr), 1);
    return chat_egress_addr_allowed(p, (struct sockaddr *)&in, sizeof in);
}

START_TEST(test_addresses)
{
    static const char *const refused[] = {
        "10.1.2.3",
        "127.0.0.1",
        "127.255.255.254",
        "0.0.0.0",
        "0.1.2.3",
        "100.64.0.1",
        "100.127.255.255",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.168.1.1",
        "198.18.0.1",
        "198.19.255.255",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.5",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "64:ff9b::10.0.0.1",
        "64:ff9b::7f00:1",
        "fc00::1",
        "fd00::1",
        "fdff:ffff::1",
        "fe80::1",
        "febf::1",
        "fec0::1",
        "ff02::1",
        "ff0e::1",
    };
    static const char *const public_ones[] = {
        "8.8.8.8",          "1.1.1.1",
        "100.63.255.255",   "100.128.0.1",
        "172.15.255.255",   "172.32.0.1",
        "192.0.1.1",        "192.169.0.1",
        "198.17.255.255",   "198.20.0.1",
        "223.255.255.255",  "9.255.255.255",
        "11.0.0.1",         "2001:4860:4860::8888",
        "2606:4700::1111",  "::ffff:8.8.8.8",
        "64:ff9b::8.8.8.8", "fbff::1",
        "fe00::1",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        ck_assert_msg(!allowed(&strict, refused[i]), "%s allowed", refused[i]);
        ck_assert_msg(allowed(&open_policy, refused[i]), "%s refused with allow_private",
                      refused[i]);
    }
    for (size_t i = 0; i < sizeof public_ones / sizeof public_ones[0]; i++) {
        ck_assert_msg(allowed(&strict, public_ones[i]), "%s refused", public_ones[i]);
        ck_assert_msg(allowed(&open_policy, public_ones[i]), "%s refused", public_ones[i]);
    }
    /* Not an internet address, or too short for its family. */
    struct sockaddr_in in = {.sin_family = AF_INET};
    ck_assert(inet_pton(AF_INET, "8.8.8.8", &in.sin_addr) == 1);
    ck_assert(!chat_egress_addr_allowed(&open_policy, (struct sockaddr *)&in, sizeof in - 1));
    struct sockaddr unix_sa = {.sa_family = AF_UNIX};
    ck_assert(!chat_egress_addr_allowed(&open_policy, &unix_sa, sizeof unix_sa));
    ck_assert(!chat_egress_addr_allowed(&open_policy, NULL, 0));
}
END_TEST

/* chat_egress_url_check under p; when refused, the reason must contain why. */
static void url_refused(const chat_egress_policy_t *p, const char *url, const char *why)
{
    char err[256] = "";
    ck_assert_msg(chat_egress_url_check(p, url, err, sizeof err) == CHAT_ERR_INVALID, "accepted %s",
                  url);
    ck_assert_msg(strstr(err, why) != NULL, "%s: reason '%s', not '%s'", url, err, why);
}

static void url_ok(const chat_egress_policy_t *p, const char *url)
{
    char err[256] = "";
    ck_assert_msg(chat_egress_url_check(p, url, err, sizeof err) == CHAT_OK, "%s refused: %s", url,
                  err);
}

START_TEST(test_urls)
{
    const chat_egress_policy_t http_only = {.allow_http = true, .allow_private = false};
    const chat_egress_policy_t private_only = {.allow_http = false, .allow_private = true};
    url_ok(&strict, "https://hooks.example.com/chat?x=1");
    url_ok(&strict, "https://push.example:8443/p/1");
    url_ok(&strict, "https://8.8.8.8/");
    url_ok(&strict, "https://[2001:4860:4860::8888]/");

    url_refused(&strict, "http://hooks.example.com/", "https only");
    url_refused(&private_only, "http://127.0.0.1/", "https only");
    url_ok(&http_only, "http://hooks.example.com/");
    url_refused(&http_only, "ftp://hooks.example.com/", "http or https only");
    url_refused(&strict, "file:///etc/passwd", "https only");

    url_refused(&strict, "https://user:pw@hooks.example.com/", "user info");
    url_refused(&strict, "https://user@hooks.example.com/", "user info");
    url_refused(&strict, "https://:pw@hooks.example.com/", "user info");
    url_refused(&open_policy, "http://user:pw@127.0.0.1/", "user info");

    static const char *const local[] = {
        "https://localhost/x",
        "https://LocalHost./x",
        "https://a.b.localhost/",
        "https://127.0.0.1/",
        "https://127.1/",
        "https://2130706433/",
        "https://10.0.0.5:8443/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[fe80::1%25eth0]/",
        "https://[fd00::1]:443/",
        "https://0.0.0.0/",
    };
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
        url_refused(&strict, local[i], "local or private");
        url_ok(&private_only, local[i]);
    }
    url_ok(&strict, "https://localhost.example.com/"); /* only the name itself and below */
    url_ok(&strict, "https://mylocalhost/");

    url_refused(&strict, "", "no URL");
    url_refused(&strict, NULL, "no URL");
    url_refused(&strict, "hooks.example.com/x", "not an absolute URL");
    url_refused(&strict, "/relative", "not an absolute URL");
    url_refused(&strict, "https://", "not an absolute URL");
    url_refused(&strict, "https://:443/x", "not an absolute URL");
    url_refused(&strict, "https://hooks.example.com/a b", "not an absolute URL");

    char url[2100];
    int n = snprintf(url, sizeof url, "https://hooks.example.com/");
    memset(url + n, 'a', 2048 - (size_t)n);
    url[2048] = '\0';
    url_ok(&strict, url); /* 2048 characters */
    url[2048] = 'a';
    url[2049] = '\0';
    url_refused(&strict, url, "longer than 2048");
}
END_TEST

/* Runs a prepared transfer to url with host:port resolved to 127.0.0.1 (no DNS). */
static CURLcode perform_resolved(CURL *easy, const char *host_port)
{
    char entry[128];
    snprintf(entry, sizeof entry, "%s:127.0.0.1", host_port);
    struct curl_slist *resolve = curl_slist_append(NULL, entry);
    ck_assert_ptr_nonnull(resolve);
    ck_assert_int_eq(curl_easy_setopt(easy, CURLOPT_RESOLVE, resolve), CURLE_OK);
    CURLcode rc = curl_easy_perform(easy);
    curl_slist_free_all(resolve);
    return rc;
}

START_TEST(test_refused_at_connect)
{
    /* The name is public as far as the URL check can tell; only the connection finds out. */
    CURL *easy = curl_easy_init();
    ck_assert_ptr_nonnull(easy);
    chat_egress_conn_t conn;
    char err[256] = "";
    ck_assert_int_eq(chat_egress_prepare(easy, &strict, &conn, "https://public.example/hook", 5000,
                                         err, sizeof err),
                     CHAT_OK);
    char addr[64] = "";
    ck_assert(!chat_egress_refused(&conn, addr, sizeof addr));
    ck_assert_int_eq(perform_resolved(easy, "public.example:443"), CURLE_COULDNT_CONNECT);
    ck_assert(chat_egress_refused(&conn, addr, sizeof addr));
    ck_assert_str_eq(addr, "127.0.0.1");

    /* The same handle prepared again starts with a clean state. */
    curl_easy_reset(easy);
    const chat_egress_policy_t http_only = {.allow_http = true, .allow_private = false};
    ck_assert_int_eq(chat_egress_prepare(easy, &http_only, &conn, "http://public.example:8080/hook",
                                         5000, err, sizeof err),
                     CHAT_OK);
    ck_assert(!chat_egress_refused(&conn, addr, sizeof addr));
    ck_assert_int_eq(perform_resolved(easy, "public.example:8080"), CURLE_COULDNT_CONNECT);
    ck_assert(chat_egress_refused(&conn, addr, sizeof addr));
    ck_assert_str_eq(addr, "127.0.0.1");
    curl_easy_cleanup(easy);
}
END_TEST

START_TEST(test_prepare_refuses)
{
    CURL *easy = curl_easy_init();
    chat_egress_conn_t conn;
    char err[256] = "";
    ck_assert_int_eq(
        chat_egress_prepare(easy, &strict, &conn, "http://public.example/", 5000, err, sizeof err),
        CHAT_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err, "https only"));
    ck_assert_int_eq(
        chat_egress_prepare(easy, &strict, &conn, "https://127.0.0.1/", 5000, err, sizeof err),
        CHAT_ERR_INVALID);
    ck_assert_int_eq(
        chat_egress_prepare(easy, &strict, &conn, "https://public.example/", 0, err, sizeof err),
        CHAT_ERR_INVALID);
    curl_easy_cleanup(easy);
}
END_TEST

/* A one-shot HTTP server on 127.0.0.1: answers one request with a redirect to a port where
 * nothing listens, and records that it was reached. */
typedef struct redirect_server {
    int fd;
    int port;
    pthread_t thread;
    bool served;
} redirect_server_t;

static void *redirect_serve(void *arg)
{
    redirect_server_t *s = arg;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char buf[4096];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t r = recv(c, buf + n, sizeof buf - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL)
            break;
    }
    static const char reply[] = "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\n"
                                "Content-Length: 0\r\nConnection: close\r\n\r\n";
    if (send(c, reply, sizeof reply - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof reply - 1))
        s->served = true;
    close(c);
    return NULL;
}

static void redirect_server_start(redirect_server_t *s)
{
    *s = (redirect_server_t){0};
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s->fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(s->fd, 4), 0);
    ck_assert_int_eq(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&s->thread, NULL, redirect_serve, s), 0);
}

START_TEST(test_allowed_transfer_no_redirect)
{
    redirect_server_t srv;
    redirect_server_start(&srv);
    char url[128], host_port[64];
    snprintf(url, sizeof url, "http://public.example:%d/hook", srv.port);
    snprintf(host_port, sizeof host_port, "public.example:%d", srv.port);
    CURL *easy = curl_easy_init();
    chat_egress_conn_t conn;
    char err[256] = "";
    ck_assert_int_eq(chat_egress_prepare(easy, &open_policy, &conn, url, 5000, err, sizeof err),
                     CHAT_OK);
    ck_assert_int_eq(perform_resolved(easy, host_port), CURLE_OK);
    pthread_join(srv.thread, NULL);
    close(srv.fd);
    ck_assert(srv.served);
    long status = 0, redirects = -1;
    ck_assert_int_eq(curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status), CURLE_OK);
    ck_assert_int_eq(curl_easy_getinfo(easy, CURLINFO_REDIRECT_COUNT, &redirects), CURLE_OK);
    ck_assert_int_eq(status, 302);
    ck_assert_int_eq(redirects, 0);
    char addr[64] = "";
    ck_assert(!chat_egress_refused(&conn, addr, sizeof addr));
    curl_easy_cleanup(easy);
}
END_TEST

static Suite *egress_suite(void)
{
    Suite *s = suite_create("egress");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_addresses);
    tcase_add_test(tc, test_urls);
    tcase_add_test(tc, test_refused_at_connect);
    tcase_add_test(tc, test_prepare_refuses);
    tcase_add_test(tc, test_allowed_transfer_no_redirect);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = chat_test_suite_run(egress_suite(), false);
    curl_global_cleanup();
    return rc;
}
