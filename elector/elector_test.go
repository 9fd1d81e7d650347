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
	"k8s.io/client-go/tools/leaderelection/resourcelock"
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

// The timings are refused unless lease_duration > renew_deadline >
// 1.2 × retry_period > 0, lease_duration is whole seconds, and the stop
// margin is at least 1s and 2 % of lease_duration.
// Invariant S4.
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
// Invariant S2.
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
// Invariant S5.
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

// A holder that cannot reach the API server loses its term exactly
// renew_deadline after its last successful renewal.
// Invariant S4.
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

// Another holder written into the Lease ends the term, and Release then
// writes nothing over it.
// Invariant S3.
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

// Release is conditional on the version it read: a write in between makes
// it fail with a conflict, overwriting nothing; otherwise it empties the
// holder and another candidate takes the Lease at once.
// Invariant S6.
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

// A Lease deleted by hand under a live holder: the holder's term ends, and a
// standby that creates the Lease waits until the holder has given up before
// its own term begins. Never both at once.
// Invariant S5.
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
// Invariants S4, S5.
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
// Invariant S4.
func TestSlowGetDoesNotShortenTheTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		var slow atomic.Bool
		a := newElector(t, cs, "a", delayed(cs, func(verb string, call func()) {
			if verb == "get" && slow.Swap(false) {
				time.Sleep(12 * time.Second) // fake time: longer than renew_deadline
			}
			call()
		}))
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

// heldLease is a Lease written by another candidate, x, just now.
func heldLease(durationSeconds int32) *coordinationv1.Lease {
	const holder = "x"
	now := metav1.NowMicro()
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "lease"},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To(durationSeconds),
			AcquireTime: &now, RenewTime: &now, LeaseTransitions: ptr.To[int32](3),
		},
	}
}

// editLease changes the Lease as another writer would, conditionally on the
// version it read.
func editLease(t *testing.T, cs *fake.Clientset, edit func(*coordinationv1.Lease)) *coordinationv1.Lease {
	t.Helper()
	l := getLease(t, cs)
	edit(l)
	l, err := cs.CoordinationV1().Leases("ns").Update(context.Background(), l, metav1.UpdateOptions{})
	require.NoError(t, err)
	return l
}

// try makes one attempt of a standby and reports whether it won.
func try(t *testing.T, e *Elector) bool {
	t.Helper()
	a, err := e.tryAcquireOrRenew(context.Background(), false)
	require.NoError(t, err)
	return a.won
}

// sleepUntil sleeps (fake time) until d after start.
func sleepUntil(start time.Time, d time.Duration) { time.Sleep(time.Until(start.Add(d))) }

// clientGoLock is client-go's own lock for candidate cg.
func clientGoLock(cs *fake.Clientset) *resourcelock.LeaseLock {
	const id = "cg"
	return &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "lease"},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
}

// A record written by a client-go candidate is a foreign holder,
// taken after lease_duration; client-go reads the take-over as a transition.
// Invariant S2.
func TestClientGoHolderIsTakenOverLikeAnyOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset()
		now := metav1.Now()
		require.NoError(t, clientGoLock(cs).Create(context.Background(), resourcelock.LeaderElectionRecord{
			HolderIdentity: "cg", LeaseDurationSeconds: 15, AcquireTime: now, RenewTime: now, LeaderTransitions: 2,
		}))
		a := newElector(t, cs, "a")
		start := time.Now()
		require.False(t, try(t, a))
		sleepUntil(start, 15*time.Second-time.Millisecond)
		require.False(t, try(t, a))
		sleepUntil(start, 15*time.Second)
		require.True(t, try(t, a))
		record, _, err := clientGoLock(cs).Get(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "a", record.HolderIdentity)
		assert.Equal(t, 3, record.LeaderTransitions)
	})
}

