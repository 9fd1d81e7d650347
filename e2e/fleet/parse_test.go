package fleet

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLogLineJSON(t *testing.T) {
	l, ok := ParseLogLine([]byte(`{"level":"info","ts":"2026-11-25T09:55:43.346Z","caller":"x.go:1","msg":"leader group started","lease":"ns/l","identity":"replica-1_ab","receivers":["k8s_cluster","k8s_events"],"since_acquired":0.01}`))
	require.True(t, ok)
	assert.Equal(t, "info", l.Level)
	assert.Equal(t, "leader group started", l.Msg)
	assert.Equal(t, time.Date(2026, 11, 25, 9, 55, 43, 346e6, time.UTC), l.Time.UTC())
	ev, ok := eventFromLog("replica-1", 7, time.Now(), l)
	require.True(t, ok)
	assert.Equal(t, GroupStarted, ev.Kind)
	assert.Equal(t, "ns/l", ev.Lease)
	assert.Equal(t, "replica-1_ab", ev.Identity)
	assert.Equal(t, []string{"k8s_cluster", "k8s_events"}, ev.Receivers)
}

func TestParseLogLineConsole(t *testing.T) {
	l, ok := ParseLogLine([]byte("2026-11-25T09:55:43.346Z\tinfo\trunner.go:265\tleader group stopped\t{\"lease\": \"ns/l\", \"reason\": \"shutdown\"}"))
	require.True(t, ok)
	assert.Equal(t, "leader group stopped", l.Msg)
	assert.Equal(t, "shutdown", l.String("reason"))
	_, ok = ParseLogLine([]byte("goroutine 1 [running]:"))
	assert.False(t, ok)
}

func TestParseBatch(t *testing.T) {
	b, ok := parseBatch([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"k8s.pod.phase","gauge":{"dataPoints":[{},{}]}},{"name":"k8s.deployment.desired","sum":{"dataPoints":[{}]}}]}]}]}`), time.Now())
	require.True(t, ok)
	assert.Equal(t, "metrics", b.Signal)
	assert.Equal(t, 2, b.Metrics)
	assert.Equal(t, 3, b.DataPoints)
	assert.Equal(t, []string{"k8s.pod.phase", "k8s.deployment.desired"}, b.MetricNames)

	b, ok = parseBatch([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"k8s.event.uid","value":{"stringValue":"u1"}}]},{}]}]}]}`), time.Now())
	require.True(t, ok)
	assert.Equal(t, "logs", b.Signal)
	assert.Equal(t, 2, b.LogRecords)
	assert.Equal(t, []string{"u1"}, b.EventUIDs)
}

func TestTermsAndSingleLeader(t *testing.T) {
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	events := []Event{
		{Replica: "replica-1", PID: 1, Kind: GroupStarted, At: at(1)},
		{Replica: "replica-1", PID: 1, Kind: GroupStopped, At: at(5), Reason: "shutdown"},
		{Replica: "replica-2", PID: 2, Kind: GroupStarted, At: at(6)},
		{Replica: "replica-2", PID: 2, Kind: ProcessExited, At: at(9)}, // killed: no stop line
		{Replica: "replica-3", PID: 3, Kind: GroupStarted, At: at(20)},
	}
	spans := GroupSpans(events)
	require.Len(t, spans, 3)
	assert.Equal(t, GroupStopped, spans[0].EndedBy)
	assert.Equal(t, ProcessExited, spans[1].EndedBy)
	assert.True(t, spans[2].End.IsZero())
	assert.NoError(t, CheckSingleLeader(events))

	overlapping := slices.Concat(events, []Event{{Replica: "replica-1", PID: 4, Kind: GroupStarted, At: at(8)}})
	assert.ErrorContains(t, CheckSingleLeader(overlapping), "replica-2 (pid 2)")
}
