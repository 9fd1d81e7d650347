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
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/leaderreceivercreator/leaderreceivercreator/elector"
	"github.com/leaderreceivercreator/leaderreceivercreator/internal/metadata"
)

// maxBackoff caps the pause after failed group starts.
const maxBackoff = time.Minute

var errShutDown = errors.New("leader_receiver_creator was shut down before it started")

// runner is the component: it campaigns for the Lease in the background and
// runs the group while it holds it. One runner serves all the pipelines its
// configuration is in.
type runner struct {
	cfg        *Config
	set        receiver.Settings
	logger     *zap.Logger
	identity   string
	consumers  consumers
	telemetry  *metadata.TelemetryBuilder
	newClient  func(*Config) (kubernetes.Interface, error)
	onShutdown func() // forgets this runner in the factory's map

	startOnce sync.Once
	startErr  error
	stopOnce  sync.Once
	stopErr   error
	cancel    context.CancelFunc
	done      chan struct{} // closed when the campaign loop returned; nil if it never ran
	// shutdownCtx is the context Shutdown was called with; written before
	// cancel, read by the loop after it sees the cancellation.
	shutdownCtx context.Context

	host  component.Host
	lease string // namespace/name
	attrs metric.MeasurementOption

	statusMu sync.Mutex
	apiErr   error // the last failed attempt on the Lease, until one succeeds
	groupErr error // the last failed group start or stop, until a group starts
	reported string
}

func newRunner(cfg *Config, set receiver.Settings, identity string) (*runner, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &runner{
		cfg: cfg, set: set, logger: set.Logger, identity: identity,
		telemetry: tb, newClient: newKubeClient, onShutdown: func() {},
	}, nil
}

// Start resolves and validates the group against the host's factories, so a
// bad sub-receiver configuration fails every replica here, then campaigns in
// the background and returns.
func (r *runner) Start(_ context.Context, host component.Host) error {
	r.startOnce.Do(func() { r.startErr = r.start(host) })
	return r.startErr
}

func (r *runner) start(host component.Host) error {
	g, err := resolveGroup(r.cfg, host, r.set, r.consumers)
	if err != nil {
		return err
	}
	le := r.cfg.LeaderElection
	ns, err := le.leaseNamespace()
	if err != nil {
		return fmt.Errorf("leader_election.lease_namespace: %w", err)
	}
	client, err := r.newClient(r.cfg)
	if err != nil {
		return err
	}
	el, err := elector.New(elector.Config{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: le.LeaseName},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: r.identity},
		},
		LeaseDuration: le.LeaseDuration,
		RenewDeadline: le.RenewDeadline,
		RetryPeriod:   le.RetryPeriod,
		OnAttempt:     r.onAttempt,
	})
	if err != nil {
		return fmt.Errorf("leader_election: %w", err)
	}
	r.host, r.lease = host, ns+"/"+le.LeaseName
	r.attrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("lease", r.lease)))
	r.logger = r.logger.With(zap.String("lease", r.lease), zap.String("identity", r.identity))
	r.telemetry.LeaderElectionIsLeader.Record(context.Background(), 0, r.attrs)

	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	r.logger.Info("campaigning for the lease", zap.Strings("receivers", g.keys()))
	go func() {
		defer close(r.done)
		r.loop(ctx, el, g)
	}()
	return nil
}

// Shutdown stops the group, then releases the Lease (if configured), then
// returns. Safe without Start and more than once.
func (r *runner) Shutdown(ctx context.Context) error {
	r.stopOnce.Do(func() { r.stopErr = r.shutdown(ctx) })
	return r.stopErr
}

func (r *runner) shutdown(ctx context.Context) error {
	defer r.onShutdown()
	defer r.telemetry.Shutdown()
	r.startOnce.Do(func() { r.startErr = errShutDown }) // a later Start fails
	if r.done == nil {
		return nil
	}
	r.shutdownCtx = ctx
	r.cancel()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("leader_receiver_creator did not finish shutting down: %w", ctx.Err())
	}
}

