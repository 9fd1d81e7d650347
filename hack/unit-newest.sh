#!/usr/bin/env bash
# The component's unit tests against the newest collector line we claim
# (hack/versions.yaml: newest_*), the other end of the range from go.mod's
# minimum. It copies the module into bin/newest, raises every collector module
# and client-go there, resolves go.sum and runs the tests with -race. Lint
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

dir="$ROOT/bin/newest"
rm -rf "$dir"
mkdir -p "$dir"
# The module's own files only: e2e/ and hack/tools are modules of their own.
tar -C "$ROOT" --exclude=./bin --exclude=./.git --exclude=./e2e --exclude=./hack -cf - . | tar -C "$dir" -xf -
cd "$dir"
# Stable collector modules are v1.x, the others v0.x; both move to the newest line.
sed -i -E \
  -e "s#^(\s*go\.opentelemetry\.io/collector/\S+) v1\.[0-9]+\.[0-9]+#\1 $stable#" \
  -e "s#^(\s*go\.opentelemetry\.io/collector/\S+) v0\.[0-9]+\.[0-9]+#\1 $core#" \
  -e "s#^(\s*k8s\.io/(api|apimachinery|client-go)) v0\.[0-9]+\.[0-9]+#\1 $k8s#" \
  go.mod
"$GO" mod tidy
echo ">> unit tests against: $("$GO" list -m go.opentelemetry.io/collector/component go.opentelemetry.io/collector/otelcol k8s.io/client-go | tr '\n' ' ')"
"$GO" test -race -count=1 "$@" ./...
