/* MongoDB side of read marks (see reads_store.h). A mark moves forward with one update per
 * mark: filter {tenant, room, user, seq <= new}, $set seq and ts, upsert. A stored mark at or
 * below the new one is matched and set; none stored is inserted; a stored mark above it is
 * not matched, so the upsert tries an insert that the unique index refuses (duplicate key):
 * that read is behind, nothing changes. No read of `reads` is needed to decide. */
#include "services/message/reads_store.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"

struct message_reads_store {
    chat_store_t *store;
    char last_error[sizeof(((bson_error_t *)0)->message) + 96];
};

static const chat_store_index_t read_indexes[] = {
    {MESSAGE_READS_COLLECTION, "room_user", true, {"tenant", "room", "user", NULL}},
    {MESSAGE_READS_COLLECTION, "user", false, {"tenant", "user", NULL}},
};

chat_err_t message_reads_store_open(chat_store_t *store, message_reads_store_t **out)
{
    *out = NULL;
    chat_err_t err = chat_store_ensure_indexes(store, read_indexes,
                                               sizeof read_indexes / sizeof read_indexes[0]);
    if (err != CHAT_OK)
        return err;
    message_reads_store_t *rs = calloc(1, sizeof *rs);
    if (rs == NULL)
        return CHAT_ERR_NOMEM;
    rs->store = store;
    *out = rs;
    return CHAT_OK;
}

void message_reads_store_close(message_reads_store_t *rs)
{
    free(rs);
}

/* One mark: CHAT_OK with *moved, or the mapped driver error (logged). */
static chat_err_t mark_store(message_reads_store_t *rs, mongoc_collection_t *col,
                             const message_read_mark_t *m, bool *moved)
{
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, lte;
    BSON_APPEND_UTF8(&filter, "tenant", m->tenant);
    BSON_APPEND_UTF8(&filter, "room", m->room);
    BSON_APPEND_UTF8(&filter, "user", m->user);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &lte);
    BSON_APPEND_INT64(&lte, "$lte", m->seq);
    bson_append_document_end(&filter, &lte);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_INT64(&set, "seq", m->seq);
    BSON_APPEND_INT64(&set, "ts", m->ts);
    bson_append_document_end(&update, &set);
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    bson_error_t error;
    bool ok = mongoc_collection_update_one(col, &filter, &update, opts, NULL, &error);
    chat_err_t err = ok ? CHAT_OK : chat_store_err(&error);
    *moved = ok;
    if (err == CHAT_ERR_DUPLICATE) {
        err = CHAT_OK; /* the stored mark is ahead */
    } else if (err != CHAT_OK) {
        snprintf(rs->last_error, sizeof rs->last_error, "update reads: %s (code %u)", error.message,
                 error.code);
        chat_log_warn("mongo operation failed", CHAT_F_STR("op", "update reads"),
                      CHAT_F_STR("tenant", m->tenant), CHAT_F_STR("room", m->room),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    }
    bson_destroy(opts);
    bson_destroy(&filter);
    bson_destroy(&update);
    return err;
}

static chat_err_t reads_store(void *ctx, const message_read_mark_t *marks, size_t n, bool *moved)
{
    message_reads_store_t *rs = ctx;
    rs->last_error[0] = '\0';
    mongoc_client_t *client = chat_store_acquire(rs->store);
    mongoc_collection_t *col = chat_store_collection(rs->store, client, MESSAGE_READS_COLLECTION);
    chat_err_t err = CHAT_OK;
    for (size_t i = 0; i < n && err == CHAT_OK; i++)
        err = mark_store(rs, col, &marks[i], &moved[i]);
    mongoc_collection_destroy(col);
    chat_store_release(rs->store, client);
    return err;
}

static const char *reads_last_error(void *ctx)
{
    message_reads_store_t *rs = ctx;
    return rs->last_error[0] != '\0' ? rs->last_error : NULL;
}

void message_reads_store_port(message_reads_store_t *rs, message_reads_port_t *port)
{
    *port = (message_reads_port_t){.ctx = rs, .store = reads_store, .last_error = reads_last_error};
}
