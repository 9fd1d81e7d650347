package leaderreceivercreator

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/leaderreceivercreator/leaderreceivercreator/elector"
	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// exitCode is the process's exit code when a group is still running at the
// term's deadline (EX_SOFTWARE).
const exitCode = 70

// osExit ends the process; tests that run real collectors record it instead.
var osExit = os.Exit

// stopGroup is the one stop of a term's group, by the term's deadline. It
// returns rg.stop's error: an *errNotStopped when a member was still running
// when the stop had to be over. From then on what the term's members report
// changes nothing, and the replica counts as not leading.
func (r *runner) stopGroup(term *elector.Term, rg *runningGroup, members *termMembers, stopping chan<- time.Time) error {
	// The deadline as it is now: on a loss it no longer moves; otherwise
	// the term keeps renewing meanwhile, which only keeps others away
	// longer. Never later: a stop that hangs is not rewarded. The backstop
	// ends the process at that instant if the group is still running.
	deadline := term.Deadline()
	stopping <- deadline
	// Stop the members, giving them all but the exit budget; if they are
	// not down by then, the budget is the collector's to exit in.
	stopCtx, cancel := context.WithDeadline(context.Background(), deadline.Add(-r.exitBudget()))
	stopErr := rg.stop(stopCtx)
	cancel()
	// Down or not, the term is over for its members and for the metrics.
	members.end()
	r.status.termEnded()
	r.telemetry.leader(false)
	return stopErr
}

// exitBudget is the part of the stop margin kept for the collector to exit
// in when the group did not stop: a quarter of lease_duration - renew_deadline.
func (r *runner) exitBudget() time.Duration {
	return (r.cfg.LeaderElection.LeaseDuration - r.cfg.LeaderElection.RenewDeadline) / 4
}

// didNotStop handles a member still running when the stop had to be over: a
// goroutine cannot be killed, and campaigning again could start a second
// group. Take this replica out: the Lease's slot in this process is marked,
// so that no runner here leads it again; the term is abandoned, not released
// (the member may still run); the collector is told to exit.
func (r *runner) didNotStop(ctx context.Context, term *elector.Term, slot *leaseSlot, cause stopCause, hung *errNotStopped, stopErr error) outcome {
	slot.markHung(fmt.Errorf("a group of lease %s did not stop in this process (%s): restart the collector", r.lease, strings.Join(hung.keys, ", ")))
	term.Abandon()
	r.logger.Error(logmsg.GroupNotStopped, zap.Strings("receivers", hung.keys),
		zap.String("reason", cause.reason()), zap.Error(stopErr))
	err := fmt.Errorf("%s: %w", logmsg.GroupNotStopped, stopErr)
	if cause.kind == causeShutdown || ctx.Err() != nil {
		// The collector is already exiting (Shutdown has begun, whatever
		// ended the term): it reads no FatalError now, and one sent
		// would block its status reporting for ever.
		r.notStopped = err
	} else {
		r.status.reportFatal(err)
	}
	return stopLeading
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
