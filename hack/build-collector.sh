#!/usr/bin/env bash
# Builds a collector from an OpenTelemetry Collector Builder (ocb) manifest:
#
#   hack/build-collector.sh NAME BUILDER_CONFIG             # build bin/NAME
#   hack/build-collector.sh --resolve NAME BUILDER_CONFIG   # re-resolve its go.mod/go.sum, then build
#
# The callers are hack/build-distribution.sh (our distribution),
# hack/build-peer.sh (the benchmark peer) and hack/build-newest.sh (the
# newest-core distribution). It always builds: the Makefile's file targets
# (bin/otelcol-leader, bin/otelcol-peer, ...) decide when.
#
# How: ocb (the version on BUILDER_CONFIG's `# ocb: vX.Y.Z` line, installed
# into bin/) only generates the sources into the manifest's dist.output_path
# (--skip-compilation, its go mod tidy and download turned into no-ops). The
# module graph is not resolved at build time: the go.mod and go.sum committed beside BUILDER_CONFIG
# (e.g. distribution/go.mod, distribution/go.sum) are copied over the
# generated ones and `go build -mod=readonly` compiles exactly that graph, so
# that every checkout builds the same binary, with every module checked
# against the committed go.sum (ocb's flags: -trimpath, -ldflags "-s -w",
# CGO_ENABLED=0, dist.build_tags).
#
# --resolve recomputes them: `go mod tidy -e` on the generated go.mod, a check
# that every component resolved to the version the manifest pins (ocb's
# strict versioning), the build, then the two files are copied back beside
# BUILDER_CONFIG, to be committed. Needed whenever a pin in the manifest (or
# its ocb version) moves, or when the module a `replaces:` line points to (our
# repository root) requires newer modules than the resolved graph has; a
# plain build says so and stops. ocb's own resolution (`go mod tidy` without
# -e) cannot be used: from v0.152 on, it needs test-only modules of the core
# collector that the module proxy may not serve (extensionauthtest,
# zpagesextension, telemetrytest ...); -e resolves everything else, and the
# build never needs those modules.
#
# The go.mod copied back records the sha256 of the go.mod ocb generated (the
# manifest's modules, versions and replaces, in ocb's words): a build whose
# freshly generated go.mod differs stops and asks for --resolve. Comments and
# build tags in the manifest do not count.
#
# Needs only Go and the Go module proxy. The first build downloads and compiles
# the collector, contrib and client-go (several minutes on 2 cores); later
# builds reuse Go's module and build caches.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" # ocb resolves output_path (and replaces) from here

RESOLVE=0
if [[ "${1:-}" == "--resolve" ]]; then
  RESOLVE=1
  shift
fi
if [[ $# -ne 2 ]]; then
  echo "usage: $0 [--resolve] NAME BUILDER_CONFIG" >&2
  exit 2
fi

GO="${GO:-go}"
BIN="$ROOT/bin"
NAME="$1"
CONFIG="$2"
CONFIG_DIR="$(dirname "$CONFIG")"
LOCK_MOD="$CONFIG_DIR/go.mod" # the resolved module graph, committed
LOCK_SUM="$CONFIG_DIR/go.sum"
OCB_VERSION="$(sed -n 's/^# *ocb: *\(v[0-9][^ ]*\) *$/\1/p' "$CONFIG" | head -n1)"
BUILD_DIR="$(sed -n 's/^ *output_path: *//p' "$CONFIG" | head -n1)" # dist.output_path
BUILD_TAGS="$(sed -n 's/^ *build_tags: *//p' "$CONFIG" | head -n1)" # dist.build_tags
OUT="$BIN/$NAME"
OCB="$BIN/ocb-$OCB_VERSION"
# How to re-resolve, in messages (the wrapper scripts name themselves).
RESOLVE_CMD="${RESOLVE_CMD:-hack/build-collector.sh --resolve $NAME $CONFIG}"

if [[ -z "$OCB_VERSION" || -z "$BUILD_DIR" ]]; then
  echo "$CONFIG: needs a '# ocb: vX.Y.Z' line and dist.output_path" >&2
  exit 2
fi

# Modules the proxy serves but the checksum database has no entry for: go
# would refuse them while verifying a download that no go.sum line covers
# (--resolve, or a module cache without them). With a committed go.sum their
# hashes are checked against it like any other module's.
NOSUMDB="github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckv2extension"
export GONOSUMDB="${GONOSUMDB:+${GONOSUMDB},}${NOSUMDB}"
# The generated module lives inside this repository; don't stamp VCS info
# (fails without git, or on a repository owned by another user).
case " ${GOFLAGS:-} " in
  *" -buildvcs="*) ;;
  *) export GOFLAGS="${GOFLAGS:+${GOFLAGS} }-buildvcs=false" ;;
