package leaderreceivercreator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/leaderreceivercreator/leaderreceivercreator/elector"
	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// maxBackoff caps the pause after failed group starts.
const maxBackoff = time.Minute

// outcome is how a term ended, for the loop.
type outcome int

const (
	campaignAgain outcome = iota // the Lease was lost and the group stopped
	backOff                      // the group failed to start or a member failed; the Lease was given back
	stopLeading                  // shut down, or the group did not stop: never lead again
)

// backoff is retryPeriod doubled for every failure after the first, capped.
func backoff(retryPeriod time.Duration, failures int) time.Duration {
	d := retryPeriod
	for i := 1; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// handOver is the last step of a term whose group is down: hand the Lease
// on as the cause asks, and tell the loop what to do next.
func (r *runner) handOver(g *group, term *elector.Term, cause stopCause, stopErr error) outcome {
	switch cause.kind {
	case causeStartFailed, causeMemberFailed:
		r.groupFailed(g, term, cause, stopErr)
		return backOff
	case causeShutdown:
		r.groupStopped(g, cause, stopErr)
		r.endTerm(term, cause)
		return stopLeading
	default:
		r.groupStopped(g, cause, stopErr)
		term.Abandon()
		return campaignAgain
	}
}

// endTerm ends a term on shutdown: it hands the Lease over when
// release_on_shutdown is set, else stops renewing and lets it expire.
// Only the loop calls it, after it saw the cancellation that published
// shutdownCtx.
func (r *runner) endTerm(term *elector.Term, cause stopCause) {
	if !r.cfg.LeaderElection.ReleaseOnShutdown {
		term.Abandon()
		r.logger.Info(logmsg.LeftToExpire, zap.String("reason", cause.reason()))
		return
	}
	r.release(r.shutdownCtx, term, cause)
}

// release hands the Lease over, bounded by ctx and the term's deadline
// (after it, the Lease is free anyway).
func (r *runner) release(ctx context.Context, term *elector.Term, cause stopCause) {
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
		r.logger.Warn(logmsg.ReleaseFailed, zap.String("reason", cause.reason()), zap.Error(err))
	case released:
		r.logger.Info(logmsg.Released, zap.String("reason", cause.reason()))
	default:
		r.logger.Info(logmsg.NotReleased, zap.String("reason", cause.reason()))
	}
}

// groupFailed logs a group that failed to start or whose member failed, and
// gives the Lease back, whatever release_on_shutdown says: another replica
// may be able to run the group.
func (r *runner) groupFailed(g *group, term *elector.Term, cause stopCause, stopErr error) {
	if cause.kind == causeMemberFailed {
		r.groupStopped(g, cause, stopErr)
		r.status.setGroupErr(cause.err)
	} else {
		err := errors.Join(cause.err, stopErr)
		r.telemetry.startFailed()
		r.logger.Error(logmsg.GroupStartFailed, zap.Strings("receivers", g.keys()), zap.Error(err))
		r.status.setGroupErr(fmt.Errorf("group failed to start: %w", err))
	}
	r.release(context.Background(), term, cause)
}

// groupStopped logs a stopped group: one line, with the errors if any.
func (r *runner) groupStopped(g *group, cause stopCause, err error) {
	fields := []zap.Field{zap.Strings("receivers", g.keys()), zap.String("reason", cause.reason())}
	if err != nil {
		r.logger.Error(logmsg.GroupStopErrors, append(fields, zap.Error(err))...)
		r.status.setGroupErr(fmt.Errorf("group did not stop cleanly: %w", err))
		return
	}
	r.logger.Info(logmsg.GroupStopped, fields...)
}
