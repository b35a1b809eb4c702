/* Integration-test support for the message path: test clients over tools/client with a
 * queue of frames not yet waited for, plus the stack's gateways, tenants and the kill and
 * restart of its services for the fault tests. */
#include "tests/support/chat.h"

#include <check.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "common/array.h"
#include "common/clock.h"
#include "tests/support/spawn.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"
#include "tools/client/chat_token.h"
#include "tools/client/client_frames.h"

#define MAX_GATEWAYS 16

struct chat_tc {
    chat_ws_t *ws;
    cJSON **queue; /* frames received and not yet waited for, in arrival order */
    size_t qlen, qcap;
    char **ignored;
    size_t nignored;
    char user[256];
    char tenant[128];
    char session[128];
    bool closed;
    int close_code;
    char close_reason[128];
    unsigned long next_rid;
    double rate;          /* frames per second; 0: unpaced */
    int64_t last_send_us; /* monotonic time of the last frame sent */
};

/* ---- the stack ---- */

static struct {
    pthread_once_t once;
    char *urls[MAX_GATEWAYS];
    size_t nurls;
} stack_info = {.once = PTHREAD_ONCE_INIT};

static void stack_init(void)
{
    chat_test_stack_load();
    const char *list = getenv("CHAT_GATEWAY_URLS");
    for (const char *p = list ? list : ""; *p != '\0' && stack_info.nurls < MAX_GATEWAYS;) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, " ,");
        if (n > 0)
            stack_info.urls[stack_info.nurls++] = strndup(p, n);
        p += n;
    }
}

static void stack_ensure(void)
{
    pthread_once(&stack_info.once, stack_init);
}

size_t chat_test_gateway_count(void)
{
    stack_ensure();
    ck_assert_msg(stack_info.nurls > 0, "CHAT_GATEWAY_URLS is empty: the stack runs no gateway");
    return stack_info.nurls;
}

const char *chat_test_gateway_url(size_t i)
{
    ck_assert_msg(i < chat_test_gateway_count(), "the stack has %zu gateway(s), not %zu",
                  stack_info.nurls, i + 1);
    return stack_info.urls[i];
}

const char *chat_test_demo_tenant(void)
{
    stack_ensure();
    return chat_test_stack_get("CHAT_DEMO_TENANT");
}

const char *chat_test_demo_secret(void)
{
    stack_ensure();
    return chat_test_stack_get("CHAT_DEMO_SECRET");
}

int chat_test_run(const char *const argv[])
{
    stack_ensure(); /* the child gets the stack's variables */
    pid_t pid = chat_test_spawn(argv, NULL, CHAT_TEST_SPAWN_INHERIT, CHAT_TEST_SPAWN_INHERIT);
    int status = chat_test_spawn_wait(pid, -1);
    if (status < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void chat_test_tenant_create(char *id, size_t id_len, char *secret, size_t secret_len)
{
    unsigned char raw[16];
    ck_assert_int_eq(RAND_bytes(raw, sizeof raw), 1);
    ck_assert_uint_ge(secret_len, 2 * sizeof raw + 1);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(secret + 2 * i, 3, "%02x", raw[i]);
    chat_test_unique(id, id_len, "tenant");
    char admin[4096];
    stack_ensure();
    snprintf(admin, sizeof admin, "%s/tools/chat-admin/chat-admin",
             chat_test_stack_get("CHAT_BUILD_DIR"));
    const char *const argv[] = {admin, "tenant", "put", id, secret, NULL};
    int rc = chat_test_run(argv);
    ck_assert_msg(rc == 0, "chat-admin tenant put %s failed (exit %d)", id, rc);
}

/* ---- faults ---- */

/* True while pid exists and is not a zombie. */
static bool process_alive(int pid)
{
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *paren = strrchr(stat, ')');
    return paren != NULL && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

/* Pid read from the pid file at path; -1 if there is none. */
static int pid_file_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    int pid = -1;
    if (fscanf(f, "%d", &pid) != 1 || pid <= 0)
        pid = -1;
    fclose(f);
    return pid;
}

int chat_test_service_pid(const char *part)
{
    stack_ensure();
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.pid", chat_test_stack_get("CHAT_STACK_PIDS"), part);
    int pid = pid_file_read(path);
    return pid > 0 && process_alive(pid) ? pid : -1;
}

/* Waits up to 10 s until no service of the stack is a zombie. A service killed by a test is
 * one until PID 1 reaps it (seconds in some containers), and scripts/up, which tells a
 * running service by kill -0, would take it for running and not start it again. */
static void stack_wait_reaped(void)
{
    const char *dir = chat_test_stack_get("CHAT_STACK_PIDS");
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    int64_t deadline = chat_clock_mono_ms() + 10000;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".pid") != 0)
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int pid = pid_file_read(path);
        while (pid > 0 && kill(pid, 0) == 0 && !process_alive(pid) &&
               chat_clock_mono_ms() < deadline)
            chat_clock_sleep_ms(50);
    }
    closedir(d);
}

