/* Normalisation of message texts and list entries for moderation: ICU does the Unicode work
 * (NFKC case folding, canonical decomposition, the TR39 confusables skeleton); the leetspeak
 * map, masks, spaced-out letters and collapsed runs are done here on code point arrays. */
#include "common/mod_normalize.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uspoof.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include "common/log.h"

/* ---- the confusables table ----
 * The skeleton of whole strings would rewrite ordinary Latin text too (TR39 maps `m` to `rn`
 * and `1` to `l`), so only letters outside ASCII are mapped, one code point at a time, and
 * only when their skeleton, case folded, is one ASCII letter: Cyrillic `а` -> a, Greek `ο` ->
 * o, Latin `ɑ` -> a; a Cyrillic `к` (skeleton `ĸ`) stays. The skeletons of the BMP blocks
 * that hold look-alikes of Latin letters are computed once per process into a table, so a
 * check costs one lookup per character instead of an ICU call.
 * Thread safety: uspoof.h says the functions taking a const USpoofChecker (uspoof_getSkeleton
 * among them) may be called concurrently on one checker; here the checker is only used inside
 * pthread_once and closed afterwards, and the table is read-only from then on. */
#define SKEL_TABLE_SIZE 0x10000
static uint8_t g_skel[SKEL_TABLE_SIZE]; /* code point -> ASCII letter, 0 = unchanged */
static pthread_once_t g_skel_once = PTHREAD_ONCE_INIT;

static const struct {
    uint32_t from, to;
} g_skel_ranges[] = {
    {0x0080, 0x33FF}, /* Latin-1 .. CJK symbols: Latin ext., IPA, Greek, Cyrillic, Armenian,
                         Cherokee, letterlike symbols... */
    {0xA640, 0xA7FF}, /* Cyrillic ext. B, Latin ext. D */
    {0xAB30, 0xABBF}, /* Latin ext. E, Cherokee supplement */
};

/* Fills g_skel; on an ICU failure leaves it empty (logged: matching goes on without it). */
static void skel_build(void)
{
    UErrorCode e = U_ZERO_ERROR;
    USpoofChecker *sc = uspoof_open(&e);
    if (U_FAILURE(e)) {
        chat_log_error("moderation: uspoof_open failed", CHAT_F_STR("icu", u_errorName(e)));
        return;
    }
    for (size_t r = 0; r < sizeof g_skel_ranges / sizeof g_skel_ranges[0]; r++) {
        for (uint32_t c = g_skel_ranges[r].from; c <= g_skel_ranges[r].to; c++) {
            if (!u_isalpha((UChar32)c) || U16_IS_SURROGATE(c))
                continue;
            UChar in[1] = {(UChar)c}, sk[8], fold[8];
            e = U_ZERO_ERROR;
            int32_t n = uspoof_getSkeleton(sc, 0, in, 1, sk, 8, &e);
            if (U_FAILURE(e) || n < 1)
                continue;
            int32_t m = u_strFoldCase(fold, 8, sk, n, U_FOLD_CASE_DEFAULT, &e);
            if (U_FAILURE(e) || m != 1 || fold[0] < 'a' || fold[0] > 'z')
                continue;
            g_skel[c] = (uint8_t)fold[0];
        }
    }
    uspoof_close(sc);
}

/* ---- character classes ---- */

bool chat_mod_is_word(uint32_t cp)
{
    if (cp == CHAT_MOD_MASK)
        return true;
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z');
    return u_isalnum((UChar32)cp);
}

static bool is_alpha(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    return cp != CHAT_MOD_MASK && u_isalpha((UChar32)cp);
}

/* Leetspeak: what a digit or symbol stands for inside a word (0 = nothing). */
static uint32_t leet_of(uint32_t c)
{
    switch (c) {
    case '0':
        return 'o';
    case '1':
        return 'i';
    case '3':
        return 'e';
    case '4':
        return 'a';
    case '5':
        return 's';
    case '7':
        return 't';
    case '8':
        return 'b';
    case '9':
        return 'g';
    case '@':
        return 'a';
    case '$':
        return 's';
    case '!':
        return 'i';
    case '|':
        return 'l';
    case '+':
        return 't';
    default:
        return 0;
    }
}

static bool is_mask_char(uint32_t c)
{
    return c == '*' || c == '#' || c == '%';
}

/* What a word-like token is made of before leetspeak is resolved. */
static bool is_token_char(uint32_t c)
{
    return chat_mod_is_word(c) || leet_of(c) != 0 || is_mask_char(c);
}

/* ---- streams ---- */

void chat_mod_stream_free(chat_mod_stream_t *s)
{
    free(s->cp);
    free(s->run);
    free(s->flags);
    memset(s, 0, sizeof *s);
}

