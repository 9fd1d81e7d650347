// Command bench is `make bench`: it measures leadership handovers of
// otelcol-leader (leader_receiver_creator) and of the peer, otelcol-peer
// (contrib's k8s_leader_elector gating k8s_cluster and k8s_events), on one
// local control plane with the same kill procedure, and prints a table of
// min / median / p95 / max per figure and the ratio ours / peer; the raw
// trials go to bench-results.json. See docs/performance.md.
//
//	go run ./cmd/bench --collector ../bin/otelcol-leader --peer ../bin/otelcol-peer
//	go run ./cmd/bench ... --quick          # a smoke run: few trials, fewer replica counts
//
// For each configuration (distribution × replica count) a fleet is started
// once; each trial waits until every replica is healthy and exactly one
// runs the group, signals the leader (SIGTERM: P1; SIGKILL: P2, P6), takes
// the time until another replica's whole group has started, then restarts
// the killed replica as a standby and waits until it is healthy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/bench"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/harness"
)

type options struct {
	collector, config           string
	peer, peerConfig            string
	impls                       string
	replicas                    int
	gracefulTrials, crashTrials int
	crashReplicaCounts          string
	crashTrialsPerCount         int
	resourceWarmup              time.Duration
	steadyWindow                time.Duration
	resourceSamples             int
	jitter                      time.Duration
	trialTimeout                time.Duration
	eventEvery                  time.Duration
	deployDir                   string
	out, markdown, workDir      string
	keep, quick                 bool
}

func main() {
	os.Exit(realMain())
}

