package scenarios

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// TestLeaseRBACRemovedThenRestored: without the Lease's RoleBinding no
// replica can renew or take the Lease: the leader stops its group, none
// starts one, and each replica says so once ("cannot read or write the
// lease"); with the binding back each says "lease reachable again" and one
// leads.
func TestLeaseRBACRemovedThenRestored(t *testing.T) {
	s := start(t, options{})
	old := s.leader(time.Minute)
	s.exporting(old)

	removed := time.Now()
	bindings := s.cs.RbacV1().RoleBindings(s.ns)
	list, err := bindings.List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, list.Items)
	for _, rb := range list.Items { // deploy/'s Lease binding is the namespace's only one
		require.NoError(t, bindings.Delete(t.Context(), rb.Name, metav1.DeleteOptions{}))
	}
	s.waitLeaseRBAC(false)
	for _, r := range s.f.Replicas() {
		ev := s.waitFor(renewDeadline+10*time.Second, r.Name+" reports the Lease unreachable", func(ev timeline.Event) bool {
			return ev.Replica == r.Name && ev.Kind == timeline.LeaseUnreachable && ev.At.After(removed)
		})
		assert.Contains(t, ev.Error, "forbidden")
	}
	s.waitFor(renewDeadline+10*time.Second, "the leader stops its group", func(ev timeline.Event) bool {
		return ev.Replica == old.Name && ev.Kind == timeline.GroupStopped && ev.At.After(removed)
	})
	s.hold(time.Now().Add(leaseDuration + 2*retryPeriod)) // past the Lease's expiry

	restored := time.Now()
	require.NoError(t, cluster.ApplyDeployRBACIn(t.Context(), s.cp.RESTConfig(), deployDir, cluster.RBACTarget{Namespace: s.ns, ServiceAccounts: s.sas}))
	for _, r := range s.f.Replicas() {
		s.waitFor(30*time.Second, r.Name+" reaches the Lease again", func(ev timeline.Event) bool {
			return ev.Replica == r.Name && ev.Kind == timeline.LeaseReachable && ev.At.After(restored)
		})
	}
	s.exporting(s.leader(30 * time.Second))

	assert.Zero(t, s.count(func(ev timeline.Event) bool {
		return ev.Kind == timeline.GroupStarted && ev.At.After(removed) && ev.At.Before(restored)
	}), "no group started without the RBAC")
	for _, r := range s.f.Replicas() {
		for _, k := range []timeline.Kind{timeline.LeaseUnreachable, timeline.LeaseReachable} {
			assert.Equal(t, 1, s.count(func(ev timeline.Event) bool {
				return ev.Replica == r.Name && ev.Kind == k && ev.At.After(removed)
			}), "%s logs %q once", r.Name, k)
		}
	}
}
