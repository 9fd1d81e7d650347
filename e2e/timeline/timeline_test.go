package timeline

import (
	"context"
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
	ev, ok := EventFromLog("replica-1", 7, time.Now(), l)
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

// Events of several processes race to the Recorder: it keeps them ordered
// by At, calls OnEvent in recording order, and WaitFor sees events recorded
// before and after the call.
func TestRecorder(t *testing.T) {
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	var seen []Kind
	r := NewRecorder(func(ev Event) { seen = append(seen, ev.Kind) })
	r.Record(Event{Replica: "replica-1", Kind: Campaigning, At: at(2)})
	r.Record(Event{Replica: "replica-2", Kind: ProcessStarted, At: at(1)})
	assert.Equal(t, []Kind{Campaigning, ProcessStarted}, seen, "in recording order")
	evs := r.Events()
	require.Len(t, evs, 2)
	assert.Equal(t, ProcessStarted, evs[0].Kind, "ordered by At")

	ev, err := r.WaitFor(t.Context(), func(ev Event) bool { return ev.Kind == Campaigning })
	require.NoError(t, err)
	assert.Equal(t, "replica-1", ev.Replica)
	changed := r.Changed()
	go r.Record(Event{Replica: "replica-2", Kind: GroupStarted, At: at(3)})
	ev, err = r.WaitFor(t.Context(), func(ev Event) bool { return ev.Kind == GroupStarted })
	require.NoError(t, err)
	assert.Equal(t, "replica-2", ev.Replica)
	<-changed

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = r.WaitFor(ctx, func(Event) bool { return false })
	assert.ErrorIs(t, err, context.Canceled)
}
