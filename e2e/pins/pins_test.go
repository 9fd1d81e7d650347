package pins

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const repoRoot = "../.."

// Every pin in the repository agrees with hack/versions.yaml, and the docs'
// version tables are what the manifest renders.
func TestRepositoryPinsAgreeWithTheManifest(t *testing.T) {
	m, err := LoadManifest(repoRoot)
	require.NoError(t, err)
	bad, err := Check(repoRoot, m)
	require.NoError(t, err)
	assert.Empty(t, bad, "run make bump-collector, or edit hack/versions.yaml")

	// The check is not vacuous: every source has pins the scanner sees.
	pins, err := Scan(repoRoot, m)
	require.NoError(t, err)
	seen := map[string]int{}
	for _, p := range pins {
		seen[p.File]++
	}
	for _, s := range Sources {
		assert.Positive(t, seen[s.Path], "no pinned version found in %s", s.Path)
	}
	assert.GreaterOrEqual(t, seen["distribution/builder-config.yaml"], 15, "the distribution's components and its ocb")
}

// CopyRepo copies the manifest, every source and every doc with a block into
// a scratch root.
func copyRepo(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	files := []string{ManifestPath}
	for _, s := range Sources {
		files = append(files, s.Path)
	}
	for _, b := range blocks {
		files = append(files, b.file)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(repoRoot, f))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dst, f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dst, f), data, 0o600))
	}
	return dst
}

// A changed version in any source is reported with its file and line, and
// Apply puts it back.
func TestCheckReportsEveryDisagreement(t *testing.T) {
	m, err := LoadManifest(repoRoot)
	require.NoError(t, err)
	pins, err := Scan(repoRoot, m)
	require.NoError(t, err)
	// One case per file and family of modules (collector, contrib,
	// k8s.io, ...: the module's first 20 characters).
	firstOf := map[string]Pin{}
	for _, p := range pins {
		key := p.File + " " + p.Module[:min(len(p.Module), 20)]
		if _, ok := firstOf[key]; !ok {
			firstOf[key] = p
		}
	}
	require.NotEmpty(t, firstOf)
	for _, p := range firstOf {
		t.Run(p.File+":"+p.Module, func(t *testing.T) {
			root := copyRepo(t)
			path := filepath.Join(root, p.File)
			orig, err := os.ReadFile(path)
			require.NoError(t, err)
			lines := strings.Split(string(orig), "\n")
			// Same major: a stable (v1) module stays one.
			wrong := p.Have[:3] + "0.1"
			lines[p.Line-1] = lines[p.Line-1][:p.start] + wrong + lines[p.Line-1][p.end:]
			require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600))

			bad, err := Check(root, m)
			require.NoError(t, err)
			require.Len(t, bad, 1)
			reported := p
			reported.Have = wrong
			assert.Equal(t, reported.String(), bad[0])

			_, err = Apply(root, m)
			require.NoError(t, err)
			fixed, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.True(t, string(orig) == string(fixed), "Apply did not restore %s", p.File)
		})
	}
}

// A doc's block edited by hand is reported; Apply renders it again.
func TestCheckReportsAStaleBlock(t *testing.T) {
	m, err := LoadManifest(repoRoot)
	require.NoError(t, err)
	root := copyRepo(t)
	path := filepath.Join(root, "README.md")
	orig, err := os.ReadFile(path)
	require.NoError(t, err)
	edited := strings.Replace(string(orig), "tested up to "+m.Get("newest_core"), "tested up to v0.999.0", 1)
	require.NotEqual(t, string(orig), edited)
	require.NoError(t, os.WriteFile(path, []byte(edited), 0o600))

	bad, err := Check(root, m)
	require.NoError(t, err)
	assert.Equal(t, []string{"README.md: block status differs from the manifest (make bump-collector rewrites it)"}, bad)
	_, err = Apply(root, m)
	require.NoError(t, err)
	fixed, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(orig), string(fixed))
}

func TestWantFollowsTheLineAndTheOverrides(t *testing.T) {
	m, err := ParseManifest([]byte(`core: v0.152.0
stable: v1.58.0
contrib: v0.152.0
contrib/receiver/receivercreator: v0.148.0
client_go: v0.34.3
newest_core: v0.165.0
newest_stable: v1.71.0
newest_contrib: v0.165.1
kubernetes: v1.37.2
`))
	require.NoError(t, err)
	for _, tt := range []struct {
		line         Line
		module, have string
		want         string
	}{
		{Minimum, "go.opentelemetry.io/collector/otelcol", "v0.145.0", "v0.152.0"},
		{Minimum, "go.opentelemetry.io/collector/component", "v1.51.0", "v1.58.0"},
		{Minimum, OCB, "v0.145.0", "v0.152.0"},
		{Minimum, contribPrefix + "receiver/k8seventsreceiver", "v0.145.0", "v0.152.0"},
		{Minimum, contribPrefix + "receiver/receivercreator", "v0.145.0", "v0.148.0"},
		{Newest, contribPrefix + "receiver/receivercreator", "v0.145.0", "v0.165.1"},
		{Newest, "go.opentelemetry.io/collector/component", "v1.51.0", "v1.71.0"},
		{Minimum, "k8s.io/client-go", "v0.33.0", "v0.34.3"},
		{Newest, Kubernetes, "v1.35.4", "v1.37.2"},
	} {
		got, ok := m.Want(tt.line, tt.module, tt.have)
		assert.True(t, ok, tt.module)
		assert.Equal(t, tt.want, got, "%s at %q", tt.module, tt.line)
	}
	_, ok := m.Want(Minimum, "github.com/leaderreceivercreator/leaderreceivercreator", "v0.0.0")
	assert.False(t, ok, "our own module is not pinned in the builds (a replace)")
	_, ok = m.Want(Newest, "k8s.io/client-go", "v0.34.3")
	assert.False(t, ok, "no newest_client_go in this manifest")
}

