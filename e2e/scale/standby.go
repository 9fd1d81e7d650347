package scale

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/bench"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/controlplane"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/fleet"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/harness"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/proc"
	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// StandbyOptions shape the standby-cost comparison: the same binary with
// and without our block, like for like.
type StandbyOptions struct {
	ControlPlane *controlplane.ControlPlane
	Collector    string
	DeployDir    string
	Dir          string
	Runs         int           // pairs of processes, at least 5
	After        time.Duration // from the start to the reading (60s)
	Pprof        bool          // heap profiles at the reading
	// HoldFile, if set: after the first reading, the pair's PIDs are
	// written to it and both keep running until it is removed (to inspect
	// them: /proc/<pid>/pagemap, pprof).
	HoldFile string
	// Auth is how every process reaches the API server: AuthKubeConfig (a
	// kubeconfig file, as outside a cluster) or AuthServiceAccount (as in a
	// pod; see podWrapper).
	Auth string
	Logf func(format string, args ...any)
}

// The values of StandbyOptions.Auth, as the block's auth_type names them.
const (
	AuthKubeConfig     = "kubeConfig"
	AuthServiceAccount = "serviceAccount"
)

// Reading is one process read After its start.
type Reading struct {
	RSSMiB float64 `json:"rss_mib"`
	// AnonMiB and FileMiB split RSS (RssAnon, RssFile of /proc/<pid>/status):
	// memory the process allocated, and pages of its binary (and other
	// files) it touched.
	AnonMiB float64 `json:"rss_anon_mib"`
	FileMiB float64 `json:"rss_file_mib"`
	// SysMiB is the Go runtime's memory from the OS
	// (otelcol_process_runtime_total_sys_memory_bytes); -1 if absent.
	SysMiB  float64 `json:"go_sys_mib"`
	HeapMiB float64 `json:"heap_alloc_mib"` // the collector's own gauge; -1 if absent
	Threads int     `json:"os_threads"`
	Heap    string  `json:"heap_profile,omitempty"`
}

// StandbyResult compares the standby with the baseline, run by run.
type StandbyResult struct {
	Began    time.Time `json:"began"`
	Auth     string    `json:"auth_type"`
	After    float64   `json:"after_seconds"`
	Baseline []Reading `json:"baseline"` // Baseline(): no leader_receiver_creator
	Standby  []Reading `json:"standby"`  // Standby(): distribution/config.yaml's block, another replica leading
}

