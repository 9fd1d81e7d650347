package leaderreceivercreator

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/ptr"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// Every test here runs in a synctest bubble: the timings are the defaults
// (15s / 10s / 2s), and time only passes when every goroutine waits.

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

func TestLostAPIAccessIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.fail.Store(true)
		a.start(t)
		waitFor(t, time.Minute, func() bool {
			ev := a.host.lastStatus()
			return ev != nil && ev.Status() == componentstatus.StatusRecoverableError
		}, "no RecoverableError while the API server is unreachable")
		assert.ErrorContains(t, a.host.lastStatus().Err(), "injected")
		assert.False(t, a.leading())
		time.Sleep(time.Minute) // fake time: ~20 failed attempts
		assert.Equal(t, 1, a.logCount("cannot read or write the lease"), "logged once, not on every retry")
		assert.Equal(t, 1, a.logCount(logmsg.WatchBroken), "logged once, not on every retry")
		assert.Contains(t, a.logs.FilterMessage(logmsg.WatchBroken).All()[0].ContextMap()["error"], "list lease ns/lease: connection refused (injected)")
		assert.Zero(t, a.logCount(logmsg.Watching))

		a.fail.Store(false)
		waitFor(t, time.Minute, a.leading, "a does not lead once the API server is back")
		assert.Equal(t, componentstatus.StatusOK, a.host.lastStatus().Status())
		assert.Equal(t, 1, a.logCount("lease reachable again"))
		time.Sleep(time.Minute) // fake time: the watch is back (backoff up to a minute), a leads on
		assert.Equal(t, 1, a.logCount(logmsg.Watching), "logged when the watch came back, once")
		require.NoError(t, a.r.Shutdown(context.Background()))
	})
}

func TestGroupStartFailureRollsBackAndGivesTheLeaseAway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		// a runs two sub-receivers; the second one fails to start on a only.
		a := newReplica(t, c, "a", testConfigFor("testrcv", "zother"))
		bad := &behaviour{replica: "a", journal: j}
		errStart := errors.New("port 4317 is taken")
		bad.startErr.Store(&errStart)
		a.host.factories[component.MustNewType("zother")] = testFactory(component.MustNewType("zother"), bad)
		tel := componenttest.NewTelemetry()
		defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
		a.r.set.TelemetrySettings = tel.NewTelemetrySettings()
		a.r.telemetry = mustTelemetry(t, a.r.set)
		a.start(t)

		waitFor(t, time.Minute, func() bool { return a.logCount("lease released") > 0 }, "a did not give the Lease back")
		// All or nothing: testrcv (one instance per signal) had started, and
		// it and the failed zother were shut down before the Lease was given
		// back. (Renewals while a waits out its newly created Lease repeat
		// "lease a".)
		entries := j.list()
		entries = append(entries[:1], slices.DeleteFunc(entries[1:], func(e string) bool { return e == "lease a" })...)
		start, stop := "start a/testrcv/leader_receiver_creator", "stop a/testrcv/leader_receiver_creator"
		startZ, stopZ := "start a/zother/leader_receiver_creator", "stop a/zother/leader_receiver_creator"
		require.Len(t, entries, 8, "%v", entries)
		assert.Equal(t, []string{"lease a", start, start, startZ}, entries[:4])
		assert.ElementsMatch(t, []string{stop, stop, stopZ}, entries[4:7], "stopped concurrently")
		assert.Equal(t, "lease ", entries[7])
		assert.Empty(t, c.holder(t))
		ev := a.host.lastStatus()
		require.NotNil(t, ev)
		assert.Equal(t, componentstatus.StatusRecoverableError, ev.Status())
		assert.ErrorContains(t, ev.Err(), "receivers::zother: start: port 4317 is taken")

		// A healthy replica takes the free Lease while a backs off.
		b := newReplica(t, c, "b", testConfigFor("testrcv", "zother"))
		b.host.factories[component.MustNewType("zother")] = testFactory(component.MustNewType("zother"), b.b)
		b.start(t)
		waitFor(t, time.Minute, b.leading, "b did not take the Lease a gave back")
		assert.Equal(t, "b", c.holder(t))
		assert.Equal(t, 1, j.maxOverlap())

		failures, err := tel.GetMetric("otelcol_leader_group_start_failures")
		require.NoError(t, err)
		assert.NotEmpty(t, failures.Data)

		require.NoError(t, b.r.Shutdown(context.Background()))
		require.NoError(t, a.r.Shutdown(context.Background()))
	})
}

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

