/* spawnlimit: the ceiling a fork-per-connection server can reach on this
 * machine. It does what such a server does per connection, minus the
 * socket accept: create a socketpair, start the handler with one end as its
 * stdout, read the other end to EOF, reap the child. Nothing else.
 *
 *   spawnlimit fork|vfork|spawn [-a] [-c K] [-n N] [-t SECS] HANDLER [ARGS...]
 *
 * fork:  fork() + execve()                       (copies the page tables)
 * vfork: vfork() + execve()  = clone(CLONE_VM|CLONE_VFORK)
 * spawn: posix_spawn()       (glibc: clone(CLONE_VM|CLONE_VFORK) as well)
 *
 * K worker processes run the loop at once (the concurrency, like loadgen's
 * -c); together they stop after N spawns or SECS seconds, whichever comes
 * first. A spawn is an error when the handler writes nothing or exits
 * non-zero, unless -a (any outcome: for timing programs' start-up on their
 * usage error path). Prints one line in loadgen's format:
 *   conns=N secs=S conn_per_s=R p50_us=P p99_us=Q errors=E cpu_median_us=C
 * where C is the median CPU time of a handler (user and system, from
 * exec to exit, as wait4 reports it): less disturbed than the latency by
 * other processes on a busy machine, which delay a start without making
 * it cost more.
 * Build: gcc -O2 -o spawnlimit tools/spawnlimit/spawnlimit.c */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum mode { MODE_FORK, MODE_VFORK, MODE_SPAWN };

struct shared {
    uint64_t next;     /* index of the next spawn to claim */
    uint64_t errors;
    uint32_t *cpu_us;  /* one handler CPU time per finished spawn, after lat_us */
    uint32_t lat_us[]; /* one latency per finished spawn */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
    fputs("usage: spawnlimit fork|vfork|spawn [-a] [-c K] [-n N] [-t SECS] HANDLER [ARGS...]\n", stderr);
    exit(100);
}

/* Starts argv with `out` as its stdout; returns the pid or -1. */
static pid_t start(enum mode mode, char **argv, int out)
{
    pid_t pid;
    if (mode == MODE_SPAWN) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out, 1);
        int e = posix_spawn(&pid, argv[0], &fa, 0, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (e) { errno = e; return -1; }
        return pid;
    }
    pid = mode == MODE_FORK ? fork() : vfork();
    if (pid == 0) {
        /* Only async-signal-safe calls here: this may share the parent's
         * memory (vfork). dup2 clears close-on-exec on descriptor 1. */
        if (dup2(out, 1) < 0) _exit(127);
        execve(argv[0], argv, environ);
        _exit(127);
    }
    return pid;
}

static int any_outcome; /* -a */

/* One spawn: socketpair, start, read to EOF, reap; the handler's CPU
 * time in *cpu_us. 0 on success. */
static int one(enum mode mode, char **argv, uint32_t *cpu_us)
{
    int sv[2];
    char buf[512];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -1;
    pid_t pid = start(mode, argv, sv[1]);
    close(sv[1]);
    if (pid < 0) { close(sv[0]); return -1; }
    ssize_t r, total = 0;
    while ((r = read(sv[0], buf, sizeof buf)) > 0) total += r;
    close(sv[0]);
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) return -1;
    *cpu_us = (uint32_t)(ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
                         ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec);
    if (r < 0) return -1;
    if (!any_outcome && (total == 0 || !WIFEXITED(status) || WEXITSTATUS(status))) return -1;
    return 0;
}

static void worker(struct shared *sh, uint64_t n, uint64_t deadline, enum mode mode, char **argv)
{
    for (;;) {
        uint64_t t0 = now_ns();
        if (t0 >= deadline) break;
        uint64_t i = __atomic_fetch_add(&sh->next, 1, __ATOMIC_RELAXED);
        if (i >= n) break;
        if (one(mode, argv, &sh->cpu_us[i]) < 0) {
            __atomic_fetch_add(&sh->errors, 1, __ATOMIC_RELAXED);
            sh->lat_us[i] = UINT32_MAX; /* excluded from percentiles */
            continue;
        }
        uint64_t us = (now_ns() - t0) / 1000;
        sh->lat_us[i] = us > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)us;
    }
}

static int cmp_u32(void const *a, void const *b)
{
    uint32_t x = *(uint32_t const *)a, y = *(uint32_t const *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 3) usage();
    enum mode mode;
    if (!strcmp(argv[1], "fork")) mode = MODE_FORK;
    else if (!strcmp(argv[1], "vfork")) mode = MODE_VFORK;
    else if (!strcmp(argv[1], "spawn")) mode = MODE_SPAWN;
    else usage();
    long k = 1;
    uint64_t n = 100000;
    double secs = 10;
    int i = 2;
    while (i < argc && !strcmp(argv[i], "-a")) { any_outcome = 1; i++; }
    for (; i < argc && argv[i][0] == '-'; i += 2) {
        if (i + 1 >= argc) usage();
        if (!strcmp(argv[i], "-c")) k = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "-n")) n = strtoull(argv[i + 1], 0, 10);
        else if (!strcmp(argv[i], "-t")) secs = atof(argv[i + 1]);
        else usage();
    }
    if (i >= argc || k < 1 || k > 1024 || n < 1 || n > 10000000 || secs <= 0) usage();
    char **hargv = argv + i;

    size_t size = sizeof(struct shared) + 2 * n * sizeof(uint32_t);
    struct shared *sh = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) { perror("spawnlimit: mmap"); return 111; }
    sh->cpu_us = sh->lat_us + n;

    uint64_t start_ns = now_ns();
    uint64_t deadline = start_ns + (uint64_t)(secs * 1e9);
    pid_t workers[1024];
    for (long w = 0; w < k; w++) {
        workers[w] = fork();
        if (workers[w] < 0) { perror("spawnlimit: fork"); return 111; }
        if (workers[w] == 0) { worker(sh, n, deadline, mode, hargv); _exit(0); }
    }
    for (long w = 0; w < k; w++) waitpid(workers[w], 0, 0);
    double elapsed = (now_ns() - start_ns) / 1e9;

    uint64_t claimed = sh->next < n ? sh->next : n;
    /* A worker may claim an index then see the deadline: claimed counts
     * only indices that were actually run (the claim happens after the
     * deadline check), so every entry below `claimed` is filled. */
    uint32_t *lat = malloc(claimed * sizeof *lat + 1);
    uint32_t *cpu = malloc(claimed * sizeof *cpu + 1);
    uint64_t ok = 0;
    for (uint64_t j = 0; j < claimed; j++)
        if (sh->lat_us[j] != UINT32_MAX) {
            cpu[ok] = sh->cpu_us[j];
            lat[ok++] = sh->lat_us[j];
        }
    qsort(lat, ok, sizeof *lat, cmp_u32);
    qsort(cpu, ok, sizeof *cpu, cmp_u32);
    uint32_t p50 = ok ? lat[(ok - 1) * 50 / 100] : 0;
    uint32_t p99 = ok ? lat[(ok - 1) * 99 / 100] : 0;
    uint32_t cpu_median = ok ? cpu[(ok - 1) / 2] : 0;
    printf("conns=%llu secs=%.3f conn_per_s=%.1f p50_us=%u p99_us=%u errors=%llu cpu_median_us=%u\n",
           (unsigned long long)ok, elapsed, ok / elapsed, p50, p99,
           (unsigned long long)sh->errors, cpu_median);
    return sh->errors ? 1 : 0;
}
