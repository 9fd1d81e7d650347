// Command lossless is `make lossless`: it measures, per handover of the
// Lease, the Kubernetes Events lost (created, exported by nobody) and
// duplicated (exported more than once) by k8s_objects (watch mode) and
// k8s_events, for several configurations side by side on one local control
// plane (package lossless; docs/performance.md):
//
//	storage     ours, with the block's checkpoint storage (the Lease)
//	no-storage  ours, without it
//	peer        otelcol-peer: contrib's k8s_leader_elector gating both
//	            receivers, each checkpointing in file_storage kept across
//	            the replica's restarts
//
// One generator creates Events (unique names) at --rate in one namespace
// that every configuration watches; each configuration's fleet exports
// synchronously to an OTLP receiver of its own in this process, which
// counts every export per Event name. The fleets run at the same time,
// each through --sigterm handovers (SIGTERM to the leader), then --sigkill
// failovers (SIGKILL), each signal after the fleet is ready plus --settle
// and a random pause below --jitter; the signalled replica restarts with
// its directory. Then the generator stops, the sinks drain, and every
// Event is attributed to the handover nearest to its creation.
//
//	go run ./cmd/lossless --collector ../bin/otelcol-leader --peer ../bin/otelcol-peer
//	go run ./cmd/lossless ... --configs no-storage,peer --sigterm 2 --sigkill 1   # a smoke run
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/bench"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/harness"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/lossless"
)

type options struct {
	collector, peer, configs, deployDir string
	replicas, sigterm, sigkill          int
	rate                                float64
	timings                             lossless.Timings
	settle, settleKill, jitter          time.Duration
	tail, trialTimeout                  time.Duration
	out, markdown, workDir, exports     string
	keep                                bool
}

func main() { os.Exit(realMain()) }

func realMain() int {
	var o options
	flag.StringVar(&o.collector, "collector", "../bin/otelcol-leader", "otelcol-leader binary (ours)")
	flag.StringVar(&o.peer, "peer", "../bin/otelcol-peer", "otelcol-peer binary (hack/build-peer.sh)")
	flag.StringVar(&o.configs, "configs", "storage,no-storage,peer", "configurations, comma-separated: storage, no-storage, peer")
	flag.StringVar(&o.deployDir, "deploy-dir", "../deploy", "deploy/'s RBAC manifests, applied for every replica")
	flag.IntVar(&o.replicas, "replicas", 3, "replicas per configuration")
	flag.IntVar(&o.sigterm, "sigterm", 10, "graceful handovers (SIGTERM to the leader) per configuration")
	flag.IntVar(&o.sigkill, "sigkill", 5, "crash failovers (SIGKILL to the leader) per configuration, after the SIGTERM ones")
	flag.Float64Var(&o.rate, "rate", 10, "Events created per second")
	flag.DurationVar(&o.timings.LeaseDuration, "lease-duration", 15*time.Second, "lease_duration of every configuration")
	flag.DurationVar(&o.timings.RenewDeadline, "renew-deadline", 10*time.Second, "renew_deadline of every configuration")
	flag.DurationVar(&o.timings.RetryPeriod, "retry-period", 2*time.Second, "retry_period of every configuration")
	flag.DurationVar(&o.settle, "settle", 6*time.Second, "after a fleet is ready again, wait this long before the next signal")
	flag.DurationVar(&o.settleKill, "settle-kill", 15*time.Second, "the same before a SIGKILL: longer than twice what a crashed leader's successor sends again (k8s_objects checkpoints every 5s, the Lease carries it every retry_period), so that those Events fall in the SIGKILL's window, not the previous one's")
	flag.DurationVar(&o.jitter, "jitter", 2*time.Second, "plus a random pause in [0, jitter), so that signals fall at random points of the renew cycle")
	flag.DurationVar(&o.tail, "tail", 10*time.Second, "the generator runs this long after the last handover of every configuration; a configuration's last window ends this long after its own last handover")
	flag.DurationVar(&o.trialTimeout, "trial-timeout", 2*time.Minute, "bound of each wait")
	flag.StringVar(&o.out, "out", "lossless-results.json", "JSON results file (every handover window)")
	flag.StringVar(&o.exports, "exports", "", "also write every Event created and every export the sinks counted (replica, time, watch type) to this JSON file")
	flag.StringVar(&o.markdown, "markdown", "", "also write the table in Markdown to this file")
	flag.StringVar(&o.workDir, "work-dir", "", "directory for the replicas' logs and file_storage (default: a temporary directory, removed unless --keep or an error)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "lossless:", err)
		return 1
	}
	return 0
}

