#!/bin/bash
# tools/compare_startup.sh [REV]: the start-up and size of every program
# built from another revision (default: main) against the working tree's,
# side by side in one run, so that a change to the runtime or the link
# (static-pie, say) is judged on the same machine at the same moment.
#
# Prints a Markdown table on stdout: per program, on its usage error path
# (one write, exit 100), for REV and for the working tree, the median over
# ROUNDS rounds of two figures of RUNS runs (tools/spawnlimit:
# vfork+exec+wait): the exec-to-exit p50, and the median CPU time of the
# program from exec to exit (user and system, as wait4 reports it), which
# other processes on a busy machine disturb less; their ratios; the page
# faults of one run (perf stat, when perf is installed) and the stripped
# sizes; then the medians of the per-program ratios. Each round measures
# every program of both builds,
# the two builds one after the other, in an order that alternates between
# rounds, so that a machine that slows down or speeds up during the run
# weighs on both alike.
#
# Builds the working tree (`cargo build --release`) and REV, exported with
# `git archive` into target/compare/REV and built there with its own
# target directory. Needs git, gcc, cargo. Knobs: ROUNDS (7), RUNS (1000),
# NO_BUILD=1 (use what both target directories hold). Progress on stderr.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REV=${1:-main}
ROUNDS=${ROUNDS:-7}
RUNS=${RUNS:-1000}
TOOLS=$ROOT/target/tools
OLD=$ROOT/target/compare/$REV
NEW_BIN=$ROOT/target/release
OLD_BIN=$OLD/target/release
PROGRAMS=$(awk '!/^#/ && NF && $3 != "optional" {print $1}' "$ROOT/package/modes")

say() { echo "compare_startup: $*" >&2; }

mkdir -p "$TOOLS" || exit 111
gcc -O2 -o "$TOOLS/spawnlimit" "$ROOT/tools/spawnlimit/spawnlimit.c" || exit 111
# shellcheck source=tools/build_rev.sh
. "$ROOT/tools/build_rev.sh"
[ "${NO_BUILD:-0}" = 1 ] || build_both "$ROOT" "$REV" "$OLD"

# medians PROG: "P C", the exec-to-exit p50 and the median CPU time in
# µs over RUNS runs, any exit status.
medians() {
	"$TOOLS/spawnlimit" vfork -a -c 1 -n "$RUNS" -t 60 "$1" 2>/dev/null |
		sed -n 's/.* p50_us=\([0-9]*\) .* cpu_median_us=\([0-9]*\).*/\1 \2/p'
}
# faults PROG: page faults of one run, or nothing without perf.
faults() {
	perf stat -x, -e page-faults -r 20 "$1" 2>&1 >/dev/null | awk -F, '$3 == "page-faults" {print $1}'
}

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for round in $(seq "$ROUNDS"); do
	say "round $round of $ROUNDS"
	for p in $PROGRAMS; do
		if [ $((round % 2)) = 1 ]; then
			echo "$p old $(medians "$OLD_BIN/$p")"
			echo "$p new $(medians "$NEW_BIN/$p")"
		else
			echo "$p new $(medians "$NEW_BIN/$p")"
			echo "$p old $(medians "$OLD_BIN/$p")"
		fi
	done >>"$results"
done
for p in $PROGRAMS; do
	echo "$p faults $(faults "$OLD_BIN/$p") $(faults "$NEW_BIN/$p")"
	echo "$p bytes $(stat -c %s "$OLD_BIN/$p") $(stat -c %s "$NEW_BIN/$p")"
done >>"$results"

python3 - "$results" "$REV" <<'EOF'
import statistics, sys
rows, order = {}, []
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] not in rows:
        rows[f[0]] = {"old": [], "new": []}
        order.append(f[0])
    if f[1] in ("old", "new"):
        if len(f) == 4:
            rows[f[0]][f[1]].append((int(f[2]), int(f[3])))
    else:
        rows[f[0]][f[1]] = f[2:] + ["", ""]
rev = sys.argv[2]
print(f"| program (usage error path) | {rev} p50 µs | this tree p50 µs | ratio | {rev} CPU µs | this tree CPU µs | ratio | {rev} page faults | this tree page faults | {rev} bytes | this tree bytes |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
ratios = ([], [])
for p in order:
    r = rows[p]
    cells = []
    for i in (0, 1):
        old = statistics.median(m[i] for m in r["old"]) if r["old"] else None
        new = statistics.median(m[i] for m in r["new"]) if r["new"] else None
        ratio = ""
        if old and new:
            ratios[i].append(new / old)
            ratio = f"{new / old:.3f}"
        cells += ["FAILED" if old is None else f"{old:g}", "FAILED" if new is None else f"{new:g}", ratio]
    print(f"| {p} | {' | '.join(cells)} | {r['faults'][0]} | {r['faults'][1]} | {r['bytes'][0]} | {r['bytes'][1]} |")
medians = [f"**{statistics.median(x):.3f}**" if x else "" for x in ratios]
print(f"| **median of the ratios** | | | {medians[0]} | | | {medians[1]} | | | | |")
EOF
