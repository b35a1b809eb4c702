/* The message document's owning list and the small formats around it (id, src). */
#include "services/message/message_doc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"

static void doc_free_strings(message_doc_t *d)
{
    free((char *)d->tenant);
    free((char *)d->room);
    free((char *)d->from);
    free((char *)d->name);
    free((char *)d->text);
    free((char *)d->notice);
    free((char *)d->target);
    free((char *)d->cid);
    free((char *)d->src);
    free((char *)d->uop);
    free((char *)d->reason);
    cJSON_Delete(d->reactions);
}

/* strdup that keeps NULL as NULL; *ok turns false if a copy failed. */
static const char *dup_or_null(const char *s, bool *ok)
{
    if (s == NULL)
        return NULL;
    char *c = strdup(s);
    if (c == NULL)
        *ok = false;
    return c;
}

chat_err_t message_doc_list_add(message_doc_list_t *l, const message_doc_t *doc)
{
    message_doc_t *docs = chat_array_grow(l->docs, &l->cap, l->n + 1, sizeof *docs);
    if (docs == NULL)
        return CHAT_ERR_NOMEM;
    l->docs = docs;
    message_doc_t *d = &l->docs[l->n];
    bool ok = true;
    *d = *doc;
    d->tenant = dup_or_null(doc->tenant, &ok);
    d->room = dup_or_null(doc->room, &ok);
    d->from = dup_or_null(doc->from, &ok);
    d->name = dup_or_null(doc->name, &ok);
    d->text = dup_or_null(doc->text, &ok);
    d->notice = dup_or_null(doc->notice, &ok);
    d->target = dup_or_null(doc->target, &ok);
    d->cid = dup_or_null(doc->cid, &ok);
    d->src = dup_or_null(doc->src, &ok);
    d->uop = dup_or_null(doc->uop, &ok);
    d->reason = dup_or_null(doc->reason, &ok);
    d->reactions = doc->reactions != NULL ? cJSON_Duplicate(doc->reactions, true) : NULL;
    if (doc->reactions != NULL && d->reactions == NULL)
        ok = false;
    if (!ok) {
        doc_free_strings(d);
        return CHAT_ERR_NOMEM;
    }
    l->n++;
    return CHAT_OK;
}

void message_doc_list_clear(message_doc_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        doc_free_strings(&l->docs[i]);
    free(l->docs);
    l->docs = NULL;
    l->n = l->cap = 0;
}

void message_src_format(char *buf, size_t len, int32_t partition, int64_t offset)
{
    snprintf(buf, len, "%" PRId32 ":%" PRId64, partition, offset);
}
