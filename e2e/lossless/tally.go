package lossless

import (
	"slices"
	"sort"
	"time"
)

// Handover is one kill of the leader of a configuration's fleet.
type Handover struct {
	Index  int       `json:"index"`  // 1.. over the whole run of the configuration
	Signal string    `json:"signal"` // SIGTERM or SIGKILL
	Leader string    `json:"leader"` // signalled
	Next   string    `json:"next"`   // whose group started next
	At     time.Time `json:"at"`     // the signal
	Up     time.Time `json:"up"`     // the next group up
}

// Gap is the time from the signal to the next group up.
func (h Handover) Gap() time.Duration { return h.Up.Sub(h.At) }

// Window is what happened to the Events created in one handover's window.
type Window struct {
	Handover Handover  `json:"handover"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Created  int       `json:"created"`
	// Lost: created in the window, exported by nobody.
	Lost int `json:"lost"`
	// Duplicated: created in the window, exported more than once (by
	// anyone); Extra: the exports beyond the first of those.
	Duplicated int `json:"duplicated"`
	Extra      int `json:"extra_exports"`
	// InRetryPeriod is the number of Events created in the retry_period
	// before the signal: the SIGKILL goal's bound on Duplicated.
	InRetryPeriod int `json:"created_in_retry_period_before"`
	// The first few names of each, to look them up in the logs.
	LostNames       []string `json:"lost_names,omitempty"`
	DuplicatedNames []string `json:"duplicated_names,omitempty"`
}

// Tally counts, for each handover, the Events lost and duplicated among
// those created in its window. The windows cut [from, to] (the generator's
// run) at the midpoints between consecutive signals: an Event belongs to
// the handover whose signal is nearest to its creation, the first window
// starts at from and the last ends at to. handovers must be in order of
// their signals. Events created before from or after to are not counted
// (before from, the first leader's watches may not have been open yet: see
// Sink.Watching). Exports of names that were never created (a Create that
// failed on the client but was stored) are returned as unknown.
func Tally(created []Created, exports map[string][]Export, handovers []Handover, from, to time.Time, retryPeriod time.Duration) (windows []Window, unknown int) {
	const keep = 5
	for i, h := range handovers {
		w := Window{Handover: h, From: from, To: to}
		if i > 0 {
			w.From = mid(handovers[i-1].At, h.At)
		}
		if i+1 < len(handovers) {
			w.To = mid(h.At, handovers[i+1].At)
		}
		windows = append(windows, w)
	}
	byName := map[string]bool{}
	sorted := slices.Clone(created)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].At.Before(sorted[j].At) })
	for _, c := range sorted {
		byName[c.Name] = true
		if len(windows) == 0 || c.At.Before(from) || c.At.After(to) {
			continue
		}
		// The window of c: the last one that starts at or before it.
		k := sort.Search(len(windows), func(i int) bool { return windows[i].From.After(c.At) }) - 1
		w := &windows[k]
		w.Created++
		n := len(exports[c.Name])
		switch {
		case n == 0:
			w.Lost++
			if len(w.LostNames) < keep {
				w.LostNames = append(w.LostNames, c.Name)
			}
		case n > 1:
			w.Duplicated++
			w.Extra += n - 1
			if len(w.DuplicatedNames) < keep {
				w.DuplicatedNames = append(w.DuplicatedNames, c.Name)
			}
		}
	}
	for i := range windows {
		h := windows[i].Handover
		windows[i].InRetryPeriod = CreatedIn(sorted, h.At.Add(-retryPeriod), h.At)
	}
	for name := range exports {
		if !byName[name] {
			unknown++
		}
	}
	return windows, unknown
}

func mid(a, b time.Time) time.Time { return a.Add(b.Sub(a) / 2) }

// Totals are one signal's windows summed.
type Totals struct {
	Handovers  int `json:"handovers"`
	Created    int `json:"created"`
	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
	Extra      int `json:"extra_exports"`
	// Medians over the handovers.
	MedianLost       float64 `json:"median_lost"`
	MedianDuplicated float64 `json:"median_duplicated"`
	MaxLost          int     `json:"max_lost"`
	MaxDuplicated    int     `json:"max_duplicated"`
	// MaxOverBound is the largest Duplicated - InRetryPeriod (≤ 0 when
	// every handover kept within the SIGKILL goal's bound).
	MaxOverBound int     `json:"max_duplicated_over_retry_period"`
	MedianGapSec float64 `json:"median_gap_seconds"`
}

// Total sums the windows of one signal.
func Total(windows []Window, signal string) Totals {
	var t Totals
	var lost, dup, gap []float64
	first := true
	for _, w := range windows {
		if w.Handover.Signal != signal {
			continue
		}
		t.Handovers++
		t.Created += w.Created
		t.Lost += w.Lost
		t.Duplicated += w.Duplicated
		t.Extra += w.Extra
		t.MaxLost = max(t.MaxLost, w.Lost)
		t.MaxDuplicated = max(t.MaxDuplicated, w.Duplicated)
		if over := w.Duplicated - w.InRetryPeriod; first || over > t.MaxOverBound {
			t.MaxOverBound = over
		}
		first = false
		lost = append(lost, float64(w.Lost))
		dup = append(dup, float64(w.Duplicated))
		gap = append(gap, w.Handover.Gap().Seconds())
	}
	t.MedianLost, t.MedianDuplicated, t.MedianGapSec = median(lost), median(dup), median(gap)
	return t
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// CreatedIn counts the Events created in [from, to).
func CreatedIn(created []Created, from, to time.Time) int {
	n := 0
	for _, c := range created {
		if !c.At.Before(from) && c.At.Before(to) {
			n++
		}
	}
	return n
}
