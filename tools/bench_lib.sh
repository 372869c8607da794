# tools/bench_lib.sh: what the preforking benchmarks share, sourced by
# tools/bench_prefork.sh and tools/bench_ipchandle.sh once they have set
# BENCH (their name, for messages and the temporary directory). It makes
# WORK, the temporary directory where each configuration's socket
# (WORK/CONFIG.sock) and log go, removed at exit with every server left
# in PID (CONFIG -> pid), and defines:
#
#   say MESSAGE...          progress, on stderr
#   start_servers           starts each of CONFIGS (the script's
#                           command_of CONFIG gives the command line),
#                           environment reduced to PATH, its pid in
#                           PID[CONFIG], and waits for the sockets
#   measure CONFIG C        loadgen ($LOADGEN) at concurrency C for SECS
#                           seconds: "conn_per_s p50 p99 cpu", cpu the
#                           servers' CPU time per connection in hundredths
#                           of µs, or FAILED
#   run_rounds              ROUNDS rounds: each of CONFIGS measured at
#                           concurrency 1 then 16, then, if the script
#                           defines extra CONFIG, what it prints; each a
#                           line "CONFIG C FIGURES" or "CONFIG EXTRA..."
#                           in RAW (WORK/raw)
#   rss_kb PID              a process's resident memory
#   memory_table            each of CONFIGS's resident memory, parent and
#                           one child (or what the script's child_rss
#                           CONFIG PID says, if it defines one), as a
#                           Markdown table, labelled by LABEL[CONFIG]
# shellcheck shell=bash

say() { echo "bench_$BENCH: $*" >&2; }

WORK=$(mktemp -d "/tmp/ucspi-bench-$BENCH.XXXXXX") || exit 111
chmod 0755 "$WORK"
declare -A PID
cleanup() {
	for c in "${!PID[@]}"; do kill "${PID[$c]}" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT

start_servers() {
	local c cmd
	for c in $CONFIGS; do
		cmd=$(command_of "$c")
		set -- $cmd
		if [ ! -x "$1" ]; then
			say "$c: $1 is missing"
			continue
		fi
		(cd "$WORK" && exec env -i PATH="$PATH" $cmd) 2>"$WORK/$c.log" &
		PID[$c]=$!
	done
	for c in "${!PID[@]}"; do
		for _ in $(seq 100); do
			[ -S "$WORK/$c.sock" ] && break
			sleep 0.05
		done
	done
	# ipcperl children load Perl: let them.
	sleep 1
}

# cpu_ticks PID: utime+stime of PID and its children now running, plus the
# children it has waited for.
cpu_ticks() {
	python3 - "$1" <<-'EOF'
		import os, sys
		top = int(sys.argv[1])
		def fields(pid):
		    with open(f"/proc/{pid}/stat") as f:
		        return f.read().rsplit(")", 1)[1].split()
		total = 0
		try:
		    f = fields(top)
		    total += sum(int(x) for x in f[11:15])
		except OSError:
		    pass
		for d in os.listdir("/proc"):
		    if d.isdigit():
		        try:
		            f = fields(int(d))
		        except OSError:
		            continue
		        if int(f[1]) == top:
		            total += int(f[11]) + int(f[12])
		print(total)
	EOF
}

# measure CONFIG C: "conn_per_s p50 p99 cpu_us_per_conn", or FAILED.
measure() {
	local c=$1 k=$2 pid=${PID[$1]:-} before after line conns
	if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
		echo FAILED
		return
	fi
	before=$(cpu_ticks "$pid")
	line=$("$LOADGEN" "$WORK/$c.sock" -c "$k" -t "$SECS" -n 1000000)
	after=$(cpu_ticks "$pid")
	conns=$(sed -n 's/.*conns=\([0-9]*\) .*/\1/p' <<<"$line")
	if [ -z "$conns" ] || [ "$conns" = 0 ] || ! grep -q "errors=0" <<<"$line"; then
		say "$c c=$k: $line"
		echo FAILED
		return
	fi
	local tick_us=$((1000000 / $(getconf CLK_TCK)))
	echo "$(sed -n 's/.*conn_per_s=\([0-9.]*\) p50_us=\([0-9]*\) p99_us=\([0-9]*\).*/\1 \2 \3/p' <<<"$line") $(((after - before) * tick_us * 100 / conns))"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo "?"; }

memory_table() {
	local c pid child
	echo "| server | parent RSS kB | one child's RSS kB |"
	echo "|---|---:|---:|"
	for c in $CONFIGS; do
		pid=${PID[$c]:-}
		if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
			echo "| ${LABEL[$c]} | FAILED | |"
			continue
		fi
		if declare -F child_rss >/dev/null; then
			child=$(child_rss "$c" "$pid")
		else
			child=$(rss_kb "$(pgrep -P "$pid" | head -1)")
		fi
		echo "| ${LABEL[$c]} | $(rss_kb "$pid") | $child |"
	done
}

RAW=$WORK/raw
run_rounds() {
	local r c k
	for r in $(seq "$ROUNDS"); do
		say "round $r/$ROUNDS"
		for c in $CONFIGS; do
			for k in 1 16; do
				echo "$c $k $(measure "$c" "$k")" >>"$RAW"
			done
			if declare -F extra >/dev/null; then
				echo "$c $(extra "$c")" >>"$RAW"
			fi
		done
	done
}
