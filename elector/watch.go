package elector

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// MaxWatchBackoff bounds the pause between two attempts to re-establish a
// broken watch of the Lease; the first pause is one retry period.
const MaxWatchBackoff = 30 * time.Second

// watcher follows the Lease with a list and a watch restricted to its name (a
// metadata.name field selector, so that RBAC can stay name-scoped) and hands
// every version it sees to its elector, as seen at the moment it arrived. It
// is for speed only: every write is still a conditional update or a create,
// and every take-over decides on a version just read with a Get. While it is
// broken, candidates poll every retry period; it re-establishes itself with
// backoff.
type watcher struct {
	e       *Elector
	changed chan struct{} // signalled after a version arrives or the health changes
	cancel  context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex
	known   bool // healthy was set once
	healthy bool
}

// startWatch starts following the Lease until stop.
func (e *Elector) startWatch() *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{e: e, changed: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go w.run(ctx)
	return w
}

// stop ends the watch and waits until it has ended. Safe to call twice.
func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

func (w *watcher) isHealthy() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.healthy
}

// setHealthy records whether the watch is established; err says why not.
// OnWatch hears of every change.
func (w *watcher) setHealthy(err error) {
	w.mu.Lock()
	changed := !w.known || w.healthy != (err == nil)
	w.known, w.healthy = true, err == nil
	w.mu.Unlock()
	if !changed {
		return
	}
	w.signal()
	if w.e.cfg.OnWatch != nil {
		w.e.cfg.OnWatch(err)
	}
}

func (w *watcher) signal() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *watcher) run(ctx context.Context) {
	defer close(w.done)
	clk := w.e.cfg.Clock
	backoff := w.e.cfg.RetryPeriod
	for {
		began := clk.Now()
		established, err := w.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if established && clk.Since(began) >= w.e.cfg.RetryPeriod {
			// A watch that served a while and ended (the API server ends
			// every watch after some minutes) is re-established at once.
			backoff = w.e.cfg.RetryPeriod
			continue
		}
		w.setHealthy(err)
		t := clk.NewTimer(jitter(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		backoff = min(2*backoff, MaxWatchBackoff)
	}
}

// follow lists the Lease and watches it from the version listed, until the
// watch breaks or ctx ends. It reports whether the watch was established,
// and why it ended.
func (w *watcher) follow(ctx context.Context) (bool, error) {
	e := w.e
	leases := e.cfg.Client.Leases(e.cfg.Namespace)
	selector := fields.OneTermEqualSelector("metadata.name", e.cfg.Name).String()
	list, err := leases.List(ctx, metav1.ListOptions{FieldSelector: selector})
	if err != nil {
		return false, fmt.Errorf("list lease %s: %w", e.Describe(), err)
	}
	if ctx.Err() != nil {
		// Cancelled (the term ended) while a List that ignored it was
		// answered: nothing more from this watch, nor a "watching" report.
		return false, ctx.Err()
	}
	o := observation{at: e.cfg.Clock.Now()}
	for i := range list.Items {
		if list.Items[i].Name == e.cfg.Name {
			o.lease = &list.Items[i]
		}
	}
	e.watched(o)
	wi, err := leases.Watch(ctx, metav1.ListOptions{FieldSelector: selector, ResourceVersion: list.ResourceVersion})
	if err != nil {
		return false, fmt.Errorf("watch lease %s: %w", e.Describe(), err)
	}
	defer wi.Stop()
	w.setHealthy(nil)
	w.signal() // the listed version
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case ev, ok := <-wi.ResultChan():
			switch {
			case !ok:
				return true, fmt.Errorf("watch lease %s: closed", e.Describe())
			case ev.Type == watch.Error:
				return true, fmt.Errorf("watch lease %s: %v", e.Describe(), ev.Object)
			}
			l, ok := ev.Object.(*coordinationv1.Lease)
			if !ok || l.Name != e.cfg.Name || l.Namespace != "" && l.Namespace != e.cfg.Namespace {
				continue // a bookmark, or another Lease (a fake API server ignores the selector)
			}
			o := observation{lease: l, at: e.cfg.Clock.Now()}
			switch ev.Type {
			case watch.Added, watch.Modified:
			case watch.Deleted:
				o = observation{deleted: l.UID, at: o.at}
			default:
				continue
			}
			e.watched(o)
			w.signal()
		}
	}
}

