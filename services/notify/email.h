/* The email digest as a message (docs/notify.md, "Sending"): RFC 5322 headers and a MIME
 * multipart/alternative body, plain text and HTML (every user text HTML-escaped), UTF-8 in
 * base64. Pure; the sender reads what goes in and sends it over SMTP (sender.c). */
#ifndef CHAT_NOTIFY_EMAIL_H
#define CHAT_NOTIFY_EMAIL_H

#include <stddef.h>
#include <stdint.h>

#define NS_EMAIL_ROOMS_MAX 10
#define NS_EMAIL_PER_ROOM_MAX 20

/* One message of the digest; name may be NULL. */
typedef struct ns_email_msg {
    const char *from, *name, *text;
    int64_t seq, ts;
} ns_email_msg_t;

/* One room's messages, oldest first. */
typedef struct ns_email_room {
    const char *room;
    const ns_email_msg_t *msgs;
    size_t n;
} ns_email_room_t;

typedef struct ns_email {
    const char *from; /* the tenant's email.from: "a@b" or "Name <a@b>" */
    const char *to;   /* the user's address */
    const char *tenant;
    const ns_email_room_t *rooms;
    size_t nrooms;
    int64_t now_ms;         /* the Date header */
    const char *boundary;   /* of the MIME parts: 1-60 characters of [A-Za-z0-9] */
    const char *message_id; /* "<...@...>" */
} ns_email_t;

/* The messages of the digest (the "N" of its subject). */
size_t ns_email_count(const ns_email_t *e);

/* The whole message, CRLF line ends, malloc'd (*len bytes). NULL if out of memory, or if
 * from, to or boundary could break the headers (CR, LF, or an empty value). */
char *ns_email_render(const ns_email_t *e, size_t *len);

/* The address of a From or To value ("Name <a@b>" -> "a@b", "a@b" -> "a@b"), malloc'd; NULL
 * if there is none or out of memory. */
char *ns_email_address(const char *value);

/* s with &, <, >, " and ' escaped for HTML, malloc'd; NULL if out of memory. */
char *ns_html_escape(const char *s);

#endif
