#!/bin/bash
# tools/bench_ipchandle.sh: what libc costs a preforking server whose
# handler is C (ipchandle/, doc/ipchandle.md "From C"), against ours in
# Rust and the original's, in one interleaved run.
#
# Prints Markdown tables (those of doc/performance.md) on stdout. Four
# servers, each with 40 children on its own socket in a temporary
# directory, environment reduced to PATH, all answering ipcprint's 73 bytes:
#
#   ipcprint (ours, Rust)         target/release/ipcprint: no libc
#   C handler (dynamic)           a C server() that writes those bytes with
#                                 one snprintf and one write, linked with
#                                 libucspi_ipc_ipchandle.a and libc, as cc
#                                 links by default (the example ipcprint.c
#                                 is not used: it changes environ on purpose
#                                 every second connection, which costs a
#                                 child)
#   C handler (static-pie)        the same, cc -static-pie
#   ipcprint (original)           the original's, C with libc
#
# Each of ROUNDS rounds measures every server at concurrency 1 then 16
# with tools/loadgen for SECS seconds (connections per second, p50 and p99
# latency, the servers' CPU time per connection: tools/bench_lib.sh), and
# each program's start-up: RUNS runs of its usage error path (exec to
# exit 100, before any socket: what the dynamic loader and libc's
# initialisation cost, paid once per server) with tools/spawnlimit, its
# p50 and median CPU time. The tables give medians over the rounds, then
# each server's resident memory (parent, one child) and the programs'
# sizes.
#
# Needs gcc, python3, cargo; the original from UCSPI_IPC_ORIGINAL (default
# ../shared/reference/ucspi-ipc-0.67/bin beside the clone). A server that
# cannot run shows FAILED in its rows. Knobs: ROUNDS (5), SECS (2), RUNS
# (1000), NO_BUILD=1. Progress goes to stderr. Run it on a quiet machine:
# the figures of a busy one say more about the others.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-2}
RUNS=${RUNS:-1000}
REL=$ROOT/target/release
TOOLS=$ROOT/target/tools
ORIG=${UCSPI_IPC_ORIGINAL:-$ROOT/../shared/reference/ucspi-ipc-0.67/bin}
CHILDREN=40
CONFIGS="ours_print c_dynamic c_static_pie orig_print"

# WORK, PID, say, start_servers, measure, rss_kb.
BENCH=ipchandle
. "$ROOT/tools/bench_lib.sh"

declare -A LABEL=(
	[ours_print]="ipcprint (ours, Rust, no libc)"
	[c_dynamic]="C handler (ours, dynamic libc)"
	[c_static_pie]="C handler (ours, static-pie libc)"
	[orig_print]="ipcprint (original)"
)

declare -A PROGRAM=(
	[ours_print]=$REL/ipcprint
	[c_dynamic]=$TOOLS/ipchandle-c-dynamic/ipcprint
	[c_static_pie]=$TOOLS/ipchandle-c-static-pie/ipcprint
	[orig_print]=$ORIG/ipcprint
)

command_of() { echo "${PROGRAM[$1]} -c $CHILDREN $WORK/$1.sock"; }

