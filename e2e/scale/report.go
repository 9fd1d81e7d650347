package scale

import (
	"fmt"
	"strings"
	"time"
)

// Report is the Markdown of the many-blocks measurements, one column per
// block count, then the marginal cost of a block between the smallest and
// the largest count.
func Report(rs []Result) string {
	var b strings.Builder
	if len(rs) == 0 {
		return ""
	}
	fmt.Fprintf(&b, "\n| figure |")
	for _, r := range rs {
		fmt.Fprintf(&b, " %d blocks |", r.Blocks)
	}
	b.WriteString("\n| --- |" + strings.Repeat(" --- |", len(rs)) + "\n")
	row := func(name string, f func(Result) string) {
		fmt.Fprintf(&b, "| %s |", name)
		for _, r := range rs {
			fmt.Fprintf(&b, " %s |", f(r))
		}
		b.WriteString("\n")
	}
	secs := func(ds []time.Duration) string {
		if len(ds) == 0 {
			return "–"
		}
		xs := make([]float64, len(ds))
		for i, d := range ds {
			xs[i] = d.Seconds()
		}
		return fmt.Sprintf("%.3f / %.3f / %.3f s (n=%d)", Percentile(xs, 50), Percentile(xs, 95), Percentile(xs, 100), len(xs))
	}
	startups := func(cold bool, all bool) func(Result) string {
		return func(r Result) string {
			var ds []time.Duration
			for _, s := range r.Startups {
				if s.Cold == cold {
					if all {
						ds = append(ds, s.All)
					} else {
						ds = append(ds, s.First)
					}
				}
			}
			return secs(ds)
		}
	}
	handovers := func(f func(Handover) []time.Duration) func(Result) string {
		return func(r Result) string {
			var ds []time.Duration
			for _, h := range r.Handovers {
				ds = append(ds, f(h)...)
			}
			return secs(ds)
		}
	}
	b.WriteString("| (durations: median / p95 / max) |" + strings.Repeat(" |", len(rs)) + "\n")
	row("fresh start, no Lease yet: all groups run", startups(true, true))
	row("fresh start, Leases released: first group runs", startups(false, false))
	row("fresh start, Leases released: all groups run", startups(false, true))
	row("SIGTERM of the leader: all groups run elsewhere", handovers(func(h Handover) []time.Duration { return []time.Duration{h.AllStarted} }))
	row("SIGTERM: the first group runs elsewhere", handovers(func(h Handover) []time.Duration { return []time.Duration{h.FirstStarted} }))
	row("SIGTERM: the old leader's last group stopped", handovers(func(h Handover) []time.Duration { return []time.Duration{h.LastStopped} }))
	row("SIGTERM: the old leader's last Lease released", handovers(func(h Handover) []time.Duration { return []time.Duration{h.LastReleased} }))
	row("SIGTERM: the old leader's process exited", handovers(func(h Handover) []time.Duration { return []time.Duration{h.Exited} }))
	row("one block's own handover: its release to its next start (all blocks)", handovers(func(h Handover) []time.Duration { return h.Gaps }))
	usage := func(role string, f func(Usage) float64, format string) func(Result) string {
		return func(r Result) string {
			if r.Steady == nil {
				return "–"
			}
			var xs []float64
			for _, u := range r.Steady.Usage {
				if u.Role == role {
					xs = append(xs, f(u))
				}
			}
			if len(xs) == 0 {
				return "–"
			}
			return fmt.Sprintf(format, Percentile(xs, 50))
		}
	}
	row("CPU per block per retry_period, leader", usage("leader", func(u Usage) float64 { return u.CPUPerBlockRetry }, "%.3f ms"))
	row("CPU per block per retry_period, standby (median of 2)", usage("standby", func(u Usage) float64 { return u.CPUPerBlockRetry }, "%.3f ms"))
	row("CPU, leader (% of a core)", usage("leader", func(u Usage) float64 { return u.CPUPercent }, "%.2f %%"))
	row("CPU, standby (% of a core, median of 2)", usage("standby", func(u Usage) float64 { return u.CPUPercent }, "%.2f %%"))
	row("RSS, leader (median of 6 samples)", usage("leader", func(u Usage) float64 { return u.RSSMiB }, "%.1f MiB"))
	row("RSS, standby (median of 2 replicas' medians)", usage("standby", func(u Usage) float64 { return u.RSSMiB }, "%.1f MiB"))
	rate := func(f func(Rates) float64) func(Result) string {
		return func(r Result) string {
			if r.Steady == nil {
				return "–"
			}
			return fmt.Sprintf("%.1f /s", f(r.Steady.Rates))
		}
	}
	row("API requests, all replicas: Lease writes", rate(func(x Rates) float64 { return x.LeaseWrites }))
	row("API requests: Lease reads", rate(func(x Rates) float64 { return x.LeaseReads }))
	row("API requests: Lease watches opened", rate(func(x Rates) float64 { return x.LeaseWatches }))
	row("API requests: the groups' checks", rate(func(x Rates) float64 { return x.Group }))
	row("Lease watches open", func(r Result) string {
		if r.Steady == nil {
			return "–"
		}
		return fmt.Sprintf("%.1f", r.Steady.Rates.OpenWatches)
	})
	row("overlap from the logs (Leases with two groups at once)", func(r Result) string { return fmt.Sprint(len(r.LogOverlaps)) })
	row("overlap from the audit log (counted, all blocks)", func(r Result) string {
		closest := "none"
		if r.Outside.ClosestBlock != "" {
			closest = fmt.Sprintf("%d ms", r.Outside.Closest.Milliseconds())
		}
		return fmt.Sprintf("%d (%d requests of %d blocks; %d closing tails within 250 ms; closest approach of two replicas for one block %s)",
			r.Outside.Counted(), r.Outside.Requests, r.Outside.Blocks, r.Outside.Tails, closest)
	})
	row("group spans without a trace in the audit log", func(r Result) string { return fmt.Sprint(len(r.Outside.Untraced)) })

	lo, hi := rs[0], rs[len(rs)-1]
	if lo.Steady != nil && hi.Steady != nil && hi.Blocks > lo.Blocks {
		d := float64(hi.Blocks - lo.Blocks)
		for _, role := range []string{"leader", "standby"} {
			rssLo, rssHi := median(lo.Steady, role, func(u Usage) float64 { return u.RSSMiB }), median(hi.Steady, role, func(u Usage) float64 { return u.RSSMiB })
			cpuLo, cpuHi := median(lo.Steady, role, func(u Usage) float64 { return float64(u.CPU) }), median(hi.Steady, role, func(u Usage) float64 { return float64(u.CPU) })
			retries := hi.Steady.Window.Seconds() / RetryPeriod.Seconds()
			fmt.Fprintf(&b, "\nMarginal, %s, %d → %d blocks: RSS %.3f MiB per extra block; CPU %.3f ms per extra block per retry_period.\n",
				role, lo.Blocks, hi.Blocks, (rssHi-rssLo)/d, (cpuHi-cpuLo)/float64(time.Millisecond)/d/retries)
		}
	}
	return b.String()
}

