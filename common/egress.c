/* The server-side request forgery guard of outgoing webhook and push requests (see egress.h):
 * URLs are checked when stored, and the address libcurl is about to connect to is checked
 * again in its socket callback, the only point that sees the address a name resolved to at
 * connection time. */
#include "common/egress.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define URL_MAX 2048
#define CONNECT_TIMEOUT_MAX_MS 5000L

__attribute__((format(printf, 3, 4))) static void set_reason(char *buf, size_t len, const char *fmt,
                                                             ...)
{
    if (buf == NULL || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* True if the IPv4 address (host byte order) is not public: the ranges of egress.h. */
static bool ipv4_private(uint32_t a)
{
    static const struct {
        uint32_t net;
        int bits;
    } ranges[] = {
        {0x00000000u, 8},  /* 0.0.0.0/8 "this network" */
        {0x0a000000u, 8},  /* 10/8 */
        {0x64400000u, 10}, /* 100.64/10 carrier-grade NAT */
        {0x7f000000u, 8},  /* 127/8 loopback */
        {0xa9fe0000u, 16}, /* 169.254/16 link-local, cloud metadata services */
        {0xac100000u, 12}, /* 172.16/12 */
        {0xc0000000u, 24}, /* 192.0.0/24 IETF protocol assignments */
        {0xc0a80000u, 16}, /* 192.168/16 */
        {0xc6120000u, 15}, /* 198.18/15 benchmarking */
        {0xe0000000u, 3},  /* 224/4 multicast and everything above (240/4, broadcast) */
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        uint32_t mask = ~0u << (32 - ranges[i].bits);
        if ((a & mask) == ranges[i].net)
            return true;
    }
    return false;
}

static uint32_t ipv4_of(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* True if the IPv6 address is not public, including an IPv4 address carried inside one. */
static bool ipv6_private(const unsigned char b[16])
{
    static const unsigned char zero[12] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b}; /* 64:ff9b::/96 */
    /* ::/96 holds :: and ::1 and the deprecated IPv4-compatible form; ::ffff:0:0/96 is how
     * a dual-stack socket writes an IPv4 peer; a NAT64 gateway connects to the embedded
     * IPv4 address. All three are judged by that address (:: is 0.0.0.0, ::1 is 0.0.0.1). */
    if (memcmp(b, zero, 12) == 0 || memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return ipv4_private(ipv4_of(b + 12));
    if ((b[0] & 0xfe) == 0xfc) /* fc00::/7 unique local */
        return true;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10 link-local */
        return true;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) /* fec0::/10 site-local (deprecated, private) */
        return true;
    return b[0] == 0xff; /* ff00::/8 multicast */
}

bool chat_egress_addr_allowed(const chat_egress_policy_t *policy, const struct sockaddr *sa,
                              socklen_t len)
{
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET && (size_t)len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return policy->allow_private || !ipv4_private(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6 && (size_t)len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return policy->allow_private || !ipv6_private(in6->sin6_addr.s6_addr);
    }
    return false; /* Unix sockets and anything else: never for a URL of a tenant's */
}

/* True if host (as the URL parser gives it: IPv6 in brackets) is a name for this machine or
 * a literal address that policy refuses. */
static bool host_refused(const chat_egress_policy_t *policy, const char *host)
{
    size_t len = strlen(host);
    if (len > 0 && host[len - 1] == '.') /* "localhost." is localhost */
        len--;
    /* RFC 6761: localhost and every name under it resolve to loopback. */
    if ((len == 9 && strncasecmp(host, "localhost", 9) == 0) ||
        (len > 10 && strncasecmp(host + len - 10, ".localhost", 10) == 0))
        return true;
    struct sockaddr_in in = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, host, &in.sin_addr) == 1)
        return !chat_egress_addr_allowed(policy, (const struct sockaddr *)&in, sizeof in);
    char v6[64];
    if (host[0] == '[' && len > 2 && len - 2 < sizeof v6) {
        memcpy(v6, host + 1, len - 2);
        v6[len - 2] = '\0';
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
        if (inet_pton(AF_INET6, v6, &in6.sin6_addr) == 1)
            return !chat_egress_addr_allowed(policy, (const struct sockaddr *)&in6, sizeof in6);
    }
    return false;
}

