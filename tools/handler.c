/* The application every benchmarked server runs: a static C program that
 * writes one short line to the connection (descriptor 1) and exits. It is
 * the "unit of work" of tools/bench.sh: any cost here is common to every
 * configuration and dilutes the differences between the servers.
 *
 * Two builds of this one file:
 *   gcc -O2 -static -o handler-glibc handler.c
 *       ordinary static glibc program;
 *   gcc -O2 -static -nostdlib -fno-stack-protector -DNOLIBC -o handler handler.c
 *       no libc start-up at all (x86_64 only): two system calls.
 * Why both: glibc's start-up identifies the CPU with cpuid (init_cacheinfo,
 * handle_amd); in a virtual machine every cpuid traps to the hypervisor, and
 * on the benchmark machine that is about three quarters of the static glibc
 * program's run time (perf). The bench uses the NOLIBC build so that what is
 * measured is the servers, and reports the glibc build's start-up beside. */
#ifdef NOLIBC

#if !defined(__x86_64__)
#error "the NOLIBC build is written for x86_64; build without -DNOLIBC"
#endif

static long sys3(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

__attribute__((noreturn)) void _start(void)
{
    static const char line[] = "ok\n";
    long n = sys3(1 /* write */, 1, (long)line, sizeof line - 1);
    sys3(231 /* exit_group */, n == sizeof line - 1 ? 0 : 111, 0, 0);
    __builtin_unreachable();
}

#else

#include <unistd.h>

int main(void)
{
    static const char line[] = "ok\n";
    if (write(1, line, sizeof line - 1) != sizeof line - 1) _exit(111);
    _exit(0);
}

#endif
