package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/audit"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/bench"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/harness"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/proc"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// RetryPeriod is the generated configurations' retry_period (the default).
const RetryPeriod = 2 * time.Second

// Options shape one measurement of a fleet with many blocks.
type Options struct {
	ControlPlane *controlplane.ControlPlane
	Collector    string // otelcol-leader
	DeployDir    string // deploy/: the RBAC, with the Role's resourceNames extended to every block's Lease
	Dir          string // configuration, logs, profiles
	Blocks       int
	Replicas     int // 3 if zero
	// Trials: each starts replica-1 alone and waits until it runs every
	// block's group (the first on a namespace without Leases: a cold
	// start), then starts the others as standbys, then SIGTERMs replica-1
	// and waits until every block's group has started elsewhere, then
	// stops the others.
	Trials int
	// Warmup and Window: in the first trial, after the standbys watch
	// every Lease, Warmup passes, then CPU, RSS and the requests are
	// measured over Window.
	Warmup, Window time.Duration
	CheckInterval  time.Duration // the http_checks' collection_interval
	Jitter         time.Duration // random pause in [0, Jitter) before each SIGTERM
	Timeout        time.Duration // each wait
	Pprof          bool          // CPU profiles of the leader and a standby over Window, heap profiles at its end
	Logf           func(format string, args ...any)
}

// Startup is one start of replica-1 alone until it ran every block's group.
type Startup struct {
	Cold bool // no Lease existed: the replica created them and waited lease_duration
	// First and All: from the process start to the first and the last
	// "leader group started".
	First time.Duration `json:"first_ns"`
	All   time.Duration `json:"all_ns"`
}

// Usage is one replica's footprint over the steady window.
type Usage struct {
	Replica string        `json:"replica"`
	Role    string        `json:"role"`
	CPU     time.Duration `json:"cpu_ns"` // utime+stime over the window
	// CPUPerBlockRetry is CPU / (blocks × window / retry_period), in ms.
	CPUPerBlockRetry float64   `json:"cpu_ms_per_block_per_retry"`
	CPUPercent       float64   `json:"cpu_percent"` // of one core over the window
	RSSMiB           float64   `json:"rss_mib"`     // median of RSSSamples
	RSSSamples       []float64 `json:"rss_samples_mib"`
	Threads          int       `json:"os_threads"`
	Profile          string    `json:"cpu_profile,omitempty"`
	Heap             string    `json:"heap_profile,omitempty"`
}

// Steady is the steady state: one replica runs every block's group, the
// others stand by.
type Steady struct {
	Window time.Duration `json:"window_ns"`
	Usage  []Usage       `json:"usage"`
	Rates  Rates         `json:"requests"`
}

// Result is what one measurement found.
type Result struct {
	Blocks      int        `json:"blocks"`
	Replicas    int        `json:"replicas"`
	Began       time.Time  `json:"began"`
	Startups    []Startup  `json:"startups"`
	Handovers   []Handover `json:"handovers"`
	Steady      *Steady    `json:"steady,omitempty"`
	LogOverlaps []string   `json:"log_overlaps"`
	Outside     Outside    `json:"outside"`
	Problems    []string   `json:"problems,omitempty"`
}

