package elector

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/utils/clock"
)

// JitterFactor spreads the retries of candidates that are waiting for the
// Lease, as client-go's leaderelection does.
const JitterFactor = 1.2

// Config describes one candidate.
type Config struct {
	// Client reads and writes the Lease: a clientset's CoordinationV1().
	Client coordinationv1client.LeasesGetter
	// Namespace and Name name the coordination.k8s.io/v1 Lease this
	// candidate competes for.
	Namespace, Name string
	// Identity names this candidate in the Lease. It must be unique among
	// the candidates; two with the same identity never both hold the Lease,
	// but they take it from each other only as from a silent holder.
	Identity string
	// LeaseDuration is how long a candidate waits, after it last saw the
	// record change, before it takes the Lease from a silent holder. It is
	// written to the Lease in whole seconds.
	LeaseDuration time.Duration
	// RenewDeadline is how long the holder keeps retrying to renew before it
	// declares its term lost.
	RenewDeadline time.Duration
	// RetryPeriod is the pause between two attempts.
	RetryPeriod time.Duration
	// Clock is the time source; the real clock when nil.
	Clock clock.Clock
	// OnAttempt, when set, is called after every attempt to read or write the
	// Lease with nil when the API answered as expected and the error when it
	// did not (forbidden, unreachable, conflict). It must not block.
	OnAttempt func(err error)
	// OnWatch, when set, is called whenever the watch of the Lease is
	// established (nil) or breaks (why). While it is broken, candidates
	// poll every retry period. It must not block.
	OnWatch func(err error)
	// PayloadAnnotation, when set, is the annotation of the Lease that
	// carries the holder's payload (see [Term.SetPayload]).
	PayloadAnnotation string
}

// MinStopMargin is the least lease_duration - renew_deadline accepted: the
// time a holder that lost its term has to stop its work before another
// candidate may take over. Below a second, a stop that needs one call to an
// API server or one garbage collection pause on a busy node cannot fit; and
// the Lease itself counts in whole seconds. The margin must also be at least
// twice the [DriftSlack], so that at least half of it is left to stop in.
const MinStopMargin = time.Second

// minStopMargin is the least margin for a lease duration.
func minStopMargin(leaseDuration time.Duration) time.Duration {
	return max(MinStopMargin, 2*DriftSlack(leaseDuration))
}

// ValidateTimings checks client-go's rule
// lease_duration > renew_deadline > JitterFactor*retry_period > 0, that
// lease_duration - renew_deadline is at least [MinStopMargin] (and twice the
// [DriftSlack]), and that the
// lease duration is a whole number of seconds, as the Lease stores it.
func ValidateTimings(leaseDuration, renewDeadline, retryPeriod time.Duration) error {
	switch {
	case retryPeriod <= 0:
		return errors.New("retry_period must be greater than zero")
	case leaseDuration <= renewDeadline:
		return errors.New("renew_deadline must be less than lease_duration")
	case leaseDuration-renewDeadline < minStopMargin(leaseDuration):
		return fmt.Errorf("renew_deadline (%s) must be at least %s less than lease_duration (%s): "+
			"that margin is the time the group has to stop before another replica may take over "+
			"(at least 1s, and 2 %% of lease_duration)",
			renewDeadline, minStopMargin(leaseDuration), leaseDuration)
	case renewDeadline <= time.Duration(JitterFactor*float64(retryPeriod)):
		return fmt.Errorf("renew_deadline must be greater than retry_period*%.1f", JitterFactor)
	case leaseDuration%time.Second != 0:
		return errors.New("lease_duration must be a whole number of seconds (the Lease stores seconds)")
	}
	return nil
}

