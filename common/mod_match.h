/* Aho–Corasick over normalised code points: every blocklist and allowlist entry of a rule
 * set in one automaton, so a scan costs the same for 10 entries or 10,000. Transitions are
 * stored compactly (sorted edge arrays, a direct table for ASCII at the root). Built once,
 * then read-only: any number of threads may scan with one automaton at once. */
#ifndef CHAT_COMMON_MOD_MATCH_H
#define CHAT_COMMON_MOD_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/mod_normalize.h"

typedef struct chat_mod_ac_builder chat_mod_ac_builder_t;
typedef struct chat_mod_ac chat_mod_ac_t;

/* A new, empty builder, or NULL when memory runs out. */
chat_mod_ac_builder_t *chat_mod_ac_builder_new(void);

/* Adds a pattern: the positions of a stream (code points and run lengths; a position of the
 * pattern matches a text position with the same code point and a run at least as long).
 * tag is the caller's (returned with each match). Returns CHAT_OK, CHAT_ERR_INVALID for an
 * empty pattern or one longer than 255 positions, or CHAT_ERR_NOMEM. */
chat_err_t chat_mod_ac_builder_add(chat_mod_ac_builder_t *b, const uint32_t *cp, const uint8_t *run,
                                   size_t len, uint32_t tag);

/* Builds the automaton and frees the builder (in every case). NULL when memory runs out. */
chat_mod_ac_t *chat_mod_ac_build(chat_mod_ac_builder_t *b);

/* Frees a builder that was not built. Accepts NULL. */
void chat_mod_ac_builder_free(chat_mod_ac_builder_t *b);

/* Frees an automaton. Accepts NULL. */
void chat_mod_ac_free(chat_mod_ac_t *ac);

/* Bytes the automaton holds (its arrays). */
size_t chat_mod_ac_bytes(const chat_mod_ac_t *ac);

/* Called for each match: the pattern's tag, the first and last stream positions it covers.
 * Return false to stop the scan. */
typedef bool (*chat_mod_ac_match_fn)(void *ud, uint32_t tag, size_t first, size_t last);

/* Scans s, calling fn for every pattern occurrence whose runs fit (possibly more than once
 * for one occurrence when the text has masks). A CHAT_MOD_MASK position matches any letter
 * a-z (with a run of 1); at most a bounded number of alternatives are followed at once, so a
 * text full of masks stays cheap. */
void chat_mod_ac_scan(const chat_mod_ac_t *ac, const chat_mod_stream_t *s, chat_mod_ac_match_fn fn,
                      void *ud);

#endif
