package leaderreceivercreator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/xconsumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/xreceiver"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/metadata"
)

// NewFactory creates the factory of the leader_receiver_creator receiver.
func NewFactory() receiver.Factory {
	return xreceiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		xreceiver.WithMetrics(createMetrics, metadata.MetricsStability),
		xreceiver.WithLogs(createLogs, metadata.LogsStability),
		xreceiver.WithTraces(createTraces, metadata.TracesStability),
		xreceiver.WithProfiles(createProfiles, metadata.ProfilesStability),
	)
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	return runners.get(cfg.(*Config), set, func(c *consumers) { c.metrics = next })
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return runners.get(cfg.(*Config), set, func(c *consumers) { c.logs = next })
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	return runners.get(cfg.(*Config), set, func(c *consumers) { c.traces = next })
}

func createProfiles(_ context.Context, set receiver.Settings, cfg component.Config, next xconsumer.Profiles) (xreceiver.Profiles, error) {
	return runners.get(cfg.(*Config), set, func(c *consumers) { c.profiles = next })
}

// runners holds one runner per configuration: a block in a metrics and a
// logs pipeline is one component with one Lease, not two. (The collector's
// sharedcomponent package is internal, hence this small map.)
var runners = &runnerMap{m: map[*Config]*runner{}}

type runnerMap struct {
	mu sync.Mutex
	m  map[*Config]*runner
}

func (rm *runnerMap) get(cfg *Config, set receiver.Settings, addConsumer func(*consumers)) (*runner, error) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	r, ok := rm.m[cfg]
	if !ok {
		var err error
		if r, err = newRunner(cfg, set, defaultIdentity(cfg.LeaderElection.Identity), thisProcess); err != nil {
			return nil, err
		}
		r.onShutdown = func() { rm.remove(cfg) }
		rm.m[cfg] = r
	}
	addConsumer(&r.consumers)
	return r, nil
}

func (rm *runnerMap) remove(cfg *Config) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	delete(rm.m, cfg)
}

// defaultIdentity returns identity, or when empty the pod's name (else the
// host name) with a random suffix: two replicas, or two blocks in one
// replica, never share an identity.
func defaultIdentity(identity string) string {
	if identity != "" {
		return identity
	}
	base := os.Getenv("POD_NAME")
	if base == "" {
		base, _ = os.Hostname()
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return base + "_" + hex.EncodeToString(suffix)
}
