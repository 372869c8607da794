/* ipcperl's interface to libperl: the few embedding macros (perlembed,
 * perlcall) behind three plain C functions that src/bin/ipcperl.rs calls.
 * Everything else ipcperl does in Perl is in the bootstrap code it hands
 * to ipcperl_eval (src/perl/bootstrap.pl), and everything that is not
 * Perl is in Rust.
 *
 * One interpreter per process, created in a server's child after fork.
 * Messages (a die, a load error) are copied into the caller's buffer, cut
 * to fit, always NUL-terminated: nothing returned points into Perl.
 */
#include <EXTERN.h>
#include <perl.h>
#include <XSUB.h>
#include <stdlib.h>
#include <string.h>

static PerlInterpreter *my_perl;

EXTERN_C void boot_DynaLoader(pTHX_ CV *cv);

/* IPCPerl::stdin_clean(): whether STDIN, as the last connection left it,
 * can serve the next one: it is open on descriptor 0 and holds no data
 * read ahead. If so, its end-of-file and error flags and its line count
 * are cleared, as on a new handle; if not, the caller opens a new one.
 * Reusing the handle saves the system calls of an open per connection. */
static XS(XS_IPCPerl_stdin_clean)
{
    dXSARGS;
    IO *io = PL_stdingv ? GvIO(PL_stdingv) : NULL;
    PerlIO *f = io ? IoIFP(io) : NULL;
    int clean = f != NULL && PerlIO_fileno(f) == 0 && PerlIO_get_cnt(f) <= 0;
    PERL_UNUSED_VAR(items);
    if (clean) {
        PerlIO_clearerr(f);
        IoLINES(io) = 0;
    }
    ST(0) = clean ? &PL_sv_yes : &PL_sv_no;
    XSRETURN(1);
}

/* So that XS modules (POSIX, Socket, ...) load at run time; and the one
 * function of ours that Perl calls. */
static void xs_init(pTHX)
{
    static const char file[] = __FILE__;
    dXSUB_SYS;
    PERL_UNUSED_CONTEXT;
    newXS("DynaLoader::boot_DynaLoader", boot_DynaLoader, file);
    newXS("IPCPerl::stdin_clean", XS_IPCPerl_stdin_clean, file);
}

/* The command line perl_parse sees, in writable memory: Perl may write
 * into it when a handler assigns to $0. */
static char parse_args[] = "ipcperl\0-e\0" "0";

/* At exit, whichever way a handler ended the process (CORE::exit, POSIX
 * exit, a die outside our eval): what it printed is delivered. */
static void flush_at_exit(void)
{
    if (my_perl != NULL) {
        dTHX;
        PerlIO_flush(NULL);
    }
}

/* Creates and starts the interpreter. `argc`, `argv`, `env` are main's;
 * `script` is what $0 says (file.pm). Returns 0, or -1 if perl could not
 * be started (perl has said why). */
int ipcperl_start(int argc, char **argv, char **env, const char *script)
{
    char *args[] = { parse_args, parse_args + 8, parse_args + 11, NULL };
#ifndef PERL_USE_SAFE_PUTENV
    /* As perl's own main does: Perl manages the C environment's memory
     * itself, copying the process's initial environment before its first
     * change. Otherwise each %ENV store is a putenv of a new string, never
     * freed (`local %ENV` per connection would leak the environment twice
     * per connection), and clearing %ENV writes a null pointer into the
     * initial environment array (main's envp), which is not Perl's. */
    PL_use_safe_putenv = FALSE;
#endif
    PERL_SYS_INIT3(&argc, &argv, &env);
    my_perl = perl_alloc();
    if (my_perl == NULL)
        return -1;
    perl_construct(my_perl);
    /* END blocks would run at the end of perl_run otherwise, that is
     * before the first connection. */
    PL_exit_flags |= PERL_EXIT_DESTRUCT_END;
    if (perl_parse(my_perl, xs_init, 3, args, NULL) != 0)
        return -1;
    if (perl_run(my_perl) != 0)
        return -1;
    /* Without set-magic: the value only, not the process's name. */
    sv_setpv(get_sv("0", GV_ADD), script);
    atexit(flush_at_exit);
    return 0;
}

static void copy_message(SV *sv, char *buf, size_t len)
{
    STRLEN n;
    const char *s = SvPV(sv, n);
    if (len == 0)
        return;
    if (n > len - 1)
        n = len - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
}

/* Compiles and runs `code` (the bootstrap). Returns 0, or -1 with $@ in
 * `msg`. */
int ipcperl_eval(const char *code, char *msg, size_t len)
{
    int failed;
    ENTER;
    SAVETMPS;
    eval_pv(code, FALSE);
    failed = SvTRUE(ERRSV);
    if (failed)
        copy_message(ERRSV, msg, len);
    FREETMPS;
    LEAVE;
    return failed ? -1 : 0;
}

static void push_strings(pTHX_ SV ***spp, const char *const *strings)
{
    SV **sp = *spp;
    for (; strings != NULL && *strings != NULL; strings++)
        mXPUSHs(newSVpv(*strings, 0));
    *spp = sp;
}

/* Calls the Perl subroutine `name` in scalar context with @_ = (the
 * number of strings in `counted`, those strings, the strings of `rest`),
 * given as null-terminated arrays (NULL: none). The subroutine returns
 * undef for success or a message. Returns 0; 1 with the message in `msg`
 * (the one returned, or $@ if the subroutine died). */
int ipcperl_call(const char *name, const char *const *counted, const char *const *rest, char *msg, size_t len)
{
    int count, failed = 0;
    IV n = 0;
    SV *ret;
    dSP;
    ENTER;
    SAVETMPS;
    PUSHMARK(SP);
    while (counted != NULL && counted[n] != NULL)
        n++;
    mXPUSHi(n);
    push_strings(aTHX_ &sp, counted);
    push_strings(aTHX_ &sp, rest);
    PUTBACK;
    count = call_pv(name, G_SCALAR | G_EVAL);
    SPAGAIN;
    ret = count == 1 ? POPs : &PL_sv_undef;
    if (SvTRUE(ERRSV)) {
        failed = 1;
        copy_message(ERRSV, msg, len);
    } else if (SvOK(ret)) {
        failed = 1;
        copy_message(ret, msg, len);
    }
    PUTBACK;
    FREETMPS;
    LEAVE;
    return failed;
}
