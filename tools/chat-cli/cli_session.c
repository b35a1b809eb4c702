/* The session loop of chat-cli: poll() over stdin and the WebSocket, one line of output per
 * frame, and bookkeeping of the requests still waiting for their answer so that the end of
 * stdin does not drop messages or answers in flight. */
#include "tools/chat-cli/cli_session.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/array.h"
#include "common/clock.h"
#include "tools/chat-cli/cli_commands.h"
#include "tools/client/chat_token.h"
#include "tools/client/client_frames.h"
#include "tools/client/ws_client.h"

#define CLI_CLOSE_WAIT_MS 2000 /* how long to wait for the server's answer to our close */

/* A growable list of strings (rooms joined, cids waiting for their ack). */
typedef struct str_list {
    char **items;
    size_t n;
} str_list_t;

typedef struct cli_session {
    const chat_cli_options_t *opts;
    chat_ws_t *ws;
    str_list_t rooms;   /* joined, in order: the first one gets the stdin lines */
    str_list_t reacted; /* "id emoji" this session turned on (what /react toggles) */
    str_list_t pending; /* requests not answered yet: "c:<cid>" sends, "r:<rid>" others */
    str_list_t seen;    /* rooms whose frames came, with seen_seq: the latest seq of each */
    int64_t *seen_seq;
    unsigned long next_cid;
    unsigned long next_rid;
    bool close_sent;
    bool closed;     /* the server's close (or the end of the connection) was seen */
    bool failed;     /* the connection is unusable: exit CHAT_CLI_EXIT_CONN */
    bool input_done; /* stdin ended or /quit */
    char *line;      /* stdin bytes of the line being read */
    size_t line_len, line_cap;
} cli_session_t;

/* What the session needs to know of a received frame. */
typedef struct frame_info {
    char type[16];
    char rid[72];
    char room[136];
} frame_info_t;

/* ---- string lists ---- */

static bool list_add(str_list_t *l, const char *s)
{
    char *copy = strdup(s);
    char **items = copy ? realloc(l->items, (l->n + 1) * sizeof *items) : NULL;
    if (items == NULL) {
        free(copy);
        return false;
    }
    items[l->n++] = copy;
    l->items = items;
    return true;
}

static long list_find(const str_list_t *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i], s) == 0)
            return (long)i;
    }
    return -1;
}

/* Removes s (keeping the order of the rest); false if absent. */
static bool list_remove(str_list_t *l, const char *s)
{
    long i = list_find(l, s);
    if (i < 0)
        return false;
    free(l->items[i]);
    memmove(l->items + i, l->items + i + 1, (l->n - (size_t)i - 1) * sizeof *l->items);
    l->n--;
    return true;
}

