package leaderreceivercreator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/metadata"
)

// journal records, in one order, what the groups and the Lease did, so a
// test can tell whether two groups ever ran at once and whether a group had
// stopped before the Lease changed hands. A sub-receiver instance counts as
// running from the moment its Start is called until its Shutdown returned,
// whatever it said in between: that is when it may do work.
type journal struct {
	mu      sync.Mutex
	entries []string       // "start A", "stop A", "lease A", "lease " (released)
	running map[string]int // sub-receiver instances running, by replica
	live    map[string]int // the same, by replica, sub-receiver and signal
	overlap int            // the most groups ever running at once
}

func newJournal() *journal { return &journal{running: map[string]int{}, live: map[string]int{}} }

func (j *journal) add(e string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, e)
}

// started is called when an instance's Start is entered. Two replicas with
// running instances, or two instances of one sub-receiver and signal in one
// replica, are two groups.
func (j *journal) started(replica, id, signal string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, "start "+replica+"/"+id)
	j.running[replica]++
	j.live[replica+" "+id+" "+signal]++
	n := 0
	for _, c := range j.running {
		if c > 0 {
			n++
		}
	}
	j.overlap = max(j.overlap, n, j.live[replica+" "+id+" "+signal])
}

// stopped is called when an instance's Shutdown returns.
func (j *journal) stopped(replica, id, signal string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, "stop "+replica+"/"+id)
	j.running[replica]--
	j.live[replica+" "+id+" "+signal]--
}

func (j *journal) maxOverlap() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.overlap
}

func (j *journal) runningCount(replica string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.running[replica]
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.entries...)
}

// index is the position of the first entry e at or after from, or -1.
func (j *journal) index(e string, from int) int {
	for i, x := range j.list()[from:] {
		if x == e {
			return from + i
		}
	}
	return -1
}

// cluster is a fake API server shared by several replicas. Like a real one,
// it rejects a Lease update whose resourceVersion is stale, stamps a new
// resourceVersion on every write (and a uid on every creation), serves
// watches, and it journals every change of holder.
type cluster struct {
	tracker k8stesting.ObjectTracker
	journal *journal
	mu      sync.Mutex // serialises applying a change and journaling it
	version int        // the last resourceVersion stamped
}

func newCluster(j *journal) *cluster {
	return &cluster{tracker: fake.NewClientset().Tracker(), journal: j}
}

// client returns a client for one replica; while fail is set, every call
// it makes fails as if the API server were unreachable. A write is applied at
// once, but its answer reaches the replica only after slow (then reset).
func (c *cluster) client(fail *atomic.Bool, slow *atomic.Int64) kubernetes.Interface {
	cs := &fake.Clientset{}
	cs.AddReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if fail != nil && fail.Load() {
			return true, nil, errors.New("connection refused (injected)")
		}
		return c.apply(a)
	})
	cs.AddWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		if fail != nil && fail.Load() {
			return true, nil, errors.New("connection refused (injected)")
		}
		w, err := c.tracker.Watch(a.GetResource(), a.GetNamespace())
		return true, w, err
	})
	return slowClient{cs, slow}
}

// slowClient delays the answers to Lease writes outside the fake's lock,
// which the replica's watch needs too: a goroutine waiting on a mutex is not
// durably blocked in a synctest bubble, so fake time would stand still.
type slowClient struct {
	*fake.Clientset
	slow *atomic.Int64
}

func (s slowClient) CoordinationV1() coordinationv1client.CoordinationV1Interface {
	return slowCoordination{s.Clientset.CoordinationV1(), s.slow}
}

type slowCoordination struct {
	coordinationv1client.CoordinationV1Interface
	slow *atomic.Int64
}

func (s slowCoordination) Leases(namespace string) coordinationv1client.LeaseInterface {
	return slowLeases{s.CoordinationV1Interface.Leases(namespace), s.slow}
}

type slowLeases struct {
	coordinationv1client.LeaseInterface
	slow *atomic.Int64
}

func (s slowLeases) late() {
	if s.slow != nil {
		time.Sleep(time.Duration(s.slow.Swap(0))) // fake time inside a synctest bubble
	}
}

func (s slowLeases) Create(ctx context.Context, l *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error) {
	defer s.late()
	return s.LeaseInterface.Create(ctx, l, opts)
}

