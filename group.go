package leaderreceivercreator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/xconsumer"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/pipeline/xpipeline"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/xreceiver"
	"go.opentelemetry.io/collector/service/hostcapabilities"
	"go.uber.org/zap"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
	"github.com/leaderreceivercreator/leaderreceivercreator/internal/metadata"
)

// consumers are the next consumers of this block, one per signal it was
// created for; nil for a signal it sits in no pipeline of.
type consumers struct {
	metrics  consumer.Metrics
	logs     consumer.Logs
	traces   consumer.Traces
	profiles xconsumer.Profiles
}

func (c *consumers) has(s pipeline.Signal) bool {
	switch s {
	case pipeline.SignalMetrics:
		return c.metrics != nil
	case pipeline.SignalLogs:
		return c.logs != nil
	case pipeline.SignalTraces:
		return c.traces != nil
	case xpipeline.SignalProfiles:
		return c.profiles != nil
	}
	return false
}

// allSignals is the order in which a member's signals are created.
var allSignals = []pipeline.Signal{pipeline.SignalMetrics, pipeline.SignalLogs, pipeline.SignalTraces, xpipeline.SignalProfiles}

// member is one sub-receiver, resolved against its factory and validated.
type member struct {
	key     string // as written under receivers, e.g. k8s_events/apps
	id      component.ID
	factory receiver.Factory
	raw     map[string]any // the user's configuration, unmarshalled afresh for every term
	signals []pipeline.Signal
}

// group is the recipe for the sub-receivers this block runs while it leads:
// everything is resolved and validated once, at Start, on every replica, so
// that a typo fails every replica at once instead of only the next leader.
type group struct {
	parent    receiver.Settings
	members   []member
	consumers consumers
	// process is this process's shared state: the receiver types' locks
	// (processLeases.lockType).
	process *processLeases
}

// resolveGroup looks up every sub-receiver's factory on the host, builds its
// configuration (factory default, then the user's map, then the factory's
// validation) and works out its signals.
func resolveGroup(cfg *Config, host component.Host, parent receiver.Settings, cons consumers, process *processLeases) (*group, error) {
	factories, ok := host.(hostcapabilities.ComponentFactory)
	if !ok {
		return nil, errors.New("the collector host does not provide component factories (hostcapabilities.ComponentFactory); leader_receiver_creator cannot build its sub-receivers")
	}
	g := &group{parent: parent, consumers: cons, process: process}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(cfg.Receivers)) {
		m, err := resolveMember(cfg, key, factories, &cons)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := checkStorage(cfg, key, host); err != nil {
			errs = append(errs, err)
			continue
		}
		if m.id.Type() != m.factory.Type() {
			unsampled(parent.Logger).Warn(logmsg.DeprecatedType, zap.String("receiver", key),
				zap.String("type", m.id.Type().String()), zap.String("use", m.factory.Type().String()))
		}
		g.members = append(g.members, m)
	}
	return g, errors.Join(errs...)
}

func resolveMember(cfg *Config, key string, factories hostcapabilities.ComponentFactory, cons *consumers) (member, error) {
	id, err := parseID(key)
	if err != nil {
		return member{}, fmt.Errorf("receivers: %w", err)
	}
	f, ok := factories.GetFactory(component.KindReceiver, id.Type()).(receiver.Factory)
	if !ok {
		return member{}, fmt.Errorf("receivers::%s: this collector has no receiver of type %q", key, id.Type())
	}
	m := member{key: key, id: id, factory: f, raw: cfg.Receivers[key]}
	if _, err := m.config(); err != nil {
		return member{}, err
	}
	supported := func(s pipeline.Signal) bool { return signalStability(f, s) != component.StabilityLevelUndefined }
	if want := cfg.signalsFor(key); len(want) > 0 {
		for _, s := range want {
			switch {
			case !supported(s):
				return member{}, fmt.Errorf("signals::%s: %s does not support %s", key, id.Type(), s)
			case !cons.has(s):
				return member{}, fmt.Errorf("signals::%s: this %s block is in no %s pipeline", key, metadata.Type, s)
			}
		}
		m.signals = want
		return m, nil
	}
	for _, s := range allSignals {
		if supported(s) && cons.has(s) {
			m.signals = append(m.signals, s)
		}
	}
	if len(m.signals) == 0 {
		return member{}, fmt.Errorf("receivers::%s: %s supports none of the signals of the pipelines this block is in", key, id.Type())
	}
	return m, nil
}

// config builds a fresh, validated configuration for the member.
func (m *member) config() (component.Config, error) {
	c := m.factory.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(m.raw).Unmarshal(c); err != nil {
		return nil, fmt.Errorf("receivers::%s: %w", m.key, err)
	}
	if err := confmap.Validate(c); err != nil {
		return nil, fmt.Errorf("receivers::%s: %w", m.key, err)
	}
	return c, nil
}