void chat_test_service_kill9(const char *part)
{
    int pid = chat_test_service_pid(part);
    ck_assert_msg(pid > 0, "service %s does not run", part);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    for (int i = 0; i < 1000 && process_alive(pid); i++)
        chat_clock_sleep_ms(10);
    ck_assert_msg(!process_alive(pid), "service %s (pid %d) survived kill -9", part, pid);
}

void chat_test_stack_up(void)
{
    stack_ensure();
    stack_wait_reaped();
    char up[4096];
    snprintf(up, sizeof up, "%s/scripts/up", chat_test_stack_get("CHAT_SOURCE_DIR"));
    const char *const argv[] = {up,
                                "--state-dir",
                                chat_test_stack_get("CHAT_STACK_DIR"),
                                "--build-dir",
                                chat_test_stack_get("CHAT_BUILD_DIR"),
                                "--no-build",
                                NULL};
    int rc = chat_test_run(argv);
    ck_assert_msg(rc == 0, "scripts/up failed (exit %d)", rc);
}

/* One GET of /readyz; true on status 200. */
static bool readyz_once(int port)
{
    chat_test_http_reply_t r;
    if (!chat_test_http_request(port, "GET", "/readyz", 2000, &r))
        return false;
    bool ready = r.status == 200;
    chat_test_http_reply_free(&r);
    return ready;
}

bool chat_test_wait_ready(int port, int timeout_ms)
{
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    do {
        if (readyz_once(port))
            return true;
        chat_clock_sleep_ms(100);
    } while (chat_clock_mono_ms() < deadline);
    return false;
}

/* Port of the n-th (0-based) http://host:port URL of the comma-separated list in
 * variable var, or -1 if there is no such entry. */
static int url_list_port(const char *var, size_t n)
{
    const char *p = getenv(var);
    for (size_t i = 0; p != NULL && *p != '\0'; i++) {
        size_t len = strcspn(p, ",");
        if (i == n) {
            char url[256];
            snprintf(url, sizeof url, "%.*s", (int)len, p);
            const char *colon = strrchr(url, ':');
            return colon != NULL && colon[1] >= '0' && colon[1] <= '9' ? atoi(colon + 1) : -1;
        }
        p += len + (p[len] == ',');
    }
    return -1;
}

/* The ops port of entry n of the URL list var of stack.env; fails the test if there is none. */
static int ops_port(const char *var, size_t n)
{
    stack_ensure();
    int port = url_list_port(var, n);
    ck_assert_msg(port > 0, "stack.env has no entry %zu in %s (%s)", n, var,
                  getenv(var) != NULL ? getenv(var) : "unset");
    return port;
}

int chat_test_ops_port_message(void)
{
    return ops_port("CHAT_OPS_MESSAGE", 0);
}

int chat_test_ops_port_broadcast(void)
{
    return ops_port("CHAT_OPS_BROADCAST", 0);
}

int chat_test_ops_port_gateway(size_t i)
{
    return ops_port("CHAT_OPS_GATEWAYS", i);
}

/* ---- tokens ---- */

char *chat_test_token(const char *tenant, const char *secret, const char *user, const char *rooms,
                      int64_t ttl_s)
{
    chat_token_spec_t spec = {
        .tenant = tenant, .secret = secret, .user = user, .rooms = rooms, .ttl_s = ttl_s};
    char *tok = NULL;
    chat_err_t rc = chat_token_mint(&spec, &tok);
    ck_assert_msg(rc == CHAT_OK, "minting a token for %s/%s: %s", tenant, user, chat_err_str(rc));
    return tok;
}

/* ---- JSON access ---- */