// Two writes within one wall-clock second are two changes. With a
// sub-second retry_period, a standby that compared records in whole seconds
// would measure the expiry from the first write.
// Invariant S2.
func TestTwoWritesWithinOneSecondAreTwoChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		require.Zero(t, start.Nanosecond(), "the bubble's clock starts on a whole second")
		cs := newClientset(heldLease(4))
		b := newElector(t, cs, "b", func(c *Config) {
			c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = 4*time.Second, 3*time.Second, 500*time.Millisecond
		})
		sleepUntil(start, 100*time.Millisecond)
		require.False(t, try(t, b))
		sleepUntil(start, 600*time.Millisecond)
		editLease(t, cs, func(l *coordinationv1.Lease) { l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()} })
		sleepUntil(start, 700*time.Millisecond)
		require.False(t, try(t, b)) // the renewal at 0.6s, seen at 0.7s
		sleepUntil(start, 4100*time.Millisecond)
		require.False(t, try(t, b), "taken 4s after the first write was seen")
		sleepUntil(start, 4700*time.Millisecond-time.Millisecond)
		require.False(t, try(t, b))
		sleepUntil(start, 4700*time.Millisecond)
		require.True(t, try(t, b), "4s after the second write was seen")
	})
}

// A version is unchanged only if its uid, its resourceVersion and
// its spec are. An API server whose etcd was restored without
// --bump-revision hands out resourceVersions again: the record of a
// candidate that has just taken the Lease (c) may carry the uid and
// resourceVersion of a record the standby saw long before. The standby
// waits lease_duration from when it first saw c's record; counting from the
// old sighting, it would take the Lease the instant c won it.
// Invariant S2.
func TestReusedResourceVersionWithAnotherSpecIsAChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := withoutWatch(newClientset(heldLease(15)))
		b := newElector(t, cs, "b")
		start := time.Now()
		require.False(t, try(t, b)) // x's record, seen at 0
		sleepUntil(start, 14*time.Second)
		won := getLease(t, cs)
		won.Spec = leaseSpec("c", 15, time.Now(), time.Now(), 4)
		restore(t, cs, won) // c took the Lease, at a resourceVersion handed out again
		sleepUntil(start, 15*time.Second)
		require.False(t, try(t, b), "took c's record the instant c won it") // c's record, seen at 15s
		sleepUntil(start, 30*time.Second-time.Millisecond)
		require.False(t, try(t, b))
		sleepUntil(start, 30*time.Second)
		require.True(t, try(t, b), "lease_duration after c's record was seen")
	})
}

// A label or annotation edit of the holder's Lease (kubectl
// annotate) makes a new version with the spec it wrote: its term goes on.
// Invariant S3.
func TestMetadataEditDoesNotEndTheTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		term, err := newElector(t, cs, "a").Campaign(context.Background())
		require.NoError(t, err)
		time.Sleep(time.Second)
		editLease(t, cs, func(l *coordinationv1.Lease) { l.Annotations = map[string]string{"note": "x"} })
		time.Sleep(29 * time.Second) // fake time: many renewals, the last at 30s
		synctest.Wait()              // the renewal due now has been written
		assert.Nil(t, term.Err())
		l := getLease(t, cs)
		assert.Equal(t, "a", *l.Spec.HolderIdentity)
		assert.Equal(t, time.Now(), l.Spec.RenewTime.Time, "renewed just now")
		assert.Equal(t, "x", l.Annotations["note"], "renewals keep the metadata")
		term.Abandon()
	})
}

// A holder set by hand to a standby's name is foreign to both: the
// holder loses its term at its next renewal, and the standby waits
// lease_duration from when it first saw that version, as for any holder.
// Invariant S3.
func TestHolderSetByHandToAStandbysNameIsForeign(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := withoutWatch(newClientset(freeLease()))
		start := time.Now()
		termA, err := newElector(t, cs, "a").Campaign(context.Background())
		require.NoError(t, err)
		b := newElector(t, cs, "b")
		sleepUntil(start, 3*time.Second)
		editLease(t, cs, func(l *coordinationv1.Lease) { l.Spec.HolderIdentity = ptr.To("b") })
		sleepUntil(start, 3500*time.Millisecond)
		require.False(t, try(t, b), "b did not write this record")
		<-termA.Lost()
		assert.Equal(t, 4*time.Second, time.Since(start), "lost at a's next renewal (no watch)")
		assert.EqualError(t, termA.Err(), `lease ns/lease is held by "b"`)
		sleepUntil(start, 18500*time.Millisecond-time.Millisecond)
		require.False(t, try(t, b))
		sleepUntil(start, 18500*time.Millisecond)
		require.True(t, try(t, b), "lease_duration after b first saw the version")
		termA.Abandon()
	})
}

