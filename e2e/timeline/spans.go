package timeline

import (
	"fmt"
	"strings"
	"time"
)

// GroupSpan is a span during which one replica's sub-receiver group ran: from
// "leader group started" to "leader group stopped" (or the process exit, if
// it died without logging a stop). End is zero while the group runs.
type GroupSpan struct {
	Replica string
	PID     int
	Start   time.Time
	End     time.Time
	EndedBy Kind // GroupStopped, GroupStopErrors or ProcessExited; "" while open
	Reason  string
}

// GroupSpans derives the group spans from events ordered by At. A group span
// is not an elector.Term (a period of holding the Lease): the group runs
// within a term, not for all of it.
func GroupSpans(events []Event) []GroupSpan {
	var spans []GroupSpan
	open := map[int]int{} // pid -> index in spans
	for _, ev := range events {
		switch ev.Kind {
		case GroupStarted:
			open[ev.PID] = len(spans)
			spans = append(spans, GroupSpan{Replica: ev.Replica, PID: ev.PID, Start: ev.At})
		case GroupStopped, GroupStopErrors, ProcessExited:
			if i, ok := open[ev.PID]; ok {
				spans[i].End, spans[i].EndedBy, spans[i].Reason = ev.At, ev.Kind, ev.Reason
				delete(open, ev.PID)
			}
		}
	}
	return spans
}

// CheckSingleLeader returns an error if two group spans overlap: the groups of
// two replicas ran at the same time (as seen in the logs, on one clock).
func CheckSingleLeader(events []Event) error {
	return CheckDisjoint(GroupSpans(events))
}

// CheckDisjoint returns an error if two of the spans overlap (an open span
// has not ended): the spans may come from different kinds of processes,
// e.g. collectors' group spans and client-go candidates' active intervals
// on one Lease.
func CheckDisjoint(spans []GroupSpan) error {
	var bad []string
	for i := range spans {
		for j := i + 1; j < len(spans); j++ {
			a, b := spans[i], spans[j]
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

func overlaps(a, b GroupSpan) bool {
	forever := time.Unix(1<<40, 0) // an open span has not ended
	aEnd, bEnd := a.End, b.End
	if aEnd.IsZero() {
		aEnd = forever
	}
	if bEnd.IsZero() {
		bEnd = forever
	}
	return a.Start.Before(bEnd) && b.Start.Before(aEnd)
}

func span(t GroupSpan) string {
	if t.End.IsZero() {
		return fmt.Sprintf("[%s, running)", t.Start.Format("15:04:05.000"))
	}
	return fmt.Sprintf("[%s, %s]", t.Start.Format("15:04:05.000"), t.End.Format("15:04:05.000"))
}
