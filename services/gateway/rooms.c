/* Local room table and subscription state machine (see rooms.h). A room is found by its
 * key "tenant/room" (neither part contains '/'); it lists its subscriptions and counts
 * them per user, so the caller learns when a room or a user leaves this gateway. */
#include "services/gateway/rooms.h"

#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/strmap.h"

typedef struct room {
    char *tenant;
    char *name;
    char key[CHAT_ROOM_KEY_MAX];
    gw_sub_t *subs; /* doubly linked through room_prev/room_next */
    size_t nsubs;
    chat_strmap_t *users; /* user -> number of subscriptions, as (void *)(uintptr_t)n */
    /* user -> monotonic µs + 1 of the last typing let through (gw_rooms_typing_allow);
     * created on the room's first typing */
    chat_strmap_t *typing;
    gw_room_kind_t kind; /* what a finished join learnt; the room's cache of it */
} room_t;

typedef enum sub_state { SUB_PENDING, SUB_ACTIVE } sub_state_t;

struct gw_sub {
    room_t *room;
    void *owner;
    gw_sub_t *owner_next;
    gw_sub_t *room_prev, *room_next;
    char *user;
    sub_state_t state;
    uint32_t gen;
    bool overflowed;   /* held deliveries overflowed in this generation */
    int64_t last_seq;  /* of the last msg sent */
    int64_t last_useq; /* of the last update sent */
    gw_outq_t held;
};

struct gw_rooms {
    chat_strmap_t *rooms; /* key -> room_t */
    size_t held_max;
    /* The last generation handed out. One counter for every subscription, so an answer to
     * an earlier join never matches a subscription created after a leave. */
    uint32_t gen_last;
    gw_rooms_sink_t sink;
};

gw_rooms_t *gw_rooms_new(size_t held_max, const gw_rooms_sink_t *sink)
{
    gw_rooms_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->rooms = chat_strmap_new();
    if (r->rooms == NULL) {
        free(r);
        return NULL;
    }
    r->held_max = held_max;
    r->sink = *sink;
    return r;
}

static void sub_free(gw_sub_t *sub)
{
    gw_outq_clear(&sub->held);
    free(sub->user);
    free(sub);
}

static void room_free(room_t *room)
{
    gw_sub_t *sub = room->subs;
    while (sub != NULL) {
        gw_sub_t *next = sub->room_next;
        sub_free(sub);
        sub = next;
    }
    chat_strmap_free(room->users);
    chat_strmap_free(room->typing);
    free(room->tenant);
    free(room->name);
    free(room);
}

static void room_free_cb(const char *key, void *value, void *ud)
{
    (void)key;
    (void)ud;
    room_free(value);
}

void gw_rooms_free(gw_rooms_t *r)
{
    if (r == NULL)
        return;
    chat_strmap_foreach(r->rooms, room_free_cb, NULL);
    chat_strmap_free(r->rooms);
    free(r);
}

/* The room of tenant/room, created (empty) if needed; NULL if out of memory. */
static room_t *room_get(gw_rooms_t *r, const char *tenant, const char *name)
{
    char key[CHAT_ROOM_KEY_MAX];
    if (chat_room_key(tenant, name, key, sizeof key) < 0)
        return NULL;
    room_t *room = chat_strmap_get(r->rooms, key);
    if (room != NULL)
        return room;
    room = calloc(1, sizeof *room);
    if (room == NULL)
        return NULL;
    memcpy(room->key, key, sizeof key);
    room->tenant = strdup(tenant);
    room->name = strdup(name);
    room->users = chat_strmap_new();
    if (room->tenant == NULL || room->name == NULL || room->users == NULL ||
        !chat_strmap_put(r->rooms, key, room)) {
        room_free(room);
        return NULL;
    }
    return room;
}

static size_t user_count(const room_t *room, const char *user)
{
    return (size_t)(uintptr_t)chat_strmap_get(room->users, user);
}

