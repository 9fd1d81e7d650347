package scale

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

var t0 = time.Unix(1000, 0)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func ev(replica string, pid int, kind timeline.Kind, lease string, s float64) timeline.Event {
	return timeline.Event{Replica: replica, PID: pid, Kind: kind, Lease: lease, At: at(s)}
}

const (
	la = "ns/scale-b01"
	lb = "ns/scale-b02"
)

// A handover of two blocks: replica-1 (pid 1) runs both, is signalled at
// 10s, stops and releases them one after the other; replica-2 takes b01,
// replica-3 b02.
func handoverEvents() []timeline.Event {
	return []timeline.Event{
		ev("replica-1", 1, timeline.GroupStarted, la, 1),
		ev("replica-1", 1, timeline.GroupStarted, lb, 1.1),
		ev("replica-1", 1, timeline.GroupStopped, la, 10.01),
		ev("replica-1", 1, timeline.Released, la, 10.02),
		ev("replica-2", 2, timeline.GroupStarted, la, 10.03),
		ev("replica-1", 1, timeline.GroupStopped, lb, 10.04),
		ev("replica-1", 1, timeline.Released, lb, 10.05),
		ev("replica-3", 3, timeline.GroupStarted, lb, 10.07),
		ev("replica-1", 1, timeline.ProcessExited, "", 10.08),
	}
}

func TestMeasureHandover(t *testing.T) {
	h := MeasureHandover(handoverEvents(), []string{la, lb}, 1, at(10))
	assert.Empty(t, h.Missing)
	assert.InDelta(t, 0.07, h.AllStarted.Seconds(), 1e-6)
	assert.InDelta(t, 0.03, h.FirstStarted.Seconds(), 1e-6)
	assert.InDelta(t, 0.04, h.LastStopped.Seconds(), 1e-6)
	assert.InDelta(t, 0.05, h.LastReleased.Seconds(), 1e-6)
	assert.InDelta(t, 0.08, h.Exited.Seconds(), 1e-6)
	require.Len(t, h.Gaps, 2)
	assert.InDelta(t, 0.01, h.Gaps[0].Seconds(), 1e-6)
	assert.InDelta(t, 0.02, h.Gaps[1].Seconds(), 1e-6)
	assert.Equal(t, map[string]int{"replica-2": 1, "replica-3": 1}, h.Takers)

	// Before replica-3 took b02, b02 is missing.
	h = MeasureHandover(handoverEvents()[:7], []string{la, lb}, 1, at(10))
	assert.Equal(t, []string{lb}, h.Missing)
}

// Spans are per Lease and process: one process runs many blocks at once
// without an overlap; two processes running one block at once overlap.
func TestBlockSpansAndLogOverlaps(t *testing.T) {
	spans := BlockSpans(handoverEvents())
	require.Len(t, spans, 4)
	assert.Equal(t, BlockSpan{Lease: la, Replica: "replica-1", PID: 1, Start: at(1), End: at(10.01)}, spans[0])
	assert.Equal(t, at(10.04), spans[1].End)
	assert.True(t, spans[2].End.IsZero())
	assert.Empty(t, LogOverlaps(spans))

	evs := append(handoverEvents(), ev("replica-3", 3, timeline.GroupStarted, la, 11))
	errs := LogOverlaps(BlockSpans(evs))
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), la)

	// The collector's own timestamps win over when the harness read the
	// lines: replica-1's stop read after replica-2's start is no overlap
	// when replica-1 logged it before.
	late := []timeline.Event{
		ev("replica-1", 1, timeline.GroupStarted, la, 1),
		ev("replica-2", 2, timeline.GroupStarted, la, 10.03),
		ev("replica-1", 1, timeline.GroupStopped, la, 10.05),
	}
	late[1].Line.Time, late[2].Line.Time = at(10.02), at(10.01)
	assert.Empty(t, LogOverlaps(BlockSpans(late)))
	late[2].Line.Time = at(10.02)
	assert.Empty(t, LogOverlaps(BlockSpans(late)), "the same millisecond: no overlap")
	late[2].Line.Time = at(10.04)
	assert.Len(t, LogOverlaps(BlockSpans(late)), 1)

	// A process exit closes every span of that process.
	evs = []timeline.Event{ev("replica-1", 1, timeline.GroupStarted, la, 1), ev("replica-1", 1, timeline.GroupStarted, lb, 1),
		ev("replica-1", 1, timeline.ProcessExited, "", 5)}
	for _, s := range BlockSpans(evs) {
		assert.Equal(t, at(5), s.End)
	}
}

