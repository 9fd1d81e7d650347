package leaderreceivercreator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/ptr"

	"github.com/leaderreceivercreator/leaderreceivercreator/internal/logmsg"
)

// The randomized simulation: three replicas on one fake API server, for
// simSpan of fake time per seed, under random faults: a replica cut off
// from the API server and back, answers to its writes that come late, a
// member's FatalError, a member whose Shutdown is slow, hand edits of the
// Lease (labels, another holder), and its deletion. After every step it
// checks the promise from the groups' side: never two groups at once
// (journal.maxOverlap counts running instances across replicas, from their
// Start to the return of their Shutdown). At every write to the Lease it
// checks that no replica keeps the Lease renewed while it runs no group for
// longer than a start may take (renewalCheck), and that the members'
// checkpoints (lease_checkpoints) never move back and never past data that
// did not reach a pipeline (checkpointCheck).
//
// make test runs seeds 1 to simDefaultSeeds; `make stress SEEDS=N` runs N
// new ones.
// A failing seed says how to replay it: SIM_SEED=<seed>; with SIM_DEBUG=1
// the replay also prints every replica's log lines, in fake time.

const (
	simSpan         = 30 * time.Minute
	simDefaultSeeds = 3
)

// TestSimulationNeverRunsTwoGroups runs the simulation once per seed. Its
// members' slow Shutdowns beside their failures, which give the Lease back,
// would show a release before the group stopped as two groups at once.
// Invariants S1, S8, S9, S16.
func TestSimulationNeverRunsTwoGroups(t *testing.T) {
	for _, seed := range simSeeds(t) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) { simulate(t, seed) })
	}
}

// simSeeds are SIM_SEED alone; else SIM_SEEDS seeds from a random start, so
// that every stress run tries new ones; else seeds 1 to simDefaultSeeds, the
// same in every make test.
func simSeeds(t *testing.T) []uint64 {
	t.Helper()
	if s := os.Getenv("SIM_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SIM_SEED: %v", err)
		}
		return []uint64{seed}
	}
	n, first := simDefaultSeeds, uint64(1)
	if s := os.Getenv("SIM_SEEDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("SIM_SEEDS: %v", err)
		}
		first = rand.Uint64() % 1_000_000
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = first + uint64(i)
	}
	return seeds
}

