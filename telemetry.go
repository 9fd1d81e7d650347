package leaderreceivercreator

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/metadata"
)

// telemetry records one block's metrics (metadata.yaml), each with the
// attribute lease, until Shutdown has returned: after that nothing is
// recorded.
type telemetry struct {
	builder *metadata.TelemetryBuilder

	mu     sync.Mutex // guards what follows; held while a metric is recorded
	lease  string     // namespace/name
	attrs  metric.MeasurementOption
	closed bool // Shutdown has returned: no metric after that
}

func newTelemetry(set component.TelemetrySettings) (*telemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	return &telemetry{builder: tb}, nil
}

// setLease names the Lease the metrics are about; Start calls it before it
// campaigns.
func (t *telemetry) setLease(lease string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lease = lease
	t.attrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("lease", lease)))
}

// emit records a metric unless Shutdown has returned.
func (t *telemetry) emit(record func(tb *metadata.TelemetryBuilder)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		record(t.builder)
	}
}

// close ends all recording; a metric being recorded is recorded first.
func (t *telemetry) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
}

// shutdown releases the instruments.
func (t *telemetry) shutdown() { t.builder.Shutdown() }

func (t *telemetry) acquired() {
	t.emit(func(tb *metadata.TelemetryBuilder) { tb.LeaderElectionAcquired.Add(context.Background(), 1, t.attrs) })
}

func (t *telemetry) lost() {
	t.emit(func(tb *metadata.TelemetryBuilder) { tb.LeaderElectionLost.Add(context.Background(), 1, t.attrs) })
}

func (t *telemetry) leader(leading bool) {
	v := int64(0)
	if leading {
		v = 1
	}
	t.emit(func(tb *metadata.TelemetryBuilder) {
		tb.LeaderElectionIsLeader.Record(context.Background(), v, t.attrs)
	})
}

// groupStarted records how long after the Lease was won the group was up.
func (t *telemetry) groupStarted(sinceAcquired time.Duration) {
	t.emit(func(tb *metadata.TelemetryBuilder) {
		tb.LeaderGroupStartDuration.Record(context.Background(), sinceAcquired.Seconds(), t.attrs)
	})
}

func (t *telemetry) startFailed() {
	t.emit(func(tb *metadata.TelemetryBuilder) { tb.LeaderGroupStartFailures.Add(context.Background(), 1, t.attrs) })
}

// memberFailed counts a member's FatalError or PermanentError.
func (t *telemetry) memberFailed(member string) {
	t.emit(func(tb *metadata.TelemetryBuilder) {
		tb.LeaderGroupMemberFailures.Add(context.Background(), 1, metric.WithAttributeSet(attribute.NewSet(
			attribute.String("lease", t.lease), attribute.String("member", member))))
	})
}

// checkpointRefused counts a refused write to lease_checkpoints.
func (t *telemetry) checkpointRefused(member, reason string) {
	t.emit(func(tb *metadata.TelemetryBuilder) {
		tb.LeaderCheckpointRefused.Add(context.Background(), 1, metric.WithAttributeSet(attribute.NewSet(
			attribute.String("lease", t.lease), attribute.String("member", member), attribute.String("reason", reason))))
	})
}

// droppedAfterStop counts the items a fence dropped (fence.go).
func (t *telemetry) droppedAfterStop(member string, signal pipeline.Signal, items int) {
	t.emit(func(tb *metadata.TelemetryBuilder) {
		tb.LeaderGroupDroppedAfterStop.Add(context.Background(), int64(items), metric.WithAttributeSet(attribute.NewSet(
			attribute.String("lease", t.lease), attribute.String("member", member), attribute.String("signal", signal.String()))))
	})
}
