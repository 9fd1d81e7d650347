#!/usr/bin/env bash
# Proves a release as a user would consume it: tags a commit with the
# release's version, serves that version from a file:// module proxy, builds a
# collector with ocb from the README's builder-config snippet (the lines
# between <!-- ocb-snippet:begin --> and <!-- ocb-snippet:end -->, kept
# exactly), and checks that the collector lists and validates
# leader_receiver_creator.
#
#   hack/prove-release.sh [VERSION [COMMIT]]   # make prove-release
#
# COMMIT defaults to HEAD, VERSION to the version the README's snippet names
# for this module (both read at COMMIT: uncommitted changes are not proven).
# Exits non-zero if any step or check fails. Not part of make test: it
# builds a collector of its own (several minutes cold on 2 cores).
#
# Nothing leaves the scratch directory: the tag lives in a scratch bare
# repository (never in this repository's tags), the module cache the build
# uses is ${XDG_CACHE_HOME:-~/.cache}/leaderreceivercreator/prove-release,
# not Go's shared one, and this module is removed from it first, so a second
# run never reuses the first run's copy of the version. KEEP=1 keeps the
# scratch directory (builder config, generated sources, binary) for a look.
#
# Checks before the build, all at COMMIT: the version has the scheme
# v0.<minimum collector minor>.<patch> and its minor is go.mod's collector
# line (go.opentelemetry.io/collector/otelcol); CHANGELOG.md has a section
# for it; README's version table has a row for it; the snippet names it and
# has no replaces line (a user has no checkout to point at).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GO="${GO:-go}"
MODULE="github.com/leaderreceivercreator/leaderreceivercreator"
start=$SECONDS

log() { printf '>> [%4ds] %s\n' "$((SECONDS - start))" "$*" >&2; }
fail() { printf 'prove-release: FAIL: %s\n' "$*" >&2; exit 1; }

COMMIT="$(git -C "$ROOT" rev-parse --verify "${2:-HEAD}^{commit}")"
at() { git -C "$ROOT" show "$COMMIT:$1"; }