func (s slowLeases) Update(ctx context.Context, l *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	defer s.late()
	return s.LeaseInterface.Update(ctx, l, opts)
}

func (c *cluster) apply(a k8stesting.Action) (bool, runtime.Object, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkVersion(a); err != nil {
		return true, nil, err
	}
	handled, obj, err := k8stesting.ObjectReaction(c.tracker)(a)
	if l, ok := obj.(*coordinationv1.Lease); ok && err == nil && a.GetVerb() != "get" && a.GetVerb() != "list" {
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		c.journal.add("lease " + holder)
	}
	return handled, obj, err
}

// checkVersion gives a Lease update the optimistic concurrency of a real API
// server, and stamps a new resourceVersion on every create and update (and a
// uid on every creation).
func (c *cluster) checkVersion(a k8stesting.Action) error {
	write, ok := a.(interface{ GetObject() runtime.Object })
	if !ok || a.GetResource().Resource != "leases" {
		return nil
	}
	l := write.GetObject().(*coordinationv1.Lease)
	if a.GetVerb() == "update" {
		cur, err := c.tracker.Get(a.GetResource(), l.Namespace, l.Name)
		if err != nil {
			return err
		}
		if cur.(*coordinationv1.Lease).ResourceVersion != l.ResourceVersion {
			return apierrors.NewConflict(a.GetResource().GroupResource(), l.Name, errors.New("the object has been modified"))
		}
	}
	c.version++
	l.ResourceVersion = strconv.Itoa(c.version)
	if a.GetVerb() == "create" {
		l.UID = types.UID("uid-" + l.ResourceVersion)
	}
	return nil
}

// edit changes the Lease by hand (kubectl edit): like every write to a real
// API server, it makes a new resourceVersion.
func (c *cluster) edit(t *testing.T, edit func(*coordinationv1.Lease)) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lease(t)
	edit(l)
	c.version++
	l.ResourceVersion = strconv.Itoa(c.version)
	require.NoError(t, c.tracker.Update(leasesGVR, l, "ns"))
}

func (c *cluster) lease(t *testing.T) *coordinationv1.Lease {
	obj, err := c.tracker.Get(coordinationv1.SchemeGroupVersion.WithResource("leases"), "ns", "lease")
	require.NoError(t, err)
	return obj.(*coordinationv1.Lease)
}

// freeLease is a Lease that exists with no holder, as after a release.
func freeLease() *coordinationv1.Lease {
	return &coordinationv1.Lease{
		// A resourceVersion, as every object a real API server serves has:
		// a watch that delivers this version late then drops it as older
		// than the candidate's own write (an empty one is not comparable).
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "lease", ResourceVersion: "0"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(""), LeaseDurationSeconds: ptr.To[int32](1)},
	}
}

