/* Integration test support: reading the fixture's stack.env and unique names. */
#include "tests/support/stack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Removes one level of the quoting scripts/up writes ('value' with '\'' for quotes). */
static void unquote(char *v)
{
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '\'' && v[n - 1] == '\'') {
        char *w = v;
        for (size_t i = 1; i + 1 < n; i++) {
            if (strncmp(v + i, "'\\''", 4) == 0) {
                *w++ = '\'';
                i += 3;
            } else {
                *w++ = v[i];
            }
        }
        *w = '\0';
    } else if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        memmove(v, v + 1, n - 2);
        v[n - 2] = '\0';
    }
}

void chat_test_stack_load(void)
{
    const char *path = getenv("CHAT_STACK_ENV");
    if (path == NULL || *path == '\0') {
        fprintf(stderr, "CHAT_STACK_ENV is not set: run this test through ctest "
                        "(the 'stack' fixture starts the stack)\n");
        exit(2);
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s: the stack fixture did not start\n", path);
        exit(2);
    }
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *eq = strchr(line, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        char *key = line;
        if (strncmp(key, "export ", 7) == 0)
            key += 7;
        unquote(eq + 1);
        setenv(key, eq + 1, 0);
    }
    fclose(f);
}

const char *chat_test_stack_get(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL) {
        fprintf(stderr, "%s is not in the stack environment\n", name);
        exit(2);
    }
    return v;
}

void chat_test_unique(char *buf, size_t len, const char *prefix)
{
    static unsigned counter;
    static unsigned seed;
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (unsigned)(ts.tv_nsec ^ (unsigned long)ts.tv_sec ^ (unsigned)getpid());
        srand(seed);
    }
    snprintf(buf, len, "%s-%d-%u-%04x", prefix, (int)getpid(), ++counter,
             (unsigned)rand() & 0xffff);
}
