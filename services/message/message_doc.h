/* A document of the `messages` collection as plain C, the unit the message service plans,
 * stores and republishes, and an owning list of them (what a MongoDB query returns).
 * Keeping MongoDB's BSON out of this type lets the pipeline run against an in-memory fake. */
#ifndef CHAT_MESSAGE_MESSAGE_DOC_H
#define CHAT_MESSAGE_MESSAGE_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/names.h"

#define MESSAGE_ID_LEN CHAT_MESSAGE_ID_LEN
#define MESSAGE_SRC_MAX 40 /* "<partition>:<offset>", "mod:<partition>:<offset>" */

/* {_id, tenant, room, seq, from, name?, text?, notice?, target?, ts, cid, src, edited?,
 * deleted?, removed?, reason?, reactions?, useq?, uop?}. Strings (and reactions) are borrowed
 * unless the document lives in a message_doc_list_t, which owns copies. name, notice, target and
 * src may be NULL (notice and target: a system notice, docs/server-api.md); text is NULL once the
 * message is deleted or removed. The last seven are the state that edits, deletes, reactions
 * and moderation change (services/message/updates.h); a new message has none of them. */
typedef struct message_doc {
    char id[MESSAGE_ID_LEN + 1];
    const char *tenant;
    const char *room;
    const char *from;
    const char *name;
    const char *text;
    const char *notice; /* from CHAT_SYSTEM_USER only: room_created, member_added, ... */
    const char *target; /* the member of a member notice */
    const char *cid;
    const char *src;
    int64_t seq;
    int64_t ts;         /* ms since the epoch: when the seq was assigned */
    int64_t edited;     /* ts of the last edit; 0: never edited */
    bool deleted;       /* text (and reactions) removed */
    bool removed;       /* removed by moderation: no text, no reactions */
    const char *reason; /* removed: why (the verdict's reason) */
    cJSON *reactions;   /* {emoji: [users]}; NULL: none */
    int64_t useq;       /* useq of the last change; 0: never changed */
    const char *uop; /* op of the last change ("edit", "delete", "react", "moderate"); NULL: none */
} message_doc_t;

typedef struct message_doc_list {
    message_doc_t *docs;
    size_t n, cap;
} message_doc_list_t;

#define MESSAGE_DOC_LIST_INIT                                                                      \
    {                                                                                              \
        .docs = NULL, .n = 0, .cap = 0                                                             \
    }

/* Appends a copy of doc whose strings the list owns. CHAT_ERR_NOMEM on allocation failure
 * (the list is unchanged). */
chat_err_t message_doc_list_add(message_doc_list_t *l, const message_doc_t *doc);

/* Frees the copies and empties the list; it stays usable. */
void message_doc_list_clear(message_doc_list_t *l);

/* Writes "<partition>:<offset>" (the src of a chat.inbound record) into buf. */
void message_src_format(char *buf, size_t len, int32_t partition, int64_t offset);

#endif
