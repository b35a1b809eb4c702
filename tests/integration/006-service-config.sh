#!/usr/bin/env bash
# Start-up failures of the services: a bad configuration value, or a Kafka/MongoDB/Redis
# that does not answer, stops the service with a non-zero exit and an error log line whose
# "var" field names the variable to fix. Everything else points at the fixture's stack,
# so the variable under test is the only thing wrong.
set -uo pipefail

: "${CHAT_STACK_ENV:?run through ctest}"
build=${CHAT_BUILD_DIR:?run through ctest}
set -a
# shellcheck disable=SC1090
. "$CHAT_STACK_ENV"
set +a
work=$(mktemp -d "${TMPDIR:-/tmp}/chat-service-config.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

# Ports nothing listens on: bound once by the kernel's choice, then released.
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
dead_port=$(free_port)
ws_port=$(free_port)

# expect_failure SERVICE VAR [VAR=value ...]: runs the service with the given variables
# (plus a short connect timeout and free ports) and checks it exits non-zero within 30 s
# with an error line naming VAR.
expect_failure() {
    local service=$1 var=$2
    shift 2
    local log="$work/$service-$var.log" status
    timeout 30 env CHAT_CONNECT_TIMEOUT=2s CHAT_OPS_PORT=0 CHAT_GATEWAY_PORT="$ws_port" \
        CHAT_GATEWAY_INDEX=7 CHAT_MESSAGE_GROUP="cfgtest-$$" CHAT_BROADCAST_GROUP="cfgtest-$$" \
        CHAT_MODERATION_GROUP="cfgtest-$$" CHAT_NOTIFY_GROUP="cfgtest-$$" \
        "$@" "$build/services/$service/chat-$service" >"$log" 2>&1
    status=$?
    if [ $status -ne 0 ] && [ $status -ne 124 ] &&
        grep '"level":"error"' "$log" | grep "\"var\":\"$var\"" >/dev/null; then
        echo "ok   - $service: $* -> exit $status naming $var"
    else
        echo "FAIL - $service: $* -> exit $status; expected an error naming $var. Log:"
        sed 's/^/    /' "$log" | tail -n 20
        failures=$((failures + 1))
    fi
}

for service in gateway message broadcast moderation notify; do
    expect_failure "$service" CHAT_OPS_PORT CHAT_OPS_PORT=not-a-port
    expect_failure "$service" CHAT_LOG_LEVEL CHAT_LOG_LEVEL=loud
    expect_failure "$service" CHAT_KAFKA_BROKERS CHAT_KAFKA_BROKERS="127.0.0.1:$dead_port"
    expect_failure "$service" KAFKA_NO_SUCH_SETTING KAFKA_NO_SUCH_SETTING=1
done
expect_failure gateway CHAT_GATEWAY_INDEX CHAT_GATEWAY_INDEX=999
expect_failure gateway CHAT_MONGO_URI CHAT_MONGO_URI="mongodb://127.0.0.1:$dead_port/chat"
expect_failure gateway CHAT_REDIS_URL CHAT_REDIS_URL="redis://127.0.0.1:$dead_port/0"
expect_failure gateway CHAT_GATEWAY_IDLE_HANGUP CHAT_GATEWAY_IDLE_PING=30s CHAT_GATEWAY_IDLE_HANGUP=20s
# The widget directory must hold every file the gateway serves; the error names the file.
# log_names LOG FIELD WHAT: checks that the last run's error line in LOG carries FIELD.
log_names() {
    if grep '"level":"error"' "$1" | grep -F "$2" >/dev/null; then
        echo "ok   - $3"
    else
        echo "FAIL - $3: no error line with $2"
        failures=$((failures + 1))
    fi
}
mkdir -p "$work/widget-empty" "$work/widget-no-demo"
expect_failure gateway CHAT_WIDGET_DIR CHAT_WIDGET_DIR="$work/widget-empty"
log_names "$work/gateway-CHAT_WIDGET_DIR.log" '"file":"widget.js"' \
    "gateway: an empty widget directory: the error names widget.js"
for f in widget.js chat-sdk.mjs chat-sdk.d.ts chat-sw.js; do
    echo "// $f" >"$work/widget-no-demo/$f"
done
expect_failure gateway CHAT_WIDGET_DIR CHAT_WIDGET_DIR="$work/widget-no-demo"
log_names "$work/gateway-CHAT_WIDGET_DIR.log" '"file":"demo.html"' \
    "gateway: a widget directory without demo.html: the error names it"
expect_failure gateway CHAT_WIDGET_DIR CHAT_WIDGET_DIR="$work/no-such-dir"
expect_failure gateway CHAT_DEMO_TENANT CHAT_DEMO_TENANT="not a tenant" CHAT_DEMO_SECRET=s3cret
expect_failure gateway CHAT_DEMO_GATEWAYS CHAT_DEMO_TENANT=demo CHAT_DEMO_SECRET=s3cret CHAT_DEMO_GATEWAYS="http://127.0.0.1:1/v1/ws"
expect_failure gateway CHAT_DEMO_GATEWAYS CHAT_DEMO_TENANT=demo CHAT_DEMO_SECRET=s3cret CHAT_DEMO_GATEWAYS="ws://127.0.0.1:1/v1/ws,"
expect_failure message CHAT_MONGO_URI CHAT_MONGO_URI="mongodb://127.0.0.1:$dead_port/chat"
expect_failure message CHAT_MESSAGE_BATCH CHAT_MESSAGE_BATCH=0
expect_failure message CHAT_REDIS_URL CHAT_REDIS_URL="redis://127.0.0.1:$dead_port/0"
expect_failure message CHAT_REDIS_URL CHAT_REDIS_URL="http://127.0.0.1:$dead_port/0"
expect_failure message CHAT_RECENT_MAX CHAT_RECENT_MAX=-1
expect_failure broadcast CHAT_REDIS_URL CHAT_REDIS_URL="redis://127.0.0.1:$dead_port/0"
expect_failure moderation CHAT_MONGO_URI CHAT_MONGO_URI="mongodb://127.0.0.1:$dead_port/chat"
expect_failure moderation CHAT_REDIS_URL CHAT_REDIS_URL="redis://127.0.0.1:$dead_port/0"
expect_failure moderation CHAT_MODERATION_BATCH CHAT_MODERATION_BATCH=0
expect_failure moderation CHAT_MODERATION_RULES_REFRESH CHAT_MODERATION_RULES_REFRESH=10ms
expect_failure notify CHAT_MONGO_URI CHAT_MONGO_URI="mongodb://127.0.0.1:$dead_port/chat"
expect_failure notify CHAT_REDIS_URL CHAT_REDIS_URL="redis://127.0.0.1:$dead_port/0"
expect_failure notify CHAT_VAPID_PRIVATE_KEY CHAT_VAPID_PRIVATE_KEY=not-a-key
expect_failure notify CHAT_VAPID_SUBJECT CHAT_VAPID_PRIVATE_KEY="$("$build/tools/chat-admin/chat-admin" vapid generate | sed -n "s/^CHAT_VAPID_PRIVATE_KEY=//p")" CHAT_VAPID_SUBJECT=nobody
expect_failure notify CHAT_NOTIFY_WEBHOOK_SCHEDULE CHAT_NOTIFY_WEBHOOK_SCHEDULE=soon
expect_failure notify CHAT_SMTP_TLS CHAT_SMTP_TLS=maybe
# Every service checks at start that the topics it is configured with exist.
missing="missing-topic-$$"
expect_failure message CHAT_TOPIC_INBOUND CHAT_TOPIC_INBOUND="$missing"
expect_failure message CHAT_TOPIC_MESSAGES CHAT_TOPIC_MESSAGES="$missing"
expect_failure broadcast CHAT_TOPIC_MESSAGES CHAT_TOPIC_MESSAGES="$missing"
expect_failure broadcast CHAT_TOPIC_DELIVER CHAT_TOPIC_DELIVER="$missing"
expect_failure gateway CHAT_TOPIC_INBOUND CHAT_TOPIC_INBOUND="$missing"
expect_failure gateway CHAT_TOPIC_DELIVER CHAT_TOPIC_DELIVER="$missing"
expect_failure gateway CHAT_TOPIC_EVENTS CHAT_TOPIC_EVENTS="$missing"
expect_failure broadcast CHAT_TOPIC_EVENTS CHAT_TOPIC_EVENTS="$missing"
expect_failure moderation CHAT_TOPIC_MESSAGES CHAT_TOPIC_MESSAGES="$missing"
expect_failure moderation CHAT_TOPIC_MODERATION CHAT_TOPIC_MODERATION="$missing"
expect_failure message CHAT_TOPIC_MODERATION CHAT_TOPIC_MODERATION="$missing"
expect_failure notify CHAT_TOPIC_MESSAGES CHAT_TOPIC_MESSAGES="$missing"
expect_failure notify CHAT_TOPIC_NOTIFY_DLQ CHAT_TOPIC_NOTIFY_DLQ="$missing"

[ $failures -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
