#!/bin/bash
# tools/bench.sh: the benchmark of the ucspi-ipc rebuild against its peers.
#
# Prints a Markdown report (the tables of doc/performance.md) on stdout:
#   1. connections/s and latency at concurrency 1 and 16, medians of ROUNDS
#      interleaved rounds (and ratios, each the median of the rounds'), for our ipcserver (no access), our ipcserver -x,
#      s6-ipcserver, s6-ipcserver + s6-ipcserver-access -x, ucspi-unix
#      unixserver, the floors of a server (tools/cserver.c: one accept loop
#      that forks, or vforks, and execs) and the fork+exec / vfork+exec
#      limits (tools/spawnlimit: K independent loops, no socket accept);
#      every server runs the same static C handler (tools/handler.c), first
#      built without libc, then (GLIBC_ROUNDS more rounds) with static glibc;
#   2. start-up latency (exec to exit) of each of our programs vs static C;
#   3. stripped sizes, ours and the peers';
#   4. RSS of the idle and the busy daemon;
#   5. ipcrules on 1M rules vs tinycdb's `cdb -c`.
# A configuration that cannot run prints FAILED in its row; the run goes on.
#
# Environment knobs: ROUNDS (default 5), GLIBC_ROUNDS (default 3, 0 to
# skip the glibc-handler table), SECS per measurement (default 2),
# N max connections per measurement (default 100000), RULES (default
# 1000000), STARTUP_RUNS (hyperfine runs, default 2000), PARTS (default
# "rounds rss startup sizes rules": the sections to run), NO_BUILD=1 to
# skip `cargo build --release`. Progress goes to stderr; run from anywhere.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5}
GLIBC_ROUNDS=${GLIBC_ROUNDS:-3}
SECS=${SECS:-2}
N=${N:-100000}
RULES=${RULES:-1000000}
STARTUP_RUNS=${STARTUP_RUNS:-2000}
PARTS=${PARTS:-rounds rss startup sizes rules}
REL=$ROOT/target/release
TOOLS=$ROOT/target/tools
PROGRAMS="ipcserver ipcserver-socketbinder ipcapplyuidgid ipcserverd ipcserver-access
ipcclient ipccat ipcconnect ipcrules ipcrulescheck"

say() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------- build
build() {
	mkdir -p "$TOOLS" || exit 111
	if [ "${NO_BUILD:-0}" != 1 ]; then
		say "cargo build --release"
		(cd "$ROOT" && cargo build --release -q) >&2 || say "warning: cargo build failed; using what is in target/release"
	fi
	gcc -O2 -static -o "$TOOLS/handler-glibc" "$ROOT/tools/handler.c" || exit 111
	gcc -O2 -static -nostdlib -fno-stack-protector -DNOLIBC -o "$TOOLS/handler-nolibc" \
		"$ROOT/tools/handler.c" 2>/dev/null || cp "$TOOLS/handler-glibc" "$TOOLS/handler-nolibc"
	gcc -O2 -o "$TOOLS/spawnlimit" "$ROOT/tools/spawnlimit/spawnlimit.c" || exit 111
	gcc -O2 -o "$TOOLS/cserver" "$ROOT/tools/cserver.c" || exit 111
	cargo build --release -q --manifest-path "$ROOT/tools/loadgen/Cargo.toml" \
		--target-dir "$TOOLS" >&2 || exit 111
	LOADGEN=$TOOLS/release/loadgen
	SPAWNLIMIT=$TOOLS/spawnlimit
	# Every server and limit runs $HANDLER, a symbolic link switched
	# between the two builds of tools/handler.c (see use_handler).
	HANDLER=$WORK/handler
	use_handler nolibc
}

use_handler() {
	ln -sfn "$TOOLS/handler-$1" "$WORK/handler.new" && mv -T "$WORK/handler.new" "$WORK/handler"
}

