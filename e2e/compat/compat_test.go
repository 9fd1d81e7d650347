package compat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/cluster"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/harness"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/collectorbin"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/proc"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

const deployDir = "../../deploy"

// TermsEnv is the environment variable with the number of terms each row
// runs: make compat sets 30; make test leaves the default.
const TermsEnv = "COMPAT_TERMS"

// defaultTerms is make test's short run.
const defaultTerms = 3

// Flatness: after the last term, a replica may have at most
// goroutineSlack more goroutines than after the reference term, and at most
// heapFactor times its heap (after a GC).
const (
	goroutineSlack = 10
	heapFactor     = 1.2
	referenceTerm  = 3 // or the one before the last, in shorter runs
	// connHeap is the heap an idle HTTP/1 client connection holds (bufio
	// reader and writer, TLS state): about 46 KiB measured (make compat,
	// prometheus' row: +1 MiB for 22 kept connections, both flat once the
	// idle timeout closes them).
	connHeap = 64 << 10
)

// expectation is what a receiver must show in every term, besides data.
type expectation struct {
	names []string // metric names, or k8s_objects' resource names, all present
	hits  string   // a path kind of the target server it must hit (ksm, rc)
}

var expectations = map[string]expectation{
	"prometheus":       {names: []string{"apiserver_request_total", "kube_pod_info"}, hits: "ksm"},
	"k8s_objects":      {names: []string{"pods", "events"}},
	"receiver_creator": {hits: "rc"},
}

// usesAPI: the receiver's own requests reach the API server as the replica's
// ServiceAccount (the audit log shows them). http_check's /readyz is
// anonymous; receiver_creator's observer has a ServiceAccount of its own.
var usesAPI = map[string]bool{"k8s_cluster": true, "k8s_events": true, "k8s_objects": true, "prometheus": true}

// row is one collector fleet of the matrix.
type row struct {
	name     string
	members  []string
	replicas int
}

// env is what every row shares.
type env struct {
	collector string
	cp        *controlplane.ControlPlane
	cs        kubernetes.Interface
	targets   *targetServer
	terms     int
}

func termCount(t *testing.T) int {
	v := os.Getenv(TermsEnv)
	if v == "" {
		return defaultTerms
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "%s=%q", TermsEnv, v)
	require.GreaterOrEqual(t, n, 2, "%s: at least 2 terms", TermsEnv)
	return n
}

// TestCompatibility runs the matrix: every receiver alone in a collector of
// its own, all of them in one group (one replica), and the all-receivers
// group on two replicas, concurrently on one control plane, each through
// COMPAT_TERMS terms. Then it prints the table of docs/compatibility.md.
// Invariants S1, S12.
func TestCompatibility(t *testing.T) {
	collector := collectorbin.Path(t)
	e := &env{collector: collector, terms: termCount(t)}
	started := time.Now()
	ctx := t.Context()
	cp, err := harness.StartControlPlane(ctx, controlplane.Options{Progress: t.Output()})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, cp.Stop()) })
	e.cp, e.cs = cp, cp.Clientset()
	e.targets = startTargetServer(t)
	seedTargets(ctx, t, e.cs, e.targets.port(t))

	var rows []row
	for _, name := range receiverNames() {
		rows = append(rows, row{name: name, members: []string{name}, replicas: 1})
	}
	rows = append(rows,
		row{name: "all", members: receiverNames(), replicas: 1},
		row{name: "all-2-replicas", members: receiverNames(), replicas: 2})
	results := make([]*result, len(rows))
	// All rows at once, whatever -test.parallel says (t.Run may be called
	// from several goroutines).
	t.Run("rows", func(t *testing.T) {
		var wg sync.WaitGroup
		for i, r := range rows {
			wg.Go(func() {
				t.Run(r.name, func(t *testing.T) { results[i] = runRow(t, e, r) })
			})
		}
		wg.Wait()
	})
	t.Logf("compatibility matrix, %d terms per row, %s in all (control plane included):\n%s",
		e.terms, time.Since(started).Round(time.Second), table(results))
}

// result is one row's outcome, for the table.
type result struct {
	row       row
	terms     int
	perTerm   map[string][]int // items per term, by source
	stats     map[string][]processStats
	leaders   []string       // by term - 1: the replica that led it
	explained map[string]int // explained warn/error lines, by reason
	failed    bool
}

