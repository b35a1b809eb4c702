/* Integration test of common/store.c against the stack's FerretDB: ping, a document round
 * trip, idempotent unique indexes, duplicate reporting (single, inside an unordered batch,
 * and an ordered batch stopping at its first duplicate) and the pool used from several
 * threads. Every test works in its own collection. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/store.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"

#define INDEX_NAME "tenant_room_seq"

static chat_store_t *store;
static char collection[96];

static void setup(void)
{
    const char *uri = chat_test_stack_get("CHAT_MONGO_URI");
    ck_assert_int_eq(chat_store_new(uri, "it-020", &store), CHAT_OK);
    ck_assert_int_eq(chat_store_ping(store, 10000), CHAT_OK);
    chat_test_unique(collection, sizeof collection, "it020");
}

static void teardown(void)
{
    mongoc_client_t *client = chat_store_acquire(store);
    mongoc_collection_t *col = chat_store_collection(store, client, collection);
    mongoc_collection_drop(col, NULL); /* absent if the test never wrote */
    mongoc_collection_destroy(col);
    chat_store_release(store, client);
    chat_store_destroy(store);
    store = NULL;
}

static bson_t *message(const char *room, int64_t seq, const char *body)
{
    bson_t *doc = bson_new();
    BSON_APPEND_UTF8(doc, "tenant", "acme");
    BSON_APPEND_UTF8(doc, "room", room);
    BSON_APPEND_INT64(doc, "seq", seq);
    BSON_APPEND_UTF8(doc, "body", body);
    return doc;
}

static chat_err_t insert(bson_t **docs, size_t n, chat_err_t *results)
{
    return chat_store_insert_many(store, collection, (const bson_t *const *)docs, n, false,
                                  results);
}

static chat_err_t insert_ordered(bson_t **docs, size_t n, chat_err_t *results)
{
    return chat_store_insert_many(store, collection, (const bson_t *const *)docs, n, true, results);
}

static void ensure_unique_index(void)
{
    bson_t *keys = BCON_NEW("tenant", BCON_INT32(1), "room", BCON_INT32(1), "seq", BCON_INT32(1));
    ck_assert_int_eq(chat_store_ensure_index(store, collection, keys, INDEX_NAME, true), CHAT_OK);
    bson_destroy(keys);
}

/* Returns the documents of the collection matching filter (at most max), copied. */
static int find_all(const bson_t *filter, bson_t **out, int max)
{
    mongoc_client_t *client = chat_store_acquire(store);
    mongoc_collection_t *col = chat_store_collection(store, client, collection);
    bson_t *opts = BCON_NEW("sort", "{", "seq", BCON_INT32(1), "}");
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    const bson_t *doc;
    int n = 0;
    while (mongoc_cursor_next(cursor, &doc)) {
        ck_assert_int_lt(n, max);
        out[n++] = bson_copy(doc);
    }
    bson_error_t error;
    ck_assert_msg(!mongoc_cursor_error(cursor, &error), "find failed: %s", error.message);
    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    mongoc_collection_destroy(col);
    chat_store_release(store, client);
    return n;
}

static const char *utf8_field(const bson_t *doc, const char *path)
{
    bson_iter_t it, found;
    ck_assert(bson_iter_init(&it, doc));
    ck_assert_msg(bson_iter_find_descendant(&it, path, &found), "no field %s", path);
    ck_assert_msg(BSON_ITER_HOLDS_UTF8(&found), "%s is not a string", path);
    return bson_iter_utf8(&found, NULL);
}

static int64_t int64_field(const bson_t *doc, const char *path)
{
    bson_iter_t it, found;
    ck_assert(bson_iter_init(&it, doc));
    ck_assert_msg(bson_iter_find_descendant(&it, path, &found), "no field %s", path);
    ck_assert_msg(BSON_ITER_HOLDS_INT64(&found), "%s is not an int64", path);
    return bson_iter_int64(&found);
}

static void free_all(bson_t **docs, int n)
{
    for (int i = 0; i < n; i++)
        bson_destroy(docs[i]);
}

