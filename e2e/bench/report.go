package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Settings are what a run was asked to do. The JSON names follow
// cmd/bench's flags (--p1-trials, ...), which docs/performance.md lists
// under the report's figure labels P1..P6.
type Settings struct {
	Quick               bool     `json:"quick"`
	Impls               []string `json:"impls"`
	Collector           string   `json:"collector"`
	Peer                string   `json:"peer,omitempty"`
	Timings             string   `json:"timings"`
	Replicas            int      `json:"replicas"` // of the graceful, crash and resource runs (P1, P2, P5)
	GracefulTrials      int      `json:"p1_trials"`
	CrashTrials         int      `json:"p2_trials"`
	CrashReplicaCounts  []int    `json:"p6_replicas"` // crash failover at other replica counts
	CrashTrialsPerCount int      `json:"p6_trials"`   // at each of CrashReplicaCounts
	ResourceWarmup      string   `json:"p5_warmup"`
	ResourceSamples     int      `json:"p5_samples"`
	Jitter              string   `json:"jitter"`
	Workload            string   `json:"workload"`
	Binaries            []Binary `json:"binaries"`
	Source              string   `json:"source,omitempty"` // git describe of the checkout, if any
}

// Binary is a collector binary as measured: the harness runs a copy taken
// at start, so a rebuild during the run cannot mix versions.
type Binary struct {
	Impl     string    `json:"impl"`
	Path     string    `json:"path"` // as given
	Copy     string    `json:"copy"` // what ran
	SHA256   string    `json:"sha256"`
	Modified time.Time `json:"modified"`
}

// Figure is one measured quantity for both distributions.
type Figure struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Unit  string   `json:"unit"`
	Ours  *Summary `json:"ours,omitempty"`
	Peer  *Summary `json:"peer,omitempty"`
	Ratio *Ratio   `json:"ratio_ours_over_peer,omitempty"`
}

// OverlapFigure is the time two or more replicas' groups ran at once, over
// all configurations, per distribution (the report's P3).
type OverlapFigure struct {
	Ours         *OverlapTotals `json:"ours,omitempty"`
	Peer         *OverlapTotals `json:"peer,omitempty"`
	RatioSeconds *float64       `json:"ratio_seconds_ours_over_peer"`
	// From outside: kube-apiserver's audit log and the exports
	// (ConfigResult.AuditOverlap).
	AuditOurs *OverlapTotals `json:"audit_ours,omitempty"`
	AuditPeer *OverlapTotals `json:"audit_peer,omitempty"`
}

// Report is the whole run; it is what bench-results.json holds.
type Report struct {
	Started   time.Time             `json:"started"`
	Finished  time.Time             `json:"finished"`
	Machine   Machine               `json:"machine"`
	Settings  Settings              `json:"settings"`
	Figures   []Figure              `json:"figures"`
	Overlap   OverlapFigure         `json:"p3_overlap"`
	Resources map[string]*Resources `json:"p5_resources,omitempty"`
	Configs   []ConfigResult        `json:"configs"`
	Errors    []string              `json:"errors,omitempty"`
}

