/* One chat-cli session: connect, authenticate, join, then relay stdin lines to the gateway
 * and frames to stdout until stdin ends and the sends are answered. */
#ifndef CHAT_TOOLS_CHAT_CLI_CLI_SESSION_H
#define CHAT_TOOLS_CHAT_CLI_CLI_SESSION_H

#include "tools/chat-cli/cli_options.h"

/* Runs the session that opts describe, reading stdin and writing stdout/stderr. Returns the
 * process exit code (CHAT_CLI_EXIT_*). */
int chat_cli_session_run(const chat_cli_options_t *opts);

#endif
