/* Unit tests of common/modrules: the evasion corpus caught with the right action, the
 * false-positive corpus passed, run lengths, the loose pass, allowlist, regex limits, links,
 * mentions, every validation error path, the proto samples, and 4 threads on one rule set. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "common/modrules.h"
#include "tests/support/util.h"

/* The corpora's rule set: words of the profanity list sit inside many ordinary words
 * (Penistone, Essex, classic, grape, analysis, Shell...), which whole-word matching and run
 * lengths must let through. */
static const char *RULES =
    "{\"blocklists\": ["
    " {\"name\": \"profanity\", \"words\": [\"fuck\", \"shit\", \"bitch\", \"asshole\", \"ass\","
    "  \"dick\", \"cock\", \"penis\", \"sex\", \"tit\", \"rape\", \"rapist\", \"anal\", \"hell\"],"
    "  \"match\": \"word\", \"action\": \"remove\"},"
    " {\"name\": \"slurs\", \"words\": [\"cunt\"], \"match\": \"substring\", \"action\": "
    "\"remove\"},"
    " {\"name\": \"threats\", \"words\": [\"kill yourself\"], \"action\": \"mute\", \"mute_s\": "
    "600}"
    "],"
    " \"allow\": [\"scunthorpe\"],"
    " \"regex\": [{\"name\": \"card-numbers\", \"pattern\": \"\\\\b(?:\\\\d[ -]?){13,16}\\\\b\","
    "  \"action\": \"flag\"}],"
    " \"links\": {\"deny_domains\": [\"bad.example\"], \"max_links\": 3, \"action\": \"remove\"},"
    " \"spam\": {\"mentions\": {\"max\": 5, \"action\": \"flag\"}}}";

static chat_mod_rules_t *compile_text(const char *json, char *field, char *why, chat_err_t *err)
{
    cJSON *doc = cJSON_Parse(json);
    ck_assert_msg(doc != NULL, "test JSON does not parse: %s", json);
    chat_mod_rules_t *r = chat_mod_rules_compile(doc, field, why, err);
    cJSON_Delete(doc);
    return r;
}

static chat_mod_rules_t *compile_ok(const char *json)
{
    char field[CHAT_MOD_FIELD_MAX], why[CHAT_MOD_WHY_MAX];
    chat_err_t err;
    chat_mod_rules_t *r = compile_text(json, field, why, &err);
    ck_assert_msg(r != NULL, "compile failed: %s: %s", field, why);
    ck_assert_int_eq(err, CHAT_OK);
    return r;
}

static size_t check(const chat_mod_rules_t *r, const char *text, chat_mod_hit_t *hits)
{
    return chat_mod_rules_check(r, text, strlen(text), hits, CHAT_MOD_HITS_MAX);
}

/* The hit of rule among hits, or NULL. */
static const chat_mod_hit_t *hit_of(const chat_mod_hit_t *hits, size_t n, const char *rule)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(hits[i].rule, rule) == 0)
            return &hits[i];
    return NULL;
}