// A sub-receiver whose Shutdown hangs on a graceful shutdown: the stop is
// bounded by the term's deadline less the exit budget, the Lease is not
// released (the member may still run), and Shutdown says so. No FatalError:
// the collector is already exiting and would no longer read it. If the
// process is still there at the deadline, the runner ends it; a standby
// takes over once the Lease expires.
func TestHungShutdownOnShutdownKeepsTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.b.hang = make(chan struct{})
		a.start(t)
		waitFor(t, time.Minute, a.leading, "a does not lead")
		renewed := c.lease(t).Spec.RenewTime.Time
		deadline := renewed.Add(15*time.Second - 150*time.Millisecond)

		err := a.r.Shutdown(context.Background())
		require.ErrorContains(t, err, logmsg.GroupNotStopped+": sub-receivers testrcv did not stop in time")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		// The members had until the deadline less the exit budget, (15s-10s)/4.
		assert.Equal(t, deadline.Add(-1250*time.Millisecond), time.Now())
		assert.Equal(t, "a", c.holder(t), "the Lease must not be released while a sub-receiver may still run")
		notStopped := a.logs.FilterMessage(logmsg.GroupNotStopped).All()
		require.Len(t, notStopped, 1, "one line for a failed stop")
		assert.Equal(t, []any{"testrcv"}, notStopped[0].ContextMap()["receivers"])
		assert.Equal(t, "shutdown", notStopped[0].ContextMap()["reason"])
		assert.Zero(t, a.logCount(logmsg.GroupStopped)+a.logCount(logmsg.GroupStopErrors))
		assert.Nil(t, a.host.fatalErr())

		// The process lingers: at the deadline the runner ends it.
		waitFor(t, time.Minute, func() bool { return a.exitCode.Load() != 0 }, "the process was not ended")
		assert.Equal(t, int64(exitCode), a.exitCode.Load())
		assert.Equal(t, deadline.UnixNano(), a.exitTime.Load(), "ended at the deadline")
		assert.Equal(t, 1, a.logCount(logmsg.Exiting))

		// A standby takes over once the Lease expires.
		b := newReplica(t, c, "b", testConfigFor("testrcv"))
		b.start(t)
		waitFor(t, time.Minute, b.leading, "b did not take over the expired Lease")
		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
		require.NoError(t, b.r.Shutdown(context.Background()))
	})
}

// A member that does stop, only late, after the exit budget began: the
// replica takes itself out, but the process is not ended at the deadline.
func TestLateStopIsNotEnded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.start(t)
		waitFor(t, time.Minute, a.leading, "a does not lead")
		// Down between the deadline less the exit budget and the deadline.
		renewed := c.lease(t).Spec.RenewTime.Time
		a.b.shutdownDelay = time.Until(renewed.Add(14200 * time.Millisecond))
		require.ErrorContains(t, a.r.Shutdown(context.Background()), "did not stop in time")
		time.Sleep(time.Minute) // fake time: past the deadline
		synctest.Wait()
		assert.Zero(t, a.exitCode.Load())
		assert.Zero(t, a.logCount(logmsg.Exiting))
	})
}

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

var leasesGVR = coordinationv1.SchemeGroupVersion.WithResource("leases")

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

// The fault sequences of "never two groups at once, on every path". Each
// would give two groups, or a Lease held by a replica that runs nothing,
// without the term's deadline.

// 1. A member's Start blocks (ignoring its context) after another member
// started, and the leader is then cut off: the started member stops when the
// term is lost, and the replica takes itself out by the deadline, before a
// standby can take over, instead of running half a group until Start returns.
func TestSlowMemberStartUnderPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		a := newReplica(t, c, "a", testConfigFor("testrcv", "zother"))
		slowB := a.addType()
		slowB.block = make(chan struct{})
		a.exitsOnFatal()
		a.start(t)
		waitFor(t, time.Minute, func() bool { return slowB.entered.Load() == 1 }, "zother's Start was not called")
		b := newReplica(t, c, "b", testConfigFor("testrcv", "zother"))
		b.addType()
		b.start(t)
		synctest.Wait()
		assert.Equal(t, 3, j.runningCount("a"), "testrcv (metrics, logs) runs while zother starts")
		renewed := c.lease(t).Spec.RenewTime.Time

		a.fail.Store(true)
		waitFor(t, time.Minute, func() bool { return j.runningCount("a") == 1 }, "testrcv kept running after the loss")
		assert.WithinDuration(t, renewed.Add(10*time.Second), time.Now(), 100*time.Millisecond, "testrcv stopped when the term was lost")
		waitFor(t, time.Minute, func() bool { return a.host.fatalErr() != nil }, "a did not take itself out")
		assert.Equal(t, renewed.Add(15*time.Second-150*time.Millisecond-1250*time.Millisecond), a.host.fatalAt(),
			"out by the deadline, less the exit budget")
		assert.ErrorContains(t, a.host.fatalErr(), "sub-receivers zother did not stop in time")
		waitFor(t, time.Minute, b.leading, "b did not take over")
		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
		assert.Zero(t, a.logCount(logmsg.GroupStarted))
		assert.Equal(t, 1, a.logCount(logmsg.Acquired), "a never campaigns again")
	})
}

