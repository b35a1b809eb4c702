/* Outgoing HTTP requests to URLs that tenants or browsers chose (webhook endpoints, push
 * services), guarded against server-side request forgery (docs/notify.md, "Sending"): only
 * https, only to hosts whose addresses are public, and the address libcurl actually connects
 * to is checked again at connect time, so a DNS answer that changes between the check and the
 * connection gets nowhere. A deployment may allow plain http and private addresses (the local
 * stack does, for its loopback test receivers; the chart does not). */
#ifndef CHAT_COMMON_EGRESS_H
#define CHAT_COMMON_EGRESS_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/config.h"
#include "common/err.h"

typedef struct chat_egress_policy {
    bool allow_http;    /* CHAT_EGRESS_ALLOW_HTTP: plain http:// URLs */
    bool allow_private; /* CHAT_EGRESS_ALLOW_PRIVATE: loopback, RFC 1918, link-local, ULA, ... */
} chat_egress_policy_t;

/* Config table entries of the two settings (both default 0), for the services that send. */
#define CHAT_CFG_EGRESS(st, http_field, private_field)                                             \
    CHAT_CFG_BOOL("CHAT_EGRESS_ALLOW_HTTP", st, http_field, "0",                                   \
                  "allow plain http:// webhook and push URLs (never in production)"),              \
        CHAT_CFG_BOOL("CHAT_EGRESS_ALLOW_PRIVATE", st, private_field, "0",                         \
                      "allow webhook and push URLs on loopback, private and link-local "           \
                      "addresses (never in production)")

/* True if the address may be connected to under policy: with allow_private false, refuses
 * 0.0.0.0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.168/16,
 * 198.18/15, 224/4 and above, ::, ::1, fc00::/7, fe80::/10, ff00::/8, and IPv4-mapped or
 * NAT64 forms of those. */
bool chat_egress_addr_allowed(const chat_egress_policy_t *policy, const struct sockaddr *sa,
                              socklen_t len);

/* Checks a URL before it is stored (webhook registration, push_subscribe): absolute http(s),
 * no user info, a host, at most 2048 characters, https unless allow_http, and, unless
 * allow_private, a host that is not a literal private address nor "localhost". Does not
 * resolve names (that happens at each connection). CHAT_ERR_INVALID with the reason. */
chat_err_t chat_egress_url_check(const chat_egress_policy_t *policy, const char *url, char *errbuf,
                                 size_t errlen);

/* The connect-time check's state for one transfer. The caller owns it (a local around
 * curl_easy_perform, or a member of its per-transfer struct that it finds again through its
 * own CURLOPT_PRIVATE) because libcurl cannot hand a pointer back from an easy handle other
 * than CURLOPT_PRIVATE, which is the caller's. chat_egress_prepare fills it and points the
 * handle's socket callback at it: it must stay in place until the transfer is over. */
typedef struct chat_egress_conn {
    chat_egress_policy_t policy; /* a copy: the callback's */
    bool refused;                /* an address was refused during the transfer */
    char refused_addr[INET6_ADDRSTRLEN];
} chat_egress_conn_t;

/* Sets up an easy handle for url under policy: the protocols (https, or http too), no
 * redirects, no proxy, the connect-time address check (CURLOPT_OPENSOCKETFUNCTION with conn; a
 * refused address fails the transfer with CURLE_COULDNT_CONNECT and chat_egress_refused()
 * true), timeouts (the whole transfer timeout_ms > 0, the connection at most 5 s of it).
 * Leaves CURLOPT_PRIVATE alone. CHAT_ERR_INVALID if the URL fails chat_egress_url_check (or
 * timeout_ms <= 0), CHAT_ERR_IO if libcurl refuses an option; the reason in errbuf. */
chat_err_t chat_egress_prepare(CURL *easy, const chat_egress_policy_t *policy,
                               chat_egress_conn_t *conn, const char *url, long timeout_ms,
                               char *errbuf, size_t errlen);

/* True if the transfer prepared with conn was stopped because of its address (for the reason
 * in the logs and dead letters: "refused address 10.0.0.5"); ask after a failed transfer. The
 * address is written to buf. */
bool chat_egress_refused(const chat_egress_conn_t *conn, char *buf, size_t buflen);

#endif
