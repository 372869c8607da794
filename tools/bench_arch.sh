#!/bin/bash
# tools/bench_arch.sh: every program's size on each architecture we ship,
# and what starting one costs there, against a static C program.
#
# Prints Markdown tables (those of doc/performance.md) on stdout:
#   1. the stripped size in bytes of each program built with
#      `cargo build --release --target T` as a user would (rust-lld for the
#      cross targets: .cargo/config.toml), per target, and the largest;
#   2. per architecture, start-up of `ipccat` on its usage error path (one
#      write, exit 100) against a static glibc C program that writes a line
#      (tools/handler.c built with that architecture's gcc): exec-to-exit
#      p50 with tools/spawnlimit (vfork+exec+wait, RUNS runs), the ratio,
#      and the system calls each makes, counted by qemu-user's -strace (for
#      x86_64 too, for a like count). Under qemu the emulator's own start
#      (a few ms) dominates exec-to-exit: the ratio compares how much work
#      each program does, not what it costs on hardware.
#
# Needs cargo with the targets added (rustup target add ...), gcc and the
# cross gcc of each target (gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf,
# gcc-riscv64-linux-gnu), qemu-user-static registered with binfmt_misc.
# A column that cannot be built or run says FAILED. Knobs: RUNS (300),
# TARGETS. Progress goes to stderr.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-300}
TOOLS=$ROOT/target/tools
TARGETS=${TARGETS:-"x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf riscv64gc-unknown-linux-gnu"}
PROGRAMS=$(awk '!/^#/ && NF && $3 != "optional" {print $1}' "$ROOT/package/modes")

say() { echo "bench_arch: $*" >&2; }

# gcc_for TARGET, qemu_for TARGET, short TARGET
gcc_for() {
	case $1 in
	x86_64-*) echo gcc ;;
	aarch64-*) echo aarch64-linux-gnu-gcc ;;
	armv7-*) echo arm-linux-gnueabihf-gcc ;;
	riscv64*) echo riscv64-linux-gnu-gcc ;;
	esac
}
qemu_for() {
	case $1 in
	x86_64-*) echo qemu-x86_64-static ;;
	aarch64-*) echo qemu-aarch64-static ;;
	armv7-*) echo qemu-arm-static ;;
	riscv64*) echo qemu-riscv64-static ;;
	esac
}
short() { echo "${1%%-*}"; }

mkdir -p "$TOOLS" || exit 111
gcc -O2 -o "$TOOLS/spawnlimit" "$ROOT/tools/spawnlimit/spawnlimit.c" || exit 111
for t in $TARGETS; do
	say "cargo build --release --target $t"
	(cd "$ROOT" && cargo build --release -q --target "$t") >&2 || say "warning: the build for $t failed"
	"$(gcc_for "$t")" -O2 -static -o "$TOOLS/handler-glibc-$t" "$ROOT/tools/handler.c" 2>/dev/null ||
		say "warning: no static C program for $t"
done

# 1. sizes
printf '| program |'
for t in $TARGETS; do printf ' %s |' "$(short "$t")"; done
printf '\n|---|'
for _ in $TARGETS; do printf -- '---:|'; done
echo
declare -A largest
for p in $PROGRAMS; do
	printf '| %s |' "$p"
	for t in $TARGETS; do
		f=$ROOT/target/$t/release/$p
		if [ -f "$f" ]; then
			s=$(stat -c %s "$f")
			printf ' %s |' "$s"
			[ "$s" -gt "${largest[$t]:-0}" ] && largest[$t]=$s
		else
			printf ' FAILED |'
		fi
	done
	echo
done
printf '| **largest** (goal: at most 32768) |'
for t in $TARGETS; do printf ' **%s** |' "${largest[$t]:-FAILED}"; done
printf '\n\n'

# 2. start-up
# p50 PROG: exec-to-exit median in µs over RUNS runs, any exit status.
p50() {
	"$TOOLS/spawnlimit" vfork -a -c 1 -n "$RUNS" -t 60 "$1" 2>/dev/null |
		sed -n 's/.*p50_us=\([0-9]*\).*/\1/p'
}
# syscalls QEMU PROG: how many system calls PROG makes, from exec to exit.
syscalls() {
	"$1" -strace "$2" 2>&1 >/dev/null | grep -cE '^[0-9]+ [a-z_0-9]+\('
}
echo "| architecture | ipccat start-up p50 µs | static glibc C p50 µs | ratio | ipccat system calls | static glibc C system calls |"
echo "|---|---:|---:|---:|---:|---:|"
for t in $TARGETS; do
	ours=$ROOT/target/$t/release/ipccat
	c=$TOOLS/handler-glibc-$t
	if [ ! -x "$ours" ] || [ ! -x "$c" ]; then
		echo "| $(short "$t") | FAILED | | | | |"
		continue
	fi
	say "start-up on $t"
	a=$(p50 "$ours")
	b=$(p50 "$c")
	ratio=
	[ -n "$a" ] && [ -n "$b" ] && ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2fx", a / b}')
	q=$(qemu_for "$t")
	echo "| $(short "$t")$([ "$t" != x86_64-unknown-linux-gnu ] && echo " (qemu-user)") | ${a:-FAILED} | ${b:-FAILED} | $ratio | $(syscalls "$q" "$ours") | $(syscalls "$q" "$c") |"
done
