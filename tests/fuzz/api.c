/* Fuzz target api: the server API's request parsing without a database (services/api). The
 * first byte picks what the rest is:
 *   0: a request body as http.c reads it (escaped NUL refused, one exact JSON value, an
 *      object), then handed to every body validator: the settings PATCH merge
 *      (chat_settings_merge, and the typed views of the result), a moderator's review, a rescan's
 *      parameters, a webhook (create and PATCH, both egress policies), and the generic field
 *      checks of the resource modules (api_body_fields, api_body_string, api_body_users);
 *   1: a URL path routed against every route pattern the api registers (api_pattern_match,
 *      percent-decoding of each segment);
 *   2: query values and headers: percent-decoding (with and without '+'), ?cursor=, ?limit=,
 *      ?state=, Authorization: Bearer, an origin and an e-mail address of the settings, the
 *      flags' and webhooks' page positions, a room name.
 * Valid results are checked against what each parser promises. */
#include <cjson/cJSON.h>

#include "common/json.h"
#include "common/names.h"
#include "common/tenant_settings.h"
#include "services/api/api.h"
#include "services/api/http.h"
#include "services/api/moderation.h"
#include "services/api/rooms.h"
#include "services/api/settings.h"
#include "services/api/webhooks.h"
#include "tests/fuzz/fuzz.h"

#define NOW_MS 1700000000000LL

static const char *const routes[] = {
    "/v1/exports",
    "/v1/exports/{id}",
    "/v1/moderation/flags",
    "/v1/moderation/flags/{id}",
    "/v1/moderation/rescan",
    "/v1/moderation/rescan/{id}",
    "/v1/moderation/rules",
    "/v1/rooms",
    "/v1/rooms/{room}",
    "/v1/rooms/{room}/members",
    "/v1/rooms/{room}/members/{user}",
    "/v1/rooms/{room}/messages",
    "/v1/rooms/{room}/messages/{id}",
    "/v1/settings",
    "/v1/stats",
    "/v1/users/{user}",
    "/v1/users/{user}/blocks",
    "/v1/users/{user}/blocks/{target}",
    "/v1/users/{user}/erasure/{job}",
    "/v1/users/{user}/notifications",
    "/v1/users/{user}/rooms",
    "/v1/webhooks",
    "/v1/webhooks/{id}",
    "/v1/webhooks/{id}/rotate-secret",
    "/v1/webhooks/{id}/test",
};

FUZZ_QUIET_INIT

static void resp_clear(api_resp_t *resp)
{
    cJSON_Delete(resp->body);
    memset(resp, 0, sizeof *resp);
}

static void bodies(cJSON *body)
{
    char error[512];

    cJSON *settings = chat_settings_defaults();
    if (settings == NULL)
        abort();
    cJSON *before = cJSON_Duplicate(settings, true);
    if (chat_settings_merge(settings, body, error, sizeof error)) {
        api_settings_t typed;
        api_settings_from_json(settings, &typed);
        chat_settings_policy_t policy;
        if (chat_settings_policy_from_json(settings, &policy) == CHAT_OK) {
            (void)chat_settings_origin_allowed(&policy, "https://fuzz.example");
            chat_settings_policy_clear(&policy);
        }
        /* merging the result again into the defaults gives the same settings */
        cJSON *again = chat_settings_defaults();
        FUZZ_ASSERT(chat_settings_merge(again, settings, error, sizeof error),
                    "merged settings refused as a patch: %s", error);
        FUZZ_ASSERT(cJSON_Compare(again, settings, true), "settings merge is not idempotent");
        cJSON_Delete(again);
    } else {
        FUZZ_ASSERT(cJSON_Compare(before, settings, true), "refused patch changed settings");
        FUZZ_ASSERT(error[0] != '\0', "refused patch without a reason");
    }
    cJSON_Delete(before);
    cJSON_Delete(settings);

    api_mod_review_t review;
    if (api_mod_review_parse(body, &review, error, sizeof error)) {
        char by[256];
        api_mod_review_by(&review, by, sizeof by);
        (void)api_mod_review_state(&review);
    }

    api_rescan_params_t rescan;
    if (api_rescan_params_parse(body, NOW_MS, &rescan, error, sizeof error)) {
        FUZZ_ASSERT(rescan.since <= rescan.until && rescan.until <= NOW_MS, "rescan window");
        if (rescan.room != NULL)
            FUZZ_ASSERT(chat_name_room_valid(rescan.room), "rescan room %s", rescan.room);
    }

    for (int i = 0; i < 4; i++) {
        chat_egress_policy_t policy = {.allow_http = i & 1, .allow_private = i & 1};
        api_webhook_input_t wh;
        if (api_webhook_parse(body, (i & 2) != 0, &policy, &wh, error, sizeof error)) {
            if (i & 2)
                FUZZ_ASSERT(wh.url != NULL && wh.events != 0, "webhook create without url");
            if (wh.events != 0) {
                cJSON *ev = api_webhook_events_json(wh.events);
                cJSON_Delete(ev);
            }
        }
    }

    api_req_t req = {.method = API_POST,
                     .tenant = "acme",
                     .request_id = "req-fuzz",
                     .origin_conn = "api-fuzz-1",
                     .body = body};
    api_resp_t resp = {0};
    static const char *const allowed[] = {"user", "users", "name", "private", NULL};
    if (!api_body_fields(&req, &resp, allowed))
        FUZZ_ASSERT(resp.status == 400, "unknown field answered %d", resp.status);
    resp_clear(&resp);
    const char *str = NULL;
    if (api_body_string(&req, &resp, "user", false, &str) && str != NULL)
        FUZZ_ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(body, "user")), "user");
    resp_clear(&resp);
    const char **users = NULL;
    size_t n = 0;
    if (api_body_users(&req, &resp, "users", false, 100, &users, &n)) {
        FUZZ_ASSERT(n <= 100, "%zu users", n);
        for (size_t i = 0; i < n; i++)
            FUZZ_ASSERT(chat_name_user_valid(users[i]), "user %s", users[i]);
    }
    free(users);
    resp_clear(&resp);
}

