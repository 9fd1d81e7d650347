package leaderreceivercreator

import (
	"context"
	"errors"
	"sync"
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
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/pipeline/xpipeline"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap/zapcore"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
	"github.com/leaderreceivercreator/leaderreceivercreator/internal/metadatatest"
)

var leakyType = component.MustNewType("leaky")

// leaky is a metrics sub-receiver whose goroutine outlives its Shutdown, as
// k8s_cluster's informers do: its Shutdown only cancels them and returns.
type leaky struct {
	flush int           // Shutdown has the goroutine send this many points first
	hang  chan struct{} // when set, Shutdown blocks until it is closed

	mu        sync.Mutex
	receivers []*leakyReceiver // every instance created, in order
	flushErr  error            // what the flush's ConsumeMetrics returned
}

type leakyReceiver struct {
	l    *leaky
	next consumer.Metrics
	emit chan int   // each value makes the goroutine send a gauge of that many points
	sent chan error // and what its ConsumeMetrics returned
}

func (l *leaky) factory() receiver.Factory {
	return receiver.NewFactory(leakyType,
		func() component.Config { return &testConfig{} },
		receiver.WithMetrics(func(_ context.Context, _ receiver.Settings, _ component.Config, next consumer.Metrics) (receiver.Metrics, error) {
			r := &leakyReceiver{l: l, next: next, emit: make(chan int), sent: make(chan error)}
			l.mu.Lock()
			defer l.mu.Unlock()
			l.receivers = append(l.receivers, r)
			return r, nil
		}, component.StabilityLevelAlpha))
}

func (r *leakyReceiver) Start(context.Context, component.Host) error {
	go func() { // ignores every context: it lives until the test ends it
		for n := range r.emit {
			r.sent <- r.next.ConsumeMetrics(context.Background(), gauge(n))
		}
	}()
	return nil
}

func (r *leakyReceiver) Shutdown(context.Context) error {
	if r.l.flush > 0 {
		err := r.send(r.l.flush)
		r.l.mu.Lock()
		r.l.flushErr = err
		r.l.mu.Unlock()
	}
	if r.l.hang != nil {
		<-r.l.hang
	}
	return nil
}

// send makes the receiver's goroutine send a gauge of n points and returns
// what its ConsumeMetrics returned.
func (r *leakyReceiver) send(n int) error {
	r.emit <- n
	return <-r.sent
}

func (l *leaky) receiver(i int) *leakyReceiver {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.receivers[i]
}

// end ends the goroutines (the test's process exits).
func (l *leaky) end() {
	if l.hang != nil {
		select {
		case <-l.hang:
		default:
			close(l.hang)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.receivers {
		close(r.emit)
	}
}

func gauge(points int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	dps := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints()
	for range points {
		dps.AppendEmpty().SetIntValue(1)
	}
	return md
}

// drops records what a fence reports.
type drops struct {
	mu     sync.Mutex
	items  map[string]int // by member and signal
	firsts []string       // members, at their first drop
}

func newDrops() *drops { return &drops{items: map[string]int{}} }

func (d *drops) record(member string, s pipeline.Signal, items int, first bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.items[member+" "+s.String()] += items
	if first {
		d.firsts = append(d.firsts, member)
	}
}

func (d *drops) get() (map[string]int, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]int{}
	for k, v := range d.items {
		out[k] = v
	}
	return out, append([]string(nil), d.firsts...)
}

// nopComponent is a started instance that does nothing.
type nopComponent struct {
	component.StartFunc
	component.ShutdownFunc
}

// startLeaky starts a group of one leaky member that sends to sink.
func startLeaky(t *testing.T, l *leaky, sink consumer.Metrics, dropped dropFunc) *runningGroup {
	t.Helper()
	host := &testHost{factories: map[component.Type]receiver.Factory{leakyType: l.factory()}}
	cfg := testConfigFor("leaky")
	cfg.Receivers["leaky"] = nil
	// Its locks live in the bubble.
	g, err := resolveGroup(cfg, host, receivertestSettings(), consumers{metrics: sink}, newProcessLeases())
	require.NoError(t, err)
	rg := g.start(host, func(string, *componentstatus.Event) {}, dropped, nil)
	<-rg.Done()
	require.NoError(t, rg.Err())
	return rg
}

// (a) A member's goroutine sends after its Shutdown returned (the term was
// lost): nothing reaches the pipeline, the items are counted with the
// member's name, and one Warn line names it.
// Invariant S12.
func TestFenceDropsDataSentAfterShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("leaky"))
		l := &leaky{}
		defer l.end()
		a.host.factories[leakyType] = l.factory()
		tel := componenttest.NewTelemetry()
		defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
		a.r.set.TelemetrySettings = tel.NewTelemetrySettings()
		a.r.telemetry = mustTelemetry(t, a.r.set)
		a.start(t)
		waitFor(t, time.Minute, func() bool { return a.logCount(logmsg.GroupStarted) == 1 }, "a does not lead")
		r := l.receiver(0)
		require.NoError(t, r.send(3))
		require.Equal(t, 3, a.metrics.DataPointCount(), "while it leads, data passes")

		a.fail.Store(true) // the term is lost and the group stopped
		waitFor(t, time.Minute, func() bool { return a.logCount(logmsg.GroupStopped) == 1 }, "the group did not stop")
		require.NoError(t, r.send(2), "a drop is no error: the member would only retry or log it")
		require.NoError(t, r.send(4))
		assert.Equal(t, 3, a.metrics.DataPointCount(), "data sent after the member stopped reached the pipeline")

		metadatatest.AssertEqualLeaderGroupDroppedAfterStop(t, tel, []metricdata.DataPoint[int64]{{
			Value: 6,
			Attributes: attribute.NewSet(attribute.String("lease", "ns/lease"),
				attribute.String("member", "leaky"), attribute.String("signal", "metrics")),
		}}, metricdatatest.IgnoreTimestamp())
		lines := a.logs.FilterMessage(logmsg.DataAfterStop).All()
		require.Len(t, lines, 1, "one line per member and term")
		assert.Equal(t, zapcore.WarnLevel, lines[0].Level)
		assert.Equal(t, "leaky", lines[0].ContextMap()["receiver"])
		assert.Equal(t, "metrics", lines[0].ContextMap()["signal"])
		assert.Equal(t, "ns/lease", lines[0].ContextMap()["lease"])
		require.NoError(t, a.r.Shutdown(context.Background()))
	})
}

