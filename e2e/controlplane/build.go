package controlplane

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// KubernetesVersion is the version of kube-apiserver and
// kube-controller-manager that Build produces. etcd is the version that
// Kubernetes' own go.mod requires.
const KubernetesVersion = "v1.35.4"

// stagingVersion is the version of the k8s.io/* staging modules published
// alongside KubernetesVersion (v1.X.Y -> v0.X.Y).
var stagingVersion = "v0" + strings.TrimPrefix(KubernetesVersion, "v1")

// Binaries are the paths of the built control-plane executables.
type Binaries struct {
	Dir               string
	APIServer         string
	Etcd              string
	ControllerManager string
}

// CacheDir is where Build keeps its module and binaries:
// ${XDG_CACHE_HOME:-$HOME/.cache}/leaderreceivercreator/k8s-<version>.
func CacheDir() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "leaderreceivercreator", "k8s-"+KubernetesVersion), nil
}

func binariesIn(dir string) Binaries {
	bin := filepath.Join(dir, "bin")
	return Binaries{
		Dir:               bin,
		APIServer:         filepath.Join(bin, "kube-apiserver"),
		Etcd:              filepath.Join(bin, "etcd"),
		ControllerManager: filepath.Join(bin, "kube-controller-manager"),
	}
}

// complete reports whether all binaries exist, are executable, and the build
// that produced them finished (stamp file written last).
func (b Binaries) complete() bool {
	if _, err := os.Stat(filepath.Join(b.Dir, ".complete")); err != nil {
		return false
	}
	for _, p := range []string{b.APIServer, b.Etcd, b.ControllerManager} {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// Build returns the kube-apiserver, etcd and kube-controller-manager
// binaries, building them from the Go module proxy into CacheDir the first
// time (several minutes on 2 cores). Progress goes to w. Concurrent callers,
// in this or other processes, serialise on a lock file; the binaries are
// built in a temporary directory and renamed into place.
func Build(ctx context.Context, w io.Writer) (Binaries, error) {
	if w == nil {
		w = io.Discard
	}
	dir, err := CacheDir()
	if err != nil {
		return Binaries{}, err
	}
	bins := binariesIn(dir)
	if bins.complete() {
		progressf(w, "control plane: using cached Kubernetes %s binaries in %s\n", KubernetesVersion, bins.Dir)
		return bins, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, err
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, ".lock"), w)
	if err != nil {
		return Binaries{}, err
	}
	defer unlock()
	if bins.complete() { // another process built them while we waited
		progressf(w, "control plane: using Kubernetes %s binaries built by another process\n", KubernetesVersion)
		return bins, nil
	}
	start := time.Now()
	progressf(w, "control plane: building kube-apiserver, etcd and kube-controller-manager %s from the Go module proxy into %s (first time only; several minutes)\n", KubernetesVersion, dir)
	if err := build(ctx, dir, bins, w); err != nil {
		return Binaries{}, err
	}
	progressf(w, "control plane: built in %s\n", time.Since(start).Round(time.Second))
	return bins, nil
}

// progressf writes a progress line to w. Progress is informational: a failed
// write must not fail the build or the start, so its error is deliberately
// dropped.
func progressf(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}

// lockFile takes an exclusive flock on path, polling so ctx can cancel.
func lockFile(ctx context.Context, path string, w io.Writer) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !told {
			progressf(w, "control plane: another process is building; waiting for %s\n", path)
			told = true
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func build(ctx context.Context, dir string, bins Binaries, w io.Writer) error {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	// Start from a module with no requirements, so `go mod download` of the
	// Kubernetes module does not depend on a stale go.mod of an earlier try.
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module k8sbuild\n\ngo 1.26\n"), 0o644); err != nil {
		return err
	}
	out, err := goCmd(ctx, src, nil, "mod", "download", "-json", "k8s.io/kubernetes@"+KubernetesVersion)
	if err != nil {
		return fmt.Errorf("download k8s.io/kubernetes@%s: %w\n%s", KubernetesVersion, err, out)
	}
	var dl struct{ GoMod, Error string }
	if err := json.Unmarshal(out, &dl); err != nil {
		return fmt.Errorf("download k8s.io/kubernetes@%s: %w %s", KubernetesVersion, err, dl.Error)
	}
	if dl.GoMod == "" {
		return fmt.Errorf("download k8s.io/kubernetes@%s: %s", KubernetesVersion, dl.Error)
	}
	kmod, err := os.ReadFile(dl.GoMod)
	if err != nil {
		return err
	}
	staging := stagingModules(kmod)
	if len(staging) == 0 {
		return fmt.Errorf("no ./staging replace directives found in %s", dl.GoMod)
	}
	progressf(w, "control plane: pinning %d staging modules to %s\n", len(staging), stagingVersion)
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(buildGoMod(staging)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "tools.go"), []byte(toolsGo), 0o644); err != nil {
		return err
	}
	if _, err := goCmd(ctx, src, w, "mod", "tidy"); err != nil {
		return fmt.Errorf("go mod tidy in %s: %w", src, err)
	}

	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }() // scratch: a leftover only costs disk space
	args := []string{"build", "-v", "-trimpath", "-ldflags", ldflags(), "-o", tmp + string(filepath.Separator)}
	args = append(args, mainPackages...)
	if _, err := goCmd(ctx, src, w, args...); err != nil {
		return fmt.Errorf("go build in %s: %w", src, err)
	}
	// go build names the etcd main package after its module ("server").
	built := map[string]string{
		"kube-apiserver":          bins.APIServer,
		"server":                  bins.Etcd,
		"kube-controller-manager": bins.ControllerManager,
	}
	if err := os.MkdirAll(bins.Dir, 0o755); err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(bins.Dir, ".complete"))
	for name, dst := range built {
		if err := os.Rename(filepath.Join(tmp, name), dst); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(bins.Dir, ".complete"), []byte(KubernetesVersion+"\n"), 0o644)
}