// Elector campaigns for one Lease on behalf of one candidate. Its methods may
// be called from several goroutines; attempts on the Lease are serialised.
type Elector struct {
	cfg  Config
	lock leaseLock

	mu          sync.Mutex                 // serialises every use of lock and the fields below
	seen        *coordinationv1.Lease      // the version last seen
	seenAt      time.Time                  // when this candidate first saw seen's version
	mine        *coordinationv1.Lease      // the version this candidate last wrote (or found carrying the spec it wrote)
	unconfirmed []coordinationv1.LeaseSpec // specs of writes whose answer was lost since the last one confirmed
	created     time.Time                  // when this candidate last created (or tried to create) the Lease
	gone        bool                       // the Lease was found missing since it was last seen
	deleted     types.UID                  // the object a watch last saw deleted
	recheck     bool                       // the watch delivered a version older than seen's, not applied: read the Lease

	pendingMu sync.Mutex    // guards pending only; never held while waiting
	pending   []observation // what the watch delivered, not yet applied

	payload payload
}

// New validates cfg and returns an Elector that does not campaign yet.
func New(cfg Config) (*Elector, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("client must be set")
	case cfg.Namespace == "" || cfg.Name == "":
		return nil, errors.New("lease namespace and name must be set")
	case cfg.Identity == "":
		return nil, errors.New("identity must not be empty")
	}
	if err := ValidateTimings(cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	e := &Elector{cfg: cfg, lock: leaseLock{client: cfg.Client, namespace: cfg.Namespace, name: cfg.Name}}
	if cfg.PayloadAnnotation != "" {
		e.lock.annotate = e.payload.annotate(cfg.PayloadAnnotation)
	}
	return e, nil
}

// Identity is the name this candidate writes into the Lease.
func (e *Elector) Identity() string { return e.cfg.Identity }

// Describe names the Lease as namespace/name.
func (e *Elector) Describe() string { return e.cfg.Namespace + "/" + e.cfg.Name }

// Campaign blocks until this candidate holds the Lease and returns the term
// it won, or returns ctx's error. The term renews itself until it is lost or
// ended; the caller must end it with [Term.Release] or [Term.Abandon].
func (e *Elector) Campaign(ctx context.Context) (*Term, error) {
	// The watch follows the Lease for the standby and, handed over with the
	// term, for the holder.
	w := e.startWatch()
	for {
		// Bound each attempt, so that an unreachable API server is reported
		// (OnAttempt) instead of hiding behind client-go's own retries.
		attemptCtx, cancel := context.WithTimeout(ctx, e.cfg.RenewDeadline)
		a, err := e.tryAcquireOrRenew(attemptCtx, false) // errors go to OnAttempt
		cancel()
		switch {
		case a.won && e.cfg.Clock.Since(a.at) >= e.cfg.RenewDeadline:
			// The answer came so late that the term would be lost on arrival.
			// The record is this candidate's: the next attempt renews it.
			continue
		case a.won:
			// Read before the term starts: its first renewal may come at
			// once (a late answer) and hold e.mu while it waits for the API.
			e.mu.Lock()
			created := e.created
			e.mu.Unlock()
			term := e.startTerm(a.at, w)
			if e.waitOutDeletedHolder(ctx, term, created) {
				return term, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			w = e.startWatch() // the term cancelled the watch it was given
			continue           // lost the Lease while waiting: campaign again
		}
		if !e.waitForNextAttempt(ctx, w, err != nil) {
			w.stop()
			e.giveBackUnconfirmed()
			return nil, ctx.Err()
		}
	}
}

// giveBackUnconfirmed releases the Lease, when Campaign returns without a
// term, if a write whose answer was lost (typically the update that takes a
// released Lease, cancelled in flight by a shutdown) may have made this
// candidate its holder: otherwise the Lease names a candidate that never
// renews it, and the next one waits lease_duration. release writes only over
// a version of this candidate's own (S6), and this candidate ran nothing in
// it. Not after a create whose answer was lost within lease_duration: that
// Lease is waited out, as every created Lease is (S5). Bounded by a retry
// period: a shutdown does not wait for an API server that does not answer.
func (e *Elector) giveBackUnconfirmed() {
	e.mu.Lock()
	pending := len(e.unconfirmed) > 0 && (e.created.IsZero() || e.cfg.Clock.Since(e.created) >= e.cfg.LeaseDuration)
	e.mu.Unlock()
	if !pending {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.RetryPeriod)
	defer cancel()
	_, _ = e.release(ctx)
}

// waitOutDeletedHolder holds a term, renewing it, until lease_duration after
// this candidate last created the Lease (created), before handing it to the caller; a
// term won later by renewing the record it created (after it lost the first
// one) waits just as long. No candidate can tell a Lease that never existed
// from one deleted by hand under a holder that still runs its work; such a
// holder gives up within its renew_deadline of its last renewal, which came
// before the deletion, so after lease_duration it has stopped. (A holder that
// finds its own Lease deleted loses its term and, if it campaigns again and
// creates the Lease, waits here like anyone.) It reports whether the term
// is still held; if not, the term is ended. A term lost at the very moment
// the wait ends is never handed out.
func (e *Elector) waitOutDeletedHolder(ctx context.Context, term *Term, created time.Time) bool {
	if wait := e.cfg.LeaseDuration - e.cfg.Clock.Since(created); wait > 0 {
		select {
		case <-e.cfg.Clock.After(wait):
		case <-term.Lost():
		case <-ctx.Done():
			// Never used: hand it on, bounded by the term's deadline.
			releaseCtx, cancel := context.WithDeadline(context.Background(), term.Deadline())
			defer cancel()
			_, _ = term.Release(releaseCtx)
			return false
		}
	}
	if !term.held() {
		term.Abandon()
		return false
	}
	return true
}

func jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Float64()*JitterFactor*float64(d))
}