// 1b. The same, but zother's Start returns when its context is cancelled, as
// well-behaved receivers do: the group stops cleanly and the replica goes on
// as a standby.
func TestStartAbortedWhenTheTermIsLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		a := newReplica(t, c, "a", testConfigFor("testrcv", "zother"))
		slowB := a.addType()
		slowB.blockCtx = true
		a.start(t)
		waitFor(t, time.Minute, func() bool { return slowB.entered.Load() == 1 }, "zother's Start was not called")
		a.fail.Store(true)
		waitFor(t, time.Minute, func() bool { return a.logCount(logmsg.GroupStopped) == 1 }, "the group did not stop")
		assert.Zero(t, j.runningCount("a"))
		assert.Nil(t, a.host.fatalErr())
		stopped := a.logs.FilterMessage(logmsg.GroupStopped).All()
		assert.Contains(t, stopped[0].ContextMap()["reason"], "lease lost: ")
		a.fail.Store(false)
		waitFor(t, time.Minute, func() bool { return a.logCount(logmsg.Acquired) == 2 }, "a does not campaign again")
	})
}

// 2. A member fails to start and another member's Shutdown hangs in the
// rollback: the replica takes itself out by the deadline, and stops renewing,
// so that another replica can lead once the Lease expires.
func TestHungRollback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		require.NoError(t, c.tracker.Add(freeLease()))
		a := newReplica(t, c, "a", testConfigFor("testrcv", "zother"))
		a.b.hang = make(chan struct{})
		failing := a.addType()
		errStart := errors.New("port 4317 is taken")
		failing.startErr.Store(&errStart)
		a.exitsOnFatal()
		acquired := time.Now() // the Lease is free: a takes it at once
		a.start(t)
		waitFor(t, time.Minute, func() bool { return a.host.fatalErr() != nil }, "a did not take itself out")
		assert.ErrorContains(t, a.host.fatalErr(), "sub-receivers testrcv did not stop in time")
		assert.Equal(t, "a", c.holder(t), "not released: testrcv may still run")
		// The rollback began at once: it had until the deadline of then.
		assert.Equal(t, acquired.Add(15*time.Second-150*time.Millisecond-1250*time.Millisecond), a.host.fatalAt(),
			"out by the deadline, less the exit budget")

		b := newReplica(t, c, "b", testConfigFor("testrcv", "zother"))
		b.addType()
		b.start(t)
		waitFor(t, time.Minute, b.leading, "no other replica ever leads")
		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
		require.NoError(t, a.r.Shutdown(context.Background()))
	})
}

// 3. Shutdown while a member's Start blocks: Shutdown returns within its
// context; from then on the Lease is no longer renewed by this replica, and
// nothing is reported, although the group goes on stopping in the background.
func TestShutdownWhileAMemberStartBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv", "zother"))
		slowB := a.addType()
		slowB.block = make(chan struct{})
		tel := componenttest.NewTelemetry()
		defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
		a.r.set.TelemetrySettings = tel.NewTelemetrySettings()
		a.r.telemetry = mustTelemetry(t, a.r.set)
		a.start(t)
		waitFor(t, time.Minute, func() bool { return slowB.entered.Load() == 1 }, "zother's Start was not called")

		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		begin := time.Now()
		assert.ErrorIs(t, a.r.Shutdown(ctx), context.DeadlineExceeded)
		assert.Equal(t, 3*time.Second, time.Since(begin), "Shutdown returns at its context's deadline")
		renewed := c.lease(t).Spec.RenewTime.Time
		statuses := a.host.statusCount()
		time.Sleep(time.Minute) // fake time: the old code renewed every 2s
		synctest.Wait()
		assert.Equal(t, renewed, c.lease(t).Spec.RenewTime.Time, "the Lease was renewed after Shutdown returned")
		assert.Equal(t, statuses, a.host.statusCount(), "status reported after Shutdown returned")
		assert.Equal(t, 1, a.logCount(logmsg.GroupNotStopped), "the group still could not stop by the deadline")
	})
}

// 4. The acquiring write is applied at once, but its answer comes 9s (of the
// 10s renew_deadline) late, and the leader is cut off before it arrives (else
// the renew loop's last attempt before the deadline renews it). The term is lost
// at renew_deadline after the write, not a retry period later, and the group
// has until lease_duration after the write, not the margin from when the loss
// was noticed: a group whose Shutdown takes 3.5s is down before the standby,
// which saw the write at once, takes over.
func TestLossNoticedLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		require.NoError(t, c.tracker.Add(freeLease()))
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.b.shutdownDelay = 3500 * time.Millisecond
		a.slow.Store(int64(9 * time.Second))
		a.start(t)
		time.Sleep(time.Millisecond) // fake time: a's write is applied, its answer is on its way
		written := time.Now()
		require.Equal(t, "a", c.holder(t))
		b := newReplica(t, c, "b", testConfigFor("testrcv"))
		b.start(t) // sees a's write at once
		a.fail.Store(true)
		waitFor(t, time.Minute, a.leading, "a does not lead")
		waitFor(t, time.Minute, func() bool { return a.logCount(logmsg.Lost) == 1 }, "a did not lose its term")
		assert.LessOrEqual(t, time.Since(written), 10*time.Second, "the loss was noticed after renew_deadline")
		waitFor(t, time.Minute, b.leading, "b did not take over")
		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
		assert.Nil(t, a.host.fatalErr())
	})
}

