/* One string hash for the in-process tables and shard choices of every service: FNV-1a,
 * 64 bits. Fast on short keys such as "tenant/room"; the keys are names chosen by tenants
 * in bounded tables, not input built to collide. Values are not a contract: they are never
 * stored or sent, so the function may change. */
#ifndef CHAT_COMMON_HASH_H
#define CHAT_COMMON_HASH_H

#include <stdint.h>

#define CHAT_HASH_INIT UINT64_C(14695981039346656037) /* FNV-1a offset basis */

/* h with one more byte mixed in. */
static inline uint64_t chat_hash_byte(uint64_t h, unsigned char c)
{
    return (h ^ c) * UINT64_C(1099511628211);
}

/* h with the bytes of the NUL-terminated s mixed in (start from CHAT_HASH_INIT). Hashing
 * several strings in a row: mix a separator byte between them, so that ("ab", "c") and
 * ("a", "bc") differ. */
static inline uint64_t chat_hash_str(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        h = chat_hash_byte(h, *p);
    return h;
}

/* The hash of the NUL-terminated s. */
static inline uint64_t chat_hash(const char *s)
{
    return chat_hash_str(CHAT_HASH_INIT, s);
}

#endif
