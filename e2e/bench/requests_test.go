package bench

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
)

// P4 from the audit log fixture of package audit: per retry_period (2s,
// five in the 10s window) the leader's writes and reads, and the
// standbys' reads and open watches; then the report's rows.
func TestCountRequests(t *testing.T) {
	reqs, err := audit.ReadAll("../audit/testdata/lease-requests.log", "system:serviceaccount:ns-1:")
	require.NoError(t, err)
	t0 := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	window := audit.Interval{Start: t0.Add(10 * time.Second), End: t0.Add(20 * time.Second)}
	users := map[string]string{}
	for _, r := range []string{"replica-1", "replica-2", "replica-3"} {
		users[r] = "system:serviceaccount:ns-1:" + r
	}
	r := CountRequests(reqs, users, "replica-1", window, 2*time.Second)
	assert.InDelta(t, 10, r.WindowSeconds, 1e-9)
	require.Len(t, r.Replicas, 3)
	assert.Equal(t, "leader", r.Replicas[0].Role)
	assert.Equal(t, "standby", r.Replicas[1].Role)
	assert.Equal(t, Summary{N: 1, Min: 1, Median: 1, P95: 1, Max: 1}, r.LeaderWrites, "5 updates in 5 periods")
	assert.InDelta(t, 0.2, r.LeaderReads.Median, 1e-9, "1 get in 5 periods")
	assert.Zero(t, r.LeaderWatches.Max)
	assert.Equal(t, 2, r.StandbyReads.N)
	assert.InDelta(t, 0.2, r.StandbyReads.Min, 1e-9, "the watching standby: one list")
	assert.InDelta(t, 1, r.StandbyReads.Max, 1e-9, "the polling standby: a get per period")
	assert.InDelta(t, 0, r.StandbyWatches.Min, 1e-9)
	assert.InDelta(t, 0.9997, r.StandbyWatches.Max, 1e-6)
	assert.Zero(t, r.StandbyWrites.Max)

	peer := CountRequests(reqs, users, "replica-2", window, 2*time.Second)
	rep := Report{Settings: Settings{Replicas: 3}, Configs: []ConfigResult{
		{Impl: "ours", Replicas: 3, Requests: r},
		{Impl: "peer", Replicas: 3, Requests: peer},
	}}
	rep.Build()
	var out bytes.Buffer
	require.NoError(t, rep.PrintTable(&out))
	assert.Regexp(t, `P4 Lease writes per retry_period, leader\s+ours\s+1\s+1.00\s+1.00\s+1.00\s+1.00`, out.String())
	assert.Regexp(t, `P4 Lease reads per retry_period, leader\s+peer\s+1\s+1.00`, out.String())
	assert.Contains(t, out.String(), "P4 Lease watches open, standby")
}
