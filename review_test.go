package leaderreceivercreator

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// Sequences found by an adversarial second reader of the member-status and
// fence work.

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