func simulate(t *testing.T, seed uint64) {
	synctest.Test(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(seed, 0))
		j := newJournal()
		c := newCluster(j)
		cfg := simConfig()
		renewals := newRenewalCheck(j, cfg)
		checkpoints := newCheckpointCheck(c, cfg)
		c.onLeaseWrite = func(verb, prevHolder, holder string) {
			renewals.write(verb, prevHolder, holder)
			checkpoints.write(verb)
		}
		var reps []*replica
		for _, name := range []string{"a", "b", "c"} {
			rp := newReplica(t, c, name, simConfig())
			// Its member's Shutdown is slow, within the stop budget (read
			// by the member's goroutines: set before it starts).
			rp.b.shutdownDelay = time.Duration(rng.IntN(2500)) * time.Millisecond
			rp.b.metricsLead = rp.b.shutdownDelay / 2 // its feed's last position comes while the group stops
			rp.b.feed = checkpoints.feed
			rp.r.consumers.metrics = checkpoints.pipeline()
			rp.start(t)
			reps = append(reps, rp)
		}
		fail := func(format string, args ...any) {
			t.Helper()
			if os.Getenv("SIM_DEBUG") != "" {
				for _, rp := range reps {
					for _, e := range rp.logs.All() {
						t.Logf("%s %s %s %v", e.Time.Format(time.TimeOnly+".000"), rp.name, e.Message, e.ContextMap())
					}
				}
			}
			t.Fatalf("seed %d (replay: SIM_SEED=%d go test -run 'TestSimulationNeverRunsTwoGroups' .): %s\njournal: %v",
				seed, seed, fmt.Sprintf(format, args...), j.list())
		}
		var faults []string
		for end := time.Now().Add(simSpan); time.Now().Before(end); {
			time.Sleep(time.Duration(100+rng.IntN(3000)) * time.Millisecond) // fake time
			rp := reps[rng.IntN(len(reps))]
			switch rng.IntN(9) {
			case 0, 1:
				rp.fail.Store(!rp.fail.Load())
				faults = append(faults, fmt.Sprintf("%s cut=%v", rp.name, rp.fail.Load()))
			case 2:
				late := time.Duration(rng.IntN(12000)) * time.Millisecond
				rp.slow.Store(int64(late))
				faults = append(faults, fmt.Sprintf("%s late=%s", rp.name, late))
			case 3:
				if h := rp.b.lastHost(); h != nil && rp.leading() {
					go componentstatus.ReportStatus(h, componentstatus.NewFatalErrorEvent(errors.New("simulated")))
					faults = append(faults, rp.name+" member fatal")
				}
			case 4:
				if _, err := c.tracker.Get(leasesGVR, "ns", "lease"); err == nil {
					c.edit(t, func(l *coordinationv1.Lease) { l.Labels = map[string]string{"edited": strconv.Itoa(rng.IntN(100))} })
					faults = append(faults, "labels edited")
				}
			case 5:
				if _, err := c.tracker.Get(leasesGVR, "ns", "lease"); err == nil && rng.IntN(3) == 0 {
					c.edit(t, func(l *coordinationv1.Lease) { l.Spec.HolderIdentity = ptr.To("intruder") })
					faults = append(faults, "holder set to intruder")
				}
			case 6:
				if rng.IntN(4) == 0 {
					if err := c.tracker.Delete(leasesGVR, "ns", "lease"); err == nil {
						faults = append(faults, "lease deleted")
					}
				}
			}
			if j.maxOverlap() > 1 {
				fail("two groups ran at once after faults %v", faults)
			}
			if bad := renewals.violations(); len(bad) > 0 {
				fail("renewals without a group %v after faults %v", bad, faults)
			}
			if bad := checkpoints.violations(); len(bad) > 0 {
				fail("checkpoints %v after faults %v", bad, faults)
			}
		}
		// Healed: one replica leads again (after the back-off a member's
		// failure costs, or lease_duration for an intruder's record or a
		// re-created Lease), unless every replica took itself out.
		for _, rp := range reps {
			rp.fail.Store(false)
			rp.slow.Store(0)
		}
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if j.maxOverlap() > 1 {
			fail("two groups ran at once")
		}
		if bad := renewals.violations(); len(bad) > 0 {
			fail("renewals without a group %v", bad)
		}
		if bad := checkpoints.violations(); len(bad) > 0 {
			fail("checkpoints %v", bad)
		}
		if landed, resumed := checkpoints.exercised(); landed == 0 || resumed < 2 {
			fail("%d writes carried a checkpoint and %d members resumed from one: the checkpoints were not exercised", landed, resumed)
		}
		leading, out, acquired := 0, 0, 0
		for _, rp := range reps {
			if rp.leading() {
				leading++
			}
			if rp.exitCode.Load() != 0 || rp.logCount(logmsg.GroupNotStopped) > 0 {
				out++
			}
			acquired += rp.logCount(logmsg.Acquired)
		}
		if acquired < 2 {
			fail("the Lease changed hands %d times in %s: the faults did not exercise handovers", acquired, simSpan)
		}
		if leading != 1 && out < len(reps) {
			fail("%d replicas lead after the faults healed (%d took themselves out)", leading, out)
		}
	})
}

