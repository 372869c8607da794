/* ipchandle.h: ucspi-ipc's preforking servers, for a handler in C.
 *
 * A server is one C file that defines server(), linked with
 * libucspi_ipc_ipchandle.a, which supplies main:
 *
 *     cc -o myserver myserver.c $(pkg-config --cflags --libs ucspi-ipc-ipchandle)
 *     ./myserver [ options ] path [ operands ]
 *
 * The options are ipcserver's plus -f lockfile; the server binds path,
 * forks its children (-c, default 40), and each child calls server()
 * once per connection it accepts. See doc/ipchandle.md, "From C".
 */
#ifndef UCSPI_IPC_IPCHANDLE_H
#define UCSPI_IPC_IPCHANDLE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Serves one connection, in one of the server's children:
 *
 * - the connection is on descriptors 0 (read from the client) and 1
 *   (write to it); the server closes both after the call;
 * - environ is the connection's environment: the server's own, then
 *   PROTO=IPC, IPCLOCALPATH, IPCREMOTEPATH, IPCREMOTEEUID, IPCREMOTEEGID,
 *   IPCREMOTEPID, IPCREMOTEGIDLIST, IPCCONNNUM and the access rule's
 *   assignments (read them with getenv);
 * - argc and argv are the server's operands after path (argv[argc] is
 *   NULL).
 *
 * It is called in a loop, one call per connection, so it must release
 * whatever it takes for one connection before it returns. That includes
 * the environment: if environ is not the array it was given (setenv or
 * putenv of a new variable, clearenv), the server logs
 * "warning: dropping connection, environ changed" and the child exits
 * 111, to be replaced. After each call the server flushes stdout and
 * drops what stdin read ahead; descriptors the handler opened stay open.
 * Exiting ends the child, which the server replaces.
 */
void server(int argc, char * const *argv);

#ifdef __cplusplus
}
#endif

#endif