// Two candidates configured with the same identity never both hold
// a term: each sees the other's record as a foreign holder.
// Invariant S3.
func TestSameIdentityOnTwoCandidatesNeverGivesTwoTerms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		a1, a2 := newElector(t, cs, "a"), newElector(t, cs, "a")
		term1, err := a1.Campaign(context.Background())
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		won2 := make(chan *Term, 1)
		go func() {
			if term, err := a2.Campaign(ctx); err == nil {
				won2 <- term
			}
		}()
		time.Sleep(time.Minute) // fake time: a1 renews, a2 retries
		synctest.Wait()
		require.Empty(t, won2, "a2 took a record a1 keeps renewing")
		require.Nil(t, term1.Err())
		term1.Abandon() // a1 goes silent: its record stays
		lastRenewal := getLease(t, cs).Spec.RenewTime.Time
		term2 := <-won2
		assert.GreaterOrEqual(t, time.Since(lastRenewal), 15*time.Second)
		// a1 comes back: a2's record names it, but a1 did not write it.
		require.False(t, try(t, a1))
		time.Sleep(5 * time.Second)
		assert.Nil(t, term2.Err(), "a1 did not disturb a2's term")
		term2.Abandon()
	})
}

// A foreign holder is waited out for the longer of the record's
// duration and the candidate's own lease_duration (15s): a shorter duration
// written by someone else does not shorten the wait.
// Invariant S2.
func TestForeignHolderWaitsTheLongerDuration(t *testing.T) {
	for _, tt := range []struct {
		recordSeconds int32
		wait          time.Duration
	}{
		{recordSeconds: 5, wait: 15 * time.Second},  // its own
		{recordSeconds: 30, wait: 30 * time.Second}, // the record's
	} {
		synctest.Test(t, func(t *testing.T) {
			cs := newClientset(heldLease(tt.recordSeconds))
			b := newElector(t, cs, "b")
			start := time.Now()
			require.False(t, try(t, b))
			sleepUntil(start, tt.wait-time.Millisecond)
			require.False(t, try(t, b), "record of %ds taken before %s", tt.recordSeconds, tt.wait)
			sleepUntil(start, tt.wait)
			require.True(t, try(t, b), "record of %ds not taken at %s", tt.recordSeconds, tt.wait)
		})
	}
}

// The wait counts on the candidate's own clock from when it first
// saw the version: a new version restarts it; failed reads in between do not.
// Invariant S2.
func TestForeignWaitCountsFromFirstSeeingTheVersion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(heldLease(15))
		b := newElector(t, cs, "b")
		start := time.Now()
		require.False(t, try(t, b)) // v1 seen at 0
		sleepUntil(start, 10*time.Second)
		editLease(t, cs, func(l *coordinationv1.Lease) { l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()} })
		sleepUntil(start, 12*time.Second)
		require.False(t, try(t, b)) // v2 seen at 12s
		sleepUntil(start, 20*time.Second)
		require.False(t, try(t, b))
		sleepUntil(start, 27*time.Second-time.Millisecond)
		require.False(t, try(t, b), "counted from the write, or from v1")
		sleepUntil(start, 27*time.Second)
		require.True(t, try(t, b))
	})
}

// A Lease with no holder and a duration of at most a second, as our
// release and client-go's ReleaseOnCancel write it, is free at once.
// Invariant S2.
func TestReleasedLeaseIsFreeAtOnce(t *testing.T) {
	for _, seconds := range []int{0, 1} {
		synctest.Test(t, func(t *testing.T) {
			cs := newClientset()
			cg := clientGoLock(cs)
			now := metav1.Now()
			require.NoError(t, cg.Create(context.Background(), resourcelock.LeaderElectionRecord{
				HolderIdentity: "cg", LeaseDurationSeconds: 15, AcquireTime: now, RenewTime: now,
			}))
			// client-go's ReleaseOnCancel
			require.NoError(t, cg.Update(context.Background(), resourcelock.LeaderElectionRecord{
				LeaseDurationSeconds: seconds, AcquireTime: now, RenewTime: now, LeaderTransitions: 4,
			}))
			b := newElector(t, cs, "b")
			require.True(t, try(t, b), "leaseDurationSeconds %d", seconds)
			assert.Equal(t, int32(5), *getLease(t, cs).Spec.LeaseTransitions)
		})
	}
}