// loop campaigns, leads, and campaigns again after every loss until ctx is
// cancelled by Shutdown.
func (r *runner) loop(ctx context.Context, el *elector.Elector, g *group) {
	failures := 0
	for {
		term, err := el.Campaign(ctx)
		if err != nil {
			return // shutting down; never held the Lease in this round
		}
		won := time.Now()
		r.telemetry.LeaderElectionAcquired.Add(context.Background(), 1, r.attrs)
		r.logger.Info("leadership acquired")
		if ctx.Err() != nil {
			r.endTerm(term, "shutdown")
			return
		}
		rg, err := g.start(r.host)
		if err != nil {
			failures++
			r.groupStartFailed(g, term, err)
			wait := backoff(r.cfg.LeaderElection.RetryPeriod, failures)
			r.logger.Info("backing off before campaigning again", zap.Duration("backoff", wait))
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		failures = 0
		r.telemetry.LeaderGroupStartDuration.Record(context.Background(), time.Since(won).Seconds(), r.attrs)
		r.telemetry.LeaderElectionIsLeader.Record(context.Background(), 1, r.attrs)
		r.setGroupErr(nil)
		r.logger.Info("leader group started", zap.Strings("receivers", g.keys()),
			zap.Duration("since_acquired", time.Since(won)))
		if !r.lead(ctx, term, rg, g) {
			return
		}
	}
}

// lead holds the term until it is lost (and returns true: campaign again)
// or the runner shuts down (and returns false).
func (r *runner) lead(ctx context.Context, term *elector.Term, rg *runningGroup, g *group) bool {
	le := r.cfg.LeaderElection
	// The group must be down before anyone else can take the Lease: within
	// lease_duration - renew_deadline of a loss, and within the same bound on
	// shutdown, so that a hung sub-receiver cannot keep the Lease renewed.
	margin := le.LeaseDuration - le.RenewDeadline
	select {
	case <-term.Lost():
		r.telemetry.LeaderElectionLost.Add(context.Background(), 1, r.attrs)
		r.logger.Warn("leadership lost", zap.Error(term.Err()))
		stopCtx, cancel := context.WithTimeout(context.Background(), margin)
		err := rg.stop(stopCtx)
		cancel()
		r.groupStopped(g, "lease lost: "+term.Err().Error(), err)
		term.Abandon()
		return true
	case <-ctx.Done():
		stopCtx, cancel := context.WithTimeout(r.shutdownCtx, margin)
		err := rg.stop(stopCtx)
		cancel()
		r.groupStopped(g, "shutdown", err)
		if err != nil {
			term.Abandon()
			r.logger.Error("lease not released because the group did not stop; it expires after lease_duration",
				zap.Duration("lease_duration", le.LeaseDuration))
			return false
		}
		r.endTerm(term, "shutdown")
		return false
	}
}

// endTerm ends a term on shutdown: it hands the Lease over when
// release_on_shutdown is set, else stops renewing and lets it expire.
// Only the loop calls it, after it saw the cancellation that published
// shutdownCtx.
func (r *runner) endTerm(term *elector.Term, reason string) {
	if !r.cfg.LeaderElection.ReleaseOnShutdown {
		term.Abandon()
		r.logger.Info("lease left to expire", zap.String("reason", reason))
		return
	}
	r.release(r.shutdownCtx, term, reason)
}

// release hands the Lease over, bounded by renew_deadline.
func (r *runner) release(ctx context.Context, term *elector.Term, reason string) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.LeaderElection.RenewDeadline)
	defer cancel()
	released, err := term.Release(ctx)
	switch {
	case err != nil:
		r.logger.Warn("could not release the lease; it expires after lease_duration", zap.String("reason", reason), zap.Error(err))
	case released:
		r.logger.Info("lease released", zap.String("reason", reason))
	default:
		r.logger.Info("lease not released: it names another holder", zap.String("reason", reason))
	}
}

func (r *runner) groupStartFailed(g *group, term *elector.Term, err error) {
	r.telemetry.LeaderGroupStartFailures.Add(context.Background(), 1, r.attrs)
	r.logger.Error("leader group failed to start; giving the lease back", zap.Strings("receivers", g.keys()), zap.Error(err))
	r.setGroupErr(fmt.Errorf("group failed to start: %w", err))
	// Always give the Lease back, whatever release_on_shutdown says: another
	// replica may be able to run the group.
	r.release(context.Background(), term, "group failed to start")
}

func (r *runner) groupStopped(g *group, reason string, err error) {
	r.telemetry.LeaderElectionIsLeader.Record(context.Background(), 0, r.attrs)
	fields := []zap.Field{zap.Strings("receivers", g.keys()), zap.String("reason", reason)}
	if err != nil {
		r.logger.Error("leader group stopped with errors", append(fields, zap.Error(err))...)
		r.setGroupErr(fmt.Errorf("group did not stop cleanly: %w", err))
	}
	r.logger.Info("leader group stopped", fields...)
}

// backoff is retryPeriod doubled for every failure after the first, capped.
func backoff(retryPeriod time.Duration, failures int) time.Duration {
	d := retryPeriod
	for i := 1; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// onAttempt tracks access to the Lease for the component status. A conflict
// or a create race is ordinary contention between candidates, not an error.
func (r *runner) onAttempt(err error) {
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		err = nil
	}
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	switch {
	case err != nil && r.apiErr == nil:
		r.logger.Warn("cannot read or write the lease", zap.Error(err))
	case err == nil && r.apiErr != nil:
		r.logger.Info("lease reachable again")
	}
	r.apiErr = err
	r.reportLocked()
}

func (r *runner) setGroupErr(err error) {
	r.statusMu.Lock()
	r.groupErr = err
	r.reportLocked()
	r.statusMu.Unlock()
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
		componentstatus.ReportStatus(r.host, componentstatus.NewRecoverableErrorEvent(err))
		return
	}
	componentstatus.ReportStatus(r.host, componentstatus.NewEvent(componentstatus.StatusOK))
}