// attempt is the outcome of one try at the Lease.
type attempt struct {
	won bool      // this candidate holds the Lease
	at  time.Time // when the Lease was read; a won term counts from here
}

// tryAcquireOrRenew makes one attempt to take or keep the Lease. The error
// says why an attempt failed for a reason other than another holder. A holder
// (renewing) keeps only a record of its own; a standby also takes a free or
// expired one.
func (e *Elector) tryAcquireOrRenew(ctx context.Context, renewing bool) (attempt, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, err := e.tryLocked(ctx, renewing)
	if e.cfg.OnAttempt != nil {
		e.cfg.OnAttempt(err)
	}
	return a, err
}

func (e *Elector) tryLocked(ctx context.Context, renewing bool) (attempt, error) {
	e.applyWatchedLocked()
	if renewing && e.mine != nil && holderOf(e.mine) == e.Identity() && !e.reusedLocked() {
		// The holder renews optimistically, without a Get: an update of the
		// version it last wrote succeeds only if nobody wrote since. Not when
		// its watch delivered another record at that version's
		// resourceVersion (handed out again): the update would overwrite it.
		now := e.cfg.Clock.Now()
		spec := e.renewal(e.mine, now)
		l, err := e.lock.update(ctx, e.mine, spec)
		if err == nil {
			e.wrote(l, now)
			return attempt{won: true, at: now}, nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			e.failedWrite(spec, err)
			return attempt{at: now}, fmt.Errorf("update lease %s: %w", e.Describe(), err)
		}
		// Somebody wrote in between, or deleted the Lease: read it and decide.
	}
	cur, err := e.lock.get(ctx)
	// Time is read after the Get: a record counts as seen only once the
	// answer is in, and a term counts from a moment before its write.
	now := e.cfg.Clock.Now()
	if err == nil || apierrors.IsNotFound(err) {
		e.recheck = false // read: what the watch dropped as older is known
	}
	switch {
	case apierrors.IsNotFound(err) && renewing:
		// Deleted under its holder: the term ends (see the package doc).
		e.gone = true
		return attempt{at: now}, nil
	case apierrors.IsNotFound(err):
		return e.createLocked(ctx, now)
	}
	if err != nil {
		return attempt{at: now}, fmt.Errorf("get lease %s: %w", e.Describe(), err)
	}
	e.observe(cur, now)
	var spec coordinationv1.LeaseSpec
	switch {
	case e.own(cur):
		spec = e.renewal(cur, now)
	case renewing || !e.expired(cur, now):
		return attempt{at: now}, nil
	default:
		spec = e.newSpec(now, transitionsOf(cur)+1)
	}
	return e.updateLocked(ctx, cur, spec, now)
}