/* Makes room for one more position. False when memory runs out. */
static bool stream_reserve(chat_mod_stream_t *s)
{
    if (s->len < s->cap)
        return true;
    size_t cap = s->cap ? s->cap * 2 : 64;
    uint32_t *cp = realloc(s->cp, cap * sizeof *cp);
    if (!cp)
        return false;
    s->cp = cp;
    uint8_t *run = realloc(s->run, cap);
    if (!run)
        return false;
    s->run = run;
    uint8_t *flags = realloc(s->flags, cap);
    if (!flags)
        return false;
    s->flags = flags;
    s->cap = cap;
    return true;
}

static uint8_t run_add(unsigned a, unsigned b)
{
    return (uint8_t)(a + b > 255 ? 255 : a + b);
}

/* Appends cp (a run of n), merged into the last position when it is the same character
 * (masks never merge: each stands for its own letter). False when memory runs out. */
static bool stream_push(chat_mod_stream_t *s, uint32_t cp, unsigned n, uint8_t flags)
{
    if (s->len > 0 && cp != CHAT_MOD_MASK && s->cp[s->len - 1] == cp) {
        s->run[s->len - 1] = run_add(s->run[s->len - 1], n);
        s->flags[s->len - 1] |= flags ? CHAT_MOD_JOIN_INSIDE : 0;
        return true;
    }
    if (!stream_reserve(s))
        return false;
    s->cp[s->len] = cp;
    s->run[s->len] = run_add(n, 0);
    s->flags[s->len] = flags;
    s->len++;
    return true;
}

/* ---- pass 0 ---- */

/* Normalises src with norm into a malloc'd buffer (*out, *n_out), growing it as ICU asks.
 * Returns CHAT_OK, CHAT_ERR_NOMEM or CHAT_ERR_INVALID. */
static chat_err_t icu_normalize(const UNormalizer2 *norm, const UChar *src, int32_t n, UChar **out,
                                int32_t *n_out)
{
    int32_t cap = n * 2 + 16;
    for (int attempt = 0; attempt < 2; attempt++) {
        UChar *buf = malloc((size_t)cap * sizeof *buf);
        if (!buf)
            return CHAT_ERR_NOMEM;
        UErrorCode e = U_ZERO_ERROR;
        int32_t got = unorm2_normalize(norm, src, n, buf, cap, &e);
        if (e == U_BUFFER_OVERFLOW_ERROR) {
            free(buf);
            cap = got + 1;
            continue;
        }
        if (U_FAILURE(e)) {
            free(buf);
            return CHAT_ERR_INVALID;
        }
        *out = buf;
        *n_out = got;
        return CHAT_OK;
    }
    return CHAT_ERR_INVALID;
}

chat_err_t chat_mod_norm_pass0(const char *text, size_t len, uint16_t **u16, int32_t *n16,
                               char **utf8, size_t *n8)
{
    *u16 = NULL;
    *n16 = 0;
    if (utf8)
        *utf8 = NULL;
    if (len > INT32_MAX / 4)
        return CHAT_ERR_INVALID;
    UErrorCode e = U_ZERO_ERROR;
    const UNormalizer2 *nfkc_cf = unorm2_getNFKCCasefoldInstance(&e);
    if (U_FAILURE(e))
        return CHAT_ERR_INVALID;
    UChar *raw = malloc((len + 1) * sizeof *raw);
    if (!raw)
        return CHAT_ERR_NOMEM;
    int32_t nraw = 0;
    int32_t subs = 0;
    u_strFromUTF8WithSub(raw, (int32_t)len + 1, &nraw, text, (int32_t)len, 0xFFFD, &subs, &e);
    if (U_FAILURE(e)) {
        free(raw);
        return CHAT_ERR_INVALID;
    }
    UChar *norm = NULL;
    int32_t nnorm = 0;
    chat_err_t err = icu_normalize(nfkc_cf, raw, nraw, &norm, &nnorm);
    free(raw);
    if (err != CHAT_OK)
        return err;
    /* NFKC_Casefold drops default ignorables; other format characters (gc=Cf) go here. */
    int32_t w = 0;
    for (int32_t i = 0; i < nnorm;) {
        int32_t start = i;
        UChar32 c;
        U16_NEXT(norm, i, nnorm, c);
        if (c >= 0x80 && u_charType(c) == U_FORMAT_CHAR)
            continue;
        while (start < i)
            norm[w++] = norm[start++];
    }
    if (utf8) {
        size_t cap = (size_t)w * 3 + 1;
        char *s = malloc(cap);
        if (!s) {
            free(norm);
            return CHAT_ERR_NOMEM;
        }
        int32_t n = 0;
        e = U_ZERO_ERROR;
        u_strToUTF8WithSub(s, (int32_t)cap, &n, norm, w, 0xFFFD, NULL, &e);
        if (U_FAILURE(e)) {
            free(s);
            free(norm);
            return CHAT_ERR_INVALID;
        }
        *utf8 = s;
        *n8 = (size_t)n;
    }
    *u16 = norm;
    *n16 = w;
    return CHAT_OK;
}

/* ---- pass 1 ---- */

