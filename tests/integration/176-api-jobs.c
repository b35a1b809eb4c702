/* End to end: the server API's blocks, settings, stats, exports and user erasure over HTTP
 * (CHAT_API_URL of the stack). Blocks: add (201, then 200 again), self and unknown fields
 * refused, paging, remove (204, then 404). Settings: the defaults of a fresh tenant, a PATCH
 * merged and read back, refusals naming the field. Stats: a fresh tenant's counts before and
 * after a user connects and sends. Exports: a room of 300 messages exported as exactly its
 * lines in (room, seq) order, no partial file left, another tenant's id not found; every room
 * of the tenant past one batch; a job whose runner died taken over, a held one left alone. A
 * user's rooms: the gateway's rooms frame and the api's answer list the same entries. Erasure:
 * a user's messages in a public and a dm room become deleted in MongoDB (others' untouched),
 * their read marks, room list entries, blocks and private membership go, the job ends done. */
#include <check.h>
#include <curl/curl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/jwt.h"
#include "common/store.h"
#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"
#include "tools/client/client_frames.h"

#define JOB_WAIT_MS 120000
/* A user id over the limit of 64 characters. */
#define SEVENTY_CHARS "0123456789012345678901234567890123456789012345678901234567890123456789"

/* ---- HTTP ---- */

typedef struct http_answer {
    long status;
    cJSON *body; /* NULL when the answer had none or it was not JSON */
    char location[256];
} http_answer_t;

typedef struct grow {
    char *data;
    size_t len;
} grow_t;

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
    grow_t *g = ud;
    char *more = realloc(g->data, g->len + size * n + 1);
    ck_assert_ptr_nonnull(more);
    memcpy(more + g->len, ptr, size * n);
    g->data = more;
    g->len += size * n;
    g->data[g->len] = '\0';
    return size * n;
}

static size_t on_header(char *ptr, size_t size, size_t n, void *ud)
{
    http_answer_t *a = ud;
    size_t len = size * n;
    if (len > 10 && strncasecmp(ptr, "location: ", 10) == 0) {
        size_t v = len - 10;
        while (v > 0 && (ptr[10 + v - 1] == '\r' || ptr[10 + v - 1] == '\n'))
            v--;
        snprintf(a->location, sizeof a->location, "%.*s", (int)v, ptr + 10);
    }
    return len;
}

/* A server token of tenant, valid for two minutes (caller frees). */
static char *server_token(const char *tenant, const char *secret)
{
    chat_jwt_server_claims_t c = {.iat = chat_clock_wall_ms() / 1000};
    c.exp = c.iat + 120;
    snprintf(c.tenant, sizeof c.tenant, "%s", tenant);
    char *token = NULL;
    ck_assert_int_eq(chat_jwt_server_sign(&c, secret, strlen(secret), &token), CHAT_OK);
    return token;
}

/* method path (under /v1) with body (JSON text or NULL) as tenant. */
static http_answer_t api_call_as(const char *tenant, const char *secret, const char *method,
                                 const char *path, const char *body)
{
    http_answer_t a = {0};
    char url[1024], auth[1024];
    snprintf(url, sizeof url, "%s/v1%s", chat_test_stack_get("CHAT_API_URL"), path);
    char *token = server_token(tenant, secret);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    free(token);
    CURL *curl = curl_easy_init();
    ck_assert_ptr_nonnull(curl);
    struct curl_slist *headers = curl_slist_append(NULL, auth);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    grow_t g = {0};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &g);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    if (body != NULL)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(curl);
    ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a.status);
    a.body = g.data != NULL ? cJSON_Parse(g.data) : NULL;
    free(g.data);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return a;
}

static http_answer_t api_call(const char *method, const char *path, const char *body)
{
    return api_call_as(chat_test_demo_tenant(), chat_test_demo_secret(), method, path, body);
}

/* api_call that expects status; returns the body (caller deletes). */
static cJSON *api_expect(const char *method, const char *path, const char *body, long status)
{
    http_answer_t a = api_call(method, path, body);
    char *shown = a.body != NULL ? cJSON_PrintUnformatted(a.body) : NULL;
    ck_assert_msg(a.status == status, "%s %s %s: %ld, wanted %ld: %s", method, path,
                  body ? body : "", a.status, status, shown ? shown : "(no body)");
    free(shown);
    return a.body;
}

/* The error message of an error body. */
static const char *error_message(const cJSON *body)
{
    return chat_json_str(cJSON_GetObjectItem(body, "error"), "message");
}

