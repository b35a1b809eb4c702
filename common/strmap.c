/* String -> pointer hash map with separate chaining (see strmap.h), hashed with
 * common/hash.h; the bucket array doubles when the map holds more entries than buckets. */
#include "common/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

#define STRMAP_MIN_BUCKETS 16

typedef struct strmap_entry {
    struct strmap_entry *next;
    uint64_t hash;
    void *value;
    char key[];
} strmap_entry_t;

struct chat_strmap {
    strmap_entry_t **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
};

chat_strmap_t *chat_strmap_new(void)
{
    chat_strmap_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->buckets = calloc(STRMAP_MIN_BUCKETS, sizeof *m->buckets);
    if (m->buckets == NULL) {
        free(m);
        return NULL;
    }
    m->nbuckets = STRMAP_MIN_BUCKETS;
    return m;
}

void chat_strmap_clear(chat_strmap_t *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        strmap_entry_t *e = m->buckets[i];
        while (e != NULL) {
            strmap_entry_t *next = e->next;
            free(e);
            e = next;
        }
        m->buckets[i] = NULL;
    }
    m->count = 0;
}

void chat_strmap_free(chat_strmap_t *m)
{
    if (m == NULL)
        return;
    chat_strmap_clear(m);
    free(m->buckets);
    free(m);
}

/* The link that points at key's entry (or the bucket's terminating NULL link). */
static strmap_entry_t **strmap_slot(const chat_strmap_t *m, const char *key, uint64_t h)
{
    strmap_entry_t **link = &m->buckets[h & (m->nbuckets - 1)];
    while (*link != NULL && ((*link)->hash != h || strcmp((*link)->key, key) != 0))
        link = &(*link)->next;
    return link;
}

void *chat_strmap_get(const chat_strmap_t *m, const char *key)
{
    strmap_entry_t *e = *strmap_slot(m, key, chat_hash(key));
    return e != NULL ? e->value : NULL;
}

/* Doubles the buckets; a failed allocation keeps the old (still correct) table. */
static void strmap_grow(chat_strmap_t *m)
{
    size_t n = m->nbuckets * 2;
    strmap_entry_t **buckets = calloc(n, sizeof *buckets);
    if (buckets == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        strmap_entry_t *e = m->buckets[i];
        while (e != NULL) {
            strmap_entry_t *next = e->next;
            e->next = buckets[e->hash & (n - 1)];
            buckets[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = buckets;
    m->nbuckets = n;
}

bool chat_strmap_put(chat_strmap_t *m, const char *key, void *value)
{
    uint64_t h = chat_hash(key);
    strmap_entry_t **link = strmap_slot(m, key, h);
    if (*link != NULL) {
        (*link)->value = value;
        return true;
    }
    size_t klen = strlen(key);
    strmap_entry_t *e = malloc(sizeof *e + klen + 1);
    if (e == NULL)
        return false;
    e->next = NULL;
    e->hash = h;
    e->value = value;
    memcpy(e->key, key, klen + 1);
    *link = e;
    if (++m->count > m->nbuckets)
        strmap_grow(m);
    return true;
}

void *chat_strmap_remove(chat_strmap_t *m, const char *key)
{
    strmap_entry_t **link = strmap_slot(m, key, chat_hash(key));
    strmap_entry_t *e = *link;
    if (e == NULL)
        return NULL;
    void *value = e->value;
    *link = e->next;
    free(e);
    m->count--;
    return value;
}

size_t chat_strmap_count(const chat_strmap_t *m)
{
    return m->count;
}

void chat_strmap_foreach(const chat_strmap_t *m, void (*fn)(const char *key, void *value, void *ud),
                         void *ud)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (strmap_entry_t *e = m->buckets[i]; e != NULL; e = e->next)
            fn(e->key, e->value, ud);
    }
}

void chat_strmap_free_value(const char *key, void *value, void *ud)
{
    (void)key;
    (void)ud;
    free(value);
}
