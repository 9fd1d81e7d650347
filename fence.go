package leaderreceivercreator

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/xconsumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/pipeline/xpipeline"
	"go.uber.org/zap"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// The data path of a term is fenced. A sub-receiver's Shutdown may return
// before its goroutines are gone (k8s_cluster's only cancels their context),
// and such a goroutine could still hand data to this block's pipelines after
// the group stopped, even while another replica leads. So every instance of
// a member gets its next consumers through a fence of its own, which closes
// when that instance's Shutdown returns, and at the latest when the group's
// stop returns, that is by the stop's context's deadline (runningGroup.stop;
// the runner's ends at the term's deadline less the exit budget), whether or
// not the Shutdown has returned. Data the member sends while its Shutdown
// runs still passes: it belongs to the term.
//
// What closed guarantees: no Consume call that begins after the close reaches
// the next consumer. A call that passed the fence before may still be in the
// next consumer: the close does not wait for it, since a next consumer that
// blocks (a full sending queue that blocks) must not hold up the stop.
//
// A Consume call after the close returns nil without calling the next
// consumer: the data is counted (leader_group_dropped_after_stop) and
// dropped. An error would only make the member retry or log it, neither of
// which helps after it stopped. The first drop of a member in a term is
// logged (logmsg.DataAfterStop).

// dropFunc is told of every batch a fence dropped: the member (its key under
// receivers), the signal, the number of items (metric data points, log
// records, spans, profiles) and whether it is the member's first drop in the
// term. It is called on the member's goroutine, outside the group's locks.
type dropFunc func(member string, signal pipeline.Signal, items int, first bool)

// fences are one term's fences, one per instance.
type fences struct {
	dropped dropFunc // nil: drop silently

	mu     sync.Mutex
	all    []*fence
	closed bool            // closeAll was called: fences made later are born closed
	logged map[string]bool // members whose first drop was reported
}

func newFences(dropped dropFunc) *fences {
	return &fences{dropped: dropped, logged: map[string]bool{}}
}

// add makes the fence of a new instance of the member key.
func (fs *fences) add(key string) *fence {
	f := &fence{key: key, set: fs}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f.closed.Store(fs.closed)
	fs.all = append(fs.all, f)
	return f
}

// closeAll closes every fence of the term, those made later included.
func (fs *fences) closeAll() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.closed = true
	for _, f := range fs.all {
		f.close()
	}
}

// fence gates the data path of one instance of a member.
type fence struct {
	key    string
	set    *fences
	closed atomic.Bool
}

// close closes the fence; it does not wait for calls already past it.
func (f *fence) close() { f.closed.Store(true) }

// pass reports whether a Consume call that begins now may go on; if not,
// it counts its items as dropped.
func (f *fence) pass(s pipeline.Signal, items func() int) bool {
	if !f.closed.Load() {
		return true
	}
	if f.set.dropped != nil {
		f.set.mu.Lock()
		first := !f.set.logged[f.key]
		f.set.logged[f.key] = true
		f.set.mu.Unlock()
		f.set.dropped(f.key, s, items(), first)
	}
	return false
}

// consumers are c behind the fence, each one that is not nil.
func (f *fence) consumers(c consumers) consumers {
	var out consumers
	if c.metrics != nil {
		out.metrics = fencedMetrics{f, c.metrics}
	}
	if c.logs != nil {
		out.logs = fencedLogs{f, c.logs}
	}
	if c.traces != nil {
		out.traces = fencedTraces{f, c.traces}
	}
	if c.profiles != nil {
		out.profiles = fencedProfiles{f, c.profiles}
	}
	return out
}

// component takes what a factory returned: the instance, whose Shutdown
// closes the fence when it returns; after an error the fence closes at once.
func (f *fence) component(c component.Component, err error) (component.Component, error) {
	if err != nil {
		f.close()
		return nil, err
	}
	return &fencedComponent{Component: c, fence: f}, nil
}

type fencedComponent struct {
	component.Component
	fence *fence
}

func (c *fencedComponent) Shutdown(ctx context.Context) error {
	defer c.fence.close()
	return c.Component.Shutdown(ctx)
}

type fencedMetrics struct {
	f    *fence
	next consumer.Metrics
}

func (c fencedMetrics) Capabilities() consumer.Capabilities { return c.next.Capabilities() }

func (c fencedMetrics) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	if !c.f.pass(pipeline.SignalMetrics, md.DataPointCount) {
		return nil
	}
	return c.next.ConsumeMetrics(ctx, md)
}

type fencedLogs struct {
	f    *fence
	next consumer.Logs
}

func (c fencedLogs) Capabilities() consumer.Capabilities { return c.next.Capabilities() }

func (c fencedLogs) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if !c.f.pass(pipeline.SignalLogs, ld.LogRecordCount) {
		return nil
	}
	return c.next.ConsumeLogs(ctx, ld)
}

type fencedTraces struct {
	f    *fence
	next consumer.Traces
}

func (c fencedTraces) Capabilities() consumer.Capabilities { return c.next.Capabilities() }

func (c fencedTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	if !c.f.pass(pipeline.SignalTraces, td.SpanCount) {
		return nil
	}
	return c.next.ConsumeTraces(ctx, td)
}

type fencedProfiles struct {
	f    *fence
	next xconsumer.Profiles
}

func (c fencedProfiles) Capabilities() consumer.Capabilities { return c.next.Capabilities() }

func (c fencedProfiles) ConsumeProfiles(ctx context.Context, pd pprofile.Profiles) error {
	if !c.f.pass(xpipeline.SignalProfiles, pd.ProfileCount) {
		return nil
	}
	return c.next.ConsumeProfiles(ctx, pd)
}

// droppedAfterStop is the runner's dropFunc: it counts the items in
// leader_group_dropped_after_stop (unless Shutdown has returned) and logs a
// member's first drop in a term.
func (r *runner) droppedAfterStop(member string, signal pipeline.Signal, items int, first bool) {
	r.telemetry.droppedAfterStop(member, signal, items)
	if first {
		r.logger.Warn(logmsg.DataAfterStop, zap.String("receiver", member), zap.String("signal", signal.String()))
	}
}
