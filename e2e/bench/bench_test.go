package bench

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

func TestSummarize(t *testing.T) {
	var v []float64
	for i := 20; i >= 1; i-- {
		v = append(v, float64(i))
	}
	s := Summarize(v)
	assert.Equal(t, Summary{N: 20, Min: 1, Median: 10.5, P95: 19, Max: 20}, s)
	assert.Equal(t, Summary{N: 1, Min: 3, Median: 3, P95: 3, Max: 3}, Summarize([]float64{3}))
	assert.Equal(t, Summary{}, Summarize(nil))
	r := RatioOf(Summary{N: 1, Min: 1, Median: 2, P95: 3, Max: 0}, Summary{N: 1, Min: 2, Median: 4, P95: 0, Max: 1})
	assert.InDelta(t, 0.5, *r.Min, 1e-9)
	assert.InDelta(t, 0.5, *r.Median, 1e-9)
	assert.Nil(t, r.P95)
	assert.InDelta(t, 0, *r.Max, 1e-9)
}

func TestComputeOverlap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	o := ComputeOverlap([]ReceiverSpan{
		{Replica: "a", Receiver: "group", Start: at(0), End: at(10)},
		{Replica: "b", Receiver: "group", Start: at(10), End: at(20)}, // touching: no overlap
	}, at(30))
	assert.Zero(t, o.Seconds)
	assert.Zero(t, o.Episodes)
	assert.Equal(t, 1, o.MaxConcurrent)

	o = ComputeOverlap([]ReceiverSpan{
		{Replica: "a", Receiver: "k8s_cluster", Start: at(0)}, // open: ends at 30
		{Replica: "b", Receiver: "k8s_cluster", Start: at(5), End: at(8)},
		{Replica: "b", Receiver: "k8s_events", Start: at(6), End: at(9)},
		{Replica: "c", Receiver: "k8s_events", Start: at(7), End: at(12)},
		{Replica: "c", Receiver: "k8s_cluster", Start: at(20), End: at(22)},
	}, at(30))
	// k8s_cluster: [5,8] and [20,22]; k8s_events: [7,9]; union [5,9] + [20,22].
	assert.InDelta(t, 6, o.Seconds, 1e-9)
	assert.Equal(t, 2, o.Episodes)
	assert.InDelta(t, 4, o.LongestSeconds, 1e-9)
	assert.Equal(t, 2, o.MaxConcurrent)
	assert.InDelta(t, 5, o.ByReceiver["k8s_cluster"], 1e-9)
	assert.InDelta(t, 2, o.ByReceiver["k8s_events"], 1e-9)
}

func logLine(t *testing.T, js string) timeline.LogLine {
	l, ok := timeline.ParseLogLine([]byte(js))
	require.True(t, ok)
	return l
}

func TestTrackerPeer(t *testing.T) {
	tr := NewTracker(Peer)
	// A standby's shutdown lines close nothing.
	tr.OnLog("replica-2", logLine(t, `{"level":"info","msg":"no longer leader, stopping","otelcol.component.id":"k8s_events"}`))
	tr.OnLog("replica-2", logLine(t, `{"level":"info","msg":"Stopping the receiver","otelcol.component.id":"k8s_cluster"}`))
	assert.Empty(t, tr.Spans())

	before := time.Now()
	tr.OnLog("replica-1", logLine(t, `{"level":"info","msg":"Starting k8s leader elector with UUID","UUID":"u-1"}`))
	tr.OnLog("replica-1", logLine(t, `{"level":"info","msg":"Events Receiver started as leader","otelcol.component.id":"k8s_events"}`))
	assert.Empty(t, tr.Leaders(), "half a group is not a group")
	// Same message from another component: ignored.
	tr.OnLog("replica-1", logLine(t, `{"level":"info","msg":"Starting shared informers and wait for initial cache sync.","otelcol.component.id":"k8s_cluster/other"}`))
	assert.Empty(t, tr.Leaders())
	tr.OnLog("replica-1", logLine(t, `{"level":"info","msg":"Starting shared informers and wait for initial cache sync.","otelcol.component.id":"k8s_cluster"}`))
	assert.Equal(t, []string{"replica-1"}, tr.Leaders())
	assert.Equal(t, "u-1", tr.Identity("replica-1"))
	up, err := tr.WaitGroupUp(t.Context(), before, "replica-2")
	require.NoError(t, err)
	assert.Equal(t, "replica-1", up.Replica)

	// Killed: the exit closes both receivers.
	tr.OnEvent(timeline.Event{Replica: "replica-1", Kind: timeline.ProcessExited, At: time.Now()})
	assert.Empty(t, tr.Leaders())
	ivs := tr.Spans()
	require.Len(t, ivs, 2)
	for _, iv := range ivs {
		assert.False(t, iv.End.IsZero())
		assert.Equal(t, 1, iv.Run)
	}
	assert.Empty(t, tr.Identity("replica-1"))
}

func TestTrackerOurs(t *testing.T) {
	tr := NewTracker(Ours)
	t0 := time.Now()
	tr.OnLog("replica-1", logLine(t, `{"level":"info","msg":"Events Receiver started as leader"}`)) // not ours: ignored
	tr.OnEvent(timeline.Event{Replica: "replica-1", Kind: timeline.GroupStarted, At: t0, Identity: "replica-1_x"})
	assert.Equal(t, []string{"replica-1"}, tr.Leaders())
	tr.OnEvent(timeline.Event{Replica: "replica-1", Kind: timeline.GroupStopped, At: t0.Add(time.Second)})
	tr.OnEvent(timeline.Event{Replica: "replica-2", Kind: timeline.GroupStarted, At: t0.Add(2 * time.Second)})
	up, err := tr.WaitGroupUp(t.Context(), t0.Add(time.Second), "replica-1")
	require.NoError(t, err)
	assert.Equal(t, t0.Add(2*time.Second), up.At)
	o := ComputeOverlap(tr.Spans(), t0.Add(10*time.Second))
	assert.Zero(t, o.Seconds)
}

func TestParsePrometheusText(t *testing.T) {
	m := ParsePrometheusText([]byte(`# HELP otelcol_process_runtime_heap_alloc_bytes x
# TYPE otelcol_process_runtime_heap_alloc_bytes gauge
otelcol_process_runtime_heap_alloc_bytes{service_name="otelcol-leader",service_version="v"} 1.2e+07
go_goroutines 42
`))
	assert.InDelta(t, 1.2e7, m[`otelcol_process_runtime_heap_alloc_bytes{service_name="otelcol-leader",service_version="v"}`], 1)
	name, v, ok := GoroutineMetric(m)
	assert.True(t, ok)
	assert.Equal(t, "go_goroutines", name)
	assert.InDelta(t, 42, v, 0)
}

func TestReadProc(t *testing.T) {
	s, err := ReadProc(selfPID())
	require.NoError(t, err)
	assert.Positive(t, s.RSSBytes)
	assert.Positive(t, s.Threads)
}

func selfPID() int { return os.Getpid() }