START_TEST(ping_answers)
{
    ck_assert_int_eq(chat_store_ping(store, 2000), CHAT_OK);
}
END_TEST

START_TEST(documents_round_trip)
{
    static const char room[] = "caf\xc3\xa9-\xe5\xae\xa4-\xf0\x9f\x98\x80"; /* café-室-😀 */
    static const char body[] = "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \"quoted\"\n";
    const int64_t big_seq = INT64_C(9007199254740993); /* 2^53 + 1: not exact as a double */
    bson_t *docs[2] = {message(room, big_seq, body), message("plain", -7, "")};
    bson_t author;
    BSON_APPEND_DOCUMENT_BEGIN(docs[0], "author", &author);
    BSON_APPEND_UTF8(&author, "id", "u-1");
    BSON_APPEND_UTF8(&author, "name", "Zo\xc3\xab");
    BSON_APPEND_INT64(&author, "joined_ms", INT64_C(1700000000123));
    bson_append_document_end(docs[0], &author);

    chat_err_t results[2] = {CHAT_ERR_MONGO, CHAT_ERR_MONGO};
    ck_assert_int_eq(insert(docs, 2, results), CHAT_OK);
    ck_assert_int_eq(results[0], CHAT_OK);
    ck_assert_int_eq(results[1], CHAT_OK);

    bson_t *found[4];
    bson_t *filter = BCON_NEW("room", BCON_UTF8(room));
    int n = find_all(filter, found, 4);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(utf8_field(found[0], "tenant"), "acme");
    ck_assert_str_eq(utf8_field(found[0], "room"), room);
    ck_assert_str_eq(utf8_field(found[0], "body"), body);
    ck_assert(int64_field(found[0], "seq") == big_seq);
    ck_assert_str_eq(utf8_field(found[0], "author.id"), "u-1");
    ck_assert_str_eq(utf8_field(found[0], "author.name"), "Zo\xc3\xab");
    ck_assert(int64_field(found[0], "author.joined_ms") == INT64_C(1700000000123));
    free_all(found, n);
    bson_destroy(filter);

    filter = bson_new();
    n = find_all(filter, found, 4);
    ck_assert_int_eq(n, 2);
    ck_assert(int64_field(found[0], "seq") == -7);
    ck_assert_str_eq(utf8_field(found[0], "body"), "");
    free_all(found, n);
    bson_destroy(filter);
    free_all(docs, 2);
}
END_TEST

START_TEST(unique_index_is_idempotent)
{
    ensure_unique_index();
    ensure_unique_index();
    /* The same name with other options must not pass silently (FerretDB answers ok here;
     * the store checks the existing index). */
    bson_t *keys = BCON_NEW("tenant", BCON_INT32(1), "room", BCON_INT32(1), "seq", BCON_INT32(1));
    ck_assert_int_eq(chat_store_ensure_index(store, collection, keys, INDEX_NAME, false),
                     CHAT_ERR_MONGO);
    bson_destroy(keys);
    keys = BCON_NEW("tenant", BCON_INT32(1), "seq", BCON_INT32(-1));
    ck_assert_int_ne(chat_store_ensure_index(store, collection, keys, INDEX_NAME, true), CHAT_OK);
    bson_destroy(keys);
    /* Equivalent key types (1.0 for 1) are the same index. */
    keys = BCON_NEW("tenant", BCON_DOUBLE(1.0), "room", BCON_INT64(1), "seq", BCON_INT32(1));
    ck_assert_int_eq(chat_store_ensure_index(store, collection, keys, INDEX_NAME, true), CHAT_OK);
    bson_destroy(keys);
}
END_TEST

