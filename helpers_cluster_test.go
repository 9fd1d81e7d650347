package leaderreceivercreator

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// The fake API server the replicas of a test share, and the journal in which
// it and the test sub-receivers record, in one order, what happened.

// journal records, in one order, what the groups and the Lease did, so a
// test can tell whether two groups ever ran at once and whether a group had
// stopped before the Lease changed hands. A sub-receiver instance counts as
// running from the moment its Start is called until its Shutdown returned,
// whatever it said in between: that is when it may do work.
type journal struct {
	mu      sync.Mutex
	entries []string       // "start A", "stop A", "lease A", "lease " (released)
	running map[string]int // sub-receiver instances running, by replica
	live    map[string]int // the same, by replica, sub-receiver and signal
	overlap int            // the most groups ever running at once
	// idleSince is when a replica's last running instance stopped.
	idleSince map[string]time.Time
}

func newJournal() *journal {
	return &journal{running: map[string]int{}, live: map[string]int{}, idleSince: map[string]time.Time{}}
}

func (j *journal) add(e string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, e)
}

// started is called when an instance's Start is entered. Two replicas with
// running instances, or two instances of one sub-receiver and signal in one
// replica, are two groups.
func (j *journal) started(replica, id, signal string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, "start "+replica+"/"+id)
	j.running[replica]++
	j.live[replica+" "+id+" "+signal]++
	n := 0
	for _, c := range j.running {
		if c > 0 {
			n++
		}
	}
	j.overlap = max(j.overlap, n, j.live[replica+" "+id+" "+signal])
}

// stopped is called when an instance's Shutdown returns.
func (j *journal) stopped(replica, id, signal string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, "stop "+replica+"/"+id)
	j.running[replica]--
	j.live[replica+" "+id+" "+signal]--
	if j.running[replica] == 0 {
		j.idleSince[replica] = time.Now()
	}
}

// idle reports whether a replica runs no instance, and since when (zero if
// it never ran one).
func (j *journal) idle(replica string) (bool, time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.running[replica] == 0, j.idleSince[replica]
}

func (j *journal) maxOverlap() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.overlap
}

func (j *journal) runningCount(replica string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.running[replica]
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.entries...)
}

// index is the position of the first entry e at or after from, or -1.
func (j *journal) index(e string, from int) int {
	for i, x := range j.list()[from:] {
		if x == e {
			return from + i
		}
	}
	return -1
}

// cluster is a fake API server shared by several replicas. Like a real one,
// it rejects a Lease update whose resourceVersion is stale, stamps a new
// resourceVersion on every write (and a uid on every creation), serves
// watches, and it journals every change of holder.
type cluster struct {
	tracker k8stesting.ObjectTracker
	journal *journal
	mu      sync.Mutex // serialises applying a change and journaling it
	version int        // the last resourceVersion stamped
	// onLeaseWrite, when set, is told of every create or update of the
	// Lease that the API server accepted, with the holder before and after.
	onLeaseWrite func(verb, prevHolder, holder string)
}

func newCluster(j *journal) *cluster {
	return &cluster{tracker: fake.NewClientset().Tracker(), journal: j}
}

// client returns a client for one replica; while fail is set, every call
// it makes fails as if the API server were unreachable. A write is applied at
// once, but its answer reaches the replica only after slow (then reset).
func (c *cluster) client(fail *atomic.Bool, slow *atomic.Int64) kubernetes.Interface {
	cs := &fake.Clientset{}
	cs.AddReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if fail != nil && fail.Load() {
			return true, nil, errors.New("connection refused (injected)")
		}
		return c.apply(a)
	})
	cs.AddWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		if fail != nil && fail.Load() {
			return true, nil, errors.New("connection refused (injected)")
		}
		w, err := c.tracker.Watch(a.GetResource(), a.GetNamespace())
		return true, w, err
	})
	return slowClient{cs, slow}
}

// slowClient delays the answers to Lease writes outside the fake's lock,
// which the replica's watch needs too: a goroutine waiting on a mutex is not
// durably blocked in a synctest bubble, so fake time would stand still.
type slowClient struct {
	*fake.Clientset
	slow *atomic.Int64
}

