package leaderreceivercreator

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// status is one block's component status. The collector starts one instance
// of the block per pipeline, each with its own host, and the status goes to
// all of them.
//
// It never calls the collector's status API while holding a lock of ours:
// the collector takes events under its own lock and a FatalError on an
// unbuffered channel that nobody reads once it shuts down, so such a call
// may block for ever. Events are computed under mu and delivered, in order,
// by one goroutine at a time that holds no lock; a FatalError is sent once
// per process (processLeases.claimFatal), from a goroutine of its own, and
// nothing is delivered after it.
type status struct {
	process *processLeases

	mu            sync.Mutex
	closed        bool // the block was shut down: nothing more is reported
	fatal         bool // this block asked for a FatalError: nothing more is reported
	hosts         []component.Host
	apiErr        error            // the last failed attempt on the Lease, until one succeeds
	groupErr      error            // the last failed group start or stop, or member failure, until campaigning again works
	clearGroupErr bool             // the next successful attempt on the Lease clears groupErr
	members       map[string]error // RecoverableErrors the current term's members reported, by key
	reported      string           // what last was computed: "ok" or the error's text
	last          *componentstatus.Event
	version       int  // of last
	delivered     int  // the version last delivered
	delivering    bool // a delivery goroutine runs

	// watchMu guards watch. It is held while a change is logged, so that
	// the lines keep the order of the changes, and is not mu, so that a log
	// line that takes its time never delays a status event.
	watchMu sync.Mutex
	watch   int // watchUnknown, watchHealthy or watchBroken, as last logged
}

// Whether the Lease is watched, as last logged.
const (
	watchUnknown = iota
	watchHealthy
	watchBroken
)

func newStatus(p *processLeases) *status {
	return &status{process: p, members: map[string]error{}}
}

// addHost adds a pipeline instance's host and tells it the last status
// reported, as the collector's sharedcomponent does: reported during its
// Start, it takes the place of the StatusOK the collector reports after it.
//
// That report is one of the deliveries (deliver): sent beside a running
// delivery, an older event could arrive after a newer one and stay.
func (s *status) addHost(host component.Host) {
	s.mu.Lock()
	s.hosts = append(s.hosts, host)
	last := s.last
	if last == nil || s.closed || s.fatal || s.process.fatalSent() {
		s.mu.Unlock()
		return
	}
	if s.delivering {
		// The running delivery sends the latest event to every host, this
		// one included.
		s.version++
		s.mu.Unlock()
		return
	}
	s.delivering = true
	s.mu.Unlock()
	componentstatus.ReportStatus(host, last)
	go s.deliver() // what changed meanwhile, to every host
}

// close ends all status reporting.
func (s *status) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
}

// setAPIErr records the outcome of an attempt on the Lease (nil: it
// worked). It reports whether that changed from failing to working or back.
func (s *status) setAPIErr(err error) (changed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed = (err == nil) != (s.apiErr == nil)
	s.apiErr = err
	if err == nil && s.clearGroupErr {
		s.groupErr, s.clearGroupErr = nil, false
	}
	s.updateLocked()
	return changed
}

// setGroupErr records a failed group start or stop, or a member's failure;
// nil clears it.
func (s *status) setGroupErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groupErr, s.clearGroupErr = err, false
	s.updateLocked()
}

// standby makes the next successful attempt on the Lease clear the group's
// error: a healthy standby is OK again.
func (s *status) standby() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearGroupErr = true
}

// member records what a member of the current term reported: a
// RecoverableError until it reports OK again. Other events say nothing about
// the block.
func (s *status) member(key string, ev *componentstatus.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Status() {
	case componentstatus.StatusRecoverableError:
		s.members[key] = ev.Err()
	case componentstatus.StatusOK:
		delete(s.members, key)
	default:
		return
	}
	s.updateLocked()
}

// setWatch records whether the watch of the Lease is established (err nil)
// and, only when that differs from what was last logged, calls log with err
// (under watchMu).
func (s *status) setWatch(err error, log func(err error)) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	state := watchHealthy
	if err != nil {
		state = watchBroken
	}
	if state == s.watch {
		return
	}
	s.watch = state
	log(err)
}

// termEnded forgets what the members of the term reported.
func (s *status) termEnded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.members)
	s.updateLocked()
}

