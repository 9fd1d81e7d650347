package leaderreceivercreator

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// Fifty blocks in one real collector, under its default logging, whose
// sampler keeps the first 10 lines of a message per 10 s and then every
// 100th: every block logs each of its transitions, when all fifty start at
// once and when a shutdown stops all fifty. Before: 10 of the 50 blocks
// logged "campaigning for the lease", "leadership acquired" and "leader
// group started", while all 50 held their Lease.
func TestTransitionsAreNeverSampledAway(t *testing.T) {
	const blocks = 50
	j := newJournal()
	b := &behaviour{replica: "a", journal: j}
	var cfg strings.Builder
	cfg.WriteString("\nreceivers:\n")
	ids := make([]string, blocks)
	for i := range ids {
		ids[i] = fmt.Sprintf("leader_receiver_creator/%d", i)
		fmt.Fprintf(&cfg, "  %s:\n    auth_type: none\n", ids[i])
		// Real time, in a unit run that make test gives low priority: a
		// stall of up to renew_deadline costs no term.
		fmt.Fprintf(&cfg, "    leader_election: {lease_name: sampled-%d, lease_namespace: ns, lease_duration: 4s, renew_deadline: 3s, retry_period: 500ms}\n", i)
		cfg.WriteString("    receivers: {testrcv: {}}\n")
	}
	fmt.Fprintf(&cfg, "exporters:\n  nop:\nservice:\n  telemetry: {metrics: {level: none}}\n  pipelines:\n    metrics: {receivers: [%s], exporters: [nop]}\n",
		strings.Join(ids, ", "))

	col, ran, logs := realCollectorWith(t, map[component.Type]receiver.Factory{testType: testFactory(testType, b)}, cfg.String())
	started := func() int { // blocks whose group started at least once
		ids := map[string]bool{}
		for _, e := range j.list() {
			if id, ok := strings.CutPrefix(e, "start "); ok {
				ids[id] = true
			}
		}
		return len(ids)
	}
	require.Eventually(t, func() bool { return started() == blocks }, 2*time.Minute, 10*time.Millisecond,
		"not every block's group started")
	col.Shutdown()
	select {
	case err := <-ran:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("the collector did not shut down")
	}

	leases := func(msg string, match func(map[string]any) bool) map[string]bool {
		l := map[string]bool{}
		for _, e := range logs.FilterMessage(msg).All() {
			if fields := e.ContextMap(); match == nil || match(fields) {
				l[fmt.Sprint(fields["lease"])] = true
			}
		}
		return l
	}
	for _, msg := range []string{logmsg.Campaigning, logmsg.Acquired, logmsg.GroupStarted, logmsg.GroupStopped} {
		assert.Len(t, leases(msg, nil), blocks, "blocks that logged %q", msg)
	}
	// Every block that held its Lease at the shutdown released it (a term
	// lost to a stall under load, and not won back, has nothing to release).
	stoppedOnShutdown := leases(logmsg.GroupStopped, func(f map[string]any) bool { return f["reason"] == logmsg.ReasonShutdown })
	assert.Greater(t, len(stoppedOnShutdown), blocks/2, "blocks that stopped on the shutdown")
	assert.Equal(t, stoppedOnShutdown, leases(logmsg.Released, func(f map[string]any) bool { return f["reason"] == logmsg.ReasonShutdown }),
		"blocks that stopped on the shutdown and released their Lease")
}

// unsampled passes every entry its level enables, with the logger's fields,
// past a sampler that would keep one; below the level nothing passes, and
// the logger it was made from is sampled as before.
func TestUnsampledKeepsTheLevelAndTheFields(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	sampled := zap.New(zapcore.NewSamplerWithOptions(core, 10*time.Second, 1, 0)).With(zap.String("component", "x"))
	l := unsampled(sampled).With(zap.String("lease", "ns/a"))
	for range 5 {
		l.Info("transition")
		l.Debug("below the level")
		sampled.Info("chatty")
	}
	require.Equal(t, 5, logs.FilterMessage("transition").Len())
	assert.Equal(t, map[string]any{"component": "x", "lease": "ns/a"}, logs.FilterMessage("transition").All()[0].ContextMap())
	assert.Zero(t, logs.FilterMessage("below the level").Len())
	assert.Equal(t, 1, logs.FilterMessage("chatty").Len(), "the logger unsampled was made from is no longer sampled")
}

