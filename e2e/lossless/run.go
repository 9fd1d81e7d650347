package lossless

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/bench"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// Fleet is one configuration's replicas, the sink they export to and the
// handovers made so far. Start it, wait until it is Ready, run its
// handovers (Handovers), then Stop it.
type Fleet struct {
	Config Config
	Sink   *Sink
	Fleet  *fleet.Fleet

	tracker   *bench.Tracker
	handovers []Handover
	notes     []string
}

// FleetOptions are what a configuration's fleet runs as: where its replicas
// live and how they reach the API server.
type FleetOptions struct {
	Collector string // the binary (Config.Peer: otelcol-peer)
	Dir       string // the replicas' directories (each keeps its own across restarts: its file_storage)
	Namespace string // POD_NAMESPACE: the Lease's namespace
	// Kubeconfigs[i] is replica-(i+1)'s: a ServiceAccount of its own.
	Kubeconfigs []string
	Replicas    int
	Env         map[string]string // more environment (Config.Env's variables)
	// OnLog, if set, also gets every parsed log line.
	OnLog func(replica string, l timeline.LogLine)
}

// StartFleet writes the configuration into o.Dir, starts a sink and the
// replicas.
func StartFleet(c Config, o FleetOptions) (*Fleet, error) {
	configArgs, err := c.Write(filepath.Join(o.Dir, "config"))
	if err != nil {
		return nil, err
	}
	sink, err := NewSink(EventPrefix)
	if err != nil {
		return nil, err
	}
	f := &Fleet{Config: c, Sink: sink}
	if c.Peer {
		f.tracker = bench.NewPeerTracker(PeerReceivers...)
	} else {
		f.tracker = bench.NewTracker(bench.Ours)
	}
	env := map[string]string{"SINK_ENDPOINT": sink.Addr()}
	for k, v := range o.Env {
		env[k] = v
	}
	if len(o.Kubeconfigs) < o.Replicas {
		sink.Close()
		return nil, fmt.Errorf("%d replicas but %d kubeconfigs", o.Replicas, len(o.Kubeconfigs))
	}
	opts := fleet.Options{
		Collector: o.Collector, Config: configArgs[1], Args: configArgs[2:], Replicas: o.Replicas, Dir: o.Dir, Namespace: o.Namespace, Env: env,
		ReplicaEnv: func(i int) map[string]string { return map[string]string{"KUBECONFIG": o.Kubeconfigs[i-1]} },
		OnEvent:    f.tracker.OnEvent,
		OnLog: func(replica string, l timeline.LogLine) {
			f.tracker.OnLog(replica, l)
			if o.OnLog != nil {
				o.OnLog(replica, l)
			}
		},
	}
	if f.Fleet, err = fleet.Start(opts); err != nil {
		sink.Close()
		return nil, err
	}
	return f, nil
}

