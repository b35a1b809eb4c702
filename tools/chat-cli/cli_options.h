/* chat-cli's command line: options, their defaults from the environment (CHAT_GATEWAY_URLS,
 * CHAT_DEMO_TENANT, CHAT_DEMO_SECRET) and the --help text. */
#ifndef CHAT_TOOLS_CHAT_CLI_CLI_OPTIONS_H
#define CHAT_TOOLS_CHAT_CLI_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CHAT_CLI_DEFAULT_URL "ws://127.0.0.1:7410/v1/ws"

/* Process exit codes (documented in --help). */
enum {
    CHAT_CLI_EXIT_OK = 0,      /* stdin ended and every send was answered */
    CHAT_CLI_EXIT_CONN = 1,    /* connection failed or the server closed it */
    CHAT_CLI_EXIT_USAGE = 2,   /* bad command line */
    CHAT_CLI_EXIT_UNACKED = 3, /* sends still unanswered after --wait seconds */
};

/* Parsed options. Strings point into argv or the environment, except url (owned). */
typedef struct chat_cli_options {
    char *url;
    const char *token;
    const char *tenant, *secret, *user, *name, *rooms;
    int64_t ttl_s;
    const char **joins; /* owned array of borrowed strings */
    size_t njoins;
    int64_t since; /* -1: join without since */
    bool json;
    int wait_s;
    int connect_timeout_s;
} chat_cli_options_t;

typedef enum chat_cli_parse {
    CHAT_CLI_PARSE_OK,
    CHAT_CLI_PARSE_HELP,  /* --help: print chat_cli_usage and exit 0 */
    CHAT_CLI_PARSE_USAGE, /* a bad command line; the reason is in errbuf */
} chat_cli_parse_t;

/* Parses argv into *out (zeroed first; release with chat_cli_options_free whatever the
 * result). */
chat_cli_parse_t chat_cli_options_parse(int argc, char **argv, chat_cli_options_t *out,
                                        char *errbuf, size_t errlen);

void chat_cli_options_free(chat_cli_options_t *o);

/* Prints the --help text. */
void chat_cli_usage(FILE *f);

#endif