func (c *cluster) holder(t *testing.T) string {
	l := c.lease(t)
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// testType is the type of the test sub-receiver.
var testType = component.MustNewType("testrcv")

// testConfig is the test sub-receiver's configuration.
type testConfig struct {
	// Value is emitted as a gauge when the receiver starts.
	Value int `mapstructure:"value"`
}

func (c *testConfig) Validate() error {
	if c.Value < 0 {
		return errors.New("value must not be negative")
	}
	return nil
}

// behaviour makes a replica's test sub-receivers fail or hang on demand.
type behaviour struct {
	replica  string
	journal  *journal
	startErr atomic.Pointer[error]
	block    chan struct{} // when set, Start blocks until it is closed, ignoring its context
	blockCtx bool          // Start blocks until its context is cancelled
	// shutdownDelay is how long Shutdown takes; shutdownErr what it returns.
	shutdownDelay time.Duration
	shutdownErr   error
	// report, when set, is the status Start reports through its host.
	report    *componentstatus.Event
	hang      chan struct{} // when set, Shutdown blocks until it is closed
	instances atomic.Int64  // created so far
	entered   atomic.Int64  // Start calls so far
	// createGate, when set, makes Create wait until it is closed.
	createGate chan struct{}
	// live counts instances from the entry of Create to the return of
	// their Shutdown. The replica's cleanup waits for it: an instance
	// created after a stop is shut down by a goroutine that outlives the
	// runner's Shutdown, and a bubble must not end while it runs.
	live   sync.WaitGroup
	hostMu sync.Mutex
	host   component.Host // the host the last Start was given
}

// lastHost is the host the sub-receiver's last Start was given: a member
// reports its status through it, also from goroutines of its own.
func (b *behaviour) lastHost() component.Host {
	b.hostMu.Lock()
	defer b.hostMu.Unlock()
	return b.host
}

// testFactory is a receiver factory for metrics and logs whose receivers
// journal their start and stop and emit one metric on start.
func testFactory(typ component.Type, b *behaviour) receiver.Factory {
	create := func(set receiver.Settings, cfg component.Config, signal string, next consumer.Metrics) *testReceiver {
		b.live.Add(1) // done by the instance's Shutdown
		if b.createGate != nil {
			<-b.createGate
		}
		b.instances.Add(1)
		return &testReceiver{b: b, id: set.ID, signal: signal, cfg: cfg.(*testConfig), next: next}
	}
	return receiver.NewFactory(typ,
		func() component.Config { return &testConfig{Value: 1} },
		receiver.WithMetrics(func(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
			return create(set, cfg, "metrics", next), nil
		}, component.StabilityLevelAlpha),
		receiver.WithLogs(func(_ context.Context, set receiver.Settings, cfg component.Config, _ consumer.Logs) (receiver.Logs, error) {
			return create(set, cfg, "logs", nil), nil
		}, component.StabilityLevelAlpha),
	)
}

type testReceiver struct {
	b       *behaviour
	id      component.ID
	signal  string
	cfg     *testConfig
	next    consumer.Metrics
	entered bool
	down    sync.Once // Shutdown ends the instance's life once (behaviour.live)
}

func (r *testReceiver) Start(ctx context.Context, host component.Host) error {
	r.entered = true
	r.b.hostMu.Lock()
	r.b.host = host
	r.b.hostMu.Unlock()
	if r.b.report != nil {
		componentstatus.ReportStatus(host, r.b.report)
	}
	r.b.entered.Add(1)
	r.b.journal.started(r.b.replica, r.id.String(), r.signal)
	if r.b.block != nil {
		<-r.b.block
	}
	if r.b.blockCtx {
		<-ctx.Done()
		return ctx.Err()
	}
	if errp := r.b.startErr.Load(); errp != nil {
		return *errp
	}
	if r.next != nil {
		md := pmetric.NewMetrics()
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName(r.id.String())
		m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(int64(r.cfg.Value))
		return r.next.ConsumeMetrics(ctx, md)
	}
	return nil
}

func (r *testReceiver) Shutdown(context.Context) error {
	defer r.down.Do(r.b.live.Done)
	if r.b.hang != nil {
		<-r.b.hang
	}
	time.Sleep(r.b.shutdownDelay) // fake time inside a synctest bubble
	if r.entered {
		r.b.journal.stopped(r.b.replica, r.id.String(), r.signal)
	}
	return r.b.shutdownErr
}

// release lets every blocked Start and hung Shutdown return.
func (b *behaviour) release() {
	for _, c := range []chan struct{}{b.block, b.hang, b.createGate} {
		if c == nil {
			continue
		}
		select {
		case <-c:
		default:
			close(c)
		}
	}
}

// testHost provides the test factories and records status reports.
type testHost struct {
	factories map[component.Type]receiver.Factory
	mu        sync.Mutex
	statuses  []*componentstatus.Event
	// onFatal runs when a FatalError is reported: the collector would exit.
	onFatal   func()
	fatalTime time.Time
}

func (h *testHost) GetExtensions() map[component.ID]component.Component { return nil }

func (h *testHost) GetFactory(kind component.Kind, typ component.Type) component.Factory {
	if kind != component.KindReceiver {
		return nil
	}
	if f, ok := h.factories[typ]; ok {
		return f
	}
	return nil
}

func (h *testHost) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	h.statuses = append(h.statuses, ev)
	if ev.Status() == componentstatus.StatusFatalError && h.fatalTime.IsZero() {
		h.fatalTime = time.Now()
	}
	onFatal := h.onFatal
	h.mu.Unlock()
	if ev.Status() == componentstatus.StatusFatalError && onFatal != nil {
		onFatal()
	}
}

// statusCount is the number of status events reported so far.
func (h *testHost) statusCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.statuses)
}

// fatalAt is when the first FatalError was reported.
func (h *testHost) fatalAt() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fatalTime
}

// fatalCount is the number of FatalErrors reported.
func (h *testHost) fatalCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ev := range h.statuses {
		if ev.Status() == componentstatus.StatusFatalError {
			n++
		}
	}
	return n
}

