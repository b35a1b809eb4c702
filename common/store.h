/* MongoDB access for every service: one pooled mongo-c-driver client per process, the
 * database named by the URI's path (default "chat"), and the few operations that need care
 * (batch insert with per-document outcome, ordered or not, index creation, ping).
 * A client taken from the pool belongs to one thread until it is given back. */
#ifndef CHAT_COMMON_STORE_H
#define CHAT_COMMON_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include <mongoc/mongoc.h>

#include "common/err.h"
#include "common/metrics.h"

typedef struct chat_store chat_store_t;

/* Times every MongoDB command of the stores created after this call, through the driver's
 * command monitoring: chat_mongo_op_seconds{op} and chat_mongo_errors_total{op}, op one of
 * chat_store_metric_ops (a command outside the set is "other"), every series registered now
 * with 0. Process-wide, as the registry is: call it once at start-up, before chat_store_new,
 * with the registry /metrics renders; m must outlive those stores. NULL stops the timing of
 * stores created later. CHAT_ERR_NOMEM if a series could not be registered. */
chat_err_t chat_store_metrics_attach(chat_metrics_t *m);

/* The op label values, in order; the last is "other". */
extern const char *const chat_store_metric_ops[];
extern const size_t chat_store_metric_nops;

/* The op label of a command name (case-sensitive, as the driver names it): its index in
 * chat_store_metric_ops. */
size_t chat_store_metric_op(const char *command);

/* Parses uri (mongodb://host:port/db?opts) and creates the pool; does not connect yet.
 * appname shows in server logs. Returns CHAT_ERR_CONFIG for an unparsable URI. */
chat_err_t chat_store_new(const char *uri, const char *appname, chat_store_t **out);

/* Destroys the pool (every client must have been released). Accepts NULL. */
void chat_store_destroy(chat_store_t *s);

const char *chat_store_db_name(const chat_store_t *s);

/* Takes a client from the pool (blocks while all are in use) / gives it back. */
mongoc_client_t *chat_store_acquire(chat_store_t *s);
void chat_store_release(chat_store_t *s, mongoc_client_t *client);

/* Returns the named collection of the store's database on client; the caller destroys it
 * with mongoc_collection_destroy before releasing the client. */
mongoc_collection_t *chat_store_collection(chat_store_t *s, mongoc_client_t *client,
                                           const char *name);

/* Runs {ping:1}, retrying until timeout_ms. CHAT_ERR_TIMEOUT if the server never answered. */
chat_err_t chat_store_ping(chat_store_t *s, int timeout_ms);

/* Creates index name on collection over keys (e.g. {tenant:1, room:1, seq:1}) if it does
 * not exist yet. */
chat_err_t chat_store_ensure_index(chat_store_t *s, const char *collection, const bson_t *keys,
                                   const char *name, bool unique);

/* An index as a service declares it: ascending over fields (NULL-terminated). */
typedef struct chat_store_index {
    const char *collection;
    const char *name;
    bool unique;
    const char *fields[6];
} chat_store_index_t;

/* chat_store_ensure_index for each of the n indexes, in order; stops at the first failure. */
chat_err_t chat_store_ensure_indexes(chat_store_t *s, const chat_store_index_t *ix, size_t n);

/* Inserts docs with insert_many. results (n entries, caller-provided) gets each document's
 * outcome: CHAT_OK, CHAT_ERR_DUPLICATE (unique key violation) or CHAT_ERR_MONGO.
 * Unordered: a failing document does not stop the others.
 * Ordered: documents are inserted in array order and the first failure stops the insert: the
 * documents before it are stored, it gets DUPLICATE or MONGO, and every document after it is
 * not attempted and gets CHAT_ERR_STOPPED. So what an ordered insert stores is always a prefix
 * of docs, even if the server or the process dies in the middle. (Sent in commands of at most
 * 100 documents, each only once the one before stored all of its own: FerretDB goes on past
 * an ordered failure into its next internal batch of 100.)
 * Returns CHAT_OK if all were inserted, CHAT_ERR_DUPLICATE if the only failure(s) were
 * duplicates, else CHAT_ERR_MONGO (logged with the server's code and message). When the reply
 * cannot account for every document (no reply at all, a network error after some batches, a
 * write concern failure), every document it does not name as failed is CHAT_ERR_MONGO: it
 * may or may not have been stored. */
chat_err_t chat_store_insert_many(chat_store_t *s, const char *collection,
                                  const bson_t *const *docs, size_t n, bool ordered,
                                  chat_err_t *results);

/* The first document of collection that filter matches: *doc (a copy; the caller
 * bson_destroys it), CHAT_ERR_NOT_FOUND when none does, or the MongoDB failure's code (logged
 * with the collection). */
chat_err_t chat_store_find_one(chat_store_t *s, const char *collection, const bson_t *filter,
                               bson_t **doc);

/* Maps a driver error: code 11000/11001 -> CHAT_ERR_DUPLICATE, server selection and socket
 * failures -> CHAT_ERR_TIMEOUT / CHAT_ERR_IO, anything else -> CHAT_ERR_MONGO. */
chat_err_t chat_store_err(const bson_error_t *error);

#endif
