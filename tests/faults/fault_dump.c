/* fault-dump: prints the stored messages of one tenant's rooms whose name starts with a
 * prefix, one line each: room, seq, from, cid (tab-separated), straight from MongoDB
 * (CHAT_MONGO_URI). The fault tests (tests/faults/faults.py) compare it with what their
 * clients were acknowledged: every acknowledged message stored exactly once. Exits 1 with a
 * message on stderr if the store cannot be read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mongoc/mongoc.h>

static const char *utf8_of(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return "";
}

static long long seq_of(const bson_t *doc)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "seq") && BSON_ITER_HOLDS_NUMBER(&it))
        return (long long)bson_iter_as_int64(&it);
    return -1;
}

int main(int argc, char **argv)
{
    const char *uri_s = getenv("CHAT_MONGO_URI");
    if (argc != 3 || uri_s == NULL || *uri_s == '\0') {
        fprintf(stderr, "usage: CHAT_MONGO_URI=mongodb://... fault-dump TENANT ROOM_PREFIX\n");
        return 2;
    }
    mongoc_init();
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_s, &error);
    if (uri == NULL) {
        fprintf(stderr, "fault-dump: bad CHAT_MONGO_URI: %s\n", error.message);
        return 1;
    }
    const char *db = mongoc_uri_get_database(uri) != NULL ? mongoc_uri_get_database(uri) : "chat";
    mongoc_client_t *client = mongoc_client_new_from_uri(uri);
    mongoc_collection_t *coll = mongoc_client_get_collection(client, db, "messages");
    /* A prefix of room names ([A-Za-z0-9._:-]): '.' is the only regex character to escape. */
    char pattern[512];
    size_t n = 0;
    pattern[n++] = '^';
    for (const char *p = argv[2]; *p != '\0' && n + 3 < sizeof pattern; p++) {
        if (*p == '.')
            pattern[n++] = '\\';
        pattern[n++] = *p;
    }
    pattern[n] = '\0';
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(argv[1]), "room", BCON_REGEX(pattern, ""));
    bson_t *opts = BCON_NEW("projection", "{", "room", BCON_INT32(1), "seq", BCON_INT32(1), "from",
                            BCON_INT32(1), "cid", BCON_INT32(1), "_id", BCON_INT32(0), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    long rows = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        printf("%s\t%lld\t%s\t%s\n", utf8_of(doc, "room"), seq_of(doc), utf8_of(doc, "from"),
               utf8_of(doc, "cid"));
        rows++;
    }
    int rc = 0;
    if (mongoc_cursor_error(cur, &error)) {
        fprintf(stderr, "fault-dump: reading %s.messages failed after %ld rows: %s\n", db, rows,
                error.message);
        rc = 1;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return rc;
}
