package leaderreceivercreator

import "github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"

// stopCause is why a term's group is stopped (runner.watchTerm). Its kind
// decides what follows the stop (runner.handOver, runner.didNotStop); its
// reason is only what the log lines say.
type stopCause struct {
	kind causeKind
	// err is why: the term's error for causeLost; the failure for
	// causeStartFailed and causeMemberFailed; nil for causeShutdown.
	err error
}

type causeKind int

const (
	causeLost         causeKind = iota // the term ended by itself
	causeShutdown                      // the block is shut down
	causeStartFailed                   // the start failed or timed out: give the Lease back
	causeMemberFailed                  // a member of the started group failed: give the Lease back
)

// reason is the cause as the log lines' field reason gives it (GroupStopped,
// GroupNotStopped, Released, LeftToExpire...): one of logmsg's Reason
// strings, which operators and the e2e harness match; a lost term's is
// logmsg.ReasonLost followed by the term's error.
func (c stopCause) reason() string {
	switch c.kind {
	case causeShutdown:
		return logmsg.ReasonShutdown
	case causeStartFailed:
		return logmsg.ReasonStartFailed
	case causeMemberFailed:
		return logmsg.ReasonMemberFailed
	default:
		if c.err == nil {
			return logmsg.ReasonLost
		}
		return logmsg.ReasonLost + c.err.Error()
	}
}
