#!/bin/bash
# tools/bench_spawn.sh: how ipcserverd starts its children, measured: its
# policy (fork when another connection waits, vfork-style otherwise)
# against each way alone, the C floors of a fork-per-connection server,
# s6-ipcserver and the original's ipcserver, at several concurrencies, on
# a quiet machine and with a CPU hog on one core, in one interleaved run.
#
# Prints Markdown tables (those of doc/performance.md) on stdout. Servers,
# each on its own socket in a temporary directory, environment reduced to
# PATH, at most 64 handlers each, all running the static C handler without
# libc (tools/handler.c, as tools/bench.sh):
#
#   ours       ipcserver -c 64 (the policy)
#   ours_fork  the same, ipcserverd built with --cfg ipcserverd_spawn="fork"
#   ours_vfork the same, built with --cfg ipcserverd_spawn="vfork"
#   c_fork     tools/cserver.c with fork: accept, fork, exec, reap
#   c_vfork    tools/cserver.c with vfork
#   s6         s6-ipcserver -c 64
#   orig       the original's ipcserver -c 64 (UCSPI_IPC_ORIGINAL)
#
# Each of ROUNDS rounds measures every server at each concurrency with
# tools/loadgen for SECS seconds, first without then with the hog (a busy
# loop pinned to CPU 0: the machine's other work); the tables give medians
# over the rounds of connections per second and p99 latency, then the
# ratios the spawn policy is judged by: ours against the better C floor,
# s6 and the original, and ours against each way alone, each the median
# over the rounds of one round's ratio (the servers run one after the
# other at each concurrency: a ratio pairs runs seconds apart).
#
# Needs gcc, python3, cargo, taskset; s6 and the original are optional
# (FAILED rows). Knobs: ROUNDS (3), SECS (2), CONCURRENCIES ("1 4 16 64"),
# CONFIGS (the servers to run, of those above: all),
# HOG ("0 1": runs without and with the hog), NO_BUILD=1 (use what the
# target directories hold). Progress goes to stderr.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-2}
CONCURRENCIES=${CONCURRENCIES:-"1 4 16 64"}
HOGS=${HOG:-"0 1"}
REL=$ROOT/target/release
TOOLS=$ROOT/target/tools
ORIG=${UCSPI_IPC_ORIGINAL:-$ROOT/../shared/reference/ucspi-ipc-0.67/bin}
CONFIGS=${CONFIGS:-"ours ours_fork ours_vfork c_fork c_vfork s6 orig"}

say() { echo "bench_spawn: $*" >&2; }

WORK=$(mktemp -d /tmp/ucspi-bench-spawn.XXXXXX) || exit 111
declare -A PID FAILED
HOG_PID=
cleanup() {
	for c in "${!PID[@]}"; do kill "${PID[$c]}" 2>/dev/null; done
	[ -n "$HOG_PID" ] && kill "$HOG_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# variant WAY: ipcserver and its chain with ipcserverd built one way only,
# in a target directory of its own.
variant() {
	echo "$TOOLS/spawn-$1/release"
}

build() {
	mkdir -p "$TOOLS" || exit 111
	if [ "${NO_BUILD:-0}" != 1 ]; then
		say "cargo build --release, then with each way fixed"
		(cd "$ROOT" && cargo build --release -q) >&2 || exit 111
		for way in fork vfork; do
			(cd "$ROOT" && RUSTFLAGS="--cfg ipcserverd_spawn=\"$way\"" \
				cargo build --release -q --target-dir "$TOOLS/spawn-$way") >&2 || exit 111
		done
	fi
	gcc -O2 -static -nostdlib -fno-stack-protector -DNOLIBC -o "$TOOLS/handler-nolibc" \
		"$ROOT/tools/handler.c" 2>/dev/null || gcc -O2 -static -o "$TOOLS/handler-nolibc" "$ROOT/tools/handler.c" ||
		exit 111
	gcc -O2 -o "$TOOLS/cserver" "$ROOT/tools/cserver.c" || exit 111
	cargo build --release -q --manifest-path "$ROOT/tools/loadgen/Cargo.toml" \
		--target-dir "$TOOLS" >&2 || exit 111
	LOADGEN=$TOOLS/release/loadgen
}

# command_of CONFIG SOCK: the server's command line.
command_of() {
	local h=$TOOLS/handler-nolibc
	case $1 in
	ours) echo "$REL/ipcserver -c 64 $2 $h" ;;
	ours_fork | ours_vfork) echo "$(variant "${1#ours_}")/ipcserver -c 64 $2 $h" ;;
	c_fork) echo "$TOOLS/cserver fork $2 $h" ;;
	c_vfork) echo "$TOOLS/cserver vfork $2 $h" ;;
	s6) echo "s6-ipcserver -c 64 $2 $h" ;;
	orig) echo "$ORIG/ipcserver -c 64 $2 $h" ;;
	esac
}

