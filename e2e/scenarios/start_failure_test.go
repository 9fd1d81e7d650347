package scenarios

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// TestGroupThatCannotStartGivesTheLeaseAway: on replica-1 the group's otlp
// sub-receiver cannot bind its port (the test holds it). replica-1 starts
// alone, so it wins the Lease first: it rolls the whole group back, gives
// the Lease back, and once the others run one of them leads.
func TestGroupThatCannotStartGivesTheLeaseAway(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = busy.Close() })
	s := start(t, options{
		config: "../testdata/otlp-in-group.yaml",
		manual: true,
		replicaEnv: func(i int) map[string]string {
			if i == 1 {
				return map[string]string{"OTLP_ENDPOINT": busy.Addr().String()}
			}
			return map[string]string{"OTLP_ENDPOINT": "127.0.0.1:0"} // any free port
		},
	})
	broken := s.f.Replicas()[0]

	require.NoError(t, broken.Start())
	failed := s.waitFor(time.Minute, broken.Name+" fails to start its group", func(ev timeline.Event) bool {
		return ev.Replica == broken.Name && ev.Kind == timeline.GroupStartFailed
	})
	assert.Contains(t, failed.Error, "receivers::otlp")
	assert.Contains(t, failed.Error, "address already in use")
	s.waitFor(10*time.Second, broken.Name+" gives the Lease back", func(ev timeline.Event) bool {
		return ev.Replica == broken.Name && ev.Kind == timeline.Released && ev.Reason == "group failed to start"
	})

	for _, r := range s.f.Replicas()[1:] {
		require.NoError(t, r.Start())
	}
	leader := s.leader(time.Minute)
	assert.NotEqual(t, broken.Name, leader.Name)
	s.exporting(leader)
	assert.Zero(t, s.count(func(ev timeline.Event) bool { return ev.Replica == broken.Name && ev.Kind == timeline.GroupStarted }))
	assert.Eventually(t, func() bool {
		return s.count(func(ev timeline.Event) bool { return ev.Replica == broken.Name && ev.Kind == timeline.GroupStartFailed }) ==
			s.count(func(ev timeline.Event) bool { return ev.Replica == broken.Name && ev.Kind == timeline.Released })
	}, 10*time.Second, 100*time.Millisecond, "every failed start gave the Lease back")
	assert.True(t, broken.Running(), "a group that cannot start does not take the collector down")
}
