/* The client side of protocol v1 as text: builders for the frames a client sends and a
 * renderer that turns a server frame into one readable line (chat-cli's output). */
#ifndef CHAT_TOOLS_CLIENT_CLIENT_FRAMES_H
#define CHAT_TOOLS_CLIENT_CLIENT_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each builder returns the frame as compact JSON, malloc'd (the caller frees it), or NULL
 * if memory ran out. Strings are copied as given, unchecked: tests send bad values on
 * purpose. An optional rid (NULL: none) is echoed by the server in its answer. */
char *chat_client_frame_auth(const char *token);
/* since < 0 leaves since out. */
char *chat_client_frame_join(const char *room, int64_t since, const char *rid);
char *chat_client_frame_leave(const char *room, const char *rid);
char *chat_client_frame_send(const char *room, const char *cid, const char *text);
/* before <= 0 and limit <= 0 are left out (the server's defaults: newest, 50). */
char *chat_client_frame_history(const char *room, int64_t before, int64_t limit, const char *rid);
char *chat_client_frame_edit(const char *room, const char *id, const char *text, const char *rid);
char *chat_client_frame_delete(const char *room, const char *id, const char *rid);
char *chat_client_frame_react(const char *room, const char *id, const char *emoji, bool on,
                              const char *rid);
char *chat_client_frame_ping(const char *rid);
/* The user is typing in room (the others there get `typing`). */
char *chat_client_frame_typing(const char *room, const char *rid);
/* rid NULL is left out (a read is answered only when it is refused). */
char *chat_client_frame_read(const char *room, int64_t seq, const char *rid);
/* limit <= 0 and cursor NULL are left out (the server's defaults: 50, the first page). */
char *chat_client_frame_rooms(int64_t limit, const char *cursor, const char *rid);
/* Web Push subscription of the user (PushSubscription's endpoint and keys), its removal, and
 * the user's notification preference for room (NULL: every room): mode all, mentions, none
 * or default. Answered `ok` {rid}. */
char *chat_client_frame_push_subscribe(const char *endpoint, const char *p256dh, const char *auth,
                                       const char *rid);
char *chat_client_frame_push_unsubscribe(const char *endpoint, const char *rid);
char *chat_client_frame_push_prefs(const char *room, const char *mode, const char *rid);
/* A new token for the connection (same tenant and user), before the current one expires.
 * Answered `ok` {rid}. */
char *chat_client_frame_refresh(const char *token, const char *rid);

/* Renders the server frame json (len bytes, need not be NUL-terminated) for people:
 *   msg      "[room #seq] from: text (edited) [emoji users] (id X)", or for a system notice
 *            "[room #seq] * bob was added to room (id X)" (removed, renamed, deleted alike)
 *   left     "left room", with " (you were removed)" or " (the room was deleted)"
 *   update   "[room #seq] id op by user: text (edited) [emoji users] (useq N)"
 *   ack      "ack cid -> #seq (id X)", or "ack rid: op #seq (useq N)" for an update
 *   error    "error code: message (cid X)"
 *   ok       "ok (rid X)"
 * and similar lines for the other types; a history frame gives a header line followed by
 * one msg line per message. Control characters in user text are escaped so that a frame
 * never spans more lines than that. Text that is not a JSON object with a string type, and
 * unknown types, are returned as they are. Returns a malloc'd string without a trailing
 * newline (the caller frees it), or NULL if memory ran out. */
char *chat_client_render(const char *json, size_t len);

#endif
