/* The one string-keyed hash map of the platform: strings to pointers, separate chaining,
 * grows with its content, keys copied. Every service's tables use it (the gateway's sessions,
 * rooms, users and tenants; the message service's rooms; broadcast's rooms of a batch).
 * Not thread-safe. */
#ifndef CHAT_COMMON_STRMAP_H
#define CHAT_COMMON_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct chat_strmap chat_strmap_t;

/* NULL if out of memory. */
chat_strmap_t *chat_strmap_new(void);

/* Frees the map and its key copies; values are the caller's. Accepts NULL. */
void chat_strmap_free(chat_strmap_t *m);

/* The value stored under key, or NULL. */
void *chat_strmap_get(const chat_strmap_t *m, const char *key);

/* Stores value under a copy of key, replacing what was there. Returns false if out of
 * memory. */
bool chat_strmap_put(chat_strmap_t *m, const char *key, void *value);

/* Removes key; returns its value, or NULL if it was absent. */
void *chat_strmap_remove(chat_strmap_t *m, const char *key);

size_t chat_strmap_count(const chat_strmap_t *m);

/* Removes every entry (values are the caller's) and keeps the bucket array, for a table
 * refilled per batch. */
void chat_strmap_clear(chat_strmap_t *m);

/* Calls fn for every entry, in no particular order. fn must not change the map. */
void chat_strmap_foreach(const chat_strmap_t *m, void (*fn)(const char *key, void *value, void *ud),
                         void *ud);

/* A chat_strmap_foreach callback that free()s each value: for maps of malloc'd values
 * before chat_strmap_clear or chat_strmap_free. */
void chat_strmap_free_value(const char *key, void *value, void *ud);

#endif
