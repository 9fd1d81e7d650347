// Package bench measures leadership handovers of a leader-elected group of
// Kubernetes receivers, for otelcol-leader (leader_receiver_creator) and
// for the peer, otelcol-peer (contrib's k8s_leader_elector gating
// k8s_cluster and k8s_events), under the same control plane and the same
// kill procedure. It is the library of cmd/bench (`make bench`); it
// measures, it does not pass or fail.
package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/harness"
)

// Impl is one distribution under test.
type Impl struct {
	Name      string // "ours" or "peer", in the report
	Dialect   LogDialect
	Collector string // binary
	Config    string // --config
	Namespace string // POD_NAMESPACE: where its Lease lives
	LeaseName string // the Lease it campaigns for (deleted before a fleet starts if still held)
	// Kubeconfigs[i] is the kubeconfig of replica-(i+1): a ServiceAccount
	// of its own in Namespace, named like the replica (fleet.ReplicaName),
	// so that its requests can be told apart in the audit log.
	Kubeconfigs []string
	Env         map[string]string
}

// Plan is one configuration: a fleet of Replicas replicas of one Impl,
// started once, then GracefulTrials SIGTERM trials and CrashTrials SIGKILL
// trials (the report's P1 and P2; P6 at other replica counts).
type Plan struct {
	Replicas        int
	GracefulTrials  int           // graceful handovers: SIGTERM to the leader (P1)
	CrashTrials     int           // crash failovers: SIGKILL to the leader (P2, P6)
	SampleResources bool          // sample every replica's footprint before the trials (P5)
	ResourceWarmup  time.Duration // after the first group started, before sampling
	ResourceSamples int           // readings of every replica
	ResourceEvery   time.Duration // between readings
	Jitter          time.Duration // random pause in [0, Jitter) before each kill
	// SteadyWindow, when set (and AuditLog), is how long the fleet runs
	// undisturbed, after P5 and before the trials, while each replica's
	// Lease requests are counted (P4), per RetryPeriod (the
	// configurations' retry_period).
	SteadyWindow time.Duration
	RetryPeriod  time.Duration
	TrialTimeout time.Duration // for each wait of a trial
	Dir          string        // the fleet's directory
	AuditLog     string        // kube-apiserver's audit log: P3 from outside ("" for none)
	Logf         func(format string, args ...any)
}

// Trial is one kill of the leader.
type Trial struct {
	Index          int     `json:"index"`
	Signal         string  `json:"signal"`
	Leader         string  `json:"leader"` // killed
	Next           string  `json:"next"`   // whose group started next
	GapSeconds     float64 `json:"gap_seconds"`
	ExitSeconds    float64 `json:"exit_seconds"`    // signal to the process reaped (-1: did not exit within the trial timeout, then SIGKILLed)
	RestartSeconds float64 `json:"restart_seconds"` // restart to health endpoint 200
	AtSeconds      float64 `json:"at_seconds"`      // signal, since the fleet started
}

// ConfigResult is what one configuration measured.
type ConfigResult struct {
	Impl           string         `json:"impl"`
	Replicas       int            `json:"replicas"`
	StartupSeconds float64        `json:"startup_seconds"`      // fleet start to the first single leader (ours waits lease_duration when it has to create the Lease)
	Graceful       []Trial        `json:"p1_sigterm,omitempty"` // graceful handovers (SIGTERM)
	Crash          []Trial        `json:"p2_sigkill,omitempty"` // crash failovers (SIGKILL)
	GracefulGap    Summary        `json:"p1_gap_seconds"`       // of Graceful: handover gap
	CrashGap       Summary        `json:"p2_gap_seconds"`       // of Crash: failover gap
	Overlap        OverlapTotals  `json:"overlap"`
	Spans          []ReceiverSpan `json:"intervals"`
	// AuditOverlap is Overlap measured from outside (OutsideOverlap), from
	// AuditSpans.
	AuditOverlap *OverlapTotals `json:"audit_overlap,omitempty"`
	AuditSpans   []ReceiverSpan `json:"audit_intervals,omitempty"`
	Resources    *Resources     `json:"resources,omitempty"`
	Requests     *Requests      `json:"p4_requests,omitempty"`
	Notes        []string       `json:"notes,omitempty"`
	Error        string         `json:"error,omitempty"`
	WallSeconds  float64        `json:"wall_seconds"`
	Dir          string         `json:"dir"`
	LoadStart    string         `json:"loadavg_start"` // /proc/loadavg: other load on the machine
	LoadEnd      string         `json:"loadavg_end"`
}

