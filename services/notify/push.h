/* What a Web Push says and how its answer is judged (docs/notify.md, "Sending"): the JSON the
 * service worker receives (a message notification, or the close of a room's one) and the
 * outcome of a push service's status. Pure; the sender encrypts and posts (sender.c). */
#ifndef CHAT_NOTIFY_PUSH_H
#define CHAT_NOTIFY_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NS_PUSH_TEXT_MAX_CHARS 1000 /* of the message's text in a notification */
#define NS_PUSH_PAYLOAD_MAX 3000    /* bytes of JSON before encryption */

/* A message notification. name may be NULL. */
typedef struct ns_push_msg {
    const char *tenant, *room, *id, *from, *name, *text;
    int64_t seq, count, ts;
} ns_push_msg_t;

/* The bytes of the longest prefix of s that has at most max_chars UTF-8 characters and ends on
 * a character boundary (a malformed byte counts as one character). */
size_t ns_utf8_prefix(const char *s, size_t max_chars);

/* {"type":"message","tenant","room","seq","id","from","name"?,"text","count","ts"}, compact,
 * malloc'd (*len bytes). The text is cut to NS_PUSH_TEXT_MAX_CHARS characters, and shorter
 * still if the whole would exceed NS_PUSH_PAYLOAD_MAX bytes. NULL if out of memory. */
char *ns_push_payload(const ns_push_msg_t *m, size_t *len);

/* {"type":"close","tenant","room","seq"}, malloc'd; NULL if out of memory. */
char *ns_push_close_payload(const char *tenant, const char *room, int64_t seq, size_t *len);

typedef enum ns_push_outcome {
    NS_PUSH_SENT,   /* 200, 201, 202 */
    NS_PUSH_GONE,   /* 404, 410: the subscription is dropped */
    NS_PUSH_RETRY,  /* 429, 5xx, no answer */
    NS_PUSH_FAILED, /* any other status, or a refused address: dead letter at once */
} ns_push_outcome_t;

/* The outcome of one push: status is the HTTP status, 0 if the transfer failed without one
 * (refused: it failed because the address was refused). */
ns_push_outcome_t ns_push_judge(long status, bool refused);

/* "sent", "gone", "retry", "failed". */
const char *ns_push_outcome_name(ns_push_outcome_t o);

#endif
