#!/bin/bash
# tools/bench_prefork.sh: the preforking servers against the original's and
# against fork-and-exec, in one interleaved run.
#
# Prints Markdown tables (those of doc/performance.md) on stdout. Servers,
# each on its own socket in a temporary directory, environment reduced to
# PATH, all with 40 children or at most 40 handlers (the original's
# default):
#
#   ipcprint (ours)           ipcprint -c 40 SOCK
#   ipcprint (original)       the original's ipcprint -c 40 SOCK
#   ipcserver + printvars     ipcserver -c 40 SOCK printvars: fork and exec per
#                             connection of tools/printvars.c, a static C
#                             program without libc that writes ipcprint's bytes
#   ipcperl (ours)            ipcperl -c 40 SOCK printvars.pm print_vars
#   ipcperl (original)        the original's ipcperl, same arguments
#
# Each of ROUNDS rounds measures every server at concurrency 1 then 16 with
# tools/loadgen for SECS seconds; the tables give medians over the rounds:
# connections per second, p50 and p99 latency, and the servers' own CPU time
# per connection (utime+stime of the parent and its children from /proc,
# children that exited included), which is what the architecture changes;
# the client's share is the same for all. Then the resident memory of each
# server's parent and of one child, after the rounds.
#
# Needs gcc, python3, cargo; the original from UCSPI_IPC_ORIGINAL (default
# ../shared/reference/ucspi-ipc-0.67/bin beside the clone); ipcperl rows
# need `cargo build --release --features perl` (the script builds it when
# libperl-dev is there). A server that cannot run shows FAILED in its rows.
# Knobs: ROUNDS (5), SECS (2), CONFIGS (the servers to run, by the names
# in command_of), NO_BUILD=1. Progress goes to stderr.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-2}
REL=$ROOT/target/release
TOOLS=$ROOT/target/tools
ORIG=${UCSPI_IPC_ORIGINAL:-$ROOT/../shared/reference/ucspi-ipc-0.67/bin}
CHILDREN=40
CONFIGS=${CONFIGS:-"ours_print orig_print ours_exec ours_perl orig_perl"}

# WORK, PID, say, start_servers, measure, rss_kb.
BENCH=prefork
. "$ROOT/tools/bench_lib.sh"

build() {
	mkdir -p "$TOOLS" || exit 111
	if [ "${NO_BUILD:-0}" != 1 ]; then
		say "cargo build --release (--features perl when libperl is there)"
		features=
		perl -MExtUtils::Embed -e ldopts >/dev/null 2>&1 && features="--features perl"
		# shellcheck disable=SC2086
		(cd "$ROOT" && cargo build --release -q $features) >&2 || say "warning: cargo build failed"
	fi
	gcc -O2 -static -nostdlib -fno-stack-protector -fno-builtin -o "$TOOLS/printvars" \
		"$ROOT/tools/printvars.c" || exit 111
	cargo build --release -q --manifest-path "$ROOT/tools/loadgen/Cargo.toml" \
		--target-dir "$TOOLS" >&2 || exit 111
	LOADGEN=$TOOLS/release/loadgen
	cat >"$WORK/printvars.pm" <<-'EOF'
		# ipcprint's bytes, from Perl. $| because the original ipcperl
		# does not flush STDOUT after a call.
		sub print_vars {
		    local $| = 1;
		    my $v = sub { defined $ENV{$_[0]} ? $ENV{$_[0]} : 'unset' };
		    print "\n", map { "$_=" . $v->($_) . "\n" }
		        qw(PROTO IPCLOCALPATH IPCREMOTEPATH IPCREMOTEEUID IPCREMOTEEGID);
		}
		1;
	EOF
}

declare -A LABEL=(
	[ours_print]="ipcprint (ours)"
	[orig_print]="ipcprint (original)"
	[ours_exec]="ipcserver + printvars (fork and exec)"
	[ours_perl]="ipcperl (ours)"
	[orig_perl]="ipcperl (original)"
)

command_of() {
	local s=$WORK/$1.sock
	case $1 in
	ours_print) echo "$REL/ipcprint -c $CHILDREN $s" ;;
	orig_print) echo "$ORIG/ipcprint -c $CHILDREN $s" ;;
	ours_exec) echo "$REL/ipcserver -c $CHILDREN $s $TOOLS/printvars" ;;
	ours_perl) echo "$REL/ipcperl -c $CHILDREN $s $WORK/printvars.pm print_vars" ;;
	orig_perl) echo "$ORIG/ipcperl -c $CHILDREN $s $WORK/printvars.pm print_vars" ;;
	esac
}

build
start_servers
run_rounds

python3 - "$RAW" <<-'EOF' "${LABEL[ours_print]}" "${LABEL[orig_print]}" "${LABEL[ours_exec]}" "${LABEL[ours_perl]}" "${LABEL[orig_perl]}"
	import statistics, sys
	raw = sys.argv[1]
	labels = dict(zip(["ours_print", "orig_print", "ours_exec", "ours_perl", "orig_perl"], sys.argv[2:]))
	rows = {}
	for line in open(raw):
	    f = line.split()
	    cfg, k = f[0], int(f[1])
	    rows.setdefault((cfg, k), [])
	    if f[2] != "FAILED":
	        rows[(cfg, k)].append([float(x) for x in f[2:6]])
	def med(cfg, k, i):
	    v = rows.get((cfg, k), [])
	    return statistics.median(x[i] for x in v) if v else None
	print("| server | c | conn/s | p50 µs | p99 µs | server CPU µs/conn |")
	print("|---|---:|---:|---:|---:|---:|")
	for cfg in labels:
	    for k in (1, 16):
	        if med(cfg, k, 0) is None:
	            print(f"| {labels[cfg]} | {k} | FAILED | | | |")
	            continue
	        print(f"| {labels[cfg]} | {k} | {med(cfg, k, 0):.0f} | {med(cfg, k, 1):.0f} | {med(cfg, k, 2):.0f} | {med(cfg, k, 3) / 100:.1f} |")
	print()
	print("| goal | c=1 | c=16 |")
	print("|---|---:|---:|")
	def ratio(a, b, k, i=0, inverse=False):
	    x, y = med(a, k, i), med(b, k, i)
	    if not x or not y:
	        return "FAILED"
	    return f"{(y / x if inverse else x / y):.2f}x"
	print(f"| ipcprint ≥ 1.5x the original's (conn/s) | {ratio('ours_print', 'orig_print', 1)} | {ratio('ours_print', 'orig_print', 16)} |")
	print(f"| ipcprint ≥ 5x ipcserver + printvars (conn/s) | {ratio('ours_print', 'ours_exec', 1)} | {ratio('ours_print', 'ours_exec', 16)} |")
	print(f"| ipcperl ≥ 1x the original's (conn/s) | {ratio('ours_perl', 'orig_perl', 1)} | {ratio('ours_perl', 'orig_perl', 16)} |")
	print(f"| server CPU per connection, ipcserver + printvars / ipcprint | {ratio('ours_print', 'ours_exec', 1, 3, True)} | {ratio('ours_print', 'ours_exec', 16, 3, True)} |")
	print(f"| server CPU per connection, original ipcprint / ours | {ratio('ours_print', 'orig_print', 1, 3, True)} | {ratio('ours_print', 'orig_print', 16, 3, True)} |")
EOF

# The fork-and-exec server keeps no child.
child_rss() {
	if [ "$1" = ours_exec ]; then
		echo "(a handler lives for one connection)"
	else
		rss_kb "$(pgrep -P "$2" | head -1)"
	fi
}
echo
memory_table
