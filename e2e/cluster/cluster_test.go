package cluster_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
)

// TestCollectorRBAC checks deploy/'s manifests, as they are and moved to
// another namespace with a ServiceAccount per replica: each ServiceAccount
// can create, get and update its Lease and read the cluster, and nothing
// more.
func TestCollectorRBAC(t *testing.T) {
	ctx := t.Context()
	cp, err := controlplane.Start(ctx, controlplane.Options{Progress: t.Output()})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, cp.Stop()) })
	cs := cp.Clientset()

	applied, err := cluster.ApplyDeployRBAC(ctx, cp.RESTConfig(), "../../deploy")
	require.NoError(t, err)
	require.True(t, applied, "deploy/'s RBAC manifests")
	// deploy/'s RBAC in another namespace, one ServiceAccount per replica.
	require.NoError(t, cluster.ApplyDeployRBACIn(ctx, cp.RESTConfig(), "../../deploy",
		cluster.RBACTarget{Namespace: "moved", ServiceAccounts: []string{"replica-1", "replica-2"}}))
	_, err = cs.CoreV1().ServiceAccounts("moved").Get(ctx, cluster.ServiceAccount, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "only the replicas' ServiceAccounts: %v", err)

	for _, id := range []struct{ ns, sa string }{
		{cluster.Namespace, cluster.ServiceAccount}, {"moved", "replica-1"}, {"moved", "replica-2"},
	} {
		t.Run(id.ns, func(t *testing.T) {
			path, err := cp.ServiceAccountKubeconfig(ctx, id.ns, id.sa, "")
			require.NoError(t, err)
			cfg, err := clientcmd.BuildConfigFromFlags("", path)
			require.NoError(t, err)
			sa := kubernetes.NewForConfigOrDie(cfg)
			leases := sa.CoordinationV1().Leases(id.ns)
			var lease *coordinationv1.Lease
			require.Eventually(t, func() bool { // RBAC reaches the authorizer through a watch
				lease, err = leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: cluster.LeaseName}}, metav1.CreateOptions{})
				if apierrors.IsAlreadyExists(err) { // created by another ServiceAccount of the namespace
					lease, err = leases.Get(ctx, cluster.LeaseName, metav1.GetOptions{})
				}
				return err == nil
			}, 10*time.Second, 100*time.Millisecond)
			lease.Spec.HolderIdentity = &id.sa
			_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
			require.NoError(t, err)
			_, err = leases.Get(ctx, cluster.LeaseName, metav1.GetOptions{})
			require.NoError(t, err)
			_, err = sa.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			require.NoError(t, err, "cluster-wide reads")
			_, err = sa.CoreV1().Events("").List(ctx, metav1.ListOptions{})
			require.NoError(t, err)

			err = leases.Delete(ctx, cluster.LeaseName, metav1.DeleteOptions{})
			assert.True(t, apierrors.IsForbidden(err), "delete lease: %v", err)
			_, err = sa.CoordinationV1().Leases("default").Get(ctx, cluster.LeaseName, metav1.GetOptions{})
			assert.True(t, apierrors.IsForbidden(err), "lease in another namespace: %v", err)
			_, err = sa.CoreV1().Secrets(id.ns).List(ctx, metav1.ListOptions{})
			assert.True(t, apierrors.IsForbidden(err), "secrets: %v", err)
		})
	}
}

func TestSeedDemoAndEvents(t *testing.T) {
	ctx := t.Context()
	cp, err := controlplane.Start(ctx, controlplane.Options{Progress: t.Output()})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, cp.Stop()) })
	cs := cp.Clientset()

	require.NoError(t, cluster.SeedDemo(ctx, cs, "demo", true))
	require.NoError(t, cluster.SeedDemo(ctx, cs, "demo", true), "seeding twice is fine")
	pods, err := cs.CoreV1().Pods("demo").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	want := 0
	for _, d := range cluster.DemoDeployments {
		want += int(d.Replicas)
	}
	require.Len(t, pods.Items, want)
	for _, p := range pods.Items {
		assert.Equal(t, corev1.PodRunning, p.Status.Phase, p.Name)
	}
	ev, err := cluster.CreateEvent(ctx, cs, "demo", 1)
	require.NoError(t, err)
	assert.Equal(t, "DemoTick", ev.Reason)
}
