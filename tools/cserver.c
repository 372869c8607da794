/* cserver: the floor of a fork-per-connection server on this machine, a
 * server with nothing but the work every such server does: accept, start
 * the handler with the connection on its stdin and stdout, close, reap.
 * No environment, no logging, no limit. tools/bench.sh serves from it
 * beside the real servers (loadgen drives both alike), once per way of
 * starting the handler:
 *
 *   cserver fork|vfork PATH HANDLER [ARGS...]
 *
 * fork:  fork() + execve()  (copies the page tables: the accept loop goes
 *        on while the child execs)
 * vfork: vfork() + execve() (shares them: the loop waits until the child
 *        has exec'd)
 *
 * Children are reaped by SIGCHLD's handler, accept retried after it.
 * Build: gcc -O2 -o cserver tools/cserver.c */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void reap(int sig) {
	int saved = errno;
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0) {
	}
	errno = saved;
}

int main(int argc, char **argv) {
	if (argc < 4 || (strcmp(argv[1], "fork") && strcmp(argv[1], "vfork"))) {
		fprintf(stderr, "usage: cserver fork|vfork PATH HANDLER [ARGS...]\n");
		return 100;
	}
	int use_vfork = !strcmp(argv[1], "vfork");
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(argv[2]) >= sizeof addr.sun_path) {
		fprintf(stderr, "cserver: path too long\n");
		return 100;
	}
	strcpy(addr.sun_path, argv[2]);
	unlink(argv[2]);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) || listen(s, SOMAXCONN)) {
		perror("cserver: bind");
		return 111;
	}
	struct sigaction sa = {.sa_handler = reap, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
	sigaction(SIGCHLD, &sa, NULL);
	for (;;) {
		int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("cserver: accept");
			return 111;
		}
		pid_t pid = use_vfork ? vfork() : fork();
		if (pid == 0) {
			if (dup2(c, 0) < 0 || dup2(c, 1) < 0)
				_exit(111);
			execve(argv[3], argv + 3, environ);
			_exit(111);
		}
		if (pid < 0)
			perror("cserver: fork");
		close(c);
	}
}
