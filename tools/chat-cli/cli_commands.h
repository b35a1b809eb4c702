/* What one line of chat-cli's stdin asks for: a message to send, or a /command with its
 * arguments. Pure parsing; the session carries it out. */
#ifndef CHAT_TOOLS_CHAT_CLI_CLI_COMMANDS_H
#define CHAT_TOOLS_CHAT_CLI_CLI_COMMANDS_H

#include <stdint.h>

typedef enum chat_cli_cmd_kind {
    CHAT_CLI_CMD_EMPTY,      /* blank line: nothing to do */
    CHAT_CLI_CMD_SEND,       /* text */
    CHAT_CLI_CMD_JOIN,       /* room, since (-1: none) */
    CHAT_CLI_CMD_LEAVE,      /* room */
    CHAT_CLI_CMD_HISTORY,    /* room, before (0: newest), limit (0: default) */
    CHAT_CLI_CMD_EDIT,       /* id, text: in the first room joined */
    CHAT_CLI_CMD_DELETE,     /* id */
    CHAT_CLI_CMD_REACT,      /* id, emoji, react (1 on, 0 off, -1 toggle) */
    CHAT_CLI_CMD_TYPING,     /* room ("": the room lines go to) */
    CHAT_CLI_CMD_READ,       /* room ("": the first joined), seq (-1: the latest seen there) */
    CHAT_CLI_CMD_ROOMS,      /* cursor ("": the first page) */
    CHAT_CLI_CMD_PUSH,       /* endpoint, p256dh, auth: a Web Push subscription */
    CHAT_CLI_CMD_PUSH_OFF,   /* endpoint */
    CHAT_CLI_CMD_PUSH_PREFS, /* room ("": every room), mode */
    CHAT_CLI_CMD_RAW,        /* text: the frame as typed */
    CHAT_CLI_CMD_QUIT,
    CHAT_CLI_CMD_HELP,
    CHAT_CLI_CMD_BAD, /* error: why the line is not a valid command */
} chat_cli_cmd_kind_t;

typedef struct chat_cli_cmd {
    chat_cli_cmd_kind_t kind;
    const char *text; /* SEND, RAW, EDIT: points into the parsed line */
    char room[256];   /* as typed (the server judges it), truncated at 255 bytes */
    char id[64];      /* EDIT, DELETE, REACT: the message id as typed (truncated) */
    char emoji[160];  /* REACT */
    int react;        /* REACT: 1 on, 0 off, -1 toggle (on unless this session added it) */
    char cursor[256]; /* ROOMS, as typed */
    /* PUSH, PUSH_OFF: point into the parsed line */
    const char *endpoint, *p256dh, *auth;
    char mode[16]; /* PUSH_PREFS, as typed (truncated) */
    int64_t since, before, limit, seq;
    char error[128];
} chat_cli_cmd_t;

/* Parses line (without its newline; a trailing '\r' is ignored, so the line is modified).
 * "//x" is the message "/x". Never fails: a malformed command gives CHAT_CLI_CMD_BAD. */
void chat_cli_cmd_parse(char *line, chat_cli_cmd_t *out);

/* The command summary for /help. */
extern const char chat_cli_cmd_help[];

#endif
