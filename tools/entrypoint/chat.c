/* chat: the container image's entrypoint. The one image carries every service; its first
 * argument names the service and it replaces itself (execv, no shell) with that service's
 * binary from CHAT_ENTRYPOINT_LIBDIR, passing the remaining arguments through unchanged. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef CHAT_ENTRYPOINT_LIBDIR
#define CHAT_ENTRYPOINT_LIBDIR "/usr/lib/chat"
#endif

/* Exit statuses: 2 for a usage error (unknown or missing service), 126/127 as a shell would
 * for a binary that is there but cannot run / is not there at all. */
enum { EXIT_USAGE = 2, EXIT_CANNOT_EXEC = 126, EXIT_NOT_FOUND = 127 };

static const struct {
    const char *name;
    const char *what;
} services[] = {
    {"gateway", "WebSocket gateway (clients connect here)"},
    {"message", "message service: assigns room sequence numbers, stores history"},
    {"broadcast", "broadcast service: fans messages out to the gateways"},
    {"moderation", "moderation service: verdicts on messages"},
    {"notify", "notify service: Web Push and webhooks for offline users"},
    {"api", "server API (/v1/*) for tenants' back ends"},
    {"admin", "chat-admin: topics ensure, tenants, tokens, waits"},
};

#define SERVICE_COUNT (sizeof(services) / sizeof(services[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: chat <service> [arguments...]\n"
                 "runs " CHAT_ENTRYPOINT_LIBDIR "/chat-<service> with the arguments; "
                 "`chat <service> --help` lists its settings\n"
                 "services:\n");
    for (size_t i = 0; i < SERVICE_COUNT; i++)
        fprintf(out, "  %-11s %s\n", services[i].name, services[i].what);
}

/* Returns the index of NAME in services, or -1. */
static int service_find(const char *name)
{
    for (size_t i = 0; i < SERVICE_COUNT; i++)
        if (strcmp(services[i].name, name) == 0)
            return (int)i;
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    int i = service_find(argv[1]);
    if (i < 0) {
        fprintf(stderr, "chat: unknown service '%s'\n", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
    }
    /* The service sees itself as chat-<name> (its usage and log lines say so). */
    char prog[32], path[sizeof(CHAT_ENTRYPOINT_LIBDIR) + sizeof(prog)];
    snprintf(prog, sizeof(prog), "chat-%s", services[i].name);
    snprintf(path, sizeof(path), "%s/%s", CHAT_ENTRYPOINT_LIBDIR, prog);
    argv[1] = prog;
    execv(path, &argv[1]);
    int err = errno;
    fprintf(stderr, "chat: cannot run %s: %s\n", path, strerror(err));
    return err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}
