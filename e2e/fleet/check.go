package fleet

import (
	"fmt"
	"strings"
	"time"
)

// Term is a span during which one replica's sub-receiver group ran: from
// "leader group started" to "leader group stopped" (or the process exit, if
// it died without logging a stop). End is zero while the group runs.
type Term struct {
	Replica string
	PID     int
	Start   time.Time
	End     time.Time
	EndedBy Kind // GroupStopped, GroupStopErrors or ProcessExited; "" while open
	Reason  string
}

// Terms derives the leadership terms from events ordered by At.
func Terms(events []Event) []Term {
	var terms []Term
	open := map[int]int{} // pid -> index in terms
	for _, ev := range events {
		switch ev.Kind {
		case GroupStarted:
			open[ev.PID] = len(terms)
			terms = append(terms, Term{Replica: ev.Replica, PID: ev.PID, Start: ev.At})
		case GroupStopped, GroupStopErrors, ProcessExited:
			if i, ok := open[ev.PID]; ok {
				terms[i].End, terms[i].EndedBy, terms[i].Reason = ev.At, ev.Kind, ev.Reason
				delete(open, ev.PID)
			}
		}
	}
	return terms
}

// CheckSingleLeader returns an error if two terms overlap: the groups of
// two replicas ran at the same time (as seen in the logs, on one clock).
func CheckSingleLeader(events []Event) error {
	terms := Terms(events)
	var bad []string
	for i := range terms {
		for j := i + 1; j < len(terms); j++ {
			a, b := terms[i], terms[j]
			if overlaps(a, b) {
				bad = append(bad, fmt.Sprintf("%s (pid %d) %s and %s (pid %d) %s", a.Replica, a.PID, span(a), b.Replica, b.PID, span(b)))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("groups ran at the same time: %s", strings.Join(bad, "; "))
	}
	return nil
}

func overlaps(a, b Term) bool {
	forever := time.Unix(1<<40, 0) // an open term has not ended
	aEnd, bEnd := a.End, b.End
	if aEnd.IsZero() {
		aEnd = forever
	}
	if bEnd.IsZero() {
		bEnd = forever
	}
	return a.Start.Before(bEnd) && b.Start.Before(aEnd)
}

func span(t Term) string {
	if t.End.IsZero() {
		return fmt.Sprintf("[%s, running)", t.Start.Format("15:04:05.000"))
	}
	return fmt.Sprintf("[%s, %s]", t.Start.Format("15:04:05.000"), t.End.Format("15:04:05.000"))
}

// CheckDataOnlyFromLeaders returns an error if a replica exported a batch
// that it could not have produced while its group ran: each batch must be
// read after one of that replica's terms started and at most slack after it
// ended (file exporter flush interval plus polling; 3s is ample).
func (f *Fleet) CheckDataOnlyFromLeaders(slack time.Duration) error {
	terms := Terms(f.Events())
	var bad []string
	for _, r := range f.replicas {
		for _, b := range r.Batches() {
			ok := false
			for _, t := range terms {
				if t.Replica == r.Name && !b.At.Before(t.Start) && (t.End.IsZero() || !b.At.After(t.End.Add(slack))) {
					ok = true
					break
				}
			}
			if !ok {
				bad = append(bad, fmt.Sprintf("%s: %s batch read at %s", r.Name, b.Signal, b.At.Format("15:04:05.000")))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("data exported outside the replica's leadership terms: %s", strings.Join(bad, "; "))
	}
	return nil
}