// logRecord is a warn or error line of a sub-receiver.
type logRecord struct {
	replica  string
	at       time.Time
	level    string
	receiver string
	msg      string
	err      string
}

// runRow runs one row on the shared harness: a Lease of its own, held by
// the test until the first term; the terms; then the harness's final check
// (logs, exports, audit log: every request within a group span, no two
// groups at once), the sub-receivers' warn and error lines, the flatness.
func runRow(t *testing.T, e *env, r row) *result {
	ctx := t.Context()
	res := &result{row: r, perTerm: map[string][]int{}, stats: map[string][]processStats{}, explained: map[string]int{}}
	t.Cleanup(func() { res.failed = t.Failed() })
	cfg, err := collectorConfig(r.members)
	require.NoError(t, err)
	configPath := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(configPath, []byte(cfg), 0o644))
	pprof := map[string]string{} // by replica
	for i := 1; i <= r.replicas; i++ {
		port, err := proc.FreePort()
		require.NoError(t, err)
		pprof[fleet.ReplicaName(i)] = "127.0.0.1:" + strconv.Itoa(port)
	}
	var logs logRecords
	run, err := harness.Start(ctx, t, harness.Options{
		ControlPlane: e.cp, DeployDir: deployDir, Namespace: "compat-" + strings.ReplaceAll(r.name, "_", "-"),
		Fleet: fleet.Options{Collector: e.collector, Config: configPath, Replicas: r.replicas, Env: e.fleetEnv(r), OnLog: logs.add},
		ReplicaEnv: func(i int, cr controlplane.Credentials) map[string]string {
			return map[string]string{envTokenFile: cr.TokenFile, envPprof: pprof[fleet.ReplicaName(i)]}
		},
		Contexts:    []string{observerContext},
		StopGrace:   30 * time.Second,
		TraceLead:   traceLead(r.members),
		StrayMargin: time.Second, // nothing runs after a stop
	})
	require.NoError(t, err)
	// The Lease is held by the test: no replica leads before the first term.
	require.NoError(t, holdLease(ctx, e.cs, run.Lease.Namespace))
	sinks := map[string]*sink{}
	for _, rep := range run.Fleet.Replicas() {
		sinks[rep.Name] = &sink{path: rep.OutputPath}
		go sinks[rep.Name].follow(ctx)
	}
	require.NoError(t, run.StartReplicas(ctx))
	sampleStats(t, pprof, res) // term 0: the processes before any group ran
	for k := 1; k <= e.terms; k++ {
		runTerm(t, e, r, run, sinks, k, res)
		sampleStats(t, pprof, res)
	}
	res.terms = e.terms

	run.Check()
	logs.explain(t, run.Spans(), run.T0, res)
	for _, sa := range sortedKeys(pprof) {
		if s := res.stats[sa]; !checkFlat(t, sa, s, firstLed(res.leaders, sa), scrapeJobs(r.members)) {
			t.Logf("%s: goroutines after the last term:\n%s", sa, s[len(s)-1].profile)
		}
	}
	return res
}

// fleetEnv is the environment the row's configuration reads (config_test.go).
func (e *env) fleetEnv(r row) map[string]string {
	return map[string]string{
		envID:               r.name,
		envCAFile:           e.cp.CAFile,
		envAPIServer:        strings.TrimPrefix(e.cp.Host, "https://"),
		envAPIServerURL:     e.cp.Host,
		envTarget:           e.targets.srv.Listener.Addr().String(),
		envTargetsNamespace: targetsNamespace,
	}
}

// traceLead is the harness's TraceLead: every group span must leave a
// trace in the audit log from a second before its start, when a member's
// requests reach the API server as the replica (usesAPI); else none.
func traceLead(members []string) time.Duration {
	for _, m := range members {
		if usesAPI[m] {
			return time.Second
		}
	}
	return 0
}

