package leaderreceivercreator

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/receiver"
	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
	"github.com/leaderreceivercreator/leaderreceivercreator/internal/metadata"
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

		a.fail.Store(false)
		waitFor(t, time.Minute, a.leading, "a does not lead once the API server is back")
		assert.Equal(t, componentstatus.StatusOK, a.host.lastStatus().Status())
		assert.Equal(t, 1, a.logCount("lease reachable again"))
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
// bounded by the term's deadline, the Lease is not released (the member may
// still run), and Shutdown says so. No FatalError: the collector is already
// exiting and would no longer read it. A standby takes over once the Lease
// expires.
func TestHungShutdownOnShutdownKeepsTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.b.hang = make(chan struct{})
		a.start(t)
		waitFor(t, time.Minute, a.leading, "a does not lead")
		renewed := c.lease(t).Spec.RenewTime.Time

		err := a.r.Shutdown(context.Background())
		require.ErrorContains(t, err, logmsg.GroupNotStopped+": sub-receivers testrcv did not stop in time")
		// Bounded by the deadline of the last renewal: lease_duration less 1 %.
		assert.Equal(t, renewed.Add(15*time.Second-150*time.Millisecond), time.Now())
		assert.Equal(t, "a", c.holder(t), "the Lease must not be released while a sub-receiver may still run")
		notStopped := a.logs.FilterMessage(logmsg.GroupNotStopped).All()
		require.Len(t, notStopped, 1, "one line for a failed stop")
		assert.Equal(t, []any{"testrcv"}, notStopped[0].ContextMap()["receivers"])
		assert.Equal(t, "shutdown", notStopped[0].ContextMap()["reason"])
		assert.Zero(t, a.logCount(logmsg.GroupStopped)+a.logCount(logmsg.GroupStopErrors))
		assert.Nil(t, a.host.fatalErr())
		a.b.release() // the collector process exits

		// A standby takes over once the Lease expires.
		b := newReplica(t, c, "b", testConfigFor("testrcv"))
		b.start(t)
		waitFor(t, time.Minute, b.leading, "b did not take over the expired Lease")
		assert.Equal(t, 1, j.maxOverlap(), "two groups ran at once: %v", j.list())
		require.NoError(t, b.r.Shutdown(context.Background()))
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
		l := c.lease(t)
		intruder := "intruder"
		l.Spec.HolderIdentity = &intruder
		require.NoError(t, c.tracker.Update(leasesGVR, l, "ns"))
		waitFor(t, time.Minute, func() bool { return !a.leading() }, "a kept its group although the Lease names another holder")
		require.NoError(t, a.r.Shutdown(context.Background()))
		assert.Equal(t, "intruder", c.holder(t))
	})
}

func TestStartRejectsBadSubReceiverConfig(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		host    component.Host
		wantErr string
	}{
		{
			name:    "unknown field",
			mutate:  func(c *Config) { c.Receivers["testrcv"] = map[string]any{"valu": 3} },
			wantErr: "receivers::testrcv: decoding failed",
		},
		{
			name:    "factory validation",
			mutate:  func(c *Config) { c.Receivers["testrcv"] = map[string]any{"value": -1} },
			wantErr: "receivers::testrcv: value must not be negative",
		},
		{
			name:    "unknown type",
			mutate:  func(c *Config) { c.Receivers["k8s_clustr"] = nil },
			wantErr: `receivers::k8s_clustr: this collector has no receiver of type "k8s_clustr"`,
		},
		{
			name:    "signal the factory lacks",
			mutate:  func(c *Config) { c.Signals = map[string][]string{"testrcv": {"traces"}} },
			wantErr: "signals::testrcv: testrcv does not support traces",
		},
		{
			name:    "signal without a pipeline",
			mutate:  func(c *Config) { c.Signals = map[string][]string{"testrcv": {"logs"}} },
			wantErr: "signals::testrcv: this leader_receiver_creator block is in no logs pipeline",
		},
		{
			name:    "host without factories",
			mutate:  func(*Config) {},
			host:    componenttest.NewNopHost(),
			wantErr: "does not provide component factories",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(newJournal())
			cfg := testConfigFor("testrcv")
			tt.mutate(cfg)
			a := newReplica(t, c, "a", cfg)
			a.r.consumers.logs = nil // this block sits in a metrics pipeline only
			host := tt.host
			if host == nil {
				host = a.host
			}
			err := a.r.Start(context.Background(), host)
			require.ErrorContains(t, err, tt.wantErr)
			require.NoError(t, a.r.Shutdown(context.Background()))
			_, getErr := c.tracker.Get(leasesGVR, "ns", "lease")
			assert.Error(t, getErr, "a replica with a bad config must not campaign")
		})
	}
}

