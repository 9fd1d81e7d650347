// Command alerts is `make alerts-run`: the alert rules of deploy/alerts/
// once against a real control plane (docs/monitoring.md).
//
//	go run ./cmd/alerts --collector ../bin/otelcol-leader --prometheus ../bin/prometheus
//
// It starts kube-apiserver and etcd (package harness), three replicas of the
// collector with distribution/config.yaml and its default timings (15s /
// 10s / 2s), each as a ServiceAccount of its own with deploy/'s RBAC, and a
// Prometheus (bin/prometheus, built from hack/tools/promtool) that scrapes
// the replicas' own telemetry and evaluates
// deploy/alerts/leader-receiver-creator.rules.yaml, both every --interval.
// Then, one after another:
//
//  1. graceful handovers: SIGTERM to the leader (--handovers times), the
//     replica restarted as a standby each time;
//  2. a crash failover: SIGKILL to the leader, restarted likewise;
//  3. kube-apiserver stopped for --outage, then started again.
//
// At the end it reads from Prometheus the history of ALERTS (every
// evaluation's pending and firing alerts) and of the sum of is_leader,
// prints when each alert was pending and firing, relative to the run's
// start and to the outage, and makes the harness's final check (no two
// groups ever ran at once). It fails unless LeaderReceiverCreatorNoLeader
// fired while kube-apiserver was down, and only then, and resolved once it
// was back, and unless LeaderReceiverCreatorTwoLeaders never fired.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/harness"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

type options struct {
	collector, config, prometheus, rules, deployDir string
	workDir, markdown                               string
	keep                                            bool
	interval, outage, settle                        time.Duration
	handovers                                       int
}

func main() {
	os.Exit(realMain())
}

func realMain() int {
	var o options
	flag.StringVar(&o.collector, "collector", "../bin/otelcol-leader", "collector binary")
	flag.StringVar(&o.config, "config", "../distribution/config.yaml", "collector configuration")
	flag.StringVar(&o.prometheus, "prometheus", "../bin/prometheus", "Prometheus server binary (make alerts-run builds it from hack/tools/promtool)")
	flag.StringVar(&o.rules, "rules", "../deploy/alerts/leader-receiver-creator.rules.yaml", "alert rules file")
	flag.StringVar(&o.deployDir, "deploy-dir", "../deploy", "directory with the RBAC manifests")
	flag.StringVar(&o.workDir, "work-dir", "", "directory for logs and Prometheus' data (default: a temporary directory)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.StringVar(&o.markdown, "markdown", "", "also write the result as markdown to this file")
	flag.DurationVar(&o.interval, "interval", 5*time.Second, "Prometheus' scrape and evaluation interval")
	flag.DurationVar(&o.outage, "outage", 90*time.Second, "how long kube-apiserver is down")
	flag.DurationVar(&o.settle, "settle", 40*time.Second, "quiet time before and after each step")
	flag.IntVar(&o.handovers, "handovers", 10, "graceful handovers (SIGTERM to the leader)")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Printf("FAILED: %v", err)
		return 1
	}
	log.Printf("OK")
	return 0
}

