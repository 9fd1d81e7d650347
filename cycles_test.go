package leaderreceivercreator

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/ptr"
)

// TestThousandAcquireLoseCycles wins and loses the Lease 1,000 times, half by
// a renewal deadline (API unreachable), half by finding another holder, and
// checks every group stopped, nothing overlapped and (TestMain's goleak) no
// goroutine is left behind.
// Invariants S1, S7.
func TestThousandAcquireLoseCycles(t *testing.T) {
	const cycles = 1000
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.start(t)
		for i := range cycles {
			waitFor(t, time.Minute, a.leading, "cycle %d: a does not lead", i)
			if i%2 == 0 {
				a.fail.Store(true)
				waitFor(t, time.Minute, func() bool { return !a.leading() }, "cycle %d: group kept running", i)
				a.fail.Store(false)
			} else {
				c.edit(t, func(l *coordinationv1.Lease) {
					l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = ptr.To("other"), ptr.To[int32](1)
				})
				waitFor(t, time.Minute, func() bool { return !a.leading() }, "cycle %d: group kept running", i)
			}
		}
		waitFor(t, time.Minute, a.leading, "a does not lead after the last cycle")
		require.NoError(t, a.r.Shutdown(context.Background()))
		assert.Equal(t, cycles, a.logCount("leadership lost"))
		assert.Equal(t, cycles+1, a.logCount("leader group stopped"), "every loss and the final shutdown")
		assert.Equal(t, int64(2*(cycles+1)), a.b.instances.Load(), "fresh instances every term, one per signal")
		assert.Zero(t, j.runningCount("a"))
		assert.Equal(t, 1, j.maxOverlap())
	})
}
