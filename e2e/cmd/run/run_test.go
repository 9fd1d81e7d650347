package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/collectorbin"
)

// TestRunReportsCheck is `make run` non-interactively, with the flags'
// defaults (three replicas of distribution/config.yaml, a local control
// plane and the demo workloads; $KUBECONFIG is ignored) and --duration: the
// driver needs no terminal, stops by itself once the duration has passed,
// and ends with the group spans, what each replica exported and a CHECK OK
// line; run returns an error only if the check failed. It kills no leader:
// handovers are the scenarios' subject.
//
// `make run` runs kube-controller-manager (--controller-manager=true); so
// does this test with E2E_CONTROLLER_MANAGER=1. Without it, as in `make
// test`, it runs as --controller-manager=false, where the demo seeds a Node
// and Running Pods itself, so that `make test` never compiles the
// controller manager (minutes on a cold machine); controlplane's
// TestControllerManagerCreatesPodsAndEvents proves that part, with the same
// variable.
func TestRunReportsCheck(t *testing.T) {
	collector := collectorbin.Path(t)
	t.Setenv("KUBECONFIG", "")
	var buf bytes.Buffer
	outMu.Lock()
	out = io.MultiWriter(os.Stdout, &buf)
	outMu.Unlock()
	t.Cleanup(func() {
		outMu.Lock()
		out = os.Stdout
		outMu.Unlock()
	})

	start := time.Now()
	err := run(t.Context(), options{
		collector:         collector,
		config:            filepath.Join("..", "..", "..", "distribution", "config.yaml"),
		replicas:          3,
		namespace:         "otel-leader",
		workDir:           t.TempDir(),
		controllerManager: controlplane.ControllerManagerTests(),
		seed:              "auto",
		duration:          40 * time.Second,
		killSignal:        "TERM",
		statusEvery:       5 * time.Second,
		eventEvery:        2 * time.Second,
	})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 40*time.Second, "run returned before --duration")

	outMu.Lock()
	printed := buf.String()
	outMu.Unlock()
	line := func(pattern string) *regexp.Regexp { return regexp.MustCompile(`(?m)^\[ *[0-9]+\.[0-9]s\] ` + pattern) }
	for _, want := range []*regexp.Regexp{
		line(`--duration 40s reached$`),
		line(`group spans \(sub-receiver group running\):$`),
		line(`  replica-[123] pid [0-9]+: `),
		line(`  replica-1 exported [0-9]+ metric data points`),
		line(`  replica-2 exported `),
		line(`  replica-3 exported `),
		line(`CHECK OK: at most one group ran at any time, and only leaders exported data$`),
	} {
		assert.Regexp(t, want, printed)
	}
	assert.NotContains(t, printed, "CHECK FAILED")
	assert.NotContains(t, printed, "killing the leader")
}
