#!/bin/bash
# tools/bench_pty_relay.sh: what ipcexec's terminal relay costs, and that
# the requests that need no terminal of their own do not pay for it.
#
# Prints Markdown tables (those of doc/performance.md) on stdout. One
# server, `ipcserver -1 S ipcexec rules.cdb`, runs as root; the caller is
# root too, and runs `ipcdo -F UID PROG` for two programs, `/bin/true` and
# `/bin/cat` of a 64 KiB file (to see the relay's throughput), in these
# cases:
#
#   program alone       PROG itself on the terminal, without ipcdo
#   a. no terminal      descriptors 0-2 /dev/null and a pipe, as nobody:
#                       passed as they are, nothing relayed
#   b. terminal, root   descriptors 0-2 the terminal, as root (the caller's
#                       own uid): the terminal is handed over, no relay
#   c. terminal, nobody the same terminal, as nobody (65534): the program
#                       gets a pseudo-terminal of its own, relayed
#   sudo -u nobody      `sudo -n -u nobody PROG` on the same terminal
#                       (sudo's use_pty, the default on Debian), for
#                       reference; SKIPPED where sudo is absent or refuses
#
# The terminal is the slave of a pseudo-terminal the tool opens itself: it
# is the controlling terminal of the timing process (and so of every
# command it runs), and a process of its own drains the master and the
# pipe of case a, as a terminal emulator would. The timing process (python3)
# runs every case in turn, in an order shuffled for each round, WARMUP
# rounds then RUNS timed rounds, each run spawned directly (posix_spawn,
# no shell) and waited for with a timeout; every run must exit 0. The
# tables give the median and p90 of each case, the ratio of medians to
# case b, and what the relay adds (c - b) per run and per 64 KiB; a last
# line, the load average before and after.
#
# Then, where strace is installed, it attaches `strace -f -e
# trace=open,openat,ioctl` to the server for one run of each of a, b and
# c (and runs sudo under it), and counts the pseudo-terminals opened
# (/dev/ptmx): none is expected for a and b, one for c. `open` as well as
# `openat`: our programs open files with open(2) on x86_64.
#
# Needs root (ipcexec must be root to run a program as nobody): without
# it, it says SKIPPED and exits 0. Needs python3. Knobs: RUNS (500),
# WARMUP (20), TIMEOUT per run in seconds (10), NO_BUILD=1 to skip
# `cargo build --release`, NO_STRACE=1 to skip the strace check, KEEP=1
# to keep the temporary directory (the strace logs). Progress goes to
# stderr.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-500}
WARMUP=${WARMUP:-20}
TIMEOUT=${TIMEOUT:-10}
REL=$ROOT/target/release
NOBODY=65534

say() { echo "bench_pty_relay: $*" >&2; }
die() { say "fatal: $*"; exit 111; }

if [ "$(id -u)" != 0 ]; then
	echo "SKIPPED: bench_pty_relay needs root (ipcexec must be root to run a program as uid $NOBODY)"
	say "SKIPPED: not root"
	exit 0
fi
command -v python3 >/dev/null || die "python3 is not installed"
# ipcexec reads /etc/passwd itself, without NSS.
grep -q "^[^:]*:[^:]*:$NOBODY:" /etc/passwd || die "uid $NOBODY is not in /etc/passwd"

WORK=$(mktemp -d /tmp/ucspi-bench-pty.XXXXXX) || exit 111
chmod 0755 "$WORK"
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${NO_BUILD:-0}" != 1 ]; then
	say "cargo build --release"
	(cd "$ROOT" && cargo build --release -q) >&2 || die "cargo build failed"
fi

# Starts a server in the background with its log in $2 and waits for its
# readiness line (-1: the socket's path once it accepts connections; end
# of file first means it died). The pid is the server's own: ipcserver
# executes into its chain.
SERVER=
serve() {
	local socket=$1 log=$2 ready=
	shift 2
	mkfifo "$WORK/ready" || return 1
	(umask 0; exec "$@" </dev/null >"$WORK/ready" 2>"$log") &
	SERVER=$!
	PIDS+=("$SERVER")
	read -r -t 10 ready <"$WORK/ready"
	rm -f "$WORK/ready"
	[ "$ready" = "$socket" ]
}

