# The README's two commands are `make run` and `make test`; both must work on a
# fresh machine that has only Go, the Go module proxy and apt.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
export GOBIN := $(BIN)

.PHONY: run test checks pins unit unit-newest alerts-test alerts-run bump-collector stress generate generate-check vet lint distribution distribution-newest controlplane e2e e2e-builds e2e-compile e2e-run compat bench lossless scale standby-cost clean

## run: build the distribution and run three replicas against $KUBECONFIG or a local control plane
run: distribution
	cd e2e && $(GO) run ./cmd/run --collector $(BIN)/otelcol-leader --config $(CURDIR)/distribution/config.yaml $(RUN_ARGS)

## test: generated code is fresh; the end-to-end proof (control plane and distribution built side by side, then real processes); lint of both modules (golangci-lint runs go vet) and unit tests with -race beside it, at low priority
# On a cold machine the work is CPU-bound: compiling Kubernetes, the
# distribution, golangci-lint and the race-instrumented unit tests. Three
# jobs run at once and share nothing they compile:
#   1. the control plane (Kubernetes v1.37.2 from the module proxy, or the
#      release KUBE_VERSION names: see controlplane below),
#   2. the distribution, then the e2e test binaries; when 1 and 2 are done,
#      the end-to-end run, which mostly waits on timers and processes
#      (1 and 2 are `make e2e`);
#   3. lint, the alert rules' tests (promtool, built first), then the unit
#      tests, at nice 19: they get the CPU that 1 and 2
#      leave, most of it during the end-to-end run. At normal priority they
#      would delay that run's start by as much as they take.
# Each job's output is shown whole when it ends. Every stage prints when it
# started and how long it took (hack/stage.sh); a table of all of them ends
# the run.
test:
	@mkdir -p $(BIN); export STAGE_T0=$$(date +%s) STAGE_LOG=$(BIN)/stages.log; : >$(BIN)/stages.log; \
	  $(STAGE) generate-check $(MAKE) --no-print-directory generate-check && \
	  $(MAKE) -j3 --output-sync=target e2e checks; rc=$$?; \
	  hack/stage-summary.sh $(BIN)/stages.log; exit $$rc

# The unit tests run at both ends of the collector range we claim: go.mod's
# minimum, and the newest line (hack/versions.yaml) in a scratch copy.
checks:
	nice -n 19 $(MAKE) pins
	nice -n 19 $(MAKE) lint
	nice -n 19 $(MAKE) alerts-test
	nice -n 19 $(MAKE) unit
	nice -n 19 $(MAKE) unit-newest

# Runs a stage of make test, timed (see test).
STAGE := $(CURDIR)/hack/stage.sh

unit:
	$(STAGE) unit $(GO) test -race -count=1 ./...

# promtool and the Prometheus server are pinned in hack/tools/promtool/go.mod,
# a module of their own (neither enters the component's module graph nor
# golangci-lint's), and built without cloud service discovery.
PROMTOOLS := $(CURDIR)/hack/tools/promtool
PROM_BUILD = $(GO) build -trimpath -tags remove_all_sd \
	-ldflags "-X github.com/prometheus/common/version.Version=$$($(GO) list -m -f '{{.Version}}' github.com/prometheus/prometheus)"

$(BIN)/promtool: $(PROMTOOLS)/go.mod $(PROMTOOLS)/go.sum
	cd $(PROMTOOLS) && $(STAGE) promtool $(PROM_BUILD) -o $@ github.com/prometheus/prometheus/cmd/promtool

$(BIN)/prometheus: $(PROMTOOLS)/go.mod $(PROMTOOLS)/go.sum
	cd $(PROMTOOLS) && $(PROM_BUILD) -o $@ github.com/prometheus/prometheus/cmd/prometheus

## alerts-test: the alert rules of deploy/alerts/ checked and unit-tested with promtool (rules.test.yaml); go test ./deploy keeps their PrometheusRule and Helm forms equal
alerts-test: $(BIN)/promtool
	cd deploy/alerts && $(STAGE) alerts-test sh -c '$(BIN)/promtool check rules leader-receiver-creator.rules.yaml && $(BIN)/promtool test rules rules.test.yaml'

## alerts-run: the alert rules once against a real control plane: 3 replicas, a Prometheus (hack/tools/promtool) scraping them, handovers, kube-apiserver down for 90 s; NoLeader must fire then only, TwoLeaders never (docs/monitoring.md; not part of make test; ALERTS_ARGS=-h lists the options)
alerts-run: distribution $(BIN)/prometheus
	cd e2e && $(GO) run ./cmd/alerts --collector $(BIN)/otelcol-leader --prometheus $(BIN)/prometheus $(ALERTS_ARGS)

## pins: every version pin agrees with hack/versions.yaml (e2e/pins; make bump-collector moves them)
pins:
	cd e2e && $(STAGE) pins $(GO) test -count=1 ./pins/

