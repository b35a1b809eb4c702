#!/usr/bin/env bash
# scripts/up failure reporting: when a part cannot start (its port is taken, Java is missing,
# FerretDB crashes), up exits non-zero, names the part (and its log file when there is
# one), and stops every part it had started, leaving no process behind. Options outside the
# port layout are refused before anything starts.
set -uo pipefail

src=${CHAT_SOURCE_DIR:?run through ctest}
build=${CHAT_BUILD_DIR:?run through ctest}
# shellcheck source=scripts/layout.sh
. "$src/scripts/layout.sh" # CHAT_LAYOUT_SPAN, the number of ports a stack takes
work=$(mktemp -d "${TMPDIR:-/tmp}/chat-up-failures.XXXXXX")
holder=""
failures=0

cleanup() {
    [ -n "$holder" ] && kill "$holder" 2>/dev/null
    for d in "$work"/state-*; do
        [ -d "$d" ] && "$src/scripts/down" --state-dir "$d" >/dev/null 2>&1
    done
    rm -rf "$work"
}
trap cleanup EXIT

check() {
    if eval "$2"; then
        echo "ok   - $1"
    else
        echo "FAIL - $1"
        failures=$((failures + 1))
    fi
}

# free_base: a port base with the stack's span of ports free.
free_base() {
    local base p
    while :; do
        base=$((10000 + (RANDOM % 100) * 100)) # below the ephemeral range, apart from up's auto
        for ((p = base; p < base + CHAT_LAYOUT_SPAN; p++)); do
            ss -Hltn "sport = :$p" | grep . >/dev/null && continue 2
        done
        echo "$base"
        return
    done
}

# no_process_left DIR: nothing of that state dir runs (pid files gone or dead, and no
# process mentions the dir on its command line).
no_process_left() {
    local pf
    for pf in "$1"/pids/*.pid; do
        [ -f "$pf" ] && kill -0 "$(cat "$pf")" 2>/dev/null && return 1
    done
    ! pgrep -f -- "$1/" >/dev/null
}

# run_up NAME [ENV...]: runs scripts/up (infrastructure only) into state-NAME, capturing
# its output and exit status.
run_up() {
    local name=$1
    shift
    state="$work/state-$name"
    out="$work/$name.out"
    env "$@" "$src/scripts/up" --state-dir "$state" --build-dir "$build" --no-build \
        --infra-only --port-base "$base" >"$out" 2>&1
    status=$?
}

# 1. Kafka's port is taken: Redis and FerretDB were started first and must be stopped.
base=$(free_base)
/usr/bin/python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $base)); s.listen(1); time.sleep(600)" &
holder=$!
for _ in $(seq 50); do ss -Hltn "sport = :$base" | grep . >/dev/null && break; sleep 0.1; done
run_up port-in-use
check "port in use: up fails" '[ $status -ne 0 ]'
check "port in use: names the part and the port" "grep -q 'kafka: port $base is already in use' '$out'"
check "port in use: stops what it started" "grep -q 'stopping what this run started: redis ferretdb' '$out'"
check "port in use: no process left" "no_process_left '$state'"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
holder=""

# 2. No Java runtime.
base=$(free_base)
run_up no-java JAVA=/nonexistent/java
check "no java: up fails" '[ $status -ne 0 ]'
check "no java: names kafka and Java" "grep -q \"kafka: Java runtime '/nonexistent/java' not found\" '$out'"
check "no java: no process left" "no_process_left '$state'"

# 3. FerretDB crashes at start: up names it and its log file.
base=$(free_base)
fake="$work/ferretdb-crashing"
printf '#!/bin/sh\necho "panic: simulated crash" >&2\nexit 3\n' >"$fake"
chmod +x "$fake"
run_up ferretdb-crash CHAT_FERRETDB_BIN="$fake"
check "ferretdb crash: up fails" '[ $status -ne 0 ]'
check "ferretdb crash: names the part" "grep -q 'ferretdb: exited during start-up' '$out'"
check "ferretdb crash: names its log file" "grep -q 'see $state/logs/ferretdb.log' '$out'"
check "ferretdb crash: shows the log" "grep -q 'simulated crash' '$out'"
check "ferretdb crash: no process left" "no_process_left '$state'"

# 4. Options outside the layout: more gateways than it has ports for (gateway 10's ops port
# would be the message service's), a port base whose last port would pass 65535 (the layout
# takes 50 ports: 65486 is the last base), a Kafka cluster of another size than 1 or 3. Refused
# before anything is done, the state dir included.
n=0
for args in "--gateways 11" "--gateways 0" "--gateways 2x" "--port-base 65487" "--port-base 0"; do
    n=$((n + 1))
    state="$work/state-bad-option-$n"
    out="$work/bad-option-$n.out"
    read -ra words <<<"$args"
    "$src/scripts/up" --state-dir "$state" --build-dir "$build" --no-build "${words[@]}" >"$out" 2>&1
    status=$?
    check "$args: up fails" '[ $status -ne 0 ]'
    check "$args: says what is allowed" "grep -q 'error: ${words[0]} must be .*whole number from 1 to' '$out'"
    check "$args: does nothing" "[ ! -e '$state' ]"
done
# A Kafka cluster of 1 or 3 brokers only (up --kafka-brokers).
for args in "--kafka-brokers 2" "--kafka-brokers 0" "--kafka-brokers x"; do
    n=$((n + 1))
    state="$work/state-bad-option-$n"
    out="$work/bad-option-$n.out"
    read -ra words <<<"$args"
    "$src/scripts/up" --state-dir "$state" --build-dir "$build" --no-build "${words[@]}" >"$out" 2>&1
    status=$?
    check "$args: up fails" '[ $status -ne 0 ]'
    check "$args: says what is allowed" "grep -q 'error: --kafka-brokers must be 1 or 3' '$out'"
    check "$args: does nothing" "[ ! -e '$state' ]"
done

if [ $failures -ne 0 ]; then
    echo "$failures check(s) failed; outputs:"
    for f in "$work"/*.out; do echo "== $f"; cat "$f"; done
    exit 1
fi
