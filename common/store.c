/* MongoDB access shared by the services: the process-wide mongoc set-up, one client pool
 * per store, and the operations whose replies need interpreting (per-document outcome of a
 * batch insert, ordered or not, idempotent index creation, a ping that waits for the server).
 * The local server is FerretDB (SQLite backend); where it deviates from MongoDB the code
 * says so. */
#include "common/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"

#define STORE_DEFAULT_DB "chat"
#define STORE_DEFAULT_POOL_MAX 16
/* A single ping attempt gives up after this long, so the retry loop keeps control of the
 * caller's overall timeout. */
#define STORE_PING_ATTEMPT_MS 1000
#define STORE_PING_PAUSE_MS 100

#define MONGO_CODE_DUPLICATE_KEY 11000
#define MONGO_CODE_DUPLICATE_KEY_LEGACY 11001
/* The most documents an ordered insert sends in one command. FerretDB (v1.24) inserts a
 * command's documents in batches of its --batch-size (default 100) and, ordered, stops at a
 * failure only within the failing batch: it goes on with the next batches, storing documents
 * after the failed one. Commands no larger than its batch keep an ordered insert's stored
 * documents a prefix, as MongoDB does for any size. */
#define STORE_ORDERED_CHUNK 100

struct chat_store {
    mongoc_uri_t *uri; /* kept for the short-lived clients of chat_store_ping */
    mongoc_client_pool_t *pool;
    char *db_name;
};

static pthread_once_t store_once = PTHREAD_ONCE_INIT;

/* ---- metrics (driver command monitoring) ---- */

const char *const chat_store_metric_ops[] = {
    "insert", "find",    "update",        "delete", "findAndModify", "aggregate",
    "count",  "getMore", "createIndexes", "ping",   "other",
};
const size_t chat_store_metric_nops =
    sizeof chat_store_metric_ops / sizeof chat_store_metric_ops[0];
#define STORE_OPS (sizeof chat_store_metric_ops / sizeof chat_store_metric_ops[0])

typedef struct store_metrics {
    chat_histogram_t *seconds[STORE_OPS];
    chat_counter_t *errors[STORE_OPS];
} store_metrics_t;

/* The series the monitoring callbacks update; NULL while detached. Two slots so that a new
 * attach never rewrites the series a callback may be reading (attach happens at start-up,
 * and in tests). */
static store_metrics_t store_metrics_slots[2];
static _Atomic(store_metrics_t *) store_metrics_current;
static atomic_uint store_metrics_next;

size_t chat_store_metric_op(const char *command)
{
    for (size_t i = 0; command != NULL && i + 1 < STORE_OPS; i++) {
        if (strcmp(command, chat_store_metric_ops[i]) == 0)
            return i;
    }
    return STORE_OPS - 1;
}

chat_err_t chat_store_metrics_attach(chat_metrics_t *m)
{
    if (m == NULL) {
        atomic_store(&store_metrics_current, NULL);
        return CHAT_OK;
    }
    store_metrics_t *sm = &store_metrics_slots[atomic_fetch_add(&store_metrics_next, 1) % 2];
    chat_err_t err = CHAT_OK;
    for (size_t i = 0; i < STORE_OPS; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "op=\"%s\"", chat_store_metric_ops[i]);
        sm->seconds[i] = chat_metrics_histogram(
            m, "chat_mongo_op_seconds", "MongoDB command latency, by command (driver monitoring).",
            labels, chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
        sm->errors[i] = chat_metrics_counter(m, "chat_mongo_errors_total",
                                             "MongoDB commands that failed, by command.", labels);
        if (sm->seconds[i] == NULL || sm->errors[i] == NULL)
            err = CHAT_ERR_NOMEM;
    }
    atomic_store(&store_metrics_current, sm);
    return err;
}

/* A command answered (ok:1; a write error such as a duplicate key is still a success of the
 * command): its duration, which the driver measured, in microseconds. */