// A holder emptied by hand, its duration left as it was, is waited
// out like a foreign holder (also when the field is removed).
// Invariant S2.
func TestHolderEmptiedByHandIsWaitedOut(t *testing.T) {
	for _, holder := range []*string{ptr.To(""), nil} {
		synctest.Test(t, func(t *testing.T) {
			l := heldLease(15)
			l.Spec.HolderIdentity = holder
			cs := newClientset(l)
			b := newElector(t, cs, "b")
			start := time.Now()
			require.False(t, try(t, b))
			sleepUntil(start, 15*time.Second-time.Millisecond)
			require.False(t, try(t, b))
			sleepUntil(start, 15*time.Second)
			require.True(t, try(t, b))
		})
	}
}

// verbs are the requests made on the Lease itself, without the watch's own
// list and watch.
func verbs(cs *fake.Clientset) []string {
	var v []string
	for _, a := range cs.Actions() {
		if verb := a.GetVerb(); verb != "list" && verb != "watch" {
			v = append(v, verb)
		}
	}
	return v
}

// The leader renews with one Update of the version it last wrote,
// every retry period, and no Get.
func TestLeaderRenewsWithOneUpdateAndNoGet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		term, err := newElector(t, cs, "a").Campaign(context.Background())
		require.NoError(t, err)
		cs.ClearActions()
		time.Sleep(10 * time.Second)
		synctest.Wait() // the renewal due now has been written
		assert.Equal(t, []string{"update", "update", "update", "update", "update"}, verbs(cs), "at 2, 4, 6, 8 and 10s")
		assert.Equal(t, time.Now(), getLease(t, cs).Spec.RenewTime.Time)
		assert.Nil(t, term.Err())
		term.Abandon()
	})
}

// A renewal that conflicts reads the Lease; a version written by
// another candidate (here client-go's) ends the term at once, and the holder
// writes nothing over it.
// Invariant S3.
func TestConflictWithAForeignVersionEndsTheTermAtOnce(t *testing.T) {
	forBothModes(t, func(t *testing.T, watched bool) {
		cs := freeLeaseFor(watched)
		start := time.Now()
		term, err := newElector(t, cs, "a").Campaign(context.Background())
		require.NoError(t, err)
		sleepUntil(start, 3*time.Second)
		// Cleared before the write: a watching holder reacts to it at once,
		// possibly before this goroutine runs again.
		cs.ClearActions()
		cg := clientGoLock(cs)
		_, _, err = cg.Get(context.Background())
		require.NoError(t, err)
		now := metav1.Now()
		require.NoError(t, cg.Update(context.Background(), resourcelock.LeaderElectionRecord{
			HolderIdentity: "cg", LeaseDurationSeconds: 15, AcquireTime: now, RenewTime: now, LeaderTransitions: 2,
		}))
		<-term.Lost()
		if watched {
			assert.Equal(t, 3*time.Second, time.Since(start), "at once: the watch delivered the write")
		} else {
			assert.Equal(t, 4*time.Second, time.Since(start), "at the first renewal after the write")
		}
		assert.EqualError(t, term.Err(), `lease ns/lease is held by "cg"`)
		term.Abandon()
		assert.Equal(t, []string{"get", "update", "update", "get"}, verbs(cs), "client-go's get and update, then the holder's conflicting renewal and its read")
		assert.Equal(t, "cg", *getLease(t, cs).Spec.HolderIdentity)
	})
}

// The holder's watch delivers a record another candidate (c)
// wrote at the uid and resourceVersion of the version the holder last wrote
// (an etcd restored without --bump-revision hands out resourceVersions
// again). The holder does not renew it optimistically, which the API server,
// checking the resourceVersion alone, would accept over c's record: it reads
// the Lease, finds a version it did not write and loses its term at once.
// Invariant S3.
func TestHolderDoesNotOverwriteARecordAtItsReusedResourceVersion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		start := time.Now()
		term, err := newElector(t, cs, "a").Campaign(context.Background())
		require.NoError(t, err)
		sleepUntil(start, time.Second)
		taken := getLease(t, cs)
		taken.Spec = leaseSpec("c", 15, time.Now(), time.Now(), 1)
		restore(t, cs, taken)
		synctest.Wait()
		assert.Equal(t, "c", *getLease(t, cs).Spec.HolderIdentity, "a wrote over c's record")
		assert.EqualError(t, term.Err(), `lease ns/lease is held by "c"`, "lost at once")
		term.Abandon()
	})
}

