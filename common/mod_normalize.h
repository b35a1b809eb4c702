/* The moderation rule engine's text normalisation (docs/moderation.md, "Matching"): the
 * pass-0 text that regexes, links and mentions read, and the pass-1 and pass-2 code point
 * streams the blocklist automaton reads. List entries go through the same functions as texts. */
#ifndef CHAT_COMMON_MOD_NORMALIZE_H
#define CHAT_COMMON_MOD_NORMALIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* A masked letter (`f*ck`) in a stream: stands for any one letter a-z. */
#define CHAT_MOD_MASK 1u

/* flags of a stream position (pass 2 only) */
#define CHAT_MOD_JOIN_BEFORE 1u /* punctuation or spaces were removed just before it */
#define CHAT_MOD_JOIN_INSIDE 2u /* its run merged letters from both sides of removed ones */

/* A normalised text: code points with runs of one letter collapsed into one position that
 * keeps the run's length (capped at 255). The arrays are malloc'd; chat_mod_stream_free. */
typedef struct chat_mod_stream {
    uint32_t *cp;
    uint8_t *run;
    uint8_t *flags;
    size_t len, cap;
} chat_mod_stream_t;

/* True for what words are made of in a stream: letters, digits, CHAT_MOD_MASK. */
bool chat_mod_is_word(uint32_t cp);

/* The pass-0 text of the UTF-8 text[0..len) (bad bytes read as U+FFFD): NFKC case folded,
 * format characters removed. Writes a malloc'd UTF-16 copy into *u16 (length *n16) and, if
 * utf8 is not NULL, a malloc'd NUL-terminated UTF-8 copy into *utf8 (length *n8). Returns
 * CHAT_OK, or CHAT_ERR_NOMEM / CHAT_ERR_INVALID (an ICU failure) with nothing allocated. */
chat_err_t chat_mod_norm_pass0(const char *text, size_t len, uint16_t **u16, int32_t *n16,
                               char **utf8, size_t *n8);

/* The pass-1 stream of a pass-0 text: marks and format characters dropped after a canonical
 * decomposition, confusable look-alikes made Latin, leetspeak inside words mapped, masks
 * between letters made CHAT_MOD_MASK, single letters spaced out by one separator joined,
 * runs collapsed. out must be zeroed or previously used. CHAT_OK or CHAT_ERR_NOMEM. */
chat_err_t chat_mod_norm_pass1(const uint16_t *u16, int32_t n16, chat_mod_stream_t *out);

/* The pass-2 stream of a pass-1 stream: every run of non-word characters between two word
 * characters removed (the next position flagged), runs collapsed again. CHAT_OK or
 * CHAT_ERR_NOMEM. */
chat_err_t chat_mod_norm_pass2(const chat_mod_stream_t *in, chat_mod_stream_t *out);

/* Frees a stream's arrays and zeroes it. Accepts a zeroed stream. */
void chat_mod_stream_free(chat_mod_stream_t *s);

#endif