// realMain is main without os.Exit, so that its deferred calls run; it
// returns the exit code.
func realMain() int {
	var o options
	flag.StringVar(&o.collector, "collector", "../bin/otelcol-leader", "otelcol-leader binary (ours)")
	flag.StringVar(&o.config, "config", "../distribution/config.yaml", "configuration of ours")
	flag.StringVar(&o.peer, "peer", "", "otelcol-peer binary (hack/build-peer.sh); empty: measure ours only")
	flag.StringVar(&o.peerConfig, "peer-config", "peer/config.yaml", "configuration of the peer")
	flag.StringVar(&o.impls, "impls", "ours,peer", "which distributions to measure, in this order per configuration")
	flag.IntVar(&o.replicas, "replicas", 3, "replicas for the graceful handovers, crash failovers and resource samples (P1, P2, P5)")
	flag.IntVar(&o.gracefulTrials, "p1-trials", 20, "graceful handovers (SIGTERM to the leader) per distribution, at --replicas (P1)")
	flag.IntVar(&o.crashTrials, "p2-trials", 10, "crash failovers (SIGKILL to the leader) per distribution, at --replicas (P2)")
	flag.StringVar(&o.crashReplicaCounts, "p6-replicas", "2,5,10", "other replica counts at which to repeat the crash failover (comma-separated; empty: none) (P6)")
	flag.IntVar(&o.crashTrialsPerCount, "p6-trials", 10, "crash failovers per distribution at each of --p6-replicas (P6)")
	flag.DurationVar(&o.resourceWarmup, "p5-warmup", 30*time.Second, "time after the fleet has a leader before sampling the replicas' RSS, threads, goroutines, heap and CPU (P5)")
	flag.IntVar(&o.resourceSamples, "p5-samples", 10, "resource samples of every replica, 2s apart (P5)")
	flag.DurationVar(&o.steadyWindow, "p4-window", 30*time.Second, "window without kills, after P5, over which each replica's Lease requests are counted from the audit log (P4; 0: none)")
	flag.DurationVar(&o.jitter, "jitter", 2*time.Second, "random pause in [0, jitter) before each kill, so kills fall at random points of the 2s renew cycle")
	flag.DurationVar(&o.trialTimeout, "trial-timeout", 2*time.Minute, "bound of each wait in a trial")
	flag.StringVar(&o.deployDir, "deploy-dir", "../deploy", "directory with deploy/'s RBAC manifests, applied for every replica of both distributions")
	flag.DurationVar(&o.eventEvery, "event-every", 5*time.Second, "interval of the demo Kubernetes Events (k8s_events has something to watch)")
	flag.StringVar(&o.out, "out", "bench-results.json", "JSON results file")
	flag.StringVar(&o.markdown, "markdown", "", "also write the tables in Markdown to this file")
	flag.StringVar(&o.workDir, "work-dir", "", "directory for the replicas' logs (default: a temporary directory, removed unless --keep or an error)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.BoolVar(&o.quick, "quick", false, "smoke run: 3 graceful handovers, 2 crash failovers, crash failovers at 2 replicas 2 times, resources sampled 3 times after 10s (explicit flags still win)")
	flag.Parse()

	if o.quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("p1-trials", func() { o.gracefulTrials = 3 })
		def("p2-trials", func() { o.crashTrials = 2 })
		def("p6-replicas", func() { o.crashReplicaCounts = "2" })
		def("p6-trials", func() { o.crashTrialsPerCount = 2 })
		def("p5-warmup", func() { o.resourceWarmup = 10 * time.Second })
		def("p5-samples", func() { o.resourceSamples = 3 })
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

// retryPeriod is the retry_period of both configurations (the Timings of
// the report): P4's unit.
const retryPeriod = 2 * time.Second

// steadyWindow is P4's window in the configuration that samples resources
// (at --replicas), none in the others.
func steadyWindow(main bool, d time.Duration) time.Duration {
	if !main {
		return 0
	}
	return d
}

func run(ctx context.Context, o options) (err error) {
	abs := func(p *string) error {
		if *p == "" {
			return nil
		}
		a, err := filepath.Abs(*p)
		*p = a
		return err
	}
	for _, p := range []*string{&o.collector, &o.config, &o.peer, &o.peerConfig, &o.out} {
		if err := abs(p); err != nil {
			return err
		}
	}
	var crashCounts []int
	for _, s := range strings.Split(o.crashReplicaCounts, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			return fmt.Errorf("--p6-replicas: %q is not a replica count ≥ 2", s)
		}
		if n != o.replicas && !slices.Contains(crashCounts, n) {
			crashCounts = append(crashCounts, n)
		}
	}
	if o.replicas < 2 {
		return errors.New("--replicas must be at least 2")
	}
	impls := map[string]bench.Impl{}
	var order []string
	for _, name := range strings.Split(o.impls, ",") {
		switch name = strings.TrimSpace(name); name {
		case "ours":
			impls[name] = bench.Impl{Name: "ours", Dialect: bench.Ours, Collector: o.collector, Config: o.config,
				Namespace: cluster.Namespace, LeaseName: cluster.LeaseName}
		case "peer":
			if o.peer == "" {
				harness.Say("no --peer binary given: measuring ours only (build it with hack/build-peer.sh)")
				continue
			}
			impls[name] = bench.Impl{Name: "peer", Dialect: bench.Peer, Collector: o.peer, Config: o.peerConfig,
				Namespace: "otel-peer", LeaseName: "otel-peer"}
		case "":
			continue
		default:
			return fmt.Errorf("--impls: unknown %q (ours, peer)", name)
		}
		order = append(order, name)
	}
	if len(order) == 0 {
		return errors.New("nothing to measure")
	}
	for _, name := range order {
		im := impls[name]
		for _, p := range []string{im.Collector, im.Config} {
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}

	workDir := o.workDir
	if workDir == "" {
		if workDir, err = os.MkdirTemp("", "otelcol-bench-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}

	// Run copies of the binaries: `make distribution` elsewhere must not
	// swap a binary in the middle of the run.
	var binaries []bench.Binary
	for _, name := range order {
		im := impls[name]
		b, err := bench.Snapshot(name, im.Collector, filepath.Join(workDir, "bin"))
		if err != nil {
			return err
		}
		im.Collector = b.Copy
		impls[name] = im
		binaries = append(binaries, b)
		harness.Say("%s: %s (sha256 %.12s, built %s), running a copy", name, b.Path, b.SHA256, b.Modified.Format(time.DateTime))
	}

	report := &bench.Report{Started: time.Now(), Machine: bench.DescribeMachine(), Settings: bench.Settings{
		Quick: o.quick, Impls: order, Collector: o.collector, Peer: o.peer,
		Timings:  "lease_duration 15s, renew_deadline 10s, retry_period 2s (defaults of both configurations)",
		Replicas: o.replicas, GracefulTrials: o.gracefulTrials, CrashTrials: o.crashTrials, CrashReplicaCounts: crashCounts, CrashTrialsPerCount: o.crashTrialsPerCount,
		ResourceWarmup: o.resourceWarmup.String(), ResourceSamples: o.resourceSamples, Jitter: o.jitter.String(),
		Binaries: binaries, Source: bench.GitDescribe(filepath.Dir(o.config)),
		Workload: fmt.Sprintf("local etcd + kube-apiserver (no controller manager); namespace demo with %d Deployments, a Ready Node and Running Pods; a demo Event every %s", len(cluster.DemoDeployments), o.eventEvery),
	}}
	// A rough estimate: per trial the gap (graceful: ~1.5s ours, ~16s
	// peer; crash: ~16s) + restart (~0.1s) + jitter (~1s).
	est := 0.0
	for _, name := range order {
		gracefulSeconds := 3.0
		if name == "peer" {
			gracefulSeconds = 17
		}
		est += float64(o.gracefulTrials)*gracefulSeconds + float64(o.crashTrials+len(crashCounts)*o.crashTrialsPerCount)*18 +
			o.resourceWarmup.Seconds() + 2*float64(o.resourceSamples) + o.steadyWindow.Seconds() + float64(len(crashCounts)+1)*5
	}
	harness.Say("machine: %d CPUs (%s), %d MiB; load average %s", report.Machine.CPUs, report.Machine.CPUModel, report.Machine.MemoryMiB, report.Machine.LoadStart)
	harness.Say("plan: %v; N=%d: P5, P4, P1 %d × SIGTERM, P2 %d × SIGKILL; P6 at N=%v: %d × SIGKILL each; roughly %.0f minutes",
		order, o.replicas, o.gracefulTrials, o.crashTrials, crashCounts, o.crashTrialsPerCount, est/60)
	harness.Say("work directory %s", workDir)

	cp, err := harness.StartControlPlane(ctx, controlplane.Options{Progress: harness.Progress{}})
	if err != nil {
		return err
	}
	defer func() {
		if serr := cp.Stop(); serr != nil {
			harness.Say("stopping the control plane: %v", serr)
		}
	}()
	cs := cp.Clientset()
	harness.Say("control plane %s", cp.Host)
	ectx, cancelEvents := context.WithCancel(ctx)
	defer cancelEvents()
	go cluster.EmitEvents(ectx, cs, harness.DemoNamespace, o.eventEvery, nil, nil)
	// Each replica its own ServiceAccount (the same permissions), for both
	// distributions: the audit log tells the replicas' requests apart (P3
	// from outside).
	maxReplicas := slices.Max(append([]int{o.replicas}, crashCounts...))
	for _, name := range order {
		im := impls[name]
		sas := make([]string, maxReplicas)
		for i := range sas {
			sas[i] = fleet.ReplicaName(i + 1)
		}
		// deploy/'s RBAC, moved to this distribution's namespace and Lease.
		if _, err := harness.NewLease(ctx, cp, harness.LeaseOptions{DeployDir: o.deployDir,
			Namespace: im.Namespace, Name: im.LeaseName, ServiceAccounts: sas}); err != nil {
			return fmt.Errorf("RBAC for %s: %w", name, err)
		}
		for _, sa := range sas {
			kc, err := cp.ServiceAccountKubeconfig(ctx, im.Namespace, sa, "")
			if err != nil {
				return err
			}
			im.Kubeconfigs = append(im.Kubeconfigs, kc)
		}
		impls[name] = im
	}

	type cfg struct {
		n, graceful, crash int
		resources          bool
	}
	cfgs := []cfg{{o.replicas, o.gracefulTrials, o.crashTrials, true}}
	for _, n := range crashCounts {
		cfgs = append(cfgs, cfg{n, 0, o.crashTrialsPerCount, false})
	}
	write := func() error {
		report.Finished = time.Now()
		report.Machine.LoadEnd = bench.LoadAvg()
		report.Build()
		if err := report.WriteJSON(o.out); err != nil {
			return err
		}
		if o.markdown != "" {
			f, err := os.Create(o.markdown)
			if err != nil {
				return err
			}
			if err := report.Markdown(f); err != nil {
				_ = f.Close()
				return err
			}
			return f.Close()
		}
		return nil
	}
	for _, c := range cfgs {
		if c.graceful+c.crash == 0 && !c.resources {
			continue
		}
		for _, name := range order {
			if ctx.Err() != nil {
				break
			}
			res := bench.RunConfig(ctx, cs, impls[name], bench.Plan{
				Replicas: c.n, GracefulTrials: c.graceful, CrashTrials: c.crash,
				SampleResources: c.resources, ResourceWarmup: o.resourceWarmup, ResourceSamples: o.resourceSamples, ResourceEvery: 2 * time.Second,
				SteadyWindow: steadyWindow(c.resources, o.steadyWindow), RetryPeriod: retryPeriod,
				Jitter: o.jitter, TrialTimeout: o.trialTimeout,
				Dir:      bench.FleetDir(workDir, name, c.n),
				AuditLog: cp.AuditLog,
				Logf:     harness.Say,
			})
			harness.Say("[%s N=%d] done in %.0fs: overlap %.3fs in %d episodes; load average %s", name, c.n, res.WallSeconds, res.Overlap.Seconds, res.Overlap.Episodes, res.LoadEnd)
			if a := res.AuditOverlap; a != nil {
				harness.Say("[%s N=%d] from outside (audit log): overlap %.3fs in %d episodes; %s", name, c.n, a.Seconds, a.Episodes, a.OutsideKinds())
			}
			report.Configs = append(report.Configs, res)
			if err := write(); err != nil { // partial results survive an interrupt
				return err
			}
		}
	}
	cancelEvents()
	if err := write(); err != nil {
		return err
	}
	fmt.Println()
	tableErr := report.PrintTable(os.Stdout)
	fmt.Println()
	harness.Say("results: %s", o.out)
	if o.markdown != "" {
		harness.Say("markdown: %s", o.markdown)
	}

	var problems []string
	problems = append(problems, report.Errors...)
	if report.Overlap.Ours != nil && report.Overlap.Ours.Seconds > 0 {
		problems = append(problems, fmt.Sprintf("ours: two groups ran at once for %.3fs (must be 0)", report.Overlap.Ours.Seconds))
	}
	if a := report.Overlap.AuditOurs; a != nil && (a.Seconds > 0 || len(a.ByKind) > 0) {
		problems = append(problems, fmt.Sprintf("ours, from the audit log: two groups active at once for %.3fs; %s (must be none)", a.Seconds, a.OutsideKinds()))
	}
	if ctx.Err() != nil {
		problems = append(problems, "interrupted")
	}
	if tableErr != nil {
		problems = append(problems, fmt.Sprintf("printing the table: %v", tableErr))
	}
	if len(problems) > 0 || o.keep || o.workDir != "" {
		harness.Say("logs kept in %s", workDir)
	} else {
		_ = os.RemoveAll(workDir)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