/* Polls path until its state is done or failed (JOB_WAIT_MS at most); returns the body. */
static cJSON *job_wait(const char *path)
{
    int64_t deadline = chat_clock_mono_ms() + JOB_WAIT_MS;
    for (;;) {
        cJSON *job = api_expect("GET", path, NULL, 200);
        const char *state = chat_json_str(job, "state");
        ck_assert_ptr_nonnull(state);
        if (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0)
            return job;
        ck_assert_msg(strcmp(state, "queued") == 0 || strcmp(state, "running") == 0, "state %s",
                      state);
        ck_assert_msg(chat_clock_mono_ms() < deadline, "%s still %s", path, state);
        cJSON_Delete(job);
        usleep(200 * 1000);
    }
}

/* ---- MongoDB ---- */

static chat_store_t *store;

static int64_t mongo_count(const char *collection, const bson_t *filter)
{
    mongoc_client_t *client = chat_store_acquire(store);
    mongoc_collection_t *col = chat_store_collection(store, client, collection);
    bson_error_t error;
    int64_t n = mongoc_collection_count_documents(col, filter, NULL, NULL, NULL, &error);
    ck_assert_msg(n >= 0, "count of %s: %s", collection, error.message);
    mongoc_collection_destroy(col);
    chat_store_release(store, client);
    return n;
}

/* ---- blocks ---- */

START_TEST(test_blocks)
{
    char a[48], b[48], c[48], path[256], body[256];
    chat_test_unique(a, sizeof a, "blocker");
    chat_test_unique(b, sizeof b, "bbb");
    chat_test_unique(c, sizeof c, "ccc");
    snprintf(path, sizeof path, "/users/%s/blocks", a);
    snprintf(body, sizeof body, "{\"user\":\"%s\"}", b);
    cJSON *r = api_expect("POST", path, body, 201);
    ck_assert_str_eq(chat_json_str(r, "user"), a);
    ck_assert_str_eq(chat_json_str(r, "target"), b);
    int64_t created = chat_json_int(r, "created");
    ck_assert_int_gt(created, 0);
    cJSON_Delete(r);
    /* blocked already: the same block, 200 */
    r = api_expect("POST", path, body, 200);
    ck_assert_int_eq(chat_json_int(r, "created"), created);
    cJSON_Delete(r);
    snprintf(body, sizeof body, "{\"user\":\"%s\"}", a);
    r = api_expect("POST", path, body, 400);
    cJSON_Delete(r);
    snprintf(body, sizeof body, "{\"user\":\"%s\",\"why\":\"x\"}", c);
    r = api_expect("POST", path, body, 400);
    ck_assert_ptr_nonnull(strstr(error_message(r), "why"));
    cJSON_Delete(r);
    r = api_expect("POST", path, "{\"user\":\"\"}", 400);
    cJSON_Delete(r);
    r = api_expect("POST", path, "{\"user\":\"" SEVENTY_CHARS "\"}", 400);
    cJSON_Delete(r);
    snprintf(body, sizeof body, "{\"user\":\"%s\"}", c);
    cJSON_Delete(api_expect("POST", path, body, 201));
    /* two pages of one, in target order (bbb before ccc) */
    snprintf(path, sizeof path, "/users/%s/blocks?limit=1", a);
    r = api_expect("GET", path, NULL, 200);
    cJSON *list = cJSON_GetObjectItem(r, "blocks");
    ck_assert_int_eq(cJSON_GetArraySize(list), 1);
    ck_assert_str_eq(chat_json_str(cJSON_GetArrayItem(list, 0), "target"), b);
    const char *next = chat_json_str(r, "next");
    ck_assert_ptr_nonnull(next);
    snprintf(path, sizeof path, "/users/%s/blocks?limit=1&cursor=%s", a, next);
    cJSON_Delete(r);
    r = api_expect("GET", path, NULL, 200);
    list = cJSON_GetObjectItem(r, "blocks");
    ck_assert_int_eq(cJSON_GetArraySize(list), 1);
    ck_assert_str_eq(chat_json_str(cJSON_GetArrayItem(list, 0), "target"), c);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(r, "next")));
    cJSON_Delete(r);
    /* the message service reads what the api wrote */
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(chat_test_demo_tenant()), "user", BCON_UTF8(a),
                              "target", BCON_UTF8(b));
    ck_assert_int_eq(mongo_count("blocks", filter), 1);
    snprintf(path, sizeof path, "/users/%s/blocks/%s", a, b);
    http_answer_t d = api_call("DELETE", path, NULL);
    ck_assert_int_eq(d.status, 204);
    cJSON_Delete(d.body);
    ck_assert_int_eq(mongo_count("blocks", filter), 0);
    cJSON_Delete(api_expect("DELETE", path, NULL, 404));
    bson_destroy(filter);
    snprintf(path, sizeof path, "/users/%s/blocks", a);
    r = api_expect("GET", path, NULL, 200);
    list = cJSON_GetObjectItem(r, "blocks");
    ck_assert_int_eq(cJSON_GetArraySize(list), 1);
    ck_assert_str_eq(chat_json_str(cJSON_GetArrayItem(list, 0), "target"), c);
    cJSON_Delete(r);
}
END_TEST

