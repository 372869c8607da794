#!/usr/bin/env bash
# tools/demo.sh: build the suite, then show it working end to end.
#
#   1. cargo build --release
#   2. compile an access-rules file with ipcrules, show two verdicts with
#      ipcrulescheck
#   3. start ipcserver with -1 (readiness line), -v (status lines) and
#      -x rules.cdb on a socket in a temporary directory
#   4. talk to it with ipcclient (the handler reads descriptor 6) and ipccat
#   5. stop the server by its pid and remove the temporary directory
#
# Exits 0 when every step did what it should, non-zero otherwise.
set -eu

cd "$(dirname "$0")/.."
cargo build --release
bin=$PWD/target/release

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ipcdemo.XXXXXX")
server_pid=

cleanup() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    echo "demo: FAILED: $*" >&2
    if [ -s "$tmp/server.log" ]; then
        echo "demo: server log:" >&2
        sed 's/^/    /' "$tmp/server.log" >&2
    fi
    exit 1
}

# The demo's own uid is allowed; one other uid is denied, to show a deny
# verdict with ipcrulescheck.
me=$(id -u)
denied=$((me + 1))

echo "== rules"
cat >"$tmp/rules" <<RULES
# uid $denied may not connect; everyone else is greeted.
$denied:deny
:allow,GREETING="hello"
RULES
sed 's/^/    /' "$tmp/rules"
"$bin/ipcrules" "$tmp/rules.cdb" "$tmp/rules.tmp" <"$tmp/rules" \
    || fail "ipcrules could not compile the rules"

echo "== ipcrulescheck for uid $me"
check_me=$(IPCREMOTEEUID=$me IPCREMOTEEGID=$(id -g) "$bin/ipcrulescheck" "$tmp/rules.cdb") \
    || fail "ipcrulescheck failed"
printf '%s\n' "$check_me" | sed 's/^/    /'
case $check_me in
    *"allow connection"*) ;;
    *) fail "expected 'allow connection' for uid $me" ;;
esac

echo "== ipcrulescheck for uid $denied"
check_denied=$(IPCREMOTEEUID=$denied "$bin/ipcrulescheck" "$tmp/rules.cdb") \
    || fail "ipcrulescheck failed"
printf '%s\n' "$check_denied" | sed 's/^/    /'
case $check_denied in
    *"deny connection"*) ;;
    *) fail "expected 'deny connection' for uid $denied" ;;
esac

echo "== server"
sock=$tmp/greeter.sock
mkfifo "$tmp/ready"
# shellcheck disable=SC2016 # $GREETING and $IPCREMOTEEUID are the handler's
"$bin/ipcserver" -1 -v -x "$tmp/rules.cdb" "$sock" \
    sh -c 'echo "$GREETING from server; you are uid $IPCREMOTEEUID"' \
    >"$tmp/ready" 2>"$tmp/server.log" </dev/null &
server_pid=$!

# With -1 the server writes the socket's path and a newline once it
# accepts connections, then closes the pipe. End of file first means it died.
ready=
read -r -t 10 ready <"$tmp/ready" || fail "the server did not report readiness"
[ "$ready" = "$sock" ] || fail "readiness line was '$ready', expected '$sock'"
echo "    ready: $ready (pid $server_pid)"

expected="hello from server; you are uid $me"

echo "== ipcclient"
# shellcheck disable=SC2016 # the handler reads the connection on fd 6
got=$(timeout 10 "$bin/ipcclient" "$sock" sh -c 'cat <&6') \
    || fail "ipcclient exited $?"
echo "    client got: $got"
[ "$got" = "$expected" ] || fail "ipcclient got '$got', expected '$expected'"

echo "== ipccat"
got=$(timeout 10 "$bin/ipccat" "$sock") || fail "ipccat exited $?"
echo "    ipccat got: $got"
[ "$got" = "$expected" ] || fail "ipccat got '$got', expected '$expected'"

echo "== stopping the server (SIGTERM to pid $server_pid)"
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
echo "    server log:"
sed 's/^/    /' "$tmp/server.log"
# ipcserverd dies of SIGTERM (128+15) or exits 0: either is a clean stop.
case $status in
    0 | 143) ;;
    *) fail "server ended with status $status" ;;
esac

echo "demo: OK"