static void list_free(str_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* ---- frames in ---- */

static void copy_str(char *dst, size_t cap, const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    snprintf(dst, cap, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

/* Remembers the latest seq seen in room (the default of /read). */
static void seen_note(cli_session_t *s, const char *room, const cJSON *seq)
{
    if (!cJSON_IsNumber(seq) || room[0] == '\0')
        return;
    long i = list_find(&s->seen, room);
    if (i < 0) {
        int64_t *v = realloc(s->seen_seq, (s->seen.n + 1) * sizeof *v);
        if (v == NULL)
            return;
        s->seen_seq = v;
        if (!list_add(&s->seen, room))
            return;
        i = (long)s->seen.n - 1;
        s->seen_seq[i] = 0;
    }
    if ((int64_t)seq->valuedouble > s->seen_seq[i])
        s->seen_seq[i] = (int64_t)seq->valuedouble;
}

/* Prints a text frame and settles the cid an ack or error answers. */
static void on_text(cli_session_t *s, const chat_ws_msg_t *m, frame_info_t *info)
{
    if (s->opts->json) {
        fwrite(m->data, 1, m->len, stdout);
        fputc('\n', stdout);
    } else {
        char *line = chat_client_render(m->data, m->len);
        puts(line ? line : "(out of memory)");
        free(line);
    }
    fflush(stdout);
    cJSON *o = cJSON_ParseWithLength(m->data, m->len);
    copy_str(info->type, sizeof info->type, o, "type");
    copy_str(info->rid, sizeof info->rid, o, "rid");
    copy_str(info->room, sizeof info->room, o, "room");
    if (strcmp(info->type, "msg") == 0 || strcmp(info->type, "joined") == 0)
        seen_note(s, info->room, cJSON_GetObjectItemCaseSensitive(o, "seq"));
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(o, "cid");
    char key[80];
    if (cJSON_IsString(cid) &&
        (strcmp(info->type, "ack") == 0 || strcmp(info->type, "error") == 0)) {
        snprintf(key, sizeof key, "c:%s", cid->valuestring);
        list_remove(&s->pending, key);
    }
    /* Every answer to a request echoes its rid (joined, left, history, error...). */
    if (info->rid[0] != '\0') {
        snprintf(key, sizeof key, "r:%s", info->rid);
        list_remove(&s->pending, key);
    }
    cJSON_Delete(o);
}

/* Receives at most one message within timeout_ms and handles it. Returns false if nothing
 * arrived or the connection ended (see s->closed / s->failed). */
static bool receive_one(cli_session_t *s, int timeout_ms, frame_info_t *info)
{
    memset(info, 0, sizeof *info);
    if (s->closed || s->failed)
        return false;
    chat_ws_msg_t m;
    chat_err_t rc = chat_ws_recv(s->ws, timeout_ms, &m);
    if (rc == CHAT_ERR_TIMEOUT)
        return false;
    if (rc != CHAT_OK) {
        fprintf(stderr, "chat-cli: connection failed: %s\n", chat_ws_last_error(s->ws));
        s->failed = true;
        return false;
    }
    if (m.opcode == CHAT_WS_OP_CLOSE) {
        s->closed = true;
        if (!s->close_sent) {
            fprintf(stderr, "chat-cli: connection closed by the server: code %d%s%s\n",
                    m.close_code, m.len ? ", reason: " : "", m.data);
            s->failed = true;
        }
    } else if (m.opcode == CHAT_WS_OP_BINARY) {
        printf("(binary frame of %zu bytes)\n", m.len);
        fflush(stdout);
    } else {
        on_text(s, &m, info);
    }
    chat_ws_msg_clear(&m);
    return true;
}

/* ---- frames out ---- */

/* Sends a built frame (frees it). False, with a message, if it could not be sent. */
static bool send_frame(cli_session_t *s, char *frame)
{
    if (frame == NULL) {
        fprintf(stderr, "chat-cli: out of memory\n");
        s->failed = true;
        return false;
    }
    chat_err_t rc = chat_ws_send_text(s->ws, frame, strlen(frame));
    free(frame);
    if (rc != CHAT_OK) {
        fprintf(stderr, "chat-cli: send failed: %s\n", chat_ws_last_error(s->ws));
        s->failed = true;
        return false;
    }
    return true;
}

/* Remembers a request until its answer comes: kind 'c' for a cid, 'r' for a rid. */
static bool track(cli_session_t *s, char kind, const char *id)
{
    char key[80];
    snprintf(key, sizeof key, "%c:%s", kind, id);
    return list_find(&s->pending, key) >= 0 || list_add(&s->pending, key);
}

static bool send_message(cli_session_t *s, const char *text)
{
    if (s->rooms.n == 0) {
        fprintf(stderr, "chat-cli: no room joined: use --join or /join (line not sent)\n");
        return true;
    }
    char cid[48];
    snprintf(cid, sizeof cid, "%d-%lu", (int)getpid(), ++s->next_cid);
    if (!track(s, 'c', cid))
        return send_frame(s, NULL);
    return send_frame(s, chat_client_frame_send(s->rooms.items[0], cid, text));
}

/* Sends a frame typed by the user; a send's cid and any rid in it are waited for like
 * our own requests. */
static bool send_raw(cli_session_t *s, const char *text)
{
    cJSON *o = cJSON_Parse(text);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(o, "cid");
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(o, "rid");
    bool ok = true;
    if (cJSON_IsString(type) && strcmp(type->valuestring, "send") == 0 && cJSON_IsString(cid))
        ok = track(s, 'c', cid->valuestring);
    if (ok && cJSON_IsString(rid))
        ok = track(s, 'r', rid->valuestring);
    cJSON_Delete(o);
    return ok ? send_frame(s, strdup(text)) : send_frame(s, NULL);
}

/* A fresh rid "<what>-<n>" in rid, remembered until answered. */
static bool new_request(cli_session_t *s, const char *what, char *rid, size_t len)
{
    snprintf(rid, len, "%s-%lu", what, ++s->next_rid);
    return track(s, 'r', rid);
}

/* /edit, /delete, /react in the first room joined. A toggled reaction is on unless this
 * session turned it on last (the server does not say whose reactions a client holds). */
static bool send_update(cli_session_t *s, const chat_cli_cmd_t *cmd)
{
    if (s->rooms.n == 0) {
        fprintf(stderr, "chat-cli: no room joined: use --join or /join (not sent)\n");
        return true;
    }
    const char *room = s->rooms.items[0];
    char rid[32];
    if (!new_request(s,
                     cmd->kind == CHAT_CLI_CMD_EDIT     ? "edit"
                     : cmd->kind == CHAT_CLI_CMD_DELETE ? "delete"
                                                        : "react",
                     rid, sizeof rid))
        return send_frame(s, NULL);
    if (cmd->kind == CHAT_CLI_CMD_EDIT)
        return send_frame(s, chat_client_frame_edit(room, cmd->id, cmd->text, rid));
    if (cmd->kind == CHAT_CLI_CMD_DELETE)
        return send_frame(s, chat_client_frame_delete(room, cmd->id, rid));
    char key[256];
    snprintf(key, sizeof key, "%s %s", cmd->id, cmd->emoji);
    bool had = list_find(&s->reacted, key) >= 0;
    bool on = cmd->react == 1 || (cmd->react == -1 && !had);
    if (on && !had && !list_add(&s->reacted, key))
        return send_frame(s, NULL);
    if (!on && had)
        list_remove(&s->reacted, key);
    return send_frame(s, chat_client_frame_react(room, cmd->id, cmd->emoji, on, rid));
}

static bool send_join(cli_session_t *s, const char *room, int64_t since, const char *rid)
{
    if (list_find(&s->rooms, room) < 0 && !list_add(&s->rooms, room))
        return send_frame(s, NULL);
    return send_frame(s, chat_client_frame_join(room, since, rid));
}

/* /read: a room given or the first joined one, a seq given or the latest seen there. No rid:
 * only a refused mark is answered (an error), and nothing waits for it. */
static bool send_read(cli_session_t *s, const chat_cli_cmd_t *cmd)
{
    const char *room = cmd->room[0] != '\0' ? cmd->room : s->rooms.n > 0 ? s->rooms.items[0] : NULL;
    if (room == NULL) {
        fprintf(stderr, "chat-cli: no room joined: /read ROOM [SEQ]\n");
        return true;
    }
    int64_t seq = cmd->seq;
    if (seq < 1) {
        long i = list_find(&s->seen, room);
        seq = i >= 0 ? s->seen_seq[i] : 0;
    }
    if (seq < 1) {
        fprintf(stderr, "chat-cli: no message seen in %s yet: /read %s SEQ\n", room, room);
        return true;
    }
    return send_frame(s, chat_client_frame_read(room, seq, NULL));
}

/* Carries out one line of stdin. */
static bool handle_line(cli_session_t *s, char *line)
{
    chat_cli_cmd_t cmd;
    chat_cli_cmd_parse(line, &cmd);
    char rid[32];
    switch (cmd.kind) {
    case CHAT_CLI_CMD_EMPTY:
        return true;
    case CHAT_CLI_CMD_SEND:
        return send_message(s, cmd.text);
    case CHAT_CLI_CMD_JOIN:
        if (!new_request(s, "join", rid, sizeof rid))
            return send_frame(s, NULL);
        return send_join(s, cmd.room, cmd.since, rid);
    case CHAT_CLI_CMD_LEAVE:
        list_remove(&s->rooms, cmd.room);
        if (!new_request(s, "leave", rid, sizeof rid))
            return send_frame(s, NULL);
        return send_frame(s, chat_client_frame_leave(cmd.room, rid));
    case CHAT_CLI_CMD_HISTORY:
        if (!new_request(s, "history", rid, sizeof rid))
            return send_frame(s, NULL);
        return send_frame(s, chat_client_frame_history(cmd.room, cmd.before, cmd.limit, rid));
    case CHAT_CLI_CMD_EDIT:
    case CHAT_CLI_CMD_DELETE:
    case CHAT_CLI_CMD_REACT:
        return send_update(s, &cmd);
    case CHAT_CLI_CMD_TYPING:
        if (cmd.room[0] == '\0' && s->rooms.n == 0) {
            fprintf(stderr, "chat-cli: no room joined: use /typing ROOM or /join\n");
            return true;
        }
        /* No rid: typing is never answered (an error about it still prints). */
        return send_frame(
            s, chat_client_frame_typing(cmd.room[0] != '\0' ? cmd.room : s->rooms.items[0], NULL));
    case CHAT_CLI_CMD_READ:
        return send_read(s, &cmd);
    case CHAT_CLI_CMD_ROOMS:
        if (!new_request(s, "rooms", rid, sizeof rid))
            return send_frame(s, NULL);
        return send_frame(s, chat_client_frame_rooms(0, cmd.cursor[0] ? cmd.cursor : NULL, rid));
    case CHAT_CLI_CMD_PUSH:
    case CHAT_CLI_CMD_PUSH_OFF:
    case CHAT_CLI_CMD_PUSH_PREFS:
        if (!new_request(s, "push", rid, sizeof rid))
            return send_frame(s, NULL);
        if (cmd.kind == CHAT_CLI_CMD_PUSH)
            return send_frame(
                s, chat_client_frame_push_subscribe(cmd.endpoint, cmd.p256dh, cmd.auth, rid));
        if (cmd.kind == CHAT_CLI_CMD_PUSH_OFF)
            return send_frame(s, chat_client_frame_push_unsubscribe(cmd.endpoint, rid));
        return send_frame(
            s, chat_client_frame_push_prefs(cmd.room[0] != '\0' ? cmd.room : NULL, cmd.mode, rid));
    case CHAT_CLI_CMD_RAW:
        return send_raw(s, cmd.text);
    case CHAT_CLI_CMD_QUIT:
        s->input_done = true;
        return true;
    case CHAT_CLI_CMD_HELP:
        fputs(chat_cli_cmd_help, stderr);
        return true;
    case CHAT_CLI_CMD_BAD:
        fprintf(stderr, "chat-cli: %s\n", cmd.error);
        return true;
    }
    return true;
}

/* ---- stdin ---- */

static bool line_append(cli_session_t *s, const char *p, size_t n)
{
    char *nl = chat_array_grow(s->line, &s->line_cap, s->line_len + n + 1, 1);
    if (nl == NULL)
        return false;
    s->line = nl;
    memcpy(s->line + s->line_len, p, n);
    s->line_len += n;
    s->line[s->line_len] = '\0';
    return true;
}

/* Takes the bytes of one read(2) of stdin and handles every line they complete. At the
 * end of input (n == 0) an unterminated last line counts too. */
static bool feed_input(cli_session_t *s, const char *buf, size_t n)
{
    if (n == 0) {
        bool ok = s->line_len == 0 || handle_line(s, s->line);
        s->line_len = 0;
        s->input_done = true;
        return ok;
    }
    while (n > 0 && !s->input_done) {
        const char *nl = memchr(buf, '\n', n);
        size_t take = nl ? (size_t)(nl - buf) : n;
        if (!line_append(s, buf, take))
            return send_frame(s, NULL);
        if (nl == NULL)
            return true;
        s->line_len = 0;
        if (!handle_line(s, s->line))
            return false;
        buf += take + 1;
        n -= take + 1;
    }
    return true;
}

static bool read_stdin(cli_session_t *s)
{
    char buf[4096];
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n < 0) {
        fprintf(stderr, "chat-cli: reading stdin: %s\n", strerror(errno));
        n = 0;
    }
    return feed_input(s, buf, (size_t)n);
}

/* ---- phases ---- */

/* Authenticates: sends auth and waits for welcome. */
static bool authenticate(cli_session_t *s, const char *token, int64_t deadline)
{
    if (!send_frame(s, chat_client_frame_auth(token)))
        return false;
    frame_info_t info;
    while (!s->closed && !s->failed && chat_clock_mono_ms() < deadline) {
        if (receive_one(s, chat_clock_remaining_ms(deadline), &info) &&
            strcmp(info.type, "welcome") == 0)
            return true;
    }
    if (!s->closed && !s->failed)
        fprintf(stderr, "chat-cli: no welcome within %d s\n", s->opts->connect_timeout_s);
    return false;
}

/* Joins the rooms of --join and waits until each got joined or an error. A join that stays
 * unanswered is reported; the session goes on. */
static bool join_initial(cli_session_t *s, int64_t deadline)
{
    const chat_cli_options_t *o = s->opts;
    bool *answered = calloc(o->njoins + 1, sizeof *answered);
    if (answered == NULL)
        return send_frame(s, NULL);
    size_t open = o->njoins;
    for (size_t i = 0; i < o->njoins && !s->failed; i++) {
        char rid[32];
        snprintf(rid, sizeof rid, "join-%zu", i + 1);
        send_join(s, o->joins[i], o->since, rid);
    }
    frame_info_t info;
    while (open > 0 && !s->closed && !s->failed && chat_clock_mono_ms() < deadline) {
        if (!receive_one(s, chat_clock_remaining_ms(deadline), &info))
            continue;
        for (size_t i = 0; i < o->njoins; i++) {
            char rid[32];
            snprintf(rid, sizeof rid, "join-%zu", i + 1);
            bool match =
                (strcmp(info.type, "joined") == 0 && strcmp(info.room, o->joins[i]) == 0) ||
                (strcmp(info.type, "error") == 0 && strcmp(info.rid, rid) == 0);
            if (match && !answered[i]) {
                answered[i] = true;
                open--;
                break;
            }
        }
    }
    free(answered);
    if (open > 0 && !s->closed && !s->failed)
        fprintf(stderr, "chat-cli: %zu join(s) unanswered after %d s\n", open,
                o->connect_timeout_s);
    return !s->closed && !s->failed;
}

/* Relays stdin and frames until stdin ended and nothing is pending (or --wait is over). */
static int relay(cli_session_t *s)
{
    int64_t wait_deadline = -1;
    while (!s->failed && !s->closed) {
        if (s->input_done && wait_deadline < 0)
            wait_deadline = chat_clock_mono_ms() + (int64_t)s->opts->wait_s * 1000;
        if (s->input_done && s->pending.n == 0)
            return CHAT_CLI_EXIT_OK;
        if (s->input_done && chat_clock_mono_ms() >= wait_deadline) {
            fprintf(stderr, "chat-cli: %zu request(s) unanswered after %d s\n", s->pending.n,
                    s->opts->wait_s);
            return CHAT_CLI_EXIT_UNACKED;
        }
        struct pollfd pfd[2] = {{.fd = chat_ws_fd(s->ws), .events = POLLIN},
                                {.fd = STDIN_FILENO, .events = POLLIN}};
        int timeout = -1; /* until input */
        if (chat_ws_pending(s->ws))
            timeout = 0;
        else if (s->input_done)
            timeout = chat_clock_remaining_ms(wait_deadline);
        int pr = poll(pfd, s->input_done ? 1 : 2, timeout);
        if (pr < 0 && errno != EINTR) {
            fprintf(stderr, "chat-cli: poll: %s\n", strerror(errno));
            return CHAT_CLI_EXIT_CONN;
        }
        frame_info_t info;
        if (pr >= 0 && (chat_ws_pending(s->ws) || pfd[0].revents))
            while (receive_one(s, 0, &info) && !s->closed)
                ;
        if (pr > 0 && !s->input_done && pfd[1].revents && !read_stdin(s))
            break;
    }
    return CHAT_CLI_EXIT_CONN;
}

/* Says goodbye: close frame, then the server's answer (frames before it are printed). */
static void say_goodbye(cli_session_t *s)
{
    if (s->closed || s->failed)
        return;
    if (chat_ws_close(s->ws, CHAT_WS_CLOSE_NORMAL, "bye") != CHAT_OK)
        return;
    s->close_sent = true;
    int64_t deadline = chat_clock_mono_ms() + CLI_CLOSE_WAIT_MS;
    frame_info_t info;
    while (!s->closed && !s->failed && chat_clock_mono_ms() < deadline)
        receive_one(s, chat_clock_remaining_ms(deadline), &info);
}

/* The token of the session: --token, or one minted from the options. */
static char *session_token(const chat_cli_options_t *o)
{
    if (o->token != NULL)
        return strdup(o->token);
    chat_token_spec_t spec = {.tenant = o->tenant,
                              .secret = o->secret,
                              .user = o->user,
                              .name = o->name,
                              .rooms = o->rooms,
                              .ttl_s = o->ttl_s};
    char *token = NULL;
    chat_err_t rc = chat_token_mint(&spec, &token);
    if (rc != CHAT_OK)
        fprintf(stderr,
                "chat-cli: cannot mint a token: %s (check --tenant, --user, --name, "
                "--rooms)\n",
                chat_err_str(rc));
    return token;
}

int chat_cli_session_run(const chat_cli_options_t *opts)
{
    char *token = session_token(opts);
    if (token == NULL)
        return CHAT_CLI_EXIT_USAGE;
    cli_session_t s = {.opts = opts};
    int64_t deadline = chat_clock_mono_ms() + (int64_t)opts->connect_timeout_s * 1000;
    char err[256];
    chat_err_t rc =
        chat_ws_connect(opts->url, chat_clock_remaining_ms(deadline), &s.ws, err, sizeof err);
    if (rc != CHAT_OK) {
        fprintf(stderr, "chat-cli: cannot connect to %s: %s\n", opts->url, err);
        free(token);
        return rc == CHAT_ERR_INVALID && strstr(err, "not a ws://") ? CHAT_CLI_EXIT_USAGE
                                                                    : CHAT_CLI_EXIT_CONN;
    }
    int code = CHAT_CLI_EXIT_CONN;
    if (authenticate(&s, token, deadline) && join_initial(&s, deadline))
        code = relay(&s);
    if (code != CHAT_CLI_EXIT_CONN)
        say_goodbye(&s);
    if (s.failed)
        code = CHAT_CLI_EXIT_CONN;
    free(token);
    free(s.line);
    list_free(&s.rooms);
    list_free(&s.reacted);
    list_free(&s.pending);
    list_free(&s.seen);
    free(s.seen_seq);
    chat_ws_free(s.ws);
    return code;
}
