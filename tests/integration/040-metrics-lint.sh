#!/usr/bin/env bash
# Every service's /metrics follows Prometheus' naming and exposition rules: promtool (from
# Debian's prometheus package) lints each ops endpoint of the stack (counters end in _total,
# units are base units, HELP and TYPE present, no reserved or duplicate names). Run after a
# message has gone through, so that the labelled series exist too.
set -uo pipefail

: "${CHAT_STACK_ENV:?run through ctest}"
build=${CHAT_BUILD_DIR:?run through ctest}
set -a
# shellcheck disable=SC1090
. "$CHAT_STACK_ENV"
set +a
command -v promtool >/dev/null || { echo "FAIL - promtool is missing: run scripts/setup"; exit 1; }

# One message through gateway 0 and a history read, so that the send, delivery, store and
# fan-out series have samples.
(printf 'metrics lint %s\n' "$$"; sleep 1; printf '/history lobby\n'; sleep 1; printf '/quit\n') |
    "$build/tools/chat-cli/chat-cli" --url "${CHAT_GATEWAY_URLS%%,*}" --user "lint-$$" \
        --join lobby >/dev/null 2>&1

failed=0 checked=0
endpoints=(
    "message $CHAT_OPS_MESSAGE" "broadcast $CHAT_OPS_BROADCAST" "api $CHAT_OPS_API"
    "moderation $CHAT_OPS_MODERATION" "notify $CHAT_OPS_NOTIFY"
)
i=0
IFS=, read -ra gateways <<<"$CHAT_OPS_GATEWAYS"
for g in "${gateways[@]}"; do endpoints+=("gateway-$i $g"); i=$((i + 1)); done
for e in "${endpoints[@]}"; do
    read -r name url <<<"$e"
    if ! body=$(curl -sf --max-time 10 "$url/metrics"); then
        echo "FAIL - $name: GET $url/metrics failed"
        failed=$((failed + 1))
        continue
    fi
    families=$(grep -c '^# TYPE ' <<<"$body")
    if [ "$families" -lt 1 ]; then
        echo "FAIL - $name: only $families metric families at $url/metrics"
        failed=$((failed + 1))
        continue
    fi
    if out=$(promtool check metrics <<<"$body" 2>&1); then
        echo "ok   - $name: $families metric families, promtool check metrics clean"
    else
        echo "FAIL - $name: promtool check metrics:"
        sed 's/^/         /' <<<"$out"
        failed=$((failed + 1))
    fi
    checked=$((checked + 1))
done
echo "$checked endpoints linted, $failed failed"
[ "$failed" -eq 0 ] && [ "$checked" -eq "${#endpoints[@]}" ]
