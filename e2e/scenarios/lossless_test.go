package scenarios

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/lossless"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// TestCheckpointsFollowTheLease: issue 17's goals for k8s_objects (watch
// mode) with the block's checkpoint storage, counted at the sink while
// Events are created at 10/s: across SIGTERM handovers no Event is lost
// and none exported twice; across SIGKILL failovers none is lost (the next
// leader resumes the watch from the checkpoint in the Lease, across the
// gap of lease_duration), and the Events exported twice are at most those
// the dead leader exported after the checkpoint the Lease last carried.
// That is not the "one retry_period": k8s_objects v0.152 hands its
// watch's checkpoint to the storage only every 5 s (checkpointInterval),
// and the Lease carries it at the next renewal, so the bound is the Events
// created in the checkpointInterval + retry_period before the kill (make
// lossless measures how many: docs/performance.md). The configuration is
// make lossless's (lossless/configs/storage.yaml: k8s_objects and
// k8s_events, a synchronous pipeline to an OTLP receiver in the test);
// k8s_events' figures are only logged. Fewer handovers than make lossless:
// 3 SIGTERM, 2 SIGKILL, each SIGKILL settleKill after the fleet was ready
// again, so that what it sends again was created in its own window.
func TestCheckpointsFollowTheLease(t *testing.T) {
	const (
		rate     = 10.0
		sigterms = 3
		sigkills = 2
		// k8s_objects v0.152's watch hands its checkpoint to the storage
		// every 5 s (internal/k8sinventory/watch defaultCheckpointInterval,
		// not configurable) and at its stop.
		checkpointInterval = 5 * time.Second
		// What a SIGKILL's successor sends again reaches back at most
		// replay before the kill; the windows are cut halfway between
		// signals.
		replay     = checkpointInterval + retryPeriod
		settleKill = 2 * replay
	)
	dir := t.TempDir()
	args, err := lossless.Storage.Write(dir)
	require.NoError(t, err)
	storageYAML, err := os.ReadFile(args[3])
	require.NoError(t, err)

	cp := controlPlane(t)
	eventsNS := fmt.Sprintf("lossless-%d", losslessRuns.Add(1))
	_, err = cp.Clientset().CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: eventsNS}}, metav1.CreateOptions{})
	require.NoError(t, err)
	sink, err := lossless.NewSink(lossless.EventPrefix)
	require.NoError(t, err)
	t.Cleanup(sink.Close)
	env := lossless.Env(lossless.Timings{LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod}, cluster.LeaseName, eventsNS)
	env["SINK_ENDPOINT"] = sink.Addr()

	// common.yaml, then the scenarios' timings, then storage.yaml (whose
	// timings come from the environment: the same).
	s := start(t, options{config: args[1], overlay: string(storageYAML),
		replicaEnv: func(int) map[string]string { return env }})
	s.leader(time.Minute)

	gen, err := lossless.NewGenerator(cp.RESTConfig(), eventsNS, lossless.EventPrefix, rate)
	require.NoError(t, err)
	gen.Start(t.Context())
	t.Cleanup(gen.Stop)
	var from time.Time
	require.Eventually(t, func() bool {
		var ok bool
		from, ok = sink.Watching(lossless.K8sObjects)
		return ok
	}, 30*time.Second, 100*time.Millisecond, "k8s_objects exports the generator's Events")

	var handovers []lossless.Handover
	for i := 1; i <= sigterms+sigkills; i++ {
		sig := syscall.SIGTERM
		if i > sigterms {
			sig = syscall.SIGKILL
		}
		old := s.leader(30 * time.Second)
		settle := 1500 * time.Millisecond
		if sig == syscall.SIGKILL {
			settle = settleKill
		}
		s.hold(time.Now().Add(settle + rand.N(time.Second))) // at a random point of the renew cycle
		require.Equal(t, []string{old.Name}, leaderNames(s), "the leader before handover %d", i)
		h := lossless.Handover{Index: i, Signal: map[bool]string{true: "SIGKILL", false: "SIGTERM"}[sig == syscall.SIGKILL], Leader: old.Name, At: time.Now()}
		if sig == syscall.SIGKILL {
			require.NoError(t, old.Kill())
		} else {
			require.NoError(t, old.Stop(20*time.Second))
		}
		up := s.waitFor(30*time.Second, "the next group starts", func(ev timeline.Event) bool {
			return ev.Kind == timeline.GroupStarted && ev.Replica != old.Name && !ev.At.Before(h.At)
		})
		h.Next, h.Up = up.Replica, up.At
		handovers = append(handovers, h)
		t.Logf("handover %d: %s of %s, %s's group up after %s", i, h.Signal, h.Leader, h.Next, h.Gap().Round(time.Millisecond))
		require.NoError(t, old.Start())
		s.waitFor(30*time.Second, "the restarted replica campaigns", func(ev timeline.Event) bool {
			return ev.Replica == old.Name && ev.Kind == timeline.Campaigning && ev.At.After(h.Up)
		})
	}
	s.hold(time.Now().Add(3 * time.Second)) // the last handover's Events
	gen.Stop()
	_, to := gen.Span()
	require.Eventually(t, func() bool { return time.Since(sink.Last()) > 2*time.Second }, 30*time.Second, 100*time.Millisecond, "the sink drains")
	require.Empty(t, gen.Errors(), "every Create succeeded")

	created := gen.Created()
	for _, rc := range []string{lossless.K8sObjects, lossless.K8sEvents} {
		windows, unknown := lossless.Tally(created, sink.Exports(rc), handovers, from, to, retryPeriod)
		for _, w := range windows {
			t.Logf("%s, handover %d (%s): %d created, %d lost %v, %d duplicated %v (created in the retry_period before the signal: %d)",
				rc, w.Handover.Index, w.Handover.Signal, w.Created, w.Lost, w.LostNames, w.Duplicated, w.DuplicatedNames, w.InRetryPeriod)
		}
		if rc != lossless.K8sObjects {
			continue
		}
		assert.Zero(t, unknown, "exports of Events the generator did not create")
		total := 0
		for _, w := range windows {
			total += w.Created
			assert.Zero(t, w.Lost, "%s handover %d: Events lost", w.Handover.Signal, w.Handover.Index)
			if w.Handover.Signal == "SIGTERM" {
				assert.Zero(t, w.Duplicated, "SIGTERM handover %d: Events exported twice", w.Handover.Index)
			} else {
				bound := lossless.CreatedIn(created, w.Handover.At.Add(-replay), w.Handover.At)
				t.Logf("SIGKILL failover %d: %d Events exported twice; %d created in the retry_period before the kill, %d in the %s before it",
					w.Handover.Index, w.Duplicated, w.InRetryPeriod, bound, replay)
				assert.LessOrEqual(t, w.Duplicated, bound,
					"SIGKILL failover %d: Events exported twice, at most those created in the %s (checkpoint interval + retry_period) before the kill", w.Handover.Index, replay)
			}
		}
		assert.Greater(t, total, int(rate*10), "Events counted")
	}
}

var losslessRuns atomic.Int64

// leaderNames are the replicas whose group runs now.
func leaderNames(s *scenario) []string {
	var names []string
	for _, r := range s.f.Leaders() {
		names = append(names, r.Name)
	}
	return names
}
