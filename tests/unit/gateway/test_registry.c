/* Unit tests of services/gateway/registry: the conversion of online members
 * "<gateway>:<user>" into distinct user ids, the deep copies of rooms for heartbeats (also
 * when a copy runs out of memory), and the scripts of each pipeline as a fake Redis server
 * receives them (a heartbeat sends one script per room) with the presence changes their
 * replies tell. What the scripts do on a real server is tested by
 * tests/integration/150-presence-typing.c. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/names.h"
#include "services/gateway/registry.h"
#include "tests/support/util.h"

/* strdup for the whole test program, failing its call number strdup_fail_at (counted from
 * 0 since strdup_calls was reset; -1: never), so out-of-memory paths can be driven. */
static long strdup_fail_at = -1;
static long strdup_calls;

char *strdup(const char *s)
{
    if (strdup_fail_at >= 0 && strdup_calls++ == strdup_fail_at)
        return NULL;
    size_t len = strlen(s) + 1;
    char *copy = malloc(len);
    if (copy != NULL)
        memcpy(copy, s, len);
    return copy;
}

/* ---- a fake Redis server: one connection, every command logged as one line (arguments
 * joined by spaces), answers of the types the registry reads ---- */

#define FAKE_LOG_MAX 65536
#define NOW_MS 1000
#define TTL_MS 30000

typedef struct fake_redis {
    int listen_fd;
    pthread_t thread;
    char log[FAKE_LOG_MAX];
    size_t loglen;
    const char *eval_reply; /* what every EVAL gets, as RESP */
} fake_redis_t;

static fake_redis_t fake;

static void log_add(const char *s, size_t len)
{
    ck_assert_uint_lt(fake.loglen + len, FAKE_LOG_MAX);
    memcpy(fake.log + fake.loglen, s, len);
    fake.loglen += len;
    fake.log[fake.loglen] = '\0';
}

/* Reads one command (a RESP array of bulk strings) into the log and its name into name.
 * False at the end of the connection. */
static bool command_read(FILE *in, char *name, size_t namelen)
{
    char line[64];
    if (fgets(line, sizeof line, in) == NULL || line[0] != '*')
        return false;
    long argc = strtol(line + 1, NULL, 10);
    for (long i = 0; i < argc; i++) {
        ck_assert_ptr_nonnull(fgets(line, sizeof line, in));
        ck_assert_int_eq(line[0], '$');
        size_t len = (size_t)strtol(line + 1, NULL, 10);
        char *arg = malloc(len + 2);
        ck_assert_ptr_nonnull(arg);
        ck_assert_uint_eq(fread(arg, 1, len + 2, in), len + 2);
        if (i == 0)
            snprintf(name, namelen, "%.*s", (int)len, arg);
        else
            log_add(" ", 1);
        if (i == 1 && strcmp(name, "EVAL") == 0)
            log_add("<script>", 8); /* the body itself is the integration test's business */
        else
            log_add(arg, len);
        free(arg);
    }
    log_add("\n", 1);
    return true;
}

static void reply_write(int fd, const char *name)
{
    char reply[4096];
    size_t n = 0;
    if (strcmp(name, "EVAL") == 0) {
        n = (size_t)snprintf(reply, sizeof reply, "%s", fake.eval_reply);
    } else if (strncmp(name, "Z", 1) == 0 || strcmp(name, "PEXPIRE") == 0) {
        n = (size_t)snprintf(reply, sizeof reply, ":1\r\n");
    } else {
        n = (size_t)snprintf(reply, sizeof reply, "+OK\r\n");
    }
    ck_assert_int_eq(write(fd, reply, n), (ssize_t)n);
}

static void *fake_serve(void *arg)
{
    (void)arg;
    int fd = accept(fake.listen_fd, NULL, NULL);
    ck_assert_int_ge(fd, 0);
    FILE *in = fdopen(dup(fd), "r");
    ck_assert_ptr_nonnull(in);
    char name[32];
    while (command_read(in, name, sizeof name))
        reply_write(fd, name);
    fclose(in);
    close(fd);
    return NULL;
}

