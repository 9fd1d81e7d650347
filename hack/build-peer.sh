#!/usr/bin/env bash
# Builds the benchmark peer, otelcol-peer (contrib's k8s_leader_elector
# extension gating k8s_cluster + k8s_events), into bin/otelcol-peer with the
# OpenTelemetry Collector Builder (ocb), from e2e/peer/builder-config.yaml.
# Mirrors hack/build-distribution.sh.
#
#   hack/build-peer.sh          # rebuild only if an input changed
#   FORCE=1 hack/build-peer.sh  # rebuild unconditionally
#
# Needs only Go and the Go module proxy. After `make distribution` most of the
# dependencies are already downloaded and compiled, so this takes a minute or
# two; from scratch, several minutes on 2 cores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" # ocb resolves output_path from here

GO="${GO:-go}"
OCB_VERSION="v0.145.0"
BIN="$ROOT/bin"
OCB="$BIN/builder"
CONFIG="e2e/peer/builder-config.yaml"
BUILD_DIR="$BIN/build-peer" # = dist.output_path in $CONFIG
OUT="$BIN/otelcol-peer"

# Modules the proxy serves but the checksum database has no entry for: go
# would refuse them while verifying. ocb rewrites go.sum on every run, so this
# is needed on every build, not only the first. (k8sleaderelector and the
# other contrib v0.145.0 modules used here are in the checksum database.)
NOSUMDB="github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckv2extension"
export GONOSUMDB="${GONOSUMDB:+${GONOSUMDB},}${NOSUMDB}"
# The generated module lives inside this repository; don't stamp VCS info
# (fails without git, or on a repository owned by another user).
case " ${GOFLAGS:-} " in
  *" -buildvcs="*) ;;
  *) export GOFLAGS="${GOFLAGS:+${GOFLAGS} }-buildvcs=false" ;;
esac

log() { printf '>> %s\n' "$*" >&2; }

# Is $OUT newer than its inputs (the builder config and this script)? The
# peer is built only from pinned upstream modules, nothing in this repository.
up_to_date() {
  [[ -x "$OUT" ]] || return 1
  for f in "$CONFIG" hack/build-peer.sh; do
    [[ "$f" -nt "$OUT" ]] && { log "changed: $f"; return 1; }
  done
  return 0
}

if [[ -z "${FORCE:-}" ]] && up_to_date; then
  log "bin/otelcol-peer is up to date (FORCE=1 to rebuild)"
  exit 0
fi

# ocb itself, pinned, installed into bin/ (shared with build-distribution.sh).
ocb_version=""
[[ -x "$OCB" ]] && ocb_version="$("$OCB" version 2>&1 || true)" # prints to stderr
if [[ "$ocb_version" != *"$OCB_VERSION"* ]]; then
  log "installing ocb $OCB_VERSION into bin/"
  GOBIN="$BIN" "$GO" install "go.opentelemetry.io/collector/cmd/builder@${OCB_VERSION}"
fi

mkdir -p "$BUILD_DIR"
# The binary gets the time the build started, so that an input edited while
# ocb runs still counts as newer next time.
stamp="$BUILD_DIR/.started"
touch "$stamp"
start=$SECONDS
log "building bin/otelcol-peer with ocb $OCB_VERSION"

# ocb is silent while go downloads and compiles: print a heartbeat.
( while sleep 30 >/dev/null 2>&1; do log "still building... $((SECONDS - start))s"; done ) &
heartbeat=$!
trap 'kill "$heartbeat" 2>/dev/null || true' EXIT

"$OCB" --config "$CONFIG"

kill "$heartbeat" 2>/dev/null || true
# Copy then rename, so a collector already running from $OUT is not disturbed.
cp "$BUILD_DIR/otelcol-peer" "$OUT.tmp"
touch -r "$stamp" "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"
log "built bin/otelcol-peer in $((SECONDS - start))s"
