package leaderreceivercreator

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// A cause's reason is the log lines' field reason, byte for byte as before
// the causes were typed: operators and the e2e harness match it.
func TestStopCauseReasonIsTheLogLinesReason(t *testing.T) {
	for _, tc := range []struct {
		cause stopCause
		want  string
	}{
		{stopCause{kind: causeShutdown}, "shutdown"},
		{stopCause{kind: causeStartFailed, err: errors.New("port 4317 is taken")}, "group failed to start"},
		{stopCause{kind: causeMemberFailed, err: errors.New("cache sync timed out")}, "sub-receiver failed"},
		{stopCause{kind: causeLost, err: errors.New("renewal failed")}, "lease lost: renewal failed"},
		{stopCause{kind: causeLost}, "lease lost: "},
	} {
		assert.Equal(t, tc.want, tc.cause.reason())
	}
	assert.Equal(t, logmsg.ReasonShutdown, stopCause{kind: causeShutdown}.reason())
	assert.Equal(t, logmsg.ReasonStartFailed, stopCause{kind: causeStartFailed}.reason())
	assert.Equal(t, logmsg.ReasonMemberFailed, stopCause{kind: causeMemberFailed}.reason())
}