// (b) Data a member sends during its Shutdown belongs to the term: it passes.
// Invariant S12.
func TestFencePassesDataSentDuringShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &leaky{flush: 5}
		defer l.end()
		sink, d := nopSink(), newDrops()
		rg := startLeaky(t, l, sink, d.record)
		require.NoError(t, rg.stop(context.Background()))
		assert.Equal(t, 5, sink.DataPointCount(), "the flush during Shutdown was dropped")
		assert.NoError(t, l.flushErr)
		items, _ := d.get()
		assert.Empty(t, items)

		require.NoError(t, l.receiver(0).send(1), "after Shutdown returned")
		assert.Equal(t, 5, sink.DataPointCount())
		items, firsts := d.get()
		assert.Equal(t, map[string]int{"leaky metrics": 1}, items)
		assert.Equal(t, []string{"leaky"}, firsts)
	})
}

// (c) A member whose Shutdown never returns: its data passes until the
// stop's deadline, when the fence closes all the same; after it, its data is
// dropped.
// Invariant S12.
func TestFenceClosesAtTheStopDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &leaky{hang: make(chan struct{})}
		defer l.end()
		sink, d := nopSink(), newDrops()
		rg := startLeaky(t, l, sink, d.record)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopped := make(chan error, 1)
		go func() { stopped <- rg.stop(ctx) }()
		synctest.Wait() // Shutdown hangs
		r := l.receiver(0)
		require.NoError(t, r.send(2))
		assert.Equal(t, 2, sink.DataPointCount(), "before the deadline, while Shutdown runs, data passes")

		time.Sleep(5 * time.Second) // fake time: the deadline
		var hung *errNotStopped
		require.ErrorAs(t, <-stopped, &hung)
		require.NoError(t, r.send(3))
		assert.Equal(t, 2, sink.DataPointCount(), "data passed the deadline")
		items, firsts := d.get()
		assert.Equal(t, map[string]int{"leaky metrics": 3}, items)
		assert.Equal(t, []string{"leaky"}, firsts)
	})
}

// A member's first drop is reported once per term: the next term's fences
// report it again.
// Invariant S12.
func TestFenceReportsTheFirstDropOncePerTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &leaky{}
		defer l.end()
		d := newDrops()
		for term := range 2 {
			rg := startLeaky(t, l, nopSink(), d.record)
			require.NoError(t, rg.stop(context.Background()))
			require.NoError(t, l.receiver(term).send(1))
			require.NoError(t, l.receiver(term).send(1))
		}
		items, firsts := d.get()
		assert.Equal(t, map[string]int{"leaky metrics": 4}, items)
		assert.Equal(t, []string{"leaky", "leaky"}, firsts)
	})
}

