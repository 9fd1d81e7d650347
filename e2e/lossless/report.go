package lossless

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// Result is one receiver of one configuration: its handovers' windows and
// their totals by signal.
type Result struct {
	Config   string   `json:"config"`
	Receiver string   `json:"receiver"`
	SIGTERM  Totals   `json:"sigterm"`
	SIGKILL  Totals   `json:"sigkill"`
	Windows  []Window `json:"windows"`
	// Unknown: names exported that the generator does not know (a Create
	// that failed on the client after the API server stored it).
	Unknown int `json:"unknown_exports"`
	// NonAdded: k8s_objects exports whose watch type was not ADDED.
	NonAdded int `json:"non_added_exports"`
}

// Report is the whole run.
type Report struct {
	Started       time.Time           `json:"started"`
	Finished      time.Time           `json:"finished"`
	Settings      Settings            `json:"settings"`
	Created       int                 `json:"created"`
	Rate          float64             `json:"rate_per_second"` // measured: created / generator run
	CreateErrors  []string            `json:"create_errors,omitempty"`
	Results       []Result            `json:"results"`
	Errors        map[string]string   `json:"errors,omitempty"` // configuration -> why it stopped early
	Notes         map[string][]string `json:"notes,omitempty"`
	OtherExported map[string]int      `json:"other_exports,omitempty"` // configuration -> records about other Events
}

// Settings say what was run.
type Settings struct {
	Configs     []string `json:"configs"`
	Replicas    int      `json:"replicas"`
	SIGTERM     int      `json:"sigterm_handovers"`
	SIGKILL     int      `json:"sigkill_failovers"`
	Rate        float64  `json:"rate"`
	Timings     string   `json:"timings"`
	Settle      string   `json:"settle"`
	Jitter      string   `json:"jitter"`
	Collector   string   `json:"collector"`
	Peer        string   `json:"peer,omitempty"`
	Source      string   `json:"source"`
	Concurrency string   `json:"concurrency"`
}

// Tabulate adds a Result per receiver of a configuration, from its sink's
// exports and its handovers.
func (r *Report) Tabulate(f *Fleet, created []Created, from, to time.Time, retryPeriod time.Duration) {
	hs := f.Handovers()
	for _, rc := range []string{K8sObjects, K8sEvents} {
		exports := f.Sink.Exports(rc)
		ws, unknown := Tally(created, exports, hs, from, to, retryPeriod)
		res := Result{Config: f.Config.Name, Receiver: rc, Windows: ws, Unknown: unknown,
			SIGTERM: Total(ws, "SIGTERM"), SIGKILL: Total(ws, "SIGKILL")}
		for _, es := range exports {
			for _, e := range es {
				if rc == K8sObjects && e.Type != "ADDED" {
					res.NonAdded++
				}
			}
		}
		r.Results = append(r.Results, res)
	}
	if n := f.Sink.Others(); n > 0 {
		if r.OtherExported == nil {
			r.OtherExported = map[string]int{}
		}
		r.OtherExported[f.Config.Name] = n
	}
	if notes := f.Notes(); len(notes) > 0 {
		if r.Notes == nil {
			r.Notes = map[string][]string{}
		}
		r.Notes[f.Config.Name] = notes
	}
}

// WriteJSON writes the report, windows included.
func (r *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// Markdown writes the table: one row per configuration, receiver and kind
// of handover, with the medians per handover and the totals.
func (r *Report) Markdown(w io.Writer) error {
	var b strings.Builder
	s := r.Settings
	fmt.Fprintf(&b, "%d replicas; %d SIGTERM handovers, then %d SIGKILL failovers, per configuration; %d Events created at %.1f/s; %s.\n\n",
		s.Replicas, s.SIGTERM, s.SIGKILL, r.Created, r.Rate, s.Timings)
	b.WriteString("| configuration | receiver | handover | n | created | lost: median / total | duplicated: median / total | max duplicated − created in the retry_period before | median gap |\n")
	b.WriteString("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, res := range r.Results {
		for _, k := range []struct {
			name string
			t    Totals
		}{{"SIGTERM", res.SIGTERM}, {"SIGKILL", res.SIGKILL}} {
			if k.t.Handovers == 0 {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %s / %d | %s / %d | %d | %.1f s |\n",
				res.Config, res.Receiver, k.name, k.t.Handovers, k.t.Created,
				num(k.t.MedianLost), k.t.Lost, num(k.t.MedianDuplicated), k.t.Duplicated, k.t.MaxOverBound, k.t.MedianGapSec)
		}
	}
	for _, c := range sortedKeys(r.Errors) {
		fmt.Fprintf(&b, "\n%s stopped early: %s\n", c, r.Errors[c])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// PerHandover writes one line per handover window of every result.
func (r *Report) PerHandover(w io.Writer) error {
	var b strings.Builder
	for _, res := range r.Results {
		for _, win := range res.Windows {
			h := win.Handover
			fmt.Fprintf(&b, "%-32s %-11s #%-2d %s %s -> %s gap %5.1fs: created %4d lost %4d duplicated %4d (created in the retry_period before: %d)",
				res.Config, res.Receiver, h.Index, h.Signal, h.Leader, h.Next, h.Gap().Seconds(), win.Created, win.Lost, win.Duplicated, win.InRetryPeriod)
			if len(win.LostNames) > 0 {
				fmt.Fprintf(&b, " lost e.g. %v", win.LostNames)
			}
			if len(win.DuplicatedNames) > 0 {
				fmt.Fprintf(&b, " duplicated e.g. %v", win.DuplicatedNames)
			}
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func num(v float64) string {
	if v == float64(int(v)) {
		return fmt.Sprintf("%d", int(v))
	}
	return fmt.Sprintf("%.1f", v)
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
