/* A tenant's moderation rule set: the document validated field by field (errors name the
 * field as the API reports it), compiled into one Aho–Corasick automaton for every list entry,
 * PCRE2 codes for the regexes and plain tables for links and spam; then checked against texts
 * by any number of threads (the rule set is read-only after compile). */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "common/modrules.h"

#include <inttypes.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/mod_match.h"
#include "common/mod_normalize.h"
#include "common/names.h"

/* A regex may try this many backtracking steps per check (the interpreter also a depth and a
 * heap bound; JIT code is bounded by its stack): `(a+)+$` on 4000 characters stops after about
 * a millisecond instead of running for ages. */
#define REGEX_MATCH_LIMIT 100000
#define REGEX_DEPTH_LIMIT 1000
#define REGEX_HEAP_LIMIT_KIB 2048
#define JIT_STACK_MIN (32 * 1024)
#define JIT_STACK_MAX (512 * 1024)

#define TAG_ALLOW 0xFFu
#define TAG_PASS1 0x100u
#define TAG_PASS2 0x200u

typedef enum loose { LOOSE_FLAG = 0, LOOSE_ACTION, LOOSE_OFF } loose_t;

typedef struct mod_list {
    char *name;
    chat_mod_action_t action;
    int64_t mute_s;
    bool substring;
    loose_t loose;
} mod_list_t;

typedef struct mod_regex {
    char *name;
    pcre2_code *code;
    chat_mod_action_t action;
    int64_t mute_s;
} mod_regex_t;

typedef struct mod_links {
    bool set;
    char **deny, **allow;
    size_t ndeny, nallow;
    int64_t max_links; /* -1: no limit */
    chat_mod_action_t action;
    int64_t mute_s;
} mod_links_t;

struct chat_mod_rules {
    mod_list_t lists[CHAT_MOD_BLOCKLISTS_MAX];
    size_t nlists;
    bool has_allow;
    bool loose_any; /* some list's loose pass is not off */
    chat_mod_ac_t *ac;
    mod_regex_t regex[CHAT_MOD_REGEX_MAX];
    size_t nregex;
    pcre2_match_context *mctx;
    mod_links_t links;
    bool mentions_set;
    chat_mod_spam_t spam;
    _Atomic int64_t limit_logged_s; /* when a regex limit was last logged */
};

const char *chat_mod_action_name(chat_mod_action_t a)
{
    switch (a) {
    case CHAT_MOD_FLAG:
        return "flag";
    case CHAT_MOD_REMOVE:
        return "remove";
    case CHAT_MOD_MUTE:
        return "mute";
    }
    return "flag";
}

const char *chat_mod_kind_name(chat_mod_kind_t k)
{
    switch (k) {
    case CHAT_MOD_KIND_BLOCKLIST:
        return "blocklist";
    case CHAT_MOD_KIND_REGEX:
        return "regex";
    case CHAT_MOD_KIND_LINKS:
        return "links";
    case CHAT_MOD_KIND_MENTIONS:
        return "mentions";
    case CHAT_MOD_KIND_REPEAT:
        return "repeat";
    case CHAT_MOD_KIND_RATE:
        return "rate";
    }
    return "blocklist";
}

/* ---- PCRE2's per-thread JIT stack ----
 * A JIT stack may not be shared by threads that match at the same time, so each thread gets
 * its own on first use (freed when the thread ends); the match context, shared by all, only
 * holds the callback that finds it. */
static pthread_key_t g_jit_key;
static pthread_once_t g_jit_once = PTHREAD_ONCE_INIT;
static bool g_jit_key_ok;

static void jit_stack_free(void *p)
{
    pcre2_jit_stack_free(p);
}

static void jit_key_make(void)
{
    g_jit_key_ok = pthread_key_create(&g_jit_key, jit_stack_free) == 0;
}

/* The calling thread's JIT stack, or NULL (PCRE2 then uses 32 KiB of the machine stack). */
static pcre2_jit_stack *jit_stack_get(void *unused)
{
    (void)unused;
    if (!g_jit_key_ok)
        return NULL;
    pcre2_jit_stack *st = pthread_getspecific(g_jit_key);
    if (!st) {
        st = pcre2_jit_stack_create(JIT_STACK_MIN, JIT_STACK_MAX, NULL);
        if (st && pthread_setspecific(g_jit_key, st) != 0) {
            pcre2_jit_stack_free(st);
            st = NULL;
        }
    }
    return st;
}

/* ---- free ---- */

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void chat_mod_rules_free(chat_mod_rules_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nlists; i++)
        free(r->lists[i].name);
    for (size_t i = 0; i < r->nregex; i++) {
        free(r->regex[i].name);
        pcre2_code_free(r->regex[i].code);
    }
    pcre2_match_context_free(r->mctx);
    chat_mod_ac_free(r->ac);
    strv_free(r->links.deny, r->links.ndeny);
    strv_free(r->links.allow, r->links.nallow);
    free(r);
}

bool chat_mod_rules_empty(const chat_mod_rules_t *r)
{
    return !r || (r->nlists == 0 && r->nregex == 0 && !r->links.set && !r->mentions_set &&
                  r->spam.repeat.count == 0 && r->spam.rate.per_min == 0);
}

const chat_mod_spam_t *chat_mod_rules_spam(const chat_mod_rules_t *r)
{
    return &r->spam;
}

/* ---- validation helpers ---- */

