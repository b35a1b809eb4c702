/* The outbox of notify in Redis (see outbox.h and docs/notify.md, "The outbox in Redis"): one
 * Lua script per operation, so that every note, claim and end is atomic against the others
 * whichever instance runs them. Pipeline calls queue EVALs on a batch; sender calls run one
 * EVAL each.
 *
 * Each script touches the keys of one tenant/user or tenant/room (or one job) and the due set,
 * and some compute keys inside the script: fine on one Redis. A Redis Cluster deployment would
 * need the due set per slot (one per hash tag) and every key declared in KEYS. */
#include "services/notify/outbox.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/clock.h"
#include "common/log.h"

#define JOB_PREFIX "chat:notify:job:"
#define DAY_MS "86400000"
#define WEEK_MS "604800000"
#define MAX_ARGS 64

/* ---- shared Lua pieces (one Lua line per C line: not reflowed) ---- */
/* clang-format off */

/* True while the claim whose score was lease still holds the job. */
#define LUA_HELD                                                                                   \
    "local function held(due, id, lease)\n"                                                        \
    "  local s = redis.call('ZSCORE', due, id)\n"                                                  \
    "  return s ~= false and s ~= nil and tonumber(s) == tonumber(lease)\n"                        \
    "end\n"

/* Creates the close job ck (id cid) due now for a sent range ending at seq, or raises the seq
 * of the one already waiting. */
#define LUA_CLOSE                                                                                  \
    "local function close(due, ck, cid, seq, now)\n"                                               \
    "  if redis.call('EXISTS', ck) == 0 then\n"                                                    \
    "    redis.call('HSET', ck, 'seq', seq, 'attempts', '0', 'ver', '1')\n"                        \
    "    redis.call('ZADD', due, now, cid)\n"                                                      \
    "  elseif tonumber(seq) > tonumber(redis.call('HGET', ck, 'seq') or '0') then\n"               \
    "    redis.call('HSET', ck, 'seq', seq)\n"                                                     \
    "  end\n"                                                                                      \
    "end\n"

/* The sent range of a room: "<first>:<last>:<sent ms>", and ":c" once it was withdrawn. */
#define LUA_SENT_PARSE                                                                             \
    "local function sent_parse(v)\n"                                                               \
    "  if not v then return nil end\n"                                                             \
    "  local f, l, t, c = string.match(v, '^(%d+):(%d+):(%d+)(.*)$')\n"                            \
    "  if not f then return nil end\n"                                                             \
    "  return tonumber(f), tonumber(l), tonumber(t), c ~= ''\n"                                    \
    "end\n"

/* ---- pipeline scripts ---- */

/* KEYS due, job, sent hash, pending set. ARGV id, room, user, seq, ts, msg id, from, name, text,
 * urgent, now, window. A seq already sent or in the window changes nothing (replays). */
static const char LUA_NOTE_PUSH[] =
    LUA_SENT_PARSE
    "local seq = tonumber(ARGV[4])\n"
    "local lastpush = 0\n"
    "local f, l, t = sent_parse(redis.call('HGET', KEYS[3], ARGV[2]))\n"
    "if l then\n"
    "  if seq <= l then return 0 end\n"
    "  lastpush = t\n"
    "end\n"
    "local cur = redis.call('HGET', KEYS[2], 'seq')\n"
    "if cur and seq <= tonumber(cur) then return 0 end\n"
    "redis.call('HSET', KEYS[2], 'seq', ARGV[4], 'ts', ARGV[5], 'id', ARGV[6], 'from', ARGV[7],\n"
    "  'name', ARGV[8], 'text', ARGV[9], 'gone', '0')\n"
    "redis.call('HINCRBY', KEYS[2], 'count', 1)\n"
    "redis.call('HINCRBY', KEYS[2], 'ver', 1)\n"
    "if ARGV[10] == '1' then redis.call('HSET', KEYS[2], 'urgent', '1') end\n"
    "if cur then return 1 end\n"
    "local now, window = tonumber(ARGV[11]), tonumber(ARGV[12])\n"
    "local due = now + window\n"
    "if lastpush + window > due then due = lastpush + window end\n"
    "redis.call('HSET', KEYS[2], 'first', ARGV[4], 'window', ARGV[12], 'attempts', '0')\n"
    "if ARGV[10] ~= '1' then redis.call('HSET', KEYS[2], 'urgent', '0') end\n"
    "redis.call('ZADD', KEYS[1], due, ARGV[1])\n"
    "redis.call('SADD', KEYS[4], ARGV[3])\n"
    "redis.call('PEXPIRE', KEYS[4], " DAY_MS ")\n"
    "return 1\n";

/* KEYS due, job, mailed hash. ARGV id, room, seq, now, delay. A seq already mailed or noted
 * changes nothing. */
static const char LUA_NOTE_DIGEST[] =
    "local seq = tonumber(ARGV[3])\n"
    "local m = redis.call('HGET', KEYS[3], ARGV[2])\n"
    "if m and seq <= tonumber(m) then return 0 end\n"
    "local field = 'r:' .. ARGV[2]\n"
    "local cur = redis.call('HGET', KEYS[2], field)\n"
    "if cur and seq <= tonumber(cur) then return 0 end\n"
    "local exists = redis.call('EXISTS', KEYS[2]) == 1\n"
    "redis.call('HSET', KEYS[2], field, ARGV[3], 'delay', ARGV[5])\n"
    "redis.call('HINCRBY', KEYS[2], 'ver', 1)\n"
    "if exists then return 1 end\n"
    "redis.call('HSET', KEYS[2], 'attempts', '0')\n"
    "local now, delay = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local due = now + delay\n"
    "local last = redis.call('HGET', KEYS[3], '@')\n"
    "if last and tonumber(last) + delay > due then due = tonumber(last) + delay end\n"
    "redis.call('ZADD', KEYS[1], due, ARGV[1])\n"
    "return 1\n";

