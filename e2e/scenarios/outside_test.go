package scenarios

import (
	"fmt"
	"strings"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// checkOutsideOverlap is the overlap check from outside the collectors,
// once they have all stopped: each replica's group activity is what
// kube-apiserver's audit log shows of its ServiceAccount's requests other
// than the Lease's (from received to complete; a watch for as long as it
// stayed open), and the batches it exported; no two replicas may have been
// active at the same time, by the categories of audit.Overlaps: a request
// begun during another replica's activity, a closing tail longer than
// audit.TailBound, a batch exported during another replica's activity. It
// logs every replica's activity relative to the scenario's start, and the
// overlaps (closing tails within the bound too). The client-go candidates
// of a mixed fleet (scenario.cg) count like replicas (their Pod lists are
// their activity). It also checks that every group span the logs show left
// a trace in the audit log, so that an empty audit log cannot pass for no
// overlap.
func (s *scenario) checkOutsideOverlap(spans []timeline.GroupSpan) {
	t := s.t
	// Every replica has exited, so its connections are closed: wait (a
	// little) until the API server has logged the end of each request.
	reqs, err := s.audit.Settle(10 * time.Second)
	assert.NoError(t, err, "reading the audit log")
	if open := countOpen(reqs); open > 0 {
		t.Logf("outside: %d requests still open after every replica exited: they count as active until now", open)
	}

	end := time.Now()
	exits := s.cp.APIServerExits()
	// Every process on the Lease: the replicas (with their exports) and
	// the client-go candidates, each its own ServiceAccount.
	type actor struct {
		name, sa string
		exports  []time.Time
	}
	var actors []actor
	for i, r := range s.f.Replicas() {
		a := actor{name: r.Name, sa: s.sas[i]}
		for _, b := range r.Batches() {
			a.exports = append(a.exports, b.At)
		}
		actors = append(actors, a)
	}
	if s.cg != nil {
		for _, c := range s.cg.Candidates() {
			actors = append(actors, actor{name: c.Name, sa: c.Name})
		}
	}
	var rs []audit.Actor
	for _, a := range actors {
		user := cluster.ServiceAccountUser(s.ns, a.sa)
		ar := audit.Actor{Name: a.name, Requests: audit.RequestIntervals(reqs, user, exits, end), Exports: a.exports}
		rs = append(rs, ar)
		act := ar.Activity()
		t.Logf("outside: %s (%s): %d API requests (%d on the Lease), %d batches exported; activity in %d intervals, shown with gaps under %s closed: %s; exports %s",
			a.name, user, countUser(reqs, user, false), countUser(reqs, user, true), len(ar.Exports),
			len(act), displayGap, s.relIntervals(coalesce(act, displayGap)), s.relTimes(ar.Exports))
		for _, gs := range spans {
			if gs.Replica != a.name {
				continue
			}
			spanEnd := gs.End
			if spanEnd.IsZero() {
				spanEnd = end
			}
			seen := false
			for _, iv := range act {
				if !iv.End.Before(gs.Start.Add(-10*time.Second)) && !iv.Start.After(spanEnd) {
					seen = true
				}
			}
			assert.True(t, seen, "the audit log shows %s's group at work during its group span from %.3fs", a.name, gs.Start.Sub(s.t0).Seconds())
		}
	}
	overlaps := audit.Overlaps(rs, fleet.ExportSlack)
	counted := audit.Counted(overlaps)
	kinds := map[audit.OverlapKind]int{}
	var tails int
	var longestTail time.Duration
	for _, o := range overlaps {
		if o.Counts() {
			kinds[o.Kind]++
		} else {
			tails++
			longestTail = max(longestTail, o.TailLength())
		}
	}
	closest := "none (fewer than two replicas active)"
	if gap, a, b, ok := closestApproach(rs); ok {
		closest = fmt.Sprintf("%d ms (%s's activity, then %s's)", gap.Milliseconds(), a, b)
	}
	t.Logf("outside: overlap of group activity %d ms (API); overlaps: %d requests begun during another replica's activity, %d closing tails longer than %s, %d batches exported during another replica's activity; %d closing tails within %s (longest %s); closest approach of two replicas' API activity %s",
		audit.APIOverlap(overlaps).Milliseconds(), kinds[audit.Begun], kinds[audit.Tail], audit.TailBound, kinds[audit.Export],
		tails, audit.TailBound, longestTail, closest)
	if s.overlapExpected {
		assert.Positive(t, audit.APIOverlap(overlaps), "the audit log shows two groups active at once")
		for _, o := range counted {
			t.Logf("outside: overlap, as expected: %s", o)
		}
		return
	}
	if len(counted) > 0 {
		var msgs []string
		for _, o := range counted {
			msgs = append(msgs, fmt.Sprintf("%s (relative: %s and %s)", o, s.relIntervals([]audit.Interval{o.AInterval}), s.relIntervals([]audit.Interval{o.BInterval})))
		}
		assert.Fail(t, "overlap from outside (audit log, exports): two replicas active at once", strings.Join(msgs, "\n"))
	}
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
// one replica's activity to the start of one of another's (meaningful when
// they do not overlap): how close the handovers came, seen from outside.
func closestApproach(rs []audit.Actor) (gap time.Duration, a, b string, ok bool) {
	for _, x := range rs {
		for _, y := range rs {
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

// relIntervals formats intervals in seconds since the scenario's start.
func (s *scenario) relIntervals(ivs []audit.Interval) string {
	if len(ivs) == 0 {
		return "none"
	}
	parts := make([]string, len(ivs))
	for i, iv := range ivs {
		parts[i] = fmt.Sprintf("[%.3fs, %.3fs]", iv.Start.Sub(s.t0).Seconds(), iv.End.Sub(s.t0).Seconds())
	}
	return strings.Join(parts, " ")
}

// relTimes formats the first and last of times in seconds since the
// scenario's start.
func (s *scenario) relTimes(ts []time.Time) string {
	if len(ts) == 0 {
		return "none"
	}
	return fmt.Sprintf("read from %.3fs to %.3fs", ts[0].Sub(s.t0).Seconds(), ts[len(ts)-1].Sub(s.t0).Seconds())
}
