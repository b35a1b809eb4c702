#!/usr/bin/env bash
# bench.smoke: the bench's harness works against the test stack: `bench/run smoke` (2 rooms x
# 5 members, 5 msg/s per room, 3 s) delivers every message to every member, no duplicate, no
# error, and writes a JSON report with CPU figures for each server process. It checks the
# harness, not a time: figures of a sanitizer build on a shared machine mean nothing.
set -euo pipefail
: "${CHAT_STACK_ENV:?run through ctest: the stack fixture sets it}"
: "${CHAT_BENCH_BIN:?run through ctest: the path of chat-bench}"
: "${CHAT_SOURCE_DIR:?run through ctest}"

out=$(mktemp -d "${TMPDIR:-/tmp}/bench-smoke.XXXXXX")
trap 'rm -rf "$out"' EXIT

# --strict: exit 3 on a lost, duplicated or failed message, or a failed connection.
"$CHAT_SOURCE_DIR/bench/run" smoke --stack-env "$CHAT_STACK_ENV" --bin "$CHAT_BENCH_BIN" \
    --out "$out" --label smoke --strict --quiet

json=$(find "$out" -name '*-smoke-smoke.json')
[ -n "$json" ] || { echo "no JSON report in $out" >&2; exit 1; }
[ -s "$out/results.md" ] || { echo "no markdown row in $out/results.md" >&2; exit 1; }

# The stack's parts, from its pid files, must each have a CPU figure.
set -a
# shellcheck disable=SC1090
. "$CHAT_STACK_ENV"
set +a
python3 - "$json" "$CHAT_STACK_PIDS" <<'PY'
import json, os, sys

report = json.load(open(sys.argv[1]))
parts = sorted(f[:-4] for f in os.listdir(sys.argv[2]) if f.endswith(".pid"))
m = report["measured"]
fails = []
def check(ok, what):
    if not ok:
        fails.append(what)

check(m["sent"] == 30, f"sent {m['sent']}, want 30 (2 rooms x 5/s x 3 s)")
check(m["acked"] == m["sent"], f"acked {m['acked']} of {m['sent']}")
check(m["expected_deliveries"] == 5 * m["acked"], "expected deliveries != 5 x acked")
check(m["delivered"] == m["expected_deliveries"] and m["lost"] == 0,
      f"delivered {m['delivered']} of {m['expected_deliveries']}")
check(m["duplicates"] == 0, f"{m['duplicates']} duplicates")
check(m["send_errors"]["total"] == 0, f"send errors {m['send_errors']}")
lat = m["latency_ms"]
check(lat["count"] == m["delivered"] and 0 < lat["p50"] <= lat["p99"] <= lat["max"],
      f"latency histogram {lat}")
cpu = m["server_cpu"]
for part in parts:
    check(isinstance(cpu["by_process"].get(part), (int, float)) and cpu["by_process"][part] >= 0,
          f"no CPU figure for {part}")
check(cpu["complete"] and cpu["seconds"] > 0 and cpu["us_per_delivery"] > 0, f"server CPU {cpu}")
check(m["bench_cpu"]["seconds"] >= 0, "no bench CPU")
check(report["setup"]["ready_at_end"] == 10 and report["setup"]["gave_up"] == 0, "set-up")
check(report["problems"] == [], f"problems: {report['problems']}")
# Each member types every 2.5 s: typing goes out and reaches the others (best effort: > 0).
t = m.get("typing", {})
check(t.get("sent", 0) > 0 and t.get("received", 0) > 0, f"typing {t}")
if fails:
    print("bench.smoke:", *fails, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"bench.smoke: {m['delivered']} deliveries, p50 {lat['p50']} ms, "
      f"server CPU of {len(parts)} processes {cpu['seconds']} s")
PY
