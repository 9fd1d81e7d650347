package timeline

import (
	"fmt"
	"strings"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// Kind is what an Event says happened.
type Kind string

// The stable log messages of leader_receiver_creator, defined once in the
// component (internal/logmsg), plus the lifecycle of the collector processes
// themselves.
const (
	Campaigning      Kind = logmsg.Campaigning
	Acquired         Kind = logmsg.Acquired
	GroupStarted     Kind = logmsg.GroupStarted
	GroupStartFailed Kind = logmsg.GroupStartFailed
	Lost             Kind = logmsg.Lost
	GroupStopped     Kind = logmsg.GroupStopped
	GroupStopErrors  Kind = logmsg.GroupStopErrors
	GroupNotStopped  Kind = logmsg.GroupNotStopped // the replica takes itself out; the process exits
	Exiting          Kind = logmsg.Exiting
	Released         Kind = logmsg.Released
	LeftToExpire     Kind = logmsg.LeftToExpire
	ReleaseFailed    Kind = logmsg.ReleaseFailed
	NotReleased      Kind = logmsg.NotReleased
	LeaseUnreachable Kind = logmsg.LeaseUnreachable // once per transition, with Error
	LeaseReachable   Kind = logmsg.LeaseReachable
	Watching         Kind = logmsg.Watching
	WatchBroken      Kind = logmsg.WatchBroken // once per transition, with Error

	ProcessStarted Kind = "process started" // by the harness
	ProcessExited  Kind = "process exited"  // by the harness, after the process was reaped
)

var logKinds = map[string]Kind{}

func init() {
	for _, k := range []Kind{Campaigning, Acquired, GroupStarted, GroupStartFailed, Lost, GroupStopped,
		GroupStopErrors, GroupNotStopped, Exiting, Released, LeftToExpire, ReleaseFailed, NotReleased,
		LeaseUnreachable, LeaseReachable, Watching, WatchBroken} {
		logKinds[string(k)] = k
	}
}

// ParseKind returns the Kind of a log message of leader_receiver_creator.
func ParseKind(msg string) (Kind, bool) {
	k, ok := logKinds[msg]
	return k, ok
}

// Event is a leader-election log line of a replica (or, with package
// clientgo's Kinds, of a client-go candidate), or the start or exit of its
// process. At is when the harness saw it, on the harness's monotonic clock,
// so events of different processes can be ordered.
type Event struct {
	Replica   string
	PID       int
	Kind      Kind
	At        time.Time
	Lease     string   // "namespace/name"
	Identity  string   // the Lease holder identity of this replica
	Receivers []string // sub-receivers of the group
	Reason    string   // for stops and releases
	Error     string   // for losses and failures
	ExitCode  int      // for ProcessExited (-1: killed by a signal)
	Line      LogLine
}

func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (pid %d) %s", e.Replica, e.PID, e.Kind)
	if len(e.Receivers) > 0 {
		fmt.Fprintf(&b, " %v", e.Receivers)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", e.Reason)
	}
	if e.Error != "" {
		fmt.Fprintf(&b, " error=%q", e.Error)
	}
	if e.Kind == ProcessExited {
		fmt.Fprintf(&b, " code=%d", e.ExitCode)
	}
	return b.String()
}

// EventFromLog returns the Event of a leader-election log line of
// leader_receiver_creator, seen at at in the log of process pid of replica.
func EventFromLog(replica string, pid int, at time.Time, l LogLine) (Event, bool) {
	k, ok := logKinds[l.Msg]
	if !ok {
		return Event{}, false
	}
	return Event{
		Replica:   replica,
		PID:       pid,
		Kind:      k,
		At:        at,
		Lease:     l.String("lease"),
		Identity:  l.String("identity"),
		Receivers: l.Strings("receivers"),
		Reason:    l.String("reason"),
		Error:     l.String("error"),
		Line:      l,
	}, true
}
