package controlplane

import (
	"context"
	"encoding/json"
	"errors"
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
// with a Kubernetes go.mod that has one staging module and a godebug line
// (or, for a version in unserved, with the error the go command gives),
// `go build -o dir/` writes an executable per main package (named as go
// build names it) and records the packages it was asked for, its -ldflags
// and the build module's go.mod.
type fakeGo struct {
	t         *testing.T
	dir       string
	unserved  map[string]bool // module versions of k8s.io/kubernetes the proxy does not serve
	downloads []string        // go mod download: the module@version asked for
	calls     [][]string      // go build: the main packages of each call
	ldflags   []string        // go build: -ldflags of each call
	gomods    []string        // go build: the go.mod it ran with
}

func (f *fakeGo) run(_ context.Context, dir string, _ io.Writer, args ...string) ([]byte, error) {
	switch args[0] {
	case "mod":
		if args[1] != "download" {
			return nil, nil // tidy
		}
		mod := args[len(args)-1]
		f.downloads = append(f.downloads, mod)
		if f.unserved[strings.TrimPrefix(mod, "k8s.io/kubernetes@")] {
			out, err := json.Marshal(map[string]string{"Path": "k8s.io/kubernetes", "Error": mod + ": invalid version: unknown revision"})
			require.NoError(f.t, err)
			return out, errors.New("exit status 1")
		}
		gomod := filepath.Join(f.dir, "kubernetes.mod")
		require.NoError(f.t, os.WriteFile(gomod, []byte("module k8s.io/kubernetes\n\ngo 1.24.0\n\ngodebug default=go1.24\n\nreplace k8s.io/api => ./staging/src/k8s.io/api\n"), 0o644))
		return json.Marshal(map[string]string{"GoMod": gomod})
	case "build":
		out := args[slices.Index(args, "-o")+1]
		pkgs := args[slices.Index(args, "-o")+2:]
		f.calls = append(f.calls, pkgs)
		f.ldflags = append(f.ldflags, args[slices.Index(args, "-ldflags")+1])
		gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		require.NoError(f.t, err)
		f.gomods = append(f.gomods, string(gomod))
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
	t.Setenv(KubeVersionEnv, "") // the default, whatever the caller's environment selects
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
	require.NoError(t, os.WriteFile(filepath.Join(bin, ".complete"), []byte(DefaultKubernetesVersion+"\n"), 0o644))

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

// KUBE_VERSION: a release as tagged, with or without its v; anything else
// is an error that names the variable.
func TestParseKubeVersion(t *testing.T) {
	for in, want := range map[string]kubeVersion{
		"":               {Version: DefaultKubernetesVersion, Minor: "37", Staging: "v0.37.2"},
		"  ":             {Version: DefaultKubernetesVersion, Minor: "37", Staging: "v0.37.2"},
		"v1.34.4":        {Version: "v1.34.4", Minor: "34", Staging: "v0.34.4"},
		"1.34.4":         {Version: "v1.34.4", Minor: "34", Staging: "v0.34.4"},
		" v1.35.4\n":     {Version: "v1.35.4", Minor: "35", Staging: "v0.35.4"},
		"v1.38.0-beta.0": {Version: "v1.38.0-beta.0", Minor: "38", Staging: "v0.38.0-beta.0"},
		"v1.100.10":      {Version: "v1.100.10", Minor: "100", Staging: "v0.100.10"},
	} {
		got, err := parseKubeVersion(in)
		if assert.NoError(t, err, "%q", in) {
			assert.Equal(t, want, got, "%q", in)
		}
	}
	for _, in := range []string{"v1.34", "1.34", "latest", "v2.0.0", "v0.34.4", "v1.34.4.1", "v1.034.4", "v1.34.04", "v1.34.4+build", "vv1.34.4", "v1.34.x", "k8s.io/kubernetes@v1.34.4"} {
		_, err := parseKubeVersion(in)
		if assert.Error(t, err, "%q", in) {
			assert.Contains(t, err.Error(), "KUBE_VERSION=", "%q", in)
			assert.Contains(t, err.Error(), DefaultKubernetesVersion, "%q: the example", in)
		}
	}
}

// Each version is built from its own module version, staged modules and
// version stamp into a cache directory of its own, and switching back and
// forth builds each once.
func TestBuildKeysCacheByKubeVersion(t *testing.T) {
	f, defaultBin := useFakeGo(t)
	ctx := t.Context()
	assert.Equal(t, "k8s-"+DefaultKubernetesVersion, filepath.Base(filepath.Dir(defaultBin)))

	t.Setenv(KubeVersionEnv, "1.34.4")
	dir, err := CacheDir()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(filepath.Dir(filepath.Dir(defaultBin)), "k8s-v1.34.4"), dir)
	v, err := KubernetesVersion()
	require.NoError(t, err)
	assert.Equal(t, "v1.34.4", v)

	old, err := Build(ctx, nil, BuildOptions{})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "bin"), old.Dir)
	assert.Equal(t, []string{"k8s.io/kubernetes@v1.34.4"}, f.downloads)
	require.Len(t, f.gomods, 1)
	assert.Contains(t, f.gomods[0], "require k8s.io/kubernetes v1.34.4\n")
	assert.Contains(t, f.gomods[0], "k8s.io/api => k8s.io/api v0.34.4\n")
	assert.Contains(t, f.gomods[0], "\ngodebug default=go1.24\n", "Kubernetes' GODEBUG defaults")
	assert.Contains(t, f.ldflags[0], "k8s.io/component-base/version.gitVersion=v1.34.4 ")
	assert.Contains(t, f.ldflags[0], "k8s.io/component-base/version.gitMinor=34 ")
	assert.Contains(t, f.ldflags[0], "k8s.io/client-go/pkg/version.gitVersion=v1.34.4 ")
	stamp, err := os.ReadFile(filepath.Join(old.Dir, stampOf("kube-apiserver")))
	require.NoError(t, err)
	assert.Equal(t, "v1.34.4\n", string(stamp))

	t.Setenv(KubeVersionEnv, "")
	def, err := Build(ctx, nil, BuildOptions{})
	require.NoError(t, err)
	assert.Equal(t, defaultBin, def.Dir, "not the v1.34.4 cache")
	assert.Equal(t, []string{"k8s.io/kubernetes@v1.34.4", "k8s.io/kubernetes@" + DefaultKubernetesVersion}, f.downloads)
	require.Len(t, f.ldflags, 2)
	assert.Contains(t, f.ldflags[1], "k8s.io/component-base/version.gitVersion="+DefaultKubernetesVersion+" ")
	assert.Contains(t, f.ldflags[1], "k8s.io/component-base/version.gitMinor=37 ")
	assert.FileExists(t, old.APIServer, "the other version's binaries stay")

	t.Setenv(KubeVersionEnv, "v1.34.4")
	again, err := Build(ctx, nil, BuildOptions{})
	require.NoError(t, err)
	assert.Equal(t, old, again)
	assert.Len(t, f.calls, 2, "v1.34.4 is cached")
}

