/* A small hash map from strings to pointers (separate chaining, grows with its content),
 * used by the gateway's loop-owned tables: sessions by connection id, rooms by
 * "tenant/room", users of a room, tenants of the secret cache. Not thread-safe. */
#ifndef CHAT_GATEWAY_STRMAP_H
#define CHAT_GATEWAY_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct gw_strmap gw_strmap_t;

/* NULL if out of memory. */
gw_strmap_t *gw_strmap_new(void);

/* Frees the map and its key copies; values are the caller's. Accepts NULL. */
void gw_strmap_free(gw_strmap_t *m);

/* The value stored under key, or NULL. */
void *gw_strmap_get(const gw_strmap_t *m, const char *key);

/* Stores value under a copy of key, replacing what was there. Returns false if out of
 * memory. */
bool gw_strmap_put(gw_strmap_t *m, const char *key, void *value);

/* Removes key; returns its value, or NULL if it was absent. */
void *gw_strmap_remove(gw_strmap_t *m, const char *key);

size_t gw_strmap_count(const gw_strmap_t *m);

/* Calls fn for every entry, in no particular order. fn must not change the map. */
void gw_strmap_foreach(const gw_strmap_t *m, void (*fn)(const char *key, void *value, void *ud),
                       void *ud);

#endif