/* What compile is working on: where to report the first error. */
typedef struct vctx {
    char *field, *why;
    chat_err_t err;
} vctx_t;

/* Records the error (field path, reason) and returns false. */
static bool refuse(vctx_t *v, const char *field, const char *fmt, ...)
{
    snprintf(v->field, CHAT_MOD_FIELD_MAX, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, CHAT_MOD_WHY_MAX, fmt, ap);
    va_end(ap);
    v->err = CHAT_ERR_INVALID;
    return false;
}

static bool refuse_nomem(vctx_t *v)
{
    v->field[0] = '\0';
    snprintf(v->why, CHAT_MOD_WHY_MAX, "out of memory");
    v->err = CHAT_ERR_NOMEM;
    return false;
}

/* The path prefix.key (or key at the top). */
static void path_join(char out[CHAT_MOD_FIELD_MAX], const char *prefix, const char *key)
{
    if (prefix[0])
        snprintf(out, CHAT_MOD_FIELD_MAX, "%s.%s", prefix, key);
    else
        snprintf(out, CHAT_MOD_FIELD_MAX, "%s", key);
}

/* refuse() for the member key of the object at path. Returns false. */
static bool refuse_key(vctx_t *v, const char *path, const char *key, const char *why)
{
    char f[CHAT_MOD_FIELD_MAX];
    path_join(f, path, key);
    return refuse(v, f, "%s", why);
}

/* True if obj (at path) is an object whose members are all among keys (NULL-terminated) and
 * appear once; else refuses the first that is not. */
static bool check_object(vctx_t *v, const cJSON *obj, const char *path, const char *const *keys)
{
    if (!cJSON_IsObject(obj))
        return refuse(v, path, "not an object");
    char f[CHAT_MOD_FIELD_MAX];
    for (const cJSON *m = obj->child; m; m = m->next) {
        bool known = false;
        for (size_t k = 0; keys[k]; k++)
            if (strcmp(m->string, keys[k]) == 0)
                known = true;
        path_join(f, path, m->string);
        if (!known)
            return refuse(v, f, "unknown field");
        for (const cJSON *o = obj->child; o != m; o = o->next)
            if (strcmp(o->string, m->string) == 0)
                return refuse(v, f, "duplicate field");
    }
    return true;
}

/* Reads the integer member key of obj into *out: required or not, within lo..hi. Returns
 * false (refused) if it is missing but required, not an integer or out of range; *present
 * says whether it was there. */
static bool get_int(vctx_t *v, const cJSON *obj, const char *path, const char *key, bool required,
                    int64_t lo, int64_t hi, int64_t *out, bool *present)
{
    char f[CHAT_MOD_FIELD_MAX];
    path_join(f, path, key);
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (present)
        *present = it != NULL;
    if (!it) {
        if (required)
            return refuse(v, f, "required");
        return true;
    }
    double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!cJSON_IsNumber(it) || d != floor(d) || d < (double)lo || d > (double)hi)
        return refuse(v, f, "must be an integer from %" PRId64 " to %" PRId64, lo, hi);
    *out = (int64_t)d;
    return true;
}

/* Reads the string member key of obj (NULL if absent and not required). */
static bool get_str(vctx_t *v, const cJSON *obj, const char *path, const char *key, bool required,
                    const char **out)
{
    char f[CHAT_MOD_FIELD_MAX];
    path_join(f, path, key);
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!it)
        return required ? refuse(v, f, "required") : true;
    if (!cJSON_IsString(it) || !it->valuestring)
        return refuse(v, f, "not a string");
    *out = it->valuestring;
    return true;
}

/* Reads `action` (required) and `mute_s` (required with mute, refused otherwise). */
static bool get_action(vctx_t *v, const cJSON *obj, const char *path, chat_mod_action_t *action,
                       int64_t *mute_s)
{
    const char *a;
    char f[CHAT_MOD_FIELD_MAX];
    if (!get_str(v, obj, path, "action", true, &a))
        return false;
    path_join(f, path, "action");
    if (strcmp(a, "remove") == 0)
        *action = CHAT_MOD_REMOVE;
    else if (strcmp(a, "flag") == 0)
        *action = CHAT_MOD_FLAG;
    else if (strcmp(a, "mute") == 0)
        *action = CHAT_MOD_MUTE;
    else
        return refuse(v, f, "must be remove, flag or mute");
    bool present;
    *mute_s = 0;
    if (!get_int(v, obj, path, "mute_s", *action == CHAT_MOD_MUTE, 1, CHAT_MOD_MUTE_S_MAX, mute_s,
                 &present))
        return false;
    if (present && *action != CHAT_MOD_MUTE) {
        path_join(f, path, "mute_s");
        return refuse(v, f, "allowed only with action mute");
    }
    return true;
}

/* The array member key of obj, at most max items (NULL and true if absent). */
static bool get_array(vctx_t *v, const cJSON *obj, const char *path, const char *key, bool required,
                      int max, const char *what, const cJSON **out)
{
    char f[CHAT_MOD_FIELD_MAX];
    path_join(f, path, key);
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!it)
        return required ? refuse(v, f, "required") : true;
    if (!cJSON_IsArray(it))
        return refuse(v, f, "not an array");
    if (cJSON_GetArraySize(it) > max)
        return refuse(v, f, "more than %d %s", max, what);
    *out = it;
    return true;
}

