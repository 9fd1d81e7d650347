package elector

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
)

// JitterFactor spreads the retries of candidates that are waiting for the
// Lease, as client-go's leaderelection does.
const JitterFactor = 1.2

// Config describes one candidate.
type Config struct {
	// Lock is the Lease this candidate competes for; its Identity names the
	// candidate. Use resourcelock.LeaseLock.
	Lock resourcelock.Interface
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
	cfg Config

	mu           sync.Mutex // serialises every use of cfg.Lock and the observed record
	observed     resourcelock.LeaderElectionRecord
	observedRaw  []byte
	observedTime time.Time
	created      time.Time // when this candidate last created the Lease
}

// New validates cfg and returns an Elector that does not campaign yet.
func New(cfg Config) (*Elector, error) {
	if cfg.Lock == nil {
		return nil, errors.New("lock must be set")
	}
	if cfg.Lock.Identity() == "" {
		return nil, errors.New("identity must not be empty")
	}
	if err := ValidateTimings(cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &Elector{cfg: cfg}, nil
}

// Identity is the name this candidate writes into the Lease.
func (e *Elector) Identity() string { return e.cfg.Lock.Identity() }

// Describe names the Lease as namespace/name.
func (e *Elector) Describe() string { return e.cfg.Lock.Describe() }

// Campaign blocks until this candidate holds the Lease and returns the term
// it won, or returns ctx's error. The term renews itself until it is lost or
// ended; the caller must end it with [Term.Release] or [Term.Abandon].
func (e *Elector) Campaign(ctx context.Context) (*Term, error) {
	for {
		// Bound each attempt, so that an unreachable API server is reported
		// (OnAttempt) instead of hiding behind client-go's own retries.
		attemptCtx, cancel := context.WithTimeout(ctx, e.cfg.RenewDeadline)
		a, _ := e.tryAcquireOrRenew(attemptCtx) // errors go to OnAttempt
		cancel()
		switch {
		case a.won && e.cfg.Clock.Since(a.at) >= e.cfg.RenewDeadline:
			// The answer came so late that the term would be lost on arrival.
			// The record names this candidate: the next attempt renews it.
			continue
		case a.won:
			term := e.startTerm(a.at)
			if e.waitOutDeletedHolder(ctx, term) {
				return term, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue // lost the Lease while waiting: campaign again
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-e.cfg.Clock.After(jitter(e.cfg.RetryPeriod)):
		}
	}
}

// waitOutDeletedHolder holds a term, renewing it, until lease_duration after
// this candidate last created the Lease, before handing it to the caller; a
// term won later by renewing the record it created (after it lost the first
// one) waits just as long. No candidate can tell a Lease that never existed
// from one deleted by hand under a holder that still runs its work; such a
// holder gives up within its renew_deadline of its last renewal, which came
// before the deletion, so after lease_duration it has stopped. (A holder that
// finds its own Lease deleted re-creates it while renewing and keeps its
// term: that path does not come through here.) It reports whether the term
// is still held; if not, the term is ended. A term lost at the very moment
// the wait ends is never handed out.
func (e *Elector) waitOutDeletedHolder(ctx context.Context, term *Term) bool {
	e.mu.Lock()
	created := e.created
	e.mu.Unlock()
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
// says why an attempt failed for a reason other than another live holder.
func (e *Elector) tryAcquireOrRenew(ctx context.Context) (attempt, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, err := e.tryLocked(ctx)
	if e.cfg.OnAttempt != nil {
		e.cfg.OnAttempt(err)
	}
	return a, err
}

func (e *Elector) tryLocked(ctx context.Context) (attempt, error) {
	old, raw, err := e.cfg.Lock.Get(ctx)
	// Time is read after the Get: a record counts as seen only once the
	// answer is in, and a term counts from a moment before its write.
	now := e.cfg.Clock.Now()
	record := resourcelock.LeaderElectionRecord{
		HolderIdentity:       e.Identity(),
		LeaseDurationSeconds: int(e.cfg.LeaseDuration / time.Second),
		AcquireTime:          metav1.NewTime(now),
		RenewTime:            metav1.NewTime(now),
	}
	if apierrors.IsNotFound(err) {
		if err := e.cfg.Lock.Create(ctx, record); err != nil {
			return attempt{at: now}, fmt.Errorf("create lease %s: %w", e.Describe(), err)
		}
		e.observe(record, nil, now)
		e.created = now
		return attempt{won: true, at: now}, nil
	}
	if err != nil {
		return attempt{at: now}, fmt.Errorf("get lease %s: %w", e.Describe(), err)
	}
	if string(raw) != string(e.observedRaw) {
		e.observe(*old, raw, now)
	}
	holder := old.HolderIdentity
	valid := e.observedTime.Add(time.Duration(old.LeaseDurationSeconds) * time.Second).After(now)
	if holder != "" && holder != e.Identity() && valid {
		return attempt{at: now}, nil
	}
	if holder == e.Identity() {
		record.AcquireTime = old.AcquireTime
		record.LeaderTransitions = old.LeaderTransitions
	} else {
		record.LeaderTransitions = old.LeaderTransitions + 1
	}
	if err := e.cfg.Lock.Update(ctx, record); err != nil {
		return attempt{at: now}, fmt.Errorf("update lease %s: %w", e.Describe(), err)
	}
	e.observe(record, nil, now)
	return attempt{won: true, at: now}, nil
}

// observe remembers the record last seen and when it was first seen. A nil
// raw forces the next Get to count as a change, which is harmless for a
// record this candidate wrote itself.
func (e *Elector) observe(r resourcelock.LeaderElectionRecord, raw []byte, at time.Time) {
	e.observed, e.observedRaw, e.observedTime = r, raw, at
}

// release writes an empty holder if the Lease still names this candidate.
// It reports whether it released.
func (e *Elector) release(ctx context.Context) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old, _, err := e.cfg.Lock.Get(ctx)
	if err != nil {
		return false, fmt.Errorf("get lease %s: %w", e.Describe(), err)
	}
	if old.HolderIdentity != e.Identity() {
		return false, nil
	}
	now := metav1.NewTime(e.cfg.Clock.Now())
	record := resourcelock.LeaderElectionRecord{
		LeaderTransitions:    old.LeaderTransitions,
		LeaseDurationSeconds: 1,
		AcquireTime:          now,
		RenewTime:            now,
	}
	// The lock carries the resourceVersion Get just read: a holder that wrote
	// in between makes this Update fail with a conflict instead of being
	// overwritten.
	if err := e.cfg.Lock.Update(ctx, record); err != nil {
		return false, fmt.Errorf("release lease %s: %w", e.Describe(), err)
	}
	e.observe(record, nil, now.Time)
	return true, nil
}

// holder is the identity last seen in the Lease.
func (e *Elector) holder() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.observed.HolderIdentity
}
