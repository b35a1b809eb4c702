/* Parsing of chat-cli's input lines: plain text is a message, '/' starts a command whose
 * arguments are separated by blanks. */
#include "tools/chat-cli/cli_commands.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char chat_cli_cmd_help[] =
    "commands: /join ROOM [SINCE], /leave ROOM, /history ROOM [BEFORE] [LIMIT],\n"
    "          /edit ID TEXT, /delete ID, /react ID EMOJI [on|off] (in the first room\n"
    "          joined; without on/off a reaction is toggled), /typing [ROOM],\n"
    "          /read [ROOM] [SEQ] (default: the first joined room, the latest seen there),\n"
    "          /rooms [CURSOR] (your rooms with unread badges), /raw {json}, /quit, /help;\n"
    "          //text sends \"/text\"; other lines are sent (to the first room joined, as\n"
    "          /typing without ROOM)\n";

/* Next blank-separated word of *p (NUL-terminated in place), or NULL at the end. */
static char *next_word(char **p)
{
    char *s = *p + strspn(*p, " \t");
    if (*s == '\0')
        return NULL;
    size_t n = strcspn(s, " \t");
    *p = s + n;
    if (s[n] != '\0') {
        s[n] = '\0';
        *p = s + n + 1;
    }
    return s;
}

/* Parses an optional non-negative number word into *out (def if absent). */
static bool optional_number(char **p, int64_t def, int64_t *out)
{
    char *w = next_word(p);
    if (w == NULL) {
        *out = def;
        return true;
    }
    char *end;
    errno = 0;
    long long v = strtoll(w, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0)
        return false;
    *out = v;
    return true;
}

static void bad(chat_cli_cmd_t *out, const char *why)
{
    out->kind = CHAT_CLI_CMD_BAD;
    snprintf(out->error, sizeof out->error, "%s", why);
}

/* /edit ID TEXT, /delete ID, /react ID EMOJI [on|off]. True if cmd is one of them. */
static bool parse_update(const char *cmd, char **p, chat_cli_cmd_t *out)
{
    bool edit = strcmp(cmd, "edit") == 0, del = strcmp(cmd, "delete") == 0;
    bool react = strcmp(cmd, "react") == 0;
    if (!edit && !del && !react)
        return false;
    const char *id = next_word(p);
    if (id == NULL) {
        bad(out, edit  ? "usage: /edit ID TEXT"
                 : del ? "usage: /delete ID"
                       : "usage: /react ID EMOJI [on|off]");
        return true;
    }
    snprintf(out->id, sizeof out->id, "%s", id);
    if (edit) {
        out->kind = CHAT_CLI_CMD_EDIT;
        out->text = *p + strspn(*p, " \t");
        if (*out->text == '\0')
            bad(out, "usage: /edit ID TEXT");
        return true;
    }
    if (del) {
        out->kind = CHAT_CLI_CMD_DELETE;
        if (next_word(p) != NULL)
            bad(out, "too many arguments");
        return true;
    }
    out->kind = CHAT_CLI_CMD_REACT;
    const char *emoji = next_word(p);
    const char *onoff = emoji != NULL ? next_word(p) : NULL;
    if (emoji == NULL) {
        bad(out, "usage: /react ID EMOJI [on|off]");
        return true;
    }
    snprintf(out->emoji, sizeof out->emoji, "%s", emoji);
    out->react = onoff == NULL               ? -1
                 : strcmp(onoff, "on") == 0  ? 1
                 : strcmp(onoff, "off") == 0 ? 0
                                             : -2;
    if (out->react == -2)
        bad(out, "usage: /react ID EMOJI [on|off]");
    else if (next_word(p) != NULL)
        bad(out, "too many arguments");
    return true;
}

/* /read [ROOM] [SEQ] and /rooms [CURSOR]: every argument optional. */
static void parse_read_rooms(const char *cmd, char **p, chat_cli_cmd_t *out)
{
    const char *word = next_word(p);
    if (strcmp(cmd, "rooms") == 0) {
        out->kind = CHAT_CLI_CMD_ROOMS;
        snprintf(out->cursor, sizeof out->cursor, "%s", word != NULL ? word : "");
    } else {
        out->kind = CHAT_CLI_CMD_READ;
        snprintf(out->room, sizeof out->room, "%s", word != NULL ? word : "");
        if (!optional_number(p, -1, &out->seq) || out->seq == 0) {
            bad(out, "usage: /read [ROOM] [SEQ] (SEQ a whole number >= 1)");
            return;
        }
    }
    if (next_word(p) != NULL)
        bad(out, "too many arguments");
}

/* /push ENDPOINT P256DH AUTH, /push-off ENDPOINT, /push-prefs ROOM|* MODE. True if cmd is one
 * of them. The values go as typed: the gateway judges them. */
