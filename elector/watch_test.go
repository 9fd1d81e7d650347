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
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// replica is one candidate's own connection to the fake API server cs: its
// requests (watch included) reach cs's objects with a real API server's
// optimistic concurrency, and its actions are recorded apart from the
// others'.
func replica(cs *fake.Clientset) *fake.Clientset {
	r := &fake.Clientset{}
	r.AddReactor("*", "*", versioned(cs.Tracker()))
	r.AddWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		w, err := cs.Tracker().Watch(a.GetResource(), a.GetNamespace())
		return true, w, err
	})
	return r
}

// holderAndReplica is a fake API server cs whose free Lease candidate "a"
// holds (termA), and rb, another candidate's connection to it.
func holderAndReplica(t *testing.T) (cs *fake.Clientset, termA *Term, rb *fake.Clientset) {
	t.Helper()
	cs = newClientset(freeLease())
	termA, err := newElector(t, cs, "a").Campaign(context.Background())
	require.NoError(t, err)
	return cs, termA, replica(cs)
}

// campaign runs c's campaign in the background and hands over the term won.
func campaign(ctx context.Context, e *Elector) <-chan *Term {
	won := make(chan *Term, 1)
	go func() {
		if term, err := e.Campaign(ctx); err == nil {
			won <- term
		}
	}()
	return won
}

// A standby that watches the Lease takes it the moment it
// is released, and reads nothing while it waits.
func TestWatchingStandbyTakesAReleaseAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs, termA, rb := holderAndReplica(t)
		won := campaign(t.Context(), newElector(t, rb, "b"))
		time.Sleep(time.Second) // fake time: b's first attempt; it watches
		rb.ClearActions()
		time.Sleep(time.Minute) // fake time: a renews 30 times
		synctest.Wait()
		assert.Empty(t, rb.Actions(), "a watching standby makes no request while the holder renews")
		released := time.Now()
		ok, err := termA.Release(context.Background())
		require.NoError(t, err)
		require.True(t, ok)
		termB := <-won
		assert.Equal(t, released, time.Now(), "taken the moment the release was written")
		assert.Equal(t, []string{"get", "update"}, verbs(rb))
		assert.Equal(t, "b", *getLease(t, cs).Spec.HolderIdentity)
		termB.Abandon()
	})
}

// A watching standby takes a silent holder's Lease exactly
// lease_duration after it saw the last renewal, with one Get and one Update,
// and no polling before.
// Invariant S2.
func TestWatchingStandbyActsExactlyLeaseDurationAfterTheLastRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs, termA, rb := holderAndReplica(t)
		won := campaign(t.Context(), newElector(t, rb, "b"))
		time.Sleep(10*time.Second + 500*time.Millisecond) // fake time: a renewed at 10s
		rb.ClearActions()
		termA.Abandon() // a crashes: no release
		lastRenewal := getLease(t, cs).Spec.RenewTime.Time
		termB := <-won
		assert.Equal(t, 15*time.Second, time.Since(lastRenewal), "lease_duration after the last renewal was seen")
		assert.Equal(t, []string{"get", "update"}, verbs(rb), "no polling while waiting")
		termB.Abandon()
	})
}

// A standby whose watch is refused (RBAC without list and watch)
// polls every retry period, and one whose watch comes back stops polling.
// OnWatch hears of both.
func TestStandbyPollsWhileTheWatchIsBroken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, termA, rb := holderAndReplica(t)
		var refuse atomic.Bool
		refuse.Store(true)
		rb.PrependReactor("list", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			if refuse.Load() {
				return true, nil, errors.New("connection refused (injected)")
			}
			return false, nil, nil
		})
		var mu sync.Mutex
		var reports []error
		b := newElector(t, rb, "b", func(c *Config) {
			c.OnWatch = func(err error) { mu.Lock(); reports = append(reports, err); mu.Unlock() }
		})
		won := campaign(t.Context(), b)
		time.Sleep(time.Minute) // fake time
		synctest.Wait()
		gets := count(rb, "get")
		// A jittered retry period is 2s to 4.4s.
		assert.GreaterOrEqual(t, gets, 60/4, "polled while the watch was refused")
		assert.LessOrEqual(t, gets, 60/2+1)
		mu.Lock()
		require.Len(t, reports, 1)
		assert.ErrorContains(t, reports[0], "list lease ns/lease: connection refused (injected)")
		mu.Unlock()
		refuse.Store(false)
		time.Sleep(4 * MaxWatchBackoff) // fake time: the watch is back (a backoff is at most 2.2 x MaxWatchBackoff)
		synctest.Wait()
		mu.Lock()
		require.Len(t, reports, 2)
		assert.NoError(t, reports[1], "the watch is established again")
		mu.Unlock()
		rb.ClearActions()
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Zero(t, count(rb, "get"), "no polling once the watch is back")
		require.Empty(t, won)
		termA.Abandon()
	})
}

