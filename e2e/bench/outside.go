package bench

import (
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
)

// AuditReceiver is the Receiver of the ReceiverSpans measured from outside: a
// replica's group activity at the API server (package audit), whatever
// receiver made the requests.
const AuditReceiver = "api (audit log)"

// OutsideOverlap is the overlap (P3) measured from outside the collectors,
// the same way for both distributions and as the scenarios check it:
// users maps each replica to the API server user of its ServiceAccount,
// exports each replica to the read times of the batches it exported. A
// replica's activity is its requests other than the Lease's, from received
// to complete (audit.RequestIntervals; open ones end at end), each closing
// tail within audit.TailBound cut where the other replica's activity began
// (audit.Overlaps); Seconds, Episodes, … are those of these spans
// (ComputeOverlap), ByKind counts the overlaps that count by category and
// TailsWithinBound those that do not. It also returns the spans.
func OutsideOverlap(reqs []audit.Request, users map[string]string, exports map[string][]time.Time, end time.Time, slack time.Duration) (OverlapTotals, []ReceiverSpan) {
	var rs []audit.Actor
	for replica, user := range users {
		rs = append(rs, audit.Actor{Name: replica, Requests: audit.RequestIntervals(reqs, user, nil, end), Exports: exports[replica]})
	}
	overlaps := audit.Overlaps(rs, slack)
	type request struct {
		replica string
		iv      audit.Interval
	}
	cut := map[request]time.Time{} // a request's tolerated tails: where the first began
	keep := map[request]bool{}     // a request with an overlap that counts
	byKind := map[audit.OverlapKind]int{}
	tails := 0
	for _, o := range overlaps {
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
	for _, rep := range rs {
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
	o := ComputeOverlap(ivs, end)
	o.ByKind, o.TailsWithinBound = byKind, tails
	return o, ivs
}