// createLocked creates the missing Lease naming this candidate.
func (e *Elector) createLocked(ctx context.Context, now time.Time) (attempt, error) {
	spec := e.newSpec(now, 0)
	l, err := e.lock.create(ctx, spec)
	if !apierrors.IsAlreadyExists(err) {
		// Also when the answer was lost: the Lease may exist, created by this
		// candidate, and the created-Lease wait must hold for it.
		e.created = now
	}
	if err != nil {
		e.failedWrite(spec, err)
		return attempt{at: now}, fmt.Errorf("create lease %s: %w", e.Describe(), err)
	}
	e.wrote(l, now)
	return attempt{won: true, at: now}, nil
}

// updateLocked writes spec over the version base, conditionally on its
// resourceVersion.
func (e *Elector) updateLocked(ctx context.Context, base *coordinationv1.Lease, spec coordinationv1.LeaseSpec, now time.Time) (attempt, error) {
	l, err := e.lock.update(ctx, base, spec)
	if err != nil {
		e.failedWrite(spec, err)
		return attempt{at: now}, fmt.Errorf("update lease %s: %w", e.Describe(), err)
	}
	e.wrote(l, now)
	return attempt{won: true, at: now}, nil
}

// newSpec is the record of a term that begins now.
func (e *Elector) newSpec(now time.Time, transitions int32) coordinationv1.LeaseSpec {
	return leaseSpec(e.Identity(), int32(e.cfg.LeaseDuration/time.Second), now, now, transitions)
}

// renewal is the record of this candidate's own version base, renewed now.
func (e *Elector) renewal(base *coordinationv1.Lease, now time.Time) coordinationv1.LeaseSpec {
	acquired := now
	if base.Spec.AcquireTime != nil {
		acquired = base.Spec.AcquireTime.Time
	}
	return leaseSpec(e.Identity(), int32(e.cfg.LeaseDuration/time.Second), acquired, now, transitionsOf(base))
}

// own reports whether a version of the Lease is this candidate's: it names
// this candidate and this candidate wrote it, that is, it carries exactly the
// spec of the version this candidate last wrote (that version, or a later
// one in which only metadata such as labels changed), or the spec of a write
// of this candidate whose answer was lost. Another candidate configured with
// the same identity, or a holder set by hand to this candidate's name, is
// therefore a foreign holder, also at the uid and resourceVersion of the
// version this candidate wrote (which an API server whose etcd was restored
// without --bump-revision hands out again): the spec decides, never the
// resourceVersion alone.
func (e *Elector) own(l *coordinationv1.Lease) bool {
	if holderOf(l) != e.Identity() {
		return false
	}
	if e.mine != nil && holderOf(e.mine) == e.Identity() && sameSpec(l.Spec, e.mine.Spec) {
		return true
	}
	for _, spec := range e.unconfirmed {
		if sameSpec(l.Spec, spec) {
			return true
		}
	}
	return false
}

// expired reports whether a version that is not this candidate's may be
// taken: at once when it looks released (no holder and a duration of at most
// a second, as this package's release and client-go's ReleaseOnCancel write),
// otherwise only once this candidate has seen that version unchanged for the
// longer of the record's lease duration and its own, on its own clock.
func (e *Elector) expired(l *coordinationv1.Lease, now time.Time) bool {
	if holderOf(l) == "" && durationSecondsOf(l) <= 1 {
		return true
	}
	return now.Sub(e.seenAt) >= e.foreignWait(l)
}

// foreignWait is how long a version that is not this candidate's must be
// seen unchanged before it may be taken: the longer of the record's lease
// duration and this candidate's.
func (e *Elector) foreignWait(l *coordinationv1.Lease) time.Duration {
	return max(time.Duration(durationSecondsOf(l))*time.Second, e.cfg.LeaseDuration)
}

