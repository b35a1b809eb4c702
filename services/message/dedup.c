/* Dedup decisions through one open-addressing table over (tenant, room, from, cid): the
 * stored messages first, then each new send of the batch as it is decided, so an existing
 * message always wins over a repeat within the batch. */
#include "services/message/dedup.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

/* A slot holds 0 (empty) or 1 + an index; indexes below nexisting are stored messages, the
 * others are sends (index - nexisting). */
typedef struct dedup_table {
    size_t *slots;
    size_t mask;
} dedup_table_t;

typedef struct dedup_key {
    const char *tenant, *room, *from, *cid;
} dedup_key_t;

/* s and a separator byte (0xff, which UTF-8 never contains), so that ("ab", "c") and
 * ("a", "bc") differ. */
static uint64_t hash_field(uint64_t h, const char *s)
{
    return chat_hash_byte(chat_hash_str(h, s), 0xff);
}

static uint64_t key_hash(const dedup_key_t *k)
{
    uint64_t h = hash_field(CHAT_HASH_INIT, k->tenant);
    h = hash_field(h, k->room);
    h = hash_field(h, k->from);
    return hash_field(h, k->cid);
}

static bool key_equal(const dedup_key_t *a, const dedup_key_t *b)
{
    return strcmp(a->cid, b->cid) == 0 && strcmp(a->from, b->from) == 0 &&
           strcmp(a->room, b->room) == 0 && strcmp(a->tenant, b->tenant) == 0;
}

static dedup_key_t doc_key(const message_doc_t *d)
{
    return (dedup_key_t){d->tenant, d->room, d->from, d->cid};
}

static dedup_key_t send_key(const message_dedup_send_t *s)
{
    return (dedup_key_t){s->tenant, s->room, s->from, s->cid};
}

typedef struct dedup_ctx {
    dedup_table_t table;
    const message_dedup_send_t *sends;
    const message_doc_t *existing;
    size_t nexisting;
} dedup_ctx_t;

static dedup_key_t entry_key(const dedup_ctx_t *c, size_t entry)
{
    return entry < c->nexisting ? doc_key(&c->existing[entry])
                                : send_key(&c->sends[entry - c->nexisting]);
}

/* Returns the entry with key k, or SIZE_MAX after storing `entry` in the free slot found
 * (entry SIZE_MAX: look up only). */
static size_t table_find_or_put(dedup_ctx_t *c, const dedup_key_t *k, size_t entry)
{
    size_t i = key_hash(k) & c->table.mask;
    for (;;) {
        size_t slot = c->table.slots[i];
        if (slot == 0) {
            if (entry != SIZE_MAX)
                c->table.slots[i] = entry + 1;
            return SIZE_MAX;
        }
        dedup_key_t other = entry_key(c, slot - 1);
        if (key_equal(k, &other))
            return slot - 1;
        i = (i + 1) & c->table.mask;
    }
}

static bool doc_usable(const message_doc_t *d)
{
    return d->tenant != NULL && d->room != NULL && d->from != NULL && d->cid != NULL;
}

chat_err_t message_dedup_decide(const message_dedup_send_t *sends, size_t n,
                                const message_doc_t *existing, size_t nexisting,
                                message_dedup_decision_t *out)
{
    size_t size = 16;
    while (size < 2 * (n + nexisting))
        size *= 2;
    dedup_ctx_t c = {.sends = sends, .existing = existing, .nexisting = nexisting};
    c.table.slots = calloc(size, sizeof *c.table.slots);
    if (c.table.slots == NULL)
        return CHAT_ERR_NOMEM;
    c.table.mask = size - 1;
    for (size_t i = 0; i < nexisting; i++) {
        if (!doc_usable(&existing[i]))
            continue;
        dedup_key_t k = doc_key(&existing[i]);
        table_find_or_put(&c, &k, i);
    }
    for (size_t i = 0; i < n; i++) {
        dedup_key_t k = send_key(&sends[i]);
        size_t found = table_find_or_put(&c, &k, nexisting + i);
        if (found == SIZE_MAX) {
            out[i] = (message_dedup_decision_t){MESSAGE_DEDUP_NEW, 0};
        } else if (found >= nexisting) {
            out[i] = (message_dedup_decision_t){MESSAGE_DEDUP_REPEAT, found - nexisting};
        } else {
            const char *src = existing[found].src;
            bool same = src != NULL && sends[i].src != NULL && strcmp(src, sends[i].src) == 0;
            out[i] = (message_dedup_decision_t){
                same ? MESSAGE_DEDUP_REPUBLISH : MESSAGE_DEDUP_RESEND, found};
        }
    }
    free(c.table.slots);
    return CHAT_OK;
}

const char *message_dedup_kind_name(message_dedup_kind_t kind)
{
    switch (kind) {
    case MESSAGE_DEDUP_NEW:
        return "new";
    case MESSAGE_DEDUP_RESEND:
        return "resend";
    case MESSAGE_DEDUP_REPUBLISH:
        return "republish";
    case MESSAGE_DEDUP_REPEAT:
        return "repeat";
    }
    return "unknown";
}
