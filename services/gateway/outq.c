/* Reference-counted frame buffers and the bounded per-socket FIFO (see outq.h). */
#include "services/gateway/outq.h"

#include <stdlib.h>
#include <string.h>

#define OUTQ_MIN_ALLOC 4

gw_buf_t *gw_buf_new(const void *payload, size_t len)
{
    gw_buf_t *b = malloc(sizeof *b + GW_BUF_PRE + len + 1);
    if (b == NULL)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = len;
    memset(b->data, 0, GW_BUF_PRE);
    if (len > 0)
        memcpy(b->data + GW_BUF_PRE, payload, len);
    b->data[GW_BUF_PRE + len] = '\0';
    return b;
}

gw_buf_t *gw_buf_take_text(char *text)
{
    if (text == NULL)
        return NULL;
    gw_buf_t *b = gw_buf_new(text, strlen(text));
    free(text);
    return b;
}

gw_buf_t *gw_buf_ref(gw_buf_t *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void gw_buf_unref(gw_buf_t *b)
{
    if (b != NULL && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}

void gw_outq_init(gw_outq_t *q, size_t cap)
{
    memset(q, 0, sizeof *q);
    q->cap = cap;
}

void gw_outq_clear(gw_outq_t *q)
{
    gw_outq_entry_t e;
    while (gw_outq_pop(q, &e))
        gw_buf_unref(e.buf);
    free(q->ring);
    q->ring = NULL;
    q->alloc = 0;
    q->head = 0;
}

/* Doubles the ring, unwrapping it so that the oldest entry lands at index 0. Returns false
 * if out of memory (the queue is unchanged). */
static bool outq_grow(gw_outq_t *q)
{
    size_t n = q->alloc == 0 ? OUTQ_MIN_ALLOC : q->alloc * 2;
    gw_outq_entry_t *ring = malloc(n * sizeof *ring);
    if (ring == NULL)
        return false;
    for (size_t i = 0; i < q->len; i++)
        ring[i] = q->ring[(q->head + i) & (q->alloc - 1)];
    free(q->ring);
    q->ring = ring;
    q->alloc = n;
    q->head = 0;
    return true;
}

bool gw_outq_push(gw_outq_t *q, gw_buf_t *buf, int64_t seq)
{
    if (q->len >= q->cap || (q->len == q->alloc && !outq_grow(q))) {
        gw_buf_unref(buf);
        return false;
    }
    q->ring[(q->head + q->len) & (q->alloc - 1)] = (gw_outq_entry_t){.buf = buf, .seq = seq};
    q->len++;
    return true;
}

bool gw_outq_pop(gw_outq_t *q, gw_outq_entry_t *out)
{
    if (q->len == 0)
        return false;
    *out = q->ring[q->head];
    q->head = (q->head + 1) & (q->alloc - 1);
    q->len--;
    return true;
}
