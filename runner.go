package leaderreceivercreator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/leaderreceivercreator/leaderreceivercreator/elector"
	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
	"github.com/leaderreceivercreator/leaderreceivercreator/internal/metadata"
)

// exitCode is the process's exit code when a group is still running at the
// term's deadline (EX_SOFTWARE).
const exitCode = 70

// maxBackoff caps the pause after failed group starts.
const maxBackoff = time.Minute

// osExit ends the process; tests that run real collectors record it instead.
var osExit = os.Exit

var errShutDown = errors.New("leader_receiver_creator was shut down before it started")

// runner is the component: it campaigns for the Lease in the background and
// runs the group while it holds it. One runner serves all the pipelines its
// configuration is in.
//
// Its one promise is that the group never runs on two replicas at once. Every
// path that holds the Lease works against the term's deadline (see
// elector.Term.Deadline): a group start is bounded by start_timeout and
// aborted when the term ends, a group is stopped by that instant, and a
// replica whose group does not stop by then never leads again, reports a
// FatalError so that the collector exits, and exits by itself at the
// deadline if it is still there.
type runner struct {
	cfg        *Config
	set        receiver.Settings
	logger     *zap.Logger
	identity   string
	consumers  consumers
	telemetry  *metadata.TelemetryBuilder
	onShutdown func() // forgets this runner in the factory's map
	process    *processLeases
	status     *status
	exit       func(code int) // os.Exit; tests record it

	startOnce sync.Once
	startErr  error
	stopOnce  sync.Once
	stopErr   error
	cancel    context.CancelFunc
	done      chan struct{} // closed when the campaign loop returned; nil if it never ran
	// shutdownCtx is the context Shutdown was called with; written before
	// cancel, read by the loop after it sees the cancellation.
	shutdownCtx context.Context
	// notStopped is set by the loop, before it returns, when the group did
	// not stop by the deadline on shutdown; Shutdown returns it.
	notStopped error

	host  component.Host // the first pipeline instance's, for the sub-receivers
	lease string         // namespace/name
	attrs metric.MeasurementOption

	mu         sync.Mutex // guards what follows
	closed     bool       // Shutdown has returned: no metric or renewal after that
	term       *elector.Term
	watchState int // watchUnknown, watchHealthy or watchBroken, as last logged
}

func newRunner(cfg *Config, set receiver.Settings, identity string) (*runner, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	r := &runner{
		cfg: cfg, set: set, logger: set.Logger, identity: identity,
		telemetry: tb, onShutdown: func() {}, exit: osExit,
	}
	r.setProcess(thisProcess)
	return r, nil
}

// setProcess places the runner in a process (tests simulate several).
func (r *runner) setProcess(p *processLeases) {
	r.process, r.status = p, newStatus(p)
}

// Start is called once for every pipeline instance of this block, each time
// with that instance's host: status is reported to all of them. The first
// call resolves and validates the group against the host's factories, so a
// bad sub-receiver configuration fails every replica here, then campaigns in
// the background and returns.
func (r *runner) Start(_ context.Context, host component.Host) error {
	r.status.addHost(host)
	r.startOnce.Do(func() { r.startErr = r.start(host) })
	return r.startErr
}

func (r *runner) start(host component.Host) error {
	g, err := resolveGroup(r.cfg, host, r.set, r.consumers, r.process)
	if err != nil {
		return err
	}
	le := r.cfg.LeaderElection
	ns, err := le.leaseNamespace()
	if err != nil {
		return fmt.Errorf("leader_election.lease_namespace: %w", err)
	}
	lease := ns + "/" + le.LeaseName
	kube, err := newKubeClient(r.cfg)
	if err != nil {
		return err
	}
	slot := r.process.slot(slotKey(kube.cluster, lease))
	if err := slot.hungErr(); err != nil {
		return err
	}
	el, err := elector.New(elector.Config{
		Client:        kube.CoordinationV1(),
		Namespace:     ns,
		Name:          le.LeaseName,
		Identity:      r.identity,
		LeaseDuration: le.LeaseDuration,
		RenewDeadline: le.RenewDeadline,
		RetryPeriod:   le.RetryPeriod,
		OnAttempt:     r.onAttempt,
		OnWatch:       r.onWatch,
	})
	if err != nil {
		return fmt.Errorf("leader_election: %w", err)
	}
	r.host, r.lease = host, lease
	r.attrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("lease", r.lease)))
	r.logger = r.logger.With(zap.String("lease", r.lease), zap.String("identity", r.identity))
	r.setLeader(false)

	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	r.logger.Info(logmsg.Campaigning, zap.Strings("receivers", g.keys()))
	go func() {
		defer close(r.done)
		r.loop(ctx, el, g, slot)
	}()
	return nil
}

