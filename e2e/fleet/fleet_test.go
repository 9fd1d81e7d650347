package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/collectorbin"
)

// TestFleetGracefulFailover exercises the harness itself with the real
// collector: two replicas, the leader exports Kubernetes Events, is stopped
// gracefully, the other takes over and exports the next ones. It uses
// testdata/events-only.yaml (k8s_events as the only sub-receiver).
func TestFleetGracefulFailover(t *testing.T) {
	collector := collectorbin.Path(t)
	ctx := t.Context()
	cp, err := controlplane.Start(ctx, controlplane.Options{Progress: t.Output()})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, cp.Stop()) })
	cs := cp.Clientset()
	require.NoError(t, cluster.EnsureCollectorRBAC(ctx, cs, cluster.Namespace, cluster.ServiceAccount, cluster.LeaseName))
	require.NoError(t, cluster.SeedDemo(ctx, cs, "demo", true))
	kubeconfig, err := cp.ServiceAccountKubeconfig(ctx, cluster.Namespace, cluster.ServiceAccount, "")
	require.NoError(t, err)

	f, err := fleet.Start(fleet.Options{
		Collector:  collector,
		Config:     "../testdata/events-only.yaml",
		Replicas:   2,
		Dir:        t.TempDir(),
		Namespace:  cluster.Namespace,
		Kubeconfig: kubeconfig,
		OnEvent:    func(ev fleet.Event) { t.Logf("%s", ev) },
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, f.Stop(20*time.Second))
		for _, r := range f.Replicas() {
			assert.False(t, r.Running())
		}
	})

	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	first, err := f.WaitForLeader(waitCtx)
	require.NoError(t, err)
	n := 0
	require.Eventually(t, func() bool { // a new Event per poll until one is exported
		n++
		_, err := cluster.CreateEvent(ctx, cs, "demo", n)
		return err == nil && first.Counts().LogRecords > 0
	}, 30*time.Second, 500*time.Millisecond)
	require.Eventually(t, func() bool { return first.Healthy(ctx) }, 10*time.Second, 100*time.Millisecond)

	require.NoError(t, first.Stop(20*time.Second))
	assert.Equal(t, 0, first.ExitCode())
	_, err = f.WaitFor(waitCtx, func(ev fleet.Event) bool { return ev.Replica == first.Name && ev.Kind == fleet.Released })
	require.NoError(t, err, "a graceful shutdown releases the lease")
	second, err := f.WaitForLeader(waitCtx)
	require.NoError(t, err)
	require.NotEqual(t, first.Name, second.Name)
	require.Eventually(t, func() bool {
		n++
		_, err := cluster.CreateEvent(ctx, cs, "demo", n)
		return err == nil && second.Counts().LogRecords > 0
	}, 30*time.Second, 500*time.Millisecond)

	assert.NoError(t, fleet.CheckSingleLeader(f.Events()))
	assert.NoError(t, f.CheckDataOnlyFromLeaders(fleet.ExportSlack))
	terms := fleet.Terms(f.Events())
	require.Len(t, terms, 2)
	t.Logf("takeover: group of %s started %s after %s's stopped", second.Name, terms[1].Start.Sub(terms[0].End), first.Name)
}
