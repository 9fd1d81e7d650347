package bench

import (
	"sort"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
)

// OverlapTotals is how long the same receiver ran on two or more replicas
// at once (duplicated data), over a set of spans: from the logs
// (ComputeOverlap) or from outside (OutsideOverlap, by the categories of
// audit.Overlap). Not an audit.Overlap, one time at which two replicas
// were active at once.
type OverlapTotals struct {
	// Seconds during which some receiver ran on ≥ 2 replicas (the union
	// over receivers, so time is not counted twice).
	Seconds float64 `json:"seconds"`
	// Episodes: separate spans of such time.
	Episodes int `json:"episodes"`
	// LongestSeconds: the longest episode.
	LongestSeconds float64 `json:"longest_seconds"`
	// MaxConcurrent: the most replicas that ran one receiver at once.
	MaxConcurrent int `json:"max_concurrent"`
	// ByReceiver: Seconds per receiver (Ours: "group" only).
	ByReceiver map[string]float64 `json:"by_receiver,omitempty"`
	// ByKind (from outside only, OutsideOverlap): the overlaps that count
	// (audit.Overlap.Counts), by audit.OverlapKind: requests begun during
	// another replica's activity, closing tails longer than
	// audit.TailBound, batches exported during another replica's activity.
	ByKind map[audit.OverlapKind]int `json:"by_kind,omitempty"`
	// TailsWithinBound (from outside only): closing tails that do not
	// count (cut at the other replica's start before Seconds is measured).
	TailsWithinBound int `json:"tails_within_bound,omitempty"`
}

type span struct{ start, end time.Time }

// ComputeOverlap measures OverlapTotals; spans still open end at end.
func ComputeOverlap(spans []ReceiverSpan, end time.Time) OverlapTotals {
	byRc := map[string][]ReceiverSpan{}
	for _, iv := range spans {
		if iv.End.IsZero() {
			iv.End = end
		}
		if iv.End.After(iv.Start) {
			byRc[iv.Receiver] = append(byRc[iv.Receiver], iv)
		}
	}
	o := OverlapTotals{ByReceiver: map[string]float64{}}
	var dup []span // spans where some receiver ran ≥ 2 times
	for rc, ivs := range byRc {
		type edge struct {
			at    time.Time
			delta int
		}
		var edges []edge
		for _, iv := range ivs {
			edges = append(edges, edge{iv.Start, +1}, edge{iv.End, -1})
		}
		// Ends before starts at the same instant: touching is not overlapping.
		sort.Slice(edges, func(i, j int) bool {
			if !edges[i].at.Equal(edges[j].at) {
				return edges[i].at.Before(edges[j].at)
			}
			return edges[i].delta < edges[j].delta
		})
		n := 0
		var from time.Time
		var total time.Duration
		for _, e := range edges {
			before := n
			n += e.delta
			if n > o.MaxConcurrent {
				o.MaxConcurrent = n
			}
			switch {
			case before < 2 && n >= 2:
				from = e.at
			case before >= 2 && n < 2:
				dup = append(dup, span{from, e.at})
				total += e.at.Sub(from)
			}
		}
		o.ByReceiver[rc] = total.Seconds()
	}
	if o.MaxConcurrent == 0 && len(byRc) > 0 {
		o.MaxConcurrent = 1
	}
	// Union of the spans of all receivers.
	ivs := make([]audit.Interval, len(dup))
	for i, s := range dup {
		ivs[i] = audit.Interval{Start: s.start, End: s.end}
	}
	merged := audit.Union(ivs)
	for _, s := range merged {
		d := s.End.Sub(s.Start).Seconds()
		o.Seconds += d
		if d > o.LongestSeconds {
			o.LongestSeconds = d
		}
	}
	o.Episodes = len(merged)
	return o
}

// OutsideKinds describes ByKind and TailsWithinBound (from outside).
func (o OverlapTotals) OutsideKinds() string { return audit.Describe(o.ByKind, o.TailsWithinBound) }

// Add accumulates b into o (for a total over configurations).
func (o *OverlapTotals) Add(b OverlapTotals) {
	o.Seconds += b.Seconds
	o.Episodes += b.Episodes
	o.LongestSeconds = max(o.LongestSeconds, b.LongestSeconds)
	o.MaxConcurrent = max(o.MaxConcurrent, b.MaxConcurrent)
	o.TailsWithinBound += b.TailsWithinBound
	if o.ByReceiver == nil {
		o.ByReceiver = map[string]float64{}
	}
	for k, v := range b.ByReceiver {
		o.ByReceiver[k] += v
	}
	for k, v := range b.ByKind {
		if o.ByKind == nil {
			o.ByKind = map[audit.OverlapKind]int{}
		}
		o.ByKind[k] += v
	}
}