// Ready waits until every replica answers its health check and exactly
// one runs the whole group, and returns that one. It fails early when a
// replica is not running.
func (f *Fleet) Ready(ctx context.Context) (string, error) {
	for {
		for _, r := range f.Fleet.Replicas() {
			if !r.Running() {
				return "", fmt.Errorf("%s is not running; end of its log:\n%s", r.Name, r.LogTail(1500))
			}
		}
		if l := f.tracker.Leaders(); len(l) == 1 {
			healthy := true
			for _, r := range f.Fleet.Replicas() {
				healthy = healthy && r.Healthy(ctx)
			}
			if l2 := f.tracker.Leaders(); healthy && len(l2) == 1 && l2[0] == l[0] {
				return l[0], nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for a single leader with every replica healthy (groups running on %v): %w", f.tracker.Leaders(), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Trial is how one handover is made.
type Trial struct {
	Signal syscall.Signal
	// Settle: after the fleet is Ready, wait this long plus a random pause
	// in [0, Jitter) before the signal, so that the last handover's effects
	// are over and the signal falls at a random point of the renew cycle.
	Settle, Jitter time.Duration
	Timeout        time.Duration // of each wait
}

// Handover signals the leader, waits until another replica's group is
// up, then restarts the signalled replica (its directory, so its
// file_storage, kept) and waits until it is healthy.
func (f *Fleet) Handover(ctx context.Context, tr Trial) (Handover, error) {
	h := Handover{Index: len(f.handovers) + 1, Signal: sigName(tr.Signal)}
	wait := func(d time.Duration) (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, d) }
	rctx, cancel := wait(tr.Timeout)
	leader, err := f.Ready(rctx)
	cancel()
	if err != nil {
		return h, fmt.Errorf("before handover %d: %w", h.Index, err)
	}
	pause := tr.Settle
	if tr.Jitter > 0 {
		pause += rand.N(tr.Jitter)
	}
	select {
	case <-ctx.Done():
		return h, ctx.Err()
	case <-time.After(pause):
	}
	if l := f.tracker.Leaders(); len(l) != 1 || l[0] != leader {
		return h, fmt.Errorf("before handover %d: the leaders changed to %v (was %s)", h.Index, l, leader)
	}
	r := f.Fleet.Replica(leader)
	h.Leader = leader
	done := r.Done()
	h.At = time.Now()
	if err := r.Signal(tr.Signal); err != nil {
		return h, fmt.Errorf("handover %d: signal %s: %w", h.Index, leader, err)
	}
	uctx, cancel := wait(tr.Timeout)
	up, err := f.tracker.WaitGroupUp(uctx, h.At, leader)
	cancel()
	if err != nil {
		return h, fmt.Errorf("handover %d: no other group started after %s of %s: %w (groups running: %v)", h.Index, h.Signal, leader, err, f.tracker.Leaders())
	}
	h.Next, h.Up = up.Replica, up.At
	select {
	case <-done:
	case <-time.After(tr.Timeout):
		f.notes = append(f.notes, fmt.Sprintf("handover %d: %s did not exit within %s: killed", h.Index, leader, tr.Timeout))
		if err := r.Kill(); err != nil {
			return h, err
		}
	case <-ctx.Done():
		return h, ctx.Err()
	}
	if err := r.Start(); err != nil {
		return h, fmt.Errorf("handover %d: restart %s: %w", h.Index, leader, err)
	}
	hctx, cancel := wait(tr.Timeout)
	defer cancel()
	if err := r.WaitHealthy(hctx); err != nil {
		return h, fmt.Errorf("handover %d: %w", h.Index, err)
	}
	f.handovers = append(f.handovers, h)
	return h, nil
}

// Handovers made so far.
func (f *Fleet) Handovers() []Handover { return append([]Handover(nil), f.handovers...) }

// Notes are anomalies of the run (the tracker's, and replicas that did not
// exit in time).
func (f *Fleet) Notes() []string { return append(f.tracker.Notes(), f.notes...) }

// Leaders are the replicas whose whole group runs now.
func (f *Fleet) Leaders() []string { return f.tracker.Leaders() }

// Stop stops the standbys first, then the leader (so that no standby takes
// over while the fleet shuts down: with a stale file_storage checkpoint it
// would export again what was already counted), then closes the sink.
func (f *Fleet) Stop(grace time.Duration) error {
	var errs []error
	if f.Fleet != nil {
		leaders := map[string]bool{}
		for _, l := range f.tracker.Leaders() {
			leaders[l] = true
		}
		for _, r := range f.Fleet.Replicas() {
			if !leaders[r.Name] {
				errs = append(errs, r.Stop(grace))
			}
		}
		errs = append(errs, f.Fleet.Stop(grace))
	}
	f.Sink.Close()
	return errors.Join(errs...)
}

func sigName(sig syscall.Signal) string {
	if sig == syscall.SIGKILL {
		return "SIGKILL"
	}
	return "SIGTERM"
}
