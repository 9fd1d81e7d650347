package scale

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// BlockSpan is one block's group running in one process: from its "leader
// group started" line to its "leader group stopped" line (or the process's
// exit). End is zero while it runs.
type BlockSpan struct {
	Lease   string // namespace/name
	Replica string
	PID     int
	Start   time.Time
	End     time.Time
}

// BlockSpans derives every block's group spans from events ordered by At.
// timeline.GroupSpans keeps one open span per process; a process with
// many blocks runs one per Lease. A span's start and end are the
// collector's own timestamps of its lines (every process runs on this
// host's clock; milliseconds in distribution/config.yaml's JSON encoding),
// else when the harness read them: a process that logs fifty stops in a
// burst has its lines read up to tens of milliseconds late, after the next
// leader's "leader group started" was read from its own pipe, which would
// show handovers that were in order as overlaps.
func BlockSpans(events []timeline.Event) []BlockSpan {
	when := func(ev timeline.Event) time.Time {
		if !ev.Line.Time.IsZero() {
			return ev.Line.Time
		}
		return ev.At
	}
	type key struct {
		pid   int
		lease string
	}
	var spans []BlockSpan
	open := map[key]int{}
	for _, ev := range events {
		switch ev.Kind {
		case timeline.GroupStarted:
			open[key{ev.PID, ev.Lease}] = len(spans)
			spans = append(spans, BlockSpan{Lease: ev.Lease, Replica: ev.Replica, PID: ev.PID, Start: when(ev)})
		case timeline.GroupStopped, timeline.GroupStopErrors:
			k := key{ev.PID, ev.Lease}
			if i, ok := open[k]; ok {
				spans[i].End = when(ev)
				delete(open, k)
			}
		case timeline.ProcessExited:
			for k, i := range open {
				if k.pid == ev.PID {
					spans[i].End = ev.At
					delete(open, k)
				}
			}
		}
	}
	return spans
}

// LogOverlaps checks, Lease by Lease, that no two of its groups ran at once
// (timeline.CheckDisjoint); it returns one error per Lease where they did.
func LogOverlaps(spans []BlockSpan) []error {
	byLease := map[string][]timeline.GroupSpan{}
	for _, s := range spans {
		byLease[s.Lease] = append(byLease[s.Lease], timeline.GroupSpan{Replica: s.Replica, PID: s.PID, Start: s.Start, End: s.End})
	}
	var errs []error
	for _, lease := range slices.Sorted(maps.Keys(byLease)) {
		if err := timeline.CheckDisjoint(byLease[lease]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", lease, err))
		}
	}
	return errs
}

// Handover is what one SIGTERM of the replica holding every block did, from
// the signal on (durations since Signal).
type Handover struct {
	Signal time.Time
	Blocks int
	// AllStarted: the last of the blocks' groups started on another
	// replica. FirstStarted: the first.
	AllStarted, FirstStarted time.Duration
	// LastStopped: the old leader's last "leader group stopped";
	// LastReleased: its last "lease released"; Exited: its process exit.
	LastStopped, LastReleased, Exited time.Duration
	// Gaps are, per block, from the old leader's release of its Lease to
	// the new group's start: the block's own handover, without the wait
	// for the blocks the collector shut down before it.
	Gaps []time.Duration
	// Takers counts the blocks each replica took.
	Takers map[string]int
	// Missing names the Leases no other replica started a group for.
	Missing []string
}

// MeasureHandover reads a handover from events (ordered by At): oldPID was
// signalled at sig and held the groups of leases.
func MeasureHandover(events []timeline.Event, leases []string, oldPID int, sig time.Time) Handover {
	h := Handover{Signal: sig, Blocks: len(leases), Takers: map[string]int{}}
	since := func(t time.Time) time.Duration { return t.Sub(sig) }
	released := map[string]time.Time{}
	started := map[string]timeline.Event{}
	for _, ev := range events {
		if ev.At.Before(sig) {
			continue
		}
		switch {
		case ev.PID == oldPID && (ev.Kind == timeline.GroupStopped || ev.Kind == timeline.GroupStopErrors):
			h.LastStopped = max(h.LastStopped, since(ev.At))
		case ev.PID == oldPID && ev.Kind == timeline.Released:
			h.LastReleased = max(h.LastReleased, since(ev.At))
			released[ev.Lease] = ev.At
		case ev.PID == oldPID && ev.Kind == timeline.ProcessExited:
			h.Exited = since(ev.At)
		case ev.PID != oldPID && ev.Kind == timeline.GroupStarted:
			if _, ok := started[ev.Lease]; !ok {
				started[ev.Lease] = ev
			}
		}
	}
	first := true
	for _, lease := range leases {
		ev, ok := started[lease]
		if !ok {
			h.Missing = append(h.Missing, lease)
			continue
		}
		d := since(ev.At)
		h.AllStarted = max(h.AllStarted, d)
		if first || d < h.FirstStarted {
			h.FirstStarted, first = d, false
		}
		h.Takers[ev.Replica]++
		if r, ok := released[lease]; ok {
			h.Gaps = append(h.Gaps, ev.At.Sub(r))
		}
	}
	return h
}

// BlockOf is the block a request's URI names in its label selector
// (BlockLabel=<block>), or "".
func BlockOf(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	for _, term := range strings.Split(u.Query().Get("labelSelector"), ",") {
		if k, v, ok := strings.Cut(term, "="); ok && k == BlockLabel {
			return v
		}
	}
	return ""
}

