/* Unit tests of services/gateway/frames: the client frame validation table (every rule,
 * echo of rid/cid in errors, too_large vs bad_request), the proto/samples client frames
 * (ok-* accepted, bad-* refused), and the server frames the gateway builds, checked
 * against the field lists of proto/frames/server.*.schema.json. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/gateway/frames.h"
#include "tests/support/util.h"

#define MAX_TEXT 4000

typedef struct parse_case {
    const char *json;
    chat_err_t rc;
    gw_ctype_t type; /* expected type (also after a failure, if readable) */
    gw_code_t code;  /* on failure */
    const char *rid; /* expected echo (NULL: none) */
    const char *cid;
} parse_case_t;

#define OK(j, t)                                                                                   \
    {                                                                                              \
        j, CHAT_OK, t, 0, NULL, NULL                                                               \
    }
#define BAD(j, t, c, r, ci)                                                                        \
    {                                                                                              \
        j, CHAT_ERR_INVALID, t, c, r, ci                                                           \
    }

static const parse_case_t parse_cases[] = {
    OK("{\"type\":\"auth\",\"token\":\"a.b.c\"}", GW_C_AUTH),
    OK("{\"type\":\"ping\"}", GW_C_PING),
    OK(" {\"type\":\"ping\",\"rid\":\"r 1\"}\n ", GW_C_PING),
    OK("{\"type\":\"join\",\"room\":\"general\",\"since\":0}", GW_C_JOIN),
    OK("{\"type\":\"join\",\"room\":\"general\",\"since\":9007199254740991}", GW_C_JOIN),
    OK("{\"type\":\"join\",\"room\":\"general\",\"since\":5.0}", GW_C_JOIN),
    OK("{\"type\":\"leave\",\"room\":\"dm:a:b\"}", GW_C_LEAVE),
    OK("{\"type\":\"send\",\"room\":\"r\",\"cid\":\"c 1\",\"text\":\"h\\u00e9\"}", GW_C_SEND),
    /* an escaped backslash before the characters u0000 is no escaped NUL */
    OK("{\"type\":\"send\",\"room\":\"r\",\"cid\":\"c\",\"text\":\"C:\\\\u0000\"}", GW_C_SEND),
    OK("{\"type\":\"history\",\"room\":\"r\",\"rid\":\"h\",\"before\":5,\"limit\":100}",
       GW_C_HISTORY),
    OK("{\"type\":\"typing\",\"room\":\"r\"}", GW_C_TYPING),
    OK("{\"type\":\"read\",\"room\":\"r\",\"seq\":3}", GW_C_READ),
    OK("{\"type\":\"react\",\"room\":\"r\",\"id\":\"65f1c0ffee0123456789abcd\","
       "\"emoji\":\"x\",\"on\":false}",
       GW_C_REACT),
    OK("{\"type\":\"push_subscribe\",\"rid\":\"p\",\"endpoint\":\"https://push.example/a\","
       "\"keys\":{\"p256dh\":\"BAbc-_\",\"auth\":\"QUJD==\"}}",
       GW_C_PUSH_SUBSCRIBE),
    OK("{\"type\":\"push_unsubscribe\",\"rid\":\"p\",\"endpoint\":\"http://h:8/x?y=1\"}",
       GW_C_PUSH_UNSUBSCRIBE),
    OK("{\"type\":\"push_prefs\",\"rid\":\"p\",\"mode\":\"default\"}", GW_C_PUSH_PREFS),
    OK("{\"type\":\"push_prefs\",\"rid\":\"p\",\"room\":\"dm:a:b\",\"mode\":\"none\"}",
       GW_C_PUSH_PREFS),
    /* push frames: rid required (the answer is ok {rid}), keys exactly {p256dh, auth} */
    BAD("{\"type\":\"push_unsubscribe\",\"endpoint\":\"https://p.example/a\"}",
        GW_C_PUSH_UNSUBSCRIBE, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"push_subscribe\",\"rid\":\"p\",\"endpoint\":\"ftp://p.example/a\","
        "\"keys\":{\"p256dh\":\"BA\",\"auth\":\"QQ\"}}",
        GW_C_PUSH_SUBSCRIBE, GW_E_BAD_REQUEST, "p", NULL),
    BAD("{\"type\":\"push_subscribe\",\"rid\":\"p\",\"endpoint\":\"https://p.example/ a\","
        "\"keys\":{\"p256dh\":\"BA\",\"auth\":\"QQ\"}}",
        GW_C_PUSH_SUBSCRIBE, GW_E_BAD_REQUEST, "p", NULL),
    BAD("{\"type\":\"push_subscribe\",\"rid\":\"p\",\"endpoint\":\"https://p.example/a\","
        "\"keys\":{\"p256dh\":\"BA\"}}",
        GW_C_PUSH_SUBSCRIBE, GW_E_BAD_REQUEST, "p", NULL),
    BAD("{\"type\":\"push_subscribe\",\"rid\":\"p\",\"endpoint\":\"https://p.example/a\","
        "\"keys\":{\"p256dh\":\"BA\",\"auth\":\"QQ\",\"x\":\"QQ\"}}",
        GW_C_PUSH_SUBSCRIBE, GW_E_BAD_REQUEST, "p", NULL),
    BAD("{\"type\":\"push_subscribe\",\"rid\":\"p\",\"endpoint\":\"https://p.example/a\","
        "\"keys\":{\"p256dh\":\"B+A/\",\"auth\":\"QQ\"}}",
        GW_C_PUSH_SUBSCRIBE, GW_E_BAD_REQUEST, "p", NULL),
    BAD("{\"type\":\"push_subscribe\",\"rid\":\"p\",\"endpoint\":\"https://p.example/a\","
        "\"keys\":[\"BA\",\"QQ\"]}",
        GW_C_PUSH_SUBSCRIBE, GW_E_BAD_REQUEST, "p", NULL),
    BAD("{\"type\":\"push_prefs\",\"rid\":\"p\",\"mode\":\"loud\"}", GW_C_PUSH_PREFS,
        GW_E_BAD_REQUEST, "p", NULL),
    BAD("{\"type\":\"push_prefs\",\"rid\":\"p\",\"room\":\"*\",\"mode\":\"all\"}", GW_C_PUSH_PREFS,
        GW_E_BAD_REQUEST, "p", NULL),
    BAD("{\"type\":\"push_prefs\",\"rid\":\"p\"}", GW_C_PUSH_PREFS, GW_E_BAD_REQUEST, "p", NULL),
    /* refresh: rid and a non-empty token required, nothing else */
    OK("{\"type\":\"refresh\",\"rid\":\"t1\",\"token\":\"a.b.c\"}", GW_C_REFRESH),
    BAD("{\"type\":\"refresh\",\"token\":\"a.b.c\"}", GW_C_REFRESH, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"refresh\",\"rid\":\"t1\"}", GW_C_REFRESH, GW_E_BAD_REQUEST, "t1", NULL),
    BAD("{\"type\":\"refresh\",\"rid\":\"t1\",\"token\":\"\"}", GW_C_REFRESH, GW_E_BAD_REQUEST,
        "t1", NULL),
    BAD("{\"type\":\"refresh\",\"rid\":\"t1\",\"token\":[\"a.b.c\"]}", GW_C_REFRESH,
        GW_E_BAD_REQUEST, "t1", NULL),
    BAD("{\"type\":\"refresh\",\"rid\":\"t1\",\"token\":\"a.b.c\",\"user\":\"bob\"}", GW_C_REFRESH,
        GW_E_BAD_REQUEST, "t1", NULL),
    /* structure */
    BAD("", GW_C_INVALID, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("not json", GW_C_INVALID, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("[]", GW_C_INVALID, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("\"ping\"", GW_C_INVALID, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"ping\"}{}", GW_C_INVALID, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"rid\":\"r\"}", GW_C_INVALID, GW_E_BAD_REQUEST, "r", NULL),
    BAD("{\"type\":1,\"rid\":\"r\"}", GW_C_INVALID, GW_E_BAD_REQUEST, "r", NULL),
    BAD("{\"type\":\"bogus\",\"rid\":\"r\",\"cid\":\"c\"}", GW_C_INVALID, GW_E_BAD_REQUEST, "r",
        "c"),
    BAD("{\"type\":\"ping\",\"x\":1}", GW_C_PING, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"ping\",\"rid\":\"a\",\"rid\":\"b\"}", GW_C_PING, GW_E_BAD_REQUEST, "a", NULL),
    BAD("{\"type\":\"join\",\"room\":\"a\",\"cid\":\"c\"}", GW_C_JOIN, GW_E_BAD_REQUEST, NULL, "c"),
    /* fields */
    BAD("{\"type\":\"auth\"}", GW_C_AUTH, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"auth\",\"token\":\"\"}", GW_C_AUTH, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"auth\",\"token\":5}", GW_C_AUTH, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"join\",\"rid\":\"j\"}", GW_C_JOIN, GW_E_BAD_REQUEST, "j", NULL),
    BAD("{\"type\":\"join\",\"room\":\"a b\"}", GW_C_JOIN, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"join\",\"room\":\"a/b\"}", GW_C_JOIN, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"join\",\"room\":\"\"}", GW_C_JOIN, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"join\",\"room\":\"a\",\"since\":-1}", GW_C_JOIN, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"join\",\"room\":\"a\",\"since\":1.5}", GW_C_JOIN, GW_E_BAD_REQUEST, NULL,
        NULL),
    BAD("{\"type\":\"join\",\"room\":\"a\",\"since\":\"1\"}", GW_C_JOIN, GW_E_BAD_REQUEST, NULL,
        NULL),
    BAD("{\"type\":\"join\",\"room\":\"a\",\"since\":9007199254740992}", GW_C_JOIN,
        GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"send\",\"room\":\"r\",\"cid\":\"c\"}", GW_C_SEND, GW_E_BAD_REQUEST, NULL, "c"),
    BAD("{\"type\":\"send\",\"room\":\"r\",\"cid\":\"c\",\"text\":\"\"}", GW_C_SEND,
        GW_E_BAD_REQUEST, NULL, "c"),
    BAD("{\"type\":\"send\",\"room\":\"r\",\"cid\":\"c\",\"text\":7}", GW_C_SEND, GW_E_BAD_REQUEST,
        NULL, "c"),
    BAD("{\"type\":\"send\",\"room\":\"r\",\"cid\":\"\\u00e9\",\"text\":\"t\"}", GW_C_SEND,
        GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"send\",\"room\":\"r\",\"cid\":\"c\",\"text\":\"a\\u0000b\"}", GW_C_SEND,
        GW_E_BAD_REQUEST, NULL, "c"),
    BAD("{\"type\":\"send\",\"room\":\"r\",\"cid\":\"c\",\"text\":\"C:\\\\\\u0000\"}", GW_C_SEND,
        GW_E_BAD_REQUEST, NULL, "c"),
    BAD("{\"type\":\"history\",\"room\":\"r\"}", GW_C_HISTORY, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"history\",\"room\":\"r\",\"rid\":\"h\",\"limit\":0}", GW_C_HISTORY,
        GW_E_BAD_REQUEST, "h", NULL),
    BAD("{\"type\":\"history\",\"room\":\"r\",\"rid\":\"h\",\"limit\":101}", GW_C_HISTORY,
        GW_E_BAD_REQUEST, "h", NULL),
    BAD("{\"type\":\"history\",\"room\":\"r\",\"rid\":\"h\",\"before\":0}", GW_C_HISTORY,
        GW_E_BAD_REQUEST, "h", NULL),
    BAD("{\"type\":\"ping\",\"rid\":7}", GW_C_PING, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"ping\",\"rid\":\"\"}", GW_C_PING, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"react\",\"room\":\"r\",\"id\":\"65F1C0FFEE0123456789ABCD\","
        "\"emoji\":\"x\",\"on\":true}",
        GW_C_REACT, GW_E_BAD_REQUEST, NULL, NULL),
    BAD("{\"type\":\"react\",\"room\":\"r\",\"id\":\"65f1c0ffee0123456789abcd\","
        "\"emoji\":\"x\",\"on\":1}",
        GW_C_REACT, GW_E_BAD_REQUEST, NULL, NULL),
};

START_TEST(test_parse_table)
{
    const parse_case_t *c = &parse_cases[_i];
    gw_cframe_t f;
    gw_cframe_error_t err;
    chat_err_t rc = gw_cframe_parse(c->json, strlen(c->json), MAX_TEXT, &f, &err);
    ck_assert_msg(rc == c->rc, "%s: rc %d, expected %d (%s)", c->json, rc, c->rc,
                  rc != CHAT_OK ? err.message : "");
    ck_assert_msg(f.type == c->type, "%s: type %s", c->json, gw_ctype_name(f.type));
    if (rc != CHAT_OK) {
        ck_assert_msg(err.code == c->code, "%s: code %s", c->json, gw_code_name(err.code));
        ck_assert_msg(err.message[0] != '\0', "%s: empty message", c->json);
        if (c->rid != NULL)
            ck_assert_str_eq(f.rid, c->rid);
        else
            ck_assert_msg(f.rid == NULL, "%s: rid %s echoed", c->json, f.rid);
        if (c->cid != NULL)
            ck_assert_str_eq(f.cid, c->cid);
        else
            ck_assert_msg(f.cid == NULL, "%s: cid %s echoed", c->json, f.cid);
    }
    gw_cframe_clear(&f);
}
END_TEST

START_TEST(test_parse_values)
{
    const char *j = "{\"type\":\"history\",\"room\":\"general\",\"rid\":\"h-1\",\"before\":120,"
                    "\"limit\":7}";
    gw_cframe_t f;
    gw_cframe_error_t err;
    ck_assert_int_eq(gw_cframe_parse(j, strlen(j), MAX_TEXT, &f, &err), CHAT_OK);
    ck_assert_str_eq(f.room, "general");
    ck_assert_str_eq(f.rid, "h-1");
    ck_assert(f.has_before && f.has_limit && !f.has_since);
    ck_assert_int_eq(f.before, 120);
    ck_assert_int_eq(f.limit, 7);
    gw_cframe_clear(&f);

    j = "{\"type\":\"join\",\"room\":\"r\",\"since\":0}";
    ck_assert_int_eq(gw_cframe_parse(j, strlen(j), MAX_TEXT, &f, &err), CHAT_OK);
    ck_assert(f.has_since);
    ck_assert_int_eq(f.since, 0);
    gw_cframe_clear(&f);

    j = "{\"keys\":{\"auth\":\"QUJD\",\"p256dh\":\"BAbc\"},\"type\":\"push_subscribe\","
        "\"endpoint\":\"https://push.example/x\",\"rid\":\"s\"}";
    ck_assert_int_eq(gw_cframe_parse(j, strlen(j), MAX_TEXT, &f, &err), CHAT_OK);
    ck_assert_str_eq(f.endpoint, "https://push.example/x");
    ck_assert_str_eq(f.p256dh, "BAbc");
    ck_assert_str_eq(f.auth, "QUJD");
    gw_cframe_clear(&f);

    j = "{\"type\":\"push_prefs\",\"rid\":\"s\",\"mode\":\"mentions\"}";
    ck_assert_int_eq(gw_cframe_parse(j, strlen(j), MAX_TEXT, &f, &err), CHAT_OK);
    ck_assert_str_eq(f.mode, "mentions");
    ck_assert_ptr_null(f.room);
    gw_cframe_clear(&f);

    /* an endpoint of 2048 characters is accepted, 2049 are not */
    char big[2300];
    for (size_t n = 2048; n <= 2049; n++) {
        int len = snprintf(big, sizeof big,
                           "{\"type\":\"push_unsubscribe\",\"rid\":\"u\",\"endpoint\":\"https://");
        memset(big + len, 'a', n - 8);
        snprintf(big + len + n - 8, sizeof big - (size_t)len - (n - 8), "\"}");
        chat_err_t rc = gw_cframe_parse(big, strlen(big), MAX_TEXT, &f, &err);
        ck_assert_int_eq(rc, n == 2048 ? CHAT_OK : CHAT_ERR_INVALID);
        gw_cframe_clear(&f);
    }
}
END_TEST

/* {"type":"send","room":"r","cid":"c","text":"<n x unit>"} */
static char *send_with_text(const char *unit, size_t n)
{
    size_t ulen = strlen(unit);
    char *buf = malloc(64 + ulen * n);
    ck_assert_ptr_nonnull(buf);
    char *p = buf + sprintf(buf, "{\"type\":\"send\",\"room\":\"r\",\"cid\":\"c\",\"text\":\"");
    for (size_t i = 0; i < n; i++, p += ulen)
        memcpy(p, unit, ulen);
    strcpy(p, "\"}");
    return buf;
}

START_TEST(test_text_limit_counts_characters)
{
    /* 4000 two-byte and four-byte characters are within the limit; 4001 are too_large. */
    static const char *const units[] = {"a", "\xc3\xa9", "\xf0\x9f\x98\x80"};
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        for (size_t n = MAX_TEXT; n <= MAX_TEXT + 1; n++) {
            char *j = send_with_text(units[u], n);
            gw_cframe_t f;
            gw_cframe_error_t err;
            chat_err_t rc = gw_cframe_parse(j, strlen(j), MAX_TEXT, &f, &err);
            if (n == MAX_TEXT) {
                ck_assert_int_eq(rc, CHAT_OK);
            } else {
                ck_assert_int_eq(rc, CHAT_ERR_INVALID);
                ck_assert_int_eq(err.code, GW_E_TOO_LARGE);
                ck_assert_str_eq(f.cid, "c");
            }
            gw_cframe_clear(&f);
            free(j);
        }
    }
}
END_TEST

START_TEST(test_invalid_utf8_is_bad_request)
{
    static const char *const frames[] = {
        "{\"type\":\"ping\",\"rid\":\"\xff\"}",
        "{\"type\":\"send\",\"room\":\"r\",\"cid\":\"c\",\"text\":\"\xc0\xaf\"}",
        "{\"type\":\"send\",\"room\":\"r\",\"cid\":\"c\",\"text\":\"\xed\xa0\x80\"}",
    };
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
        gw_cframe_t f;
        gw_cframe_error_t err;
        ck_assert_int_eq(gw_cframe_parse(frames[i], strlen(frames[i]), MAX_TEXT, &f, &err),
                         CHAT_ERR_INVALID);
        ck_assert_int_eq(err.code, GW_E_BAD_REQUEST);
        gw_cframe_clear(&f);
    }
}
END_TEST

/* ---- proto samples ---- */

static char *file_read(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static const char *source_dir(void)
{
    const char *dir = getenv("CHAT_SOURCE_DIR");
    return dir != NULL ? dir : ".";
}

START_TEST(test_proto_client_samples)
{
    char dirpath[512];
    snprintf(dirpath, sizeof dirpath, "%s/proto/samples", source_dir());
    DIR *d = opendir(dirpath);
    ck_assert_msg(d != NULL, "no %s (set CHAT_SOURCE_DIR)", dirpath);
    int checked = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "client.", 7) != 0)
            continue;
        char path[1024], type[32];
        snprintf(path, sizeof path, "%s/%s", dirpath, e->d_name);
        const char *dot = strchr(e->d_name + 7, '.');
        ck_assert_ptr_nonnull(dot);
        snprintf(type, sizeof type, "%.*s", (int)(dot - (e->d_name + 7)), e->d_name + 7);
        bool ok = strncmp(dot + 1, "ok-", 3) == 0;
        size_t len;
        char *json = file_read(path, &len);
        gw_cframe_t f;
        gw_cframe_error_t err;
        chat_err_t rc = gw_cframe_parse(json, len, MAX_TEXT, &f, &err);
        ck_assert_msg((rc == CHAT_OK) == ok, "%s: %s", e->d_name,
                      rc == CHAT_OK ? "accepted" : err.message);
        if (ok)
            ck_assert_str_eq(gw_ctype_name(f.type), type);
        gw_cframe_clear(&f);
        free(json);
        checked++;
    }
    closedir(d);
    ck_assert_int_gt(checked, 40);
}
END_TEST