// updateLocked computes the status, StatusOK or a RecoverableError while the
// Lease cannot be reached, the group failed or a member reports one, and
// delivers it when it changed.
func (s *status) updateLocked() {
	errs := []error{s.apiErr, s.groupErr}
	for _, key := range slices.Sorted(maps.Keys(s.members)) {
		errs = append(errs, s.members[key])
	}
	err := errors.Join(errs...)
	key := "ok"
	if err != nil {
		key = err.Error()
	}
	if key == s.reported {
		return
	}
	first := s.reported == ""
	s.reported = key
	if first && err == nil {
		return // the collector already reports OK after Start
	}
	ev := componentstatus.NewEvent(componentstatus.StatusOK)
	if err != nil {
		ev = componentstatus.NewRecoverableErrorEvent(err)
	}
	s.last = ev
	s.version++
	if !s.delivering {
		s.delivering = true
		go s.deliver()
	}
}

// deliver sends the latest event to every host until none is pending. It
// holds no lock while it sends.
func (s *status) deliver() {
	for {
		s.mu.Lock()
		if s.closed || s.fatal || s.version == s.delivered || s.process.fatalSent() {
			s.delivering = false
			s.mu.Unlock()
			return
		}
		ev, version, hosts := s.last, s.version, slices.Clone(s.hosts)
		s.mu.Unlock()
		for _, h := range hosts {
			componentstatus.ReportStatus(h, ev)
		}
		s.mu.Lock()
		s.delivered = version
		s.mu.Unlock()
	}
}

// reportFatal reports a FatalError so that the collector exits, unless the
// block was shut down or this process already reported one. Nothing is
// reported after it.
func (s *status) reportFatal(err error) {
	s.mu.Lock()
	if s.closed || s.fatal || len(s.hosts) == 0 {
		s.mu.Unlock()
		return
	}
	s.fatal = true
	host := s.hosts[0]
	s.mu.Unlock()
	if s.process.claimFatal() {
		go componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
	}
}

// termMembers is what one term's members reported. A member keeps its host
// after its term (k8s_cluster reports its cache-sync FatalError from a
// goroutine of its own, possibly after its Shutdown), so every report is
// attributed to the term its member was started in: a report from a member
// of an ended term never ends a later one.
type termMembers struct {
	failed chan *memberFailure // the first failure; buffered, never blocks a member
	mu     sync.Mutex
	ended  bool
}

func newTermMembers() *termMembers {
	return &termMembers{failed: make(chan *memberFailure, 1)}
}

// end marks the term's members as of an ended term.
func (t *termMembers) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ended = true
}

func (t *termMembers) isEnded() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ended
}

// fail records a member's failure; only the first of a term is kept.
func (t *termMembers) fail(f *memberFailure) {
	select {
	case t.failed <- f:
	default:
	}
}

// memberFailure is a member's FatalError or PermanentError. It never reaches
// the collector as it is: it ends the term like a failed start.
type memberFailure struct {
	key    string
	status componentstatus.Status
	err    error
}

func (f *memberFailure) Error() string {
	kind := "FatalError"
	if f.status == componentstatus.StatusPermanentError {
		kind = "PermanentError"
	}
	return fmt.Sprintf("receivers::%s: reported a %s: %v", f.key, kind, f.err)
}

func (f *memberFailure) Unwrap() error { return f.err }

// memberReport handles a status report of a member of the term members
// belongs to. It is called on the member's goroutine and never blocks on the
// collector.
func (r *runner) memberReport(members *termMembers, key string, ev *componentstatus.Event) {
	switch ev.Status() {
	case componentstatus.StatusFatalError, componentstatus.StatusPermanentError:
		r.telemetry.memberFailed(key)
		if members.isEnded() {
			r.logger.Info(logmsg.MemberFailedLate, zap.String("receiver", key), zap.Error(ev.Err()))
			return
		}
		members.fail(&memberFailure{key: key, status: ev.Status(), err: ev.Err()})
	default:
		members.mu.Lock() // so that no report lands after the term's were forgotten
		defer members.mu.Unlock()
		if !members.ended {
			r.status.member(key, ev)
		}
	}
}

// onAttempt tracks access to the Lease for the component status. A conflict
// or a create race is ordinary contention between candidates, not an error.
func (r *runner) onAttempt(err error) {
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		err = nil
	}
	if !r.status.setAPIErr(err) {
		return
	}
	if err != nil {
		r.logger.Warn(logmsg.LeaseUnreachable, zap.Error(err))
	} else {
		r.logger.Info(logmsg.LeaseReachable)
	}
}

// onWatch logs when the watch of the Lease is established and when it
// breaks, only on a change: every term and campaign watches anew.
func (r *runner) onWatch(err error) {
	r.status.setWatch(err, func(err error) {
		if err != nil {
			r.logger.Warn(logmsg.WatchBroken, zap.Error(err))
		} else {
			r.logger.Info(logmsg.Watching)
		}
	})
}
