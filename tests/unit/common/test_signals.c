/* Unit tests of common/signals: SIGTERM and SIGINT set the stop flag and make the stop fd
 * readable, the fd is close-on-exec and non-blocking, SIGHUP asks for a reload (once, not a
 * stop), and SIGPIPE is ignored. The handlers
 * and the flag are process-wide, so every test runs in its own forked process. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/signals.h"

/* True if fd becomes readable within timeout_ms. */
static bool readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, timeout_ms);
    ck_assert_int_ge(n, 0);
    return n == 1 && (p.revents & POLLIN);
}

START_TEST(test_nothing_before_install)
{
    ck_assert_int_eq(chat_signals_stop_fd(), -1);
    ck_assert(!chat_signals_stop_requested());
}
END_TEST

/* Installs, checks the idle state, raises signo and checks the stop state. */
static void check_stop_signal(int signo)
{
    chat_signals_install();
    int fd = chat_signals_stop_fd();
    ck_assert_int_ge(fd, 0);
    ck_assert(!chat_signals_stop_requested());
    ck_assert(!readable(fd, 0));
    ck_assert_int_eq(raise(signo), 0);
    ck_assert(chat_signals_stop_requested());
    ck_assert(readable(fd, 1000));
    /* Still readable for a second poller: nobody consumes the event. */
    ck_assert(readable(fd, 0));
}

START_TEST(test_sigterm)
{
    check_stop_signal(SIGTERM);
}
END_TEST

START_TEST(test_sigint)
{
    check_stop_signal(SIGINT);
}
END_TEST

START_TEST(test_request_stop)
{
    chat_signals_install();
    int fd = chat_signals_stop_fd();
    ck_assert(!readable(fd, 0));
    chat_signals_request_stop();
    chat_signals_request_stop();
    ck_assert(chat_signals_stop_requested());
    ck_assert(readable(fd, 1000));
}
END_TEST

static void *request_stop_later(void *arg)
{
    (void)arg;
    usleep(50 * 1000);
    chat_signals_request_stop();
    return NULL;
}

START_TEST(test_wait_stop)
{
    /* Not installed: a plain sleep. */
    int64_t start = chat_clock_mono_ms();
    ck_assert(!chat_signals_wait_stop(30));
    ck_assert_int_ge(chat_clock_mono_ms() - start, 30);
    chat_signals_install();
    start = chat_clock_mono_ms();
    ck_assert(!chat_signals_wait_stop(40));
    ck_assert_int_ge(chat_clock_mono_ms() - start, 40);
    /* A request from another thread ends a long wait at once. */
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, request_stop_later, NULL), 0);
    start = chat_clock_mono_ms();
    ck_assert(chat_signals_wait_stop(10000));
    ck_assert_int_lt(chat_clock_mono_ms() - start, 5000);
    pthread_join(t, NULL);
    ck_assert(chat_signals_wait_stop(10000)); /* already requested: no wait */
}
END_TEST

START_TEST(test_stop_fd_flags)
{
    chat_signals_install();
    int fd = chat_signals_stop_fd();
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
    /* Installing again keeps the same fd, so pollers holding it stay valid. */
    chat_signals_install();
    ck_assert_int_eq(chat_signals_stop_fd(), fd);
}
END_TEST

START_TEST(test_sigpipe_ignored)
{
    chat_signals_install();
    struct sigaction current;
    ck_assert_int_eq(sigaction(SIGPIPE, NULL, &current), 0);
    ck_assert(current.sa_handler == SIG_IGN);
    /* Writing to a pipe without a reader fails with EPIPE instead of killing the process. */
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    close(fds[0]);
    errno = 0;
    ck_assert_int_eq(write(fds[1], "x", 1), -1);
    ck_assert_int_eq(errno, EPIPE);
    close(fds[1]);
    ck_assert_int_eq(raise(SIGPIPE), 0);
    ck_assert(!chat_signals_stop_requested());
}
END_TEST

START_TEST(test_sighup_reload)
{
    chat_signals_install();
    int fd = chat_signals_stop_fd();
    ck_assert(!chat_signals_take_reload());
    ck_assert_int_eq(raise(SIGHUP), 0); /* the process lives on */
    ck_assert_int_eq(raise(SIGHUP), 0);
    ck_assert(chat_signals_take_reload()); /* two signals before the take: one reload */
    ck_assert(!chat_signals_take_reload());
    ck_assert(!chat_signals_stop_requested());
    ck_assert(!readable(fd, 0));
    chat_signals_request_reload();
    ck_assert(chat_signals_take_reload());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("signals");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_nothing_before_install);
    tcase_add_test(tc, test_sigterm);
    tcase_add_test(tc, test_sigint);
    tcase_add_test(tc, test_request_stop);
    tcase_add_test(tc, test_wait_stop);
    tcase_add_test(tc, test_stop_fd_flags);
    tcase_add_test(tc, test_sigpipe_ignored);
    tcase_add_test(tc, test_sighup_reload);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    /* Whatever CK_FORK says: the stop flag cannot be reset between tests. */
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
