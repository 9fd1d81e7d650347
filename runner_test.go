package leaderreceivercreator

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// The campaign and term loop (runner.go): one group among replicas, a term
// lost and won again, Start and Shutdown, the bound on a group's start. By
// topic, elsewhere: a group's stop and its failures (stop_test.go), the
// Lease's hand-over and the back-off (handover_test.go), reloads
// (reload_test.go), the component status (status_test.go), group behaviour
// (group_test.go), per-process state (process_test.go).
//
// Every test here runs in a synctest bubble: the timings are the defaults
// (15s / 10s / 2s), and time only passes when every goroutine waits.

// Invariant S1.
func TestTwoReplicasRunExactlyOneGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		a, b := newReplica(t, c, "a", testConfigFor("testrcv")), newReplica(t, c, "b", testConfigFor("testrcv"))
		a.start(t)
		b.start(t)
		waitFor(t, time.Minute, func() bool { return a.leading() || b.leading() }, "no replica leads")
		time.Sleep(2 * time.Minute) // fake time: many renewals and retries
		synctest.Wait()

		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
		leader, standby := a, b
		if b.leading() {
			leader, standby = b, a
		}
		assert.Equal(t, leader.name, c.holder(t))
		assert.Len(t, leader.metrics.AllMetrics(), 1, "the leader's sub-receiver emits")
		assert.Empty(t, standby.metrics.AllMetrics(), "a standby emits nothing")
		assert.Equal(t, 1, leader.logCount("leader group started"))
		assert.Zero(t, standby.logCount("leader group started"))

		require.NoError(t, a.r.Shutdown(context.Background()))
		require.NoError(t, b.r.Shutdown(context.Background()))
	})
}

// Invariants S1, S7.
func TestRenewFailureStopsGroupAndCampaignsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		a, b := newReplica(t, c, "a", testConfigFor("testrcv")), newReplica(t, c, "b", testConfigFor("testrcv"))
		a.start(t)
		waitFor(t, time.Minute, a.leading, "a does not lead")
		b.start(t)

		for round := range 3 {
			leader, standby := a, b
			if round%2 == 1 {
				leader, standby = b, a
			}
			leader.fail.Store(true) // the leader loses the API server
			lostAt := time.Now()
			waitFor(t, time.Minute, func() bool { return !leader.leading() }, "round %d: %s kept its group", round, leader.name)
			// It gave up within renew_deadline (plus one retry period).
			assert.LessOrEqual(t, time.Since(lostAt), 12*time.Second)
			waitFor(t, time.Minute, standby.leading, "round %d: %s did not take over", round, standby.name)
			leader.fail.Store(false)     // it comes back as a standby
			time.Sleep(30 * time.Second) // fake time: the lease expires many times over
			synctest.Wait()
			assert.False(t, leader.leading(), "round %d: %s leads again while %s holds the Lease", round, leader.name, standby.name)
		}
		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
		// a lost, b lost, a lost: each came back and won again after the other lost.
		assert.Equal(t, 2, a.logCount("leadership lost"))
		assert.Equal(t, 1, b.logCount("leadership lost"))
		assert.Equal(t, componentstatus.StatusOK, a.host.lastStatus().Status(), "a recovered")

		require.NoError(t, a.r.Shutdown(context.Background()))
		require.NoError(t, b.r.Shutdown(context.Background()))
	})
}

// Invariant S14.
func TestShutdownWithoutStartAndTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		require.NoError(t, a.r.Shutdown(context.Background()))
		require.NoError(t, a.r.Shutdown(context.Background()))
		assert.ErrorIs(t, a.r.Start(context.Background(), a.host), errShutDown, "no campaign after Shutdown")

		b := newReplica(t, c, "b", testConfigFor("testrcv"))
		b.start(t)
		waitFor(t, time.Minute, b.leading, "b does not lead")
		require.NoError(t, b.r.Shutdown(context.Background()))
		require.NoError(t, b.r.Shutdown(context.Background()))
		assert.Equal(t, 1, b.logCount("leader group stopped"))
		assert.Equal(t, 1, b.logCount("lease released"))
	})
}

// A factory's Create that never returns, while the term is healthy. Before:
// nothing bounded the group's start, so the replica kept the Lease renewed
// for as long as it hung and ran nothing. Now the start is given up after
// start_timeout, the Lease is given back and another replica leads.
// Invariant S9.
func TestHungCreateGivesTheLeaseAwayAfterStartTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		require.NoError(t, c.tracker.Add(freeLease()))
		cfg := testConfigFor("testrcv")
		cfg.StartTimeout = 20 * time.Second
		a := newReplica(t, c, "a", cfg)
		a.b.createGate = make(chan struct{}) // never closed while a leads
		a.start(t)
		waitFor(t, time.Minute, func() bool { return c.holder(t) == "a" }, "a did not take the Lease")
		b := newReplica(t, c, "b", testConfigFor("testrcv"))
		b.start(t)
		took := time.Now()
		waitFor(t, 2*time.Minute, b.leading, "a kept the Lease while its group's start hung")
		assert.Less(t, time.Since(took), 25*time.Second, "b led only after the Lease expired")
		require.Equal(t, 1, a.logCount(logmsg.GroupStartFailed))
		assert.Contains(t, a.logs.FilterMessage(logmsg.GroupStartFailed).All()[0].ContextMap()["error"],
			"start_timeout: the group had not started after 20s")
		assert.Equal(t, 1, a.logCount(logmsg.Released))
		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
	})
}

// Sequences found by a second reader of the term-deadline design; each
// comment tells what went wrong before the fix the test now holds.

// (Defence in depth; the real client cancels Campaign's attempt at
// renew_deadline, the fake one does not). Campaign hands out a term won by an
// attempt whose answer came later than renew_deadline (here later than
// lease_duration): its Deadline is already past, and another replica may
// already lead. The term renew path guards against an API call that hangs
// (the timer in Term.attempt); Campaign does not. a then starts its group,
// which overlaps b's in most rounds, and a stop that is instant is reported
// as a FatalError because the deadline it is given has passed.
// Invariant S4.
func TestCampaignNeverHandsOutATermPastItsDeadline(t *testing.T) {
	const rounds = 8
	acquired, overlaps := 0, 0
	for range rounds {
		synctest.Test(t, func(t *testing.T) {
			j := newJournal()
			c := newCluster(j)
			b := newReplica(t, c, "b", testConfigFor("testrcv"))
			b.start(t)
			waitFor(t, time.Minute, b.leading, "b does not lead")
			a := newReplica(t, c, "a", testConfigFor("testrcv"))
			a.start(t)
			time.Sleep(5 * time.Second)
			a.slow.Store(int64(30 * time.Second)) // the answer to a's takeover write comes 30s late
			b.fail.Store(true)                    // b loses the API server and its term
			waitFor(t, time.Minute, func() bool { return c.holder(t) == "a" }, "a did not take over")
			b.fail.Store(false) // b is back: it sees a's record stay unchanged and takes over
			time.Sleep(time.Minute)
			synctest.Wait()
			acquired += a.logCount(logmsg.Acquired)
			if j.maxOverlap() > 1 {
				overlaps++
			}
			require.NoError(t, b.r.Shutdown(context.Background()))
			_ = a.r.Shutdown(context.Background())
		})
	}
	assert.Zero(t, acquired, "Campaign handed a a term whose renew deadline (and Deadline) had passed, in %d of %d rounds", acquired, rounds)
	assert.Zero(t, overlaps, "two groups ran at once in %d of %d rounds", overlaps, rounds)
}
