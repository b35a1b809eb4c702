#!/usr/bin/env bash
# Unit test of the image's entrypoint (tools/entrypoint/chat.c), without the image: a build of
# it whose service directory is LIBDIR, where this test puts stand-in services that print
# their argv. Checks the service list, the exit statuses (2 for a usage error, 127 for a
# missing binary, 126 for one that cannot run) and that arguments pass through unchanged
# with the service seeing itself as chat-<service>.
# usage: tests/deploy/entrypoint.sh CHAT_BINARY LIBDIR
# shellcheck disable=SC2016 # the single-quoted $ are for the stand-ins, not this shell
set -euo pipefail

chat=$1
libdir=$2
services=(gateway message broadcast moderation notify api admin)
failures=0
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    failures=$((failures + 1))
}

rm -rf "$libdir"
mkdir -p "$libdir"
for svc in "${services[@]}"; do
    printf '#!/bin/sh\nprintf "[%%s]" "$0" "$@"\n' >"$libdir/chat-$svc"
    chmod 0755 "$libdir/chat-$svc"
done

# run ARGS...: sets rc, out (stdout) and err (stderr) of `chat ARGS...`.
run() {
    rc=0
    out=$("$chat" "$@" 2>"$libdir/stderr") || rc=$?
    err=$(cat "$libdir/stderr")
}

run --help
[ "$rc" -eq 0 ] || fail "chat --help exited $rc"
for svc in "${services[@]}"; do
    grep -q "^  $svc " <<<"$out" || fail "chat --help does not list $svc"
done
run
if ! { [ "$rc" -eq 2 ] && grep -q "^  gateway " <<<"$err"; }; then
    fail "chat without arguments: exit $rc (want 2 and the list on stderr)"
fi
run nosuch --help
if ! { [ "$rc" -eq 2 ] && grep -q "unknown service 'nosuch'" <<<"$err"; }; then
    fail "chat nosuch: exit $rc, '$err'"
fi
run chat-gateway
[ "$rc" -eq 2 ] || fail "chat chat-gateway: exit $rc (want 2: services go without the prefix)"

for svc in "${services[@]}"; do
    run "$svc" --help "two words" "" '$HOME'
    want="[$libdir/chat-$svc][--help][two words][]["'$HOME'"]"
    if ! { [ "$rc" -eq 0 ] && [ "$out" = "$want" ]; }; then
        fail "chat $svc: exit $rc, argv $out (want $want)"
    fi
done
# A shell script's $0 is its path; the argv[0] chat passes shows with bash as the service:
# `bash -c CMD` sets $0 to its own argv[0].
ln -sf "$(command -v bash)" "$libdir/chat-notify"
run notify -c 'printf %s "$0"'
[ "$out" = "chat-notify" ] || fail "the service's argv[0] is '$out', not chat-notify"

rm "$libdir/chat-api"
run api
if ! { [ "$rc" -eq 127 ] && grep -q "cannot run $libdir/chat-api" <<<"$err"; }; then
    fail "missing chat-api: exit $rc, '$err'"
fi
chmod 0644 "$libdir/chat-admin"
run admin
[ "$rc" -eq 126 ] || fail "non-executable chat-admin: exit $rc (want 126)"

rm -rf "$libdir"
[ "$failures" -eq 0 ] || exit 1
echo "entrypoint: ok"