/* Starts the server, answering every EVAL with eval_reply, and connects a client to it. */
static chat_redis_t *fake_start(const char *eval_reply)
{
    memset(&fake, 0, sizeof fake);
    fake.eval_reply = eval_reply;
    fake.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fake.listen_fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addrlen = sizeof addr;
    ck_assert_int_eq(bind(fake.listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    ck_assert_int_eq(listen(fake.listen_fd, 1), 0);
    ck_assert_int_eq(getsockname(fake.listen_fd, (struct sockaddr *)&addr, &addrlen), 0);
    ck_assert_int_eq(pthread_create(&fake.thread, NULL, fake_serve, NULL), 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(addr.sin_port));
    chat_redis_t *r = NULL;
    ck_assert_int_eq(chat_redis_connect(url, 2000, &r), CHAT_OK);
    return r;
}

/* Closes the client, waits for the server and returns everything it received after the
 * connection's set-up (every connection asks for the server's run_id first). */
static const char *fake_stop(chat_redis_t *r)
{
    static const char setup[] = "INFO server\n";
    chat_redis_free(r);
    pthread_join(fake.thread, NULL);
    close(fake.listen_fd);
    ck_assert_msg(strncmp(fake.log, setup, strlen(setup)) == 0, "no set-up first: %s", fake.log);
    return fake.log + strlen(setup);
}

/* ---- what the presence listener heard ---- */

static char heard[1024];

static void heard_changed(void *ud, const char *tenant, const char *room, const char *user,
                          bool online, bool expired)
{
    (void)ud;
    size_t n = strlen(heard);
    snprintf(heard + n, sizeof heard - n, "%s/%s %s %s%s\n", tenant, room, user,
             online ? "online" : "offline", expired ? " expired" : "");
}

static const gw_registry_presence_t listener = {.changed = heard_changed};

START_TEST(test_users_from_members)
{
    const char *members[] = {"0:alice", "1:bob", "1:alice", "2:user:with:colons", "broken", "3:"};
    const char *users[6];
    size_t n = gw_registry_users(members, 6, users);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(users[0], "alice");
    ck_assert_str_eq(users[1], "bob");
    ck_assert_str_eq(users[2], "user:with:colons");
    ck_assert_uint_eq(gw_registry_users(members, 0, users), 0);
}
END_TEST

START_TEST(test_rooms_append_copies)
{
    gw_registry_room_t *rooms = NULL;
    size_t n = 0, cap = 0;
    char tenant[] = "acme", room[] = "general", alice[] = "alice";
    const char *users[] = {alice, "bob"};
    ck_assert(gw_registry_rooms_append(&rooms, &n, &cap, tenant, room, users, 2));
    ck_assert(gw_registry_rooms_append(&rooms, &n, &cap, "acme", "empty", NULL, 0));
    tenant[0] = room[0] = alice[0] = 'X'; /* copies, not references */
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(rooms[0].tenant, "acme");
    ck_assert_str_eq(rooms[0].room, "general");
    ck_assert_uint_eq(rooms[0].nusers, 2);
    ck_assert_str_eq(rooms[0].users[0], "alice");
    ck_assert_str_eq(rooms[0].users[1], "bob");
    ck_assert_str_eq(rooms[1].room, "empty");
    ck_assert_uint_eq(rooms[1].nusers, 0);
    gw_registry_rooms_free(rooms, n);
    gw_registry_rooms_free(NULL, 0);
}
END_TEST

/* Whichever copy runs out of memory (tenant, room or a user), the room is not appended and
 * nothing leaks (ASan); the rooms before stay as they were. */
START_TEST(test_rooms_append_out_of_memory)
{
    const char *users[] = {"alice", "bob"};
    for (long fail = 0; fail < 4; fail++) {
        gw_registry_room_t *rooms = NULL;
        size_t n = 0, cap = 0;
        ck_assert(gw_registry_rooms_append(&rooms, &n, &cap, "acme", "first", NULL, 0));
        strdup_calls = 0;
        strdup_fail_at = fail;
        bool ok = gw_registry_rooms_append(&rooms, &n, &cap, "acme", "general", users, 2);
        strdup_fail_at = -1;
        ck_assert_msg(!ok, "strdup %ld failed, yet the room was appended", fail);
        ck_assert_msg(n == 1, "strdup %ld failed: %zu rooms", fail, n);
        ck_assert_str_eq(rooms[0].room, "first");
        gw_registry_rooms_free(rooms, n);
    }
}
END_TEST

/* A join runs one script on the room's three keys; its reply gives the users online
 * (distinct, sorted), whether the joiner came online and who went offline (expired). */
START_TEST(test_join_script)
{
    chat_redis_t *r = fake_start("*3\r\n:1\r\n*1\r\n$4\r\ndave\r\n"
                                 "*5\r\n$5\r\n0:bob\r\n$7\r\n7:alice\r\n$5\r\n3:bob\r\n"
                                 "$7\r\n2:carol\r\n$6\r\nbroken\r\n");
    heard[0] = '\0';
    char **users = NULL;
    size_t n = 0;
    ck_assert_int_eq(
        gw_registry_join(r, "7", NOW_MS, TTL_MS, "acme", "general", "alice", &users, &n, &listener),
        CHAT_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(users[0], "alice");
    ck_assert_str_eq(users[1], "bob");
    ck_assert_str_eq(users[2], "carol");
    gw_registry_users_free(users, n);
    ck_assert_str_eq(heard, "acme/general alice online\nacme/general dave offline expired\n");
    ck_assert_str_eq(fake_stop(r),
                     "EVAL <script> 3 chat:room:{acme/general}:gws chat:room:{acme/general}:online "
                     "chat:room:{acme/general}:presence 7 alice 1000 31000 30000\n");
}
END_TEST

/* Not the first member of the user: nothing heard; a reply of another shape is an error. */
START_TEST(test_join_not_first_and_bad_reply)
{
    chat_redis_t *r = fake_start("*3\r\n:0\r\n*0\r\n*1\r\n$7\r\n7:alice\r\n");
    heard[0] = '\0';
    char **users = NULL;
    size_t n = 0;
    ck_assert_int_eq(
        gw_registry_join(r, "7", NOW_MS, TTL_MS, "acme", "general", "alice", &users, &n, &listener),
        CHAT_OK);
    ck_assert_uint_eq(n, 1);
    gw_registry_users_free(users, n);
    ck_assert_str_eq(heard, "");
    fake_stop(r);
    r = fake_start(":1\r\n");
    ck_assert_int_eq(
        gw_registry_join(r, "7", NOW_MS, TTL_MS, "acme", "general", "alice", &users, &n, NULL),
        CHAT_ERR_REDIS);
    ck_assert_ptr_null(users);
    fake_stop(r);
}
END_TEST

/* A user id of the longest kind (64 four-byte characters) joins like any other. */
START_TEST(test_join_longest_user)
{
    char user[CHAT_USER_MAX * 4 + 1] = "";
    for (int i = 0; i < CHAT_USER_MAX; i++)
        strcat(user, "\xf0\x9f\x98\x80");
    chat_redis_t *r = fake_start("*3\r\n:0\r\n*0\r\n*0\r\n");
    char **users = NULL;
    size_t n = 0;
    ck_assert_int_eq(
        gw_registry_join(r, "4095", NOW_MS, TTL_MS, "acme", "general", user, &users, &n, NULL),
        CHAT_OK);
    gw_registry_users_free(users, n);
    char arg[sizeof user + 8];
    snprintf(arg, sizeof arg, " 4095 %s ", user);
    ck_assert_ptr_nonnull(strstr(fake_stop(r), arg));
}
END_TEST

static const char *const general_users[] = {"alice", "bob", "carol"};
static const char *const random_users[] = {"dave"};
static const gw_registry_room_t heartbeat_rooms[] = {
    {.tenant = "acme", .room = "general", .users = general_users, .nusers = 3},
    {.tenant = "acme", .room = "random", .users = random_users, .nusers = 1},
};

/* A heartbeat: one script per room with every user of the room; each reply tells who came
 * back, who expired and whether the gateway's own registration had lapsed. */
START_TEST(test_refresh_one_script_per_room)
{
    chat_redis_t *r = fake_start("*3\r\n*1\r\n$3\r\nbob\r\n*1\r\n$3\r\neve\r\n:1\r\n");
    heard[0] = '\0';
    bool lapsed[2] = {false, false};
    ck_assert_int_eq(
        gw_registry_refresh(r, "7", NOW_MS, TTL_MS, heartbeat_rooms, 2, &listener, lapsed),
        CHAT_OK);
    ck_assert(lapsed[0] && lapsed[1]);
    ck_assert_str_eq(fake_stop(r),
                     "EVAL <script> 3 chat:room:{acme/general}:gws chat:room:{acme/general}:online "
                     "chat:room:{acme/general}:presence 7 1000 31000 30000 alice bob carol\n"
                     "EVAL <script> 3 chat:room:{acme/random}:gws chat:room:{acme/random}:online "
                     "chat:room:{acme/random}:presence 7 1000 31000 30000 dave\n");
    ck_assert_str_eq(heard, "acme/general bob online\nacme/general eve offline expired\n"
                            "acme/random bob online\nacme/random eve offline expired\n");
}
END_TEST

/* A reply of the old shape (no lapsed flag) is an error, not a silent zero. */
START_TEST(test_refresh_reply_without_lapsed)
{
    chat_redis_t *r = fake_start("*2\r\n*0\r\n*0\r\n");
    bool lapsed = true;
    ck_assert_int_eq(gw_registry_refresh(r, "7", NOW_MS, TTL_MS, heartbeat_rooms, 1, NULL, &lapsed),
                     CHAT_ERR_REDIS);
    ck_assert(!lapsed);
    fake_stop(r);
}
END_TEST

START_TEST(test_remove_one_script_per_room)
{
    chat_redis_t *r = fake_start("*1\r\n$5\r\nalice\r\n");
    heard[0] = '\0';
    ck_assert_int_eq(gw_registry_remove(r, "7", heartbeat_rooms, 2, &listener), CHAT_OK);
    ck_assert_str_eq(fake_stop(r),
                     "EVAL <script> 3 chat:room:{acme/general}:gws chat:room:{acme/general}:online "
                     "chat:room:{acme/general}:presence 7 alice bob carol\n"
                     "EVAL <script> 3 chat:room:{acme/random}:gws chat:room:{acme/random}:online "
                     "chat:room:{acme/random}:presence 7 dave\n");
    ck_assert_str_eq(heard, "acme/general alice offline\nacme/random alice offline\n");
}
END_TEST

START_TEST(test_release)
{
    chat_redis_t *r = fake_start(":1\r\n");
    heard[0] = '\0';
    ck_assert_int_eq(gw_registry_release(r, "7", "acme", "general", "bob", true, true, &listener),
                     CHAT_OK);
    ck_assert_int_eq(gw_registry_release(r, "7", "acme", "random", "dave", false, true, NULL),
                     CHAT_OK);
    ck_assert_str_eq(fake_stop(r),
                     "EVAL <script> 3 chat:room:{acme/general}:gws chat:room:{acme/general}:online "
                     "chat:room:{acme/general}:presence 7 bob 1 1\n"
                     "EVAL <script> 3 chat:room:{acme/random}:gws chat:room:{acme/random}:online "
                     "chat:room:{acme/random}:presence 7 dave 0 1\n");
    ck_assert_str_eq(heard, "acme/general bob offline\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_registry");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, test_users_from_members);
    tcase_add_test(tc, test_rooms_append_copies);
    tcase_add_test(tc, test_rooms_append_out_of_memory);
    tcase_add_test(tc, test_join_script);
    tcase_add_test(tc, test_join_not_first_and_bad_reply);
    tcase_add_test(tc, test_join_longest_user);
    tcase_add_test(tc, test_refresh_one_script_per_room);
    tcase_add_test(tc, test_refresh_reply_without_lapsed);
    tcase_add_test(tc, test_remove_one_script_per_room);
    tcase_add_test(tc, test_release);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