static void store_on_command_succeeded(const mongoc_apm_command_succeeded_t *event)
{
    store_metrics_t *sm = atomic_load_explicit(&store_metrics_current, memory_order_acquire);
    if (sm == NULL)
        return;
    size_t op = chat_store_metric_op(mongoc_apm_command_succeeded_get_command_name(event));
    chat_histogram_observe(sm->seconds[op],
                           (double)mongoc_apm_command_succeeded_get_duration(event) / 1e6);
}

/* A command failed: an error reply (ok:0) or a network error once it was sent. Timed too, so
 * that slow failures show in the latency. */
static void store_on_command_failed(const mongoc_apm_command_failed_t *event)
{
    store_metrics_t *sm = atomic_load_explicit(&store_metrics_current, memory_order_acquire);
    if (sm == NULL)
        return;
    size_t op = chat_store_metric_op(mongoc_apm_command_failed_get_command_name(event));
    chat_histogram_observe(sm->seconds[op],
                           (double)mongoc_apm_command_failed_get_duration(event) / 1e6);
    chat_counter_inc(sm->errors[op]);
}

/* Installs the monitoring callbacks on a new pool (before any client is popped, which the
 * driver requires) when metrics are attached. */
static void store_monitor_pool(mongoc_client_pool_t *pool)
{
    if (atomic_load(&store_metrics_current) == NULL)
        return;
    mongoc_apm_callbacks_t *cbs = mongoc_apm_callbacks_new();
    if (cbs == NULL)
        return;
    mongoc_apm_set_command_succeeded_cb(cbs, store_on_command_succeeded);
    mongoc_apm_set_command_failed_cb(cbs, store_on_command_failed);
    if (!mongoc_client_pool_set_apm_callbacks(pool, cbs, NULL))
        chat_log_warn("mongo command monitoring not installed: metrics will miss this pool");
    mongoc_apm_callbacks_destroy(cbs);
}

/* Routes libmongoc's own messages (topology changes, warnings) into our JSON lines. */
static void store_log_handler(mongoc_log_level_t level, const char *domain, const char *message,
                              void *user_data)
{
    (void)user_data;
    chat_log_level_t ours;
    switch (level) {
    case MONGOC_LOG_LEVEL_ERROR:
    case MONGOC_LOG_LEVEL_CRITICAL:
        ours = CHAT_LOG_ERROR;
        break;
    case MONGOC_LOG_LEVEL_WARNING:
        ours = CHAT_LOG_WARN;
        break;
    case MONGOC_LOG_LEVEL_MESSAGE:
    case MONGOC_LOG_LEVEL_INFO:
        ours = CHAT_LOG_INFO;
        break;
    default:
        ours = CHAT_LOG_DEBUG;
        break;
    }
    /* FerretDB 1.24 advertises sessions but has no endSessions command, so the driver warns
     * each time a client that used a session is destroyed. Nothing is wrong: keep it quiet. */
    if (ours == CHAT_LOG_WARN && strstr(message, "\"endSessions\"") != NULL)
        ours = CHAT_LOG_DEBUG;
    CHAT_LOG_(ours, "mongoc", CHAT_F_STR("domain", domain), CHAT_F_STR("detail", message),
              CHAT_F_END);
}

/* mongoc_init must run once per process before any other mongoc call. mongoc_cleanup is
 * never called from chat_store_destroy: another store (or another module's client) may still
 * be alive, and mongoc cannot be initialised again after it. The driver's global state is
 * left to process exit; it stays reachable from the driver's globals, so LeakSanitizer and
 * valgrind do not count it as a leak. */
static void store_global_init(void)
{
    mongoc_log_set_handler(store_log_handler, NULL);
    mongoc_init();
}

/* Applies appname and the pool size to a parsed URI and creates the pool. Returns
 * CHAT_ERR_CONFIG if the driver refuses the URI's options. */