// A renewal that conflicts with a version carrying the spec the
// holder wrote (an annotation added) renews that version and goes on
// optimistically from it.
// Invariant S3.
func TestConflictWithItsOwnSpecRenewsTheNewVersion(t *testing.T) {
	forBothModes(t, func(t *testing.T, watched bool) {
		cs := freeLeaseFor(watched)
		start := time.Now()
		term, err := newElector(t, cs, "a").Campaign(context.Background())
		require.NoError(t, err)
		sleepUntil(start, time.Second)
		editLease(t, cs, func(l *coordinationv1.Lease) { l.Annotations = map[string]string{"note": "x"} })
		cs.ClearActions()
		sleepUntil(start, 4*time.Second)
		synctest.Wait()
		if watched {
			assert.Equal(t, []string{"update", "update"}, verbs(cs), "the watch delivered the edited version: renewals at 2s and 4s")
		} else {
			assert.Equal(t, []string{"update", "get", "update", "update"}, verbs(cs), "at 2s: conflict, read, renew; at 4s: renew")
		}
		assert.Nil(t, term.Err())
		assert.Equal(t, time.Now(), getLease(t, cs).Spec.RenewTime.Time)
		term.Abandon()
	})
}

// The deletion of the Lease ends its holder's term: at once when the
// watch delivers it, otherwise at the next renewal (whose update names the
// old uid and is refused), and the holder writes nothing (no re-creation):
// a client-go candidate that re-creates a missing Lease leads at once.
// Invariants S3, S5.
func TestDeletionEndsTheTerm(t *testing.T) {
	forBothModes(t, func(t *testing.T, watched bool) {
		cs := freeLeaseFor(watched)
		start := time.Now()
		term, err := newElector(t, cs, "a").Campaign(context.Background())
		require.NoError(t, err)
		sleepUntil(start, 3*time.Second)
		require.NoError(t, cs.CoordinationV1().Leases("ns").Delete(context.Background(), "lease", metav1.DeleteOptions{}))
		cs.ClearActions()
		<-term.Lost()
		if watched {
			assert.Equal(t, 3*time.Second, time.Since(start), "at once: the watch delivered the deletion")
			assert.Empty(t, verbs(cs))
		} else {
			assert.Equal(t, 4*time.Second, time.Since(start), "at the next renewal")
			assert.Equal(t, []string{"update", "get"}, verbs(cs))
		}
		assert.EqualError(t, term.Err(), "lease ns/lease was deleted")
		term.Abandon()
		_, err = cs.CoordinationV1().Leases("ns").Get(context.Background(), "lease", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "the holder re-created the Lease: %v", err)
	})
}

// loseAnswer applies the next write of verb but answers it with a transport
// error, as when the connection breaks after the API server wrote.
func loseAnswer(cs *fake.Clientset, verb string) *atomic.Bool {
	var lose atomic.Bool
	cs.PrependReactor(verb, "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if !lose.Swap(false) {
			return false, nil, nil
		}
		_, _, err := versioned(cs.Tracker())(a)
		if err != nil {
			panic(err)
		}
		return true, nil, errors.New("connection reset by peer")
	})
	return &lose
}

// A renewal applied whose answer was lost made a version with the
// spec this candidate wrote: the next renewal conflicts, reads it, finds it
// its own and renews it.
// Invariant S3.
func TestRenewalWithALostAnswerIsStillOwn(t *testing.T) {
	forBothModes(t, func(t *testing.T, watched bool) {
		cs := freeLeaseFor(watched)
		lose := loseAnswer(cs, "update")
		// Off the microsecond grid: the API server stores the renewal's
		// times in microseconds, and the lost spec must still match.
		time.Sleep(1234 * time.Nanosecond)
		start := time.Now()
		term, err := newElector(t, cs, "a").Campaign(context.Background())
		require.NoError(t, err)
		lose.Store(true)
		sleepUntil(start, 3*time.Second) // the renewal at 2s was written, its answer lost
		require.Equal(t, start.Add(2*time.Second).Truncate(time.Microsecond), getLease(t, cs).Spec.RenewTime.Time)
		cs.ClearActions()
		sleepUntil(start, 4*time.Second)
		synctest.Wait()
		if watched {
			assert.Equal(t, []string{"update"}, verbs(cs), "the watch delivered the version: renewed optimistically")
		} else {
			assert.Equal(t, []string{"update", "get", "update"}, verbs(cs))
		}
		assert.Nil(t, term.Err())
		assert.Equal(t, time.Now().Truncate(time.Microsecond), getLease(t, cs).Spec.RenewTime.Time)
		term.Abandon()
	})
}

