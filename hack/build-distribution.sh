#!/usr/bin/env bash
# Builds our collector distribution, bin/otelcol-leader, from
# distribution/builder-config.yaml (see hack/build-collector.sh).
#
#   hack/build-distribution.sh   # builds; `make distribution` builds only when an input changed
#
# Needs only Go and the Go module proxy. The first build downloads and compiles
# the collector, contrib and client-go (about 4 minutes on 2 cores); later
# builds reuse Go's module and build caches.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec hack/build-collector.sh otelcol-leader distribution/builder-config.yaml
