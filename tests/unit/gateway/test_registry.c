/* Unit tests of services/gateway/registry: the conversion of online members
 * "<gateway>:<user>" into distinct user ids, the deep copies of rooms for heartbeats (also
 * when a copy runs out of memory), and the commands of each pipeline as a fake Redis
 * server receives them (a heartbeat sends one ZADD and one PEXPIRE per key). */
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
    const char *const *online; /* the members ZRANGEBYSCORE answers */
    size_t nonline;
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
    if (strcmp(name, "ZRANGEBYSCORE") == 0) {
        n = (size_t)snprintf(reply, sizeof reply, "*%zu\r\n", fake.nonline);
        for (size_t i = 0; i < fake.nonline; i++)
            n += (size_t)snprintf(reply + n, sizeof reply - n, "$%zu\r\n%s\r\n",
                                  strlen(fake.online[i]), fake.online[i]);
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

/* Starts the server and connects a client to it. */
static chat_redis_t *fake_start(const char *const *online, size_t nonline)
{
    memset(&fake, 0, sizeof fake);
    fake.online = online;
    fake.nonline = nonline;
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

/* A join registers, prunes and reads the room's online users, distinct and sorted. */
START_TEST(test_join_pipeline)
{
    static const char *const online[] = {"0:bob", "7:alice", "3:bob", "2:carol", "broken"};
    chat_redis_t *r = fake_start(online, 5);
    char **users = NULL;
    size_t n = 0;
    ck_assert_int_eq(
        gw_registry_join(r, "7", NOW_MS, TTL_MS, "acme", "general", "alice", &users, &n), CHAT_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(users[0], "alice");
    ck_assert_str_eq(users[1], "bob");
    ck_assert_str_eq(users[2], "carol");
    gw_registry_users_free(users, n);
    ck_assert_str_eq(fake_stop(r), "ZADD chat:room:{acme/general}:gws 31000 7\n"
                                   "PEXPIRE chat:room:{acme/general}:gws 30000\n"
                                   "ZADD chat:room:{acme/general}:online 31000 7:alice\n"
                                   "PEXPIRE chat:room:{acme/general}:online 30000\n"
                                   "ZREMRANGEBYSCORE chat:room:{acme/general}:online -inf 1000\n"
                                   "ZRANGEBYSCORE chat:room:{acme/general}:online (1000 +inf\n");
}
END_TEST

/* A user id of the longest kind (64 four-byte characters) joins like any other. */
START_TEST(test_join_longest_user)
{
    char user[CHAT_USER_MAX * 4 + 1] = "";
    for (int i = 0; i < CHAT_USER_MAX; i++)
        strcat(user, "\xf0\x9f\x98\x80");
    chat_redis_t *r = fake_start(NULL, 0);
    char **users = NULL;
    size_t n = 0;
    ck_assert_int_eq(
        gw_registry_join(r, "4095", NOW_MS, TTL_MS, "acme", "general", user, &users, &n), CHAT_OK);
    gw_registry_users_free(users, n);
    char member[sizeof user + 8];
    snprintf(member, sizeof member, " 4095:%s\n", user);
    ck_assert_ptr_nonnull(strstr(fake_stop(r), member));
}
END_TEST

static const char *const general_users[] = {"alice", "bob", "carol"};
static const char *const random_users[] = {"dave"};
static const gw_registry_room_t heartbeat_rooms[] = {
    {.tenant = "acme", .room = "general", .users = general_users, .nusers = 3},
    {.tenant = "acme", .room = "random", .users = random_users, .nusers = 1},
};

/* A heartbeat: per key one ZADD (every user of the room at once) and one PEXPIRE. */
START_TEST(test_refresh_one_command_per_key)
{
    chat_redis_t *r = fake_start(NULL, 0);
    ck_assert_int_eq(gw_registry_refresh(r, "7", NOW_MS, TTL_MS, heartbeat_rooms, 2), CHAT_OK);
    ck_assert_str_eq(
        fake_stop(r),
        "ZADD chat:room:{acme/general}:gws 31000 7\n"
        "PEXPIRE chat:room:{acme/general}:gws 30000\n"
        "ZADD chat:room:{acme/general}:online 31000 7:alice 31000 7:bob 31000 7:carol\n"
        "PEXPIRE chat:room:{acme/general}:online 30000\n"
        "ZADD chat:room:{acme/random}:gws 31000 7\n"
        "PEXPIRE chat:room:{acme/random}:gws 30000\n"
        "ZADD chat:room:{acme/random}:online 31000 7:dave\n"
        "PEXPIRE chat:room:{acme/random}:online 30000\n");
}
END_TEST

START_TEST(test_remove_one_command_per_key)
{
    chat_redis_t *r = fake_start(NULL, 0);
    ck_assert_int_eq(gw_registry_remove(r, "7", heartbeat_rooms, 2), CHAT_OK);
    ck_assert_str_eq(fake_stop(r), "ZREM chat:room:{acme/general}:gws 7\n"
                                   "ZREM chat:room:{acme/general}:online 7:alice 7:bob 7:carol\n"
                                   "ZREM chat:room:{acme/random}:gws 7\n"
                                   "ZREM chat:room:{acme/random}:online 7:dave\n");
}
END_TEST

START_TEST(test_release)
{
    chat_redis_t *r = fake_start(NULL, 0);
    ck_assert_int_eq(gw_registry_release(r, "7", "acme", "general", "bob", true, true), CHAT_OK);
    ck_assert_int_eq(gw_registry_release(r, "7", "acme", "random", "dave", false, true), CHAT_OK);
    ck_assert_str_eq(fake_stop(r), "ZREM chat:room:{acme/general}:gws 7\n"
                                   "ZREM chat:room:{acme/general}:online 7:bob\n"
                                   "ZREM chat:room:{acme/random}:online 7:dave\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_registry");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, test_users_from_members);
    tcase_add_test(tc, test_rooms_append_copies);
    tcase_add_test(tc, test_rooms_append_out_of_memory);
    tcase_add_test(tc, test_join_pipeline);
    tcase_add_test(tc, test_join_longest_user);
    tcase_add_test(tc, test_refresh_one_command_per_key);
    tcase_add_test(tc, test_remove_one_command_per_key);
    tcase_add_test(tc, test_release);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