func count(cs *fake.Clientset, verb string) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == verb {
			n++
		}
	}
	return n
}

// A version the watch delivers late, older than one already read,
// neither ends a term nor restarts a standby's wait.
// Invariant S2.
func TestLateWatchEventsAreIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(heldLease(15))
		old := getLease(t, cs)
		editLease(t, cs, func(l *coordinationv1.Lease) { l.Spec.RenewTime = ptr.To(metav1.NowMicro()) })
		b := newElector(t, withoutWatch(cs), "b")
		start := time.Now()
		require.False(t, try(t, b))
		time.Sleep(5 * time.Second)
		b.watched(observation{lease: old, at: time.Now()}) // x's previous renewal, delivered late
		sleepUntil(start, 15*time.Second)
		assert.True(t, try(t, b), "the wait counts from the first sighting of the newer version")
	})
}

// The holder's watch delivering a version it did not write makes it
// renew at once; a late delivery of an older one does not.
// Invariant S3.
func TestHolderRenewsAtOnceOnAVersionItDidNotWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		before := getLease(t, cs)
		start := time.Now()
		term, err := newElector(t, cs, "a").Campaign(context.Background())
		require.NoError(t, err)
		cs.ClearActions()
		sleepUntil(start, 1*time.Second)
		term.e.watched(observation{lease: before, at: time.Now()}) // the free Lease before a took it, delivered late
		term.w.signal()
		synctest.Wait()
		assert.Empty(t, verbs(cs), "an older version is no news")
		sleepUntil(start, 1500*time.Millisecond)
		editLease(t, cs, func(l *coordinationv1.Lease) { l.Spec.HolderIdentity = ptr.To("x") })
		<-term.Lost()
		assert.Equal(t, 1500*time.Millisecond, time.Since(start))
		assert.Equal(t, []string{"get", "update", "update", "get"}, verbs(cs), "the edit (get, update), a's renewal at once (conflict), its read")
		term.Abandon()
	})
}

// recreate deletes the Lease and creates it anew (a new uid) with spec.
func recreate(t *testing.T, cs *fake.Clientset, l *coordinationv1.Lease) *coordinationv1.Lease {
	t.Helper()
	require.NoError(t, cs.CoordinationV1().Leases("ns").Delete(context.Background(), "lease", metav1.DeleteOptions{}))
	l, err := cs.CoordinationV1().Leases("ns").Create(context.Background(), l, metav1.CreateOptions{})
	require.NoError(t, err)
	return l
}

// A watch that lags behind a deletion and re-creation delivers the
// deleted object's versions after the Get read the new one. Such a late
// version is older than the one already seen: it must not restart a
// standby's wait (its Get then finds the version it was waiting out "new").
func TestLateEventOfADeletedLeaseDoesNotRestartTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := withoutWatch(newClientset(heldLease(15)))
		old := getLease(t, cs)
		recreate(t, cs, heldLease(15))
		b := newElector(t, cs, "b")
		start := time.Now()
		require.False(t, try(t, b))
		time.Sleep(5 * time.Second)
		b.watched(observation{lease: old, at: time.Now()}) // the deleted Lease's last version, delivered late
		sleepUntil(start, 15*time.Second)
		assert.True(t, try(t, b), "the wait counts from the first sighting of the re-created Lease's version")
	})
}

