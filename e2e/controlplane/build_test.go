package controlplane

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeGo stands in for the go command of build: `go mod download` answers
// with a Kubernetes go.mod that has one staging module, `go build -o dir/`
// writes an executable per main package (named as go build names it) and
// records the packages it was asked for.
type fakeGo struct {
	t     *testing.T
	dir   string
	calls [][]string // go build: the main packages of each call
}

func (f *fakeGo) run(_ context.Context, _ string, _ io.Writer, args ...string) ([]byte, error) {
	switch args[0] {
	case "mod":
		if args[1] != "download" {
			return nil, nil // tidy
		}
		gomod := filepath.Join(f.dir, "kubernetes.mod")
		require.NoError(f.t, os.WriteFile(gomod, []byte("module k8s.io/kubernetes\n\nreplace k8s.io/api => ./staging/src/k8s.io/api\n"), 0o644))
		return json.Marshal(map[string]string{"GoMod": gomod})
	case "build":
		out := args[slices.Index(args, "-o")+1]
		pkgs := args[slices.Index(args, "-o")+2:]
		f.calls = append(f.calls, pkgs)
		for _, pkg := range pkgs {
			name := filepath.Base(pkg)
			if strings.HasPrefix(name, "v") { // go.etcd.io/etcd/server/v3 -> server
				name = filepath.Base(filepath.Dir(pkg))
			}
			require.NoError(f.t, os.WriteFile(filepath.Join(out, name), []byte("#!/bin/true\n"), 0o755))
		}
		return nil, nil
	}
	f.t.Fatalf("unexpected go %v", args)
	return nil, nil
}

// useFakeGo points CacheDir at a temporary directory and runGo at a fakeGo.
func useFakeGo(t *testing.T) (*fakeGo, string) {
	t.Helper()
	f := &fakeGo{t: t, dir: t.TempDir()}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	old := runGo
	runGo = f.run
	t.Cleanup(func() { runGo = old })
	dir, err := CacheDir()
	require.NoError(t, err)
	return f, filepath.Join(dir, "bin")
}

const (
	apiserverPkg = "k8s.io/kubernetes/cmd/kube-apiserver"
	etcdPkg      = "go.etcd.io/etcd/server/v3"
	kcmPkg       = "k8s.io/kubernetes/cmd/kube-controller-manager"
)

// Build compiles kube-controller-manager only when asked for, and then only
// it when kube-apiserver and etcd are already in the cache.
func TestBuildControllerManagerOnlyWhenAsked(t *testing.T) {
	f, bin := useFakeGo(t)
	ctx := t.Context()

	bins, err := Build(ctx, nil, BuildOptions{})
	require.NoError(t, err)
	assert.Equal(t, [][]string{{apiserverPkg, etcdPkg}}, f.calls)
	assert.Equal(t, Binaries{Dir: bin, APIServer: filepath.Join(bin, "kube-apiserver"), Etcd: filepath.Join(bin, "etcd")}, bins)
	assert.FileExists(t, bins.APIServer)
	assert.FileExists(t, bins.Etcd)
	assert.NoFileExists(t, filepath.Join(bin, "kube-controller-manager"))
	assert.NoFileExists(t, filepath.Join(bin, ".complete"), "the stamp of all three, which older checkouts check")

	_, err = Build(ctx, nil, BuildOptions{})
	require.NoError(t, err)
	assert.Len(t, f.calls, 1, "cached")

	bins, err = Build(ctx, nil, BuildOptions{ControllerManager: true})
	require.NoError(t, err)
	assert.Equal(t, [][]string{{apiserverPkg, etcdPkg}, {kcmPkg}}, f.calls, "only the controller manager is built")
	assert.Equal(t, filepath.Join(bin, "kube-controller-manager"), bins.ControllerManager)
	assert.FileExists(t, bins.ControllerManager)
	assert.FileExists(t, filepath.Join(bin, ".complete"), "all three are there")

	_, err = Build(ctx, nil, BuildOptions{ControllerManager: true})
	require.NoError(t, err)
	assert.Len(t, f.calls, 2, "cached")
}

// A cache from before the binaries were built separately (all three and
// the one stamp .complete) is used as it is.
func TestBuildUsesLegacyCache(t *testing.T) {
	f, bin := useFakeGo(t)
	require.NoError(t, os.MkdirAll(bin, 0o755))
	for _, name := range []string{"kube-apiserver", "etcd", "kube-controller-manager"} {
		require.NoError(t, os.WriteFile(filepath.Join(bin, name), nil, 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(bin, ".complete"), []byte(KubernetesVersion+"\n"), 0o644))

	bins, err := Build(t.Context(), nil, BuildOptions{ControllerManager: true})
	require.NoError(t, err)
	assert.Empty(t, f.calls)
	assert.Equal(t, binariesIn(filepath.Dir(bin), BuildOptions{ControllerManager: true}.wanted()), bins)
}

// What counts as built: an executable with its stamp or the stamp of all.
func TestBuildMissing(t *testing.T) {
	bin := t.TempDir()
	all := []binary{apiserverBinary, etcdBinary, controllerManagerBinary}
	assert.Equal(t, all, missing(bin, all), "empty cache")

	require.NoError(t, os.WriteFile(filepath.Join(bin, "kube-apiserver"), nil, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "etcd"), nil, 0o644))
	assert.Equal(t, all, missing(bin, all), "no stamps: an interrupted build")

	for _, b := range all {
		require.NoError(t, os.WriteFile(filepath.Join(bin, stampOf(b.name)), nil, 0o644))
	}
	assert.Equal(t, []binary{etcdBinary, controllerManagerBinary}, missing(bin, all), "etcd is not executable, no controller manager")
	assert.Empty(t, missing(bin, []binary{apiserverBinary}))
}

// Start keeps the binaries it is given and builds only the empty ones.
func TestBuildFillKeepsGivenPaths(t *testing.T) {
	built := Binaries{Dir: "/c/bin", APIServer: "/c/bin/kube-apiserver", Etcd: "/c/bin/etcd", ControllerManager: "/c/bin/kube-controller-manager"}
	given := Binaries{Dir: "/mine", APIServer: "/mine/kube-apiserver", Etcd: "/mine/etcd"}
	assert.Equal(t, Binaries{Dir: "/mine", APIServer: "/mine/kube-apiserver", Etcd: "/mine/etcd", ControllerManager: "/c/bin/kube-controller-manager"}, given.fill(built))
	assert.Equal(t, built, Binaries{}.fill(built))
}
