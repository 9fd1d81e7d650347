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

// DefaultKubernetesVersion is the version of kube-apiserver and
// kube-controller-manager that Build produces when KubeVersionEnv is unset:
// the newest patch of the newest minor the Go module proxy serves. etcd is
// the version that that Kubernetes release's own go.mod requires.
const DefaultKubernetesVersion = "v1.37.2"

// KubeVersionEnv names the environment variable that selects another
// Kubernetes release to build and run, e.g. KUBE_VERSION=v1.34.4 make e2e.
// Each version has a cache directory of its own (CacheDir).
const KubeVersionEnv = "KUBE_VERSION"

// kubeVersionRe matches a Kubernetes release as tagged (and served by the
// module proxy as k8s.io/kubernetes): v1.MINOR.PATCH with an optional
// pre-release suffix (v1.38.0-beta.0); the leading v may be left out.
var kubeVersionRe = regexp.MustCompile(`^v?1\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)

// kubeVersion is a parsed Kubernetes release.
type kubeVersion struct {
	// Version is the release, with its v: the k8s.io/kubernetes module
	// version and the gitVersion stamped into the binaries.
	Version string
	// Minor is the minor version number ("37"), the binaries' gitMinor.
	Minor string
	// Staging is the version of the k8s.io/* staging modules published
	// with it (v1.X.Y -> v0.X.Y).
	Staging string
}

// parseKubeVersion parses the value of KubeVersionEnv ("" is
// DefaultKubernetesVersion).
func parseKubeVersion(s string) (kubeVersion, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = DefaultKubernetesVersion
	}
	m := kubeVersionRe.FindStringSubmatch(s)
	if m == nil {
		return kubeVersion{}, fmt.Errorf("%s=%q is not a Kubernetes release: want v1.MINOR.PATCH as tagged, e.g. %s (go list -m -versions k8s.io/kubernetes lists them), or leave it unset for %s",
			KubeVersionEnv, s, DefaultKubernetesVersion, DefaultKubernetesVersion)
	}
	v := "v" + strings.TrimPrefix(s, "v")
	return kubeVersion{Version: v, Minor: m[1], Staging: "v0" + strings.TrimPrefix(v, "v1")}, nil
}

// selectedVersion is the version KubeVersionEnv selects.
func selectedVersion() (kubeVersion, error) { return parseKubeVersion(os.Getenv(KubeVersionEnv)) }

// KubernetesVersion is the Kubernetes release that Build builds and Start
// runs: KubeVersionEnv's value, or DefaultKubernetesVersion when it is
// unset. A malformed value is an error that names KubeVersionEnv.
func KubernetesVersion() (string, error) {
	v, err := selectedVersion()
	return v.Version, err
}

// Binaries are the paths of the built control-plane executables.
// ControllerManager is empty unless it was asked for (BuildOptions).
type Binaries struct {
	Dir               string
	APIServer         string
	Etcd              string
	ControllerManager string
}

// BuildOptions selects what Build builds besides kube-apiserver and etcd.
type BuildOptions struct {
	// ControllerManager also builds kube-controller-manager (measured on
	// v1.35.4: some 370 packages of its own beyond the other two's 1900,
	// and a link of a ~90 MB binary): only `make run` and
	// Options.ControllerManager need it.
	ControllerManager bool
}

// ControllerManagerTestsEnv names the environment variable that turns on
// the end-to-end tests that run kube-controller-manager (any non-empty
// value). Without it `make test` needs only kube-apiserver and etcd and
// never compiles the controller manager; `make run` builds it on first use.
const ControllerManagerTestsEnv = "E2E_CONTROLLER_MANAGER"

// ControllerManagerTests reports whether ControllerManagerTestsEnv is set.
func ControllerManagerTests() bool { return os.Getenv(ControllerManagerTestsEnv) != "" }

// CacheDir is where Build keeps the module and binaries of the selected
// Kubernetes version (KubernetesVersion), one directory per version:
// ${XDG_CACHE_HOME:-$HOME/.cache}/leaderreceivercreator/k8s-<version>.
func CacheDir() (string, error) {
	v, err := selectedVersion()
	if err != nil {
		return "", err
	}
	return cacheDir(v)
}

func cacheDir(v kubeVersion) (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "leaderreceivercreator", "k8s-"+v.Version), nil
}

// A binary Build can produce: its file name in the cache, the main package
// and the name `go build -o dir/` gives it.
type binary struct {
	name, pkg, built string
}

var (
	apiserverBinary         = binary{"kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"}
	controllerManagerBinary = binary{"kube-controller-manager", "k8s.io/kubernetes/cmd/kube-controller-manager", "kube-controller-manager"}
	// etcd's main package, in the version Kubernetes requires; go build names
	// it after its module ("server").
	etcdBinary = binary{"etcd", "go.etcd.io/etcd/server/v3", "server"}
)

// wanted lists the binaries opts asks for.
func (opts BuildOptions) wanted() []binary {
	w := []binary{apiserverBinary, etcdBinary}
	if opts.ControllerManager {
		w = append(w, controllerManagerBinary)
	}
	return w
}

// The cache records a finished binary with a stamp file beside it in bin/:
// .complete-<name>, written after the binary was renamed into place. The
// stamp .complete of caches built before binaries were built separately
// (always all three) stands for all of them; Build still writes it once all
// three are there, for older checkouts that share the cache.
const allStamp = ".complete"

func stampOf(name string) string { return ".complete-" + name }

// have reports whether binary name is in the cache directory bin: an
// executable regular file with its stamp (or the stamp of all three).
func have(bin, name string) bool {
	fi, err := os.Stat(filepath.Join(bin, name))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return false
	}
	for _, stamp := range []string{stampOf(name), allStamp} {
		if _, err := os.Stat(filepath.Join(bin, stamp)); err == nil {
			return true
		}
	}
	return false
}

// missing lists the binaries of want that are not in the cache directory bin.
func missing(bin string, want []binary) []binary {
	var m []binary
	for _, b := range want {
		if !have(bin, b.name) {
			m = append(m, b)
		}
	}
	return m
}

// binariesIn returns the paths of want in the cache directory dir.
func binariesIn(dir string, want []binary) Binaries {
	bins := Binaries{Dir: filepath.Join(dir, "bin")}
	for _, b := range want {
		p := filepath.Join(bins.Dir, b.name)
		switch b {
		case apiserverBinary:
			bins.APIServer = p
		case etcdBinary:
			bins.Etcd = p
		case controllerManagerBinary:
			bins.ControllerManager = p
		}
	}
	return bins
}

// fill returns b with its empty paths taken from built; a kube-apiserver
// path given keeps the etcd path and Dir given with it.
func (b Binaries) fill(built Binaries) Binaries {
	if b.APIServer == "" {
		b.Dir, b.APIServer, b.Etcd = built.Dir, built.APIServer, built.Etcd
	}
	if b.ControllerManager == "" {
		b.ControllerManager = built.ControllerManager
	}
	return b
}

func names(bs []binary) string {
	var n []string
	for _, b := range bs {
		n = append(n, b.name)
	}
	return strings.Join(n, ", ")
}

// Build returns the kube-apiserver and etcd binaries of KubernetesVersion,
// and with opts.ControllerManager the kube-controller-manager binary,
// building those not yet in CacheDir from the Go module proxy (several minutes on 2 cores;
// kube-controller-manager alone a few more). Progress goes to w. Concurrent
// callers, in this or other processes, serialise on a lock file; the
// binaries are built in a temporary directory and renamed into place.
func Build(ctx context.Context, w io.Writer, opts BuildOptions) (Binaries, error) {
	if w == nil {
		w = io.Discard
	}
	v, err := selectedVersion()
	if err != nil {
		return Binaries{}, err
	}
	dir, err := cacheDir(v)
	if err != nil {
		return Binaries{}, err
	}
	want := opts.wanted()
	bins := binariesIn(dir, want)
	if len(missing(bins.Dir, want)) == 0 {
		progressf(w, "control plane: using cached Kubernetes %s binaries in %s\n", v.Version, bins.Dir)
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
	todo := missing(bins.Dir, want) // another process may have built some while we waited
	if len(todo) == 0 {
		progressf(w, "control plane: using Kubernetes %s binaries built by another process\n", v.Version)
		return bins, nil
	}
	start := time.Now()
	progressf(w, "control plane: building %s %s from the Go module proxy into %s (first time only; several minutes)\n", names(todo), v.Version, dir)
	if err := build(ctx, v, dir, bins.Dir, todo, w); err != nil {
		if _, serr := os.Stat(bins.Dir); errors.Is(serr, os.ErrNotExist) {
			// Nothing of this version was ever built (a version the proxy
			// does not serve, say): leave no directory for it behind.
			_ = os.RemoveAll(dir)
		}
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

// runGo runs the go command (goCmd); tests replace it.
var runGo = goCmd

// build builds todo in the module dir/src and moves them into bin.
func build(ctx context.Context, v kubeVersion, dir, bin string, todo []binary, w io.Writer) error {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	// Start from a module with no requirements, so `go mod download` of the
	// Kubernetes module does not depend on a stale go.mod of an earlier try.
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module k8sbuild\n\ngo 1.26\n"), 0o644); err != nil {
		return err
	}
	out, err := runGo(ctx, src, nil, "mod", "download", "-json", "k8s.io/kubernetes@"+v.Version)
	// go mod download -json reports a version the proxy does not serve in
	// its JSON (and exits 1).
	var dl struct{ GoMod, Error string }
	if jerr := json.Unmarshal(out, &dl); jerr != nil || dl.GoMod == "" {
		why := dl.Error
		if why == "" {
			why = fmt.Sprint(errors.Join(err, jerr))
		}
		return fmt.Errorf("download k8s.io/kubernetes@%s (%s): %s", v.Version, versionSource(), why)
	}
	kmod, err := os.ReadFile(dl.GoMod)
	if err != nil {
		return err
	}
	staging := stagingModules(kmod)
	if len(staging) == 0 {
		return fmt.Errorf("no ./staging replace directives found in %s", dl.GoMod)
	}
	progressf(w, "control plane: pinning %d staging modules to %s\n", len(staging), v.Staging)
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(buildGoMod(v, staging, godebugLines(kmod))), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "tools.go"), []byte(toolsGo), 0o644); err != nil {
		return err
	}
	// tools.go imports all three main packages whichever are built, so that
	// binaries of separate builds come from one and the same module graph.
	if _, err := runGo(ctx, src, w, "mod", "tidy"); err != nil {
		return fmt.Errorf("go mod tidy in %s: %w", src, err)
	}

	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }() // scratch: a leftover only costs disk space
	args := []string{"build", "-v", "-trimpath", "-ldflags", ldflags(v), "-o", tmp + string(filepath.Separator)}
	for _, b := range todo {
		args = append(args, b.pkg)
	}
	if _, err := runGo(ctx, src, w, args...); err != nil {
		return fmt.Errorf("go build in %s: %w", src, err)
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	for _, b := range todo {
		if err := os.Rename(filepath.Join(tmp, b.built), filepath.Join(bin, b.name)); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(bin, stampOf(b.name)), []byte(v.Version+"\n"), 0o644); err != nil {
			return err
		}
	}
	if len(missing(bin, []binary{apiserverBinary, etcdBinary, controllerManagerBinary})) == 0 {
		return os.WriteFile(filepath.Join(bin, allStamp), []byte(v.Version+"\n"), 0o644)
	}
	return nil
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

// versionSource says where the version Build uses came from, for errors.
func versionSource() string {
	if strings.TrimSpace(os.Getenv(KubeVersionEnv)) == "" {
		return KubeVersionEnv + " unset: the default"
	}
	return "from " + KubeVersionEnv
}

var godebugRe = regexp.MustCompile(`(?m)^godebug\s+(?:\([^)]*\)|.*)$`)

// godebugLines returns the godebug directives of Kubernetes' go.mod
// (godebug default=go1.24 in v1.34): a main module's GODEBUG defaults
// follow its own go line, so the build module repeats them to give the
// binaries the defaults of a release build whatever the toolchain.
func godebugLines(gomod []byte) []string {
	return godebugRe.FindAllString(string(gomod), -1)
}

func buildGoMod(v kubeVersion, staging, godebug []string) string {
	var b strings.Builder
	b.WriteString("module k8sbuild\n\ngo 1.26\n\n")
	for _, g := range godebug {
		b.WriteString(g + "\n\n")
	}
	fmt.Fprintf(&b, "require k8s.io/kubernetes %s\n\nreplace (\n", v.Version)
	for _, m := range staging {
		fmt.Fprintf(&b, "\t%s => %s %s\n", m, m, v.Staging)
	}
	b.WriteString(")\n")
	return b.String()
}

// ldflags stamps the version clients and the apiserver check.
func ldflags(v kubeVersion) string {
	var parts []string
	parts = append(parts, "-s", "-w")
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		parts = append(parts,
			"-X", pkg+".gitVersion="+v.Version,
			"-X", pkg+".gitMajor=1",
			"-X", pkg+".gitMinor="+v.Minor,
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
