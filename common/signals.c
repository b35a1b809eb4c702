/* Stop requests: SIGTERM/SIGINT (or chat_signals_request_stop) set an atomic flag and bump
 * an eventfd that poll loops watch. The handler only touches the flag and write(2), both
 * async-signal-safe. SIGHUP only sets a reload flag the services that reload something
 * take from their loop (a SIGHUP no longer kills a service). SIGPIPE is ignored so writes
 * to closed sockets return EPIPE. */
#include "common/signals.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

/* Lock-free atomics, so the handler may read and write them. */
static atomic_bool stop_flag = false;
static atomic_int stop_fd = -1;
static atomic_bool reload_flag = false;

/* Makes stop_fd readable. An eventfd counter only grows, so repeated requests are harmless;
 * EAGAIN (counter saturated) leaves it readable anyway. */
static void stop_fd_notify(void)
{
    int fd = atomic_load(&stop_fd);
    if (fd < 0)
        return;
    uint64_t one = 1;
    ssize_t w;
    do {
        w = write(fd, &one, sizeof one);
    } while (w < 0 && errno == EINTR);
}

static void on_stop_signal(int signo)
{
    (void)signo;
    int saved_errno = errno;
    atomic_store(&stop_flag, true);
    stop_fd_notify();
    errno = saved_errno;
}

static void on_reload_signal(int signo)
{
    (void)signo;
    atomic_store(&reload_flag, true);
}

/* Creates the eventfd once; a later install keeps the first so pollers stay valid. */
static void stop_fd_create(void)
{
    if (atomic_load(&stop_fd) >= 0)
        return;
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        chat_log_error("cannot create the stop eventfd", CHAT_F_STR("error", strerror(errno)));
        return;
    }
    int none = -1;
    if (!atomic_compare_exchange_strong(&stop_fd, &none, fd)) {
        close(fd); /* another thread installed concurrently */
        return;
    }
    /* A stop requested before the fd existed must still wake pollers. */
    if (atomic_load(&stop_flag))
        stop_fd_notify();
}

static void handler_set(int signo, void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    /* Restarted system calls are fine: loops wake up through the stop fd, not EINTR. */
    sa.sa_flags = SA_RESTART;
    if (sigaction(signo, &sa, NULL) != 0)
        chat_log_error("sigaction failed", CHAT_F_INT("signal", signo),
                       CHAT_F_STR("error", strerror(errno)));
}

void chat_signals_install(void)
{
    stop_fd_create();
    handler_set(SIGTERM, on_stop_signal);
    handler_set(SIGINT, on_stop_signal);
    handler_set(SIGHUP, on_reload_signal);
    handler_set(SIGPIPE, SIG_IGN);
}

bool chat_signals_stop_requested(void)
{
    return atomic_load(&stop_flag);
}

void chat_signals_request_stop(void)
{
    atomic_store(&stop_flag, true);
    stop_fd_notify();
}

void chat_signals_request_reload(void)
{
    atomic_store(&reload_flag, true);
}

bool chat_signals_take_reload(void)
{
    return atomic_exchange(&reload_flag, false);
}

/* poll on the stop fd until the deadline: a signal or a request from another thread ends
 * the wait at once. Without the fd (not installed) it is a plain sleep. */
bool chat_signals_wait_stop(int64_t ms)
{
    int64_t deadline = chat_clock_mono_ms() + (ms > 0 ? ms : 0);
    while (!chat_signals_stop_requested()) {
        int left = chat_clock_remaining_ms(deadline);
        if (left == 0)
            break;
        struct pollfd pfd = {.fd = chat_signals_stop_fd(), .events = POLLIN};
        poll(&pfd, pfd.fd >= 0 ? 1 : 0, left);
    }
    return chat_signals_stop_requested();
}

/* -1 before chat_signals_install (or if the eventfd could not be created). Pollers must
 * not read it: it stays readable for every loop that watches it. */
int chat_signals_stop_fd(void)
{
    return atomic_load(&stop_fd);
}