static chat_err_t store_open_pool(chat_store_t *s, const char *appname)
{
    bson_error_t error;
    /* An appname written in the URI is the operator's choice and wins. */
    if (appname != NULL && mongoc_uri_get_appname(s->uri) == NULL &&
        !mongoc_uri_set_appname(s->uri, appname))
        chat_log_warn("mongo appname rejected", CHAT_F_STR("appname", appname));
    s->pool = mongoc_client_pool_new_with_error(s->uri, &error);
    if (s->pool == NULL) {
        chat_log_error("mongo pool creation failed", CHAT_F_INT("code", error.code),
                       CHAT_F_STR("error", error.message));
        return CHAT_ERR_CONFIG;
    }
    mongoc_client_pool_set_error_api(s->pool, MONGOC_ERROR_API_VERSION_2);
    store_monitor_pool(s->pool);
    int32_t max =
        mongoc_uri_get_option_as_int32(s->uri, MONGOC_URI_MAXPOOLSIZE, STORE_DEFAULT_POOL_MAX);
    mongoc_client_pool_max_size(s->pool, max > 0 ? (uint32_t)max : STORE_DEFAULT_POOL_MAX);
    return CHAT_OK;
}

chat_err_t chat_store_new(const char *uri, const char *appname, chat_store_t **out)
{
    if (out == NULL)
        return CHAT_ERR_INVALID;
    *out = NULL;
    if (uri == NULL)
        return CHAT_ERR_CONFIG;
    pthread_once(&store_once, store_global_init);

    chat_store_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return CHAT_ERR_NOMEM;
    bson_error_t error;
    /* The URI itself is never logged: it may carry a password. */
    s->uri = mongoc_uri_new_with_error(uri, &error);
    if (s->uri == NULL) {
        chat_log_error("invalid mongo uri", CHAT_F_STR("error", error.message));
        free(s);
        return CHAT_ERR_CONFIG;
    }
    const char *db = mongoc_uri_get_database(s->uri);
    s->db_name = strdup(db != NULL && *db != '\0' ? db : STORE_DEFAULT_DB);
    if (s->db_name == NULL) {
        chat_store_destroy(s);
        return CHAT_ERR_NOMEM;
    }
    chat_err_t err = store_open_pool(s, appname);
    if (err != CHAT_OK) {
        chat_store_destroy(s);
        return err;
    }
    *out = s;
    return CHAT_OK;
}

void chat_store_destroy(chat_store_t *s)
{
    if (s == NULL)
        return;
    if (s->pool != NULL)
        mongoc_client_pool_destroy(s->pool);
    mongoc_uri_destroy(s->uri);
    free(s->db_name);
    free(s);
}

const char *chat_store_db_name(const chat_store_t *s)
{
    return s->db_name;
}

mongoc_client_t *chat_store_acquire(chat_store_t *s)
{
    return mongoc_client_pool_pop(s->pool);
}

void chat_store_release(chat_store_t *s, mongoc_client_t *client)
{
    if (client != NULL)
        mongoc_client_pool_push(s->pool, client);
}

mongoc_collection_t *chat_store_collection(chat_store_t *s, mongoc_client_t *client,
                                           const char *name)
{
    return mongoc_client_get_collection(client, s->db_name, name);
}

chat_err_t chat_store_err(const bson_error_t *error)
{
    if (error == NULL)
        return CHAT_ERR_MONGO;
    if (error->domain == MONGOC_ERROR_SERVER_SELECTION)
        return CHAT_ERR_TIMEOUT;
    if (error->domain == MONGOC_ERROR_STREAM)
        return CHAT_ERR_IO;
    if (error->code == MONGO_CODE_DUPLICATE_KEY || error->code == MONGO_CODE_DUPLICATE_KEY_LEGACY)
        return CHAT_ERR_DUPLICATE;
    return CHAT_ERR_MONGO;
}

/* One {ping:1} through a fresh single-threaded client whose server selection gives up after
 * attempt_ms. A fresh client per attempt avoids the driver's 5 s cooldown after a failed
 * server check ("No servers yet eligible for rescan"), which would make retries useless. */
