package leaderreceivercreator

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/receiver"
)

// fullHost is a collector host with every capability a sub-receiver may use.
type fullHost struct {
	testHost
	exporters map[pipeline.Signal]map[component.ID]component.Component
}

func (h *fullHost) GetExporters() map[pipeline.Signal]map[component.ID]component.Component {
	return h.exporters
}

// Sub-receivers see the collector's host capabilities through the group's
// host: k8s_cluster, for one, fails to start without GetExporters.
func TestSubHostForwardsHostCapabilities(t *testing.T) {
	exporterID := component.MustNewID("otlp")
	parent := &fullHost{
		testHost:  testHost{factories: map[component.Type]receiver.Factory{testType: testFactory(testType, &behaviour{})}},
		exporters: map[pipeline.Signal]map[component.ID]component.Component{pipeline.SignalMetrics: {exporterID: nil}},
	}
	var reported []*componentstatus.Event
	h := &subHost{Host: parent, report: func(ev *componentstatus.Event) { reported = append(reported, ev) }}
	assert.Contains(t, h.GetExporters()[pipeline.SignalMetrics], exporterID)
	assert.NotNil(t, h.GetFactory(component.KindReceiver, testType))
	h.Report(componentstatus.NewEvent(componentstatus.StatusOK))
	assert.Len(t, reported, 1, "a sub-receiver's status goes to the block's status fan-out")

	bare := &subHost{Host: &testHost{}}
	assert.Nil(t, bare.GetExporters(), "a host without exporters gives none, it does not panic")
}
