#!/usr/bin/env bash
# Builds the benchmark peer, bin/otelcol-peer: contrib's k8s_leader_elector
# extension gating k8s_cluster + k8s_events, from e2e/peer/builder-config.yaml
# and the module graph resolved for it, e2e/peer/go.mod and e2e/peer/go.sum
# (see hack/build-collector.sh). Only pinned upstream modules go into it.
#
#   hack/build-peer.sh             # builds; `make bench` builds it only when an input changed
#   hack/build-peer.sh --resolve   # after moving a pin: re-resolves e2e/peer/go.mod and go.sum (commit them), then builds
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RESOLVE_CMD="hack/build-peer.sh --resolve" exec hack/build-collector.sh "$@" otelcol-peer e2e/peer/builder-config.yaml
