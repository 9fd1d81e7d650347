package bench

import (
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/harness"
)

// AuditReceiver is the Receiver of the ReceiverSpans measured from outside: a
// replica's group activity at the API server (package audit), whatever
// receiver made the requests.
const AuditReceiver = "api (audit log)"

// OutsideOverlap is the overlap (P3) measured from outside the collectors,
// the same way for both distributions and as the scenarios check it
// (harness.MeasureOutside: each replica's requests other than the Lease's,
// from received to complete, and the read times of the batches it
// exported, and audit.Overlaps of them). Each closing tail within
// audit.TailBound is cut where the other replica's activity began;
// Seconds, Episodes, … are those of the spans of activity that remain
// (ComputeOverlap), ByKind counts the overlaps that count by kind and
// TailsWithinBound those that do not. It also returns the spans.
func OutsideOverlap(out harness.Outside) (OverlapTotals, []ReceiverSpan) {
	type request struct {
		replica string
		iv      audit.Interval
	}
	cut := map[request]time.Time{} // a request's tolerated tails: where the first began
	keep := map[request]bool{}     // a request with an overlap that counts
	byKind := map[audit.OverlapKind]int{}
	tails := 0
	for _, o := range out.Overlaps {
		r := request{o.A, o.AInterval}
		if o.Counts() {
			byKind[o.Kind]++
			if o.Kind != audit.Export {
				keep[r] = true
			}
			continue
		}
		tails++
		if at, ok := cut[r]; !ok || o.BInterval.Start.Before(at) {
			cut[r] = o.BInterval.Start
		}
	}
	var ivs []ReceiverSpan
	for _, rep := range out.Actors {
		reqIvs := make([]audit.Interval, len(rep.Requests))
		for i, iv := range rep.Requests {
			r := request{rep.Name, iv}
			if at, ok := cut[r]; ok && !keep[r] {
				iv.End = at
			}
			reqIvs[i] = iv
		}
		for _, iv := range audit.Union(reqIvs) {
			ivs = append(ivs, ReceiverSpan{Replica: rep.Name, Receiver: AuditReceiver, Start: iv.Start, End: iv.End})
		}
	}
	o := ComputeOverlap(ivs, out.End)
	o.ByKind, o.TailsWithinBound = byKind, tails
	return o, ivs
}