func signalStability(f receiver.Factory, s pipeline.Signal) component.StabilityLevel {
	switch s {
	case pipeline.SignalMetrics:
		return f.MetricsStability()
	case pipeline.SignalLogs:
		return f.LogsStability()
	case pipeline.SignalTraces:
		return f.TracesStability()
	case xpipeline.SignalProfiles:
		if xf, ok := f.(xreceiver.Factory); ok {
			return xf.ProfilesStability()
		}
	}
	return component.StabilityLevelUndefined
}

// keys names the members, for logs.
func (g *group) keys() []string {
	out := make([]string, len(g.members))
	for i, m := range g.members {
		out[i] = m.key
	}
	return out
}

// instance is one created sub-receiver for one signal. It counts as running
// from the moment its Start is called until its Shutdown has returned.
type instance struct {
	key  string
	typ  component.Type
	who  string // its ID, which names the block too, for the type lock's errors
	comp component.Component
	// ctx is the context the instance is started with and lives until it has
	// stopped: k8s_cluster runs its informers on it for the whole term.
	ctx    context.Context
	cancel context.CancelFunc
	// started is closed when Start has returned; startErr is its error.
	started  chan struct{}
	startErr error
}

// runningGroup is one term's instances of the group, started one after the
// other in the background so that the caller can watch the term meanwhile.
type runningGroup struct {
	process *processLeases

	mu        sync.Mutex
	instances []*instance // every instance whose Start was called
	aborted   bool        // stop was called: start no more instances
	stopping  []bool      // by instance: its Shutdown has not returned yet (once stop began)
	waiting   []bool      // by instance: its stop waits for its type's lock

	// abortCtx is cancelled when stop begins: a create waiting for its
	// type's lock gives up.
	abortCtx context.Context
	abort    context.CancelFunc

	done chan struct{} // closed when start has finished: all started, one failed, or aborted
	err  error         // why the start failed; read after done

	stopped chan struct{} // closed when every instance stop began with has stopped

	fences *fences // the instances' data paths (fence.go)
}

// memberReport is how a member's status report leaves the group: the
// member's key and its event.
type memberReport func(key string, ev *componentstatus.Event)

// start builds fresh instances of every member (receivers cannot be started
// twice) and starts them one after the other in the background; Done is
// closed when all have started or one failed (Err). It is all or nothing:
// after a failure, or at any moment, stop shuts down every instance whose
// Start was called, including one whose Start has not returned yet. Each
// member reports its status through report, under its own key; dropped is
// told of data a member sends after it stopped (fence.go).
func (g *group) start(host component.Host, report memberReport, dropped dropFunc, cp *checkpoints) *runningGroup {
	abortCtx, abort := context.WithCancel(context.Background())
	rg := &runningGroup{
		process: g.process, abortCtx: abortCtx, abort: abort,
		done: make(chan struct{}), stopped: make(chan struct{}), fences: newFences(dropped),
	}
	go func() {
		defer close(rg.done)
		rg.err = g.startAll(rg, host, report, cp)
	}()
	return rg
}

func (g *group) startAll(rg *runningGroup, host component.Host, report memberReport, cp *checkpoints) error {
	for _, m := range g.members {
		c, err := m.config()
		if err != nil {
			return err
		}
		set := g.memberSettings(m)
		for _, s := range m.signals {
			fc := rg.fences.add(m.key)
			sub := &subHost{Host: host, report: func(ev *componentstatus.Event) { report(m.key, ev) }}
			if cp != nil { // lease_checkpoints, fenced with this instance's data path
				sub.storage = &checkpointExtension{cp: cp, member: m.key, fence: fc}
			}
			in, err := rg.add(m.key, m.factory.Type(), set.ID.String(), func(ctx context.Context) (component.Component, error) {
				return fc.component(g.create(rg.abortCtx, ctx, set, c, m.factory, s, fc.consumers(g.consumers)))
			})
			switch {
			case errors.Is(err, errAborted):
				return err
			case errors.Is(err, pipeline.ErrSignalNotSupported):
				continue
			case err != nil:
				return fmt.Errorf("receivers::%s: create %s receiver: %w", m.key, s, err)
			}
			in.startErr = in.comp.Start(in.ctx, sub)
			close(in.started)
			if in.startErr != nil {
				return fmt.Errorf("receivers::%s: start: %w", m.key, in.startErr)
			}
		}
	}
	return nil
}

// memberSettings gives a member an ID that names its parent, e.g.
// k8s_cluster/leader_receiver_creator/x, and a logger that says so.
func (g *group) memberSettings(m member) receiver.Settings {
	name := g.parent.ID.String()
	if m.id.Name() != "" {
		name = m.id.Name() + "/" + name
	}
	set := g.parent
	set.ID = component.NewIDWithName(m.id.Type(), name)
	set.Logger = g.parent.Logger.With(zap.String("sub_receiver", m.key))
	return set
}