func run(ctx context.Context, o options) (err error) {
	for _, p := range []*string{&o.collector, &o.config, &o.prometheus, &o.rules, &o.deployDir} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	if o.workDir == "" {
		if o.workDir, err = os.MkdirTemp("", "lrc-alerts-"); err != nil {
			return err
		}
		if !o.keep {
			defer func() { _ = os.RemoveAll(o.workDir) }()
		}
	}
	log.Printf("work directory %s", o.workDir)

	cp, err := harness.StartControlPlane(ctx, controlplane.Options{Progress: os.Stderr})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cp.Stop()) }()

	t := &runT{dir: o.workDir}
	defer t.cleanup()
	r, err := harness.Start(ctx, t, harness.Options{
		ControlPlane: cp,
		DeployDir:    o.deployDir,
		Namespace:    "alerts",
		Fleet: fleet.Options{
			Collector: o.collector,
			Config:    o.config,
			Replicas:  3,
			Dir:       filepath.Join(o.workDir, "fleet"),
		},
	})
	if err != nil {
		return err
	}

	var targets []string
	for _, rep := range r.Fleet.Replicas() {
		targets = append(targets, strings.TrimSuffix(strings.TrimPrefix(rep.MetricsURL, "http://"), "/metrics"))
	}
	prom, err := startPrometheus(ctx, o, targets)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, prom.stop()) }()

	if err := r.StartReplicas(ctx); err != nil {
		return err
	}
	s := &steps{o: o, r: r, cp: cp, prom: prom, t0: r.T0}
	if err := s.all(ctx); err != nil {
		return err
	}

	h, err := prom.history(ctx, r.T0, time.Now())
	if err != nil {
		return err
	}
	r.Check() // stops the fleet: no two groups at once, from logs and from outside
	res := s.result(h)
	report := res.markdown()
	fmt.Print(report)
	if o.markdown != "" {
		if err := os.WriteFile(o.markdown, []byte(report), 0o644); err != nil {
			return err
		}
	}
	problems := res.problems()
	if t.Failed() {
		problems = append(problems, "the harness's final check failed (see above)")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// steps are the run's actions on the fleet and the control plane, and
// when each happened.
type steps struct {
	o    options
	r    *harness.Run
	cp   *controlplane.ControlPlane
	prom *prometheus
	t0   time.Time

	steady          time.Time   // Prometheus sees three replicas and one leader
	handovers       []handover  // graceful (SIGTERM) and the crash (SIGKILL, last)
	down, up, ready time.Time   // kube-apiserver stopped, started again, ready
	leadsAt         time.Time   // a group runs again
	firingSeen      time.Time   // NoLeader firing, as polled during the outage
	resolvedSeen    time.Time   // NoLeader no longer firing, as polled after it
	quietUntil      []time.Time // end of each settle period
}

type handover struct {
	signal        syscall.Signal
	from, to      string
	at, startedAt time.Time // signal sent; the next group started
}

func (s *steps) rel(at time.Time) float64 { return at.Sub(s.t0).Seconds() }

func (s *steps) all(ctx context.Context) error {
	if err := s.waitSteady(ctx); err != nil {
		return err
	}
	s.hold(ctx, s.o.settle)
	for range s.o.handovers {
		if err := s.handover(ctx, syscall.SIGTERM); err != nil {
			return err
		}
		s.hold(ctx, 15*time.Second)
	}
	if err := s.handover(ctx, syscall.SIGKILL); err != nil {
		return err
	}
	s.hold(ctx, s.o.settle)
	if err := s.outage(ctx); err != nil {
		return err
	}
	s.hold(ctx, s.o.settle)
	return ctx.Err()
}

// waitSteady waits until Prometheus has scraped the three replicas and
// sees one leader.
func (s *steps) waitSteady(ctx context.Context) error {
	if _, err := s.r.Fleet.WaitForLeader(within(ctx, 2*time.Minute)); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		up, err1 := s.prom.scalar(ctx, `count(up == 1)`)
		leaders, err2 := s.prom.scalar(ctx, `sum(otelcol_leader_election_is_leader)`)
		if err1 == nil && err2 == nil && up == 3 && leaders == 1 {
			s.steady = time.Now()
			log.Printf("%7.1fs steady: Prometheus scrapes 3 replicas, one leads", s.rel(s.steady))
			return nil
		}
		sleep(ctx, time.Second)
	}
	return errors.New("prometheus never saw three replicas with one leader")
}

