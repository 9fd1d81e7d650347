package elector

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrRenewDeadline is the reason of a term whose renewals kept failing for
// renew_deadline.
var ErrRenewDeadline = errors.New("could not renew the lease within renew_deadline")

// DriftSlack is how much earlier than lease_duration after its last renewal
// a holder must have stopped, because clocks run at slightly different rates:
// a standby measures lease_duration on its own clock, which may run fast.
// It allows a difference of 1 % (ordinary quartz clocks differ by 0.01 %).
func DriftSlack(leaseDuration time.Duration) time.Duration { return leaseDuration / 100 }

// Term is one period during which this candidate holds the Lease. It renews
// the Lease in the background until it is lost or the caller ends it.
type Term struct {
	e *Elector
	w *watcher // follows the Lease for the term; cancelled when the renew loop returns

	ctx    context.Context // cancelled when the caller ends the term
	cancel context.CancelFunc
	lost   chan struct{} // closed when renewing failed; err says why
	done   chan struct{} // closed when the renew loop has returned
	err    error

	mu      sync.Mutex
	renewed time.Time // what the last successful renewal counts from; frozen once lost
}

// startTerm starts a term won at acquired; the caller holds no lock and
// e.mine is the version that won it.
func (e *Elector) startTerm(acquired time.Time, w *watcher) *Term {
	ctx, cancel := context.WithCancel(context.Background())
	t := &Term{
		e: e, w: w, ctx: ctx, cancel: cancel, renewed: acquired,
		lost: make(chan struct{}), done: make(chan struct{}),
	}
	e.mu.Lock()
	won := e.mine
	e.mu.Unlock()
	e.payload.begin(t, won, e.cfg.PayloadAnnotation)
	go t.renew()
	return t
}

// Lost is closed when the term ended by itself: the holder could not renew
// within renew_deadline, or found a version of the Lease it did not write. It is closed
// at renew_deadline after the last successful renewal at the latest, even
// when an attempt on the API server hangs. From then on the caller has until
// [Term.Deadline] to stop what the Lease guards.
func (t *Term) Lost() <-chan struct{} { return t.lost }

// Err says why the term was lost; nil while it is not.
func (t *Term) Err() error {
	select {
	case <-t.lost:
		return t.err
	default:
		return nil
	}
}

// Deadline is the instant by which whatever the Lease guards must have
// stopped: lease_duration after the moment the last successful renewal counts
// from (read before that renewal was written, so no other candidate can have
// seen it earlier), less [DriftSlack]. No other candidate takes the Lease
// before then. It moves forward with every renewal while the term is held,
// and no longer once the term is lost or ended.
func (t *Term) Deadline() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.renewed.Add(t.e.cfg.LeaseDuration - DriftSlack(t.e.cfg.LeaseDuration))
}

// Abandon stops renewing and waits until the renew loop has returned: when
// it returns, this term writes nothing more to the Lease, which is left to
// expire. It does not wait for the term's watch, which only reads: that is
// cancelled and ends when its request does. Safe to call more than once and
// from several goroutines.
func (t *Term) Abandon() {
	t.stop()
	t.e.payload.end(t)
}

// stop stops renewing and waits until the renew loop has returned.
func (t *Term) stop() {
	t.cancel()
	<-t.done
}

// Release stops renewing and then hands the Lease over if the version it
// reads is still this candidate's own, conditionally on that version (see the
// package doc). It reports
// whether it released. Safe to call more than once and after the term was
// lost.
func (t *Term) Release(ctx context.Context) (bool, error) {
	t.stop()
	defer t.e.payload.end(t)
	return t.e.release(ctx)
}

// held reports whether the term is neither lost nor past its renew deadline
// (which the renew loop may not have noticed yet).
func (t *Term) held() bool {
	return t.Err() == nil && t.e.cfg.Clock.Since(t.lastRenewal()) < t.e.cfg.RenewDeadline
}

func (t *Term) lastRenewal() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.renewed
}

// renew renews every retry period, counted from the end of the previous
// attempt, but never sleeps past the renew deadline (renew_deadline after the
// last successful renewal), also when the answer of a renewal came late; and
// declares the term lost exactly at that deadline, even while an attempt
// still waits for the API server. When an answer (a failure, or a success
// counted from long before) came so late that the next attempt, a retry
// period later, would fall at or after the deadline, and no attempt began
// within the last retry period before it, it tries once more at once,
// bounded by the time left: a late answer alone does not end a term while
// the API server may be healthy again. A version of the Lease from the watch
// that this candidate did not write makes it renew at once (a conflict then
// ends the term); the deletion of the Lease ends the term at once.
func (t *Term) renew() {
	defer close(t.done)
	defer t.w.cancel() // not stop: a request that ignores its cancellation must not hold up Abandon
	clk, cfg := t.e.cfg.Clock, t.e.cfg
	began := t.lastRenewal() // when the last attempt began: the winning one, about when the term counts from
	for {
		deadline := t.lastRenewal().Add(cfg.RenewDeadline)
		remaining := deadline.Sub(clk.Now())
		if remaining <= 0 {
			t.lose(ErrRenewDeadline)
			return
		}
		pause := min(cfg.RetryPeriod, remaining)
		if remaining <= cfg.RetryPeriod && deadline.Sub(began) > cfg.RetryPeriod {
			pause = 0 // the last chance: see above
		}
		if pause > 0 && !t.waitForRenewal(pause) {
			return
		}
		if t.ctx.Err() != nil {
			return
		}
		remaining = cfg.RenewDeadline - clk.Since(t.lastRenewal())
		if remaining <= 0 {
			t.lose(ErrRenewDeadline)
			return
		}
		began = clk.Now()
		a, finished, err := t.attempt(remaining)
		switch {
		case !finished:
			return // lost (or ended) while the attempt was in flight
		case a.won:
			t.mu.Lock()
			t.renewed = a.at
			t.mu.Unlock()
		case t.ctx.Err() != nil:
			return
		case err == nil:
			t.lose(errors.New(t.e.foreign()))
			return
		}
	}
}

// waitForRenewal waits d, or less when the watch delivers a version this
// candidate did not write. It reports false when the term ended meanwhile:
// ended by the caller, or lost because the Lease was deleted.
func (t *Term) waitForRenewal(d time.Duration) bool {
	timer := t.e.cfg.Clock.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return false
		case <-timer.C():
			return true
		case <-t.w.changed:
			switch t.e.watchVerdict() {
			case deleted:
				t.lose(errors.New(t.e.foreign()))
				return false
			case suspect:
				return true
			case nothingNew:
			}
		}
	}
}

// attempt makes one renewal. If the renew deadline (remaining from now)
// passes first, it declares the term lost, cancels the attempt, waits until
// it has returned (so nothing is written after Abandon) and reports
// finished=false; likewise when the caller ends the term meanwhile.
func (t *Term) attempt(remaining time.Duration) (a attempt, finished bool, err error) {
	ctx, cancel := context.WithTimeout(t.ctx, remaining)
	defer cancel()
	type result struct {
		a   attempt
		err error
	}
	res := make(chan result, 1)
	go func() {
		a, err := t.e.tryAcquireOrRenew(ctx, true)
		res <- result{a, err}
	}()
	timeout := t.e.cfg.Clock.NewTimer(remaining)
	defer timeout.Stop()
	select {
	case r := <-res:
		return r.a, true, r.err
	case <-timeout.C():
		t.lose(ErrRenewDeadline)
	case <-t.ctx.Done():
	}
	cancel()
	<-res
	return attempt{}, false, nil
}

func (t *Term) lose(err error) {
	t.err = err
	close(t.lost)
}