/* KEYS due, job, done marker. ARGV id, tenant, room, user, type, body, now. */
static const char LUA_WEBHOOK_ADD[] =
    "if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then\n"
    "  return 0\n"
    "end\n"
    "redis.call('HSET', KEYS[2], 'tenant', ARGV[2], 'room', ARGV[3], 'user', ARGV[4],\n"
    "  'type', ARGV[5], 'body', ARGV[6], 'attempts', '0', 'first', ARGV[7], 'ver', '1')\n"
    "redis.call('ZADD', KEYS[1], ARGV[7], ARGV[1])\n"
    "return 1\n";

/* KEYS due, push job, sent hash, close job, pending set, shown set. ARGV push id, close id,
 * room, user, seq, now. A window being sent right now (claim held) only learns the read seq:
 * nq_push_sent then withdraws what it sent. */
static const char LUA_RECALL_READ[] =
    LUA_SENT_PARSE LUA_CLOSE
    "local seq, now = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local r = 0\n"
    "local raw = redis.call('HGET', KEYS[3], ARGV[3])\n"
    "local f, l, t, closed = sent_parse(raw)\n"
    "if l and not closed and l <= seq then\n"
    "  redis.call('HSET', KEYS[3], ARGV[3], raw .. ':c')\n"
    "  close(KEYS[1], KEYS[4], ARGV[2], l, now)\n"
    "  redis.call('SREM', KEYS[6], ARGV[4])\n"
    "  r = 1\n"
    "end\n"
    "local newest = redis.call('HGET', KEYS[2], 'seq')\n"
    "if newest and tonumber(newest) <= seq then\n"
    "  local lease = redis.call('HGET', KEYS[2], 'lease')\n"
    "  local score = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "  if lease and score and tonumber(score) == tonumber(lease) and tonumber(lease) > now then\n"
    "    if seq > tonumber(redis.call('HGET', KEYS[2], 'read') or '0') then\n"
    "      redis.call('HSET', KEYS[2], 'read', ARGV[5])\n"
    "    end\n"
    "  else\n"
    "    redis.call('DEL', KEYS[2])\n"
    "    redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "    redis.call('SREM', KEYS[5], ARGV[4])\n"
    "  end\n"
    "  r = r + 2\n"
    "end\n"
    "return r\n";

/* KEYS due, shown set, pending set. ARGV tenant, room, seq, now. Walks the users shown a
 * notification of the room (close those whose range holds seq) and those with a window in it
 * (count the removal; the newest message's text goes). Stale members are dropped on the way. */
static const char LUA_RECALL_GONE[] =
    LUA_SENT_PARSE LUA_CLOSE
    "local seq = tonumber(ARGV[3])\n"
    "local n = 0\n"
    "for _, u in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
    "  local sk = 'chat:notify:sent:{' .. ARGV[1] .. '/' .. u .. '}'\n"
    "  local raw = redis.call('HGET', sk, ARGV[2])\n"
    "  local f, l, t, closed = sent_parse(raw)\n"
    "  if not l or closed then\n"
    "    redis.call('SREM', KEYS[2], u)\n"
    "  elseif f <= seq and seq <= l then\n"
    "    redis.call('HSET', sk, ARGV[2], raw .. ':c')\n"
    "    local cid = 'close|' .. ARGV[1] .. '|' .. u .. '|' .. ARGV[2]\n"
    "    close(KEYS[1], '" JOB_PREFIX "' .. cid, cid, l, ARGV[4])\n"
    "    redis.call('SREM', KEYS[2], u)\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "for _, u in ipairs(redis.call('SMEMBERS', KEYS[3])) do\n"
    "  local jk = '" JOB_PREFIX "push|' .. ARGV[1] .. '|' .. u .. '|' .. ARGV[2]\n"
    "  local newest = redis.call('HGET', jk, 'seq')\n"
    "  if not newest then\n"
    "    redis.call('SREM', KEYS[3], u)\n"
    "  elseif tonumber(redis.call('HGET', jk, 'first') or newest) <= seq and\n"
    "         seq <= tonumber(newest) then\n"
    "    redis.call('HINCRBY', jk, 'removals', 1)\n"
    "    if seq == tonumber(newest) then redis.call('HSET', jk, 'text', '', 'gone', '1') end\n"
    "  end\n"
    "end\n"
    "return n\n";

/* ---- sender scripts ---- */

/* KEYS due, the owner's claims (a sorted set: job id -> lease). ARGV now, max, lease, owner
 * ("" for none). Returns id, lease, fields (and for an email job the mailed seqs as m:<room>)
 * per claimed job; a due id without its hash is dropped. With an owner, each claim is also
 * recorded under it (and the owner's expired claims forgotten), so that the owner, restarted,
 * can take back at once what its dead run held (nq_release_owner). */