static bool store_ping_once(mongoc_uri_t *uri, int attempt_ms, bson_error_t *error)
{
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, attempt_ms);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, attempt_ms);
    mongoc_client_t *client = mongoc_client_new_from_uri(uri);
    if (client == NULL) {
        bson_set_error(error, MONGOC_ERROR_CLIENT, 0, "cannot create a client");
        return false;
    }
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    bson_t cmd = BSON_INITIALIZER;
    BSON_APPEND_INT32(&cmd, "ping", 1);
    bool ok = mongoc_client_command_simple(client, "admin", &cmd, NULL, NULL, error);
    bson_destroy(&cmd);
    mongoc_client_destroy(client);
    return ok;
}

/* Returns CHAT_OK once a ping succeeds, CHAT_ERR_TIMEOUT if the server stayed unreachable for
 * timeout_ms, or the mapped error at once if the server answered with a failure (e.g.
 * authentication), which waiting would not fix. */
chat_err_t chat_store_ping(chat_store_t *s, int timeout_ms)
{
    mongoc_uri_t *uri = mongoc_uri_copy(s->uri);
    if (uri == NULL)
        return CHAT_ERR_NOMEM;
    int64_t deadline = chat_clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    bson_error_t error;
    chat_err_t err;
    for (;;) {
        int left = chat_clock_remaining_ms(deadline);
        int attempt_ms =
            left < STORE_PING_ATTEMPT_MS ? (left > 100 ? left : 100) : STORE_PING_ATTEMPT_MS;
        if (store_ping_once(uri, attempt_ms, &error)) {
            err = CHAT_OK;
            break;
        }
        err = chat_store_err(&error);
        if (err != CHAT_ERR_TIMEOUT && err != CHAT_ERR_IO) {
            chat_log_error("mongo ping failed", CHAT_F_INT("code", error.code),
                           CHAT_F_STR("error", error.message));
            break;
        }
        if (chat_clock_remaining_ms(deadline) <= STORE_PING_PAUSE_MS) {
            chat_log_error("mongo unreachable", CHAT_F_INT("timeout_ms", timeout_ms),
                           CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
            err = CHAT_ERR_TIMEOUT;
            break;
        }
        chat_log_debug("mongo not ready, retrying ping", CHAT_F_STR("error", error.message));
        chat_clock_sleep_ms(STORE_PING_PAUSE_MS);
    }
    mongoc_uri_destroy(uri);
    return err;
}

/* True if two index key documents name the same fields in the same order with the same
 * directions or types (1, 1.0 and 1L are the same direction; "text", "hashed" by name). */
static bool index_keys_equal(const bson_t *a, const bson_t *b)
{
    bson_iter_t ia, ib;
    if (!bson_iter_init(&ia, a) || !bson_iter_init(&ib, b))
        return false;
    for (;;) {
        bool more_a = bson_iter_next(&ia);
        bool more_b = bson_iter_next(&ib);
        if (more_a != more_b)
            return false;
        if (!more_a)
            return true;
        if (strcmp(bson_iter_key(&ia), bson_iter_key(&ib)) != 0)
            return false;
        if (BSON_ITER_HOLDS_UTF8(&ia) || BSON_ITER_HOLDS_UTF8(&ib)) {
            if (!BSON_ITER_HOLDS_UTF8(&ia) || !BSON_ITER_HOLDS_UTF8(&ib) ||
                strcmp(bson_iter_utf8(&ia, NULL), bson_iter_utf8(&ib, NULL)) != 0)
                return false;
        } else if (!BSON_ITER_HOLDS_NUMBER(&ia) || !BSON_ITER_HOLDS_NUMBER(&ib) ||
                   bson_iter_as_double(&ia) != bson_iter_as_double(&ib)) {
            return false;
        }
    }
}

/* Checks through listIndexes that the index called name exists with these keys and this
 * uniqueness. Returns CHAT_OK, CHAT_ERR_MONGO (logged) on a mismatch, or the mapped error if
 * listIndexes failed. */
static chat_err_t store_check_index(mongoc_collection_t *col, const bson_t *keys, const char *name,
                                    bool unique)
{
    mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts(col, NULL);
    const bson_t *index;
    bool found = false, same = false;
    while (!found && mongoc_cursor_next(cursor, &index)) {
        bson_iter_t it;
        if (!bson_iter_init_find(&it, index, "name") || !BSON_ITER_HOLDS_UTF8(&it) ||
            strcmp(bson_iter_utf8(&it, NULL), name) != 0)
            continue;
        found = true;
        bool existing_unique = bson_iter_init_find(&it, index, "unique") && bson_iter_as_bool(&it);
        bson_t existing_keys;
        uint32_t len;
        const uint8_t *data;
        if (bson_iter_init_find(&it, index, "key") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_iter_document(&it, &len, &data);
            same = bson_init_static(&existing_keys, data, len) &&
                   index_keys_equal(&existing_keys, keys) && existing_unique == unique;
        }
    }
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (mongoc_cursor_error(cursor, &error)) {
        chat_log_error("mongo listIndexes failed",
                       CHAT_F_STR("collection", mongoc_collection_get_name(col)),
                       CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
        err = chat_store_err(&error);
    } else if (!same) {
        chat_log_error("mongo index exists with other keys or options",
                       CHAT_F_STR("collection", mongoc_collection_get_name(col)),
                       CHAT_F_STR("index", name), CHAT_F_BOOL("found", found));
        err = CHAT_ERR_MONGO;
    }
    mongoc_cursor_destroy(cursor);
    return err;
}

/* True if a createIndexes reply says nothing was created (the index was already there). */
static bool index_already_existed(const bson_t *reply)
{
    bson_iter_t before, after;
    return bson_iter_init_find(&before, reply, "numIndexesBefore") &&
           bson_iter_init_find(&after, reply, "numIndexesAfter") &&
           bson_iter_as_int64(&before) == bson_iter_as_int64(&after);
}

/* Runs createIndexes for one index. Returns CHAT_OK if it was created or already exists with
 * the same keys and uniqueness, else CHAT_ERR_MONGO (or a mapped driver error), logged.
 * FerretDB 1.24 answers "all indexes already exist" (ok:1) when an index of that name exists
 * with the same keys but another unique flag, where MongoDB fails with IndexOptionsConflict;
 * so an index that already existed is checked with listIndexes. */
chat_err_t chat_store_ensure_index(chat_store_t *s, const char *collection, const bson_t *keys,
                                   const char *name, bool unique)
{
    if (collection == NULL || keys == NULL || name == NULL)
        return CHAT_ERR_INVALID;
    bson_t cmd = BSON_INITIALIZER, indexes, index;
    BSON_APPEND_UTF8(&cmd, "createIndexes", collection);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
    BSON_APPEND_DOCUMENT(&index, "key", keys);
    BSON_APPEND_UTF8(&index, "name", name);
    if (unique)
        BSON_APPEND_BOOL(&index, "unique", true);
    bson_append_document_end(&indexes, &index);
    bson_append_array_end(&cmd, &indexes);

    mongoc_client_t *client = chat_store_acquire(s);
    mongoc_database_t *db = mongoc_client_get_database(client, s->db_name);
    bson_t reply;
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (!mongoc_database_write_command_with_opts(db, &cmd, NULL, &reply, &error)) {
        chat_log_error("mongo createIndexes failed", CHAT_F_STR("collection", collection),
                       CHAT_F_STR("index", name), CHAT_F_INT("code", error.code),
                       CHAT_F_STR("error", error.message));
        err = chat_store_err(&error);
    } else if (index_already_existed(&reply)) {
        mongoc_collection_t *col = mongoc_client_get_collection(client, s->db_name, collection);
        err = store_check_index(col, keys, name, unique);
        mongoc_collection_destroy(col);
    }
    bson_destroy(&reply);
    mongoc_database_destroy(db);
    chat_store_release(s, client);
    bson_destroy(&cmd);
    return err;
}

chat_err_t chat_store_ensure_indexes(chat_store_t *s, const chat_store_index_t *ix, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bson_t keys = BSON_INITIALIZER;
        for (const char *const *f = ix[i].fields; *f != NULL; f++)
            BSON_APPEND_INT32(&keys, *f, 1);
        chat_err_t err =
            chat_store_ensure_index(s, ix[i].collection, &keys, ix[i].name, ix[i].unique);
        bson_destroy(&keys);
        if (err != CHAT_OK)
            return err;
    }
    return CHAT_OK;
}

/* Reads the writeErrors of an insert_many reply into results (DUPLICATE or MONGO for each
 * document named; the others are left alone). Counts the documents named, the duplicates among
 * them, and the lowest index named (n if none). */
static void store_read_write_errors(const bson_t *reply, const char *collection, size_t n,
                                    chat_err_t *results, size_t *failed, size_t *duplicates,
                                    size_t *first_failed)
{
    *failed = *duplicates = 0;
    *first_failed = n;
    bson_iter_t it, errors;
    if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &errors))
        return;
    while (bson_iter_next(&errors)) {
        bson_iter_t f;
        if (!BSON_ITER_HOLDS_DOCUMENT(&errors) || !bson_iter_recurse(&errors, &f))
            continue;
        int64_t index = -1, code = 0;
        const char *msg = "";
        while (bson_iter_next(&f)) {
            if (strcmp(bson_iter_key(&f), "index") == 0)
                index = bson_iter_as_int64(&f);
            else if (strcmp(bson_iter_key(&f), "code") == 0)
                code = bson_iter_as_int64(&f);
            else if (strcmp(bson_iter_key(&f), "errmsg") == 0 && BSON_ITER_HOLDS_UTF8(&f))
                msg = bson_iter_utf8(&f, NULL);
        }
        if (index < 0 || (uint64_t)index >= n || results[index] != CHAT_OK)
            continue;
        (*failed)++;
        if ((size_t)index < *first_failed)
            *first_failed = (size_t)index;
        if (code == MONGO_CODE_DUPLICATE_KEY || code == MONGO_CODE_DUPLICATE_KEY_LEGACY) {
            results[index] = CHAT_ERR_DUPLICATE;
            (*duplicates)++;
        } else {
            results[index] = CHAT_ERR_MONGO;
            chat_log_error("mongo insert failed", CHAT_F_STR("collection", collection),
                           CHAT_F_INT("index", index), CHAT_F_INT("code", code),
                           CHAT_F_STR("error", msg));
        }
    }
}