START_TEST(duplicate_is_reported)
{
    ensure_unique_index();
    bson_t *first = message("r1", 1, "first");
    bson_t *again = message("r1", 1, "again"); /* another _id, same index key */
    chat_err_t result = CHAT_ERR_MONGO;
    ck_assert_int_eq(insert(&first, 1, &result), CHAT_OK);
    ck_assert_int_eq(result, CHAT_OK);
    ck_assert_int_eq(insert(&again, 1, &result), CHAT_ERR_DUPLICATE);
    ck_assert_int_eq(result, CHAT_ERR_DUPLICATE);

    /* The driver error of a plain insert maps to DUPLICATE too. */
    mongoc_client_t *client = chat_store_acquire(store);
    mongoc_collection_t *col = chat_store_collection(store, client, collection);
    bson_error_t error;
    ck_assert(!mongoc_collection_insert_one(col, again, NULL, NULL, &error));
    ck_assert_int_eq(chat_store_err(&error), CHAT_ERR_DUPLICATE);
    mongoc_collection_destroy(col);
    chat_store_release(store, client);

    bson_t *found[4];
    bson_t *filter = bson_new();
    int n = find_all(filter, found, 4);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(utf8_field(found[0], "body"), "first");
    free_all(found, n);
    bson_destroy(filter);
    bson_destroy(first);
    bson_destroy(again);
}
END_TEST

START_TEST(unordered_batch_reports_each_duplicate)
{
    ensure_unique_index();
    bson_t *existing = message("r1", 100, "existing");
    chat_err_t result;
    ck_assert_int_eq(insert(&existing, 1, &result), CHAT_OK);

    /* #2 duplicates the stored document, #4 duplicates #0 of the same batch. */
    bson_t *batch[5] = {message("r1", 1, "one"), message("r1", 2, "two"),
                        message("r1", 100, "dup of existing"), message("r1", 3, "three"),
                        message("r1", 1, "dup of #0")};
    chat_err_t results[5];
    for (int i = 0; i < 5; i++)
        results[i] = CHAT_ERR__COUNT;
    ck_assert_int_eq(insert(batch, 5, results), CHAT_ERR_DUPLICATE);
    const chat_err_t want[5] = {CHAT_OK, CHAT_OK, CHAT_ERR_DUPLICATE, CHAT_OK, CHAT_ERR_DUPLICATE};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(results[i] == want[i], "document %d: %s, want %s", i,
                      chat_err_name(results[i]), chat_err_name(want[i]));

    bson_t *found[8];
    bson_t *filter = bson_new();
    int n = find_all(filter, found, 8);
    ck_assert_int_eq(n, 4);
    static const char *const bodies[4] = {"one", "two", "three", "existing"};
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(utf8_field(found[i], "body"), bodies[i]);
    free_all(found, n);
    bson_destroy(filter);
    free_all(batch, 5);
    bson_destroy(existing);
}
END_TEST

/* An ordered insert stops at the first failure: the documents before it are stored, the ones
 * after it are not attempted, even those that would have been fine. */
START_TEST(ordered_batch_stops_at_first_duplicate)
{
    ensure_unique_index();
    bson_t *existing = message("r1", 100, "existing");
    chat_err_t result;
    ck_assert_int_eq(insert(&existing, 1, &result), CHAT_OK);

    bson_t *batch[5] = {message("r1", 1, "one"), message("r1", 2, "two"),
                        message("r1", 100, "dup of existing"), message("r1", 3, "three"),
                        message("r1", 4, "four")};
    chat_err_t results[5];
    for (int i = 0; i < 5; i++)
        results[i] = CHAT_ERR__COUNT;
    ck_assert_int_eq(insert_ordered(batch, 5, results), CHAT_ERR_DUPLICATE);
    const chat_err_t want[5] = {CHAT_OK, CHAT_OK, CHAT_ERR_DUPLICATE, CHAT_ERR_STOPPED,
                                CHAT_ERR_STOPPED};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(results[i] == want[i], "document %d: %s, want %s", i,
                      chat_err_name(results[i]), chat_err_name(want[i]));

    bson_t *found[8];
    bson_t *filter = bson_new();
    int n = find_all(filter, found, 8);
    ck_assert_int_eq(n, 3);
    static const char *const bodies[3] = {"one", "two", "existing"};
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(utf8_field(found[i], "body"), bodies[i]);
    free_all(found, n);

    /* The rest goes in again, in order, once the duplicate is out of the way. */
    ck_assert_int_eq(insert_ordered(&batch[3], 2, results), CHAT_OK);
    ck_assert_int_eq(results[0], CHAT_OK);
    ck_assert_int_eq(results[1], CHAT_OK);
    n = find_all(filter, found, 8);
    ck_assert_int_eq(n, 5);
    free_all(found, n);
    bson_destroy(filter);
    free_all(batch, 5);
    bson_destroy(existing);
}
END_TEST

