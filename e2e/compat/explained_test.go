package compat

import "regexp"

// explainedLine is a warn or error line a sub-receiver logs in the matrix
// that is expected, with why.
type explainedLine struct {
	receiver string         // sub_receiver
	msg      *regexp.Regexp // the message
	err      *regexp.Regexp // the error field; nil: any
	why      string
}

// explained lists them (docs/compatibility.md quotes this list).
var explained = []explainedLine{}

// explain returns why l is expected, or "" if it is not.
func explain(l logRecord) string {
	for _, x := range explained {
		if x.receiver == l.receiver && x.msg.MatchString(l.msg) && (x.err == nil || x.err.MatchString(l.err)) {
			return x.why
		}
	}
	return ""
}
