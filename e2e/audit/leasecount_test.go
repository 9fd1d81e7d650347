package audit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// P4 from an audit log: a leader renewing with one update per 2s
// retry_period (and one get after a conflict), a polling standby (one get
// per retry_period) and a watching standby (its watch re-opened once after
// a list), over the window [07:00:10, 07:00:20].
func TestCountLeaseRequests(t *testing.T) {
	reqs, err := ReadAll("testdata/lease-requests.log", "system:serviceaccount:ns-1:")
	require.NoError(t, err)
	at := func(s float64) time.Time {
		return time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC).Add(time.Duration(s * float64(time.Second)))
	}
	window := Interval{at(10), at(20)}
	user := func(sa string) string { return "system:serviceaccount:ns-1:" + sa }

	// Updates at 10 (the window's start counts), 12, 14, 16, 18; not 9 or
	// 20.5. The pods list and watch are the group's, not the election's.
	assert.Equal(t, LeaseRequests{Writes: 5, Reads: 1}, CountLeaseRequests(reqs, user("replica-1"), window))
	assert.Equal(t, LeaseRequests{Reads: 5}, CountLeaseRequests(reqs, user("replica-2"), window))
	w := CountLeaseRequests(reqs, user("replica-3"), window)
	assert.Equal(t, 0, w.Writes)
	assert.Equal(t, 1, w.Reads, "the list before the watch is re-opened")
	assert.Equal(t, 1, w.Watches, "opened in the window; the one opened at 5 is not counted, only its time open")
	assert.InDelta(t, 0.9997, w.OpenWatches, 1e-6, "open 5s until 15, then from 15.003 to the end: still open")
	assert.Equal(t, LeaseRequests{}, CountLeaseRequests(reqs, user("replica-4"), window))

	// A window before any watch was opened, and an empty one.
	assert.Zero(t, CountLeaseRequests(reqs, user("replica-3"), Interval{at(1), at(4)}).OpenWatches)
	assert.Zero(t, CountLeaseRequests(reqs, user("replica-3"), Interval{at(6), at(6)}).OpenWatches)
}
