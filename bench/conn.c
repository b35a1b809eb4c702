/* One bench connection's protocol: TCP connect from the worker's source address, the
 * WebSocket upgrade, auth, join (with since after a reconnect), sends and their answers, and
 * the accounting of every msg frame: latency, duplicates, gaps, replays. Reads go into the
 * connection's own buffer and frames are read in place: nothing is allocated per frame. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/scan.h"
#include "bench/worker_int.h"
#include "bench/ws_frame.h"
#include "common/array.h"
#include "tools/client/chat_token.h"

#define RBUF_INITIAL 4096
#define FRAME_OUT_MAX 8192 /* the largest frame we send: a 3900-byte text, an auth token */
#define TOKEN_TTL_S (24 * 3600)
#define TEXT_TAG "bench:"

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint64_t bench_rng_next(worker_t *w)
{
    uint64_t x = w->rng; /* xorshift64: masks and nonces need no more */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return w->rng = x;
}

static bool in_setup(const conn_t *c)
{
    return c->state >= CS_CONNECTING && c->state <= CS_JOINING;
}

static bench_step_t step_of(const conn_t *c)
{
    switch (c->state) {
    case CS_UPGRADING:
        return BENCH_STEP_UPGRADE;
    case CS_AUTHING:
        return BENCH_STEP_AUTH;
    case CS_JOINING:
        return BENCH_STEP_JOIN;
    default:
        return BENCH_STEP_CONNECT;
    }
}

static void set_epollout(worker_t *w, conn_t *c, bool on)
{
    if (c->want_out == on || c->fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
                             .data.u32 = c->id - w->conn_lo};
    (void)epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

/* Closes the socket and forgets the sends that await an answer (counted as unacked). */
static void drop_socket(worker_t *w, conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->rlen = c->wlen = 0;
    c->want_out = false;
    if (c->state == CS_READY) {
        w->c.ready--;
        w->c.ready_per_gw[c->gw]--;
    }
    if (in_setup(c))
        w->inflight--;
    for (uint32_t i = 0; c->ring != NULL && i < BENCH_RING; i++) {
        if (c->ring[i].used) {
            w->ph[c->ring[i].phase].unacked_closed++;
            c->ring[i].used = false;
        }
    }
    c->outstanding = 0;
    if (c->synced && c->member)
        c->has_since = true; /* rejoin where it left off */
}

/* Schedules the next attempt of c after an exponential backoff with jitter, as clients do
 * (half to all of 1 s, 2 s, 4 s ... at most 30 s), or gives up after the configured number
 * of attempts. A client of the storm never gives up, as a real client would not: the storm's
 * timeout ends its wait. */
static void retry_later(worker_t *w, conn_t *c)
{
    if (!c->storm && c->attempts >= w->opts->connect_retries) {
        c->state = CS_DONE;
        w->c.gave_up++;
        return;
    }
    c->state = CS_WAIT;
    int shift = c->attempts > 6 ? 5 : c->attempts - 1;
    int64_t ceiling = (INT64_C(1000000000) << (shift < 0 ? 0 : shift));
    if (ceiling > INT64_C(30000000000))
        ceiling = INT64_C(30000000000);
    int64_t backoff = ceiling / 2 + (int64_t)(bench_rng_next(w) % (uint64_t)(ceiling / 2));
    (void)bench_timer_heap_push(&w->starts, w->now + backoff, c->id - w->conn_lo);
}

/* A set-up step failed (kind: 0 timeout, 1 closed by the server, 2 another error). */
static void fail_step(worker_t *w, conn_t *c, int kind)
{
    bench_step_t s = step_of(c);
    uint64_t *count = kind == 0   ? w->c.fail_timeout
                      : kind == 1 ? w->c.fail_closed
                                  : w->c.fail_error;
    count[s]++;
    drop_socket(w, c);
    retry_later(w, c);
}

/* The server closed c (close frame with code, or the TCP connection ended: 1006). */
static void lost(worker_t *w, conn_t *c, int code)
{
    w->c.closes[bench_close_of(code)]++;
    if (in_setup(c)) {
        fail_step(w, c, 1);
        return;
    }
    if (c->state == CS_READY) {
        w->c.closes_ready++;
        c->attempts = 0; /* it had worked: reconnect like a client would */
    }
    drop_socket(w, c);
    retry_later(w, c);
}

void bench_conn_check_timeout(worker_t *w, conn_t *c)
{
    if (in_setup(c) && c->deadline_ns < w->now)
        fail_step(w, c, 0);
}

/* Writes data, keeping what the socket does not take for EPOLLOUT. False if c was lost. */
static bool conn_write(worker_t *w, conn_t *c, const unsigned char *data, size_t len)
{
    size_t done = 0;
    if (c->wlen == 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            lost(w, c, 1006);
            return false;
        }
        done = n > 0 ? (size_t)n : 0;
        if (done == len)
            return true;
    }
    size_t rest = len - done;
    unsigned char *nb = chat_array_grow(c->wbuf, &c->wcap, c->wlen + rest, 1);
    if (nb == NULL) {
        lost(w, c, 1006);
        return false;
    }
    c->wbuf = nb;
    memcpy(c->wbuf + c->wlen, data + done, rest);
    c->wlen += (uint32_t)rest;
    set_epollout(w, c, true);
    return true;
}

