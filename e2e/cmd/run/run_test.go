package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/collectorbin"
)

// TestRunWithFailover is `make run` non-interactively, against a local
// control plane ($KUBECONFIG is ignored): three replicas of the collector
// with distribution/config.yaml, the leader is killed with SIGTERM after
// 15s, and run fails unless a standby took over, at most one group ran at
// any time, only leaders exported data, and something was exported.
func TestRunWithFailover(t *testing.T) {
	collector := collectorbin.Path(t)
	t.Setenv("KUBECONFIG", "")
	require.NoError(t, run(t.Context(), options{
		collector:         collector,
		config:            filepath.Join("..", "..", "..", "distribution", "config.yaml"),
		replicas:          3,
		namespace:         "otel-leader",
		workDir:           t.TempDir(),
		controllerManager: true,
		seed:              "auto",
		duration:          40 * time.Second,
		killLeaderAfter:   15 * time.Second,
		killSignal:        "TERM",
		statusEvery:       5 * time.Second,
		eventEvery:        2 * time.Second,
	}))
}