// runTerm is term k: free the Lease, wait until a group starts and every
// member produced data, hold the Lease, wait until the group stops, then
// check that nothing came after the stop.
func runTerm(t *testing.T, e *env, r row, run *harness.Run, sinks map[string]*sink, k int, res *result) {
	ctx, f, ns := t.Context(), run.Fleet, run.Lease.Namespace
	require.NoError(t, freeLease(ctx, e.cs, ns))
	start := nthEvent(t, f, k, time.Minute, fmt.Sprintf("term %d: a group starts", k), timeline.GroupStarted, timeline.GroupStartFailed)
	require.Equal(t, timeline.GroupStarted, start.Kind, "term %d: %s", k, start)
	leader := sinks[start.Replica]
	res.leaders = append(res.leaders, start.Replica)
	events := 0
	missing := waitData(ctx, e, r, leader, start.At, 90*time.Second, func() {
		// For k8s_events and k8s_objects' watch: an Event every 2s until
		// they have reported one (a watch may not be open yet).
		events++
		_, err := cluster.CreateEvent(ctx, e.cs, ns, k*1000+events)
		assert.NoError(t, err)
	})
	require.Empty(t, missing, "term %d (%s): every sub-receiver produced data", k, start.Replica)

	require.NoError(t, holdLease(ctx, e.cs, ns))
	stop := nthEvent(t, f, k, 30*time.Second, fmt.Sprintf("term %d: the group stops", k),
		timeline.GroupStopped, timeline.GroupStopErrors, timeline.GroupNotStopped)
	require.Equal(t, timeline.GroupStopped, stop.Kind, "term %d: %s", k, stop)
	counts, _ := perSource(leader.between(start.At, stop.At.Add(fleet.ExportSlack)))
	for _, m := range r.members {
		res.perTerm[m] = append(res.perTerm[m], counts[m])
	}

	// Nothing after the stop: no data read once the file exporter has
	// flushed what came before it, no scrape of the target server.
	quiet := stop.At.Add(fleet.ExportSlack)
	hold(ctx, quiet.Add(time.Second))
	for name, s := range sinks {
		late, _ := perSource(s.since(quiet))
		assert.Empty(t, late, "term %d: %s exported data after its group stopped (at %.3fs)", k, name, stop.At.Sub(run.T0).Seconds())
	}
	for _, kind := range []string{"ksm", "rc"} {
		assert.Zero(t, e.targets.hitsBetween(kind, r.name, stop.At.Add(250*time.Millisecond), time.Now()),
			"term %d: /%s/%s hit after the group stopped", k, kind, r.name)
	}
	t.Logf("term %d/%d on %s: %.1fs, data %v", k, e.terms, start.Replica, stop.At.Sub(start.At).Seconds(), counts)
}

// sampleStats reads every replica's goroutines and heap (pprof) after a
// term.
func sampleStats(t *testing.T, pprof map[string]string, res *result) {
	for _, sa := range sortedKeys(pprof) {
		var st processStats
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			var err error
			st, err = readStats(t.Context(), pprof[sa])
			require.NoError(c, err)
		}, 30*time.Second, 200*time.Millisecond, "pprof of %s", sa)
		res.stats[sa] = append(res.stats[sa], st)
	}
}

// logRecords are the sub-receivers' warn and error lines (fleet.Options.OnLog).
type logRecords struct {
	mu    sync.Mutex
	lines []logRecord
}

func (lr *logRecords) add(replica string, l timeline.LogLine) {
	if l.Level != "warn" && l.Level != "error" {
		return
	}
	rcv := l.String("sub_receiver")
	if rcv == "" {
		return
	}
	errText := l.String("error")
	if errText == "" {
		errText = l.String("err") // prometheus' own (slog) lines
	}
	lr.mu.Lock()
	defer lr.mu.Unlock()
	lr.lines = append(lr.lines, logRecord{replica: replica, at: time.Now(), level: l.Level, receiver: rcv, msg: l.Msg, err: errText})
}

// explain fails the test on every line that explained does not list, and
// counts the others in res.
func (lr *logRecords) explain(t *testing.T, spans []timeline.GroupSpan, t0 time.Time, res *result) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	stops := map[string][]time.Time{}
	for _, s := range spans {
		if !s.End.IsZero() {
			stops[s.Replica] = append(stops[s.Replica], s.End)
		}
	}
	for _, l := range lr.lines {
		if why := explain(l, stops[l.replica]); why != "" {
			res.explained[l.receiver+": "+why]++
			continue
		}
		assert.Fail(t, "unexplained log line", "%s %.3fs %s [%s] %s error=%q", l.replica, l.at.Sub(t0).Seconds(), l.level, l.receiver, l.msg, l.err)
	}
	for why, n := range res.explained {
		t.Logf("explained log lines: %d × %s", n, why)
	}
}