/* True if s is a string of 1..max characters of valid UTF-8 (refused otherwise at f). */
static bool check_chars(vctx_t *v, const cJSON *it, const char *f, long max, bool printable)
{
    if (!cJSON_IsString(it) || !it->valuestring)
        return refuse(v, f, "not a string");
    size_t len = strlen(it->valuestring);
    long n = printable ? chat_utf8_chars_printable(it->valuestring, len)
                       : chat_utf8_chars(it->valuestring, len);
    if (n < 0)
        return refuse(v, f,
                      printable ? "not valid UTF-8 or has control characters" : "not valid UTF-8");
    if (n == 0)
        return refuse(v, f, "empty");
    if (n > max)
        return refuse(v, f, "longer than %ld characters", max);
    return true;
}

/* ---- entries into the automaton ---- */

static bool streams_equal(const chat_mod_stream_t *a, const chat_mod_stream_t *b)
{
    return a->len == b->len && memcmp(a->cp, b->cp, a->len * sizeof *a->cp) == 0 &&
           memcmp(a->run, b->run, a->len) == 0;
}

/* Normalises the entry text and adds its pass-1 form and, if different, its loose form
 * (which only the second pass reads) to the automaton with tag idx. Refuses an entry that
 * normalises to nothing. */
static bool add_entry(vctx_t *v, chat_mod_ac_builder_t *b, const char *text, uint32_t idx,
                      const char *f)
{
    uint16_t *u16 = NULL;
    int32_t n16 = 0;
    chat_mod_stream_t s1 = {0}, s2 = {0};
    bool ok = false;
    chat_err_t err = chat_mod_norm_pass0(text, strlen(text), &u16, &n16, NULL, NULL);
    if (err == CHAT_OK)
        err = chat_mod_norm_pass1(u16, n16, &s1);
    free(u16);
    if (err == CHAT_OK) {
        /* spaces around an entry are not part of it */
        size_t lo = 0, hi = s1.len;
        while (lo < hi && s1.cp[lo] == ' ')
            lo++;
        while (hi > lo && s1.cp[hi - 1] == ' ')
            hi--;
        bool word = false;
        for (size_t i = lo; i < hi; i++)
            if (chat_mod_is_word(s1.cp[i]) && s1.cp[i] != CHAT_MOD_MASK)
                word = true;
        if (!word) {
            refuse(v, f, "normalises to nothing (no letter or digit)");
            goto done;
        }
        if (hi - lo > 255) {
            refuse(v, f, "too long after normalisation");
            goto done;
        }
        memmove(s1.cp, s1.cp + lo, (hi - lo) * sizeof *s1.cp);
        memmove(s1.run, s1.run + lo, hi - lo);
        memmove(s1.flags, s1.flags + lo, hi - lo);
        s1.len = hi - lo;
        err = chat_mod_norm_pass2(&s1, &s2);
    }
    if (err == CHAT_OK) {
        bool same = streams_equal(&s1, &s2);
        err = chat_mod_ac_builder_add(b, s1.cp, s1.run, s1.len,
                                      idx | TAG_PASS1 | (same ? TAG_PASS2 : 0));
        if (err == CHAT_OK && !same)
            err = chat_mod_ac_builder_add(b, s2.cp, s2.run, s2.len, idx | TAG_PASS2);
    }
    if (err == CHAT_ERR_NOMEM)
        refuse_nomem(v);
    else if (err != CHAT_OK)
        refuse(v, f, "cannot be normalised");
    else
        ok = true;
done:
    chat_mod_stream_free(&s1);
    chat_mod_stream_free(&s2);
    return ok;
}

/* ---- parts of the document ---- */

static const char *const g_reserved[] = {"links", "mentions", "repeat", "rate", "review", NULL};

/* Checks a rule name (1..64 printable characters, not reserved, not used before) and copies
 * it into *out. */
static bool take_name(vctx_t *v, chat_mod_rules_t *r, const cJSON *obj, const char *path,
                      char **out)
{
    const char *name;
    char f[CHAT_MOD_FIELD_MAX];
    if (!get_str(v, obj, path, "name", true, &name))
        return false;
    path_join(f, path, "name");
    if (!check_chars(v, cJSON_GetObjectItemCaseSensitive(obj, "name"), f, CHAT_MOD_NAME_CHARS_MAX,
                     true))
        return false;
    for (size_t i = 0; g_reserved[i]; i++)
        if (strcmp(name, g_reserved[i]) == 0)
            return refuse(v, f, "reserved (the name of a part of the rule set)");
    for (size_t i = 0; i < r->nlists; i++)
        if (strcmp(r->lists[i].name, name) == 0)
            return refuse(v, f, "not unique (blocklists[%zu] has it)", i);
    for (size_t i = 0; i < r->nregex; i++)
        if (strcmp(r->regex[i].name, name) == 0)
            return refuse(v, f, "not unique (regex[%zu] has it)", i);
    *out = strdup(name);
    return *out ? true : refuse_nomem(v);
}