func median(s *Steady, role string, f func(Usage) float64) float64 {
	var xs []float64
	for _, u := range s.Usage {
		if u.Role == role {
			xs = append(xs, f(u))
		}
	}
	return Percentile(xs, 50)
}

// StandbyReport is the Markdown of the standby-cost comparison.
func StandbyReport(r StandbyResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nRead %.0f s after start, %d runs (pairs started together), auth_type %s, %s:\n\n", r.After, len(r.Baseline), r.Auth, r.Began.UTC().Format("2006-01-02 15:04 UTC"))
	b.WriteString("| process | RSS median | min | max | of it anonymous | of it file (the binary) | Go runtime from the OS | Go heap | threads |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	stats := func(name string, rds []Reading) (float64, float64) {
		var rss, anon, file, sys, heap, th []float64
		for _, x := range rds {
			rss, heap, th = append(rss, x.RSSMiB), append(heap, x.HeapMiB), append(th, float64(x.Threads))
			anon, file, sys = append(anon, x.AnonMiB), append(file, x.FileMiB), append(sys, x.SysMiB)
		}
		fmt.Fprintf(&b, "| %s | %.1f MiB | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f |\n", name, Percentile(rss, 50), Percentile(rss, 0.0001), Percentile(rss, 100),
			Percentile(anon, 50), Percentile(file, 50), Percentile(sys, 50), Percentile(heap, 50), Percentile(th, 50))
		return Percentile(rss, 50), Percentile(heap, 50)
	}
	rb, hb := stats("without our block (receiver_creator, no observers)", r.Baseline)
	rs, hs := stats("standby of distribution/config.yaml's block", r.Standby)
	var diffs []float64
	for i := range min(len(r.Baseline), len(r.Standby)) {
		diffs = append(diffs, r.Standby[i].RSSMiB-r.Baseline[i].RSSMiB)
	}
	fmt.Fprintf(&b, "\nA standby's own cost: %.1f MiB RSS (difference of the medians; median of the paired differences %.1f MiB), %.1f MiB Go heap.\n",
		rs-rb, Percentile(diffs, 50), hs-hb)
	fmt.Fprintf(&b, "(medians per column; in MiB but the threads)\n")
	return b.String()
}