/* ---- server frames against their schemas ---- */

static cJSON *schema_load(const char *type)
{
    char path[512];
    snprintf(path, sizeof path, "%s/proto/frames/server.%s.schema.json", source_dir(), type);
    size_t len;
    char *text = file_read(path, &len);
    cJSON *schema = cJSON_Parse(text);
    free(text);
    ck_assert_ptr_nonnull(schema);
    return schema;
}

/* Parses the buffer and checks it has exactly fields of the schema: every key listed in
 * properties, every required key present, "type" equal to type. Returns the object. */
static cJSON *frame_check(gw_buf_t *b, const char *type)
{
    ck_assert_ptr_nonnull(b);
    cJSON *obj = cJSON_ParseWithLength((const char *)gw_buf_payload(b), b->len);
    gw_buf_unref(b);
    ck_assert_ptr_nonnull(obj);
    cJSON *schema = schema_load(type);
    const cJSON *props = cJSON_GetObjectItem(schema, "properties");
    const cJSON *req = cJSON_GetObjectItem(schema, "required");
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) ck_assert_msg(cJSON_GetObjectItem(props, it->string) != NULL,
                                              "%s: unexpected %s", type, it->string);
    cJSON_ArrayForEach(it, req) ck_assert_msg(cJSON_GetObjectItem(obj, it->valuestring) != NULL,
                                              "%s: missing %s", type, it->valuestring);
    ck_assert_str_eq(cJSON_GetObjectItem(obj, "type")->valuestring, type);
    cJSON_Delete(schema);
    return obj;
}