/* The same across many documents: FerretDB inserts a command's documents in batches of 100
 * and, ordered, went on with the next batches after a duplicate in the first (the message
 * service then stored later sends at seqs below earlier ones). Nothing after the duplicate may
 * be stored, whatever the batch's size. */
START_TEST(large_ordered_batch_stores_a_prefix)
{
    enum { N = 250, DUP = 30 };
    ensure_unique_index();
    bson_t *existing = message("big", 1000 + DUP, "existing");
    chat_err_t result;
    ck_assert_int_eq(insert(&existing, 1, &result), CHAT_OK);

    bson_t *batch[N];
    chat_err_t results[N];
    for (int i = 0; i < N; i++) {
        char body[16];
        snprintf(body, sizeof body, "m%d", i);
        batch[i] = message("big", 1000 + i, body);
        results[i] = CHAT_ERR__COUNT;
    }
    ck_assert_int_eq(insert_ordered(batch, N, results), CHAT_ERR_DUPLICATE);
    for (int i = 0; i < N; i++) {
        chat_err_t want = i < DUP ? CHAT_OK : i == DUP ? CHAT_ERR_DUPLICATE : CHAT_ERR_STOPPED;
        ck_assert_msg(results[i] == want, "document %d: %s, want %s", i, chat_err_name(results[i]),
                      chat_err_name(want));
    }
    bson_t *found[N + 1];
    bson_t *filter = BCON_NEW("room", BCON_UTF8("big"));
    int n = find_all(filter, found, N + 1);
    ck_assert_int_eq(n, DUP + 1); /* the prefix and the one that was there */
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(int64_field(found[i], "seq"), 1000 + i);
    free_all(found, n);

    /* A duplicate in a later command: the commands before it are stored whole. */
    bson_t *more[N];
    for (int i = 0; i < N; i++) {
        more[i] = message("big", 2000 + i, "more");
        results[i] = CHAT_ERR__COUNT;
    }
    bson_t *late = message("big", 2000 + 160, "late");
    ck_assert_int_eq(insert(&late, 1, &result), CHAT_OK);
    ck_assert_int_eq(insert_ordered(more, N, results), CHAT_ERR_DUPLICATE);
    for (int i = 0; i < N; i++) {
        chat_err_t want = i < 160 ? CHAT_OK : i == 160 ? CHAT_ERR_DUPLICATE : CHAT_ERR_STOPPED;
        ck_assert_msg(results[i] == want, "document %d: %s, want %s", i, chat_err_name(results[i]),
                      chat_err_name(want));
    }
    n = find_all(filter, found, N + 1);
    ck_assert_int_eq(n, DUP + 1 + 161);
    free_all(found, n);
    bson_destroy(filter);
    free_all(more, N);
    bson_destroy(late);
    free_all(batch, N);
    bson_destroy(existing);
}
END_TEST

START_TEST(other_write_error_is_mongo)
{
    /* FerretDB refuses a '.' in a field name (code 2); the other document is still stored. */
    bson_t *batch[2] = {message("r1", 1, "fine"), BCON_NEW("a.b", BCON_INT32(1))};
    chat_err_t results[2] = {CHAT_ERR__COUNT, CHAT_ERR__COUNT};
    ck_assert_int_eq(insert(batch, 2, results), CHAT_ERR_MONGO);
    ck_assert_int_eq(results[0], CHAT_OK);
    ck_assert_int_eq(results[1], CHAT_ERR_MONGO);
    bson_t *found[2];
    bson_t *filter = bson_new();
    int n = find_all(filter, found, 2);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(utf8_field(found[0], "body"), "fine");
    free_all(found, n);
    bson_destroy(filter);
    free_all(batch, 2);
}
END_TEST

