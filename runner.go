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

var errShutDown = errors.New("leader_receiver_creator was shut down before it started")

// runner is the component: it campaigns for the Lease in the background and
// runs the group while it holds it. One runner serves all the pipelines its
// configuration is in.
//
// Its one promise is that the group never runs on two replicas at once. Every
// path that holds the Lease works against the term's deadline (see
// elector.Term.Deadline): a group start is watched and aborted, a group is
// stopped by that instant, and a replica whose group does not stop by then
// never leads again and reports a FatalError, so that the collector exits.
type runner struct {
	cfg        *Config
	set        receiver.Settings
	logger     *zap.Logger
	identity   string
	consumers  consumers
	telemetry  *metadata.TelemetryBuilder
	onShutdown func() // forgets this runner in the factory's map
	process    *processLeases
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

	mu            sync.Mutex // guards what follows
	closed        bool       // Shutdown has returned: no status, metric or renewal after that
	term          *elector.Term
	hosts         []component.Host // every pipeline instance's: status goes to all
	last          *componentstatus.Event
	apiErr        error // the last failed attempt on the Lease, until one succeeds
	groupErr      error // the last failed group start or stop, until campaigning again works
	clearGroupErr bool  // the next successful attempt on the Lease clears groupErr
	fatal         bool  // a FatalError was reported: nothing is reported after it
	reported      string
	watchState    int // watchUnknown, watchHealthy or watchBroken, as last logged
}

func newRunner(cfg *Config, set receiver.Settings, identity string) (*runner, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &runner{
		cfg: cfg, set: set, logger: set.Logger, identity: identity,
		telemetry: tb, onShutdown: func() {}, process: thisProcess, exit: os.Exit,
	}, nil
}

// Start is called once for every pipeline instance of this block, each time
// with that instance's host: status is reported to all of them. The first
// call resolves and validates the group against the host's factories, so a
// bad sub-receiver configuration fails every replica here, then campaigns in
// the background and returns.
func (r *runner) Start(_ context.Context, host component.Host) error {
	r.addHost(host)
	r.startOnce.Do(func() { r.startErr = r.start(host) })
	return r.startErr
}

