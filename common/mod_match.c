/* Aho–Corasick automaton for the moderation blocklists. Built as a trie with linked
 * children, then flattened: each node's edges sorted in one shared array (8 bytes an edge,
 * 16 bytes a node), fail and dictionary links, a direct table for ASCII at the root. */
#include "common/mod_match.h"

#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define RUNS_ONES UINT32_MAX /* a pattern whose runs are all 1 stores none */
#define ALT_MAX 32           /* alternatives followed at once when the text has masks */
/* A node with this many children or more gets a full ASCII transition row (fail links
 * resolved): the few busy nodes near the root, where a big list would otherwise cost a binary
 * search and a walk down the fail links per character. */
#define DENSE_MIN_EDGES 8

typedef struct pat {
    uint32_t tag;
    uint32_t next; /* the next pattern ending at the same node, + 1 (0: none) */
    uint32_t runs; /* offset in runs, or RUNS_ONES */
    uint32_t len;
} pat_t;

typedef struct bnode {
    uint32_t cp, child, sibling; /* NONE for none */
    uint32_t out;                /* first pattern ending here, + 1 */
} bnode_t;

struct chat_mod_ac_builder {
    bnode_t *nodes;
    size_t nnodes, capnodes;
    pat_t *pats;
    size_t npats, cappats;
    uint8_t *runs;
    size_t nruns, capruns;
    /* (parent, code point) -> child while building, so that a node with thousands of
     * children (the root of a CJK list) is not searched child by child */
    uint32_t *hkey_parent, *hkey_cp, *hval;
    size_t hcap, hcount;
};

struct chat_mod_ac {
    uint32_t nnodes, nedges;
    uint32_t *edge_start; /* nnodes + 1 */
    uint32_t *edge_cp, *edge_to;
    uint32_t *fail, *dict, *out;
    uint32_t root_ascii[128];
    uint32_t *dense_of; /* per node: its row in dense, or NONE */
    uint32_t *dense;    /* rows of 128 next states */
    uint32_t ndense;
    pat_t *pats;
    size_t npats;
    uint8_t *runs;
    size_t nruns;
};

/* Grows *arr (of elem-byte items, *cap of them) to hold need. False when memory runs out. */
static bool grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = n;
    return true;
}

chat_mod_ac_builder_t *chat_mod_ac_builder_new(void)
{
    chat_mod_ac_builder_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    if (!grow((void **)&b->nodes, &b->capnodes, 1, sizeof *b->nodes)) {
        free(b);
        return NULL;
    }
    b->nodes[0] = (bnode_t){.cp = 0, .child = NONE, .sibling = NONE, .out = 0};
    b->nnodes = 1;
    return b;
}

void chat_mod_ac_builder_free(chat_mod_ac_builder_t *b)
{
    if (!b)
        return;
    free(b->hkey_parent);
    free(b->hkey_cp);
    free(b->hval);
    free(b->nodes);
    free(b->pats);
    free(b->runs);
    free(b);
}

static size_t child_slot(const chat_mod_ac_builder_t *b, uint32_t parent, uint32_t cp)
{
    uint64_t h = ((uint64_t)parent << 32 | cp) * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 32) & (b->hcap - 1);
    while (b->hval[i] != NONE && (b->hkey_parent[i] != parent || b->hkey_cp[i] != cp))
        i = (i + 1) & (b->hcap - 1);
    return i;
}

/* Makes the child table hold one more entry at a load of at most 1/2. False when memory
 * runs out. */
static bool child_table_reserve(chat_mod_ac_builder_t *b)
{
    if ((b->hcount + 1) * 2 <= b->hcap)
        return true;
    size_t cap = b->hcap ? b->hcap * 2 : 1024;
    uint32_t *kp = malloc(cap * sizeof *kp), *kc = malloc(cap * sizeof *kc),
             *v = malloc(cap * sizeof *v);
    if (!kp || !kc || !v) {
        free(kp);
        free(kc);
        free(v);
        return false;
    }
    memset(v, 0xFF, cap * sizeof *v);
    uint32_t *okp = b->hkey_parent, *okc = b->hkey_cp, *ov = b->hval;
    size_t ocap = b->hcap;
    b->hkey_parent = kp;
    b->hkey_cp = kc;
    b->hval = v;
    b->hcap = cap;
    for (size_t i = 0; i < ocap; i++) {
        if (ov[i] == NONE)
            continue;
        size_t j = child_slot(b, okp[i], okc[i]);
        kp[j] = okp[i];
        kc[j] = okc[i];
        v[j] = ov[i];
    }
    free(okp);
    free(okc);
    free(ov);
    return true;
}

