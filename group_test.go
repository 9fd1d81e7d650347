package leaderreceivercreator

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/xreceiver"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// fullHost is a collector host with every capability a sub-receiver may use.
type fullHost struct {
	testHost
	exporters map[pipeline.Signal]map[component.ID]component.Component
}

func (h *fullHost) GetExporters() map[pipeline.Signal]map[component.ID]component.Component {
	return h.exporters
}

// Sub-receivers see the collector's host capabilities through the group's
// host: k8s_cluster, for one, fails to start without GetExporters.
func TestSubHostForwardsHostCapabilities(t *testing.T) {
	exporterID := component.MustNewID("otlp")
	parent := &fullHost{
		testHost:  testHost{factories: map[component.Type]receiver.Factory{testType: testFactory(testType, &behaviour{})}},
		exporters: map[pipeline.Signal]map[component.ID]component.Component{pipeline.SignalMetrics: {exporterID: nil}},
	}
	var reported []*componentstatus.Event
	h := &subHost{Host: parent, report: func(ev *componentstatus.Event) { reported = append(reported, ev) }}
	assert.Contains(t, h.GetExporters()[pipeline.SignalMetrics], exporterID)
	assert.NotNil(t, h.GetFactory(component.KindReceiver, testType))
	h.Report(componentstatus.NewEvent(componentstatus.StatusOK))
	assert.Len(t, reported, 1, "a sub-receiver's status goes to the block's status fan-out")

	bare := &subHost{Host: &testHost{}}
	assert.Nil(t, bare.GetExporters(), "a host without exporters gives none, it does not panic")
}

func TestStartRejectsBadSubReceiverConfig(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		host    component.Host
		wantErr string
	}{
		{
			name:    "unknown field",
			mutate:  func(c *Config) { c.Receivers["testrcv"] = map[string]any{"valu": 3} },
			wantErr: "receivers::testrcv: decoding failed",
		},
		{
			name:    "factory validation",
			mutate:  func(c *Config) { c.Receivers["testrcv"] = map[string]any{"value": -1} },
			wantErr: "receivers::testrcv: value must not be negative",
		},
		{
			name:    "unknown type",
			mutate:  func(c *Config) { c.Receivers["k8s_clustr"] = nil },
			wantErr: `receivers::k8s_clustr: this collector has no receiver of type "k8s_clustr"`,
		},
		{
			name:    "signal the factory lacks",
			mutate:  func(c *Config) { c.Signals = map[string][]string{"testrcv": {"traces"}} },
			wantErr: "signals::testrcv: testrcv does not support traces",
		},
		{
			name:    "signal without a pipeline",
			mutate:  func(c *Config) { c.Signals = map[string][]string{"testrcv": {"logs"}} },
			wantErr: "signals::testrcv: this leader_receiver_creator block is in no logs pipeline",
		},
		{
			name:    "host without factories",
			mutate:  func(*Config) {},
			host:    componenttest.NewNopHost(),
			wantErr: "does not provide component factories",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(newJournal())
			cfg := testConfigFor("testrcv")
			tt.mutate(cfg)
			a := newReplica(t, c, "a", cfg)
			a.r.consumers.logs = nil // this block sits in a metrics pipeline only
			host := tt.host
			if host == nil {
				host = a.host
			}
			err := a.r.Start(context.Background(), host)
			require.ErrorContains(t, err, tt.wantErr)
			require.NoError(t, a.r.Shutdown(context.Background()))
			_, getErr := c.tracker.Get(leasesGVR, "ns", "lease")
			assert.Error(t, getErr, "a replica with a bad config must not campaign")
		})
	}
}