start_servers() {
	local cfg sock
	for cfg in $CONFIGS; do
		sock=$WORK/$cfg.sock
		# shellcheck disable=SC2046
		env -i "PATH=$PATH" $(command_of "$cfg" "$sock") </dev/null >/dev/null 2>"$WORK/$cfg.log" &
		PID[$cfg]=$!
		# Not all of them have a readiness line: wait for the socket (as
		# tools/bench.sh does), then probe it.
		for _ in $(seq 250); do [ -S "$sock" ] && break; sleep 0.02; done
		if ! "$LOADGEN" "$sock" -n 3 -t 5 -w 2000 >"$WORK/$cfg.probe" 2>&1; then
			FAILED[$cfg]="$(tail -1 "$WORK/$cfg.probe") $(head -1 "$WORK/$cfg.log")"
			say "$cfg FAILED: ${FAILED[$cfg]}"
			kill "${PID[$cfg]}" 2>/dev/null
			unset "PID[$cfg]"
		fi
	done
}

hog() {
	if [ "$1" = 1 ]; then
		taskset -c 0 sh -c 'while :; do :; done' &
		HOG_PID=$!
	elif [ -n "$HOG_PID" ]; then
		kill "$HOG_PID" 2>/dev/null
		wait "$HOG_PID" 2>/dev/null
		HOG_PID=
	fi
}

