// Package scenarios proves leader_receiver_creator's promise on a real
// control plane (kube-apiserver + etcd, one for the whole package): real
// collector processes (bin/otelcol-leader), each authenticated as a
// ServiceAccount of its own with the permissions deploy/ grants, each
// reaching the API server through its own TCP proxy that a scenario can cut.
// Every scenario ends with the same check, made twice: no instant at which
// two replicas ran the group,
//
//   - from their "leader group started/stopped" log lines on the harness's
//     one clock (what the component says about itself), and
//   - from outside: kube-apiserver's audit log of each replica's requests
//     other than the Lease's (its group's lists and watches), plus the
//     batches it exported (see package audit and checkOutsideOverlap).
//
// The scenarios run one after another (2 cores); each has its own namespace,
// so its own Lease, and short timings (lease 4s, renew 3s, retry 0.5s).
package scenarios

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/clientgo"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/collectorbin"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/tcpproxy"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

const (
	distConfig = "../../distribution/config.yaml"
	deployDir  = "../../deploy"

	// The block's timings in every scenario (distribution defaults: 15s,
	// 10s, 2s). The group has lease_duration - renew_deadline = 1s to stop.
	leaseDuration = 4 * time.Second
	renewDeadline = 3 * time.Second
	retryPeriod   = 500 * time.Millisecond
)

// timings sets them; it is merged over every scenario's configuration as a
// second --config (the distribution has no yaml: provider, so no --set).
var timings = fmt.Sprintf(`
receivers:
  leader_receiver_creator:
    leader_election:
      lease_duration: %s
      renew_deadline: %s
      retry_period: %s
`, leaseDuration, renewDeadline, retryPeriod)

// writeConfig writes a collector configuration file for the test.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "config-*.yaml")
	require.NoError(t, err)
	_, err = f.WriteString(yaml)
	require.NoError(t, errors.Join(err, f.Close()))
	return f.Name()
}