static bool compile_blocklists(vctx_t *v, chat_mod_rules_t *r, const cJSON *doc,
                               chat_mod_ac_builder_t *b)
{
    static const char *const keys[] = {"name", "words", "match", "action", "mute_s", "loose", NULL};
    const cJSON *arr;
    if (!get_array(v, doc, "", "blocklists", false, CHAT_MOD_BLOCKLISTS_MAX, "blocklists", &arr))
        return false;
    if (!arr)
        return true;
    size_t i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        char path[24], f[CHAT_MOD_FIELD_MAX];
        snprintf(path, sizeof path, "blocklists[%zu]", i);
        if (!check_object(v, it, path, keys))
            return false;
        mod_list_t l = {0};
        if (!take_name(v, r, it, path, &l.name))
            return false;
        r->lists[r->nlists++] = l; /* owned by r from here */
        mod_list_t *lp = &r->lists[r->nlists - 1];
        const char *s;
        if (!get_str(v, it, path, "match", false, &s))
            return false;
        if (s && strcmp(s, "substring") == 0)
            lp->substring = true;
        else if (s && strcmp(s, "word") != 0)
            return refuse_key(v, path, "match", "must be word or substring");
        if (!get_action(v, it, path, &lp->action, &lp->mute_s))
            return false;
        if (!get_str(v, it, path, "loose", false, &s))
            return false;
        if (!s || strcmp(s, "flag") == 0)
            lp->loose = LOOSE_FLAG;
        else if (strcmp(s, "action") == 0)
            lp->loose = LOOSE_ACTION;
        else if (strcmp(s, "off") == 0)
            lp->loose = LOOSE_OFF;
        else
            return refuse_key(v, path, "loose", "must be flag, action or off");
        if (lp->loose != LOOSE_OFF)
            r->loose_any = true;
        const cJSON *words;
        if (!get_array(v, it, path, "words", true, CHAT_MOD_WORDS_MAX, "entries", &words))
            return false;
        size_t k = 0;
        for (const cJSON *w = words->child; w; w = w->next, k++) {
            snprintf(f, sizeof f, "%s.words[%zu]", path, k);
            if (!check_chars(v, w, f, CHAT_MOD_WORD_CHARS_MAX, false) ||
                !add_entry(v, b, w->valuestring, (uint32_t)i, f))
                return false;
        }
    }
    return true;
}

static bool compile_allow(vctx_t *v, chat_mod_rules_t *r, const cJSON *doc,
                          chat_mod_ac_builder_t *b)
{
    const cJSON *arr;
    if (!get_array(v, doc, "", "allow", false, CHAT_MOD_ALLOW_MAX, "entries", &arr))
        return false;
    if (!arr)
        return true;
    size_t k = 0;
    for (const cJSON *w = arr->child; w; w = w->next, k++) {
        char f[CHAT_MOD_FIELD_MAX];
        snprintf(f, sizeof f, "allow[%zu]", k);
        if (!check_chars(v, w, f, CHAT_MOD_WORD_CHARS_MAX, false) ||
            !add_entry(v, b, w->valuestring, TAG_ALLOW, f))
            return false;
        r->has_allow = true;
    }
    return true;
}

static bool compile_regex(vctx_t *v, chat_mod_rules_t *r, const cJSON *doc)
{
    static const char *const keys[] = {"name", "pattern", "action", "mute_s", NULL};
    const cJSON *arr;
    if (!get_array(v, doc, "", "regex", false, CHAT_MOD_REGEX_MAX, "regexes", &arr))
        return false;
    if (!arr)
        return true;
    size_t i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        char path[24], f[CHAT_MOD_FIELD_MAX];
        snprintf(path, sizeof path, "regex[%zu]", i);
        if (!check_object(v, it, path, keys))
            return false;
        mod_regex_t x = {0};
        if (!take_name(v, r, it, path, &x.name))
            return false;
        r->regex[r->nregex++] = x;
        mod_regex_t *xp = &r->regex[r->nregex - 1];
        const char *pat;
        if (!get_str(v, it, path, "pattern", true, &pat))
            return false;
        path_join(f, path, "pattern");
        if (!check_chars(v, cJSON_GetObjectItemCaseSensitive(it, "pattern"), f,
                         CHAT_MOD_REGEX_CHARS_MAX, false))
            return false;
        if (!get_action(v, it, path, &xp->action, &xp->mute_s))
            return false;
        int code;
        PCRE2_SIZE off;
        xp->code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                 &code, &off, NULL);
        if (!xp->code) {
            PCRE2_UCHAR msg[120];
            if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
                snprintf((char *)msg, sizeof msg, "error %d", code);
            return refuse(v, f, "does not compile: %s at %zu", (char *)msg, (size_t)off);
        }
        /* without JIT (not built in, or no executable memory) the interpreter runs, with the
         * same limits */
        (void)pcre2_jit_compile(xp->code, PCRE2_JIT_COMPLETE);
    }
    if (r->nregex > 0) {
        r->mctx = pcre2_match_context_create(NULL);
        if (!r->mctx)
            return refuse_nomem(v);
        pcre2_set_match_limit(r->mctx, REGEX_MATCH_LIMIT);
        pcre2_set_depth_limit(r->mctx, REGEX_DEPTH_LIMIT);
        pcre2_set_heap_limit(r->mctx, REGEX_HEAP_LIMIT_KIB);
        pthread_once(&g_jit_once, jit_key_make);
        pcre2_jit_stack_assign(r->mctx, jit_stack_get, NULL);
    }
    return true;
}