/* Appends the UTF-8 form of cp to out. */
static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the corpus escapes \uXXXX (surrogate pairs joined) and \n of s in place. */
static void unescape(char *s)
{
    char *w = s;
    for (char *p = s; *p;) {
        if (p[0] == '\\' && p[1] == 'n') {
            *w++ = '\n';
            p += 2;
        } else if (p[0] == '\\' && p[1] == 'u') {
            unsigned cp = (unsigned)strtoul((char[]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
            p += 6;
            if (cp >= 0xD800 && cp < 0xDC00 && p[0] == '\\' && p[1] == 'u') {
                unsigned lo = (unsigned)strtoul((char[]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            w += put_utf8(w, cp);
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
}

/* Opens tests/unit/common/modrules/<name> of the source tree. */
static FILE *corpus_open(const char *name)
{
    const char *src = getenv("CHAT_SOURCE_DIR");
    ck_assert_msg(src != NULL, "CHAT_SOURCE_DIR is not set");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/unit/common/modrules/%s", src, name);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    return f;
}

static chat_mod_action_t action_parse(const char *s)
{
    if (strcmp(s, "remove") == 0)
        return CHAT_MOD_REMOVE;
    if (strcmp(s, "mute") == 0)
        return CHAT_MOD_MUTE;
    ck_assert_str_eq(s, "flag");
    return CHAT_MOD_FLAG;
}

START_TEST(test_evasion_corpus)
{
    chat_mod_rules_t *r = compile_ok(RULES);
    FILE *f = corpus_open("evasion.txt");
    char line[1024];
    int cases = 0, failures = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *action = strtok(line, "\t"), *rule = strtok(NULL, "\t"), *text = strtok(NULL, "");
        ck_assert_msg(action && rule && text, "bad corpus line");
        unescape(text);
        chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
        size_t n = check(r, text, hits);
        const chat_mod_hit_t *h = hit_of(hits, n, rule);
        cases++;
        if (!h) {
            fprintf(stderr, "MISSED %s: %s\n", rule, text);
            failures++;
        } else if (h->action != action_parse(action)) {
            fprintf(stderr, "WRONG ACTION %s (%s, expected %s): %s\n", rule,
                    chat_mod_action_name(h->action), action, text);
            failures++;
        } else {
            ck_assert_int_eq(h->kind, CHAT_MOD_KIND_BLOCKLIST);
            ck_assert_int_eq(h->mute_s, h->action == CHAT_MOD_MUTE ? 600 : 0);
        }
    }
    fclose(f);
    chat_mod_rules_free(r);
    ck_assert_int_gt(cases, 80);
    ck_assert_msg(failures == 0, "%d of %d evasions not caught as expected", failures, cases);
}
END_TEST

START_TEST(test_benign_corpus)
{
    chat_mod_rules_t *r = compile_ok(RULES);
    FILE *f = corpus_open("benign.txt");
    char line[1024];
    int cases = 0, failures = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        unescape(line);
        chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
        size_t n = check(r, line, hits);
        cases++;
        if (n > 0) {
            fprintf(stderr, "FALSE HIT %s (%s): %s\n", hits[0].rule,
                    chat_mod_action_name(hits[0].action), line);
            failures++;
        }
    }
    fclose(f);
    chat_mod_rules_free(r);
    ck_assert_int_gt(cases, 150);
    ck_assert_msg(failures == 0, "%d of %d ordinary texts hit", failures, cases);
}
END_TEST

START_TEST(test_run_lengths)
{
    chat_mod_rules_t *r = compile_ok("{\"blocklists\": [{\"name\": \"w\", \"words\": [\"ass\", "
                                     "\"kill\"], \"action\": \"remove\"}]}");
    chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
    ck_assert_uint_eq(check(r, "as", hits), 0);
    ck_assert_uint_eq(check(r, "as you like", hits), 0);
    ck_assert_uint_eq(check(r, "kil", hits), 0);
    ck_assert_uint_eq(check(r, "ass", hits), 1);
    ck_assert_uint_eq(check(r, "asssss", hits), 1);
    ck_assert_uint_eq(check(r, "AAASSS", hits), 1);
    ck_assert_uint_eq(check(r, "kiiilll", hits), 1);
    chat_mod_rules_free(r);
}
END_TEST

START_TEST(test_match_modes_and_allow)
{
    chat_mod_rules_t *r = compile_ok(
        "{\"blocklists\": [{\"name\": \"sub\", \"words\": [\"cunt\"], \"match\": \"substring\","
        " \"action\": \"remove\"}, {\"name\": \"word\", \"words\": [\"sex\"], \"action\": "
        "\"flag\"}],"
        " \"allow\": [\"Scunthorpe\"]}");
    chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
    ck_assert_uint_eq(check(r, "Scunthorpe", hits), 0);
    ck_assert_uint_eq(check(r, "ＳＣＵＮＴＨＯＲＰＥ United", hits), 0);
    ck_assert_uint_eq(check(r, "Sussex", hits), 0);
    /* the allowlist covers only what is inside an allowed word */
    ck_assert_uint_eq(check(r, "Scunthorpe cunt", hits), 1);
    ck_assert_str_eq(hits[0].rule, "sub");
    ck_assert_uint_eq(check(r, "scunts", hits), 1);
    ck_assert_uint_eq(check(r, "sex", hits), 1);
    ck_assert_int_eq(hits[0].action, CHAT_MOD_FLAG);
    ck_assert_uint_eq(check(r, "sex and cunt", hits), 2);
    ck_assert_str_eq(hits[0].rule, "sub"); /* in rule order */
    ck_assert_str_eq(hits[1].rule, "word");
    ck_assert_uint_eq(chat_mod_rules_check(r, "sex and cunt", 12, hits, 1), 1);
    chat_mod_rules_free(r);
}
END_TEST

START_TEST(test_loose_setting)
{
    chat_mod_rules_t *r = compile_ok(
        "{\"blocklists\": ["
        " {\"name\": \"a\", \"words\": [\"fuck\"], \"action\": \"remove\"},"
        " {\"name\": \"b\", \"words\": [\"shit\"], \"action\": \"mute\", \"mute_s\": 60,"
        "  \"loose\": \"action\"},"
        " {\"name\": \"c\", \"words\": [\"bitch\"], \"action\": \"remove\", \"loose\": \"off\"}]}");
    chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
    ck_assert_uint_eq(check(r, "fu.ck", hits), 1);
    ck_assert_int_eq(hits[0].action, CHAT_MOD_FLAG);
    ck_assert_int_eq(hits[0].mute_s, 0);
    ck_assert_uint_eq(check(r, "sh.it", hits), 1);
    ck_assert_int_eq(hits[0].action, CHAT_MOD_MUTE);
    ck_assert_int_eq(hits[0].mute_s, 60);
    ck_assert_uint_eq(check(r, "bi.tch", hits), 0);
    ck_assert_uint_eq(check(r, "bitch", hits), 1);
    /* a pass-1 hit keeps the list's action */
    ck_assert_uint_eq(check(r, "fuck fu.ck", hits), 1);
    ck_assert_int_eq(hits[0].action, CHAT_MOD_REMOVE);
    /* joins of ordinary words are not hits: "is hit" holds "shit" only across a word's middle */
    ck_assert_uint_eq(check(r, "this hit the charts", hits), 0);
    /* a join of whole words is: the loose pass's known false hit, hence a flag by default */
    ck_assert_uint_eq(check(r, "fu ck", hits), 1);
    chat_mod_rules_free(r);
    r = compile_ok(RULES);
    size_t n = check(r, "the pen is on the table", hits);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(hits[0].rule, "profanity");
    ck_assert_int_eq(hits[0].action, CHAT_MOD_FLAG);
    chat_mod_rules_free(r);
}
END_TEST

START_TEST(test_normalize)
{
    char *a = chat_mod_normalize("Hello!!", 7);
    char *b = chat_mod_normalize("ｈｅｌｌｏ", strlen("ｈｅｌｌｏ"));
    char *c = chat_mod_normalize("  H\xE2\x80\x8B"
                                 "ELLO  ",
                                 12);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(a, b);
    ck_assert_str_eq(a, c);
    ck_assert_str_eq(a, "helo");
    free(a);
    free(b);
    free(c);
    char *d = chat_mod_normalize("sh1t and 2024, f*ck", 19);
    ck_assert_str_eq(d, "shit and 2024 f*ck");
    free(d);
    char *e = chat_mod_normalize("\xFF"
                                 "abc",
                                 4); /* a bad byte reads as U+FFFD */
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e, "abc");
    free(e);
}
END_TEST

START_TEST(test_empty_and_spam)
{
    chat_mod_rules_t *r = compile_ok("{}");
    ck_assert(chat_mod_rules_empty(r));
    chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
    ck_assert_uint_eq(check(r, "fuck", hits), 0);
    const chat_mod_spam_t *sp = chat_mod_rules_spam(r);
    ck_assert_int_eq(sp->repeat.count, 0);
    ck_assert_int_eq(sp->rate.per_min, 0);
    chat_mod_rules_free(r);
    chat_mod_rules_free(NULL);

    r = compile_ok("{\"spam\": {\"repeat\": {\"count\": 3, \"window_s\": 30, \"action\": \"flag\"},"
                   " \"rate\": {\"per_min\": 30, \"action\": \"mute\", \"mute_s\": 600}}}");
    ck_assert(!chat_mod_rules_empty(r));
    sp = chat_mod_rules_spam(r);
    ck_assert_int_eq(sp->repeat.count, 3);
    ck_assert_int_eq(sp->repeat.window_s, 30);
    ck_assert_int_eq(sp->repeat.action, CHAT_MOD_FLAG);
    ck_assert_int_eq(sp->rate.per_min, 30);
    ck_assert_int_eq(sp->rate.action, CHAT_MOD_MUTE);
    ck_assert_int_eq(sp->rate.mute_s, 600);
    ck_assert_int_eq(sp->mentions.max, 0);
    ck_assert_uint_eq(check(r, "anything", hits), 0);
    chat_mod_rules_free(r);

    r = compile_ok("{\"allow\": [\"scunthorpe\"]}");
    ck_assert(chat_mod_rules_empty(r));
    chat_mod_rules_free(r);
    ck_assert_str_eq(chat_mod_action_name(CHAT_MOD_MUTE), "mute");
    ck_assert_str_eq(chat_mod_kind_name(CHAT_MOD_KIND_MENTIONS), "mentions");
}
END_TEST

START_TEST(test_regex)
{
    chat_mod_rules_t *r = compile_ok(RULES);
    chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
    size_t n = check(r, "my card is 4111 1111 1111 1111 thanks", hits);
    const chat_mod_hit_t *h = hit_of(hits, n, "card-numbers");
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->kind, CHAT_MOD_KIND_REGEX);
    ck_assert_int_eq(h->action, CHAT_MOD_FLAG);
    /* regexes read the pass-0 text: fullwidth digits are digits, leetspeak is not applied */
    ck_assert_uint_eq(check(r, "ｃａｒｄ ４１１１１１１１１１１１１１１１", hits), 1);
    ck_assert_uint_eq(check(r, "order 2024-11-03, room 12", hits), 0);
    chat_mod_rules_free(r);
}
END_TEST

START_TEST(test_regex_catastrophic)
{
    chat_mod_rules_t *r = compile_ok(
        "{\"regex\": [{\"name\": \"evil\", \"pattern\": \"(a+)+$\", \"action\": \"remove\"},"
        " {\"name\": \"evil2\", \"pattern\": \"^(\\\\w+\\\\s?)*$\", \"action\": \"remove\"},"
        " {\"name\": \"fine\", \"pattern\": \"b$\", \"action\": \"flag\"}]}");
    char *text = malloc(4002);
    memset(text, 'a', 4000);
    text[4000] = '!';
    text[4001] = '\0';
    chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t n = chat_mod_rules_check(r, text, 4001, hits, CHAT_MOD_HITS_MAX);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(s < 1.0, "a catastrophic regex took %.3f s", s);
    ck_assert_uint_eq(n, 0); /* a limit hit is no match */
    text[4000] = 'b';
    n = chat_mod_rules_check(r, text, 4001, hits, CHAT_MOD_HITS_MAX);
    ck_assert_ptr_nonnull(hit_of(hits, n, "fine"));
    free(text);
    chat_mod_rules_free(r);
}
END_TEST

START_TEST(test_links)
{
    chat_mod_rules_t *r = compile_ok(
        "{\"links\": {\"deny_domains\": [\"bad.example\", \"*.Evil.Example.\"], \"max_links\": 2,"
        " \"action\": \"remove\"}}");
    chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
    const char *bad[] = {
        "see https://bad.example/x",
        "http://www.bad.example:8080/?q=1",
        "go to bad.example now",
        "(sub.bad.example)",
        "BAD.EXAMPLE",
        "ｂａｄ．ｅｘａｍｐｌｅ",
        "https://user@bad.example/path",
        "x.evil.example and more",
        "a.com b.org c.net",
        "www.a.io, www.b.io, www.c.io",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = check(r, bad[i], hits);
        ck_assert_msg(n == 1, "link rule did not fire: %s", bad[i]);
        ck_assert_int_eq(hits[0].kind, CHAT_MOD_KIND_LINKS);
        ck_assert_str_eq(hits[0].rule, "links");
        ck_assert_int_eq(hits[0].action, CHAT_MOD_REMOVE);
    }
    const char *good[] = {
        "notbad.example.org is fine",
        "see good.example",
        "e.g. this, i.e. that",
        "it costs 3.50",
        "mail bob@bad.example",
        "a.com b.org",
        "wait...what",
        "U.S.A.",
        "https://ok.example/bad.example",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(check(r, good[i], hits) == 0, "link rule fired: %s", good[i]);
    chat_mod_rules_free(r);

    r = compile_ok("{\"links\": {\"allow_domains\": [\"chat.example\"], \"action\": \"flag\"}}");
    ck_assert_uint_eq(check(r, "docs at https://chat.example/docs and help.chat.example", hits), 0);
    ck_assert_uint_eq(check(r, "no links here", hits), 0);
    ck_assert_uint_eq(check(r, "try other.example", hits), 1);
    ck_assert_int_eq(hits[0].action, CHAT_MOD_FLAG);
    chat_mod_rules_free(r);

    r = compile_ok("{\"links\": {\"max_links\": 0, \"action\": \"mute\", \"mute_s\": 60}}");
    ck_assert_uint_eq(check(r, "http://localhost/x", hits), 1);
    ck_assert_int_eq(hits[0].mute_s, 60);
    ck_assert_uint_eq(check(r, "no link", hits), 0);
    chat_mod_rules_free(r);
}
END_TEST

START_TEST(test_mentions)
{
    chat_mod_rules_t *r =
        compile_ok("{\"spam\": {\"mentions\": {\"max\": 2, \"action\": \"flag\"}}}");
    chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
    ck_assert_uint_eq(check(r, "@alice @bob hi", hits), 0);
    ck_assert_uint_eq(check(r, "@alice @bob @carol hi", hits), 1);
    ck_assert_int_eq(hits[0].kind, CHAT_MOD_KIND_MENTIONS);
    ck_assert_str_eq(hits[0].rule, "mentions");
    ck_assert_uint_eq(check(r, "@alice,@bob,@ｃａｒｏｌ", hits), 1);
    ck_assert_uint_eq(check(r, "mail a@b.c, d@e.f, g@h.i", hits), 0); /* addresses */
    ck_assert_uint_eq(check(r, "@ @ @ @", hits), 0);
    chat_mod_rules_free(r);
    r = compile_ok("{\"spam\": {\"mentions\": {\"max\": 0, \"action\": \"remove\"}}}");
    ck_assert_uint_eq(check(r, "hi @bob", hits), 1);
    ck_assert_uint_eq(check(r, "hi bob", hits), 0);
    chat_mod_rules_free(r);
}
END_TEST

/* Texts built to be expensive or odd: masks everywhere, NUL and invalid bytes, the longest
 * text with the word at its very end. */
START_TEST(test_hostile_texts)
{
    chat_mod_rules_t *r = compile_ok(RULES);
    chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
    char *t = malloc(4100);
    size_t n = 0;
    while (n < 3990) { /* "a*a*a*...": a mask between every two letters */
        t[n++] = 'a';
        t[n++] = '*';
    }
    t[n++] = 'a';
    memcpy(t + n, " f*ck", 5);
    n += 5;
    size_t got = chat_mod_rules_check(r, t, n, hits, CHAT_MOD_HITS_MAX);
    ck_assert_ptr_nonnull(hit_of(hits, got, "profanity"));
    ck_assert_uint_eq(chat_mod_rules_check(r, t, n - 5, hits, CHAT_MOD_HITS_MAX), 0);

    memset(t, ' ', 4000); /* the word at the end of the longest text */
    memcpy(t + 3990, "ｆｕｃｋ", strlen("ｆｕｃｋ"));
    n = 3990 + strlen("ｆｕｃｋ");
    got = chat_mod_rules_check(r, t, n, hits, CHAT_MOD_HITS_MAX);
    ck_assert_ptr_nonnull(hit_of(hits, got, "profanity"));
    free(t);

    /* bad bytes read as U+FFFD (not a letter): the word around them is still seen */
    got = chat_mod_rules_check(r,
                               "\xFF\xFE"
                               "fuck\xC0",
                               7, hits, CHAT_MOD_HITS_MAX);
    ck_assert_int_eq(hit_of(hits, got, "profanity")->action, CHAT_MOD_REMOVE);
    /* a NUL is a control character: a separator */
    got = chat_mod_rules_check(r, "fu\0ck", 5, hits, CHAT_MOD_HITS_MAX);
    ck_assert_int_eq(hit_of(hits, got, "profanity")->action, CHAT_MOD_FLAG);
    got = chat_mod_rules_check(r, "f\0u\0c\0k", 7, hits, CHAT_MOD_HITS_MAX);
    ck_assert_int_eq(hit_of(hits, got, "profanity")->action, CHAT_MOD_REMOVE);
    ck_assert_uint_eq(chat_mod_rules_check(r, "", 0, hits, CHAT_MOD_HITS_MAX), 0);
    chat_mod_rules_free(r);
}
END_TEST

/* Every validation error path: the document, the field it names, a word of the reason. */
static const struct {
    const char *json, *field, *why;
} BAD[] = {
    {"[]", "", "not an object"},
    {"{\"colour\": 1}", "colour", "unknown field"},
    {"{\"allow\": [], \"allow\": []}", "allow", "duplicate field"},
    {"{\"blocklists\": {}}", "blocklists", "not an array"},
    {"{\"blocklists\": [1]}", "blocklists[0]", "not an object"},
    {"{\"blocklists\": [{\"words\": [], \"action\": \"flag\"}]}", "blocklists[0].name", "required"},
    {"{\"blocklists\": [{\"name\": \"\", \"words\": [], \"action\": \"flag\"}]}",
     "blocklists[0].name", "empty"},
    {"{\"blocklists\": [{\"name\": "
     "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
     " \"words\": [], \"action\": \"flag\"}]}",
     "blocklists[0].name", "longer than 64"},
    {"{\"blocklists\": [{\"name\": 5, \"words\": [], \"action\": \"flag\"}]}", "blocklists[0].name",
     "not a string"},
    {"{\"blocklists\": [{\"name\": \"links\", \"words\": [], \"action\": \"flag\"}]}",
     "blocklists[0].name", "reserved"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": [], \"action\": \"flag\"},"
     " {\"name\": \"x\", \"words\": [], \"action\": \"flag\"}]}",
     "blocklists[1].name", "not unique"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": [], \"action\": \"flag\"}],"
     " \"regex\": [{\"name\": \"x\", \"pattern\": \"a\", \"action\": \"flag\"}]}",
     "regex[0].name", "not unique"},
    {"{\"blocklists\": [{\"name\": \"x\", \"action\": \"flag\"}]}", "blocklists[0].words",
     "required"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": [\"a\", 7], \"action\": \"flag\"}]}",
     "blocklists[0].words[1]", "not a string"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": [\"ok\", \"\"], \"action\": \"flag\"}]}",
     "blocklists[0].words[1]", "empty"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": [\"ok\", \"!!!\"], \"action\": \"flag\"}]}",
     "blocklists[0].words[1]", "normalises to nothing"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": [\"\\u200b\\u00ad\"], \"action\": \"flag\"}]}",
     "blocklists[0].words[0]", "normalises to nothing"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": "
     "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"],"
     " \"action\": \"flag\"}]}",
     "blocklists[0].words[0]", "longer than 64"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": [], \"match\": \"regex\", \"action\": "
     "\"flag\"}]}",
     "blocklists[0].match", "word or substring"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": [], \"loose\": \"on\", \"action\": "
     "\"flag\"}]}",
     "blocklists[0].loose", "flag, action or off"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": []}]}", "blocklists[0].action", "required"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": [], \"action\": \"ban\"}]}",
     "blocklists[0].action", "remove, flag or mute"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": [], \"action\": \"mute\"}]}",
     "blocklists[0].mute_s", "required"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": [], \"action\": \"mute\", \"mute_s\": 0}]}",
     "blocklists[0].mute_s", "from 1 to 604800"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": [], \"action\": \"mute\", \"mute_s\": 1.5}]}",
     "blocklists[0].mute_s", "integer"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": [], \"action\": \"flag\", \"mute_s\": 60}]}",
     "blocklists[0].mute_s", "only with action mute"},
    {"{\"blocklists\": [{\"name\": \"x\", \"words\": [], \"action\": \"flag\", \"extra\": 1}]}",
     "blocklists[0].extra", "unknown field"},
    {"{\"allow\": \"scunthorpe\"}", "allow", "not an array"},
    {"{\"allow\": [\"ok\", \"...\"]}", "allow[1]", "normalises to nothing"},
    {"{\"regex\": [{\"name\": \"r\", \"pattern\": \"(a\", \"action\": \"flag\"}]}",
     "regex[0].pattern", "does not compile: missing closing parenthesis at 2"},
    {"{\"regex\": [{\"name\": \"r\", \"action\": \"flag\"}]}", "regex[0].pattern", "required"},
    {"{\"regex\": [{\"name\": \"r\", \"pattern\": \"\", \"action\": \"flag\"}]}",
     "regex[0].pattern", "empty"},
    {"{\"regex\": [{\"name\": \"r\", \"pattern\": \"a\", \"action\": \"flag\", \"flags\": \"i\"}]}",
     "regex[0].flags", "unknown field"},
    {"{\"regex\": [{\"name\": \"r\", \"pattern\": \"a\"}]}", "regex[0].action", "required"},
    {"{\"links\": []}", "links", "not an object"},
    {"{\"links\": {\"max_links\": 3}}", "links.action", "required"},
    {"{\"links\": {\"max_links\": 101, \"action\": \"flag\"}}", "links.max_links", "from 0 to 100"},
    {"{\"links\": {\"max_links\": -1, \"action\": \"flag\"}}", "links.max_links", "from 0 to 100"},
    {"{\"links\": {\"deny_domains\": [\"ok.example\", \"not a domain\"], \"action\": \"flag\"}}",
     "links.deny_domains[1]", "not a domain name"},
    {"{\"links\": {\"allow_domains\": [\"x.example/path\"], \"action\": \"flag\"}}",
     "links.allow_domains[0]", "not a domain name"},
    {"{\"links\": {\"deny_domains\": \"bad.example\", \"action\": \"flag\"}}", "links.deny_domains",
     "not an array"},
    {"{\"links\": {\"action\": \"flag\", \"block\": true}}", "links.block", "unknown field"},
    {"{\"spam\": 1}", "spam", "not an object"},
    {"{\"spam\": {\"flood\": {}}}", "spam.flood", "unknown field"},
    {"{\"spam\": {\"repeat\": {\"window_s\": 30, \"action\": \"flag\"}}}", "spam.repeat.count",
     "required"},
    {"{\"spam\": {\"repeat\": {\"count\": 1, \"window_s\": 30, \"action\": \"flag\"}}}",
     "spam.repeat.count", "from 2 to 100"},
    {"{\"spam\": {\"repeat\": {\"count\": 3, \"window_s\": 3601, \"action\": \"flag\"}}}",
     "spam.repeat.window_s", "from 1 to 3600"},
    {"{\"spam\": {\"repeat\": {\"count\": 3, \"window_s\": \"30\", \"action\": \"flag\"}}}",
     "spam.repeat.window_s", "integer"},
    {"{\"spam\": {\"mentions\": {\"max\": 101, \"action\": \"flag\"}}}", "spam.mentions.max",
     "from 0 to 100"},
    {"{\"spam\": {\"mentions\": {\"max\": 5}}}", "spam.mentions.action", "required"},
    {"{\"spam\": {\"rate\": {\"per_min\": 0, \"action\": \"flag\"}}}", "spam.rate.per_min",
     "from 1 to 10000"},
    {"{\"spam\": {\"rate\": {\"per_min\": 30, \"action\": \"mute\", \"mute_s\": 604801}}}",
     "spam.rate.mute_s", "from 1 to 604800"},
    {"{\"spam\": {\"rate\": {\"per_min\": 30, \"action\": \"flag\", \"burst\": 3}}}",
     "spam.rate.burst", "unknown field"},
};

START_TEST(test_validation_errors)
{
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        char field[CHAT_MOD_FIELD_MAX], why[CHAT_MOD_WHY_MAX];
        chat_err_t err = CHAT_OK;
        chat_mod_rules_t *r = compile_text(BAD[i].json, field, why, &err);
        ck_assert_msg(r == NULL, "compiled: %s", BAD[i].json);
        ck_assert_int_eq(err, CHAT_ERR_INVALID);
        ck_assert_msg(strcmp(field, BAD[i].field) == 0, "%s: field '%s', expected '%s' (%s)",
                      BAD[i].json, field, BAD[i].field, why);
        ck_assert_msg(strstr(why, BAD[i].why) != NULL, "%s: why '%s', expected '%s'", BAD[i].json,
                      why, BAD[i].why);
    }
}
END_TEST

/* Documents built in code: limits that would make unreadable literals. */
START_TEST(test_validation_limits)
{
    char field[CHAT_MOD_FIELD_MAX], why[CHAT_MOD_WHY_MAX];
    chat_err_t err;
    /* a regex over 256 characters */
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "regex");
    cJSON *x = cJSON_CreateObject();
    char pat[300];
    memset(pat, 'a', 257);
    pat[257] = '\0';
    cJSON_AddStringToObject(x, "name", "long");
    cJSON_AddStringToObject(x, "pattern", pat);
    cJSON_AddStringToObject(x, "action", "flag");
    cJSON_AddItemToArray(arr, x);
    ck_assert_ptr_null(chat_mod_rules_compile(doc, field, why, &err));
    ck_assert_str_eq(field, "regex[0].pattern");
    ck_assert_str_eq(why, "longer than 256 characters");
    pat[256] = '\0'; /* exactly 256 is fine */
    cJSON_ReplaceItemInObject(x, "pattern", cJSON_CreateString(pat));
    chat_mod_rules_t *r = chat_mod_rules_compile(doc, field, why, &err);
    ck_assert_ptr_nonnull(r);
    chat_mod_rules_free(r);
    cJSON_Delete(doc);

    /* 21 blocklists; 10,001 entries; 21 regexes; 1001 domains */
    doc = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(doc, "blocklists");
    for (int i = 0; i < 21; i++) {
        char name[16];
        snprintf(name, sizeof name, "l%d", i);
        x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", name);
        cJSON_AddArrayToObject(x, "words");
        cJSON_AddStringToObject(x, "action", "flag");
        cJSON_AddItemToArray(arr, x);
    }
    ck_assert_ptr_null(chat_mod_rules_compile(doc, field, why, &err));
    ck_assert_str_eq(field, "blocklists");
    ck_assert_str_eq(why, "more than 20 blocklists");
    cJSON_DeleteItemFromArray(arr, 20);
    cJSON *words = cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 19), "words");
    for (int i = 0; i < 10001; i++) {
        char w[16];
        snprintf(w, sizeof w, "w%dx", i);
        cJSON_AddItemToArray(words, cJSON_CreateString(w));
    }
    ck_assert_ptr_null(chat_mod_rules_compile(doc, field, why, &err));
    ck_assert_str_eq(field, "blocklists[19].words");
    ck_assert_str_eq(why, "more than 10000 entries");
    cJSON_DeleteItemFromArray(words, 0);
    r = chat_mod_rules_compile(doc, field, why, &err);
    ck_assert_msg(r != NULL, "%s: %s", field, why);
    chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
    ck_assert_uint_eq(check(r, "w9999x", hits), 1);
    ck_assert_str_eq(hits[0].rule, "l19");
    ck_assert_uint_eq(check(r, "w10000x", hits), 1);
    ck_assert_uint_eq(check(r, "w0x", hits), 0);
    chat_mod_rules_free(r);
    cJSON_Delete(doc);

    doc = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(doc, "regex");
    for (int i = 0; i < 21; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", name);
        cJSON_AddStringToObject(x, "pattern", "x");
        cJSON_AddStringToObject(x, "action", "flag");
        cJSON_AddItemToArray(arr, x);
    }
    ck_assert_ptr_null(chat_mod_rules_compile(doc, field, why, &err));
    ck_assert_str_eq(field, "regex");
    ck_assert_str_eq(why, "more than 20 regexes");
    cJSON_Delete(doc);

    doc = cJSON_CreateObject();
    x = cJSON_AddObjectToObject(doc, "links");
    cJSON_AddStringToObject(x, "action", "flag");
    arr = cJSON_AddArrayToObject(x, "deny_domains");
    for (int i = 0; i < 1001; i++) {
        char d[32];
        snprintf(d, sizeof d, "d%d.example", i);
        cJSON_AddItemToArray(arr, cJSON_CreateString(d));
    }
    ck_assert_ptr_null(chat_mod_rules_compile(doc, field, why, &err));
    ck_assert_str_eq(field, "links.deny_domains");
    ck_assert_str_eq(why, "more than 1000 domains");
    cJSON_Delete(doc);
}
END_TEST