// Outside is the overlap of each block's groups as the API server saw it:
// per block, the replicas' requests marked with that block, compared with
// audit.Overlaps (a request begun during another replica's activity; a
// closing tail longer than audit.TailBound).
type Outside struct {
	Blocks   int                        // blocks with at least one request
	Requests int                        // marked requests
	Overlaps map[string][]audit.Overlap // by block, the ones that count (audit.Counted)
	Tails    int                        // closing tails within the bound
	// Closest is the shortest time from the end of one replica's activity
	// for a block to the start of another's for the same block: how close
	// two groups of one block came; ClosestBlock is that block ("" when
	// no block had two replicas' activity).
	Closest      time.Duration
	ClosestBlock string
	// Untraced are the spans of at least minTraced with no request of their
	// block within them (as widened by a second on both sides), as
	// "lease replica start": a group the audit log did not see at work.
	Untraced []string
}

// MeasureOutside measures Outside from reqs (every request of the
// replicas' ServiceAccounts), users mapping replica names to their
// ServiceAccounts' users, the spans from the logs, and when kube-apiserver
// exited (a request still open then ended then) and the end of the
// measurement. A span of at least minTraced must show in the audit log.
func MeasureOutside(reqs []audit.Request, users map[string]string, spans []BlockSpan, minTraced time.Duration, exits []time.Time, end time.Time) Outside {
	o := Outside{Overlaps: map[string][]audit.Overlap{}}
	byBlock := map[string][]audit.Request{}
	for _, r := range reqs {
		if b := BlockOf(r.URI); b != "" {
			byBlock[b] = append(byBlock[b], r)
			o.Requests++
		}
	}
	o.Blocks = len(byBlock)
	names := slices.Sorted(maps.Keys(users))
	first := true
	for _, b := range slices.Sorted(maps.Keys(byBlock)) {
		var actors []audit.Actor
		for _, name := range names {
			actors = append(actors, audit.Actor{Name: name, User: users[name],
				Requests: audit.RequestIntervals(byBlock[b], users[name], exits, end)})
		}
		ovs := audit.Overlaps(actors, fleet.ExportSlack)
		if c := audit.Counted(ovs); len(c) > 0 {
			o.Overlaps[b] = c
		}
		o.Tails += len(ovs) - len(audit.Counted(ovs))
		for _, x := range actors {
			for _, y := range actors {
				if x.Name == y.Name {
					continue
				}
				for _, i := range x.Activity() {
					for _, j := range y.Activity() {
						if d := j.Start.Sub(i.End); d >= 0 && (first || d < o.Closest) {
							o.Closest, o.ClosestBlock, first = d, b, false
						}
					}
				}
			}
		}
	}
	for _, s := range spans {
		stop := s.End
		if stop.IsZero() {
			stop = end
		}
		if stop.Sub(s.Start) < minTraced {
			continue
		}
		b := strings.TrimPrefix(s.Lease[strings.LastIndexByte(s.Lease, '/')+1:], LeasePrefix)
		seen := false
		for _, r := range byBlock[b] {
			if r.User == users[s.Replica] && !r.Received.Before(s.Start.Add(-time.Second)) && !r.Received.After(stop.Add(time.Second)) {
				seen = true
				break
			}
		}
		if !seen {
			o.Untraced = append(o.Untraced, fmt.Sprintf("%s %s %s", s.Lease, s.Replica, s.Start.Format("15:04:05.000")))
		}
	}
	return o
}

// Counted is the number of overlaps that count, over all blocks.
func (o Outside) Counted() int {
	n := 0
	for _, ovs := range o.Overlaps {
		n += len(ovs)
	}
	return n
}

// Rates are the requests the replicas' ServiceAccounts made in a window,
// per second, as the API server received them.
type Rates struct {
	Seconds float64 `json:"seconds"`
	// LeaseWrites, LeaseReads (get, list) and LeaseWatches (opened) are the
	// election's; Group are the other requests (the blocks' checks).
	LeaseWrites  float64 `json:"lease_writes_per_s"`
	LeaseReads   float64 `json:"lease_reads_per_s"`
	LeaseWatches float64 `json:"lease_watches_opened_per_s"`
	Group        float64 `json:"group_per_s"`
	// OpenWatches is the mean number of Lease watches open over the window,
	// all replicas together.
	OpenWatches float64 `json:"open_lease_watches"`
	// ByReplica: each replica's Lease writes and reads per second.
	ByReplica map[string]float64 `json:"lease_requests_per_s_by_replica"`
}

// CountRates counts reqs received in window by kind; users maps replica
// names to users.
func CountRates(reqs []audit.Request, users map[string]string, window audit.Interval) Rates {
	s := window.Duration().Seconds()
	r := Rates{Seconds: s, ByReplica: map[string]float64{}}
	if s <= 0 {
		return r
	}
	byUser := map[string]string{}
	for name, u := range users {
		byUser[u] = name
		c := audit.CountLeaseRequests(reqs, u, window)
		r.OpenWatches += c.OpenWatches
		r.ByReplica[name] = float64(c.Writes+c.Reads) / s
	}
	for _, q := range reqs {
		if _, ok := byUser[q.User]; !ok || q.Received.Before(window.Start) || q.Received.After(window.End) {
			continue
		}
		switch {
		case !q.Lease():
			r.Group++
		case q.Verb == "watch":
			r.LeaseWatches++
		case q.Verb == "get" || q.Verb == "list":
			r.LeaseReads++
		default:
			r.LeaseWrites++
		}
	}
	r.LeaseWrites, r.LeaseReads, r.LeaseWatches, r.Group = r.LeaseWrites/s, r.LeaseReads/s, r.LeaseWatches/s, r.Group/s
	return r
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of xs.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	k := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(k, 0), len(s)-1)]
}
