/* Read marks of a batch (see reads.h): the seq check at each read's place in its room's order,
 * and the collapse of a user's reads of one room to the highest, which is all that is stored
 * and published (the lower ones would be overtaken by it at once). */
#include "services/message/reads.h"

#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/strmap.h"

chat_err_t message_reads_decide(const message_read_in_t *reads, const int64_t *latest, size_t n,
                                message_read_fate_t *fate, message_read_mark_t *marks,
                                size_t *nmarks, size_t *mark_of)
{
    *nmarks = 0;
    chat_strmap_t *index = chat_strmap_new(); /* "tenant/room\nuser" -> 1 + read index */
    if (index == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = CHAT_OK;
    for (size_t i = 0; i < n && err == CHAT_OK; i++) {
        const message_read_in_t *r = &reads[i];
        int64_t at = latest[i] - r->stored_after;
        if (r->seq > at) {
            fate[i] = MESSAGE_READ_BEYOND;
            continue;
        }
        char key[CHAT_ROOM_KEY_MAX + CHAT_USER_MAX + 2];
        int len = chat_room_key(r->tenant, r->room, key, sizeof key);
        if (len < 0 || strlen(r->user) + 2 > sizeof key - (size_t)len) {
            err = CHAT_ERR_INVALID;
            break;
        }
        key[len] = '\n';
        strcpy(key + len + 1, r->user);
        uintptr_t best = (uintptr_t)chat_strmap_get(index, key);
        if (best != 0 && reads[best - 1].seq >= r->seq) {
            fate[i] = MESSAGE_READ_SUPERSEDED;
            continue;
        }
        if (best != 0)
            fate[best - 1] = MESSAGE_READ_SUPERSEDED;
        fate[i] = MESSAGE_READ_MARK;
        if (!chat_strmap_put(index, key, (void *)(uintptr_t)(i + 1)))
            err = CHAT_ERR_NOMEM;
    }
    for (size_t i = 0; i < n && err == CHAT_OK; i++) {
        if (fate[i] != MESSAGE_READ_MARK)
            continue;
        mark_of[i] = *nmarks;
        marks[(*nmarks)++] = (message_read_mark_t){.tenant = reads[i].tenant,
                                                   .room = reads[i].room,
                                                   .user = reads[i].user,
                                                   .seq = reads[i].seq,
                                                   .ts = reads[i].ts};
    }
    chat_strmap_free(index);
    return err;
}
