/* A worker process of the bench: holds its share of the plan's connections (whole rooms) in
 * one epoll loop, sends on its rooms' schedules, measures every delivery, and answers the
 * coordinator's commands on its channel until told to quit. */
#ifndef BENCH_WORKER_H
#define BENCH_WORKER_H

#include <stdint.h>

#include "bench/plan.h"

/* Runs worker index (0-based; its source address is 127.0.0.<index + 2>) with the channel
 * chan_fd. Returns the process's exit status. */
int bench_worker_run(const bench_plan_t *p, const bench_opts_t *o, uint32_t index, int chan_fd);

#endif
