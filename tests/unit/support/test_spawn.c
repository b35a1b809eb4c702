/* The tests' spawner (tests/support/spawn.h): the child's environment and output, exit
 * statuses, a program that cannot run, waits with a deadline, and that a reaped pid is not
 * signalled again. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/spawn.h"
#include "tests/support/util.h"

/* A temporary file for a child's output; unlinked at once, read back with read_back. */
static int temp_fd(void)
{
    char path[] = "/tmp/chat-test-spawn-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    return fd;
}

static void read_back(int fd, char *buf, size_t len)
{
    ssize_t n = pread(fd, buf, len - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
}

/* Runs sh -c script with env, its stdout and stderr into buf; returns the wait status. */
static int run_sh(const char *script, const char *const env[], char *buf, size_t len)
{
    int fd = temp_fd();
    const char *const argv[] = {"sh", "-c", script, NULL};
    pid_t pid = chat_test_spawn(argv, env, fd, fd);
    int status = chat_test_spawn_wait(pid, 10000);
    read_back(fd, buf, len);
    close(fd);
    return status;
}

START_TEST(test_environment_replaced_and_added)
{
    setenv("SPAWN_KEPT", "kept", 1);
    setenv("SPAWN_REPLACED", "old", 1);
    const char *const env[] = {"SPAWN_REPLACED=first", "SPAWN_ADDED=added", "SPAWN_REPLACED=second",
                               NULL};
    char out[256];
    int status = run_sh("printf '%s %s %s' \"$SPAWN_KEPT\" \"$SPAWN_REPLACED\" \"$SPAWN_ADDED\"",
                        env, out, sizeof out);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_str_eq(out, "kept second added");
    ck_assert_str_eq(getenv("SPAWN_REPLACED"), "old"); /* the test's own is untouched */
}
END_TEST

START_TEST(test_exit_status_and_stderr)
{
    char out[256];
    int status = run_sh("echo to-stderr >&2; exit 3", NULL, out, sizeof out);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 3);
    ck_assert_str_eq(out, "to-stderr\n");
}
END_TEST

START_TEST(test_program_that_cannot_run)
{
    int fd = temp_fd();
    const char *const argv[] = {"/nonexistent/program", NULL};
    pid_t pid = chat_test_spawn(argv, NULL, CHAT_TEST_SPAWN_INHERIT, fd);
    int status = chat_test_spawn_wait(pid, 10000);
    char err[256];
    read_back(fd, err, sizeof err);
    close(fd);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 127);
    ck_assert_msg(strstr(err, "cannot run /nonexistent/program") != NULL, "stderr: %s", err);
}
END_TEST

START_TEST(test_wait_deadline_kills)
{
    const char *const argv[] = {"sleep", "30", NULL};
    pid_t pid = chat_test_spawn(argv, NULL, CHAT_TEST_SPAWN_INHERIT, CHAT_TEST_SPAWN_INHERIT);
    ck_assert(!chat_test_spawn_exited(pid, NULL));
    ck_assert_int_eq(chat_test_spawn_wait(pid, 100), CHAT_TEST_SPAWN_TIMEOUT);
    /* Reaped: the pid is no longer the test's to wait for or signal. */
    int status = 0;
    ck_assert(chat_test_spawn_exited(pid, &status));
    ck_assert_int_eq(status, CHAT_TEST_SPAWN_NO_CHILD);
    ck_assert_int_eq(chat_test_spawn_stop(pid, SIGKILL, -1), CHAT_TEST_SPAWN_NO_CHILD);
    ck_assert_int_eq(chat_test_spawn_stop(0, SIGKILL, -1), CHAT_TEST_SPAWN_NO_CHILD);
}
END_TEST

START_TEST(test_stop_signals)
{
    const char *const argv[] = {"sleep", "30", NULL};
    pid_t pid = chat_test_spawn(argv, NULL, CHAT_TEST_SPAWN_INHERIT, CHAT_TEST_SPAWN_INHERIT);
    int status = chat_test_spawn_stop(pid, SIGTERM, 10000);
    ck_assert(WIFSIGNALED(status));
    ck_assert_int_eq(WTERMSIG(status), SIGTERM);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("spawn");
    TCase *tc = tcase_create("spawn");
    tcase_add_test(tc, test_environment_replaced_and_added);
    tcase_add_test(tc, test_exit_status_and_stderr);
    tcase_add_test(tc, test_program_that_cannot_run);
    tcase_add_test(tc, test_wait_deadline_kills);
    tcase_add_test(tc, test_stop_signals);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