// renewalCheck sees every write to the Lease and records each one by which
// a replica kept the Lease while it ran no group for longer than a group's
// start may take. From outside, a term's first write and a renewal can look
// alike (a candidate that wins back its own unreleased record renews it), so
// it follows spells: a spell begins at a replica's first write while it runs
// no instance (an instance counts as running until its Shutdown returned)
// and continues through its renewals of its own record, written no more than
// renew_deadline apart (a term whose renewals stop for longer has ended); it
// ends when the replica runs an instance. A spell may last
// start_timeout, the bound of a group's start, and, after the replica
// created the Lease, also lease_duration from that creation: the elector
// holds a term won on a Lease it created that long before it hands it out
// (elector.waitOutDeletedHolder).
type renewalCheck struct {
	journal                                    *journal
	leaseDuration, renewDeadline, startTimeout time.Duration

	mu      sync.Mutex
	spell   map[string]time.Time // when each replica's spell began, if it has one
	last    map[string]time.Time // each replica's last write
	created map[string]time.Time // when each replica last created the Lease
	bad     []string
}

func newRenewalCheck(j *journal, cfg *Config) *renewalCheck {
	return &renewalCheck{
		journal: j, leaseDuration: cfg.LeaderElection.LeaseDuration, renewDeadline: cfg.LeaderElection.RenewDeadline,
		startTimeout: cfg.StartTimeout,
		spell:        map[string]time.Time{}, last: map[string]time.Time{}, created: map[string]time.Time{},
	}
}

// write is cluster.onLeaseWrite: it runs under the fake API server's lock,
// so writes are seen in the order they were applied.
func (rc *renewalCheck) write(verb, prevHolder, holder string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	now := time.Now()
	if holder == "" {
		return
	}
	renewal := prevHolder == holder && now.Sub(rc.last[holder]) <= rc.renewDeadline
	rc.last[holder] = now
	if verb == "create" {
		rc.created[holder] = now
	}
	idle, since := rc.journal.idle(holder)
	if !idle {
		delete(rc.spell, holder)
		return
	}
	began, ok := rc.spell[holder]
	if !ok || !renewal || began.Before(since) { // a new spell, or it ran an instance since
		began = now
		rc.spell[holder] = began
	}
	limit := began.Add(rc.startTimeout)
	if c := rc.created[holder].Add(rc.leaseDuration + rc.startTimeout); c.After(limit) {
		limit = c
	}
	if now.After(limit) {
		rc.bad = append(rc.bad, fmt.Sprintf("%s at %s, running nothing since %s", holder,
			now.Format(time.TimeOnly+".000"), began.Format(time.TimeOnly+".000")))
	}
}

func (rc *renewalCheck) violations() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.bad)
}

// simConfig is the simulation's block: one test sub-receiver that keeps its
// checkpoints in the Lease (lease_checkpoints).
func simConfig() *Config {
	cfg := testConfigFor("testrcv")
	cfg.Checkpoints.Enabled = true
	cfg.Receivers["testrcv"]["storage"] = checkpointsID.String()
	return cfg
}

// checkpointCheck sees every write to the Lease, and every position of the
// replicas' feeds (feed) that reached a pipeline, and records:
//
//   - a write that moved the checkpoint back (a write of an ended term
//     landed, or a term wrote a state older than the one it took over);
//   - a write that carried a position whose data never reached a pipeline
//     (a checkpoint moved past data the fence dropped);
//   - a member that resumed from another position than the Lease's last
//     one (the next leader read a stale state);
//   - a position stored after its instance's Shutdown had returned.
//
// A Lease created anew (after a deletion) starts with no checkpoint.
type checkpointCheck struct {
	c             *cluster
	leaseDuration time.Duration
	feed          *feed

	mu        sync.Mutex
	delivered map[int64]bool // positions that reached a pipeline
	last      int64          // the position the Lease carries (0: none)
	created   time.Time      // when the Lease was last created
	landed    int            // writes that carried a position
	resumed   int            // instances that resumed from a position
	bad       []string
}

