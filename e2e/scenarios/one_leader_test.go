package scenarios

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// TestOneLeaderReportsTheClusterOnce: of three replicas exactly one runs the
// group; k8s_cluster metrics and k8s_events logs come only from it, and
// every Event created while it leads is exported exactly once in all.
func TestOneLeaderReportsTheClusterOnce(t *testing.T) {
	s := start(t, options{})
	leader := s.leader(time.Minute)
	span := timeline.GroupSpans(s.f.Events())[0]

	var (
		mu      sync.Mutex
		created = map[string]time.Time{} // uid -> when the harness created it
	)
	ctx, stopEvents := context.WithCancel(t.Context())
	emitted := make(chan struct{})
	go func() {
		defer close(emitted)
		cluster.EmitEvents(ctx, s.cs, s.ns, 200*time.Millisecond, func(ev *corev1.Event) {
			mu.Lock()
			created[string(ev.UID)] = time.Now()
			mu.Unlock()
		}, func(err error) { t.Logf("creating an Event: %v", err) })
	}()
	// exported counts our Events in the output of every replica.
	exported := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		n := map[string]int{}
		for _, r := range s.f.Replicas() {
			for _, b := range r.Batches() {
				for _, uid := range b.EventUIDs {
					if _, ours := created[uid]; ours {
						n[uid]++
					}
				}
			}
		}
		return n
	}
	require.Eventually(t, func() bool {
		return len(exported()) >= 20 && leader.Counts().MetricBatches >= 2
	}, time.Minute, 250*time.Millisecond, "the leader exports Events and cluster metrics")
	stopEvents()
	<-emitted

	// k8s_events skips Events older than its start, and an Event's time has
	// whole seconds: those created a second after the group started must all
	// be exported.
	mu.Lock()
	var want []string
	for uid, at := range created {
		if at.After(span.Start.Add(time.Second)) {
			want = append(want, uid)
		}
	}
	mu.Unlock()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got := exported()
		for _, uid := range want {
			assert.Contains(c, got, uid)
		}
	}, 20*time.Second, 250*time.Millisecond, "every Event created while the leader ran is exported")
	for uid, n := range exported() {
		assert.Equal(t, 1, n, "Event %s exported %d times", uid, n)
	}
	t.Logf("%d Events created, %d exported exactly once", len(created), len(exported()))

	assert.Len(t, timeline.GroupSpans(s.f.Events()), 1, "one group ran, the whole time")
	var names []string
	for _, b := range leader.Batches() {
		names = append(names, b.MetricNames...)
	}
	assert.Contains(t, names, "k8s.pod.phase", "k8s_cluster metrics come from the leader")
	assert.Contains(t, strings.Join(names, " "), "k8s.deployment.")
	for _, r := range s.f.Replicas() {
		if r != leader {
			assert.Zero(t, r.Counts(), "%s is a standby and exports nothing", r.Name)
		}
	}
}
