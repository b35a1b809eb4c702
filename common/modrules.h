/* A tenant's moderation rule set (docs/moderation.md, proto/moderation-rules.schema.json):
 * validated and compiled once from the JSON document of `PUT /v1/moderation/rules`, then
 * checked against message texts by any number of threads at once. No I/O.
 *
 * Matching works on normalised text: NFKC case folding, format characters (zero-width
 * joiners, soft hyphens...) removed, the TR39 confusables skeleton (a Cyrillic `а` is an `a`),
 * a leetspeak map (`4`->a, `3`->e, `0`->o, `$`->s...), a masking character inside a word
 * (`f*ck`) standing for any one letter, runs of one letter collapsed (`fuuuuck`), letters
 * spaced out with one separator (`f.u.c.k`, `f u c k`) joined. List entries get the same
 * treatment, so an entry matches however it is disguised. A second, looser pass ignores every
 * punctuation mark and space between letters (`fu.ck`); it has more false hits, so what only it
 * finds is a `flag` unless the list says otherwise. Every blocklist entry of a rule set is in
 * one multi-pattern automaton: a message costs the same against 10 entries or 10,000.
 * Regexes are PCRE2 (UTF, JIT when available) with match and depth limits, so no pattern can
 * stall a check. */
#ifndef CHAT_COMMON_MODRULES_H
#define CHAT_COMMON_MODRULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/err.h"

/* Limits of a rule set (SERVER-API.md); compile refuses a document beyond them. */
#define CHAT_MOD_BLOCKLISTS_MAX 20
#define CHAT_MOD_WORDS_MAX 10000     /* entries per blocklist */
#define CHAT_MOD_WORD_CHARS_MAX 64   /* characters per entry */
#define CHAT_MOD_ALLOW_MAX 10000     /* allowlist entries */
#define CHAT_MOD_REGEX_MAX 20
#define CHAT_MOD_REGEX_CHARS_MAX 256
#define CHAT_MOD_DOMAINS_MAX 1000    /* deny_domains, allow_domains each */
#define CHAT_MOD_NAME_CHARS_MAX 64   /* a rule's name */
#define CHAT_MOD_MUTE_S_MAX 604800   /* a mute lasts at most 7 days */
#define CHAT_MOD_WINDOW_S_MAX 3600   /* spam.repeat.window_s */
/* The longest field path compile reports ("blocklists[19].words[9999]"...), with the NUL. */
#define CHAT_MOD_FIELD_MAX 64
#define CHAT_MOD_WHY_MAX 160

typedef enum chat_mod_action {
    CHAT_MOD_FLAG = 0, /* recorded for the tenant's moderators; nothing changes for clients */
    CHAT_MOD_REMOVE,   /* the message is removed for everyone */
    CHAT_MOD_MUTE,     /* the author cannot send in the tenant for mute_s seconds */
} chat_mod_action_t;

typedef enum chat_mod_kind {
    CHAT_MOD_KIND_BLOCKLIST = 0,
    CHAT_MOD_KIND_REGEX,
    CHAT_MOD_KIND_LINKS,
    CHAT_MOD_KIND_MENTIONS,
    CHAT_MOD_KIND_REPEAT, /* spam rules: decided by the caller with its own state, */
    CHAT_MOD_KIND_RATE,   /* from the parameters of chat_mod_rules_spam */
} chat_mod_kind_t;

/* "flag", "remove", "mute" */
const char *chat_mod_action_name(chat_mod_action_t a);
/* "blocklist", "regex", "links", "mentions", "repeat", "rate" (a metric label) */
const char *chat_mod_kind_name(chat_mod_kind_t k);

typedef struct chat_mod_rules chat_mod_rules_t;

/* Validates doc (the whole rule set; `{}` is valid and matches nothing) and compiles it. On
 * success returns the rule set and *err = CHAT_OK. On a document that breaks the schema or a
 * limit returns NULL, *err = CHAT_ERR_INVALID, field = the path of the offending field in
 * the document ("blocklists[2].words[5]", "regex[0].pattern", "spam.rate.per_min"; "" for
 * the document itself) and why = what is wrong with it ("longer than 64 characters",
 * "does not compile: missing closing parenthesis at 4", "unknown field"). NULL and
 * CHAT_ERR_NOMEM when memory runs out. Rule names: a blocklist's and a regex's `name`; the
 * others are named after their part ("links", "mentions", "repeat", "rate"). */
chat_mod_rules_t *chat_mod_rules_compile(const cJSON *doc, char field[CHAT_MOD_FIELD_MAX],
                                         char why[CHAT_MOD_WHY_MAX], chat_err_t *err);

/* Frees a rule set. Accepts NULL. */
void chat_mod_rules_free(chat_mod_rules_t *r);

/* True if the rule set has no rule at all (a tenant without rules: nothing to check). */
bool chat_mod_rules_empty(const chat_mod_rules_t *r);

/* One rule that fired. rule points into the rule set (valid while it lives). */
typedef struct chat_mod_hit {
    chat_mod_action_t action;
    chat_mod_kind_t kind;
    const char *rule;
    int64_t mute_s; /* action mute: how long */
} chat_mod_hit_t;

#define CHAT_MOD_HITS_MAX 8 /* a check reports at most this many rules (the first to fire) */

/* Checks text (UTF-8, len bytes; at most 4000 characters as the protocol allows) against the
 * content rules: blocklists (minus the allowlist), regexes, links, mentions (`@name` tokens).
 * Writes each rule that fired into hits (at most one hit per rule, at most max) and returns
 * how many. Invalid UTF-8 is checked as if each bad byte were U+FFFD. Thread-safe: any
 * number of threads may check against one rule set at once (per-call state is on the stack
 * or allocated per call). Returns 0 also when memory runs out (logged). */
size_t chat_mod_rules_check(const chat_mod_rules_t *r, const char *text, size_t len,
                            chat_mod_hit_t *hits, size_t max);

/* The spam rules' parameters; count/max/per_min 0 = that rule is not set. */
typedef struct chat_mod_spam {
    struct {
        int64_t count, window_s;
        chat_mod_action_t action;
        int64_t mute_s;
    } repeat; /* the same normalised text count times within window_s by one user */
    struct {
        int64_t max;
        chat_mod_action_t action;
        int64_t mute_s;
    } mentions; /* more than max mentions in one message (checked by chat_mod_rules_check) */
    struct {
        int64_t per_min;
        chat_mod_action_t action;
        int64_t mute_s;
    } rate; /* more than per_min messages by one user in a minute, across the tenant */
} chat_mod_spam_t;

const chat_mod_spam_t *chat_mod_rules_spam(const chat_mod_rules_t *r);

/* The normalised form of text (the first pass's, as matching sees it) into a malloc'd,
 * NUL-terminated UTF-8 string: what the repeat rule compares ("Hello!!" and "ｈｅｌｌｏ" are
 * the same text). NULL when memory runs out. */
char *chat_mod_normalize(const char *text, size_t len);

#endif
