package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/clientgo"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/tcpproxy"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// T is what a Run needs of its test (*testing.T has it).
type T interface {
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
	Cleanup(func())
	TempDir() string
}

// Options shape a Run.
type Options struct {
	ControlPlane *controlplane.ControlPlane
	DeployDir    string // deploy/: the RBAC of every process (NewLease)
	Namespace    string // of the Lease (cluster.LeaseName)

	// Fleet are the collectors: replica-i runs as ServiceAccount replica-i
	// of Namespace (fleet.ReplicaName). The Run sets Namespace
	// (POD_NAMESPACE), Dir if empty, each replica's KUBECONFIG (before
	// ReplicaEnv's variables) and OnEvent (the event is logged, then
	// passed on to Fleet.OnEvent).
	Fleet fleet.Options
	// ReplicaEnv, if set, returns more environment variables for replica i
	// (1..Fleet.Replicas), given its credentials.
	ReplicaEnv func(i int, cr controlplane.Credentials) map[string]string
	// Proxies: each replica reaches the API server through a TCP proxy of
	// its own (Run.Proxies), which a scenario can cut: a partition.
	Proxies bool
	// Contexts are more ServiceAccounts of Namespace, with deploy/'s
	// permissions, each a context named after it in every replica's
	// kubeconfig (controlplane.ServiceAccountCredentials).
	Contexts []string
	// ClientGo: with Candidates > 0, plain client-go candidates
	// (clientgo-1..N) on the Lease, each its own ServiceAccount. The Run
	// sets Dir if empty, Namespace and Lease if empty (the Run's Lease),
	// Kubeconfig and OnEvent (as for the fleet); the test starts them.
	ClientGo clientgo.Options
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL (20s
	// if zero).
	StopGrace time.Duration

	// The final check (Check).

	// ExpectOverlap inverts the overlap checks, from the logs and from
	// outside: for the proofs that they can fail.
	ExpectOverlap bool
	// TraceLead, if set, checks that every span left a trace in the audit
	// log (Outside.Untraced with this lead): a group whose sub-receivers
	// make no request as the replica's ServiceAccount has none.
	TraceLead time.Duration
	// StrayMargin, if set, checks that every interval of a process's
	// activity lies in one of its spans widened by this much on both sides
	// (Outside.Strays): nothing ran when the logs say no group did.
	StrayMargin time.Duration
}

// Run is a fleet of collectors and, if asked, client-go candidates on a
// Lease of their own, each process as a ServiceAccount of its own, and the
// final check that no two of them were ever active at once. Start creates
// the processes without starting any.
type Run struct {
	Lease    *Lease
	Fleet    *fleet.Fleet
	ClientGo *clientgo.Set // nil without candidates
	// Proxies[i] is replica-(i+1)'s way to the API server
	// (Options.Proxies), Credentials[i] its ServiceAccount's.
	Proxies     []*tcpproxy.Proxy
	Credentials []controlplane.Credentials
	T0          time.Time // the Run's start: the logged times count from it

	t    T
	opts Options

	stopped bool
	logMu   sync.Mutex
	ended   bool // no t.Logf after the test
}

// Start prepares the Lease (NewLease: namespace, RBAC, audit log), the
// proxies and credentials, the fleet and the candidates. Close is
// registered as t's cleanup: register a final Check after Start, so that
// it runs before Close.
func Start(ctx context.Context, t T, o Options) (*Run, error) {
	if o.Fleet.Replicas == 0 {
		o.Fleet.Replicas = 3
	}
	if o.StopGrace == 0 {
		o.StopGrace = 20 * time.Second
	}
	r := &Run{t: t, opts: o, T0: time.Now()}
	t.Cleanup(r.Close)
	cp := o.ControlPlane
	var replicas, candidates []string
	for i := 1; i <= o.Fleet.Replicas; i++ {
		replicas = append(replicas, fleet.ReplicaName(i))
	}
	for i := 1; i <= o.ClientGo.Candidates; i++ {
		candidates = append(candidates, clientgo.Name(i))
	}
	var err error
	r.Lease, err = NewLease(ctx, cp, LeaseOptions{DeployDir: o.DeployDir, Namespace: o.Namespace,
		ServiceAccounts: slices.Concat(replicas, candidates, o.Contexts)})
	if err != nil {
		return r, err
	}
	for _, sa := range replicas {
		server := ""
		if o.Proxies {
			p, err := tcpproxy.Start(strings.TrimPrefix(cp.Host, "https://"))
			if err != nil {
				return r, err
			}
			r.Proxies = append(r.Proxies, p)
			server = "https://" + p.Addr()
		}
		cr, err := cp.ServiceAccountCredentials(ctx, o.Namespace, sa, server, o.Contexts...)
		if err != nil {
			return r, err
		}
		r.Credentials = append(r.Credentials, cr)
	}

	fo := o.Fleet
	fo.Namespace = o.Namespace
	if fo.Dir == "" {
		fo.Dir = t.TempDir()
	}
	fo.ReplicaEnv = func(i int) map[string]string {
		env := map[string]string{"KUBECONFIG": r.Credentials[i-1].Kubeconfig}
		if o.ReplicaEnv != nil {
			maps.Copy(env, o.ReplicaEnv(i, r.Credentials[i-1]))
		}
		return env
	}
	fo.OnEvent = r.onEvent(o.Fleet.OnEvent)
	if r.Fleet, err = fleet.New(fo); err != nil {
		return r, err
	}

	if o.ClientGo.Candidates > 0 {
		co := o.ClientGo
		co.Namespace = cmp.Or(co.Namespace, o.Namespace)
		co.Lease = cmp.Or(co.Lease, r.Lease.Name)
		if co.Dir == "" {
			co.Dir = t.TempDir()
		}
		kubeconfigs := make([]string, len(candidates))
		for i, sa := range candidates {
			if kubeconfigs[i], err = cp.ServiceAccountKubeconfig(ctx, o.Namespace, sa, ""); err != nil {
				return r, err
			}
		}
		co.Kubeconfig = func(i int) string { return kubeconfigs[i-1] }
		co.OnEvent = r.onEvent(o.ClientGo.OnEvent)
		if r.ClientGo, err = clientgo.NewSet(co); err != nil {
			return r, err
		}
	}
	return r, nil
}

// onEvent logs an event with its time since T0, then passes it on.
func (r *Run) onEvent(next func(timeline.Event)) func(timeline.Event) {
	return func(ev timeline.Event) {
		r.Logf("%7.3fs %s", ev.At.Sub(r.T0).Seconds(), ev)
		if next != nil {
			next(ev)
		}
	}
}

// Logf logs on the test, until it has ended.
func (r *Run) Logf(format string, args ...any) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if !r.ended {
		r.t.Logf(format, args...)
	}
}

