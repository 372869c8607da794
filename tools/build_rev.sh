# tools/build_rev.sh: sourced by the scripts that measure another
# revision against the working tree (compare_startup.sh,
# bench_peer_facts.sh), once they have defined say. build_both ROOT REV
# OLD builds the working tree (cargo build --release) and REV, exported
# with git archive into OLD/src and built there with OLD/target as its
# target directory; exits 111 if either fails.
# shellcheck shell=bash

build_both() {
	say "cargo build --release (working tree)"
	(cd "$1" && cargo build --release -q) >&2 || exit 111
	say "cargo build --release ($2, in $3)"
	rm -rf "$3/src" && mkdir -p "$3/src" || exit 111
	git -C "$1" archive "$2" | tar -x -C "$3/src" || exit 111
	(cd "$3/src" && cargo build --release -q --target-dir "$3/target") >&2 || exit 111
}