// observation is what the watch delivered at one moment: a version of the
// Lease, or its absence (deleted names the object deleted, empty when a
// list found none).
type observation struct {
	lease   *coordinationv1.Lease
	deleted types.UID
	at      time.Time
}

// watched queues what the watch delivered. The watch never waits for e.mu,
// which an attempt holds while it waits for the API server; the queue is
// applied, in order, before the observed state is next used.
func (e *Elector) watched(o observation) {
	e.pendingMu.Lock()
	defer e.pendingMu.Unlock()
	e.pending = append(e.pending, o)
}

// applyWatchedLocked applies what the watch delivered. A version counts as
// seen from the moment it arrived: a genuine sighting, after its write. A
// version whose resourceVersion is lower than the one already seen is not
// applied: it is most likely late (the watch lags behind a Get, or behind a
// deletion and re-creation: etcd has one counter for every object, so a
// re-created Lease's versions are all newer than the deleted one's), and
// applying it would restart a standby's wait, or make a holder forget the
// spec of a write whose answer was lost. resourceVersions are compared as
// numbers only for that, and only when both are numbers, as etcd's are.
// But it is not ignored either: an etcd restored without --bump-revision
// hands out lower resourceVersions again, to records written since, which
// would otherwise go unnoticed until the resourceVersions caught up. So a
// standby reads the Lease at once (recheck, see untilTakeable) and decides
// on what the Get returns, as on every take-over: a late event costs one
// Get and changes nothing, a restored record restarts the wait from that
// Get (later, never earlier, than from the event). A holder needs no read:
// its next renewal is conditional on the version it wrote.
func (e *Elector) applyWatchedLocked() {
	e.pendingMu.Lock()
	pending := e.pending
	e.pending = nil
	e.pendingMu.Unlock()
	for _, o := range pending {
		switch {
		case o.lease == nil:
			e.gone = true
			if o.deleted != "" {
				e.deleted = o.deleted
			}
		case e.seen != nil && olderVersion(o.lease.ResourceVersion, e.seen.ResourceVersion):
			e.recheck = true
		default:
			e.observe(o.lease, o.at)
		}
	}
}

// olderVersion reports whether resourceVersion a is known to precede b.
func olderVersion(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	return errA == nil && errB == nil && x < y
}

// untilTakeable is how long, from now, a standby waits before its next
// attempt while its watch is healthy: none for a missing or released Lease
// or one of its own, or after the watch delivered a version with a lower
// resourceVersion than the one seen (see applyWatchedLocked); otherwise until
// it has seen the version unchanged long enough (see expired).
func (e *Elector) untilTakeable() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.applyWatchedLocked()
	now := e.cfg.Clock.Now()
	if e.gone || e.recheck || e.seen == nil || e.own(e.seen) || e.expired(e.seen, now) {
		return 0
	}
	return e.seenAt.Add(e.foreignWait(e.seen)).Sub(now)
}

// waitForNextAttempt waits until the next attempt of a standby is due: while
// the watch is healthy, when the version last seen may be taken (at once for
// a release or a deletion); while it is not, and after a failed attempt, a
// jittered retry period after the last attempt. It reports false when ctx
// ended.
func (e *Elector) waitForNextAttempt(ctx context.Context, w *watcher, failed bool) bool {
	clk := e.cfg.Clock
	last := clk.Now()
	poll := jitter(e.cfg.RetryPeriod)
	for {
		wait := poll - clk.Since(last)
		if !failed && w.isHealthy() {
			wait = e.untilTakeable()
		}
		if wait <= 0 {
			return true
		}
		timer := clk.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C():
			return true
		case <-w.changed:
			timer.Stop()
			// After a failed attempt, the next one waits a retry period
			// whatever the watch says.
			failed = failed && clk.Since(last) < poll
		}
	}
}

// verdict is what a holder makes of what its watch delivered.
type verdict int

const (
	nothingNew verdict = iota // only its own versions, or none
	suspect                   // a version it did not write: renew now, and a conflict decides
	deleted                   // the object it holds was deleted
)

// watchVerdict applies what the watch delivered to a holder.
func (e *Elector) watchVerdict() verdict {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.applyWatchedLocked()
	switch {
	case e.mine != nil && e.deleted != "" && e.deleted == e.mine.UID:
		return deleted
	case e.seen != nil && !e.own(e.seen):
		return suspect
	}
	return nothingNew
}