# ---------------------------------------------------------------- servers
WORK=$(mktemp -d /tmp/ucspi-bench.XXXXXX) || exit 111
declare -A PID FAILED
cleanup() {
	for name in "${!PID[@]}"; do kill "${PID[$name]}" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Rules allowing the current user, among a few others, in both formats.
make_rules() {
	local uid
	uid=$(id -u)
	printf '%s\n' "# benchmark rules" "4242.4242:deny" "1000:allow,WHO=\"user\"" \
		"2000-2010:allow" "$uid:allow" ".4343:deny" ":deny" >"$WORK/rules.txt"
	"$REL/ipcrules" "$WORK/rules.cdb" "$WORK/rules.tmp" <"$WORK/rules.txt" 2>"$WORK/ipcrules.log" ||
		say "ipcrules failed: $(head -1 "$WORK/ipcrules.log")"
	mkdir -p "$WORK/s6rules/uid/$uid" "$WORK/s6rules/uid/1000" "$WORK/s6rules/uid/4242" \
		"$WORK/s6rules/gid/4343" "$WORK/s6rules/uid/default"
	touch "$WORK/s6rules/uid/$uid/allow" "$WORK/s6rules/uid/1000/allow" \
		"$WORK/s6rules/uid/4242/deny" "$WORK/s6rules/gid/4343/deny" "$WORK/s6rules/uid/default/deny"
	s6-accessrules-cdb-from-fs "$WORK/s6rules.cdb" "$WORK/s6rules" >&2 ||
		say "s6-accessrules-cdb-from-fs failed"
}

# Servers and limits run with this environment only, so that every
# configuration copies the same few variables at each exec, whatever the
# caller's shell holds.
CLEAN_ENV=(env -i "PATH=$PATH")

# start NAME COMMAND...: runs a server on $WORK/NAME.sock (the command's
# socket operand must be that path), waits for the socket, probes it.
start() {
	local name=$1
	shift
	"${CLEAN_ENV[@]}" "$@" 2>"$WORK/$name.log" </dev/null >/dev/null &
	PID[$name]=$!
	for _ in $(seq 100); do [ -S "$WORK/$name.sock" ] && break; sleep 0.02; done
	if ! "$LOADGEN" "$WORK/$name.sock" -n 3 -t 3 -w 2000 >"$WORK/$name.probe" 2>&1; then
		FAILED[$name]="$(cat "$WORK/$name.probe") $(head -c 200 "$WORK/$name.log" | head -1)"
		say "$name FAILED: ${FAILED[$name]}"
		kill "${PID[$name]}" 2>/dev/null
		unset "PID[$name]"
	fi
}

start_servers() {
	local h=$HANDLER
	start ours "$REL/ipcserver" -c 64 "$WORK/ours.sock" "$h"
	start oursx "$REL/ipcserver" -c 64 -x "$WORK/rules.cdb" "$WORK/oursx.sock" "$h"
	start s6 s6-ipcserver -c 64 "$WORK/s6.sock" "$h"
	# -v 0: s6-ipcserver-access logs every accepted connection by default;
	# ours does not, so both do the same work per connection.
	start s6x s6-ipcserver -c 64 "$WORK/s6x.sock" s6-ipcserver-access -v 0 -x "$WORK/s6rules.cdb" "$h"
	start unix unixserver -c 64 "$WORK/unix.sock" "$h"
	# The floors of a fork-per-connection server: one accept loop that
	# forks (or vforks) and execs, nothing else (tools/cserver.c).
	start cfork "$TOOLS/cserver" fork "$WORK/cfork.sock" "$h"
	start cvfork "$TOOLS/cserver" vfork "$WORK/cvfork.sock" "$h"
}

CONFIGS="ours oursx s6 s6x unix cfork cvfork fork vfork"
declare -A LABEL=(
	[ours]="ipcserver (no access)"
	[oursx]="ipcserver -x rules.cdb"
	[s6]="s6-ipcserver"
	[s6x]="s6-ipcserver + s6-ipcserver-access -x"
	[unix]="unixserver (ucspi-unix)"
	[cfork]="limit: C server, fork+exec"
	[cvfork]="limit: C server, vfork+exec"
	[fork]="limit: fork+exec"
	[vfork]="limit: vfork+exec"
)

# measure CONFIG CONCURRENCY: one loadgen (or spawnlimit) line on stdout.
measure() {
	local cfg=$1 c=$2
	case $cfg in
	fork | vfork) "${CLEAN_ENV[@]}" "$SPAWNLIMIT" "$cfg" -c "$c" -n "$N" -t "$SECS" "$HANDLER" ;;
	*) "$LOADGEN" "$WORK/$cfg.sock" -c "$c" -n "$N" -t "$SECS" ;;
	esac
}