static const char LUA_CLAIM[] =
    "local now = tonumber(ARGV[1])\n"
    "local score = string.format('%.0f', now + tonumber(ARGV[3]))\n"
    "local owner = ARGV[4]\n"
    "if owner ~= '' then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1]) end\n"
    "local ids = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0,\n"
    "  tonumber(ARGV[2]))\n"
    "local out = {}\n"
    "for _, id in ipairs(ids) do\n"
    "  local jk = '" JOB_PREFIX "' .. id\n"
    "  if redis.call('EXISTS', jk) == 0 then\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "  else\n"
    /* Each claim of a job gets a lease of its own: a job released and claimed again within
     * the same millisecond must not share its lease with the dead claim. */
    "    local s = score\n"
    "    local prev = redis.call('HGET', jk, 'lease')\n"
    "    if prev and tonumber(prev) >= tonumber(score) then\n"
    "      s = string.format('%.0f', tonumber(prev) + 1)\n"
    "    end\n"
    "    redis.call('ZADD', KEYS[1], s, id)\n"
    "    redis.call('HSET', jk, 'lease', s, 'owner', owner)\n"
    "    if owner ~= '' then redis.call('ZADD', KEYS[2], s, id) end\n"
    "    local f = redis.call('HGETALL', jk)\n"
    "    if string.sub(id, 1, 6) == 'email|' then\n"
    "      local tu = string.gsub(string.sub(id, 7), '|', '/', 1)\n"
    "      local m = redis.call('HGETALL', 'chat:notify:mailed:{' .. tu .. '}')\n"
    "      for i = 1, #m, 2 do\n"
    "        f[#f + 1] = 'm:' .. m[i]\n"
    "        f[#f + 1] = m[i + 1]\n"
    "      end\n"
    "    end\n"
    "    out[#out + 1] = id\n"
    "    out[#out + 1] = s\n"
    "    out[#out + 1] = f\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS due, the owner's claims. ARGV owner, now. Every job the owner's claims name that is
 * still held by that owner's lease is due now; the claims are forgotten. Returns how many. */
static const char LUA_RELEASE[] =
    "local ids = redis.call('ZRANGE', KEYS[2], 0, -1)\n"
    "local n = 0\n"
    "for _, id in ipairs(ids) do\n"
    "  local jk = '" JOB_PREFIX "' .. id\n"
    "  local f = redis.call('HMGET', jk, 'owner', 'lease')\n"
    "  local score = redis.call('ZSCORE', KEYS[1], id)\n"
    "  if f[1] == ARGV[1] and f[2] and score and tonumber(score) == tonumber(f[2])\n"
    "     and tonumber(score) > tonumber(ARGV[2]) then\n"
    "    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', KEYS[2])\n"
    "return n\n";

/* KEYS due, job, done marker. ARGV id, lease, delivered. */
static const char LUA_FINISH[] =
    LUA_HELD
    "if not held(KEYS[1], ARGV[1], ARGV[2]) then return 0 end\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "if ARGV[3] == '1' then redis.call('SET', KEYS[3], '1', 'PX', " DAY_MS ") end\n"
    "return 1\n";

/* KEYS due, job. ARGV id, lease, due, attempts, error, then field/value pairs. */
static const char LUA_RETRY[] =
    LUA_HELD
    "if not held(KEYS[1], ARGV[1], ARGV[2]) then return 0 end\n"
    "redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])\n"
    "redis.call('HSET', KEYS[2], 'attempts', ARGV[4], 'error', ARGV[5])\n"
    "for i = 6, #ARGV - 1, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end\n"
    "return 1\n";

/* KEYS due, job, sent hash, pending set, shown set, close job. ARGV id, lease, claimed ver,
 * claimed removals, sent (0/1), first, last, now, room, user, close id, claimed seq, claimed
 * count. A push that went out records its range; one that learnt of a read or removal while
 * it was being sent is withdrawn at once. Notes since the claim start a new window. */
static const char LUA_END_PUSH[] =
    LUA_HELD LUA_CLOSE
    "if not held(KEYS[1], ARGV[1], ARGV[2]) then return 0 end\n"
    "local now = tonumber(ARGV[8])\n"
    "if ARGV[5] == '1' then\n"
    "  local mark = ''\n"
    "  local read = tonumber(redis.call('HGET', KEYS[2], 'read') or '0')\n"
    "  local removals = redis.call('HGET', KEYS[2], 'removals') or '0'\n"
    "  if read >= tonumber(ARGV[7]) or removals ~= ARGV[4] then\n"
    "    mark = ':c'\n"
    "    close(KEYS[1], KEYS[6], ARGV[11], ARGV[7], now)\n"
    "  else\n"
    "    redis.call('SADD', KEYS[5], ARGV[10])\n"
    "    redis.call('PEXPIRE', KEYS[5], " DAY_MS ")\n"
    "  end\n"
    "  redis.call('HSET', KEYS[3], ARGV[9], ARGV[6] .. ':' .. ARGV[7] .. ':' .. ARGV[8] .. mark)\n"
    "  redis.call('PEXPIRE', KEYS[3], " DAY_MS ")\n"
    "end\n"
    "if (redis.call('HGET', KEYS[2], 'ver') or '') ~= ARGV[3] then\n"
    "  local window = tonumber(redis.call('HGET', KEYS[2], 'window') or '0')\n"
    "  local count = tonumber(redis.call('HGET', KEYS[2], 'count') or '1') - tonumber(ARGV[13])\n"
    "  if count < 1 then count = 1 end\n"
    "  redis.call('HSET', KEYS[2], 'first', tonumber(ARGV[12]) + 1, 'count', count,\n"
    "    'attempts', '0', 'removals', '0')\n"
    "  redis.call('HDEL', KEYS[2], 'read', 'lease', 'error', '" NQ_PUSH_SENT_SUBS "')\n"
    "  redis.call('ZADD', KEYS[1], now + window, ARGV[1])\n"
    "  return 2\n"
    "end\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "redis.call('SREM', KEYS[4], ARGV[10])\n"
    "return 1\n";