var mainPackages = []string{
	"k8s.io/kubernetes/cmd/kube-apiserver",
	"k8s.io/kubernetes/cmd/kube-controller-manager",
	"go.etcd.io/etcd/server/v3", // etcd's main package; version as required by Kubernetes
}

const toolsGo = `//go:build tools

// Package tools records the main packages built from this module.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
`

var stagingRe = regexp.MustCompile(`(?m)^\s*(?:replace\s+)?(k8s\.io/[A-Za-z0-9._/-]+)\s+=>\s+\./staging/`)

// stagingModules lists the modules that Kubernetes' go.mod replaces with its
// ./staging directories (which a module dependency cannot see).
func stagingModules(gomod []byte) []string {
	var mods []string
	for _, m := range stagingRe.FindAllSubmatch(gomod, -1) {
		mods = append(mods, string(m[1]))
	}
	return mods
}

func buildGoMod(staging []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "module k8sbuild\n\ngo 1.26\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n", KubernetesVersion)
	for _, m := range staging {
		fmt.Fprintf(&b, "\t%s => %s %s\n", m, m, stagingVersion)
	}
	b.WriteString(")\n")
	return b.String()
}

// ldflags stamps the version clients and the apiserver check.
func ldflags() string {
	minor := strings.SplitN(strings.TrimPrefix(KubernetesVersion, "v"), ".", 3)
	var parts []string
	parts = append(parts, "-s", "-w")
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		parts = append(parts,
			"-X", pkg+".gitVersion="+KubernetesVersion,
			"-X", pkg+".gitMajor="+minor[0],
			"-X", pkg+".gitMinor="+minor[1],
			"-X", pkg+".gitTreeState=clean",
		)
	}
	return strings.Join(parts, " ")
}

func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// goCmd runs the go command in dir. With progress == nil it returns stdout
// (stderr goes into the error). Otherwise it streams "go: ..." lines to
// progress, counts the package lines of `go build -v`, and prints a
// heartbeat every 15s; the last lines of output are in the error.
func goCmd(ctx context.Context, dir string, progress io.Writer, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, goBinary(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"),
		"GOWORK=off",
		"CGO_ENABLED=0", // static binaries; no C toolchain needed
	)
	cmd.WaitDelay = 5 * time.Second
	if progress == nil {
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("%w: %s", err, stderr.String())
		}
		return out, nil
	}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var (
		mu       sync.Mutex
		packages int
		tail     []string
	)
	scanDone := make(chan struct{})
	go func() {
		defer close(scanDone)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			tail = append(tail, line)
			if len(tail) > 40 {
				tail = tail[1:]
			}
			if strings.HasPrefix(line, "go: ") || strings.Contains(line, " ") {
				progressf(progress, "control plane: %s\n", line) // downloads, errors
			} else {
				packages++
			}
			mu.Unlock()
		}
	}()
	waitDone := make(chan error, 1)
	go func() { err := cmd.Wait(); _ = pw.Close(); waitDone <- err }()
	start := time.Now()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-waitDone:
			<-scanDone
			if err != nil {
				mu.Lock()
				defer mu.Unlock()
				return nil, fmt.Errorf("%w; last output:\n%s", err, strings.Join(tail, "\n"))
			}
			return nil, nil
		case <-tick.C:
			mu.Lock()
			n := packages
			mu.Unlock()
			progressf(progress, "control plane: go %s: still running (%s, %d packages compiled)\n",
				args[0], time.Since(start).Round(time.Second), n)
		}
	}
}