// shared is the control plane of the package, started by the first test
// that needs it and stopped by TestMain.
var shared struct {
	once sync.Once
	cp   *controlplane.ControlPlane
	err  error
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if clientGoBuild.path != "" {
		_ = os.RemoveAll(filepath.Dir(clientGoBuild.path))
	}
	if shared.cp != nil {
		if err := shared.cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// controlPlane returns the package's control plane, with the demo workloads
// of cluster.SeedDemo in namespace "demo" for k8s_cluster to report.
func controlPlane(t *testing.T) *controlplane.ControlPlane {
	t.Helper()
	shared.once.Do(func() {
		ctx := context.Background() // outlives the test that starts it
		shared.cp, shared.err = controlplane.Start(ctx, controlplane.Options{Progress: os.Stderr})
		if shared.err == nil {
			shared.err = cluster.SeedDemo(ctx, shared.cp.Clientset(), "demo", true)
		}
	})
	require.NoError(t, shared.err)
	if shared.cp.APIServerPID() == 0 { // a failed scenario left it stopped
		require.NoError(t, shared.cp.StartAPIServer(t.Context()))
	}
	return shared.cp
}

// options shape a scenario's fleet.
type options struct {
	config     string // collector configuration; distConfig if empty
	replicas   int    // 3 if zero
	overlay    string // YAML merged over config and timings
	replicaEnv func(i int) map[string]string
	manual     bool // create the replicas but start none (Replica.Start)
	// clientGo creates this many plain client-go candidates (package
	// clientgo: clientgo-1..N) on the scenario's Lease, each a
	// ServiceAccount of its own with deploy/'s permissions, the same
	// timings, listing the Pods of "demo" every 200 ms while it leads;
	// the scenario starts them (s.cg). Their active intervals count in
	// the final overlap checks like the replicas' group spans.
	clientGo int
	// clientGoNamespace, if set, is the namespace of the candidates' Lease
	// instead of the scenario's (for the proof that the checks see them).
	clientGoNamespace string
	// overlapExpected inverts the final overlap checks (logs and outside):
	// for the scenario that proves they can fail.
	overlapExpected bool
}

// scenario is one test's namespace, proxies and fleet.
type scenario struct {
	t       *testing.T
	cp      *controlplane.ControlPlane
	cs      kubernetes.Interface // admin
	ns      string               // Lease namespace, with deploy/'s RBAC
	sas     []string             // sas[i]: ServiceAccount of replica-(i+1), in ns
	audit   *audit.Log           // the requests of the ServiceAccounts of ns
	f       *fleet.Fleet
	proxies []*tcpproxy.Proxy // proxies[i]: replica-(i+1) to the API server
	cg      *clientgo.Set     // client-go candidates (options.clientGo), or nil
	t0      time.Time

	overlapExpected bool

	logMu sync.Mutex
	ended bool // no t.Log after the test
}

var namespaces atomic.Int64

// start prepares namespace, RBAC (a ServiceAccount per replica) and proxies
// and the fleet, and (unless manual) starts every replica and waits until
// each campaigns. Its cleanup stops the fleet and checks that no two groups
// ever ran at once (from the logs, and from the audit log and exports) and
// that only leaders exported data.
func start(t *testing.T, o options) *scenario {
	t.Helper()
	collector := collectorbin.Path(t)
	cp := controlPlane(t)
	s := &scenario{t: t, cp: cp, cs: cp.Clientset(), ns: namespaceFor(t), t0: time.Now(), overlapExpected: o.overlapExpected}
	ctx := t.Context()
	if o.config == "" {
		o.config = distConfig
	}
	if o.replicas == 0 {
		o.replicas = 3
	}

	configs := []string{"--config", writeConfig(t, timings)}
	if o.overlay != "" {
		configs = append(configs, "--config", writeConfig(t, o.overlay))
	}
	for i := 1; i <= o.replicas; i++ {
		s.sas = append(s.sas, fleet.ReplicaName(i))
	}
	var err error
	s.audit, err = audit.NewLog(cp.AuditLog, cluster.ServiceAccountUser(s.ns, ""))
	require.NoError(t, err)
	var cgNames []string
	for i := 1; i <= o.clientGo; i++ {
		cgNames = append(cgNames, clientgo.Name(i))
	}
	require.NoError(t, cluster.ApplyDeployRBACIn(ctx, s.cp.RESTConfig(), deployDir,
		cluster.RBACTarget{Namespace: s.ns, ServiceAccounts: append(slices.Clone(s.sas), cgNames...)}))
	s.waitLeaseRBAC(true)
	s.waitCan(true, "list", "", "pods", "", "") // the ClusterRole of the sub-receivers
	kubeconfigs := make([]string, o.replicas)
	for i := range o.replicas {
		p, err := tcpproxy.Start(strings.TrimPrefix(cp.Host, "https://"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Close() })
		s.proxies = append(s.proxies, p)
		kubeconfigs[i], err = cp.ServiceAccountKubeconfig(ctx, s.ns, s.sas[i], "https://"+p.Addr())
		require.NoError(t, err)
	}

	f, err := fleet.New(fleet.Options{
		Collector: collector,
		Config:    o.config,
		Replicas:  o.replicas,
		Dir:       t.TempDir(),
		Namespace: s.ns,
		Env:       map[string]string{"K8S_CLUSTER_COLLECTION_INTERVAL": "2s"},
		Args:      configs,
		ReplicaEnv: func(i int) map[string]string {
			env := map[string]string{"KUBECONFIG": kubeconfigs[i-1]}
			if o.replicaEnv != nil {
				maps.Copy(env, o.replicaEnv(i))
			}
			return env
		},
		OnEvent: s.logEvent,
	})
	require.NoError(t, err)
	s.f = f
	if o.clientGo > 0 {
		cgKubeconfigs := make([]string, o.clientGo)
		for i, sa := range cgNames {
			cgKubeconfigs[i], err = cp.ServiceAccountKubeconfig(ctx, s.ns, sa, "")
			require.NoError(t, err)
		}
		s.cg, err = clientgo.NewSet(clientgo.Options{
			Binary:        clientGoBinary(t),
			Candidates:    o.clientGo,
			Dir:           t.TempDir(),
			Namespace:     cmp.Or(o.clientGoNamespace, s.ns),
			Lease:         cluster.LeaseName,
			LeaseDuration: leaseDuration,
			RenewDeadline: renewDeadline,
			RetryPeriod:   retryPeriod,
			WorkNamespace: "demo",
			Kubeconfig:    func(i int) string { return cgKubeconfigs[i-1] },
			OnEvent:       s.logEvent,
		})
		require.NoError(t, err)
	}
	t.Cleanup(s.stop)
	if o.manual {
		return s
	}
	for _, r := range f.Replicas() {
		require.NoError(t, r.Start())
	}
	for _, r := range f.Replicas() {
		s.waitFor(time.Minute, r.Name+" campaigns", func(ev timeline.Event) bool {
			return ev.Replica == r.Name && ev.Kind == timeline.Campaigning
		})
	}
	return s
}

// stop stops the fleet and checks what every scenario must hold.
func (s *scenario) stop() {
	t := s.t
	if s.cg != nil {
		assert.NoError(t, s.cg.Stop(20*time.Second))
	}
	assert.NoError(t, s.f.Stop(20*time.Second))
	for _, gs := range s.spans() {
		end := "running"
		if !gs.End.IsZero() {
			end = fmt.Sprintf("%.3fs (%s %s)", gs.End.Sub(s.t0).Seconds(), gs.EndedBy, gs.Reason)
		}
		t.Logf("group span: %s from %.3fs to %s", gs.Replica, gs.Start.Sub(s.t0).Seconds(), end)
	}
	// The group spans (timeline.CheckSingleLeader), with the client-go
	// candidates' active intervals if there are any.
	if s.overlapExpected {
		assert.Error(t, timeline.CheckDisjoint(s.spans()), "the logs show two groups (or client-go candidates) active at the same time")
	} else {
		assert.NoError(t, timeline.CheckDisjoint(s.spans()), "overlap: two groups (or client-go candidates) active at the same time")
	}
	assert.NoError(t, s.f.CheckDataOnlyFromLeaders(fleet.ExportSlack))
	s.checkOutsideOverlap(s.spans())
	s.checkWatched(s.f.Events())
	if t.Failed() {
		for _, r := range s.f.Replicas() {
			t.Logf("end of %s:\n%s", r.LogPath, r.LogTail(4000))
		}
		if s.cg != nil {
			for _, c := range s.cg.Candidates() {
				t.Logf("end of %s:\n%s", c.LogPath, c.LogTail(4000))
			}
		}
	}
	s.logMu.Lock()
	s.ended = true
	s.logMu.Unlock()
}

// spans are the replicas' group spans and the client-go candidates' active
// intervals (OnStartedLeading to the return of Run), ordered by start.
func (s *scenario) spans() []timeline.GroupSpan {
	spans := timeline.GroupSpans(s.f.Events())
	if s.cg != nil {
		spans = append(spans, clientgo.Spans(s.cg.Events())...)
	}
	slices.SortStableFunc(spans, func(a, b timeline.GroupSpan) int { return a.Start.Compare(b.Start) })
	return spans
}

// clientGoBinary builds cmd/clientgo-candidate once for the package.
func clientGoBinary(t *testing.T) string {
	t.Helper()
	clientGoBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "clientgo-candidate-")
		if err == nil {
			clientGoBuild.path, err = clientgo.Build(context.Background(), dir)
		}
		clientGoBuild.err = err
	})
	require.NoError(t, clientGoBuild.err)
	return clientGoBuild.path
}

