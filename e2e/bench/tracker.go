package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// LogDialect says how a distribution's log tells that its group of
// receivers runs (not to be confused with timeline.Kind, the kind of one
// parsed log event).
type LogDialect string

const (
	// Ours is otelcol-leader: leader_receiver_creator logs "leader group
	// started" / "leader group stopped" (timeline.GroupStarted, ...), one
	// mark for the whole group.
	Ours LogDialect = "ours"
	// Peer is otelcol-peer: contrib's k8s_leader_elector extension starts
	// and stops k8s_events and k8s_cluster through callbacks, and each
	// receiver logs its own start and stop. The group is up once both have
	// started.
	Peer LogDialect = "peer"
)

// The peer's log messages (contrib v0.145.0 and v0.152.0 alike).
const (
	peerElectorStart = "Starting k8s leader elector with UUID"                      // field UUID: the Lease holderIdentity
	peerEventsStart  = "Events Receiver started as leader"                          // k8s_events, on becoming leader
	peerEventsStop   = "no longer leader, stopping"                                 // k8s_events, on losing the lease or at shutdown
	peerClusterStart = "Starting shared informers and wait for initial cache sync." // k8s_cluster, on becoming leader
	peerClusterStop  = "Stopping the receiver"                                      // k8s_cluster, on losing the lease or at shutdown
)

// GroupReceiver is the Receiver of Ours' spans: the whole group.
const GroupReceiver = "group"

// ReceiverSpan is a span during which a receiver (Peer: k8s_events or
// k8s_cluster; Ours: the whole group) ran in one replica's process, on the
// harness's clock. End is zero while it runs.
type ReceiverSpan struct {
	Replica  string    `json:"replica"`
	Run      int       `json:"run"` // the replica's process number, from 1
	Receiver string    `json:"receiver"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"`
}

// GroupUp is the moment a replica's whole group was up: Ours "leader group
// started"; Peer the later of its two receivers' start-as-leader lines.
type GroupUp struct {
	Replica string
	Run     int
	At      time.Time
}

type replicaState struct {
	run      int
	open     map[string]int // receiver -> index in Tracker.spans
	groupUp  bool
	identity string
}

// Tracker follows the log of every replica of a fleet (through
// fleet.Options.OnEvent and OnLog) and records when each one's group and
// receivers ran. Safe for concurrent use.
type Tracker struct {
	dialect   LogDialect
	receivers []string // what makes up the group

	mu       sync.Mutex
	changed  chan struct{}
	replicas map[string]*replicaState
	spans    []ReceiverSpan
	ups      []GroupUp
	notes    []string // anomalies worth reporting
}

// NewTracker returns a Tracker for a distribution whose log speaks d.
func NewTracker(d LogDialect) *Tracker {
	t := &Tracker{dialect: d, changed: make(chan struct{}), replicas: map[string]*replicaState{}}
	if d == Peer {
		t.receivers = []string{"k8s_events", "k8s_cluster"}
	} else {
		t.receivers = []string{GroupReceiver}
	}
	return t
}

// OnEvent is for fleet.Options.OnEvent.
func (t *Tracker) OnEvent(ev timeline.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.state(ev.Replica)
	switch ev.Kind {
	case timeline.ProcessExited:
		// All lines of the process were delivered before this event:
		// whatever still runs stopped now.
		for rc := range st.open {
			t.closeLocked(st, rc, ev.At)
		}
		st.groupUp = false
		st.run++
		st.identity = ""
	case timeline.GroupStarted:
		if t.dialect == Ours {
			if ev.Identity != "" {
				st.identity = ev.Identity
			}
			t.openLocked(ev.Replica, st, GroupReceiver, ev.At)
		}
	case timeline.GroupStopped, timeline.GroupStopErrors:
		if t.dialect == Ours {
			t.closeLocked(st, GroupReceiver, ev.At)
		}
	}
	t.notifyLocked()
}

