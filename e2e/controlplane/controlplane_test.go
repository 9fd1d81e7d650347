package controlplane

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/proc"
)

var binaries Binaries

func buildOptions() BuildOptions { return BuildOptions{ControllerManager: ControllerManagerTests()} }

// TestMain builds kube-apiserver and etcd once (cached across runs in
// CacheDir), printing progress, so a cold first run shows what it is doing;
// kube-controller-manager too only with E2E_CONTROLLER_MANAGER set, so
// that `make controlplane` builds it before the tests that need it start.
func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	var err error
	binaries, err = Build(ctx, os.Stderr, buildOptions())
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "build control plane:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func start(t *testing.T, opts Options) *ControlPlane {
	t.Helper()
	opts.Binaries = binaries
	opts.Progress = testWriter{t}
	cp, err := Start(t.Context(), opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
				t.Logf("--- end of %s.log:\n%s", name, proc.Tail(cp.LogDir+"/"+name+".log", 2000))
			}
		}
		assert.NoError(t, cp.Stop())
	})
	return cp
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

func TestBuildIsCached(t *testing.T) {
	begin := time.Now()
	again, err := Build(t.Context(), testWriter{t}, buildOptions())
	require.NoError(t, err)
	assert.Equal(t, binaries, again)
	assert.Less(t, time.Since(begin), 5*time.Second, "second Build should reuse the cache")
}

func TestStagingModules(t *testing.T) {
	mods := stagingModules([]byte("module k8s.io/kubernetes\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n\tgithub.com/x/y => github.com/x/y v1.0.0\n)\n\nreplace k8s.io/client-go => ./staging/src/k8s.io/client-go\n"))
	assert.Equal(t, []string{"k8s.io/api", "k8s.io/client-go"}, mods)
}

func TestLeaseSurvivesAPIServerRestartAndStopLeavesNothing(t *testing.T) {
	ctx := t.Context()
	cp := start(t, Options{})
	cs := cp.Clientset()

	// The admin kubeconfig works on its own.
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	require.NoError(t, err)
	v, err := kubernetes.NewForConfigOrDie(cfg).Discovery().ServerVersion()
	require.NoError(t, err)
	want, err := KubernetesVersion()
	require.NoError(t, err)
	assert.Equal(t, want, v.GitVersion, "the version %s selects", KubeVersionEnv)
	kv, err := selectedVersion()
	require.NoError(t, err)
	assert.Equal(t, "1", v.Major)
	assert.Equal(t, kv.Minor, v.Minor)

	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	lease, err := cs.CoordinationV1().Leases("e2e").Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "test-lease"},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To("replica-1"),
			LeaseDurationSeconds: ptr.To[int32](15),
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	pid := cp.APIServerPID()
	require.NotZero(t, pid)
	require.NoError(t, cp.StopAPIServer())
	assert.False(t, proc.Alive(pid), "kube-apiserver pid %d still alive", pid)
	assert.Zero(t, cp.APIServerPID())
	_, err = cs.CoordinationV1().Leases("e2e").Get(ctx, "test-lease", metav1.GetOptions{})
	require.Error(t, err, "apiserver is stopped")

	require.NoError(t, cp.StartAPIServer(ctx))
	assert.NotEqual(t, pid, cp.APIServerPID())
	got, err := cs.CoordinationV1().Leases("e2e").Get(ctx, "test-lease", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "replica-1", *got.Spec.HolderIdentity)
	assert.Equal(t, lease.ResourceVersion, got.ResourceVersion)

	// A ServiceAccount kubeconfig authenticates as the ServiceAccount, with
	// only the permissions RBAC grants it.
	_, err = cs.CoreV1().ServiceAccounts("e2e").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "collector"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().Roles("e2e").Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "leases"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().RoleBindings("e2e").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "leases"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "leases"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "collector", Namespace: "e2e"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	saPath, err := cp.ServiceAccountKubeconfig(ctx, "e2e", "collector", "")
	require.NoError(t, err)
	saCfg, err := clientcmd.BuildConfigFromFlags("", saPath)
	require.NoError(t, err)
	saCS := kubernetes.NewForConfigOrDie(saCfg)
	require.Eventually(t, func() bool { // RBAC is served from an informer cache
		_, err := saCS.CoordinationV1().Leases("e2e").Get(ctx, "test-lease", metav1.GetOptions{})
		return err == nil
	}, 10*time.Second, 100*time.Millisecond)
	_, err = saCS.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "expected Forbidden, got %v", err)

	// The audit log has the ServiceAccount's requests, complete, and no
	// admin request; the stop of kube-apiserver above was recorded.
	user := cluster.ServiceAccountUser("e2e", "collector")
	var reqs []audit.Request
	require.Eventually(t, func() bool {
		reqs, err = audit.ReadAll(cp.AuditLog, "")
		require.NoError(t, err)
		return slices.ContainsFunc(reqs, func(r audit.Request) bool { return r.Verb == "list" && !r.Open() })
	}, 10*time.Second, 100*time.Millisecond, "the ServiceAccount's list of namespaces is in the audit log")
	for _, r := range reqs {
		assert.Equal(t, user, r.User, "only ServiceAccounts are audited")
		assert.False(t, r.Open(), "%s %s complete", r.Verb, r.URI)
		if r.Verb == "list" {
			assert.Equal(t, "namespaces", r.Resource)
			assert.Equal(t, 403, r.Code)
		}
	}
	assert.True(t, slices.ContainsFunc(reqs, func(r audit.Request) bool { return r.Lease() && r.Verb == "get" && r.Code == 200 }))
	assert.Len(t, cp.APIServerExits(), 1)

	pids := cp.PIDs()
	require.Len(t, pids, 2)
	dir := cp.Dir
	require.NoError(t, cp.Stop())
	for name, pid := range pids {
		assert.False(t, proc.Alive(pid), "%s pid %d still alive", name, pid)
		assert.False(t, proc.GroupAlive(pid), "%s process group %d not empty", name, pid)
	}
	assert.NoDirExists(t, dir)
	assert.Empty(t, cp.PIDs())
}

// TestControllerManagerCreatesPodsAndEvents needs kube-controller-manager,
// which `make run` runs by default and nothing else does: a cold build of it
// would add minutes to `make test`, so it runs only with
// E2E_CONTROLLER_MANAGER=1 (e.g. `E2E_CONTROLLER_MANAGER=1 make test`).
func TestControllerManagerCreatesPodsAndEvents(t *testing.T) {
	if !ControllerManagerTests() {
		t.Skip(ControllerManagerTestsEnv + " is not set (the controller manager is built only for `make run` and for tests that ask for it)")
	}
	ctx := t.Context()
	cp := start(t, Options{ControllerManager: true})
	cs := cp.Clientset()
	labels := map[string]string{"app": "web"}
	_, err := cs.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		return err == nil && len(pods.Items) == 2
	}, time.Minute, 200*time.Millisecond, "the deployment and replicaset controllers create Pods")
	require.Eventually(t, func() bool {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		return err == nil && len(evs.Items) > 0
	}, time.Minute, 200*time.Millisecond, "controllers record Events")
}