// StandbyCost runs o.Runs pairs: a process of the baseline configuration
// and a standby of the standby configuration, started at the same moment
// (so that both see the same load), read o.After later, then stopped. The
// standby's Lease is held throughout by a leader of the same
// configuration, started first.
func StandbyCost(ctx context.Context, o StandbyOptions) (StandbyResult, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	res := StandbyResult{Began: time.Now(), After: o.After.Seconds(), Auth: o.Auth}
	collector := o.Collector
	switch o.Auth {
	case AuthKubeConfig:
	case AuthServiceAccount:
		w, err := podWrapper(o.Dir, o.Collector)
		if err != nil {
			return res, err
		}
		collector = w
	default:
		return res, fmt.Errorf("auth %q: %s or %s", o.Auth, AuthKubeConfig, AuthServiceAccount)
	}
	start := func(name, config string, replicas int) (*harness.Run, map[int]string, func(), error) {
		dir := filepath.Join(o.Dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, nil, err
		}
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
			return nil, nil, nil, err
		}
		t, err := newRunT(dir)
		if err != nil {
			return nil, nil, nil, err
		}
		pprofAddr := map[int]string{}
		var mu sync.Mutex
		run, err := harness.Start(ctx, t, harness.Options{
			ControlPlane: o.ControlPlane, DeployDir: o.DeployDir, Namespace: name,
			Fleet: fleet.Options{Collector: collector, Config: path, Replicas: replicas, Dir: filepath.Join(dir, "fleet")},
			ReplicaEnv: func(i int, cr controlplane.Credentials) map[string]string {
				p, _ := proc.FreePort()
				mu.Lock()
				defer mu.Unlock()
				pprofAddr[i] = fmt.Sprintf("127.0.0.1:%d", p)
				env := map[string]string{"PPROF_ENDPOINT": pprofAddr[i]}
				if o.Auth == AuthServiceAccount {
					maps.Copy(env, podEnv(o.ControlPlane, cr))
				}
				return env
			},
		})
		if err != nil {
			t.cleanup()
			return nil, nil, nil, err
		}
		return run, pprofAddr, t.cleanup, nil
	}
	base, baseAddr, baseDone, err := start("standby-cost-baseline", Baseline(o.Pprof), 1)
	if err != nil {
		return res, err
	}
	defer baseDone()
	sb, sbAddr, sbDone, err := start("standby-cost-standby", Standby(o.Pprof), 2)
	if err != nil {
		return res, err
	}
	defer sbDone()

	leader := sb.Fleet.Replicas()[0]
	if err := leader.Start(); err != nil {
		return res, err
	}
	if _, err := sb.Fleet.WaitForLeader(withTimeout(ctx, 2*time.Minute)); err != nil {
		return res, fmt.Errorf("the standby's leader: %w", err)
	}
	b, s := base.Fleet.Replicas()[0], sb.Fleet.Replicas()[1]
	for run := range o.Runs {
		began := time.Now()
		if err := b.Start(); err != nil {
			return res, err
		}
		if err := s.Start(); err != nil {
			return res, err
		}
		spid := s.PID()
		sleep(ctx, o.After-time.Since(began))
		read := func(r *fleet.Replica, addr, name string) Reading {
			smp, _, err := bench.SampleCollector(ctx, r.PID(), r.MetricsURL)
			if err != nil {
				return Reading{RSSMiB: -1, HeapMiB: -1}
			}
			rd := Reading{RSSMiB: float64(smp.RSSBytes) / (1 << 20), HeapMiB: smp.HeapAlloc / (1 << 20), Threads: smp.Threads, SysMiB: -1}
			rd.AnonMiB, rd.FileMiB = rssSplit(r.PID())
			if m, err := bench.Scrape(ctx, r.MetricsURL); err == nil {
				for k, v := range m {
					if strings.HasPrefix(k, "otelcol_process_runtime_total_sys_memory_bytes") {
						rd.SysMiB = v / (1 << 20)
					}
				}
			}
			if o.Pprof {
				rd.Heap = filepath.Join(o.Dir, fmt.Sprintf("heap-%s-%d.pprof", name, run+1))
				_ = fetch(ctx, "http://"+addr+"/debug/pprof/heap", rd.Heap, 10*time.Second)
			}
			return rd
		}
		var rb, rs Reading
		var wg sync.WaitGroup
		wg.Go(func() { rb = read(b, baseAddr[1], "baseline") })
		wg.Go(func() { rs = read(s, sbAddr[2], "standby") })
		wg.Wait()
		for _, ev := range sb.Fleet.Events() {
			if ev.PID == spid && ev.Kind == timeline.GroupStarted {
				return res, fmt.Errorf("run %d: the standby led", run+1)
			}
		}
		if o.HoldFile != "" && run == 0 {
			_ = os.WriteFile(o.HoldFile, fmt.Appendf(nil, "%d %d\n", b.PID(), s.PID()), 0o644)
			for ctx.Err() == nil {
				if _, err := os.Stat(o.HoldFile); err != nil {
					break
				}
				sleep(ctx, time.Second)
			}
		}
		res.Baseline = append(res.Baseline, rb)
		res.Standby = append(res.Standby, rs)
		o.Logf("run %d: RSS baseline %.1f MiB (anon %.1f, file %.1f; Go sys %.1f, heap %.1f), standby %.1f MiB (anon %.1f, file %.1f; Go sys %.1f, heap %.1f)",
			run+1, rb.RSSMiB, rb.AnonMiB, rb.FileMiB, rb.SysMiB, rb.HeapMiB, rs.RSSMiB, rs.AnonMiB, rs.FileMiB, rs.SysMiB, rs.HeapMiB)
		_ = b.Stop(20 * time.Second)
		_ = s.Stop(20 * time.Second)
	}
	_ = base.Stop()
	_ = sb.Stop()
	return res, nil
}

// rssSplit reads RssAnon and RssFile of /proc/<pid>/status, in MiB.
func rssSplit(pid int) (anon, file float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1, -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		var kb float64
		_, _ = fmt.Sscanf(strings.TrimSpace(v), "%f kB", &kb)
		switch k {
		case "RssAnon":
			anon = kb / 1024
		case "RssFile":
			file = kb / 1024
		}
	}
	return anon, file
}

func withTimeout(ctx context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(ctx, d)
	go func() { <-ctx.Done(); cancel() }()
	return ctx
}
