/* The worker's loop: epoll over its connections and its channel, the connection starts
 * (paced, a bounded number in set-up at once), the rooms' send schedules, the timeouts of
 * set-up steps, the storm, and the answers to the coordinator. */
#include "bench/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench/channel.h"
#include "bench/worker_int.h"

#define CHAN_ID UINT32_MAX /* epoll data of the channel */
#define SWEEP_NS 250000000 /* how often set-up deadlines are checked */
#define MAX_EVENTS 512

static bool worker_init(worker_t *w, const bench_plan_t *p, const bench_opts_t *o, uint32_t index,
                        int chan)
{
    memset(w, 0, sizeof *w);
    w->plan = p;
    w->opts = o;
    w->index = index;
    w->chan = chan;
    w->op_timeout_ns = (int64_t)(o->op_timeout_s * 1e9);
    w->rng = (uint64_t)bench_now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15u;
    bench_plan_worker_rooms(p, index, &w->room_lo, &w->room_hi);
    w->conn_lo = w->room_lo * p->conns_per_room;
    w->nconns = (w->room_hi - w->room_lo) * p->conns_per_room;
    w->src.sin_family = AF_INET;
    w->src.sin_addr.s_addr = htonl(0x7f000000u | (index + 2)); /* 127.0.0.<index + 2> */
    memset(w->pad, 'x', sizeof w->pad);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    w->conns = calloc(w->nconns ? w->nconns : 1, sizeof *w->conns);
    w->rooms = calloc(w->room_hi - w->room_lo + 1, sizeof *w->rooms);
    w->ph = calloc(BENCH_MAX_PHASES, sizeof *w->ph);
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->conns == NULL || w->rooms == NULL || w->ph == NULL || w->ep < 0 ||
        !bench_timer_heap_init(&w->sends, w->room_hi - w->room_lo + 1) ||
        !bench_timer_heap_init(&w->typings, w->room_hi - w->room_lo + 1) ||
        !bench_timer_heap_init(&w->starts, 2 * (size_t)w->nconns + 1))
        return false;
    for (uint32_t i = 0; i < w->nconns; i++) {
        conn_t *c = &w->conns[i];
        c->fd = -1;
        c->id = w->conn_lo + i;
        c->room = bench_plan_room_of(p, c->id);
        c->gw = (uint8_t)bench_plan_gateway_of(p, c->id);
        c->member = bench_plan_is_member(p, c->id);
        uint32_t first = bench_plan_first_sender(p, c->room);
        c->sender = c->id >= first && c->id < first + p->senders;
        c->rbuf = malloc(4096);
        c->rcap = 4096;
        if (c->rbuf == NULL)
            return false;
        if (c->sender && (c->ring = calloc(BENCH_RING, sizeof *c->ring)) == NULL)
            return false;
        /* Removals are seen by members only: a sender that does not join (storm) gets none. */
        if (p->bad_every > 0 && c->member &&
            ((c->mod_seen = calloc(BENCH_MOD_SEEN, sizeof *c->mod_seen)) == NULL ||
             (c->sender && (c->mod_acked = calloc(BENCH_MOD_ACKED, sizeof *c->mod_acked)) == NULL)))
            return false;
    }
    w->c.conns = w->nconns;
    for (uint32_t i = 0; i < w->nconns; i++)
        w->c.members += w->conns[i].member;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = CHAN_ID};
    return epoll_ctl(w->ep, EPOLL_CTL_ADD, chan, &ev) == 0;
}

/* ---- commands ---- */

static void on_connect(worker_t *w, const bench_cmd_connect_t *cmd)
{
    w->inflight_max = cmd->inflight ? cmd->inflight : UINT32_MAX;
    double gap = cmd->rate > 0 ? 1e9 / cmd->rate : 0;
    for (uint32_t i = 0; i < w->nconns; i++) {
        w->conns[i].state = CS_WAIT;
        (void)bench_timer_heap_push(&w->starts, w->now + (int64_t)(gap * i), i);
    }
}

static void on_phase(worker_t *w, const bench_cmd_phase_t *cmd)
{
    if (cmd->phase < BENCH_MAX_PHASES)
        w->phase = cmd->phase;
    w->rate = cmd->rate;
    w->sends.n = 0;
    w->typings.n = 0;
    uint32_t nrooms = w->room_hi - w->room_lo;
    if (w->rate <= 0 || nrooms == 0)
        return;
    w->interval_ns = 1e9 / w->rate;
    /* Spread the rooms' sends evenly over one interval. */
    for (uint32_t i = 0; i < nrooms; i++) {
        w->rooms[i].next_ns = w->now + (int64_t)(w->interval_ns * (i + 0.5) / nrooms);
        (void)bench_timer_heap_push(&w->sends, w->rooms[i].next_ns, i);
    }
    /* Typing while messages flow: a room's members take turns, so that each types once per
     * typing period; rooms spread over one turn. */
    if (w->plan->typing_s <= 0 || w->plan->members == 0)
        return;
    w->typing_interval_ns = w->plan->typing_s * 1e9 / w->plan->members;
    for (uint32_t i = 0; i < nrooms; i++) {
        w->rooms[i].typing_next_ns = w->now + (int64_t)(w->typing_interval_ns * (i + 0.5) / nrooms);
        (void)bench_timer_heap_push(&w->typings, w->rooms[i].typing_next_ns, i);
    }
}