// Shutdown stops the group, then releases the Lease (if configured), then
// returns. It returns within ctx whatever the group does: if the group is not
// down by then, it stops renewing the Lease (which then expires) and leaves
// the group to stop, by the term's deadline, in the background. Once it has
// returned, this process no longer renews the Lease and no status or metric
// is recorded. Safe without Start and more than once.
func (r *runner) Shutdown(ctx context.Context) error {
	r.stopOnce.Do(func() { r.stopErr = r.shutdown(ctx) })
	return r.stopErr
}

func (r *runner) shutdown(ctx context.Context) error {
	defer r.onShutdown()
	defer r.telemetry.Shutdown()
	r.startOnce.Do(func() { r.startErr = errShutDown }) // a later Start fails
	if r.done == nil {
		r.close()
		return nil
	}
	r.shutdownCtx = ctx
	r.cancel()
	select {
	case <-r.done:
		r.close()
		return r.notStopped
	case <-ctx.Done():
		if term := r.close(); term != nil {
			term.Abandon()
		}
		return fmt.Errorf("leader_receiver_creator did not finish shutting down; the lease is left to expire: %w", ctx.Err())
	}
}

// close ends all output (status, metrics, renewals) and returns the term the
// loop holds, if any, for the caller to abandon.
func (r *runner) close() *elector.Term {
	r.status.close()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.term
}

// setTerm records the term the loop holds, so that a Shutdown that gives up
// waiting can stop its renewals. It reports false, and the loop must abandon
// the term, when Shutdown has already returned.
func (r *runner) setTerm(t *elector.Term) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed && t != nil {
		return false
	}
	r.term = t
	return true
}

// outcome is how a term ended, for the loop.
type outcome int

const (
	campaignAgain outcome = iota // the Lease was lost and the group stopped
	backOff                      // the group failed to start or a member failed; the Lease was given back
	stopLeading                  // shut down, or the group did not stop: never lead again
)