/* ---- settings and stats (a fresh tenant each) ---- */

static int64_t sub_int(const cJSON *o, const char *group, const char *key)
{
    return chat_json_int(cJSON_GetObjectItem(o, group), key);
}

START_TEST(test_settings)
{
    char tenant[64], secret[64];
    chat_test_tenant_create(tenant, sizeof tenant, secret, sizeof secret);
    http_answer_t a = api_call_as(tenant, secret, "GET", "/settings", NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(a.body, "allowed_origins")), 0);
    ck_assert_int_eq(sub_int(a.body, "limits", "connections"), 10000);
    ck_assert_int_eq(sub_int(a.body, "limits", "members_per_room"), 1000);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(a.body, "push"), "enabled")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(a.body, "email"), "from")));
    cJSON_Delete(a.body);
    a = api_call_as(tenant, secret, "PATCH", "/settings",
                    "{\"limits\":{\"connections\":77},\"allowed_origins\":"
                    "[\"https://app.example.com\"],\"email\":{\"from\":\"chat@example.com\"}}");
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(sub_int(a.body, "limits", "connections"), 77);
    cJSON_Delete(a.body);
    a = api_call_as(tenant, secret, "PATCH", "/settings", "{\"push\":{\"enabled\":false}}");
    ck_assert_int_eq(a.status, 200);
    cJSON_Delete(a.body);
    a = api_call_as(tenant, secret, "GET", "/settings", NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(sub_int(a.body, "limits", "connections"), 77);
    ck_assert_int_eq(sub_int(a.body, "limits", "messages_per_s"), 1000);
    ck_assert_str_eq(
        cJSON_GetArrayItem(cJSON_GetObjectItem(a.body, "allowed_origins"), 0)->valuestring,
        "https://app.example.com");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(a.body, "push"), "enabled")));
    ck_assert_str_eq(chat_json_str(cJSON_GetObjectItem(a.body, "email"), "from"),
                     "chat@example.com");
    ck_assert_int_gt(chat_json_int(a.body, "updated"), 0);
    cJSON_Delete(a.body);
    static const struct {
        const char *patch, *field;
    } bad[] = {
        {"{\"limits\":{\"bogus\":1}}", "limits.bogus"},
        {"{\"limits\":{\"connections\":0}}", "limits.connections"},
        {"{\"allowed_origins\":[\"https://a.example/path\"]}", "allowed_origins[0]"},
        {"{\"email\":{\"from\":\"nobody\"}}", "email.from"},
        {"{\"theme\":\"dark\"}", "theme"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = api_call_as(tenant, secret, "PATCH", "/settings", bad[i].patch);
        ck_assert_msg(a.status == 400, "%s: %ld", bad[i].patch, a.status);
        ck_assert_msg(strstr(error_message(a.body), bad[i].field) != NULL, "%s: %s", bad[i].patch,
                      error_message(a.body));
        cJSON_Delete(a.body);
    }
    /* nothing of the refused patches got in */
    a = api_call_as(tenant, secret, "GET", "/settings", NULL);
    ck_assert_int_eq(sub_int(a.body, "limits", "connections"), 77);
    ck_assert_ptr_null(cJSON_GetObjectItem(a.body, "theme"));
    cJSON_Delete(a.body);
}
END_TEST