/* Every proto/samples/moderation-rules.*.json: ok samples compile, bad ones do not (the proto
 * tests validate the same files with the JSON Schema). */
START_TEST(test_proto_samples)
{
    const char *src = getenv("CHAT_SOURCE_DIR");
    ck_assert_ptr_nonnull(src);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls '%s'/proto/samples/moderation-rules.*.json", src);
    FILE *ls = popen(cmd, "r");
    ck_assert_ptr_nonnull(ls);
    char path[1024];
    int ok = 0, bad = 0;
    while (fgets(path, sizeof path, ls)) {
        path[strcspn(path, "\n")] = '\0';
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        static char buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        cJSON *doc = cJSON_Parse(buf);
        ck_assert_msg(doc != NULL, "%s: not JSON", path);
        char field[CHAT_MOD_FIELD_MAX], why[CHAT_MOD_WHY_MAX];
        chat_err_t err;
        chat_mod_rules_t *r = chat_mod_rules_compile(doc, field, why, &err);
        if (strstr(path, ".ok-")) {
            ck_assert_msg(r != NULL, "%s should compile: %s: %s", path, field, why);
            ok++;
        } else {
            ck_assert_msg(r == NULL, "%s should not compile", path);
            bad++;
        }
        chat_mod_rules_free(r);
        cJSON_Delete(doc);
    }
    pclose(ls);
    ck_assert_int_ge(ok, 2);
    ck_assert_int_ge(bad, 5);
}
END_TEST

