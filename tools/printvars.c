/* The fork-and-exec counterpart of ipcprint, for tools/bench_prefork.sh:
 * a static program without libc (x86_64) that writes what ipcprint writes
 * (an empty line, then PROTO, IPCLOCALPATH, IPCREMOTEPATH, IPCREMOTEEUID,
 * IPCREMOTEEGID as NAME=VALUE lines, `unset` when not set) in one write,
 * and exits. Without libc for the reason tools/handler.c gives: glibc's
 * start-up costs more than the rest on a virtual machine, and that would
 * measure glibc, not the server.
 *
 *   gcc -O2 -static -nostdlib -fno-stack-protector -fno-builtin -o printvars printvars.c */
#if !defined(__x86_64__)
#error "printvars is written for x86_64"
#endif

static long sys3(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

__asm__(".globl _start\n_start:\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall start_c\n\tud2\n");

static const char *lookup(char **envp, const char *name)
{
    for (; *envp; envp++) {
        const char *e = *envp, *n = name;
        while (*n && *e == *n) e++, n++;
        if (!*n && *e == '=') return e + 1;
    }
    return "unset";
}

__attribute__((noreturn, used)) void start_c(long *sp)
{
    static const char *const names[] = {"PROTO", "IPCLOCALPATH", "IPCREMOTEPATH", "IPCREMOTEEUID", "IPCREMOTEEGID"};
    char **envp = (char **)(sp + sp[0] + 2);
    char out[4096];
    unsigned long n = 0;
    out[n++] = '\n';
    for (int i = 0; i < 5; i++) {
        const char *p = names[i], *v = lookup(envp, names[i]);
        while (*p && n < sizeof out - 2) out[n++] = *p++;
        out[n++] = '=';
        while (*v && n < sizeof out - 1) out[n++] = *v++;
        out[n++] = '\n';
    }
    long w = sys3(1 /* write */, 1, (long)out, (long)n);
    sys3(231 /* exit_group */, w == (long)n ? 0 : 111, 0, 0);
    __builtin_unreachable();
}
