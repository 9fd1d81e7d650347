package bench

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/harness"
)

// P3 from outside: the audit log's requests (Lease requests left out) and
// the exports, per replica, by the categories of audit.Overlaps; summed
// into the report next to the logs' P3.
func TestOutsideOverlap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	const ua, ub, uc = "system:serviceaccount:otel-peer:replica-1", "system:serviceaccount:otel-peer:replica-2", "system:serviceaccount:otel-peer:replica-3"
	reqs := []audit.Request{
		{User: ua, Verb: "list", Resource: "pods", Received: at(0), Ended: at(1)},
		{User: ua, Verb: "watch", Resource: "pods", Received: at(1.5), Started: at(1.6), Ended: at(10)}, // open 2s after replica-2 began: counts
		{User: ub, Verb: "update", Resource: "leases", APIGroup: "coordination.k8s.io", Received: at(5), Ended: at(5.1)},
		{User: ub, Verb: "watch", Resource: "events", Received: at(8), Started: at(8.1)}, // still open: ends at 20, 50ms after replica-3 began
		{User: uc, Verb: "list", Resource: "pods", Received: at(19.95), Ended: at(19.96)},
	}
	actors := []audit.Actor{
		{Name: "replica-1", User: ua, Exports: []time.Time{at(5), at(19)}}, // [16, 19] lies in replica-2's activity
		{Name: "replica-2", User: ub, Exports: []time.Time{at(12)}},        // [9, 12] does not lie in replica-1's
		{Name: "replica-3", User: uc},
	}
	o, ivs := OutsideOverlap(harness.NewOutside(reqs, actors, nil, at(20))) // export windows of fleet.ExportSlack: 3s
	assert.InDelta(t, 2, o.Seconds, 1e-9, "[8, 10]; replica-2's closing tail within the bound is not overlap")
	assert.Equal(t, 1, o.Episodes)
	assert.Equal(t, 2, o.MaxConcurrent)
	assert.Equal(t, map[audit.OverlapKind]int{audit.Tail: 1, audit.Export: 1}, o.ByKind)
	assert.Equal(t, 1, o.TailsWithinBound)
	assert.InDelta(t, 2, o.ByReceiver[AuditReceiver], 1e-9)
	assert.ElementsMatch(t, []ReceiverSpan{
		{Replica: "replica-1", Receiver: AuditReceiver, Start: at(0), End: at(1)},
		{Replica: "replica-1", Receiver: AuditReceiver, Start: at(1.5), End: at(10)},
		{Replica: "replica-2", Receiver: AuditReceiver, Start: at(8), End: at(19.95)}, // cut where replica-3 began
		{Replica: "replica-3", Receiver: AuditReceiver, Start: at(19.95), End: at(19.96)},
	}, ivs)

	for i := range actors {
		actors[i].Exports = nil
	}
	none, _ := OutsideOverlap(harness.NewOutside(reqs[:2], actors, nil, at(20)))
	assert.Zero(t, none.Seconds)
	assert.Empty(t, none.ByKind)

	r := Report{Configs: []ConfigResult{
		{Impl: "ours", Replicas: 2, AuditOverlap: &none},
		{Impl: "peer", Replicas: 2, AuditOverlap: &o},
		{Impl: "peer", Replicas: 3, AuditOverlap: &o},
	}}
	r.Build()
	require.NotNil(t, r.Overlap.AuditPeer)
	assert.InDelta(t, 4, r.Overlap.AuditPeer.Seconds, 1e-9)
	assert.Equal(t, map[audit.OverlapKind]int{audit.Tail: 2, audit.Export: 2}, r.Overlap.AuditPeer.ByKind)
	assert.Equal(t, 2, r.Overlap.AuditPeer.TailsWithinBound)
	assert.Zero(t, r.Overlap.AuditOurs.Seconds)
	var out bytes.Buffer
	require.NoError(t, r.PrintTable(&out))
	assert.Contains(t, out.String(), "peer, audit log")
	assert.Contains(t, out.String(), "0 requests begun during another replica's activity, 2 closing tails longer than 250ms, 2 batches exported during another replica's activity; 2 closing tails within 250ms")
}
