package elector

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrRenewDeadline is the reason of a term whose renewals kept failing for
// renew_deadline.
var ErrRenewDeadline = errors.New("could not renew the lease within renew_deadline")

// Term is one period during which this candidate holds the Lease. It renews
// the Lease in the background until it is lost or the caller ends it.
type Term struct {
	e        *Elector
	acquired time.Time

	ctx    context.Context // cancelled when the caller ends the term
	cancel context.CancelFunc
	lost   chan struct{} // closed when renewing failed; err says why
	done   chan struct{} // closed when the renew loop has returned
	err    error
}

func (e *Elector) startTerm(acquired time.Time) *Term {
	ctx, cancel := context.WithCancel(context.Background())
	t := &Term{
		e: e, acquired: acquired, ctx: ctx, cancel: cancel,
		lost: make(chan struct{}), done: make(chan struct{}),
	}
	go t.renew()
	return t
}

// Lost is closed when the term ended by itself: the holder could not renew
// within renew_deadline, or found another holder in the Lease. From then on
// the caller has lease_duration - renew_deadline to stop what the Lease
// guards before another candidate may take it.
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

// Abandon stops renewing and waits until the renew loop has returned. The
// Lease is left to expire. Safe to call more than once.
func (t *Term) Abandon() {
	t.cancel()
	<-t.done
}

// Release stops renewing and then hands the Lease over if it still names
// this candidate at the version last read (see the package doc). It reports
// whether it released. Safe to call more than once and after the term was
// lost.
func (t *Term) Release(ctx context.Context) (bool, error) {
	t.Abandon()
	return t.e.release(ctx)
}

func (t *Term) renew() {
	defer close(t.done)
	clk := t.e.cfg.Clock
	lastRenew := t.acquired
	wait := t.e.cfg.RetryPeriod
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-clk.After(wait):
		}
		remaining := t.e.cfg.RenewDeadline - clk.Since(lastRenew)
		if remaining <= 0 {
			t.lose(ErrRenewDeadline)
			return
		}
		ctx, cancel := context.WithTimeout(t.ctx, remaining)
		a, err := t.e.tryAcquireOrRenew(ctx)
		cancel()
		switch {
		case a.won:
			lastRenew, wait = a.at, t.e.cfg.RetryPeriod
		case t.ctx.Err() != nil:
			return
		case err == nil:
			t.lose(fmt.Errorf("lease %s is held by %q", t.e.Describe(), t.e.holder()))
			return
		default:
			// Retry until the deadline, and wake up exactly at it.
			wait = min(t.e.cfg.RetryPeriod, t.e.cfg.RenewDeadline-clk.Since(lastRenew))
		}
	}
}

func (t *Term) lose(err error) {
	t.err = err
	close(t.lost)
}