START_TEST(rejected_batch_marks_every_document)
{
    /* The driver refuses an empty key before sending anything: no document has an outcome
     * from the server, so every one is a failure. */
    bson_t *batch[2] = {message("r1", 1, "fine"), BCON_NEW("", BCON_INT32(1))};
    chat_err_t results[2] = {CHAT_OK, CHAT_OK};
    ck_assert_int_eq(insert(batch, 2, results), CHAT_ERR_MONGO);
    ck_assert_int_eq(results[0], CHAT_ERR_MONGO);
    ck_assert_int_eq(results[1], CHAT_ERR_MONGO);
    bson_t *found[2];
    bson_t *filter = bson_new();
    ck_assert_int_eq(find_all(filter, found, 2), 0);
    bson_destroy(filter);
    free_all(batch, 2);
}
END_TEST

#define WORKERS 4
#define ROUNDS 25
#define POOL_MAX 2

typedef struct pool_worker {
    chat_store_t *store;
    int id;
    atomic_int *holders;
    atomic_int *max_holders;
    int failures;
} pool_worker_t;

static void *pool_worker_run(void *arg)
{
    pool_worker_t *w = arg;
    for (int round = 0; round < ROUNDS; round++) {
        mongoc_client_t *client = chat_store_acquire(w->store);
        int now = atomic_fetch_add(w->holders, 1) + 1;
        int seen = atomic_load(w->max_holders);
        while (now > seen && !atomic_compare_exchange_weak(w->max_holders, &seen, now)) {
        }
        mongoc_collection_t *col = chat_store_collection(w->store, client, collection);
        bson_t *doc = message("threads", (int64_t)w->id * 1000 + round, "x");
        if (!mongoc_collection_insert_one(col, doc, NULL, NULL, NULL))
            w->failures++;
        bson_destroy(doc);
        mongoc_collection_destroy(col);
        atomic_fetch_sub(w->holders, 1);
        chat_store_release(w->store, client);
    }
    return NULL;
}

START_TEST(pool_serves_threads)
{
    ensure_unique_index();
    const char *uri = chat_test_stack_get("CHAT_MONGO_URI");
    char limited[512];
    snprintf(limited, sizeof limited, "%s%cmaxPoolSize=%d", uri, strchr(uri, '?') ? '&' : '?',
             POOL_MAX);
    chat_store_t *small = NULL;
    ck_assert_int_eq(chat_store_new(limited, "it-020-threads", &small), CHAT_OK);

    atomic_int holders = 0, max_holders = 0;
    pool_worker_t workers[WORKERS];
    pthread_t threads[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = (pool_worker_t){
            .store = small, .id = i, .holders = &holders, .max_holders = &max_holders};
        ck_assert_int_eq(pthread_create(&threads[i], NULL, pool_worker_run, &workers[i]), 0);
    }
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_int_eq(workers[i].failures, 0);
    }
    ck_assert_int_le(atomic_load(&max_holders), POOL_MAX);
    ck_assert_int_ge(atomic_load(&max_holders), 1);
    chat_store_destroy(small);

    mongoc_client_t *client = chat_store_acquire(store);
    mongoc_collection_t *col = chat_store_collection(store, client, collection);
    bson_t filter = BSON_INITIALIZER;
    bson_error_t error;
    int64_t count = mongoc_collection_count_documents(col, &filter, NULL, NULL, NULL, &error);
    ck_assert_msg(count == WORKERS * ROUNDS, "count %lld: %s", (long long)count, error.message);
    mongoc_collection_destroy(col);
    chat_store_release(store, client);
}
END_TEST

/* Driver command monitoring: every command of a store created after
 * chat_store_metrics_attach is timed under its name; a duplicate key is a write error, not a
 * failed command; a command the server refuses is one (op "other" for an unknown name). */