/* KEYS due, job, mailed hash. ARGV id, lease, claimed ver, now, mailed (0/1), then room/seq
 * pairs. Notes since the claim keep the job, due a delay from now. */
static const char LUA_END_EMAIL[] =
    LUA_HELD
    "if not held(KEYS[1], ARGV[1], ARGV[2]) then return 0 end\n"
    "local now = tonumber(ARGV[4])\n"
    "if ARGV[5] == '1' then\n"
    "  redis.call('HSET', KEYS[3], '@', ARGV[4])\n"
    "  for i = 6, #ARGV - 1, 2 do\n"
    "    if tonumber(ARGV[i + 1]) > tonumber(redis.call('HGET', KEYS[3], ARGV[i]) or '0') then\n"
    "      redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])\n"
    "    end\n"
    "  end\n"
    "  redis.call('PEXPIRE', KEYS[3], " WEEK_MS ")\n"
    "end\n"
    "if (redis.call('HGET', KEYS[2], 'ver') or '') ~= ARGV[3] then\n"
    "  local delay = tonumber(redis.call('HGET', KEYS[2], 'delay') or '0')\n"
    "  redis.call('HSET', KEYS[2], 'attempts', '0')\n"
    "  redis.call('HDEL', KEYS[2], 'lease', 'error')\n"
    "  redis.call('ZADD', KEYS[1], now + delay, ARGV[1])\n"
    "  return 2\n"
    "end\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "return 1\n";

/* clang-format on */

/* ---- strings ---- */

/* A malloc'd formatted string, NULL if out of memory. */
static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    char *s = malloc((size_t)len + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* An argument vector under construction: strings owned by it (copies or formatted). */
typedef struct argv_buf {
    char *v[MAX_ARGS];
    int n;
    bool failed; /* out of memory or too many: the whole vector is refused */
} argv_buf_t;

static void argv_take(argv_buf_t *a, char *s)
{
    if (s == NULL || a->n >= MAX_ARGS) {
        free(s);
        a->failed = true;
        return;
    }
    a->v[a->n++] = s;
}

static void argv_str(argv_buf_t *a, const char *s)
{
    argv_take(a, strdup(s != NULL ? s : ""));
}

static void argv_int(argv_buf_t *a, int64_t v)
{
    argv_take(a, str_printf("%" PRId64, v));
}

static void argv_clear(argv_buf_t *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    a->n = 0;
}

/* Starts EVAL script with nkeys keys (to be added next). */
static void argv_eval(argv_buf_t *a, const char *script, int nkeys)
{
    argv_str(a, "EVAL");
    argv_str(a, script);
    argv_int(a, nkeys);
}

/* ---- batch ---- */

typedef struct batch_cmd {
    char **argv;
    int argc;
} batch_cmd_t;

struct nq_batch {
    batch_cmd_t *cmds;
    size_t n, cap;
};

nq_batch_t *nq_batch_new(void)
{
    return calloc(1, sizeof(nq_batch_t));
}

static void batch_clear(nq_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        for (int k = 0; k < b->cmds[i].argc; k++)
            free(b->cmds[i].argv[k]);
        free(b->cmds[i].argv);
    }
    b->n = 0;
}

void nq_batch_free(nq_batch_t *b)
{
    if (b == NULL)
        return;
    batch_clear(b);
    free(b->cmds);
    free(b);
}

size_t nq_batch_size(const nq_batch_t *b)
{
    return b->n;
}

void nq_batch_clear(nq_batch_t *b)
{
    batch_clear(b);
}

/* Moves the vector into the batch. CHAT_ERR_NOMEM (the vector is freed) if it failed. */
static chat_err_t batch_push(nq_batch_t *b, argv_buf_t *a)
{
    batch_cmd_t *grown =
        a->failed ? NULL : chat_array_grow(b->cmds, &b->cap, b->n + 1, sizeof *grown);
    char **v = grown != NULL ? malloc((size_t)a->n * sizeof *v) : NULL;
    if (v == NULL) {
        argv_clear(a);
        return a->failed ? CHAT_ERR_INVALID : CHAT_ERR_NOMEM;
    }
    b->cmds = grown;
    memcpy(v, a->v, (size_t)a->n * sizeof *v);
    b->cmds[b->n++] = (batch_cmd_t){.argv = v, .argc = a->n};
    a->n = 0;
    return CHAT_OK;
}

chat_err_t nq_batch_run(nq_batch_t *b, chat_redis_t *r)
{
    chat_err_t err = CHAT_OK;
    size_t queued = 0;
    for (size_t i = 0; i < b->n && err == CHAT_OK; i++) {
        err = chat_redis_append_argv(r, b->cmds[i].argc, (const char **)b->cmds[i].argv, NULL);
        queued += err == CHAT_OK;
    }
    /* Every queued reply is read, even after a failure, so the connection stays in step. */
    for (size_t i = 0; i < queued; i++) {
        redisReply *reply = NULL;
        chat_err_t e = chat_redis_reply(r, &reply);
        if (reply != NULL)
            freeReplyObject(reply);
        if (e != CHAT_OK && err == CHAT_OK)
            err = e;
    }
    batch_clear(b);
    return err;
}

