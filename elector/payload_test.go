package elector

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

const testAnnotation = "example.com/payload"

func withPayload(c *Config) { c.PayloadAnnotation = testAnnotation }

func payloadOf(t *testing.T, cs *fake.Clientset) string {
	t.Helper()
	return getLease(t, cs).Annotations[testAnnotation]
}

// countWrites counts the Lease writes (creates and updates) the API server
// is sent.
func countWrites(cs *fake.Clientset) *atomic.Int64 {
	var n atomic.Int64
	cs.PrependReactor("*", "leases", func(a k8stesting.Action) (bool, kruntime.Object, error) {
		if v := a.GetVerb(); v == "create" || v == "update" {
			n.Add(1)
		}
		return false, nil, nil
	})
	return &n
}

// A payload set in a term costs no request of its own: the next renewal
// carries it, and the release the last value; the next holder reads it in
// the version it takes over, and keeps it until it sets its own.
// Invariant S6.
func TestPayloadTravelsWithRenewalsAndTheRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		writes := countWrites(cs)
		a := newElector(t, cs, "a", withPayload)
		term, err := a.Campaign(context.Background())
		require.NoError(t, err)
		assert.Empty(t, term.Payload())
		require.NoError(t, term.SetPayload("one"))
		require.NoError(t, term.SetPayload("two"))
		assert.Equal(t, "two", term.Payload())
		before := writes.Load()
		time.Sleep(2 * time.Second) // one retry_period: one renewal
		synctest.Wait()
		assert.Equal(t, before+1, writes.Load(), "a payload cost a request of its own")
		assert.Equal(t, "two", payloadOf(t, cs))

		require.NoError(t, term.SetPayload("three"))
		released, err := term.Release(context.Background())
		require.NoError(t, err)
		require.True(t, released)
		assert.Equal(t, "three", payloadOf(t, cs), "the release did not carry the last value")
		assert.ErrorIs(t, term.SetPayload("four"), ErrTermEnded)

		b := newElector(t, cs, "b", withPayload)
		termB, err := b.Campaign(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "three", termB.Payload())
		time.Sleep(5 * time.Second) // renewals keep it
		synctest.Wait()
		assert.Equal(t, "three", payloadOf(t, cs))
		require.NoError(t, termB.SetPayload("b1"))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, "b1", payloadOf(t, cs))
		termB.Abandon()
	})
}

// A term that has ended writes no payload. The holder is cut off; another
// candidate takes the Lease after it expired and sets its own payload; the
// first holder's value is refused and its late writes conflict: the
// resourceVersion they carry is no longer the Lease's.
// Invariant S6.
func TestPayloadOfAnEndedTermNeverLands(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		cut := cutUpdatesBy(cs, "a")
		a := newElector(t, cs, "a", withPayload)
		termA, err := a.Campaign(context.Background())
		require.NoError(t, err)
		require.NoError(t, termA.SetPayload("a1"))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Equal(t, "a1", payloadOf(t, cs))

		cut.Store(true) // a's writes fail from now on
		require.NoError(t, termA.SetPayload("a2"))
		<-termA.Lost()
		assert.ErrorIs(t, termA.SetPayload("a3"), ErrTermEnded)
		b := newElector(t, cs, "b", withPayload)
		termB, err := b.Campaign(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "a1", termB.Payload(), "the last value a's term wrote")
		require.NoError(t, termB.SetPayload("b1"))
		time.Sleep(2 * time.Second)
		synctest.Wait()

		cut.Store(false) // a reaches the API server again: its release finds b's record
		released, err := termA.Release(context.Background())
		require.NoError(t, err)
		assert.False(t, released)
		assert.Equal(t, "b1", payloadOf(t, cs))
		assert.Equal(t, "b", *getLease(t, cs).Spec.HolderIdentity)
		termB.Abandon()
	})
}

