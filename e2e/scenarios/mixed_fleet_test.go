package scenarios

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/clientgo"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

var mixedSeed = flag.Uint64("mixed-seed", 0, "seed of TestMixedFleetWithClientGo's random choices (0: from the clock)")

// The mixed fleet's plan: at least mixedTrials kills of whoever leads,
// then a rolling restart of every process.
const (
	mixedReplicas = 3
	mixedClientGo = 2
	mixedTrials   = 20
	// mixedExtraTrials: up to this many more while only one kind (ours,
	// client-go) has led.
	mixedExtraTrials = 10
	// mixedKillShare is the probability of SIGKILL (each costs a
	// lease_duration); the rest are SIGTERMs.
	mixedKillShare = 0.3
	// mixedClientGoTurn is the probability that, when one of ours leads,
	// our other replicas are stopped before the kill, so that a client-go
	// candidate takes over (they poll, ours watch: ours would always win
	// the race), and started again once it leads.
	mixedClientGoTurn = 0.4
)

// member is one process on the mixed fleet's Lease: a replica of ours or
// a client-go candidate.
type member struct {
	name     string
	clientGo bool
	proc     interface {
		Start() error
		Stop(grace time.Duration) error
		Kill() error
		PID() int
		Leading() bool
	}
}

// active reports whether m's group runs (ours) or it is between
// OnStartedLeading and the return of Run (client-go) in a live process:
// Kill returns once the process is reaped, perhaps before the harness has
// processed its exit.
func (m member) active() bool { return m.proc.Leading() && m.proc.PID() != 0 }

func (m member) kind() string {
	if m.clientGo {
		return "client-go"
	}
	return "ours"
}

// mixedTrial is one kill of the leader, or the restart of one process in
// the rolling restart.
type mixedTrial struct {
	signal   string // SIGTERM or SIGKILL
	rolling  bool   // part of the rolling restart
	victim   member
	leading  bool      // the victim was active when signalled
	at       time.Time // the signal
	next     string    // who was active next
	gap      time.Duration
	takeover time.Duration // from the signal to the next start
}