/* Normalises a domain of a links list ("*.Bad.Example." -> "bad.example") into *out. */
static bool take_domain(vctx_t *v, const cJSON *it, const char *f, char **out)
{
    if (!check_chars(v, it, f, 253, true))
        return false;
    uint16_t *u16;
    int32_t n16;
    char *s;
    size_t n;
    chat_err_t err =
        chat_mod_norm_pass0(it->valuestring, strlen(it->valuestring), &u16, &n16, &s, &n);
    if (err == CHAT_ERR_NOMEM)
        return refuse_nomem(v);
    if (err != CHAT_OK)
        return refuse(v, f, "not a domain name");
    free(u16);
    char *p = s;
    if (p[0] == '*' && p[1] == '.')
        p += 2;
    while (*p == '.')
        p++;
    size_t len = strlen(p);
    while (len > 0 && p[len - 1] == '.')
        p[--len] = '\0';
    bool ok = len > 0;
    for (size_t i = 0; i < len && ok; i++) {
        unsigned char c = (unsigned char)p[i];
        ok = c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
             c == '.' || c == '_';
    }
    if (!ok) {
        free(s);
        return refuse(v, f, "not a domain name");
    }
    memmove(s, p, len + 1);
    *out = s;
    return true;
}

static bool compile_domains(vctx_t *v, const cJSON *links, const char *key, char ***out, size_t *n)
{
    const cJSON *arr;
    if (!get_array(v, links, "links", key, false, CHAT_MOD_DOMAINS_MAX, "domains", &arr))
        return false;
    if (!arr || !arr->child)
        return true;
    *out = calloc((size_t)cJSON_GetArraySize(arr), sizeof **out);
    if (!*out)
        return refuse_nomem(v);
    for (const cJSON *it = arr->child; it; it = it->next) {
        char f[CHAT_MOD_FIELD_MAX];
        snprintf(f, sizeof f, "links.%s[%zu]", key, *n);
        if (!take_domain(v, it, f, &(*out)[*n]))
            return false;
        (*n)++;
    }
    return true;
}

static bool compile_links(vctx_t *v, chat_mod_rules_t *r, const cJSON *doc)
{
    static const char *const keys[] = {"deny_domains", "allow_domains", "max_links",
                                       "action",       "mute_s",        NULL};
    const cJSON *links = cJSON_GetObjectItemCaseSensitive(doc, "links");
    if (!links)
        return true;
    if (!check_object(v, links, "links", keys))
        return false;
    r->links.set = true;
    r->links.max_links = -1;
    bool present;
    int64_t max = 0;
    if (!get_int(v, links, "links", "max_links", false, 0, 100, &max, &present))
        return false;
    if (present)
        r->links.max_links = max;
    if (!get_action(v, links, "links", &r->links.action, &r->links.mute_s))
        return false;
    return compile_domains(v, links, "deny_domains", &r->links.deny, &r->links.ndeny) &&
           compile_domains(v, links, "allow_domains", &r->links.allow, &r->links.nallow);
}

static bool compile_spam(vctx_t *v, chat_mod_rules_t *r, const cJSON *doc)
{
    static const char *const keys[] = {"repeat", "mentions", "rate", NULL};
    static const char *const repeat_keys[] = {"count", "window_s", "action", "mute_s", NULL};
    static const char *const mention_keys[] = {"max", "action", "mute_s", NULL};
    static const char *const rate_keys[] = {"per_min", "action", "mute_s", NULL};
    const cJSON *spam = cJSON_GetObjectItemCaseSensitive(doc, "spam");
    if (!spam)
        return true;
    if (!check_object(v, spam, "spam", keys))
        return false;
    chat_mod_spam_t *sp = &r->spam;
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(spam, "repeat");
    if (o) {
        if (!check_object(v, o, "spam.repeat", repeat_keys) ||
            !get_int(v, o, "spam.repeat", "count", true, 2, 100, &sp->repeat.count, NULL) ||
            !get_int(v, o, "spam.repeat", "window_s", true, 1, CHAT_MOD_WINDOW_S_MAX,
                     &sp->repeat.window_s, NULL) ||
            !get_action(v, o, "spam.repeat", &sp->repeat.action, &sp->repeat.mute_s))
            return false;
    }
    o = cJSON_GetObjectItemCaseSensitive(spam, "mentions");
    if (o) {
        if (!check_object(v, o, "spam.mentions", mention_keys) ||
            !get_int(v, o, "spam.mentions", "max", true, 0, 100, &sp->mentions.max, NULL) ||
            !get_action(v, o, "spam.mentions", &sp->mentions.action, &sp->mentions.mute_s))
            return false;
        r->mentions_set = true;
    }
    o = cJSON_GetObjectItemCaseSensitive(spam, "rate");
    if (o) {
        if (!check_object(v, o, "spam.rate", rate_keys) ||
            !get_int(v, o, "spam.rate", "per_min", true, 1, 10000, &sp->rate.per_min, NULL) ||
            !get_action(v, o, "spam.rate", &sp->rate.action, &sp->rate.mute_s))
            return false;
    }
    return true;
}