// OnLog is for fleet.Options.OnLog (only needed for Peer).
func (t *Tracker) OnLog(replica string, l timeline.LogLine) {
	if t.dialect != Peer {
		return
	}
	at := time.Now() // as fleet stamps its events: when the harness read the line
	comp := l.String("otelcol.component.id")
	is := func(id string) bool { return comp == "" || comp == id }
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.state(replica)
	switch {
	case l.Msg == peerElectorStart:
		st.identity = l.String("UUID")
	case l.Msg == peerEventsStart && is("k8s_events"):
		t.openLocked(replica, st, "k8s_events", at)
	case l.Msg == peerClusterStart && is("k8s_cluster"):
		t.openLocked(replica, st, "k8s_cluster", at)
	case l.Msg == peerEventsStop && is("k8s_events"):
		t.closeLocked(st, "k8s_events", at) // a standby's shutdown line closes nothing
	case l.Msg == peerClusterStop && is("k8s_cluster"):
		t.closeLocked(st, "k8s_cluster", at)
	default:
		return
	}
	t.notifyLocked()
}

func (t *Tracker) state(replica string) *replicaState {
	st := t.replicas[replica]
	if st == nil {
		st = &replicaState{run: 1, open: map[string]int{}}
		t.replicas[replica] = st
	}
	return st
}

func (t *Tracker) openLocked(replica string, st *replicaState, receiver string, at time.Time) {
	if _, ok := st.open[receiver]; ok {
		// Started again without a stop in between (e.g. the peer's
		// k8s_cluster re-started while it still ran): keep the first start.
		t.notes = append(t.notes, fmt.Sprintf("%s: %s started again while running", replica, receiver))
	} else {
		st.open[receiver] = len(t.spans)
		t.spans = append(t.spans, ReceiverSpan{Replica: replica, Run: st.run, Receiver: receiver, Start: at})
	}
	if st.groupUp {
		return
	}
	for _, rc := range t.receivers {
		if _, ok := st.open[rc]; !ok {
			return
		}
	}
	st.groupUp = true
	t.ups = append(t.ups, GroupUp{Replica: replica, Run: st.run, At: at})
}

func (t *Tracker) closeLocked(st *replicaState, receiver string, at time.Time) {
	i, ok := st.open[receiver]
	if !ok {
		return // stop without a start in this process: a standby shutting down
	}
	t.spans[i].End = at
	delete(st.open, receiver)
	st.groupUp = false
}

func (t *Tracker) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// Leaders returns the replicas whose whole group runs now, sorted.
func (t *Tracker) Leaders() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.leadersLocked()
}

func (t *Tracker) leadersLocked() []string {
	var out []string
	for name, st := range t.replicas {
		if st.groupUp {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Identity is the Lease identity the replica's current process logged.
func (t *Tracker) Identity(replica string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state(replica).identity
}

// Spans returns every receiver span recorded so far.
func (t *Tracker) Spans() []ReceiverSpan {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]ReceiverSpan(nil), t.spans...)
}

// Notes returns the anomalies recorded so far.
func (t *Tracker) Notes() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.notes...)
}

// wait calls cond under the lock on every change until it returns true.
func (t *Tracker) wait(ctx context.Context, cond func() bool) error {
	for {
		t.mu.Lock()
		ok := cond()
		changed := t.changed
		t.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// WaitSingleLeader waits until exactly one replica's group runs and returns it.
func (t *Tracker) WaitSingleLeader(ctx context.Context) (string, error) {
	var leader string
	var last []string
	err := t.wait(ctx, func() bool {
		last = t.leadersLocked()
		if len(last) == 1 {
			leader = last[0]
			return true
		}
		return false
	})
	if err != nil {
		return "", fmt.Errorf("waiting for a single leader (groups running on %v): %w", last, err)
	}
	return leader, nil
}

// WaitGroupUp waits for the first group start, at or after after, of a
// replica other than exclude.
func (t *Tracker) WaitGroupUp(ctx context.Context, after time.Time, exclude string) (GroupUp, error) {
	var up GroupUp
	err := t.wait(ctx, func() bool {
		for _, u := range t.ups {
			if u.Replica != exclude && !u.At.Before(after) {
				up = u
				return true
			}
		}
		return false
	})
	return up, err
}