chat_err_t chat_mod_ac_builder_add(chat_mod_ac_builder_t *b, const uint32_t *cp, const uint8_t *run,
                                   size_t len, uint32_t tag)
{
    if (len == 0 || len > 255)
        return CHAT_ERR_INVALID;
    if (b->nnodes + len >= NONE - 1 || b->npats + 1 >= NONE - 1)
        return CHAT_ERR_NOMEM;
    uint32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        if (!child_table_reserve(b))
            return CHAT_ERR_NOMEM;
        size_t slot = child_slot(b, node, cp[i]);
        uint32_t c = b->hval[slot];
        if (c == NONE) {
            if (!grow((void **)&b->nodes, &b->capnodes, b->nnodes + 1, sizeof *b->nodes))
                return CHAT_ERR_NOMEM;
            c = (uint32_t)b->nnodes++;
            b->nodes[c] =
                (bnode_t){.cp = cp[i], .child = NONE, .sibling = b->nodes[node].child, .out = 0};
            b->nodes[node].child = c;
            b->hkey_parent[slot] = node;
            b->hkey_cp[slot] = cp[i];
            b->hval[slot] = c;
            b->hcount++;
        }
        node = c;
    }
    bool ones = true;
    for (size_t i = 0; i < len; i++)
        if (run[i] != 1)
            ones = false;
    if (!grow((void **)&b->pats, &b->cappats, b->npats + 1, sizeof *b->pats))
        return CHAT_ERR_NOMEM;
    uint32_t off = RUNS_ONES;
    if (!ones) {
        if (!grow((void **)&b->runs, &b->capruns, b->nruns + len, 1))
            return CHAT_ERR_NOMEM;
        off = (uint32_t)b->nruns;
        memcpy(b->runs + b->nruns, run, len);
        b->nruns += len;
    }
    b->pats[b->npats] =
        (pat_t){.tag = tag, .next = b->nodes[node].out, .runs = off, .len = (uint32_t)len};
    b->nodes[node].out = (uint32_t)++b->npats;
    return CHAT_OK;
}

typedef struct edge {
    uint32_t cp, to;
} edge_t;

static int edge_cmp(const void *a, const void *b)
{
    uint32_t x = ((const edge_t *)a)->cp, y = ((const edge_t *)b)->cp;
    return x < y ? -1 : x > y;
}