// TestMixedFleetWithClientGo: replicas of ours and plain client-go
// LeaderElector candidates (ReleaseOnCancel) on one Lease, as in a rolling
// upgrade from a client-go based receiver. Whoever leads is killed, with
// SIGTERM or SIGKILL at random (seeded; -mixed-seed replays a run), and
// restarted, at least mixedTrials times (sometimes with our other replicas
// stopped first, so that a client-go candidate takes over: ours watch the
// Lease and would always be first); then every process is restarted one by
// one. Never two active at once: from the logs (our group spans,
// the candidates' OnStartedLeading to the return of Run) and from outside
// (the audit log's activity of each ServiceAccount, checked by the
// scenario's cleanup).
func TestMixedFleetWithClientGo(t *testing.T) {
	seed := *mixedSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay: go test -run %s ./scenarios/ -args -mixed-seed=%d)", seed, t.Name(), seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	s := start(t, options{replicas: mixedReplicas, clientGo: mixedClientGo})
	var members []member
	for _, r := range s.f.Replicas() {
		members = append(members, member{name: r.Name, proc: r})
	}
	for _, c := range s.cg.Candidates() {
		require.NoError(t, c.Start())
		members = append(members, member{name: c.Name, clientGo: true, proc: c})
	}
	for _, m := range members {
		s.waitCampaigning(m)
	}

	var trials []mixedTrial
	seen := map[string]int{} // "<kind> <signal>" of the leaders killed
	bothKinds := func() bool {
		return seen["ours SIGTERM"]+seen["ours SIGKILL"] > 0 && seen["client-go SIGTERM"]+seen["client-go SIGKILL"] > 0
	}
	// At least mixedTrials; a few more (mixedExtraTrials at most) while
	// one kind has not led yet.
	for len(trials) < mixedTrials || (!bothKinds() && len(trials) < mixedTrials+mixedExtraTrials) {
		i := len(trials) + 1
		leader := s.soleActive(members)
		// Let the kill fall at a random point of the renew cycle (how long
		// the fleet runs undisturbed, not synchronisation).
		s.hold(time.Now().Add(time.Duration(rng.Int64N(int64(2 * retryPeriod)))))
		if !leader.active() {
			t.Logf("trial %d: %s stopped leading by itself before the kill; picking again", i, leader.name)
			continue
		}
		sig := "SIGTERM"
		if rng.Float64() < mixedKillShare {
			sig = "SIGKILL"
		}
		var parked []member
		if !leader.clientGo && (rng.Float64() < mixedClientGoTurn || !bothKinds() && len(trials) >= mixedTrials/2) {
			for _, m := range members {
				if !m.clientGo && m.name != leader.name {
					require.NoError(t, m.proc.Stop(20*time.Second))
					parked = append(parked, m)
				}
			}
		}
		tr := s.signal(leader, sig, false)
		for _, m := range parked {
			require.NoError(t, m.proc.Start(), "restart %s", m.name)
			s.waitCampaigning(m)
		}
		trials = append(trials, tr)
		seen[leader.kind()+" "+sig]++
		t.Logf("trial %d: %s to %s (%s), then %s active", i, sig, leader.name, leader.kind(), tr.next)
	}

	// The rolling restart: every process in turn, SIGTERM, start again,
	// wait until it campaigns and someone leads.
	order := slices.Clone(members)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, m := range order {
		s.soleActive(members)
		tr := s.signal(m, "SIGTERM", true)
		trials = append(trials, tr)
		if tr.leading {
			t.Logf("rolling restart: %s (%s, leading), then %s active", m.name, m.kind(), tr.next)
		} else {
			t.Logf("rolling restart: %s (%s, standing by)", m.name, m.kind())
		}
	}
	s.soleActive(members)

	// Everything stops here so that the figures cover every span; the
	// cleanup (scenario.stop) checks overlap from the logs and from the
	// audit log again and prints the activity from outside.
	require.NoError(t, s.cg.Stop(20*time.Second))
	require.NoError(t, s.f.Stop(20*time.Second))
	spans := s.spans()
	require.NoError(t, timeline.CheckDisjoint(spans), "overlap in the logs")
	s.mixedFigures(trials, spans, seen)
}

// TestMixedOverlapChecksCanFail proves that the final checks see a client-go
// candidate active at the same time as a group of ours: the candidate
// campaigns for a Lease of the same name in another namespace, so both
// lead, and the log check and the check from outside (its Pod lists in
// the audit log) both report the overlap.
func TestMixedOverlapChecksCanFail(t *testing.T) {
	other := namespaceFor(t) + "-other"
	s := start(t, options{replicas: 1, clientGo: 1, clientGoNamespace: other, overlapExpected: true})
	s.leaseRBACIn(other, clientgo.Name(1))
	c := s.cg.Candidates()[0]
	require.NoError(t, c.Start())
	s.exporting(s.leader(time.Minute))
	_, err := s.cg.WaitFor(s.within(time.Minute), func(ev timeline.Event) bool { return ev.Kind == clientgo.StartedLeading })
	require.NoError(t, err)
	require.True(t, c.Leading())
	require.True(t, s.f.Replicas()[0].Leading(), "both active at once")
}

// waitCampaigning waits until m's current process campaigns.
func (s *scenario) waitCampaigning(m member) {
	s.t.Helper()
	pid := m.proc.PID()
	if m.clientGo {
		_, err := s.cg.WaitFor(s.within(time.Minute), func(ev timeline.Event) bool {
			return ev.PID == pid && ev.Kind == clientgo.Campaigning
		})
		require.NoError(s.t, err, "%s campaigns", m.name)
		return
	}
	s.waitFor(time.Minute, m.name+" campaigns", func(ev timeline.Event) bool {
		return ev.PID == pid && ev.Kind == timeline.Campaigning
	})
}

// soleActive waits (30s at most) until exactly one member is active (our
// group running, or a candidate between OnStartedLeading and the return of
// Run) and returns it.
func (s *scenario) soleActive(members []member) member {
	s.t.Helper()
	var sole member
	require.Eventually(s.t, func() bool {
		var active []member
		for _, m := range members {
			if m.active() {
				active = append(active, m)
			}
		}
		if len(active) == 1 {
			sole = active[0]
		}
		return len(active) == 1
	}, 30*time.Second, 10*time.Millisecond, "exactly one process of the mixed fleet active")
	return sole
}

