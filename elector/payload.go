package elector

import (
	"errors"
	"sync"

	coordinationv1 "k8s.io/api/coordination/v1"
)

// A term can carry a payload in an annotation of the Lease
// (Config.PayloadAnnotation): a small state that follows leadership, such
// as the checkpoints of what the holder has processed. It costs no request
// of its own and is fenced like the holder's record:
//
//   - it is written only with the term's own writes: its renewals, every
//     retry_period, and its release, each conditional on the resourceVersion
//     of the version this candidate last wrote or read, so a write from a
//     term that has ended (another holder wrote since) is refused by the API
//     server;
//   - [Term.SetPayload] refuses a value once the term has ended, lost or
//     ended by the caller; the release that follows still carries the last
//     value set before;
//   - the next holder finds it in the version it takes over and keeps it
//     ([Term.Payload]) until it sets its own. A take-over writes the spec
//     over the version read, so annotations (and labels) are kept, as
//     client-go's resourcelock does.

// ErrTermEnded is returned by [Term.SetPayload] once the term has ended.
var ErrTermEnded = errors.New("the term has ended")

// payload is the value the current term writes with its writes.
type payload struct {
	mu    sync.Mutex // never held while waiting for the API server
	term  *Term      // the term whose writes carry value; nil between terms
	value string     // what the term writes
	set   bool       // value was set in this term (else writes keep the version's own)
}

// begin makes t the term whose writes carry the payload, starting from the
// value in the version that won it.
func (p *payload) begin(t *Term, won *coordinationv1.Lease, annotation string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.term, p.value, p.set = t, "", false
	if won != nil && annotation != "" {
		p.value = won.Annotations[annotation]
	}
}

// end stops t's writes from carrying its payload (the next term's take-over
// writes the version it read).
func (p *payload) end(t *Term) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.term == t {
		p.term, p.set = nil, false
	}
}

// annotate returns the lock's hook: a write carries the value the current
// term set, if any.
func (p *payload) annotate(annotation string) func(*coordinationv1.Lease) {
	return func(l *coordinationv1.Lease) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.term == nil || !p.set {
			return
		}
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[annotation] = p.value
	}
}

// Payload is the payload in the version of the Lease that won this term
// (what the previous holder last wrote), or the last value set in this term.
func (t *Term) Payload() string {
	p := &t.e.payload
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.term != t {
		return ""
	}
	return p.value
}

// SetPayload sets the payload that this term's next write carries: its next
// renewal, within retry_period, or its release. It never waits for the API
// server. It returns ErrTermEnded once the term was lost or ended.
func (t *Term) SetPayload(v string) error {
	p := &t.e.payload
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.term != t || t.ctx.Err() != nil || t.Err() != nil {
		return ErrTermEnded
	}
	p.value, p.set = v, true
	return nil
}
