/* ipcprint, in C: the example server of the original ucspi-ipc's
 * ipchandle template, written from its manual page, on ucspi-ipc's C
 * library.
 *
 *     cc -o ipcprint ipcprint.c $(pkg-config --cflags --libs ucspi-ipc-ipchandle)
 *     ./ipcprint [ options ] path
 *
 * For each connection it writes to the client an empty line, then PROTO,
 * IPCLOCALPATH, IPCREMOTEPATH, IPCREMOTEEUID and IPCREMOTEEGID as
 * NAME=VALUE lines ("unset" for a variable that is not set), in one write:
 * the bytes of the original's ipcprint, and of ucspi-ipc's own in Rust.
 *
 * Like the original's, each child changes environ on its second
 * connection and leaves it changed, to show the server's check: that
 * client gets its answer, then the server logs
 * "warning: dropping connection, environ changed" and replaces the child.
 */
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <ipchandle.h>

static const char *const names[] = {
    "PROTO", "IPCLOCALPATH", "IPCREMOTEPATH", "IPCREMOTEEUID", "IPCREMOTEEGID",
};

static char out[4096];
static size_t len;

/* Writes what out holds to the client. */
static void flush(void)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(1, out + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the client has gone: nothing more to say to it */
        done += (size_t)n;
    }
    len = 0;
}

static void put(const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        size_t room = sizeof out - len;
        size_t k = n < room ? n : room;
        memcpy(out + len, s, k);
        len += k;
        s += k;
        n -= k;
        if (len == sizeof out)
            flush();
    }
}

void server(int argc, char * const *argv)
{
    static unsigned long served;
    size_t i;

    (void)argc;
    (void)argv;
    put("\n");
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *value = getenv(names[i]);
        put(names[i]);
        put("=");
        put(value != NULL ? value : "unset");
        put("\n");
    }
    flush();
    if (++served == 2)
        setenv("IPCPRINT", "changed on purpose", 1);
}