START_TEST(test_server_frames)
{
    cJSON *o = frame_check(
        gw_frame_welcome("Zo\xc3\xab", "acme", "0.ab.1", NULL, 2000000000, "a-1"), "welcome");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "user")->valuestring, "Zo\xc3\xab");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "session")->valuestring, "0.ab.1");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "rid")->valuestring, "a-1");
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "vapid"));
    ck_assert_double_eq(cJSON_GetObjectItem(o, "exp")->valuedouble, 2000000000.0);
    cJSON_Delete(o);
    o = frame_check(gw_frame_welcome("u", "acme", "0.ab.1", "BPk", 1, NULL), "welcome");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "vapid")->valuestring, "BPk");
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "rid"));
    cJSON_Delete(o);
    o = frame_check(gw_frame_ok("p-1"), "ok");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "rid")->valuestring, "p-1");
    cJSON_Delete(o);

    const char *online[] = {"alice", "bob"};
    o = frame_check(gw_frame_joined("general", 9007199254740991LL, 7, false, 3, 9007199254740988LL,
                                    online, 2, NULL),
                    "joined");
    ck_assert(cJSON_GetObjectItem(o, "rid") == NULL);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "useq")->valueint, 7);
    ck_assert(cJSON_GetObjectItem(o, "stale") == NULL);
    ck_assert_double_eq(cJSON_GetObjectItem(o, "seq")->valuedouble, 9007199254740991.0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "online")), 2);
    ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "online"), 1)->valuestring, "bob");
    cJSON_Delete(o);

    o = frame_check(gw_frame_joined("general", 0, 0, true, 0, 0, NULL, 0, "j"), "joined");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "stale")));
    ck_assert(cJSON_IsArray(cJSON_GetObjectItem(o, "online")));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "online")), 0);
    cJSON_Delete(o);

    cJSON_Delete(frame_check(gw_frame_left("general", "l", NULL), "left"));
    cJSON *ended = frame_check(gw_frame_left("team", NULL, "removed"), "left");
    ck_assert_str_eq(cJSON_GetObjectItem(ended, "reason")->valuestring, "removed");
    ck_assert_ptr_null(cJSON_GetObjectItem(ended, "rid"));
    cJSON_Delete(ended);
    cJSON_Delete(frame_check(gw_frame_pong(NULL), "pong"));

    o = frame_check(gw_frame_error(GW_E_RATE_LIMITED, "slow down", "r", "c"), "error");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "code")->valuestring, "rate_limited");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "cid")->valuestring, "c");
    cJSON_Delete(o);
    o = frame_check(gw_frame_error(GW_E_INTERNAL, "", NULL, NULL), "error");
    ck_assert(strlen(cJSON_GetObjectItem(o, "message")->valuestring) > 0);
    cJSON_Delete(o);

    cJSON *msgs = cJSON_CreateArray();
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "type", "msg");
    cJSON_AddItemToArray(msgs, m);
    o = frame_check(gw_frame_history("general", "h-1", msgs, true), "history");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "more")));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "msgs")), 1);
    cJSON_Delete(o);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(gw_code_name(GW_E_TOO_LARGE), "too_large");
    ck_assert_str_eq(gw_code_name(GW_E_UNAUTHORIZED), "unauthorized");
    ck_assert_str_eq(gw_ctype_name(GW_C_HISTORY), "history");
    ck_assert_str_eq(gw_ctype_name(GW_C_INVALID), "invalid");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_frames");
    TCase *tc = tcase_create("frames");
    tcase_add_loop_test(tc, test_parse_table, 0, (int)(sizeof parse_cases / sizeof parse_cases[0]));
    tcase_add_test(tc, test_parse_values);
    tcase_add_test(tc, test_text_limit_counts_characters);
    tcase_add_test(tc, test_invalid_utf8_is_bad_request);
    tcase_add_test(tc, test_proto_client_samples);
    tcase_add_test(tc, test_server_frames);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