// A create applied whose answer was lost: the candidate finds the Lease it
// created and wins it by renewing, but still waits lease_duration after the
// creation before Campaign returns.
// Invariant S5.
func TestCreateWithALostAnswerStillWaitsOutADeletedHolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset()
		loseAnswer(cs, "create").Store(true)
		start := time.Now()
		term, err := newElector(t, cs, "a").Campaign(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 15*time.Second, time.Since(start))
		assert.Equal(t, start, getLease(t, cs).Spec.AcquireTime.Time, "the Lease it created")
		term.Abandon()
	})
}

// An annotation edit leaves the version the holder's own,
// so it releases; a record rewritten by someone else under its name (here a
// new acquireTime) is not its own, so it writes nothing.
// Invariant S6.
func TestReleaseOnlyReleasesItsOwnVersion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		a := newElector(t, cs, "a")
		term, err := a.Campaign(context.Background())
		require.NoError(t, err)
		editLease(t, cs, func(l *coordinationv1.Lease) { l.Annotations = map[string]string{"note": "x"} })
		released, err := term.Release(context.Background())
		require.NoError(t, err)
		assert.True(t, released)
		assert.Empty(t, *getLease(t, cs).Spec.HolderIdentity)
		assert.Equal(t, int32(1), *getLease(t, cs).Spec.LeaseDurationSeconds)

		time.Sleep(time.Second)
		term, err = a.Campaign(context.Background())
		require.NoError(t, err)
		time.Sleep(time.Second)
		edited := editLease(t, cs, func(l *coordinationv1.Lease) { l.Spec.AcquireTime = &metav1.MicroTime{Time: time.Now()} })
		released, err = term.Release(context.Background())
		require.NoError(t, err)
		assert.False(t, released, "a version a did not write")
		assert.Equal(t, edited.ResourceVersion, getLease(t, cs).ResourceVersion, "nothing written")
	})
}

// A record naming this candidate at the uid and
// resourceVersion of the version it last wrote, but with another spec (an
// etcd restored without --bump-revision handed the resourceVersion out
// again, here to another candidate configured with the same identity), is
// not its own: Release writes nothing over it.
// Invariant S6.
func TestReleaseLeavesAnotherRecordAtItsReusedResourceVersion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := withoutWatch(newClientset(freeLease()))
		term, err := newElector(t, cs, "a").Campaign(context.Background())
		require.NoError(t, err)
		term.Abandon()
		time.Sleep(time.Second)
		other := getLease(t, cs)
		other.Spec = leaseSpec("a", 15, time.Now(), time.Now(), 1)
		restore(t, cs, other)
		released, err := term.Release(context.Background())
		require.NoError(t, err)
		assert.False(t, released, "a version a did not write")
		assert.Equal(t, "a", *getLease(t, cs).Spec.HolderIdentity)
		assert.Equal(t, time.Now(), getLease(t, cs).Spec.AcquireTime.Time, "the other candidate's record is left as it is")
	})
}

// A Campaign cancelled (its collector shuts down) while the update that takes
// a released Lease is in flight: the API server applied it, the answer is
// lost. Campaign gives back what it may have won before it returns, so that
// the next candidate does not wait lease_duration for a holder that never
// renews. Before, with several replicas shutting down at once, one replica
// took a Lease another released and exited holding it (make scale).
// Invariant S6.
func TestCancelledCampaignGivesBackAWriteWhoseAnswerWasLost(t *testing.T) {
	forBothModes(t, func(t *testing.T, watched bool) {
		cs := freeLeaseFor(watched)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var done atomic.Bool
		cs.PrependReactor("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if done.Swap(true) {
				return false, nil, nil
			}
			if _, _, err := versioned(cs.Tracker())(a); err != nil {
				panic(err)
			}
			cancel() // the shutdown, while the answer is on its way
			return true, nil, context.Canceled
		})
		_, err := newElector(t, cs, "b").Campaign(ctx)
		require.ErrorIs(t, err, context.Canceled)
		l := getLease(t, cs)
		assert.Empty(t, *l.Spec.HolderIdentity, "given back")
		assert.Equal(t, int32(1), *l.Spec.LeaseDurationSeconds)

		// The next candidate takes it at once.
		start := time.Now()
		term, err := newElector(t, cs, "c").Campaign(context.Background())
		require.NoError(t, err)
		assert.Zero(t, time.Since(start))
		term.Abandon()
	})
}
