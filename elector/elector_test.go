package elector

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newElector(t *testing.T, cs *fake.Clientset, id string, mutate ...func(*Config)) *Elector {
	t.Helper()
	cfg := Config{
		Client: cs.CoordinationV1(), Namespace: "ns", Name: "lease", Identity: id,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	e, err := New(cfg)
	require.NoError(t, err)
	return e
}

// freeLease is a Lease that exists with no holder, as after a release: the
// first candidate takes it at once.
func freeLease() *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "lease"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(""), LeaseDurationSeconds: ptr.To[int32](1)},
	}
}

func getLease(t *testing.T, cs *fake.Clientset) *coordinationv1.Lease {
	t.Helper()
	l, err := cs.CoordinationV1().Leases("ns").Get(context.Background(), "lease", metav1.GetOptions{})
	require.NoError(t, err)
	return l
}

func TestValidateTimings(t *testing.T) {
	tests := []struct {
		lease, renew, retry time.Duration
		wantErr             string
	}{
		{15 * time.Second, 10 * time.Second, 2 * time.Second, ""},
		{4 * time.Second, 3 * time.Second, 500 * time.Millisecond, ""},
		{15 * time.Second, 10 * time.Second, 0, "retry_period must be greater than zero"},
		{10 * time.Second, 10 * time.Second, 2 * time.Second, "renew_deadline must be less than lease_duration"},
		{15 * time.Second, 2 * time.Second, 2 * time.Second, "renew_deadline must be greater than retry_period*1.2"},
		{2500 * time.Millisecond, time.Second, 100 * time.Millisecond, "lease_duration must be a whole number of seconds (the Lease stores seconds)"},
		{4 * time.Second, 3500 * time.Millisecond, 250 * time.Millisecond, "renew_deadline (3.5s) must be at least 1s less than lease_duration (4s): that margin is the time the group has to stop before another replica may take over (at least 1s, and 2 % of lease_duration)"},
		{120 * time.Second, 119 * time.Second, 2 * time.Second, "renew_deadline (1m59s) must be at least 2.4s less than lease_duration (2m0s): that margin is the time the group has to stop before another replica may take over (at least 1s, and 2 % of lease_duration)"},
		{120 * time.Second, 117600 * time.Millisecond, 2 * time.Second, ""},
	}
	for _, tt := range tests {
		err := ValidateTimings(tt.lease, tt.renew, tt.retry)
		if tt.wantErr == "" {
			assert.NoError(t, err)
		} else {
			assert.EqualError(t, err, tt.wantErr)
		}
	}
	_, err := New(Config{})
	assert.EqualError(t, err, "client must be set")
}

// A standby takes a Lease held by a silent holder only after it has watched
// the record unchanged for lease_duration on its own (injected) clock.
func TestStandbyWaitsForExpiryOnItsOwnClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	cs := newClientset(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "lease"},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To("old"), LeaseDurationSeconds: ptr.To[int32](15),
			// Far in the past by the holder's clock: irrelevant, clocks are not compared.
			RenewTime: &metav1.MicroTime{Time: time.Unix(0, 0)},
		},
	})
	e := newElector(t, cs, "new", func(c *Config) { c.Clock = clk })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	won := make(chan *Term, 1)
	go func() {
		term, err := e.Campaign(ctx)
		if err == nil {
			won <- term
		}
	}()
	start := clk.Now()
	for {
		select {
		case term := <-won:
			assert.GreaterOrEqual(t, clk.Since(start), 15*time.Second)
			assert.Equal(t, "new", *getLease(t, cs).Spec.HolderIdentity)
			assert.Equal(t, int32(1), *getLease(t, cs).Spec.LeaseTransitions)
			term.Abandon()
			return
		default:
		}
		require.Less(t, clk.Since(start), time.Minute, "never acquired")
		if clk.HasWaiters() {
			clk.Step(500 * time.Millisecond)
		} else {
			require.Eventually(t, func() bool { return clk.HasWaiters() || len(won) > 0 }, 5*time.Second, time.Millisecond)
		}
	}
}