chat_mod_rules_t *chat_mod_rules_compile(const cJSON *doc, char field[CHAT_MOD_FIELD_MAX],
                                         char why[CHAT_MOD_WHY_MAX], chat_err_t *err)
{
    static const char *const keys[] = {"blocklists", "allow", "regex", "links", "spam", NULL};
    vctx_t v = {.field = field, .why = why, .err = CHAT_OK};
    field[0] = '\0';
    why[0] = '\0';
    chat_mod_rules_t *r = calloc(1, sizeof *r);
    chat_mod_ac_builder_t *b = chat_mod_ac_builder_new();
    if (!r || !b) {
        refuse_nomem(&v);
        goto fail;
    }
    if (!check_object(&v, doc, "", keys) || !compile_blocklists(&v, r, doc, b) ||
        !compile_allow(&v, r, doc, b) || !compile_regex(&v, r, doc) || !compile_links(&v, r, doc) ||
        !compile_spam(&v, r, doc))
        goto fail;
    r->ac = chat_mod_ac_build(b);
    b = NULL;
    if (!r->ac) {
        refuse_nomem(&v);
        goto fail;
    }
    *err = CHAT_OK;
    return r;
fail:
    chat_mod_ac_builder_free(b);
    chat_mod_rules_free(r);
    *err = v.err == CHAT_OK ? CHAT_ERR_INVALID : v.err;
    return NULL;
}

/* ---- checking: blocklists ---- */

typedef struct span {
    uint32_t idx;
    size_t first, last;
} span_t;

/* State of one scan of one stream. */
typedef struct scan {
    const chat_mod_rules_t *r;
    const chat_mod_stream_t *s;
    uint32_t pass_bit;
    uint32_t fired; /* lists with a hit that counts */
    span_t *cand, *allow;
    size_t ncand, capcand, nallow, capallow;
    bool nomem;
} scan_t;

static bool span_push(span_t **arr, size_t *n, size_t *cap, span_t sp)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        span_t *p = realloc(*arr, c * sizeof *p);
        if (!p)
            return false;
        *arr = p;
        *cap = c;
    }
    (*arr)[(*n)++] = sp;
    return true;
}

static bool word_start(const chat_mod_stream_t *s, size_t first)
{
    return first == 0 || !chat_mod_is_word(s->cp[first - 1]) ||
           (s->flags[first] & CHAT_MOD_JOIN_BEFORE);
}

static bool word_end(const chat_mod_stream_t *s, size_t last)
{
    return last + 1 >= s->len || !chat_mod_is_word(s->cp[last + 1]) ||
           (s->flags[last + 1] & CHAT_MOD_JOIN_BEFORE);
}

/* True if the span joins letters across removed punctuation or spaces (pass 2): a hit that
 * does not is pass 1's to find, and the loose pass must not add its own false hits there
 * ("classic" holds "ass" in both passes alike). */
static bool crosses_join(const chat_mod_stream_t *s, size_t first, size_t last)
{
    for (size_t k = first; k <= last; k++)
        if ((s->flags[k] & CHAT_MOD_JOIN_INSIDE) ||
            (k > first && (s->flags[k] & CHAT_MOD_JOIN_BEFORE)))
            return true;
    return false;
}

static bool on_match(void *ud, uint32_t tag, size_t first, size_t last)
{
    scan_t *sc = ud;
    if (!(tag & sc->pass_bit))
        return true;
    uint32_t idx = tag & 0xFFu;
    if (idx == TAG_ALLOW) {
        if (!span_push(&sc->allow, &sc->nallow, &sc->capallow, (span_t){idx, first, last}))
            sc->nomem = true;
        return !sc->nomem;
    }
    if (sc->fired & (1u << idx))
        return true;
    const mod_list_t *l = &sc->r->lists[idx];
    if (sc->pass_bit == TAG_PASS2 && (l->loose == LOOSE_OFF || !crosses_join(sc->s, first, last)))
        return true;
    bool at_start = word_start(sc->s, first), at_end = word_end(sc->s, last);
    if (!l->substring && !(at_start && at_end))
        return true;
    /* A substring list's loose hit must still begin or end at a word's edge: joins of
     * ordinary words put entries across their middles ("avec un texte" holds "cunt"). */
    if (l->substring && sc->pass_bit == TAG_PASS2 && !at_start && !at_end)
        return true;
    if (!sc->r->has_allow) {
        sc->fired |= 1u << idx;
        return true;
    }
    if (!span_push(&sc->cand, &sc->ncand, &sc->capcand, (span_t){idx, first, last}))
        sc->nomem = true;
    return !sc->nomem;
}

/* Scans one stream; returns the lists that fired in it (allowlist applied), skipping those in
 * skip. Sets *nomem when memory ran out. */
static uint32_t scan_stream(const chat_mod_rules_t *r, const chat_mod_stream_t *s,
                            uint32_t pass_bit, uint32_t skip, bool *nomem)
{
    scan_t sc = {.r = r, .s = s, .pass_bit = pass_bit, .fired = skip};
    chat_mod_ac_scan(r->ac, s, on_match, &sc);
    for (size_t i = 0; i < sc.ncand; i++) {
        const span_t *c = &sc.cand[i];
        if (sc.fired & (1u << c->idx))
            continue;
        bool allowed = false;
        for (size_t k = 0; k < sc.nallow && !allowed; k++)
            allowed = sc.allow[k].first <= c->first && c->last <= sc.allow[k].last;
        if (!allowed)
            sc.fired |= 1u << c->idx;
    }
    free(sc.cand);
    free(sc.allow);
    if (sc.nomem)
        *nomem = true;
    return sc.fired & ~skip;
}

/* ---- checking: links and mentions on the pass-0 text ---- */

static bool host_char(unsigned char c)
{
    return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           (c >= 'A' && c <= 'Z');
}

