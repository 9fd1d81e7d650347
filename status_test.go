package leaderreceivercreator

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/receiver"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

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

// firstFatal reads, as Run's loop does, the first error that reaches the
// collector model's async error channel, and no more.
func (m *collectorModel) firstFatal(t *testing.T) <-chan error {
	t.Helper()
	first := make(chan error, 1)
	go func() {
		select {
		case err := <-m.asyncErr:
			first <- err
		case <-m.stop:
		}
	}()
	return first
}

// A member's FatalError (k8s_cluster's cache sync timed out) in a block
// that sits in a metrics and a logs pipeline, as in the README. Before: the
// runner forwarded it to both pipeline instances while holding its lock; the
// first send starts the collector's shutdown, the second blocks for ever,
// and so does the loop at the loss of the term that follows: no stop, no
// exit timer, and b leads while a's group still runs. Now the FatalError
// never reaches the collector: the group stops, the Lease is given back and
// the block reports a RecoverableError that names the member.
// Invariants S9, S11.
func TestMemberFatalErrorEndsTheTermNotTheCollector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		m := newCollectorModel(t)
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		m.drainInCleanup(t)
		fatal := m.firstFatal(t)
		metricsHost := &collectorHost{testHost: a.host, m: m}
		logsHost := &collectorHost{testHost: &testHost{factories: a.host.factories}, m: m}
		require.NoError(t, a.r.Start(context.Background(), metricsHost))
		require.NoError(t, a.r.Start(context.Background(), logsHost))
		waitFor(t, time.Minute, func() bool { return a.logCount(logmsg.GroupStarted) == 1 }, "a does not lead")
		b := newReplica(t, c, "b", testConfigFor("testrcv"))
		b.start(t)
		synctest.Wait()

		// From a goroutine of the member's own, as k8s_cluster does.
		go componentstatus.ReportStatus(a.b.lastHost(),
			componentstatus.NewFatalErrorEvent(errors.New("failed to wait for caches to sync")))
		waitFor(t, time.Minute, b.leading, "b did not take over after a's member failed")

		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
		select {
		case err := <-fatal:
			t.Errorf("a member's FatalError reached the collector: %v", err)
		default:
		}
		assert.Zero(t, a.host.fatalCount()+logsHost.fatalCount(), "no FatalError reaches a pipeline instance")
		require.Equal(t, 1, a.logCount(logmsg.MemberFailed))
		line := a.logs.FilterMessage(logmsg.MemberFailed).All()[0].ContextMap()
		assert.Equal(t, "testrcv", line["receiver"])
		assert.Contains(t, line["error"], "failed to wait for caches to sync")
		assert.Equal(t, 1, a.logCount(logmsg.Released), "a gave the Lease back at once")
		assert.Equal(t, 1, a.logCount(logmsg.BackingOff))
		for _, h := range []*testHost{a.host, logsHost.testHost} {
			last := h.lastStatus()
			require.NotNil(t, last)
			assert.Equal(t, componentstatus.StatusRecoverableError, last.Status())
			assert.ErrorContains(t, last.Err(), "receivers::testrcv: reported a FatalError: failed to wait for caches to sync")
		}
	})
}

// A PermanentError ends the term as a FatalError does.
// Invariant S11.
func TestMemberPermanentErrorEndsTheTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.start(t)
		// Once the group is up (its member's Start entered is not enough: a
		// failure before the group is up is a failed start).
		waitFor(t, time.Minute, func() bool { return a.logCount(logmsg.GroupStarted) == 1 }, "a does not lead")
		componentstatus.ReportStatus(a.b.lastHost(), componentstatus.NewPermanentErrorEvent(errors.New("bad credentials")))
		waitFor(t, time.Minute, func() bool { return a.logCount(logmsg.Released) == 1 }, "a kept the Lease")
		assert.Equal(t, 1, a.logCount(logmsg.MemberFailed))
		assert.Zero(t, a.logCount(logmsg.GroupStartFailed), "the start itself went well")
		assert.ErrorContains(t, a.host.lastStatus().Err(), "receivers::testrcv: reported a PermanentError: bad credentials")
		assert.NoError(t, a.host.fatalErr())
	})
}