// 5. A member's Shutdown hangs when the term is lost: the replica never
// campaigns again, so it cannot start a second group in the same process
// while the first is still inside Shutdown.
func TestHungStopNeverGivesASecondGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.b.hang = make(chan struct{})
		a.start(t)
		logsHost := &testHost{factories: a.host.factories} // a second pipeline instance
		require.NoError(t, a.r.Start(context.Background(), logsHost))
		waitFor(t, time.Minute, a.leading, "a does not lead")
		a.fail.Store(true)
		waitFor(t, time.Minute, func() bool { return a.host.fatalErr() != nil }, "a did not take itself out")
		// The collector reads one FatalError; a second would block it.
		assert.Equal(t, 1, a.host.fatalCount()+logsHost.fatalCount())
		a.fail.Store(false)
		time.Sleep(2 * time.Minute) // fake time: the Lease expired long ago
		synctest.Wait()
		assert.Equal(t, 1, a.logCount(logmsg.Acquired), "a campaigned again with a group still stopping")
		assert.Equal(t, int64(2), a.b.instances.Load(), "one group: one instance per signal")
		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
		assert.Equal(t, 1, a.logCount(logmsg.GroupNotStopped))
		assert.Zero(t, a.logCount(logmsg.GroupStopped)+a.logCount(logmsg.GroupStopErrors))
	})
}

// A collector reload builds a new runner in the same process; with an
// explicit identity it finds the Lease naming itself and renews it at once.
// It must not start its group while the old runner's group is still
// stopping, nor ever once that group failed to stop.
func TestReloadInOneProcessNeverRunsTwoGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		old := newReplica(t, c, "a", testConfigFor("testrcv"))
		old.b.hang = make(chan struct{})
		old.start(t)
		waitFor(t, time.Minute, old.leading, "the old runner does not lead")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.Error(t, old.r.Shutdown(ctx), "its group cannot stop")

		reloaded := newReplicaIn(t, c, "a", testConfigFor("testrcv"), old.r.process) // the same process, the same identity
		reloaded.b = old.b
		reloaded.host.factories[testType] = testFactory(testType, old.b)
		reloaded.start(t)
		time.Sleep(time.Minute) // fake time
		synctest.Wait()
		assert.Equal(t, int64(2), old.b.instances.Load(), "a second group was started in the process")
		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
		assert.ErrorContains(t, reloaded.host.fatalErr(), "did not stop in this process")
	})
}

// The collector starts one instance of the block per pipeline, each with its
// own host: the shared runner's status reaches all of them, including one
// started after the status changed.
func TestStatusReachesEveryPipelineInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.fail.Store(true)
		a.start(t) // the metrics pipeline's instance
		waitFor(t, time.Minute, func() bool { return a.host.lastStatus() != nil }, "no status")
		logsHost := &testHost{factories: a.host.factories} // the logs pipeline's, started later
		require.NoError(t, a.r.Start(context.Background(), logsHost))
		for _, h := range []*testHost{a.host, logsHost} {
			require.NotNil(t, h.lastStatus())
			assert.Equal(t, componentstatus.StatusRecoverableError, h.lastStatus().Status())
		}
		a.fail.Store(false)
		waitFor(t, time.Minute, a.leading, "a does not lead")
		// The member reported from its Start; the report reaches the hosts
		// from the delivery goroutine, which may not have run yet.
		synctest.Wait()
		for _, h := range []*testHost{a.host, logsHost} {
			assert.Equal(t, componentstatus.StatusOK, h.lastStatus().Status())
		}
		require.NoError(t, a.r.Shutdown(context.Background()))
	})
}

// A replica whose group failed to start gives the Lease away and is a
// healthy standby again after its back-off: its status returns to OK
// although no group of its own started (a liveness probe on a lasting
// RecoverableError would otherwise restart a healthy pod).
func TestStandbyAfterFailedStartReturnsToOK(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		require.NoError(t, c.tracker.Add(freeLease()))
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		errStart := errors.New("port 4317 is taken")
		a.b.startErr.Store(&errStart)
		a.start(t)
		waitFor(t, time.Minute, func() bool { return a.logCount(logmsg.Released) == 1 }, "a kept the Lease")
		assert.Equal(t, componentstatus.StatusRecoverableError, a.host.lastStatus().Status())
		b := newReplica(t, c, "b", testConfigFor("testrcv"))
		b.start(t)
		waitFor(t, time.Minute, b.leading, "b does not lead")
		waitFor(t, time.Minute, func() bool { return a.host.lastStatus().Status() == componentstatus.StatusOK },
			"a stays RecoverableError as a healthy standby")
		assert.Equal(t, 1, a.logCount(logmsg.Acquired))
	})
}