/* Fills results from an insert_many reply that reported a failure. Documents named in
 * writeErrors get DUPLICATE or MONGO. Unordered, the others were inserted if insertedCount
 * accounts for them all. Ordered, the server stopped at the one document named: those before
 * it were inserted if insertedCount says so, those after it were not attempted (STOPPED).
 * Otherwise (a network error after some batches, a write concern failure, no reply at all)
 * the documents not named cannot be known and are marked MONGO. Returns the overall status. */
static chat_err_t store_fill_results(const bson_t *reply, const bson_error_t *error,
                                     const char *collection, size_t n, bool ordered,
                                     chat_err_t *results)
{
    for (size_t i = 0; i < n; i++)
        results[i] = CHAT_OK;
    size_t failed, duplicates, first_failed;
    store_read_write_errors(reply, collection, n, results, &failed, &duplicates, &first_failed);
    bson_iter_t it, errors;
    int64_t inserted = -1;
    if (bson_iter_init_find(&it, reply, "insertedCount"))
        inserted = bson_iter_as_int64(&it);
    bool concern_failed = bson_iter_init_find(&it, reply, "writeConcernErrors") &&
                          BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &errors) &&
                          bson_iter_next(&errors);
    bool accounted = !concern_failed && inserted >= 0 &&
                     (ordered ? failed == 1 && (uint64_t)inserted == first_failed
                              : (uint64_t)inserted + failed == n);
    if (!accounted) {
        chat_log_error("mongo insert_many failed", CHAT_F_STR("collection", collection),
                       CHAT_F_INT("documents", n), CHAT_F_INT("inserted", inserted),
                       CHAT_F_BOOL("ordered", ordered), CHAT_F_INT("domain", error->domain),
                       CHAT_F_INT("code", error->code), CHAT_F_STR("error", error->message));
        for (size_t i = 0; i < n; i++)
            if (results[i] == CHAT_OK)
                results[i] = CHAT_ERR_MONGO;
        return CHAT_ERR_MONGO;
    }
    if (ordered)
        for (size_t i = first_failed + 1; i < n; i++)
            results[i] = CHAT_ERR_STOPPED;
    if (duplicates > 0)
        chat_log_debug("mongo duplicates skipped", CHAT_F_STR("collection", collection),
                       CHAT_F_INT("duplicates", duplicates), CHAT_F_BOOL("ordered", ordered));
    return duplicates == failed ? CHAT_ERR_DUPLICATE : CHAT_ERR_MONGO;
}

