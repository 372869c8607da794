# tools/bench_lib.sh: what the preforking benchmarks share (sourced by
# tools/bench_prefork.sh and tools/bench_ipchandle.sh, after they define
# say, command_of CONFIG (the server's command line) and WORK (where each
# CONFIG's socket, WORK/CONFIG.sock, and log go), and set CONFIGS, SECS,
# LOADGEN and an associative array PID).
#
#   start_servers           starts each of CONFIGS, environment reduced to
#                           PATH, its pid in PID[CONFIG], and waits for the
#                           sockets
#   measure CONFIG C        loadgen at concurrency C for SECS seconds:
#                           "conn_per_s p50 p99 cpu_us_per_conn*100", or FAILED
#   rss_kb PID              a process's resident memory
# shellcheck shell=bash

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