/* The child of s by c, or NONE. */
static uint32_t go(const chat_mod_ac_t *ac, uint32_t s, uint32_t c)
{
    uint32_t lo = ac->edge_start[s], hi = ac->edge_start[s + 1];
    if (hi - lo <= 8) {
        for (uint32_t e = lo; e < hi; e++)
            if (ac->edge_cp[e] == c)
                return ac->edge_to[e];
        return NONE;
    }
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ac->edge_cp[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ac->edge_start[s + 1] && ac->edge_cp[lo] == c ? ac->edge_to[lo] : NONE;
}

/* The state after s reads c (following fail links). */
static uint32_t delta(const chat_mod_ac_t *ac, uint32_t s, uint32_t c)
{
    for (;;) {
        if (c < 128 && ac->dense_of[s] != NONE)
            return ac->dense[(size_t)ac->dense_of[s] * 128 + c];
        if (s == 0) {
            if (c < 128)
                return ac->root_ascii[c];
            uint32_t t = go(ac, 0, c);
            return t == NONE ? 0 : t;
        }
        uint32_t t = go(ac, s, c);
        if (t != NONE)
            return t;
        s = ac->fail[s];
    }
}

void chat_mod_ac_free(chat_mod_ac_t *ac)
{
    if (!ac)
        return;
    free(ac->edge_start);
    free(ac->edge_cp);
    free(ac->edge_to);
    free(ac->fail);
    free(ac->dict);
    free(ac->out);
    free(ac->dense_of);
    free(ac->dense);
    free(ac->pats);
    free(ac->runs);
    free(ac);
}

chat_mod_ac_t *chat_mod_ac_build(chat_mod_ac_builder_t *b)
{
    chat_mod_ac_t *ac = calloc(1, sizeof *ac);
    uint32_t *queue = NULL;
    edge_t *pairs = NULL;
    if (!ac)
        goto fail;
    uint32_t n = (uint32_t)b->nnodes;
    ac->nnodes = n;
    ac->nedges = n - 1;
    ac->edge_start = calloc((size_t)n + 1, sizeof *ac->edge_start);
    ac->edge_cp = malloc(((size_t)n) * sizeof *ac->edge_cp);
    ac->edge_to = malloc(((size_t)n) * sizeof *ac->edge_to);
    ac->fail = calloc(n, sizeof *ac->fail);
    ac->dict = calloc(n, sizeof *ac->dict);
    ac->out = malloc((size_t)n * sizeof *ac->out);
    ac->dense_of = malloc((size_t)n * sizeof *ac->dense_of);
    queue = malloc((size_t)n * sizeof *queue);
    pairs = malloc((size_t)n * sizeof *pairs);
    if (!ac->edge_start || !ac->edge_cp || !ac->edge_to || !ac->fail || !ac->dict || !ac->out ||
        !ac->dense_of || !queue || !pairs)
        goto fail;
    for (uint32_t v = 0; v < n; v++)
        ac->dense_of[v] = NONE;
    /* edges: each node's children, sorted by code point, one segment per node */
    uint32_t e = 0;
    for (uint32_t v = 0; v < n; v++) {
        ac->edge_start[v] = e;
        ac->out[v] = b->nodes[v].out;
        uint32_t m = 0;
        for (uint32_t c = b->nodes[v].child; c != NONE; c = b->nodes[c].sibling)
            pairs[m++] = (edge_t){.cp = b->nodes[c].cp, .to = c};
        if (m > 1)
            qsort(pairs, m, sizeof *pairs, edge_cmp);
        for (uint32_t k = 0; k < m; k++, e++) {
            ac->edge_cp[e] = pairs[k].cp;
            ac->edge_to[e] = pairs[k].to;
        }
    }
    ac->edge_start[n] = e;
    for (uint32_t c = 0; c < 128; c++) {
        uint32_t t = go(ac, 0, c);
        ac->root_ascii[c] = t == NONE ? 0 : t;
    }
    /* fail and dictionary links, breadth first; a dense row once a node's fail link is
     * known (its fail state is shallower, so its own transitions already are) */
    uint32_t ndense_max = 0;
    for (uint32_t v = 1; v < n; v++)
        if (ac->edge_start[v + 1] - ac->edge_start[v] >= DENSE_MIN_EDGES)
            ndense_max++;
    if (ndense_max > 0) {
        ac->dense = malloc((size_t)ndense_max * 128 * sizeof *ac->dense);
        if (!ac->dense)
            goto fail;
    }
    size_t head = 0, tail = 0;
    for (uint32_t k = ac->edge_start[0]; k < ac->edge_start[1]; k++)
        queue[tail++] = ac->edge_to[k];
    while (head < tail) {
        uint32_t u = queue[head++];
        if (ac->edge_start[u + 1] - ac->edge_start[u] >= DENSE_MIN_EDGES) {
            uint32_t *row = ac->dense + (size_t)ac->ndense * 128;
            for (uint32_t c = 0; c < 128; c++)
                row[c] = delta(ac, u, c);
            ac->dense_of[u] = ac->ndense++;
        }
        for (uint32_t k = ac->edge_start[u]; k < ac->edge_start[u + 1]; k++) {
            uint32_t v = ac->edge_to[k];
            ac->fail[v] = delta(ac, ac->fail[u], ac->edge_cp[k]);
            uint32_t f = ac->fail[v];
            ac->dict[v] = ac->out[f] ? f : ac->dict[f];
            queue[tail++] = v;
        }
    }
    free(queue);
    free(pairs);
    ac->pats = b->pats;
    ac->npats = b->npats;
    ac->runs = b->runs;
    ac->nruns = b->nruns;
    b->pats = NULL;
    b->runs = NULL;
    chat_mod_ac_builder_free(b);
    return ac;
fail:
    free(queue);
    free(pairs);
    chat_mod_ac_free(ac);
    chat_mod_ac_builder_free(b);
    return NULL;
}

size_t chat_mod_ac_bytes(const chat_mod_ac_t *ac)
{
    if (!ac)
        return 0;
    return sizeof *ac + ((size_t)ac->nnodes + 1) * sizeof(uint32_t) +
           (size_t)ac->nnodes * 2 * sizeof(uint32_t) /* edges (nnodes - 1) */ +
           (size_t)ac->nnodes * 4 * sizeof(uint32_t) + (size_t)ac->ndense * 128 * sizeof(uint32_t) +
           ac->npats * sizeof(pat_t) + ac->nruns;
}

/* Reports the patterns that end at state s with last text position i. False to stop. */
static bool emit(const chat_mod_ac_t *ac, const chat_mod_stream_t *s, uint32_t state, size_t i,
                 chat_mod_ac_match_fn fn, void *ud)
{
    uint32_t o = ac->out[state] ? state : ac->dict[state];
    while (o) {
        for (uint32_t p = ac->out[o]; p; p = ac->pats[p - 1].next) {
            const pat_t *pt = &ac->pats[p - 1];
            size_t first = i + 1 - pt->len;
            bool fits = true;
            if (pt->runs != RUNS_ONES) {
                for (uint32_t j = 0; j < pt->len && fits; j++) {
                    unsigned have = s->cp[first + j] == CHAT_MOD_MASK ? 1 : s->run[first + j];
                    fits = ac->runs[pt->runs + j] <= have;
                }
            }
            if (fits && !fn(ud, pt->tag, first, i))
                return false;
        }
        o = ac->dict[o];
    }
    return true;
}

/* Adds state t to the set alt (n of them, at most ALT_MAX) unless it is there. */
static void alt_add(uint32_t *alt, size_t *n, uint32_t t)
{
    for (size_t k = 0; k < *n; k++)
        if (alt[k] == t)
            return;
    if (*n < ALT_MAX)
        alt[(*n)++] = t;
}

void chat_mod_ac_scan(const chat_mod_ac_t *ac, const chat_mod_stream_t *s, chat_mod_ac_match_fn fn,
                      void *ud)
{
    if (!ac || ac->npats == 0)
        return;
    uint32_t alt[ALT_MAX], next[ALT_MAX];
    size_t nalt = 1;
    alt[0] = 0;
    for (size_t i = 0; i < s->len; i++) {
        uint32_t c = s->cp[i];
        if (nalt == 1 && c != CHAT_MOD_MASK) { /* the common case: one state */
            alt[0] = delta(ac, alt[0], c);
            if (alt[0] && !emit(ac, s, alt[0], i, fn, ud))
                return;
            continue;
        }
        size_t nn = 0;
        for (size_t k = 0; k < nalt; k++) {
            if (c == CHAT_MOD_MASK) {
                for (uint32_t l = 'a'; l <= 'z'; l++)
                    alt_add(next, &nn, delta(ac, alt[k], l));
            } else {
                alt_add(next, &nn, delta(ac, alt[k], c));
            }
        }
        /* root (no match in progress) needs no place among the alternatives */
        size_t w = 0;
        for (size_t k = 0; k < nn; k++)
            if (next[k] != 0 || nn == 1)
                next[w++] = next[k];
        if (w == 0)
            next[w++] = 0;
        nalt = w;
        memcpy(alt, next, nalt * sizeof *alt);
        for (size_t k = 0; k < nalt; k++)
            if (alt[k] && !emit(ac, s, alt[k], i, fn, ud))
                return;
    }
}