int64_t chat_json_int(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

const char *chat_json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool chat_json_is(const cJSON *o, const char *type)
{
    const char *t = chat_json_str(o, "type");
    return t != NULL && strcmp(t, type) == 0;
}

/* ---- test clients: receiving ---- */

/* A condition on frames. */
typedef bool (*frame_match_fn)(const cJSON *f, const void *ctx);

typedef struct field_match {
    const char *type, *key, *value;
} field_match_t;

static bool match_fields(const cJSON *f, const void *ctx)
{
    const field_match_t *m = ctx;
    if (m->type != NULL && !chat_json_is(f, m->type))
        return false;
    if (m->key == NULL)
        return true;
    const char *v = chat_json_str(f, m->key);
    return v != NULL && strcmp(v, m->value) == 0;
}

static bool is_ignored(const chat_tc_t *c, const cJSON *f)
{
    for (size_t i = 0; i < c->nignored; i++) {
        if (chat_json_is(f, c->ignored[i]))
            return true;
    }
    return false;
}

static void queue_push(chat_tc_t *c, cJSON *f)
{
    cJSON **nq = chat_array_grow(c->queue, &c->qcap, c->qlen + 1, sizeof *nq);
    ck_assert_ptr_nonnull(nq);
    c->queue = nq;
    c->queue[c->qlen++] = f;
}

static cJSON *queue_take(chat_tc_t *c, size_t i)
{
    cJSON *f = c->queue[i];
    memmove(c->queue + i, c->queue + i + 1, (c->qlen - i - 1) * sizeof *c->queue);
    c->qlen--;
    return f;
}

/* Receives the next frame not ignored before deadline; NULL on timeout or close. */
static cJSON *receive_frame(chat_tc_t *c, int64_t deadline)
{
    while (!c->closed) {
        chat_ws_msg_t m;
        chat_err_t rc = chat_ws_recv(c->ws, chat_clock_remaining_ms(deadline), &m);
        if (rc == CHAT_ERR_TIMEOUT)
            return NULL;
        ck_assert_msg(rc == CHAT_OK, "%s: receive failed: %s (%s)", c->user, chat_err_str(rc),
                      chat_ws_last_error(c->ws));
        if (m.opcode == CHAT_WS_OP_CLOSE) {
            c->closed = true;
            c->close_code = m.close_code;
            snprintf(c->close_reason, sizeof c->close_reason, "%s", m.data);
            chat_ws_msg_clear(&m);
            return NULL;
        }
        cJSON *f = cJSON_ParseWithLength(m.data, m.len);
        ck_assert_msg(cJSON_IsObject(f) && chat_json_str(f, "type") != NULL,
                      "%s: a server frame that is not a JSON object with a type: %s", c->user,
                      m.data);
        chat_ws_msg_clear(&m);
        if (!is_ignored(c, f))
            return f;
        cJSON_Delete(f);
    }
    return NULL;
}

/* The first queued or arriving frame that fn accepts, within timeout_ms. */
static cJSON *wait_match(chat_tc_t *c, frame_match_fn fn, const void *ctx, int timeout_ms)
{
    for (size_t i = 0; i < c->qlen; i++) {
        if (fn(c->queue[i], ctx))
            return queue_take(c, i);
    }
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    cJSON *f;
    while ((f = receive_frame(c, deadline)) != NULL) {
        if (fn(f, ctx))
            return f;
        queue_push(c, f);
    }
    return NULL;
}

cJSON *chat_tc_wait_for(chat_tc_t *c, const char *type, const char *key, const char *value,
                        int timeout_ms)
{
    field_match_t m = {type, key, value};
    return wait_match(c, match_fields, &m, timeout_ms);
}

cJSON *chat_tc_wait(chat_tc_t *c, const char *type, int timeout_ms)
{
    return chat_tc_wait_for(c, type, NULL, NULL, timeout_ms);
}

/* Describes the queue for failure messages: the types of the first frames. */
static const char *queue_summary(const chat_tc_t *c, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < c->qlen && i < 8 && off < len; i++) {
        char *s = cJSON_PrintUnformatted(c->queue[i]);
        int n = snprintf(buf + off, len - off, "%s%.120s", i ? " | " : "", s ? s : "?");
        free(s);
        off += n > 0 ? (size_t)n : 0;
    }
    return buf;
}