// Run measures one fleet with o.Blocks blocks in a namespace of its own
// (scale-<blocks>), on o.ControlPlane.
func Run(ctx context.Context, o Options) (res Result, err error) {
	if o.Replicas == 0 {
		o.Replicas = 3
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	res = Result{Blocks: o.Blocks, Replicas: o.Replicas, Began: time.Now()}
	ns := fmt.Sprintf("scale-%d", o.Blocks)
	dir := filepath.Join(o.Dir, ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte(Blocks(o.Blocks, o.Pprof)), 0o644); err != nil {
		return res, err
	}
	t, err := newRunT(dir)
	if err != nil {
		return res, err
	}
	defer t.cleanup()

	tr := newTracker()
	pprofAddr := map[int]string{}
	var pprofMu sync.Mutex
	cp := o.ControlPlane
	run, err := harness.Start(ctx, t, harness.Options{
		ControlPlane: cp, DeployDir: o.DeployDir, Namespace: ns,
		Fleet: fleet.Options{
			Collector: o.Collector, Config: config, Replicas: o.Replicas, Dir: filepath.Join(dir, "fleet"),
			Env: map[string]string{
				"APISERVER": cp.Host, "APISERVER_CA": cp.CAFile,
				"CHECK_INTERVAL": o.CheckInterval.String(),
			},
			OnEvent: tr.add,
		},
		ReplicaEnv: func(i int, cr controlplane.Credentials) map[string]string {
			token, _ := os.ReadFile(cr.TokenFile)
			env := map[string]string{"SA_TOKEN": strings.TrimSpace(string(token))}
			if o.Pprof {
				p, _ := proc.FreePort()
				addr := fmt.Sprintf("127.0.0.1:%d", p)
				pprofMu.Lock()
				pprofAddr[i] = addr
				pprofMu.Unlock()
				env["PPROF_ENDPOINT"] = addr
			}
			return env
		},
		StopGrace: 20 * time.Second,
	})
	if err != nil {
		return res, err
	}
	leases := make([]string, o.Blocks)
	names := make([]string, o.Blocks)
	for i := range leases {
		names[i] = LeaseName(i + 1)
		leases[i] = ns + "/" + names[i]
	}
	if err := allowLeases(ctx, cp, ns, names, run.Lease.ServiceAccounts); err != nil {
		return res, err
	}
	users := map[string]string{}
	for _, r := range run.Fleet.Replicas() {
		users[r.Name] = run.Lease.User(r.Name)
	}
	reps := run.Fleet.Replicas()
	first, standbys := reps[0], reps[1:]

	for trial := range o.Trials {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		// 1. replica-1 alone, until it runs every group.
		began := time.Now()
		if err := first.Start(); err != nil {
			return res, err
		}
		pid := first.PID()
		evs, err := tr.waitUntil(ctx, o.Timeout, func(evs []timeline.Event) bool {
			return countLeases(evs, pid, timeline.GroupStarted, began) == o.Blocks
		})
		if err != nil {
			return res, fmt.Errorf("trial %d: %s runs %d of %d groups: %w", trial+1, first.Name, countLeases(evs, pid, timeline.GroupStarted, began), o.Blocks, err)
		}
		su := Startup{Cold: trial == 0}
		firstAt, lastAt := groupTimes(evs, pid, began)
		su.First, su.All = firstAt.Sub(began), lastAt.Sub(began)
		res.Startups = append(res.Startups, su)
		o.Logf("trial %d: %s runs all %d groups %.3fs after its start (first %.3fs)%s", trial+1, first.Name, o.Blocks, su.All.Seconds(), su.First.Seconds(), map[bool]string{true: ", cold: it created the Leases", false: ""}[su.Cold])

		// 2. The standbys, until each watches every Lease.
		sbBegan := time.Now()
		for _, r := range standbys {
			if err := r.Start(); err != nil {
				return res, err
			}
		}
		for _, r := range standbys {
			rpid := r.PID()
			if _, err := tr.waitUntil(ctx, o.Timeout, func(evs []timeline.Event) bool {
				return countLeases(evs, rpid, timeline.Watching, sbBegan) == o.Blocks
			}); err != nil {
				return res, fmt.Errorf("trial %d: %s watches every Lease: %w", trial+1, r.Name, err)
			}
		}

		// 3. The steady state, once.
		if trial == 0 && o.Window > 0 {
			st, err := steady(ctx, o, run, tr, users, pprofAddr, dir)
			if err != nil {
				res.Problems = append(res.Problems, err.Error())
			}
			res.Steady = st
		}

		// 4. SIGTERM replica-1, until every group runs elsewhere.
		if o.Jitter > 0 {
			time.Sleep(rand.N(o.Jitter))
		}
		sig := time.Now()
		if err := first.Signal(syscall.SIGTERM); err != nil {
			return res, err
		}
		evs, err = tr.waitUntil(ctx, o.Timeout, func(evs []timeline.Event) bool {
			h := MeasureHandover(evs, leases, pid, sig)
			return len(h.Missing) == 0 && h.Exited > 0
		})
		h := MeasureHandover(evs, leases, pid, sig)
		res.Handovers = append(res.Handovers, h)
		if err != nil {
			return res, fmt.Errorf("trial %d: handover of %d blocks (%d missing, exited %v): %w", trial+1, o.Blocks, len(h.Missing), h.Exited > 0, err)
		}
		o.Logf("trial %d: SIGTERM: all %d groups started elsewhere after %.3fs (first %.3fs; the old leader's last stop %.3fs, last release %.3fs, exit %.3fs; taken by %v)",
			trial+1, o.Blocks, h.AllStarted.Seconds(), h.FirstStarted.Seconds(), h.LastStopped.Seconds(), h.LastReleased.Seconds(), h.Exited.Seconds(), h.Takers)

		// 5. Let the new groups work (so that the audit log shows both
		// sides of every block's handover), then stop the standbys (now
		// leaders) for the next trial.
		sleep(ctx, MinTraced(o.CheckInterval)+time.Second)
		var wg sync.WaitGroup
		for _, r := range standbys {
			wg.Go(func() { _ = r.Stop(20 * time.Second) })
		}
		wg.Wait()
	}

	if err := run.Stop(); err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	spans := BlockSpans(run.Fleet.Events())
	for _, e := range LogOverlaps(spans) {
		res.LogOverlaps = append(res.LogOverlaps, e.Error())
	}
	reqs, err := run.Lease.Audit.Settle(10 * time.Second)
	if err != nil {
		res.Problems = append(res.Problems, "audit log: "+err.Error())
	}
	res.Outside = MeasureOutside(reqs, users, spans, MinTraced(o.CheckInterval), cp.APIServerExits(), time.Now())
	return res, nil
}

// MinTraced is how long a group must run to show in the audit log: the
// http_check's initial delay (1s) and two collection intervals.
func MinTraced(interval time.Duration) time.Duration { return time.Second + 2*interval }

// allowLeases extends deploy/'s Lease Role in ns to the Leases names (the
// README: a block with another lease_name needs it in resourceNames) and
// waits until the API server lets every ServiceAccount update the last.
func allowLeases(ctx context.Context, cp *controlplane.ControlPlane, ns string, names, sas []string) error {
	cs := cp.Clientset()
	roles, err := cs.RbacV1().Roles(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	changed := 0
	for _, role := range roles.Items {
		for i, rule := range role.Rules {
			if slices.Contains(rule.ResourceNames, cluster.LeaseName) {
				role.Rules[i].ResourceNames = names
				changed++
			}
		}
		if changed > 0 {
			if _, err := cs.RbacV1().Roles(ns).Update(ctx, &role, metav1.UpdateOptions{}); err != nil {
				return err
			}
			break
		}
	}
	if changed == 0 {
		return fmt.Errorf("no Role in %s names Lease %s", ns, cluster.LeaseName)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, sa := range sas {
		for {
			ok, err := cluster.Can(ctx, cs, ns, sa, "update", "coordination.k8s.io", "leases", names[len(names)-1], ns)
			if ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s may not update Lease %s: %w", sa, names[len(names)-1], err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// steady measures the steady state: Warmup, then CPU and RSS of every
// replica and the requests over Window, and profiles with Pprof.
func steady(ctx context.Context, o Options, run *harness.Run, tr *tracker, users map[string]string, pprofAddr map[int]string, dir string) (*Steady, error) {
	sleep(ctx, o.Warmup)
	reps := run.Fleet.Replicas()
	st := &Steady{Window: o.Window}
	cpu0 := make([]time.Duration, len(reps))
	for i, r := range reps {
		s, err := bench.ReadProc(r.PID())
		if err != nil {
			return nil, err
		}
		cpu0[i] = s.CPU
		role := "standby"
		if i == 0 {
			role = "leader"
		}
		st.Usage = append(st.Usage, Usage{Replica: r.Name, Role: role})
	}
	from := time.Now()
	var wg sync.WaitGroup
	if o.Pprof {
		for i := range reps[:min(2, len(reps))] {
			st.Usage[i].Profile = filepath.Join(dir, fmt.Sprintf("cpu-%s.pprof", st.Usage[i].Role))
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr[i+1], int(o.Window.Seconds()))
			wg.Go(func() { _ = fetch(ctx, url, st.Usage[i].Profile, o.Window+30*time.Second) })
		}
	}
	for range 6 {
		for i, r := range reps {
			if s, err := bench.ReadProc(r.PID()); err == nil {
				st.Usage[i].RSSSamples = append(st.Usage[i].RSSSamples, float64(s.RSSBytes)/(1<<20))
				st.Usage[i].Threads = s.Threads
			}
		}
		sleep(ctx, o.Window/6)
	}
	to := time.Now()
	for i, r := range reps {
		s, err := bench.ReadProc(r.PID())
		if err != nil {
			return nil, err
		}
		u := &st.Usage[i]
		u.CPU = s.CPU - cpu0[i]
		u.CPUPerBlockRetry = float64(u.CPU) / float64(time.Millisecond) / (float64(o.Blocks) * float64(to.Sub(from)) / float64(RetryPeriod))
		u.CPUPercent = 100 * float64(u.CPU) / float64(to.Sub(from))
		u.RSSMiB = Percentile(u.RSSSamples, 50)
		if o.Pprof && i < 2 {
			u.Heap = filepath.Join(dir, fmt.Sprintf("heap-%s.pprof", u.Role))
			_ = fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/heap", pprofAddr[i+1]), u.Heap, 10*time.Second)
		}
	}
	wg.Wait()
	for _, ev := range tr.events() {
		if ev.At.After(from) && ev.At.Before(to) && (ev.Kind == timeline.GroupStarted || ev.Kind == timeline.GroupStopped || ev.Kind == timeline.Lost) {
			return st, fmt.Errorf("steady window: %s", ev)
		}
	}
	if err := run.Lease.Audit.Poll(); err != nil {
		return st, err
	}
	st.Rates = CountRates(run.Lease.Audit.Requests(), users, audit.Interval{Start: from, End: to})
	return st, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func fetch(ctx context.Context, url, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// countLeases counts the Leases for which process pid logged kind after since.
func countLeases(evs []timeline.Event, pid int, kind timeline.Kind, since time.Time) int {
	seen := map[string]bool{}
	for _, ev := range evs {
		if ev.PID == pid && ev.Kind == kind && !ev.At.Before(since) {
			seen[ev.Lease] = true
		}
	}
	return len(seen)
}

// groupTimes are the first and last "leader group started" of pid after since.
func groupTimes(evs []timeline.Event, pid int, since time.Time) (first, last time.Time) {
	for _, ev := range evs {
		if ev.PID == pid && ev.Kind == timeline.GroupStarted && !ev.At.Before(since) {
			if first.IsZero() {
				first = ev.At
			}
			last = ev.At
		}
	}
	return first, last
}

// tracker keeps the fleet's events for waits that count them.
type tracker struct {
	mu      sync.Mutex
	evs     []timeline.Event
	changed chan struct{}
}

func newTracker() *tracker { return &tracker{changed: make(chan struct{})} }

func (t *tracker) add(ev timeline.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.evs = append(t.evs, ev)
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *tracker) events() []timeline.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.evs)
}

// waitUntil waits (at most timeout) until done is true of the events so
// far, and returns them.
func (t *tracker) waitUntil(ctx context.Context, timeout time.Duration, done func([]timeline.Event) bool) ([]timeline.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		t.mu.Lock()
		evs, changed := slices.Clone(t.evs), t.changed
		t.mu.Unlock()
		if done(evs) {
			return evs, nil
		}
		select {
		case <-ctx.Done():
			return evs, ctx.Err()
		case <-changed:
		}
	}
}

// runT is the harness's T for a command: logs to a file, cleanups at the end.
type runT struct {
	dir      string
	log      *os.File
	mu       sync.Mutex
	failed   bool
	cleanups []func()
	n        int
}

func newRunT(dir string) (*runT, error) {
	f, err := os.Create(filepath.Join(dir, "events.log"))
	return &runT{dir: dir, log: f}, err
}

func (t *runT) Helper() {}

func (t *runT) Errorf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	t.Logf("ERROR: "+format, args...)
	fmt.Fprintf(os.Stderr, "scale: "+format+"\n", args...)
}

func (t *runT) Logf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = fmt.Fprintf(t.log, format+"\n", args...)
}

func (t *runT) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *runT) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *runT) TempDir() string {
	t.mu.Lock()
	t.n++
	d := filepath.Join(t.dir, fmt.Sprintf("tmp%d", t.n))
	t.mu.Unlock()
	_ = os.MkdirAll(d, 0o755)
	return d
}

func (t *runT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	_ = t.log.Close()
}
