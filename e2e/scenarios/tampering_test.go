package scenarios

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/tcpproxy"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// TestLeaseDeletedByHand: the Lease deleted under a running fleet, five
// times: the fleet re-creates it and converges to one leader. Whether the
// leader or a standby re-creates it is a race.
func TestLeaseDeletedByHand(t *testing.T) {
	s := start(t, options{})
	s.leader(time.Minute)
	for round := 1; round <= 5; round++ {
		deleted := time.Now()
		lease := s.deleteLease()
		t.Logf("round %d: Lease of %s deleted", round, ptr.Deref(lease.Spec.HolderIdentity, ""))
		s.converged(30*time.Second, lease.UID, deleted)
	}
	s.exporting(s.leader(time.Second))
}

// TestLeaseDeletedUnderPartitionedLeader: the Lease is deleted while its
// holder cannot reach the API server, so the holder runs its group until
// renew_deadline: no standby may start one before, even though it finds no
// Lease at all.
func TestLeaseDeletedUnderPartitionedLeader(t *testing.T) {
	s := start(t, options{})
	old := s.leader(time.Minute)
	require.NoError(t, s.proxy(old).Cut(tcpproxy.Refuse))
	deleted := time.Now()
	lease := s.deleteLease()
	next := s.converged(30*time.Second, lease.UID, deleted)
	require.NotEqual(t, old.Name, next.Name)
	s.exporting(next)

	healed := time.Now()
	require.NoError(t, s.proxy(old).Restore())
	s.waitFor(30*time.Second, "the healed replica reaches the Lease again", func(ev timeline.Event) bool {
		return ev.Replica == old.Name && ev.Kind == timeline.LeaseReachable && ev.At.After(healed)
	})
	assert.Equal(t, []*fleet.Replica{next}, s.f.Leaders())
}

// TestLeaseHolderOverwrittenByHand: someone writes another holder into the
// Lease: the leader sees it at its next renewal and stops; after the
// intruder's lease_duration one replica leads again.
func TestLeaseHolderOverwrittenByHand(t *testing.T) {
	s := start(t, options{})
	old := s.leader(time.Minute)

	leases := s.cs.CoordinationV1().Leases(s.ns)
	overwritten := time.Now()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error { // the leader renews meanwhile
		lease, err := leases.Get(t.Context(), cluster.LeaseName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.NewMicroTime(time.Now())
		lease.Spec.HolderIdentity = ptr.To("intruder")
		lease.Spec.AcquireTime, lease.Spec.RenewTime = &now, &now
		_, err = leases.Update(t.Context(), lease, metav1.UpdateOptions{})
		return err
	}))
	lost := s.waitFor(10*time.Second, "the leader sees the intruder", func(ev timeline.Event) bool {
		return ev.Replica == old.Name && ev.Kind == timeline.Lost
	})
	assert.Contains(t, lost.Error, `"intruder"`)
	s.exporting(s.converged(30*time.Second, "", overwritten))
}

// deleteLease deletes the Lease as admin and returns what it was.
func (s *scenario) deleteLease() *coordinationv1.Lease {
	s.t.Helper()
	lease, err := s.lease()
	require.NoError(s.t, err)
	require.NoError(s.t, s.cs.CoordinationV1().Leases(s.ns).Delete(s.t.Context(), lease.Name, metav1.DeleteOptions{}))
	return lease
}

// converged waits until exactly one replica runs the group, started after
// the Lease was tampered with (at tampered), and the Lease (another one than
// the Lease of UID gone, if set) names it. The start must be a new one: the
// old leader's group counts as running until the harness has read its
// "leadership lost" line, and a replica that re-created the deleted Lease
// is named by it at once, lease_duration before it starts its group.
func (s *scenario) converged(d time.Duration, gone types.UID, tampered time.Time) *fleet.Replica {
	s.t.Helper()
	var leader *fleet.Replica
	require.EventuallyWithT(s.t, func(c *assert.CollectT) {
		leaders := s.f.Leaders()
		require.Len(c, leaders, 1)
		started := time.Time{}
		for _, ev := range s.f.Events() {
			if ev.Replica == leaders[0].Name && ev.Kind == timeline.GroupStarted {
				started = ev.At
			}
		}
		require.True(c, started.After(tampered), "the group of %s started after the Lease was tampered with", leaders[0].Name)
		lease, err := s.lease()
		require.NoError(c, err)
		require.NotEqual(c, gone, lease.UID, "the Lease is re-created")
		require.Equal(c, leaders[0].Identity(), ptr.Deref(lease.Spec.HolderIdentity, ""))
		leader = leaders[0]
	}, d, 100*time.Millisecond, "one leader, named by the Lease")
	return leader
}