## bump-collector: move every version pin at once (hack/versions.yaml, then go.mod, the builder configs, ocb, the control plane's Kubernetes, the README's tables), then re-resolve the module graphs: make bump-collector V=v0.153.0 [CONTRIB=…] [NEWEST=v0.166.0] [NEWEST_CONTRIB=…] [KUBE=v1.37.3]
bump-collector:
	cd e2e && $(GO) run ./cmd/bump-collector -root .. $(if $(V),-core $(V)) $(if $(CONTRIB),-contrib $(CONTRIB)) \
	  $(if $(NEWEST),-newest $(NEWEST)) $(if $(NEWEST_CONTRIB),-newest-contrib $(NEWEST_CONTRIB)) $(if $(KUBE),-kubernetes $(KUBE))
	$(GO) mod tidy -e # core's test-only modules are not all served at every release
	cd e2e && $(GO) mod tidy
	hack/build-distribution.sh --resolve
	hack/build-peer.sh --resolve
	hack/build-newest.sh --resolve

## unit-newest: the unit tests against the newest collector line (hack/versions.yaml), in bin/_newest
unit-newest:
	$(STAGE) unit-newest hack/unit-newest.sh

SEEDS ?= 100

## stress: the randomized simulation (simulation_test.go) over SEEDS seeds; a failing seed prints how to replay it
stress:
	SIM_SEEDS=$(SEEDS) $(GO) test -count=1 -timeout 60m -run '^TestSimulationNeverRunsTwoGroups$$' .

vet:
	$(GO) vet ./...
	cd e2e && $(GO) vet ./...

# mdatagen names the package of its generated tests after the directory it
# runs in, so it runs in a symlink named like the package, wherever the
# checkout lives.
generate:
	@tmp=$$(mktemp -d) && ln -s "$(CURDIR)" "$$tmp/leaderreceivercreator" && \
	  (cd "$$tmp/leaderreceivercreator" && $(GO) generate ./...); rc=$$?; rm -rf "$$tmp"; exit $$rc

generate-check: generate
	@test -z "$$(git status --porcelain -- internal/metadata documentation.md 'generated_*.go')" || \
	  (git status --short -- internal/metadata documentation.md 'generated_*.go'; \
	   echo "generated code is stale: run 'make generate' and commit the result" >&2; exit 1)

# golangci-lint is pinned in hack/tools/go.mod (a tool line), outside the
# component's module graph that distributions inherit.
LINT := $(GO) tool -modfile=$(CURDIR)/hack/tools/go.mod golangci-lint

lint:
	$(STAGE) lint $(LINT) run ./...
	cd e2e && $(STAGE) lint-e2e $(LINT) run ./...

## distribution: build bin/otelcol-leader: ocb v0.152.0 sources, built with the committed distribution/go.mod and go.sum (only when an input changed; after moving a pin: hack/build-distribution.sh --resolve)
distribution: $(BIN)/otelcol-leader

## distribution-newest: build bin/otelcol-leader-newest, our component on the newest core (ocb v0.165.0; not part of make test)
distribution-newest: $(BIN)/otelcol-leader-newest

# The inputs of a collector build: its builder config, the module graph
# resolved for it (go.mod and go.sum beside it), the build scripts and, for
# our distributions, this module's non-test sources (e2e/, deploy/,
# distribution/ and the tools module are modules or files of their own).
COMPONENT_SOURCES := $(shell find . \( -path ./bin -o -path ./.git -o -path ./e2e -o -path ./deploy -o -path ./distribution -o -path ./hack/tools \) -prune \
	-o \( \( -name '*.go' ! -name '*_test.go' \) -o -name go.mod -o -name go.sum \) -print)

$(BIN)/otelcol-leader: distribution/builder-config.yaml distribution/go.mod distribution/go.sum hack/build-collector.sh hack/build-distribution.sh $(COMPONENT_SOURCES)
	$(STAGE) distribution hack/build-distribution.sh

$(BIN)/otelcol-leader-newest: distribution/newest/builder-config.yaml distribution/newest/go.mod distribution/newest/go.sum hack/build-collector.sh hack/build-newest.sh $(COMPONENT_SOURCES)
	hack/build-newest.sh

$(BIN)/otelcol-peer: e2e/peer/builder-config.yaml e2e/peer/go.mod e2e/peer/go.sum hack/build-collector.sh hack/build-peer.sh
	hack/build-peer.sh

## e2e: the end-to-end proof alone (builds what it needs first); KUBE_VERSION=v1.34.4 make e2e runs it on another Kubernetes release
e2e:
	$(MAKE) -j2 --output-sync=target controlplane e2e-builds
	$(MAKE) e2e-run