static void flush(worker_t *w, conn_t *c)
{
    if (c->wlen == 0) {
        set_epollout(w, c, false);
        return;
    }
    ssize_t n = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            lost(w, c, 1006);
        return;
    }
    memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
    c->wlen -= (uint32_t)n;
    if (c->wlen == 0)
        set_epollout(w, c, false);
}

static bool send_frame(worker_t *w, conn_t *c, int opcode, const void *payload, size_t len)
{
    unsigned char out[FRAME_OUT_MAX + BENCH_WS_FRAME_HEADER_MAX];
    size_t n =
        bench_ws_frame_encode(out, sizeof out, opcode, payload, len, (uint32_t)bench_rng_next(w));
    return n > 0 && conn_write(w, c, out, n);
}

static bool send_text(worker_t *w, conn_t *c, const char *text, int len)
{
    return len > 0 && len < FRAME_OUT_MAX && send_frame(w, c, CHAT_WS_OP_TEXT, text, (size_t)len);
}

void bench_conn_start(worker_t *w, conn_t *c)
{
    c->attempts++;
    w->c.attempts++;
    w->c.storm_reconnects += c->storm;
    c->start_ns = w->now;
    c->deadline_ns = w->now + w->op_timeout_ns;
    c->state = CS_CONNECTING;
    w->inflight++;
    const bench_gateway_t *g = &w->plan->gw[c->gw];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->fd = fd;
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE)
            fprintf(stderr, "chat-bench: worker %u: out of file descriptors\n", w->index);
        fail_step(w, c, 2);
        return;
    }
    int one = 1;
    /* The port is chosen at connect, per destination: one source address serves every
     * gateway with the whole ephemeral range each. */
    (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in dst = {
        .sin_family = AF_INET, .sin_addr.s_addr = g->addr, .sin_port = g->port};
    if (bind(fd, (const struct sockaddr *)&w->src, sizeof w->src) < 0 ||
        (connect(fd, (const struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS)) {
        fail_step(w, c, 2);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = c->id - w->conn_lo};
    c->want_out = true;
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        fail_step(w, c, 2);
}

static void on_connected(worker_t *w, conn_t *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
        fail_step(w, c, 2);
        return;
    }
    unsigned char nonce[16];
    uint64_t a = bench_rng_next(w), b = bench_rng_next(w);
    memcpy(nonce, &a, 8);
    memcpy(nonce + 8, &b, 8);
    char key[BENCH_WS_KEY_LEN + 1];
    bench_ws_key_new(nonce, key, c->accept);
    char req[1024];
    const bench_gateway_t *g = &w->plan->gw[c->gw];
    size_t n = bench_ws_upgrade_request(req, sizeof req, g->host, g->path, key);
    c->state = CS_UPGRADING;
    c->deadline_ns = w->now + w->op_timeout_ns;
    if (conn_write(w, c, (const unsigned char *)req, n))
        flush(w, c); /* turns EPOLLOUT off once written */
}

static void send_auth(worker_t *w, conn_t *c)
{
    char user[80];
    bench_plan_user(w->plan, c->id, user, sizeof user);
    chat_token_spec_t spec = {
        .tenant = w->plan->tenant, .secret = w->plan->secret, .user = user, .ttl_s = TOKEN_TTL_S};
    char *token = NULL;
    if (chat_token_mint(&spec, &token) != CHAT_OK) {
        fprintf(stderr, "chat-bench: cannot mint a token for %s of tenant %s\n", user,
                w->plan->tenant);
        fail_step(w, c, 2);
        return;
    }
    char frame[FRAME_OUT_MAX];
    int n = snprintf(frame, sizeof frame, "{\"type\":\"auth\",\"token\":\"%s\"}", token);
    free(token);
    c->state = CS_AUTHING;
    c->deadline_ns = w->now + w->op_timeout_ns;
    (void)send_text(w, c, frame, n);
}

static void send_join(worker_t *w, conn_t *c)
{
    char room[160], frame[512];
    bench_plan_room(w->plan, c->room, room, sizeof room);
    int n =
        c->has_since
            ? snprintf(frame, sizeof frame, "{\"type\":\"join\",\"room\":\"%s\",\"since\":%lld}",
                       room, (long long)c->last_seq)
            : snprintf(frame, sizeof frame, "{\"type\":\"join\",\"room\":\"%s\"}", room);
    c->state = CS_JOINING;
    c->join_ns = w->now;
    c->deadline_ns = w->now + w->op_timeout_ns;
    (void)send_text(w, c, frame, n);
}

static void become_ready(worker_t *w, conn_t *c)
{
    w->inflight--;
    c->state = CS_READY;
    c->attempts = 0;
    w->c.ready++;
    w->c.ready_per_gw[c->gw]++;
    bench_hist_record(&w->c.setup, (w->now - c->start_ns) / 1000);
}

/* The storm's bookkeeping once c has its joined and every seq up to it. */
static void check_resumed(worker_t *w, conn_t *c)
{
    if (!c->storm || c->state != CS_READY || c->last_seq < c->replay_until)
        return;
    c->storm = false;
    w->c.storm_resumed++;
    if (w->now > w->c.storm_last_resumed_ns)
        w->c.storm_last_resumed_ns = w->now;
    bench_hist_record(&w->c.storm_resume, (w->now - c->storm_at_ns) / 1000);
}

static void on_welcome(worker_t *w, conn_t *c)
{
    if (c->state != CS_AUTHING)
        return;
    if (c->member) {
        send_join(w, c);
    } else {
        become_ready(w, c); /* a sender of its own needs no subscription */
    }
}

static void on_joined(worker_t *w, conn_t *c, const char *p, size_t n)
{
    int64_t seq = 0;
    if (c->state != CS_JOINING || !bench_scan_int(p, n, "seq", &seq))
        return;
    bench_hist_record(&w->c.join, (w->now - c->join_ns) / 1000);
    if (!c->has_since && seq > c->last_seq) {
        c->last_seq = seq; /* a first join: what came before is not ours to get */
        c->seen = 1;
    }
    c->replay_until = seq;
    c->synced = true;
    become_ready(w, c);
    if (c->storm && w->now > w->c.storm_last_joined_ns)
        w->c.storm_last_joined_ns = w->now;
    check_resumed(w, c);
}

/* Reads "bench:<phase>:<sent ns>:" at the start of a text; *rest is the offset after it. */
static bool parse_text(const char *t, size_t len, int64_t *phase, int64_t *sent_ns, size_t *rest)
{
    size_t tag = sizeof TEXT_TAG - 1;
    if (len < tag + 4 || memcmp(t, TEXT_TAG, tag) != 0)
        return false;
    size_t d = bench_scan_digits(t + tag, len - tag, phase);
    if (d == 0 || tag + d >= len || t[tag + d] != ':' || *phase >= BENCH_MAX_PHASES)
        return false;
    size_t off = tag + d + 1;
    d = bench_scan_digits(t + off, len - off, sent_ns);
    *rest = off + d + (off + d < len && t[off + d] == ':');
    return d > 0;
}

/* Whether the text after the prefix starts with the bad word and a space (see send_msg). */
static bool is_bad(const bench_plan_t *p, const char *rest, size_t len)
{
    return p->bad_every > 0 && len > p->bad_word_len &&
           memcmp(rest, p->bad_word, p->bad_word_len) == 0 && rest[p->bad_word_len] == ' ';
}

/* Wall clock in microseconds, as the stored ts of messages counts (in ms). */
static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* CHAT_BENCH_TRACE=1: every anomaly of the msg stream on stderr, to find out why. */
static void trace(const worker_t *w, const conn_t *c, const char *what, int64_t seq)
{
    static int on = -1;
    if (on < 0) {
        const char *v = getenv("CHAT_BENCH_TRACE");
        on = v != NULL && *v != '\0' && strcmp(v, "0") != 0;
    }
    if (on)
        fprintf(stderr,
                "[bench] trace: %s: conn %u room %u state %u seq %lld last %lld replay_until "
                "%lld synced %d since %d attempts %u\n",
                what, c->id, c->room, c->state, (long long)seq, (long long)c->last_seq,
                (long long)c->replay_until, c->synced, c->has_since, c->attempts);
    (void)w;
}

typedef enum seq_kind {
    SEQ_NEW,       /* above every seq the connection had */
    SEQ_REORDERED, /* below the newest, not seen before */
    SEQ_DUPLICATE,
} seq_kind_t;

/* Where seq stands in c's stream of its room; counts gaps (and a reordered seq fills one). */
static seq_kind_t track_seq(worker_t *w, conn_t *c, int64_t seq)
{
    if (seq > c->last_seq) {
        int64_t skip = seq - c->last_seq;
        if (c->synced && skip > 1) {
            w->c.gaps += (uint64_t)(skip - 1);
            trace(w, c, "gap", seq);
        }
        c->seen = skip >= 64 ? 1 : (c->seen << skip) | 1;
        c->last_seq = seq;
        return SEQ_NEW;
    }
    int64_t back = c->last_seq - seq;
    uint64_t bit = back < 64 ? UINT64_C(1) << back : 0;
    if (bit == 0 || (c->seen & bit)) {
        trace(w, c, "duplicate", seq);
        return SEQ_DUPLICATE;
    }
    trace(w, c, "reordered", seq);
    c->seen |= bit; /* below the newest, never seen: out of order, and no longer a gap */
    if (w->c.gaps > 0)
        w->c.gaps--;
    return SEQ_REORDERED;
}

/* A member received a bad message: remember it until its removal arrives. */
static void mod_seen_add(worker_t *w, conn_t *c, int64_t seq, int64_t phase, const char *p,
                         size_t n)
{
    if (c->mod_seen == NULL)
        return;
    mod_seen_t *e = &c->mod_seen[c->mod_seen_next++ % BENCH_MOD_SEEN];
    if (e->used)
        w->c.removals_forgotten++;
    int64_t ts = 0;
    (void)bench_scan_int(p, n, "ts", &ts);
    *e = (mod_seen_t){.seq = seq, .ts_ms = ts, .phase = (uint8_t)phase, .used = true};
}

static void on_msg(worker_t *w, conn_t *c, const char *p, size_t n)
{
    const char *room, *text;
    size_t room_len, text_len, rest;
    int64_t seq, phase, sent_ns;
    if (!bench_scan_str(p, n, "room", &room, &room_len) ||
        bench_plan_room_index(w->plan, room, room_len) != (int64_t)c->room ||
        !bench_scan_int(p, n, "seq", &seq)) {
        w->c.foreign++;
        return;
    }
    if (!bench_scan_str(p, n, "text", &text, &text_len) ||
        !parse_text(text, text_len, &phase, &sent_ns, &rest)) {
        /* Removed before it reached this member (a replay after a reconnect): no text, so no
         * phase to count it in; its seq still counts for gaps. */
        if (memmem(p, n, "\"removed\":true", 14) != NULL) {
            if (track_seq(w, c, seq) != SEQ_DUPLICATE)
                w->c.removed_msgs++;
            check_resumed(w, c);
            return;
        }
        w->c.foreign++;
        return;
    }
    bench_phase_stats_t *ph = &w->ph[phase];
    seq_kind_t k = track_seq(w, c, seq);
    if (k == SEQ_DUPLICATE) {
        ph->duplicates++;
        return;
    }
    ph->reordered += k == SEQ_REORDERED;
    ph->delivered++;
    if (seq <= c->replay_until)
        ph->replayed++;
    else
        bench_hist_record(&ph->latency, (w->now - sent_ns) / 1000);
    if (is_bad(w->plan, text + rest, text_len - rest))
        mod_seen_add(w, c, seq, phase, p, n);
    check_resumed(w, c);
}

/* The cid of our sends: the decimal counter of the sending connection. */
static out_slot_t *slot_of_cid(conn_t *c, const char *p, size_t n)
{
    const char *cid;
    size_t len;
    int64_t v;
    if (c->ring == NULL || !bench_scan_str(p, n, "cid", &cid, &len) ||
        bench_scan_digits(cid, len, &v) != len || len == 0)
        return NULL;
    out_slot_t *s = &c->ring[(uint64_t)v % BENCH_RING];
    return s->used && s->n == (uint64_t)v ? s : NULL;
}

/* A sender's bad message was stored: remember the ack's id and ts (the stored time) with the
 * send's time until its removal arrives. */
static void mod_acked_add(conn_t *c, const out_slot_t *s, int64_t seq, const char *p, size_t n)
{
    if (c->mod_acked == NULL)
        return;
    mod_acked_t *e = &c->mod_acked[c->mod_acked_next++ % BENCH_MOD_ACKED];
    const char *id;
    size_t id_len;
    int64_t ts = 0;
    (void)bench_scan_int(p, n, "ts", &ts);
    *e = (mod_acked_t){
        .seq = seq, .ts_ms = ts, .sent_ns = s->sent_ns, .phase = s->phase, .used = true};
    if (bench_scan_str(p, n, "id", &id, &id_len) && id_len <= sizeof e->id) {
        memcpy(e->id, id, id_len);
        e->id_len = (uint8_t)id_len;
    }
}

static void on_ack(worker_t *w, conn_t *c, const char *p, size_t n)
{
    out_slot_t *s = slot_of_cid(c, p, n);
    int64_t seq;
    if (s == NULL) {
        w->c.unexpected_acks++;
        return;
    }
    bench_phase_stats_t *ph = &w->ph[s->phase];
    ph->acked++;
    ph->expected += w->plan->members;
    bench_hist_record(&ph->ack, (w->now - s->sent_ns) / 1000);
    s->used = false;
    c->outstanding--;
    room_t *r = &w->rooms[c->room - w->room_lo];
    bool has_seq = bench_scan_int(p, n, "seq", &seq);
    if (has_seq && seq > r->max_acked)
        r->max_acked = seq;
    if (s->bad) {
        ph->bad_acked++;
        ph->removals_expected += w->plan->members;
        if (has_seq)
            mod_acked_add(c, s, seq, p, n);
    }
}

static void on_error(worker_t *w, conn_t *c, const char *p, size_t n)
{
    const char *code, *msg;
    size_t code_len, msg_len;
    bench_err_code_t e = BENCH_E_OTHER;
    if (bench_scan_str(p, n, "code", &code, &code_len))
        e = bench_err_code_parse(code, code_len);
    out_slot_t *s = slot_of_cid(c, p, n);
    if (s != NULL) {
        w->ph[s->phase].errors[e]++;
        s->used = false;
        c->outstanding--;
        return;
    }
    w->c.errors_other[e]++;
    if (bench_scan_str(p, n, "message", &msg, &msg_len) && msg_len >= 7 &&
        memmem(msg, msg_len, "no auth", 7) != NULL)
        w->c.no_auth_closes++;
    if (c->state == CS_JOINING)
        fail_step(w, c, 2);
}

/* An `update`: a removal (op moderate) of a bad message counts as delivered in the phase
 * the message was sent in, with the time since it was stored; at its sender also the time
 * since it was sent. Other ops are only counted. */
static void on_update(worker_t *w, conn_t *c, const char *p, size_t n)
{
    const char *op, *id = NULL;
    size_t op_len, id_len = 0;
    int64_t seq;
    if (!bench_scan_str(p, n, "op", &op, &op_len) || op_len != 8 ||
        memcmp(op, "moderate", 8) != 0) {
        w->c.updates_other++;
        return;
    }
    if (!bench_scan_int(p, n, "seq", &seq)) {
        w->c.removals_unmatched++;
        return;
    }
    int64_t now_us = wall_us();
    mod_seen_t *seen = NULL;
    for (uint32_t i = 0; c->mod_seen != NULL && i < BENCH_MOD_SEEN && seen == NULL; i++)
        if (c->mod_seen[i].used && c->mod_seen[i].seq == seq)
            seen = &c->mod_seen[i];
    if (seen == NULL) {
        w->c.removals_unmatched++;
    } else {
        bench_phase_stats_t *ph = &w->ph[seen->phase];
        ph->removals_delivered++;
        if (seen->ts_ms > 0) /* a msg frame without ts has no stored time to count from */
            bench_hist_record(&ph->verdict_members, now_us - seen->ts_ms * 1000);
        seen->used = false;
    }
    if (c->mod_acked == NULL)
        return;
    (void)bench_scan_str(p, n, "id", &id, &id_len);
    for (uint32_t i = 0; i < BENCH_MOD_ACKED; i++) {
        mod_acked_t *e = &c->mod_acked[i];
        if (!e->used || e->seq != seq ||
            (e->id_len > 0 && (id_len != e->id_len || memcmp(id, e->id, id_len) != 0)))
            continue;
        bench_phase_stats_t *ph = &w->ph[e->phase];
        if (e->ts_ms > 0)
            bench_hist_record(&ph->verdict, now_us - e->ts_ms * 1000);
        bench_hist_record(&ph->removal, (w->now - e->sent_ns) / 1000);
        e->used = false;
        return;
    }
}

static void on_text(worker_t *w, conn_t *c, const char *p, size_t n)
{
    switch (bench_scan_type(p, n)) {
    case BENCH_FRAME_MSG:
        on_msg(w, c, p, n);
        break;
    case BENCH_FRAME_ACK:
        on_ack(w, c, p, n);
        break;
    case BENCH_FRAME_ERROR:
        on_error(w, c, p, n);
        break;
    case BENCH_FRAME_WELCOME:
        on_welcome(w, c);
        break;
    case BENCH_FRAME_JOINED:
        on_joined(w, c, p, n);
        break;
    case BENCH_FRAME_TYPING:
        w->ph[w->phase].typing_received++; /* counted in the phase it arrives in */
        break;
    case BENCH_FRAME_UPDATE:
        on_update(w, c, p, n);
        break;
    case BENCH_FRAME_OTHER:
        break;
    }
}

/* Handles one complete frame; false if c was closed meanwhile. */
static bool on_frame(worker_t *w, conn_t *c, const bench_ws_frame_t *f)
{
    switch (f->opcode) {
    case CHAT_WS_OP_TEXT:
        if (!f->fin) {
            w->c.protocol_errors++; /* the gateway never fragments frames this small */
            lost(w, c, 1006);
            return false;
        }
        on_text(w, c, (const char *)f->payload, f->payload_len);
        break;
    case CHAT_WS_OP_PING:
        w->c.pings++;
        (void)send_frame(w, c, CHAT_WS_OP_PONG, f->payload, f->payload_len);
        break;
    case CHAT_WS_OP_CLOSE: {
        int code = f->payload_len >= 2 ? (f->payload[0] << 8) | f->payload[1] : 1005;
        (void)send_frame(w, c, CHAT_WS_OP_CLOSE, f->payload, f->payload_len >= 2 ? 2 : 0);
        lost(w, c, code);
        return false;
    }
    default:
        break;
    }
    return c->fd >= 0;
}

/* Parses what rbuf holds; false if c was closed meanwhile. */
static bool process(worker_t *w, conn_t *c)
{
    size_t off = 0;
    if (c->state == CS_UPGRADING) {
        long h = bench_ws_upgrade_check((const char *)c->rbuf, c->rlen, c->accept);
        if (h == 0 && c->rlen < c->rcap)
            return true; /* the rest of the answer is on its way */
        if (h <= 0) {
            fail_step(w, c, 2);
            return false;
        }
        off = (size_t)h;
        send_auth(w, c);
        if (c->fd < 0)
            return false;
    }
    while (off < c->rlen) {
        bench_ws_frame_t f;
        size_t need;
        bench_ws_parse_t r = bench_ws_frame_parse(c->rbuf + off, c->rlen - off, &f, &need);
        if (r == BENCH_WS_FRAME_BAD) {
            w->c.protocol_errors++;
            lost(w, c, 1006);
            return false;
        }
        if (r == BENCH_WS_FRAME_MORE) {
            /* A frame larger than the buffer: make room for it once. */
            unsigned char *nb = chat_array_grow(c->rbuf, &c->rcap, need, 1);
            if (nb == NULL) {
                lost(w, c, 1006);
                return false;
            }
            c->rbuf = nb;
            break;
        }
        if (!on_frame(w, c, &f))
            return false;
        off += f.frame_len;
    }
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= (uint32_t)off;
    }
    return true;
}

