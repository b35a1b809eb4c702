/* Fuzz target misc: the smaller parsers of bytes that come from clients, Kafka, Redis or
 * HTTP, each fed the whole input: the in-place JSON reader chat.deliver's decoder uses
 * (common/json.c: cursor, string, skip, unescape) checked against cJSON, the name validators
 * and UTF-8 counters every frame and event goes through (common/names.c), the room list's
 * cursor (common/room_list_page.c), the useq value read from Redis and a gateway id read from
 * a record (common/contract.c), a webhook signing secret (common/whsign.c) and an outgoing
 * URL (common/egress.c, both policies). */
#include <cjson/cJSON.h>

#include "common/contract.h"
#include "common/egress.h"
#include "common/json.h"
#include "common/names.h"
#include "common/room_list_page.h"
#include "common/whsign.h"
#include "tests/fuzz/fuzz.h"

FUZZ_QUIET_INIT

/* True if s has a \uD800-\uDFFF escape (or what looks like one). */
static bool has_surrogate_escape(const char *s, size_t size)
{
    for (size_t i = 0; i + 2 < size; i++)
        if (s[i] == '\\' && s[i + 1] == 'u' && (s[i + 2] == 'd' || s[i + 2] == 'D'))
            return true;
    return false;
}

static void json_reader(const char *s, size_t size)
{
    /* a value that skips is a value cJSON parses, whole, at any depth up to 64 */
    chat_json_cur_t c = {.p = s, .end = s + size};
    bool skipped = chat_json_cur_skip(&c, 64);
    if (skipped) {
        FUZZ_ASSERT(c.p <= c.end, "cursor past the end");
        bool whole = chat_json_cur_peek(&c) == 0;
        /* RFC 8259's grammar allows \u escapes of lone surrogates, cJSON refuses them */
        if (whole && !chat_json_has_escaped_nul(s, size) && !has_surrogate_escape(s, size)) {
            cJSON *j = cJSON_ParseWithLength(s, size);
            FUZZ_ASSERT(j != NULL, "skipped value that cJSON refuses");
            cJSON_Delete(j);
        }
    }
    c = (chat_json_cur_t){.p = s, .end = s + size};
    const char *str = NULL;
    size_t len = 0;
    bool escaped = false;
    if (chat_json_cur_string(&c, &str, &len, &escaped)) {
        FUZZ_ASSERT(str >= s && str + len <= s + size, "string outside the text");
        char *out = malloc(len + 1);
        if (out == NULL)
            abort();
        size_t n = chat_json_unescape(str, len, out);
        FUZZ_ASSERT(n == SIZE_MAX || n <= len, "unescaped longer than escaped");
        if (!escaped)
            FUZZ_ASSERT(n == len && memcmp(out, str, len) == 0, "plain string changed");
        free(out);
    }
}

static void names(const char *s, size_t size)
{
    (void)chat_name_room_valid(s);
    (void)chat_name_tenant_valid(s);
    (void)chat_name_user_valid(s);
    (void)chat_name_cid_valid(s);
    (void)chat_name_message_id_valid(s);
    (void)chat_name_emoji_valid(s);
    (void)chat_name_endpoint_valid(s);
    if (chat_room_is_dm(s) && chat_room_dm_valid(s))
        (void)chat_room_dm_has(s, "alice");
    long n = chat_utf8_chars(s, size);
    long p = chat_utf8_chars_printable(s, size);
    FUZZ_ASSERT(n <= (long)size && p <= (long)size, "more characters than bytes");
    if (n >= 0)
        FUZZ_ASSERT(p < 0 || p == n, "printable count %ld differs from %ld", p, n);
}

static void cursors(const char *s, size_t size)
{
    if (chat_room_page_cursor_valid(s)) {
        chat_room_rank_t rooms[] = {{"general", 5}, {"lobby", 3}, {"zeta", 3}, {"alpha", 1}};
        size_t first = 0, count = 0;
        bool more = false;
        FUZZ_ASSERT(chat_room_page_select(rooms, 4, s, 2, &first, &count, &more),
                    "valid cursor refused by select: %s", s);
        FUZZ_ASSERT(first + count <= 4 && count <= 2, "page %zu+%zu", first, count);
    }
    int64_t useq = 0;
    const char *run = "0123456789abcdef0123456789abcdef01234567";
    if (chat_useq_value_parse(s, size, run, &useq)) {
        char buf[CHAT_USEQ_VALUE_MAX];
        int n = chat_useq_value(run, useq, buf, sizeof buf);
        FUZZ_ASSERT(n >= 0, "useq value does not print back");
    }
    int32_t part = chat_gateway_partition(s);
    if (part >= 0) {
        char buf[32];
        snprintf(buf, sizeof buf, "%d", part);
        FUZZ_ASSERT(strcmp(buf, s) == 0, "gateway id %s read as %d", s, part);
    }
    (void)chat_whsign_secret_valid(s);
    for (int i = 0; i < 2; i++) {
        chat_egress_policy_t policy = {.allow_http = i, .allow_private = i};
        char err[256];
        (void)chat_egress_url_check(&policy, s, err, sizeof err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);
    json_reader(s, size);
    names(s, size);
    cursors(s, size);
    free(s);
    return 0;
}