// waitData polls until, since `since`, every member of the row has
// exported data on leader (with its expected names) and hit the target
// server if it should; it returns what is still missing at the deadline.
// It calls nudge at once and every 2s while something is missing.
func waitData(ctx context.Context, e *env, r row, leader *sink, since time.Time, d time.Duration, nudge func()) []string {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var nudged time.Time
	for {
		if time.Since(nudged) >= 2*time.Second {
			nudge()
			nudged = time.Now()
		}
		counts, names := perSource(leader.since(since))
		var missing []string
		for _, m := range r.members {
			if counts[m] == 0 {
				missing = append(missing, m+": no data")
			}
			x := expectations[m]
			for _, n := range x.names {
				if !names[m][n] {
					missing = append(missing, m+": no "+n)
				}
			}
			if x.hits != "" && e.targets.hitsBetween(x.hits, r.name, since, time.Now()) == 0 {
				missing = append(missing, fmt.Sprintf("%s: no request to /%s/%s", m, x.hits, r.name))
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing
		}
		select {
		case <-ctx.Done():
			return append(missing, ctx.Err().Error())
		case <-tick.C:
		}
	}
}

// firstLed is the first term the replica led, or 0 if it led none.
func firstLed(leaders []string, replica string) int {
	for i, l := range leaders {
		if l == replica {
			return i + 1
		}
	}
	return 0
}

// checkFlat checks a replica's series (term 0 = before any group ran) and
// logs it. The reference term is referenceTerm (or the one before the
// last), and never before the term the replica first led (firstLed): a first
// term loads what every later one reuses (code paths, caches, a client's
// connections), so a replica whose first term is the last has nothing to
// compare yet.
//
// Goroutines are checked in two parts. HTTP client connections
// (processStats.HTTPConns) may outlive a term as idle keep-alive connections
// until their transport's idle timeout when the receiver cannot close them:
// prometheus' scrape pools try (CloseIdleConnections on stop), but their
// client's transport is wrapped in otelhttp.Transport (v0.64.0), which does
// not pass the call on, so each of its scrape jobs may leave one connection
// per term, closed by prometheus/common's 5-minute idle timeout
// (docs/compatibility.md). So with keptConns scrape jobs, at most
// 2*keptConns more such goroutines per term; every other goroutine must be
// flat. The heap may grow by 1.2× plus connHeap per kept connection.
func checkFlat(t *testing.T, replica string, series []processStats, firstLed, keptConns int) bool {
	if len(series) < 3 {
		return true
	}
	last := len(series) - 1
	ref := max(min(referenceTerm, last-1), firstLed)
	g := make([]string, len(series))
	c := make([]string, len(series))
	h := make([]string, len(series))
	for i, s := range series {
		g[i] = strconv.Itoa(s.Goroutines)
		c[i] = strconv.Itoa(s.HTTPConns)
		h[i] = fmt.Sprintf("%.1f", float64(s.HeapAlloc)/(1<<20))
	}
	t.Logf("%s goroutines after term 0..%d: %s", replica, last, strings.Join(g, " "))
	t.Logf("%s of which HTTP client connections: %s", replica, strings.Join(c, " "))
	t.Logf("%s heap MiB after term 0..%d (after GC): %s", replica, last, strings.Join(h, " "))
	if firstLed == 0 || ref >= last {
		t.Logf("%s: first led term %d of %d: no later term to compare with", replica, firstLed, last)
		return true
	}
	g1 := assert.LessOrEqual(t, series[last].Others(), series[ref].Others()+goroutineSlack,
		"%s: goroutines other than HTTP connections after term %d (%d) <= after term %d (%d) + %d", replica, last, series[last].Others(), ref, series[ref].Others(), goroutineSlack)
	kept := 2 * keptConns * (last - ref)
	g1 = assert.LessOrEqual(t, series[last].HTTPConns, series[ref].HTTPConns+kept+goroutineSlack,
		"%s: HTTP connection goroutines after term %d (%d) <= after term %d (%d) + %d kept + %d", replica, last, series[last].HTTPConns, ref, series[ref].HTTPConns, kept, goroutineSlack) && g1
	// The connections kept since the reference term hold their buffers.
	keptNow := max(0, series[last].HTTPConns-series[ref].HTTPConns) / 2
	heapMax := heapFactor*float64(series[ref].HeapAlloc) + float64(keptNow*connHeap)
	g2 := assert.LessOrEqual(t, float64(series[last].HeapAlloc), heapMax,
		"%s: heap after term %d (%d) <= %.1f × after term %d (%d) + %d kept connections × %d", replica, last, series[last].HeapAlloc, heapFactor, ref, series[ref].HeapAlloc, keptNow, connHeap)
	return g1 && g2
}

// scrapeJobs is how many HTTP connections per term the row's members may
// leave to their idle timeout (checkFlat): prometheus' scrape jobs.
func scrapeJobs(members []string) int {
	if slices.Contains(members, "prometheus") {
		return 2 // kube-apiserver, kube-state-metrics
	}
	return 0
}

// table formats the results as docs/compatibility.md's table.
func table(results []*result) string {
	var b strings.Builder
	b.WriteString("| group | replicas | terms | data per term (min–max) | goroutines (without HTTP conns): term 0 / ref / last | HTTP conn goroutines: ref / last | heap MiB: ref / last | explained warn/error lines | ok |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range results {
		if r == nil {
			continue
		}
		var data []string
		for _, m := range r.row.members {
			s := r.perTerm[m]
			if len(s) == 0 {
				data = append(data, m+": –")
				continue
			}
			data = append(data, fmt.Sprintf("%s: %d–%d", m, slices.Min(s), slices.Max(s)))
		}
		var gs, cs, hs []string
		for _, rep := range sortedKeys(r.stats) {
			s := r.stats[rep]
			if len(s) < 2 {
				continue
			}
			last := len(s) - 1
			ref := min(referenceTerm, max(last-1, 0))
			gs = append(gs, fmt.Sprintf("%d / %d / %d", s[0].Others(), s[ref].Others(), s[last].Others()))
			cs = append(cs, fmt.Sprintf("%d / %d", s[ref].HTTPConns, s[last].HTTPConns))
			hs = append(hs, fmt.Sprintf("%.1f / %.1f", float64(s[ref].HeapAlloc)/(1<<20), float64(s[last].HeapAlloc)/(1<<20)))
		}
		n := 0
		for _, c := range r.explained {
			n += c
		}
		ok := "yes"
		if r.failed {
			ok = "FAILED"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s | %d | %s |\n", r.row.name, r.row.replicas, r.terms,
			strings.Join(data, ", "), strings.Join(gs, "; "), strings.Join(cs, "; "), strings.Join(hs, "; "), n, ok)
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// nthEvent waits for the n-th event (1-based) of any of kinds.
func nthEvent(t *testing.T, f *fleet.Fleet, n int, d time.Duration, what string, kinds ...timeline.Kind) timeline.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	for {
		var evs []timeline.Event
		for _, ev := range f.Events() {
			if slices.Contains(kinds, ev.Kind) {
				evs = append(evs, ev)
			}
		}
		if len(evs) >= n {
			return evs[n-1]
		}
		var last time.Time
		if len(evs) > 0 {
			last = evs[len(evs)-1].At
		}
		_, err := f.WaitFor(ctx, func(ev timeline.Event) bool { return slices.Contains(kinds, ev.Kind) && ev.At.After(last) })
		require.NoError(t, err, what)
	}
}

// hold waits until instant `until`: how long a quiet window lasts, not
// synchronisation.
func hold(ctx context.Context, until time.Time) {
	select {
	case <-time.After(time.Until(until)):
	case <-ctx.Done():
	}
}

// A replica that first led in the last term is not compared with the terms
// it stood by in: its first term loads what later ones reuse. Before, make
// test's two-replica row failed when replica-2 led first in term 3 (heap
// 4.1 MiB as a standby, 5.4 MiB after its first term).
func TestCheckFlatStartsAtTheFirstLedTerm(t *testing.T) {
	mib := func(x float64) processStats { return processStats{Goroutines: 30, HeapAlloc: uint64(x * (1 << 20))} }
	standbyThenLead := []processStats{mib(4.1), mib(4.1), mib(4.1), mib(5.4)}
	leaders := []string{"replica-1", "replica-1", "replica-2"}
	assert.Equal(t, 3, firstLed(leaders, "replica-2"))
	assert.Equal(t, 1, firstLed(leaders, "replica-1"))
	assert.Zero(t, firstLed(leaders, "replica-3"))
	assert.True(t, checkFlat(t, "replica-2", standbyThenLead, firstLed(leaders, "replica-2"), 0))
	// Led in terms 1 to 3: compared from term 2, and flat.
	assert.True(t, checkFlat(t, "replica-1", []processStats{mib(4.1), mib(5.2), mib(5.3), mib(5.4)}, 1, 0))
}