func TestBlockOf(t *testing.T) {
	assert.Equal(t, "b07", BlockOf("/api/v1/namespaces/x/pods?labelSelector=lrc-block%3Db07&limit=1"))
	assert.Equal(t, "b07", BlockOf("/api/v1/namespaces/x/pods?labelSelector=a%3Db,lrc-block%3Db07"))
	assert.Empty(t, BlockOf("/api/v1/namespaces/x/pods?labelSelector=app%3Db07"))
	assert.Empty(t, BlockOf("/apis/coordination.k8s.io/v1/namespaces/x/leases/scale-b07"))
	// The generated configuration marks each block's check so.
	assert.Contains(t, Blocks(2, false), "labelSelector=lrc-block%3Db02&limit=1")
}

const (
	u1 = "system:serviceaccount:ns:replica-1"
	u2 = "system:serviceaccount:ns:replica-2"
)

func check(user, block string, from, to float64) audit.Request {
	return audit.Request{User: user, Verb: "list", Resource: "pods",
		URI: "/api/v1/namespaces/ns/pods?labelSelector=lrc-block%3D" + block + "&limit=1", Received: at(from), Ended: at(to)}
}

// From outside, each block is its own comparison: replica-1's checks of
// b01 and replica-2's of b02 at the same time are no overlap; replica-2
// checking b01 while replica-1 does is one.
func TestMeasureOutside(t *testing.T) {
	users := map[string]string{"replica-1": u1, "replica-2": u2}
	reqs := []audit.Request{
		check(u1, "b01", 2, 2.01), check(u1, "b01", 4, 4.01), check(u1, "b02", 2, 2.01),
		check(u2, "b02", 4, 4.01), // replica-1's b02 stopped at 3
		check(u2, "b01", 6, 6.01),
		{User: u1, Verb: "update", Resource: "leases", APIGroup: "coordination.k8s.io", URI: "/apis/coordination.k8s.io/v1/namespaces/ns/leases/scale-b01", Received: at(5), Ended: at(5.01)},
	}
	spans := []BlockSpan{
		{Lease: la, Replica: "replica-1", PID: 1, Start: at(1), End: at(5)},
		{Lease: lb, Replica: "replica-1", PID: 1, Start: at(1), End: at(3)},
		{Lease: lb, Replica: "replica-2", PID: 2, Start: at(3.5), End: at(9)},
		{Lease: la, Replica: "replica-2", PID: 2, Start: at(5.5), End: at(9)},
	}
	o := MeasureOutside(reqs, users, spans, 3*time.Second, nil, at(20))
	assert.Equal(t, 2, o.Blocks)
	assert.Equal(t, 5, o.Requests)
	assert.Zero(t, o.Counted())
	assert.Equal(t, "b01", o.ClosestBlock)
	assert.InDelta(t, 1.99, o.Closest.Seconds(), 1e-6)
	assert.Empty(t, o.Untraced)

	reqs = append(reqs, check(u2, "b01", 3.9, 4.5)) // replica-1 checked b01 while replica-2 did
	o = MeasureOutside(reqs, users, spans, 3*time.Second, nil, at(20))
	assert.Equal(t, 1, o.Counted())
	assert.Contains(t, o.Overlaps, "b01")

	// A span long enough without a check of its block is untraced.
	spans = append(spans, BlockSpan{Lease: la, Replica: "replica-1", PID: 5, Start: at(12), End: at(16)})
	o = MeasureOutside(reqs[:6], users, spans, 3*time.Second, nil, at(20))
	require.Len(t, o.Untraced, 1)
	assert.True(t, strings.HasPrefix(o.Untraced[0], la+" replica-1 "))
}

func TestCountRates(t *testing.T) {
	users := map[string]string{"replica-1": u1, "replica-2": u2}
	lease := func(user, verb string, s float64) audit.Request {
		return audit.Request{User: user, Verb: verb, Resource: "leases", APIGroup: "coordination.k8s.io", Received: at(s), Ended: at(s + 0.01)}
	}
	reqs := []audit.Request{
		lease(u1, "update", 1), lease(u1, "update", 3), lease(u2, "get", 5), lease(u2, "watch", 0.5),
		check(u1, "b01", 2, 2.1), check(u1, "b01", 12, 12.1), // the second after the window
		lease("system:serviceaccount:other:x", "update", 2), // not a replica
	}
	r := CountRates(reqs, users, audit.Interval{Start: at(0), End: at(10)})
	assert.InDelta(t, 0.2, r.LeaseWrites, 1e-9)
	assert.InDelta(t, 0.1, r.LeaseReads, 1e-9)
	assert.InDelta(t, 0.1, r.LeaseWatches, 1e-9)
	assert.InDelta(t, 0.1, r.Group, 1e-9)
	assert.InDelta(t, 0.2, r.ByReplica["replica-1"], 1e-9)
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	assert.Equal(t, 3.0, Percentile(xs, 50))
	assert.Equal(t, 5.0, Percentile(xs, 95))
	assert.Equal(t, 1.0, Percentile(xs, 1))
	assert.Zero(t, Percentile(nil, 50))
}
