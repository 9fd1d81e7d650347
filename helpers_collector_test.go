package leaderreceivercreator

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/metadata"
)

// What a real collector does with the block: a model of how it handles a
// FatalError, and a real collector run in the test.

// collectorModel is how the collector this module pins (otelcol v0.152.0)
// handles a FatalError, reduced to what matters here: the host's Report sends
// the error on an unbuffered channel (service/internal/graph/host.go:85,
// otelcol/collector.go:147), which only the select of Run's control loop
// reads. That loop leaves its select for good at the first async error or
// shutdown request and then shuts the service down; during a shutdown or a
// reload nobody reads the channel (upstream issue
// open-telemetry/opentelemetry-collector#9824, still open).
type collectorModel struct {
	asyncErr chan error
	stop     chan struct{} // test cleanup: drain whatever is still sent
}

func newCollectorModel(t *testing.T) *collectorModel {
	m := &collectorModel{asyncErr: make(chan error), stop: make(chan struct{})}
	// Registered before the replicas, so it runs after their cleanups.
	t.Cleanup(func() { close(m.stop) })
	return m
}

// drainInCleanup lets blocked senders go once the test body is over (so that
// the replicas' cleanups can shut down); call it after newReplica.
func (m *collectorModel) drainInCleanup(t *testing.T) {
	t.Cleanup(func() {
		go func() {
			for {
				select {
				case err := <-m.asyncErr:
					_ = err // nobody reads it once the collector shuts down
				case <-m.stop:
					return
				}
			}
		}()
	})
}

// collectorHost is one pipeline instance's host in the collector model.
type collectorHost struct {
	*testHost
	m *collectorModel
}

func (h *collectorHost) Report(ev *componentstatus.Event) {
	h.testHost.Report(ev)
	if ev.Status() == componentstatus.StatusFatalError {
		h.m.asyncErr <- ev.Err() // graph.Host.NotifyComponentStatusChange
	}
}

// realCollector runs a real collector (otelcol at go.mod's line) whose one block of
// leader_receiver_creator, with the given sub-receiver types and members
// (receivers, as YAML flow), sits in a metrics and a logs pipeline and
// talks to a fake API server (auth_type none: lifecycle_test's fallback).
// Each gets a process of its own (thisProcess), and a Lease named after the
// test.
// It returns the collector, what Run returned once it did, and its logs.
func realCollector(t *testing.T, subs map[component.Type]receiver.Factory, members string) (*otelcol.Collector, <-chan error, *observer.ObservedLogs) {
	t.Helper()
	return realCollectorWith(t, subs, `
receivers:
  leader_receiver_creator:
    auth_type: none
    leader_election: {lease_name: `+strings.ToLower(t.Name())+`, lease_namespace: ns, lease_duration: 2s, renew_deadline: 1s, retry_period: 300ms}
    receivers: `+members+`
exporters:
  nop:
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    metrics: {receivers: [leader_receiver_creator], exporters: [nop]}
    logs: {receivers: [leader_receiver_creator], exporters: [nop]}
`)
}

// realCollectorWith runs a real collector with the given configuration
// (YAML) and the collector's own logging: its logs reach the returned
// observer through the collector's default sampling; logging are more
// LoggingOptions of the collector. Each gets a process of
// its own (thisProcess).
func realCollectorWith(t *testing.T, subs map[component.Type]receiver.Factory, config string, logging ...zap.Option) (*otelcol.Collector, <-chan error, *observer.ObservedLogs) {
	t.Helper()
	thisProcess = newProcessLeases() // a process of its own: its slots, one FatalError and one exit
	core, logs := observer.New(zap.InfoLevel)
	factories := func() (otelcol.Factories, error) {
		receivers := map[component.Type]receiver.Factory{metadata.Type: NewFactory()}
		maps.Copy(receivers, subs)
		return otelcol.Factories{
			Receivers: receivers,
			Exporters: map[component.Type]exporter.Factory{exportertest.NopType: exportertest.NewNopFactory()},
			Telemetry: otelconftelemetry.NewFactory(),
		}, nil
	}
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo:      component.NewDefaultBuildInfo(),
		Factories:      factories,
		LoggingOptions: append([]zap.Option{zap.WrapCore(func(zapcore.Core) zapcore.Core { return core })}, logging...),
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:              []string{"yaml:" + config},
			ProviderFactories: []confmap.ProviderFactory{yamlprovider.NewFactory()},
		}},
	})
	require.NoError(t, err)
	ran := make(chan error, 1)
	go func() { ran <- col.Run(context.Background()) }()
	return col, ran, logs
}
