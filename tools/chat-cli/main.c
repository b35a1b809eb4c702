/* chat-cli: a command-line client of the chat platform for people and tests. Parses the
 * command line and runs one session; see --help for the options and exit codes. */
#include <stdio.h>

#include "tools/chat-cli/cli_options.h"
#include "tools/chat-cli/cli_session.h"

int main(int argc, char **argv)
{
    /* Each frame is one line: a reader on the other end of a pipe sees it at once. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    chat_cli_options_t opts;
    char err[256];
    int code;
    switch (chat_cli_options_parse(argc, argv, &opts, err, sizeof err)) {
    case CHAT_CLI_PARSE_HELP:
        chat_cli_usage(stdout);
        code = CHAT_CLI_EXIT_OK;
        break;
    case CHAT_CLI_PARSE_USAGE:
        fprintf(stderr, "chat-cli: %s\n", err);
        code = CHAT_CLI_EXIT_USAGE;
        break;
    default:
        code = chat_cli_session_run(&opts);
        break;
    }
    chat_cli_options_free(&opts);
    return code;
}