func TestDefaultSignalsAreSupportedAndConsumed(t *testing.T) {
	a := newReplica(t, newCluster(newJournal()), "a", testConfigFor("testrcv"))
	cfg := testConfigFor("testrcv", "zother")
	cfg.Signals = map[string][]string{"zother": {"metrics"}}
	a.host.factories[component.MustNewType("zother")] = testFactory(component.MustNewType("zother"), a.b)
	g, err := resolveGroup(cfg, a.host, a.r.set, a.r.consumers)
	require.NoError(t, err)
	require.Len(t, g.members, 2)
	assert.Equal(t, "testrcv", g.members[0].key)
	assert.Equal(t, "[metrics logs]", signalNames(g.members[0]), "testrcv supports metrics and logs, both consumed; not traces")
	assert.Equal(t, "[metrics]", signalNames(g.members[1]), "restricted by signals")
}

func signalNames(m member) string {
	out := make([]string, len(m.signals))
	for i, s := range m.signals {
		out[i] = s.String()
	}
	return "[" + strings.Join(out, " ") + "]"
}

func mustTelemetry(t *testing.T, set receiver.Settings) *metadata.TelemetryBuilder {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	require.NoError(t, err)
	return tb
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
		slowB := a.addType("zother")
		slowB.block = make(chan struct{})
		a.exitsOnFatal()
		a.start(t)
		waitFor(t, time.Minute, func() bool { return slowB.entered.Load() == 1 }, "zother's Start was not called")
		b := newReplica(t, c, "b", testConfigFor("testrcv", "zother"))
		b.addType("zother")
		b.start(t)
		synctest.Wait()
		assert.Equal(t, 3, j.runningCount("a"), "testrcv (metrics, logs) runs while zother starts")
		renewed := c.lease(t).Spec.RenewTime.Time

		a.fail.Store(true)
		waitFor(t, time.Minute, func() bool { return j.runningCount("a") == 1 }, "testrcv kept running after the loss")
		assert.WithinDuration(t, renewed.Add(10*time.Second), time.Now(), 100*time.Millisecond, "testrcv stopped when the term was lost")
		waitFor(t, time.Minute, func() bool { return a.host.fatalErr() != nil }, "a did not take itself out")
		assert.Equal(t, renewed.Add(15*time.Second-150*time.Millisecond), a.host.fatalAt(), "out by the deadline")
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
		slowB := a.addType("zother")
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
		c.tracker.Add(freeLease())
		a := newReplica(t, c, "a", testConfigFor("testrcv", "zother"))
		a.b.hang = make(chan struct{})
		failing := a.addType("zother")
		errStart := errors.New("port 4317 is taken")
		failing.startErr.Store(&errStart)
		a.exitsOnFatal()
		acquired := time.Now() // the Lease is free: a takes it at once
		a.start(t)
		waitFor(t, time.Minute, func() bool { return a.host.fatalErr() != nil }, "a did not take itself out")
		assert.ErrorContains(t, a.host.fatalErr(), "sub-receivers testrcv did not stop in time")
		assert.Equal(t, "a", c.holder(t), "not released: testrcv may still run")
		// The rollback began at once: it had until the deadline of then.
		assert.Equal(t, acquired.Add(15*time.Second-150*time.Millisecond), a.host.fatalAt(), "out by the deadline")

		b := newReplica(t, c, "b", testConfigFor("testrcv", "zother"))
		b.addType("zother")
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
		slowB := a.addType("zother")
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
// 10s renew_deadline) late, and then the leader is cut off. The term is lost
// at renew_deadline after the write, not a retry period later, and the group
// has until lease_duration after the write, not the margin from when the loss
// was noticed: a group whose Shutdown takes 4.5s is down before the standby,
// which saw the write at once, takes over.
func TestLossNoticedLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newJournal()
		c := newCluster(j)
		c.tracker.Add(freeLease())
		a := newReplica(t, c, "a", testConfigFor("testrcv"))
		a.b.shutdownDelay = 4500 * time.Millisecond
		a.slow.Store(int64(9 * time.Second))
		a.start(t)
		time.Sleep(time.Millisecond) // fake time: a's write is applied, its answer is on its way
		written := time.Now()
		require.Equal(t, "a", c.holder(t))
		b := newReplica(t, c, "b", testConfigFor("testrcv"))
		b.start(t) // sees a's write at once
		waitFor(t, time.Minute, a.leading, "a does not lead")
		a.fail.Store(true)
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

		reloaded := newReplica(t, c, "a", testConfigFor("testrcv"))
		reloaded.r.process = old.r.process // the same process, the same identity
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
		c.tracker.Add(freeLease())
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