// loop campaigns, leads, and campaigns again after every loss until ctx is
// cancelled by Shutdown or a group fails to stop.
func (r *runner) loop(ctx context.Context, el *elector.Elector, g *group, slot *leaseSlot) {
	// At most one term per Lease in this process, whatever the identity: a
	// runner created by a collector reload campaigns only once its
	// predecessor's term is over (its group stopped, its Lease released or
	// abandoned), and never after a group of that Lease failed to stop here.
	failures := 0
	for {
		select {
		case <-slot.free:
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil { // both were ready: shutting down, the slot unused
			slot.free <- struct{}{}
			return
		}
		out := r.serve(ctx, el, g, slot)
		slot.free <- struct{}{}
		switch out {
		case stopLeading:
			return
		case campaignAgain:
			failures = 0
		case backOff:
			failures++
			wait := backoff(r.cfg.LeaderElection.RetryPeriod, failures)
			r.logger.Info(logmsg.BackingOff, zap.Duration("backoff", wait))
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		r.status.standby() // a healthy standby is OK again
	}
}

// serve campaigns, then leads for one term; the caller holds the slot.
func (r *runner) serve(ctx context.Context, el *elector.Elector, g *group, slot *leaseSlot) outcome {
	if err := slot.hungErr(); err != nil {
		r.logger.Error(logmsg.GroupNotStopped, zap.Error(err))
		r.status.reportFatal(err)
		return stopLeading
	}
	term, err := el.Campaign(ctx)
	if err != nil {
		return stopLeading // shutting down; never held the Lease in this round
	}
	if !r.setTerm(term) {
		term.Abandon()
		return stopLeading
	}
	defer r.setTerm(nil)
	r.emit(func() { r.telemetry.LeaderElectionAcquired.Add(context.Background(), 1, r.attrs) })
	r.logger.Info(logmsg.Acquired)
	if ctx.Err() != nil {
		r.endTerm(term, logmsg.ReasonShutdown)
		return stopLeading
	}
	return r.lead(ctx, term, g, slot)
}

// ending is why a term's group is stopped.
type ending struct {
	kind   endKind
	reason string // for the log lines: logmsg.Reason...
	err    error  // endStartFailed, endMemberFailed: why
}

type endKind int

const (
	endLost         endKind = iota // the term ended by itself
	endShutdown                    // the block is shut down
	endStartFailed                 // the start failed or timed out: give the Lease back
	endMemberFailed                // a member of the started group failed: give the Lease back
)

// lead runs the group for one term and stops it by the term's deadline. The
// group starts in the background while lead watches the term, the start's
// bound, the members' reports and Shutdown: whichever ends first, the members
// already started are stopped.
func (r *runner) lead(ctx context.Context, term *elector.Term, g *group, slot *leaseSlot) outcome {
	won := time.Now()
	members := newTermMembers()
	rg := g.start(r.host, func(key string, ev *componentstatus.Event) { r.memberReport(members, key, ev) }, r.droppedAfterStop)
	stopping := make(chan time.Time, 1)
	go r.backstop(term, rg, stopping)

	end := r.watchTerm(ctx, term, g, rg, members, won)

	// 1. The deadline as it is now: on a loss it no longer moves; otherwise
	// the term keeps renewing meanwhile, which only keeps others away
	// longer. Never later: a stop that hangs is not rewarded. The backstop
	// ends the process at that instant if the group is still running.
	deadline := term.Deadline()
	stopping <- deadline
	// 2. Stop the members, giving them all but the exit budget; if they are
	// not down by then, the budget is the collector's to exit in.
	stopCtx, cancel := context.WithDeadline(context.Background(), deadline.Add(-r.exitBudget()))
	stopErr := rg.stop(stopCtx)
	cancel()
	members.end()
	r.status.termEnded()
	r.setLeader(false)

	// 3. A member still running: a goroutine cannot be killed, and
	// campaigning again could start a second group. Take this replica out.
	var hung *errNotStopped
	if errors.As(stopErr, &hung) {
		slot.markHung(fmt.Errorf("a group of lease %s did not stop in this process (%s): restart the collector", r.lease, strings.Join(hung.keys, ", ")))
		term.Abandon()
		r.logger.Error(logmsg.GroupNotStopped, zap.Strings("receivers", hung.keys),
			zap.String("reason", end.reason), zap.Error(stopErr))
		err := fmt.Errorf("%s: %w", logmsg.GroupNotStopped, stopErr)
		if end.kind == endShutdown || ctx.Err() != nil {
			// The collector is already exiting (Shutdown has begun, whatever
			// ended the term): it reads no FatalError now, and one sent
			// would block its status reporting for ever.
			r.notStopped = err
		} else {
			r.status.reportFatal(err)
		}
		return stopLeading
	}

	// 4. The group is down: hand the Lease on as the ending asks.
	switch end.kind {
	case endStartFailed, endMemberFailed:
		r.groupFailed(g, term, end, stopErr)
		return backOff
	case endShutdown:
		r.groupStopped(g, end.reason, stopErr)
		r.endTerm(term, end.reason)
		return stopLeading
	default:
		r.groupStopped(g, end.reason, stopErr)
		term.Abandon()
		return campaignAgain
	}
}

// watchTerm waits until the group must stop: the term ended, Shutdown was
// called, the start failed or took longer than start_timeout, or a member
// reported a failure.
func (r *runner) watchTerm(ctx context.Context, term *elector.Term, g *group, rg *runningGroup, members *termMembers, won time.Time) ending {
	startTimer := time.NewTimer(r.cfg.StartTimeout)
	defer startTimer.Stop()
	started := rg.Done()
	for {
		select {
		case <-started:
			if err := rg.Err(); err != nil {
				return ending{kind: endStartFailed, reason: logmsg.ReasonStartFailed, err: err}
			}
			select {
			case f := <-members.failed: // reported during the start
				return ending{kind: endStartFailed, reason: logmsg.ReasonStartFailed, err: f}
			default:
			}
			started = nil
			startTimer.Stop()
			r.emit(func() {
				r.telemetry.LeaderGroupStartDuration.Record(context.Background(), time.Since(won).Seconds(), r.attrs)
			})
			r.setLeader(true)
			r.status.setGroupErr(nil)
			r.logger.Info(logmsg.GroupStarted, zap.Strings("receivers", g.keys()), zap.Duration("since_acquired", time.Since(won)))
		case <-startTimer.C:
			err := fmt.Errorf("start_timeout: the group had not started after %s", r.cfg.StartTimeout)
			return ending{kind: endStartFailed, reason: logmsg.ReasonStartFailed, err: err}
		case f := <-members.failed:
			if started != nil {
				// Before the group is up it is a failed start (otlp reports
				// a port it cannot serve as a FatalError, and its Start may
				// return the same error): one line, GroupStartFailed.
				return ending{kind: endStartFailed, reason: logmsg.ReasonStartFailed, err: f}
			}
			r.logger.Error(logmsg.MemberFailed, zap.String("receiver", f.key), zap.Error(f.err))
			return ending{kind: endMemberFailed, reason: logmsg.ReasonMemberFailed, err: f}
		case <-term.Lost():
			r.emit(func() { r.telemetry.LeaderElectionLost.Add(context.Background(), 1, r.attrs) })
			r.logger.Warn(logmsg.Lost, zap.Error(term.Err()))
			return ending{kind: endLost, reason: logmsg.ReasonLost + term.Err().Error()}
		case <-ctx.Done():
			return ending{kind: endShutdown, reason: logmsg.ReasonShutdown}
		}
	}
}

// exitBudget is the part of the stop margin kept for the collector to exit
// in when the group did not stop: a quarter of lease_duration - renew_deadline.
func (r *runner) exitBudget() time.Duration {
	return (r.cfg.LeaderElection.LeaseDuration - r.cfg.LeaderElection.RenewDeadline) / 4
}

// backstop ends the process if the group is still running at the term's
// deadline: from that instant another replica may lead. It is armed the
// moment the term is lost or a stop begins (stopping carries the deadline the
// stop works to), whatever the loop does meanwhile, and disarmed when every
// member has stopped.
func (r *runner) backstop(term *elector.Term, rg *runningGroup, stopping <-chan time.Time) {
	var deadline time.Time
	select {
	case <-term.Lost():
		deadline = term.Deadline() // no longer moves
	case deadline = <-stopping:
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-rg.Stopped():
	case <-timer.C:
		r.logger.Error(logmsg.Exiting, zap.Strings("receivers", rg.running()), zap.Int("exit_code", exitCode))
		r.process.exitProcess(r.exit, exitCode)
	}
}

// endTerm ends a term on shutdown: it hands the Lease over when
// release_on_shutdown is set, else stops renewing and lets it expire.
// Only the loop calls it, after it saw the cancellation that published
// shutdownCtx.
func (r *runner) endTerm(term *elector.Term, reason string) {
	if !r.cfg.LeaderElection.ReleaseOnShutdown {
		term.Abandon()
		r.logger.Info(logmsg.LeftToExpire, zap.String("reason", reason))
		return
	}
	r.release(r.shutdownCtx, term, reason)
}

// release hands the Lease over, bounded by ctx and the term's deadline
// (after it, the Lease is free anyway).
func (r *runner) release(ctx context.Context, term *elector.Term, reason string) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed { // Shutdown gave up waiting: it writes nothing more
		term.Abandon()
		return
	}
	ctx, cancel := context.WithDeadline(ctx, term.Deadline())
	defer cancel()
	released, err := term.Release(ctx)
	switch {
	case err != nil:
		r.logger.Warn(logmsg.ReleaseFailed, zap.String("reason", reason), zap.Error(err))
	case released:
		r.logger.Info(logmsg.Released, zap.String("reason", reason))
	default:
		r.logger.Info(logmsg.NotReleased, zap.String("reason", reason))
	}
}

// groupFailed logs a group that failed to start or whose member failed, and
// gives the Lease back, whatever release_on_shutdown says: another replica
// may be able to run the group.
func (r *runner) groupFailed(g *group, term *elector.Term, end ending, stopErr error) {
	if end.kind == endMemberFailed {
		r.groupStopped(g, end.reason, stopErr)
		r.status.setGroupErr(end.err)
	} else {
		err := errors.Join(end.err, stopErr)
		r.emit(func() { r.telemetry.LeaderGroupStartFailures.Add(context.Background(), 1, r.attrs) })
		r.logger.Error(logmsg.GroupStartFailed, zap.Strings("receivers", g.keys()), zap.Error(err))
		r.status.setGroupErr(fmt.Errorf("group failed to start: %w", err))
	}
	r.release(context.Background(), term, end.reason)
}

// groupStopped logs a stopped group: one line, with the errors if any.
func (r *runner) groupStopped(g *group, reason string, err error) {
	fields := []zap.Field{zap.Strings("receivers", g.keys()), zap.String("reason", reason)}
	if err != nil {
		r.logger.Error(logmsg.GroupStopErrors, append(fields, zap.Error(err))...)
		r.status.setGroupErr(fmt.Errorf("group did not stop cleanly: %w", err))
		return
	}
	r.logger.Info(logmsg.GroupStopped, fields...)
}

// backoff is retryPeriod doubled for every failure after the first, capped.
func backoff(retryPeriod time.Duration, failures int) time.Duration {
	d := retryPeriod
	for i := 1; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// emit records a metric unless Shutdown has returned.
func (r *runner) emit(record func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		record()
	}
}

func (r *runner) setLeader(leading bool) {
	v := int64(0)
	if leading {
		v = 1
	}
	r.emit(func() { r.telemetry.LeaderElectionIsLeader.Record(context.Background(), v, r.attrs) })
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
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil && r.watchState != watchBroken:
		r.watchState = watchBroken
		r.logger.Warn(logmsg.WatchBroken, zap.Error(err))
	case err == nil && r.watchState != watchHealthy:
		r.watchState = watchHealthy
		r.logger.Info(logmsg.Watching)
	}
}

// Whether the Lease is watched, as last logged.
const (
	watchUnknown = iota
	watchHealthy
	watchBroken
)