// signal stops m (SIGTERM, waiting for it to exit) or kills it (SIGKILL),
// waits until another member is active if m was, then starts m again and
// waits until it campaigns.
func (s *scenario) signal(m member, sig string, rolling bool) mixedTrial {
	t := s.t
	t.Helper()
	tr := mixedTrial{signal: sig, rolling: rolling, victim: m, leading: m.active(), at: time.Now()}
	if sig == "SIGKILL" {
		require.NoError(t, m.proc.Kill())
	} else {
		require.NoError(t, m.proc.Stop(20*time.Second))
	}
	if tr.leading {
		next := s.soleActive(s.members())
		tr.next = next.name
	}
	require.NoError(t, m.proc.Start(), "restart %s", m.name)
	s.waitCampaigning(m)
	return tr
}

// members lists the fleet's processes in a stable order.
func (s *scenario) members() []member {
	var ms []member
	for _, r := range s.f.Replicas() {
		ms = append(ms, member{name: r.Name, proc: r})
	}
	for _, c := range s.cg.Candidates() {
		ms = append(ms, member{name: c.Name, clientGo: true, proc: c})
	}
	return ms
}

// mixedFigures fills in each handover's gap from the spans (from the end of
// the victim's last span started before the signal to the first span of
// another member started after it), checks the timing rules (a SIGKILLed
// leader's Lease is waited out, a SIGTERMed leader's released one is taken
// at once) and logs the figures.
func (s *scenario) mixedFigures(trials []mixedTrial, spans []timeline.GroupSpan, seen map[string]int) {
	t := s.t
	reqs, err := s.run.Lease.Audit.Settle(10 * time.Second) // every process has stopped
	require.NoError(t, err, "reading the audit log")
	byKind := map[string][]time.Duration{}
	for i := range trials {
		tr := &trials[i]
		if !tr.leading {
			continue
		}
		var prev, next *timeline.GroupSpan
		for j := range spans {
			sp := &spans[j]
			if sp.Replica == tr.victim.name && !sp.Start.After(tr.at) {
				prev = sp
			}
			if next == nil && sp.Replica != tr.victim.name && sp.Start.After(tr.at) {
				next = sp
			}
		}
		require.NotNil(t, prev, "%s's span before its %s", tr.victim.name, tr.signal)
		require.NotNil(t, next, "a span after %s of %s", tr.signal, tr.victim.name)
		require.False(t, prev.End.IsZero(), "%s's span ended", tr.victim.name)
		tr.gap = next.Start.Sub(prev.End)
		tr.takeover = next.Start.Sub(tr.at)
		assert.Equal(t, tr.next, next.Replica, "who was active next")
		nextKind := "ours"
		if strings.HasPrefix(next.Replica, "clientgo-") {
			nextKind = "client-go"
		}
		label := fmt.Sprintf("%s %s -> %s", tr.signal, tr.victim.kind(), nextKind)
		byKind[label] = append(byKind[label], tr.gap)
		switch tr.signal {
		case "SIGKILL":
			// Nobody may take the Lease before it expired, measured from
			// outside: from the victim's last successful write of the
			// Lease (a renewal, one still in flight at the kill included)
			// to the next holder's first write of it, both as the API
			// server received them. Our standby acts lease_duration after
			// it saw the Lease change, which is after the change was
			// received. A client-go standby compares records re-marshalled
			// in whole seconds, so it may measure expiry from a renewal up
			// to a second older than the last (the reason for
			// comparing versions): it may act up to a second earlier.
			// (The time from the kill is no measure: under load the last
			// renewal can be more than a retry_period before it.)
			first := leaseWrite(reqs, cluster.ServiceAccountUser(s.ns, next.Replica), tr.at, time.Time{}, false)
			last := leaseWrite(reqs, cluster.ServiceAccountUser(s.ns, tr.victim.name), time.Time{}, first, true)
			if assert.False(t, first.IsZero(), "no write of the Lease by %s after the kill of %s", next.Replica, tr.victim.name) &&
				assert.False(t, last.IsZero(), "no renewal of the Lease by %s", tr.victim.name) {
				limit := leaseDuration
				if nextKind == "client-go" {
					limit -= time.Second
				}
				waited := first.Sub(last)
				t.Logf("SIGKILL %s -> %s: its last renewal at %.3fs, the Lease taken at %.3fs: %s after it (at least %s)",
					tr.victim.name, next.Replica, last.Sub(s.t0).Seconds(), first.Sub(s.t0).Seconds(), waited, limit)
				assert.GreaterOrEqual(t, waited, limit, "%s's Lease taken before it expired (by %s)", tr.victim.name, next.Replica)
			}
		default:
			assert.Less(t, tr.takeover, leaseDuration, "%s released the Lease: taken at once, not after it expired", tr.victim.name)
		}
	}
	var closest time.Duration = -1
	for i := 1; i < len(spans); i++ {
		if d := spans[i].Start.Sub(spans[i-1].End); closest < 0 || d < closest {
			closest = d
		}
	}
	labels := make([]string, 0, len(byKind))
	for k := range byKind {
		labels = append(labels, k)
	}
	slices.Sort(labels)
	for _, k := range labels {
		g := slices.Clone(byKind[k])
		slices.Sort(g)
		t.Logf("handover gap (logs: end of one span to the start of the next), %s: n=%d min %s median %s max %s", k, len(g),
			g[0].Round(time.Millisecond), g[len(g)/2].Round(time.Millisecond), g[len(g)-1].Round(time.Millisecond))
	}
	t.Logf("kills by leader and signal: %v; %d spans (ours and client-go); closest approach of two spans in the logs %s",
		seen, len(spans), closest.Round(time.Microsecond))
	assert.Positive(t, seen["ours SIGTERM"]+seen["ours SIGKILL"], "one of ours led and was killed")
	assert.Positive(t, seen["client-go SIGTERM"]+seen["client-go SIGKILL"], "a client-go candidate led and was killed")
}

