/* The receive path's reading of server frames without a JSON parser: the bench knows every
 * room name, user id and text it will see (its own, free of escapes), so finding "key": in
 * a frame and reading the value after it is exact for them and costs one memmem. A quote
 * inside a JSON string is always escaped, so "key": cannot match inside a string value. */
#ifndef BENCH_SCAN_H
#define BENCH_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum bench_frame_type {
    BENCH_FRAME_OTHER = 0, /* pong, presence, left, ... */
    BENCH_FRAME_MSG,
    BENCH_FRAME_ACK,
    BENCH_FRAME_ERROR,
    BENCH_FRAME_WELCOME,
    BENCH_FRAME_JOINED,
    BENCH_FRAME_TYPING,
    BENCH_FRAME_UPDATE, /* a change to a stored message: edit, delete, react, moderate */
} bench_frame_type_t;

/* The frame's "type". */
bench_frame_type_t bench_scan_type(const char *p, size_t n);

/* The integer after "key": (key without quotes); false if absent or not a number. */
bool bench_scan_int(const char *p, size_t n, const char *key, int64_t *out);

/* The raw bytes of the string after "key": (no unescaping); false if absent. */
bool bench_scan_str(const char *p, size_t n, const char *key, const char **s, size_t *len);

/* Parses the decimal digits at s[0..len) up to the first non-digit into *out and returns how
 * many digits there were (0: none). */
size_t bench_scan_digits(const char *s, size_t len, int64_t *out);

#endif
