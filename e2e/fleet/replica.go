package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/proc"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// Replica is one collector process (POD_NAME = Name), which can be stopped,
// killed and started again. Its log and output files persist across
// restarts, so Counts and Batches add up over all of its runs.
type Replica struct {
	Name       string
	Dir        string // working directory and OUTPUT_DIR
	LogPath    string // collector's stdout+stderr (appended across restarts)
	OutputPath string // file exporter output
	HealthURL  string // healthcheckv2: 200 once the collector has started
	MetricsURL string // the collector's own Prometheus metrics

	fleet *Fleet
	env   []string
	args  []string
	tail  outputTail

	mu       sync.Mutex
	proc     *proc.Process
	leading  bool // group started and not stopped in the current process
	holding  bool // lease acquired and not lost/released in the current process
	identity string
	counts   Counts
	batches  []Batch
}

// ReplicaName is the name of replica i (1..N): its Replica.Name and
// POD_NAME.
func ReplicaName(i int) string { return fmt.Sprintf("replica-%d", i) }

func newReplica(f *Fleet, i int) (*Replica, error) {
	name := ReplicaName(i)
	dir := filepath.Join(f.opts.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	hp, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	mp, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	r := &Replica{
		Name:       name,
		Dir:        dir,
		LogPath:    filepath.Join(dir, "collector.log"),
		OutputPath: filepath.Join(dir, "otelcol-leader-"+name+".jsonl"), // as distribution/config.yaml names it
		HealthURL:  fmt.Sprintf("http://127.0.0.1:%d/", hp),
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", mp),
		fleet:      f,
	}
	r.tail.path = r.OutputPath
	env := map[string]string{
		"POD_NAME":               name,
		"POD_NAMESPACE":          f.opts.Namespace,
		"KUBECONFIG":             f.opts.Kubeconfig,
		"K8S_AUTH_TYPE":          "kubeConfig",
		"OUTPUT_DIR":             dir,
		"HEALTHCHECK_ENDPOINT":   "127.0.0.1:" + strconv.Itoa(hp),
		"TELEMETRY_METRICS_HOST": "127.0.0.1",
		"TELEMETRY_METRICS_PORT": strconv.Itoa(mp),
	}
	maps.Copy(env, f.opts.Env)
	if f.opts.ReplicaEnv != nil {
		maps.Copy(env, f.opts.ReplicaEnv(i))
	}
	r.env = os.Environ()
	for k, v := range env {
		r.env = append(r.env, k+"="+v) // later entries win
	}
	r.args = []string{"--config", f.opts.Config}
	for _, s := range f.opts.Sets {
		r.args = append(r.args, "--set", s)
	}
	r.args = append(r.args, f.opts.Args...)
	return r, nil
}

// Start starts the collector process; an error if it is running.
func (r *Replica) Start() error {
	r.mu.Lock()
	if r.proc != nil && !r.proc.Exited() {
		r.mu.Unlock()
		return fmt.Errorf("%s is running (pid %d)", r.Name, r.proc.PID)
	}
	// Set before r.mu is released; onLine reads it under r.mu.
	pid := new(atomic.Int64)
	p, err := proc.Start(proc.Spec{
		Name:    r.Name,
		Path:    r.fleet.opts.Collector,
		Args:    r.args,
		Env:     r.env,
		Dir:     r.Dir,
		LogPath: r.LogPath,
		OnLine:  func(line []byte) { r.onLine(pid, line) },
	})
	if err != nil {
		r.mu.Unlock()
		return err
	}
	pid.Store(int64(p.PID))
	r.proc, r.leading, r.holding = p, false, false
	r.mu.Unlock()
	r.fleet.events.Record(timeline.Event{Replica: r.Name, PID: p.PID, Kind: timeline.ProcessStarted, At: time.Now()})
	go func() {
		<-p.Done()
		r.mu.Lock()
		r.leading, r.holding = false, false
		r.mu.Unlock()
		r.fleet.events.Record(timeline.Event{Replica: r.Name, PID: p.PID, Kind: timeline.ProcessExited, At: time.Now(), ExitCode: p.ExitCode()})
	}()
	return nil
}

func (r *Replica) onLine(pid *atomic.Int64, line []byte) {
	at := time.Now()
	l, ok := timeline.ParseLogLine(line)
	if !ok {
		return
	}
	if fn := r.fleet.opts.OnLog; fn != nil {
		fn(r.Name, l)
	}
	r.mu.Lock()
	ev, ok := timeline.EventFromLog(r.Name, int(pid.Load()), at, l)
	if !ok {
		r.mu.Unlock()
		return
	}
	if ev.Identity != "" {
		r.identity = ev.Identity
	}
	switch ev.Kind {
	case timeline.Acquired:
		r.holding = true
	case timeline.Lost, timeline.Released, timeline.LeftToExpire, timeline.ReleaseFailed, timeline.NotReleased:
		r.holding = false
	case timeline.GroupStarted:
		r.leading = true
	case timeline.GroupStopped, timeline.GroupStartFailed:
		r.leading = false
	}
	r.mu.Unlock()
	r.fleet.events.Record(ev)
}

// readOutput appends the batches written since the last call.
func (r *Replica) readOutput(at time.Time) {
	for _, line := range r.tail.read() {
		if b, ok := parseBatch(line, at); ok {
			r.mu.Lock()
			r.batches = append(r.batches, b)
			r.counts.add(b)
			r.mu.Unlock()
		}
	}
}

func (r *Replica) process() *proc.Process {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc
}

// PID of the running process, 0 if none.
func (r *Replica) PID() int {
	if p := r.process(); p != nil && !p.Exited() {
		return p.PID
	}
	return 0
}

// Running reports whether the process is running.
func (r *Replica) Running() bool { return r.PID() != 0 }

// Done is closed when the current (or last) process has exited.
func (r *Replica) Done() <-chan struct{} {
	if p := r.process(); p != nil {
		return p.Done()
	}
	c := make(chan struct{})
	close(c)
	return c
}

// Leading reports whether the sub-receiver group runs here: "leader group
// started" was logged by the current process and no stop since.
func (r *Replica) Leading() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leading
}

