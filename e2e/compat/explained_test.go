package compat

import (
	"regexp"
	"slices"
	"time"
)

// explainedLine is a warn or error line a sub-receiver logs in the matrix
// that is expected, with why.
type explainedLine struct {
	receiver string         // sub_receiver
	msg      *regexp.Regexp // the message
	err      *regexp.Regexp // the error field; nil: any
	// atStop: only while the group stops (from stopWindow before its
	// "leader group stopped" line was read to 1s after).
	atStop bool
	why    string
}

const stopWindow = 5 * time.Second

// explained lists them (docs/compatibility.md quotes this list).
var explained = []explainedLine{
	{
		receiver: "prometheus", msg: regexp.MustCompile(`^Appending scrape report failed$`), atStop: true,
		why: "a scrape in flight when the receiver stops: its report cannot be appended any more (Prometheus' scrape loop, at shutdown)",
	},
	{
		receiver: "k8s_objects", msg: regexp.MustCompile(`^error in pulling object$`), err: regexp.MustCompile(`context canceled`), atStop: true,
		why: "a pull-mode List in flight when the receiver stops: Shutdown cancels its context",
	},
}

// explain returns why l is expected, or "" if it is not; stops are when the
// replica's group spans ended.
func explain(l logRecord, stops []time.Time) string {
	for _, x := range explained {
		if x.receiver != l.receiver || !x.msg.MatchString(l.msg) || (x.err != nil && !x.err.MatchString(l.err)) {
			continue
		}
		if x.atStop && !slices.ContainsFunc(stops, func(s time.Time) bool {
			return !l.at.Before(s.Add(-stopWindow)) && !l.at.After(s.Add(time.Second))
		}) {
			continue
		}
		return x.why
	}
	return ""
}