// watchPayloads records the payload of every version of the Lease written
// from now on.
func watchPayloads(t *testing.T, cs *fake.Clientset) func() []string {
	t.Helper()
	w, err := cs.Tracker().Watch(coordinationv1.SchemeGroupVersion.WithResource("leases"), "ns")
	require.NoError(t, err)
	t.Cleanup(w.Stop)
	var (
		mu  sync.Mutex
		all []string
	)
	go func() {
		for ev := range w.ResultChan() {
			if l, ok := ev.Object.(*coordinationv1.Lease); ok {
				mu.Lock()
				all = append(all, l.Annotations[testAnnotation])
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(all)
	}
}

// A version written by a candidate whose answer came back to it late is
// still conditional: the API server refuses a write over a version it no
// longer holds, payload and all. Here, the last renewal of a term is
// delayed until another candidate has taken over.
// Invariants S6, S16.
func TestLateRenewalWithAPayloadIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		var hold atomic.Bool
		release := make(chan struct{})
		a := newElector(t, cs, "a", withPayload, delayed(cs, func(verb string, call func()) {
			if verb == "update" && hold.Load() {
				<-release // the request reaches the API server only now
			}
			call()
		}))
		termA, err := a.Campaign(context.Background())
		require.NoError(t, err)
		hold.Store(true)
		require.NoError(t, termA.SetPayload("a-late"))
		time.Sleep(16 * time.Second) // a's renewal hangs; its term is lost; the Lease expires
		synctest.Wait()
		b := newElector(t, cs, "b", withPayload)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		termB, err := b.Campaign(ctx)
		require.NoError(t, err, "b never took the expired Lease")
		require.NoError(t, termB.SetPayload("b1"))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		landed := watchPayloads(t, cs)
		close(release) // a's renewal, carrying a-late, reaches the API server
		termA.Abandon()
		synctest.Wait()
		assert.NotContains(t, landed(), "a-late", "a write of an ended term landed")
		assert.Equal(t, "b1", payloadOf(t, cs))
		assert.Equal(t, "b", *getLease(t, cs).Spec.HolderIdentity)
		termB.Abandon()
	})
}

// A client-go candidate that takes the Lease over keeps the payload, and
// ours finds it when it takes the Lease back: client-go writes its record
// over the object it read.
// Invariant S6.
func TestClientGoCandidateKeepsThePayload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		a := newElector(t, cs, "a", withPayload)
		term, err := a.Campaign(context.Background())
		require.NoError(t, err)
		require.NoError(t, term.SetPayload("kept"))
		released, err := term.Release(context.Background())
		require.NoError(t, err)
		require.True(t, released)

		cg := clientGoLock(cs)
		_, _, err = cg.Get(context.Background())
		require.NoError(t, err)
		now := metav1.Now()
		require.NoError(t, cg.Update(context.Background(), resourcelock.LeaderElectionRecord{
			HolderIdentity: "cg", LeaseDurationSeconds: 15, AcquireTime: now, RenewTime: now, LeaderTransitions: 2,
		}))
		assert.Equal(t, "kept", payloadOf(t, cs))

		b := newElector(t, cs, "b", withPayload)
		termB, err := b.Campaign(context.Background()) // after lease_duration
		require.NoError(t, err)
		assert.Equal(t, "kept", termB.Payload())
		termB.Abandon()
	})
}