func (s slowClient) CoordinationV1() coordinationv1client.CoordinationV1Interface {
	return slowCoordination{s.Clientset.CoordinationV1(), s.slow}
}

type slowCoordination struct {
	coordinationv1client.CoordinationV1Interface
	slow *atomic.Int64
}

func (s slowCoordination) Leases(namespace string) coordinationv1client.LeaseInterface {
	return slowLeases{s.CoordinationV1Interface.Leases(namespace), s.slow}
}

type slowLeases struct {
	coordinationv1client.LeaseInterface
	slow *atomic.Int64
}

func (s slowLeases) late() {
	if s.slow != nil {
		time.Sleep(time.Duration(s.slow.Swap(0))) // fake time inside a synctest bubble
	}
}

func (s slowLeases) Create(ctx context.Context, l *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error) {
	defer s.late()
	return s.LeaseInterface.Create(ctx, l, opts)
}

func (s slowLeases) Update(ctx context.Context, l *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	defer s.late()
	return s.LeaseInterface.Update(ctx, l, opts)
}

func (c *cluster) apply(a k8stesting.Action) (bool, runtime.Object, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkVersion(a); err != nil {
		return true, nil, err
	}
	prevHolder := ""
	if v := a.GetVerb(); v == "create" || v == "update" {
		if prev, err := c.tracker.Get(leasesGVR, "ns", "lease"); err == nil {
			prevHolder = holderOf(prev.(*coordinationv1.Lease))
		}
	}
	handled, obj, err := k8stesting.ObjectReaction(c.tracker)(a)
	if l, ok := obj.(*coordinationv1.Lease); ok && err == nil && a.GetVerb() != "get" && a.GetVerb() != "list" {
		c.journal.add("lease " + holderOf(l))
		if c.onLeaseWrite != nil {
			c.onLeaseWrite(a.GetVerb(), prevHolder, holderOf(l))
		}
	}
	return handled, obj, err
}

// checkVersion gives a Lease update the optimistic concurrency of a real API
// server, and stamps a new resourceVersion on every create and update (and a
// uid on every creation).
func (c *cluster) checkVersion(a k8stesting.Action) error {
	write, ok := a.(interface{ GetObject() runtime.Object })
	if !ok || a.GetResource().Resource != "leases" {
		return nil
	}
	l := write.GetObject().(*coordinationv1.Lease)
	if a.GetVerb() == "update" {
		cur, err := c.tracker.Get(a.GetResource(), l.Namespace, l.Name)
		if err != nil {
			return err
		}
		if cur.(*coordinationv1.Lease).ResourceVersion != l.ResourceVersion {
			return apierrors.NewConflict(a.GetResource().GroupResource(), l.Name, errors.New("the object has been modified"))
		}
	}
	c.version++
	l.ResourceVersion = strconv.Itoa(c.version)
	if a.GetVerb() == "create" {
		l.UID = types.UID("uid-" + l.ResourceVersion)
	}
	return nil
}

var leasesGVR = coordinationv1.SchemeGroupVersion.WithResource("leases")

// edit changes the Lease by hand (kubectl edit): like every write to a real
// API server, it makes a new resourceVersion.
func (c *cluster) edit(t *testing.T, edit func(*coordinationv1.Lease)) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lease(t)
	edit(l)
	c.version++
	l.ResourceVersion = strconv.Itoa(c.version)
	require.NoError(t, c.tracker.Update(leasesGVR, l, "ns"))
}

func (c *cluster) lease(t *testing.T) *coordinationv1.Lease {
	obj, err := c.tracker.Get(coordinationv1.SchemeGroupVersion.WithResource("leases"), "ns", "lease")
	require.NoError(t, err)
	return obj.(*coordinationv1.Lease)
}

// freeLease is a Lease that exists with no holder, as after a release.
func freeLease() *coordinationv1.Lease {
	return &coordinationv1.Lease{
		// A resourceVersion, as every object a real API server serves has:
		// a watch that delivers this version late then drops it as older
		// than the candidate's own write (an empty one is not comparable).
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "lease", ResourceVersion: "0"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(""), LeaseDurationSeconds: ptr.To[int32](1)},
	}
}

func (c *cluster) holder(t *testing.T) string {
	return holderOf(c.lease(t))
}

func holderOf(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}