static void on_storm(worker_t *w, const bench_cmd_storm_t *cmd)
{
    uint32_t k = 0, members = (uint32_t)w->c.members;
    w->storm_active = true;
    for (uint32_t i = 0; i < w->nconns; i++) {
        conn_t *c = &w->conns[i];
        if (!c->member)
            continue;
        bench_conn_hang_up(w, c);
        c->storm = true;
        c->storm_at_ns = cmd->start_ns + (members ? cmd->spread_ns * k / members : 0);
        k++;
        c->state = CS_WAIT;
        (void)bench_timer_heap_push(&w->starts, c->storm_at_ns, i);
        w->c.storm_clients++;
    }
}

static void status_of(worker_t *w, bench_status_t *s)
{
    memset(s, 0, sizeof *s);
    s->ready = w->c.ready;
    s->gave_up = w->c.gave_up;
    for (uint32_t i = 0; i < w->nconns; i++) {
        const conn_t *c = &w->conns[i];
        s->in_setup += c->state != CS_READY && c->state != CS_DONE;
        s->outstanding += c->outstanding;
    }
    for (int p = 0; p < BENCH_MAX_PHASES; p++) {
        s->expected += w->ph[p].expected;
        s->delivered += w->ph[p].delivered;
        s->removals_expected += w->ph[p].removals_expected;
        s->removals_delivered += w->ph[p].removals_delivered;
    }
    s->storm_clients = w->c.storm_clients;
    s->storm_resumed = w->c.storm_resumed;
    memcpy(s->ready_per_gw, w->c.ready_per_gw, sizeof s->ready_per_gw);
}

static bool send_phase(worker_t *w, uint32_t phase)
{
    static bench_ev_phase_t ev; /* 43 KB: not on the stack */
    ev.phase = phase;
    ev.stats = w->ph[phase < BENCH_MAX_PHASES ? phase : 0];
    return bench_chan_send(w->chan, BENCH_EV_PHASE, &ev, sizeof ev);
}

static bool send_report(worker_t *w)
{
    /* What each member still lacks of its room's acked messages. */
    w->c.behind = 0;
    for (uint32_t i = 0; i < w->nconns; i++) {
        const conn_t *c = &w->conns[i];
        int64_t max = w->rooms[c->room - w->room_lo].max_acked;
        if (c->member && max > c->last_seq)
            w->c.behind += (uint64_t)(max - c->last_seq);
    }
    if (!bench_chan_send(w->chan, BENCH_EV_COUNTERS, &w->c, sizeof w->c))
        return false;
    for (uint32_t p = 0; p < BENCH_MAX_PHASES; p++)
        if ((w->phases_used >> p & 1) && !send_phase(w, p))
            return false;
    return bench_chan_send(w->chan, BENCH_EV_END, NULL, 0);
}

static void on_command(worker_t *w)
{
    union {
        bench_cmd_connect_t connect;
        bench_cmd_phase_t phase;
        bench_cmd_storm_t storm;
        uint32_t u32;
    } cmd;
    bench_msg_t type;
    size_t len;
    memset(&cmd, 0, sizeof cmd);
    if (bench_chan_recv(w->chan, 0, &type, &cmd, sizeof cmd, &len) != 1) {
        w->quit = true; /* the coordinator is gone */
        return;
    }
    w->now = bench_now_ns();
    bench_status_t st;
    switch (type) {
    case BENCH_CMD_CONNECT:
        on_connect(w, &cmd.connect);
        break;
    case BENCH_CMD_PHASE:
        on_phase(w, &cmd.phase);
        break;
    case BENCH_CMD_STATUS:
        status_of(w, &st);
        w->quit = !bench_chan_send(w->chan, BENCH_EV_STATUS, &st, sizeof st);
        break;
    case BENCH_CMD_PHASE_STATS:
        w->quit = !send_phase(w, cmd.u32);
        break;
    case BENCH_CMD_STORM:
        on_storm(w, &cmd.storm);
        break;
    case BENCH_CMD_REPORT:
        w->quit = !send_report(w);
        break;
    default:
        w->quit = true;
        break;
    }
}

