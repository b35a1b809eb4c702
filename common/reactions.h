/* A message's reactions: {emoji: [user ids in the order they reacted]} as cJSON (what frames
 * and events carry), the rule that changes them (add or remove one user's emoji, a bound on
 * distinct emoji) and their MongoDB form. In MongoDB they are an array of {e: emoji, u:
 * [users]} in the order the emoji first appeared, not an object keyed by emoji: an emoji may
 * hold characters ('.', a leading '$') that field names must not. The message service writes
 * them, the gateway reads them. */
#ifndef CHAT_COMMON_REACTIONS_H
#define CHAT_COMMON_REACTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include <bson/bson.h>
#include <cjson/cJSON.h>

/* Distinct emoji a message holds at most (the protocol's limit). */
#define CHAT_REACTIONS_MAX_EMOJI 20

typedef enum chat_reactions_change {
    CHAT_REACTIONS_CHANGED,   /* the user's emoji was added or removed */
    CHAT_REACTIONS_UNCHANGED, /* already there (on) or not there (off): nothing to do */
    CHAT_REACTIONS_TOO_MANY,  /* on: a new emoji beyond max_emoji distinct ones; refused */
    CHAT_REACTIONS_NOMEM,
} chat_reactions_change_t;

/* Adds (on) or removes (off) user's emoji in reactions (a cJSON object, changed in place):
 * a new user goes to the end of the emoji's list, a new emoji to the end of the object; an
 * emoji whose last user is removed disappears. */
chat_reactions_change_t chat_reactions_apply(cJSON *reactions, const char *emoji, const char *user,
                                             bool on, size_t max_emoji);

/* The reactions held by the BSON array at it ([{e, u: [...]}, ...]) as a new cJSON object
 * (caller deletes; an empty object for an empty array). Malformed entries are skipped.
 * NULL if it does not hold an array, or out of memory. */
cJSON *chat_reactions_from_bson(const bson_iter_t *it);

/* Appends reactions to doc under key in the array form. False if out of memory or the
 * object is not made of arrays of strings. */
bool chat_reactions_to_bson(bson_t *doc, const char *key, const cJSON *reactions);

#endif