/* ---- 4 threads checking against one rule set at once ---- */

typedef struct worker {
    const chat_mod_rules_t *r;
    int mismatches;
} worker_t;

static const struct {
    const char *text;
    size_t hits;
} THREAD_CASES[] = {
    {"ｆｕｃｋ", 1},          {"Scunthorpe", 0},          {"f.u.c.k", 1},
    {"hello world", 0},       {"4111 1111 1111 1111", 1}, {"see bad.example", 1},
    {"@a @b @c @d @e @f", 1}, {"kill yourself", 1},       {"classic", 0},
};

static void *worker_run(void *arg)
{
    worker_t *w = arg;
    char *evil = malloc(3001);
    memset(evil, 'a', 3000);
    evil[3000] = '\0';
    for (int round = 0; round < 40; round++) {
        for (size_t i = 0; i < sizeof THREAD_CASES / sizeof THREAD_CASES[0]; i++) {
            chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
            size_t n = chat_mod_rules_check(w->r, THREAD_CASES[i].text,
                                            strlen(THREAD_CASES[i].text), hits, CHAT_MOD_HITS_MAX);
            if (n != THREAD_CASES[i].hits)
                w->mismatches++;
        }
        chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
        chat_mod_rules_check(w->r, evil, 3000, hits, CHAT_MOD_HITS_MAX);
    }
    free(evil);
    return NULL;
}