// leaseWrite returns, among user's successful writes (update, create) of a
// Lease received after after (when set) and before before (when set), the
// last one's time if last, else the first one's; zero if there is none. The
// time is when the API server received the request.
func leaseWrite(reqs []audit.Request, user string, after, before time.Time, last bool) time.Time {
	var at time.Time
	for _, r := range reqs {
		if r.User != user || !r.Lease() || (r.Verb != "update" && r.Verb != "create") || r.Code/100 != 2 {
			continue
		}
		if (!after.IsZero() && !r.Received.After(after)) || (!before.IsZero() && !r.Received.Before(before)) {
			continue
		}
		if at.IsZero() || (last && r.Received.After(at)) || (!last && r.Received.Before(at)) {
			at = r.Received
		}
	}
	return at
}

// leaseWrite reads only successful writes of the Lease by the one user, in
// the window: what the SIGKILL check of mixedFigures measures from.
func TestLeaseWritePicksSuccessfulLeaseWrites(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	lease := func(user, verb string, ms, code int) audit.Request {
		return audit.Request{User: user, Verb: verb, APIGroup: "coordination.k8s.io", Resource: "leases", Received: at(ms), Code: code}
	}
	reqs := []audit.Request{
		lease("a", "update", 100, 200),
		lease("a", "update", 600, 200),
		lease("a", "update", 1100, 409), // a failed renewal renews nothing
		lease("a", "get", 1200, 200),
		{User: "a", Verb: "list", Resource: "pods", Received: at(1300), Code: 200},
		lease("b", "update", 4700, 200),
		lease("b", "update", 5200, 200),
		lease("a", "update", 4800, 200), // after b's takeover: not before it
	}
	first := leaseWrite(reqs, "b", at(1000), time.Time{}, false)
	assert.Equal(t, at(4700), first)
	assert.Equal(t, at(600), leaseWrite(reqs, "a", time.Time{}, first, true))
	assert.True(t, leaseWrite(reqs, "c", time.Time{}, time.Time{}, true).IsZero())
	assert.True(t, leaseWrite(reqs, "b", at(5200), time.Time{}, false).IsZero(), "strictly after")
}