// A holder's renewal is applied but its answer is lost; its
// watch, lagging behind a deletion and re-creation of the Lease that came
// before this term, then delivers the deleted object's last version, its
// deletion, and the version the lost renewal made. The late version of the
// deleted object must not make the holder forget the spec it wrote: the
// version its renewal made is its own, and the term goes on.
// Invariant S3.
func TestLateEventOfADeletedLeaseKeepsALostRenewalOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := withoutWatch(newClientset(freeLease()))
		old := getLease(t, cs)
		recreate(t, cs, freeLease())
		lose := loseAnswer(cs, "update")
		start := time.Now()
		term, err := newElector(t, cs, "a").Campaign(context.Background())
		require.NoError(t, err)
		lose.Store(true)
		sleepUntil(start, 3*time.Second) // the renewal at 2s was written, its answer lost
		renewed := getLease(t, cs)
		require.Equal(t, start.Add(2*time.Second), renewed.Spec.RenewTime.Time)
		// The lagging watch catches up.
		term.e.watched(observation{lease: old, at: time.Now()})
		term.e.watched(observation{deleted: old.UID, at: time.Now()})
		term.e.watched(observation{lease: renewed, at: time.Now()})
		term.w.signal()
		sleepUntil(start, 5*time.Second)
		synctest.Wait()
		require.NoError(t, term.Err())
		assert.Equal(t, start.Add(4*time.Second), getLease(t, cs).Spec.RenewTime.Time, "renewed at 4s")
		term.Abandon()
	})
}

// A standby takes a released Lease, but the answer to its
// update is lost (the API server applied it). Its watch then delivers the
// released version its Get had read (the list of a watch being established
// as the campaign begins, or an event that arrived during the attempt), and
// then the version its update made. Seeing again a version already seen is
// no change: it must not make the candidate forget the spec it wrote, or it
// waits out its own record as a silent holder's, and nobody leads for
// lease_duration.
// Invariant S3.
func TestWatchedVersionAlreadyReadKeepsALostWriteOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := withoutWatch(newClientset(freeLease()))
		released := getLease(t, cs)
		b := newElector(t, cs, "b")
		loseAnswer(cs, "update").Store(true)
		_, err := b.tryAcquireOrRenew(context.Background(), false)
		require.ErrorContains(t, err, "connection reset by peer")
		taken := getLease(t, cs)
		require.Equal(t, "b", *taken.Spec.HolderIdentity, "the update was applied")
		time.Sleep(time.Second)
		b.watched(observation{lease: released, at: time.Now()})
		b.watched(observation{lease: taken, at: time.Now()})
		assert.True(t, try(t, b), "the version its update made is its own: it renews it")
	})
}

// The watch delivers a record another candidate (c) has just
// written at the uid and resourceVersion of the one the standby has been
// waiting out (an etcd restored without --bump-revision hands out
// resourceVersions again). It is a change: the standby waits lease_duration
// from its arrival, and does not take the Lease the instant c won it.
// Invariant S2.
func TestWatchedRecordAtAReusedResourceVersionRestartsTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(heldLease(15))
		rb := replica(cs)
		start := time.Now()
		won := campaign(t.Context(), newElector(t, rb, "b")) // x's record, seen at 0
		sleepUntil(start, 14*time.Second)
		taken := getLease(t, cs)
		taken.Spec = leaseSpec("c", 15, time.Now(), time.Now(), 4)
		restore(t, cs, taken)
		restored := time.Now()
		termB := <-won
		assert.Equal(t, 15*time.Second, time.Since(restored), "lease_duration after c's record arrived")
		termB.Abandon()
	})
}

// After an etcd restore without --bump-revision, the record another
// candidate (c) has just written may carry a resourceVersion lower than the
// one the standby saw last. The watch cannot tell it from a late event, so
// it does not count it as seen, but it does not ignore it either: the
// standby reads the Lease at once, and waits lease_duration from then (not
// from a Get at the end of the wait it was counting before).
// Invariant S2.
func TestWatchedRecordAtALowerResourceVersionIsReadAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(heldLease(15))
		before := getLease(t, cs)
		editLease(t, cs, func(l *coordinationv1.Lease) { l.Spec.RenewTime = ptr.To(metav1.NowMicro()) })
		rb := replica(cs)
		start := time.Now()
		won := campaign(t.Context(), newElector(t, rb, "b")) // x's renewal, seen at 0
		sleepUntil(start, 10*time.Second)
		rb.ClearActions()
		taken := getLease(t, cs)
		taken.ResourceVersion = before.ResourceVersion
		taken.Spec = leaseSpec("c", 15, time.Now(), time.Now(), 4)
		restore(t, cs, taken)
		restored := time.Now()
		termB := <-won
		assert.Equal(t, 15*time.Second, time.Since(restored), "lease_duration after c's record arrived")
		assert.Equal(t, []string{"get", "get", "update"}, verbs(rb), "a read at once, then the take-over")
		termB.Abandon()
	})
}
