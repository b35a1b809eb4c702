#!/usr/bin/env bash
# bench.smoke: the bench's harness works against the test stack: `bench/run smoke` (2 rooms x
# 5 members, 5 msg/s per room, 3 s) delivers every message to every member, no duplicate, no
# error, and writes a JSON report with CPU figures for each server process. Then the same with
# `--moderation` (a rule set of 10,000 words and 20 regexes for the demo tenant, cleared after)
# and every 2nd message bad: each bad message is removed for every member and timed at its
# sender, nothing else is removed, the rules are gone afterwards. It checks the harness, not
# a time: figures of a sanitizer build on a shared machine mean nothing.
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
# Other work on a shared machine (the suite's other tests, jobs they left running in the
# stack) is the machine's, not the harness's: the smoke checks what the bench counts.
first_problems = [p for p in report["problems"] if "other work used" not in p]
check(first_problems == [], f"problems: {first_problems}")
# Each member types every 2.5 s: typing goes out and reaches the others (best effort: > 0).
t = m.get("typing", {})
check(t.get("sent", 0) > 0 and t.get("received", 0) > 0, f"typing {t}")
if fails:
    print("bench.smoke:", *fails, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"bench.smoke: {m['delivered']} deliveries, p50 {lat['p50']} ms, "
      f"server CPU of {len(parts)} processes {cpu['seconds']} s")
PY

# ---- with moderation ----
"$CHAT_SOURCE_DIR/bench/run" smoke --moderation --bad-every 2 --stack-env "$CHAT_STACK_ENV" \
    --bin "$CHAT_BENCH_BIN" --out "$out/mod" --label mod --quiet
json=$(find "$out/mod" -name '*-smoke-mod.json')
[ -n "$json" ] || { echo "no JSON report of the moderation run in $out/mod" >&2; exit 1; }
token=$("$(dirname "$CHAT_BENCH_BIN")/../tools/chat-admin/chat-admin" server-token "$CHAT_DEMO_TENANT")
python3 - "$json" "$CHAT_API_URL" "$token" <<'PY'
import json, sys, urllib.request

report = json.load(open(sys.argv[1]))
api = sys.argv[2].rstrip("/")
api += "" if api.endswith("/v1") else "/v1"
m = report["measured"]
mod, run = m["moderation"], report["moderation"]
fails = []
def check(ok, what):
    if not ok:
        fails.append(what)

def get(path):
    req = urllib.request.Request(api + path, headers={"Authorization": f"Bearer {sys.argv[3]}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())

check(run["on"] and run["rules"] == {"blocklist_words": 10000, "regexes": 20},
      f"moderation {run}")
check(mod["bad_sent"] == 14 and mod["bad_acked"] == 14,
      f"bad {mod['bad_sent']} sent, {mod['bad_acked']} acked; want 14 (each sender's 2nd, 4th..)")
check(mod["removals_expected"] == 5 * mod["bad_acked"]
      and mod["removals_delivered"] == mod["removals_expected"],
      f"removals {mod['removals_delivered']} of {mod['removals_expected']}")
v = mod["verdict_ms"]
check(v["count"] == mod["bad_acked"] and 0 < v["p50"] <= v["p99"] <= v["max"],
      f"verdict {v}")
check(mod["send_to_removal_ms"]["count"] == mod["bad_acked"], "send -> removal count")
check(mod["verdict_at_members_ms"]["count"] == mod["removals_delivered"], "members' verdicts")
check(run["removals_unmatched"] == 0, f"{run['removals_unmatched']} removals of good messages")
check(m["delivered"] == m["expected_deliveries"] and m["send_errors"]["total"] == 0,
      f"delivered {m['delivered']} of {m['expected_deliveries']}, errors {m['send_errors']}")
# Other work on a shared machine is the machine's, not the bench's.
problems = [p for p in report["problems"] if "other work used" not in p]
check(problems == [], f"problems: {problems}")
# bench/run cleared the rules it set, and no regex flagged the bench's text.
rules = get("/moderation/rules")
check(rules == {}, f"rules not cleared: {str(rules)[:200]}")
run_id = report["params"]["run"]
flagged = [f for f in get("/moderation/flags?limit=100")["flags"]
           if f.get("room", "").startswith(run_id)]
check(flagged == [], f"{len(flagged)} bench messages flagged, e.g. {flagged[:1]}")
if fails:
    print("bench.smoke (moderation):", *fails, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"bench.smoke (moderation): {mod['removals_delivered']} removals, verdict p50 {v['p50']} "
      f"ms, max {v['max']} ms")
PY
