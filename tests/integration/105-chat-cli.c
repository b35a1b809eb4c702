/* End to end: chat-cli against the stack, as a user runs it: minting or taking a token,
 * joining, sending stdin lines, /commands, readable and JSON output, and its exit codes
 * (0 all answered, 1 connection refused or closed by the server, 2 usage). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"

#define OUT_MAX 65536

typedef struct cli_run {
    int status;
    char out[OUT_MAX];
    char err[OUT_MAX];
} cli_run_t;

static char cli_path[4096];
static char tmpdir[] = "/tmp/chat-cli-test-XXXXXX";

static void read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs chat-cli with args (a shell word list; values must not need quoting) and input on
 * stdin. */
static void run_cli(cli_run_t *r, const char *args, const char *input)
{
    char in[256], out[256], err[256], cmd[16384];
    snprintf(in, sizeof in, "%s/in", tmpdir);
    snprintf(out, sizeof out, "%s/out", tmpdir);
    snprintf(err, sizeof err, "%s/err", tmpdir);
    FILE *f = fopen(in, "w");
    ck_assert_ptr_nonnull(f);
    fputs(input, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' %s <'%s' >'%s' 2>'%s'", cli_path, args, in, out, err);
    int st = system(cmd);
    ck_assert_msg(st != -1 && WIFEXITED(st), "chat-cli did not exit normally: %s", cmd);
    r->status = WEXITSTATUS(st);
    read_file(out, r->out, sizeof r->out);
    read_file(err, r->err, sizeof r->err);
}

/* True if text has a line that starts with prefix and contains part (if not NULL). */
static bool has_line(const char *text, const char *prefix, const char *part)
{
    for (const char *l = text; l != NULL && *l != '\0';) {
        const char *end = strchr(l, '\n');
        size_t n = end ? (size_t)(end - l) : strlen(l);
        char line[8192];
        snprintf(line, sizeof line, "%.*s", (int)n, l);
        if (strncmp(line, prefix, strlen(prefix)) == 0 && (part == NULL || strstr(line, part)))
            return true;
        l = end ? end + 1 : NULL;
    }
    return false;
}

/* Fails unless the output of r has a line starting with prefix and containing part. */
static void expect_line(const cli_run_t *r, const char *prefix, const char *part)
{
    ck_assert_msg(has_line(r->out, prefix, part), "no line \"%s...%s\" in:\n%s\nstderr:\n%s",
                  prefix, part ? part : "", r->out, r->err);
}

static cli_run_t *new_run(void)
{
    cli_run_t *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    return r;
}

START_TEST(test_usage_and_connection_errors)
{
    cli_run_t *r = new_run();
    run_cli(r, "--help", "");
    ck_assert_int_eq(r->status, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "usage: chat-cli"));
    ck_assert_ptr_nonnull(strstr(r->out, "--join ROOM"));
    run_cli(r, "--no-such-option", "");
    ck_assert_int_eq(r->status, 2);
    run_cli(r, "--join general", ""); /* no identity: neither --token nor --user */
    ck_assert_int_eq(r->status, 2);
    run_cli(r, "--user u --since 3", ""); /* --since without --join */
    ck_assert_int_eq(r->status, 2);
    run_cli(r, "--user u --url ws://127.0.0.1:1/v1/ws", "");
    ck_assert_int_eq(r->status, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "cannot connect"));
    /* A wrong secret: the gateway's unauthorized close is reported with its code. */
    char args[1024];
    snprintf(args, sizeof args, "--url %s --user u --secret wrong-secret",
             chat_test_gateway_url(0));
    run_cli(r, args, "hello\n");
    ck_assert_int_eq(r->status, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "4001"));
    expect_line(r, "error unauthorized", NULL);
    free(r);
}
END_TEST

