package main

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"
)

// span is a stretch of consecutive evaluations, in seconds since the
// run's start: from the first to the last evaluation that saw it.
type span struct{ from, to float64 }

func (s span) String() string { return fmt.Sprintf("%.1f–%.1f", s.from, s.to) }

// alertSpans is one alert, in one state, with one label set, over the run.
type alertSpans struct {
	name, state, labels string
	evaluations         int
	spans               []span
}

type result struct {
	s       *steps
	at      time.Time
	alerts  []alertSpans
	maxSum  float64 // largest sum of is_leader of one Lease at an evaluation
	zero    []span  // evaluations at which it was 0
	over    []span  // evaluations at which it was above 1
	evalGap float64 // seconds
}

func (s *steps) result(h history) result {
	gap := s.o.interval.Seconds()
	res := result{s: s, at: time.Now(), evalGap: gap}
	t0 := float64(s.t0.UnixNano()) / 1e9
	for _, a := range h.alerts {
		labels := map[string]string{}
		for k, v := range a.labels {
			if k != "alertname" && k != "alertstate" && k != "severity" {
				labels[k] = v
			}
		}
		as := alertSpans{name: a.labels["alertname"], state: a.labels["alertstate"], labels: labelString(labels), evaluations: len(a.points)}
		as.spans = spansOf(a.points, t0, gap, func(float64) bool { return true })
		res.alerts = append(res.alerts, as)
	}
	for _, l := range h.leaders {
		for _, p := range l.points {
			res.maxSum = max(res.maxSum, p.v)
		}
		res.zero = append(res.zero, spansOf(l.points, t0, gap, func(v float64) bool { return v == 0 })...)
		res.over = append(res.over, spansOf(l.points, t0, gap, func(v float64) bool { return v > 1 })...)
	}
	return res
}

// spansOf groups the samples for which keep holds into spans of
// consecutive evaluations (no more than 1.5 intervals apart).
func spansOf(points []sample, t0, gap float64, keep func(float64) bool) []span {
	var out []span
	for _, p := range points {
		if !keep(p.v) {
			continue
		}
		t := p.t - t0
		if n := len(out); n > 0 && t-out[n-1].to <= 1.5*gap {
			out[n-1].to = t
			continue
		}
		out = append(out, span{t, t})
	}
	return out
}

// of returns the spans of an alert in a state.
func (r result) of(name, state string) []span {
	var out []span
	for _, a := range r.alerts {
		if a.name == name && a.state == state {
			out = append(out, a.spans...)
		}
	}
	slices.SortFunc(out, func(a, b span) int { return int((a.from - b.from) * 1000) })
	return out
}

// problems are what fails the run: NoLeader not firing while
// kube-apiserver was down, firing at another time, or still firing a
// minute after it was back; TwoLeaders or NoReplicas firing at all.
func (r result) problems() []string {
	var ps []string
	down, up := r.s.rel(r.s.down), r.s.rel(r.s.up)
	firing := r.of(noLeader, "firing")
	if len(firing) == 0 {
		ps = append(ps, noLeader+" never fired, though kube-apiserver was down for "+r.s.o.outage.String())
	}
	for _, f := range firing {
		if f.from < down || f.from > up {
			ps = append(ps, fmt.Sprintf("%s fired at %.1fs, outside the outage (%.1fs–%.1fs)", noLeader, f.from, down, up))
		}
		if f.to > up+60 {
			ps = append(ps, fmt.Sprintf("%s still fired at %.1fs, more than a minute after kube-apiserver was back (%.1fs)", noLeader, f.to, up))
		}
	}
	for _, name := range []string{twoLeaders, noReplicas} {
		if f := r.of(name, "firing"); len(f) > 0 {
			ps = append(ps, fmt.Sprintf("%s fired: %v", name, f))
		}
	}
	return ps
}

func (r result) markdown() string {
	s := r.s
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	down, up := s.rel(s.down), s.rel(s.up)
	p("\n### Alert rules against a real control plane, %s\n\n", r.at.UTC().Format("2006-01-02 15:04 UTC"))
	p("`make alerts-run`: three replicas (distribution/config.yaml, timings 15 s / 10 s / 2 s), %s\n", s.prom.version)
	p("scraping their telemetry and evaluating deploy/alerts/ every %s; %d graceful handovers, a crash\n", s.o.interval, s.o.handovers)
	p("failover, kube-apiserver down for %s. Times in seconds since the replicas started.\n\n", s.o.outage)

	p("| time | what |\n| --- | --- |\n")
	p("| %.1f | Prometheus sees three replicas, one leading |\n", s.rel(s.steady))
	for _, h := range s.handovers {
		what := "graceful handover"
		if h.signal == syscall.SIGKILL {
			what = "crash failover"
		}
		p("| %.1f | %s: %s to %s, %s leads %.3f s later |\n", s.rel(h.at), what, signalName(h.signal), h.from, h.to, h.startedAt.Sub(h.at).Seconds())
	}
	p("| %.1f | kube-apiserver stopped |\n", down)
	if pend := r.of(noLeader, "pending"); len(pend) > 0 {
		for _, x := range pend {
			if x.from >= down && x.from <= up {
				p("| %.1f | `%s` pending (%.1f s after the stop) |\n", x.from, noLeader, x.from-down)
				break
			}
		}
	}
	for _, f := range r.of(noLeader, "firing") {
		p("| %.1f | `%s` firing (%.1f s after the stop) |\n", f.from, noLeader, f.from-down)
	}
	p("| %.1f | kube-apiserver started again (ready %.1f s later) |\n", up, s.ready.Sub(s.up).Seconds())
	p("| %.1f | a group runs again (%.1f s after the start) |\n", s.rel(s.leadsAt), s.leadsAt.Sub(s.up).Seconds())
	for _, f := range r.of(noLeader, "firing") {
		p("| %.1f | `%s` resolved: the first evaluation without it (%.1f s after the start) |\n", f.to+r.evalGap, noLeader, f.to+r.evalGap-up)
	}
	p("\nEvery alert that was pending or firing during the run (ALERTS, one sample per evaluation):\n\n")
	p("| alert | state | labels | evaluations | from–to (s) |\n| --- | --- | --- | --- | --- |\n")
	for _, a := range r.alerts {
		spans := make([]string, len(a.spans))
		for i, x := range a.spans {
			spans[i] = x.String()
			if x.from == x.to {
				spans[i] = fmt.Sprintf("%.1f", x.from)
			}
		}
		p("| `%s` | %s | %s | %d | %s |\n", a.name, a.state, a.labels, a.evaluations, strings.Join(spans, ", "))
	}
	if len(r.of(twoLeaders, "pending")) == 0 && len(r.of(twoLeaders, "firing")) == 0 {
		p("| `%s` | — | | 0 | never pending, never firing |\n", twoLeaders)
	}
	p("\n`sum by (lease) (otelcol_leader_election_is_leader)` at every evaluation: at most %.0f; above 1 %s;\n", r.maxSum, spanList(r.over))
	p("0 %s.\n", spanList(r.zero))
	return b.String()
}

func spanList(spans []span) string {
	if len(spans) == 0 {
		return "never"
	}
	parts := make([]string, len(spans))
	for i, x := range spans {
		parts[i] = x.String()
		if x.from == x.to {
			parts[i] = fmt.Sprintf("%.1f", x.from)
		}
	}
	return "at " + strings.Join(parts, ", ") + " s"
}
