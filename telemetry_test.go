package leaderreceivercreator

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/metadatatest"
)

func mustTelemetry(t *testing.T, set receiver.Settings) *telemetry {
	tel, err := newTelemetry(set.TelemetrySettings)
	require.NoError(t, err)
	return tel
}

// Every metric carries the Lease; after close (Shutdown has returned)
// nothing more is recorded.
func TestTelemetryRecordsUntilClosed(t *testing.T) {
	tt := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tt.Shutdown(context.Background())) }()
	tel := mustTelemetry(t, metadatatest.NewSettings(tt))
	defer tel.shutdown()
	tel.setLease("ns/lease")
	record := func() {
		tel.acquired()
		tel.leader(true)
		tel.groupStarted(1500 * time.Millisecond)
		tel.lost()
		tel.startFailed()
		tel.memberFailed("k8s_events")
		tel.droppedAfterStop("k8s_events", pipeline.SignalLogs, 3)
	}
	record()
	tel.close()
	record() // after Shutdown returned: nothing

	lease := attribute.NewSet(attribute.String("lease", "ns/lease"))
	member := attribute.NewSet(attribute.String("lease", "ns/lease"), attribute.String("member", "k8s_events"))
	one := []metricdata.DataPoint[int64]{{Value: 1, Attributes: lease}}
	ignore := metricdatatest.IgnoreTimestamp()
	metadatatest.AssertEqualLeaderElectionAcquired(t, tt, one, ignore)
	metadatatest.AssertEqualLeaderElectionIsLeader(t, tt, one, ignore)
	metadatatest.AssertEqualLeaderElectionLost(t, tt, one, ignore)
	metadatatest.AssertEqualLeaderGroupStartFailures(t, tt, one, ignore)
	metadatatest.AssertEqualLeaderGroupMemberFailures(t, tt, []metricdata.DataPoint[int64]{{Value: 1, Attributes: member}}, ignore)
	metadatatest.AssertEqualLeaderGroupDroppedAfterStop(t, tt, []metricdata.DataPoint[int64]{{
		Value: 3,
		Attributes: attribute.NewSet(attribute.String("lease", "ns/lease"),
			attribute.String("member", "k8s_events"), attribute.String("signal", "logs")),
	}}, ignore)
	duration, err := tt.GetMetric("otelcol_leader_group_start_duration")
	require.NoError(t, err)
	points := duration.Data.(metricdata.Histogram[float64]).DataPoints
	require.Len(t, points, 1)
	assert.Equal(t, uint64(1), points[0].Count)
	assert.InDelta(t, 1.5, points[0].Sum, 1e-9)
	assert.Equal(t, lease, points[0].Attributes)

	tel.leader(false) // closed: the gauge stays at 1
	metadatatest.AssertEqualLeaderElectionIsLeader(t, tt, one, ignore)
}
