package audit

import (
	"fmt"
	"sort"
	"time"
)

// This file is the one vocabulary of the overlap check from outside the
// collectors, which the scenarios (the mixed fleet's among them), compat
// and the bench import: what an Overlap is, its OverlapKind, and TailBound.
//
// From outside, replica A hands over to replica B at the instant B's
// activity begins (B's first request other than the Lease's): that is where
// A's time as the active replica ends. Every instant at which two replicas
// were active at once is, seen from the one whose interval of activity
// (Activity) began first (A), one of:
//
//   - Begun: A began a request after B's activity had begun (while B was
//     still active). A replica that begins work after the other took over
//     is running alongside it: always an overlap.
//   - Tail: a request A began before B's activity began and that ended
//     after: a closing tail. It counts as an overlap only when it ended more
//     than TailBound after B's activity began (Overlap.Counts).
//   - Export: A exported a batch whose whole export window lies within B's
//     activity: A's group produced data after B took over (only the
//     harness's read times are known, hence the window; see Actor).

// OverlapKind is the category of an Overlap.
type OverlapKind string

// The categories of overlap, from outside (see above).
const (
	Begun  OverlapKind = "begun"
	Tail   OverlapKind = "tail"
	Export OverlapKind = "export"
)

// TailBound is how long a request that replica A began before replica B's
// activity began may stay open after it before it counts as an overlap.
//
// The audit log records a request's end (ResponseComplete) when the API
// server's handler returns. For a watch that is when the API server
// notices that the client is gone: the sub-receiver's informer goroutine
// closes the response (k8s_cluster's Shutdown returns before its informers'
// goroutines have, so this may come after the group stopped and the Lease
// was released), the connection's reader sees the stream reset or the
// socket closed and cancels the request's context, and the watch loop
// returns: a few goroutine wake-ups on each side, normally a millisecond or
// two, up to ~100 ms on a loaded 2-core machine (a gate run saw a watch
// end 9 ms after the release, 4 ms after the next leader's first request).
// 250 ms is that with margin, and still a quarter of the scenarios' time to
// stop a group (lease_duration − renew_deadline = 1 s): a sub-receiver
// that really keeps running after its group stopped holds its watches for
// seconds, or begins new requests (Begun, not bounded).
const TailBound = 250 * time.Millisecond

// Actor is what one process on the Lease (a replica of the collector, or a
// client-go candidate) was seen doing from outside.
type Actor struct {
	Name string
	// User is the API server's name for the process's ServiceAccount
	// (cluster.ServiceAccountUser): the audit log's requests of this user
	// other than the Lease's are its Requests.
	User string
	// Requests are its group's requests at the API server, each from
	// received to complete (RequestIntervals); Activity is their union.
	Requests []Interval
	// Exports are the times at which the harness read the batches it
	// exported (fleet.Batch.At). A batch was produced at some instant
	// of [At - slack, At] (file exporter flush interval plus polling):
	// its export window.
	Exports []time.Time
}

// Activity is the union of a.Requests.
func (a Actor) Activity() []Interval { return Union(a.Requests) }

// ExportWindow is the span in which a batch read at `at` was produced.
func ExportWindow(at time.Time, slack time.Duration) Interval {
	return Interval{at.Add(-slack), at}
}

// Overlap is a time at which two replicas were active at once, from
// outside: A's request (or export window) while B was active.
type Overlap struct {
	Kind OverlapKind
	A, B string
	// AInterval is A's request, or the export window of one of A's
	// batches (Export).
	AInterval Interval
	// BInterval is B's activity: the interval of B.Activity that A's
	// request or window lies in (Begun, Export), or, for a Tail, from the
	// start of the first interval of B's activity that began during A's
	// request to the end of the last one.
	BInterval Interval
	// Span is the time both were active: from A's request's start
	// (Begun) or B's start (Tail) to the end of A's request or of B's
	// activity (BInterval, gaps included), whichever came first; the
	// export window (Export: A's group was active at some instant of it,
	// how long is unknown).
	Span Interval
}

// TailLength is how long A's request stayed open after B's activity began
// (Tail only).
func (o Overlap) TailLength() time.Duration { return o.AInterval.End.Sub(o.BInterval.Start) }

// Counts reports whether o is an overlap that fails the check: a Begun or
// an Export always, a Tail longer than TailBound.
func (o Overlap) Counts() bool { return o.Kind != Tail || o.TailLength() > TailBound }

func (o Overlap) String() string {
	switch o.Kind {
	case Begun:
		return fmt.Sprintf("request begun during another replica's activity: %s began a request %s after %s's activity %s had begun",
			o.A, fmtInterval(o.AInterval), o.B, fmtInterval(o.BInterval))
	case Tail:
		bound := "within"
		if o.Counts() {
			bound = "longer than"
		}
		return fmt.Sprintf("closing tail %s %s: %s's request %s ended %s after %s's activity %s began",
			bound, TailBound, o.A, fmtInterval(o.AInterval), o.TailLength(), o.B, fmtInterval(o.BInterval))
	default:
		return fmt.Sprintf("data exported during another replica's activity: %s exported a batch produced in %s, entirely within %s's activity %s",
			o.A, fmtInterval(o.AInterval), o.B, fmtInterval(o.BInterval))
	}
}

