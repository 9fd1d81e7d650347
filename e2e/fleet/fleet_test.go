package fleet_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/collectorbin"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// TestFleetRunsReplicasAndRecordsExports exercises the harness itself with
// the real collector: Start starts the replicas under their names, their
// leader-election log lines become events on one clock, the leader's file
// exporter output is recorded batch by batch (with the Kubernetes Events it
// carried), the standby's is empty, and Stop stops them all and records
// their exits. It uses testdata/events-only.yaml (k8s_events as the only
// sub-receiver). How the collector hands over leadership is what the
// scenarios prove; this test stops no leader on its own.
func TestFleetRunsReplicasAndRecordsExports(t *testing.T) {
	collector := collectorbin.Path(t)
	ctx := t.Context()
	cp, err := controlplane.Start(ctx, controlplane.Options{Progress: t.Output()})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, cp.Stop()) })
	cs := cp.Clientset()
	applied, err := cluster.ApplyDeployRBAC(ctx, cp.RESTConfig(), "../../deploy")
	require.NoError(t, err)
	require.True(t, applied, "deploy/'s RBAC manifests")
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
		OnEvent:    func(ev timeline.Event) { t.Logf("%s", ev) },
	})
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			assert.NoError(t, f.Stop(20*time.Second))
		}
	})

	// Start: every replica runs, under its name.
	require.Len(t, f.Replicas(), 2)
	for i, r := range f.Replicas() {
		assert.Equal(t, fleet.ReplicaName(i+1), r.Name)
		assert.Same(t, r, f.Replica(r.Name))
		assert.True(t, r.Running(), "%s runs after Start", r.Name)
	}
	assert.Nil(t, f.Replica("replica-3"))

	// Events: the harness's own, and the collectors' log lines parsed.
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, r := range f.Replicas() {
		for _, k := range []timeline.Kind{timeline.ProcessStarted, timeline.Campaigning} {
			ev, err := f.WaitFor(waitCtx, func(ev timeline.Event) bool { return ev.Replica == r.Name && ev.Kind == k })
			require.NoError(t, err, "%s: %s", r.Name, k)
			assert.Equal(t, r.PID(), ev.PID, "%s: %s carries the process's pid", r.Name, k)
		}
	}
	leader, err := f.WaitForLeader(waitCtx)
	require.NoError(t, err)
	standby := f.Replicas()[0]
	if standby == leader {
		standby = f.Replicas()[1]
	}
	_, err = f.WaitFor(waitCtx, func(ev timeline.Event) bool { return ev.Replica == leader.Name && ev.Kind == timeline.GroupStarted })
	require.NoError(t, err)
	assert.True(t, leader.Leading())
	assert.True(t, leader.HoldsLease())
	assert.False(t, standby.Leading())
	assert.Equal(t, []*fleet.Replica{leader}, f.Leaders())
	assert.NotEmpty(t, leader.Identity(), "the leader's Lease identity, from its log")

	// Exports: a new Event per poll until one of ours is in the leader's
	// output.
	var created []string // UIDs
	n := 0
	require.Eventually(t, func() bool {
		n++
		if ev, err := cluster.CreateEvent(ctx, cs, "demo", n); err == nil {
			created = append(created, string(ev.UID))
		}
		for _, b := range leader.Batches() {
			for _, uid := range b.EventUIDs {
				if slices.Contains(created, uid) {
					return true
				}
			}
		}
		return false
	}, 30*time.Second, 500*time.Millisecond, "an Event created now shows up in the leader's exported batches")
	records := 0
	for _, b := range leader.Batches() {
		assert.Equal(t, "logs", b.Signal, "events-only.yaml exports logs only")
		assert.False(t, b.At.Before(f.T0), "batches are stamped on the fleet's clock")
		records += b.LogRecords
	}
	assert.Equal(t, leader.Counts().LogRecords, records, "Counts sums the batches")
	assert.Equal(t, fleet.Counts{}, standby.Counts(), "a standby exports nothing")
	assert.Empty(t, standby.Batches())

	// The checks built on the above.
	assert.NoError(t, timeline.CheckSingleLeader(f.Events()))
	assert.NoError(t, f.CheckDataOnlyFromLeaders(fleet.ExportSlack))
	spans := timeline.GroupSpans(f.Events())
	require.Len(t, spans, 1)
	assert.Equal(t, leader.Name, spans[0].Replica)
	assert.True(t, spans[0].End.IsZero(), "the leader's group span is open while it runs")

	// Stop: every replica exits, and the exits are events.
	require.NoError(t, f.Stop(20*time.Second))
	stopped = true
	for _, r := range f.Replicas() {
		assert.False(t, r.Running(), "%s after Stop", r.Name)
		_, err := f.WaitFor(waitCtx, func(ev timeline.Event) bool { return ev.Replica == r.Name && ev.Kind == timeline.ProcessExited })
		assert.NoError(t, err, "%s: process exited", r.Name)
	}
	spans = timeline.GroupSpans(f.Events())
	require.NotEmpty(t, spans)
	assert.False(t, spans[0].End.IsZero(), "Stop ended the leader's group span")
}
