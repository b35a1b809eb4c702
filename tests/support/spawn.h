/* Child processes of a test: the one fork/exec of the tests, for the services a test runs
 * itself, the servers it takes down and brings back, and the tools and scripts it calls.
 *
 * Who owns what: the test owns each child it spawns until a chat_test_spawn_* call below has
 * reaped it, and ends it (chat_test_spawn_stop) before it exits; after that the pid is no
 * longer its to signal or wait for. The spawner only borrows argv, env and the two file
 * descriptors for the call: the caller closes its descriptors once chat_test_spawn returned
 * (the child holds its own copies). Single-threaded use. */
#ifndef CHAT_TESTS_SUPPORT_SPAWN_H
#define CHAT_TESTS_SUPPORT_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

/* out_fd or err_fd: the child writes to the test's own stdout or stderr. */
#define CHAT_TEST_SPAWN_INHERIT (-1)

/* Results of chat_test_spawn_wait and _stop other than a wait status (which is >= 0). */
#define CHAT_TEST_SPAWN_TIMEOUT (-1)  /* still running at the deadline: killed (SIGKILL), reaped */
#define CHAT_TEST_SPAWN_NO_CHILD (-2) /* pid is no child of the test (reaped before, or <= 0) */

/* Starts argv[0] (looked up in PATH unless it holds a '/') with the arguments argv
 * (NULL-terminated) and the test's environment, in which the entries of env ("NAME=value",
 * NULL-terminated; NULL for none) replace or add variables; of two entries of env for one
 * variable the later wins. The child's stdout and stderr go to out_fd and err_fd
 * (CHAT_TEST_SPAWN_INHERIT: the test's own); stdin is the test's. Returns the child's pid;
 * fails the test if it cannot fork. If the program cannot be executed, the child writes why
 * to its stderr and exits 127. */
pid_t chat_test_spawn(const char *const argv[], const char *const env[], int out_fd, int err_fd);

/* Without blocking: true if the child has ended (it is reaped then, and *status, if status is
 * not NULL, gets its wait status) or pid is no child of the test (*status gets
 * CHAT_TEST_SPAWN_NO_CHILD); false while it runs. */
bool chat_test_spawn_exited(pid_t pid, int *status);

/* Waits up to timeout_ms (negative: as long as it takes) for the child to end, and reaps it.
 * Returns its wait status, CHAT_TEST_SPAWN_TIMEOUT if it was still running (it has been
 * killed and reaped then), or CHAT_TEST_SPAWN_NO_CHILD. */
int chat_test_spawn_wait(pid_t pid, int timeout_ms);

/* Sends sig to the child and waits for it as chat_test_spawn_wait does. Sends nothing to a
 * pid that is no child of the test (CHAT_TEST_SPAWN_NO_CHILD): it may belong to another
 * process by now. */
int chat_test_spawn_stop(pid_t pid, int sig, int timeout_ms);

#endif