// observe remembers the version last seen and, when it changed, the moment
// it was first seen. A version is unchanged only if its uid, its
// resourceVersion and its spec are all the same (sameVersion): two writes
// within one second are two changes (their resourceVersions differ), and a
// record written at a resourceVersion handed out again (an etcd restored
// without --bump-revision) is a change too (its spec differs). The version
// already seen, read or delivered again, is no change: it says nothing about
// a write made since (whose answer may have been lost).
func (e *Elector) observe(l *coordinationv1.Lease, now time.Time) {
	e.gone = false
	if e.seen != nil && sameVersion(e.seen, l) {
		e.seen = l
		return
	}
	e.seenAt = now
	e.seen = l
	if e.mine != nil && sameVersion(l, e.mine) {
		return
	}
	// A newer version: adopt it as this candidate's own if it carries a spec
	// this candidate wrote (metadata edited, or the answer to the write lost).
	if e.own(l) {
		e.mine = l
	}
	e.unconfirmed = nil
}

// sameVersion reports whether a and b are the same version of the Lease:
// the same object (uid), the same resourceVersion and the same spec. The
// resourceVersion alone is not enough: an API server whose etcd was restored
// from a backup without --bump-revision hands out again resourceVersions it
// handed out before, to other records.
func sameVersion(a, b *coordinationv1.Lease) bool {
	return a.UID == b.UID && a.ResourceVersion == b.ResourceVersion && sameSpec(a.Spec, b.Spec)
}

// reusedLocked reports whether the version last seen carries the uid and
// resourceVersion of the version this candidate last wrote, but not its spec:
// the resourceVersion was handed out again (see sameVersion). An update of
// the version this candidate wrote, which the API server checks by
// resourceVersion only, would then overwrite that other record.
func (e *Elector) reusedLocked() bool {
	return e.seen != nil && e.mine != nil && e.seen.UID == e.mine.UID &&
		e.seen.ResourceVersion == e.mine.ResourceVersion && !sameSpec(e.seen.Spec, e.mine.Spec)
}

// wrote records a version this candidate wrote.
func (e *Elector) wrote(l *coordinationv1.Lease, now time.Time) {
	e.mine, e.seen, e.seenAt, e.unconfirmed, e.gone = l, l, now, nil, false
}

// failedWrite remembers the spec of a write whose outcome is unknown (no
// answer from the API server), so that the version it may have made is
// recognised as this candidate's. A write the API server refused is not.
func (e *Elector) failedWrite(spec coordinationv1.LeaseSpec, err error) {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return
	}
	if len(e.unconfirmed) == maxUnconfirmed {
		e.unconfirmed = e.unconfirmed[1:]
	}
	e.unconfirmed = append(e.unconfirmed, spec)
}

// maxUnconfirmed bounds the writes with a lost answer that are remembered.
const maxUnconfirmed = 8

// release writes an empty holder if the Lease is still this candidate's.
// It reports whether it released.
func (e *Elector) release(ctx context.Context) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur, err := e.lock.get(ctx)
	now := e.cfg.Clock.Now()
	if err != nil {
		return false, fmt.Errorf("get lease %s: %w", e.Describe(), err)
	}
	e.observe(cur, now)
	if !e.own(cur) {
		return false, nil
	}
	// The same record as client-go's ReleaseOnCancel. The update carries the
	// resourceVersion Get just read: a holder that wrote in between makes it
	// fail with a conflict instead of being overwritten.
	spec := leaseSpec("", 1, now, now, transitionsOf(cur))
	l, err := e.lock.update(ctx, cur, spec)
	if err != nil {
		return false, fmt.Errorf("release lease %s: %w", e.Describe(), err)
	}
	e.wrote(l, now)
	return true, nil
}

// foreign describes the version last seen, which is not this candidate's.
func (e *Elector) foreign() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone {
		return fmt.Sprintf("lease %s was deleted", e.Describe())
	}
	if e.seen == nil {
		return fmt.Sprintf("lease %s was written by another writer", e.Describe())
	}
	switch h := holderOf(e.seen); h {
	case "":
		return fmt.Sprintf("lease %s was released by another writer", e.Describe())
	case e.Identity():
		return fmt.Sprintf("lease %s names this candidate (%q) in a version it did not write", e.Describe(), h)
	default:
		return fmt.Sprintf("lease %s is held by %q", e.Describe(), h)
	}
}