// Resources is a standby's footprint against the leader's (the report's P5).
type Resources struct {
	// GoroutineSource is the telemetry metric the goroutine counts come
	// from, or "" when the collector exposes none (then only OS threads are
	// reported).
	GoroutineSource string           `json:"goroutine_source"`
	Leader          ResourceStats    `json:"leader"`
	Standby         ResourceStats    `json:"standby"`
	Samples         []ResourceSample `json:"samples"`
}

// ResourceStats summarizes samples of one role.
type ResourceStats struct {
	RSSMiB     Summary `json:"rss_mib"`
	Goroutines Summary `json:"goroutines"` // N = 0 when not exposed
	Threads    Summary `json:"os_threads"`
	HeapMiB    Summary `json:"heap_alloc_mib"`
	CPUPercent Summary `json:"cpu_percent"` // of one core, over the sampling window, one value per replica
}

// ResourceSample is one reading of one replica.
type ResourceSample struct {
	Replica    string  `json:"replica"`
	Role       string  `json:"role"` // leader or standby
	RSSMiB     float64 `json:"rss_mib"`
	Threads    int     `json:"os_threads"`
	Goroutines float64 `json:"goroutines"` // -1: not exposed
	HeapMiB    float64 `json:"heap_alloc_mib"`
}

// FreeLease deletes the Lease if it still names a holder, so the next
// fleet does not wait for a holder of the previous one to expire (the peer
// does not release the Lease on shutdown). A released Lease (no holder, as
// ours leaves it after a graceful stop) is kept: a replica of ours that
// has to create the Lease waits lease_duration before starting its group.
func FreeLease(ctx context.Context, cs kubernetes.Interface, ns, name string) (deleted bool, err error) {
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		return false, nil
	}
	err = cs.CoordinationV1().Leases(ns).Delete(ctx, name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{ResourceVersion: &l.ResourceVersion},
	})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// RunConfig starts the fleet, runs the plan's trials and returns what was