func (r *runner) start(host component.Host) error {
	g, err := resolveGroup(r.cfg, host, r.set, r.consumers)
	if err != nil {
		return err
	}
	g.process = r.process
	le := r.cfg.LeaderElection
	ns, err := le.leaseNamespace()
	if err != nil {
		return fmt.Errorf("leader_election.lease_namespace: %w", err)
	}
	lease := ns + "/" + le.LeaseName
	if err := r.process.slot(lease).hungErr(); err != nil {
		return err
	}
	client, err := newKubeClient(r.cfg)
	if err != nil {
		return err
	}
	el, err := elector.New(elector.Config{
		Client:        client.CoordinationV1(),
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
		r.loop(ctx, el, g)
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
	backOff                      // the group failed to start; the Lease was given back
	stopLeading                  // shut down, or the group did not stop: never lead again
)

// loop campaigns, leads, and campaigns again after every loss until ctx is
// cancelled by Shutdown or a group fails to stop.
func (r *runner) loop(ctx context.Context, el *elector.Elector, g *group) {
	// At most one term per Lease in this process, whatever the identity: a
	// runner created by a collector reload campaigns only once its
	// predecessor's term is over (its group stopped, its Lease released or
	// abandoned), and never after a group of that Lease failed to stop here.
	slot := r.process.slot(r.lease)
	failures := 0
	for {
		select {
		case <-slot.free:
		case <-ctx.Done():
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
		r.mu.Lock()
		r.clearGroupErr = true // a healthy standby is OK again
		r.mu.Unlock()
	}
}

// serve campaigns, then leads for one term; the caller holds the slot.
func (r *runner) serve(ctx context.Context, el *elector.Elector, g *group, slot *leaseSlot) outcome {
	if err := slot.hungErr(); err != nil {
		r.logger.Error(logmsg.GroupNotStopped, zap.Error(err))
		r.reportFatal(err)
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

// lead runs the group for one term and stops it by the term's deadline. The
// group starts in the background while lead watches the term and Shutdown:
// if either ends first, the members already started are stopped.
func (r *runner) lead(ctx context.Context, term *elector.Term, g *group, slot *leaseSlot) outcome {
	won := time.Now()
	rg := g.start(r.host, r.reportFromMember, r.droppedAfterStop)
	var reason string
	var startErr error
	select {
	case <-rg.Done():
		if startErr = rg.Err(); startErr != nil {
			reason = logmsg.ReasonStartFailed
			break
		}
		r.emit(func() {
			r.telemetry.LeaderGroupStartDuration.Record(context.Background(), time.Since(won).Seconds(), r.attrs)
		})
		r.setLeader(true)
		r.setGroupErr(nil)
		r.logger.Info(logmsg.GroupStarted, zap.Strings("receivers", g.keys()), zap.Duration("since_acquired", time.Since(won)))
		select {
		case <-term.Lost():
			reason = r.lost(term)
		case <-ctx.Done():
			reason = logmsg.ReasonShutdown
		}
	case <-term.Lost(): // while a member was starting
		reason = r.lost(term)
	case <-ctx.Done():
		reason = logmsg.ReasonShutdown
	}

	// The deadline as it is now: on a loss it no longer moves; on shutdown
	// or a failed start the term keeps renewing meanwhile, which only keeps
	// others away longer. Never later: a stop that hangs is not rewarded.
	// The members get all but the exit budget; if they are not down by then,
	// the budget is the collector's to exit in.
	deadline := term.Deadline()
	stopCtx, cancel := context.WithDeadline(context.Background(), deadline.Add(-r.exitBudget()))
	stopErr := rg.stop(stopCtx)
	cancel()
	r.setLeader(false)
	var hung *errNotStopped
	if errors.As(stopErr, &hung) {
		// Some sub-receiver may still run, and a goroutine cannot be killed.
		// Campaigning again could start a second group: take this replica out.
		slot.markHung(fmt.Errorf("a group of lease %s did not stop in this process (%s): restart the collector", r.lease, strings.Join(hung.keys, ", ")))
		term.Abandon()
		r.logger.Error(logmsg.GroupNotStopped, zap.Strings("receivers", hung.keys),
			zap.String("reason", reason), zap.Error(stopErr))
		err := fmt.Errorf("%s: %w", logmsg.GroupNotStopped, stopErr)
		if reason == logmsg.ReasonShutdown {
			// The collector is already exiting: it reads no FatalError now.
			r.notStopped = err
		} else {
			r.reportFatal(err)
		}
		go r.exitAtDeadline(rg, hung.keys, deadline)
		return stopLeading
	}

	switch {
	case startErr != nil:
		r.groupStartFailed(g, term, errors.Join(startErr, stopErr))
		return backOff
	case reason == logmsg.ReasonShutdown:
		r.groupStopped(g, reason, stopErr)
		r.endTerm(term, reason)
		return stopLeading
	default:
		r.groupStopped(g, reason, stopErr)
		term.Abandon()
		return campaignAgain
	}
}

// exitBudget is the part of the stop margin kept for the collector to exit
// in when the group did not stop: a quarter of lease_duration - renew_deadline.
func (r *runner) exitBudget() time.Duration {
	return (r.cfg.LeaderElection.LeaseDuration - r.cfg.LeaderElection.RenewDeadline) / 4
}

// exitAtDeadline ends the process if the group is still not down when the
// term's deadline comes and the process has not exited by then: from that
// instant another replica may lead.
func (r *runner) exitAtDeadline(rg *runningGroup, hung []string, deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-rg.Stopped():
	case <-timer.C:
		r.logger.Error(logmsg.Exiting, zap.Strings("receivers", hung), zap.Int("exit_code", exitCode))
		r.exit(exitCode)
	}
}

// lost records a term that ended by itself and returns the stop reason.
func (r *runner) lost(term *elector.Term) string {
	r.emit(func() { r.telemetry.LeaderElectionLost.Add(context.Background(), 1, r.attrs) })
	r.logger.Warn(logmsg.Lost, zap.Error(term.Err()))
	return logmsg.ReasonLost + term.Err().Error()
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

func (r *runner) groupStartFailed(g *group, term *elector.Term, err error) {
	r.emit(func() { r.telemetry.LeaderGroupStartFailures.Add(context.Background(), 1, r.attrs) })
	r.logger.Error(logmsg.GroupStartFailed, zap.Strings("receivers", g.keys()), zap.Error(err))
	r.setGroupErr(fmt.Errorf("group failed to start: %w", err))
	// Always give the Lease back, whatever release_on_shutdown says: another
	// replica may be able to run the group.
	r.release(context.Background(), term, logmsg.ReasonStartFailed)
}

// groupStopped logs a stopped group: one line, with the errors if any.
func (r *runner) groupStopped(g *group, reason string, err error) {
	fields := []zap.Field{zap.Strings("receivers", g.keys()), zap.String("reason", reason)}
	if err != nil {
		r.logger.Error(logmsg.GroupStopErrors, append(fields, zap.Error(err))...)
		r.setGroupErr(fmt.Errorf("group did not stop cleanly: %w", err))
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
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil && r.apiErr == nil:
		r.logger.Warn(logmsg.LeaseUnreachable, zap.Error(err))
	case err == nil && r.apiErr != nil:
		r.logger.Info(logmsg.LeaseReachable)
	}
	r.apiErr = err
	if err == nil && r.clearGroupErr {
		r.groupErr, r.clearGroupErr = nil, false
	}
	r.reportLocked()
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

func (r *runner) setGroupErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.groupErr, r.clearGroupErr = err, false
	r.reportLocked()
}

// reportLocked reports StatusOK, or RecoverableError while the Lease cannot
// be reached or the group failed, but only when that changes.
func (r *runner) reportLocked() {
	err := errors.Join(r.apiErr, r.groupErr)
	key := "ok"
	if err != nil {
		key = err.Error()
	}
	if key == r.reported {
		return
	}
	if r.reported == "" && err == nil {
		r.reported = key // the collector already reported OK after Start
		return
	}
	r.reported = key
	if err != nil {
		r.broadcastLocked(componentstatus.NewRecoverableErrorEvent(err))
		return
	}
	r.broadcastLocked(componentstatus.NewEvent(componentstatus.StatusOK))
}

// reportFatal reports a FatalError, once, to one pipeline instance: the
// collector shuts down. Nothing is reported after it. The collector takes a
// FatalError through an unbuffered channel while it holds its status lock,
// and stops reading it once it shuts down: a second FatalError, or one sent
// too late, would block every status report of the collector. So it is sent
// once, from a goroutine of its own, and never on the shutdown path.
func (r *runner) reportFatal(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.fatal || len(r.hosts) == 0 {
		return
	}
	r.fatal = true
	go componentstatus.ReportStatus(r.hosts[0], componentstatus.NewFatalErrorEvent(err))
}

// reportFromMember forwards a sub-receiver's status to every pipeline
// instance of this block.
func (r *runner) reportFromMember(ev *componentstatus.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broadcastLocked(ev)
}

// addHost adds a pipeline instance's host and tells it the last status
// reported, as the collector's sharedcomponent does: reported during its
// Start, it takes the place of the StatusOK the collector reports after it.
func (r *runner) addHost(host component.Host) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last != nil && !r.closed {
		componentstatus.ReportStatus(host, r.last)
	}
	r.hosts = append(r.hosts, host)
}

func (r *runner) broadcastLocked(ev *componentstatus.Event) {
	if r.closed || r.fatal {
		return
	}
	r.last = ev
	for _, h := range r.hosts {
		componentstatus.ReportStatus(h, ev)
	}
}

// leaseSlot keeps one process from running two groups for one Lease: after
// a collector reload, a new runner with the same identity would otherwise
// renew the Lease its predecessor still holds and start a second group while
// the first is still stopping.
type leaseSlot struct {
	free chan struct{} // holds a token while no group of the Lease runs here
	mu   sync.Mutex
	hung error // set once a group did not stop: the Lease is never led again here
}

// processLeases is one process's slots, by Lease (namespace/name), and its
// receiver types' locks.
type processLeases struct {
	mu    sync.Mutex
	m     map[string]*leaseSlot
	types map[component.Type]chan struct{} // lockType; each of capacity 1
}

// thisProcess is the slots of this collector process; tests give each
// simulated replica its own.
var thisProcess = newProcessLeases()

func newProcessLeases() *processLeases {
	return &processLeases{m: map[string]*leaseSlot{}, types: map[component.Type]chan struct{}{}}
}

// lockType takes the lock of receiver type typ in this process, waiting as
// long as it takes (a Shutdown must not be skipped: the instance would keep
// running), and returns its unlock. Groups hold it while they create an
// instance of the type and while they shut one down.
//
// Several contrib receivers (k8s_cluster and receiver_creator among them,
// v0.145.0) keep their live instances in a package-level map without a lock
// (internal/sharedcomponent: GetOrAdd in Create*, delete in Shutdown). A
// collector creates and stops its components one at a time, so that is safe
// there; a group stops its members concurrently, and two blocks' groups
// start and stop independently, so two members of one type (k8s_cluster and
// k8s_cluster/b, or one in each of two blocks) would write that map at once:
// Go's fatal "concurrent map writes". Members of different types still stop
// concurrently.
func (p *processLeases) lockType(typ component.Type) (unlock func()) {
	p.mu.Lock()
	ch, ok := p.types[typ]
	if !ok {
		ch = make(chan struct{}, 1)
		p.types[typ] = ch
	}
	p.mu.Unlock()
	ch <- struct{}{}
	return func() { <-ch }
}

func (p *processLeases) slot(lease string) *leaseSlot {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.m[lease]
	if !ok {
		s = &leaseSlot{free: make(chan struct{}, 1)}
		s.free <- struct{}{}
		p.m[lease] = s
	}
	return s
}

func (s *leaseSlot) markHung(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hung = err
}

func (s *leaseSlot) hungErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hung
}
