/* What /proc says about the stack's processes and the bench's own: CPU time (utime + stime),
 * resident memory, threads, and where the stack's pid files are. */
#ifndef BENCH_PROCSTAT_H
#define BENCH_PROCSTAT_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_PROCS 32
#define BENCH_PART_MAX 48

/* One part of the stack: "kafka", "ferretdb", "redis", "message", "broadcast", "gateway-0"... */
typedef struct bench_proc {
    char part[BENCH_PART_MAX];
    int pid;
} bench_proc_t;

/* Reads the pid files of the stack: $CHAT_STACK_PIDS/PART.pid, or the numbered
 * $CHAT_STACK_DIR/pids/NN-PART.pid of an older scripts/up. Fills out with the parts whose
 * process runs, infrastructure first, then services, gateways by index. Returns how many;
 * dir gets the directory read ("" if none was found). */
size_t bench_procs_find(bench_proc_t *out, size_t cap, char *dir, size_t dir_len);

/* utime + stime of pid in seconds, or -1 if it is gone. */
double bench_proc_cpu_s(int pid);

/* VmRSS of pid in KiB, or -1. */
long long bench_proc_rss_kib(int pid);

/* The value of a "key: N kB" line of a /proc file (/proc/meminfo, /proc/PID/status), or -1. */
long long bench_proc_kib(const char *path, const char *key);

/* One thread's CPU time. */
typedef struct bench_thread {
    int tid;
    char comm[32];
    double cpu_s;
} bench_thread_t;

/* The threads of pid with their CPU time; returns how many (at most cap). */
size_t bench_proc_threads(int pid, bench_thread_t *out, size_t cap);

/* CPU-seconds the whole machine has been busy (all cores: /proc/stat without idle and
 * iowait), or -1. */
double bench_machine_busy_s(void);

/* The three load averages as "0.52 0.61 0.70". */
void bench_loadavg(char *buf, size_t cap);

#endif