func newCheckpointCheck(c *cluster, cfg *Config) *checkpointCheck {
	cc := &checkpointCheck{c: c, leaseDuration: cfg.LeaderElection.LeaseDuration, delivered: map[int64]bool{}}
	cc.feed = &feed{period: 300 * time.Millisecond, resumed: cc.resume, late: cc.late}
	return cc
}

// pipeline is a replica's metrics pipeline: it records the feed's positions.
func (cc *checkpointCheck) pipeline() consumer.Metrics {
	next, _ := consumer.NewMetrics(func(_ context.Context, md pmetric.Metrics) error {
		rms := md.ResourceMetrics()
		for i := range rms.Len() {
			sms := rms.At(i).ScopeMetrics()
			for j := range sms.Len() {
				ms := sms.At(j).Metrics()
				for k := range ms.Len() {
					if m := ms.At(k); m.Name() == feedMetric {
						dps := m.Gauge().DataPoints()
						cc.mu.Lock()
						for l := range dps.Len() {
							cc.delivered[dps.At(l).IntValue()] = true
						}
						cc.mu.Unlock()
					}
				}
			}
		}
		return nil
	})
	return next
}

// write is called, through cluster.onLeaseWrite, under the fake API
// server's lock, right after it applied the write.
func (cc *checkpointCheck) write(verb string) {
	obj, err := cc.c.tracker.Get(leasesGVR, "ns", "lease")
	if err != nil {
		return
	}
	pos, err := positionOf(obj.(*coordinationv1.Lease))
	cc.mu.Lock()
	defer cc.mu.Unlock()
	now := time.Now().Format(time.TimeOnly + ".000")
	switch {
	case err != nil:
		cc.bad = append(cc.bad, fmt.Sprintf("%s: unreadable at %s: %v", verb, now, err))
		return
	case verb == "create":
		cc.created = time.Now()
		cc.last = 0
	case pos < cc.last:
		cc.bad = append(cc.bad, fmt.Sprintf("%s at %s moved the checkpoint back from %d to %d", verb, now, cc.last, pos))
	}
	if pos > 0 && !cc.delivered[pos] {
		cc.bad = append(cc.bad, fmt.Sprintf("%s at %s carried position %d, whose data reached no pipeline", verb, now, pos))
	}
	if pos > 0 && pos != cc.last {
		cc.landed++
	}
	cc.last = pos
}

// positionOf is the feed's position in a version of the Lease (0: none).
func positionOf(l *coordinationv1.Lease) (int64, error) {
	v := l.Annotations[checkpointsAnnotation]
	if v == "" {
		return 0, nil
	}
	var state checkpointState
	if err := json.Unmarshal([]byte(v), &state); err != nil {
		return 0, err
	}
	p := state[storageKey("testrcv", "")]["pos"]
	if p == nil {
		return 0, nil
	}
	return strconv.ParseInt(string(p), 10, 64)
}

// resume is told the position an instance resumed from: the Lease's last
// one, unless the Lease was re-created meanwhile (a term won just before a
// deletion starts from the version it won).
func (cc *checkpointCheck) resume(replica string, pos int64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if pos > 0 {
		cc.resumed++
	}
	if pos != cc.last && time.Since(cc.created) > cc.leaseDuration {
		cc.bad = append(cc.bad, fmt.Sprintf("%s resumed from %d at %s, the Lease carried %d",
			replica, pos, time.Now().Format(time.TimeOnly+".000"), cc.last))
	}
}

// late is told whether the storage took the position an instance sent after
// its Shutdown had returned: it must not.
func (cc *checkpointCheck) late(replica string, pos int64, taken bool) {
	if !taken {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.bad = append(cc.bad, fmt.Sprintf("%s stored position %d after its Shutdown returned", replica, pos))
}

func (cc *checkpointCheck) violations() []string {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return slices.Clone(cc.bad)
}

func (cc *checkpointCheck) exercised() (landed, resumed int) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.landed, cc.resumed
}