esac
export CGO_ENABLED=0 # as ocb builds (dist.cgo_enabled is not used here)

log() { printf '>> %s\n' "$*" >&2; }

# ocb itself, pinned, installed into bin/ under its version (several
# manifests may name different ones).
if [[ ! -x "$OCB" ]]; then
  log "installing ocb $OCB_VERSION into bin/"
  tmp="$(mktemp -d)"
  GOBIN="$tmp" "$GO" install "go.opentelemetry.io/collector/cmd/builder@${OCB_VERSION}"
  mkdir -p "$BIN"
  mv -f "$tmp/builder" "$OCB"
  rm -rf "$tmp"
fi

if [[ $RESOLVE -eq 0 && ! -f "$LOCK_MOD" ]]; then
  echo "$LOCK_MOD is missing: resolve it once with $RESOLVE_CMD" >&2
  exit 1
fi

mkdir -p "$BUILD_DIR"
# The binary gets the time the build started, so that make still finds a
# source edited while the build runs newer next time.
stamp="$BUILD_DIR/.started"
touch "$stamp"
start=$SECONDS
if [[ $RESOLVE -eq 1 ]]; then
  log "resolving $LOCK_MOD and building bin/$NAME with ocb $OCB_VERSION (first build: several minutes)"
else
  log "building bin/$NAME with ocb $OCB_VERSION and $LOCK_MOD (first build: several minutes)"
fi

# go is silent while it downloads and compiles: print a heartbeat.
( while sleep 30 >/dev/null 2>&1; do log "still building... $((SECONDS - start))s"; done ) &
heartbeat=$!
trap 'kill "$heartbeat" 2>/dev/null || true' EXIT

# 1. Sources only: main*.go, components.go and go.mod. ocb runs `go mod
#    tidy` and `go mod download` after writing go.mod unless told
#    --skip-get-modules, which from v0.165 on also skips writing go.mod; so
#    ocb gets a `go` of its own that does nothing for those two and is the
#    real go for everything else (`go mod edit -print` for its version check
#    of the generated go.mod, `go env`).
rm -f "$BUILD_DIR/go.sum" "$BUILD_DIR/go.mod"
real_go="$(command -v "$GO")"
mkdir -p "$BUILD_DIR/.ocb-go"
cat >"$BUILD_DIR/.ocb-go/go" <<EOF
#!/bin/sh
case "\$1 \$2" in "mod tidy" | "mod download") exit 0 ;; esac
exec "$real_go" "\$@"
EOF
chmod +x "$BUILD_DIR/.ocb-go/go"
PATH="$ROOT/$BUILD_DIR/.ocb-go:$PATH" "$OCB" --skip-compilation --config "$CONFIG" 2>"$BUILD_DIR/ocb.log" ||
  { cat "$BUILD_DIR/ocb.log" >&2; exit 1; }
generated="$(sha256sum "$BUILD_DIR/go.mod" | cut -d' ' -f1)"
marker="// generated go.mod sha256:"

