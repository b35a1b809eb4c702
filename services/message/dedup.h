/* Idempotency of sends: decides, for the sends of one batch and the stored messages that
 * MongoDB returned for them, which sends are new messages and which repeat one that exists.
 * Pure logic, no I/O: the pipeline does the query and acts on the decisions. */
#ifndef CHAT_MESSAGE_DEDUP_H
#define CHAT_MESSAGE_DEDUP_H

#include <stddef.h>

#include "common/err.h"
#include "services/message/message_doc.h"

typedef enum message_dedup_kind {
    MESSAGE_DEDUP_NEW,       /* no message has this (tenant, room, from, cid): store it */
    MESSAGE_DEDUP_RESEND,    /* another record stored it: ack the original, store nothing */
    MESSAGE_DEDUP_REPUBLISH, /* this very record stored it before a crash: publish it again */
    MESSAGE_DEDUP_REPEAT,    /* an earlier new send of this batch has it: ack that one */
} message_dedup_kind_t;

/* One send of the batch, in offset order. src is the record's "<partition>:<offset>". */
typedef struct message_dedup_send {
    const char *tenant;
    const char *room;
    const char *from;
    const char *cid;
    const char *src;
} message_dedup_send_t;

typedef struct message_dedup_decision {
    message_dedup_kind_t kind;
    /* RESEND, REPUBLISH: index in existing; REPEAT: index of the earlier send; NEW: 0 */
    size_t ref;
} message_dedup_decision_t;

/* Fills out[i] for each of the n sends. existing may hold documents that match no send (the
 * query may return a superset); they are ignored. Returns CHAT_ERR_NOMEM or CHAT_OK. */
chat_err_t message_dedup_decide(const message_dedup_send_t *sends, size_t n,
                                const message_doc_t *existing, size_t nexisting,
                                message_dedup_decision_t *out);

/* Name of a kind for logs and tests: "new", "resend", "republish", "repeat". */
const char *message_dedup_kind_name(message_dedup_kind_t kind);

#endif
