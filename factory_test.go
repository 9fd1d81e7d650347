package leaderreceivercreator

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/pipeline/xpipeline"
	"go.opentelemetry.io/collector/receiver/xreceiver"
)

func TestDefaultIdentityIsUniquePerBlock(t *testing.T) {
	t.Setenv("POD_NAME", "collector-7d9f")
	a, b := defaultIdentity(""), defaultIdentity("")
	assert.NotEqual(t, a, b)
	assert.Regexp(t, `^collector-7d9f_[0-9a-f]{8}$`, a)
	assert.Equal(t, "pinned", defaultIdentity("pinned"))
}

func TestOneRunnerPerConfigAcrossSignals(t *testing.T) {
	f := NewFactory()
	cfg := testConfigFor("testrcv")
	set := receivertestSettings()
	m, err := f.CreateMetrics(t.Context(), set, cfg, nopSink())
	require.NoError(t, err)
	l, err := f.CreateLogs(t.Context(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.Same(t, m, l, "one Lease per block, whatever the number of pipelines")
	tr, err := f.CreateTraces(t.Context(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.Same(t, m, tr)
	p, err := f.(xreceiver.Factory).CreateProfiles(t.Context(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.Same(t, m, p)
	r := m.(*runner)
	assert.True(t, r.consumers.has(pipeline.SignalMetrics) && r.consumers.has(pipeline.SignalLogs) &&
		r.consumers.has(pipeline.SignalTraces) && r.consumers.has(xpipeline.SignalProfiles), "every signal's consumer")
	other, err := f.CreateMetrics(t.Context(), set, testConfigFor("testrcv"), nopSink())
	require.NoError(t, err)
	assert.NotSame(t, m, other)
	assert.NotEqual(t, m.(*runner).identity, other.(*runner).identity)
	require.NoError(t, m.Shutdown(t.Context()))
	require.NoError(t, other.Shutdown(t.Context()))
	again, err := f.CreateMetrics(t.Context(), set, cfg, nopSink())
	require.NoError(t, err)
	assert.NotSame(t, m, again, "a shut down runner is forgotten")
	require.NoError(t, again.Shutdown(t.Context()))
}