static void on_readable(worker_t *w, conn_t *c)
{
    for (;;) {
        size_t room = c->rcap - c->rlen;
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            lost(w, c, 1006);
            return;
        }
        c->rlen += (uint32_t)n;
        w->now = bench_now_ns(); /* the time these frames arrived */
        if (!process(w, c) || (size_t)n < room)
            return;
    }
}

void bench_conn_on_event(worker_t *w, conn_t *c, uint32_t events)
{
    if (c->fd < 0)
        return;
    if (c->state == CS_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connected(w, c);
        return;
    }
    if (events & EPOLLOUT) {
        flush(w, c);
        if (c->fd < 0)
            return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        on_readable(w, c);
}

void bench_conn_send_msg(worker_t *w, conn_t *c)
{
    bench_phase_stats_t *ph = &w->ph[w->phase];
    if (c->state != CS_READY) {
        ph->skipped_not_ready++;
        return;
    }
    uint32_t n = c->next_n;
    out_slot_t *s = &c->ring[n % BENCH_RING];
    if (s->used) {
        ph->skipped_backlog++;
        return;
    }
    /* Every bad_every-th message of a sender carries the bad word right after the prefix,
     * followed by a space: a whole word, and what members look for (is_bad). */
    const bench_plan_t *p = w->plan;
    bool bad = p->bad_every > 0 && n % p->bad_every == p->bad_every - 1;
    char room[160], frame[FRAME_OUT_MAX];
    bench_plan_room(p, c->room, room, sizeof room);
    int head = snprintf(
        frame, sizeof frame,
        "{\"type\":\"send\",\"room\":\"%s\",\"cid\":\"%u\",\"text\":\"" TEXT_TAG "%u:%lld:%s%s",
        room, n, w->phase, (long long)w->now, bad ? p->bad_word : "", bad ? " " : "");
    int text_head = head - (int)(strstr(frame, TEXT_TAG) - frame);
    int fill = (int)p->text_bytes - text_head;
    if (fill < 0)
        fill = 0;
    int len = head + snprintf(frame + head, sizeof frame - (size_t)head, "%.*s\"}", fill, w->pad);
    c->next_n++;
    *s = (out_slot_t){
        .sent_ns = w->now, .n = n, .phase = (uint8_t)w->phase, .used = true, .bad = bad};
    c->outstanding++;
    ph->sent++;
    ph->bad_sent += bad;
    w->phases_used |= UINT64_C(1) << w->phase;
    (void)send_text(w, c, frame, len);
}

void bench_conn_send_typing(worker_t *w, conn_t *c)
{
    bench_phase_stats_t *ph = &w->ph[w->phase];
    w->phases_used |= UINT64_C(1) << w->phase;
    if (c->state != CS_READY) {
        ph->typing_skipped++;
        return;
    }
    char room[160], frame[256];
    bench_plan_room(w->plan, c->room, room, sizeof room);
    int len = snprintf(frame, sizeof frame, "{\"type\":\"typing\",\"room\":\"%s\"}", room);
    ph->typing_sent++;
    (void)send_text(w, c, frame, len);
}

void bench_conn_hang_up(worker_t *w, conn_t *c)
{
    if (c->fd >= 0) {
        static const unsigned char going_away[2] = {1001 >> 8, 1001 & 0xff};
        (void)send_frame(w, c, CHAT_WS_OP_CLOSE, going_away, sizeof going_away);
    }
    if (c->fd >= 0) /* send_frame may have found it lost */
        drop_socket(w, c);
    c->attempts = 0;
}