func TestDefaultSignalsAreSupportedAndConsumed(t *testing.T) {
	a := newReplica(t, newCluster(newJournal()), "a", testConfigFor("testrcv"))
	cfg := testConfigFor("testrcv", "zother")
	cfg.Signals = map[string][]string{"zother": {"metrics"}}
	a.host.factories[component.MustNewType("zother")] = testFactory(component.MustNewType("zother"), a.b)
	g, err := resolveGroup(cfg, a.host, a.r.set, a.r.consumers, a.r.process)
	require.NoError(t, err)
	require.Len(t, g.members, 2)
	assert.Equal(t, "testrcv", g.members[0].key)
	assert.Equal(t, "[metrics logs]", signalNames(g.members[0]), "testrcv supports metrics and logs, both consumed; not traces")
	assert.Equal(t, "[metrics]", signalNames(g.members[1]), "restricted by signals")
}

func signalNames(m member) string {
	out := make([]string, len(m.signals))
	for i, s := range m.signals {
		out[i] = s.String()
	}
	return "[" + strings.Join(out, " ") + "]"
}

// sharedState is a receiver factory that, like contrib's
// internal/sharedcomponent (k8s_cluster, receiver_creator), keeps its live
// instances in a package-level map without a lock, and counts how many of
// its calls run at once.
type sharedState struct {
	live      map[component.Config]int // unsynchronised, as sharedcomponent's
	inside    atomic.Int32
	maxInside atomic.Int32
	entered   atomic.Int32  // Shutdown calls so far
	release   chan struct{} // each Shutdown waits for one value
}

func (s *sharedState) enter() {
	n := s.inside.Add(1)
	for {
		m := s.maxInside.Load()
		if n <= m || s.maxInside.CompareAndSwap(m, n) {
			return
		}
	}
}

func (s *sharedState) factory(typ component.Type) receiver.Factory {
	return receiver.NewFactory(typ,
		func() component.Config { return &testConfig{} },
		receiver.WithMetrics(s.create, component.StabilityLevelAlpha))
}

func (s *sharedState) create(_ context.Context, _ receiver.Settings, cfg component.Config, _ consumer.Metrics) (receiver.Metrics, error) {
	s.enter()
	defer s.inside.Add(-1)
	s.live[cfg]++
	return &sharedStateReceiver{s: s, cfg: cfg}, nil
}

type sharedStateReceiver struct {
	s   *sharedState
	cfg component.Config
}

func (*sharedStateReceiver) Start(context.Context, component.Host) error { return nil }

// Unwrap marks it as contrib's sharedcomponent wrapper does.
func (r *sharedStateReceiver) Unwrap() component.Component { return r }

func (r *sharedStateReceiver) Shutdown(context.Context) error {
	r.s.enter()
	defer r.s.inside.Add(-1)
	r.s.entered.Add(1)
	<-r.s.release
	delete(r.s.live, r.cfg)
	return nil
}

// Two members of one type never run their factory's Create or Shutdown at
// once, although a group stops its members concurrently: contrib receivers
// keep package-level state that is not safe for that (processLeases.lockType).
// Invariant S15.
func TestMembersOfOneTypeStopOneAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		typ := component.MustNewType("sharedstate")
		s := &sharedState{live: map[component.Config]int{}, release: make(chan struct{})}
		host := &testHost{factories: map[component.Type]receiver.Factory{typ: s.factory(typ)}}
		cfg := testConfigFor("sharedstate", "sharedstate/b")
		// Its locks live in the bubble.
		g, err := resolveGroup(cfg, host, receivertestSettings(), consumers{metrics: nopSink()}, newProcessLeases())
		require.NoError(t, err)
		rg := g.start(host, func(string, *componentstatus.Event) {}, nil, nil)
		<-rg.Done()
		require.NoError(t, rg.Err())
		require.Len(t, s.live, 2)

		s.stopOneAtATime(t, rg)
	})
}

// stopOneAtATime stops rg, whose two members share s, inside a synctest
// bubble, and checks that their Shutdowns ran one after the other.
func (s *sharedState) stopOneAtATime(t *testing.T, rg *runningGroup) {
	t.Helper()
	stopped := make(chan error, 1)
	go func() { stopped <- rg.stop(context.Background()) }()
	synctest.Wait()
	assert.Equal(t, int32(1), s.entered.Load(), "one Shutdown runs, the other waits for it")
	s.release <- struct{}{}
	synctest.Wait()
	assert.Equal(t, int32(2), s.entered.Load(), "then the other")
	s.release <- struct{}{}
	require.NoError(t, <-stopped)
	assert.Equal(t, int32(1), s.maxInside.Load(), "never two calls into the factory's state at once")
	assert.Empty(t, s.live)
}