// measured (with Error set if it stopped early).
func RunConfig(ctx context.Context, cs kubernetes.Interface, impl Impl, plan Plan) (res ConfigResult) {
	logf := plan.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if plan.TrialTimeout == 0 {
		plan.TrialTimeout = 2 * time.Minute
	}
	res = ConfigResult{Impl: impl.Name, Replicas: plan.Replicas, Dir: plan.Dir, LoadStart: LoadAvg()}
	tr := NewTracker(impl.Dialect)
	began := time.Now()
	var f *fleet.Fleet
	var auditLog *audit.Log
	if plan.AuditLog != "" {
		var err error
		if auditLog, err = audit.NewLog(plan.AuditLog, cluster.ServiceAccountUser(impl.Namespace, "")); err != nil {
			res.Error = err.Error()
			return res
		}
	}
	defer func() {
		if f != nil {
			if err := f.Stop(20 * time.Second); err != nil {
				res.Notes = append(res.Notes, "stopping the fleet: "+err.Error())
			}
		}
		res.Spans = tr.Spans()
		res.Overlap = ComputeOverlap(res.Spans, time.Now())
		if auditLog != nil && f != nil {
			res.outside(f, auditLog, impl.Namespace)
		}
		res.Notes = append(res.Notes, tr.Notes()...)
		res.GracefulGap = Summarize(gaps(res.Graceful))
		res.CrashGap = Summarize(gaps(res.Crash))
		res.WallSeconds = time.Since(began).Seconds()
		res.LoadEnd = LoadAvg()
	}()
	fail := func(err error) ConfigResult {
		res.Error = err.Error()
		logf("[%s N=%d] ERROR: %v", impl.Name, plan.Replicas, err)
		return res
	}

	if deleted, err := FreeLease(ctx, cs, impl.Namespace, impl.LeaseName); err != nil {
		return fail(fmt.Errorf("free lease %s/%s: %w", impl.Namespace, impl.LeaseName, err))
	} else if deleted {
		res.Notes = append(res.Notes, "deleted the Lease left held by the previous fleet")
	}
	opts := fleet.Options{
		Collector:  impl.Collector,
		Config:     impl.Config,
		Replicas:   plan.Replicas,
		Dir:        plan.Dir,
		Namespace:  impl.Namespace,
		Env:        impl.Env,
		OnEvent:    tr.OnEvent,
		ReplicaEnv: func(i int) map[string]string { return map[string]string{"KUBECONFIG": impl.Kubeconfigs[i-1]} },
	}
	if len(impl.Kubeconfigs) < plan.Replicas {
		return fail(fmt.Errorf("%d replicas but %d kubeconfigs", plan.Replicas, len(impl.Kubeconfigs)))
	}
	if impl.Dialect == Peer {
		opts.OnLog = tr.OnLog
	}
	var err error
	f, err = fleet.Start(opts)
	if err != nil {
		return fail(err)
	}
	leader, err := waitReady(ctx, f, tr, plan.TrialTimeout)
	if err != nil {
		return fail(fmt.Errorf("first leader: %w", err))
	}
	res.StartupSeconds = time.Since(began).Seconds()
	logf("[%s N=%d] %d replicas up, %s leads (%.3fs after start)", impl.Name, plan.Replicas, plan.Replicas, leader, res.StartupSeconds)

	if plan.SampleResources {
		r, err := sampleResources(ctx, f, tr, plan, logf, impl.Name)
		if err != nil {
			return fail(fmt.Errorf("P5: %w", err))
		}
		res.Resources = r
	}
	if plan.SteadyWindow > 0 && auditLog != nil && plan.RetryPeriod > 0 {
		logf("[%s N=%d P4] counting Lease requests over %s without kills", impl.Name, plan.Replicas, plan.SteadyWindow)
		r, err := steadyRequests(ctx, f, tr, plan, auditLog, impl.Namespace)
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		if err != nil { // no figure; the trials still run
			res.Notes = append(res.Notes, "P4 not measured: "+err.Error())
			logf("[%s N=%d P4] not measured: %v", impl.Name, plan.Replicas, err)
		} else {
			res.Requests = r
			logf("[%s N=%d P4] per retry_period: leader %s writes, %s reads, %s watches open; standby %s reads (median), %s watches open",
				impl.Name, plan.Replicas, fmtValue(r.LeaderWrites.Median, unitRate), fmtValue(r.LeaderReads.Median, unitRate), fmtValue(r.LeaderWatches.Median, unitRate),
				fmtValue(r.StandbyReads.Median, unitRate), fmtValue(r.StandbyWatches.Median, unitRate))
		}
	}

	for _, step := range []struct {
		n    int
		sig  syscall.Signal
		name string
		out  *[]Trial
	}{{plan.GracefulTrials, syscall.SIGTERM, "SIGTERM", &res.Graceful}, {plan.CrashTrials, syscall.SIGKILL, "SIGKILL", &res.Crash}} {
		for i := 1; i <= step.n; i++ {
			t, err := runTrial(ctx, f, tr, plan, step.sig)
			t.Index, t.Signal = i, step.name
			if err != nil {
				return fail(fmt.Errorf("%s trial %d: %w", step.name, i, err))
			}
			*step.out = append(*step.out, t)
			logf("[%s N=%d %s %d/%d] %s -> %s group started after %.3fs (exit %.2fs, restarted healthy in %.2fs)",
				impl.Name, plan.Replicas, step.name, i, step.n, t.Leader, t.Next, t.GapSeconds, t.ExitSeconds, t.RestartSeconds)
		}
	}
	return res
}