// A core made by zap.Hooks writes nothing in Write: it runs the hooks and
// relies on the cores below having added themselves in Check. An entry
// unsampled lets through is checked, not only written: it reaches the core.
func TestUnsampledEntriesPassZapHooks(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	var hooked atomic.Int32
	l := zap.New(zapcore.NewSamplerWithOptions(core, 10*time.Second, 1, 0), zap.Hooks(func(zapcore.Entry) error { hooked.Add(1); return nil }))
	for range 3 {
		unsampled(l).Info("transition")
	}
	assert.Equal(t, 3, logs.FilterMessage("transition").Len())
	assert.Equal(t, int32(3), hooked.Load())
}

// In a tee, each core keeps its own level: a core at Warn gets none of the
// runner's Info lines.
func TestUnsampledKeepsTheLevelOfEachTeeMember(t *testing.T) {
	info, infoLogs := observer.New(zap.InfoLevel)
	warn, warnLogs := observer.New(zap.WarnLevel)
	l := unsampled(zap.New(zapcore.NewSamplerWithOptions(zapcore.NewTee(info, warn), 10*time.Second, 1, 0)))
	for range 3 {
		l.Info("transition")
		l.Warn("warning")
	}
	assert.Equal(t, 3, infoLogs.FilterMessage("transition").Len())
	assert.Zero(t, warnLogs.FilterMessage("transition").Len(), "an Info line reached the core at Warn")
	assert.Equal(t, 3, warnLogs.FilterMessage("warning").Len())
}

// Caller and stack trace are options of the logger: they survive.
func TestUnsampledKeepsCallerAndStack(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	l := unsampled(zap.New(zapcore.NewSamplerWithOptions(core, 10*time.Second, 1, 0), zap.AddCaller(), zap.AddStacktrace(zap.ErrorLevel)))
	l.Error("e")
	l.Error("e") // past the sampler
	require.Equal(t, 2, logs.Len())
	for _, e := range logs.All() {
		assert.Equal(t, "e", e.Message)
		assert.True(t, e.Caller.Defined)
		assert.Contains(t, e.Caller.File, "logging_test.go")
		assert.NotEmpty(t, e.Stack)
	}
}

// The same in a real collector whose distribution passes zap.Hooks in
// CollectorSettings.LoggingOptions (the collector applies them to its own
// core, under its tee to the logger provider): the block's lines reach the
// console core, beside the collector's own.
func TestTransitionsReachACollectorWithHooks(t *testing.T) {
	j := newJournal()
	b := &behaviour{replica: "a", journal: j}
	var hooked atomic.Int32
	col, ran, logs := realCollectorWith(t, map[component.Type]receiver.Factory{testType: testFactory(testType, b)}, `
receivers:
  leader_receiver_creator:
    auth_type: none
    leader_election: {lease_name: hooked, lease_namespace: ns, lease_duration: 4s, renew_deadline: 3s, retry_period: 500ms}
    receivers: {testrcv: {}}
exporters:
  nop:
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    metrics: {receivers: [leader_receiver_creator], exporters: [nop]}
`, zap.Hooks(func(zapcore.Entry) error { hooked.Add(1); return nil }))
	require.Eventually(t, func() bool { return j.runningCount("a") == 1 }, time.Minute, 10*time.Millisecond)
	col.Shutdown()
	require.NoError(t, <-ran)
	assert.NotZero(t, logs.FilterMessage("Everything is ready. Begin running and processing data.").Len(), "the collector's own line")
	for _, msg := range []string{logmsg.Campaigning, logmsg.Acquired, logmsg.GroupStarted, logmsg.GroupStopped} {
		assert.NotZero(t, logs.FilterMessage(msg).Len(), "lines %q", msg)
	}
	assert.Equal(t, int32(logs.Len()), hooked.Load(), "entries and hook calls")
}