# The caller (root, gid 0) may run both programs as root and as nobody.
{
	for uid in 0 "$NOBODY"; do
		echo "0,$uid./bin/true:allow"
		echo "0,$uid./bin/cat:allow"
	done
	echo ":deny"
} >"$WORK/exec-rules"
"$REL/ipcexecrules" "$WORK/rules.cdb" "$WORK/rules.tmp" <"$WORK/exec-rules" || die "ipcexecrules failed"
head -c 65536 /dev/zero | tr '\0' x >"$WORK/64k" && chmod 0644 "$WORK/64k" || die "cannot write $WORK/64k"

serve "$WORK/s" "$WORK/server.log" "$REL/ipcserver" -1 "$WORK/s" "$REL/ipcexec" "$WORK/rules.cdb" \
	|| die "the server did not start: $(tail -3 "$WORK/server.log")"

SUDO=$(command -v sudo || true)
STRACE=
[ "${NO_STRACE:-0}" = 1 ] || STRACE=$(command -v strace || true)

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# The timing process runs in the background so that a signal reaches the
# trap at once; it stops its own children (the drain, a run) on SIGTERM.
python3 - "$REL" "$WORK" "$SERVER" "$RUNS" "$WARMUP" "$TIMEOUT" "$NOBODY" "$SUDO" "$STRACE" <<'EOF' &
import ctypes, errno, os, pty, random, re, select, signal, statistics, sys, termios, fcntl, time

rel, work, server, runs, warmup, timeout, nobody, sudo, strace = sys.argv[1:]
server, runs, warmup, timeout = int(server), int(runs), int(warmup), float(timeout)

def say(*words):
    print("bench_pty_relay:", *words, file=sys.stderr, flush=True)

class Fatal(Exception):
    pass

running = set()  # pids of our children still to be reaped or stopped

def stop(signum, frame):
    raise SystemExit(128 + signum)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
# The timing process leads a session of its own, whose controlling terminal
# is the pty below: the commands it runs are in its foreground group. A
# hang-up when it closes is not for it.
signal.signal(signal.SIGHUP, signal.SIG_IGN)
if os.getpid() == os.getpgrp():
    raise SystemExit("bench_pty_relay: fatal: the timing process leads its process group: cannot setsid")
os.setsid()

master, slave = pty.openpty()
fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
pipe_r, pipe_w = os.pipe()
env = {"IPCEXEC_SOCKET": f"{work}/s", "PATH": "/usr/bin:/bin"}
TERMINAL = (slave, slave, slave)
PIPES = (devnull, pipe_w, pipe_w)

programs = [("/bin/true", ["/bin/true"]), ("cat 64 KiB", ["/bin/cat", f"{work}/64k"])]
kinds = [
    ("program alone", None, None, TERMINAL),
    ("a. no terminal, as nobody", "ipcdo", nobody, PIPES),
    ("b. terminal, as root", "ipcdo", "0", TERMINAL),
    ("c. terminal, as nobody (relay)", "ipcdo", nobody, TERMINAL),
    ("sudo -u nobody (use_pty)", "sudo", nobody, TERMINAL),
]
cases = []  # (kind, program, argv, stdio)
skipped = []
for kind, how, uid, stdio in kinds:
    for prog, pargv in programs:
        if how is None:
            argv = pargv
        elif how == "ipcdo":
            argv = [f"{rel}/ipcdo", "-F", uid] + pargv
        else:
            if not sudo:
                skipped.append((kind, prog, "sudo is not installed"))
                continue
            argv = [sudo, "-n", "-u", f"#{uid}"] + pargv
        cases.append((kind, prog, argv, stdio))

def spawn(argv, stdio):
    actions = [(os.POSIX_SPAWN_DUP2, fd, n) for n, fd in enumerate(stdio)]
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    running.add(pid)
    return pid

def reap(pid, limit):
    """The wait status of pid, within limit seconds, or Fatal (pid killed)."""
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], limit)
    finally:
        os.close(pidfd)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        running.discard(pid)
        raise Fatal(f"pid {pid} did not finish within {limit} s")
    _, status = os.waitpid(pid, 0)
    running.discard(pid)
    return status