// Every signal's consumer is fenced, and reports its own items; a nil one
// stays nil.
// Invariant S12.
func TestFenceGatesEverySignal(t *testing.T) {
	metrics, logs, traces, profiles := new(consumertest.MetricsSink), new(consumertest.LogsSink), new(consumertest.TracesSink), new(consumertest.ProfilesSink)
	d := newDrops()
	f := newFences(d.record).add("m")
	cons := f.consumers(consumers{metrics: metrics, logs: logs, traces: traces, profiles: profiles})
	for _, next := range []consumer.Capabilities{cons.metrics.Capabilities(), cons.logs.Capabilities(), cons.traces.Capabilities(), cons.profiles.Capabilities()} {
		assert.Equal(t, consumer.Capabilities{}, next, "the next consumer's")
	}
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	spans.AppendEmpty()
	spans.AppendEmpty()
	pd := pprofile.NewProfiles()
	pd.ResourceProfiles().AppendEmpty().ScopeProfiles().AppendEmpty().Profiles().AppendEmpty()
	consume := func() {
		ctx := context.Background()
		require.NoError(t, cons.metrics.ConsumeMetrics(ctx, gauge(3)))
		require.NoError(t, cons.logs.ConsumeLogs(ctx, ld))
		require.NoError(t, cons.traces.ConsumeTraces(ctx, td))
		require.NoError(t, cons.profiles.ConsumeProfiles(ctx, pd))
	}
	consume()
	assert.Equal(t, []int{3, 1, 2, 1}, []int{metrics.DataPointCount(), logs.LogRecordCount(), traces.SpanCount(), profiles.ProfileCount()})

	comp, err := f.component(nopComponent{}, nil)
	require.NoError(t, err)
	require.NoError(t, comp.Shutdown(context.Background()))
	consume()
	assert.Equal(t, []int{3, 1, 2, 1}, []int{metrics.DataPointCount(), logs.LogRecordCount(), traces.SpanCount(), profiles.ProfileCount()}, "passed after Shutdown returned")
	items, firsts := d.get()
	assert.Equal(t, map[string]int{"m metrics": 3, "m logs": 1, "m traces": 2, "m " + xpipeline.SignalProfiles.String(): 1}, items)
	assert.Equal(t, []string{"m"}, firsts, "one report per member and term, whatever the signal")

	assert.Equal(t, consumers{}, f.consumers(consumers{}))
}

// A fence made after the term's fences were closed is closed; a fence whose
// factory failed closes at once; without a dropFunc data is dropped silently.
// Invariant S12.
func TestFenceClosedAfterCloseAllAndFailedCreate(t *testing.T) {
	fs := newFences(nil)
	sink := nopSink()
	failed := fs.add("failed")
	_, err := failed.component(nil, errors.New("boom"))
	require.Error(t, err)
	require.NoError(t, failed.consumers(consumers{metrics: sink}).metrics.ConsumeMetrics(context.Background(), gauge(1)))
	fs.closeAll()
	late := fs.add("late")
	require.NoError(t, late.consumers(consumers{metrics: sink}).metrics.ConsumeMetrics(context.Background(), gauge(1)))
	assert.Zero(t, sink.DataPointCount())
}

// (d) Consume calls race with the close (go test -race): no call that begins
// after the close returned reaches the next consumer, and every call is
// either passed on or counted as dropped.
// Invariant S12.
func TestFenceConsumeRacesWithClose(t *testing.T) {
	for _, how := range []string{"shutdown", "closeAll", "both"} {
		t.Run(how, func(t *testing.T) {
			var closed atomic.Bool // set once the close has returned
			var calls, forwarded, leaked atomic.Int64
			running := make(chan struct{}) // closed once 100 calls have passed
			next, err := consumer.NewMetrics(func(_ context.Context, md pmetric.Metrics) error {
				if forwarded.Add(1) == 100 {
					close(running)
				}
				if md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Name() == "after" {
					leaked.Add(1)
				}
				return nil
			})
			require.NoError(t, err)
			var dropped atomic.Int64
			fs := newFences(func(_ string, _ pipeline.Signal, items int, _ bool) { dropped.Add(int64(items)) })
			f := fs.add("m")
			comp, err := f.component(nopComponent{}, nil)
			require.NoError(t, err)
			cons := f.consumers(consumers{metrics: next})

			const senders, afterEach = 8, 50
			var wg sync.WaitGroup
			for range senders {
				wg.Go(func() {
					for after := 0; after < afterEach; {
						md := gauge(1)
						if closed.Load() {
							md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).SetName("after")
							after++
						}
						calls.Add(1)
						assert.NoError(t, cons.metrics.ConsumeMetrics(context.Background(), md))
					}
				})
			}
			<-running // the close comes amid the senders' calls
			var cwg sync.WaitGroup
			if how != "closeAll" {
				cwg.Go(func() { assert.NoError(t, comp.Shutdown(context.Background())) })
			}
			if how != "shutdown" {
				cwg.Go(fs.closeAll)
			}
			cwg.Wait()
			closed.Store(true)
			wg.Wait()
			assert.Zero(t, leaked.Load(), "a call that began after the close reached the next consumer")
			assert.GreaterOrEqual(t, dropped.Load(), int64(senders*afterEach))
			assert.Equal(t, calls.Load(), forwarded.Load()+dropped.Load(), "every call passed or was counted")
		})
	}
}