// StartReplicas starts every replica and waits (a minute at most each)
// until each campaigns.
func (r *Run) StartReplicas(ctx context.Context) error {
	for _, rep := range r.Fleet.Replicas() {
		if err := rep.Start(); err != nil {
			return err
		}
	}
	for _, rep := range r.Fleet.Replicas() {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err := r.Fleet.WaitFor(wctx, func(ev timeline.Event) bool {
			return ev.Replica == rep.Name && ev.Kind == timeline.Campaigning
		})
		cancel()
		if err != nil {
			return fmt.Errorf("%s campaigns: %w", rep.Name, err)
		}
	}
	return nil
}

// Stop stops every process at once (the candidates, then the replicas:
// SIGTERM, SIGKILL after StopGrace) and closes the proxies. Only the first
// call does something, and returns its errors.
func (r *Run) Stop() error {
	if r.stopped {
		return nil
	}
	r.stopped = true
	var errs []error
	if r.ClientGo != nil {
		errs = append(errs, r.ClientGo.Stop(r.opts.StopGrace))
	}
	if r.Fleet != nil {
		errs = append(errs, r.Fleet.Stop(r.opts.StopGrace))
	}
	for _, p := range r.Proxies {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// Spans are the replicas' group spans and the client-go candidates' active
// intervals (OnStartedLeading to the return of Run), ordered by start.
func (r *Run) Spans() []timeline.GroupSpan {
	spans := timeline.GroupSpans(r.Fleet.Events())
	if r.ClientGo != nil {
		spans = append(spans, clientgo.Spans(r.ClientGo.Events())...)
	}
	slices.SortStableFunc(spans, func(a, b timeline.GroupSpan) int { return a.Start.Compare(b.Start) })
	return spans
}

// Check stops every process (Stop) and makes the final check of every
// proof, logging what it measured: no two processes active at once (the
// other way round with Options.ExpectOverlap), from their logs
// (timeline.CheckDisjoint of Spans) and from outside (the audit log and
// the exports: MeasureOutside, and TraceLead's and StrayMargin's checks);
// and no replica exported data outside its group spans
// (fleet.Fleet.CheckDataOnlyFromLeaders).
func (r *Run) Check() {
	t := r.t
	t.Helper()
	if err := r.Stop(); err != nil {
		t.Errorf("stopping the processes: %v", err)
	}
	spans := r.Spans()
	for _, gs := range spans {
		end := "running"
		if !gs.End.IsZero() {
			end = fmt.Sprintf("%.3fs (%s %s)", gs.End.Sub(r.T0).Seconds(), gs.EndedBy, gs.Reason)
		}
		r.Logf("group span: %s from %.3fs to %s", gs.Replica, gs.Start.Sub(r.T0).Seconds(), end)
	}
	if err := r.Fleet.CheckDataOnlyFromLeaders(fleet.ExportSlack); err != nil {
		t.Errorf("%v", err)
	}
	out, err := MeasureOutside(r.Lease.Audit, Actors(r.Lease.Namespace, r.Fleet, r.ClientGo), r.Lease.CP.APIServerExits())
	if err != nil {
		t.Errorf("reading the audit log: %v", err)
	}
	for _, line := range out.Report(r.T0) {
		r.Logf("%s", line)
	}
	if r.opts.ExpectOverlap {
		for _, o := range out.Counted() {
			r.Logf("outside: overlap, as expected: %s", o)
		}
	}
	for _, p := range r.opts.verdict(spans, out, r.T0) {
		t.Errorf("%s", p)
	}
}

// verdict is what fails the final check, given the spans from the logs and
// the measurement from outside (times in messages since t0): two spans at
// once (timeline.CheckDisjoint), an overlap from outside that counts
// (Outside.Counted), or, with ExpectOverlap, either of them missing; a
// span without a trace (TraceLead); activity outside the spans
// (StrayMargin).
func (o Options) verdict(spans []timeline.GroupSpan, out Outside, t0 time.Time) []string {
	var ps []string
	err := timeline.CheckDisjoint(spans)
	switch {
	case o.ExpectOverlap && err == nil:
		ps = append(ps, "the logs do not show two groups (or client-go candidates) active at the same time")
	case !o.ExpectOverlap && err != nil:
		ps = append(ps, fmt.Sprintf("overlap: two groups (or client-go candidates) active at the same time: %v", err))
	}
	if o.TraceLead > 0 {
		for _, gs := range out.Untraced(spans, o.TraceLead) {
			ps = append(ps, fmt.Sprintf("the audit log does not show %s's group at work during its group span from %.3fs", gs.Replica, gs.Start.Sub(t0).Seconds()))
		}
	}
	if o.StrayMargin > 0 {
		for _, s := range out.Strays(spans, o.StrayMargin) {
			ps = append(ps, fmt.Sprintf("outside: %s's request activity %s lies in none of its group spans", s.Actor, RelIntervals(t0, s.Interval)))
		}
	}
	counted := out.Counted()
	switch {
	case o.ExpectOverlap && out.APIOverlap() <= 0:
		ps = append(ps, "the audit log does not show two groups active at once")
	case !o.ExpectOverlap && len(counted) > 0:
		var msgs []string
		for _, ov := range counted {
			msgs = append(msgs, fmt.Sprintf("%s (relative: %s and %s)", ov, RelIntervals(t0, ov.AInterval), RelIntervals(t0, ov.BInterval)))
		}
		ps = append(ps, "overlap from outside (audit log, exports): two replicas active at once:\n"+strings.Join(msgs, "\n"))
	}
	return ps
}

// Close stops every process if Check has not (failing the test if that
// fails), logs the end of each one's log if the test failed, and ends the
// Run's logging. Start registers it as the test's cleanup.
func (r *Run) Close() {
	t := r.t
	if err := r.Stop(); err != nil {
		t.Errorf("stopping the processes: %v", err)
	}
	if t.Failed() {
		if r.Fleet != nil {
			for _, rep := range r.Fleet.Replicas() {
				t.Logf("end of %s:\n%s", rep.LogPath, rep.LogTail(6000))
			}
		}
		if r.ClientGo != nil {
			for _, c := range r.ClientGo.Candidates() {
				t.Logf("end of %s:\n%s", c.LogPath, c.LogTail(6000))
			}
		}
	}
	r.logMu.Lock()
	r.ended = true
	r.logMu.Unlock()
}
