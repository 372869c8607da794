#!/bin/bash
# tools/bench_peer_facts.sh REV: what the client's pid and groups
# (IPCREMOTEPID, IPCREMOTEGIDLIST) and -S cost a connection, against a
# revision from before them (REV, e.g. the parent of the commit that added
# them), side by side in one run.
#
# Three servers, each `ipcserver -c 64 -x rules.cdb SOCK handler` on its own
# socket (rules: `0:allow`, `:deny`, so that the test uid's own key
# decides): REV's, the working tree's, and the working tree's with -S.
# For each client group count of GROUP_COUNTS (the client is tools/loadgen run
# by `setpriv --groups`: it must run as root for any count but
# 0), ROUNDS interleaved rounds each send N connections, one at a time, to
# every server; the figure is the servers' CPU time per connection: the
# daemon's own and that of its reaped children (ipcserver-access and the
# handler), from /proc/PID/stat, which a busy machine disturbs less than
# a rate. Prints a Markdown table of the medians over the rounds and the
# medians of the rounds' ratios.
#
# Builds the working tree and REV (exported with git archive into
# target/compare/REV, as tools/compare_startup.sh does). Needs git, gcc,
# cargo, python3, setpriv. Knobs: ROUNDS (7), N (2000), GROUP_COUNTS ("0 16
# 1000"), NO_BUILD=1. Progress on stderr.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REV=${1:?usage: tools/bench_peer_facts.sh REV}
ROUNDS=${ROUNDS:-7}
N=${N:-2000}
GROUP_COUNTS=${GROUP_COUNTS:-"0 16 1000"}
TOOLS=$ROOT/target/tools
OLD=$ROOT/target/compare/$REV
NEW_BIN=$ROOT/target/release
OLD_BIN=$OLD/target/release

say() { echo "bench_peer_facts: $*" >&2; }

mkdir -p "$TOOLS" || exit 111
gcc -O2 -static -nostdlib -fno-stack-protector -DNOLIBC -o "$TOOLS/handler-nolibc" "$ROOT/tools/handler.c" ||
	exit 111
cargo build --release -q --manifest-path "$ROOT/tools/loadgen/Cargo.toml" --target-dir "$TOOLS" >&2 || exit 111
# shellcheck source=tools/build_rev.sh
. "$ROOT/tools/build_rev.sh"
[ "${NO_BUILD:-0}" = 1 ] || build_both "$ROOT" "$REV" "$OLD"

WORK=$(mktemp -d /tmp/ucspi-bench-peer-facts.XXXXXX) || exit 111
declare -A PID
cleanup() {
	for c in "${!PID[@]}"; do kill "${PID[$c]}" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT

printf '0:allow\n:deny\n' | "$NEW_BIN/ipcrules" "$WORK/rules.cdb" "$WORK/rules.tmp" || exit 111
declare -A COMMAND=(
	[before]="$OLD_BIN/ipcserver -1 -c 64 -x $WORK/rules.cdb"
	[after]="$NEW_BIN/ipcserver -1 -c 64 -x $WORK/rules.cdb"
	[after_S]="$NEW_BIN/ipcserver -1 -S -c 64 -x $WORK/rules.cdb"
)
CONFIGS="before after after_S"
for c in $CONFIGS; do
	# shellcheck disable=SC2086
	env -i "PATH=$PATH" ${COMMAND[$c]} "$WORK/$c.sock" "$TOOLS/handler-nolibc" </dev/null \
		>"$WORK/$c.ready" 2>/dev/null &
	PID[$c]=$!
done
# Ready when each has written its socket's path (-1).
for c in $CONFIGS; do
	for _ in $(seq 1000); do [ -s "$WORK/$c.ready" ] && break; sleep 0.01; done
	[ -s "$WORK/$c.ready" ] || { say "$c did not start"; exit 111; }
done

# ticks PID: the CPU time of PID and its reaped children, in clock ticks.
ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

for g in $GROUP_COUNTS; do
	client=()
	[ "$g" != 0 ] && client=(setpriv --groups "$(seq -s, 100001 $((100000 + g)))")
	for r in $(seq "$ROUNDS"); do
		say "groups $g, round $r/$ROUNDS"
		for c in $CONFIGS; do
			before=$(ticks "${PID[$c]}")
			"${client[@]}" "$TOOLS/release/loadgen" "$WORK/$c.sock" -c 1 -n "$N" -t 120 >/dev/null ||
				say "$c: loadgen reported errors"
			# The last handler is reaped on the daemon's next wake at the
			# latest, 10 ms on.
			sleep 0.1
			echo "$g $c $(($(ticks "${PID[$c]}") - before))" >>"$WORK/raw"
		done
	done
done

python3 - "$WORK/raw" "$N" "$HZ" <<'EOF'
import statistics, sys
raw, n, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = [l.split() for l in open(raw)]
us = lambda t: int(t) * 1e6 / hz / n
print("| client's groups | before | after | after, -S | after / before | -S / after |")
print("|---|---|---|---|---|---|")
for g in dict.fromkeys(r[0] for r in rows):
    d = {c: [us(r[2]) for r in rows if r[0] == g and r[1] == c] for c in ("before", "after", "after_S")}
    ratio = lambda a, b: statistics.median(x / y for x, y in zip(d[a], d[b]))
    med = {c: statistics.median(v) for c, v in d.items()}
    print(f"| {g} | {med['before']:.0f} µs | {med['after']:.0f} µs | {med['after_S']:.0f} µs "
          f"| {ratio('after', 'before'):.2f}x | {ratio('after_S', 'after'):.2f}x |")
EOF
