/* Read marks in the message service: a `read` {room, seq} of a user arrives on chat.inbound
 * with the room's other records (key tenant/room), so the room's latest seq at its place in
 * the room's order is known exactly; a read beyond it is refused (reject bad_request to its
 * origin). The others are stored in MongoDB `reads`, one document per (tenant, room, user),
 * moving forward only; a mark that moved is published as `read` {room, user, seq} on
 * chat.messages. This file holds the pure decisions (unit-tested) and the store's port; the
 * batch calls them from pipeline.c, reads_store.c implements the port on MongoDB. */
#ifndef CHAT_MESSAGE_READS_H
#define CHAT_MESSAGE_READS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define MESSAGE_READS_COLLECTION "reads"

/* A read mark to store: the highest seq a batch holds for one (tenant, room, user). */
typedef struct message_read_mark {
    const char *tenant;
    const char *room;
    const char *user;
    int64_t seq;
    int64_t ts; /* ms since the epoch: when the gateway received the read */
} message_read_mark_t;

/* The MongoDB side of read marks. */
typedef struct message_reads_port {
    void *ctx;
    /* Stores the n marks (distinct (tenant, room, user)), each only forward: moved[i] = the
     * stored mark was at most marks[i].seq (or absent) and now is marks[i].seq; false if it
     * was above it. An equal mark counts as moved, so that a retry (or a batch replayed after
     * a crash) publishes what an attempt that failed may have stored. CHAT_ERR_MONGO,
     * CHAT_ERR_TIMEOUT, CHAT_ERR_IO are retried by the pipeline (the whole call again). */
    chat_err_t (*store)(void *ctx, const message_read_mark_t *marks, size_t n, bool *moved);
    const char *(*last_error)(void *ctx);
} message_reads_port_t;

/* One read of a batch's room, in the room's record order. */
typedef struct message_read_in {
    const char *tenant;
    const char *room;
    const char *user;
    int64_t seq;
    int64_t ts;
    /* Messages the batch stored in this room after this read (in record order): the room's
     * latest at this read is the room's latest after the batch minus these. */
    int64_t stored_after;
} message_read_in_t;

/* What became of one read. */
typedef enum message_read_fate {
    MESSAGE_READ_BEYOND,     /* seq beyond the room's latest at its place: rejected */
    MESSAGE_READ_MARK,       /* the batch's highest read of its (tenant, room, user): stored */
    MESSAGE_READ_SUPERSEDED, /* a read of the batch for the same user and room is higher */
} message_read_fate_t;

/* Decides the n reads of a batch given the latest seq of each read's room after the batch's
 * store phase (latest[i] for reads[i]): fate[i], and for each MESSAGE_READ_MARK, its entry in
 * marks (at most n; *nmarks of them; mark_of[i] = its index; the strings are the reads').
 * Equal seqs for one user and room: the first read is the mark. Returns CHAT_ERR_NOMEM only. */
chat_err_t message_reads_decide(const message_read_in_t *reads, const int64_t *latest, size_t n,
                                message_read_fate_t *fate, message_read_mark_t *marks,
                                size_t *nmarks, size_t *mark_of);

#endif
