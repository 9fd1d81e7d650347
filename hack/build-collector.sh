#!/usr/bin/env bash
# Builds a collector with the OpenTelemetry Collector Builder (ocb):
#
#   hack/build-collector.sh NAME BUILDER_CONFIG
#
# writes bin/NAME from BUILDER_CONFIG, building in its dist.output_path. The
# callers are hack/build-distribution.sh (our distribution) and
# hack/build-peer.sh (the benchmark peer). It always builds: the Makefile's
# file targets (bin/otelcol-leader, bin/otelcol-peer) decide when.
#
# Needs only Go and the Go module proxy. The first build downloads and compiles
# the collector, contrib and client-go (several minutes on 2 cores); later
# builds reuse Go's module and build caches.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" # ocb resolves output_path (and replaces) from here

GO="${GO:-go}"
OCB_VERSION="v0.145.0"
BIN="$ROOT/bin"
OCB="$BIN/builder"
NAME="$1"
CONFIG="$2"
BUILD_DIR="$(sed -n 's/^ *output_path: *//p' "$CONFIG" | head -n1)" # dist.output_path
OUT="$BIN/$NAME"

# Modules the proxy serves but the checksum database has no entry for: go
# would refuse them while verifying. ocb rewrites go.sum on every run, so this
# is needed on every build, not only the first.
NOSUMDB="github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckv2extension"
export GONOSUMDB="${GONOSUMDB:+${GONOSUMDB},}${NOSUMDB}"
# The generated module lives inside this repository; don't stamp VCS info
# (fails without git, or on a repository owned by another user).
case " ${GOFLAGS:-} " in
  *" -buildvcs="*) ;;
  *) export GOFLAGS="${GOFLAGS:+${GOFLAGS} }-buildvcs=false" ;;
esac

log() { printf '>> %s\n' "$*" >&2; }

# ocb itself, pinned, installed into bin/.
ocb_version=""
[[ -x "$OCB" ]] && ocb_version="$("$OCB" version 2>&1 || true)" # prints to stderr
if [[ "$ocb_version" != *"$OCB_VERSION"* ]]; then
  log "installing ocb $OCB_VERSION into bin/"
  GOBIN="$BIN" "$GO" install "go.opentelemetry.io/collector/cmd/builder@${OCB_VERSION}"
fi

mkdir -p "$BUILD_DIR"
# The binary gets the time the build started, so that make still finds a
# source edited while ocb runs newer next time.
stamp="$BUILD_DIR/.started"
touch "$stamp"
start=$SECONDS
log "building bin/$NAME with ocb $OCB_VERSION (first build: several minutes)"

# ocb is silent while go downloads and compiles: print a heartbeat.
( while sleep 30 >/dev/null 2>&1; do log "still building... $((SECONDS - start))s"; done ) &
heartbeat=$!
trap 'kill "$heartbeat" 2>/dev/null || true' EXIT

"$OCB" --config "$CONFIG"

kill "$heartbeat" 2>/dev/null || true
# Copy then rename, so a collector already running from $OUT is not disturbed.
cp "$BUILD_DIR/$NAME" "$OUT.tmp"
touch -r "$stamp" "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"
log "built bin/$NAME in $((SECONDS - start))s"