START_TEST(test_threads)
{
    cJSON *doc = cJSON_Parse(RULES);
    cJSON *evil =
        cJSON_Parse("{\"name\": \"evil\", \"pattern\": \"(a+)+$\", \"action\": \"flag\"}");
    cJSON_AddItemToArray(cJSON_GetObjectItem(doc, "regex"), evil);
    char field[CHAT_MOD_FIELD_MAX], why[CHAT_MOD_WHY_MAX];
    chat_err_t err;
    chat_mod_rules_t *r = chat_mod_rules_compile(doc, field, why, &err);
    cJSON_Delete(doc);
    ck_assert_msg(r != NULL, "%s: %s", field, why);
    pthread_t th[4];
    worker_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){.r = r};
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(w[i].mismatches, 0);
    }
    chat_mod_rules_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_modrules");
    TCase *tc = tcase_create("modrules");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_evasion_corpus);
    tcase_add_test(tc, test_benign_corpus);
    tcase_add_test(tc, test_run_lengths);
    tcase_add_test(tc, test_match_modes_and_allow);
    tcase_add_test(tc, test_loose_setting);
    tcase_add_test(tc, test_normalize);
    tcase_add_test(tc, test_empty_and_spam);
    tcase_add_test(tc, test_regex);
    tcase_add_test(tc, test_regex_catastrophic);
    tcase_add_test(tc, test_links);
    tcase_add_test(tc, test_mentions);
    tcase_add_test(tc, test_hostile_texts);
    tcase_add_test(tc, test_validation_errors);
    tcase_add_test(tc, test_validation_limits);
    tcase_add_test(tc, test_proto_samples);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
