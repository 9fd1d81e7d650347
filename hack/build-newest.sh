#!/usr/bin/env bash
# Builds bin/otelcol-leader-newest, our component on the newest collector core
# served (ocb v0.165.0), from distribution/newest/builder-config.yaml and the
# module graph resolved for it, distribution/newest/go.mod and go.sum (see
# hack/build-collector.sh). Not part of `make test`.
#
#   hack/build-newest.sh             # builds; `make distribution-newest` builds only when an input changed
#   hack/build-newest.sh --resolve   # after moving a pin: re-resolves distribution/newest/go.mod and go.sum (commit them), then builds
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RESOLVE_CMD="hack/build-newest.sh --resolve" exec hack/build-collector.sh "$@" otelcol-leader-newest distribution/newest/builder-config.yaml