var clientGoBuild struct {
	once sync.Once
	path string
	err  error
}

func (s *scenario) logEvent(ev timeline.Event) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if !s.ended {
		s.t.Logf("%7.3fs %s", ev.At.Sub(s.t0).Seconds(), ev)
	}
}

// namespaceFor names a test's namespace after it: TestFooBar -> foo-bar-<n>.
func namespaceFor(t *testing.T) string {
	var b strings.Builder
	prev := '-'
	for _, r := range strings.TrimPrefix(t.Name(), "Test") {
		switch {
		case unicode.IsUpper(r):
			if unicode.IsLower(prev) || unicode.IsDigit(prev) {
				b.WriteByte('-')
			}
			b.WriteRune(unicode.ToLower(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		default:
			r = '-'
			b.WriteRune(r)
		}
		prev = r
	}
	name := b.String()
	if len(name) > 50 {
		name = name[:50]
	}
	return fmt.Sprintf("%s-%d", strings.TrimRight(name, "-"), namespaces.Add(1))
}

// within is a context that ends after d (or with the test).
func (s *scenario) within(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(s.t.Context(), d)
	s.t.Cleanup(cancel)
	return ctx
}

// waitFor returns the first event (recorded before or after the call) that
// matches, failing the test after d.
func (s *scenario) waitFor(d time.Duration, what string, match func(timeline.Event) bool) timeline.Event {
	s.t.Helper()
	ev, err := s.f.WaitFor(s.within(d), match)
	require.NoError(s.t, err, what)
	return ev
}

// leader waits until exactly one replica runs the group.
func (s *scenario) leader(d time.Duration) *fleet.Replica {
	s.t.Helper()
	r, err := s.f.WaitForLeader(s.within(d))
	require.NoError(s.t, err)
	return r
}

// exporting waits until r exports a new batch of k8s_cluster metrics: its
// group does its work.
func (s *scenario) exporting(r *fleet.Replica) {
	s.t.Helper()
	n := r.Counts().MetricBatches
	require.Eventually(s.t, func() bool { return r.Counts().MetricBatches > n }, 30*time.Second, 100*time.Millisecond,
		"%s exports cluster metrics", r.Name)
}

// count is the number of recorded events that match.
func (s *scenario) count(match func(timeline.Event) bool) int {
	n := 0
	for _, ev := range s.f.Events() {
		if match(ev) {
			n++
		}
	}
	return n
}

// proxy is the proxy between r and the API server.
func (s *scenario) proxy(r *fleet.Replica) *tcpproxy.Proxy {
	for i, x := range s.f.Replicas() {
		if x == r {
			return s.proxies[i]
		}
	}
	s.t.Fatalf("no replica %s", r.Name)
	return nil
}

// lease reads the scenario's Lease as admin.
func (s *scenario) lease() (*coordinationv1.Lease, error) {
	return s.cs.CoordinationV1().Leases(s.ns).Get(s.t.Context(), cluster.LeaseName, metav1.GetOptions{})
}

// waitCan waits until the API server's authorizer has caught up with RBAC
// changes: every replica's ServiceAccount may (want) or may not do verb on
// the resource.
func (s *scenario) waitCan(want bool, verb, group, resource, name, resourceNS string) {
	s.t.Helper()
	for _, sa := range s.sas {
		require.EventuallyWithT(s.t, func(c *assert.CollectT) {
			ok, err := cluster.Can(s.t.Context(), s.cs, s.ns, sa, verb, group, resource, name, resourceNS)
			require.NoError(c, err)
			require.Equal(c, want, ok)
		}, 20*time.Second, 100*time.Millisecond, "%s may %s %s/%s %q in %q: want %v", sa, verb, group, resource, name, resourceNS, want)
	}
}

// waitLeaseRBAC waits until every replica's ServiceAccount may (or may
// not) update the Lease.
func (s *scenario) waitLeaseRBAC(want bool) {
	s.t.Helper()
	s.waitCan(want, "update", "coordination.k8s.io", "leases", cluster.LeaseName, s.ns)
}

// hold waits until instant t: how long a fault lasts, not synchronisation.
func (s *scenario) hold(until time.Time) {
	select {
	case <-time.After(time.Until(until)):
	case <-s.t.Context().Done():
	}
}

// checkWatched checks that every replica that campaigned watched the Lease
// (deploy/'s Role allows it), so that its handovers were the watch's and not
// a poll's.
func (s *scenario) checkWatched(events []timeline.Event) {
	campaigned, watched := map[string]bool{}, map[string]bool{}
	for _, ev := range events {
		switch ev.Kind {
		case timeline.Campaigning:
			campaigned[ev.Replica] = true
		case timeline.Watching:
			watched[ev.Replica] = true
		}
	}
	for r := range campaigned {
		assert.True(s.t, watched[r], "%s never watched the Lease (%q)", r, timeline.Watching)
	}
}