START_TEST(test_session_send_history_resume)
{
    char room[96], user[64], args[1024], input[1024];
    chat_test_unique(room, sizeof room, "cli");
    chat_test_unique(user, sizeof user, "cli-user");
    cli_run_t *r = new_run();
    /* Tenant and secret come from CHAT_DEMO_TENANT/CHAT_DEMO_SECRET of the stack. */
    snprintf(args, sizeof args, "--url %s --user %s --join %s", chat_test_gateway_url(0), user,
             room);
    snprintf(input, sizeof input,
             "hello\n//slash\n\n/nope\n/raw {\"type\":\"ping\",\"rid\":\"p1\"}\n/history %s\n"
             "/typing\n/typing a b\nlast line without newline",
             room);
    run_cli(r, args, input);
    ck_assert_msg(r->status == 0, "exit %d, stderr: %s", r->status, r->err);
    expect_line(r, "welcome ", user);
    expect_line(r, "joined ", room);
    expect_line(r, "ack ", "-1 -> #1");
    expect_line(r, "ack ", "-2 -> #2");
    expect_line(r, "ack ", "-3 -> #3");
    char line[256];
    snprintf(line, sizeof line, "[%s #1] %s: hello", room, user);
    expect_line(r, line, NULL);
    snprintf(line, sizeof line, "[%s #2] %s: /slash", room, user);
    expect_line(r, line, NULL);
    snprintf(line, sizeof line, "[%s #3] %s: last line without newline", room, user);
    expect_line(r, line, NULL);
    expect_line(r, "pong", "p1");
    expect_line(r, "history ", room);
    ck_assert_ptr_nonnull(strstr(r->err, "unknown command"));
    /* /typing went to the joined room: accepted (no error), and not echoed to the typer. */
    ck_assert_ptr_nonnull(strstr(r->err, "usage: /typing [ROOM]"));
    ck_assert_msg(!has_line(r->out, "error", NULL), "error in:\n%s", r->out);
    ck_assert_msg(!has_line(r->out, "* ", NULL), "typing or presence of self in:\n%s", r->out);

    /* Resume from seq 2 on the other gateway, with a token made elsewhere, as JSON. */
    char *token =
        chat_test_token(chat_test_demo_tenant(), chat_test_demo_secret(), user, room, 600);
    snprintf(args, sizeof args, "--url %s --token %s --join %s --since 2 --json",
             chat_test_gateway_url(1), token, room);
    free(token);
    run_cli(r, args, "");
    ck_assert_msg(r->status == 0, "exit %d, stderr: %s", r->status, r->err);
    size_t msgs = 0;
    for (char *l = strtok(r->out, "\n"); l != NULL; l = strtok(NULL, "\n")) {
        cJSON *f = cJSON_Parse(l);
        ck_assert_msg(cJSON_IsObject(f) && chat_json_str(f, "type"), "not a frame: %s", l);
        if (chat_json_is(f, "msg")) {
            ck_assert_int_eq(chat_json_int(f, "seq"), 3); /* only what it missed */
            msgs++;
        }
        cJSON_Delete(f);
    }
    ck_assert_uint_eq(msgs, 1);
    free(r);
}
END_TEST

/* /read marks a room read (a refused one prints the error), /rooms lists the user's rooms. */
START_TEST(test_read_and_rooms)
{
    char room[96], user[64], args[1024], input[512], line[256];
    chat_test_unique(room, sizeof room, "cli-rooms");
    chat_test_unique(user, sizeof user, "cli-reader");
    cli_run_t *r = new_run();
    snprintf(args, sizeof args, "--url %s --user %s --join %s", chat_test_gateway_url(0), user,
             room);
    snprintf(input, sizeof input, "hello\n/read %s 1\n/read %s 0\n", room, room);
    run_cli(r, args, input);
    ck_assert_msg(r->status == 0, "exit %d, stderr: %s", r->status, r->err);
    expect_line(r, "ack ", "-> #1");
    ck_assert_ptr_nonnull(strstr(r->err, "usage: /read"));
    /* The list: the room, its latest message, no unread badge for one's own message. */
    snprintf(args, sizeof args, "--url %s --user %s", chat_test_gateway_url(1), user);
    run_cli(r, args, "/rooms\n");
    ck_assert_msg(r->status == 0, "exit %d, stderr: %s", r->status, r->err);
    expect_line(r, "rooms: 1", NULL);
    snprintf(line, sizeof line, "  %s (public) #1 %s: hello", room, user);
    expect_line(r, line, NULL);
    free(r);
}
END_TEST

START_TEST(test_refused_sends_count_as_answered)
{
    char room[96], user[64], args[1024];
    chat_test_unique(room, sizeof room, "cli-long");
    chat_test_unique(user, sizeof user, "cli-user");
    char *input = malloc(4100);
    ck_assert_ptr_nonnull(input);
    memset(input, 'x', 4001);
    strcpy(input + 4001, "\nshort\n");
    cli_run_t *r = new_run();
    snprintf(args, sizeof args, "--url %s --user %s --join %s --wait 20", chat_test_gateway_url(1),
             user, room);
    run_cli(r, args, input);
    ck_assert_msg(r->status == 0, "exit %d, stderr: %s", r->status, r->err);
    expect_line(r, "error too_large", NULL);
    expect_line(r, "ack ", "-> #1");
    free(input);
    free(r);
}
END_TEST

static void setup_dirs(void)
{
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_dirs(void)
{
    static const char *const names[] = {"in", "out", "err"};
    char path[256];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

int main(void)
{
    chat_test_stack_load();
    snprintf(cli_path, sizeof cli_path, "%s/tools/chat-cli/chat-cli",
             chat_test_stack_get("CHAT_BUILD_DIR"));
    Suite *s = suite_create("chat-cli");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, setup_dirs, remove_dirs);
    tcase_add_test(tc, test_usage_and_connection_errors);
    tcase_add_test(tc, test_session_send_history_resume);
    tcase_add_test(tc, test_read_and_rooms);
    tcase_add_test(tc, test_refused_sends_count_as_answered);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
