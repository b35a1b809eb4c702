/* The naming rules of the client protocol (proto/, README.md) in one place: tenant ids,
 * room names, user ids, client and message ids, direct-message rooms, and the limits
 * counted in characters (text, emoji, display names). */
#ifndef CHAT_COMMON_NAMES_H
#define CHAT_COMMON_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHAT_ROOM_MAX 128
#define CHAT_USER_MAX 64
#define CHAT_CID_MAX 64
#define CHAT_TENANT_MAX 64
/* Longest message text in Unicode characters: what the event codec accepts, so also the
 * most CHAT_MAX_TEXT_CHARS may allow. */
#define CHAT_TEXT_MAX_CHARS 4000
#define CHAT_EMOJI_MAX_CHARS 32
#define CHAT_DISPLAY_NAME_MAX_CHARS 128 /* the JWT name claim, msg.name */
#define CHAT_MESSAGE_ID_LEN 24          /* an ObjectId as lowercase hex */
#define CHAT_ENDPOINT_ID_MAX_CHARS 64   /* gateway and connection ids in events and deliveries */
/* The largest integer a JSON number holds exactly, 2^53 - 1: readers (cJSON, JavaScript)
 * keep numbers as doubles, so larger ones are refused rather than silently rounded. */
#define CHAT_JSON_INT_MAX INT64_C(9007199254740991)

/* Room: [A-Za-z0-9._:-]{1,128}. */
bool chat_name_room_valid(const char *s);
/* Tenant id: [A-Za-z0-9._-]{1,64}. */
bool chat_name_tenant_valid(const char *s);
/* User id (JWT sub): 1-64 characters of valid UTF-8, no control characters. */
bool chat_name_user_valid(const char *s);
/* Client id / request id: 1-64 printable ASCII characters. */
bool chat_name_cid_valid(const char *s);
/* Message id: 24 lowercase hex digits. */
bool chat_name_message_id_valid(const char *s);
/* Reaction: 1-32 characters of valid UTF-8 (one emoji, possibly several code points). */
bool chat_name_emoji_valid(const char *s);
/* Id of a gateway or of a connection (event origins, deliveries to connections): 1-64
 * characters of valid UTF-8. */
bool chat_name_endpoint_valid(const char *s);

/* True if room starts with "dm:". */
bool chat_room_is_dm(const char *room);
/* True if room is "dm:A:B" with A and B matching [A-Za-z0-9._-]{1,64} (the room charset
 * without ':') in strictly ascending byte order. */
bool chat_room_dm_valid(const char *room);
/* True if user is one of the two members of the dm room. */
bool chat_room_dm_has(const char *room, const char *user);

/* Number of Unicode characters in the UTF-8 string s of len bytes, or -1 if it is not valid
 * UTF-8 (overlong forms, surrogates and code points past U+10FFFF are invalid). */
long chat_utf8_chars(const char *s, size_t len);

/* chat_utf8_chars, but -1 also if s contains a control character (Unicode category Cc: C0,
 * DEL and C1), which user ids and display names must not. */
long chat_utf8_chars_printable(const char *s, size_t len);

/* True if the JSON text s[0..len) contains the escape \u0000, which cJSON would take as the
 * end of the string (a text or claim would read shorter than it was sent). Exact for valid
 * JSON, where each backslash starts an escape: "\\u0000" (an escaped backslash, then
 * "u0000") is not one. */
bool chat_json_has_escaped_nul(const char *s, size_t len);

#endif