/* ---- keys ---- */

static char *job_key(const char *id)
{
    return str_printf(JOB_PREFIX "%s", id);
}

static char *user_key(const char *what, const char *tenant, const char *user)
{
    return str_printf("chat:notify:%s:{%s/%s}", what, tenant, user);
}

/* ---- pipeline side ---- */

chat_err_t nq_note_push(nq_batch_t *b, const nq_push_note_t *n, int64_t now_ms, int64_t window_ms)
{
    if (n->tenant == NULL || n->user == NULL || n->room == NULL || n->seq <= 0)
        return CHAT_ERR_INVALID;
    char *id = str_printf("push|%s|%s|%s", n->tenant, n->user, n->room);
    if (id == NULL)
        return CHAT_ERR_NOMEM;
    argv_buf_t a = {0};
    argv_eval(&a, LUA_NOTE_PUSH, 4);
    argv_str(&a, NQ_DUE_KEY);
    argv_take(&a, job_key(id));
    argv_take(&a, user_key("sent", n->tenant, n->user));
    argv_take(&a, user_key("pending", n->tenant, n->room));
    argv_str(&a, id);
    argv_str(&a, n->room);
    argv_str(&a, n->user);
    argv_int(&a, n->seq);
    argv_int(&a, n->ts);
    argv_str(&a, n->id);
    argv_str(&a, n->from);
    argv_str(&a, n->name);
    argv_str(&a, n->text);
    argv_str(&a, n->urgent ? "1" : "0");
    argv_int(&a, now_ms);
    argv_int(&a, window_ms);
    free(id);
    return batch_push(b, &a);
}

chat_err_t nq_note_digest(nq_batch_t *b, const char *tenant, const char *user, const char *room,
                          int64_t seq, int64_t now_ms, int64_t delay_ms)
{
    if (tenant == NULL || user == NULL || room == NULL || seq <= 0)
        return CHAT_ERR_INVALID;
    char *id = str_printf("email|%s|%s", tenant, user);
    if (id == NULL)
        return CHAT_ERR_NOMEM;
    argv_buf_t a = {0};
    argv_eval(&a, LUA_NOTE_DIGEST, 3);
    argv_str(&a, NQ_DUE_KEY);
    argv_take(&a, job_key(id));
    argv_take(&a, user_key("mailed", tenant, user));
    argv_str(&a, id);
    argv_str(&a, room);
    argv_int(&a, seq);
    argv_int(&a, now_ms);
    argv_int(&a, delay_ms);
    free(id);
    return batch_push(b, &a);
}

chat_err_t nq_webhook_add(nq_batch_t *b, const char *tenant, const char *endpoint_id,
                          const char *msg_id, const char *room, const char *user, const char *type,
                          const char *body, int64_t now_ms)
{
    if (tenant == NULL || endpoint_id == NULL || msg_id == NULL || type == NULL || body == NULL)
        return CHAT_ERR_INVALID;
    char *id = str_printf("wh|%s|%s", endpoint_id, msg_id);
    if (id == NULL)
        return CHAT_ERR_NOMEM;
    argv_buf_t a = {0};
    argv_eval(&a, LUA_WEBHOOK_ADD, 3);
    argv_str(&a, NQ_DUE_KEY);
    argv_take(&a, job_key(id));
    argv_take(&a, str_printf("chat:notify:done:%s", id));
    argv_str(&a, id);
    argv_str(&a, tenant);
    argv_str(&a, room);
    argv_str(&a, user);
    argv_str(&a, type);
    argv_str(&a, body);
    argv_int(&a, now_ms);
    free(id);
    return batch_push(b, &a);
}

chat_err_t nq_recall_read(nq_batch_t *b, const char *tenant, const char *user, const char *room,
                          int64_t seq, int64_t now_ms)
{
    if (tenant == NULL || user == NULL || room == NULL)
        return CHAT_ERR_INVALID;
    char *push = str_printf("push|%s|%s|%s", tenant, user, room);
    char *close = str_printf("close|%s|%s|%s", tenant, user, room);
    argv_buf_t a = {0};
    if (push == NULL || close == NULL) {
        free(push);
        free(close);
        return CHAT_ERR_NOMEM;
    }
    argv_eval(&a, LUA_RECALL_READ, 6);
    argv_str(&a, NQ_DUE_KEY);
    argv_take(&a, job_key(push));
    argv_take(&a, user_key("sent", tenant, user));
    argv_take(&a, job_key(close));
    argv_take(&a, user_key("pending", tenant, room));
    argv_take(&a, user_key("shown", tenant, room));
    argv_str(&a, push);
    argv_str(&a, close);
    argv_str(&a, room);
    argv_str(&a, user);
    argv_int(&a, seq);
    argv_int(&a, now_ms);
    free(push);
    free(close);
    return batch_push(b, &a);
}