// In a real collector: a group whose rollback hangs makes the replica report
// a FatalError, and the collector exits by itself (as kube-controller-manager
// does when it loses its lease), although the block sits in two pipelines.
func TestCollectorExitsWhenTheGroupCannotStop(t *testing.T) {
	j := newJournal()
	hung := &behaviour{replica: "a", journal: j, hang: make(chan struct{})}
	failing := &behaviour{replica: "a", journal: j}
	errStart := errors.New("port 4317 is taken")
	failing.startErr.Store(&errStart)
	defer hung.release()

	col, ran, logs := realCollector(t, map[component.Type]receiver.Factory{
		testType:                        testFactory(testType, hung),
		component.MustNewType("zother"): testFactory(component.MustNewType("zother"), failing),
	}, "{testrcv: {}, zother: {}}")
	select {
	case err := <-ran:
		require.NoError(t, err, "the collector shut down cleanly")
	case <-time.After(time.Minute):
		col.Shutdown()
		t.Fatalf("the collector did not exit; logs: %v", logs.All())
	}
	exit := logs.FilterMessage("Asynchronous error received, terminating process").All()
	require.Len(t, exit, 1)
	assert.Contains(t, exit[0].ContextMap()["error"], "sub-receivers testrcv did not stop in time")
	assert.Equal(t, 1, logs.FilterMessage(logmsg.GroupNotStopped).Len())
	assert.Equal(t, 1, logs.FilterMessage(logmsg.Acquired).Len(), "it never led again")
	// The member still hangs after the collector's Run returned: at the
	// deadline the runner ends the process (here: records it).
	require.Eventually(t, func() bool { return logs.FilterMessage(logmsg.Exiting).Len() == 1 }, 10*time.Second, 10*time.Millisecond,
		"the process was not ended at the deadline")
}

// Sequences found by a second reader of the term-deadline design; each
// comment tells what went wrong before the fix the test now holds.

// A group that does not stop by the deadline on a graceful
// shutdown makes the loop report a FatalError while the collector is shutting
// down. In the collector nobody reads the async error channel then, so the
// report blocks for ever, holding r.mu: Shutdown never returns (with a bounded
// ctx it blocks on r.mu in close()), the collector never exits, and the term,
// abandoned before the report, expires: a standby starts a second group while
// the first one's member is still running.
func TestShutdownReturnsWhenTheGroupCannotStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		m := newCollectorModel(t)
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		m.drainInCleanup(t)
		a.b.hang = make(chan struct{})
		require.NoError(t, a.r.Start(context.Background(), &collectorHost{testHost: a.host, m: m}))
		waitFor(t, time.Minute, a.leading, "a does not lead")
		b := newReplica(t, c, "b", testConfigFor("testrcv"))
		b.start(t)
		synctest.Wait()

		// SIGTERM: Run's loop has left its select and shuts the service down.
		returned := make(chan error, 1)
		go func() { returned <- a.r.Shutdown(context.Background()) }()
		time.Sleep(time.Minute) // fake time: the deadline (< 15s) is long past
		synctest.Wait()

		assert.Equal(t, 1, a.logCount(logmsg.GroupNotStopped), "the stop did hit the deadline")
		select {
		case err := <-returned:
			assert.ErrorContains(t, err, logmsg.GroupNotStopped)
		default:
			t.Errorf("Shutdown has not returned a minute after it was called: the FatalError report blocks for ever (r.mu held)")
		}
		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once while a's collector was stuck in shutdown: %v", j.list())
	})
}

// The same report outside shutdown, for a block in two pipelines
// (metrics and logs: two pipeline instances, two hosts; what addHost is for).
// The term is lost, a member's Shutdown hangs, the loop reports the
// FatalError to every host: the first send makes Run's loop leave its select
// and shut the collector down, the second one has no reader and blocks for
// ever, holding r.mu (and, in the collector, the status reporter's mutex that
// every other component's status goes through). The collector never exits,
// and a standby takes over the abandoned Lease while a's member still runs.
func TestOneFatalErrorForTwoPipelines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		m := newCollectorModel(t)
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		m.drainInCleanup(t)
		a.b.hang = make(chan struct{})

		// Run's control loop: at the first async error it leaves its select
		// and shuts the service down, which calls our Shutdown.
		exited := make(chan struct{})
		go func() {
			select {
			case err := <-m.asyncErr:
				assert.ErrorContains(t, err, logmsg.GroupNotStopped)
			case <-m.stop:
				return
			}
			_ = a.r.Shutdown(context.Background())
			close(exited)
		}()

		metricsHost := &collectorHost{testHost: a.host, m: m}
		logsHost := &collectorHost{testHost: &testHost{factories: a.host.factories}, m: m}
		require.NoError(t, a.r.Start(context.Background(), metricsHost))
		require.NoError(t, a.r.Start(context.Background(), logsHost))
		waitFor(t, time.Minute, a.leading, "a does not lead")
		b := newReplica(t, c, "b", testConfigFor("testrcv"))
		b.start(t)
		synctest.Wait()

		a.fail.Store(true) // a loses the API server: the term is lost, the stop hangs
		time.Sleep(time.Minute)
		synctest.Wait()

		assert.Equal(t, 1, a.logCount(logmsg.GroupNotStopped), "the stop did hit the deadline")
		select {
		case <-exited:
		default:
			t.Errorf("a minute after the FatalError the collector has not exited: the report to the second pipeline instance blocks for ever")
		}
		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
	})
}