// A member that fails before the group is up (otlp reports a port it cannot
// serve as a FatalError) makes a failed start: one GroupStartFailed line
// that names it, the Lease given back.
// Invariant S11.
func TestMemberFailureDuringStartIsAFailedStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.b.report = componentstatus.NewFatalErrorEvent(errors.New("listen tcp: address already in use"))
		a.start(t)
		waitFor(t, time.Minute, func() bool { return a.logCount(logmsg.Released) == 1 }, "a kept the Lease")
		require.Equal(t, 1, a.logCount(logmsg.GroupStartFailed))
		assert.Contains(t, a.logs.FilterMessage(logmsg.GroupStartFailed).All()[0].ContextMap()["error"],
			"receivers::testrcv: reported a FatalError: listen tcp: address already in use")
		assert.Zero(t, a.logCount(logmsg.MemberFailed))
		assert.Zero(t, a.logCount(logmsg.GroupStarted))
		assert.NoError(t, a.host.fatalErr())
	})
}

// A member of an ended term keeps its host: k8s_cluster reports its
// cache-sync FatalError from a goroutine that outlives its Shutdown. Such a
// report changes nothing: it neither ends the term that runs now nor reaches
// the collector.
// Invariant S11.
func TestLateMemberFailureNeverEndsALaterTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.start(t)
		waitFor(t, time.Minute, a.leading, "a does not lead")
		first := a.b.lastHost()
		a.fail.Store(true) // the first term is lost
		waitFor(t, time.Minute, func() bool { return !a.leading() }, "a kept its group")
		a.fail.Store(false)
		waitFor(t, time.Minute, func() bool { return a.logCount(logmsg.Acquired) == 2 && a.leading() }, "a does not lead again")
		require.NotSame(t, first, a.b.lastHost(), "each term's member has a host of its own")

		componentstatus.ReportStatus(first, componentstatus.NewFatalErrorEvent(errors.New("failed to wait for caches to sync")))
		componentstatus.ReportStatus(first, componentstatus.NewRecoverableErrorEvent(errors.New("stale")))
		time.Sleep(time.Minute)
		synctest.Wait()

		assert.True(t, a.leading(), "a report of an ended term ended the one that runs")
		assert.Zero(t, a.logCount(logmsg.MemberFailed))
		assert.Equal(t, 1, a.logCount(logmsg.MemberFailedLate))
		assert.NoError(t, a.host.fatalErr())
		assert.Equal(t, componentstatus.StatusOK, a.host.lastStatus().Status(), "a stale report stays in the status")
	})
}

// A member's RecoverableError is the block's until the member reports OK.
func TestMemberRecoverableErrorUntilOK(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.start(t)
		waitFor(t, time.Minute, a.leading, "a does not lead")
		componentstatus.ReportStatus(a.b.lastHost(), componentstatus.NewRecoverableErrorEvent(errors.New("watch failed")))
		synctest.Wait()
		assert.ErrorContains(t, a.host.lastStatus().Err(), "watch failed")
		componentstatus.ReportStatus(a.b.lastHost(), componentstatus.NewEvent(componentstatus.StatusOK))
		synctest.Wait()
		assert.Equal(t, componentstatus.StatusOK, a.host.lastStatus().Status())
		assert.True(t, a.leading())
	})
}

// Two blocks of one process whose groups both fail to stop. Before: each
// block reported its own FatalError; the collector reads one, and the second
// blocks for ever in its status reporting while the collector shuts down.
// Now one FatalError per process reaches the collector.
// Invariant S10.
func TestOneFatalErrorPerProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		m := newCollectorModel(t)
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		cfg2 := testConfigFor("testrcv")
		cfg2.LeaderElection.LeaseName = "lease2"
		a2 := newReplicaIn(t, c, "a2", cfg2, a.r.process) // two blocks of one collector
		m.drainInCleanup(t)
		fatal := m.firstFatal(t) // Run's loop reads one, then shuts down
		a.b.hang, a2.b.hang = make(chan struct{}), make(chan struct{})
		require.NoError(t, a.r.Start(context.Background(), &collectorHost{testHost: a.host, m: m}))
		require.NoError(t, a2.r.Start(context.Background(), &collectorHost{testHost: a2.host, m: m}))
		waitFor(t, time.Minute, func() bool { return a.leading() && a2.leading() }, "the blocks do not lead")

		a.fail.Store(true)
		a2.fail.Store(true)
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Equal(t, 1, a.logCount(logmsg.GroupNotStopped))
		assert.Equal(t, 1, a2.logCount(logmsg.GroupNotStopped))
		assert.Equal(t, 1, a.host.fatalCount()+a2.host.fatalCount(), "FatalErrors that reached the collector")
		assert.ErrorContains(t, <-fatal, logmsg.GroupNotStopped)
	})
}

