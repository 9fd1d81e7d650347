package harness

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

const (
	ua = "system:serviceaccount:ns:replica-1"
	ub = "system:serviceaccount:ns:replica-2"
)

func list(user string, from, to float64) audit.Request {
	return audit.Request{User: user, Verb: "list", Resource: "pods", Received: at(from), Ended: at(to)}
}

// handover: replica-1's group from 1s to 10s, replica-2's from 10.5s to
// 20s; each one's requests within its span, replica-2's first a little
// before its "leader group started" line.
func handover() ([]timeline.GroupSpan, []audit.Request, []audit.Actor) {
	spans := []timeline.GroupSpan{
		{Replica: "replica-1", PID: 1, Start: at(1), End: at(10)},
		{Replica: "replica-2", PID: 2, Start: at(10.5), End: at(20)},
	}
	reqs := []audit.Request{
		list(ua, 1, 1.1),
		{User: ua, Verb: "watch", Resource: "events", Received: at(1.1), Ended: at(9.9)},
		{User: ua, Verb: "update", Resource: "leases", APIGroup: "coordination.k8s.io", Received: at(12), Ended: at(12.1)}, // the Lease: not activity
		list(ub, 10.3, 10.4),
		list(ub, 15, 15.1),
	}
	actors := []audit.Actor{{Name: "replica-1", User: ua}, {Name: "replica-2", User: ub}}
	return spans, reqs, actors
}

// A clean handover passes every check; the measurement reports each
// process and the closest approach.
func TestVerdictOfAHandover(t *testing.T) {
	spans, reqs, actors := handover()
	out := NewOutside(reqs, actors, nil, at(30))
	require.Len(t, out.Actors, 2)
	assert.Equal(t, []audit.Interval{{Start: at(1), End: at(1.1)}, {Start: at(1.1), End: at(9.9)}}, out.Actors[0].Requests)
	assert.Empty(t, out.Overlaps)
	o := Options{TraceLead: time.Second, StrayMargin: time.Second}
	assert.Empty(t, o.verdict(spans, out, t0))

	report := strings.Join(out.Report(t0), "\n")
	assert.Contains(t, report, "replica-1 ("+ua+"): 2 API requests (1 on the Lease), 0 batches exported; activity in 1 intervals")
	assert.Contains(t, report, "closest approach of two processes' API activity 400 ms (replica-1's activity, then replica-2's)")

	// With ExpectOverlap, the same run fails twice: neither the logs nor
	// the audit log show an overlap.
	o.ExpectOverlap = true
	ps := o.verdict(spans, out, t0)
	require.Len(t, ps, 2)
	assert.Contains(t, ps[0], "the logs do not show two groups")
	assert.Contains(t, ps[1], "the audit log does not show two groups active at once")
}

// Two groups at once fail the check from the logs and from outside; with
// ExpectOverlap they pass it.
func TestVerdictOfAnOverlap(t *testing.T) {
	spans, reqs, actors := handover()
	spans[0].End = at(11) // replica-1's group still ran when replica-2's started,
	reqs = append(reqs,
		list(ua, 9.8, 10.36),  // with a closing tail within audit.TailBound,
		list(ua, 10.35, 10.5)) // and began a request after replica-2's activity had
	out := NewOutside(reqs, actors, nil, at(30))
	require.Len(t, out.Overlaps, 2)
	assert.Equal(t, audit.Tail, out.Overlaps[0].Kind)
	require.Len(t, out.Counted(), 1)
	assert.Equal(t, audit.Begun, out.Counted()[0].Kind)
	ps := Options{}.verdict(spans, out, t0)
	require.Len(t, ps, 2)
	assert.Contains(t, ps[0], "overlap: two groups (or client-go candidates) active at the same time")
	assert.Contains(t, ps[1], "overlap from outside (audit log, exports): two replicas active at once:\nrequest begun during another replica's activity: replica-1")
	assert.Contains(t, ps[1], "(relative: [10.350s, 10.500s] and [10.300s, 10.400s])")
	assert.Empty(t, Options{ExpectOverlap: true}.verdict(spans, out, t0))
}

// A span without a trace in the audit log fails (an empty audit log
// cannot pass for no overlap), unless TraceLead is zero; a request before
// the span's start counts within TraceLead.
func TestVerdictOfASpanWithoutTrace(t *testing.T) {
	spans, reqs, actors := handover()
	out := NewOutside(reqs[:3], actors, nil, at(30)) // none of replica-2's requests
	ps := Options{TraceLead: 10 * time.Second}.verdict(spans, out, t0)
	require.Len(t, ps, 1)
	assert.Equal(t, "the audit log does not show replica-2's group at work during its group span from 10.500s", ps[0])
	assert.Empty(t, Options{}.verdict(spans, out, t0))

	out = NewOutside(reqs, actors, nil, at(30))
	spans[1].Start = at(15.2) // replica-2's requests now all come before its span but one
	assert.Empty(t, Options{TraceLead: time.Second}.verdict(spans, out, t0))
	spans[1].Start = at(16.2)
	assert.Len(t, Options{TraceLead: time.Second}.verdict(spans, out, t0), 1)
	spans[1].End = time.Time{} // still open: until the measurement's end
	spans[1].Start = at(14)
	assert.Empty(t, Options{TraceLead: time.Second}.verdict(spans, out, t0))
}

// Activity outside every span of its process fails with StrayMargin, and
// a request still open at the end of the measurement is activity until
// then (or until kube-apiserver exited).
func TestVerdictOfStrayActivity(t *testing.T) {
	spans, reqs, actors := handover()
	reqs = append(reqs, audit.Request{User: ua, Verb: "watch", Resource: "pods", Received: at(10.2)}) // never ended
	out := NewOutside(reqs, actors, []time.Time{at(25)}, at(30))
	assert.Equal(t, audit.Interval{Start: at(10.2), End: at(25)}, out.Actors[0].Requests[2], "open until kube-apiserver exited")
	strays := out.Strays(spans, time.Second)
	require.Len(t, strays, 1)
	assert.Equal(t, Stray{Actor: "replica-1", Interval: audit.Interval{Start: at(10.2), End: at(25)}}, strays[0])
	ps := Options{StrayMargin: time.Second}.verdict(spans, out, t0)
	assert.Contains(t, ps, "outside: replica-1's request activity [10.200s, 25.000s] lies in none of its group spans")
	assert.Contains(t, strings.Join(out.Report(t0), "\n"), "outside: 1 requests still open after every process exited")
}
