// Package clientgo is the harness side of cmd/clientgo-candidate: a plain
// client-go (v0.34.3) leaderelection.LeaderElector candidate with a
// resourcelock.LeaseLock and ReleaseOnCancel, campaigning for the same Lease
// as the collectors, as a client-go based component (or an older release
// of a receiver built on client-go) would during a migration or a rolling
// upgrade. This package defines the program's log lines (once: the program
// writes them, the harness parses them), builds the program, runs it as a
// process and derives its active intervals from its log: from
// OnStartedLeading to the return of LeaderElector.Run (or the process's
// exit, if it was killed).
package clientgo

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// The program's log messages, one JSON object per line on stdout:
// {"ts": RFC 3339, "msg": ..., "identity": ..., "lease": "ns/name"}.
const (
	// MsgCampaigning: LeaderElector.Run is called (once per campaign).
	MsgCampaigning = "client-go candidate campaigning"
	// MsgStartedLeading: the OnStartedLeading callback runs; the candidate
	// is active from here (it logs this before it does any work).
	MsgStartedLeading = "client-go OnStartedLeading"
	// MsgRunReturned: LeaderElector.Run returned, after OnStoppedLeading
	// waited for the work started by OnStartedLeading to end. The end of
	// the active interval.
	MsgRunReturned = "client-go LeaderElector.Run returned"
	// MsgExiting: the program exits (after SIGTERM cancelled its context
	// and Run returned).
	MsgExiting = "client-go candidate exiting"
)

// The Kinds of its Events; timeline.ProcessStarted and
// timeline.ProcessExited are the harness's own, as for the collectors.
const (
	Campaigning    timeline.Kind = MsgCampaigning
	StartedLeading timeline.Kind = MsgStartedLeading
	RunReturned    timeline.Kind = MsgRunReturned
	Exiting        timeline.Kind = MsgExiting
)

var kinds = map[string]timeline.Kind{}

func init() {
	for _, k := range []timeline.Kind{Campaigning, StartedLeading, RunReturned, Exiting} {
		kinds[string(k)] = k
	}
}

// Logger writes the program's log lines; safe for concurrent use.
type Logger struct {
	mu       sync.Mutex
	w        io.Writer
	identity string
	lease    string
}

// NewLogger writes lines for a candidate with this identity on lease
// ("namespace/name") to w.
func NewLogger(w io.Writer, identity, lease string) *Logger {
	return &Logger{w: w, identity: identity, lease: lease}
}

// Log writes msg with the time, identity, lease and more fields.
func (l *Logger) Log(msg string, fields map[string]any) {
	m := map[string]any{"ts": time.Now().Format(time.RFC3339Nano), "msg": msg, "identity": l.identity, "lease": l.lease}
	for k, v := range fields {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(append(b, '\n'))
}

// ParseKind returns the Kind of one of the program's log lines; ok is
// false for any other line (client-go's klog lines on stderr, for one).
func ParseKind(line []byte) (timeline.Kind, timeline.LogLine, bool) {
	l, ok := timeline.ParseLogLine(line)
	if !ok {
		return "", l, false
	}
	k, ok := kinds[l.Msg]
	return k, l, ok
}