cJSON *chat_tc_expect(chat_tc_t *c, const char *type, int timeout_ms)
{
    cJSON *f = chat_tc_wait(c, type, timeout_ms);
    char q[1200];
    ck_assert_msg(f != NULL, "%s: no %s frame within %d ms (closed %d, code %d %s; queued: %s)",
                  c->user, type, timeout_ms, c->closed, c->close_code, c->close_reason,
                  queue_summary(c, q, sizeof q));
    return f;
}

size_t chat_tc_queued(const chat_tc_t *c, const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < c->qlen; i++)
        n += type == NULL || chat_json_is(c->queue[i], type);
    return n;
}

size_t chat_tc_drop(chat_tc_t *c, const char *type)
{
    size_t kept = 0, dropped = 0;
    for (size_t i = 0; i < c->qlen; i++) {
        if (type == NULL || chat_json_is(c->queue[i], type)) {
            cJSON_Delete(c->queue[i]);
            dropped++;
        } else {
            c->queue[kept++] = c->queue[i];
        }
    }
    c->qlen = kept;
    return dropped;
}

void chat_tc_ignore(chat_tc_t *c, const char *type)
{
    char **ni = realloc(c->ignored, (c->nignored + 1) * sizeof *ni);
    ck_assert_ptr_nonnull(ni);
    c->ignored = ni;
    c->ignored[c->nignored] = strdup(type);
    ck_assert_ptr_nonnull(c->ignored[c->nignored]);
    c->nignored++;
}

int chat_tc_wait_close(chat_tc_t *c, int timeout_ms, char *reason, size_t reason_len)
{
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    cJSON *f;
    while (!c->closed && (f = receive_frame(c, deadline)) != NULL)
        queue_push(c, f);
    if (reason != NULL && reason_len > 0)
        snprintf(reason, reason_len, "%s", c->closed ? c->close_reason : "");
    return c->closed ? c->close_code : -1;
}

bool chat_tc_closed(const chat_tc_t *c)
{
    return c->closed;
}

int chat_tc_close_code(const chat_tc_t *c)
{
    return c->closed ? c->close_code : 0;
}

/* ---- test clients: connecting ---- */

chat_tc_t *chat_tc_open(const char *url)
{
    chat_tc_t *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    snprintf(c->user, sizeof c->user, "(anonymous)");
    c->rate = CHAT_TC_DEFAULT_RATE;
    char err[256];
    chat_err_t rc = chat_ws_connect(url, CHAT_TC_TIMEOUT_MS, &c->ws, err, sizeof err);
    ck_assert_msg(rc == CHAT_OK, "connecting to %s: %s", url, err);
    return c;
}

chat_tc_t *chat_tc_connect_token(const char *url, const char *token)
{
    chat_tc_t *c = chat_tc_open(url);
    chat_tc_send_frame(c, chat_client_frame_auth(token));
    cJSON *w = chat_tc_expect(c, "welcome", CHAT_TC_TIMEOUT_MS);
    snprintf(c->session, sizeof c->session, "%s", chat_json_str(w, "session") ?: "");
    snprintf(c->user, sizeof c->user, "%s", chat_json_str(w, "user") ?: "?");
    snprintf(c->tenant, sizeof c->tenant, "%s", chat_json_str(w, "tenant") ?: "");
    cJSON_Delete(w);
    return c;
}

chat_tc_t *chat_tc_connect(const char *url, const char *tenant, const char *secret,
                           const char *user, const char *rooms)
{
    char *tok = chat_test_token(tenant, secret, user, rooms, 3600);
    chat_tc_t *c = chat_tc_connect_token(url, tok);
    free(tok);
    return c;
}

chat_tc_t *chat_tc_connect_user(size_t gw, const char *tenant, const char *secret, const char *user,
                                const char *rooms)
{
    chat_tc_t *c = chat_tc_connect(chat_test_gateway_url(gw), tenant, secret, user, rooms);
    chat_tc_ignore(c, "presence");
    return c;
}

chat_tc_t *chat_tc_connect_demo(size_t gw, const char *user)
{
    return chat_tc_connect_user(gw, chat_test_demo_tenant(), chat_test_demo_secret(), user, NULL);
}

void chat_tc_free(chat_tc_t *c)
{
    if (c == NULL)
        return;
    chat_ws_free(c->ws);
    chat_tc_drop(c, NULL);
    free(c->queue);
    for (size_t i = 0; i < c->nignored; i++)
        free(c->ignored[i]);
    free(c->ignored);
    free(c);
}

