package harness

import (
	"fmt"
	"strings"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/clientgo"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// Outside is what the API server's audit log showed of the processes on a
// Lease, once every one of them had stopped: each one's activity (its
// requests other than the Lease's, from received to complete; a watch for
// as long as it stayed open) and exports, and where two were active at
// once, by package audit's kinds of overlap.
type Outside struct {
	Requests []audit.Request // every request of the Lease's ServiceAccounts
	Actors   []audit.Actor   // each process, with its Requests
	// Overlaps are audit.Overlaps(Actors, fleet.ExportSlack): closing
	// tails within audit.TailBound included (Counted leaves them out).
	Overlaps []audit.Overlap
	// End is when it was measured: a request still open was active until
	// then, or until kube-apiserver exited.
	End time.Time
}

// Actors are the processes on a Lease in namespace ns, for MeasureOutside:
// the replicas of f, each its own ServiceAccount named like it
// (fleet.ReplicaName), with the read times of the batches it exported, and
// the client-go candidates of cg (nil: none), each its own ServiceAccount
// named like it (clientgo.Name).
func Actors(ns string, f *fleet.Fleet, cg *clientgo.Set) []audit.Actor {
	var as []audit.Actor
	for _, r := range f.Replicas() {
		a := audit.Actor{Name: r.Name, User: cluster.ServiceAccountUser(ns, r.Name)}
		for _, b := range r.Batches() {
			a.Exports = append(a.Exports, b.At)
		}
		as = append(as, a)
	}
	if cg != nil {
		for _, c := range cg.Candidates() {
			as = append(as, audit.Actor{Name: c.Name, User: cluster.ServiceAccountUser(ns, c.Name)})
		}
	}
	return as
}

// MeasureOutside waits (10s at most) until log has the end of every request
// (every process has exited, so its connections are closed), then measures
// (NewOutside) until now.
func MeasureOutside(log *audit.Log, actors []audit.Actor, serverExits []time.Time) (Outside, error) {
	reqs, err := log.Settle(10 * time.Second)
	return NewOutside(reqs, actors, serverExits, time.Now()), err
}

// NewOutside fills in each actor's Requests from reqs
// (audit.RequestIntervals: a request with no end is active until
// kube-apiserver exited, one of serverExits, or until end) and finds the
// overlaps.
func NewOutside(reqs []audit.Request, actors []audit.Actor, serverExits []time.Time, end time.Time) Outside {
	o := Outside{Requests: reqs, End: end}
	for _, a := range actors {
		a.Requests = audit.RequestIntervals(reqs, a.User, serverExits, end)
		o.Actors = append(o.Actors, a)
	}
	o.Overlaps = audit.Overlaps(o.Actors, fleet.ExportSlack)
	return o
}

// Counted are the overlaps that fail the check (audit.Counted).
func (o Outside) Counted() []audit.Overlap { return audit.Counted(o.Overlaps) }

// APIOverlap is how long two processes' API activity overlapped
// (audit.APIOverlap).
func (o Outside) APIOverlap() time.Duration { return audit.APIOverlap(o.Overlaps) }

// Untraced are the spans that left no trace in the audit log: no interval
// of the activity of the process they belong to intersects [Start − lead,
// End] (a span still open: until End). The group's first requests come
// before the "leader group started" line, by as long as its Start took.
// It is how an empty audit log cannot pass for no overlap.
func (o Outside) Untraced(spans []timeline.GroupSpan, lead time.Duration) []timeline.GroupSpan {
	var out []timeline.GroupSpan
	for _, a := range o.Actors {
		act := a.Activity()
		for _, gs := range spans {
			if gs.Replica != a.Name {
				continue
			}
			end := gs.End
			if end.IsZero() {
				end = o.End
			}
			seen := false
			for _, iv := range act {
				if !iv.End.Before(gs.Start.Add(-lead)) && !iv.Start.After(end) {
					seen = true
				}
			}
			if !seen {
				out = append(out, gs)
			}
		}
	}
	return out
}

// Stray is an interval of a process's activity outside its spans.
type Stray struct {
	Actor    string
	Interval audit.Interval
}

// Strays are the intervals of the processes' activity that lie in none of
// their own ended spans widened by margin on both sides: what ran while the
// logs say no group did.
func (o Outside) Strays(spans []timeline.GroupSpan, margin time.Duration) []Stray {
	var out []Stray
	for _, a := range o.Actors {
		for _, iv := range a.Activity() {
			in := false
			for _, gs := range spans {
				if gs.Replica == a.Name && !gs.End.IsZero() &&
					!iv.Start.Before(gs.Start.Add(-margin)) && !iv.End.After(gs.End.Add(margin)) {
					in = true
				}
			}
			if !in {
				out = append(out, Stray{a.Name, iv})
			}
		}
	}
	return out
}

// Report describes the measurement in lines, times in seconds since t0:
// each process's requests, activity and exports, then the overlaps by kind
// (the closing tails within audit.TailBound too) and the closest approach
// of two processes' activity.
func (o Outside) Report(t0 time.Time) []string {
	var lines []string
	if n := countOpen(o.Requests); n > 0 {
		lines = append(lines, fmt.Sprintf("outside: %d requests still open after every process exited: they count as active until now", n))
	}
	for _, a := range o.Actors {
		act := a.Activity()
		lines = append(lines, fmt.Sprintf("outside: %s (%s): %d API requests (%d on the Lease), %d batches exported; activity in %d intervals, shown with gaps under %s closed: %s; exports %s",
			a.Name, a.User, countUser(o.Requests, a.User, false), countUser(o.Requests, a.User, true), len(a.Exports),
			len(act), displayGap, RelIntervals(t0, coalesce(act, displayGap)...), relTimes(t0, a.Exports)))
	}
	kinds := map[audit.OverlapKind]int{}
	var tails int
	var longestTail time.Duration
	for _, ov := range o.Overlaps {
		if ov.Counts() {
			kinds[ov.Kind]++
		} else {
			tails++
			longestTail = max(longestTail, ov.TailLength())
		}
	}
	closest := "none (fewer than two processes active)"
	if gap, a, b, ok := closestApproach(o.Actors); ok {
		closest = fmt.Sprintf("%d ms (%s's activity, then %s's)", gap.Milliseconds(), a, b)
	}
	lines = append(lines, fmt.Sprintf("outside: overlap of group activity %d ms (API); overlaps: %s (longest %s); closest approach of two processes' API activity %s",
		o.APIOverlap().Milliseconds(), audit.Describe(kinds, tails), longestTail, closest))
	return lines
}

// displayGap: activity intervals closer than this are shown as one (the
// burst of lists when a group starts is dozens of short requests).
const displayGap = 100 * time.Millisecond

// coalesce merges intervals (sorted, disjoint) less than gap apart.
func coalesce(ivs []audit.Interval, gap time.Duration) []audit.Interval {
	var out []audit.Interval
	for _, iv := range ivs {
		if k := len(out) - 1; k >= 0 && iv.Start.Sub(out[k].End) < gap {
			out[k].End = iv.End
			continue
		}
		out = append(out, iv)
	}
	return out
}

// closestApproach is the shortest time from the end of an interval of
// one process's activity to the start of one of another's (meaningful when
// they do not overlap): how close the handovers came, seen from outside.
func closestApproach(as []audit.Actor) (gap time.Duration, a, b string, ok bool) {
	for _, x := range as {
		for _, y := range as {
			if x.Name == y.Name {
				continue
			}
			for _, i := range x.Activity() {
				for _, j := range y.Activity() {
					if d := j.Start.Sub(i.End); d >= 0 && (!ok || d < gap) {
						gap, a, b, ok = d, x.Name, y.Name, true
					}
				}
			}
		}
	}
	return gap, a, b, ok
}

func countOpen(reqs []audit.Request) int {
	n := 0
	for _, r := range reqs {
		if r.Open() {
			n++
		}
	}
	return n
}

// countUser counts user's requests on the Lease (lease) or on anything else.
func countUser(reqs []audit.Request, user string, lease bool) int {
	n := 0
	for _, r := range reqs {
		if r.User == user && r.Lease() == lease {
			n++
		}
	}
	return n
}

// RelIntervals formats intervals in seconds since t0.
func RelIntervals(t0 time.Time, ivs ...audit.Interval) string {
	if len(ivs) == 0 {
		return "none"
	}
	parts := make([]string, len(ivs))
	for i, iv := range ivs {
		parts[i] = fmt.Sprintf("[%.3fs, %.3fs]", iv.Start.Sub(t0).Seconds(), iv.End.Sub(t0).Seconds())
	}
	return strings.Join(parts, " ")
}

// relTimes formats the first and last of times in seconds since t0.
func relTimes(t0 time.Time, ts []time.Time) string {
	if len(ts) == 0 {
		return "none"
	}
	return fmt.Sprintf("read from %.3fs to %.3fs", ts[0].Sub(t0).Seconds(), ts[len(ts)-1].Sub(t0).Seconds())
}
