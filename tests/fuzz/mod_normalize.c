/* Fuzz target mod_normalize: the moderation normaliser (common/mod_normalize.c) on message
 * texts: pass 0 (NFKC case folding with ICU), pass 1 (confusables, leetspeak, masks, spaced
 * letters, runs), pass 2 (joins across punctuation), chat_mod_normalize (the repeat rule's
 * form), and a check of the text against a fixed rule set with every kind of content rule
 * (common/modrules.c, common/mod_match.c: the blocklist automaton, regexes, links, mentions). */
#include <cjson/cJSON.h>

#include "common/mod_normalize.h"
#include "common/modrules.h"
#include "tests/fuzz/fuzz.h"

#define TEXT_MAX_BYTES 16000 /* 4000 characters of up to 4 bytes: what the protocol allows */

static const char *const rules_json =
    "{\"blocklists\":[{\"name\":\"bad\",\"action\":\"remove\","
    "\"words\":[\"fuck\",\"shit\",\"scam link\",\"b*tch\",\"\\u0430\\u0431\"]},"
    "{\"name\":\"soft\",\"action\":\"flag\",\"words\":[\"darn\",\"heck\"]}],"
    "\"allow\":[\"scunthorpe\"],"
    "\"regex\":[{\"name\":\"card\",\"pattern\":\"\\\\b(?:\\\\d[ -]?){13,16}\\\\b\","
    "\"action\":\"flag\"}],"
    "\"links\":{\"action\":\"flag\",\"deny_domains\":[\"evil.example\"]},"
    "\"spam\":{\"mentions\":{\"max\":3,\"action\":\"flag\"}}}";

static chat_mod_rules_t *rules;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    cJSON *doc = cJSON_Parse(rules_json);
    char field[CHAT_MOD_FIELD_MAX], why[CHAT_MOD_WHY_MAX];
    chat_err_t err;
    rules = doc != NULL ? chat_mod_rules_compile(doc, field, why, &err) : NULL;
    if (rules == NULL) {
        fprintf(stderr, "fuzz rule set refused: %s: %s\n", field, why);
        abort();
    }
    cJSON_Delete(doc);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > TEXT_MAX_BYTES)
        return 0;
    const char *text = (const char *)data;
    uint16_t *u16 = NULL;
    int32_t n16 = 0;
    char *utf8 = NULL;
    size_t n8 = 0;
    if (chat_mod_norm_pass0(text, size, &u16, &n16, &utf8, &n8) == CHAT_OK) {
        FUZZ_ASSERT(n16 >= 0 && utf8 != NULL && strlen(utf8) <= n8 && utf8[n8] == '\0',
                    "pass 0 lengths");
        chat_mod_stream_t s1 = {0}, s2 = {0};
        if (chat_mod_norm_pass1(u16, n16, &s1) == CHAT_OK) {
            FUZZ_ASSERT(s1.len <= s1.cap, "pass 1 len > cap");
            for (size_t i = 0; i < s1.len; i++)
                FUZZ_ASSERT(s1.run[i] >= 1, "pass 1 run 0 at %zu", i);
            if (chat_mod_norm_pass2(&s1, &s2) == CHAT_OK) {
                FUZZ_ASSERT(s2.len <= s1.len, "pass 2 longer than pass 1");
                for (size_t i = 0; i < s2.len; i++)
                    FUZZ_ASSERT(s2.run[i] >= 1, "pass 2 run 0 at %zu", i);
            }
        }
        chat_mod_stream_free(&s1);
        chat_mod_stream_free(&s2);
        free(u16);
        free(utf8);
    }
    char *norm = chat_mod_normalize(text, size);
    free(norm);
    chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
    size_t n = chat_mod_rules_check(rules, text, size, hits, CHAT_MOD_HITS_MAX);
    FUZZ_ASSERT(n <= CHAT_MOD_HITS_MAX, "%zu hits", n);
    for (size_t i = 0; i < n; i++)
        FUZZ_ASSERT(hits[i].rule != NULL, "hit without a rule");
    return 0;
}