START_TEST(commands_are_timed_and_failures_counted)
{
    chat_metrics_t *m = chat_metrics_new();
    ck_assert_int_eq(chat_store_metrics_attach(m), CHAT_OK);
    chat_store_t *monitored = NULL;
    ck_assert_int_eq(
        chat_store_new(chat_test_stack_get("CHAT_MONGO_URI"), "it-020-apm", &monitored), CHAT_OK);
    ck_assert(chat_test_registry_value(m, "chat_mongo_op_seconds_count{op=\"insert\"}") == 0);
    ensure_unique_index();
    bson_t *doc = message("apm", 1, "timed");
    chat_err_t result;
    ck_assert_int_eq(chat_store_insert_many(monitored, collection, (const bson_t *const *)&doc, 1,
                                            false, &result),
                     CHAT_OK);
    ck_assert(chat_test_registry_value(m, "chat_mongo_op_seconds_count{op=\"insert\"}") == 1);
    ck_assert(chat_test_registry_value(m, "chat_mongo_op_seconds_sum{op=\"insert\"}") > 0);
    ck_assert_int_eq(chat_store_insert_many(monitored, collection, (const bson_t *const *)&doc, 1,
                                            false, &result),
                     CHAT_ERR_DUPLICATE);
    ck_assert(chat_test_registry_value(m, "chat_mongo_op_seconds_count{op=\"insert\"}") == 2);
    ck_assert(chat_test_registry_value(m, "chat_mongo_errors_total{op=\"insert\"}") == 0);
    bson_t *filter = BCON_NEW("room", BCON_UTF8("apm")), *found = NULL;
    ck_assert_int_eq(chat_store_find_one(monitored, collection, filter, &found), CHAT_OK);
    ck_assert(chat_test_registry_value(m, "chat_mongo_op_seconds_count{op=\"find\"}") == 1);
    bson_destroy(found);
    bson_destroy(filter);
    bson_destroy(doc);

    mongoc_client_t *client = chat_store_acquire(monitored);
    bson_t *cmd = BCON_NEW("noSuchCommand", BCON_INT32(1));
    bson_error_t error;
    ck_assert(!mongoc_client_command_simple(client, chat_store_db_name(monitored), cmd, NULL, NULL,
                                            &error));
    bson_destroy(cmd);
    chat_store_release(monitored, client);
    ck_assert(chat_test_registry_value(m, "chat_mongo_errors_total{op=\"other\"}") == 1);
    ck_assert(chat_test_registry_value(m, "chat_mongo_op_seconds_count{op=\"other\"}") >= 1);
    ck_assert(chat_test_registry_value(m, "chat_mongo_errors_total{op=\"find\"}") == 0);
    /* The setup's store was made before the attach: its commands are not counted. */
    bson_t *all = bson_new(), *docs[2];
    free_all(docs, find_all(all, docs, 2));
    bson_destroy(all);
    ck_assert(chat_test_registry_value(m, "chat_mongo_op_seconds_count{op=\"find\"}") == 1);
    chat_store_destroy(monitored);
    chat_store_metrics_attach(NULL);
    chat_metrics_destroy(m);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("mongo-store");
    TCase *tc = tcase_create("ferretdb");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ping_answers);
    tcase_add_test(tc, documents_round_trip);
    tcase_add_test(tc, unique_index_is_idempotent);
    tcase_add_test(tc, duplicate_is_reported);
    tcase_add_test(tc, unordered_batch_reports_each_duplicate);
    tcase_add_test(tc, ordered_batch_stops_at_first_duplicate);
    tcase_add_test(tc, large_ordered_batch_stores_a_prefix);
    tcase_add_test(tc, other_write_error_is_mongo);
    tcase_add_test(tc, rejected_batch_marks_every_document);
    tcase_add_test(tc, pool_serves_threads);
    tcase_add_test(tc, commands_are_timed_and_failures_counted);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    chat_test_stack_load();
    chat_log_init("it-020", CHAT_LOG_INFO);
    return chat_test_suite_run(store_suite(), false);
}
