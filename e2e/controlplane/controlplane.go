// Package controlplane builds (from the Go module proxy) and runs a real,
// local Kubernetes control plane: etcd and kube-apiserver, optionally
// kube-controller-manager, all on 127.0.0.1 with random free ports. There
// are no nodes and no kubelet: Pods stay Pending unless a test sets their
// status.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/proc"
)

// Options configures Start. The zero value is usable.
type Options struct {
	// Binaries to run. Start calls Build for those that are empty:
	// Binaries.APIServer, and Binaries.ControllerManager if ControllerManager
	// is set; it keeps those given.
	Binaries Binaries
	// Progress receives build and startup messages; nil discards them.
	Progress io.Writer
	// ControllerManager also runs kube-controller-manager, so Deployments
	// create ReplicaSets and Pods, and controllers record real Events. Its
	// binary is built on first use (BuildOptions.ControllerManager).
	ControllerManager bool
	// Dir holds certificates, data and logs. If empty a temporary directory
	// is created and Stop removes it; a caller-provided Dir is left in place.
	Dir string
	// ReadyTimeout bounds each wait for readiness (default 2 minutes).
	ReadyTimeout time.Duration
	// APIServerArgs are appended to kube-apiserver's flags.
	APIServerArgs []string
}

// ControlPlane is a running control plane. Its methods are safe for
// concurrent use.
type ControlPlane struct {
	Host       string // https://127.0.0.1:<port>
	Kubeconfig string // admin kubeconfig (token auth, CA-verified)
	AdminToken string // bearer token of user "admin" in group system:masters
	CAFile     string // CA of the serving certificate
	CAData     []byte // PEM of CAFile
	EtcdURL    string // http://127.0.0.1:<port>
	Dir        string // working directory (certs, data, logs)
	LogDir     string // one <component>.log per process
	// AuditLog is kube-apiserver's audit log (JSON lines, appended across
	// restarts): every request of a ServiceAccount, at Metadata level, with
	// all its stages; nothing else.
	AuditLog string

	opts       Options
	pki        pki
	port       int
	ownDir     bool
	mu         sync.Mutex
	etcd       *proc.Process
	apiserver  *proc.Process
	controller *proc.Process
	restarts   int
	// apiserverExits: when each kube-apiserver process exited.
	apiserverExits []time.Time
	stopped        bool
}

// Start builds (if needed) and starts the control plane and waits until
// kube-apiserver's /readyz answers 200. On error everything started is
// stopped again.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 2 * time.Minute
	}
	if opts.Binaries.APIServer == "" || opts.ControllerManager && opts.Binaries.ControllerManager == "" {
		var built Binaries
		if built, err = Build(ctx, opts.Progress, BuildOptions{ControllerManager: opts.ControllerManager}); err != nil {
			return nil, err
		}
		opts.Binaries = opts.Binaries.fill(built)
	}
	cp := &ControlPlane{opts: opts, Dir: opts.Dir}
	if cp.Dir == "" {
		if cp.Dir, err = os.MkdirTemp("", "lrc-controlplane-"); err != nil {
			return nil, err
		}
		cp.ownDir = true
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, cp.Stop())
		}
	}()
	cp.LogDir = filepath.Join(cp.Dir, "logs")
	for _, d := range []string{cp.LogDir, filepath.Join(cp.Dir, "pki")} {
		if err = os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if cp.AdminToken, err = randomToken(); err != nil {
		return nil, err
	}
	if cp.pki, err = writePKI(filepath.Join(cp.Dir, "pki"), cp.AdminToken); err != nil {
		return nil, err
	}
	cp.CAFile, cp.CAData = cp.pki.CAFile, cp.pki.CAData
	cp.AuditLog = filepath.Join(cp.LogDir, "audit.log")
	if err = cp.writeAuditPolicy(); err != nil {
		return nil, err
	}

	started := time.Now()
	if err = cp.startEtcd(ctx); err != nil {
		return nil, err
	}
	if cp.port, err = proc.FreePort(); err != nil {
		return nil, err
	}
	cp.Host = fmt.Sprintf("https://127.0.0.1:%d", cp.port)
	cp.Kubeconfig = filepath.Join(cp.Dir, "admin.kubeconfig")
	if err = writeKubeconfig(cp.Kubeconfig, cp.Host, cp.CAData, false, kubeUser{name: "admin", token: cp.AdminToken, context: "admin@local"}); err != nil {
		return nil, err
	}
	if err = cp.StartAPIServer(ctx); err != nil {
		return nil, err
	}
	if opts.ControllerManager {
		if err = cp.startControllerManager(ctx); err != nil {
			return nil, err
		}
	}
	progressf(opts.Progress, "control plane: ready at %s in %s (logs: %s)\n",
		cp.Host, time.Since(started).Round(100*time.Millisecond), cp.LogDir)
	return cp, nil
}

// RESTConfig returns an admin client configuration.
func (c *ControlPlane) RESTConfig() *rest.Config {
	return &rest.Config{
		Host:            c.Host,
		BearerToken:     c.AdminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData},
		QPS:             100,
		Burst:           200,
	}
}

// Clientset returns an admin clientset.
func (c *ControlPlane) Clientset() *kubernetes.Clientset {
	return kubernetes.NewForConfigOrDie(c.RESTConfig())
}

// PIDs returns the PIDs of the processes currently started and not yet
// reaped (etcd, kube-apiserver, kube-controller-manager).
func (c *ControlPlane) PIDs() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	pids := map[string]int{}
	for name, p := range map[string]*proc.Process{"etcd": c.etcd, "kube-apiserver": c.apiserver, "kube-controller-manager": c.controller} {
		if p != nil && !p.Exited() {
			pids[name] = p.PID
		}
	}
	return pids
}

// Stop stops everything Start started (by PID: SIGTERM to each process
// group, then SIGKILL), in reverse order, waits for the processes, and
// removes the directory Start created. It is idempotent.
func (c *ControlPlane) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	var errs []error
	for _, p := range []*proc.Process{c.controller, c.apiserver, c.etcd} {
		if p != nil {
			errs = append(errs, p.Stop(15*time.Second))
		}
	}
	if c.ownDir && c.Dir != "" {
		errs = append(errs, os.RemoveAll(c.Dir))
	}
	return errors.Join(errs...)
}
