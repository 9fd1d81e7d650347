package bench

import (
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
)

// AuditReceiver is the Receiver of the Intervals measured from outside: a
// replica's group activity at the API server (package audit), whatever
// receiver made the requests.
const AuditReceiver = "api (audit log)"

// OutsideOverlap is the overlap (P3) measured from outside the collectors, the same way
// for both distributions: users maps each replica to the API server user
// of its ServiceAccount, exports each replica to the read times of the
// batches it exported. A replica's activity is its requests other than
// the Lease's, from received to complete (audit.Activity; open ones end at
// end); Seconds, Episodes, … are those of these intervals
// (ComputeOverlap), and ExportWindows counts the batches whose export
// window (slack before their read time) lay entirely within another
// replica's activity (audit.Overlaps). It also returns the intervals.
func OutsideOverlap(reqs []audit.Request, users map[string]string, exports map[string][]time.Time, end time.Time, slack time.Duration) (OverlapTotals, []Interval) {
	var ivs []Interval
	var rs []audit.Replica
	for replica, user := range users {
		api := audit.Activity(reqs, user, nil, end)
		for _, iv := range api {
			ivs = append(ivs, Interval{Replica: replica, Receiver: AuditReceiver, Start: iv.Start, End: iv.End})
		}
		rs = append(rs, audit.Replica{Name: replica, API: api, Exports: exports[replica]})
	}
	o := ComputeOverlap(ivs, end)
	for _, x := range audit.Overlaps(rs, slack) {
		if x.Export {
			o.ExportWindows++
		}
	}
	return o, ivs
}
