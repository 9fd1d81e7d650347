package elector

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"
)

// The lock writes exactly the spec fields client-go's LeaseLock
// writes, and client-go reads our record as its own kind.
func TestLockWritesTheRecordClientGoReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newClientset(freeLease())
		a := newElector(t, cs, "a")
		acquired := time.Now()
		require.True(t, try(t, a))
		assert.Equal(t, coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To("a"), LeaseDurationSeconds: ptr.To[int32](15),
			AcquireTime: &metav1.MicroTime{Time: acquired}, RenewTime: &metav1.MicroTime{Time: acquired},
			LeaseTransitions: ptr.To[int32](1),
		}, getLease(t, cs).Spec)

		time.Sleep(2500 * time.Millisecond)
		renewed := time.Now()
		require.True(t, try(t, a))
		record, _, err := clientGoLock(cs).Get(context.Background())
		require.NoError(t, err)
		assert.Equal(t, resourcelock.LeaderElectionRecord{
			HolderIdentity: "a", LeaseDurationSeconds: 15, LeaderTransitions: 1,
			AcquireTime: metav1.NewTime(acquired), RenewTime: metav1.NewTime(renewed),
		}, *record, "a renewal keeps acquireTime and leaseTransitions")
	})
}

// The lock hands out the resourceVersion, and its update is
// conditional on it.
// Invariant S2.
func TestLeaseLockUpdateIsConditional(t *testing.T) {
	cs := newClientset()
	l := leaseLock{client: cs.CoordinationV1(), namespace: "ns", name: "lease"}
	ctx := context.Background()
	now := time.Now()
	created, err := l.create(ctx, leaseSpec("a", 15, now, now, 0))
	require.NoError(t, err)
	require.NotEmpty(t, created.ResourceVersion)
	updated, err := l.update(ctx, created, leaseSpec("a", 15, now, now.Add(time.Second), 0))
	require.NoError(t, err)
	assert.NotEqual(t, created.ResourceVersion, updated.ResourceVersion)
	_, err = l.update(ctx, created, leaseSpec("a", 15, now, now.Add(2*time.Second), 0))
	assert.True(t, apierrors.IsConflict(err), "an update on a stale version: %v", err)
	got, err := l.get(ctx)
	require.NoError(t, err)
	assert.Equal(t, updated.ResourceVersion, got.ResourceVersion)
}