# The README's snippet: the lines inside the ```yaml fence between the markers.
snippet="$(at README.md | awk '
  /<!-- ocb-snippet:begin -->/ { inside = 1; next }
  /<!-- ocb-snippet:end -->/   { inside = 0; next }
  inside && /^```/             { next }
  inside                       { print }')"
[[ -n "$snippet" ]] || fail "README.md at $COMMIT has no <!-- ocb-snippet:begin --> ... <!-- ocb-snippet:end --> block"

snippet_version="$(sed -n "s#^ *- gomod: ${MODULE} \(v[^ ]*\) *\$#\1#p" <<<"$snippet")"
VERSION="${1:-$snippet_version}"

# --- checks on COMMIT's files ---------------------------------------------
[[ "$VERSION" =~ ^v0\.([0-9]+)\.([0-9]+)$ ]] || fail "version '$VERSION' is not v0.<minimum collector minor>.<patch>"
minor="${BASH_REMATCH[1]}"
[[ "$snippet_version" == "$VERSION" ]] || fail "README's snippet names ${MODULE} '${snippet_version}', not $VERSION"
! grep -q '^ *replaces:' <<<"$snippet" || fail "README's snippet has a replaces line"

gomod_version() { at go.mod | awk -v m="$1" '$1 == m { print $2; exit }'; }
core="$(gomod_version go.opentelemetry.io/collector/otelcol)"      # e.g. v0.152.0
stable="$(gomod_version go.opentelemetry.io/collector/component)"  # e.g. v1.58.0
[[ -n "$core" && -n "$stable" ]] || fail "go.mod at $COMMIT does not require go.opentelemetry.io/collector/otelcol and .../component"
[[ "$core" == "v0.${minor}."* ]] || fail "$VERSION says collector v0.${minor}, but go.mod requires otelcol $core"
at CHANGELOG.md | grep -q "^## \[${VERSION#v}\]" || fail "CHANGELOG.md has no '## [${VERSION#v}]' section"
at README.md | grep -q "^| ${VERSION} |" || fail "README.md's version table has no row for $VERSION"
log "proving $MODULE $VERSION at ${COMMIT:0:12} (go.mod: collector $core / $stable)"

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/leaderreceivercreator/prove-release"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/prove-release.XXXXXX")"
heartbeat=""
cleanup() {
  [[ -z "$heartbeat" ]] || kill "$heartbeat" 2>/dev/null || true
  if [[ "${KEEP:-}" == 1 ]]; then log "kept $WORK"; return; fi
  chmod -R u+w "$WORK" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- 1. the tag, in a scratch repository ----------------------------------
repo="$WORK/repo.git"
git init -q --bare "$repo"
git -C "$ROOT" push -q "$repo" "$COMMIT:refs/heads/main" "$COMMIT:refs/tags/$VERSION"
log "tagged $VERSION in a scratch repository ($repo)"

# --- 2. a file:// module proxy serving the version -------------------------
# The go command fetches the tag as it would from GitHub (GOPROXY=direct, the
# GitHub URL rewritten to the scratch repository) and builds the module zip
# exactly as a public proxy does; its download cache is already in the proxy
# layout (<module>/@v/<version>.{info,mod,zip} and a list).
cat >"$WORK/gitconfig" <<EOF
[url "file://$repo"]
	insteadOf = https://$MODULE
EOF
mkdir -p "$WORK/empty"
fetched="$(cd "$WORK/empty" && GIT_CONFIG_GLOBAL="$WORK/gitconfig" GIT_CONFIG_NOSYSTEM=1 \
  GOPROXY=direct GONOSUMDB="$MODULE" GOMODCACHE="$WORK/fetch" GOFLAGS=-modcacherw \
  "$GO" mod download -json "$MODULE@$VERSION")" || { printf '%s\n' "$fetched" >&2; fail "go mod download $MODULE@$VERSION from the scratch tag"; }
origin_hash="$(sed -n 's/^\t\t"Hash": "\(.*\)",\{0,1\}$/\1/p' <<<"$fetched")"
[[ "$origin_hash" == "$COMMIT" ]] || fail "the fetched $VERSION is commit '$origin_hash', not $COMMIT"
zip_sum="$(sed -n 's/^\t"Sum": "\(.*\)",$/\1/p' <<<"$fetched")"
proxy="$WORK/proxy"
mkdir -p "$proxy/$MODULE/@v"
for ext in info mod zip; do cp "$WORK/fetch/cache/download/$MODULE/@v/$VERSION.$ext" "$proxy/$MODULE/@v/"; done
echo "$VERSION" >"$proxy/$MODULE/@v/list"
log "file:// proxy at $proxy serves $VERSION ($zip_sum, $(du -k "$proxy/$MODULE/@v/$VERSION.zip" | cut -f1) KiB zip)"

# --- 3. ocb at the module's minimum collector line ---------------------------
OCB="$CACHE/ocb-$core/builder"
if [[ ! -x "$OCB" ]]; then
  log "installing ocb $core into $CACHE/ocb-$core"
  GOBIN="$CACHE/ocb-$core" "$GO" install "go.opentelemetry.io/collector/cmd/builder@$core"
fi

# The user's lines exactly, inside a complete builder config: a dist section
# before them, and an exporter and the config providers after them unless
# the snippet has its own.
build="$WORK/build"
config="$WORK/builder-config.yaml"
{
  cat <<EOF
# hack/prove-release.sh: README's snippet at ${COMMIT:0:12}, between the markers below.
dist:
  name: otelcol-prove
  description: leader_receiver_creator $VERSION from a file:// module proxy (hack/prove-release.sh)
  module: example.com/otelcol-prove
  version: ${VERSION#v}
  output_path: $build
# --- README snippet begin ---
EOF
  printf '%s\n' "$snippet"
  echo "# --- README snippet end ---"
  grep -q '^exporters:' <<<"$snippet" || cat <<EOF
exporters:
  - gomod: go.opentelemetry.io/collector/exporter/debugexporter $core
EOF
  grep -q '^providers:' <<<"$snippet" || cat <<EOF
providers:
  - gomod: go.opentelemetry.io/collector/confmap/provider/envprovider $stable
  - gomod: go.opentelemetry.io/collector/confmap/provider/fileprovider $stable
  - gomod: go.opentelemetry.io/collector/confmap/provider/yamlprovider $stable
EOF
} >"$config"

# --- 4. the build ----------------------------------------------------------
# Modules: ours from the file:// proxy first; then Go's shared download cache
# read as a file:// proxy (no network for what is already downloaded); then
# the usual GOPROXY. They land in the dedicated module cache, not the shared
# one, which never sees the scratch tag.
shared_cache="$("$GO" env GOMODCACHE)/cache/download"
export GOMODCACHE="$CACHE/modcache"
export GOPROXY="file://$proxy,file://$shared_cache,$("$GO" env GOPROXY)"
# Checksums: the checksum database knows nothing of a version that is only
# tagged locally, and has no entry for some contrib modules this proxy
# serves (hack/build-collector.sh's NOSUMDB).
NOSUMDB="$MODULE,github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckv2extension"
export GONOSUMDB="${GONOSUMDB:+${GONOSUMDB},}${NOSUMDB}"
export GOFLAGS="${GOFLAGS:+${GOFLAGS} }-modcacherw"
case " $GOFLAGS " in *" -buildvcs="*) ;; *) export GOFLAGS="$GOFLAGS -buildvcs=false" ;; esac
rm -rf "${GOMODCACHE:?}/$MODULE@$VERSION" "${GOMODCACHE:?}/cache/download/$MODULE"

# ocb only generates the sources (--skip-get-modules --skip-compilation): its
# own `go mod tidy` fails on this module proxy, which does not serve some of
# the collector's test-only modules at v0.152 (zpagesextension, telemetrytest,
# extensionauthtest, extensionmiddlewaretest: /work/shared notes). `go mod
# tidy -e` tolerates them (nothing in the build imports them); then go build
# with ocb's own flags (-trimpath, -ldflags="-s -w"). Against a complete
# proxy a plain `builder --config ...` does all of it.
log "ocb $core: generating the sources from README's snippet ($config)"
"$OCB" --config "$config" --skip-get-modules --skip-compilation >"$WORK/ocb.log" 2>&1 || { cat "$WORK/ocb.log" >&2; fail "ocb"; }
cd "$build"
log "go mod tidy -e (GOPROXY=$GOPROXY)"
"$GO" mod tidy -e -compat=1.25 2>"$WORK/tidy.log" || { cat "$WORK/tidy.log" >&2; fail "go mod tidy -e"; }
unserved="$(sed -n 's#.*reading .*/\(go\.opentelemetry\.io/.*\)/@v/\(v[^/]*\)\.zip: 40[34].*#\1@\2#p' "$WORK/tidy.log" | sort -u | tr '\n' ' ')"
[[ -z "$unserved" ]] || log "go mod tidy -e: not served, tolerated: $unserved"