// Describe names counts of overlaps that count, by kind, and of closing
// tails within TailBound, in the words of Overlap.String: how the scenarios'
// and compat's check and the bench report them.
func Describe(byKind map[OverlapKind]int, tailsWithin int) string {
	return fmt.Sprintf("%d requests begun during another replica's activity, %d closing tails longer than %s, %d batches exported during another replica's activity; %d closing tails within %[3]s",
		byKind[Begun], byKind[Tail], TailBound, byKind[Export], tailsWithin)
}

func fmtInterval(iv Interval) string {
	return fmt.Sprintf("[%s, %s]", iv.Start.Format("15:04:05.000000"), iv.End.Format("15:04:05.000000"))
}

// Overlaps finds every time two replicas were active at once, closing
// tails within TailBound included (Counts tells them apart):
//
//   - requests against activity: for each pair of intervals x of A's
//     activity and y of B's that intersect with x.Start ≤ y.Start (B's
//     began while A was active), each request of A within x that began
//     at or after y.Start and before y ended (Begun), and each that began
//     before y.Start and ended after it (Tail, one per request and B).
//     Intervals that only touch do not overlap. Seen from B, whose
//     activity began later, its own requests in y are none of these.
//   - exports against activity: a batch of A whose export window (slack
//     before its read time) lies entirely within one interval of B's
//     activity (Export). A window that only partly overlaps B's activity
//     proves nothing (A may have produced the batch before B started, or
//     after it stopped), so it is not counted: a handover faster than
//     slack is no overlap. Batches are not compared with each other's
//     windows, for the same reason.
//
// The result is ordered by the start of Span.
func Overlaps(rs []Actor, slack time.Duration) []Overlap {
	act := make([][]Interval, len(rs))
	for i, r := range rs {
		act[i] = r.Activity()
	}
	var out []Overlap
	for i, a := range rs {
		for j, b := range rs {
			if i == j {
				continue
			}
			for _, r := range a.Requests {
				out = append(out, requestOverlaps(a.Name, r, containing(act[i], r), b.Name, act[j])...)
			}
			for _, at := range a.Exports {
				w := ExportWindow(at, slack)
				for _, y := range act[j] {
					if !w.Start.Before(y.Start) && !w.End.After(y.End) {
						out = append(out, Overlap{Kind: Export, A: a.Name, B: b.Name, AInterval: w, BInterval: y, Span: w})
					}
				}
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Span.Start.Before(out[j].Span.Start) })
	return out
}

// requestOverlaps are the overlaps of A's request r, within x of A's
// activity, with B's activity.
func requestOverlaps(a string, r, x Interval, b string, bAct []Interval) []Overlap {
	var out []Overlap
	var tail *Overlap
	// bAct is a Union: sorted by Start, and by End. Skip the intervals
	// that ended before r began, stop after the first that began after r
	// ended.
	first := sort.Search(len(bAct), func(k int) bool { return bAct[k].End.After(r.Start) })
	for _, y := range bAct[first:] {
		if y.Start.After(r.End) {
			break
		}
		switch {
		case y.Start.Before(x.Start):
			// B was active first: seen from B.
		case !r.Start.Before(y.Start) && r.Start.Before(y.End):
			out = append(out, Overlap{Kind: Begun, A: a, B: b, AInterval: r, BInterval: y, Span: Interval{r.Start, minTime(r.End, y.End)}})
		case r.Start.Before(y.Start) && y.Start.Before(r.End):
			if tail == nil {
				tail = &Overlap{Kind: Tail, A: a, B: b, AInterval: r, BInterval: y}
			}
			tail.BInterval.End = y.End
			tail.Span = Interval{tail.BInterval.Start, minTime(r.End, y.End)}
		}
	}
	if tail != nil {
		out = append(out, *tail)
	}
	return out
}

// containing is the interval of ivs (the Union of requests among which is
// r) that holds r.
func containing(ivs []Interval, r Interval) Interval {
	k := sort.Search(len(ivs), func(k int) bool { return !ivs[k].End.Before(r.End) })
	return ivs[k]
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// APIOverlap is the total time during which the activity of two or more
// replicas overlapped, counting only the request overlaps that Count (the
// union of their Spans, so that time is not counted twice).
func APIOverlap(os []Overlap) time.Duration {
	var spans []Interval
	for _, o := range os {
		if o.Kind != Export && o.Counts() {
			spans = append(spans, o.Span)
		}
	}
	var total time.Duration
	for _, s := range Union(spans) {
		total += s.Duration()
	}
	return total
}

// Counted are the overlaps of os that Count: the check from outside fails
// if there is any.
func Counted(os []Overlap) []Overlap {
	var out []Overlap
	for _, o := range os {
		if o.Counts() {
			out = append(out, o)
		}
	}
	return out
}
