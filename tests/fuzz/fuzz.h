/* What every fuzz target shares: logging off (a parser's refusals are expected, thousands a
 * second), and small helpers to cut the input into pieces. Header-only; each target is one
 * program with libFuzzer's LLVMFuzzerTestOneInput. */
#ifndef CHAT_FUZZ_H
#define CHAT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts with a message: a property of the code under test was broken (libFuzzer saves the
 * input as a crash). */
#define FUZZ_ASSERT(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz assertion failed: %s: ", #cond);                                 \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static inline void fuzz_quiet(void)
{
    chat_log_init("fuzz", CHAT_LOG_OFF);
}

/* The LLVMFuzzerInitialize of a target that needs nothing but quiet logs. */
#define FUZZ_QUIET_INIT                                                                            \
    int LLVMFuzzerInitialize(int *argc, char ***argv)                                              \
    {                                                                                              \
        (void)argc;                                                                                \
        (void)argv;                                                                                \
        fuzz_quiet();                                                                              \
        return 0;                                                                                  \
    }

/* A NUL-terminated malloc'd copy of data[0..size) (aborts when memory runs out). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Cuts the next piece off *data: up to the next NUL byte (excluded) or the end. Returns a
 * malloc'd NUL-terminated copy. */
static inline char *fuzz_take_str(const uint8_t **data, size_t *size)
{
    const uint8_t *nul = memchr(*data, 0, *size);
    size_t n = nul != NULL ? (size_t)(nul - *data) : *size;
    char *s = fuzz_strndup(*data, n);
    size_t used = nul != NULL ? n + 1 : n;
    *data += used;
    *size -= used;
    return s;
}

/* The next byte of the input (0 once it is used up). */
static inline uint8_t fuzz_take_byte(const uint8_t **data, size_t *size)
{
    if (*size == 0)
        return 0;
    uint8_t b = **data;
    (*data)++;
    (*size)--;
    return b;
}

#endif