// A candidate that finds no Lease cannot tell one that never existed from
// one deleted under a live holder: it creates it only after lease_duration.
func TestCampaignCreatesAMissingLeaseAfterLeaseDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset()
		e := newElector(t, cs, "a")
		start := time.Now()
		term, err := e.Campaign(context.Background())
		require.NoError(t, err)
		assert.GreaterOrEqual(t, time.Since(start), 15*time.Second)
		assert.Less(t, time.Since(start), 15*time.Second+time.Duration(2.2*float64(2*time.Second)))
		l := getLease(t, cs)
		assert.Equal(t, "a", *l.Spec.HolderIdentity)
		assert.Equal(t, int32(15), *l.Spec.LeaseDurationSeconds)
		before := l.Spec.RenewTime.Time
		time.Sleep(5 * time.Second) // fake time: two renewals
		assert.True(t, getLease(t, cs).Spec.RenewTime.After(before), "the holder renews")
		assert.Nil(t, term.Err())
		term.Abandon()
	})
}

func TestRenewFailureLosesTheTermAtTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		var mu sync.Mutex
		var attempts []error
		e := newElector(t, cs, "a", func(c *Config) {
			c.OnAttempt = func(err error) { mu.Lock(); attempts = append(attempts, err); mu.Unlock() }
		})
		var failing atomic.Bool
		cs.PrependReactor("*", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			if failing.Load() {
				return true, nil, errors.New("connection refused")
			}
			return false, nil, nil
		})
		term, err := e.Campaign(context.Background())
		require.NoError(t, err)
		failing.Store(true)
		start := time.Now()
		<-term.Lost()
		// The last successful renewal was at start: lost exactly renew_deadline later.
		assert.Equal(t, 10*time.Second, time.Since(start))
		assert.ErrorIs(t, term.Err(), ErrRenewDeadline)
		mu.Lock()
		defer mu.Unlock()
		var failed []error
		for _, err := range attempts {
			if err != nil {
				failed = append(failed, err)
			}
		}
		require.Len(t, failed, 4, "failed renewals at 2, 4, 6 and 8s; at 10s the deadline has passed")
		assert.ErrorContains(t, failed[0], "connection refused")
		term.Abandon()
	})
}

func TestAnotherHolderEndsTheTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset()
		e := newElector(t, cs, "a")
		term, err := e.Campaign(context.Background())
		require.NoError(t, err)
		l := getLease(t, cs)
		l.Spec.HolderIdentity = ptr.To("b")
		_, err = cs.CoordinationV1().Leases("ns").Update(context.Background(), l, metav1.UpdateOptions{})
		require.NoError(t, err)
		<-term.Lost()
		assert.EqualError(t, term.Err(), `lease ns/lease is held by "b"`)
		released, err := term.Release(context.Background())
		require.NoError(t, err)
		assert.False(t, released, "never release a Lease that names another holder")
		assert.Equal(t, "b", *getLease(t, cs).Spec.HolderIdentity)
	})
}

func TestReleaseHandsOverAndLosesToAConcurrentWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset()
		var conflict atomic.Bool
		cs.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			if conflict.Load() {
				return true, nil, apierrors.NewConflict(coordinationv1.Resource("leases"), "lease", errors.New("modified"))
			}
			return false, nil, nil
		})
		a := newElector(t, cs, "a")
		term, err := a.Campaign(context.Background())
		require.NoError(t, err)
		// Someone writes between Release's read and its write: the API server
		// answers with a conflict and nothing is overwritten.
		conflict.Store(true)
		released, err := term.Release(context.Background())
		assert.False(t, released)
		assert.True(t, apierrors.IsConflict(errors.Unwrap(err)), "got %v", err)
		assert.Equal(t, "a", *getLease(t, cs).Spec.HolderIdentity)

		conflict.Store(false)
		released, err = term.Release(context.Background())
		require.NoError(t, err)
		assert.True(t, released)
		assert.Empty(t, *getLease(t, cs).Spec.HolderIdentity)

		// A released Lease is free at once: another candidate's first attempt wins.
		b := newElector(t, cs, "b")
		start := time.Now()
		termB, err := b.Campaign(context.Background())
		require.NoError(t, err)
		assert.Zero(t, time.Since(start))
		assert.Equal(t, int32(1), *getLease(t, cs).Spec.LeaseTransitions)
		termB.Abandon()
	})
}

func TestCampaignReturnsWhenCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset()
		holder := newElector(t, cs, "a")
		term, err := holder.Campaign(context.Background())
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 7*time.Second)
		defer cancel()
		_, err = newElector(t, cs, "b").Campaign(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		term.Abandon()
	})
}

// A Lease deleted by hand under a live holder: either the holder re-creates
// it and keeps its term, or a standby creates it and waits until the holder
// has given up before its own term begins. Never both at once.
func TestDeletedLeaseNeverGivesTwoTerms(t *testing.T) {
	for seed := range 10 {
		synctest.Test(t, func(t *testing.T) {
			cs := newClientset()
			a, b := newElector(t, cs, "a"), newElector(t, cs, "b")
			termA, err := a.Campaign(context.Background())
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wonB, lostA := make(chan time.Time, 1), make(chan time.Time, 1)
			go func() {
				if term, err := b.Campaign(ctx); err == nil {
					wonB <- time.Now()
					term.Abandon()
				}
			}()
			go func() {
				select {
				case <-termA.Lost():
					lostA <- time.Now()
				case <-ctx.Done():
				}
			}()
			// fake time: b has seen a's record; the offset varies who retries first
			time.Sleep(3*time.Second + time.Duration(seed)*300*time.Millisecond)
			require.NoError(t, cs.CoordinationV1().Leases("ns").Delete(context.Background(), "lease", metav1.DeleteOptions{}))
			time.Sleep(time.Minute) // fake time: many retries of both
			synctest.Wait()
			select {
			case at := <-wonB:
				require.Len(t, lostA, 1, "b won at %v while a still held its term", at)
				assert.True(t, (<-lostA).Before(at), "b's term began before a's ended")
			default:
				assert.Nil(t, termA.Err(), "a lost its term and b did not win either")
				assert.Equal(t, "a", *getLease(t, cs).Spec.HolderIdentity)
			}
			cancel()
			termA.Abandon()
		})
	}
}

// The deletion of a cut-off holder's Lease: a standby waits until that
// holder has given up (renew_deadline) before it creates the Lease.
func TestDeletedLeaseUnderACutOffHolderWaitsForItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset()
		var cut atomic.Bool
		holderCS := newClientset()
		holderCS.PrependReactor("*", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if cut.Load() {
				return true, nil, errors.New("connection refused")
			}
			return versioned(cs.Tracker())(a)
		})
		a, b := newElector(t, holderCS, "a"), newElector(t, cs, "b")
		termA, err := a.Campaign(context.Background())
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wonB := make(chan time.Time, 1)
		go func() {
			if term, err := b.Campaign(ctx); err == nil {
				wonB <- time.Now()
				term.Abandon()
			}
		}()
		time.Sleep(time.Second) // fake time: b has seen a's record
		cut.Store(true)
		require.NoError(t, cs.CoordinationV1().Leases("ns").Delete(context.Background(), "lease", metav1.DeleteOptions{}))
		<-termA.Lost()
		lostA := time.Now()
		wonAt := <-wonB
		assert.True(t, wonAt.After(lostA), "b created the Lease at %v, before a gave up at %v", wonAt, lostA)
		termA.Abandon()
	})
}

// A slow Get does not eat into the term it wins: the term counts from when
// the answer came in, not from when the attempt began.
func TestSlowGetDoesNotShortenTheTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		var slow atomic.Bool
		cs.PrependReactor("get", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			if slow.Swap(false) {
				time.Sleep(12 * time.Second) // fake time: longer than renew_deadline
			}
			return false, nil, nil
		})
		a := newElector(t, cs, "a")
		first, err := a.Campaign(context.Background())
		require.NoError(t, err)
		first.Abandon()
		// The Lease is a's but the next attempt's Get hangs for 12s.
		slow.Store(true)
		term, err := a.Campaign(context.Background())
		require.NoError(t, err)
		time.Sleep(30 * time.Second) // fake time: many renewals
		assert.Nil(t, term.Err(), "the term was lost although every renewal succeeded")
		term.Abandon()
	})
}
