#!/usr/bin/env bash
# Builds our collector distribution, bin/otelcol-leader, from
# distribution/builder-config.yaml and the module graph resolved for it,
# distribution/go.mod and distribution/go.sum (see hack/build-collector.sh).
#
#   hack/build-distribution.sh             # builds; `make distribution` builds only when an input changed
#   hack/build-distribution.sh --resolve   # after moving a pin: re-resolves distribution/go.mod and go.sum (commit them), then builds
#
# Needs only Go and the Go module proxy. The first build downloads and compiles
# the collector, contrib and client-go (several minutes on 2 cores); later
# builds reuse Go's module and build caches.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RESOLVE_CMD="hack/build-distribution.sh --resolve" exec hack/build-collector.sh "$@" otelcol-leader distribution/builder-config.yaml
