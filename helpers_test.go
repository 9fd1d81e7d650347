package leaderreceivercreator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/metadata"
)

// The test sub-receivers, the hosts they run on, and the replica: one
// collector's leader_receiver_creator on the fake cluster
// (helpers_cluster_test.go).

// testType is the type of the test sub-receiver.
var testType = component.MustNewType("testrcv")

// testConfig is the test sub-receiver's configuration.
type testConfig struct {
	// Value is emitted as a gauge when the receiver starts.
	Value int `mapstructure:"value"`
	// Storage names a storage extension, as k8s_objects' storage does; the
	// tests use the client themselves (storageOf).
	Storage string `mapstructure:"storage"`
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
	// metricsLead is how much sooner than that a metrics instance's
	// Shutdown returns: its fence closes while its group still stops.
	metricsLead time.Duration
	// onShutdown, when set, runs in every Shutdown after the delay.
	onShutdown  func()
	shutdownErr error
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
	liveMu sync.Mutex // see born
	hostMu sync.Mutex
	host   component.Host // the host the last Start was given
	// feed, when set, makes the metrics instances whose storage is set
	// stream positions and checkpoint them (set before the replica starts).
	feed *feed
}

// born counts a new instance in live, under liveMu, which waitLive takes
// before it waits: an Add from zero must happen before the Wait (the race
// detector checks it), and a Create that adds and then blocks at createGate
// has no other edge to the cleanup that waits for it.
func (b *behaviour) born() {
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	b.live.Add(1)
}

// waitLive waits until every instance created so far has been shut down.
func (b *behaviour) waitLive() {
	b.liveMu.Lock()
	b.liveMu.Unlock() //nolint:staticcheck // an empty critical section: every born so far happens before the Wait
	b.live.Wait()
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
		b.born() // done by the instance's Shutdown
		if b.createGate != nil {
			<-b.createGate
		}
		b.instances.Add(1)
		return &testReceiver{b: b, id: set.ID, signal: signal, cfg: cfg.(*testConfig), next: next, shut: make(chan struct{})}
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
	down    sync.Once     // Shutdown ends the instance's life once (behaviour.live)
	shut    chan struct{} // closed when Shutdown returns
	shutOne sync.Once
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
		if err := r.next.ConsumeMetrics(ctx, md); err != nil {
			return err
		}
		if r.b.feed != nil && r.cfg.Storage != "" {
			return r.b.feed.start(r, host)
		}
	}
	return nil
}

func (r *testReceiver) Shutdown(context.Context) error {
	defer r.down.Do(r.b.live.Done)
	defer r.shutOne.Do(func() { close(r.shut) })
	if r.b.hang != nil {
		<-r.b.hang
	}
	delay := r.b.shutdownDelay
	if r.signal == "metrics" {
		delay = max(0, delay-r.b.metricsLead)
	}
	time.Sleep(delay) // fake time inside a synctest bubble
	if r.b.onShutdown != nil {
		r.b.onShutdown()
	}
	if r.entered {
		r.b.journal.stopped(r.b.replica, r.id.String(), r.signal)
	}
	return r.b.shutdownErr
}

// feed makes a test sub-receiver's metrics instance behave as contrib's
// watch receivers do with their checkpoints (k8s_objects, k8s_events): it
// resumes from the position in its storage, then every period sends the
// next position of one stream, shared by every replica, down its pipeline
// and, once that call has returned, stores it as its checkpoint. Like a
// goroutine of k8s_cluster's, it outlives the instance's Shutdown by one
// more position, sent after the instance's fence closed.
type feed struct {
	period time.Duration
	seq    atomic.Int64 // the stream's last position handed out
	// resumed is told the position each instance resumed from (0: none);
	// late is told whether the storage took the position sent after the
	// instance's Shutdown returned.
	resumed func(replica string, pos int64)
	late    func(replica string, pos int64, taken bool)
}

// feedMetric is the name of the metric that carries a feed's positions.
const feedMetric = "feed"

func (f *feed) start(r *testReceiver, host component.Host) error {
	ext, ok := host.GetExtensions()[checkpointsID].(storage.Extension)
	if !ok {
		return errors.New("no lease_checkpoints")
	}
	client, err := ext.GetClient(context.Background(), component.KindReceiver, r.id, "")
	if err != nil {
		return err
	}
	v, err := client.Get(context.Background(), "pos")
	if err != nil {
		return err
	}
	var pos int64
	if v != nil {
		if pos, err = strconv.ParseInt(string(v), 10, 64); err != nil {
			return err
		}
	}
	f.resumed(r.b.replica, pos)
	r.b.born() // the replica's cleanup waits for this goroutine too
	go func() {
		defer r.b.live.Done()
		for {
			select {
			case <-r.shut:
				time.Sleep(time.Millisecond) // fake time: its fence has closed
				pos, taken := f.send(r, client)
				f.late(r.b.replica, pos, taken)
				return
			case <-time.After(f.period): // fake time
				f.send(r, client)
			}
		}
	}()
	return nil
}

// send sends the next position and, if the pipeline call returned without
// error, stores it; it reports the position and whether the storage took it.
func (f *feed) send(r *testReceiver, client storage.Client) (int64, bool) {
	pos := f.seq.Add(1)
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(feedMetric)
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(pos)
	if err := r.next.ConsumeMetrics(context.Background(), md); err != nil {
		return pos, false
	}
	return pos, client.Set(context.Background(), "pos", []byte(strconv.FormatInt(pos, 10))) == nil
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
	testClients.Store(cfg, kubeClient{leases: client.CoordinationV1(), cluster: fmt.Sprintf("cluster-%p", c)})
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
		rp.b.waitLive()
		for _, b := range rp.others {
			b.waitLive()
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
