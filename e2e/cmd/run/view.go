package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

var (
	started = time.Now()
	outMu   sync.Mutex
	out     io.Writer = os.Stdout // where say prints; guarded by outMu
)

// say prints a line prefixed with the time since the driver started.
func say(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	_, _ = fmt.Fprintf(out, "[%7.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

// newline prints an empty line.
func newline() {
	outMu.Lock()
	defer outMu.Unlock()
	_, _ = fmt.Fprintln(out)
}

// prefixWriter passes control-plane progress lines to say.
type prefixWriter struct{}

func (prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		say("%s", line)
	}
	return len(b), nil
}

// view prints what the fleet does.
type view struct {
	o           options
	t           *target
	fleet       *fleet.Fleet
	restart     chan string
	killedAt    time.Time
	killWaiting bool
	abnormal    bool // a replica exited with a non-zero code
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func newView(o options, t *target) *view {
	return &view{o: o, t: t, restart: make(chan string, 16)}
}

func (v *view) banner() {
	say("started %d collector replicas (logs and output under %s):", len(v.fleet.Replicas()), v.fleet.Dir())
	for _, r := range v.fleet.Replicas() {
		say("  %s  pid %-7d  log %s", r.Name, r.PID(), r.LogPath)
	}
	say("only the replica holding the Lease (%s/%s) runs the sub-receivers and exports data", v.o.namespace, cluster.LeaseName)
	say("status: metrics = metric data points exported, logs = Kubernetes Events exported as log records")
	say("try a failover: kill <pid of the LEADER>  (graceful: the Lease is released and a watching standby takes over within milliseconds)")
	say("             or kill -9 <pid>             (crash: a standby takes over when the Lease expires, ~lease_duration)")
	if stdinIsTerminal() {
		say("keys: k N = SIGTERM replica-N, K N = SIGKILL, r N = restart, s = status, q = quit (then Enter); Ctrl-C stops everything")
	} else {
		say("Ctrl-C stops everything")
	}
}

func (v *view) event(ev timeline.Event) {
	at := ""
	switch ev.Kind {
	case timeline.ProcessStarted:
		say("%s started (pid %d)", ev.Replica, ev.PID)
	case timeline.Campaigning:
		say("%s campaigning for lease %s as %q", ev.Replica, ev.Lease, ev.Identity)
	case timeline.Acquired:
		say("%s acquired the lease", ev.Replica)
	case timeline.GroupStarted:
		if !v.killedAt.IsZero() {
			at = fmt.Sprintf(" (%.1fs after the kill)", ev.At.Sub(v.killedAt).Seconds())
		}
		say(">>> %s is the LEADER: started %s%s", ev.Replica, strings.Join(ev.Receivers, ", "), at)
	case timeline.GroupStartFailed:
		say("%s failed to start its group: %s", ev.Replica, ev.Error)
	case timeline.Lost:
		say("%s LOST the lease: %s", ev.Replica, ev.Error)
	case timeline.GroupStopped, timeline.GroupStopErrors:
		say("<<< %s stopped its group (%s)", ev.Replica, ev.Reason)
	case timeline.Released:
		say("%s released the lease (%s)", ev.Replica, ev.Reason)
	case timeline.LeftToExpire, timeline.ReleaseFailed, timeline.NotReleased:
		say("%s: %s (%s)", ev.Replica, ev.Kind, ev.Reason)
	case timeline.LeaseUnreachable:
		say("%s %s: %s", ev.Replica, ev.Kind, ev.Error)
	case timeline.LeaseReachable:
		say("%s: %s", ev.Replica, ev.Kind)
	case timeline.ProcessExited:
		say("%s (pid %d) exited with code %d", ev.Replica, ev.PID, ev.ExitCode)
		if ev.ExitCode > 0 { // -1 is a signal; 2 is a Go panic
			v.abnormal = true
			if r := v.fleet.Replica(ev.Replica); r != nil {
				say("end of %s:\n%s", r.LogPath, lastLines(r.LogTail(8000), 25))
			}
		}
		if v.o.restartAfter > 0 {
			name := ev.Replica
			say("restarting %s in %s", name, v.o.restartAfter)
			time.AfterFunc(v.o.restartAfter, func() {
				select {
				case v.restart <- name:
				default:
				}
			})
		}
	}
}

// log shows the collectors' warnings and errors that are not events above.
func (v *view) log(replica string, l timeline.LogLine) {
	if l.Level != "warn" && l.Level != "error" && l.Level != "fatal" && l.Level != "panic" {
		return
	}
	if _, ok := timeline.ParseKind(l.Msg); ok {
		return
	}
	msg := l.Msg
	if e := l.String("error"); e != "" {
		msg += ": " + e
	}
	say("%s %s: %s", replica, strings.ToUpper(l.Level), msg)
}

func (v *view) status() {
	var parts []string
	for _, r := range v.fleet.Replicas() {
		c := r.Counts()
		state := "standby"
		switch {
		case !r.Running():
			state = fmt.Sprintf("EXITED(%d)", r.ExitCode())
		case r.Leading():
			state = "LEADER "
		case r.HoldsLease():
			state = "acquired"
		}
		pid := ""
		if p := r.PID(); p != 0 {
			pid = fmt.Sprintf(" pid=%d", p)
		}
		parts = append(parts, fmt.Sprintf("%s %-8s%s metrics=%d logs=%d", r.Name, state, pid, c.DataPoints, c.LogRecords))
	}
	line := strings.Join(parts, " | ")
	if v.t.stopEmitter != nil {
		line += fmt.Sprintf(" || demo Events created=%d", v.t.created.Load())
	}
	say("%s", line)
}

// summary prints the group spans and totals and checks that no two
// groups ran at once and that data came only from leaders.
func (v *view) summary() error {
	f := v.fleet
	events := f.Events()
	spans := timeline.GroupSpans(events)
	say("group spans (sub-receiver group running):")
	for _, t := range spans {
		end := "still running"
		if !t.End.IsZero() {
			end = fmt.Sprintf("%.1fs (%s)", t.End.Sub(started).Seconds(), strings.TrimSpace(string(t.EndedBy)+" "+t.Reason))
		}
		say("  %s pid %d: %.1fs -> %s", t.Replica, t.PID, t.Start.Sub(started).Seconds(), end)
	}
	var errs []error
	batches := 0
	for _, r := range f.Replicas() {
		c := r.Counts()
		batches += c.MetricBatches + c.LogBatches
		say("  %s exported %d metric data points (%d batches) and %d log records (%d batches)",
			r.Name, c.DataPoints, c.MetricBatches, c.LogRecords, c.LogBatches)
	}
	if batches == 0 && v.o.duration > 0 { // an interactive run may be stopped before the first export
		errs = append(errs, errors.New("no replica exported anything"))
	}
	if len(spans) == 0 {
		errs = append(errs, errors.New("no replica ever started the group"))
	}
	if err := timeline.CheckSingleLeader(events); err != nil {
		errs = append(errs, err)
	}
	if err := f.CheckDataOnlyFromLeaders(fleet.ExportSlack); err != nil {
		errs = append(errs, err)
	}
	if !v.killedAt.IsZero() {
		took := false
		for _, t := range spans {
			took = took || t.Start.After(v.killedAt)
		}
		if !took {
			errs = append(errs, errors.New("no replica took over after the leader was killed"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		say("CHECK FAILED: %v", err)
		return err
	}
	say("CHECK OK: at most one group ran at any time, and only leaders exported data")
	return nil
}

// command runs one stdin command; true means quit.
func (v *view) command(c string) bool {
	fields := strings.Fields(c)
	if len(fields) == 0 {
		return false
	}
	var r *fleet.Replica
	if len(fields) > 1 {
		if n, err := strconv.Atoi(fields[1]); err == nil {
			r = v.fleet.Replica(fmt.Sprintf("replica-%d", n))
		}
	}
	switch fields[0] {
	case "q":
		return true
	case "s":
		v.status()
	case "k", "K":
		if r == nil {
			say("usage: %s N (a replica number)", fields[0])
			return false
		}
		sig, name := syscall.SIGTERM, "TERM"
		if fields[0] == "K" {
			sig, name = syscall.SIGKILL, "KILL"
		}
		say("sending SIG%s to %s (pid %d)", name, r.Name, r.PID())
		if r.Leading() {
			v.killedAt = time.Now()
		}
		if err := r.Signal(sig); err != nil {
			say("%v", err)
		}
	case "r":
		if r == nil {
			say("usage: r N (a replica number)")
			return false
		}
		if err := r.Start(); err != nil {
			say("%v", err)
		}
	default:
		say("keys: k N = SIGTERM replica-N, K N = SIGKILL, r N = restart, s = status, q = quit")
	}
	return false
}

func stdinIsTerminal() bool {
	fi, err := os.Stdin.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// readCommands returns stdin's lines when stdin is a terminal, else nil.
func readCommands() <-chan string {
	if !stdinIsTerminal() {
		return nil
	}
	c := make(chan string)
	go func() {
		defer close(c)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			c <- sc.Text()
		}
	}()
	return c
}
