package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/internal/proc"
)

func (c *ControlPlane) startEtcd(ctx context.Context) error {
	clientPort, err := proc.FreePort()
	if err != nil {
		return err
	}
	peerPort, err := proc.FreePort()
	if err != nil {
		return err
	}
	c.EtcdURL = fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	p, err := c.start("etcd", c.opts.Binaries.Etcd,
		"--name=default",
		"--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+c.EtcdURL,
		"--advertise-client-urls="+c.EtcdURL,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=default="+peer,
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.etcd = p
	c.mu.Unlock()
	return c.waitReady(ctx, p, "etcd", func(ctx context.Context) bool {
		return httpOK(ctx, http.DefaultClient, c.EtcdURL+"/health", "")
	})
}

func (c *ControlPlane) apiserverArgs() []string {
	args := []string{
		"--etcd-servers=" + c.EtcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.port),
		"--cert-dir=" + filepath.Join(c.Dir, "apiserver-certs"),
		"--tls-cert-file=" + c.pki.CertFile,
		"--tls-private-key-file=" + c.pki.KeyFile,
		"--token-auth-file=" + c.pki.TokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + c.pki.SAPublic,
		"--service-account-signing-key-file=" + c.pki.SAPrivate,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=1",
	}
	args = append(args, c.auditArgs()...)
	if !c.opts.ControllerManager {
		// Nothing creates the "default" ServiceAccount without the controller
		// manager; the admission plugin would reject every Pod.
		args = append(args, "--disable-admission-plugins=ServiceAccount")
	}
	return append(args, c.opts.APIServerArgs...)
}

// StartAPIServer starts kube-apiserver (again, after StopAPIServer) on the
// same port, with the same etcd and keys, and waits for /readyz.
func (c *ControlPlane) StartAPIServer(ctx context.Context) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return errors.New("control plane stopped")
	}
	if c.apiserver != nil && !c.apiserver.Exited() {
		c.mu.Unlock()
		return errors.New("kube-apiserver is already running")
	}
	c.mu.Unlock()
	p, err := c.start("kube-apiserver", c.opts.Binaries.APIServer, c.apiserverArgs()...)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.apiserver = p
	c.restarts++
	c.mu.Unlock()
	go func() {
		<-p.Done()
		c.mu.Lock()
		c.apiserverExits = append(c.apiserverExits, time.Now())
		c.mu.Unlock()
	}()
	client := c.httpClient()
	return c.waitReady(ctx, p, "kube-apiserver", func(ctx context.Context) bool {
		return httpOK(ctx, client, c.Host+"/readyz", c.AdminToken)
	})
}

// StopAPIServer stops kube-apiserver gracefully (SIGTERM, then SIGKILL after
// 15s) and waits for it to exit. etcd keeps running, so StartAPIServer
// brings back the same cluster state.
func (c *ControlPlane) StopAPIServer() error {
	c.mu.Lock()
	p := c.apiserver
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Stop(15 * time.Second)
}

// APIServerPID is kube-apiserver's PID, or 0 when it is not running.
func (c *ControlPlane) APIServerPID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apiserver == nil || c.apiserver.Exited() {
		return 0
	}
	return c.apiserver.PID
}

func (c *ControlPlane) startControllerManager(ctx context.Context) error {
	p, err := c.start("kube-controller-manager", c.opts.Binaries.ControllerManager,
		"--kubeconfig="+c.Kubeconfig,
		"--secure-port=0",
		"--leader-elect=false",
		"--service-account-private-key-file="+c.pki.SAPrivate,
		"--root-ca-file="+c.pki.CAFile,
		"--use-service-account-credentials=false",
		"--concurrent-deployment-syncs=2",
		"--v=1",
	)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.controller = p
	c.mu.Unlock()
	// Ready enough once the serviceaccount controller has created the
	// "default" ServiceAccount (Pods need it with the admission plugin on).
	cs := c.Clientset()
	return c.waitReady(ctx, p, "kube-controller-manager", func(ctx context.Context) bool {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
}

func (c *ControlPlane) start(name, path string, args ...string) (*proc.Process, error) {
	if path == "" {
		return nil, fmt.Errorf("no binary for %s", name)
	}
	return proc.Start(proc.Spec{
		Name:    name,
		Path:    path,
		Args:    args,
		Dir:     c.Dir,
		LogPath: filepath.Join(c.LogDir, name+".log"),
	})
}

// waitReady polls ready every 100ms until it is true, the process exits,
// ReadyTimeout passes or ctx ends.
func (c *ControlPlane) waitReady(ctx context.Context, p *proc.Process, name string, ready func(context.Context) bool) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(ctx) {
			return nil
		}
		select {
		case <-p.Done():
			exit := p.Err()
			if exit == nil {
				exit = errors.New("exit status 0")
			}
			return fmt.Errorf("%s exited before it was ready (%w); end of %s:\n%s", name, exit, p.LogPath, proc.Tail(p.LogPath, 3000))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w; end of %s:\n%s", name, ctx.Err(), p.LogPath, proc.Tail(p.LogPath, 3000))
		case <-tick.C:
		}
	}
}

func (c *ControlPlane) httpClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.CAData)
	return &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true},
	}
}

func httpOK(ctx context.Context, client *http.Client, url, token string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