/* True if h[0..n) is a host name: labels of host characters separated by single dots, at
 * least min_labels of them; with bare, the last label is 2+ ASCII letters (a top-level
 * domain: "file.txt" counts, "e.g" and "3.50" do not). */
static bool host_valid(const char *h, size_t n, int min_labels, bool bare)
{
    int labels = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || h[i] == '.') {
            if (i == start)
                return false;
            labels++;
            if (i == n && bare) {
                if (i - start < 2)
                    return false;
                for (size_t k = start; k < i; k++)
                    if (!((h[k] >= 'a' && h[k] <= 'z') || (h[k] >= 'A' && h[k] <= 'Z')))
                        return false;
            }
            start = i + 1;
        } else if (!host_char((unsigned char)h[i])) {
            return false;
        }
    }
    return labels >= min_labels;
}

/* True if host is domain d or one of its subdomains. */
static bool domain_has(const char *d, const char *host, size_t n)
{
    size_t dl = strlen(d);
    if (n == dl)
        return strncmp(host, d, n) == 0;
    return n > dl && host[n - dl - 1] == '.' && strncmp(host + n - dl, d, dl) == 0;
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Counts the links of the pass-0 text t and whether one breaks the deny or allow lists. */
static void find_links(const mod_links_t *lk, const char *t, size_t n, size_t *count,
                       bool *bad_domain)
{
    *count = 0;
    *bad_domain = false;
    for (size_t i = 0; i < n;) {
        while (i < n && is_space((unsigned char)t[i]))
            i++;
        size_t a = i;
        while (i < n && !is_space((unsigned char)t[i]))
            i++;
        size_t b = i;
        while (a < b && strchr("([{<\"'", t[a]))
            a++;
        while (b > a && strchr(")]}>\"'.,;:!?", t[b - 1]))
            b--;
        if (a == b)
            continue;
        const char *tok = t + a;
        size_t len = b - a;
        const char *host = NULL;
        int min_labels = 2;
        bool bare = false;
        for (size_t k = 0; k + 7 <= len && !host; k++) {
            if (strncmp(tok + k, "http://", 7) == 0)
                host = tok + k + 7;
            else if (k + 8 <= len && strncmp(tok + k, "https://", 8) == 0)
                host = tok + k + 8;
        }
        if (host) {
            min_labels = 1;
        } else if (len > 4 && strncmp(tok, "www.", 4) == 0) {
            host = tok;
        } else if (!memchr(tok, '@', len)) {
            host = tok;
            bare = true;
        } else {
            continue;
        }
        const char *end = tok + len;
        size_t hl = 0;
        while (host + hl < end && !strchr("/?#:@", host[hl]))
            hl++;
        if (host + hl < end && host[hl] == '@' && !bare) { /* user@host */
            host += hl + 1;
            hl = 0;
            while (host + hl < end && !strchr("/?#:", host[hl]))
                hl++;
        }
        while (hl > 0 && host[hl - 1] == '.')
            hl--;
        if (!host_valid(host, hl, min_labels, bare))
            continue;
        (*count)++;
        for (size_t d = 0; d < lk->ndeny; d++)
            if (domain_has(lk->deny[d], host, hl))
                *bad_domain = true;
        if (lk->nallow > 0) {
            bool ok = false;
            for (size_t d = 0; d < lk->nallow && !ok; d++)
                ok = domain_has(lk->allow[d], host, hl);
            if (!ok)
                *bad_domain = true;
        }
    }
}

static bool name_byte(unsigned char c)
{
    return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

/* The number of `@name` tokens in t (an `@` inside a word, as in an e-mail address, is not
 * one). */
static int64_t count_mentions(const char *t, size_t n)
{
    int64_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] != '@' || i + 1 >= n || !name_byte((unsigned char)t[i + 1]))
            continue;
        if (i > 0 && (name_byte((unsigned char)t[i - 1]) || t[i - 1] == '.' || t[i - 1] == '-'))
            continue;
        count++;
        while (i + 1 < n &&
               (name_byte((unsigned char)t[i + 1]) || t[i + 1] == '.' || t[i + 1] == '-'))
            i++;
    }
    return count;
}

/* ---- checking ---- */

static size_t hit_add(chat_mod_hit_t *hits, size_t n, size_t max, chat_mod_action_t a,
                      chat_mod_kind_t k, const char *rule, int64_t mute_s)
{
    if (n < max)
        hits[n++] = (chat_mod_hit_t){
            .action = a, .kind = k, .rule = rule, .mute_s = a == CHAT_MOD_MUTE ? mute_s : 0};
    return n;
}

/* Logs a regex that hit a limit, at most once a second per rule set. */
static void regex_limit_log(const chat_mod_rules_t *r, const mod_regex_t *x, int rc)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec;
    chat_mod_rules_t *rw = (chat_mod_rules_t *)r; /* only the atomic log clock changes */
    int64_t last = atomic_load(&rw->limit_logged_s);
    if (now <= last || !atomic_compare_exchange_strong(&rw->limit_logged_s, &last, now))
        return;
    PCRE2_UCHAR msg[120];
    if (pcre2_get_error_message(rc, msg, sizeof msg) < 0)
        snprintf((char *)msg, sizeof msg, "error %d", rc);
    chat_log_warn("moderation: regex stopped at its limit, taken as no match",
                  CHAT_F_STR("rule", x->name), CHAT_F_STR("pcre2", (char *)msg));
}