// Build fills Figures, Overlap and Resources from Configs.
func (r *Report) Build() {
	r.Figures = nil
	r.Resources = map[string]*Resources{}
	find := func(impl string, n int) *ConfigResult {
		for i := range r.Configs {
			if c := &r.Configs[i]; c.Impl == impl && c.Replicas == n {
				return c
			}
		}
		return nil
	}
	pair := func(id, name, unit string, get func(*ConfigResult) *Summary, n int) {
		f := Figure{ID: id, Name: name, Unit: unit}
		if c := find("ours", n); c != nil {
			if s := get(c); s != nil && s.N > 0 {
				f.Ours = s
			}
		}
		if c := find("peer", n); c != nil {
			if s := get(c); s != nil && s.N > 0 {
				f.Peer = s
			}
		}
		if f.Ours == nil && f.Peer == nil {
			return
		}
		if f.Ours != nil && f.Peer != nil {
			ratio := RatioOf(*f.Ours, *f.Peer)
			f.Ratio = &ratio
		}
		r.Figures = append(r.Figures, f)
	}
	n := r.Settings.Replicas
	pair("P1", fmt.Sprintf("P1 graceful handover gap, SIGTERM (N=%d)", n), "s", func(c *ConfigResult) *Summary { return &c.GracefulGap }, n)
	pair("P2", fmt.Sprintf("P2 crash failover, SIGKILL (N=%d)", n), "s", func(c *ConfigResult) *Summary { return &c.CrashGap }, n)

	res := func(get func(*Resources) *Summary) func(*ConfigResult) *Summary {
		return func(c *ConfigResult) *Summary {
			if c.Resources == nil {
				return nil
			}
			return get(c.Resources)
		}
	}
	req := func(get func(*Requests) *Summary) func(*ConfigResult) *Summary {
		return func(c *ConfigResult) *Summary {
			if c.Requests == nil {
				return nil
			}
			return get(c.Requests)
		}
	}
	pair("P4", "P4 Lease writes per retry_period, leader", unitRate, req(func(x *Requests) *Summary { return &x.LeaderWrites }), n)
	pair("P4", "P4 Lease reads per retry_period, leader", unitRate, req(func(x *Requests) *Summary { return &x.LeaderReads }), n)
	pair("P4", "P4 Lease watches open, leader", unitRate, req(func(x *Requests) *Summary { return &x.LeaderWatches }), n)
	pair("P4", "P4 Lease writes per retry_period, standby", unitRate, req(func(x *Requests) *Summary { return &x.StandbyWrites }), n)
	pair("P4", "P4 Lease reads per retry_period, standby", unitRate, req(func(x *Requests) *Summary { return &x.StandbyReads }), n)
	pair("P4", "P4 Lease watches open, standby", unitRate, req(func(x *Requests) *Summary { return &x.StandbyWatches }), n)

	pair("P5", "P5 RSS, leader", "MiB", res(func(x *Resources) *Summary { return &x.Leader.RSSMiB }), n)
	pair("P5", "P5 RSS, standby", "MiB", res(func(x *Resources) *Summary { return &x.Standby.RSSMiB }), n)
	pair("P5", "P5 goroutines, leader", "", res(func(x *Resources) *Summary { return &x.Leader.Goroutines }), n)
	pair("P5", "P5 goroutines, standby", "", res(func(x *Resources) *Summary { return &x.Standby.Goroutines }), n)
	pair("P5", "P5 OS threads, leader", "", res(func(x *Resources) *Summary { return &x.Leader.Threads }), n)
	pair("P5", "P5 OS threads, standby", "", res(func(x *Resources) *Summary { return &x.Standby.Threads }), n)
	pair("P5", "P5 Go heap in use, leader", "MiB", res(func(x *Resources) *Summary { return &x.Leader.HeapMiB }), n)
	pair("P5", "P5 Go heap in use, standby", "MiB", res(func(x *Resources) *Summary { return &x.Standby.HeapMiB }), n)
	pair("P5", "P5 CPU, leader", "%", res(func(x *Resources) *Summary { return &x.Leader.CPUPercent }), n)
	pair("P5", "P5 CPU, standby", "%", res(func(x *Resources) *Summary { return &x.Standby.CPUPercent }), n)

	ns := map[int]bool{}
	for _, c := range r.Configs {
		if c.CrashGap.N > 0 {
			ns[c.Replicas] = true
		}
	}
	var sorted []int
	for k := range ns {
		sorted = append(sorted, k)
	}
	sort.Ints(sorted)
	for _, k := range sorted {
		pair("P6", fmt.Sprintf("P6 crash failover, SIGKILL (N=%d)", k), "s", func(c *ConfigResult) *Summary { return &c.CrashGap }, k)
	}

	r.Overlap = OverlapFigure{}
	for _, c := range r.Configs {
		o := &r.Overlap.Ours
		if c.Impl == "peer" {
			o = &r.Overlap.Peer
		}
		if *o == nil {
			*o = &OverlapTotals{ByReceiver: map[string]float64{}}
		}
		(*o).Add(c.Overlap)
		if c.AuditOverlap != nil {
			a := &r.Overlap.AuditOurs
			if c.Impl == "peer" {
				a = &r.Overlap.AuditPeer
			}
			if *a == nil {
				*a = &OverlapTotals{ByReceiver: map[string]float64{}}
			}
			(*a).Add(*c.AuditOverlap)
		}
		if c.Resources != nil {
			r.Resources[c.Impl] = c.Resources
		}
		if c.Error != "" {
			r.Errors = appendUnique(r.Errors, fmt.Sprintf("%s N=%d: %s", c.Impl, c.Replicas, c.Error))
		}
	}
	if r.Overlap.Ours != nil && r.Overlap.Peer != nil && r.Overlap.Peer.Seconds > 0 {
		v := r.Overlap.Ours.Seconds / r.Overlap.Peer.Seconds
		r.Overlap.RatioSeconds = &v
	}
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// unitRate is the unit of P4's figures: requests per retry_period, or
// watches open on average; shown with two decimals.
const unitRate = "rate"

func fmtValue(v float64, unit string) string {
	switch unit {
	case unitRate:
		return fmt.Sprintf("%.2f", v)
	case "s":
		return fmt.Sprintf("%.3fs", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "%":
		return fmt.Sprintf("%.2f%%", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func fmtRatio(p *float64) string {
	if p == nil {
		return "—"
	}
	if *p != 0 && *p < 0.1 {
		return fmt.Sprintf("%.3f×", *p)
	}
	return fmt.Sprintf("%.2f×", *p)
}

// rows returns the table: header, then per figure a row per distribution
// and a ratio row.
func (r *Report) rows() [][]string {
	out := [][]string{{"figure", "impl", "n", "min", "median", "p95", "max"}}
	for _, f := range r.Figures {
		for _, side := range []struct {
			name string
			s    *Summary
		}{{"ours", f.Ours}, {"peer", f.Peer}} {
			if side.s == nil {
				continue
			}
			s := side.s
			out = append(out, []string{f.Name, side.name, fmt.Sprint(s.N),
				fmtValue(s.Min, f.Unit), fmtValue(s.Median, f.Unit), fmtValue(s.P95, f.Unit), fmtValue(s.Max, f.Unit)})
		}
		if f.Ratio != nil {
			out = append(out, []string{"", "ours/peer", "", fmtRatio(f.Ratio.Min), fmtRatio(f.Ratio.Median), fmtRatio(f.Ratio.P95), fmtRatio(f.Ratio.Max)})
		}
	}
	return out
}

func (r *Report) overlapRows() [][]string {
	out := [][]string{{"P3 overlap (all trials and fleet starts)", "impl", "seconds", "episodes", "longest", "max replicas at once", "by receiver"}}
	row := func(name string, o *OverlapTotals, outside bool) {
		if o == nil {
			return
		}
		var by []string
		for k, v := range o.ByReceiver {
			by = append(by, fmt.Sprintf("%s %.3fs", k, v))
		}
		sort.Strings(by)
		if outside {
			by = append(by, o.OutsideKinds())
		}
		out = append(out, []string{"", name, fmt.Sprintf("%.3fs", o.Seconds), fmt.Sprint(o.Episodes),
			fmt.Sprintf("%.3fs", o.LongestSeconds), fmt.Sprint(o.MaxConcurrent), strings.Join(by, ", ")})
	}
	row("ours", r.Overlap.Ours, false)
	row("peer", r.Overlap.Peer, false)
	if r.Overlap.Ours != nil && r.Overlap.Peer != nil {
		out = append(out, []string{"", "ours/peer", fmtRatio(r.Overlap.RatioSeconds), "", "", "", ""})
	}
	row("ours, audit log", r.Overlap.AuditOurs, true)
	row("peer, audit log", r.Overlap.AuditPeer, true)
	return out
}

// PrintTable writes the plain table. It returns the first write error.
func (r *Report) PrintTable(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.table(r.rows())
	ew.println()
	ew.table(r.overlapRows())
	impls := make([]string, 0, len(r.Resources))
	for impl := range r.Resources {
		impls = append(impls, impl)
	}
	sort.Strings(impls)
	for _, impl := range impls {
		res := r.Resources[impl]
		if res.GoroutineSource == "" {
			ew.printf("\nP5 %s: the collector's telemetry exposes no goroutine metric (and there is no pprof); OS threads from /proc/<pid>/status are reported instead.\n", impl)
		} else {
			ew.printf("\nP5 %s: goroutines from the telemetry metric %s.\n", impl, res.GoroutineSource)
		}
	}
	for _, e := range r.Errors {
		ew.println("ERROR:", e)
	}
	return ew.err
}

// Markdown writes the tables in Markdown (for docs/performance.md). It
// returns the first write error.
func (r *Report) Markdown(w io.Writer) error {
	ew := &errWriter{w: w}
	write := func(rows [][]string) {
		for i, row := range rows {
			ew.printf("| %s |\n", strings.Join(row, " | "))
			if i == 0 {
				sep := make([]string, len(row))
				for j := range sep {
					sep[j] = "---"
				}
				ew.printf("| %s |\n", strings.Join(sep, " | "))
			}
		}
	}
	write(r.rows())
	ew.println()
	write(r.overlapRows())
	return ew.err
}

// errWriter writes to w until a write fails; err is the first failure and
// every later write is skipped.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func (e *errWriter) println(args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintln(e.w, args...)
	}
}

// table writes rows of tab-separated cells as aligned columns.
func (e *errWriter) table(rows [][]string) {
	if e.err != nil {
		return
	}
	tw := tabwriter.NewWriter(e.w, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		if _, e.err = fmt.Fprintln(tw, strings.Join(row, "\t")); e.err != nil {
			return
		}
	}
	e.err = tw.Flush()
}
