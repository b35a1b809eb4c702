/* The local demo's endpoints (see demo.h): token minting for the demo tenant and the demo
 * page's gateway list. The secret stays in this object; it is never logged. */
#include "services/gateway/demo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "common/json.h"
#include "common/jwt.h"
#include "common/log.h"
#include "common/names.h"

#define GATEWAYS_MAX 64 /* entries of CHAT_DEMO_GATEWAYS */
#define URL_MAX 512
#define HOST_MAX 255

struct gw_demo {
    char tenant[CHAT_TENANT_MAX + 1];
    char *secret;
    size_t secret_len;
    char **gateways; /* CHAT_DEMO_GATEWAYS split; none: the request's own /v1/ws */
    size_t ngateways;
};

bool gw_demo_user_valid(const char *user)
{
    if (user == NULL)
        return false;
    size_t n = 0;
    for (; user[n] != '\0'; n++) {
        char c = user[n];
        if (n >= GW_DEMO_USER_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

/* True if url is ws:// or wss:// followed by something without spaces or control
 * characters. */
static bool ws_url_valid(const char *url, size_t len)
{
    size_t scheme = 0;
    if (len > 5 && memcmp(url, "ws://", 5) == 0)
        scheme = 5;
    else if (len > 6 && memcmp(url, "wss://", 6) == 0)
        scheme = 6;
    if (scheme == 0 || len > URL_MAX)
        return false;
    for (size_t i = scheme; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
            return false;
    return true;
}

static chat_err_t gateways_fail(const char *list)
{
    chat_log_error("not a comma-separated list of ws:// or wss:// URLs",
                   CHAT_F_STR("var", "CHAT_DEMO_GATEWAYS"), CHAT_F_STR("value", list));
    return CHAT_ERR_CONFIG;
}

/* Splits CHAT_DEMO_GATEWAYS into d->gateways (blanks around entries ignored; an empty entry
 * is an error). */
static chat_err_t gateways_parse(gw_demo_t *d, const char *list)
{
    if (list[0] == '\0')
        return CHAT_OK;
    d->gateways = calloc(GATEWAYS_MAX, sizeof *d->gateways);
    if (d->gateways == NULL)
        return CHAT_ERR_NOMEM;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *s = p, *e = comma != NULL ? comma : p + strlen(p);
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (!ws_url_valid(s, (size_t)(e - s)) || d->ngateways >= GATEWAYS_MAX)
            return gateways_fail(list);
        if ((d->gateways[d->ngateways] = strndup(s, (size_t)(e - s))) == NULL)
            return CHAT_ERR_NOMEM;
        d->ngateways++;
        if (comma == NULL)
            return CHAT_OK;
        p = comma + 1;
    }
}

chat_err_t gw_demo_new(const char *tenant, const char *secret, const char *gateways,
                       gw_demo_t **out)
{
    *out = NULL;
    bool has_tenant = tenant != NULL && tenant[0] != '\0';
    bool has_secret = secret != NULL && secret[0] != '\0';
    if (!has_tenant || !has_secret) {
        if (has_tenant || has_secret)
            chat_log_warn("the demo endpoints need both CHAT_DEMO_TENANT and CHAT_DEMO_SECRET; "
                          "they stay off",
                          CHAT_F_STR("var", has_tenant ? "CHAT_DEMO_SECRET" : "CHAT_DEMO_TENANT"));
        return CHAT_OK;
    }
    if (!chat_name_tenant_valid(tenant)) {
        chat_log_error("not a tenant id", CHAT_F_STR("var", "CHAT_DEMO_TENANT"),
                       CHAT_F_STR("value", tenant));
        return CHAT_ERR_CONFIG;
    }
    gw_demo_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return CHAT_ERR_NOMEM;
    snprintf(d->tenant, sizeof d->tenant, "%s", tenant);
    d->secret_len = strlen(secret);
    d->secret = strdup(secret);
    chat_err_t err = d->secret == NULL ? CHAT_ERR_NOMEM : CHAT_OK;
    if (err == CHAT_OK && gateways != NULL)
        err = gateways_parse(d, gateways);
    if (err != CHAT_OK) {
        gw_demo_free(d);
        return err;
    }
    chat_log_warn("demo endpoints enabled (/v1/demo, /v1/demo/token, /v1/demo/config): anyone "
                  "who reaches this gateway gets tokens of the demo tenant; never in production",
                  CHAT_F_STR("tenant", d->tenant), CHAT_F_INT("gateways", d->ngateways));
    *out = d;
    return CHAT_OK;
}

void gw_demo_free(gw_demo_t *d)
{
    if (d == NULL)
        return;
    if (d->secret != NULL) {
        OPENSSL_cleanse(d->secret, d->secret_len);
        free(d->secret);
    }
    for (size_t i = 0; i < d->ngateways; i++)
        free(d->gateways[i]);
    free(d->gateways);
    free(d);
}

chat_err_t gw_demo_token_json(const gw_demo_t *d, const char *user, int64_t now_s, char **out,
                              size_t *len)
{
    *out = NULL;
    if (!gw_demo_user_valid(user))
        return CHAT_ERR_INVALID;
    chat_jwt_claims_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.tenant, sizeof c.tenant, "%s", d->tenant);
    snprintf(c.user, sizeof c.user, "%s", user);
    snprintf(c.name, sizeof c.name, "%s", user);
    if (c.name[0] >= 'a' && c.name[0] <= 'z')
        c.name[0] = (char)(c.name[0] - 'a' + 'A');
    c.exp = now_s + GW_DEMO_TOKEN_TTL_S;
    char *token = NULL;
    chat_err_t err = chat_jwt_sign(&c, d->secret, d->secret_len, &token);
    if (err != CHAT_OK)
        return err;
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL && cJSON_AddStringToObject(root, "token", token) != NULL &&
              chat_json_add_int(root, "exp", c.exp) &&
              cJSON_AddStringToObject(root, "user", user) != NULL &&
              cJSON_AddStringToObject(root, "tenant", d->tenant) != NULL;
    free(token);
    if (!ok) {
        cJSON_Delete(root);
        return CHAT_ERR_NOMEM;
    }
    return chat_json_print(root, out, len);
}

/* True if host looks like host[:port] or [v6]:port: what a URL can carry as it is. */
static bool host_plausible(const char *host)
{
    size_t n = host != NULL ? strlen(host) : 0;
    if (n == 0 || n > HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return false;
    }
    return true;
}

chat_err_t gw_demo_config_json(const gw_demo_t *d, const char *host, const char *fallback_host,
                               char **out, size_t *len)
{
    *out = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_CreateArray();
    bool ok = root != NULL && list != NULL;
    if (ok && d->ngateways == 0) {
        char url[URL_MAX];
        snprintf(url, sizeof url, "ws://%s/v1/ws", host_plausible(host) ? host : fallback_host);
        ok = cJSON_AddItemToArray(list, cJSON_CreateString(url));
    }
    for (size_t i = 0; ok && i < d->ngateways; i++)
        ok = cJSON_AddItemToArray(list, cJSON_CreateString(d->gateways[i]));
    ok = ok && cJSON_AddStringToObject(root, "tenant", d->tenant) != NULL;
    if (ok && cJSON_AddItemToObject(root, "gateways", list))
        list = NULL; /* root owns it */
    else
        ok = false;
    cJSON_Delete(list);
    if (!ok) {
        cJSON_Delete(root);
        return CHAT_ERR_NOMEM;
    }
    return chat_json_print(root, out, len);
}