// create creates one instance, under its type's lock until the type is known
// to keep no shared state (processLeases.lockType); lockCtx bounds the wait
// for that lock.
func (g *group) create(lockCtx, ctx context.Context, set receiver.Settings, c component.Config, f receiver.Factory, s pipeline.Signal, cons consumers) (component.Component, error) {
	if g.process.createNeedsLock(f.Type()) {
		unlock, err := g.process.lockType(lockCtx, f.Type(), set.ID.String())
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	comp, err := createUnlocked(ctx, set, c, f, s, cons)
	if err == nil {
		g.process.learn(f.Type(), comp)
	}
	return comp, err
}

func createUnlocked(ctx context.Context, set receiver.Settings, c component.Config, f receiver.Factory, s pipeline.Signal, cons consumers) (component.Component, error) {
	switch s {
	case pipeline.SignalMetrics:
		return f.CreateMetrics(ctx, set, c, cons.metrics)
	case pipeline.SignalLogs:
		return f.CreateLogs(ctx, set, c, cons.logs)
	case pipeline.SignalTraces:
		return f.CreateTraces(ctx, set, c, cons.traces)
	case xpipeline.SignalProfiles:
		if xf, ok := f.(xreceiver.Factory); ok {
			return xf.CreateProfiles(ctx, set, c, cons.profiles)
		}
	}
	return nil, pipeline.ErrSignalNotSupported
}

var errAborted = errors.New("the group was stopped while it was starting")

// add creates an instance and records it, unless stop was called: from then
// on no instance is added, so stop sees every instance that will ever start.
// The factory runs outside the lock, so a slow one cannot delay a stop; an
// instance created after the stop is shut down unstarted.
func (rg *runningGroup) add(key string, typ component.Type, who string, create func(context.Context) (component.Component, error)) (*instance, error) {
	if rg.isAborted() {
		return nil, errAborted
	}
	ctx, cancel := context.WithCancel(context.Background())
	comp, err := create(ctx)
	if err != nil {
		cancel()
		if rg.isAborted() {
			return nil, errAborted
		}
		return nil, err
	}
	rg.mu.Lock()
	if rg.aborted {
		rg.mu.Unlock()
		cancel()
		// Never started: returns at once. Nothing waits for this goroutine
		// any more, so the type's lock may take as long as it takes.
		if unlock, err := rg.lockIfShared(context.Background(), typ, who, comp); err == nil {
			_ = comp.Shutdown(ctx)
			unlock()
		}
		return nil, errAborted
	}
	defer rg.mu.Unlock()
	in := &instance{key: key, typ: typ, who: who, comp: comp, ctx: ctx, cancel: cancel, started: make(chan struct{})}
	rg.instances = append(rg.instances, in)
	return in, nil
}

// lockIfShared takes the type's lock for the Shutdown of an instance that
// wraps shared state (processLeases.lockType); for any other, nothing.
func (rg *runningGroup) lockIfShared(ctx context.Context, typ component.Type, who string, comp component.Component) (unlock func(), err error) {
	if !wrapsShared(comp) {
		return func() {}, nil
	}
	return rg.process.lockType(ctx, typ, who)
}

func (rg *runningGroup) isAborted() bool {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return rg.aborted
}

// Done is closed when the start has finished; Err says whether it failed.
func (rg *runningGroup) Done() <-chan struct{} { return rg.done }

// Err is why the start failed, or nil; valid once Done is closed.
func (rg *runningGroup) Err() error { return rg.err }

// Stopped is closed when every instance has stopped, also after stop
// returned an *errNotStopped; valid once stop was called.
func (rg *runningGroup) Stopped() <-chan struct{} { return rg.stopped }

// errNotStopped says that a sub-receiver was still running when the stop had
// to be over: its Start or its Shutdown had not returned.
type errNotStopped struct {
	keys []string
	err  error
}

func (e *errNotStopped) Error() string {
	return fmt.Sprintf("sub-receivers %s did not stop in time: %v", strings.Join(e.keys, ", "), e.err)
}

func (e *errNotStopped) Unwrap() error { return e.err }

// stop stops every instance whose Start was called and returns when all have
// stopped or ctx is done, whichever comes first; in the latter case the
// error is an *errNotStopped naming those still running. The instances have
// no order among themselves, so they stop concurrently: the group is down as
// soon as its slowest member is (members of a type that keeps shared state
// stop one after the other, process-wide: see processLeases.lockType). An
// instance whose Start has not returned has its context cancelled at once (a
// Start that waits on it gives up), and is shut down when its Start returns.
// A started instance's context is cancelled after its Shutdown, as a backstop
// for work it left on it.
func (rg *runningGroup) stop(ctx context.Context) error {
	// An instance's data path closes when its Shutdown returns, every one at
	// the latest when stop returns, by ctx's deadline (fence.go).
	defer rg.fences.closeAll()
	rg.mu.Lock()
	rg.aborted = true
	instances := slices.Clone(rg.instances)
	rg.stopping = make([]bool, len(instances))
	rg.waiting = make([]bool, len(instances))
	for i := range rg.stopping {
		rg.stopping[i] = true
	}
	rg.mu.Unlock()
	rg.abort()

	errs := make([]error, len(instances)) // guarded by rg.mu
	stopOne := func(i int) {
		in := instances[i]
		defer in.cancel()
		select {
		case <-in.started:
		default:
			in.cancel() // a Start that waits on it gives up
			<-in.started
		}
		rg.setWaiting(i, true)
		unlock, err := rg.lockIfShared(ctx, in.typ, in.who, in.comp)
		if err != nil {
			// Named in the error of the stop, which ctx has ended; the
			// instance still stops once it has the lock.
			unlock, _ = rg.lockIfShared(context.Background(), in.typ, in.who, in.comp)
		}
		rg.setWaiting(i, false)
		defer unlock()
		err = in.comp.Shutdown(ctx)
		rg.mu.Lock()
		defer rg.mu.Unlock()
		if err != nil {
			errs[i] = errors.Join(errs[i], fmt.Errorf("receivers::%s: shutdown: %w", in.key, err))
		}
		rg.stopping[i] = false
	}
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() { stopOne(i) })
	}
	go func() { wg.Wait(); close(rg.stopped) }()
	joined := func(more ...error) error {
		rg.mu.Lock()
		defer rg.mu.Unlock()
		return errors.Join(append(slices.Clone(errs), more...)...)
	}
	select {
	case <-rg.stopped:
		return joined()
	case <-ctx.Done():
		hung := rg.running()
		if len(hung) == 0 { // all returned at the same moment
			<-rg.stopped
			return joined()
		}
		return &errNotStopped{keys: hung, err: joined(append(rg.lockWaits(), ctx.Err())...)}
	}
}