chat_err_t nq_recall_gone(nq_batch_t *b, const char *tenant, const char *room, int64_t seq,
                          int64_t now_ms)
{
    if (tenant == NULL || room == NULL)
        return CHAT_ERR_INVALID;
    argv_buf_t a = {0};
    argv_eval(&a, LUA_RECALL_GONE, 3);
    argv_str(&a, NQ_DUE_KEY);
    argv_take(&a, user_key("shown", tenant, room));
    argv_take(&a, user_key("pending", tenant, room));
    argv_str(&a, tenant);
    argv_str(&a, room);
    argv_int(&a, seq);
    argv_int(&a, now_ms);
    return batch_push(b, &a);
}

/* ---- sender side ---- */

/* Runs the vector now: the integer reply in *result (may be NULL). Frees the vector. */
static chat_err_t argv_run(chat_redis_t *r, argv_buf_t *a, long long *result)
{
    if (a->failed) {
        argv_clear(a);
        return CHAT_ERR_NOMEM;
    }
    chat_err_t err = CHAT_OK;
    redisReply *reply = chat_redis_command_argv(r, &err, a->n, (const char **)a->v, NULL);
    argv_clear(a);
    if (reply == NULL)
        return err;
    if (reply->type != REDIS_REPLY_INTEGER) {
        chat_log_error("notify outbox: unexpected script reply", CHAT_F_INT("type", reply->type));
        err = CHAT_ERR_REDIS;
    } else if (result != NULL) {
        *result = reply->integer;
    }
    freeReplyObject(reply);
    return err;
}

const char *nq_job_field(const nq_job_t *j, const char *name)
{
    for (size_t i = 0; i + 1 < j->nfields; i += 2) {
        if (strcmp(j->fields[i], name) == 0)
            return j->fields[i + 1];
    }
    return NULL;
}

int64_t nq_job_int(const nq_job_t *j, const char *name, int64_t def)
{
    const char *v = nq_job_field(j, name);
    return v != NULL ? strtoll(v, NULL, 10) : def;
}

void nq_job_clear(nq_job_t *j)
{
    free(j->id);
    free(j->tenant);
    free(j->user);
    free(j->room);
    free(j->endpoint_id);
    free(j->msg_id);
    for (size_t i = 0; i < j->nfields; i++)
        free(j->fields[i]);
    free(j->fields);
    memset(j, 0, sizeof *j);
}

void nq_jobs_free(nq_job_t *jobs, size_t n)
{
    for (size_t i = 0; jobs != NULL && i < n; i++)
        nq_job_clear(&jobs[i]);
    free(jobs);
}

static char *dup_len(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

/* Splits the id into kind and names: tenants, rooms, endpoint and message ids have no '|',
 * user ids may (so the user is what lies between the tenant and the last '|'). Returns
 * CHAT_ERR_INVALID for an id of no known form, CHAT_ERR_NOMEM. */
static chat_err_t job_parse_id(nq_job_t *j)
{
    const char *id = j->id;
    const char *p1 = strchr(id, '|');
    if (p1 == NULL)
        return CHAT_ERR_INVALID;
    size_t klen = (size_t)(p1 - id);
    const char *rest = p1 + 1;
    if (klen == 2 && strncmp(id, "wh", 2) == 0) {
        const char *p2 = strchr(rest, '|');
        if (p2 == NULL)
            return CHAT_ERR_INVALID;
        j->kind = NQ_WEBHOOK;
        j->endpoint_id = dup_len(rest, (size_t)(p2 - rest));
        j->msg_id = strdup(p2 + 1);
        return j->endpoint_id != NULL && j->msg_id != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
    }
    const char *p2 = strchr(rest, '|');
    if (p2 == NULL)
        return CHAT_ERR_INVALID;
    j->tenant = dup_len(rest, (size_t)(p2 - rest));
    if (klen == 5 && strncmp(id, "email", 5) == 0) {
        j->kind = NQ_EMAIL;
        j->user = strdup(p2 + 1);
        return j->tenant != NULL && j->user != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
    }
    if (klen == 4 && strncmp(id, "push", 4) == 0)
        j->kind = NQ_PUSH;
    else if (klen == 5 && strncmp(id, "close", 5) == 0)
        j->kind = NQ_CLOSE;
    else
        return CHAT_ERR_INVALID;
    const char *last = strrchr(p2 + 1, '|');
    if (last == NULL)
        return CHAT_ERR_INVALID;
    j->user = dup_len(p2 + 1, (size_t)(last - (p2 + 1)));
    j->room = strdup(last + 1);
    return j->tenant != NULL && j->user != NULL && j->room != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
}

/* Fills j from one claimed entry (id, lease, fields). */
static chat_err_t job_from_reply(nq_job_t *j, const redisReply *id, const redisReply *lease,
                                 const redisReply *fields)
{
    if (id->type != REDIS_REPLY_STRING || fields->type != REDIS_REPLY_ARRAY ||
        (lease->type != REDIS_REPLY_STRING && lease->type != REDIS_REPLY_INTEGER))
        return CHAT_ERR_REDIS;
    j->id = dup_len(id->str, id->len);
    if (j->id == NULL)
        return CHAT_ERR_NOMEM;
    j->lease = lease->type == REDIS_REPLY_INTEGER ? lease->integer : strtoll(lease->str, NULL, 10);
    j->fields = calloc(fields->elements > 0 ? fields->elements : 1, sizeof *j->fields);
    if (j->fields == NULL)
        return CHAT_ERR_NOMEM;
    for (size_t i = 0; i < fields->elements; i++) {
        const redisReply *f = fields->element[i];
        j->fields[i] = f->type == REDIS_REPLY_STRING ? dup_len(f->str, f->len) : strdup("");
        if (j->fields[i] == NULL)
            return CHAT_ERR_NOMEM;
        j->nfields++;
    }
    return job_parse_id(j);
}

/* The key of owner's claims ("" when there is no owner: a key never written). */
static void claims_key(const char *owner, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", NQ_CLAIMS_PREFIX, owner != NULL ? owner : "");
}

chat_err_t nq_claim_owned(chat_redis_t *r, int64_t now_ms, size_t max, int64_t lease_ms,
                          const char *owner, nq_job_t **jobs, size_t *n)
{
    *jobs = NULL;
    *n = 0;
    if (max == 0)
        return CHAT_OK;
    char snow[24], smax[24], slease[24], ckey[160];
    snprintf(snow, sizeof snow, "%" PRId64, now_ms);
    snprintf(smax, sizeof smax, "%zu", max);
    snprintf(slease, sizeof slease, "%" PRId64, lease_ms);
    claims_key(owner, ckey, sizeof ckey);
    const char *argv[] = {
        "EVAL", LUA_CLAIM, "2", NQ_DUE_KEY, ckey, snow, smax, slease, owner != NULL ? owner : ""};
    chat_err_t err = CHAT_OK;
    redisReply *reply = chat_redis_command_argv(r, &err, 9, argv, NULL);
    if (reply == NULL)
        return err;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 3 != 0) {
        freeReplyObject(reply);
        return CHAT_ERR_REDIS;
    }
    size_t count = reply->elements / 3;
    nq_job_t *out = calloc(count > 0 ? count : 1, sizeof *out);
    if (out == NULL) {
        freeReplyObject(reply);
        return CHAT_ERR_NOMEM;
    }
    size_t got = 0;
    for (size_t i = 0; i < count && err == CHAT_OK; i++) {
        err = job_from_reply(&out[got], reply->element[3 * i], reply->element[3 * i + 1],
                             reply->element[3 * i + 2]);
        if (err == CHAT_ERR_INVALID) {
            /* Not a job of any known kind: nothing could send it. Logged and left to its
             * lease (it comes back, and is logged again, a minute later). */
            chat_log_error("notify outbox: job id of no known kind",
                           CHAT_F_STR("job", out[got].id != NULL ? out[got].id : ""));
            nq_job_clear(&out[got]);
            err = CHAT_OK;
            continue;
        }
        got++;
    }
    freeReplyObject(reply);
    if (err != CHAT_OK) {
        nq_jobs_free(out, got + 1);
        return err;
    }
    *jobs = out;
    *n = got;
    return CHAT_OK;
}