// A predecessor's release clobbers its same-process successor's
// term. a1's group fails to start and a member's Shutdown is slow (but within
// the deadline); Shutdown(ctx) gives up waiting and returns. A successor a2
// for the same Lease and the same explicit identity in the same process (a
// config reload: the case leaseSlot exists for) wins the Lease at once by
// renewing a1's record and waits for the slot. When a1's member finally stops,
// a1 returns the slot and then, in groupStartFailed, releases the Lease with
// context.Background(): the record still names "a", so the release goes
// through and the Lease is free while a2 starts its group. A standby takes the
// free Lease and starts a second group.
func TestReloadedRunnerWaitsForItsPredecessorsTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		a1 := newReplica(t, c, "a", testConfigFor("testrcv"))
		boom := errors.New("boom")
		a1.b.startErr.Store(&boom)
		a1.b.hang = make(chan struct{})
		a1.start(t)
		waitFor(t, time.Minute, func() bool { return a1.b.entered.Load() > 0 }, "a1 never started its group")
		b := newReplica(t, c, "b", testConfigFor("testrcv"))
		b.start(t)
		synctest.Wait() // a1 is stopping its failed group; the member's Shutdown hangs

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.Error(t, a1.r.Shutdown(ctx), "a1's Shutdown gives up waiting for the group")

		// The reload: same process, same Lease, same explicit identity. It
		// campaigns only once a1's term is over.
		a2 := newReplicaIn(t, c, "a", testConfigFor("testrcv"), a1.r.process)
		a2.start(t)
		time.Sleep(5 * time.Second) // fake time
		synctest.Wait()
		assert.Zero(t, a2.logCount(logmsg.Acquired), "a2 won while a1's term was not over")
		from := len(j.list())
		close(a1.b.hang) // a1's member stops, well within a1's deadline

		waitFor(t, time.Minute, a2.leading, "a2 did not start its group")
		time.Sleep(15 * time.Second)
		synctest.Wait()

		assert.Equal(t, -1, j.index("lease ", from), "the Lease was released while a2 held it and ran its group: %v", j.list()[from:])
		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
	})
}

// runningGroup.add holds rg.mu while the factory creates the
// receiver, and stop takes rg.mu without any bound. A Create that takes longer
// than the stop margin keeps the stop from even beginning past the term's
// deadline; when Create returns, startAll calls Start, after the deadline,
// while the standby that took the expired Lease runs its group. (Real time:
// a goroutine blocked on a sync.Mutex stalls a synctest bubble's clock.)
func TestSlowCreateNeverStartsAfterTheStop(t *testing.T) {
	j := newJournal()
	c := newCluster(j)
	fast := func(cfg *Config) *Config {
		cfg.LeaderElection.LeaseDuration = 2 * time.Second
		cfg.LeaderElection.RenewDeadline = time.Second
		cfg.LeaderElection.RetryPeriod = 300 * time.Millisecond
		return cfg
	}
	a := newReplica(t, c, "a", fast(testConfigFor("zslow")))
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	t.Cleanup(func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	})
	typ := component.MustNewType("zslow")
	inner := testFactory(typ, a.b)
	a.host.factories[typ] = receiver.NewFactory(typ, inner.CreateDefaultConfig,
		receiver.WithMetrics(func(ctx context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-gate // e.g. a factory that dials or lists something in Create
			return inner.CreateMetrics(ctx, set, cfg, next)
		}, component.StabilityLevelAlpha))
	a.start(t)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("a never created its member")
	}
	b := newReplica(t, c, "b", fast(testConfigFor("testrcv")))
	b.start(t)

	a.fail.Store(true) // the term is lost while the member is being created
	waitFor(t, 10*time.Second, b.leading, "b did not take over the expired Lease")
	close(gate) // Create returns, well after a's deadline
	time.Sleep(500 * time.Millisecond)

	assert.Equal(t, 1, j.maxOverlap(), "a's member started after a's deadline while b led: %v", j.list())
}

// With a bounded Shutdown ctx: "Shutdown returns within its ctx
// whatever the group does" does not hold either, because close() needs r.mu,
// which the blocked FatalError report holds. (Real time: a goroutine blocked
// on a sync.Mutex stalls a synctest bubble's clock.)
func TestShutdownCtxHoldsWhenTheGroupCannotStop(t *testing.T) {
	c := newCluster(newJournal())
	m := newCollectorModel(t)
	cfg := testConfigFor("testrcv")
	cfg.LeaderElection.LeaseDuration = 2 * time.Second
	cfg.LeaderElection.RenewDeadline = time.Second
	cfg.LeaderElection.RetryPeriod = 300 * time.Millisecond
	a := newReplica(t, c, "a", cfg)
	m.drainInCleanup(t)
	a.b.hang = make(chan struct{})
	require.NoError(t, a.r.Start(context.Background(), &collectorHost{testHost: a.host, m: m}))
	waitFor(t, 10*time.Second, a.leading, "a does not lead")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	returned := make(chan error, 1)
	go func() { returned <- a.r.Shutdown(ctx) }()
	select {
	case err := <-returned:
		assert.ErrorIs(t, err, context.DeadlineExceeded, "the group had not stopped yet")
	case <-time.After(8 * time.Second):
		t.Errorf("Shutdown(ctx with a 4s timeout) has not returned after 8s: close() waits for r.mu, held by the blocked FatalError report")
	}
}

