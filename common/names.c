/* The naming rules of the client protocol (proto/, README.md): character sets and lengths
 * of tenant ids, rooms, users, client and message ids, emoji and direct-message rooms, a
 * strict UTF-8 decoder so that limits counted in characters agree with what clients count,
 * and the escaped-NUL scan of JSON text. */
#include "common/names.h"

#include <stdint.h>
#include <string.h>

#define DM_PREFIX "dm:"
#define DM_PREFIX_LEN 3

static bool is_alnum_ascii(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [A-Za-z0-9._-]: tenants and the members of a dm room. */
static bool is_tenant_char(unsigned char c)
{
    return is_alnum_ascii(c) || c == '.' || c == '_' || c == '-';
}

/* The tenant set plus ':', which separates the parts of dm rooms. */
static bool is_room_char(unsigned char c)
{
    return is_tenant_char(c) || c == ':';
}

/* True if the first len bytes of s are 1..max characters, all accepted by ok. */
static bool span_valid(const char *s, size_t len, size_t max, bool (*ok)(unsigned char))
{
    if (s == NULL || len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!ok((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* Like span_valid for a whole NUL-terminated string; stops scanning past max. */
static bool string_valid(const char *s, size_t max, bool (*ok)(unsigned char))
{
    if (s == NULL)
        return false;
    return span_valid(s, strnlen(s, max + 1), max, ok);
}

bool chat_name_room_valid(const char *s)
{
    return string_valid(s, CHAT_ROOM_MAX, is_room_char);
}

bool chat_name_tenant_valid(const char *s)
{
    return string_valid(s, CHAT_TENANT_MAX, is_tenant_char);
}

static bool is_printable_ascii(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e;
}

bool chat_name_cid_valid(const char *s)
{
    return string_valid(s, CHAT_CID_MAX, is_printable_ascii);
}

/* Decodes one UTF-8 sequence at p (left > 0 bytes available). Returns its length in bytes
 * and the code point in *cp, or 0 if the sequence is truncated, overlong, a surrogate,
 * past U+10FFFF or starts with a continuation or invalid lead byte. */
static size_t utf8_decode(const unsigned char *p, size_t left, uint32_t *cp)
{
    unsigned char lead = p[0];
    size_t n;
    uint32_t min;
    if (lead < 0x80) {
        *cp = lead;
        return 1;
    } else if (lead >= 0xc2 && lead <= 0xdf) {
        n = 2, min = 0x80, *cp = lead & 0x1fu;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        n = 3, min = 0x800, *cp = lead & 0x0fu;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        n = 4, min = 0x10000, *cp = lead & 0x07u;
    } else {
        return 0; /* continuation byte, overlong 0xc0/0xc1, or 0xf5.. */
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (p[i] & 0x3fu);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return n;
}

/* Counts the characters of s[0..len), calling reject (if not NULL) on each code point.
 * Returns -1 on invalid UTF-8 or when reject returns true. */
static long utf8_count(const char *s, size_t len, bool (*reject)(uint32_t))
{
    if (s == NULL)
        return len == 0 ? 0 : -1;
    const unsigned char *p = (const unsigned char *)s;
    long chars = 0;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (n == 0 || (reject != NULL && reject(cp)))
            return -1;
        i += n;
        chars++;
    }
    return chars;
}

long chat_utf8_chars(const char *s, size_t len)
{
    return utf8_count(s, len, NULL);
}

/* Unicode general category Cc: C0 controls, DEL and the C1 controls U+0080..U+009F. */
static bool is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

bool chat_json_has_escaped_nul(const char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && i + 6 <= len && memcmp(s + i + 2, "0000", 4) == 0)
            return true;
        i++; /* skip the escaped character, which may itself be a backslash */
    }
    return false;
}

long chat_utf8_chars_printable(const char *s, size_t len)
{
    return utf8_count(s, len, is_control);
}

bool chat_name_user_valid(const char *s)
{
    if (s == NULL)
        return false;
    /* A character is at most 4 bytes: anything longer cannot be 64 characters. */
    size_t len = strnlen(s, CHAT_USER_MAX * 4 + 1);
    long chars = chat_utf8_chars_printable(s, len);
    return chars >= 1 && chars <= CHAT_USER_MAX;
}

bool chat_name_message_id_valid(const char *s)
{
    if (s == NULL)
        return false;
    size_t i = 0;
    for (; i <= CHAT_MESSAGE_ID_LEN && s[i] != '\0'; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return i == CHAT_MESSAGE_ID_LEN;
}

bool chat_name_emoji_valid(const char *s)
{
    if (s == NULL)
        return false;
    /* A character is at most 4 bytes: anything longer cannot be 32 characters. */
    long chars = chat_utf8_chars(s, strnlen(s, CHAT_EMOJI_MAX_CHARS * 4 + 1));
    return chars >= 1 && chars <= CHAT_EMOJI_MAX_CHARS;
}

bool chat_room_is_dm(const char *room)
{
    return room != NULL && strncmp(room, DM_PREFIX, DM_PREFIX_LEN) == 0;
}

/* Splits a valid dm room into its members: a = room+3 (alen bytes), b (blen bytes).
 * Returns false if room is not a valid dm room. A dm room is also a room, so its whole
 * length stays within CHAT_ROOM_MAX. */
bool chat_name_endpoint_valid(const char *s)
{
    if (s == NULL)
        return false;
    long chars = chat_utf8_chars(s, strnlen(s, CHAT_ENDPOINT_ID_MAX_CHARS * 4 + 1));
    return chars >= 1 && chars <= CHAT_ENDPOINT_ID_MAX_CHARS;
}

static bool dm_split(const char *room, const char **a, size_t *alen, const char **b, size_t *blen)
{
    if (!chat_room_is_dm(room) || !chat_name_room_valid(room))
        return false;
    const char *first = room + DM_PREFIX_LEN;
    const char *colon = strchr(first, ':');
    if (colon == NULL)
        return false;
    const char *second = colon + 1;
    size_t first_len = (size_t)(colon - first);
    size_t second_len = strlen(second);
    if (!span_valid(first, first_len, CHAT_USER_MAX, is_tenant_char) ||
        !span_valid(second, second_len, CHAT_USER_MAX, is_tenant_char))
        return false;
    /* strcmp order of the two members: compare the common prefix, then the shorter wins. */
    size_t common = first_len < second_len ? first_len : second_len;
    int order = memcmp(first, second, common);
    if (order > 0 || (order == 0 && first_len >= second_len))
        return false;
    *a = first, *alen = first_len, *b = second, *blen = second_len;
    return true;
}

bool chat_room_dm_valid(const char *room)
{
    const char *a, *b;
    size_t alen, blen;
    return dm_split(room, &a, &alen, &b, &blen);
}

bool chat_room_dm_has(const char *room, const char *user)
{
    const char *a, *b;
    size_t alen, blen;
    if (user == NULL || !dm_split(room, &a, &alen, &b, &blen))
        return false;
    size_t ulen = strlen(user);
    return (ulen == alen && memcmp(user, a, alen) == 0) ||
           (ulen == blen && memcmp(user, b, blen) == 0);
}