# ocb's strict versioning, which --skip-get-modules skipped: every module of
# the builder config resolves to the major.minor it names; and ours is the
# tagged version from the proxy, not a replacement.
resolved() { "$GO" list -m -f '{{.Version}}{{with .Replace}} => {{.Path}} {{.Version}}{{end}}' "$1"; }
got="$(resolved "$MODULE")"
[[ "$got" == "$VERSION" ]] || fail "$MODULE resolved to '$got', not $VERSION"
grep -q "^$MODULE $VERSION $zip_sum\$" go.sum || fail "go.sum has not the fetched zip's sum for $MODULE $VERSION"
got="$(resolved go.opentelemetry.io/collector/otelcol)"
[[ "$got" == "v0.${minor}."* ]] || fail "otelcol resolved to '$got', not the v0.${minor} line"
while read -r mod ver; do
  got="$(resolved "$mod")"
  [[ "${got%.*}" == "${ver%.*}" ]] || fail "$mod resolved to '$got', not the line of $ver"
done < <(sed -n 's/^ *- gomod: *\([^ ]*\) \(v[^ ]*\) *$/\1 \2/p' "$config")
log "resolved: $MODULE $VERSION, otelcol $(resolved go.opentelemetry.io/collector/otelcol), client-go $(resolved k8s.io/client-go)"

log "go build (cold: several minutes)"
( while sleep 60 >/dev/null 2>&1; do log "still building..."; done ) &
heartbeat=$!
"$GO" build -trimpath -o otelcol-prove -ldflags="-s -w" -gcflags= . || { kill "$heartbeat" 2>/dev/null; grep -v "^go: downloading " "$WORK/tidy.log" >&2; fail "go build (go mod tidy -e's messages above)"; }
kill "$heartbeat" 2>/dev/null || true
log "built $build/otelcol-prove ($(du -m otelcol-prove | cut -f1) MB)"

# --- 5. the collector lists and validates the receiver -----------------------
./otelcol-prove components >"$WORK/components.txt" 2>&1 || { cat "$WORK/components.txt" >&2; fail "otelcol-prove components"; }
for c in leader_receiver_creator k8s_cluster k8s_events; do
  grep -q "name: $c\$" "$WORK/components.txt" || { cat "$WORK/components.txt" >&2; fail "components does not list $c"; }
done
log "components lists receivers: $(sed -n '/^receivers:/,/^[a-z]/s/^ *- name: //p' "$WORK/components.txt" | tr '\n' ' ')"

# A small config: one leader_receiver_creator block with a k8s_events member.
# validate checks the block's own fields (a sub-receiver's configuration is
# built at start, through the collector's factories, not by validate), so a
# second config with a bad block field must be refused, naming the field.
write_config() {
  cat >"$WORK/$1.yaml" <<EOF
receivers:
  leader_receiver_creator:
    leader_election:
      lease_name: otel-cluster-receivers
      lease_namespace: otel-leader$2
    receivers:
      k8s_events:
        namespaces: [default]
exporters:
  debug: {}
service:
  pipelines:
    logs: {receivers: [leader_receiver_creator], exporters: [debug]}
EOF
}
write_config valid ''
./otelcol-prove validate --config "$WORK/valid.yaml" >"$WORK/valid.log" 2>&1 || { cat "$WORK/valid.yaml" "$WORK/valid.log" >&2; fail "validate of a leader_receiver_creator block with a k8s_events member"; }
log "validate: a leader_receiver_creator block with a k8s_events member is valid"
write_config invalid $'\n      renew_deadline: 20s'
if ./otelcol-prove validate --config "$WORK/invalid.yaml" >"$WORK/invalid.log" 2>&1; then
  cat "$WORK/invalid.yaml" >&2
  fail "validate accepted renew_deadline 20s with lease_duration 15s"
fi
grep -q 'receivers::leader_receiver_creator: leader_election.renew_deadline' "$WORK/invalid.log" || { cat "$WORK/invalid.log" >&2; fail "validate refused the block without naming the field"; }
log "validate refuses a bad block: $(grep -o 'receivers::leader_receiver_creator: .*' "$WORK/invalid.log" | head -n1)"

echo "prove-release: OK: $MODULE $VERSION (${COMMIT:0:12}) builds from README's snippet with ocb $core, in $((SECONDS - start))s"