func TestParseManifestNamesTheBadLine(t *testing.T) {
	_, err := ParseManifest([]byte("core: v0.152.0\ncore: v0.153.0\n"))
	require.EqualError(t, err, "hack/versions.yaml:2: core is pinned twice")
	_, err = ParseManifest([]byte("# ok\n\ncore v0.152.0\n"))
	require.EqualError(t, err, "hack/versions.yaml:3: want `key: value`, got \"core v0.152.0\"")
}

func TestManifestSetKeepsItsComments(t *testing.T) {
	m, err := ParseManifest([]byte("# the line\ncore: v0.152.0 \n"))
	require.NoError(t, err)
	m.Set("core", "v0.153.0")
	m.Set("stable", "v1.59.0")
	assert.Equal(t, "# the line\ncore: v0.153.0 \nstable: v1.59.0\n", string(m.Bytes()))
}

func TestStableFor(t *testing.T) {
	for core, stable := range map[string]string{"v0.145.0": "v1.51.0", "v0.152.0": "v1.58.0", "v0.165.0": "v1.71.0"} {
		got, err := StableFor(core)
		require.NoError(t, err)
		assert.Equal(t, stable, got)
	}
	_, err := StableFor("v1.58.0")
	require.Error(t, err)
	_, err = StableFor("v0.90.0")
	require.Error(t, err)
}

// One move rewrites every pin of the minimum line, the module's version and
// the docs' tables; the contrib modules pinned apart stay.
func TestBumpMovesEveryPin(t *testing.T) {
	root := copyRepo(t)
	before, err := LoadManifest(root)
	require.NoError(t, err)
	changed, err := Bump(root, Move{Core: "v0.153.0", Newest: "v0.166.0", Kubernetes: "v1.37.9"})
	require.NoError(t, err)
	assert.Contains(t, changed, "go.mod")
	assert.Contains(t, changed, "distribution/builder-config.yaml")

	m, err := LoadManifest(root)
	require.NoError(t, err)
	for key, want := range map[string]string{
		"core": "v0.153.0", "stable": "v1.59.0", "contrib": "v0.153.0", "module": "v0.153.0",
		"newest_core": "v0.166.0", "newest_stable": "v1.72.0", "kubernetes": "v1.37.9",
		"contrib/receiver/receivercreator": before.Get("contrib/receiver/receivercreator"),
	} {
		assert.Equal(t, want, m.Get(key), key)
	}
	pins, err := Scan(root, m)
	require.NoError(t, err)
	for _, p := range pins {
		assert.Equal(t, p.Want, p.Have, p.String())
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	assert.Contains(t, string(gomod), "\tgo.opentelemetry.io/collector/component v1.59.0\n")
	assert.Contains(t, string(gomod), "\tgo.opentelemetry.io/collector/otelcol v0.153.0\n")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	assert.Contains(t, string(readme), "| Collector | v0.153.0 / v1.59.0 or later")
	build, err := os.ReadFile(filepath.Join(root, "e2e/controlplane/build.go"))
	require.NoError(t, err)
	assert.Contains(t, string(build), `const DefaultKubernetesVersion = "v1.37.9"`)

	assert.Equal(t, "v0.166.0", m.Get("newest_contrib"), "contrib follows the newest line unless given")

	_, err = Bump(root, Move{Core: "v1.59.0"})
	require.EqualError(t, err, `core: "v1.59.0" is not a core collector release (v0.MINOR.PATCH)`)
	_, err = Bump(root, Move{Kubernetes: "1.37.3"})
	require.EqualError(t, err, `kubernetes: "1.37.3" is not a release (vMAJOR.MINOR.PATCH)`)

	// A patch of the same line keeps the module's own patch.
	m.Set("module", "v0.153.2")
	require.NoError(t, os.WriteFile(filepath.Join(root, ManifestPath), m.Bytes(), 0o600))
	_, err = Bump(root, Move{Core: "v0.153.1"})
	require.NoError(t, err)
	m, err = LoadManifest(root)
	require.NoError(t, err)
	assert.Equal(t, "v0.153.2", m.Get("module"))
}

func TestScanGoModSeesEveryForm(t *testing.T) {
	inRequire := false
	for _, tt := range []struct {
		line, module string
	}{
		{"require go.opentelemetry.io/collector/otelcol v0.140.0", "go.opentelemetry.io/collector/otelcol"},
		{"require (", ""},
		{"\tgo.opentelemetry.io/collector/otelcol v0.140.0 // keep", "go.opentelemetry.io/collector/otelcol"},
		{"\tgo.opentelemetry.io/collector/featuregate v1.70.0 // indirect", "go.opentelemetry.io/collector/featuregate"},
		{")", ""},
		{"replace go.opentelemetry.io/collector/otelcol => ../otelcol", ""},
	} {
		got := scanGoMod(tt.line, &inRequire)
		if tt.module == "" {
			assert.Empty(t, got, tt.line)
			continue
		}
		require.Len(t, got, 1, tt.line)
		assert.Equal(t, tt.module, got[0].module)
		assert.Equal(t, "v", tt.line[got[0].start:got[0].start+1], tt.line)
	}
}
