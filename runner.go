package leaderreceivercreator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/leaderreceivercreator/leaderreceivercreator/elector"
	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

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
//
// This file is the campaign and term loop. Around it: why a term's group
// stops (cause.go), the stop by the deadline and its failure (stop.go), the
// Lease's hand-over and the loop's next step (handover.go), the component
// status (status.go), metrics (telemetry.go), what a process shares
// (process.go).
type runner struct {
	cfg        *Config
	set        receiver.Settings
	logger     *zap.Logger
	identity   string
	consumers  consumers
	telemetry  *telemetry
	onShutdown func()         // forgets this runner in the factory's map
	process    *processLeases // given at creation (tests simulate several processes)
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

	mu     sync.Mutex // guards what follows
	closed bool       // Shutdown has returned: no renewal or release after that
	term   *elector.Term
}

// newRunner builds a block's runner in process, the state it shares with
// the other blocks of its collector process (thisProcess).
func newRunner(cfg *Config, set receiver.Settings, identity string, process *processLeases) (*runner, error) {
	tel, err := newTelemetry(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &runner{
		cfg: cfg, set: set, logger: unsampled(set.Logger), identity: identity,
		telemetry: tel, onShutdown: func() {}, exit: osExit,
		process: process, status: newStatus(process),
	}, nil
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
		Client:        kube.leases,
		Namespace:     ns,
		Name:          le.LeaseName,
		Identity:      r.identity,
		LeaseDuration: le.LeaseDuration,
		RenewDeadline: le.RenewDeadline,
		RetryPeriod:   le.RetryPeriod,
		OnAttempt:     r.onAttempt,
		OnWatch:       r.onWatch,
		PayloadAnnotation: func() string {
			if r.cfg.Checkpoints.Enabled {
				return checkpointsAnnotation
			}
			return ""
		}(),
	})
	if err != nil {
		return fmt.Errorf("leader_election: %w", err)
	}
	r.host, r.lease = host, lease
	r.telemetry.setLease(lease)
	r.logger = r.logger.With(zap.String("lease", r.lease), zap.String("identity", r.identity))
	r.telemetry.leader(false)

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
	defer r.telemetry.shutdown()
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
	r.telemetry.close()
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
	r.telemetry.acquired()
	r.logger.Info(logmsg.Acquired)
	if ctx.Err() != nil {
		r.endTerm(term, stopCause{kind: causeShutdown})
		return stopLeading
	}
	return r.lead(ctx, term, g, slot)
}

// lead runs the group for one term and stops it by the term's deadline, in
// four steps, each once per term:
//
//  1. start the group in the background, with the backstop armed to end the
//     process if a member still runs at the term's deadline;
//  2. wait (watchTerm): the group starts in the background while lead
//     watches the term, the start's bound, the members' reports and
//     Shutdown, until one of them says why the group must stop (a stopCause);
//  3. stop it by the deadline (stopGroup): whichever ends first, the members
//     already started are stopped;
//  4. map that to an outcome: a member still running takes this replica out
//     (didNotStop); a group that is down hands the Lease on as the cause
//     asks (handOver).
func (r *runner) lead(ctx context.Context, term *elector.Term, g *group, slot *leaseSlot) outcome {
	// 1. Start.
	won := time.Now()
	members := newTermMembers()
	rg := g.start(r.host, func(key string, ev *componentstatus.Event) { r.memberReport(members, key, ev) }, r.droppedAfterStop, r.checkpoints(term))
	stopping := make(chan time.Time, 1)
	go r.backstop(term, rg, stopping)

	// 2. Wait.
	cause := r.watchTerm(ctx, term, g, rg, members, won)

	// 3. Stop by the deadline.
	stopErr := r.stopGroup(term, rg, members, stopping)

	// 4. Map to an outcome.
	var hung *errNotStopped
	if errors.As(stopErr, &hung) {
		return r.didNotStop(ctx, term, slot, cause, hung, stopErr)
	}
	return r.handOver(g, term, cause, stopErr)
}

// watchTerm waits until the group must stop: the term ended, Shutdown was
// called, the start failed or took longer than start_timeout, or a member
// reported a failure.
func (r *runner) watchTerm(ctx context.Context, term *elector.Term, g *group, rg *runningGroup, members *termMembers, won time.Time) stopCause {
	startTimer := time.NewTimer(r.cfg.StartTimeout)
	defer startTimer.Stop()
	started := rg.Done()
	for {
		select {
		case <-started:
			if err := rg.Err(); err != nil {
				return stopCause{kind: causeStartFailed, err: err}
			}
			select {
			case f := <-members.failed: // reported during the start
				return stopCause{kind: causeStartFailed, err: f}
			default:
			}
			started = nil
			startTimer.Stop()
			r.telemetry.groupStarted(time.Since(won))
			r.telemetry.leader(true)
			r.status.setGroupErr(nil)
			r.logger.Info(logmsg.GroupStarted, zap.Strings("receivers", g.keys()), zap.Duration("since_acquired", time.Since(won)))
		case <-startTimer.C:
			err := fmt.Errorf("start_timeout: the group had not started after %s", r.cfg.StartTimeout)
			return stopCause{kind: causeStartFailed, err: err}
		case f := <-members.failed:
			if started != nil {
				// Before the group is up it is a failed start (otlp reports
				// a port it cannot serve as a FatalError, and its Start may
				// return the same error): one line, GroupStartFailed.
				return stopCause{kind: causeStartFailed, err: f}
			}
			r.logger.Error(logmsg.MemberFailed, zap.String("receiver", f.key), zap.Error(f.err))
			return stopCause{kind: causeMemberFailed, err: f}
		case <-term.Lost():
			r.telemetry.lost()
			r.logger.Warn(logmsg.Lost, zap.Error(term.Err()))
			return stopCause{kind: causeLost, err: term.Err()}
		case <-ctx.Done():
			return stopCause{kind: causeShutdown}
		}
	}
}