// A malformed KUBE_VERSION fails before anything is built or cached; a
// well-formed one the module proxy does not serve fails with the go
// command's error, and both name the variable.
func TestBuildBadKubeVersion(t *testing.T) {
	f, bin := useFakeGo(t)
	f.unserved = map[string]bool{"v1.34.99": true}
	base := filepath.Dir(filepath.Dir(bin))

	t.Setenv(KubeVersionEnv, "v1.34")
	_, err := Build(t.Context(), nil, BuildOptions{})
	require.ErrorContains(t, err, `KUBE_VERSION="v1.34" is not a Kubernetes release`)
	_, err = CacheDir()
	require.ErrorContains(t, err, "KUBE_VERSION")
	_, err = KubernetesVersion()
	require.ErrorContains(t, err, "KUBE_VERSION")
	assert.Empty(t, f.downloads)
	assert.NoDirExists(t, base)

	t.Setenv(KubeVersionEnv, "v1.34.99")
	_, err = Build(t.Context(), nil, BuildOptions{})
	require.ErrorContains(t, err, "download k8s.io/kubernetes@v1.34.99 (from KUBE_VERSION): k8s.io/kubernetes@v1.34.99: invalid version")
	assert.Empty(t, f.calls)
	assert.NoDirExists(t, filepath.Join(base, "k8s-v1.34.99"), "nothing left behind for a version never built")

	t.Setenv(KubeVersionEnv, "")
	f.unserved[DefaultKubernetesVersion] = true
	_, err = Build(t.Context(), nil, BuildOptions{})
	require.ErrorContains(t, err, "(KUBE_VERSION unset: the default)")
}

func TestGodebugLines(t *testing.T) {
	gomod := []byte("module k8s.io/kubernetes\n\ngo 1.26.0\n\ngodebug default=go1.26\n\ngodebug (\n\tx509negativeserial=1\n)\n\nrequire (\n\tgithub.com/x/y v1.0.0\n)\n")
	assert.Equal(t, []string{"godebug default=go1.26", "godebug (\n\tx509negativeserial=1\n)"}, godebugLines(gomod))
	assert.Empty(t, godebugLines([]byte("module k8s.io/kubernetes\n\ngo 1.23.0\n")))
}