def run_collect(argv, stdio):
    """Runs argv once, reading the terminal and the pipe meanwhile: its
    wait status and what it wrote."""
    got = bytearray()
    pid = spawn(argv, stdio)
    pidfd = os.pidfd_open(pid)
    deadline = time.monotonic() + timeout
    try:
        exited = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                running.discard(pid)
                raise Fatal(f"{' '.join(argv)}: no end within {timeout} s")
            # Once it has exited, what it wrote is there already.
            r, _, _ = select.select([master, pipe_r] + ([] if exited else [pidfd]), [], [], 0 if exited else left)
            if not r and exited:
                break
            for fd in r:
                if fd == pidfd:
                    exited = True
                else:
                    try:
                        got += os.read(fd, 65536)
                    except OSError as e:
                        if e.errno != errno.EIO:
                            raise
    finally:
        os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    running.discard(pid)
    return status, bytes(got)

def drain():
    """A child that reads the terminal's master and the pipe for ever, as
    a terminal emulator would; it dies with its parent."""
    pid = os.fork()
    if pid:
        running.add(pid)
        return pid
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        for fd in (slave, pipe_w, devnull):
            os.close(fd)
        poll = select.poll()
        poll.register(master, select.POLLIN)
        poll.register(pipe_r, select.POLLIN)
        while True:
            for fd, _ in poll.poll():
                try:
                    os.read(fd, 65536)
                except OSError:
                    pass
    finally:
        os._exit(0)

def strace_case(argv, stdio, attach):
    """Runs argv once under strace (attached to the server, or around the
    command): the number of /dev/ptmx opens and the ioctls, by request."""
    log = f"{work}/strace.{len(os.listdir(work))}"
    trace = [strace, "-f", "-o", log, "-e", "trace=open,openat,ioctl"]
    if attach:
        # strace says "Process N attached" on its stderr once it traces.
        said_r, said_w = os.pipe()
        tracer = os.posix_spawn(strace, trace + ["-p", str(server)], env,
                                file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, said_w, 2)])
        running.add(tracer)
        os.close(said_w)
        said = b""
        deadline = time.monotonic() + timeout
        while b"attached" not in said:
            r, _, _ = select.select([said_r], [], [], max(0, deadline - time.monotonic()))
            more = os.read(said_r, 4096) if r else b""
            if not more:
                raise Fatal(f"strace did not attach to the server: {said!r}")
            said += more
        status, _ = run_collect(argv, stdio)
        os.kill(tracer, signal.SIGINT)
        reap(tracer, timeout)
        os.close(said_r)
    else:
        status, _ = run_collect(trace + argv, stdio)
    if status != 0:
        raise Fatal(f"{' '.join(argv)}: wait status {status} under strace")
    ptmx, ioctls = 0, {}
    with open(log) as f:
        for line in f:
            if re.search(r'\b(open\(|openat\([^,]*, )"/dev/ptmx"', line) and not re.search(r"= -1", line):
                ptmx += 1
            m = re.search(r"ioctl\(\d+, ([A-Z0-9_]+).*= (-?\d+)", line)
            if m:
                name = m.group(1) + (" (failed)" if m.group(2) == "-1" else "")
                ioctls[name] = ioctls.get(name, 0) + 1
    return ptmx, ioctls

def pct(xs, q):
    xs = sorted(xs)
    i = q * (len(xs) - 1)
    lo = int(i)
    return xs[lo] + (xs[min(lo + 1, len(xs) - 1)] - xs[lo]) * (i - lo)