static void body_mode(const uint8_t *data, size_t size)
{
    if (chat_json_has_escaped_nul((const char *)data, size))
        return;
    char reason[64];
    cJSON *body = chat_json_parse_exact(data, size, reason, sizeof reason);
    if (body == NULL)
        return;
    if (cJSON_IsObject(body))
        bodies(body);
    cJSON_Delete(body);
}

static void path_mode(const uint8_t *data, size_t size)
{
    char *path = fuzz_strndup(data, size);
    for (size_t r = 0; r < sizeof routes / sizeof routes[0]; r++) {
        char *params[API_MAX_PARAMS + 1] = {0};
        size_t n = 0;
        bool ok = api_pattern_match(routes[r], path, params, &n);
        FUZZ_ASSERT(n <= API_MAX_PARAMS, "%zu params", n);
        for (size_t i = 0; i < n; i++) {
            if (ok)
                FUZZ_ASSERT(params[i] != NULL && params[i][0] != '\0', "empty param");
            free(params[i]);
        }
    }
    free(path);
}

static void value_mode(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);
    for (int plus = 0; plus < 2; plus++) {
        char *d = api_percent_decode(s, size, plus);
        if (d != NULL) {
            FUZZ_ASSERT(strlen(d) <= size, "decoding grew");
            free(d);
        }
    }
    char raw[256];
    if (api_cursor_decode(s, raw, sizeof raw)) {
        FUZZ_ASSERT(strlen(raw) < sizeof raw, "cursor");
        char *again = api_cursor_encode(raw);
        FUZZ_ASSERT(again != NULL && strcmp(again, s) == 0, "cursor round trip: %s", s);
        free(again);
    }
    int limit = 0;
    if (api_limit_parse(s, &limit))
        FUZZ_ASSERT(limit >= 1 && limit <= 100, "limit %d", limit);
    bool valid = false;
    (void)api_mod_flags_state(s, &valid);
    const char *tok = api_bearer_token(s);
    if (tok != NULL)
        FUZZ_ASSERT(tok >= s && tok <= s + size, "bearer token outside the header");
    (void)chat_settings_origin_valid(s);
    (void)chat_settings_email_valid(s);
    (void)api_room_name_valid(s);
    (void)api_webhook_id_valid(s);
    int64_t ts = 0;
    char id[25];
    if (api_mod_flags_pos_parse(s, &ts, id)) {
        char back[128];
        api_mod_flags_pos_format(ts, id, back, sizeof back);
        FUZZ_ASSERT(strcmp(back, s) == 0, "flags position round trip: %s -> %s", s, back);
    }
    char whid[API_WEBHOOK_ID_LEN + 1];
    if (api_webhook_pos_parse(s, &ts, whid)) {
        char back[128];
        api_webhook_pos_format(ts, whid, back, sizeof back);
        FUZZ_ASSERT(strcmp(back, s) == 0, "webhook position round trip: %s -> %s", s, back);
    }
    chat_mod_kind_t kind;
    if (api_mod_kind_parse(s, &kind))
        FUZZ_ASSERT(strcmp(chat_mod_kind_name(kind), s) == 0, "kind %s", s);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode = fuzz_take_byte(&data, &size) % 3;
    if (mode == 0)
        body_mode(data, size);
    else if (mode == 1)
        path_mode(data, size);
    else
        value_mode(data, size);
    return 0;
}