void chat_tc_close(chat_tc_t *c)
{
    if (c == NULL)
        return;
    if (!c->closed && chat_ws_close(c->ws, CHAT_WS_CLOSE_NORMAL, "done") == CHAT_OK)
        (void)chat_tc_wait_close(c, 2000, NULL, 0);
    chat_tc_free(c);
}

const char *chat_tc_session(const chat_tc_t *c)
{
    return c->session;
}

const char *chat_tc_user(const chat_tc_t *c)
{
    return c->user;
}

const char *chat_tc_tenant(const chat_tc_t *c)
{
    return c->tenant;
}

chat_ws_t *chat_tc_ws(chat_tc_t *c)
{
    return c->ws;
}

/* ---- test clients: requests ---- */

void chat_tc_set_rate(chat_tc_t *c, double per_sec)
{
    c->rate = per_sec > 0 ? per_sec : 0;
}

void chat_tc_pace(chat_tc_t *c)
{
    if (c->rate <= 0 || c->last_send_us == 0)
        return;
    int64_t due = c->last_send_us + (int64_t)(1e6 / c->rate);
    int64_t now = chat_clock_mono_us();
    if (due > now)
        usleep((useconds_t)(due - now));
}

bool chat_tc_try_send_text(chat_tc_t *c, const char *text)
{
    chat_tc_pace(c);
    c->last_send_us = chat_clock_mono_us();
    return chat_ws_send_text(c->ws, text, strlen(text)) == CHAT_OK;
}

void chat_tc_send_text(chat_tc_t *c, const char *text)
{
    ck_assert_msg(chat_tc_try_send_text(c, text), "%s: send failed: %s", c->user,
                  chat_ws_last_error(c->ws));
}

void chat_tc_send_frame(chat_tc_t *c, char *frame)
{
    ck_assert_ptr_nonnull(frame);
    chat_tc_send_text(c, frame);
    free(frame);
}

void chat_tc_fill_room(size_t gw, const char *room, size_t n, size_t nconn, chat_tc_text_fn text,
                       void *ud, int64_t *seqs)
{
    ck_assert_uint_gt(nconn, 0);
    chat_tc_t **s = calloc(nconn, sizeof *s);
    ck_assert_ptr_nonnull(s);
    char user[64];
    chat_test_unique(user, sizeof user, "filler");
    for (size_t k = 0; k < nconn; k++)
        s[k] = chat_tc_connect_demo(gw, user);
    for (size_t i = 0; i < n; i++) {
        char cid[32], buf[512];
        snprintf(cid, sizeof cid, "fill-%zu", i);
        text(i, buf, sizeof buf, ud);
        chat_tc_send_frame(s[i % nconn], chat_client_frame_send(room, cid, buf));
    }
    for (size_t i = 0; i < n; i++) {
        char cid[32];
        snprintf(cid, sizeof cid, "fill-%zu", i);
        cJSON *ack = chat_tc_expect_ack(s[i % nconn], cid, CHAT_TC_TIMEOUT_MS);
        if (seqs != NULL)
            seqs[i] = chat_json_int(ack, "seq");
        cJSON_Delete(ack);
    }
    for (size_t k = 0; k < nconn; k++)
        chat_tc_close(s[k]);
    free(s);
}

/* Matches joined for a room, or an error carrying a rid. */
typedef struct answer_match {
    const char *type, *key, *value;  /* the answer hoped for */
    const char *err_key, *err_value; /* an error about the request */
} answer_match_t;

static bool match_answer(const cJSON *f, const void *ctx)
{
    const answer_match_t *m = ctx;
    field_match_t ok = {m->type, m->key, m->value}, err = {"error", m->err_key, m->err_value};
    return match_fields(f, &ok) || match_fields(f, &err);
}

/* Fails the test unless f is a frame of type; describes an error frame. */
static void assert_answer(const chat_tc_t *c, const cJSON *f, const char *type, const char *what,
                          int timeout_ms)
{
    char *s = f ? cJSON_PrintUnformatted(f) : NULL;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", s ? s : "");
    free(s);
    ck_assert_msg(f != NULL, "%s: %s: no answer within %d ms (closed %d, code %d)", c->user, what,
                  timeout_ms, c->closed, c->close_code);
    ck_assert_msg(chat_json_is(f, type), "%s: %s: %s", c->user, what, msg);
}