// (Defence in depth; the real client cancels Campaign's attempt at
// renew_deadline, the fake one does not). Campaign hands out a term won by an
// attempt whose answer came later than renew_deadline (here later than
// lease_duration): its Deadline is already past, and another replica may
// already lead. The term renew path guards against an API call that hangs
// (the timer in Term.attempt); Campaign does not. a then starts its group,
// which overlaps b's in most rounds, and a stop that is instant is reported
// as a FatalError because the deadline it is given has passed.
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

// ValidateTimings accepts lease_duration - renew_deadline >=
// MinStopMargin (1s), documented as "the time the group has to stop", but the
// stop is bounded by Deadline = last renewal + lease_duration - 1 %: the
// budget after a loss is lease_duration - renew_deadline - lease_duration/100,
// which is zero at 100s/99s and negative above. With 120s/119s (accepted),
// Lost closes after Deadline has passed, so every ordinary loss of the Lease
// stops an instantly-stopping group with an expired context, declares it hung
// and reports a FatalError.
func TestStopMarginCoversTheDriftSlack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfigFor("testrcv")
		cfg.LeaderElection.LeaseDuration = 120 * time.Second
		cfg.LeaderElection.RenewDeadline = 119 * time.Second
		require.ErrorContains(t, cfg.Validate(), "leader_election.renew_deadline (1m59s) must be at least 2.4s less than lease_duration (2m0s)")
		cfg.LeaderElection.RenewDeadline = 117600 * time.Millisecond
		require.NoError(t, cfg.Validate(), "the least margin is accepted")
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", cfg)
		a.start(t)
		waitFor(t, 5*time.Minute, a.leading, "a does not lead")
		a.fail.Store(true) // an ordinary loss: the API server is unreachable for a while
		waitFor(t, 5*time.Minute, func() bool { return !a.leading() }, "a kept its group")
		synctest.Wait()
		assert.Zero(t, a.logCount(logmsg.GroupNotStopped), "a group that stops at once was declared hung")
		assert.NoError(t, a.host.fatalErr(), "an ordinary loss of the Lease is fatal")
	})
}

// The successor releases the record its predecessor's
// group still counts on. a1's Shutdown gives up while its group is stopping
// (a member's Shutdown is slow, within a1's deadline). The successor a2 (same
// process, Lease and identity) wins by renewing a1's record and waits for the
// slot; a2 is shut down in turn (another reload, or the collector exits) and,
// from the slot wait, endTerm releases the Lease: b takes it at once and
// starts its group while a1's member has not stopped yet, although it stops
// well within a1's deadline.
func TestReloadedRunnerShutDownWhileWaitingReleasesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		a1 := newReplica(t, c, "a", testConfigFor("testrcv"))
		a1.b.hang = make(chan struct{})
		a1.start(t)
		waitFor(t, time.Minute, a1.leading, "a1 does not lead")
		b := newReplica(t, c, "b", testConfigFor("testrcv"))
		b.start(t)
		synctest.Wait()

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.Error(t, a1.r.Shutdown(ctx), "a1's Shutdown gives up waiting for the group")

		a2 := newReplicaIn(t, c, "a", testConfigFor("testrcv"), a1.r.process)
		a2.start(t)
		time.Sleep(time.Second) // fake time
		synctest.Wait()
		assert.Zero(t, a2.logCount(logmsg.Acquired), "a2 won while a1's term was not over")
		require.NoError(t, a2.r.Shutdown(context.Background()))
		time.Sleep(5 * time.Second) // fake time
		synctest.Wait()
		assert.False(t, b.leading(), "b took over before a1's deadline")
		close(a1.b.hang) // a1's member stops, within a1's deadline
		synctest.Wait()
		assert.Zero(t, a1.logCount(logmsg.GroupNotStopped), "a1's group stopped in time")
		waitFor(t, time.Minute, b.leading, "b did not take over")
		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
	})
}

// A sub-receiver's own status goes to every pipeline instance of the block.
func TestMemberStatusReachesEveryPipelineInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.b.report = componentstatus.NewRecoverableErrorEvent(errors.New("watch failed"))
		logsHost := &testHost{factories: a.host.factories}
		a.start(t)
		require.NoError(t, a.r.Start(context.Background(), logsHost))
		waitFor(t, time.Minute, a.leading, "a does not lead")
		// The member reported from its Start; the report reaches the hosts
		// from the delivery goroutine, which may not have run yet.
		synctest.Wait()
		for _, h := range []*testHost{a.host, logsHost} {
			require.NotNil(t, h.lastStatus())
			assert.ErrorContains(t, h.lastStatus().Err(), "watch failed")
		}
	})
}

