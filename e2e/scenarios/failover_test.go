package scenarios

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// TestLeaderSIGTERMHandsOver: a leader shut down gracefully stops its group,
// releases the Lease, and only then does a standby start its own, within
// about a retry_period instead of a lease_duration.
func TestLeaderSIGTERMHandsOver(t *testing.T) {
	s := start(t, options{})
	old := s.leader(time.Minute)
	s.exporting(old)

	require.NoError(t, old.Stop(20*time.Second)) // SIGTERM, and wait
	assert.Equal(t, 0, old.ExitCode())
	s.waitFor(time.Second, "the old leader released the Lease", func(ev timeline.Event) bool {
		return ev.Replica == old.Name && ev.Kind == timeline.Released
	})
	next := s.leader(30 * time.Second)
	require.NotEqual(t, old.Name, next.Name)
	s.exporting(next)

	spans := timeline.GroupSpans(s.f.Events())
	require.Len(t, spans, 2)
	assert.Equal(t, timeline.GroupStopped, spans[0].EndedBy, "the old group stopped before the process exited")
	assert.True(t, spans[0].End.Before(spans[1].Start), "the old group stopped before the new one started")
	gap := spans[1].Start.Sub(spans[0].End)
	t.Logf("handover: %s", gap)
	assert.Less(t, gap, leaseDuration, "the released Lease was taken at once, not after it expired")
}

// TestLeaderSIGKILLTakeoverAfterExpiry: a leader that dies without a word
// keeps the Lease until it expires; only then does a standby lead.
func TestLeaderSIGKILLTakeoverAfterExpiry(t *testing.T) {
	s := start(t, options{})
	old := s.leader(time.Minute)
	s.exporting(old)

	killed := time.Now()
	require.NoError(t, old.Kill())
	next := s.leader(30 * time.Second)
	require.NotEqual(t, old.Name, next.Name)
	s.exporting(next)

	spans := timeline.GroupSpans(s.f.Events())
	require.Len(t, spans, 2)
	assert.Equal(t, timeline.ProcessExited, spans[0].EndedBy)
	// The last renewal was at most a retry_period before the kill.
	gap := spans[1].Start.Sub(killed)
	t.Logf("takeover %s after the kill", gap)
	assert.GreaterOrEqual(t, gap, leaseDuration-retryPeriod, "nobody took the Lease before it expired")
	assert.Zero(t, s.count(func(ev timeline.Event) bool { return ev.Replica == old.Name && ev.Kind == timeline.Released }))
}
