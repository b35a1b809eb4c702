/* /proc readers (see procstat.h). */
#include "bench/procstat.h"

#include <ctype.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Order of the parts in reports: the infrastructure, then the services, then gateways. */
static int part_rank(const char *part)
{
    static const char *const order[] = {"kafka", "ferretdb", "redis", "message", "broadcast"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (strcmp(part, order[i]) == 0)
            return (int)i;
    if (strncmp(part, "gateway-", 8) == 0)
        return 100 + atoi(part + 8);
    return 1000;
}

static int cmp_proc(const void *a, const void *b)
{
    const bench_proc_t *x = a, *y = b;
    int d = part_rank(x->part) - part_rank(y->part);
    return d ? d : strcmp(x->part, y->part);
}

/* True if pid runs and is no zombie. */
static bool alive(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = pid > 0 ? fopen(path, "r") : NULL;
    bool ok = false;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "State:", 6) == 0) {
            ok = strchr(line, 'Z') == NULL;
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    return ok;
}

static size_t read_dir(const char *dir, bench_proc_t *out, size_t cap)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < cap) {
        size_t len = strlen(e->d_name);
        if (len <= 4 || strcmp(e->d_name + len - 4, ".pid") != 0)
            continue;
        char part[BENCH_PART_MAX];
        const char *name = e->d_name;
        /* An older scripts/up numbered them by start order: 30-kafka.pid. */
        if (isdigit((unsigned char)name[0]) && isdigit((unsigned char)name[1]) && name[2] == '-') {
            name += 3;
            len -= 3;
        }
        snprintf(part, sizeof part, "%.*s", (int)(len - 4), name);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        int pid = 0;
        if (f != NULL) {
            if (fscanf(f, "%d", &pid) != 1)
                pid = 0;
            fclose(f);
        }
        if (!alive(pid))
            continue;
        snprintf(out[n].part, sizeof out[n].part, "%s", part);
        out[n].pid = pid;
        n++;
    }
    closedir(d);
    qsort(out, n, sizeof *out, cmp_proc);
    return n;
}

size_t bench_procs_find(bench_proc_t *out, size_t cap, char *dir, size_t dir_len)
{
    const char *pids = getenv("CHAT_STACK_PIDS");
    const char *state = getenv("CHAT_STACK_DIR");
    dir[0] = '\0';
    if (pids != NULL && *pids != '\0') {
        snprintf(dir, dir_len, "%s", pids);
        size_t n = read_dir(dir, out, cap);
        if (n > 0)
            return n;
    }
    if (state != NULL && *state != '\0') {
        snprintf(dir, dir_len, "%s/pids", state);
        return read_dir(dir, out, cap);
    }
    return 0;
}

/* utime and stime (fields 14 and 15) of a stat file, in seconds; -1 if unreadable. */
static double stat_cpu_s(const char *path, char *comm, size_t comm_len)
{
    char buf[1024];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name is in parentheses and may hold spaces: fields count from the last ')'. */
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (open == NULL || close == NULL)
        return -1;
    if (comm != NULL)
        snprintf(comm, comm_len, "%.*s", (int)(close - open - 1), open + 1);
    unsigned long long ut = 0, st = 0;
    /* After ')': state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
     * utime(14) stime(15). */
    if (sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double bench_proc_cpu_s(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    return stat_cpu_s(path, NULL, 0);
}

long long bench_proc_kib(const char *path, const char *key)
{
    char line[256];
    size_t klen = strlen(key);
    FILE *f = fopen(path, "r");
    long long v = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':' &&
            sscanf(line + klen + 1, "%lld", &v) == 1)
            break;
    }
    if (f != NULL)
        fclose(f);
    return v;
}

long long bench_proc_rss_kib(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    return bench_proc_kib(path, "VmRSS");
}

size_t bench_proc_threads(int pid, bench_thread_t *out, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < cap) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char stat[320];
        snprintf(stat, sizeof stat, "/proc/%d/task/%.255s/stat", pid, e->d_name);
        double s = stat_cpu_s(stat, out[n].comm, sizeof out[n].comm);
        if (s < 0)
            continue;
        out[n].tid = atoi(e->d_name);
        out[n].cpu_s = s;
        n++;
    }
    closedir(d);
    return n;
}

double bench_machine_busy_s(void)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = {0};
    int n = f != NULL ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7])
                      : 0;
    if (f != NULL)
        fclose(f);
    if (n < 5)
        return -1;
    unsigned long long busy = 0;
    for (int i = 0; i < n; i++)
        busy += i == 3 || i == 4 ? 0 : v[i]; /* idle and iowait are not work */
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

void bench_loadavg(char *buf, size_t cap)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double a = 0, b = 0, c = 0;
    if (f == NULL || fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3)
        a = b = c = -1;
    if (f != NULL)
        fclose(f);
    snprintf(buf, cap, "%.2f %.2f %.2f", a, b, c);
}
