package clientgo

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// What the program writes, the harness reads: every message round-trips,
// and client-go's own klog lines are not events.
func TestLogLinesParse(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(&buf, "clientgo-1", "ns/lease")
	for _, msg := range []string{MsgCampaigning, MsgStartedLeading, MsgRunReturned, MsgExiting} {
		buf.Reset()
		l.Log(msg, map[string]any{"led": true})
		k, line, ok := ParseKind(bytes.TrimSpace(buf.Bytes()))
		require.True(t, ok, msg)
		assert.Equal(t, timeline.Kind(msg), k)
		assert.Equal(t, "clientgo-1", line.String("identity"))
		assert.Equal(t, "ns/lease", line.String("lease"))
		assert.False(t, line.Time.IsZero())
	}
	_, _, ok := ParseKind([]byte(`I1127 09:36:25.135672   27499 leaderelection.go:271] successfully acquired lease ns/lease`))
	assert.False(t, ok)
	_, _, ok = ParseKind([]byte(`{"msg":"listing pods failed","ts":"2026-11-27T09:36:25Z"}`))
	assert.False(t, ok)
}

// A candidate's active interval runs from OnStartedLeading to Run's return,
// or to its process's exit when it was killed; campaigns that never led
// leave none. Together with the collectors' group spans, CheckDisjoint finds
// a candidate active while a group ran.
func TestSpans(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	ev := func(name string, pid int, k timeline.Kind, s float64) timeline.Event {
		return timeline.Event{Replica: name, PID: pid, Kind: k, At: at(s)}
	}
	events := []timeline.Event{
		ev("clientgo-1", 10, timeline.ProcessStarted, 0),
		ev("clientgo-1", 10, Campaigning, 0.1),
		ev("clientgo-2", 20, Campaigning, 0.2),
		ev("clientgo-1", 10, StartedLeading, 1),
		ev("clientgo-1", 10, RunReturned, 3), // SIGTERM: released, Run returned
		ev("clientgo-1", 10, timeline.ProcessExited, 3.1),
		ev("clientgo-2", 20, StartedLeading, 4),
		ev("clientgo-2", 20, timeline.ProcessExited, 6), // SIGKILL
		ev("clientgo-1", 11, StartedLeading, 10),
		ev("clientgo-2", 21, RunReturned, 10.5), // a campaign that never led
	}
	spans := Spans(events)
	require.Len(t, spans, 3)
	assert.Equal(t, timeline.GroupSpan{Replica: "clientgo-1", PID: 10, Start: at(1), End: at(3), EndedBy: RunReturned}, spans[0])
	assert.Equal(t, timeline.GroupSpan{Replica: "clientgo-2", PID: 20, Start: at(4), End: at(6), EndedBy: timeline.ProcessExited}, spans[1])
	assert.Equal(t, timeline.GroupSpan{Replica: "clientgo-1", PID: 11, Start: at(10)}, spans[2], "still open")
	require.NoError(t, timeline.CheckDisjoint(spans))

	ours := timeline.GroupSpan{Replica: "replica-1", PID: 30, Start: at(6), End: at(9.9)} // after the kill, before the next
	require.NoError(t, timeline.CheckDisjoint(append(spans, ours)))
	ours.End = at(10.2) // into the open span
	assert.ErrorContains(t, timeline.CheckDisjoint(append(spans, ours)), "replica-1")
	ours.Start, ours.End = at(2.9), at(3.5) // before clientgo-1's Run returned
	assert.ErrorContains(t, timeline.CheckDisjoint(append(spans, ours)), "clientgo-1")
}
