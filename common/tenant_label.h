/* Bounded `tenant` labels for metrics. A process labels at most `max` tenants by name (the
 * first it sees) plus every tenant of an allowlist; every other tenant is counted under
 * tenant="_other", so a family has at most max + allowlist + 1 series however many tenants
 * there are, and its sum over tenant is always the total (docs/metrics.md).
 *
 * chat_tenant_counter_t / chat_tenant_gauge_t are such families: a slot per label value,
 * its series registered on first use. Lookups and updates are safe from any thread; a
 * tenant's slot is found under a mutex (a short scan of at most max + allowlist names). */
#ifndef CHAT_COMMON_TENANT_LABEL_H
#define CHAT_COMMON_TENANT_LABEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/metrics.h"

/* The two configuration entries every service with tenant labels has. */
#define CHAT_CFG_METRICS_TENANTS(st, field)                                                        \
    CHAT_CFG_STRING("CHAT_METRICS_TENANTS", st, field, "",                                         \
                    "tenants always given their own `tenant` metric label (comma-separated)")
#define CHAT_CFG_METRICS_TENANTS_MAX(st, field)                                                    \
    CHAT_CFG_INTEGER("CHAT_METRICS_TENANTS_MAX", st, field, "20", 0, 1000,                         \
                     "other tenants labelled by name, first seen first; the rest are "             \
                     "counted as tenant=\"_other\"")

/* The label value of tenants beyond the bound. */
#define CHAT_TENANT_LABEL_OTHER "_other"

typedef struct chat_tenant_labels chat_tenant_labels_t;
typedef struct chat_tenant_counter chat_tenant_counter_t;
typedef struct chat_tenant_gauge chat_tenant_gauge_t;

/* A label set: allowlist is comma-separated tenant ids (NULL or "" for none; blanks around
 * names are ignored), max the number of other tenants labelled by name (>= 0). Returns NULL
 * on no memory. */
chat_tenant_labels_t *chat_tenant_labels_new(const char *allowlist, int max);
/* Frees the set and every family made from it. Accepts NULL. */
void chat_tenant_labels_destroy(chat_tenant_labels_t *t);

/* The slot of tenant: its own, a new one while fewer than max are taken, or the _other
 * slot. NULL or an empty tenant goes to _other. */
size_t chat_tenant_labels_slot(chat_tenant_labels_t *t, const char *tenant);
/* The label value of a slot (the tenant id, or "_other"). */
const char *chat_tenant_labels_name(const chat_tenant_labels_t *t, size_t slot);
/* The number of slots there can be: allowlist + max + 1. */
size_t chat_tenant_labels_capacity(const chat_tenant_labels_t *t);

/* A counter family name{tenant="..."[,extra]} in m (extra: more label text without braces,
 * or NULL). The allowlisted tenants' and _other's series are registered at once (so a rate
 * over them is 0 before the first event), the others when first used. Owned by t. NULL on
 * no memory or bad name. */
chat_tenant_counter_t *chat_tenant_counter_new(chat_tenant_labels_t *t, chat_metrics_t *m,
                                               const char *name, const char *help,
                                               const char *extra);
/* Adds n to tenant's series. Accepts a NULL family (does nothing). */
void chat_tenant_counter_add(chat_tenant_counter_t *c, const char *tenant, uint64_t n);

/* The same for a gauge family (e.g. open connections per tenant). */
chat_tenant_gauge_t *chat_tenant_gauge_new(chat_tenant_labels_t *t, chat_metrics_t *m,
                                           const char *name, const char *help, const char *extra);
void chat_tenant_gauge_add(chat_tenant_gauge_t *g, const char *tenant, double delta);

#endif
