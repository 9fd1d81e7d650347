package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
)

func run(ctx context.Context, o options) (err error) {
	var v *view // set once the collectors start
	if err := o.validate(); err != nil {
		return err
	}
	workDir := o.workDir
	if workDir == "" {
		if workDir, err = os.MkdirTemp("", "otelcol-leader-run-"); err != nil {
			return err
		}
		defer func() {
			if !o.keep && (v == nil || !v.abnormal) {
				_ = os.RemoveAll(workDir)
			}
		}()
	} else if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}

	t, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer t.stop() // after the collectors (defers run last-in first-out)
	kubeconfig, err := t.prepare(ctx, o, workDir)
	if err != nil {
		return err
	}

	var envs map[string]string
	for _, kv := range o.envs {
		if envs == nil {
			envs = map[string]string{}
		}
		k, v, _ := strings.Cut(kv, "=")
		envs[k] = v
	}
	v = newView(o, t)
	f, err := fleet.Start(fleet.Options{
		Collector:  o.collector,
		Config:     o.config,
		Replicas:   o.replicas,
		Dir:        workDir,
		Namespace:  o.namespace,
		Kubeconfig: kubeconfig,
		Env:        envs,
		Sets:       o.sets,
		OnEvent:    v.event,
		OnLog:      v.log,
	})
	if f != nil {
		v.fleet = f
		defer func() {
			say("stopping the collectors (SIGTERM, then SIGKILL after 20s)")
			if serr := f.Stop(20 * time.Second); serr != nil {
				say("stopping the collectors: %v", serr)
			}
			if cerr := v.summary(); cerr != nil && o.duration > 0 {
				err = errors.Join(err, cerr) // non-interactive runs fail on a broken check
			}
			if o.keep || o.workDir != "" || v.abnormal {
				say("collector logs and output kept in %s", workDir)
			}
		}()
	}
	if err != nil {
		return err
	}
	v.banner()
	return v.loop(ctx)
}

// loop prints events as they come (via the fleet's callback) and a status
// line every statusEvery, runs the scheduled kill, restarts and stdin
// commands, until ctx ends or duration passes.
func (v *view) loop(ctx context.Context) error {
	status := time.NewTicker(v.o.statusEvery)
	defer status.Stop()
	var deadline, kill <-chan time.Time
	if v.o.duration > 0 {
		deadline = time.After(v.o.duration)
	}
	if v.o.killLeaderAfter > 0 {
		kill = time.After(v.o.killLeaderAfter)
	}
	killPending := false
	commands := readCommands()
	for {
		select {
		case <-ctx.Done():
			newline() // past the terminal's ^C
			say("interrupted")
			return nil
		case <-deadline:
			say("--duration %s reached", v.o.duration)
			return nil
		case <-kill:
			kill = nil
			if !v.killLeader() {
				killPending = true
			}
		case name := <-v.restart:
			if r := v.fleet.Replica(name); r != nil && !r.Running() {
				say("restarting %s", name)
				if err := r.Start(); err != nil {
					say("restart %s: %v", name, err)
				}
			}
		case <-status.C:
			v.status()
			if killPending && v.killLeader() {
				killPending = false
			}
		case c, ok := <-commands:
			if !ok {
				commands = nil
				continue
			}
			if v.command(c) {
				return nil
			}
		}
	}
}

// killLeader signals the leader; false if there is none right now.
func (v *view) killLeader() bool {
	leaders := v.fleet.Leaders()
	if len(leaders) == 0 {
		if !v.killWaiting {
			say("--kill-leader-after: no leader right now; waiting for one")
			v.killWaiting = true
		}
		return false
	}
	sig := syscall.SIGTERM
	if v.o.killSignal == "KILL" {
		sig = syscall.SIGKILL
	}
	r := leaders[0]
	say("killing the leader %s (pid %d) with SIG%s", r.Name, r.PID(), v.o.killSignal)
	v.killedAt = time.Now()
	if err := r.Signal(sig); err != nil {
		say("kill %s: %v", r.Name, err)
	}
	return true
}