def main():
    # Every case must work, and write what it should, before it is timed.
    for kind, prog, argv, stdio in list(cases):
        status, out = run_collect(argv, stdio)
        want = 65536 if prog.startswith("cat") else 0
        if status != 0 and kind.startswith("sudo"):
            cases.remove((kind, prog, argv, stdio))
            skipped.append((kind, prog, f"sudo refused or failed (wait status {status})"))
            continue
        if status != 0:
            raise Fatal(f"{kind}, {prog}: wait status {status}: {out[:200]!r}")
        if out.count(b"x") != want or (want == 0 and out):
            raise Fatal(f"{kind}, {prog}: {len(out)} bytes of output, expected {want} x")
    drainer = drain()
    times = {(c[0], c[1]): [] for c in cases}
    order = list(cases)
    rng = random.Random(1)
    for r in range(warmup + runs):
        if r == 0 or (r + 1) % 100 == 0:
            say(f"round {r + 1} of {warmup + runs} ({warmup} warm-up)")
        rng.shuffle(order)
        for kind, prog, argv, stdio in order:
            t0 = time.perf_counter_ns()
            pid = spawn(argv, stdio)
            status = reap(pid, timeout)
            t1 = time.perf_counter_ns()
            if status != 0:
                raise Fatal(f"{kind}, {prog}: wait status {status}")
            if r >= warmup:
                times[(kind, prog)].append((t1 - t0) / 1e6)
    os.kill(drainer, signal.SIGKILL)
    os.waitpid(drainer, 0)
    running.discard(drainer)

    med = {k: statistics.median(v) for k, v in times.items()}
    p90 = {k: pct(v, 0.9) for k, v in times.items()}
    print(f"### ipcdo -F with and without a terminal (median and p90 of {runs} runs each, ms)")
    print()
    print("| case | program | median ms | p90 ms | median vs b |")
    print("|---|---|---:|---:|---:|")
    for kind, _, _, _ in kinds:
        for prog, _ in programs:
            b = med.get(("b. terminal, as root", prog))
            if (kind, prog) in med:
                m = med[(kind, prog)]
                print(f"| {kind} | {prog} | {m:.3f} | {p90[(kind, prog)]:.3f} | {m / b:.2f}x |")
    for kind, prog, why in skipped:
        print(f"| {kind} | {prog} | SKIPPED: {why} | | |")
    print()
    c, b = "c. terminal, as nobody (relay)", "b. terminal, as root"
    t, k = "/bin/true", "cat 64 KiB"
    per_run = med[(c, t)] - med[(b, t)]
    per_64k = (med[(c, k)] - med[(b, k)]) - per_run
    print("### What the relay adds (c - b, medians)")
    print()
    print("| | µs | ratio c/b |")
    print("|---|---:|---:|")
    print(f"| per run (/bin/true) | {per_run * 1e3:+.0f} | {med[(c, t)] / med[(b, t)]:.2f}x |")
    print(f"| per run writing 64 KiB (cat) | {(med[(c, k)] - med[(b, k)]) * 1e3:+.0f} | {med[(c, k)] / med[(b, k)]:.2f}x |")
    print(f"| per 64 KiB relayed (the difference) | {per_64k * 1e3:+.0f} | |")

    if not strace:
        print()
        print("strace: SKIPPED (not installed, or NO_STRACE=1)")
        return
    say("strace: one run of each case, /bin/true")
    print()
    print("### Pseudo-terminal work on the server side (strace -f -e trace=open,openat,ioctl, one run of /bin/true)")
    print()
    print("| case | /dev/ptmx opened | ioctls |")
    print("|---|---:|---|")
    for kind, _, _, _ in kinds[1:]:
        found = [x for x in cases if x[0] == kind and x[1] == t]
        if not found:
            print(f"| {kind} | SKIPPED | |")
            continue
        _, _, argv, stdio = found[0]
        sudo_case = kind.startswith("sudo")
        ptmx, ioctls = strace_case(argv, stdio, attach=not sudo_case)
        names = ", ".join(f"{n} ×{c}" for n, c in sorted(ioctls.items()))
        label = kind + (" (sudo itself traced)" if sudo_case else "")
        print(f"| {label} | {ptmx} | {names} |")

try:
    main()
    status = 0
except Fatal as e:
    say("fatal:", e)
    status = 111
finally:
    for pid in list(running):
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
sys.exit(status)
EOF
TIMER=$!
PIDS+=("$TIMER")
wait "$TIMER"
status=$?
echo
echo "Load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)."
[ "$status" = 0 ] || say "the timing process failed ($status); the server's log ends: $(tail -3 "$WORK/server.log")"
# ipcexec logs an ok line per request; anything else is worth a look.
if grep -v '^ipcexec: ok ' "$WORK/server.log" >"$WORK/odd.log"; then
	say "the server logged $(wc -l <"$WORK/odd.log") other lines, the first: $(head -3 "$WORK/odd.log")"
fi
exit "$status"