static bool user_count_set(room_t *room, const char *user, size_t n)
{
    if (n == 0) {
        chat_strmap_remove(room->users, user);
        return true;
    }
    return chat_strmap_put(room->users, user, (void *)(uintptr_t)n);
}

/* Resets sub to a fresh pending generation. */
static void sub_restart(gw_rooms_t *r, gw_sub_t *sub)
{
    gw_outq_clear(&sub->held);
    gw_outq_init(&sub->held, r->held_max);
    sub->state = SUB_PENDING;
    sub->overflowed = false;
    sub->gen = ++r->gen_last;
}

/* Links a new subscription into room and the owner's list; NULL if out of memory. */
static gw_sub_t *sub_create(room_t *room, gw_sub_t **owner_subs, void *owner, const char *user)
{
    gw_sub_t *sub = calloc(1, sizeof *sub);
    if (sub == NULL)
        return NULL;
    sub->user = strdup(user);
    if (sub->user == NULL || !user_count_set(room, user, user_count(room, user) + 1)) {
        free(sub->user);
        free(sub);
        return NULL;
    }
    sub->room = room;
    sub->owner = owner;
    sub->owner_next = *owner_subs;
    *owner_subs = sub;
    sub->room_next = room->subs;
    if (room->subs != NULL)
        room->subs->room_prev = sub;
    room->subs = sub;
    room->nsubs++;
    return sub;
}

gw_sub_t *gw_rooms_join(gw_rooms_t *r, gw_sub_t **owner_subs, void *owner, const char *tenant,
                        const char *room, const char *user)
{
    gw_sub_t *sub = gw_rooms_find(*owner_subs, room);
    if (sub == NULL) {
        room_t *rm = room_get(r, tenant, room);
        if (rm == NULL)
            return NULL;
        sub = sub_create(rm, owner_subs, owner, user);
        if (sub == NULL) {
            if (rm->nsubs == 0) {
                chat_strmap_remove(r->rooms, rm->key);
                room_free(rm);
            }
            return NULL;
        }
    }
    sub_restart(r, sub);
    return sub;
}

gw_sub_t *gw_rooms_find(gw_sub_t *owner_subs, const char *room)
{
    for (gw_sub_t *s = owner_subs; s != NULL; s = s->owner_next) {
        if (strcmp(s->room->name, room) == 0)
            return s;
    }
    return NULL;
}

static void owner_unlink(gw_sub_t **owner_subs, gw_sub_t *sub)
{
    for (gw_sub_t **link = owner_subs; *link != NULL; link = &(*link)->owner_next) {
        if (*link == sub) {
            *link = sub->owner_next;
            return;
        }
    }
}

static void room_unlink(room_t *room, gw_sub_t *sub)
{
    if (sub->room_prev != NULL)
        sub->room_prev->room_next = sub->room_next;
    else
        room->subs = sub->room_next;
    if (sub->room_next != NULL)
        sub->room_next->room_prev = sub->room_prev;
    room->nsubs--;
}

void gw_rooms_leave(gw_rooms_t *r, gw_sub_t **owner_subs, gw_sub_t *sub)
{
    room_t *room = sub->room;
    owner_unlink(owner_subs, sub);
    room_unlink(room, sub);
    size_t left = user_count(room, sub->user) - 1;
    user_count_set(room, sub->user, left);
    if (left == 0 && room->typing != NULL)
        chat_strmap_remove(room->typing, sub->user);
    bool room_empty = room->nsubs == 0;
    if (r->sink.released != NULL)
        r->sink.released(r->sink.ud, room->tenant, room->name, sub->user, room_empty, left == 0);
    sub_free(sub);
    if (room_empty) {
        chat_strmap_remove(r->rooms, room->key);
        room_free(room);
    }
}

void gw_rooms_leave_all(gw_rooms_t *r, gw_sub_t **owner_subs)
{
    while (*owner_subs != NULL)
        gw_rooms_leave(r, owner_subs, *owner_subs);
}