// fatalErr is the FatalError reported, if any.
func (h *testHost) fatalErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range h.statuses {
		if ev.Status() == componentstatus.StatusFatalError {
			return ev.Err()
		}
	}
	return nil
}

func (h *testHost) lastStatus() *componentstatus.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.statuses) == 0 {
		return nil
	}
	return h.statuses[len(h.statuses)-1]
}

// replica is one collector's leader_receiver_creator on the fake cluster.
type replica struct {
	name    string
	r       *runner
	host    *testHost
	b       *behaviour
	fail    atomic.Bool  // cut this replica off the API server
	slow    atomic.Int64 // the answer to its next write comes this late (ns)
	logs    *observer.ObservedLogs
	metrics *consumertest.MetricsSink
	others  []*behaviour // of sub-receiver types added by the test
	// exitCode and exitTime (UnixNano) are set when the runner ended the process.
	exitCode, exitTime atomic.Int64
}

// addType gives the replica a second test sub-receiver type, zother (after
// testrcv in the group's order), with its own behaviour.
func (rp *replica) addType() *behaviour {
	const name = "zother"
	b := &behaviour{replica: rp.name, journal: rp.b.journal}
	typ := component.MustNewType(name)
	rp.host.factories[typ] = testFactory(typ, b)
	rp.others = append(rp.others, b)
	return b
}

// testConfigFor is a block with one test sub-receiver per given key.
func testConfigFor(keys ...string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.LeaderElection.LeaseName = "lease"
	cfg.LeaderElection.LeaseNamespace = "ns"
	cfg.Receivers = map[string]map[string]any{}
	for _, k := range keys {
		cfg.Receivers[k] = map[string]any{"value": 7}
	}
	return cfg
}

// newReplica is a replica that is a process of its own: its slots, one
// FatalError and one exit.
func newReplica(t *testing.T, c *cluster, name string, cfg *Config) *replica {
	t.Helper()
	return newReplicaIn(t, c, name, cfg, newProcessLeases())
}

// newReplicaIn is a replica in process p: a block that shares p's slots,
// type locks, FatalError and exit with the other blocks in p (another block
// of one collector, or the runner a reload builds).
func newReplicaIn(t *testing.T, c *cluster, name string, cfg *Config, p *processLeases) *replica {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type)
	set.Logger = zap.New(core)
	rp := &replica{name: name, logs: logs, metrics: new(consumertest.MetricsSink)}
	rp.b = &behaviour{replica: name, journal: c.journal}
	rp.host = &testHost{factories: map[component.Type]receiver.Factory{testType: testFactory(testType, rp.b)}}
	r, err := newRunner(cfg, set, name, p)
	require.NoError(t, err)
	client := c.client(&rp.fail, &rp.slow)
	testClients.Store(cfg, kubeClient{Interface: client, cluster: fmt.Sprintf("cluster-%p", c)})
	t.Cleanup(func() { testClients.Delete(cfg) })
	r.exit = func(code int) { // the process ends: whatever it ran ends with it
		rp.exitCode.Store(int64(code))
		rp.exitTime.Store(time.Now().UnixNano())
		rp.b.release()
		for _, b := range rp.others {
			b.release()
		}
	}
	r.consumers.metrics = rp.metrics
	r.consumers.logs = consumertest.NewNop()
	rp.r = r
	t.Cleanup(func() {
		rp.b.release()
		for _, b := range rp.others {
			b.release()
		}
		_ = r.Shutdown(context.Background())
		rp.b.live.Wait()
		for _, b := range rp.others {
			b.live.Wait()
		}
	})
	return rp
}

// exitsOnFatal makes a FatalError end this replica as the collector would:
// the process exits, so whatever its sub-receivers did ends with it.
func (rp *replica) exitsOnFatal() {
	rp.host.onFatal = func() {
		rp.b.release()
		for _, b := range rp.others {
			b.release()
		}
	}
}

func (rp *replica) start(t *testing.T) {
	t.Helper()
	require.NoError(t, rp.r.Start(context.Background(), rp.host))
}

// leading reports whether this replica's test sub-receivers are running.
func (rp *replica) leading() bool {
	return rp.b.journal.runningCount(rp.name) > 0
}

func (rp *replica) logCount(msg string) int {
	return rp.logs.FilterMessage(msg).Len()
}

