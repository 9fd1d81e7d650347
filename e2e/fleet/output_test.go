package fleet

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseBatch(t *testing.T) {
	b, ok := parseBatch([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"k8s.pod.phase","gauge":{"dataPoints":[{},{}]}},{"name":"k8s.deployment.desired","sum":{"dataPoints":[{}]}}]}]}]}`), time.Now())
	require.True(t, ok)
	assert.Equal(t, "metrics", b.Signal)
	assert.Equal(t, 2, b.Metrics)
	assert.Equal(t, 3, b.DataPoints)
	assert.Equal(t, []string{"k8s.pod.phase", "k8s.deployment.desired"}, b.MetricNames)

	b, ok = parseBatch([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"k8s.event.uid","value":{"stringValue":"u1"}}]},{}]}]}]}`), time.Now())
	require.True(t, ok)
	assert.Equal(t, "logs", b.Signal)
	assert.Equal(t, 2, b.LogRecords)
	assert.Equal(t, []string{"u1"}, b.EventUIDs)
}