/* Hands buf to an active subscription, applying the seq filter to msgs (order > 0: the seq)
 * and the useq filter to updates (order < 0: minus the useq). Returns true if sent. */
static bool sub_send(gw_rooms_t *r, gw_sub_t *sub, gw_buf_t *buf, int64_t order)
{
    if (order > 0) {
        if (order <= sub->last_seq)
            return false;
        sub->last_seq = order;
    } else if (order < 0) {
        if (-order <= sub->last_useq)
            return false;
        sub->last_useq = -order;
    }
    r->sink.deliver(r->sink.ud, sub->owner, gw_buf_ref(buf), order > 0 ? order : 0);
    return true;
}

/* Holds buf for a pending subscription; the first overflow of a generation is reported. */
static bool sub_hold(gw_rooms_t *r, gw_sub_t *sub, gw_buf_t *buf, int64_t order)
{
    if (sub->overflowed)
        return false;
    if (gw_outq_push(&sub->held, gw_buf_ref(buf), order))
        return true;
    sub->overflowed = true;
    gw_outq_clear(&sub->held);
    if (r->sink.overflow != NULL)
        r->sink.overflow(r->sink.ud, sub->owner);
    return false;
}

size_t gw_rooms_deliver(gw_rooms_t *r, const char *tenant, const char *room, gw_buf_t *buf,
                        int64_t order)
{
    return gw_rooms_deliver_except(r, tenant, room, buf, order, NULL);
}

size_t gw_rooms_deliver_except(gw_rooms_t *r, const char *tenant, const char *room, gw_buf_t *buf,
                               int64_t order, const char *except_user)
{
    char key[CHAT_ROOM_KEY_MAX];
    if (chat_room_key(tenant, room, key, sizeof key) < 0)
        return 0;
    room_t *rm = chat_strmap_get(r->rooms, key);
    if (rm == NULL)
        return 0;
    size_t n = 0;
    for (gw_sub_t *sub = rm->subs; sub != NULL; sub = sub->room_next) {
        if (except_user != NULL && strcmp(sub->user, except_user) == 0)
            continue;
        bool took =
            sub->state == SUB_ACTIVE ? sub_send(r, sub, buf, order) : sub_hold(r, sub, buf, order);
        n += took;
    }
    return n;
}

bool gw_rooms_marks(const gw_rooms_t *r, const char *tenant, const char *room, int64_t *min_seq,
                    int64_t *max_seq, int64_t *min_useq)
{
    char key[CHAT_ROOM_KEY_MAX];
    if (chat_room_key(tenant, room, key, sizeof key) < 0)
        return false;
    const room_t *rm = chat_strmap_get(r->rooms, key);
    bool any = false;
    for (const gw_sub_t *sub = rm != NULL ? rm->subs : NULL; sub != NULL; sub = sub->room_next) {
        if (sub->state != SUB_ACTIVE)
            continue;
        if (!any || sub->last_seq < *min_seq)
            *min_seq = sub->last_seq;
        if (!any || sub->last_seq > *max_seq)
            *max_seq = sub->last_seq;
        if (!any || sub->last_useq < *min_useq)
            *min_useq = sub->last_useq;
        any = true;
    }
    return any;
}

void gw_rooms_activate(gw_rooms_t *r, gw_sub_t *sub, int64_t last_seq, int64_t last_useq)
{
    sub->state = SUB_ACTIVE;
    sub->last_seq = last_seq;
    sub->last_useq = last_useq;
    gw_outq_entry_t e;
    while (gw_outq_pop(&sub->held, &e)) {
        sub_send(r, sub, e.buf, e.seq);
        gw_buf_unref(e.buf);
    }
    gw_outq_clear(&sub->held);
}