chat_err_t chat_egress_url_check(const chat_egress_policy_t *policy, const char *url, char *errbuf,
                                 size_t errlen)
{
    if (url == NULL || url[0] == '\0') {
        set_reason(errbuf, errlen, "no URL");
        return CHAT_ERR_INVALID;
    }
    if (strlen(url) > URL_MAX) {
        set_reason(errbuf, errlen, "URL longer than 2048 characters");
        return CHAT_ERR_INVALID;
    }
    CURLU *u = curl_url();
    if (u == NULL) {
        set_reason(errbuf, errlen, "out of memory");
        return CHAT_ERR_NOMEM;
    }
    char *scheme = NULL, *host = NULL, *user = NULL, *password = NULL;
    chat_err_t rc = CHAT_ERR_INVALID;
    /* Without CURLU_DEFAULT_SCHEME or CURLU_GUESS_SCHEME, a URL without a scheme fails. */
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        set_reason(errbuf, errlen, "not an absolute URL");
        goto done;
    }
    if (strcmp(scheme, "https") != 0 && (strcmp(scheme, "http") != 0 || !policy->allow_http)) {
        set_reason(errbuf, errlen,
                   policy->allow_http ? "scheme %s: http or https only" : "scheme %s: https only",
                   scheme);
        goto done;
    }
    /* Credentials in a URL end up in logs and stored documents. */
    if (curl_url_get(u, CURLUPART_USER, &user, 0) != CURLUE_NO_USER ||
        curl_url_get(u, CURLUPART_PASSWORD, &password, 0) != CURLUE_NO_PASSWORD) {
        set_reason(errbuf, errlen, "user info in the URL");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        set_reason(errbuf, errlen, "no host");
        goto done;
    }
    if (!policy->allow_private && host_refused(policy, host)) {
        set_reason(errbuf, errlen, "host %s: a local or private address", host);
        goto done;
    }
    rc = CHAT_OK;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(password);
    curl_url_cleanup(u);
    return rc;
}

/* libcurl's socket callback: opens the socket only for an address policy allows; for any
 * other, remembers it and returns CURL_SOCKET_BAD, which fails that connection attempt. */
static curl_socket_t egress_open_socket(void *clientp, curlsocktype purpose,
                                        struct curl_sockaddr *addr)
{
    (void)purpose; /* connections and (FTP) accepts alike: neither may reach a refused peer */
    chat_egress_conn_t *conn = clientp;
    if (!chat_egress_addr_allowed(&conn->policy, &addr->addr, (socklen_t)addr->addrlen)) {
        conn->refused = true;
        const void *a = NULL;
        if (addr->family == AF_INET)
            a = &((const struct sockaddr_in *)&addr->addr)->sin_addr;
        else if (addr->family == AF_INET6)
            a = &((const struct sockaddr_in6 *)&addr->addr)->sin6_addr;
        if (a == NULL ||
            inet_ntop(addr->family, a, conn->refused_addr, sizeof conn->refused_addr) == NULL)
            snprintf(conn->refused_addr, sizeof conn->refused_addr, "(family %d)", addr->family);
        return CURL_SOCKET_BAD;
    }
    /* What libcurl does without a callback, plus close-on-exec. */
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

chat_err_t chat_egress_prepare(CURL *easy, const chat_egress_policy_t *policy,
                               chat_egress_conn_t *conn, const char *url, long timeout_ms,
                               char *errbuf, size_t errlen)
{
    chat_err_t rc = chat_egress_url_check(policy, url, errbuf, errlen);
    if (rc != CHAT_OK)
        return rc;
    if (timeout_ms <= 0) {
        set_reason(errbuf, errlen, "no timeout");
        return CHAT_ERR_INVALID;
    }
    *conn = (chat_egress_conn_t){.policy = *policy};
    const char *protocols = policy->allow_http ? "http,https" : "https";
    long connect_ms = timeout_ms < CONNECT_TIMEOUT_MAX_MS ? timeout_ms : CONNECT_TIMEOUT_MAX_MS;
    CURLcode c;
    /* No proxy, even if the environment names one: through a proxy, the socket callback
     * would check the proxy's address and the proxy would connect wherever the URL says. */
    if ((c = curl_easy_setopt(easy, CURLOPT_URL, url)) != CURLE_OK ||
        (c = curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, protocols)) != CURLE_OK ||
        (c = curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, protocols)) != CURLE_OK ||
        (c = curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L)) != CURLE_OK ||
        (c = curl_easy_setopt(easy, CURLOPT_PROXY, "")) != CURLE_OK ||
        (c = curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms)) != CURLE_OK ||
        (c = curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms)) != CURLE_OK ||
        (c = curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK ||
        (c = curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, egress_open_socket)) != CURLE_OK ||
        (c = curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, conn)) != CURLE_OK) {
        set_reason(errbuf, errlen, "libcurl: %s", curl_easy_strerror(c));
        return CHAT_ERR_IO;
    }
    return CHAT_OK;
}

bool chat_egress_refused(const chat_egress_conn_t *conn, char *buf, size_t buflen)
{
    if (conn == NULL || !conn->refused)
        return false;
    if (buf != NULL && buflen > 0)
        snprintf(buf, buflen, "%s", conn->refused_addr);
    return true;
}
