/* Exports of a tenant's history as JSON Lines (POST/GET /v1/exports; the job in exports.c):
 * the pure parts, unit-tested: a stored message as its line, and an export's params. */
#ifndef CHAT_API_EXPORTS_H
#define CHAT_API_EXPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>
#include <cjson/cJSON.h>

/* The line of a stored message (a `messages` document) in its current state: {room, seq, id,
 * from, name?, text | deleted: true, ts, edited?, reactions? ({emoji: [users]}), removed?,
 * notice?, target?}. A new object (caller deletes), or NULL if the document lacks room, seq,
 * id, from or ts, or out of memory. */
cJSON *api_export_line(const bson_t *doc);

/* What one export covers: one room or all (room NULL), messages with from <= ts < to. */
typedef struct api_export_params {
    const char *room; /* borrowed from the body */
    int64_t from;     /* 0: from the first */
    int64_t to;       /* 0: up to now and later */
} api_export_params_t;

/* Reads the body of POST /v1/exports (NULL: everything): optional room (a valid room name),
 * from and to (integers >= 0, from < to when both are given). Returns false with a reason in
 * error naming the field. Unknown fields are the caller's (api_body_fields). */
bool api_export_params_parse(const cJSON *body, api_export_params_t *out, char *error,
                             size_t errlen);

#endif
