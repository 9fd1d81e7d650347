// Package fleet runs several replicas of the collector as local processes
// (as Kubernetes would run a Deployment's pods), follows their logs for the
// leader-election events of leader_receiver_creator, and counts what each
// one exports through the file exporter. Used by `make run` (cmd/run) and by
// the end-to-end scenarios.
//
// The replicas are configured through the environment variables of
// distribution/config.yaml: POD_NAME, POD_NAMESPACE, KUBECONFIG with
// K8S_AUTH_TYPE=kubeConfig, OUTPUT_DIR, HEALTHCHECK_ENDPOINT and
// TELEMETRY_METRICS_HOST/PORT (distinct ports per replica).
package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// Options configures a fleet.
type Options struct {
	Collector  string            // collector binary (bin/otelcol-leader)
	Config     string            // --config file (distribution/config.yaml)
	Replicas   int               // default 3; named replica-1..N
	Dir        string            // each replica gets Dir/<name>; default a temp dir
	Namespace  string            // POD_NAMESPACE: the Lease namespace
	Kubeconfig string            // KUBECONFIG of every replica (e.g. a ServiceAccount's)
	Env        map[string]string // extra or overriding environment variables
	Sets       []string          // --set overrides, e.g. "receivers::leader_receiver_creator::leader_election::lease_duration=5s"
	Args       []string          // more collector arguments
	// ReplicaEnv, if set, returns more environment variables for replica i
	// (1..Replicas), applied after Env: e.g. its own KUBECONFIG, to reach
	// the API server through its own proxy, or its own listen address.
	ReplicaEnv func(i int) map[string]string
	// OnEvent is called for every Event, one call at a time, in the order
	// they are recorded. It must not block for long.
	OnEvent func(timeline.Event)
	// OnLog is called for every parsed log line of every replica
	// (concurrently for different replicas).
	OnLog func(replica string, l timeline.LogLine)
	// PollInterval for the output files (default 250ms).
	PollInterval time.Duration
}

// Fleet is a set of replicas. Its methods are safe for concurrent use.
type Fleet struct {
	opts     Options
	replicas []*Replica
	T0       time.Time // when the fleet was created; Since measures from here
	events   *timeline.Recorder

	mu     sync.Mutex
	stop   chan struct{}
	polled chan struct{}
}

// Start creates the fleet's replicas and starts them all.
func Start(opts Options) (*Fleet, error) {
	f, err := New(opts)
	if err != nil {
		return nil, err
	}
	for _, r := range f.replicas {
		if err := r.Start(); err != nil {
			return f, errors.Join(err, f.Stop(5*time.Second))
		}
	}
	return f, nil
}

// New creates the fleet's replicas without starting any: start them one by
// one with Replica.Start. Stop the fleet when done.
func New(opts Options) (*Fleet, error) {
	if opts.Collector == "" || opts.Config == "" {
		return nil, errors.New("fleet: Collector and Config are required")
	}
	// The replicas run in their own directories.
	for _, p := range []*string{&opts.Collector, &opts.Config} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, err
		}
		*p = abs
	}
	if opts.Replicas == 0 {
		opts.Replicas = 3
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "lrc-fleet-")
		if err != nil {
			return nil, err
		}
		opts.Dir = d
	}
	f := &Fleet{opts: opts, T0: time.Now(), events: timeline.NewRecorder(opts.OnEvent), stop: make(chan struct{}), polled: make(chan struct{})}
	for i := 1; i <= opts.Replicas; i++ {
		r, err := newReplica(f, i)
		if err != nil {
			return nil, err
		}
		f.replicas = append(f.replicas, r)
	}
	go f.pollOutputs()
	return f, nil
}

// Dir is the fleet's base directory.
func (f *Fleet) Dir() string { return f.opts.Dir }

// Replicas returns the replicas, in name order.
func (f *Fleet) Replicas() []*Replica { return f.replicas }

// Replica returns the replica called name, or nil.
func (f *Fleet) Replica(name string) *Replica {
	for _, r := range f.replicas {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Leaders returns the replicas whose group is running now.
func (f *Fleet) Leaders() []*Replica {
	var out []*Replica
	for _, r := range f.replicas {
		if r.Leading() {
			out = append(out, r)
		}
	}
	return out
}

// Events returns all events recorded so far, ordered by At.
func (f *Fleet) Events() []timeline.Event { return f.events.Events() }

// WaitFor waits until match is true of some recorded event (including ones
// recorded before the call) and returns the first such event.
func (f *Fleet) WaitFor(ctx context.Context, match func(timeline.Event) bool) (timeline.Event, error) {
	return f.events.WaitFor(ctx, match)
}

// WaitForLeader waits until exactly one replica's group is running and
// returns it. It fails early when no replica is running.
func (f *Fleet) WaitForLeader(ctx context.Context) (*Replica, error) {
	for {
		changed := f.events.Changed()
		if l := f.Leaders(); len(l) == 1 {
			return l[0], nil
		}
		running := 0
		for _, r := range f.replicas {
			if r.Running() {
				running++
			}
		}
		if running == 0 {
			return nil, fmt.Errorf("no replica is running; end of %s:\n%s", f.replicas[0].LogPath, f.replicas[0].LogTail(2000))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a single leader (now %d): %w", len(f.Leaders()), ctx.Err())
		case <-changed:
		}
	}
}

func (f *Fleet) pollOutputs() {
	defer close(f.polled)
	t := time.NewTicker(f.opts.PollInterval)
	defer t.Stop()
	for {
		now := time.Now()
		for _, r := range f.replicas {
			r.readOutput(now)
		}
		select {
		case <-f.stop:
			now := time.Now()
			for _, r := range f.replicas {
				r.readOutput(now) // what was flushed on shutdown
			}
			return
		case <-t.C:
		}
	}
}

// Stop stops every running replica at once (SIGTERM; SIGKILL after grace),
// waits for them, and reads their output a last time. Idempotent.
func (f *Fleet) Stop(grace time.Duration) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, r := range f.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Stop(grace); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	f.mu.Lock()
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	f.mu.Unlock()
	<-f.polled
	return errors.Join(errs...)
}
