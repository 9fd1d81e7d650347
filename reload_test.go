package leaderreceivercreator

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// The tests here run in a synctest bubble unless their comment says
// otherwise: the timings are the defaults (15s / 10s / 2s), and time only
// passes when every goroutine waits.

// A collector reload builds a new runner in the same process; with an
// explicit identity it finds the Lease naming itself and renews it at once.
// It must not start its group while the old runner's group is still
// stopping, nor ever once that group failed to stop.
// Invariant S13.
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

// Sequences found by a second reader of the term-deadline design; each
// comment tells what went wrong before the fix the test now holds.

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
// Invariants S8, S13.
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

// The successor releases the record its predecessor's
// group still counts on. a1's Shutdown gives up while its group is stopping
// (a member's Shutdown is slow, within a1's deadline). The successor a2 (same
// process, Lease and identity) wins by renewing a1's record and waits for the
// slot; a2 is shut down in turn (another reload, or the collector exits) and,
// from the slot wait, endTerm releases the Lease: b takes it at once and
// starts its group while a1's member has not stopped yet, although it stops
// well within a1's deadline.
// Invariants S8, S13.
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