static bool parse_push(const char *cmd, char **p, chat_cli_cmd_t *out)
{
    if (strcmp(cmd, "push") == 0) {
        out->kind = CHAT_CLI_CMD_PUSH;
        out->endpoint = next_word(p);
        out->p256dh = out->endpoint != NULL ? next_word(p) : NULL;
        out->auth = out->p256dh != NULL ? next_word(p) : NULL;
        if (out->auth == NULL || next_word(p) != NULL)
            bad(out, "usage: /push ENDPOINT P256DH AUTH");
        return true;
    }
    if (strcmp(cmd, "push-off") == 0) {
        out->kind = CHAT_CLI_CMD_PUSH_OFF;
        out->endpoint = next_word(p);
        if (out->endpoint == NULL || next_word(p) != NULL)
            bad(out, "usage: /push-off ENDPOINT");
        return true;
    }
    if (strcmp(cmd, "push-prefs") == 0) {
        out->kind = CHAT_CLI_CMD_PUSH_PREFS;
        const char *room = next_word(p);
        const char *mode = room != NULL ? next_word(p) : NULL;
        if (mode == NULL || next_word(p) != NULL) {
            bad(out, "usage: /push-prefs ROOM|* all|mentions|none|default");
            return true;
        }
        snprintf(out->room, sizeof out->room, "%s", strcmp(room, "*") == 0 ? "" : room);
        snprintf(out->mode, sizeof out->mode, "%s", mode);
        return true;
    }
    return false;
}

/* Parses the arguments of the command word cmd from *p. */
static void parse_command(const char *cmd, char **p, chat_cli_cmd_t *out)
{
    if (parse_update(cmd, p, out) || parse_push(cmd, p, out))
        return;
    if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "help") == 0) {
        out->kind = cmd[0] == 'q' ? CHAT_CLI_CMD_QUIT : CHAT_CLI_CMD_HELP;
        return;
    }
    if (strcmp(cmd, "raw") == 0) {
        out->kind = CHAT_CLI_CMD_RAW;
        out->text = *p + strspn(*p, " \t");
        if (*out->text == '\0')
            bad(out, "usage: /raw {json}");
        return;
    }
    if (strcmp(cmd, "typing") == 0) {
        out->kind = CHAT_CLI_CMD_TYPING;
        const char *room = next_word(p);
        snprintf(out->room, sizeof out->room, "%s", room != NULL ? room : "");
        if (room != NULL && next_word(p) != NULL)
            bad(out, "usage: /typing [ROOM]");
        return;
    }
    if (strcmp(cmd, "read") == 0 || strcmp(cmd, "rooms") == 0) {
        parse_read_rooms(cmd, p, out);
        return;
    }
    bool is_join = strcmp(cmd, "join") == 0, is_leave = strcmp(cmd, "leave") == 0;
    bool is_history = strcmp(cmd, "history") == 0;
    if (!is_join && !is_leave && !is_history) {
        bad(out, "unknown command (try /help)");
        return;
    }
    const char *room = next_word(p);
    if (room == NULL) {
        bad(out, is_join    ? "usage: /join ROOM [SINCE]"
                 : is_leave ? "usage: /leave ROOM"
                            : "usage: /history ROOM [BEFORE] [LIMIT]");
        return;
    }
    snprintf(out->room, sizeof out->room, "%s", room);
    bool ok = true;
    if (is_join) {
        out->kind = CHAT_CLI_CMD_JOIN;
        ok = optional_number(p, -1, &out->since);
    } else if (is_history) {
        out->kind = CHAT_CLI_CMD_HISTORY;
        ok = optional_number(p, 0, &out->before) && optional_number(p, 0, &out->limit);
    } else {
        out->kind = CHAT_CLI_CMD_LEAVE;
    }
    if (!ok)
        bad(out, "numbers must be whole and >= 0");
    else if (next_word(p) != NULL)
        bad(out, "too many arguments");
}

void chat_cli_cmd_parse(char *line, chat_cli_cmd_t *out)
{
    memset(out, 0, sizeof *out);
    out->since = -1;
    size_t n = strlen(line);
    if (n > 0 && line[n - 1] == '\r')
        line[--n] = '\0';
    if (line[0] == '/' && line[1] != '/') {
        char *p = line + 1;
        size_t wlen = strcspn(p, " \t");
        char cmd[16];
        if (wlen == 0 || wlen >= sizeof cmd) {
            bad(out, "unknown command (try /help)");
            return;
        }
        memcpy(cmd, p, wlen);
        cmd[wlen] = '\0';
        p += wlen;
        parse_command(cmd, &p, out);
        return;
    }
    if (line[strspn(line, " \t")] == '\0') {
        out->kind = CHAT_CLI_CMD_EMPTY;
        return;
    }
    out->kind = CHAT_CLI_CMD_SEND;
    out->text = line[0] == '/' ? line + 1 : line;
}
