package leaderreceivercreator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/xconfmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/xconsumer"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/pipeline/xpipeline"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/xreceiver"
	"go.opentelemetry.io/collector/service/hostcapabilities"
	"go.uber.org/zap"

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
}

// resolveGroup looks up every sub-receiver's factory on the host, builds its
// configuration (factory default, then the user's map, then the factory's
// validation) and works out its signals.
func resolveGroup(cfg *Config, host component.Host, parent receiver.Settings, cons consumers) (*group, error) {
	factories, ok := host.(hostcapabilities.ComponentFactory)
	if !ok {
		return nil, errors.New("the collector host does not provide component factories (hostcapabilities.ComponentFactory); leader_receiver_creator cannot build its sub-receivers")
	}
	g := &group{parent: parent, consumers: cons}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(cfg.Receivers)) {
		m, err := resolveMember(cfg, key, factories, &cons)
		if err != nil {
			errs = append(errs, err)
			continue
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
	if err := xconfmap.Validate(c); err != nil {
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

// instance is one created sub-receiver for one signal.
type instance struct {
	key  string
	comp component.Component
}

// runningGroup is one term's instances of the group.
type runningGroup struct {
	instances []instance
	// cancel ends the context the instances were started with. k8s_cluster
	// runs its informers on that context for the whole term, so it must live
	// until the group stops.
	cancel context.CancelFunc
}

// start builds fresh instances of every member (receivers cannot be started
// twice) and starts them all. It is all or nothing: when one fails, those
// already started are shut down before start returns the error.
func (g *group) start(host component.Host) (*runningGroup, error) {
	termCtx, cancel := context.WithCancel(context.Background())
	rg := &runningGroup{cancel: cancel}
	sub := &subHost{Host: host}
	for _, m := range g.members {
		c, err := m.config()
		if err != nil {
			return nil, errors.Join(err, rg.stop(context.Background()))
		}
		set := g.memberSettings(m)
		for _, s := range m.signals {
			comp, err := g.create(termCtx, set, c, m.factory, s)
			if err != nil && !errors.Is(err, pipeline.ErrSignalNotSupported) {
				return nil, errors.Join(fmt.Errorf("receivers::%s: create %s receiver: %w", m.key, s, err), rg.stop(context.Background()))
			}
			if err != nil {
				continue
			}
			if err := comp.Start(termCtx, sub); err != nil {
				// Shut the failed one down too: it may have started part of its work.
				rg.instances = append(rg.instances, instance{m.key, comp})
				return nil, errors.Join(fmt.Errorf("receivers::%s: start: %w", m.key, err), rg.stop(context.Background()))
			}
			rg.instances = append(rg.instances, instance{m.key, comp})
		}
	}
	return rg, nil
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

func (g *group) create(ctx context.Context, set receiver.Settings, c component.Config, f receiver.Factory, s pipeline.Signal) (component.Component, error) {
	switch s {
	case pipeline.SignalMetrics:
		return f.CreateMetrics(ctx, set, c, g.consumers.metrics)
	case pipeline.SignalLogs:
		return f.CreateLogs(ctx, set, c, g.consumers.logs)
	case pipeline.SignalTraces:
		return f.CreateTraces(ctx, set, c, g.consumers.traces)
	case xpipeline.SignalProfiles:
		if xf, ok := f.(xreceiver.Factory); ok {
			return xf.CreateProfiles(ctx, set, c, g.consumers.profiles)
		}
	}
	return nil, pipeline.ErrSignalNotSupported
}

// stop shuts every instance down and returns when all have returned or ctx
// is done, whichever comes first. The instances have no order among
// themselves, so they stop concurrently: the group is down as soon as its
// slowest member is, which keeps the handover short. The term context is
// cancelled only after that, as a backstop for work a receiver leaves on it.
func (rg *runningGroup) stop(ctx context.Context) error {
	defer rg.cancel()
	errs := make([]error, len(rg.instances))
	stopped := make([]atomic.Bool, len(rg.instances))
	var wg sync.WaitGroup
	for i, in := range rg.instances {
		wg.Go(func() {
			if err := in.comp.Shutdown(ctx); err != nil {
				errs[i] = fmt.Errorf("receivers::%s: shutdown: %w", in.key, err)
			}
			stopped[i].Store(true)
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return errors.Join(errs...)
	case <-ctx.Done():
		var hung []string
		for i, in := range rg.instances {
			if !stopped[i].Load() && !slices.Contains(hung, in.key) {
				hung = append(hung, in.key)
			}
		}
		return fmt.Errorf("sub-receivers %s did not stop in time: %w", strings.Join(hung, ", "), ctx.Err())
	}
}

// subHost is the host the sub-receivers see: it forwards to the collector's
// own host, so they find extensions, factories and exporters (k8s_cluster
// refuses to start without GetExporters), and their status reports reach it.
type subHost struct {
	component.Host
}

// exposeExporters is hostcapabilities.ExposeExporters, deprecated upstream
// but still required by k8s_cluster v0.145.0.
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
	componentstatus.ReportStatus(h.Host, ev)
}
