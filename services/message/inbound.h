/* What the message service makes of one chat.inbound record: a valid send, a send (or other
 * request) to refuse with a reject to its origin, or an invalid record to log and skip. The
 * codec checks the schema; this adds the service's own rules (configured text limit, direct
 * rooms) and, for a send the codec refuses, recovers its origin so the client still hears why. */
#ifndef CHAT_MESSAGE_INBOUND_H
#define CHAT_MESSAGE_INBOUND_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/events.h"

typedef enum message_inbound_kind {
    MESSAGE_INBOUND_INVALID, /* reason says why; nobody can be answered */
    MESSAGE_INBOUND_REJECT,  /* code and reason go back to ev's origin */
    MESSAGE_INBOUND_SEND,    /* ev is a valid send */
    MESSAGE_INBOUND_UPDATE,  /* ev is a valid edit, delete or react (services/message/updates.h
                                decides it against the stored message) */
    MESSAGE_INBOUND_READ,    /* ev is a valid read mark (services/message/reads.h) */
} message_inbound_kind_t;

typedef enum message_reject_code {
    MESSAGE_REJECT_BAD_REQUEST,
    MESSAGE_REJECT_TOO_LARGE,
    MESSAGE_REJECT_FORBIDDEN,
    MESSAGE_REJECT_NOT_FOUND,
    MESSAGE_REJECT__COUNT
} message_reject_code_t;

typedef struct message_inbound {
    message_inbound_kind_t kind;
    /* SEND and REJECT: tenant, room, user, cid (or rid), origin (and for SEND the rest). */
    chat_event_t ev;
    message_reject_code_t code; /* REJECT */
    char reason[160];           /* REJECT: the message for the client; INVALID: for the log */
    cJSON *salvaged;            /* parse tree that ev points into when the codec refused it */
} message_inbound_t;

/* Classifies one record value (value may be NULL). max_text_chars is the configured limit.
 * Always fills *in; free with message_inbound_clear. */
void message_inbound_parse(const void *value, size_t len, long max_text_chars,
                           message_inbound_t *in);

/* Frees what parse kept and zeroes in. Accepts a zeroed struct. */
void message_inbound_clear(message_inbound_t *in);

/* "bad_request", "too_large", "forbidden", "not_found". */
const char *message_reject_code_name(message_reject_code_t code);

#endif