chat_err_t nq_claim_lease(chat_redis_t *r, int64_t now_ms, size_t max, int64_t lease_ms,
                          nq_job_t **jobs, size_t *n)
{
    return nq_claim_owned(r, now_ms, max, lease_ms, NULL, jobs, n);
}

chat_err_t nq_claim(chat_redis_t *r, int64_t now_ms, size_t max, nq_job_t **jobs, size_t *n)
{
    return nq_claim_lease(r, now_ms, max, NQ_LEASE_MS, jobs, n);
}

chat_err_t nq_release_owner(chat_redis_t *r, const char *owner, int64_t now_ms, int64_t *released)
{
    *released = 0;
    if (owner == NULL || owner[0] == '\0')
        return CHAT_OK;
    char snow[24], ckey[160];
    snprintf(snow, sizeof snow, "%" PRId64, now_ms);
    claims_key(owner, ckey, sizeof ckey);
    const char *argv[] = {"EVAL", LUA_RELEASE, "2", NQ_DUE_KEY, ckey, owner, snow};
    chat_err_t err = CHAT_OK;
    redisReply *reply = chat_redis_command_argv(r, &err, 7, argv, NULL);
    if (reply == NULL)
        return err;
    if (reply->type == REDIS_REPLY_INTEGER)
        *released = reply->integer;
    else
        err = CHAT_ERR_REDIS;
    freeReplyObject(reply);
    return err;
}

/* The result of a lease-guarded script: CHAT_NOT_FOUND if the lease no longer held. */
static chat_err_t guarded(chat_err_t err, long long result)
{
    return err != CHAT_OK ? err : result == 0 ? CHAT_ERR_NOT_FOUND : CHAT_OK;
}

/* Ends a push job: sent records first..last. */
static chat_err_t end_push(chat_redis_t *r, const nq_job_t *j, bool sent, int64_t first,
                           int64_t last, int64_t now_ms)
{
    char *close = str_printf("close|%s|%s|%s", j->tenant, j->user, j->room);
    if (close == NULL)
        return CHAT_ERR_NOMEM;
    argv_buf_t a = {0};
    argv_eval(&a, LUA_END_PUSH, 6);
    argv_str(&a, NQ_DUE_KEY);
    argv_take(&a, job_key(j->id));
    argv_take(&a, user_key("sent", j->tenant, j->user));
    argv_take(&a, user_key("pending", j->tenant, j->room));
    argv_take(&a, user_key("shown", j->tenant, j->room));
    argv_take(&a, job_key(close));
    argv_str(&a, j->id);
    argv_int(&a, j->lease);
    argv_str(&a, nq_job_field(j, "ver"));
    argv_str(&a, nq_job_field(j, "removals") != NULL ? nq_job_field(j, "removals") : "0");
    argv_str(&a, sent ? "1" : "0");
    argv_int(&a, first);
    argv_int(&a, last);
    argv_int(&a, now_ms);
    argv_str(&a, j->room);
    argv_str(&a, j->user);
    argv_str(&a, close);
    argv_int(&a, nq_job_int(j, "seq", 0));
    argv_int(&a, nq_job_int(j, "count", 0));
    free(close);
    long long result = 0;
    chat_err_t err = argv_run(r, &a, &result);
    return guarded(err, result);
}