// HoldsLease reports whether the current process logged "leadership
// acquired" and not yet lost or released it.
func (r *Replica) HoldsLease() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.holding
}

// Identity is the Lease identity the replica logged last ("" before any
// leader-election log line).
func (r *Replica) Identity() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.identity
}

// Counts is what the replica exported so far, over all its runs.
func (r *Replica) Counts() Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts
}

// Batches are the file exporter's lines read so far, in order.
func (r *Replica) Batches() []Batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Batch(nil), r.batches...)
}

// ExitCode of the last process (-1 if killed by a signal or running).
func (r *Replica) ExitCode() int {
	if p := r.process(); p != nil {
		return p.ExitCode()
	}
	return -1
}

// Signal sends sig to the running process (e.g. SIGTERM for a graceful
// shutdown, SIGKILL for a crash, SIGSTOP to freeze it).
func (r *Replica) Signal(sig syscall.Signal) error {
	p := r.process()
	if p == nil {
		return errors.New(r.Name + " was never started")
	}
	return p.Signal(sig)
}

// Stop shuts the process down gracefully (SIGTERM, SIGKILL after grace) and
// waits for it.
func (r *Replica) Stop(grace time.Duration) error {
	if p := r.process(); p != nil {
		return p.Stop(grace)
	}
	return nil
}

// Kill kills the process with SIGKILL and waits for it.
func (r *Replica) Kill() error {
	if p := r.process(); p != nil {
		return p.Kill()
	}
	return nil
}

// Healthy reports whether the health endpoint answers 200.
func (r *Replica) Healthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.HealthURL, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// LogTail returns the last n bytes of the replica's log, for failure messages.
func (r *Replica) LogTail(n int64) string {
	return proc.Tail(r.LogPath, n)
}