// A type and its deprecated alias (http_check and httpcheck, k8s_objects and
// k8sobjects) are one type: one factory and one package-level state behind
// both names, so their members stop one at a time too. The alias is logged.
// Invariant S15.
func TestDeprecatedAliasSharesItsTypesStopLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		typ, alias := component.MustNewType("shared_state"), component.MustNewType("sharedstate")
		s := &sharedState{live: map[component.Config]int{}, release: make(chan struct{})}
		f := xreceiver.NewFactory(typ,
			func() component.Config { return &testConfig{} },
			xreceiver.WithMetrics(s.create, component.StabilityLevelAlpha),
			xreceiver.WithDeprecatedTypeAlias(alias))
		// As otelcol.MakeFactoryMap lists it: under both names.
		host := &testHost{factories: map[component.Type]receiver.Factory{typ: f, alias: f}}
		core, logs := observer.New(zap.WarnLevel)
		set := receivertestSettings()
		set.Logger = zap.New(core)
		g, err := resolveGroup(testConfigFor("shared_state", "sharedstate/b"), host, set, consumers{metrics: nopSink()}, newProcessLeases())
		require.NoError(t, err)
		warned := logs.FilterMessage(logmsg.DeprecatedType).All()
		require.Len(t, warned, 1)
		assert.Equal(t, map[string]any{"receiver": "sharedstate/b", "type": "sharedstate", "use": "shared_state"}, warned[0].ContextMap())

		rg := g.start(host, func(string, *componentstatus.Event) {}, nil, nil)
		<-rg.Done()
		require.NoError(t, rg.Err())
		require.Len(t, s.live, 2)
		s.stopOneAtATime(t, rg)
	})
}

// Invariants S7, S8, S9.
func TestGroupStartFailureRollsBackAndGivesTheLeaseAway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		// a runs two sub-receivers; the second one fails to start on a only.
		a := newReplica(t, c, "a", testConfigFor("testrcv", "zother"))
		bad := &behaviour{replica: "a", journal: j}
		errStart := errors.New("port 4317 is taken")
		bad.startErr.Store(&errStart)
		a.host.factories[component.MustNewType("zother")] = testFactory(component.MustNewType("zother"), bad)
		tel := componenttest.NewTelemetry()
		defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
		a.r.set.TelemetrySettings = tel.NewTelemetrySettings()
		a.r.telemetry = mustTelemetry(t, a.r.set)
		a.start(t)

		waitFor(t, time.Minute, func() bool { return a.logCount("lease released") > 0 }, "a did not give the Lease back")
		// All or nothing: testrcv (one instance per signal) had started, and
		// it and the failed zother were shut down before the Lease was given
		// back. (Renewals while a waits out its newly created Lease repeat
		// "lease a".)
		entries := j.list()
		entries = append(entries[:1], slices.DeleteFunc(entries[1:], func(e string) bool { return e == "lease a" })...)
		start, stop := "start a/testrcv/leader_receiver_creator", "stop a/testrcv/leader_receiver_creator"
		startZ, stopZ := "start a/zother/leader_receiver_creator", "stop a/zother/leader_receiver_creator"
		require.Len(t, entries, 8, "%v", entries)
		assert.Equal(t, []string{"lease a", start, start, startZ}, entries[:4])
		assert.ElementsMatch(t, []string{stop, stop, stopZ}, entries[4:7], "stopped concurrently")
		assert.Equal(t, "lease ", entries[7])
		assert.Empty(t, c.holder(t))
		ev := a.host.lastStatus()
		require.NotNil(t, ev)
		assert.Equal(t, componentstatus.StatusRecoverableError, ev.Status())
		assert.ErrorContains(t, ev.Err(), "receivers::zother: start: port 4317 is taken")

		// A healthy replica takes the free Lease while a backs off.
		b := newReplica(t, c, "b", testConfigFor("testrcv", "zother"))
		b.host.factories[component.MustNewType("zother")] = testFactory(component.MustNewType("zother"), b.b)
		b.start(t)
		waitFor(t, time.Minute, b.leading, "b did not take the Lease a gave back")
		assert.Equal(t, "b", c.holder(t))
		assert.Equal(t, 1, j.maxOverlap())

		failures, err := tel.GetMetric("otelcol_leader_group_start_failures")
		require.NoError(t, err)
		assert.NotEmpty(t, failures.Data)

		require.NoError(t, b.r.Shutdown(context.Background()))
		require.NoError(t, a.r.Shutdown(context.Background()))
	})
}

