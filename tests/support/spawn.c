/* The tests' one fork/exec (see spawn.h). The child's environment is built before the fork,
 * so that the child only resets signals, redirects and executes: the test programs run
 * librdkafka and other threads, and a forked child of a threaded process should not
 * allocate. */
#include "tests/support/spawn.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"

extern char **environ;

#define POLL_MS 20 /* how often a wait with a deadline looks at the child */

/* True if an entry of env from index from on sets the variable that entry ("NAME=value")
 * sets. */
static bool replaced_later(const char *entry, const char *const env[], size_t from)
{
    size_t name_len = strcspn(entry, "=");
    for (size_t i = from; env != NULL && env[i] != NULL; i++) {
        if (strncmp(env[i], entry, name_len) == 0 && env[i][name_len] == '=')
            return true;
    }
    return false;
}

/* The child's environment: the test's, with env's entries replacing or adding variables.
 * A malloc'd array (the caller frees it) of strings borrowed from environ and env. */
static char **child_environment(const char *const env[])
{
    size_t n_environ = 0, n_env = 0;
    while (environ[n_environ] != NULL)
        n_environ++;
    while (env != NULL && env[n_env] != NULL)
        n_env++;
    char **out = calloc(n_environ + n_env + 1, sizeof *out);
    ck_assert_ptr_nonnull(out);
    size_t n = 0;
    for (size_t i = 0; i < n_environ; i++) {
        if (!replaced_later(environ[i], env, 0))
            out[n++] = environ[i];
    }
    for (size_t i = 0; i < n_env; i++) {
        if (!replaced_later(env[i], env, i + 1))
            out[n++] = (char *)env[i];
    }
    out[n] = NULL;
    return out;
}

/* In the child: resets signals, redirects, executes; exits 126 if a redirection fails, 127
 * if the program cannot be executed. All signals are blocked on entry; mask is the test's. */
_Noreturn static void child_exec(const char *const argv[], char **envp, int out_fd, int err_fd,
                                 const sigset_t *mask)
{
    /* Until the exec this is a copy of the test, with its signal handlers: a signal sent to
     * the child right after the spawn (a test stopping it at once) must take its default
     * action, not run a handler of the test here (Check's SIGTERM handler signals the whole
     * process group, the test included). As posix_spawn does: default actions, then the
     * test's mask (ignored signals stay ignored, as across any exec). */
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL &&
            sa.sa_handler != SIG_IGN) {
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = SIG_DFL;
            sigaction(sig, &sa, NULL);
        }
    }
    sigprocmask(SIG_SETMASK, mask, NULL);
    if ((out_fd >= 0 && dup2(out_fd, STDOUT_FILENO) < 0) ||
        (err_fd >= 0 && dup2(err_fd, STDERR_FILENO) < 0))
        _exit(126);
    environ = envp;
    execvp(argv[0], (char *const *)argv);
    char msg[1024];
    int len = snprintf(msg, sizeof msg, "cannot run %s: %s\n", argv[0], strerror(errno));
    if (len > 0) {
        size_t n = (size_t)len < sizeof msg ? (size_t)len : sizeof msg - 1;
        ssize_t written = write(STDERR_FILENO, msg, n);
        (void)written;
    }
    _exit(127);
}

pid_t chat_test_spawn(const char *const argv[], const char *const env[], int out_fd, int err_fd)
{
    ck_assert_msg(argv != NULL && argv[0] != NULL, "chat_test_spawn without a program");
    char **envp = child_environment(env);
    fflush(NULL); /* what the test printed comes before what the child prints */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved); /* no handler runs in the child before exec */
    pid_t pid = fork();
    if (pid == 0)
        child_exec(argv, envp, out_fd, err_fd, &saved);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    free(envp);
    ck_assert_msg(pid > 0, "cannot start %s: fork: %s", argv[0], strerror(fork_errno));
    return pid;
}

/* waitpid, retried after a signal. */
static pid_t waitpid_retried(pid_t pid, int *status, int options)
{
    pid_t r;
    do
        r = waitpid(pid, status, options);
    while (r < 0 && errno == EINTR);
    return r;
}

bool chat_test_spawn_exited(pid_t pid, int *status)
{
    int st = 0;
    pid_t r = pid > 0 ? waitpid_retried(pid, &st, WNOHANG) : -1;
    if (r == 0)
        return false;
    if (status != NULL)
        *status = r == pid ? st : CHAT_TEST_SPAWN_NO_CHILD;
    return true;
}

int chat_test_spawn_wait(pid_t pid, int timeout_ms)
{
    if (pid <= 0)
        return CHAT_TEST_SPAWN_NO_CHILD;
    int status = 0;
    int64_t deadline = chat_clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        pid_t r = waitpid_retried(pid, &status, timeout_ms < 0 ? 0 : WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return CHAT_TEST_SPAWN_NO_CHILD;
        if (chat_clock_mono_ms() >= deadline)
            break;
        chat_clock_sleep_ms(POLL_MS);
    }
    kill(pid, SIGKILL);
    waitpid_retried(pid, &status, 0);
    return CHAT_TEST_SPAWN_TIMEOUT;
}

int chat_test_spawn_stop(pid_t pid, int sig, int timeout_ms)
{
    /* A child that ended and is not reaped yet is still ours (and takes the signal
     * harmlessly); a reaped one's pid may be another process's now. */
    siginfo_t info;
    if (pid <= 0 || waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
        return CHAT_TEST_SPAWN_NO_CHILD;
    kill(pid, sig);
    return chat_test_spawn_wait(pid, timeout_ms);
}