bool gw_rooms_typing_allow(gw_sub_t *sub, int64_t now_us, int64_t interval_us)
{
    room_t *room = sub->room;
    if (room->typing == NULL && (room->typing = chat_strmap_new()) == NULL)
        return true; /* out of memory: better a typing too many than none */
    uintptr_t last = (uintptr_t)chat_strmap_get(room->typing, sub->user);
    if (last != 0 && now_us - (int64_t)(last - 1) < interval_us)
        return false;
    chat_strmap_put(room->typing, sub->user, (void *)(uintptr_t)(now_us + 1));
    return true;
}

uint32_t gw_sub_gen(const gw_sub_t *sub)
{
    return sub->gen;
}

bool gw_sub_active(const gw_sub_t *sub)
{
    return sub->state == SUB_ACTIVE;
}

int64_t gw_sub_last_seq(const gw_sub_t *sub)
{
    return sub->last_seq;
}

int64_t gw_sub_last_useq(const gw_sub_t *sub)
{
    return sub->last_useq;
}

size_t gw_sub_held(const gw_sub_t *sub)
{
    return gw_outq_len(&sub->held);
}

/* The room of tenant/room if it has subscriptions here, else NULL. */
static room_t *room_find(const gw_rooms_t *r, const char *tenant, const char *name)
{
    char key[CHAT_ROOM_KEY_MAX];
    if (chat_room_key(tenant, name, key, sizeof key) < 0)
        return NULL;
    return chat_strmap_get(r->rooms, key);
}

gw_room_kind_t gw_rooms_kind(const gw_rooms_t *r, const char *tenant, const char *room)
{
    const room_t *rm = room_find(r, tenant, room);
    return rm != NULL ? rm->kind : GW_ROOM_KIND_UNKNOWN;
}

void gw_rooms_kind_set(gw_sub_t *sub, gw_room_kind_t kind)
{
    sub->room->kind = kind;
}

size_t gw_rooms_end(gw_rooms_t *r, const char *tenant, const char *room, const char *user,
                    void (*ended)(void *ud, void *owner), void *ud)
{
    room_t *rm = room_find(r, tenant, room);
    if (rm == NULL)
        return 0;
    void **owners = calloc(rm->nsubs, sizeof *owners);
    if (owners == NULL)
        return SIZE_MAX;
    size_t n = 0;
    for (gw_sub_t *sub = rm->subs; sub != NULL; sub = sub->room_next) {
        if (user == NULL || strcmp(sub->user, user) == 0)
            owners[n++] = sub->owner;
    }
    /* rm may be freed by the last leave: only the owners are used from here on */
    for (size_t i = 0; i < n; i++)
        ended(ud, owners[i]);
    free(owners);
    return n;
}

size_t gw_rooms_count(const gw_rooms_t *r)
{
    return chat_strmap_count(r->rooms);
}

typedef struct users_collect {
    const char **users;
    size_t n;
} users_collect_t;

static void user_collect_cb(const char *key, void *value, void *ud)
{
    (void)value;
    users_collect_t *c = ud;
    c->users[c->n++] = key;
}

typedef struct foreach_ctx {
    void (*fn)(const char *tenant, const char *room, const char *const *users, size_t nusers,
               void *ud);
    void *ud;
} foreach_ctx_t;

static void room_visit_cb(const char *key, void *value, void *ud)
{
    (void)key;
    const foreach_ctx_t *ctx = ud;
    room_t *room = value;
    size_t n = chat_strmap_count(room->users);
    users_collect_t c = {.users = calloc(n > 0 ? n : 1, sizeof *c.users), .n = 0};
    if (c.users == NULL)
        return;
    chat_strmap_foreach(room->users, user_collect_cb, &c);
    ctx->fn(room->tenant, room->name, c.users, c.n, ctx->ud);
    free(c.users);
}

void gw_rooms_foreach(const gw_rooms_t *r,
                      void (*fn)(const char *tenant, const char *room, const char *const *users,
                                 size_t nusers, void *ud),
                      void *ud)
{
    foreach_ctx_t ctx = {.fn = fn, .ud = ud};
    chat_strmap_foreach(r->rooms, room_visit_cb, &ctx);
}
