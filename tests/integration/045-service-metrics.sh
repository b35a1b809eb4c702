#!/usr/bin/env bash
# The metrics every service exposes (docs/metrics.md, "Every service") are there with sane
# values, and move with traffic: the process metrics, chat_build_info naming the service,
# MongoDB and Redis op latency with every label value present before use; one message and one
# server API call later, the message service has timed its insert and Redis round trips and
# counted the message for its tenant, and the api has counted the call for the tenant.
set -uo pipefail

: "${CHAT_STACK_ENV:?run through ctest}"
build=${CHAT_BUILD_DIR:?run through ctest}
set -a
# shellcheck disable=SC1090
. "$CHAT_STACK_ENV"
set +a

failed=0
fail() { echo "FAIL - $*"; failed=$((failed + 1)); }

# The value of the sample whose name and labels are exactly $2 in the text $1, or "" if none.
value() { awk -v s="$2" '$1 == s { print $2; exit }' <<<"$1"; }

# gt VALUE MIN: VALUE is a number above MIN.
gt() { [ -n "$1" ] && awk -v v="$1" -v m="$2" 'BEGIN { exit !(v + 0 > m + 0) }'; }

now=$(date +%s)
endpoints=(
    "message $CHAT_OPS_MESSAGE" "broadcast $CHAT_OPS_BROADCAST" "api $CHAT_OPS_API"
    "moderation $CHAT_OPS_MODERATION" "notify $CHAT_OPS_NOTIFY"
)
IFS=, read -ra gateway_ops <<<"$CHAT_OPS_GATEWAYS"
for url in "${gateway_ops[@]}"; do
    endpoints+=("gateway $url")
done
ops="insert find update delete findAndModify aggregate count getMore createIndexes ping other"
for e in "${endpoints[@]}"; do
    read -r name url <<<"$e"
    body=$(curl -sf --max-time 10 "$url/metrics") || { fail "$name: GET $url/metrics"; continue; }
    bad=0
    gt "$(value "$body" process_cpu_seconds_total)" 0 || { fail "$name: process_cpu_seconds_total"; bad=1; }
    gt "$(value "$body" process_resident_memory_bytes)" 1000000 ||
        { fail "$name: process_resident_memory_bytes"; bad=1; }
    fds=$(value "$body" process_open_fds) max=$(value "$body" process_max_fds)
    { gt "$fds" 2 && gt "$max" "$fds"; } || { fail "$name: open fds $fds, max $max"; bad=1; }
    start=$(value "$body" process_start_time_seconds)
    { gt "$start" $((now - 86400)) && ! gt "$start" $((now + 5)); } ||
        { fail "$name: process_start_time_seconds $start (now $now)"; bad=1; }
    info=$(grep -E "^chat_build_info\{version=\"[^\"]+\",service=\"$name\"\} 1$" <<<"$body")
    [ -n "$info" ] || { fail "$name: no chat_build_info for service=\"$name\""; bad=1; }
    for op in $ops; do
        if [ -z "$(value "$body" "chat_mongo_op_seconds_count{op=\"$op\"}")" ] ||
            [ -z "$(value "$body" "chat_mongo_errors_total{op=\"$op\"}")" ]; then
            fail "$name: chat_mongo_*{op=\"$op\"} missing"
            bad=1
        fi
    done
    if [ -z "$(value "$body" chat_redis_op_seconds_count)" ] ||
        [ -z "$(value "$body" chat_redis_errors_total)" ]; then
        fail "$name: chat_redis_* missing"
        bad=1
    fi
    [ "$bad" -eq 0 ] && echo "ok   - $name: process, build ($info), MongoDB and Redis metrics"
done

tenant=$CHAT_DEMO_TENANT
before_msg=$(curl -sf "$CHAT_OPS_MESSAGE/metrics")
before_api=$(curl -sf "$CHAT_OPS_API/metrics")
(printf 'service metrics %s\n' "$$"; sleep 1; printf '/quit\n') |
    "$build/tools/chat-cli/chat-cli" --url "${CHAT_GATEWAY_URLS%%,*}" --user "metrics-$$" \
        --join lobby >/dev/null 2>&1
token=$("$build/tools/chat-admin/chat-admin" server-token "$tenant")
curl -sf -o /dev/null -H "Authorization: Bearer $token" "$CHAT_API_URL/v1/rooms?limit=1" ||
    fail "api: GET /v1/rooms"

# A counter that went up between two scrapes: name{labels} before after.
went_up() {
    local b a
    b=$(value "$2" "$1") a=$(value "$3" "$1")
    if gt "$a" "${b:-0}"; then
        echo "ok   - $1: ${b:-absent} -> $a"
    else
        fail "$1 did not go up: ${b:-absent} -> ${a:-absent}"
    fi
}
sleep 1
after_msg=$(curl -sf "$CHAT_OPS_MESSAGE/metrics")
after_api=$(curl -sf "$CHAT_OPS_API/metrics")
went_up 'chat_mongo_op_seconds_count{op="insert"}' "$before_msg" "$after_msg"
went_up chat_redis_op_seconds_count "$before_msg" "$after_msg"
went_up "chat_message_tenant_stored_total{tenant=\"$tenant\"}" "$before_msg" "$after_msg"
went_up "chat_api_tenant_requests_total{tenant=\"$tenant\"}" "$before_api" "$after_api"
went_up 'chat_mongo_op_seconds_count{op="find"}' "$before_api" "$after_api"

echo "$failed failed"
[ "$failed" -eq 0 ]
