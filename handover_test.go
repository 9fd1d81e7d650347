package leaderreceivercreator

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/ptr"
)

// The tests here run in a synctest bubble unless their comment says
// otherwise: the timings are the defaults (15s / 10s / 2s), and time only
// passes when every goroutine waits.

// Invariants S1, S8.
func TestLeaderShutdownHandsOverAfterGroupStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.start(t)
		waitFor(t, time.Minute, a.leading, "a does not lead")
		b := newReplica(t, c, "b", testConfigFor("testrcv"))
		b.start(t)
		synctest.Wait()

		from := len(j.list())
		shutdownAt := time.Now()
		require.NoError(t, a.r.Shutdown(context.Background()))
		assert.False(t, a.leading(), "Shutdown returned before the group stopped")
		waitFor(t, time.Minute, b.leading, "b did not take over")
		handover := time.Since(shutdownAt)

		// The old group stopped, then the Lease was released, then b took it
		// and only then started its group.
		stopA := j.index("stop a/testrcv/leader_receiver_creator", from)
		released := j.index("lease ", from)
		leaseB := j.index("lease b", from)
		startB := j.index("start b/testrcv/leader_receiver_creator", from)
		require.True(t, stopA >= 0 && released >= 0 && leaseB >= 0 && startB >= 0, "journal: %v", j.list())
		assert.Less(t, stopA, released)
		assert.Less(t, released, leaseB)
		assert.Less(t, leaseB, startB)
		assert.Equal(t, 1, j.maxOverlap())
		// Released, so b need not wait for the Lease to expire: it takes it
		// on its next retry (at most retry_period * (1 + jitter)).
		assert.LessOrEqual(t, handover, time.Duration(2.2*float64(2*time.Second)))
		assert.Equal(t, 1, a.logCount("lease released"))
		stopped := a.logs.FilterMessage("leader group stopped").All()
		require.Len(t, stopped, 1)
		assert.Equal(t, "shutdown", stopped[0].ContextMap()["reason"])

		require.NoError(t, b.r.Shutdown(context.Background()))
	})
}

// Invariant S6.
func TestShutdownWhileStandingByReleasesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a, b := newReplica(t, c, "a", testConfigFor("testrcv")), newReplica(t, c, "b", testConfigFor("testrcv"))
		a.start(t)
		waitFor(t, time.Minute, a.leading, "a does not lead")
		b.start(t)
		time.Sleep(10 * time.Second) // fake time: b retries and stays standby
		require.NoError(t, b.r.Shutdown(context.Background()))
		assert.Zero(t, b.logCount("leader group stopped"))
		assert.Equal(t, "a", c.holder(t))
		require.NoError(t, a.r.Shutdown(context.Background()))
	})
}

func TestReleaseOnShutdownFalseLetsTheLeaseExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		cfg := testConfigFor("testrcv")
		cfg.LeaderElection.ReleaseOnShutdown = false
		a := newReplica(t, c, "a", cfg)
		a.start(t)
		waitFor(t, time.Minute, a.leading, "a does not lead")
		require.NoError(t, a.r.Shutdown(context.Background()))
		assert.Equal(t, "a", c.holder(t))
		assert.Equal(t, 1, a.logCount("lease left to expire"))
	})
}

// Invariants S3, S6.
func TestReleaseNeverClobbersANewerHolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.start(t)
		waitFor(t, time.Minute, a.leading, "a does not lead")
		// Someone overwrites the holder by hand; a finds out on its next renewal.
		c.edit(t, func(l *coordinationv1.Lease) { l.Spec.HolderIdentity = ptr.To("intruder") })
		waitFor(t, time.Minute, func() bool { return !a.leading() }, "a kept its group although the Lease names another holder")
		require.NoError(t, a.r.Shutdown(context.Background()))
		assert.Equal(t, "intruder", c.holder(t))
	})
}

// Invariant S9.
func TestFailedStartGivesTheLeaseBackEvenWithoutReleaseOnShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		cfg := testConfigFor("testrcv")
		cfg.LeaderElection.ReleaseOnShutdown = false
		a := newReplica(t, c, "a", cfg)
		errStart := errors.New("boom")
		a.b.startErr.Store(&errStart)
		a.start(t)
		waitFor(t, time.Minute, func() bool { return a.logCount("lease released") > 0 }, "a kept the Lease after its group failed to start")
		assert.Empty(t, c.holder(t))
		require.NoError(t, a.r.Shutdown(context.Background()))
	})
}

// Invariant S9.
func TestFailedStartsBackOffExponentially(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		errStart := errors.New("boom")
		a.b.startErr.Store(&errStart)
		a.start(t)
		var acquired []time.Time
		waitFor(t, 10*time.Minute, func() bool {
			if n := a.logCount("leadership acquired"); n > len(acquired) {
				acquired = append(acquired, time.Now())
			}
			return len(acquired) == 6
		}, "a stopped retrying")
		for i := 2; i < len(acquired); i++ {
			assert.Greater(t, acquired[i].Sub(acquired[i-1]), acquired[i-1].Sub(acquired[i-2]), "pauses grow: %v", acquired)
		}
		// Once the cause goes away, the group starts and the backoff resets.
		a.b.startErr.Store(nil)
		waitFor(t, 5*time.Minute, a.leading, "a does not lead once its sub-receiver can start")
		assert.Equal(t, componentstatus.StatusOK, a.host.lastStatus().Status())
		require.NoError(t, a.r.Shutdown(context.Background()))
	})
}