// outside measures AuditOverlap once the fleet has stopped.
func (res *ConfigResult) outside(f *fleet.Fleet, l *audit.Log, ns string) {
	out, err := harness.MeasureOutside(l, harness.Actors(ns, f, nil), nil)
	if err != nil {
		res.Notes = append(res.Notes, "reading the audit log: "+err.Error())
	}
	o, ivs := OutsideOverlap(out)
	res.AuditOverlap, res.AuditSpans = &o, ivs
}

func gaps(ts []Trial) []float64 {
	out := make([]float64, len(ts))
	for i, t := range ts {
		out[i] = t.GapSeconds
	}
	return out
}

// waitReady waits until every replica runs and answers its health check,
// and exactly one runs the group; it returns that one.
func waitReady(ctx context.Context, f *fleet.Fleet, tr *Tracker, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	leader, err := tr.WaitSingleLeader(ctx)
	if err != nil {
		return "", err
	}
	for _, r := range f.Replicas() {
		if err := waitHealthy(ctx, r); err != nil {
			return "", err
		}
	}
	// Still the same single leader?
	if l := tr.Leaders(); len(l) != 1 || l[0] != leader {
		return tr.WaitSingleLeader(ctx)
	}
	return leader, nil
}

func waitHealthy(ctx context.Context, r *fleet.Replica) error {
	for {
		if !r.Running() {
			return fmt.Errorf("%s is not running; end of its log:\n%s", r.Name, r.LogTail(1500))
		}
		if r.Healthy(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy: %w", r.Name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// runTrial kills the leader with sig, measures until another replica's
// group started, then restarts the killed replica and waits until it is
// healthy.
func runTrial(ctx context.Context, f *fleet.Fleet, tr *Tracker, plan Plan, sig syscall.Signal) (Trial, error) {
	var t Trial
	leader, err := waitReady(ctx, f, tr, plan.TrialTimeout)
	if err != nil {
		return t, err
	}
	if plan.Jitter > 0 {
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-time.After(rand.N(plan.Jitter)):
		}
		if l := tr.Leaders(); len(l) != 1 || l[0] != leader {
			return t, fmt.Errorf("leaders changed before the kill: %v (was %s)", l, leader)
		}
	}
	r := f.Replica(leader)
	t.Leader = leader
	killed := time.Now()
	t.AtSeconds = killed.Sub(f.T0).Seconds()
	done := r.Done()
	if err := r.Signal(sig); err != nil {
		return t, fmt.Errorf("signal %s: %w", leader, err)
	}
	exited := make(chan time.Time, 1)
	go func() {
		select {
		case <-done:
			exited <- time.Now()
		case <-time.After(plan.TrialTimeout):
			close(exited)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, plan.TrialTimeout)
	up, err := tr.WaitGroupUp(wctx, killed, leader)
	cancel()
	if err != nil {
		return t, fmt.Errorf("no other group started after %s of %s: %w (groups running: %v)", sigName(sig), leader, err, tr.Leaders())
	}
	t.Next, t.GapSeconds = up.Replica, up.At.Sub(killed).Seconds()

	if at, ok := <-exited; ok {
		t.ExitSeconds = at.Sub(killed).Seconds()
	} else {
		t.ExitSeconds = -1 // did not exit in time: killed
		if err := r.Kill(); err != nil {
			return t, err
		}
	}
	restarted := time.Now()
	if err := r.Start(); err != nil {
		return t, fmt.Errorf("restart %s: %w", leader, err)
	}
	hctx, cancel := context.WithTimeout(ctx, plan.TrialTimeout)
	defer cancel()
	if err := waitHealthy(hctx, r); err != nil {
		return t, err
	}
	t.RestartSeconds = time.Since(restarted).Seconds()
	return t, nil
}

func sigName(sig syscall.Signal) string {
	if sig == syscall.SIGKILL {
		return "SIGKILL"
	}
	return "SIGTERM"
}

// sampleResources measures the footprint of leader and standbys (P5): after
// the warmup, plan.ResourceSamples readings of every replica,
// plan.ResourceEvery apart.
func sampleResources(ctx context.Context, f *fleet.Fleet, tr *Tracker, plan Plan, logf func(string, ...any), impl string) (*Resources, error) {
	if plan.ResourceSamples < 2 {
		plan.ResourceSamples = 2
	}
	if plan.ResourceEvery == 0 {
		plan.ResourceEvery = 2 * time.Second
	}
	logf("[%s N=%d P5] warming up %s, then %d samples %s apart", impl, plan.Replicas, plan.ResourceWarmup, plan.ResourceSamples, plan.ResourceEvery)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(plan.ResourceWarmup):
	}
	res := &Resources{}
	type window struct {
		first, last       time.Duration // CPU
		firstAt, lastAt   time.Time
		role              string
		roleChanged, seen bool
	}
	windows := map[string]*window{}
	var metricNames []string
	for i := 0; i < plan.ResourceSamples; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(plan.ResourceEvery):
			}
		}
		leaders := tr.Leaders()
		if len(leaders) != 1 {
			return nil, fmt.Errorf("%d groups running while sampling", len(leaders))
		}
		for _, r := range f.Replicas() {
			pid := r.PID()
			if pid == 0 {
				return nil, errors.New(r.Name + " is not running")
			}
			s, names, err := SampleCollector(ctx, pid, r.MetricsURL)
			if err != nil {
				return nil, err
			}
			if names != nil {
				metricNames = names
			}
			role := "standby"
			if r.Name == leaders[0] {
				role = "leader"
			}
			now := time.Now()
			w := windows[r.Name]
			if w == nil {
				w = &window{first: s.CPU, firstAt: now, role: role}
				windows[r.Name] = w
			}
			w.last, w.lastAt, w.seen = s.CPU, now, true
			if w.role != role {
				w.roleChanged = true
			}
			heap := -1.0
			if s.HeapAlloc >= 0 {
				heap = s.HeapAlloc / (1 << 20)
			}
			res.Samples = append(res.Samples, ResourceSample{Replica: r.Name, Role: role, RSSMiB: float64(s.RSSBytes) / (1 << 20),
				Threads: s.Threads, Goroutines: s.Goroutines, HeapMiB: heap})
		}
	}
	for _, n := range metricNames {
		if name, _, ok := GoroutineMetric(map[string]float64{n: 0}); ok {
			res.GoroutineSource = name
			break
		}
	}
	collect := func(role string) ResourceStats {
		var rss, gor, thr, heap, cpu []float64
		for _, s := range res.Samples {
			if s.Role != role {
				continue
			}
			rss = append(rss, s.RSSMiB)
			thr = append(thr, float64(s.Threads))
			if s.Goroutines >= 0 {
				gor = append(gor, s.Goroutines)
			}
			if s.HeapMiB >= 0 {
				heap = append(heap, s.HeapMiB)
			}
		}
		names := make([]string, 0, len(windows))
		for n := range windows {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			w := windows[n]
			if w.role == role && !w.roleChanged && w.lastAt.After(w.firstAt) {
				cpu = append(cpu, 100*(w.last-w.first).Seconds()/w.lastAt.Sub(w.firstAt).Seconds())
			}
		}
		return ResourceStats{RSSMiB: Summarize(rss), Goroutines: Summarize(gor), Threads: Summarize(thr), HeapMiB: Summarize(heap), CPUPercent: Summarize(cpu)}
	}
	res.Leader, res.Standby = collect("leader"), collect("standby")
	src := res.GoroutineSource
	if src == "" {
		src = "none exposed; OS threads only"
	}
	logf("[%s N=%d P5] RSS leader %.1f MiB, standby %.1f MiB; OS threads leader %.0f, standby %.0f; goroutines: %s",
		impl, plan.Replicas, res.Leader.RSSMiB.Median, res.Standby.RSSMiB.Median, res.Leader.Threads.Median, res.Standby.Threads.Median, src)
	return res, nil
}

// FleetDir is the directory of one configuration's fleet under base.
func FleetDir(base, impl string, replicas int) string {
	return filepath.Join(base, fmt.Sprintf("%s-n%d", impl, replicas))
}
