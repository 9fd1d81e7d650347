package bench

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
)

// P3 from outside: the audit log's requests (Lease requests left out) and
// the exports, per replica; summed into the report next to the logs' P3.
func TestOutsideOverlap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	const ua, ub = "system:serviceaccount:otel-peer:replica-1", "system:serviceaccount:otel-peer:replica-2"
	reqs := []audit.Request{
		{User: ua, Verb: "list", Resource: "pods", Received: at(0), Ended: at(1)},
		{User: ua, Verb: "watch", Resource: "pods", Received: at(1.5), Started: at(1.6), Ended: at(10)},
		{User: ub, Verb: "update", Resource: "leases", APIGroup: "coordination.k8s.io", Received: at(5), Ended: at(5.1)},
		{User: ub, Verb: "watch", Resource: "events", Received: at(8), Started: at(8.1)}, // still open: ends at 20
	}
	users := map[string]string{"replica-1": ua, "replica-2": ub}
	exports := map[string][]time.Time{
		"replica-1": {at(5), at(19)}, // [16, 19] lies in replica-2's activity
		"replica-2": {at(12)},        // [9, 12] does not lie in replica-1's
	}
	o, ivs := OutsideOverlap(reqs, users, exports, at(20), 3*time.Second)
	assert.InDelta(t, 2, o.Seconds, 1e-9, "[8, 10]")
	assert.Equal(t, 1, o.Episodes)
	assert.Equal(t, 2, o.MaxConcurrent)
	assert.Equal(t, 1, o.ExportWindows)
	assert.InDelta(t, 2, o.ByReceiver[AuditReceiver], 1e-9)
	assert.ElementsMatch(t, []Interval{
		{Replica: "replica-1", Receiver: AuditReceiver, Start: at(0), End: at(1)},
		{Replica: "replica-1", Receiver: AuditReceiver, Start: at(1.5), End: at(10)},
		{Replica: "replica-2", Receiver: AuditReceiver, Start: at(8), End: at(20)},
	}, ivs)

	none, _ := OutsideOverlap(reqs[:2], users, nil, at(20), 3*time.Second)
	assert.Zero(t, none.Seconds)
	assert.Zero(t, none.ExportWindows)

	r := Report{Configs: []ConfigResult{
		{Impl: "ours", Replicas: 2, AuditOverlap: &none},
		{Impl: "peer", Replicas: 2, AuditOverlap: &o},
		{Impl: "peer", Replicas: 3, AuditOverlap: &o},
	}}
	r.Build()
	require.NotNil(t, r.Overlap.AuditPeer)
	assert.InDelta(t, 4, r.Overlap.AuditPeer.Seconds, 1e-9)
	assert.Equal(t, 2, r.Overlap.AuditPeer.ExportWindows)
	assert.Zero(t, r.Overlap.AuditOurs.Seconds)
	var out bytes.Buffer
	require.NoError(t, r.PrintTable(&out))
	assert.Contains(t, out.String(), "peer, audit log")
	assert.Contains(t, out.String(), "2 batches exported while another replica was active")
}
