package scenarios

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// TestAPIServerDownLongerThanLease: while kube-apiserver is away for longer
// than lease_duration every group stops and none starts; once it is back
// exactly one replica leads.
func TestAPIServerDownLongerThanLease(t *testing.T) {
	s := start(t, options{})
	old := s.leader(time.Minute)
	s.exporting(old)

	t.Cleanup(func() { // leave the shared control plane running
		if s.cp.APIServerPID() == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			assert.NoError(t, s.cp.StartAPIServer(ctx))
		}
	})
	stopping := time.Now()
	require.NoError(t, s.cp.StopAPIServer()) // graceful: returns once it exited
	down := time.Now()
	s.waitFor(renewDeadline+10*time.Second, "the leader stops its group", func(ev timeline.Event) bool {
		return ev.Replica == old.Name && ev.Kind == timeline.GroupStopped && ev.At.After(stopping)
	})
	for _, r := range s.f.Replicas() {
		s.waitFor(30*time.Second, r.Name+" reports the API server gone", func(ev timeline.Event) bool {
			return ev.Replica == r.Name && ev.Kind == timeline.LeaseUnreachable && ev.At.After(stopping)
		})
	}
	s.hold(down.Add(leaseDuration + 2*retryPeriod))
	up := time.Now()
	require.NoError(t, s.cp.StartAPIServer(s.within(time.Minute)))
	t.Logf("kube-apiserver stopping at %.3fs, gone at %.3fs, back at %.3fs",
		stopping.Sub(s.t0).Seconds(), down.Sub(s.t0).Seconds(), time.Since(s.t0).Seconds())

	assert.Zero(t, s.count(func(ev timeline.Event) bool {
		return ev.Kind == timeline.GroupStarted && ev.At.After(stopping) && ev.At.Before(up)
	}), "no group started while kube-apiserver was away")
	for _, r := range s.f.Replicas() {
		assert.Equal(t, 1, s.count(func(ev timeline.Event) bool {
			return ev.Replica == r.Name && ev.Kind == timeline.LeaseUnreachable && ev.At.After(stopping)
		}), "%s reports the API server gone once", r.Name)
	}
	next := s.leader(time.Minute)
	s.exporting(next)
	t.Logf("%s leads %s after kube-apiserver was back", next.Name, timeline.GroupSpans(s.f.Events())[1].Start.Sub(up))
	for _, r := range s.f.Replicas() {
		assert.True(t, r.Running(), r.Name)
	}
}