// A value a term set but never wrote does not outlive the term: when the
// same candidate wins the Lease again, its take-over writes the version it
// read, and the new term starts from that version's payload. Here a is cut
// off with a value set after its last renewal landed ("a2"); b takes the
// expired Lease, writes "b1" and releases it; a takes it back and must
// neither write "a2" over "b1" nor start from it. Then a loses its record
// the same way and wins it back by renewing it (its own spec): it starts
// from what that record carries, not from what its ended term had set.
// Invariants S3, S16.
func TestPayloadOfAnEndedTermDoesNotLeakIntoTheNextOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		cut := cutUpdatesBy(cs, "a")
		landed := watchPayloads(t, cs)
		a := newElector(t, cs, "a", withPayload)
		a1, err := a.Campaign(context.Background())
		require.NoError(t, err)
		require.NoError(t, a1.SetPayload("a1"))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Equal(t, "a1", payloadOf(t, cs))

		cut.Store(true)
		require.NoError(t, a1.SetPayload("a2")) // never written
		<-a1.Lost()
		a1.Abandon() // as the runner does after a loss

		b := newElector(t, cs, "b", withPayload)
		termB, err := b.Campaign(context.Background())
		require.NoError(t, err)
		require.NoError(t, termB.SetPayload("b1"))
		released, err := termB.Release(context.Background())
		require.NoError(t, err)
		require.True(t, released)

		cut.Store(false)
		a2, err := a.Campaign(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "b1", a2.Payload(), "a's new term starts from its ended term's value")
		time.Sleep(2 * time.Second) // a renewal
		synctest.Wait()
		assert.Equal(t, "b1", payloadOf(t, cs))
		require.NoError(t, a2.SetPayload("a3"))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Equal(t, "a3", payloadOf(t, cs))

		// Lost again with a value never written, then won back at once by
		// renewing its own record, before anyone else may take it.
		cut.Store(true)
		require.NoError(t, a2.SetPayload("a4"))
		<-a2.Lost()
		a2.Abandon()
		cut.Store(false)
		a3, err := a.Campaign(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "a", *getLease(t, cs).Spec.HolderIdentity)
		assert.Equal(t, "a3", a3.Payload())
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, "a3", payloadOf(t, cs))
		a3.Abandon()
		synctest.Wait()
		assert.NotContains(t, landed(), "a2")
		assert.NotContains(t, landed(), "a4")
	})
}

// SetPayload races Release: every value it accepted is in the release (or
// superseded by a later accepted one), and from the moment Release begins
// none is accepted, so nothing set after the group stopped reaches the
// Lease. Run with -race.
// Invariants S8, S16.
func TestSetPayloadRacingReleaseLosesNothingAndAddsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		a := newElector(t, cs, "a", withPayload)
		term, err := a.Campaign(context.Background())
		require.NoError(t, err)
		time.Sleep(3 * time.Second) // a renewal first
		synctest.Wait()
		var accepted atomic.Int64
		setter := make(chan struct{})
		go func() { // spins without blocking: fake time stands still meanwhile
			defer close(setter)
			for i := int64(1); ; i++ {
				if err := term.SetPayload(strconv.FormatInt(i, 10)); err != nil {
					assert.ErrorIs(t, err, ErrTermEnded)
					return
				}
				accepted.Store(i)
			}
		}()
		for accepted.Load() < 100 {
			runtime.Gosched()
		}
		released, err := term.Release(context.Background())
		require.NoError(t, err)
		require.True(t, released)
		<-setter
		assert.Equal(t, strconv.FormatInt(accepted.Load(), 10), payloadOf(t, cs),
			"the release does not carry the last value accepted before it")
		assert.ErrorIs(t, term.SetPayload("late"), ErrTermEnded)
	})
}

// cutUpdatesBy makes every update of the Lease that names holder as its
// holder fail as if the API server were unreachable, while the returned
// flag is set.
func cutUpdatesBy(cs *fake.Clientset, holder string) *atomic.Bool {
	cut := new(atomic.Bool)
	cs.PrependReactor("*", "leases", func(a k8stesting.Action) (bool, kruntime.Object, error) {
		if s, ok := a.(k8stesting.UpdateAction); ok && cut.Load() {
			if h := s.GetObject().(*coordinationv1.Lease).Spec.HolderIdentity; h != nil && *h == holder {
				return true, nil, errors.New("connection refused")
			}
		}
		return false, nil, nil
	})
	return cut
}