/* Leetspeak and masks, in place, inside each token (a run of letters, digits, leet symbols
 * and mask characters) that has at least one letter: "2024" stays digits, "sh1t" is "shit".
 * A symbol maps only with a letter or digit after it in the token, so the "!" of "wow!"
 * stays punctuation. A mask character between two letters becomes CHAT_MOD_MASK. */
static void leet_and_mask(uint32_t *a, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (!is_token_char(a[i])) {
            i++;
            continue;
        }
        size_t j = i;
        bool letter = false;
        size_t last_alnum = SIZE_MAX;
        while (j < n && is_token_char(a[j])) {
            if (is_alpha(a[j]))
                letter = true;
            if (chat_mod_is_word(a[j]))
                last_alnum = j;
            j++;
        }
        if (letter) {
            for (size_t k = i; k < j; k++) {
                uint32_t l = leet_of(a[k]);
                if (l == 0)
                    continue;
                if ((a[k] >= '0' && a[k] <= '9') || k < last_alnum)
                    a[k] = l;
            }
            for (size_t k = i + 1; k + 1 < j; k++)
                if (is_mask_char(a[k]) && is_alpha(a[k - 1]) && is_alpha(a[k + 1]))
                    a[k] = CHAT_MOD_MASK;
        }
        i = j;
    }
}

static bool single_letter(const uint32_t *a, size_t n, size_t k)
{
    return is_alpha(a[k]) && (k == 0 || !chat_mod_is_word(a[k - 1])) &&
           (k + 1 >= n || !chat_mod_is_word(a[k + 1]));
}

chat_err_t chat_mod_norm_pass1(const uint16_t *u16, int32_t n16, chat_mod_stream_t *out)
{
    pthread_once(&g_skel_once, skel_build);
    out->len = 0;
    UErrorCode e = U_ZERO_ERROR;
    const UNormalizer2 *nfd = unorm2_getNFDInstance(&e);
    if (U_FAILURE(e))
        return CHAT_ERR_INVALID;
    UChar *d = NULL;
    int32_t nd = 0;
    chat_err_t err = icu_normalize(nfd, u16, n16, &d, &nd);
    if (err != CHAT_OK)
        return err;
    uint32_t *a = malloc(((size_t)nd + 1) * sizeof *a);
    if (!a) {
        free(d);
        return CHAT_ERR_NOMEM;
    }
    size_t n = 0;
    for (int32_t i = 0; i < nd;) {
        UChar32 c;
        U16_NEXT(d, i, nd, c);
        if (c < 0x80) { /* most text: no ICU lookup */
            a[n++] = c < 0x20 || c == 0x7F || c == CHAT_MOD_MASK ? ' ' : (uint32_t)c;
            continue;
        }
        int8_t t = u_charType(c);
        if (t == U_NON_SPACING_MARK || t == U_ENCLOSING_MARK || t == U_FORMAT_CHAR)
            continue;
        uint32_t cp = (uint32_t)c;
        if (cp == CHAT_MOD_MASK || t == U_CONTROL_CHAR || t == U_SPACE_SEPARATOR ||
            t == U_LINE_SEPARATOR || t == U_PARAGRAPH_SEPARATOR)
            cp = ' ';
        else if (cp >= 0x80 && cp < SKEL_TABLE_SIZE && g_skel[cp])
            cp = g_skel[cp];
        a[n++] = cp;
    }
    free(d);
    leet_and_mask(a, n);
    err = CHAT_OK;
    for (size_t i = 0; i < n && err == CHAT_OK;) {
        if (single_letter(a, n, i)) {
            size_t k = i, count = 1;
            while (k + 2 < n && !chat_mod_is_word(a[k + 1]) && single_letter(a, n, k + 2)) {
                k += 2;
                count++;
            }
            if (count >= 3) {
                for (size_t m = i; m <= k && err == CHAT_OK; m += 2)
                    if (!stream_push(out, a[m], 1, 0))
                        err = CHAT_ERR_NOMEM;
                i = k + 1;
                continue;
            }
        }
        if (!stream_push(out, a[i], 1, 0))
            err = CHAT_ERR_NOMEM;
        i++;
    }
    free(a);
    return err;
}

/* ---- pass 2 ---- */

chat_err_t chat_mod_norm_pass2(const chat_mod_stream_t *in, chat_mod_stream_t *out)
{
    out->len = 0;
    bool join = false;
    for (size_t i = 0; i < in->len;) {
        if (!chat_mod_is_word(in->cp[i])) {
            size_t j = i;
            while (j < in->len && !chat_mod_is_word(in->cp[j]))
                j++;
            if (i > 0 && j < in->len) { /* between two word characters: ignored */
                join = true;
                i = j;
                continue;
            }
            for (; i < j; i++)
                if (!stream_push(out, in->cp[i], in->run[i], 0))
                    return CHAT_ERR_NOMEM;
            continue;
        }
        if (!stream_push(out, in->cp[i], in->run[i], join ? CHAT_MOD_JOIN_BEFORE : 0))
            return CHAT_ERR_NOMEM;
        join = false;
        i++;
    }
    return CHAT_OK;
}