/* One insert command of n documents (results as chat_store_insert_many says). */
static chat_err_t store_insert_command(chat_store_t *s, const char *collection,
                                       const bson_t *const *docs, size_t n, bool ordered,
                                       chat_err_t *results)
{
    mongoc_client_t *client = chat_store_acquire(s);
    mongoc_collection_t *col = chat_store_collection(s, client, collection);
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "ordered", ordered);
    bson_t reply;
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    /* The driver takes a non-const array; it does not modify it. */
    if (mongoc_collection_insert_many(col, (const bson_t **)docs, n, &opts, &reply, &error)) {
        for (size_t i = 0; i < n; i++)
            results[i] = CHAT_OK;
    } else {
        err = store_fill_results(&reply, &error, collection, n, ordered, results);
    }
    bson_destroy(&reply);
    bson_destroy(&opts);
    mongoc_collection_destroy(col);
    chat_store_release(s, client);
    return err;
}

chat_err_t chat_store_insert_many(chat_store_t *s, const char *collection,
                                  const bson_t *const *docs, size_t n, bool ordered,
                                  chat_err_t *results)
{
    if (n == 0)
        return CHAT_OK;
    if (collection == NULL || docs == NULL || results == NULL)
        return CHAT_ERR_INVALID;
    if (!ordered)
        return store_insert_command(s, collection, docs, n, false, results);
    /* Ordered: in commands of at most STORE_ORDERED_CHUNK documents, the next one sent only
     * if the one before stored everything, so that what is stored stays a prefix even on a
     * server that goes on past a failure (store.h). */
    for (size_t at = 0; at < n; at += STORE_ORDERED_CHUNK) {
        size_t k = n - at < STORE_ORDERED_CHUNK ? n - at : STORE_ORDERED_CHUNK;
        chat_err_t err = store_insert_command(s, collection, docs + at, k, true, results + at);
        if (err != CHAT_OK) {
            for (size_t i = at + k; i < n; i++)
                results[i] = CHAT_ERR_STOPPED;
            return err;
        }
    }
    return CHAT_OK;
}

chat_err_t chat_store_find_one(chat_store_t *s, const char *collection, const bson_t *filter,
                               bson_t **doc)
{
    *doc = NULL;
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    mongoc_client_t *client = chat_store_acquire(s);
    mongoc_collection_t *col = chat_store_collection(s, client, collection);
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    const bson_t *found;
    chat_err_t err = CHAT_ERR_NOT_FOUND;
    if (mongoc_cursor_next(cursor, &found)) {
        *doc = bson_copy(found);
        err = *doc != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
    }
    bson_error_t error;
    if (mongoc_cursor_error(cursor, &error)) {
        bson_destroy(*doc);
        *doc = NULL;
        err = chat_store_err(&error);
        chat_log_warn("document not read", CHAT_F_STR("collection", collection),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    }
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(col);
    chat_store_release(s, client);
    bson_destroy(opts);
    return err;
}
