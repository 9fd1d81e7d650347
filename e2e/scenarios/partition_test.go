package scenarios

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/tcpproxy"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// TestPartitionedLeaderStopsFirstAndRejoins: a leader cut off from the API
// server (its connections closed, new ones blackholed) stops its group
// before any other replica starts one; once the network heals it reaches
// the Lease again and stands by.
func TestPartitionedLeaderStopsFirstAndRejoins(t *testing.T) {
	s := start(t, options{})
	old := s.leader(time.Minute)
	s.exporting(old)

	cut := time.Now()
	require.NoError(t, s.proxy(old).Cut(tcpproxy.Blackhole))
	stopped := s.waitFor(renewDeadline+10*time.Second, "the partitioned leader stops its group", func(ev timeline.Event) bool {
		return ev.Replica == old.Name && ev.Kind == timeline.GroupStopped && ev.At.After(cut)
	})
	assert.Contains(t, stopped.Reason, "lease lost")
	next := s.leader(30 * time.Second)
	require.NotEqual(t, old.Name, next.Name)
	s.exporting(next)
	spans := timeline.GroupSpans(s.f.Events())
	require.Len(t, spans, 2)
	assert.True(t, stopped.At.Before(spans[1].Start), "the partitioned leader stopped before %s started", next.Name)
	t.Logf("partitioned leader stopped %s after the cut; %s started %s after that",
		stopped.At.Sub(cut), next.Name, spans[1].Start.Sub(stopped.At))

	healed := time.Now()
	require.NoError(t, s.proxy(old).Restore())
	s.waitFor(30*time.Second, "the healed replica reaches the Lease again", func(ev timeline.Event) bool {
		return ev.Replica == old.Name && ev.Kind == timeline.LeaseReachable && ev.At.After(healed)
	})
	assert.True(t, old.Running())
	assert.Equal(t, []*fleet.Replica{next}, s.f.Leaders(), "the healed replica stands by")
	assert.Equal(t, 1, s.count(func(ev timeline.Event) bool {
		return ev.Replica == old.Name && ev.Kind == timeline.LeaseUnreachable && ev.At.After(cut)
	}), "the partition is reported once")
}

// TestHealedLeaderKeepsItsNewTerm: a lone replica partitioned for longer
// than lease_duration loses its term; its campaign attempt hangs on the
// blackholed connection until the network heals, then wins. The new term
// counts from that win, not from when the hanging attempt began: the group
// starts once and keeps running.
func TestHealedLeaderKeepsItsNewTerm(t *testing.T) {
	s := start(t, options{replicas: 1})
	r := s.leader(time.Minute)

	cut := time.Now()
	require.NoError(t, s.proxy(r).Cut(tcpproxy.Blackhole))
	s.waitFor(renewDeadline+10*time.Second, "the leader loses its term", func(ev timeline.Event) bool {
		return ev.Kind == timeline.Lost && ev.At.After(cut)
	})
	s.hold(time.Now().Add(leaseDuration)) // the next attempt hangs meanwhile
	healed := time.Now()
	require.NoError(t, s.proxy(r).Restore())
	s.waitFor(30*time.Second, "it leads again", func(ev timeline.Event) bool {
		return ev.Kind == timeline.GroupStarted && ev.At.After(healed)
	})
	s.exporting(r)
	assert.Zero(t, s.count(func(ev timeline.Event) bool { return ev.Kind == timeline.Lost && ev.At.After(healed) }),
		"no loss after the heal")
	assert.Len(t, timeline.GroupSpans(s.f.Events()), 2, "one group span before the partition, one after")
}
