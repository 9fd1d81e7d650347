package elector

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/utils/ptr"
)

// leaseLock reads and writes one coordination.k8s.io/v1 Lease. It writes
// exactly the spec fields client-go's resourcelock.LeaseLock writes
// (holderIdentity, leaseDurationSeconds, acquireTime, renewTime,
// leaseTransitions), so kubectl and client-go candidates read and write the
// same Lease unchanged; unlike resourcelock, it hands out the whole object,
// resourceVersion included. Every Update carries the resourceVersion of the
// object it is given, so the API server rejects it with a conflict if anyone
// wrote in between.
type leaseLock struct {
	client    coordinationv1client.LeasesGetter
	namespace string
	name      string
	// annotate, when set, may set annotations of every object it writes.
	annotate func(*coordinationv1.Lease)
}

func (l *leaseLock) get(ctx context.Context) (*coordinationv1.Lease, error) {
	return l.client.Leases(l.namespace).Get(ctx, l.name, metav1.GetOptions{})
}

func (l *leaseLock) create(ctx context.Context, spec coordinationv1.LeaseSpec) (*coordinationv1.Lease, error) {
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: l.namespace, Name: l.name},
		Spec:       spec,
	}
	if l.annotate != nil {
		l.annotate(lease)
	}
	return l.client.Leases(l.namespace).Create(ctx, lease, metav1.CreateOptions{})
}

// update writes spec over base, keeping base's metadata (its resourceVersion,
// labels and annotations). It does not modify base. The object sent carries
// base's uid too: the API server, which creates a Lease on an update of a
// missing one, then refuses it with a conflict instead of re-creating a
// deleted Lease.
func (l *leaseLock) update(ctx context.Context, base *coordinationv1.Lease, spec coordinationv1.LeaseSpec) (*coordinationv1.Lease, error) {
	lease := base.DeepCopy()
	lease.Spec = spec
	if l.annotate != nil {
		l.annotate(lease)
	}
	return l.client.Leases(l.namespace).Update(ctx, lease, metav1.UpdateOptions{})
}

// leaseSpec is the spec client-go's LeaderElectionRecordToLeaseSpec writes.
func leaseSpec(holder string, durationSeconds int32, acquired, renewed time.Time, transitions int32) coordinationv1.LeaseSpec {
	return coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(holder),
		LeaseDurationSeconds: ptr.To(durationSeconds),
		// The API server stores microseconds: a spec whose answer was lost is
		// recognised in the stored version only if it is written as stored.
		AcquireTime:      &metav1.MicroTime{Time: acquired.Truncate(time.Microsecond)},
		RenewTime:        &metav1.MicroTime{Time: renewed.Truncate(time.Microsecond)},
		LeaseTransitions: ptr.To(transitions),
	}
}

func holderOf(l *coordinationv1.Lease) string { return ptr.Deref(l.Spec.HolderIdentity, "") }
func durationSecondsOf(l *coordinationv1.Lease) int32 {
	return ptr.Deref(l.Spec.LeaseDurationSeconds, 0)
}
func transitionsOf(l *coordinationv1.Lease) int32 { return ptr.Deref(l.Spec.LeaseTransitions, 0) }

// sameSpec reports whether two specs are equal (times compared as instants).
func sameSpec(a, b coordinationv1.LeaseSpec) bool { return apiequality.Semantic.DeepEqual(a, b) }
