#!/bin/bash
# tools/bench_exec.sh: running /bin/true as root for an unprivileged
# caller, ours against every alternative, in one run.
#
# Prints a Markdown table (the one in doc/performance.md) on stdout: the
# median latency of each way, and how much it adds to a baseline that runs
# /bin/true directly. The caller is uid 65534 (nobody); every server runs
# as root and lets that caller run /bin/true as root:
#
#   baseline            /bin/true
#   ours, ipcrun        ipcrun /bin/true (ipcrun, ipcclient, ipccommand;
#                       ipcserver + ipcexec)
#   ours, ipcrun -F     the same with descriptors passed and the exit status back
#   ours, ipcclient     ipcclient S ipccommand 0 /bin/true (the original's
#                       invocation, without ipcrun)
#   ours, ipcclient -F  the same with -F
#   original            ipcclient -l0 S ipccommand 0 /bin/true against the
#                       original ipcserver + ipcexec (what its ipcrun script
#                       executes, without the sh)
#   s6-sudo             s6-sudo S /bin/true against s6-ipcserver +
#                       s6-ipcserver-access + s6-sudod
#   sudo -n             sudo -n /bin/true with a NOPASSWD rule
#
# Each round runs hyperfine once over all the ways (RUNS runs each, after a
# warm-up); the table gives the median of the rounds' medians. A way that
# cannot run (peer not installed) says so in its row. A second table gives
# the sizes of our programs (stripped, static) and of the peers' (dynamic:
# their libraries come on top).
#
# Needs root, hyperfine and python3. The original is taken from
# UCSPI_IPC_ORIGINAL (default: ../shared/reference/ucspi-ipc-0.67/bin
# beside the clone). sudo's rule goes into /etc/sudoers.d/ for the run and
# is removed at exit. Environment knobs: ROUNDS (default 5), RUNS (default
# 300), NO_BUILD=1 to skip `cargo build --release`. Progress goes to stderr.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-300}
REL=$ROOT/target/release
ORIG=${UCSPI_IPC_ORIGINAL:-$ROOT/../shared/reference/ucspi-ipc-0.67/bin}
CALLER=65534
SUDOERS=/etc/sudoers.d/ucspi-ipc-bench-exec

say() { echo "bench_exec: $*" >&2; }
die() { say "fatal: $*"; exit 111; }

[ "$(id -u)" = 0 ] || { say "needs root (servers run as root for an unprivileged caller)"; exit 100; }
command -v hyperfine >/dev/null || die "hyperfine is not installed"
command -v python3 >/dev/null || die "python3 is not installed"

WORK=$(mktemp -d /tmp/ucspi-bench-exec.XXXXXX) || exit 111
chmod 0755 "$WORK"
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	rm -f "$SUDOERS"
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${NO_BUILD:-0}" != 1 ]; then
	say "cargo build --release"
	(cd "$ROOT" && cargo build --release -q) >&2 || die "cargo build failed"
fi

# Each way: a label and a command line (absolute paths: no PATH search
# anywhere, so that no way pays for a different PATH).
LABELS=()
COMMANDS=()
MISSING=()
way() { LABELS+=("$1"); COMMANDS+=("$2"); }
missing() { MISSING+=("$1: $2"); }

# Starts a server in the background with stderr (its log) discarded and
# waits until its socket exists.
serve() {
	local socket=$1
	shift
	(umask 0; exec "$@" </dev/null >/dev/null 2>&1) &
	PIDS+=($!)
	for _ in $(seq 100); do
		[ -S "$socket" ] && return 0
		sleep 0.05
	done
	return 1
}

# The same rule for both ipcexecs: nobody may run /bin/true as root.
printf '%s\n' "$CALLER,0./bin/true:allow" ":deny" >"$WORK/exec-rules"

way baseline "/bin/true"

mkdir "$WORK/ours"
"$REL/ipcexecrules" "$WORK/ours/rules.cdb" "$WORK/ours/rules.tmp" <"$WORK/exec-rules" || die "ipcexecrules failed"
if serve "$WORK/ours/s" "$REL/ipcserver" "$WORK/ours/s" "$REL/ipcexec" "$WORK/ours/rules.cdb"; then
	# For ipcrun; inherited by every way, which costs the others nothing.
	export IPCEXEC_SOCKET=$WORK/ours/s
	way "ours, ipcrun" "$REL/ipcrun /bin/true"
	way "ours, ipcrun -F" "$REL/ipcrun -F /bin/true"
	way "ours, ipcclient + ipccommand" "$REL/ipcclient $WORK/ours/s $REL/ipccommand 0 /bin/true"
	way "ours, ipcclient + ipccommand -F" "$REL/ipcclient $WORK/ours/s $REL/ipccommand -F 0 /bin/true"
else
	die "our server did not start"
fi