// waitFor advances the bubble's fake clock in small steps until cond holds,
// or fails after limit of fake time.
func waitFor(t *testing.T, limit time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", limit, fmt.Sprintf(what, args...))
		}
		time.Sleep(100 * time.Millisecond) // fake time inside a synctest bubble
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

func receivertestSettings() receiver.Settings { return receivertest.NewNopSettings(metadata.Type) }

func nopSink() *consumertest.MetricsSink { return new(consumertest.MetricsSink) }

// collectorModel is how the collector this module pins (otelcol v0.152.0)
// handles a FatalError, reduced to what matters here: the host's Report sends
// the error on an unbuffered channel (service/internal/graph/host.go:85,
// otelcol/collector.go:147), which only the select of Run's control loop
// reads. That loop leaves its select for good at the first async error or
// shutdown request and then shuts the service down; during a shutdown or a
// reload nobody reads the channel (upstream issue
// open-telemetry/opentelemetry-collector#9824, still open).
type collectorModel struct {
	asyncErr chan error
	stop     chan struct{} // test cleanup: drain whatever is still sent
}

func newCollectorModel(t *testing.T) *collectorModel {
	m := &collectorModel{asyncErr: make(chan error), stop: make(chan struct{})}
	// Registered before the replicas, so it runs after their cleanups.
	t.Cleanup(func() { close(m.stop) })
	return m
}

// drainInCleanup lets blocked senders go once the test body is over (so that
// the replicas' cleanups can shut down); call it after newReplica.
func (m *collectorModel) drainInCleanup(t *testing.T) {
	t.Cleanup(func() {
		go func() {
			for {
				select {
				case err := <-m.asyncErr:
					_ = err // nobody reads it once the collector shuts down
				case <-m.stop:
					return
				}
			}
		}()
	})
}

// collectorHost is one pipeline instance's host in the collector model.
type collectorHost struct {
	*testHost
	m *collectorModel
}

func (h *collectorHost) Report(ev *componentstatus.Event) {
	h.testHost.Report(ev)
	if ev.Status() == componentstatus.StatusFatalError {
		h.m.asyncErr <- ev.Err() // graph.Host.NotifyComponentStatusChange
	}
}

// realCollector runs a real collector (otelcol at go.mod's line) whose one block of
// leader_receiver_creator, with the given sub-receiver types and members
// (receivers, as YAML flow), sits in a metrics and a logs pipeline and
// talks to a fake API server (auth_type none: lifecycle_test's fallback).
// Each gets a process of its own (thisProcess), and a Lease named after the
// test.
// It returns the collector, what Run returned once it did, and its logs.
func realCollector(t *testing.T, subs map[component.Type]receiver.Factory, members string) (*otelcol.Collector, <-chan error, *observer.ObservedLogs) {
	t.Helper()
	thisProcess = newProcessLeases() // a process of its own: its slots, one FatalError and one exit
	core, logs := observer.New(zap.InfoLevel)
	factories := func() (otelcol.Factories, error) {
		receivers := map[component.Type]receiver.Factory{metadata.Type: NewFactory()}
		maps.Copy(receivers, subs)
		return otelcol.Factories{
			Receivers: receivers,
			Exporters: map[component.Type]exporter.Factory{exportertest.NopType: exportertest.NewNopFactory()},
			Telemetry: otelconftelemetry.NewFactory(),
		}, nil
	}
	config := `yaml:
receivers:
  leader_receiver_creator:
    auth_type: none
    leader_election: {lease_name: ` + strings.ToLower(t.Name()) + `, lease_namespace: ns, lease_duration: 2s, renew_deadline: 1s, retry_period: 300ms}
    receivers: ` + members + `
exporters:
  nop:
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    metrics: {receivers: [leader_receiver_creator], exporters: [nop]}
    logs: {receivers: [leader_receiver_creator], exporters: [nop]}
`
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo:      component.NewDefaultBuildInfo(),
		Factories:      factories,
		LoggingOptions: []zap.Option{zap.WrapCore(func(zapcore.Core) zapcore.Core { return core })},
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:              []string{config},
			ProviderFactories: []confmap.ProviderFactory{yamlprovider.NewFactory()},
		}},
	})
	require.NoError(t, err)
	ran := make(chan error, 1)
	go func() { ran <- col.Run(context.Background()) }()
	return col, ran, logs
}
