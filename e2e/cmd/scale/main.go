// Command scale is `make scale` and `make standby-cost` (docs/performance.md,
// "Many blocks" and "A standby's own cost"):
//
//   - many blocks: one collector configuration with N leader_receiver_creator
//     blocks, each its own Lease and one http_check sub-receiver, on three
//     replicas on a real control plane; replica-1 starts alone and takes
//     every block, then the others start as standbys; a steady window
//     (CPU, RSS, the API server's requests from its audit log); SIGTERM to
//     replica-1 until every block runs elsewhere; repeated --trials times,
//     for every N of --blocks; overlap per block from the logs and from the
//     audit log.
//
//   - --standby-cost: the same binary without our block and as a standby of
//     distribution/config.yaml's block, pairs started together and read
//     --after later, --runs times.
//
//     go run ./cmd/scale --collector ../bin/otelcol-leader --blocks 1,10,25,50
//     go run ./cmd/scale --collector ../bin/otelcol-leader --standby-cost
package main

import (
	"context"
	"encoding/json"
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

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/harness"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/scale"
)

type options struct {
	collector, deployDir, blocks string
	trials                       int
	warmup, window, interval     time.Duration
	jitter, timeout              time.Duration
	pprof, keep, standbyCost     bool
	runs                         int
	after                        time.Duration
	out, workDir, hold, auth     string
}

func main() {
	os.Exit(realMain())
}

// realMain is main without os.Exit, so that its deferred calls run; it
// returns the exit code.
func realMain() int {
	var o options
	flag.StringVar(&o.collector, "collector", "../bin/otelcol-leader", "otelcol-leader binary")
	flag.StringVar(&o.deployDir, "deploy-dir", "../deploy", "deploy/: the replicas' RBAC")
	flag.StringVar(&o.blocks, "blocks", "1,10,25,50", "block counts, each measured on a fleet of its own")
	flag.IntVar(&o.trials, "trials", 8, "trials per block count: start of replica-1 alone, then SIGTERM to it (the first on a namespace without Leases)")
	flag.DurationVar(&o.warmup, "warmup", 20*time.Second, "in the first trial, after the standbys watch every Lease, before the steady window")
	flag.DurationVar(&o.window, "window", 60*time.Second, "steady window: CPU, RSS and requests")
	flag.DurationVar(&o.interval, "check-interval", 2*time.Second, "the http_checks' collection_interval")
	flag.DurationVar(&o.jitter, "jitter", 2*time.Second, "random pause in [0, jitter) before each SIGTERM")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "bound of each wait")
	flag.BoolVar(&o.pprof, "pprof", false, "CPU profiles over the steady window and heap profiles (the pprof extension)")
	flag.BoolVar(&o.standbyCost, "standby-cost", false, "measure a standby's own cost instead")
	flag.IntVar(&o.runs, "runs", 7, "standby cost: pairs of processes")
	flag.DurationVar(&o.after, "after", 60*time.Second, "standby cost: from the start to the reading")
	flag.StringVar(&o.auth, "auth", scale.AuthServiceAccount, "standby cost: how the processes reach the API server: serviceAccount (as in a pod: token and CA at /var/run/secrets/kubernetes.io/serviceaccount in a mount namespace of their own; needs root and unshare) or kubeConfig")
	flag.StringVar(&o.hold, "hold", "", "standby cost: after the first reading, write the pair's PIDs to this file and keep them running until it is removed")
	flag.StringVar(&o.out, "out", "scale-results.json", "JSON results")
	flag.StringVar(&o.workDir, "work-dir", "", "directory for configurations, logs and profiles (default: a temporary one, removed unless --keep)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, o options) error {
	if o.standbyCost && o.runs < 5 {
		return fmt.Errorf("--runs %d: at least 5", o.runs)
	}
	if o.standbyCost && o.auth != scale.AuthServiceAccount && o.auth != scale.AuthKubeConfig {
		return fmt.Errorf("--auth %q: %s or %s", o.auth, scale.AuthServiceAccount, scale.AuthKubeConfig)
	}
	for _, p := range []*string{&o.collector, &o.deployDir, &o.out} {
		a, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = a
	}
	if o.workDir == "" {
		d, err := os.MkdirTemp("", "lrc-scale-")
		if err != nil {
			return err
		}
		o.workDir = d
		if !o.keep {
			defer func() { _ = os.RemoveAll(d) }()
		}
	}
	harness.Say("work directory %s", o.workDir)
	cpo := controlplane.Options{Progress: harness.Progress{}}
	if o.keep {
		cpo.Dir = filepath.Join(o.workDir, "controlplane") // with the audit log
	}
	cp, err := harness.StartControlPlane(ctx, cpo)
	if err != nil {
		return err
	}
	defer func() { _ = cp.Stop() }()

	if o.standbyCost {
		res, err := scale.StandbyCost(ctx, scale.StandbyOptions{ControlPlane: cp, Collector: o.collector, DeployDir: o.deployDir,
			Dir: o.workDir, Runs: o.runs, After: o.after, Pprof: o.pprof, HoldFile: o.hold, Auth: o.auth, Logf: harness.Say})
		if err != nil {
			return err
		}
		if err := writeJSON(o.out, res); err != nil {
			return err
		}
		fmt.Print(scale.StandbyReport(res))
		return nil
	}

	var counts []int
	for _, s := range strings.Split(o.blocks, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("--blocks: %q", s)
		}
		counts = append(counts, n)
	}
	slices.Sort(counts)
	var results []scale.Result
	failed := false
	for _, n := range counts {
		harness.Say("%d blocks on 3 replicas, %d trials", n, o.trials)
		res, err := scale.Run(ctx, scale.Options{ControlPlane: cp, Collector: o.collector, DeployDir: o.deployDir, Dir: o.workDir,
			Blocks: n, Trials: o.trials, Warmup: o.warmup, Window: o.window, CheckInterval: o.interval,
			Jitter: o.jitter, Timeout: o.timeout, Pprof: o.pprof, Logf: harness.Say})
		results = append(results, res)
		if err != nil {
			harness.Say("%d blocks: %v", n, err)
			failed = true
		}
		if len(res.LogOverlaps) > 0 || res.Outside.Counted() > 0 || len(res.Outside.Untraced) > 0 {
			failed = true
		}
		if err := writeJSON(o.out, results); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fmt.Print(scale.Report(results))
	harness.Say("results in %s", o.out)
	if failed {
		return fmt.Errorf("a measurement failed or found an overlap (see above)")
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