// eventsNamespace is where the generator creates its Events; every
// configuration watches it.
const eventsNamespace = "lossless-events"

func run(ctx context.Context, o options) (err error) {
	for _, p := range []*string{&o.collector, &o.peer, &o.deployDir, &o.out} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	var cfgs []lossless.Config
	var short []string
	for _, name := range strings.Split(o.configs, ",") {
		name = strings.TrimSpace(name)
		c, ok := lossless.Configs[name]
		if !ok {
			return fmt.Errorf("--configs: unknown %q (storage, no-storage, peer)", name)
		}
		cfgs, short = append(cfgs, c), append(short, name)
	}
	workDir := o.workDir
	if workDir == "" {
		if workDir, err = os.MkdirTemp("", "otelcol-lossless-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}
	// Copies of the binaries: a `make distribution` elsewhere must not swap
	// one in the middle of the run.
	binaries := map[bool]string{}
	for _, b := range []struct {
		peer bool
		path string
	}{{false, o.collector}, {true, o.peer}} {
		need := false
		for _, c := range cfgs {
			need = need || c.Peer == b.peer
		}
		if !need {
			continue
		}
		snap, err := bench.Snapshot(filepath.Base(b.path), b.path, filepath.Join(workDir, "bin"))
		if err != nil {
			return err
		}
		binaries[b.peer] = snap.Copy
		harness.Say("%s (sha256 %.12s, built %s), running a copy", b.path, snap.SHA256, snap.Modified.Format(time.DateTime))
	}

	report := &lossless.Report{Started: time.Now(), Settings: lossless.Settings{
		Configs: short, Replicas: o.replicas, SIGTERM: o.sigterm, SIGKILL: o.sigkill, Rate: o.rate,
		Timings: fmt.Sprintf("lease_duration %s, renew_deadline %s, retry_period %s", o.timings.LeaseDuration, o.timings.RenewDeadline, o.timings.RetryPeriod),
		Settle:  fmt.Sprintf("%s before a SIGTERM, %s before a SIGKILL", o.settle, o.settleKill), Jitter: o.jitter.String(), Collector: o.collector, Peer: o.peer,
		Source:      bench.GitDescribe(filepath.Dir(o.collector)),
		Concurrency: "the configurations' fleets run at the same time against one control plane and one generator",
	}}
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
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: eventsNamespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}

	// Each configuration: a namespace with deploy/'s RBAC for its Lease and
	// a ServiceAccount per replica, then its fleet.
	fleets := make([]*lossless.Fleet, len(cfgs))
	defer func() {
		for _, f := range fleets {
			if f != nil {
				_ = f.Stop(20 * time.Second)
			}
		}
	}()
	for i, c := range cfgs {
		ns, lease := "lossless-"+short[i], cluster.LeaseName
		if c.Peer {
			lease = "otel-peer"
		}
		sas := make([]string, o.replicas)
		for k := range sas {
			sas[k] = fleet.ReplicaName(k + 1)
		}
		if _, err := harness.NewLease(ctx, cp, harness.LeaseOptions{DeployDir: o.deployDir, Namespace: ns, Name: lease, ServiceAccounts: sas}); err != nil {
			return fmt.Errorf("%s: RBAC: %w", c.Name, err)
		}
		var kcs []string
		for _, sa := range sas {
			kc, err := cp.ServiceAccountKubeconfig(ctx, ns, sa, "")
			if err != nil {
				return err
			}
			kcs = append(kcs, kc)
		}
		fleets[i], err = lossless.StartFleet(c, lossless.FleetOptions{
			Collector: binaries[c.Peer], Dir: filepath.Join(workDir, short[i]), Namespace: ns,
			Kubeconfigs: kcs, Replicas: o.replicas, Env: lossless.Env(o.timings, lease, eventsNamespace),
		})
		if err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	for _, f := range fleets {
		rctx, cancel := context.WithTimeout(ctx, o.trialTimeout)
		leader, err := f.Ready(rctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: first leader: %w", f.Config.Name, err)
		}
		harness.Say("[%s] %d replicas up, %s leads", f.Config.Name, o.replicas, leader)
	}

	gen, err := lossless.NewGenerator(cp.RESTConfig(), eventsNamespace, lossless.EventPrefix, o.rate)
	if err != nil {
		return err
	}
	gen.Start(ctx)
	harness.Say("generator: %.1f Events/s in %s", o.rate, eventsNamespace)
	defer gen.Stop()
	// Count only the Events created once every configuration's receivers
	// have exported one: their first watches were open.
	watching := make([]time.Time, len(fleets))
	for i, f := range fleets {
		if watching[i], err = waitWatching(ctx, f.Sink, time.Minute); err != nil {
			return fmt.Errorf("%s: %w", f.Config.Name, err)
		}
		harness.Say("[%s] both receivers export; counting the Events created from now on", f.Config.Name)
	}

	errs := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	// A configuration's last window ends --tail after its last handover
	// (or the generator's stop, if earlier): the others may take longer.
	finished := make([]time.Time, len(fleets))
	for i, f := range fleets {
		wg.Go(func() {
			defer func() { finished[i] = time.Now() }()
			for _, step := range []struct {
				sig    syscall.Signal
				n      int
				settle time.Duration
			}{{syscall.SIGTERM, o.sigterm, o.settle}, {syscall.SIGKILL, o.sigkill, o.settleKill}} {
				for i := 1; i <= step.n; i++ {
					h, err := f.Handover(ctx, lossless.Trial{Signal: step.sig, Settle: step.settle, Jitter: o.jitter, Timeout: o.trialTimeout})
					if err != nil {
						harness.Say("[%s] ERROR: %v", f.Config.Name, err)
						mu.Lock()
						errs[f.Config.Name] = err.Error()
						mu.Unlock()
						return
					}
					harness.Say("[%s] %s %d/%d: %s -> %s, group up after %.2fs", f.Config.Name, h.Signal, i, step.n, h.Leader, h.Next, h.Gap().Seconds())
				}
			}
		})
	}
	wg.Wait()
	harness.Say("every configuration is done; the generator runs %s more", o.tail)
	select {
	case <-ctx.Done():
	case <-time.After(o.tail):
	}
	gen.Stop()
	from, to := gen.Span()
	created := gen.Created()
	harness.Say("generator stopped: %d Events in %.0fs, %d Creates failed; draining the sinks", len(created), to.Sub(from).Seconds(), len(gen.Errors()))
	drain(ctx, fleets)

	report.Created = len(created)
	report.Rate = float64(len(created)) / to.Sub(from).Seconds()
	report.CreateErrors = gen.Errors()
	if len(errs) > 0 {
		report.Errors = errs
	}
	if o.exports != "" {
		all := map[string]any{"created": created}
		for _, f := range fleets {
			all[f.Config.Name] = map[string]any{"handovers": f.Handovers(),
				lossless.K8sObjects: f.Sink.Exports(lossless.K8sObjects), lossless.K8sEvents: f.Sink.Exports(lossless.K8sEvents)}
		}
		data, err := json.Marshal(all)
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.exports, data, 0o644); err != nil {
			return err
		}
	}
	for i, f := range fleets {
		end := to
		if t := finished[i].Add(o.tail); t.Before(end) {
			end = t
		}
		report.Tabulate(f, created, watching[i], end, o.timings.RetryPeriod)
		if err := f.Stop(20 * time.Second); err != nil {
			harness.Say("[%s] stopping: %v", f.Config.Name, err)
		}
		fleets[i] = nil
	}
	report.Finished = time.Now()
	if err := report.WriteJSON(o.out); err != nil {
		return err
	}
	fmt.Println()
	_ = report.PerHandover(os.Stdout)
	fmt.Println()
	_ = report.Markdown(os.Stdout)
	if o.markdown != "" {
		f, err := os.Create(o.markdown)
		if err != nil {
			return err
		}
		if err := errors.Join(report.Markdown(f), f.Close()); err != nil {
			return err
		}
	}
	harness.Say("results: %s", o.out)

	var problems []string
	for c, e := range errs {
		problems = append(problems, c+": "+e)
	}
	if ctx.Err() != nil {
		problems = append(problems, "interrupted")
	}
	if len(problems) > 0 || o.keep || o.workDir != "" {
		harness.Say("logs kept in %s", workDir)
	} else {
		defer func() { _ = os.RemoveAll(workDir) }()
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// drain waits until no sink has counted an export for 3s (30s at most):
// the exports of the last Events have arrived.
func drain(ctx context.Context, fleets []*lossless.Fleet) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		quiet := true
		for _, f := range fleets {
			if time.Since(f.Sink.Last()) < 3*time.Second {
				quiet = false
			}
		}
		if quiet {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitWatching waits until both receivers have exported an Event to sink
// (Sink.Watching).
func waitWatching(ctx context.Context, sink *lossless.Sink, d time.Duration) (time.Time, error) {
	deadline := time.Now().Add(d)
	for {
		if at, ok := sink.Watching(lossless.K8sObjects, lossless.K8sEvents); ok {
			return at, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("its receivers did not both export an Event within %s", d)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
