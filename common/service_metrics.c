/* Process and build metrics of every service, and the one-call wiring of the shared ones
 * (service_metrics.h). The process values are read when /metrics renders (a collector):
 * CPU time from getrusage, the resident set from /proc/self/statm, open descriptors by
 * listing /proc/self/fd, the limit from getrlimit; the start time once, from the kernel's
 * boot time and the process' start tick. */
#include "common/service_metrics.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "chat_build_version.h" /* generated: CHAT_BUILD_VERSION */
#include "common/redis.h"
#include "common/store.h"

const char chat_build_version[] = CHAT_BUILD_VERSION;

#define H_CPU "Total user and system CPU time spent in seconds."
#define H_RSS "Resident memory size in bytes."
#define H_FDS "Number of open file descriptors."
#define H_MAX_FDS "Maximum number of open file descriptors."
#define H_START "Start time of the process since unix epoch in seconds."

/* The process' start time in seconds since the epoch: the boot time (btime of /proc/stat)
 * plus field 22 of /proc/self/stat (clock ticks after boot). Falls back to now. */
static double process_start_time(void)
{
    double now = (double)time(NULL);
    unsigned long long btime = 0, start_ticks = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return now;
    char line[256];
    while (fgets(line, sizeof line, f) != NULL && sscanf(line, "btime %llu", &btime) != 1) {
    }
    fclose(f);
    char stat[1024];
    f = fopen("/proc/self/stat", "r");
    size_t n = f != NULL ? fread(stat, 1, sizeof stat - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    stat[n] = '\0';
    /* The command name (field 2) is in parentheses and may hold spaces: fields count from the
     * last ')'. After it come field 3 (state) .. field 22 (starttime). */
    const char *p = strrchr(stat, ')');
    long ticks = sysconf(_SC_CLK_TCK);
    if (btime == 0 || p == NULL || ticks <= 0 ||
        sscanf(p + 1,
               "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
               "%*s %llu",
               &start_ticks) != 1)
        return now;
    return (double)btime + (double)start_ticks / (double)ticks;
}

/* Entries of /proc/self/fd, without the directory's own descriptor; -1 if unreadable. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    long n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n - 1;
}

/* Resident pages (second field of /proc/self/statm) in bytes; -1 if unreadable. */
static double resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    unsigned long long size = 0, resident = 0;
    int got = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return got == 2 && page > 0 ? (double)resident * (double)page : -1;
}

/* The collector: ud is the registry; the series are looked up by name (registration returns
 * the existing series), so nothing needs to outlive the registry but the registry. */
static void process_collect(void *ud)
{
    chat_metrics_t *m = ud;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        chat_float_counter_set(
            chat_metrics_float_counter(m, "process_cpu_seconds_total", H_CPU, NULL), cpu);
    }
    double rss = resident_bytes();
    if (rss >= 0)
        chat_gauge_set(chat_metrics_gauge(m, "process_resident_memory_bytes", H_RSS, NULL), rss);
    long fds = open_fds();
    if (fds >= 0)
        chat_gauge_set(chat_metrics_gauge(m, "process_open_fds", H_FDS, NULL), (double)fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        chat_gauge_set(chat_metrics_gauge(m, "process_max_fds", H_MAX_FDS, NULL),
                       rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur);
}

chat_err_t chat_process_metrics_register(chat_metrics_t *m)
{
    if (m == NULL)
        return CHAT_ERR_INVALID;
    chat_gauge_t *start = chat_metrics_gauge(m, "process_start_time_seconds", H_START, NULL);
    chat_gauge_set(start, process_start_time());
    bool ok = start != NULL &&
              chat_metrics_float_counter(m, "process_cpu_seconds_total", H_CPU, NULL) != NULL &&
              chat_metrics_gauge(m, "process_resident_memory_bytes", H_RSS, NULL) != NULL &&
              chat_metrics_gauge(m, "process_open_fds", H_FDS, NULL) != NULL &&
              chat_metrics_gauge(m, "process_max_fds", H_MAX_FDS, NULL) != NULL;
    chat_err_t err = chat_metrics_add_collector(m, process_collect, m);
    return err != CHAT_OK ? err : ok ? CHAT_OK : CHAT_ERR_NOMEM;
}

chat_err_t chat_service_metrics_attach(chat_metrics_t *m, const char *service)
{
    if (m == NULL || service == NULL)
        return CHAT_ERR_INVALID;
    chat_err_t err = chat_process_metrics_register(m);
    char version[128], name[64], labels[256];
    chat_metrics_label_escape(chat_build_version, version, sizeof version);
    chat_metrics_label_escape(service, name, sizeof name);
    snprintf(labels, sizeof labels, "version=\"%s\",service=\"%s\"", version, name);
    chat_gauge_t *info = chat_metrics_gauge(
        m, "chat_build_info", "The running build: always 1, labelled with its version.", labels);
    chat_gauge_set(info, 1);
    if (info == NULL && err == CHAT_OK)
        err = CHAT_ERR_NOMEM;
    chat_err_t e = chat_store_metrics_attach(m);
    if (e != CHAT_OK && err == CHAT_OK)
        err = e;
    e = chat_redis_metrics_attach(m);
    if (e != CHAT_OK && err == CHAT_OK)
        err = e;
    return err;
}