// A group whose members return errors from Shutdown has stopped all the
// same: one error line, a RecoverableError until the replica campaigns again,
// and the Lease handed over as usual.
func TestStopWithErrorsLogsOneLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.b.shutdownErr = errors.New("flush failed")
		a.start(t)
		waitFor(t, time.Minute, a.leading, "a does not lead")
		a.fail.Store(true)
		waitFor(t, time.Minute, func() bool { return a.logCount(logmsg.GroupStopErrors) == 1 }, "no error line")
		assert.Zero(t, a.logCount(logmsg.GroupStopped), "one line for a stop, not two")
		line := a.logs.FilterMessage(logmsg.GroupStopErrors).All()[0]
		assert.Contains(t, line.ContextMap()["error"], "receivers::testrcv: shutdown: flush failed")
		assert.Equal(t, componentstatus.StatusRecoverableError, a.host.lastStatus().Status())
		a.fail.Store(false)
		waitFor(t, time.Minute, func() bool { return a.host.lastStatus().Status() == componentstatus.StatusOK }, "not OK again")
		assert.Nil(t, a.host.fatalErr())
	})
}

// A factory's Create that never returns, while the term is healthy. Before:
// nothing bounded the group's start, so the replica kept the Lease renewed
// for as long as it hung and ran nothing. Now the start is given up after
// start_timeout, the Lease is given back and another replica leads.
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

// A Create that returns only after the replica was shut down. Its instance
// is shut down unstarted by the group's start goroutine, which outlives the
// runner's Shutdown: nothing may wait for a Create (doc.go). The replica's
// cleanup waits for every instance it created to be shut down. Before, the
// bubble could end while that Shutdown still ran (CI of stop 20, in the
// simulation: "main bubble goroutine has exited but blocked goroutines
// remain").
func TestInstanceCreatedAfterShutdownIsShutDownUnstarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		require.NoError(t, c.tracker.Add(freeLease()))
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.b.createGate = make(chan struct{})
		a.b.shutdownDelay = 2 * time.Second
		a.start(t)
		waitFor(t, time.Minute, func() bool { return c.holder(t) == "a" }, "a did not take the Lease")
		synctest.Wait() // a's Create waits at its gate
		require.NoError(t, a.r.Shutdown(context.Background()))
		a.b.release() // the Create returns after the stop
		synctest.Wait()
		assert.Equal(t, int64(1), a.b.instances.Load(), "the Create did not return")
		assert.Zero(t, a.b.entered.Load(), "an instance created after the stop was started")
		// The test ends while that instance's Shutdown runs.
	})
}

// A member's Start that never returns and ignores its context, while the
// term is healthy. Before: the Lease stayed renewed for as long as it hung,
// with half a group running. Now the start is given up after start_timeout;
// the rollback cannot stop that member, so the replica takes itself out
// (FatalError, and exit at the deadline) and another replica leads.
func TestHungStartTakesTheReplicaOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		cfg := testConfigFor("testrcv")
		cfg.StartTimeout = 20 * time.Second
		a := newReplica(t, c, "a", cfg)
		a.b.block = make(chan struct{})
		a.start(t)
		waitFor(t, time.Minute, a.leading, "a did not start its member")
		b := newReplica(t, c, "b", testConfigFor("testrcv"))
		b.start(t)
		waitFor(t, 2*time.Minute, b.leading, "a kept the Lease while its group's start hung")
		assert.Equal(t, 1, a.logCount(logmsg.GroupNotStopped))
		assert.ErrorContains(t, a.host.fatalErr(), "sub-receivers testrcv did not stop in time")
		assert.Equal(t, int64(exitCode), a.exitCode.Load(), "a was still running its member at the deadline")
		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
	})
}

// The term is lost and the stop begins; then SIGTERM: Run's loop has left
// its select and calls our Shutdown, so nobody reads a FatalError any more.
// The stop misses its deadline, and the group stops a moment later, before
// the backstop fires. Before: the ending was a loss, not a shutdown, so the
// loop reported a FatalError to a collector that was already shutting down:
// the send blocks for ever (in the collector, holding the status reporter's
// mutex, which its own shutdown needs for every component's Stopped) and
// Shutdown returned nil. Now a block whose Shutdown has begun reports no
// FatalError: Shutdown returns the error, as for a stop that began on
// shutdown.
func TestLossThenShutdownReportsNoFatalError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		m := newCollectorModel(t)
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		m.drainInCleanup(t)
		a.b.hang = make(chan struct{})
		require.NoError(t, a.r.Start(context.Background(), &collectorHost{testHost: a.host, m: m}))
		waitFor(t, time.Minute, a.leading, "a does not lead")

		a.fail.Store(true)
		waitFor(t, time.Minute, func() bool { return a.logCount(logmsg.Lost) == 1 }, "a's term is not lost")
		returned := make(chan error, 1)
		go func() { returned <- a.r.Shutdown(context.Background()) }() // SIGTERM
		waitFor(t, time.Minute, func() bool { return a.logCount(logmsg.GroupNotStopped) == 1 }, "the stop did not miss its deadline")
		a.b.release() // the member stops within the exit budget: the backstop stays quiet
		synctest.Wait()

		assert.Zero(t, a.exitCode.Load())
		assert.Zero(t, a.host.fatalCount(), "a FatalError was sent to a collector that was shutting down")
		select {
		case err := <-returned:
			assert.ErrorContains(t, err, logmsg.GroupNotStopped)
		default:
			t.Error("Shutdown has not returned")
		}
	})
}