// gatedHost is a pipeline instance's host whose first report waits at the
// gate before it takes effect: the collector's status reporter takes its
// mutex first, which another component's report may hold a moment.
type gatedHost struct {
	*testHost
	gate  chan struct{}
	first atomic.Bool
}

func (h *gatedHost) Report(ev *componentstatus.Event) {
	if h.first.CompareAndSwap(false, true) {
		<-h.gate
	}
	h.testHost.Report(ev)
}

// A block in a metrics and a logs pipeline; the logs instance starts while
// the Lease is unreachable, and the Lease becomes reachable while addHost's
// report of the last status (unreachable) is on its way. Before: addHost sent
// the event it had read under the lock on its own, beside the delivery
// goroutine, which meanwhile delivered the newer OK to both hosts: the stale
// RecoverableError arrived last and stayed the logs instance's status for as
// long as nothing changed. Now addHost's report and the deliveries are one
// sequence: the newest event arrives last at every host.
func TestStatusOfALaterPipelineInstanceIsNeverStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(newJournal())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.fail.Store(true)
		a.start(t)
		waitFor(t, time.Minute, func() bool { return a.host.lastStatus() != nil }, "no status")
		require.Equal(t, componentstatus.StatusRecoverableError, a.host.lastStatus().Status())

		logsHost := &gatedHost{testHost: &testHost{factories: a.host.factories}, gate: make(chan struct{})}
		started := make(chan error, 1)
		go func() { started <- a.r.Start(context.Background(), logsHost) }()
		synctest.Wait() // addHost's report waits at the gate
		a.fail.Store(false)
		waitFor(t, time.Minute, a.leading, "a does not lead")
		close(logsHost.gate)
		require.NoError(t, <-started)
		synctest.Wait()

		assert.Equal(t, componentstatus.StatusOK, a.host.lastStatus().Status())
		require.NotNil(t, logsHost.lastStatus())
		assert.Equal(t, componentstatus.StatusOK, logsHost.lastStatus().Status(), "the logs instance kept a stale status")
	})
}

// In a real collector, with the block in a metrics and a logs pipeline: a
// member's FatalError after the group started. Before: the runner passed it
// to both pipeline instances; the collector took the first and shut down
// (a cluster-level member's failure took the replica out), and the second
// send blocked for ever. Now the collector keeps running; the term ends and
// the Lease is given back.
// Invariant S11.
func TestCollectorSurvivesAMemberFatalError(t *testing.T) {
	j := newJournal()
	b := &behaviour{replica: "a", journal: j}
	col, ran, logs := realCollector(t, map[component.Type]receiver.Factory{testType: testFactory(testType, b)}, "{testrcv: {}}")
	require.Eventually(t, func() bool { return logs.FilterMessage(logmsg.GroupStarted).Len() == 1 }, time.Minute, 10*time.Millisecond, "the group did not start")

	// From a goroutine of the member's own, as k8s_cluster's cache sync does.
	go componentstatus.ReportStatus(b.lastHost(), componentstatus.NewFatalErrorEvent(errors.New("failed to start receiver")))
	require.Eventually(t, func() bool { return logs.FilterMessage(logmsg.Released).Len() >= 1 }, time.Minute, 10*time.Millisecond,
		"the Lease was not given back; logs: %v", logs.All())
	require.Equal(t, 1, logs.FilterMessage(logmsg.MemberFailed).Len())
	assert.Zero(t, logs.FilterMessage("Asynchronous error received, terminating process").Len())
	require.Eventually(t, func() bool { return logs.FilterMessage(logmsg.Acquired).Len() >= 2 }, time.Minute, 10*time.Millisecond,
		"the replica did not lead again after its back-off")
	select {
	case err := <-ran:
		t.Fatalf("the collector exited on a member's FatalError: %v", err)
	default:
	}
	assert.Equal(t, otelcol.StateRunning, col.GetState())
	col.Shutdown()
	select {
	case err := <-ran:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("the collector did not shut down")
	}
}
