#!/usr/bin/env bash
# unit.deploy.dashboards: the Grafana dashboards (deploy/grafana/dashboards/*.json), offline.
# - the committed JSON is exactly what the generator (deploy/grafana/gen, the
#   grafana-foundation-sdk builders) writes: edit the generator, not the JSON;
# - the validator (deploy/grafana/validate) passes its own cases (a dashboard with an unknown
#   field, an empty query, a duplicate panel id, a latency panel without a time unit... is
#   refused), then parses every dashboard strictly with the SDK, validates it and applies the
#   chat dashboards' rules.
# Both are built into the build tree from the Go module cache only (GOPROXY=off): scripts/setup
# downloads the module that deploy/grafana/go.sum pins.
set -euo pipefail
: "${CHAT_SOURCE_DIR:?run through ctest}"
: "${CHAT_BUILD_DIR:?run through ctest}"

command -v go >/dev/null 2>&1 || { echo "the Go toolchain is missing: run scripts/setup" >&2; exit 1; }
src="$CHAT_SOURCE_DIR/deploy/grafana"
bin="$CHAT_BUILD_DIR/deploy/grafana"
mkdir -p "$bin"
export GOPROXY=off GOFLAGS="-mod=readonly -buildvcs=false"

cd "$src"
if ! go build -trimpath -o "$bin/" ./gen ./validate; then
    echo "could not build deploy/grafana offline (module missing from the Go module cache? run scripts/setup)" >&2
    exit 1
fi
go test -count=1 ./validate

out=$(mktemp -d "${TMPDIR:-/tmp}/dashboards.XXXXXX")
trap 'rm -rf "$out"' EXIT
"$bin/gen" -out "$out"
if ! diff -ru "$src/dashboards" "$out"; then
    echo "FAIL: deploy/grafana/dashboards differs from the generator's output;" \
        "run (cd deploy/grafana && go run ./gen -out dashboards) and commit the JSON" >&2
    exit 1
fi
echo "ok: the committed dashboards are the generator's output"
"$bin/validate" "$src/dashboards"
