/* Bounded tenant labels: a fixed array of slots (allowlist first, then the first `max`
 * other tenants seen, then _other), each family an array of series pointers published with
 * atomics so updates need the mutex only to find a tenant's slot. */
#include "common/tenant_label.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum family_kind {
    FAMILY_COUNTER,
    FAMILY_GAUGE,
} family_kind_t;

typedef struct family {
    struct family *next;
    family_kind_t kind;
    chat_tenant_labels_t *labels;
    chat_metrics_t *metrics;
    char *name, *help, *extra;
    _Atomic(void *) *series; /* capacity entries: chat_counter_t * or chat_gauge_t * */
} family_t;

struct chat_tenant_counter {
    family_t f;
};

struct chat_tenant_gauge {
    family_t f;
};

struct chat_tenant_labels {
    pthread_mutex_t lock;
    char **names;    /* capacity - 1 entries; the last slot is _other */
    size_t nallow;   /* names[0 .. nallow) come from the allowlist */
    size_t used;     /* names[0 .. used) are taken */
    size_t capacity; /* nallow + max + 1 */
    family_t *families;
};

static char *dup_trimmed(const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    char *out = malloc(n + 1);
    if (out != NULL) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

static bool has_name(const chat_tenant_labels_t *t, const char *name)
{
    for (size_t i = 0; i < t->used; i++) {
        if (strcmp(t->names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

chat_tenant_labels_t *chat_tenant_labels_new(const char *allowlist, int max)
{
    if (max < 0) {
        return NULL;
    }
    size_t nlist = 0;
    for (const char *p = allowlist; p != NULL && *p != '\0'; p++) {
        nlist += *p == ',';
    }
    nlist += allowlist != NULL && *allowlist != '\0';
    chat_tenant_labels_t *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    t->names = calloc(nlist + (size_t)max + 1, sizeof *t->names);
    if (t->names == NULL) {
        chat_tenant_labels_destroy(t);
        return NULL;
    }
    const char *p = allowlist;
    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        char *name = dup_trimmed(p, n);
        if (name == NULL) {
            chat_tenant_labels_destroy(t);
            return NULL;
        }
        if (name[0] == '\0' || has_name(t, name) || strcmp(name, CHAT_TENANT_LABEL_OTHER) == 0) {
            free(name);
        } else {
            t->names[t->used++] = name;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    t->nallow = t->used;
    t->capacity = t->nallow + (size_t)max + 1;
    return t;
}

static void family_free(family_t *f)
{
    free(f->name);
    free(f->help);
    free(f->extra);
    free(f->series);
    free(f);
}

void chat_tenant_labels_destroy(chat_tenant_labels_t *t)
{
    if (t == NULL) {
        return;
    }
    for (family_t *f = t->families, *next; f != NULL; f = next) {
        next = f->next;
        family_free(f);
    }
    for (size_t i = 0; t->names != NULL && i < t->used; i++) {
        free(t->names[i]);
    }
    free(t->names);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

size_t chat_tenant_labels_capacity(const chat_tenant_labels_t *t)
{
    return t->capacity;
}

size_t chat_tenant_labels_slot(chat_tenant_labels_t *t, const char *tenant)
{
    size_t other = t->capacity - 1;
    if (tenant == NULL || tenant[0] == '\0') {
        return other;
    }
    pthread_mutex_lock(&t->lock);
    size_t slot = other;
    for (size_t i = 0; i < t->used; i++) {
        if (strcmp(t->names[i], tenant) == 0) {
            slot = i;
            break;
        }
    }
    if (slot == other && t->used < other) {
        char *name = strdup(tenant);
        if (name != NULL) {
            slot = t->used;
            t->names[t->used++] = name;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return slot;
}

const char *chat_tenant_labels_name(const chat_tenant_labels_t *t, size_t slot)
{
    /* names[] entries are written once, before their slot is handed out. */
    return slot < t->used && slot < t->capacity - 1 ? t->names[slot] : CHAT_TENANT_LABEL_OTHER;
}

/* The series' label text: tenant="<escaped id>"[,extra]. */
static void label_text(char *out, size_t cap, const char *tenant, const char *extra)
{
    char esc[2 * 256 + 1];
    chat_metrics_label_escape(tenant, esc, sizeof esc);
    if (extra != NULL && extra[0] != '\0')
        snprintf(out, cap, "tenant=\"%s\",%s", esc, extra);
    else
        snprintf(out, cap, "tenant=\"%s\"", esc);
}

static void *family_series(family_t *f, size_t slot)
{
    void *s = atomic_load_explicit(&f->series[slot], memory_order_acquire);
    if (s != NULL) {
        return s;
    }
    char labels[1024];
    label_text(labels, sizeof labels, chat_tenant_labels_name(f->labels, slot), f->extra);
    /* The registry returns the existing series for the same labels, so a race registers once. */
    s = f->kind == FAMILY_COUNTER
            ? (void *)chat_metrics_counter(f->metrics, f->name, f->help, labels)
            : (void *)chat_metrics_gauge(f->metrics, f->name, f->help, labels);
    if (s != NULL) {
        atomic_store_explicit(&f->series[slot], s, memory_order_release);
    }
    return s;
}

static family_t *family_new(chat_tenant_labels_t *t, chat_metrics_t *m, family_kind_t kind,
                            size_t size, const char *name, const char *help, const char *extra)
{
    family_t *f = calloc(1, size);
    if (f == NULL) {
        return NULL;
    }
    f->kind = kind;
    f->labels = t;
    f->metrics = m;
    f->name = strdup(name);
    f->help = strdup(help);
    f->extra = extra != NULL ? strdup(extra) : NULL;
    f->series = calloc(t->capacity, sizeof *f->series);
    if (f->name == NULL || f->help == NULL || (extra != NULL && f->extra == NULL) ||
        f->series == NULL) {
        family_free(f);
        return NULL;
    }
    /* Allowlisted tenants and _other exist from the start. */
    for (size_t i = 0; i < t->nallow; i++) {
        if (family_series(f, i) == NULL) {
            family_free(f);
            return NULL;
        }
    }
    if (family_series(f, t->capacity - 1) == NULL) {
        family_free(f);
        return NULL;
    }
    pthread_mutex_lock(&t->lock);
    f->next = t->families;
    t->families = f;
    pthread_mutex_unlock(&t->lock);
    return f;
}

chat_tenant_counter_t *chat_tenant_counter_new(chat_tenant_labels_t *t, chat_metrics_t *m,
                                               const char *name, const char *help,
                                               const char *extra)
{
    return (chat_tenant_counter_t *)family_new(t, m, FAMILY_COUNTER, sizeof(chat_tenant_counter_t),
                                               name, help, extra);
}

chat_tenant_gauge_t *chat_tenant_gauge_new(chat_tenant_labels_t *t, chat_metrics_t *m,
                                           const char *name, const char *help, const char *extra)
{
    return (chat_tenant_gauge_t *)family_new(t, m, FAMILY_GAUGE, sizeof(chat_tenant_gauge_t), name,
                                             help, extra);
}

void chat_tenant_counter_add(chat_tenant_counter_t *c, const char *tenant, uint64_t n)
{
    if (c == NULL) {
        return;
    }
    size_t slot = chat_tenant_labels_slot(c->f.labels, tenant);
    chat_counter_add(family_series(&c->f, slot), n);
}

void chat_tenant_gauge_add(chat_tenant_gauge_t *g, const char *tenant, double delta)
{
    if (g == NULL) {
        return;
    }
    size_t slot = chat_tenant_labels_slot(g->f.labels, tenant);
    chat_gauge_add(family_series(&g->f, slot), delta);
}
