package clientgo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/proc"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// Build compiles cmd/clientgo-candidate into dir and returns the binary's
// path. It needs the go command and this module's sources (as the tests
// have them).
func Build(ctx context.Context, dir string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("clientgo: cannot locate the module's sources")
	}
	out := filepath.Join(dir, "clientgo-candidate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/clientgo-candidate")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building clientgo-candidate: %w\n%s", err, b)
	}
	return out, nil
}

// Name is the name of candidate i (1..N): its identity in the Lease, and
// the name of the ServiceAccount the scenarios give it.
func Name(i int) string { return "clientgo-" + strconv.Itoa(i) }

// Options configures a Set.
type Options struct {
	Binary     string // Build's result
	Candidates int    // named Name(1..Candidates)
	Dir        string // each candidate logs to Dir/<name>.log
	Namespace  string // of the Lease
	Lease      string // its name
	// The LeaderElector's timings.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	WorkNamespace                             string        // whose Pods a leader lists
	WorkEvery                                 time.Duration // how often (default 200ms)
	Kubeconfig                                func(i int) string
	// OnEvent is called for every Event, one call at a time, in the order
	// they are recorded. It must not block for long.
	OnEvent func(timeline.Event)
}

// Set is a group of client-go candidates and the events of their logs (on
// the harness's clock, like fleet's). Its methods are safe for concurrent
// use.
type Set struct {
	opts       Options
	candidates []*Candidate
	events     *timeline.Recorder
}

// Candidate is one client-go candidate process, which can be stopped,
// killed and started again; its log is appended across restarts.
type Candidate struct {
	Name    string
	LogPath string

	set  *Set
	args []string

	mu      sync.Mutex
	proc    *proc.Process
	leading bool // OnStartedLeading logged, Run not returned, in the current process
}