// A Create that returns only after the replica was shut down. Its instance
// is shut down unstarted by the group's start goroutine, which outlives the
// runner's Shutdown: nothing may wait for a Create (doc.go). The replica's
// cleanup waits for every instance it created to be shut down. Before, the
// bubble could end while that Shutdown still ran (CI of stop 20, in the
// simulation: "main bubble goroutine has exited but blocked goroutines
// remain").
// Invariant S7.
func TestInstanceCreatedAfterShutdownIsShutDownUnstarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		require.NoError(t, c.tracker.Add(freeLease()))
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.b.createGate = make(chan struct{})
		a.b.shutdownDelay = 2 * time.Second
		a.start(t)
		waitFor(t, time.Minute, func() bool { return c.holder(t) == "a" }, "a did not take the Lease")
		synctest.Wait() // a's Create waits at its gate
		require.NoError(t, a.r.Shutdown(context.Background()))
		a.b.release() // the Create returns after the stop
		synctest.Wait()
		assert.Equal(t, int64(1), a.b.instances.Load(), "the Create did not return")
		assert.Zero(t, a.b.entered.Load(), "an instance created after the stop was started")
		// The test ends while that instance's Shutdown runs.
	})
}

// Sequences found by a second reader of the term-deadline design; each
// comment tells what went wrong before the fix the test now holds.

// runningGroup.add holds rg.mu while the factory creates the
// receiver, and stop takes rg.mu without any bound. A Create that takes longer
// than the stop margin keeps the stop from even beginning past the term's
// deadline; when Create returns, startAll calls Start, after the deadline,
// while the standby that took the expired Lease runs its group. (Real time:
// a goroutine blocked on a sync.Mutex stalls a synctest bubble's clock.)
// Invariant S7.
func TestSlowCreateNeverStartsAfterTheStop(t *testing.T) {
	j := newJournal()
	c := newCluster(j)
	fast := func(cfg *Config) *Config {
		cfg.LeaderElection.LeaseDuration = 2 * time.Second
		cfg.LeaderElection.RenewDeadline = time.Second
		cfg.LeaderElection.RetryPeriod = 300 * time.Millisecond
		return cfg
	}
	a := newReplica(t, c, "a", fast(testConfigFor("zslow")))
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	t.Cleanup(func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	})
	typ := component.MustNewType("zslow")
	inner := testFactory(typ, a.b)
	a.host.factories[typ] = receiver.NewFactory(typ, inner.CreateDefaultConfig,
		receiver.WithMetrics(func(ctx context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-gate // e.g. a factory that dials or lists something in Create
			return inner.CreateMetrics(ctx, set, cfg, next)
		}, component.StabilityLevelAlpha))
	a.start(t)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("a never created its member")
	}
	b := newReplica(t, c, "b", fast(testConfigFor("testrcv")))
	b.start(t)

	a.fail.Store(true) // the term is lost while the member is being created
	waitFor(t, 10*time.Second, b.leading, "b did not take over the expired Lease")
	close(gate) // Create returns, well after a's deadline
	time.Sleep(500 * time.Millisecond)

	assert.Equal(t, 1, j.maxOverlap(), "a's member started after a's deadline while b led: %v", j.list())
}
