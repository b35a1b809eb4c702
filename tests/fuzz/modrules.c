/* Fuzz target modrules: a tenant's moderation rule set as `PUT /v1/moderation/rules` takes it
 * (common/modrules.c: validation against proto/moderation-rules.schema.json and its limits,
 * normalisation of every list entry, the blocklist automaton of common/mod_match.c, PCRE2
 * compilation of the regexes). A rule set that compiles is then checked against a few texts.
 * A refused one must name what is wrong. */
#include <cjson/cJSON.h>

#include "common/json.h"
#include "common/modrules.h"
#include "tests/fuzz/fuzz.h"

static const char *const texts[] = {
    "hello world",       "f*ck this sh1t",      "visit http://evil.example/x now",
    "@a @b @c @d @e hi", "4111 1111 1111 1111", "ｆｕｃｋ f.u.c.k fuuuuck",
};

FUZZ_QUIET_INIT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char reason[64];
    cJSON *doc = chat_json_parse_exact(data, size, reason, sizeof reason);
    if (doc == NULL)
        return 0;
    char field[CHAT_MOD_FIELD_MAX], why[CHAT_MOD_WHY_MAX];
    chat_err_t err = CHAT_OK;
    field[0] = why[0] = '\0';
    chat_mod_rules_t *r = chat_mod_rules_compile(doc, field, why, &err);
    if (r == NULL) {
        FUZZ_ASSERT(err == CHAT_ERR_INVALID || err == CHAT_ERR_NOMEM, "err %d", (int)err);
        if (err == CHAT_ERR_INVALID) {
            FUZZ_ASSERT(why[0] != '\0', "refused without a reason (field %s)", field);
            FUZZ_ASSERT(memchr(field, 0, sizeof field) && memchr(why, 0, sizeof why),
                        "unterminated field or reason");
        }
    } else {
        FUZZ_ASSERT(err == CHAT_OK, "compiled with err %d", (int)err);
        (void)chat_mod_rules_empty(r);
        (void)chat_mod_rules_spam(r);
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
            chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
            size_t n = chat_mod_rules_check(r, texts[i], strlen(texts[i]), hits, CHAT_MOD_HITS_MAX);
            FUZZ_ASSERT(n <= CHAT_MOD_HITS_MAX, "%zu hits", n);
            for (size_t k = 0; k < n; k++)
                FUZZ_ASSERT(hits[k].rule != NULL && chat_mod_action_name(hits[k].action) &&
                                chat_mod_kind_name(hits[k].kind),
                            "hit %zu", k);
        }
        chat_mod_rules_free(r);
    }
    cJSON_Delete(doc);
    return 0;
}