build() {
	mkdir -p "$TOOLS" || exit 111
	if [ "${NO_BUILD:-0}" != 1 ]; then
		say "cargo build --release; cargo build --release -p ucspi-ipc-ipchandle"
		(cd "$ROOT" && cargo build --release -q && cargo build --release -q -p ucspi-ipc-ipchandle) >&2 ||
			say "warning: cargo build failed"
	fi
	cat >"$WORK/handler.c" <<-'EOF'
		/* ipcprint's bytes from a C server(), in one write. */
		#include <stdio.h>
		#include <stdlib.h>
		#include <unistd.h>
		#include <ipchandle.h>

		static const char *var(const char *name)
		{
		    const char *value = getenv(name);
		    return value != NULL ? value : "unset";
		}

		void server(int argc, char * const *argv)
		{
		    char b[4096];
		    int n = snprintf(b, sizeof b, "\nPROTO=%s\nIPCLOCALPATH=%s\nIPCREMOTEPATH=%s\n"
		        "IPCREMOTEEUID=%s\nIPCREMOTEEGID=%s\n", var("PROTO"), var("IPCLOCALPATH"),
		        var("IPCREMOTEPATH"), var("IPCREMOTEEUID"), var("IPCREMOTEEGID"));
		    (void)argc;
		    (void)argv;
		    if (n > 0 && (size_t)n < sizeof b && write(1, b, (size_t)n) < 0)
		        return;
		}
	EOF
	local link
	for link in dynamic static-pie; do
		mkdir -p "$TOOLS/ipchandle-c-$link" || exit 111
		flags=()
		[ "$link" = static-pie ] && flags=(-static-pie)
		gcc -O2 "${flags[@]}" -o "$TOOLS/ipchandle-c-$link/ipcprint" "$WORK/handler.c" \
			-I "$ROOT/ipchandle" "$REL/libucspi_ipc_ipchandle.a" || exit 111
	done
	gcc -O2 -o "$TOOLS/spawnlimit" "$ROOT/tools/spawnlimit/spawnlimit.c" || exit 111
	cargo build --release -q --manifest-path "$ROOT/tools/loadgen/Cargo.toml" \
		--target-dir "$TOOLS" >&2 || exit 111
	LOADGEN=$TOOLS/release/loadgen
}

# Each round, after a server's loadgen runs: its start-up, "start p50_us
# cpu_us" of its usage error path, or FAILED.
extra() {
	local line
	line=$("$TOOLS/spawnlimit" vfork -a -c 1 -n "$RUNS" -t 60 "${PROGRAM[$1]}" 2>/dev/null |
		sed -n 's/.* p50_us=\([0-9]*\) .* cpu_median_us=\([0-9]*\).*/\1 \2/p')
	echo "start ${line:-FAILED}"
}

build
start_servers
run_rounds

python3 - "$RAW" ${CONFIGS} <<-'EOF' "${LABEL[ours_print]}" "${LABEL[c_dynamic]}" "${LABEL[c_static_pie]}" "${LABEL[orig_print]}"
	import statistics, sys
	raw, configs = sys.argv[1], sys.argv[2:6]
	labels = dict(zip(configs, sys.argv[6:]))
	rows = {}
	for line in open(raw):
	    f = line.split()
	    rows.setdefault((f[0], f[1]), [])
	    if f[2] != "FAILED":
	        rows[(f[0], f[1])].append([float(x) for x in f[2:]])
	def med(cfg, k, i):
	    v = rows.get((cfg, k), [])
	    return statistics.median(x[i] for x in v) if v else None
	print("| server | c | conn/s | p50 µs | p99 µs | server CPU µs/conn |")
	print("|---|---:|---:|---:|---:|---:|")
	for cfg in configs:
	    for k in ("1", "16"):
	        if med(cfg, k, 0) is None:
	            print(f"| {labels[cfg]} | {k} | FAILED | | | |")
	            continue
	        print(f"| {labels[cfg]} | {k} | {med(cfg, k, 0):.0f} | {med(cfg, k, 1):.0f} | {med(cfg, k, 2):.0f} | {med(cfg, k, 3) / 100:.1f} |")
	print()
	print("| program (usage error path, exec to exit) | p50 µs | CPU µs |")
	print("|---|---:|---:|")
	for cfg in configs:
	    if med(cfg, "start", 0) is None:
	        print(f"| {labels[cfg]} | FAILED | |")
	    else:
	        print(f"| {labels[cfg]} | {med(cfg, 'start', 0):.0f} | {med(cfg, 'start', 1):.0f} |")
	print()
	def ratio(a, b, k):
	    x, y = med(a, k, 0), med(b, k, 0)
	    return f"{x / y:.2f}x" if x and y else "FAILED"
	print("| conn/s against ours in Rust | c=1 | c=16 |")
	print("|---|---:|---:|")
	for cfg in configs[1:]:
	    print(f"| {labels[cfg]} | {ratio(cfg, 'ours_print', '1')} | {ratio(cfg, 'ours_print', '16')} |")
EOF

echo
memory_table
echo
echo "| program | bytes |"
echo "|---|---:|"
for c in $CONFIGS; do
	echo "| ${LABEL[$c]} | $(stat -L -c %s "${PROGRAM[$c]}") |"
done
