package compat

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
)

// targetsNamespace holds the Pods and the Service that k8s_objects pulls and
// k8s_observer discovers.
const targetsNamespace = "compat-targets"

// targetPods are Running Pods whose IP is 127.0.0.1 and whose container
// port "metrics" is the test's target server: receiver_creator's
// sub-receivers for them reach it.
var targetPods = []string{"target-0", "target-1"}

// targetServer is the test's HTTP server: a kube-state-metrics-style
// /ksm/<row>/metrics for prometheus, /rc/<row> for what receiver_creator
// creates. It records when each row's paths were hit.
type targetServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string][]time.Time // "<kind>/<row>" -> times
}

func startTargetServer(t *testing.T) *targetServer {
	ts := &targetServer{hits: map[string][]time.Time{}}
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.srv.Close)
	return ts
}

// ksmMetrics is what kube-state-metrics would say about the target Pods.
const ksmMetrics = `# HELP kube_pod_info Information about pod.
# TYPE kube_pod_info gauge
kube_pod_info{namespace="compat-targets",pod="target-0",node="demo-node"} 1
kube_pod_info{namespace="compat-targets",pod="target-1",node="demo-node"} 1
# HELP kube_pod_status_phase The pods current phase.
# TYPE kube_pod_status_phase gauge
kube_pod_status_phase{namespace="compat-targets",pod="target-0",phase="Running"} 1
kube_pod_status_phase{namespace="compat-targets",pod="target-1",phase="Running"} 1
`

func (ts *targetServer) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // ksm/<row>/metrics or rc/<row>
	if len(parts) < 2 {
		http.NotFound(w, r)
		return
	}
	ts.mu.Lock()
	ts.hits[parts[0]+"/"+parts[1]] = append(ts.hits[parts[0]+"/"+parts[1]], at)
	ts.mu.Unlock()
	if parts[0] == "ksm" {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(ksmMetrics))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// hitsBetween counts hits of kind (ksm, rc) for row in (from, to].
func (ts *targetServer) hitsBetween(kind, row string, from, to time.Time) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	n := 0
	for _, at := range ts.hits[kind+"/"+row] {
		if at.After(from) && !at.After(to) {
			n++
		}
	}
	return n
}

func (ts *targetServer) port(t *testing.T) int32 {
	_, p, err := net.SplitHostPort(ts.srv.Listener.Addr().String())
	require.NoError(t, err)
	var port int32
	_, err = fmt.Sscan(p, &port)
	require.NoError(t, err)
	return port
}

// seedTargets creates targetsNamespace with targetPods (Running, IP
// 127.0.0.1, port "metrics" = the target server's) and a Service.
func seedTargets(ctx context.Context, t *testing.T, cs kubernetes.Interface, port int32) {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: targetsNamespace}}, metav1.CreateOptions{})
	require.NoError(t, ignoreExists(err))
	for _, name := range targetPods {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: targetsNamespace, Labels: map[string]string{"app": "target"}},
			Spec: corev1.PodSpec{NodeName: cluster.DemoNode, Containers: []corev1.Container{{
				Name: "app", Image: "registry.invalid/compat/target:1",
				Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
			}}},
		}
		_, err := cs.CoreV1().Pods(targetsNamespace).Create(ctx, pod, metav1.CreateOptions{})
		require.NoError(t, ignoreExists(err))
		cur, err := cs.CoreV1().Pods(targetsNamespace).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		now := metav1.Now()
		cur.Status = corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "127.0.0.1", PodIPs: []corev1.PodIP{{IP: "127.0.0.1"}}, StartTime: &now,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}},
			ContainerStatuses: []corev1.ContainerStatus{{
				Name: "app", Image: "registry.invalid/compat/target:1", Ready: true, Started: ptr.To(true),
				ContainerID: "containerd://" + name,
				State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			}},
		}
		_, err = cs.CoreV1().Pods(targetsNamespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "target", Namespace: targetsNamespace},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "target"},
			Ports:    []corev1.ServicePort{{Name: "metrics", Port: 80, TargetPort: intstr.FromString("metrics")}},
		},
	}
	_, err = cs.CoreV1().Services(targetsNamespace).Create(ctx, svc, metav1.CreateOptions{})
	require.NoError(t, ignoreExists(err))
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// driver is the holder the test writes into the Lease to end a term.
const driver = "compat-test-driver"

// holdLease writes a foreign holder into ns's Lease (creating it if need
// be): the leader's next renewal conflicts, it reads the Lease, sees another
// holder, and its term ends; no candidate takes the Lease until freeLease.
func holdLease(ctx context.Context, cs kubernetes.Interface, ns string) error {
	return writeLease(ctx, cs, ns, driver, 3600)
}

// freeLease writes a release-shaped record (no holder, 1s): free at once.
func freeLease(ctx context.Context, cs kubernetes.Interface, ns string) error {
	return writeLease(ctx, cs, ns, "", 1)
}

func writeLease(ctx context.Context, cs kubernetes.Interface, ns, holder string, seconds int32) error {
	leases := cs.CoordinationV1().Leases(ns)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		now := metav1.NewMicroTime(time.Now())
		spec := coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, AcquireTime: &now, RenewTime: &now}
		cur, err := leases.Get(ctx, cluster.LeaseName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: cluster.LeaseName, Namespace: ns}, Spec: spec}, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		if cur.Spec.LeaseTransitions != nil {
			spec.LeaseTransitions = ptr.To(*cur.Spec.LeaseTransitions + 1)
		}
		cur.Spec = spec
		_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}