# What the end-to-end tests need besides the control plane, one after the
# other: the distribution (ocb) and the e2e module's test binaries (compiled,
# not run: their packages land in the build cache for e2e-run).
e2e-builds:
	$(MAKE) distribution
	$(MAKE) e2e-compile

e2e-compile:
	cd e2e && $(STAGE) e2e-compile $(GO) test -count=1 -exec true ./... >/dev/null # compile and link only: true "runs" each test binary

# The compatibility matrix (e2e/compat: nine collectors on a control plane of
# its own) runs after the other packages, not beside them: the scenarios'
# timings are short. In make test it runs COMPAT_TERMS terms per row (its
# default, 3); make compat runs 30.
e2e-run:
	cd e2e && E2E_COLLECTOR=$(BIN)/otelcol-leader $(STAGE) e2e-run $(GO) test -count=1 -timeout 40m $$($(GO) list ./... | grep -v '/compat$$')
	cd e2e && E2E_COLLECTOR=$(BIN)/otelcol-leader $(STAGE) e2e-compat $(GO) test -count=1 -timeout 20m ./compat/

COMPAT_TERMS ?= 30

## compat: the compatibility matrix in full: every receiver, and all of them in one group, through COMPAT_TERMS (30) terms in one process (docs/compatibility.md)
compat:
	$(MAKE) -j2 distribution controlplane
	cd e2e && E2E_COLLECTOR=$(BIN)/otelcol-leader COMPAT_TERMS=$(COMPAT_TERMS) $(GO) test -count=1 -timeout 90m -v -run '^TestCompatibility$$' ./compat/

## controlplane: build kube-apiserver and etcd once into ~/.cache/leaderreceivercreator/k8s-<version> (kube-controller-manager: on first use, by `make run` or E2E_CONTROLLER_MANAGER=1 make test)
# The version is v1.37.2 (controlplane.DefaultKubernetesVersion) unless the
# environment or make's command line sets KUBE_VERSION to another release
# the module proxy serves (v1.MINOR.PATCH: `go list -m -versions
# k8s.io/kubernetes`); every target that starts a control plane (test, e2e,
# compat, run, bench) follows it, and each version is cached apart. etcd is
# the version that release's go.mod requires. docs/compatibility.md lists
# the releases the e2e suite was run on.
# The build runs in the test binary's TestMain: on a cold machine, side by
# side with the other builds, it takes longer than go test's default 10m.
controlplane:
	cd e2e && $(STAGE) controlplane $(GO) test -count=1 -timeout 60m -run '^TestStagingModules$$' ./controlplane/

## bench: handover measurements, ours and contrib's k8s_leader_elector side by side (BENCH_FLAGS=--quick for a smoke run)
bench: distribution $(BIN)/otelcol-peer
	cd e2e && $(GO) run ./cmd/bench --collector $(BIN)/otelcol-leader --peer $(BIN)/otelcol-peer $(BENCH_FLAGS)

## lossless: Events lost and duplicated per handover (10 SIGTERM, 5 SIGKILL, 3 replicas) by k8s_objects and k8s_events: ours with the checkpoint storage, ours without it, and the peer with file_storage, side by side (docs/performance.md; ~10 min; LOSSLESS_FLAGS="--sigterm 2 --sigkill 1" for a smoke run)
lossless: distribution $(BIN)/otelcol-peer
	cd e2e && $(GO) run ./cmd/lossless --collector $(BIN)/otelcol-leader --peer $(BIN)/otelcol-peer \
	  --out $(BIN)/lossless-results.json --markdown $(BIN)/lossless.md $(LOSSLESS_FLAGS)

## scale: 1, 10, 25 and 50 leader_receiver_creator blocks (each its own Lease and one http_check) on 3 replicas: start, SIGTERM handover, CPU, RSS, API requests, overlap per block (docs/performance.md; SCALE_FLAGS=--help for the flags; not part of make test)
scale: distribution
	cd e2e && $(GO) run ./cmd/scale --collector $(BIN)/otelcol-leader $(SCALE_FLAGS)

## standby-cost: RSS of a standby of distribution/config.yaml's block against the same binary without our block, 7 pairs read 60 s after start, both run as in a pod (auth_type serviceAccount: needs root and unshare; SCALE_FLAGS=--auth=kubeConfig otherwise) (docs/performance.md; not part of make test)
standby-cost: distribution
	cd e2e && $(GO) run ./cmd/scale --collector $(BIN)/otelcol-leader --standby-cost --out standby-cost-results.json $(SCALE_FLAGS)

clean:
	rm -rf $(BIN)

## prove-release: build a collector with ocb from README's snippet against a scratch tag of HEAD served by a file:// module proxy; check it lists and validates leader_receiver_creator (RELEASING.md; not part of make test)
.PHONY: prove-release
prove-release:
	hack/prove-release.sh