if [ -x "$ORIG/ipcexec" ]; then
	mkdir "$WORK/orig"
	"$ORIG/ipcexecrules" "$WORK/orig/rules.cdb" "$WORK/orig/rules.tmp" <"$WORK/exec-rules" || die "the original's ipcexecrules failed"
	if serve "$WORK/orig/s" "$ORIG/ipcserver" "$WORK/orig/s" "$ORIG/ipcexec" "$WORK/orig/rules.cdb"; then
		way "original ucspi-ipc 0.67" "$ORIG/ipcclient -l0 $WORK/orig/s $ORIG/ipccommand 0 /bin/true"
	else
		missing "original ucspi-ipc 0.67" "its server did not start"
	fi
else
	missing "original ucspi-ipc 0.67" "not found in $ORIG (set UCSPI_IPC_ORIGINAL)"
fi

if command -v s6-sudo >/dev/null && command -v s6-sudod >/dev/null; then
	mkdir -p "$WORK/s6/rules/uid/$CALLER" "$WORK/s6/rules/uid/default"
	touch "$WORK/s6/rules/uid/$CALLER/allow" "$WORK/s6/rules/uid/default/deny"
	if serve "$WORK/s6/s" "$(command -v s6-ipcserver)" "$WORK/s6/s" \
		"$(command -v s6-ipcserver-access)" -i "$WORK/s6/rules" "$(command -v s6-sudod)"; then
		way "s6-sudo" "$(command -v s6-sudo) $WORK/s6/s /bin/true"
	else
		missing s6-sudo "s6-ipcserver did not start"
	fi
else
	missing s6-sudo "s6 is not installed"
fi

if command -v sudo >/dev/null; then
	echo "#$CALLER ALL=(root) NOPASSWD: /bin/true" >"$SUDOERS" && chmod 0440 "$SUDOERS"
	if setpriv --reuid=$CALLER --regid=$CALLER --clear-groups sudo -n /bin/true 2>/dev/null; then
		way "sudo -n" "$(command -v sudo) -n /bin/true"
	else
		missing "sudo -n" "sudo refused the NOPASSWD rule"
	fi
else
	missing "sudo -n" "sudo is not installed"
fi

# Every way must work as the caller before it is timed.
for i in "${!COMMANDS[@]}"; do
	# shellcheck disable=SC2086 # a command line, split on purpose
	if ! out=$(setpriv --reuid=$CALLER --regid=$CALLER --clear-groups ${COMMANDS[$i]} 2>&1 </dev/null); then
		die "${LABELS[$i]} does not work: ${COMMANDS[$i]}: $out"
	fi
done

chown "$CALLER" "$WORK"
for round in $(seq "$ROUNDS"); do
	say "round $round of $ROUNDS"
	args=()
	for i in "${!COMMANDS[@]}"; do args+=(-n "${LABELS[$i]}" "${COMMANDS[$i]}"); done
	setpriv --reuid=$CALLER --regid=$CALLER --clear-groups \
		hyperfine -N --warmup 20 --runs "$RUNS" --style none \
		--export-json "$WORK/round-$round.json" "${args[@]}" >/dev/null 2>&1 \
		|| die "hyperfine failed in round $round"
done

python3 - "$WORK" "$ROUNDS" "$RUNS" "${MISSING[@]}" <<'EOF'
import json, statistics, sys
work, rounds, runs, missing = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
medians = {}
for r in range(1, rounds + 1):
    for result in json.load(open(f"{work}/round-{r}.json"))["results"]:
        medians.setdefault(result["command"], []).append(result["median"] * 1e3)
median = {name: statistics.median(ms) for name, ms in medians.items()}
base = median["baseline"]
ours = median.get("ours, ipcrun")
print(f"### /bin/true as root for uid 65534 (median of {rounds} rounds of {runs} runs each)")
print()
print("| way | median ms | above the baseline, ms | added cost vs ours (ipcrun) |")
print("|---|---:|---:|---:|")
for name, ms in median.items():
    added = ms - base
    ratio = "" if name == "baseline" or ours is None else f"{added / (ours - base):.2f}x"
    print(f"| {name} | {ms:.3f} | {'' if name == 'baseline' else f'{added:+.3f}'} | {ratio} |")
for line in missing:
    name, why = line.split(": ", 1)
    print(f"| {name} | skipped: {why} | | |")
EOF

echo
echo "### Sizes (bytes; ours static and stripped, the peers dynamic)"
echo
echo "| file | bytes |"
echo "|---|---:|"
for p in ipcexec ipccommand ipcdo ipcrun ipcexecrules ipcexecrulescheck ipcexec-config; do
	echo "| $p | $(stat -c %s "$REL/$p") |"
done
for f in "$ORIG/ipcexec" "$ORIG/ipccommand" "$(command -v s6-sudo)" "$(command -v s6-sudoc)" \
	"$(command -v s6-sudod)" "$(command -v sudo)"; do
	if [ -f "$f" ]; then echo "| $f (peer) | $(stat -c %s "$(readlink -f "$f")") |"; fi
done