/* Ends an email job: mailed records rooms[i] up to seqs[i]. */
static chat_err_t end_email(chat_redis_t *r, const nq_job_t *j, bool mailed,
                            const char *const *rooms, const int64_t *seqs, size_t n, int64_t now_ms)
{
    argv_buf_t a = {0};
    argv_eval(&a, LUA_END_EMAIL, 3);
    argv_str(&a, NQ_DUE_KEY);
    argv_take(&a, job_key(j->id));
    argv_take(&a, user_key("mailed", j->tenant, j->user));
    argv_str(&a, j->id);
    argv_int(&a, j->lease);
    argv_str(&a, nq_job_field(j, "ver"));
    argv_int(&a, now_ms);
    argv_str(&a, mailed ? "1" : "0");
    for (size_t i = 0; mailed && i < n; i++) {
        argv_str(&a, rooms[i]);
        argv_int(&a, seqs[i]);
    }
    long long result = 0;
    chat_err_t err = argv_run(r, &a, &result);
    return guarded(err, result);
}

chat_err_t nq_finish(chat_redis_t *r, const nq_job_t *j, bool delivered)
{
    if (j->kind == NQ_PUSH)
        return end_push(r, j, false, 0, 0, chat_clock_wall_ms());
    if (j->kind == NQ_EMAIL)
        return end_email(r, j, false, NULL, NULL, 0, chat_clock_wall_ms());
    argv_buf_t a = {0};
    argv_eval(&a, LUA_FINISH, 3);
    argv_str(&a, NQ_DUE_KEY);
    argv_take(&a, job_key(j->id));
    argv_take(&a, str_printf("chat:notify:done:%s", j->id));
    argv_str(&a, j->id);
    argv_int(&a, j->lease);
    argv_str(&a, delivered && j->kind == NQ_WEBHOOK ? "1" : "0");
    long long result = 0;
    chat_err_t err = argv_run(r, &a, &result);
    return guarded(err, result);
}

chat_err_t nq_retry_fields(chat_redis_t *r, const nq_job_t *j, int64_t due_ms, int64_t attempts,
                           const char *error, const char *const *fields, size_t n)
{
    argv_buf_t a = {0};
    argv_eval(&a, LUA_RETRY, 2);
    argv_str(&a, NQ_DUE_KEY);
    argv_take(&a, job_key(j->id));
    argv_str(&a, j->id);
    argv_int(&a, j->lease);
    argv_int(&a, due_ms);
    argv_int(&a, attempts);
    argv_str(&a, error);
    for (size_t i = 0; i + 1 < 2 * n; i += 2) {
        argv_str(&a, fields[i]);
        argv_str(&a, fields[i + 1]);
    }
    long long result = 0;
    chat_err_t err = argv_run(r, &a, &result);
    return guarded(err, result);
}

chat_err_t nq_retry(chat_redis_t *r, const nq_job_t *j, int64_t due_ms, int64_t attempts,
                    const char *error)
{
    return nq_retry_fields(r, j, due_ms, attempts, error, NULL, 0);
}

chat_err_t nq_push_sent(chat_redis_t *r, const nq_job_t *j, int64_t first, int64_t last,
                        int64_t now_ms)
{
    if (j->kind != NQ_PUSH)
        return CHAT_ERR_INVALID;
    return end_push(r, j, true, first, last, now_ms);
}

chat_err_t nq_email_sent(chat_redis_t *r, const nq_job_t *j, const char *const *rooms,
                         const int64_t *seqs, size_t n, int64_t now_ms)
{
    if (j->kind != NQ_EMAIL)
        return CHAT_ERR_INVALID;
    return end_email(r, j, true, rooms, seqs, n, now_ms);
}

chat_err_t nq_pending(chat_redis_t *r, int64_t *n)
{
    chat_err_t err = CHAT_OK;
    redisReply *reply = chat_redis_command(r, &err, "ZCARD %s", NQ_DUE_KEY);
    if (reply == NULL)
        return err;
    err = reply->type == REDIS_REPLY_INTEGER ? CHAT_OK : CHAT_ERR_REDIS;
    if (err == CHAT_OK)
        *n = reply->integer;
    freeReplyObject(reply);
    return err;
}

chat_err_t nq_next_due(chat_redis_t *r, int64_t *due_ms, bool *found)
{
    *found = false;
    chat_err_t err = CHAT_OK;
    redisReply *reply =
        chat_redis_command(r, &err, "ZRANGE %s -inf +inf BYSCORE LIMIT 0 1 WITHSCORES", NQ_DUE_KEY);
    if (reply == NULL)
        return err;
    if (reply->type != REDIS_REPLY_ARRAY) {
        err = CHAT_ERR_REDIS;
    } else if (reply->elements >= 2 && reply->element[1]->type == REDIS_REPLY_STRING) {
        *due_ms = (int64_t)strtod(reply->element[1]->str, NULL);
        *found = true;
    }
    freeReplyObject(reply);
    return err;
}
