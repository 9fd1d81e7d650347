// Command run is `make run`: it runs three replicas of the collector against
// the cluster of $KUBECONFIG (when set and reachable) or a local control
// plane it builds and starts, and shows live which replica leads and that
// only the leader exports data. Ctrl-C stops everything it started.
//
//	go run ./cmd/run --collector ../bin/otelcol-leader --config ../distribution/config.yaml
//	go run ./cmd/run ... --duration 60s --kill-leader-after 20s   # non-interactive; exits 1 if a check fails
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type options struct {
	collector, config string
	replicas          int
	namespace         string
	deployDir         string
	workDir           string
	keep              bool
	controllerManager bool
	seed              string
	duration          time.Duration
	killLeaderAfter   time.Duration
	killSignal        string
	restartAfter      time.Duration
	statusEvery       time.Duration
	eventEvery        time.Duration
	sets              listFlag
	envs              listFlag
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	os.Exit(realMain())
}

// realMain is main without os.Exit, so that its deferred calls run; it
// returns the exit code.
func realMain() int {
	var o options
	flag.StringVar(&o.collector, "collector", "../bin/otelcol-leader", "collector binary")
	flag.StringVar(&o.config, "config", "../distribution/config.yaml", "collector configuration")
	flag.IntVar(&o.replicas, "replicas", 3, "number of collector replicas")
	flag.StringVar(&o.namespace, "namespace", "otel-leader", "namespace of the collectors' ServiceAccount and Lease (POD_NAMESPACE)")
	flag.StringVar(&o.deployDir, "deploy-dir", "", "directory with the RBAC manifests (default: deploy/ beside the config's directory)")
	flag.StringVar(&o.workDir, "work-dir", "", "directory for the replicas' logs and output (default: a temporary directory)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary work directory (logs, output) on exit")
	flag.BoolVar(&o.controllerManager, "controller-manager", true, "local control plane: also run kube-controller-manager (Deployments get Pods, real Events; built on first use)")
	flag.StringVar(&o.seed, "seed", "auto", "create demo workloads and Events in namespace demo: auto (only on the local control plane), true, false")
	flag.DurationVar(&o.duration, "duration", 0, "stop after this long (0: run until Ctrl-C)")
	flag.DurationVar(&o.killLeaderAfter, "kill-leader-after", 0, "send --kill-signal to the leader this long after start (0: never)")
	flag.StringVar(&o.killSignal, "kill-signal", "TERM", "signal for --kill-leader-after: TERM (graceful, Lease released) or KILL (crash, Lease expires)")
	flag.DurationVar(&o.restartAfter, "restart-after", 0, "restart a replica this long after it exited (0: never)")
	flag.DurationVar(&o.statusEvery, "status-every", 3*time.Second, "interval of the status line")
	flag.DurationVar(&o.eventEvery, "event-every", 3*time.Second, "interval of the demo Events")
	flag.Var(&o.sets, "set", "extra --set override for every collector (repeatable)")
	flag.Var(&o.envs, "env", "extra NAME=value environment variable for every collector (repeatable)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, o)
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "run:", err)
		return 1
	}
	return 0
}

func (o *options) validate() error {
	for _, p := range []*string{&o.collector, &o.config} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	if fi, err := os.Stat(o.collector); err != nil || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("collector %s is not an executable file (build it with `make distribution`)", o.collector)
	}
	if _, err := os.Stat(o.config); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if o.deployDir == "" {
		o.deployDir = filepath.Join(filepath.Dir(filepath.Dir(o.config)), "deploy")
	}
	switch o.killSignal {
	case "TERM", "KILL":
	default:
		return fmt.Errorf("--kill-signal must be TERM or KILL, not %q", o.killSignal)
	}
	switch o.seed {
	case "auto", "true", "false":
	default:
		return fmt.Errorf("--seed must be auto, true or false, not %q", o.seed)
	}
	return nil
}