cJSON *chat_tc_join(chat_tc_t *c, const char *room, int64_t since)
{
    char rid[32];
    snprintf(rid, sizeof rid, "join-%lu", ++c->next_rid);
    chat_tc_send_frame(c, chat_client_frame_join(room, since, rid));
    answer_match_t m = {"joined", "room", room, "rid", rid};
    cJSON *f = wait_match(c, match_answer, &m, CHAT_TC_TIMEOUT_MS);
    char what[256];
    snprintf(what, sizeof what, "join %s", room);
    assert_answer(c, f, "joined", what, CHAT_TC_TIMEOUT_MS);
    return f;
}

cJSON *chat_tc_wait_ack(chat_tc_t *c, const char *cid, int timeout_ms)
{
    answer_match_t m = {"ack", "cid", cid, "cid", cid};
    return wait_match(c, match_answer, &m, timeout_ms);
}

cJSON *chat_tc_expect_ack(chat_tc_t *c, const char *cid, int timeout_ms)
{
    cJSON *f = chat_tc_wait_ack(c, cid, timeout_ms);
    char what[256];
    snprintf(what, sizeof what, "ack of %s", cid);
    assert_answer(c, f, "ack", what, timeout_ms);
    ck_assert_msg(chat_json_int(f, "seq") >= 1, "%s: ack without a seq", what);
    return f;
}

cJSON *chat_tc_send_wait(chat_tc_t *c, const char *room, const char *cid, const char *text,
                         int timeout_ms)
{
    chat_tc_send_frame(c, chat_client_frame_send(room, cid, text));
    return chat_tc_wait_ack(c, cid, timeout_ms);
}

int64_t chat_tc_send(chat_tc_t *c, const char *room, const char *cid, const char *text)
{
    chat_tc_send_frame(c, chat_client_frame_send(room, cid, text));
    cJSON *f = chat_tc_expect_ack(c, cid, CHAT_TC_TIMEOUT_MS);
    int64_t seq = chat_json_int(f, "seq");
    cJSON_Delete(f);
    return seq;
}

cJSON *chat_tc_request(chat_tc_t *c, const char *frame, const char *rid, int timeout_ms)
{
    chat_tc_send_text(c, frame);
    return chat_tc_wait_for(c, NULL, "rid", rid, timeout_ms);
}

cJSON *chat_tc_ask(chat_tc_t *c, char *frame, const char *rid)
{
    ck_assert_ptr_nonnull(frame);
    cJSON *f = chat_tc_request(c, frame, rid, CHAT_TC_TIMEOUT_MS);
    free(frame);
    ck_assert_msg(f != NULL, "no answer to %s", rid);
    return f;
}

chat_tc_sent_t chat_tc_post(chat_tc_t *c, const char *room, const char *cid, const char *text)
{
    cJSON *ack = chat_tc_send_wait(c, room, cid, text, CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(chat_json_is(ack, "ack"), "no ack for %s", cid);
    chat_tc_sent_t s = {.seq = chat_json_int(ack, "seq")};
    snprintf(s.id, sizeof s.id, "%s", chat_json_str(ack, "id"));
    cJSON_Delete(ack);
    return s;
}

cJSON *chat_tc_history(chat_tc_t *c, const char *room, int64_t before, int64_t limit)
{
    char rid[32];
    snprintf(rid, sizeof rid, "hist-%lu", ++c->next_rid);
    char *frame = chat_client_frame_history(room, before, limit, rid);
    ck_assert_ptr_nonnull(frame);
    cJSON *f = chat_tc_request(c, frame, rid, CHAT_TC_TIMEOUT_MS);
    free(frame);
    char what[256];
    snprintf(what, sizeof what, "history %s before %lld limit %lld", room, (long long)before,
             (long long)limit);
    assert_answer(c, f, "history", what, CHAT_TC_TIMEOUT_MS);
    return f;
}

size_t chat_tc_collect_msgs(chat_tc_t *c, const char *room, size_t n, int64_t *seqs, int timeout_ms)
{
    size_t got = 0;
    while (got < n) {
        cJSON *f = chat_tc_wait_for(c, "msg", "room", room, timeout_ms);
        if (f == NULL)
            break;
        if (seqs != NULL)
            seqs[got] = chat_json_int(f, "seq");
        got++;
        cJSON_Delete(f);
    }
    return got;
}
