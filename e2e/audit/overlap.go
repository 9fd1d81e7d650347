package audit

import (
	"fmt"
	"sort"
	"time"
)

// Replica is what one replica was seen doing from outside.
type Replica struct {
	Name string
	// API is its group's activity at the API server (Activity).
	API []Interval
	// Exports are the times at which the harness read the batches it
	// exported (fleet.Batch.At). A batch was produced at some instant
	// of [At - slack, At] (file exporter flush interval plus polling):
	// its export window.
	Exports []time.Time
}

// ExportWindow is the span in which a batch read at `at` was produced.
func ExportWindow(at time.Time, slack time.Duration) Interval {
	return Interval{at.Add(-slack), at}
}

// Overlap is a moment at which two replicas were both active.
type Overlap struct {
	A, B string
	// AInterval is A's API interval, or the export window of one of A's
	// batches when Export is set; BInterval is B's API interval.
	AInterval, BInterval Interval
	// Export: A exported a batch whose whole export window lies in an
	// API interval of B. A's group was active at some instant of that
	// window (how long is unknown: Span is the window, not a length of
	// overlap), and B's throughout it.
	Export bool
	// Span is the intersection of AInterval and BInterval.
	Span Interval
}

func (o Overlap) String() string {
	if o.Export {
		return fmt.Sprintf("%s exported a batch produced in %s, entirely within %s API activity %s",
			o.A, fmtInterval(o.AInterval), o.B, fmtInterval(o.BInterval))
	}
	return fmt.Sprintf("%s API activity %s and %s API activity %s overlap for %s",
		o.A, fmtInterval(o.AInterval), o.B, fmtInterval(o.BInterval), o.Span.Duration())
}

func fmtInterval(iv Interval) string {
	return fmt.Sprintf("[%s, %s]", iv.Start.Format("15:04:05.000000"), iv.End.Format("15:04:05.000000"))
}

// Overlaps finds every overlap between replicas:
//
//   - API against API: the intersections of positive length of an API
//     interval of one replica with one of another (intervals that only
//     touch do not overlap);
//   - exports against API: a batch of A whose export window (slack before
//     its read time) lies entirely within one API interval of B. A window
//     that only partly overlaps B's activity proves nothing (A may have
//     produced the batch before B started, or after it stopped), so it is
//     not counted: a handover faster than slack is no overlap. Batches are
//     not compared with each other's windows, for the same reason.
//
// The result is ordered by the start of Span.
func Overlaps(rs []Replica, slack time.Duration) []Overlap {
	var out []Overlap
	for i, a := range rs {
		for j, b := range rs {
			if i == j {
				continue
			}
			if i < j {
				for _, x := range a.API {
					for _, y := range b.API {
						if s, ok := intersect(x, y); ok {
							out = append(out, Overlap{A: a.Name, B: b.Name, AInterval: x, BInterval: y, Span: s})
						}
					}
				}
			}
			for _, at := range a.Exports {
				w := ExportWindow(at, slack)
				for _, y := range b.API {
					if !w.Start.Before(y.Start) && !w.End.After(y.End) {
						out = append(out, Overlap{A: a.Name, B: b.Name, AInterval: w, BInterval: y, Export: true, Span: w})
					}
				}
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Span.Start.Before(out[j].Span.Start) })
	return out
}

func intersect(x, y Interval) (Interval, bool) {
	s := Interval{x.Start, x.End}
	if y.Start.After(s.Start) {
		s.Start = y.Start
	}
	if y.End.Before(s.End) {
		s.End = y.End
	}
	return s, s.End.After(s.Start)
}

// APIOverlap is the total time during which the API activity of two or
// more replicas overlapped (the union of the Spans of the API overlaps,
// so that time is not counted twice).
func APIOverlap(os []Overlap) time.Duration {
	var spans []Interval
	for _, o := range os {
		if !o.Export {
			spans = append(spans, o.Span)
		}
	}
	var total time.Duration
	for _, s := range Union(spans) {
		total += s.Duration()
	}
	return total
}