START_TEST(test_stats)
{
    char tenant[64], secret[64], room[64];
    chat_test_tenant_create(tenant, sizeof tenant, secret, sizeof secret);
    chat_test_unique(room, sizeof room, "statsroom");
    http_answer_t a = api_call_as(tenant, secret, "GET", "/stats", NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(chat_json_int(a.body, "connections"), 0);
    ck_assert_int_eq(chat_json_int(a.body, "messages_today"), 0);
    ck_assert_int_eq(chat_json_int(a.body, "rooms"), 0);
    cJSON_Delete(a.body);
    chat_tc_t *c = chat_tc_connect_user(0, tenant, secret, "stan", NULL);
    cJSON_Delete(chat_tc_join(c, room, -1));
    chat_tc_send(c, room, "s1", "one");
    chat_tc_send(c, room, "s2", "two");
    a = api_call_as(tenant, secret, "GET", "/stats", NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(chat_json_int(a.body, "connections"), 1);
    ck_assert_int_eq(chat_json_int(a.body, "messages_today"), 2);
    cJSON_Delete(a.body);
    chat_tc_close(c);
}
END_TEST

/* ---- exports ---- */

static void export_text(size_t i, char *buf, size_t len, void *ud)
{
    (void)ud;
    snprintf(buf, len, "line %zu \"quoted\"", i);
}

START_TEST(test_export_room)
{
    enum { N = 300 };
    char room[64], body[128], path[128];
    chat_test_unique(room, sizeof room, "exported");
    chat_tc_fill_room(0, room, N, 3, export_text, NULL, NULL);
    snprintf(body, sizeof body, "{\"room\":\"%s\"}", room);
    http_answer_t a = api_call("POST", "/exports", body);
    ck_assert_int_eq(a.status, 202);
    const char *id = chat_json_str(a.body, "id");
    ck_assert_ptr_nonnull(id);
    ck_assert_str_eq(chat_json_str(a.body, "state"), "queued");
    snprintf(path, sizeof path, "/exports/%s", id);
    ck_assert_str_eq(a.location + strlen("/v1"), path);
    cJSON *job = job_wait(path);
    ck_assert_msg(strcmp(chat_json_str(job, "state"), "done") == 0, "export failed: %s",
                  chat_json_str(job, "error"));
    const cJSON *progress = cJSON_GetObjectItem(job, "progress");
    ck_assert_int_eq(chat_json_int(progress, "done"), N);
    ck_assert_int_eq(chat_json_int(progress, "total"), N);
    char file[4096];
    snprintf(file, sizeof file, "%s/%s", chat_test_stack_get("CHAT_API_EXPORT_DIR"),
             chat_json_str(job, "path"));
    FILE *f = fopen(file, "r");
    ck_assert_msg(f != NULL, "no export file %s", file);
    char line[4096];
    int64_t n = 0;
    bool seen[N] = {false};
    while (fgets(line, sizeof line, f) != NULL) {
        ck_assert_msg(strchr(line, '\n') != NULL, "line %ld unterminated", (long)n);
        cJSON *m = cJSON_Parse(line);
        ck_assert_msg(m != NULL, "line %ld is not JSON: %s", (long)n, line);
        ck_assert_str_eq(chat_json_str(m, "room"), room);
        ck_assert_int_eq(chat_json_int(m, "seq"), n + 1); /* every seq, in order */
        /* the sender's three connections interleave: each text once, in any order */
        unsigned i = N;
        ck_assert_int_eq(sscanf(chat_json_str(m, "text"), "line %u", &i), 1);
        ck_assert_uint_lt(i, N);
        char want[64];
        export_text(i, want, sizeof want, NULL);
        ck_assert_str_eq(chat_json_str(m, "text"), want);
        ck_assert_msg(!seen[i], "text %u twice", i);
        seen[i] = true;
        ck_assert_int_eq((int)strlen(chat_json_str(m, "id")), 24);
        ck_assert_ptr_nonnull(chat_json_str(m, "from"));
        ck_assert_int_gt(chat_json_int(m, "ts"), 0);
        cJSON_Delete(m);
        n++;
    }
    fclose(f);
    ck_assert_int_eq(n, N);
    /* no partial file of the export is left beside it */
    char parts[4200];
    snprintf(parts, sizeof parts, "%s/%s/%s.*.part", chat_test_stack_get("CHAT_API_EXPORT_DIR"),
             chat_test_demo_tenant(), id);
    glob_t found;
    ck_assert_int_eq(glob(parts, 0, NULL, &found), GLOB_NOMATCH);
    globfree(&found);
    /* another tenant does not see it */
    char tenant[64], secret[64];
    chat_test_tenant_create(tenant, sizeof tenant, secret, sizeof secret);
    http_answer_t other = api_call_as(tenant, secret, "GET", path, NULL);
    ck_assert_int_eq(other.status, 404);
    cJSON_Delete(other.body);
    cJSON_Delete(job);
    cJSON_Delete(a.body);
    cJSON_Delete(api_expect("GET", "/exports/65f1aa00bb11cc22dd33ee44", NULL, 404));
    cJSON_Delete(api_expect("POST", "/exports", "{\"room\":\"not a room\"}", 400));
    cJSON_Delete(api_expect("POST", "/exports", "{\"from\":10,\"to\":5}", 400));
    cJSON_Delete(api_expect("POST", "/exports", "{\"rooms\":[]}", 400));
}
END_TEST

/* Every room of the tenant, more than one batch (1000) of messages: the lines run in (room,
 * seq) order without a repeat or a hole, the two rooms filled here in full, as many lines as
 * the job counted. */
START_TEST(test_export_tenant)
{
    enum { N = 600 };
    char a[64], b[64];
    chat_test_unique(a, sizeof a, "expall-a");
    chat_test_unique(b, sizeof b, "expall-b");
    chat_tc_fill_room(0, a, N, 4, export_text, NULL, NULL);
    chat_tc_fill_room(1, b, N, 4, export_text, NULL, NULL);
    http_answer_t created = api_call("POST", "/exports", "{}");
    ck_assert_int_eq(created.status, 202);
    char path[128];
    snprintf(path, sizeof path, "/exports/%s", chat_json_str(created.body, "id"));
    cJSON_Delete(created.body);
    cJSON *job = job_wait(path);
    ck_assert_msg(strcmp(chat_json_str(job, "state"), "done") == 0, "export failed: %s",
                  chat_json_str(job, "error"));
    int64_t done = chat_json_int(cJSON_GetObjectItem(job, "progress"), "done");
    ck_assert_int_gt(done, 2 * N);
    char file[4096];
    snprintf(file, sizeof file, "%s/%s", chat_test_stack_get("CHAT_API_EXPORT_DIR"),
             chat_json_str(job, "path"));
    cJSON_Delete(job);
    FILE *f = fopen(file, "r");
    ck_assert_msg(f != NULL, "no export file %s", file);
    /* other tests' messages are in there too, some of them long: lines of any length */
    char *line = NULL, prev_room[256] = "";
    size_t cap = 0;
    int64_t prev_seq = 0, lines = 0, in_a = 0, in_b = 0;
    while (getline(&line, &cap, f) > 0) {
        cJSON *m = cJSON_Parse(line);
        ck_assert_msg(m != NULL, "line %ld is not JSON", (long)lines);
        const char *room = chat_json_str(m, "room");
        int64_t seq = chat_json_int(m, "seq");
        int order = strcmp(room, prev_room);
        ck_assert_msg(order > 0 || (order == 0 && seq > prev_seq), "%s #%ld after %s #%ld", room,
                      (long)seq, prev_room, (long)prev_seq);
        if (strcmp(room, a) == 0)
            ck_assert_int_eq(seq, ++in_a);
        if (strcmp(room, b) == 0)
            ck_assert_int_eq(seq, ++in_b);
        snprintf(prev_room, sizeof prev_room, "%s", room);
        prev_seq = seq;
        cJSON_Delete(m);
        lines++;
    }
    free(line);
    fclose(f);
    ck_assert_int_eq(in_a, N);
    ck_assert_int_eq(in_b, N);
    ck_assert_int_eq(lines, done);
}
END_TEST

/* The runner takes over a job whose lease expired (its runner died) and runs it from the
 * start, and leaves alone one whose lease holds. The two are written as a dead and a live
 * runner would have left them. */
START_TEST(test_job_takeover)
{
    char room[64], dead[25], alive[25], path[128];
    chat_test_unique(room, sizeof room, "takeover");
    chat_tc_fill_room(0, room, 5, 1, export_text, NULL, NULL);
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    bson_oid_to_string(&oid, dead);
    bson_oid_init(&oid, NULL);
    bson_oid_to_string(&oid, alive);
    int64_t now = chat_clock_wall_ms();
    const char *tenant = chat_test_demo_tenant();
    bson_t *docs[2];
    docs[0] = BCON_NEW("_id", BCON_UTF8(dead), "tenant", BCON_UTF8(tenant), "kind", "export",
                       "state", "running", "params", "{", "room", BCON_UTF8(room), "}", "progress",
                       "{", "done", BCON_INT64(2), "total", BCON_INT64(5), "}", "created",
                       BCON_INT64(now - 60000), "updated", BCON_INT64(now - 40000), "owner",
                       "gone.0", "lease_until", BCON_INT64(now - 10000), "attempts", BCON_INT32(1));
    docs[1] = BCON_NEW("_id", BCON_UTF8(alive), "tenant", BCON_UTF8(tenant), "kind", "export",
                       "state", "running", "params", "{", "room", BCON_UTF8(room), "}", "progress",
                       "{", "done", BCON_INT64(2), "total", BCON_INT64(5), "}", "created",
                       BCON_INT64(now - 60000), "updated", BCON_INT64(now), "owner", "alive.0",
                       "lease_until", BCON_INT64(now + 600000), "attempts", BCON_INT32(1));
    chat_err_t results[2];
    ck_assert_int_eq(
        chat_store_insert_many(store, "jobs", (const bson_t *const *)docs, 2, true, results),
        CHAT_OK);
    snprintf(path, sizeof path, "/exports/%s", dead);
    cJSON *job = job_wait(path);
    ck_assert_msg(strcmp(chat_json_str(job, "state"), "done") == 0, "export failed: %s",
                  chat_json_str(job, "error"));
    ck_assert_int_eq(chat_json_int(cJSON_GetObjectItem(job, "progress"), "done"), 5);
    char file[4096], line[1024];
    snprintf(file, sizeof file, "%s/%s", chat_test_stack_get("CHAT_API_EXPORT_DIR"),
             chat_json_str(job, "path"));
    FILE *f = fopen(file, "r");
    ck_assert_msg(f != NULL, "no export file %s", file);
    int lines = 0;
    while (fgets(line, sizeof line, f) != NULL)
        lines++;
    fclose(f);
    ck_assert_int_eq(lines, 5);
    cJSON_Delete(job);
    /* the held one: untouched */
    snprintf(path, sizeof path, "/exports/%s", alive);
    job = api_expect("GET", path, NULL, 200);
    ck_assert_str_eq(chat_json_str(job, "state"), "running");
    ck_assert_int_eq(chat_json_int(cJSON_GetObjectItem(job, "progress"), "done"), 2);
    ck_assert_int_eq(chat_json_int(job, "updated"), now);
    cJSON_Delete(job);
    bson_t *held = BCON_NEW("_id", BCON_UTF8(alive), "owner", "alive.0");
    ck_assert_int_eq(mongo_count("jobs", held), 1);
    /* gone before the stack's runner would take it over */
    mongoc_client_t *client = chat_store_acquire(store);
    mongoc_collection_t *col = chat_store_collection(store, client, "jobs");
    ck_assert(mongoc_collection_delete_one(col, held, NULL, NULL, NULL));
    mongoc_collection_destroy(col);
    chat_store_release(store, client);
    bson_destroy(held);
    bson_destroy(docs[0]);
    bson_destroy(docs[1]);
}
END_TEST

/* ---- a user's rooms ---- */

START_TEST(test_user_rooms)
{
    char uma[48], vic[48], r1[64], r2[64], path[256];
    chat_test_unique(uma, sizeof uma, "uma");
    chat_test_unique(vic, sizeof vic, "vic");
    chat_test_unique(r1, sizeof r1, "listed1");
    chat_test_unique(r2, sizeof r2, "listed2");
    chat_tc_t *u = chat_tc_connect_demo(0, uma), *v = chat_tc_connect_demo(1, vic);
    cJSON_Delete(chat_tc_join(u, r1, -1));
    cJSON_Delete(chat_tc_join(u, r2, -1));
    int64_t first = chat_tc_send(v, r1, "a", "one");
    chat_tc_send(v, r1, "b", "two");
    chat_tc_send(v, r1, "c", "three");
    chat_tc_send(v, r2, "d", "four"); /* r2 is the most recent */
    chat_tc_send_frame(u, chat_client_frame_read(r1, first, NULL));
    bson_t *mark = BCON_NEW("tenant", BCON_UTF8(chat_test_demo_tenant()), "room", BCON_UTF8(r1),
                            "user", BCON_UTF8(uma), "seq", BCON_INT64(first));
    int64_t deadline = chat_clock_mono_ms() + 10000;
    while (mongo_count("reads", mark) == 0 && chat_clock_mono_ms() < deadline)
        usleep(100 * 1000);
    bson_destroy(mark);
    /* the gateway's rooms frame and the api's answer list the same rooms the same way */
    char *frame = chat_client_frame_rooms(50, NULL, "rl");
    cJSON *gw = chat_tc_request(u, frame, "rl", CHAT_TC_TIMEOUT_MS);
    free(frame);
    ck_assert_ptr_nonnull(gw);
    snprintf(path, sizeof path, "/users/%s/rooms", uma);
    cJSON *api = api_expect("GET", path, NULL, 200);
    cJSON *list = cJSON_GetObjectItem(api, "rooms");
    ck_assert_int_eq(cJSON_GetArraySize(list), 2);
    ck_assert(cJSON_Compare(list, cJSON_GetObjectItem(gw, "rooms"), true));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(api, "next")));
    const cJSON *top = cJSON_GetArrayItem(list, 0), *second = cJSON_GetArrayItem(list, 1);
    ck_assert_str_eq(chat_json_str(top, "room"), r2);
    ck_assert_int_eq(chat_json_int(top, "unread"), 1);
    ck_assert_str_eq(chat_json_str(second, "room"), r1);
    ck_assert_int_eq(chat_json_int(second, "read"), first);
    ck_assert_int_eq(chat_json_int(second, "unread"), 2);
    ck_assert_str_eq(chat_json_str(cJSON_GetObjectItem(second, "last"), "text"), "three");
    cJSON_Delete(gw);
    cJSON_Delete(api);
    /* pages of one */
    snprintf(path, sizeof path, "/users/%s/rooms?limit=1", uma);
    api = api_expect("GET", path, NULL, 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(api, "rooms")), 1);
    const char *next = chat_json_str(api, "next");
    ck_assert_ptr_nonnull(next);
    snprintf(path, sizeof path, "/users/%s/rooms?limit=1&cursor=%s", uma, next);
    cJSON_Delete(api);
    api = api_expect("GET", path, NULL, 200);
    list = cJSON_GetObjectItem(api, "rooms");
    ck_assert_int_eq(cJSON_GetArraySize(list), 1);
    ck_assert_str_eq(chat_json_str(cJSON_GetArrayItem(list, 0), "room"), r1);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(api, "next")));
    cJSON_Delete(api);
    snprintf(path, sizeof path, "/users/%s/rooms?cursor=bm90LWEtY3Vyc29y", uma);
    cJSON_Delete(api_expect("GET", path, NULL, 400));
    chat_tc_close(u);
    chat_tc_close(v);
}
END_TEST