# rotated R: the configurations, starting from the R-th (cyclically).
rotated() {
	local list=($CONFIGS)
	local n=${#list[@]} i
	for i in $(seq 0 $((n - 1))); do echo "${list[$(((i + $1 - 1) % n))]}"; done
}

run_rounds() {
	local r h cfg c line
	: >"$WORK/raw"
	for r in $(seq "$ROUNDS"); do
		for h in $HOGS; do
			say "round $r/$ROUNDS, hog $h"
			hog "$h"
			# Servers one after the other at each concurrency, so that
			# the runs a ratio pairs are seconds apart, each round from
			# another one (the first after a change of concurrency runs
			# while the last one's children are still being reaped).
			for c in $CONCURRENCIES; do
				for cfg in $(rotated "$r"); do
					[ -n "${FAILED[$cfg]:-}" ] && continue
					line=$("$LOADGEN" "$WORK/$cfg.sock" -c "$c" -n 1000000 -t "$SECS" 2>&1 | tail -1)
					echo "$h $cfg $c $r $line" >>"$WORK/raw"
				done
			done
			hog 0
		done
	done
}

report() {
	local failed_list="" cfg
	for cfg in $CONFIGS; do
		[ -n "${FAILED[$cfg]:-}" ] && failed_list="$failed_list$cfg=${FAILED[$cfg]//$'\n'/ }"$'\n'
	done
	FAILED_LIST=$failed_list CONFIGS=$CONFIGS CONCURRENCIES=$CONCURRENCIES HOGS=$HOGS \
		ROUNDS=$ROUNDS python3 - "$WORK/raw" <<'EOF'
import os, sys, statistics
configs = os.environ["CONFIGS"].split()
concs = os.environ["CONCURRENCIES"].split()
hogs = os.environ["HOGS"].split()
failed = dict(l.split("=", 1) for l in os.environ["FAILED_LIST"].splitlines() if l)
labels = {
    "ours": "ipcserver (the policy)",
    "ours_fork": "ipcserver, fork only",
    "ours_vfork": "ipcserver, vfork only",
    "c_fork": "floor: C server, fork",
    "c_vfork": "floor: C server, vfork",
    "s6": "s6-ipcserver",
    "orig": "the original's ipcserver",
}
runs = {}
rounds = {}
for line in open(sys.argv[1]):
    h, cfg, c, r, *kv = line.split()
    fields = dict(x.split("=", 1) for x in kv if "=" in x)
    runs.setdefault((h, cfg, c), []).append(fields)
    rounds.setdefault((h, cfg, c), {})[r] = float(fields.get("conn_per_s", 0)) or None
def med(h, cfg, c, key):
    rs = [float(f[key]) for f in runs.get((h, cfg, c), []) if key in f]
    return statistics.median(rs) if rs else None
def errors(h, cfg):
    return sum(int(f.get("errors", 1)) for c in concs for f in runs.get((h, cfg, c), []))
for h in hogs:
    title = "with a CPU hog on one core" if h == "1" else "quiet"
    print(f"#### {title} (medians of {os.environ['ROUNDS']} interleaved rounds)\n")
    print("| configuration | " + " | ".join(f"conn/s c={c} | p99 µs" for c in concs) + " | errors |")
    print("|---|" + "---:|---:|" * len(concs) + "---:|")
    for cfg in configs:
        if cfg in failed:
            print(f"| {labels[cfg]} | " + " | ".join("FAILED | " for _ in concs) + " |")
            continue
        cells = []
        for c in concs:
            for key in ("conn_per_s", "p99_us"):
                v = med(h, cfg, c, key)
                cells.append("FAILED" if v is None else f"{v:.0f}")
        print(f"| {labels[cfg]} | " + " | ".join(cells) + f" | {errors(h, cfg)} |")
    print()
    # A ratio pairs the two servers' runs of each round (seconds apart),
    # then takes the median over the rounds: the machine's drift between
    # rounds cancels, which a ratio of medians does not do.
    print("| median over rounds of the ratio of conn/s | " + " | ".join(f"c={c}" for c in concs) + " |")
    print("|---|" + "---:|" * len(concs))
    def per_round(cfg, c):
        return rounds.get((h, cfg, c), {})
    def ratio(a, b, c):
        xs = per_round(a, c)
        if b == "floor":
            forks, vforks = per_round("c_fork", c), per_round("c_vfork", c)
            ys = {r: max(v for v in (forks.get(r), vforks.get(r)) if v) for r in set(forks) | set(vforks)
                  if forks.get(r) or vforks.get(r)}
        else:
            ys = per_round(b, c)
        rs = [xs[r] / ys[r] for r in xs if xs[r] and ys.get(r)]
        return f"{statistics.median(rs):.2f}" if rs else "FAILED"
    for a, b, label in (("ours", "floor", "ours / the better C floor (goal ≥ 0.97)"),
                        ("ours", "s6", "ours / s6-ipcserver (goal ≥ 1.0)"),
                        ("ours", "orig", "ours / the original (goal ≥ 1.0)"),
                        ("ours", "ours_fork", "the policy / fork only"),
                        ("ours", "ours_vfork", "the policy / vfork only"),
                        ("c_fork", "c_vfork", "C floor: fork / vfork")):
        print(f"| {label} | " + " | ".join(ratio(a, b, c) for c in concs) + " |")
    print()
for cfg, why in failed.items():
    print(f"FAILED {labels[cfg]}: `{why.strip()[:300]}`\n")
EOF
}

build
start_servers
run_rounds
report
