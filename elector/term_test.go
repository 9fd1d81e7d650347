package elector

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	k8stesting "k8s.io/client-go/testing"
)

// A renewal that never answers (the API server accepted the connection and
// went silent) does not postpone the loss: the term is lost exactly
// renew_deadline after the last successful renewal.
// Invariant S4.
func TestLostAtTheRenewDeadlineWhileAnAttemptHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		var hang atomic.Bool
		term, err := newElector(t, cs, "a", delayed(cs, func(_ string, call func()) {
			if hang.Load() {
				time.Sleep(time.Hour) // fake time; ignores the request's context
			}
			call()
		})).Campaign(context.Background())
		require.NoError(t, err)
		won := time.Now()
		assert.Equal(t, won.Add(15*time.Second-150*time.Millisecond), term.Deadline())
		hang.Store(true)
		<-term.Lost()
		assert.Equal(t, 10*time.Second, time.Since(won))
		assert.ErrorIs(t, term.Err(), ErrRenewDeadline)
		assert.Equal(t, won.Add(15*time.Second-150*time.Millisecond), term.Deadline(), "the deadline of the last renewal")
		hang.Store(false)
		term.Abandon()
	})
}

// The acquiring write is applied at once but answered 9s late, and then the
// holder is cut off: the term counts from before the write, and the renew
// loop does not sleep a retry period past its renew deadline.
// Invariant S4.
func TestLateAcquisitionAnswerDoesNotDelayTheLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		var failing atomic.Bool
		cs.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			if failing.Load() {
				return true, nil, errors.New("connection refused")
			}
			return false, nil, nil
		})
		written := time.Now()
		term, err := newElector(t, cs, "a", delayed(cs, func(verb string, call func()) {
			call()
			if verb == "update" && !failing.Load() {
				time.Sleep(9 * time.Second) // fake time: applied, answered late
				failing.Store(true)         // and cut off from then on
			}
		})).Campaign(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 9*time.Second, time.Since(written))
		assert.Equal(t, written.Add(15*time.Second-150*time.Millisecond), term.Deadline())
		<-term.Lost()
		assert.Equal(t, 10*time.Second, time.Since(written), "renew_deadline after the write")
		term.Abandon()
	})
}

// A renewal answered late with a failure (the API server timed out,
// answering at 9s of a 10s renew_deadline) leaves too little time for
// another attempt a retry period later: the loop tries once more at once,
// bounded by the time left, instead of waiting out the deadline. The API
// server is healthy again, and the term goes on.
func TestLateFailedRenewalIsTriedOnceMoreBeforeTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		var failing atomic.Bool
		cs.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			if failing.Load() {
				return true, nil, apierrors.NewTimeoutError("the request timed out (injected)", 0)
			}
			return false, nil, nil
		})
		term, err := newElector(t, cs, "a", delayed(cs, func(verb string, call func()) {
			if verb == "update" && failing.Load() {
				time.Sleep(7 * time.Second) // fake time: the renewal at 2s is answered at 9s
				call()
				failing.Store(false) // and the API server is healthy again
				return
			}
			call()
		})).Campaign(context.Background())
		require.NoError(t, err)
		won := time.Now()
		failing.Store(true)
		sleepUntil(won, 9*time.Second)
		synctest.Wait()
		require.NoError(t, term.Err())
		assert.Equal(t, won.Add(9*time.Second), getLease(t, cs).Spec.RenewTime.Time, "renewed at once after the late answer")
		sleepUntil(won, 30*time.Second)
		assert.NoError(t, term.Err())
		assert.Equal(t, won.Add(29*time.Second), getLease(t, cs).Spec.RenewTime.Time, "renewing every retry period since")
		term.Abandon()
	})
}

// Campaign never hands out a term that is lost on arrival: when the answer
// to the winning write comes after renew_deadline, it renews first.
// Invariant S4.
func TestCampaignNeverReturnsALostTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		var lateAnswer atomic.Int64
		lateAnswer.Store(int64(12 * time.Second))
		term, err := newElector(t, cs, "a", delayed(cs, func(verb string, call func()) {
			call()
			if verb == "update" {
				time.Sleep(time.Duration(lateAnswer.Swap(0))) // fake time
			}
		})).Campaign(context.Background())
		require.NoError(t, err)
		assert.Equal(t, time.Now().Add(15*time.Second-150*time.Millisecond), term.Deadline(), "a fresh renewal")
		time.Sleep(5 * time.Second) // fake time: two renewals
		assert.Nil(t, term.Err())
		term.Abandon()
	})
}

// A candidate that created the Lease, lost that term while it waited out a
// possible holder of a deleted Lease, and then renewed its own record, still
// waits until lease_duration after the creation.
// Invariant S5.
func TestRecreatedLeaseWaitSurvivesALoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset()
		var failing atomic.Bool
		cs.PrependReactor("*", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			if failing.Load() {
				return true, nil, errors.New("connection refused")
			}
			return false, nil, nil
		})
		created := time.Now()
		won := make(chan *Term, 1)
		go func() {
			term, err := newElector(t, cs, "a").Campaign(context.Background())
			if err == nil {
				won <- term
			}
		}()
		time.Sleep(time.Second) // fake time: created, waiting
		failing.Store(true)     // its term is lost at 10s
		time.Sleep(10 * time.Second)
		failing.Store(false) // back at 11s: its record still names it
		term := <-won
		assert.GreaterOrEqual(t, time.Since(created), 15*time.Second, "handed out before a deleted Lease's holder had stopped")
		term.Abandon()
	})
}

// The watch only reads. A List that never answers and ignores its context
// must not hold up Abandon, which the runner calls while the Lease may still
// be held and its deadline runs.
// Invariant S14.
func TestAbandonDoesNotWaitForAStuckWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		release := make(chan struct{})
		e := newElector(t, cs, "a", func(c *Config) { c.Client = stuckListLeases{cs.CoordinationV1(), release} })
		term, err := e.Campaign(t.Context())
		require.NoError(t, err)
		abandoned := make(chan struct{})
		go func() {
			term.Abandon()
			close(abandoned)
		}()
		synctest.Wait()
		select {
		case <-abandoned:
		default:
			t.Error("Abandon waits for the watch's List")
		}
		close(release)
		<-abandoned
	})
}

// stuckListLeases is a Lease client whose List blocks until release is
// closed, whatever its context says.
type stuckListLeases struct {
	coordinationv1client.LeasesGetter
	release <-chan struct{}
}

func (s stuckListLeases) Leases(namespace string) coordinationv1client.LeaseInterface {
	return stuckListLease{s.LeasesGetter.Leases(namespace), s.release}
}

type stuckListLease struct {
	coordinationv1client.LeaseInterface
	release <-chan struct{}
}

func (s stuckListLease) List(ctx context.Context, opts metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	<-s.release
	return s.LeaseInterface.List(ctx, opts)
}
