#!/usr/bin/env bash
# deploy/prometheus: the rules file is valid Prometheus rules (promtool check rules: syntax,
# PromQL, templates, no duplicate rules) and its unit tests pass (promtool test rules: each
# alert fires on a bad series and stays silent on a good one; recording rules' values).
set -uo pipefail

src=${CHAT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
command -v promtool >/dev/null || { echo "FAIL - promtool is missing: run scripts/setup"; exit 1; }
failed=0
promtool check rules "$src"/deploy/prometheus/rules/*.yml || failed=1
promtool test rules "$src"/deploy/prometheus/tests/*.yml || failed=1
exit $failed
