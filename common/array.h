/* Growth of malloc'd arrays and byte buffers: the capacity doubles until it holds what is
 * needed, so appending n elements one at a time costs O(n) copying in all. */
#ifndef CHAT_COMMON_ARRAY_H
#define CHAT_COMMON_ARRAY_H

#include <stddef.h>

/* Returns items (elements of elem bytes, capacity *cap) grown to hold at least need
 * elements, updating *cap; items itself if it already does. Returns NULL if out of memory
 * or if the size would overflow: items and *cap are then unchanged and items still belongs
 * to the caller. An empty array grows to at least 16 elements.
 *   T *v = chat_array_grow(x->v, &x->cap, x->n + 1, sizeof *v); if (!v) fail; x->v = v; */
void *chat_array_grow(void *items, size_t *cap, size_t need, size_t elem);

#endif
