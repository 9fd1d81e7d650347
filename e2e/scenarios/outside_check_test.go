package scenarios

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// TestOverlapChecksCanFail proves the final checks of every scenario can
// fail: two replicas that campaign for two different Leases (replica-2's
// POD_NAMESPACE, so its Lease, is another namespace) both run the group,
// and both the log-line check and the check from outside (audit log) see
// it. The harness inverts its final checks for this scenario only.
func TestOverlapChecksCanFail(t *testing.T) {
	other := namespaceFor(t) + "-other"
	s := start(t, options{
		replicas:        2,
		overlapExpected: true,
		manual:          true,
		replicaEnv: func(i int) map[string]string {
			if i == 2 {
				return map[string]string{"POD_NAMESPACE": other}
			}
			return nil
		},
	})
	s.leaseRBACIn(other, s.sas[1])
	for _, r := range s.f.Replicas() {
		require.NoError(t, r.Start())
	}
	require.Eventually(t, func() bool { return len(s.f.Leaders()) == 2 }, time.Minute, 100*time.Millisecond, "both replicas lead")
	for _, r := range s.f.Replicas() {
		s.exporting(r)
	}
	require.Len(t, timeline.GroupSpans(s.f.Events()), 2)
}

// leaseRBACIn gives ServiceAccount sa (of the scenario's namespace)
// deploy/'s Lease Role in namespace other, and waits until the API server
// lets it update the Lease there.
func (s *scenario) leaseRBACIn(other, sa string) {
	t := s.t
	t.Helper()
	ctx := t.Context()
	require.NoError(t, cluster.ApplyDeployRBACIn(ctx, s.cp.RESTConfig(), deployDir, cluster.RBACTarget{Namespace: other, ServiceAccounts: []string{"unused"}}))
	bindings, err := s.cs.RbacV1().RoleBindings(other).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, rb := range bindings.Items {
		rb.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: s.ns}}
		_, err := s.cs.RbacV1().RoleBindings(other).Update(ctx, &rb, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		ok, err := cluster.Can(ctx, s.cs, s.ns, sa, "update", "coordination.k8s.io", "leases", cluster.LeaseName, other)
		return err == nil && ok
	}, 20*time.Second, 100*time.Millisecond)
}