// handover signals the leader, waits until another replica's group
// started, then restarts the signalled replica and waits until it
// campaigns.
func (s *steps) handover(ctx context.Context, sig syscall.Signal) error {
	leader, err := s.r.Fleet.WaitForLeader(within(ctx, time.Minute))
	if err != nil {
		return err
	}
	h := handover{signal: sig, from: leader.Name, at: time.Now()}
	if err := leader.Signal(sig); err != nil {
		return err
	}
	ev, err := s.r.Fleet.WaitFor(within(ctx, time.Minute), func(ev timeline.Event) bool {
		return ev.Kind == timeline.GroupStarted && ev.Replica != leader.Name && ev.At.After(h.at)
	})
	if err != nil {
		return fmt.Errorf("after %s to %s: %w", signalName(sig), leader.Name, err)
	}
	h.to, h.startedAt = ev.Replica, ev.At
	s.handovers = append(s.handovers, h)
	log.Printf("%7.1fs %s to %s; %s leads %.3fs later", s.rel(h.at), signalName(sig), h.from, h.to, h.startedAt.Sub(h.at).Seconds())
	select {
	case <-leader.Done():
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s did not exit after %s", leader.Name, signalName(sig))
	}
	restarted := time.Now()
	if err := leader.Start(); err != nil {
		return err
	}
	_, err = s.r.Fleet.WaitFor(within(ctx, time.Minute), func(ev timeline.Event) bool {
		return ev.Replica == leader.Name && ev.Kind == timeline.Campaigning && ev.At.After(restarted)
	})
	return err
}

// outage stops kube-apiserver for o.outage, watching the NoLeader alert,
// then starts it again and waits until a group runs and the alert is no
// longer firing.
func (s *steps) outage(ctx context.Context) error {
	s.down = time.Now()
	if err := s.cp.StopAPIServer(); err != nil {
		return err
	}
	log.Printf("%7.1fs kube-apiserver stopped", s.rel(s.down))
	for time.Since(s.down) < s.o.outage && ctx.Err() == nil {
		if s.firingSeen.IsZero() && s.prom.firing(ctx, noLeader) {
			s.firingSeen = time.Now()
			log.Printf("%7.1fs %s firing (%.1fs after kube-apiserver stopped)", s.rel(s.firingSeen), noLeader, s.firingSeen.Sub(s.down).Seconds())
		}
		sleep(ctx, 500*time.Millisecond)
	}
	s.up = time.Now()
	if err := s.cp.StartAPIServer(within(ctx, 2*time.Minute)); err != nil {
		return err
	}
	s.ready = time.Now()
	log.Printf("%7.1fs kube-apiserver started again, ready %.1fs later", s.rel(s.up), s.ready.Sub(s.up).Seconds())
	ev, err := s.r.Fleet.WaitFor(within(ctx, 2*time.Minute), func(ev timeline.Event) bool {
		return ev.Kind == timeline.GroupStarted && ev.At.After(s.up)
	})
	if err != nil {
		return fmt.Errorf("no group started after kube-apiserver came back: %w", err)
	}
	s.leadsAt = ev.At
	log.Printf("%7.1fs %s leads again", s.rel(s.leadsAt), ev.Replica)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if !s.prom.firing(ctx, noLeader) {
			s.resolvedSeen = time.Now()
			log.Printf("%7.1fs %s no longer firing (%.1fs after kube-apiserver started)", s.rel(s.resolvedSeen), noLeader, s.resolvedSeen.Sub(s.up).Seconds())
			return nil
		}
		sleep(ctx, 500*time.Millisecond)
	}
	return fmt.Errorf("%s still firing 2 minutes after kube-apiserver came back", noLeader)
}

func signalName(sig syscall.Signal) string {
	if sig == syscall.SIGKILL {
		return "SIGKILL"
	}
	return "SIGTERM"
}

func (s *steps) hold(ctx context.Context, d time.Duration) {
	sleep(ctx, d)
	s.quietUntil = append(s.quietUntil, time.Now())
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// within is ctx with a timeout; its cancel runs when the timeout expires.
func within(ctx context.Context, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	context.AfterFunc(c, cancel)
	return c
}

// runT is what harness.Run needs of a test, for a command: messages go to
// the log, cleanups run at the end.
type runT struct {
	dir      string
	mu       sync.Mutex
	failed   bool
	cleanups []func()
}

func (t *runT) Helper() {}

func (t *runT) Errorf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	log.Printf("ERROR: "+format, args...)
}

func (t *runT) Logf(format string, args ...any) { log.Printf(format, args...) }

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
	d, err := os.MkdirTemp(t.dir, "tmp-")
	if err != nil {
		t.Errorf("%v", err)
	}
	return d
}

func (t *runT) cleanup() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
