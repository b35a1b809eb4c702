/* chat-bench: the platform's load generator. Parses the options, makes the plan against the
 * stack of the environment, runs it and reports. bench/run is the way to call it. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bench/plan.h"
#include "bench/report.h"
#include "bench/run.h"

int main(int argc, char **argv)
{
    static bench_opts_t opts;
    static bench_plan_t plan;
    static bench_result_t result;
    int rc = bench_opts_parse(argc, argv, &opts);
    if (rc != 0)
        return rc == 2 ? 0 : 2;
    if (!bench_plan_make(&opts, &plan))
        return 2;
    signal(SIGPIPE, SIG_IGN);
    if (!bench_run(&plan, &opts, &result)) {
        fprintf(stderr, "chat-bench: %s\n", result.abort_reason);
        return 1;
    }
    rc = bench_report(&result);
    return rc != 0 ? rc : result.aborted ? 1 : 0;
}