// NewSet creates the candidates without starting any.
func NewSet(opts Options) (*Set, error) {
	if opts.Binary == "" || opts.Namespace == "" || opts.Lease == "" || opts.Kubeconfig == nil {
		return nil, errors.New("clientgo: Binary, Namespace, Lease and Kubeconfig are required")
	}
	if opts.WorkEvery == 0 {
		opts.WorkEvery = 200 * time.Millisecond
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	s := &Set{opts: opts, events: timeline.NewRecorder(opts.OnEvent)}
	for i := 1; i <= opts.Candidates; i++ {
		name := Name(i)
		s.candidates = append(s.candidates, &Candidate{
			Name:    name,
			LogPath: filepath.Join(opts.Dir, name+".log"),
			set:     s,
			args: []string{
				"--kubeconfig", opts.Kubeconfig(i), "--namespace", opts.Namespace, "--lease", opts.Lease, "--identity", name,
				"--lease-duration", opts.LeaseDuration.String(), "--renew-deadline", opts.RenewDeadline.String(),
				"--retry-period", opts.RetryPeriod.String(), "--work-namespace", opts.WorkNamespace, "--work-every", opts.WorkEvery.String(),
			},
		})
	}
	return s, nil
}

// Candidates returns the candidates, in name order.
func (s *Set) Candidates() []*Candidate { return s.candidates }

// Events returns all events recorded so far, ordered by At.
func (s *Set) Events() []timeline.Event { return s.events.Events() }

// WaitFor waits until match is true of some recorded event (including ones
// recorded before the call) and returns the first such event.
func (s *Set) WaitFor(ctx context.Context, match func(timeline.Event) bool) (timeline.Event, error) {
	return s.events.WaitFor(ctx, match)
}

// Stop stops every running candidate at once (SIGTERM; SIGKILL after
// grace) and waits for them.
func (s *Set) Stop(grace time.Duration) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, c := range s.candidates {
		wg.Go(func() {
			if err := c.Stop(grace); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Start starts the candidate's process; an error if it is running.
func (c *Candidate) Start() error {
	c.mu.Lock()
	if c.proc != nil && !c.proc.Exited() {
		c.mu.Unlock()
		return fmt.Errorf("%s is running (pid %d)", c.Name, c.proc.PID)
	}
	pid := new(atomic.Int64)
	p, err := proc.Start(proc.Spec{
		Name:    c.Name,
		Path:    c.set.opts.Binary,
		Args:    c.args,
		LogPath: c.LogPath,
		OnLine:  func(line []byte) { c.onLine(pid, line) },
	})
	if err != nil {
		c.mu.Unlock()
		return err
	}
	pid.Store(int64(p.PID))
	c.proc, c.leading = p, false
	c.mu.Unlock()
	c.set.events.Record(timeline.Event{Replica: c.Name, PID: p.PID, Kind: timeline.ProcessStarted, At: time.Now()})
	go func() {
		<-p.Done()
		c.mu.Lock()
		c.leading = false
		c.mu.Unlock()
		c.set.events.Record(timeline.Event{Replica: c.Name, PID: p.PID, Kind: timeline.ProcessExited, At: time.Now(), ExitCode: p.ExitCode()})
	}()
	return nil
}

func (c *Candidate) onLine(pid *atomic.Int64, line []byte) {
	at := time.Now()
	k, l, ok := ParseKind(line)
	if !ok {
		return
	}
	c.mu.Lock()
	switch k {
	case StartedLeading:
		c.leading = true
	case RunReturned:
		c.leading = false
	}
	c.mu.Unlock()
	c.set.events.Record(timeline.Event{Replica: c.Name, PID: int(pid.Load()), Kind: k, At: at, Lease: l.String("lease"), Identity: l.String("identity"), Line: l})
}

func (c *Candidate) process() *proc.Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc
}

// PID of the running process, 0 if none.
func (c *Candidate) PID() int {
	if p := c.process(); p != nil && !p.Exited() {
		return p.PID
	}
	return 0
}

// Running reports whether the process is running.
func (c *Candidate) Running() bool { return c.PID() != 0 }

// Leading reports whether the current process runs, logged
// OnStartedLeading and Run has not returned since: its active interval is
// open.
func (c *Candidate) Leading() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leading && c.proc != nil && !c.proc.Exited()
}

// ExitCode of the last process (-1 if killed by a signal or running).
func (c *Candidate) ExitCode() int {
	if p := c.process(); p != nil {
		return p.ExitCode()
	}
	return -1
}

// Stop shuts the process down (SIGTERM, SIGKILL after grace) and waits for
// it.
func (c *Candidate) Stop(grace time.Duration) error {
	if p := c.process(); p != nil {
		return p.Stop(grace)
	}
	return nil
}

// Kill kills the process with SIGKILL and waits for it.
func (c *Candidate) Kill() error {
	if p := c.process(); p != nil {
		return p.Kill()
	}
	return nil
}

// LogTail returns the last n bytes of the candidate's log.
func (c *Candidate) LogTail(n int64) string { return proc.Tail(c.LogPath, n) }

// Spans are the candidates' active intervals, in the form of the
// collectors' group spans (timeline.GroupSpan): from OnStartedLeading to the
// return of Run (EndedBy RunReturned) or to the exit of the process
// (EndedBy timeline.ProcessExited), from events ordered by At. End is zero
// while one is open.
func Spans(events []timeline.Event) []timeline.GroupSpan {
	var spans []timeline.GroupSpan
	open := map[int]int{} // pid -> index in spans
	for _, ev := range events {
		switch ev.Kind {
		case StartedLeading:
			open[ev.PID] = len(spans)
			spans = append(spans, timeline.GroupSpan{Replica: ev.Replica, PID: ev.PID, Start: ev.At})
		case RunReturned, timeline.ProcessExited:
			if i, ok := open[ev.PID]; ok {
				spans[i].End, spans[i].EndedBy = ev.At, ev.Kind
				delete(open, ev.PID)
			}
		}
	}
	return spans
}