/* ---- erasure ---- */

START_TEST(test_erase_user)
{
    char erin[48], olga[48], room[64], dm[128], priv[64], path[256], body[256];
    chat_test_unique(erin, sizeof erin, "erin");
    chat_test_unique(olga, sizeof olga, "olga");
    chat_test_unique(room, sizeof room, "erasepub");
    chat_test_unique(priv, sizeof priv, "erasepriv");
    if (strcmp(erin, olga) < 0)
        snprintf(dm, sizeof dm, "dm:%s:%s", erin, olga);
    else
        snprintf(dm, sizeof dm, "dm:%s:%s", olga, erin);
    const char *tenant = chat_test_demo_tenant();
    /* a private room with both as members */
    snprintf(body, sizeof body, "{\"room\":\"%s\",\"members\":[\"%s\",\"%s\"]}", priv, erin, olga);
    cJSON_Delete(api_expect("POST", "/rooms", body, 201));
    chat_tc_t *e = chat_tc_connect_demo(0, erin), *o = chat_tc_connect_demo(1, olga);
    cJSON_Delete(chat_tc_join(e, room, -1));
    cJSON_Delete(chat_tc_join(o, room, -1));
    cJSON_Delete(chat_tc_join(e, dm, -1));
    cJSON_Delete(chat_tc_join(e, priv, -1));
    char cid[32];
    int64_t last = 0;
    for (int i = 0; i < 5; i++) {
        snprintf(cid, sizeof cid, "e%d", i);
        chat_tc_send(e, room, cid, "erin's words");
    }
    for (int i = 0; i < 2; i++) {
        snprintf(cid, sizeof cid, "o%d", i);
        last = chat_tc_send(o, room, cid, "olga's words");
    }
    for (int i = 0; i < 3; i++) {
        snprintf(cid, sizeof cid, "d%d", i);
        chat_tc_send(e, dm, cid, "a private word");
    }
    chat_tc_send(e, priv, "p0", "in the private room");
    chat_tc_send_frame(e, chat_client_frame_read(room, last, "r1"));
    snprintf(path, sizeof path, "/users/%s/blocks", erin);
    snprintf(body, sizeof body, "{\"user\":\"%s\"}", olga);
    cJSON_Delete(api_expect("POST", path, body, 201));
    snprintf(path, sizeof path, "/users/%s/blocks", olga);
    snprintf(body, sizeof body, "{\"user\":\"%s\"}", erin);
    cJSON_Delete(api_expect("POST", path, body, 201));
    bson_t *mine = BCON_NEW("tenant", BCON_UTF8(tenant), "user", BCON_UTF8(erin));
    int64_t deadline = chat_clock_mono_ms() + 10000;
    while (mongo_count("reads", mine) == 0 && chat_clock_mono_ms() < deadline)
        usleep(100 * 1000);
    ck_assert_int_eq(mongo_count("reads", mine), 1);
    ck_assert_int_ge(mongo_count("user_rooms", mine), 2);

    snprintf(path, sizeof path, "/users/%s", erin);
    http_answer_t a = api_call("DELETE", path, NULL);
    ck_assert_int_eq(a.status, 202);
    const char *id = chat_json_str(a.body, "job");
    ck_assert_ptr_nonnull(id);
    ck_assert_str_eq(chat_json_str(a.body, "state"), "queued");
    snprintf(path, sizeof path, "/users/%s/erasure/%s", erin, id);
    ck_assert_str_eq(a.location + strlen("/v1"), path);
    cJSON *job = job_wait(path);
    ck_assert_msg(strcmp(chat_json_str(job, "state"), "done") == 0, "erasure failed: %s",
                  chat_json_str(job, "error"));
    ck_assert_str_eq(chat_json_str(job, "user"), erin);
    const cJSON *progress = cJSON_GetObjectItem(job, "progress");
    ck_assert_int_eq(chat_json_int(progress, "done"), chat_json_int(progress, "total"));
    cJSON_Delete(job);
    /* another user's path does not show it */
    snprintf(path, sizeof path, "/users/%s/erasure/%s", olga, id);
    cJSON_Delete(api_expect("GET", path, NULL, 404));
    cJSON_Delete(a.body);

    bson_t *erins = BCON_NEW("tenant", BCON_UTF8(tenant), "from", BCON_UTF8(erin));
    bson_t *erins_left = BCON_NEW("tenant", BCON_UTF8(tenant), "from", BCON_UTF8(erin), "deleted",
                                  "{", "$ne", BCON_BOOL(true), "}");
    bson_t *erins_text = BCON_NEW("tenant", BCON_UTF8(tenant), "from", BCON_UTF8(erin), "text", "{",
                                  "$exists", BCON_BOOL(true), "}");
    bson_t *olgas_left = BCON_NEW("tenant", BCON_UTF8(tenant), "from", BCON_UTF8(olga), "deleted",
                                  "{", "$ne", BCON_BOOL(true), "}");
    ck_assert_int_eq(mongo_count("messages", erins), 9);
    ck_assert_int_eq(mongo_count("messages", erins_left), 0);
    ck_assert_int_eq(mongo_count("messages", erins_text), 0);
    ck_assert_int_eq(mongo_count("messages", olgas_left), 2);
    ck_assert_int_eq(mongo_count("reads", mine), 0);
    ck_assert_int_eq(mongo_count("user_rooms", mine), 0);
    ck_assert_int_eq(mongo_count("members", mine), 0);
    bson_t *blocks = BCON_NEW("tenant", BCON_UTF8(tenant), "$or", "[", "{", "user", BCON_UTF8(erin),
                              "}", "{", "target", BCON_UTF8(erin), "}", "]");
    ck_assert_int_eq(mongo_count("blocks", blocks), 0);
    /* olga keeps her membership */
    bson_t *olgas =
        BCON_NEW("tenant", BCON_UTF8(tenant), "user", BCON_UTF8(olga), "room", BCON_UTF8(priv));
    ck_assert_int_eq(mongo_count("members", olgas), 1);
    bson_destroy(mine);
    bson_destroy(erins);
    bson_destroy(erins_left);
    bson_destroy(erins_text);
    bson_destroy(olgas_left);
    bson_destroy(blocks);
    bson_destroy(olgas);
    chat_tc_close(e);
    chat_tc_close(o);
    cJSON_Delete(api_expect("DELETE", "/users/system", NULL, 400));
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (chat_store_new(chat_test_stack_get("CHAT_MONGO_URI"), "it-176", &store) != CHAT_OK) {
        fprintf(stderr, "CHAT_MONGO_URI of the stack is not a MongoDB URI\n");
        return EXIT_FAILURE;
    }
    Suite *suite = suite_create("api_jobs");
    TCase *tc = tcase_create("api_jobs");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_blocks);
    tcase_add_test(tc, test_settings);
    tcase_add_test(tc, test_stats);
    tcase_add_test(tc, test_export_room);
    tcase_add_test(tc, test_export_tenant);
    tcase_add_test(tc, test_job_takeover);
    tcase_add_test(tc, test_user_rooms);
    tcase_add_test(tc, test_erase_user);
    suite_add_tcase(suite, tc);
    int rc = chat_test_suite_run(suite, false);
    chat_store_destroy(store);
    curl_global_cleanup();
    return rc;
}
