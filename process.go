package leaderreceivercreator

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"go.opentelemetry.io/collector/component"
)

// processLeases is what the blocks of one collector process share: a slot per
// Lease, the locks of receiver types that keep process-wide state, and the
// process's one FatalError and one exit. Tests give each simulated replica its
// own.
type processLeases struct {
	mu       sync.Mutex
	slots    map[string]*leaseSlot        // by slotKey
	types    map[component.Type]*typeLock // see lockType
	unshared map[component.Type]bool      // types whose instances were seen to keep no shared map
	fatal    bool                         // a FatalError was reported by some block of this process
	exitOnce sync.Once
}

// thisProcess is the state of this collector process.
var thisProcess = newProcessLeases()

func newProcessLeases() *processLeases {
	return &processLeases{
		slots:    map[string]*leaseSlot{},
		types:    map[component.Type]*typeLock{},
		unshared: map[component.Type]bool{},
	}
}

// leaseSlot keeps one process from running two groups for one Lease: after
// a collector reload, a new runner with the same identity would otherwise
// renew the Lease its predecessor still holds and start a second group while
// the first is still stopping.
type leaseSlot struct {
	free chan struct{} // holds a token while no group of the Lease runs here
	mu   sync.Mutex
	hung error // set once a group did not stop: the Lease is never led again here
}

// slotKey names a Lease across clusters: the API server (its URL and CA, as
// resolved from the block's auth settings, so that two kubeconfig contexts
// that reach one server share a slot) and the Lease's namespace/name.
func slotKey(cluster, lease string) string { return cluster + " " + lease }

// slot is the slot of a Lease in a cluster (slotKey).
func (p *processLeases) slot(key string) *leaseSlot {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.slots[key]
	if !ok {
		s = &leaseSlot{free: make(chan struct{}, 1)}
		s.free <- struct{}{}
		p.slots[key] = s
	}
	return s
}

func (s *leaseSlot) markHung(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hung = err
}

func (s *leaseSlot) hungErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hung
}

// claimFatal reports whether the caller may report this process's one
// FatalError. The collector takes a FatalError on an unbuffered channel that
// only its run loop reads, once: every further one would block its status
// reporting for ever, whichever block sends it.
func (p *processLeases) claimFatal() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fatal {
		return false
	}
	p.fatal = true
	return true
}

// fatalSent reports whether some block of this process reported a FatalError:
// the collector is shutting down and reads no status event reliably any more.
func (p *processLeases) fatalSent() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fatal
}

// exitProcess ends the process with code, once, whichever block asks.
func (p *processLeases) exitProcess(exit func(int), code int) {
	p.exitOnce.Do(func() { exit(code) })
}

// typeLock serialises the calls that touch one receiver type's process-wide
// state. It is a channel of capacity 1, so that a wait can give up.
type typeLock struct {
	ch     chan struct{}
	mu     sync.Mutex
	holder string // who holds it, for the error of one who waits too long
}

// lockType takes the lock of receiver type typ for who, waiting until ctx
// is done at the latest; the error then names the holder. Groups hold it
// while they create an instance of a type not yet known to keep no shared
// state, and while they shut down an instance that wraps a shared one.
//
// Several receivers (k8s_cluster and receiver_creator among them, contrib
// v0.145.0 through v0.165) keep their live instances in a package-level map
// without a lock (contrib's internal/sharedcomponent: GetOrAdd in Create*,
// delete at the end of Shutdown). A collector creates and stops its
// components one at a time, so that is safe there; groups create and stop
// members independently, so two members of such a type (in one block or two)
// would write the map at once: Go's fatal "concurrent map writes". The
// instances they return wrap the real receiver and say so with an Unwrap
// method (wrapsShared); other types take no lock when they stop, so a slow
// stop of one block's member never delays another block's. Between members of
// a shared type the coupling stays, bounded by the waiter's own deadline.
func (p *processLeases) lockType(ctx context.Context, typ component.Type, who string) (unlock func(), err error) {
	p.mu.Lock()
	l, ok := p.types[typ]
	if !ok {
		l = &typeLock{ch: make(chan struct{}, 1)}
		p.types[typ] = l
	}
	p.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	case <-ctx.Done():
		l.mu.Lock()
		holder := l.holder
		l.mu.Unlock()
		return nil, fmt.Errorf("waited for the lock of receiver type %s, held by %s: %w", typ, holder, context.Cause(ctx))
	}
	l.mu.Lock()
	l.holder = who
	l.mu.Unlock()
	return func() { <-l.ch }, nil
}

// typeHolder names who holds, or last held, the lock of typ.
func (p *processLeases) typeHolder(typ component.Type) string {
	p.mu.Lock()
	l := p.types[typ]
	p.mu.Unlock()
	if l == nil {
		return "nobody"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holder
}

// createNeedsLock reports whether creating an instance of typ must hold the
// type's lock: until an instance of the type was seen to keep no shared state.
func (p *processLeases) createNeedsLock(typ component.Type) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.unshared[typ]
}

// learn records whether a created instance of typ wraps shared state.
func (p *processLeases) learn(typ component.Type, comp component.Component) {
	if wrapsShared(comp) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unshared[typ] = true
}

// wrapsShared reports whether an instance is a wrapper around a receiver kept
// in a process-wide map, as contrib's and core's internal/sharedcomponent
// return: such a wrapper has an Unwrap method that returns the receiver.
func wrapsShared(comp component.Component) bool {
	if f, ok := comp.(*fencedComponent); ok {
		comp = f.Component
	}
	m := reflect.ValueOf(comp).MethodByName("Unwrap")
	return m.IsValid() && m.Type().NumIn() == 0 && m.Type().NumOut() == 1
}
