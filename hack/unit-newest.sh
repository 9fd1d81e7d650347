#!/usr/bin/env bash
# The component's unit tests against the newest collector line we claim
# (hack/versions.yaml: newest_*), the other end of the range from go.mod's
# minimum. It copies the module into bin/_newest (the underscore hides it from
# the root module's ./... patterns), raises the collector modules and
# client-go it requires directly there, lets go mod tidy lift the rest, and
# runs the tests with -race. Lint
# runs at the minimum only (make lint): a deprecation flagged at the newest
# line may have no replacement at the minimum.
#
#   hack/unit-newest.sh [go test flags...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GO="${GO:-go}"
pin() { sed -n "s/^$1: *//p" "$ROOT/hack/versions.yaml"; }
core=$(pin newest_core)
stable=$(pin newest_stable)
k8s=$(pin newest_client_go)
[[ -n $core && -n $stable && -n $k8s ]] || { echo "hack/versions.yaml: newest_core, newest_stable and newest_client_go must be set" >&2; exit 2; }

dir="$ROOT/bin/_newest"
rm -rf "$dir"
mkdir -p "$dir"
# The module's own files only: e2e/ and hack/tools are modules of their own.
tar -C "$ROOT" --exclude=./bin --exclude=./.git --exclude=./e2e --exclude=./hack -cf - . | tar -C "$dir" -xf -
cd "$dir"
# Direct requirements only (tidy lifts the indirect ones): stable collector
# modules are v1.x, the others v0.x; both move to the newest line.
sed -i -E \
  -e "/\/\/ indirect/!s#^(\s*(require\s+)?go\.opentelemetry\.io/collector/\S+) v1\.[0-9]+\.[0-9]+#\1 $stable#" \
  -e "/\/\/ indirect/!s#^(\s*(require\s+)?go\.opentelemetry\.io/collector/\S+) v0\.[0-9]+\.[0-9]+#\1 $core#" \
  -e "/\/\/ indirect/!s#^(\s*(require\s+)?k8s\.io/(api|apimachinery|client-go)) v0\.[0-9]+\.[0-9]+#\1 $k8s#" \
  go.mod
# -e: a test-only module of the collector may not be served (as at v0.152).
"$GO" mod tidy -e
# The run proves the newest line only if the build selected it.
selected=$("$GO" list -m go.opentelemetry.io/collector/component go.opentelemetry.io/collector/otelcol k8s.io/client-go | tr '\n' ' ')
want="go.opentelemetry.io/collector/component $stable go.opentelemetry.io/collector/otelcol $core k8s.io/client-go $k8s "
if [[ $selected != "$want" ]]; then
  echo "unit-newest: selected $selected, want $want" >&2
  exit 1
fi
echo ">> unit tests against: $selected"
"$GO" test -race -count=1 "$@" ./...
