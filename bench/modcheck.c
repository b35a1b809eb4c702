/* modcheck: the moderation rule engine's cost per check (common/modrules.h) for a rule set
 * of 10 blocklist entries against one of 10,000 entries (+ 20 regexes), and the memory each
 * rule set holds. A micro benchmark, not a test: it prints numbers and asserts nothing.
 *
 *   modcheck [iterations]      (default 20000 checks per case) */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "common/modrules.h"

/* A fixed pseudo-random sequence (xorshift), so that runs compare. */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng % n);
}

/* A rule set document: one list of `words` entries (3 real ones, the rest random words of
 * 4-10 letters), and `regexes` regexes of the kinds tenants write. */
static cJSON *make_doc(int words, int regexes)
{
    static const char *real[] = {"fuck", "shit", "kill yourself"};
    cJSON *doc = cJSON_CreateObject();
    cJSON *lists = cJSON_AddArrayToObject(doc, "blocklists");
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, "name", "profanity");
    cJSON *arr = cJSON_AddArrayToObject(l, "words");
    for (int i = 0; i < words; i++) {
        char w[16];
        if (i < 3) {
            snprintf(w, sizeof w, "%s", real[i]);
        } else {
            int len = 4 + (int)rnd(7);
            for (int k = 0; k < len; k++)
                w[k] = (char)('a' + rnd(26));
            w[len] = '\0';
        }
        cJSON_AddItemToArray(arr, cJSON_CreateString(w));
    }
    cJSON_AddStringToObject(l, "action", "remove");
    cJSON_AddItemToArray(lists, l);
    cJSON *allow = cJSON_AddArrayToObject(doc, "allow");
    cJSON_AddItemToArray(allow, cJSON_CreateString("scunthorpe"));
    if (regexes > 0) {
        static const char *pats[] = {
            "\\b(?:\\d[ -]?){13,16}\\b",
            "\\b[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}\\b",
            "(?:buy|cheap|free)\\s+(?:followers|likes|crypto)",
            "\\b\\d{3}-\\d{2}-\\d{4}\\b",
            "(.)\\1{9,}",
            "discord\\.gg/\\w+",
            "\\bt\\.me/\\w+",
            "\\b[a-z]{40,}\\b",
        };
        cJSON *rx = cJSON_AddArrayToObject(doc, "regex");
        for (int i = 0; i < regexes; i++) {
            cJSON *x = cJSON_CreateObject();
            char name[16];
            snprintf(name, sizeof name, "rx%d", i);
            cJSON_AddStringToObject(x, "name", name);
            cJSON_AddStringToObject(x, "pattern", pats[i % (sizeof pats / sizeof pats[0])]);
            cJSON_AddStringToObject(x, "action", "flag");
            cJSON_AddItemToArray(rx, x);
        }
    }
    return doc;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Compiles doc, printing the heap it took (mallinfo2 before and after: ICU's and PCRE2's
 * allocations included). Exits on failure. */
static chat_mod_rules_t *compile(const cJSON *doc, const char *label)
{
    char field[CHAT_MOD_FIELD_MAX], why[CHAT_MOD_WHY_MAX];
    chat_err_t err;
    /* the first compile also builds the process-wide confusables table: not the rule set's */
    static bool warmed;
    if (!warmed) {
        cJSON *w = cJSON_Parse("{\"blocklists\": [{\"name\": \"w\", \"words\": [\"x\"], "
                               "\"action\": \"flag\"}]}");
        chat_mod_rules_free(chat_mod_rules_compile(w, field, why, &err));
        cJSON_Delete(w);
        warmed = true;
    }
    struct mallinfo2 before = mallinfo2();
    double t0 = now_ns();
    chat_mod_rules_t *r = chat_mod_rules_compile(doc, field, why, &err);
    double t1 = now_ns();
    struct mallinfo2 after = mallinfo2();
    if (!r) {
        fprintf(stderr, "modcheck: %s does not compile: %s: %s\n", label, field, why);
        exit(1);
    }
    size_t bytes = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
    printf("%-34s compile %8.1f ms  memory %8.1f KiB\n", label, (t1 - t0) / 1e6,
           (double)bytes / 1024.0);
    return r;
}

/* Checks the texts in turn, iterations checks in 5 rounds; prints the best round's ns per
 * check (the machine is shared: the best round is the one least disturbed). */
static void run(const chat_mod_rules_t *r, const char *label, const char *const *texts,
                size_t ntexts, int iterations)
{
    chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
    size_t fired = 0;
    int per_round = iterations / 5 > 0 ? iterations / 5 : 1;
    double best = 0;
    for (int round = 0; round < 5; round++) {
        double t0 = now_ns();
        for (int i = 0; i < per_round; i++) {
            const char *t = texts[(size_t)i % ntexts];
            fired += chat_mod_rules_check(r, t, strlen(t), hits, CHAT_MOD_HITS_MAX);
        }
        double ns = (now_ns() - t0) / per_round;
        if (round == 0 || ns < best)
            best = ns;
    }
    printf("%-34s %8.0f ns/check  (%zu hits in %d checks)\n", label, best, fired, per_round * 5);
}

int main(int argc, char **argv)
{
    int iterations = argc > 1 ? atoi(argv[1]) : 20000;
    if (iterations < 1)
        iterations = 1;
    static const char *chat[] = {
        "Good morning everyone, the meeting starts at 10:30 in room 4B.",
        "Can you send me the report by Friday? Thanks!",
        "lol that was so funny 😂😂 see you tomorrow",
        "The tickets cost $45.99 each, or £39 if you book early.",
        "what the ｆｕｃｋ is this",
        "Привет, как дела? Увидимся вечером.",
        "I'm in Scunthorpe until next week, call me at +44 20 7946 0958",
        "check out https://example.org/some/page?x=1 and www.example.com",
    };
    char *long_text = malloc(4001);
    for (int i = 0; i < 4000; i++)
        long_text[i] = "the quick brown fox jumps over a lazy dog "[i % 42];
    long_text[4000] = '\0';
    const char *longs[] = {long_text};

    cJSON *d10 = make_doc(10, 0), *d10k = make_doc(10000, 0), *d10k20 = make_doc(10000, 20);
    chat_mod_rules_t *r10 = compile(d10, "10 entries");
    chat_mod_rules_t *r10k = compile(d10k, "10,000 entries");
    chat_mod_rules_t *r10k20 = compile(d10k20, "10,000 entries + 20 regexes");
    printf("\nchat texts (%zu kinds, 20-70 characters):\n", sizeof chat / sizeof chat[0]);
    run(r10, "10 entries", chat, sizeof chat / sizeof chat[0], iterations);
    run(r10k, "10,000 entries", chat, sizeof chat / sizeof chat[0], iterations);
    run(r10k20, "10,000 entries + 20 regexes", chat, sizeof chat / sizeof chat[0], iterations);
    printf("\na 4000-character text:\n");
    int long_iter = iterations / 20 > 0 ? iterations / 20 : 1;
    run(r10, "10 entries", longs, 1, long_iter);
    run(r10k, "10,000 entries", longs, 1, long_iter);
    run(r10k20, "10,000 entries + 20 regexes", longs, 1, long_iter);
    chat_mod_rules_free(r10);
    chat_mod_rules_free(r10k);
    chat_mod_rules_free(r10k20);
    cJSON_Delete(d10);
    cJSON_Delete(d10k);
    cJSON_Delete(d10k20);
    free(long_text);
    return 0;
}
