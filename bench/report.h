/* The report of a run: a JSON document (everything measured), a markdown row for the results
 * table of bench/README.md (and one per peak step), and a short summary on stdout. Problems
 * (errors, losses, duplicates, closes, failed set-ups) are listed in all three, never hidden. */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include "bench/run.h"

/* Writes the JSON to r->opts->out_json and appends the rows to r->opts->out_md (each if set),
 * prints the rows and the problems. Returns the exit status: 0; 3 with --strict if there
 * was a problem; 1 if a file could not be written. */
int bench_report(const bench_result_t *r);

#endif
