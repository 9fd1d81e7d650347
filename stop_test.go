package leaderreceivercreator

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/receiver"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// The tests here run in a synctest bubble unless their comment says
// otherwise: the timings are the defaults (15s / 10s / 2s), and time only
// passes when every goroutine waits.

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

// A sub-receiver whose Shutdown hangs on a graceful shutdown: the stop is
// bounded by the term's deadline less the exit budget, the Lease is not
// released (the member may still run), and Shutdown says so. No FatalError:
// the collector is already exiting and would no longer read it. If the
// process is still there at the deadline, the runner ends it; a standby
// takes over once the Lease expires.
// Invariants S8, S10.
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
// Invariant S10.
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

// The fault sequences of "never two groups at once, on every path". Each
// would give two groups, or a Lease held by a replica that runs nothing,
// without the term's deadline.

// 1. A member's Start blocks (ignoring its context) after another member
// started, and the leader is then cut off: the started member stops when the
// term is lost, and the replica takes itself out by the deadline, before a
// standby can take over, instead of running half a group until Start returns.
// Invariants S7, S10.
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
// Invariant S7.
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
// Invariants S8, S10.
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
// Invariant S14.
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
// Invariants S4, S7.
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
// Invariant S10.
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

// A member's Start that never returns and ignores its context, while the
// term is healthy. Before: the Lease stayed renewed for as long as it hung,
// with half a group running. Now the start is given up after start_timeout;
// the rollback cannot stop that member, so the replica takes itself out
// (FatalError, and exit at the deadline) and another replica leads.
// Invariants S9, S10.
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
// Invariant S10.
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

// In a real collector: a group whose rollback hangs makes the replica report
// a FatalError, and the collector exits by itself (as kube-controller-manager
// does when it loses its lease), although the block sits in two pipelines.
// Invariant S10.
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
// Invariants S10, S14.
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
// Invariant S10.
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

// With a bounded Shutdown ctx: "Shutdown returns within its ctx
// whatever the group does" does not hold either, because close() needs r.mu,
// which the blocked FatalError report holds. (Real time: a goroutine blocked
// on a sync.Mutex stalls a synctest bubble's clock.)
// Invariant S14.
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

// ValidateTimings accepts lease_duration - renew_deadline >=
// MinStopMargin (1s), documented as "the time the group has to stop", but the
// stop is bounded by Deadline = last renewal + lease_duration - 1 %: the
// budget after a loss is lease_duration - renew_deadline - lease_duration/100,
// which is zero at 100s/99s and negative above. With 120s/119s (accepted),
// Lost closes after Deadline has passed, so every ordinary loss of the Lease
// stops an instantly-stopping group with an expired context, declares it hung
// and reports a FatalError.
// Invariant S4.
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