size_t chat_mod_rules_check(const chat_mod_rules_t *r, const char *text, size_t len,
                            chat_mod_hit_t *hits, size_t max)
{
    if (!r || chat_mod_rules_empty(r) || max == 0)
        return 0;
    uint16_t *u16 = NULL;
    int32_t n16 = 0;
    char *p0 = NULL;
    size_t n0 = 0;
    size_t n = 0;
    bool nomem = false;
    chat_mod_stream_t s1 = {0}, s2 = {0};
    chat_err_t err = chat_mod_norm_pass0(text, len, &u16, &n16, &p0, &n0);
    if (err != CHAT_OK) {
        chat_log_error("moderation: text not normalised, not checked", CHAT_F_ERR(err));
        return 0;
    }
    if (r->nlists > 0) {
        uint32_t fired1 = 0, fired2 = 0;
        err = chat_mod_norm_pass1(u16, n16, &s1);
        if (err == CHAT_OK)
            fired1 = scan_stream(r, &s1, TAG_PASS1, 0, &nomem);
        uint32_t all = r->nlists >= 32 ? UINT32_MAX : (1u << r->nlists) - 1;
        if (err == CHAT_OK && r->loose_any && fired1 != all) {
            err = chat_mod_norm_pass2(&s1, &s2);
            if (err == CHAT_OK)
                fired2 = scan_stream(r, &s2, TAG_PASS2, fired1, &nomem);
        }
        if (err != CHAT_OK)
            nomem = true;
        for (size_t i = 0; i < r->nlists; i++) {
            const mod_list_t *l = &r->lists[i];
            if (fired1 & (1u << i))
                n = hit_add(hits, n, max, l->action, CHAT_MOD_KIND_BLOCKLIST, l->name, l->mute_s);
            else if ((fired2 & (1u << i)) && l->loose == LOOSE_ACTION)
                n = hit_add(hits, n, max, l->action, CHAT_MOD_KIND_BLOCKLIST, l->name, l->mute_s);
            else if (fired2 & (1u << i))
                n = hit_add(hits, n, max, CHAT_MOD_FLAG, CHAT_MOD_KIND_BLOCKLIST, l->name, 0);
        }
    }
    if (r->nregex > 0) {
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        if (!md)
            nomem = true;
        for (size_t i = 0; md && i < r->nregex; i++) {
            const mod_regex_t *x = &r->regex[i];
            int rc = pcre2_match(x->code, (PCRE2_SPTR)p0, n0, 0, PCRE2_NO_UTF_CHECK, md, r->mctx);
            if (rc >= 0)
                n = hit_add(hits, n, max, x->action, CHAT_MOD_KIND_REGEX, x->name, x->mute_s);
            else if (rc == PCRE2_ERROR_NOMEMORY)
                nomem = true;
            else if (rc != PCRE2_ERROR_NOMATCH)
                regex_limit_log(r, x, rc);
        }
        pcre2_match_data_free(md);
    }
    if (r->links.set) {
        size_t count;
        bool bad;
        find_links(&r->links, p0, n0, &count, &bad);
        if (bad || (r->links.max_links >= 0 && (int64_t)count > r->links.max_links))
            n = hit_add(hits, n, max, r->links.action, CHAT_MOD_KIND_LINKS, "links",
                        r->links.mute_s);
    }
    if (r->mentions_set && count_mentions(p0, n0) > r->spam.mentions.max)
        n = hit_add(hits, n, max, r->spam.mentions.action, CHAT_MOD_KIND_MENTIONS, "mentions",
                    r->spam.mentions.mute_s);
    if (nomem)
        chat_log_error("moderation: out of memory during a check, rules partly skipped");
    chat_mod_stream_free(&s1);
    chat_mod_stream_free(&s2);
    free(u16);
    free(p0);
    return n;
}

char *chat_mod_normalize(const char *text, size_t len)
{
    uint16_t *u16 = NULL;
    int32_t n16 = 0;
    chat_mod_stream_t s = {0};
    if (chat_mod_norm_pass0(text, len, &u16, &n16, NULL, NULL) != CHAT_OK)
        return NULL;
    chat_err_t err = chat_mod_norm_pass1(u16, n16, &s);
    free(u16);
    if (err != CHAT_OK) {
        chat_mod_stream_free(&s);
        return NULL;
    }
    /* words as matching sees them (runs collapsed, a mask as `*`), one space between them */
    char *out = malloc(s.len * 4 + 1);
    if (!out) {
        chat_mod_stream_free(&s);
        return NULL;
    }
    size_t w = 0;
    bool gap = false;
    for (size_t i = 0; i < s.len; i++) {
        uint32_t c = s.cp[i];
        if (!chat_mod_is_word(c)) {
            gap = w > 0;
            continue;
        }
        if (gap)
            out[w++] = ' ';
        gap = false;
        if (c == CHAT_MOD_MASK)
            c = '*';
        if (c < 0x80) {
            out[w++] = (char)c;
        } else if (c < 0x800) {
            out[w++] = (char)(0xC0 | (c >> 6));
            out[w++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out[w++] = (char)(0xE0 | (c >> 12));
            out[w++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[w++] = (char)(0x80 | (c & 0x3F));
        } else {
            out[w++] = (char)(0xF0 | (c >> 18));
            out[w++] = (char)(0x80 | ((c >> 12) & 0x3F));
            out[w++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[w++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[w] = '\0';
    chat_mod_stream_free(&s);
    return out;
}