# rotated R: the configurations, starting from the R-th (cyclically).
rotated() {
	local list=($CONFIGS)
	local n=${#list[@]} i
	for i in $(seq 0 $((n - 1))); do echo "${list[$(((i + $1 - 1) % n))]}"; done
}

# run_rounds ROUNDS RAWFILE: at each concurrency, every configuration one
# after the other, so that the runs a ratio pairs are seconds apart; each
# round starts from another configuration (the first after a change of
# concurrency runs while the last one's children are still being reaped).
run_rounds() {
	local rounds=$1 raw=$2 r cfg c line
	: >"$raw"
	for r in $(seq "$rounds"); do
		say "round $r/$rounds ($(basename "$(readlink "$HANDLER")"))"
		for c in 1 16; do
			for cfg in $(rotated "$r"); do
				[ -n "${FAILED[$cfg]:-}" ] && continue
				line=$(measure "$cfg" "$c" 2>&1 | tail -1)
				echo "$cfg $c $r $line" >>"$raw"
			done
		done
	done
}

# report_rounds RAWFILE: medians per (config, concurrency) and the ratios
# the goals are about, each the median over the rounds of one round's
# ratio (the drift of a shared machine between rounds cancels out).
report_rounds() {
	local failed_list="" labels cfg
	for cfg in $CONFIGS; do
		[ -n "${FAILED[$cfg]:-}" ] && failed_list="$failed_list$cfg=${FAILED[$cfg]//$'\n'/ }"$'\n'
	done
	labels=$(for cfg in $CONFIGS; do echo "$cfg=${LABEL[$cfg]}"; done)
	FAILED_LIST=$failed_list CONFIGS=$CONFIGS LABELS=$labels python3 - "$1" <<'EOF'
import os, sys, statistics
labels = dict(l.split("=", 1) for l in os.environ["LABELS"].splitlines())
failed = dict(l.split("=", 1) for l in os.environ["FAILED_LIST"].splitlines() if l)
configs = os.environ["CONFIGS"].split()
runs = {}
rounds = {}
for line in open(sys.argv[1]):
    cfg, c, r, *kv = line.split()
    fields = dict(x.split("=", 1) for x in kv if "=" in x)
    runs.setdefault((cfg, c), []).append(fields)
    rounds.setdefault((cfg, c), {})[r] = float(fields.get("conn_per_s", 0)) or None
def med(cfg, c, key):
    rs = [float(f[key]) for f in runs.get((cfg, c), []) if key in f]
    return statistics.median(rs) if rs else None
def errors(cfg, c):
    return sum(int(f.get("errors", 1)) for f in runs.get((cfg, c), []))
print("| configuration | conn/s c=1 | p50 µs | p99 µs | conn/s c=16 | p50 µs | p99 µs | errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for cfg in configs:
    if cfg in failed:
        print(f"| {labels[cfg]} | FAILED | | | | | | |")
        continue
    cells = []
    for c in ("1", "16"):
        v = [med(cfg, c, k) for k in ("conn_per_s", "p50_us", "p99_us")]
        cells += ["FAILED" if x is None else f"{x:.0f}" for x in v]
    print(f"| {labels[cfg]} | " + " | ".join(cells) + f" | {errors(cfg, '1') + errors(cfg, '16')} |")
print()
print("Medians over the rounds of the ratio of conn/s:")
print()
print("| ratio | c=1 | c=16 | goal |")
print("|---|---:|---:|---|")
labels["cbest"] = "the better C server floor"
def rate(cfg, c, r):
    if cfg == "cbest":
        return max((v for v in (rate("cfork", c, r), rate("cvfork", c, r)) if v), default=None)
    return rounds.get((cfg, c), {}).get(r)
def ratio(a, b, c):
    rs = [rate(a, c, r) / rate(b, c, r) for r in rounds.get((a, c), {}) if rate(a, c, r) and rate(b, c, r)]
    return f"{statistics.median(rs):.2f}" if rs else "FAILED"
for a, b, goal in (("oursx", "s6x", "≥ 2.5"), ("ours", "s6", "≥ 1.3"),
                   ("ours", "cbest", "≥ 0.97"), ("ours", "vfork", "≥ 0.9"), ("ours", "fork", ""),
                   ("ours", "unix", ""), ("oursx", "ours", "")):
    print(f"| {labels[a]} / {labels[b]} | {ratio(a, b, '1')} | {ratio(a, b, '16')} | {goal} |")
for cfg, why in failed.items():
    print(f"\nFAILED {labels[cfg]}: `{why.strip()[:300]}`")
EOF
}

# ---------------------------------------------------------------- start-up
# page_faults PROG ARGS...: mean page faults of one run (perf), or nothing.
page_faults() {
	rm -f "$WORK/perf.txt"
	# perf's exit status is the program's (100 on a usage path): ignore it.
	perf stat -x, -o "$WORK/perf.txt" -e page-faults -r 20 "$@" >/dev/null 2>&1
	awk -F, '$3 == "page-faults" {print $1}' "$WORK/perf.txt" 2>/dev/null
}

report_startup() {
	local cmds=() p cmd
	cmds+=("$TOOLS/handler-nolibc" "$TOOLS/handler-glibc")
	for p in $PROGRAMS; do cmds+=("$REL/$p"); done
	cmds+=("$REL/ipcapplyuidgid $TOOLS/handler-nolibc" "/usr/bin/s6-ipcserverd")
	hyperfine -N -i --warmup 100 --runs "$STARTUP_RUNS" --style none \
		--export-json "$WORK/startup.json" "${cmds[@]}" >/dev/null 2>&1 ||
		echo '{"results": []}' >"$WORK/startup.json"
	# The same programs under our own exec loop (vfork+exec, read, wait):
	# less harness overhead than hyperfine's.
	for cmd in "${cmds[@]}"; do
		# shellcheck disable=SC2086 # cmd is a program and its arguments
		echo "$cmd|$("$SPAWNLIMIT" vfork -a -c 1 -n "$STARTUP_RUNS" -t 30 $cmd 2>/dev/null)|$(page_faults $cmd)"
	done >"$WORK/startup-loop.txt"
	python3 - "$WORK/startup.json" "$WORK/startup-loop.txt" "$TOOLS/handler-" "$REL/" <<'EOF'
import json, re, sys
hyper = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
loop = {}
for line in open(sys.argv[2]):
    cmd, out, faults = line.rstrip("\n").split("|")
    m = re.search(r"p50_us=(\d+)", out)
    loop[cmd] = (int(m.group(1)) if m and "conns=0 " not in out else None, faults)
handler, rel = sys.argv[3], sys.argv[4]
nolibc, glibc = loop.get(handler + "nolibc", (None,))[0], loop.get(handler + "glibc", (None,))[0]
print("| program (invocation) | hyperfine median µs | exec loop p50 µs | loop p50 − no-libc handler's, µs | loop vs static glibc C | page faults |")
print("|---|---:|---:|---:|---:|---:|")
for cmd, (p50, faults) in loop.items():
    if cmd == handler + "glibc":
        name = "static C handler, glibc (`gcc -O2 -static`, writes a line)"
    elif cmd == handler + "nolibc":
        name = "static C handler, no libc (`-nostdlib`, 2 system calls)"
    elif cmd.startswith(rel):
        name = cmd[len(rel):].replace(handler + "nolibc", "handler")
        how = "exec chain into the no-libc handler" if " " in name else "usage error path"
        name = f"`{name}` ({how})"
    else:
        name = f"`{cmd}` (usage error path; s6, dynamic C, for context)"
    r = hyper.get(cmd)
    hf = f"{r['median'] * 1e6:.0f}" if r else "FAILED"
    if r and not set(r.get("exit_codes", [])) <= {0, 100}:
        hf += f" (exit {sorted(set(r['exit_codes']))})"
    if p50 is None:
        print(f"| {name} | {hf} | FAILED | | | {faults} |")
        continue
    extra = f"{p50 - nolibc}" if nolibc is not None else ""
    ratio = f"{p50 / glibc:.2f}x" if glibc else ""
    print(f"| {name} | {hf} | {p50} | {extra} | {ratio} | {faults} |")
EOF
}

# ---------------------------------------------------------------- sizes
report_sizes() {
	local p f
	echo "| file | bytes |"
	echo "|---|---:|"
	for p in $PROGRAMS; do
		f=$REL/$p
		[ -f "$f" ] && echo "| $p | $(stat -c %s "$f") |" || echo "| $p | FAILED (missing) |"
	done
	for f in /usr/bin/s6-ipcserver /usr/bin/s6-ipcserverd /usr/bin/s6-ipcserver-access \
		/usr/bin/s6-ipcserver-socketbinder /usr/bin/unixserver /usr/bin/cdb $(ldconfig -p | awk '/libs6\.so\.|libskarnet\.so\./ {print $NF}' | sort -u); do
		[ -f "$f" ] && echo "| $f (peer) | $(stat -c %s "$(readlink -f "$f")") |"
	done
	echo "| static C handler, glibc (for scale) | $(stat -c %s "$TOOLS/handler-glibc") |"
	echo "| static C handler, no libc (for scale) | $(stat -c %s "$TOOLS/handler-nolibc") |"
}

# ---------------------------------------------------------------- RSS
rss_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null; }

report_rss() {
	local cfg pid idle busy hwm s lg
	echo "| daemon | idle VmRSS kB | busy VmRSS kB (max sampled, loadgen c=16) | VmHWM kB |"
	echo "|---|---:|---:|---:|"
	for cfg in ours s6 unix; do
		pid=${PID[$cfg]:-}
		if [ -z "$pid" ] || [ ! -e "/proc/$pid/status" ]; then
			echo "| ${LABEL[$cfg]} | FAILED | | |"
			continue
		fi
		idle=$(rss_kb "$pid" VmRSS)
		"$LOADGEN" "$WORK/$cfg.sock" -c 16 -n "$N" -t 2 >/dev/null 2>&1 &
		lg=$!
		busy=0
		while kill -0 "$lg" 2>/dev/null; do
			s=$(rss_kb "$pid" VmRSS)
			[ -n "$s" ] && [ "$s" -gt "$busy" ] && busy=$s
			sleep 0.05
		done
		wait "$lg"
		hwm=$(rss_kb "$pid" VmHWM)
		echo "| ${LABEL[$cfg]} (pid's image: $(readlink "/proc/$pid/exe" | xargs basename)) | $idle | $busy | $hwm |"
	done
}

# ---------------------------------------------------------------- ipcrules 1M
# median of 3 wall-clock runs of a command, in seconds
time3() {
	local t0 t1 ts=()
	for _ in 1 2 3; do
		t0=$(date +%s%N)
		"$@" || return 1
		t1=$(date +%s%N)
		ts+=($(((t1 - t0) / 1000000)))
	done
	printf '%s\n' "${ts[@]}" | sort -n | sed -n 2p | awk '{printf "%.3f", $1 / 1000}'
}

report_rules() {
	local ours theirs same
	python3 - "$WORK" "$RULES" <<'EOF'
import sys
work, n = sys.argv[1], int(sys.argv[2])
with open(f"{work}/big.txt", "w") as rules, open(f"{work}/big.cdbmake", "wb") as make:
    for i in range(n):
        rules.write(f'{i}:allow,X="{i}"\n')
        key, data = str(i).encode(), b"+X=%d\0" % i
        make.write(b"+%d,%d:%s->%s\n" % (len(key), len(data), key, data))
    make.write(b"\n")
EOF
	ours=$(time3 sh -c "'$REL/ipcrules' '$WORK/big.cdb' '$WORK/big.tmp' <'$WORK/big.txt' 2>'$WORK/bigrules.log'") || ours=FAILED
	theirs=$(time3 sh -c "cdb -c -t '$WORK/tiny.tmp' '$WORK/tiny.cdb' <'$WORK/big.cdbmake'") || theirs=FAILED
	if [ "$ours" != FAILED ] && cmp -s "$WORK/big.cdb" "$WORK/tiny.cdb"; then
		same="byte-identical"
	elif [ "$ours" != FAILED ]; then
		same="differ ($(stat -c %s "$WORK/big.cdb") vs $(stat -c %s "$WORK/tiny.cdb") bytes)"
	else
		same="$(head -1 "$WORK/bigrules.log")"
	fi
	echo "| tool | median of 3, s |"
	echo "|---|---:|"
	echo "| \`ipcrules\` ($RULES rule lines \`N:allow,X=\"N\"\`; parses, fsyncs, renames) | $ours |"
	echo "| tinycdb \`cdb -c\` (the same records as \`+klen,dlen:key->data\`; no fsync) | $theirs |"
	echo
	echo "The two cdb files: $same."
	rm -f "$WORK"/big* "$WORK"/tiny*
}

# ---------------------------------------------------------------- main
want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

build
echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)," \
	"$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r);" \
	"$(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "Run: \`ROUNDS=$ROUNDS GLIBC_ROUNDS=$GLIBC_ROUNDS SECS=$SECS N=$N RULES=$RULES STARTUP_RUNS=$STARTUP_RUNS tools/bench.sh\`"
echo
if want rounds || want rss; then
	make_rules
	start_servers
fi
if want rounds; then
	say "interleaved rounds: {$CONFIGS} x c={1,16}, ${SECS}s or $N connections each"
	run_rounds "$ROUNDS" "$WORK/raw-nolibc.txt"
	if [ "$GLIBC_ROUNDS" -gt 0 ]; then
		use_handler glibc
		run_rounds "$GLIBC_ROUNDS" "$WORK/raw-glibc.txt"
		use_handler nolibc
	fi
	echo "### Connections, handler without libc (medians of $ROUNDS interleaved rounds)"
	echo
	report_rounds "$WORK/raw-nolibc.txt"
	echo
	if [ "$GLIBC_ROUNDS" -gt 0 ]; then
		echo "### Connections, static glibc handler (medians of $GLIBC_ROUNDS interleaved rounds)"
		echo
		report_rounds "$WORK/raw-glibc.txt"
		echo
	fi
fi
if want rss; then
	say "RSS"
	echo "### Daemon memory"
	echo
	report_rss
	echo
fi
if want startup; then
	say "start-up latency"
	echo "### Start-up latency ($STARTUP_RUNS runs each, median)"
	echo
	report_startup
	echo
fi
if want sizes; then
	echo "### Stripped sizes"
	echo
	report_sizes
	echo
fi
if want rules; then
	say "ipcrules on $RULES rules"
	echo "### ipcrules on $RULES rules vs tinycdb"
	echo
	report_rules
	echo
fi
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other processes on the machine skew all figures)."