func (rg *runningGroup) setWaiting(i int, waiting bool) {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	rg.waiting[i] = waiting
}

// lockWaits names, for the instances whose stop waits for their type's lock,
// who holds it.
func (rg *runningGroup) lockWaits() []error {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	var errs []error
	for i, in := range rg.instances {
		if i < len(rg.waiting) && rg.waiting[i] {
			errs = append(errs, fmt.Errorf("receivers::%s: waited for the lock of receiver type %s, held by %s", in.key, in.typ, rg.process.typeHolder(in.typ)))
		}
	}
	return errs
}

// running names the members with an instance whose stop has begun and whose
// Shutdown has not returned.
func (rg *runningGroup) running() []string {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	var keys []string
	for i, in := range rg.instances {
		if i < len(rg.stopping) && rg.stopping[i] && !slices.Contains(keys, in.key) {
			keys = append(keys, in.key)
		}
	}
	return keys
}

// subHost is the host the sub-receivers see: it forwards to the collector's
// own host, so they find extensions, factories and exporters (k8s_cluster
// refuses to start without GetExporters), and their status reports reach it.
type subHost struct {
	component.Host
	report  func(*componentstatus.Event) // to every pipeline instance of this block
	storage *checkpointExtension         // lease_checkpoints, when the block provides it
}

// GetExtensions adds lease_checkpoints to the host's extensions.
func (h *subHost) GetExtensions() map[component.ID]component.Component {
	exts := h.Host.GetExtensions()
	if h.storage == nil {
		return exts
	}
	out := make(map[component.ID]component.Component, len(exts)+1)
	maps.Copy(out, exts)
	out[checkpointsID] = h.storage
	return out
}

// exposeExporters is hostcapabilities.ExposeExporters, deprecated upstream
// but still required by k8s_cluster (v0.145.0 through v0.161.0).
type exposeExporters interface {
	GetExporters() map[pipeline.Signal]map[component.ID]component.Component
}

var (
	_ hostcapabilities.ComponentFactory = (*subHost)(nil)
	_ exposeExporters                   = (*subHost)(nil)
	_ componentstatus.Reporter          = (*subHost)(nil)
)

func (h *subHost) GetExporters() map[pipeline.Signal]map[component.ID]component.Component {
	if e, ok := h.Host.(exposeExporters); ok {
		return e.GetExporters()
	}
	return nil
}

func (h *subHost) GetFactory(kind component.Kind, typ component.Type) component.Factory {
	if f, ok := h.Host.(hostcapabilities.ComponentFactory); ok {
		return f.GetFactory(kind, typ)
	}
	return nil
}

func (h *subHost) Report(ev *componentstatus.Event) {
	h.report(ev)
}
