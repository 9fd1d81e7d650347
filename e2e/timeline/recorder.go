package timeline

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Recorder keeps the Events of a set of processes ordered by At (lines of
// different processes race to it), calls OnEvent for each, and lets callers
// wait for one. Its methods are safe for concurrent use; the zero value is
// not: use NewRecorder.
type Recorder struct {
	onEvent func(Event)

	emitMu  sync.Mutex // one onEvent call at a time, in recording order
	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced on every event
}

// NewRecorder returns an empty Recorder; onEvent, if not nil, is called for
// every Event, one call at a time, in the order they are recorded. It must
// not block for long.
func NewRecorder(onEvent func(Event)) *Recorder {
	return &Recorder{onEvent: onEvent, changed: make(chan struct{})}
}

// Record adds ev.
func (r *Recorder) Record(ev Event) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	r.mu.Lock()
	i := sort.Search(len(r.events), func(i int) bool { return r.events[i].At.After(ev.At) })
	r.events = append(r.events, Event{})
	copy(r.events[i+1:], r.events[i:])
	r.events[i] = ev
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	if r.onEvent != nil {
		r.onEvent(ev)
	}
}

// Events returns all events recorded so far, ordered by At.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Changed is closed when the next Event is recorded.
func (r *Recorder) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// WaitFor waits until match is true of some recorded event (including ones
// recorded before the call) and returns the first such event.
func (r *Recorder) WaitFor(ctx context.Context, match func(Event) bool) (Event, error) {
	for {
		r.mu.Lock()
		for _, ev := range r.events {
			if match(ev) {
				r.mu.Unlock()
				return ev, nil
			}
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return Event{}, fmt.Errorf("waiting for an event: %w", ctx.Err())
		case <-changed:
		}
	}
}
