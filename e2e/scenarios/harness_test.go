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
//     batches it exported (package audit's kinds of overlap).
//
// That check, the namespace with deploy/'s RBAC, the ServiceAccounts, the
// proxies and the fleet are package harness's, which compat and the bench
// share. The scenarios run one after another (2 cores); each has its own
// namespace, so its own Lease, and short timings (lease 4s, renew 3s, retry
// 0.5s).
package scenarios

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
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

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/clientgo"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/harness"
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
// (harness.DemoNamespace) for k8s_cluster to report.
func controlPlane(t *testing.T) *controlplane.ControlPlane {
	t.Helper()
	shared.once.Do(func() {
		// The context outlives the test that starts it.
		shared.cp, shared.err = harness.StartControlPlane(context.Background(), controlplane.Options{Progress: os.Stderr})
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

// scenario is one test's run of the shared harness: its namespace, its
// replicas' proxies, its fleet.
type scenario struct {
	t   *testing.T
	run *harness.Run
	cp  *controlplane.ControlPlane
	cs  kubernetes.Interface // admin
	ns  string               // Lease namespace, with deploy/'s RBAC
	sas []string             // sas[i]: ServiceAccount of replica-(i+1), in ns
	f   *fleet.Fleet
	cg  *clientgo.Set // client-go candidates (options.clientGo), or nil
	t0  time.Time
}

// start runs the harness for the scenario (harness.Start: namespace, RBAC
// with a ServiceAccount per replica, a proxy per replica, the fleet) and
// (unless manual) starts every replica and waits until each campaigns. Its
// cleanup stops the fleet and makes the harness's final check (no two
// groups ever ran at once, from the logs, and from the audit log and
// exports; only leaders exported data), then checks that every replica
// watched the Lease.
func start(t *testing.T, o options) *scenario {
	t.Helper()
	collector := collectorbin.Path(t)
	cp := controlPlane(t)
	if o.config == "" {
		o.config = distConfig
	}
	configs := []string{"--config", writeConfig(t, timings)}
	if o.overlay != "" {
		configs = append(configs, "--config", writeConfig(t, o.overlay))
	}
	ho := harness.Options{
		ControlPlane: cp,
		DeployDir:    deployDir,
		Namespace:    namespaceFor(t),
		Fleet: fleet.Options{
			Collector: collector,
			Config:    o.config,
			Replicas:  o.replicas,
			Env:       map[string]string{"K8S_CLUSTER_COLLECTION_INTERVAL": "2s"},
			Args:      configs,
		},
		Proxies:       true,
		ExpectOverlap: o.overlapExpected,
		TraceLead:     10 * time.Second,
	}
	if o.replicaEnv != nil {
		ho.ReplicaEnv = func(i int, _ controlplane.Credentials) map[string]string { return o.replicaEnv(i) }
	}
	if o.clientGo > 0 {
		ho.ClientGo = clientgo.Options{
			Binary:        clientGoBinary(t),
			Candidates:    o.clientGo,
			Namespace:     o.clientGoNamespace,
			LeaseDuration: leaseDuration,
			RenewDeadline: renewDeadline,
			RetryPeriod:   retryPeriod,
			WorkNamespace: harness.DemoNamespace,
		}
	}
	run, err := harness.Start(t.Context(), t, ho)
	require.NoError(t, err)
	s := &scenario{t: t, run: run, cp: cp, cs: cp.Clientset(), ns: ho.Namespace, f: run.Fleet, cg: run.ClientGo, t0: run.T0}
	for _, r := range s.f.Replicas() {
		s.sas = append(s.sas, r.Name) // each replica is the ServiceAccount of its name
	}
	t.Cleanup(s.stop)
	if !o.manual {
		require.NoError(t, run.StartReplicas(t.Context()))
	}
	return s
}

// stop stops the fleet and checks what every scenario must hold.
func (s *scenario) stop() {
	s.run.Check()
	s.checkWatched(s.f.Events())
}

// spans are the replicas' group spans and the client-go candidates' active
// intervals (OnStartedLeading to the return of Run), ordered by start.
func (s *scenario) spans() []timeline.GroupSpan { return s.run.Spans() }

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

var namespaces atomic.Int64

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
			return s.run.Proxies[i]
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
