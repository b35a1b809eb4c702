/* Array growth (see array.h). */
#include "common/array.h"

#include <stdint.h>
#include <stdlib.h>

#define ARRAY_MIN_CAP 16

void *chat_array_grow(void *items, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return items;
    if (elem == 0)
        return NULL;
    size_t next = *cap > ARRAY_MIN_CAP ? *cap : ARRAY_MIN_CAP;
    while (next < need) {
        if (next > SIZE_MAX / 2)
            return NULL;
        next *= 2;
    }
    if (next > SIZE_MAX / elem)
        return NULL;
    void *grown = realloc(items, next * elem);
    if (grown != NULL)
        *cap = next;
    return grown;
}
