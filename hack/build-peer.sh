#!/usr/bin/env bash
# Builds the benchmark peer, bin/otelcol-peer: contrib's k8s_leader_elector
# extension gating k8s_cluster + k8s_events, from e2e/peer/builder-config.yaml
# (see hack/build-collector.sh). Only pinned upstream modules go into it.
#
#   hack/build-peer.sh   # builds; `make bench` builds it only when an input changed
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec hack/build-collector.sh otelcol-peer e2e/peer/builder-config.yaml
