package elector

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	k8stesting "k8s.io/client-go/testing"
)

// resourceVersions numbers every write of every fake API server, as etcd
// numbers the writes of a real one.
var resourceVersions atomic.Int64

// versionMu makes checking a resourceVersion and writing one step.
var versionMu sync.Mutex

// newClientset is a fake API server that, like a real one, stamps a new
// resourceVersion on every write of a Lease (and a uid on every creation),
// rejects an update whose resourceVersion is not the current one with a
// conflict, and creates a missing Lease on an update, unless the update
// names a uid (a precondition no missing object meets).
func newClientset(objs ...runtime.Object) *fake.Clientset {
	for _, o := range objs {
		if l, ok := o.(*coordinationv1.Lease); ok && l.ResourceVersion == "" {
			l.ResourceVersion = strconv.FormatInt(resourceVersions.Add(1), 10)
			l.UID = types.UID("uid-" + l.ResourceVersion)
		}
	}
	cs := fake.NewClientset(objs...)
	cs.PrependReactor("*", "leases", versioned(cs.Tracker()))
	return cs
}

// versioned applies an action to tracker with the optimistic concurrency of
// a real API server.
func versioned(tracker k8stesting.ObjectTracker) k8stesting.ReactionFunc {
	return func(a k8stesting.Action) (bool, runtime.Object, error) {
		versionMu.Lock()
		defer versionMu.Unlock()
		write, ok := a.(interface{ GetObject() runtime.Object })
		if ok && (a.GetVerb() == "create" || a.GetVerb() == "update") {
			l := write.GetObject().(*coordinationv1.Lease)
			gr := a.GetResource().GroupResource()
			creating := a.GetVerb() == "create"
			if a.GetVerb() == "update" {
				cur, err := tracker.Get(a.GetResource(), l.Namespace, l.Name)
				switch {
				case apierrors.IsNotFound(err) && l.UID != "":
					return true, nil, apierrors.NewConflict(gr, l.Name, errors.New("Precondition failed: UID in precondition: "+string(l.UID)+", UID in object meta: "))
				case apierrors.IsNotFound(err):
					creating = true
				case err != nil:
					return true, nil, err
				case l.ResourceVersion != cur.(*coordinationv1.Lease).ResourceVersion:
					return true, nil, apierrors.NewConflict(gr, l.Name,
						errors.New("the object has been modified; please apply your changes to the latest version and try again"))
				}
			}
			l.ResourceVersion = strconv.FormatInt(resourceVersions.Add(1), 10)
			// Like a real API server, store times in microseconds.
			for _, mt := range []**metav1.MicroTime{&l.Spec.AcquireTime, &l.Spec.RenewTime} {
				if *mt != nil {
					*mt = &metav1.MicroTime{Time: (*mt).Truncate(time.Microsecond)}
				}
			}
			if creating {
				l.UID = types.UID("uid-" + l.ResourceVersion)
				if err := tracker.Create(a.GetResource(), l, l.Namespace); err != nil {
					return true, nil, err
				}
				obj, err := tracker.Get(a.GetResource(), l.Namespace, l.Name)
				return true, obj, err
			}
		}
		return k8stesting.ObjectReaction(tracker)(a)
	}
}

// delayed wraps a fake API server's leases so that a test can delay a Get,
// Create or Update before or after the API server applies it: around runs
// call (the real request) and may sleep before or after it. A reactor that
// slept would hold the fake's lock, which the watch needs too, and a
// goroutine waiting on a mutex is not durably blocked in a synctest bubble:
// fake time would stand still.
func delayed(cs *fake.Clientset, around func(verb string, call func())) func(*Config) {
	return func(c *Config) { c.Client = delayedLeases{cs.CoordinationV1(), around} }
}

type delayedLeases struct {
	coordinationv1client.LeasesGetter
	around func(verb string, call func())
}

func (d delayedLeases) Leases(namespace string) coordinationv1client.LeaseInterface {
	return delayedLease{d.LeasesGetter.Leases(namespace), d.around}
}

type delayedLease struct {
	coordinationv1client.LeaseInterface
	around func(verb string, call func())
}

func (d delayedLease) Get(ctx context.Context, name string, opts metav1.GetOptions) (l *coordinationv1.Lease, err error) {
	d.around("get", func() { l, err = d.LeaseInterface.Get(ctx, name, opts) })
	return l, err
}

func (d delayedLease) Create(ctx context.Context, lease *coordinationv1.Lease, opts metav1.CreateOptions) (l *coordinationv1.Lease, err error) {
	d.around("create", func() { l, err = d.LeaseInterface.Create(ctx, lease, opts) })
	return l, err
}

func (d delayedLease) Update(ctx context.Context, lease *coordinationv1.Lease, opts metav1.UpdateOptions) (l *coordinationv1.Lease, err error) {
	d.around("update", func() { l, err = d.LeaseInterface.Update(ctx, lease, opts) })
	return l, err
}

// withoutWatch makes the fake API server refuse the list and the watch of
// Leases, as one whose RBAC grants only get, create and update: candidates
// poll every retry period.
func withoutWatch(cs *fake.Clientset) *fake.Clientset {
	forbidden := func(verb string) error {
		return apierrors.NewForbidden(coordinationv1.Resource("leases"), "lease", errors.New("cannot "+verb+" (injected)"))
	}
	cs.PrependReactor("list", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, forbidden("list")
	})
	cs.PrependWatchReactor("leases", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, nil, forbidden("watch")
	})
	return cs
}

// freeLeaseFor is a fake API server with a free Lease that serves the watch
// (watched) or refuses it (withoutWatch).
func freeLeaseFor(watched bool) *fake.Clientset {
	cs := newClientset(freeLease())
	if !watched {
		withoutWatch(cs)
	}
	return cs
}

// forBothModes runs a synctest test with the watch (watched) and without it.
func forBothModes(t *testing.T, test func(t *testing.T, watched bool)) {
	for _, watched := range []bool{true, false} {
		t.Run(map[bool]string{true: "watched", false: "polling"}[watched], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { test(t, watched) })
		})
	}
}

// restore writes l as it is, its uid and resourceVersion included, as an API
// server whose etcd was restored from a backup without --bump-revision hands
// out again resourceVersions it handed out before the restore (and sends the
// watch a Modified event).
func restore(t *testing.T, cs *fake.Clientset, l *coordinationv1.Lease) {
	t.Helper()
	versionMu.Lock()
	defer versionMu.Unlock()
	require.NoError(t, cs.Tracker().Update(coordinationv1.SchemeGroupVersion.WithResource("leases"), l, "ns"))
}