if [[ $RESOLVE -eq 1 ]]; then
  # 2. Resolve. -e: see above; what it tolerated is shown, and the build
  #    below proves it is not needed.
  if ! (cd "$BUILD_DIR" && "$GO" mod tidy -e) 2>"$BUILD_DIR/tidy.log"; then
    cat "$BUILD_DIR/tidy.log" >&2
    exit 1
  fi
  if grep -qv '^go: downloading ' "$BUILD_DIR/tidy.log"; then
    log "go mod tidy -e tolerated (modules only tests of dependencies need):"
    grep -v '^go: downloading ' "$BUILD_DIR/tidy.log" | sed 's/^/   /' >&2
  fi
  # 3. Every component at the version the manifest pins (Go's version
  #    selection may lift a module when another requires more of it).
  bad=0
  while read -r mod ver; do
    [[ "$mod" == github.com/leaderreceivercreator/* ]] && continue # replaced: local
    got="$(cd "$BUILD_DIR" && "$GO" list -m -f '{{.Version}}' "$mod")"
    if [[ "$got" != "$ver" ]]; then
      echo "$mod: the manifest pins $ver, the module graph selects $got" >&2
      bad=1
    fi
  done < <(sed -n 's/^ *- *gomod: *\([^ ]*\) \([^ ]*\) *$/\1 \2/p' "$CONFIG")
  [[ $bad -eq 0 ]] || { echo "pin the versions the graph selects (or fix what lifts them)" >&2; exit 1; }
  { head -n1 "$BUILD_DIR/go.mod"
    echo "// Resolved by hack/build-collector.sh --resolve from $CONFIG (ocb $OCB_VERSION);"
    echo "// do not edit: re-resolve. Relative replace paths are relative to $BUILD_DIR."
    echo "$marker $generated"
    tail -n +2 "$BUILD_DIR/go.mod"; } >"$BUILD_DIR/go.mod.new"
  mv -f "$BUILD_DIR/go.mod.new" "$BUILD_DIR/go.mod"
else
  # 2. The committed graph, if it was resolved from this manifest.
  recorded="$(sed -n "s|^$marker *||p" "$LOCK_MOD" | head -n1)"
  if [[ "$recorded" != "$generated" ]]; then
    echo "$LOCK_MOD was not resolved from $CONFIG as it is now (its modules, versions or replaces changed):" >&2
    echo "re-resolve it with $RESOLVE_CMD and commit $LOCK_MOD and $LOCK_SUM" >&2
    exit 1
  fi
  cp "$LOCK_MOD" "$BUILD_DIR/go.mod"
  cp "$LOCK_SUM" "$BUILD_DIR/go.sum"
fi

# 4. Compile, as ocb would.
build=(build -mod=readonly -trimpath -o "$NAME" "-ldflags=-s -w")
[[ -n "$BUILD_TAGS" ]] && build+=(-tags "$BUILD_TAGS")
if ! (cd "$BUILD_DIR" && "$GO" "${build[@]}"); then
  [[ $RESOLVE -eq 1 ]] ||
    echo "if go asks for go.mod updates or go.sum entries (e.g. the repository root's go.mod moved), re-resolve: $RESOLVE_CMD" >&2
  exit 1
fi

kill "$heartbeat" 2>/dev/null || true
if [[ $RESOLVE -eq 1 ]]; then
  cp "$BUILD_DIR/go.mod" "$LOCK_MOD"
  cp "$BUILD_DIR/go.sum" "$LOCK_SUM"
  touch -r "$stamp" "$LOCK_MOD" "$LOCK_SUM" # inputs of this very build: not newer than its binary
  log "resolved $LOCK_MOD and $LOCK_SUM: commit them"
fi
# Copy then rename, so a collector already running from $OUT is not disturbed.
cp "$BUILD_DIR/$NAME" "$OUT.tmp"
touch -r "$stamp" "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"
log "built bin/$NAME in $((SECONDS - start))s"