/* ---- timers ---- */

static void run_starts(worker_t *w)
{
    const bench_timer_t *t;
    while ((t = bench_timer_heap_peek(&w->starts)) != NULL && t->at_ns <= w->now &&
           (w->storm_active || w->inflight < w->inflight_max)) {
        bench_timer_t due;
        bench_timer_heap_pop(&w->starts, &due);
        conn_t *c = &w->conns[due.id];
        if (c->state != CS_WAIT)
            continue; /* an older schedule of a connection restarted since */
        if (c->storm && w->c.storm_first_ns == 0)
            w->c.storm_first_ns = w->now;
        bench_conn_start(w, c);
    }
}

static void run_sends(worker_t *w)
{
    const bench_timer_t *t;
    while ((t = bench_timer_heap_peek(&w->sends)) != NULL && t->at_ns <= w->now) {
        bench_timer_t due;
        bench_timer_heap_pop(&w->sends, &due);
        room_t *r = &w->rooms[due.id];
        uint32_t room = w->room_lo + due.id;
        uint32_t sender = bench_plan_first_sender(w->plan, room) + r->rr++ % w->plan->senders;
        bench_conn_send_msg(w, &w->conns[sender - w->conn_lo]);
        r->next_ns += (int64_t)w->interval_ns;
        if (r->next_ns < w->now - 2 * (int64_t)w->interval_ns) {
            /* Behind (the loop was busy): no burst to catch up, the rate limit would answer it. */
            w->ph[w->phase].late++;
            r->next_ns = w->now + (int64_t)w->interval_ns;
        }
        (void)bench_timer_heap_push(&w->sends, r->next_ns, due.id);
    }
}

static void run_typings(worker_t *w)
{
    const bench_timer_t *t;
    while ((t = bench_timer_heap_peek(&w->typings)) != NULL && t->at_ns <= w->now) {
        bench_timer_t due;
        bench_timer_heap_pop(&w->typings, &due);
        room_t *r = &w->rooms[due.id];
        uint32_t room = w->room_lo + due.id;
        uint32_t member = room * w->plan->conns_per_room + r->typing_rr++ % w->plan->members;
        bench_conn_send_typing(w, &w->conns[member - w->conn_lo]);
        r->typing_next_ns += (int64_t)w->typing_interval_ns;
        if (r->typing_next_ns < w->now - 2 * (int64_t)w->typing_interval_ns)
            r->typing_next_ns = w->now + (int64_t)w->typing_interval_ns; /* no catching up */
        (void)bench_timer_heap_push(&w->typings, r->typing_next_ns, due.id);
    }
}

/* Milliseconds until the next timer, rounded up, at most until the next sweep. */
static int next_timeout_ms(worker_t *w, int64_t next_sweep)
{
    int64_t next = next_sweep;
    const bench_timer_t *t = bench_timer_heap_peek(&w->sends);
    if (t != NULL && t->at_ns < next)
        next = t->at_ns;
    t = bench_timer_heap_peek(&w->typings);
    if (t != NULL && t->at_ns < next)
        next = t->at_ns;
    t = bench_timer_heap_peek(&w->starts);
    if (t != NULL && t->at_ns < next && (w->storm_active || w->inflight < w->inflight_max))
        next = t->at_ns;
    int64_t ms = (next - w->now + 999999) / 1000000;
    return ms < 0 ? 0 : (int)ms;
}

int bench_worker_run(const bench_plan_t *p, const bench_opts_t *o, uint32_t index, int chan_fd)
{
    static worker_t w;
    if (!worker_init(&w, p, o, index, chan_fd)) {
        fprintf(stderr, "chat-bench: worker %u: out of memory\n", index);
        return 1;
    }
    struct epoll_event evs[MAX_EVENTS];
    w.now = bench_now_ns();
    int64_t next_sweep = w.now + SWEEP_NS;
    while (!w.quit) {
        int n = epoll_wait(w.ep, evs, MAX_EVENTS, next_timeout_ms(&w, next_sweep));
        if (n < 0 && errno != EINTR) {
            perror("chat-bench: epoll_wait");
            return 1;
        }
        w.now = bench_now_ns();
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u32 == CHAN_ID)
                on_command(&w);
            else
                bench_conn_on_event(&w, &w.conns[evs[i].data.u32], evs[i].events);
        }
        w.now = bench_now_ns();
        run_starts(&w);
        run_sends(&w);
        run_typings(&w);
        if (w.now >= next_sweep) {
            for (uint32_t i = 0; i < w.nconns; i++)
                bench_conn_check_timeout(&w, &w.conns[i]);
            next_sweep = w.now + SWEEP_NS;
        }
    }
    return 0;
}
