// Package pins keeps the repository's version pins in one place. The manifest
// is hack/versions.yaml; every file that writes a pinned version (go.mod, the
// builder configs and their ocb, the control plane's default Kubernetes
// release, the README's version tables) is listed in Sources. Check reports
// each place that disagrees with the manifest, and Apply rewrites them:
// `make bump-collector` (e2e/cmd/bump-collector) moves the manifest and
// applies it, and a test of make test fails on any disagreement.
package pins

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// ManifestPath is the manifest's path in the repository.
const ManifestPath = "hack/versions.yaml"

// Manifest is hack/versions.yaml: one `key: value` per line, comments kept.
type Manifest struct {
	lines []string
	index map[string]int // key -> line
}

var manifestLine = regexp.MustCompile(`^([A-Za-z0-9_./-]+):\s*(\S+)\s*$`)

// ParseManifest reads a manifest; a line that is neither a comment, blank
// nor `key: value`, or a key given twice, is an error naming the line.
func ParseManifest(data []byte) (*Manifest, error) {
	m := &Manifest{index: map[string]int{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		m.lines = append(m.lines, line)
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		kv := manifestLine.FindStringSubmatch(line)
		if kv == nil {
			return nil, fmt.Errorf("%s:%d: want `key: value`, got %q", ManifestPath, n, line)
		}
		if _, dup := m.index[kv[1]]; dup {
			return nil, fmt.Errorf("%s:%d: %s is pinned twice", ManifestPath, n, kv[1])
		}
		m.index[kv[1]] = len(m.lines) - 1
	}
	return m, sc.Err()
}

// LoadManifest reads root's manifest.
func LoadManifest(root string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(root, ManifestPath))
	if err != nil {
		return nil, err
	}
	return ParseManifest(data)
}

// Get returns key's value, "" when the manifest lacks it.
func (m *Manifest) Get(key string) string {
	i, ok := m.index[key]
	if !ok {
		return ""
	}
	return manifestLine.FindStringSubmatch(m.lines[i])[2]
}

// Set changes key's value in place (its comments stay); a new key is added
// at the end.
func (m *Manifest) Set(key, value string) {
	if i, ok := m.index[key]; ok {
		old := manifestLine.FindStringSubmatch(m.lines[i])[2]
		m.lines[i] = strings.Replace(m.lines[i], old, value, 1)
		return
	}
	m.lines = append(m.lines, key+": "+value)
	m.index[key] = len(m.lines) - 1
}

// Bytes is the manifest's text.
func (m *Manifest) Bytes() []byte { return []byte(strings.Join(m.lines, "\n") + "\n") }

// Line names the collector line a file follows: its manifest keys are the
// Line's prefix followed by core, stable, contrib, contrib/<path>, client_go.
type Line string

// The two ends of the range the repository claims.
const (
	Minimum Line = ""
	Newest  Line = "newest_"
)

const (
	collectorPrefix = "go.opentelemetry.io/collector/"
	contribPrefix   = "github.com/open-telemetry/opentelemetry-collector-contrib/"
	// OCB is the module name given to a builder config's `# ocb:` line.
	OCB = "go.opentelemetry.io/collector/cmd/builder"
	// Kubernetes is the module name given to the control plane's default.
	Kubernetes = "kubernetes"
	// Self is this module; our builds replace it with the checkout.
	Self = "github.com/leaderreceivercreator/leaderreceivercreator"
	// Release is the name given to this module where a user's build names
	// its release (the README's ocb snippet): the manifest's module.
	Release = Self + "@release"
)

// Want returns the version the manifest pins module to on line l (have is the
// version written now: it tells a stable v1 collector module from the others),
// and false for a module the manifest does not pin.
func (m *Manifest) Want(l Line, module, have string) (string, bool) {
	key := ""
	switch {
	case module == Kubernetes:
		key = "kubernetes"
		l = Minimum
	case module == Release:
		key = "module"
		l = Minimum
	case module == OCB:
		key = "core"
	case strings.HasPrefix(module, collectorPrefix):
		key = "core"
		if strings.HasPrefix(have, "v1.") {
			key = "stable"
		}
	case strings.HasPrefix(module, contribPrefix):
		key = "contrib"
		if own := string(l) + "contrib/" + strings.TrimPrefix(module, contribPrefix); m.Get(own) != "" {
			return m.Get(own), true
		}
	case module == "k8s.io/client-go", module == "k8s.io/api", module == "k8s.io/apimachinery":
		key = "client_go"
	default:
		return "", false
	}
	v := m.Get(string(l) + key)
	return v, v != ""
}

// A Pin is one pinned version written in a file.
type Pin struct {
	File   string // relative to the repository root
	Line   int    // 1-based
	Module string
	Have   string
	Want   string
	start  int // the version's byte offsets in its line
	end    int
}

func (p Pin) String() string {
	return fmt.Sprintf("%s:%d: %s is %s, the manifest says %s", p.File, p.Line, p.Module, p.Have, p.Want)
}

// A found version in one line of a file.
type found struct {
	module     string
	start, end int
}

// A Source is a file that writes pinned versions, and how to find them.
type Source struct {
	Path string
	Line Line
	scan func(line string, state *bool) []found // state: carried from line to line (inside a block)
}

// Sources are the files whose versions the manifest governs.
var Sources = []Source{
	{Path: "go.mod", Line: Minimum, scan: scanGoMod},
	{Path: "distribution/builder-config.yaml", Line: Minimum, scan: scanBuilderConfig},
	{Path: "e2e/peer/builder-config.yaml", Line: Minimum, scan: scanBuilderConfig},
	{Path: "distribution/newest/builder-config.yaml", Line: Newest, scan: scanBuilderConfig},
	{Path: "e2e/controlplane/build.go", Line: Minimum, scan: scanKubernetes},
	{Path: "README.md", Line: Minimum, scan: scanSnippet},
}

var (
	gomodRequire  = regexp.MustCompile(`^\s*(?:require\s+)?(\S+)\s+(v\S+)\s*(//.*)?$`) // indirect ones too: they are on the line as well
	builderGomod  = regexp.MustCompile(`^\s*-\s*gomod:\s*(\S+)\s+(v\S+)`)
	builderOCB    = regexp.MustCompile(`^#\s*ocb:\s*(v\S+)`)
	kubeConstLine = regexp.MustCompile(`^const DefaultKubernetesVersion = "(v[^"]+)"`)
)

func scanGoMod(line string, inRequire *bool) []found {
	t := strings.TrimSpace(line)
	switch {
	case t == "require (":
		*inRequire = true
		return nil
	case t == ")":
		*inRequire = false
		return nil
	case !*inRequire && !strings.HasPrefix(t, "require "):
		return nil
	}
	return submatch(gomodRequire, line, 1, 2)
}

func scanBuilderConfig(line string, _ *bool) []found {
	if f := submatch(builderGomod, line, 1, 2); f != nil {
		return f
	}
	if i := builderOCB.FindStringSubmatchIndex(line); i != nil {
		return []found{{module: OCB, start: i[2], end: i[3]}}
	}
	return nil
}

// scanSnippet reads the README's ocb snippet, between its markers: a user's
// builder config, where this module is named by its release (Release).
func scanSnippet(line string, inside *bool) []found {
	switch strings.TrimSpace(line) {
	case "<!-- ocb-snippet:begin -->":
		*inside = true
		return nil
	case "<!-- ocb-snippet:end -->":
		*inside = false
		return nil
	}
	if !*inside {
		return nil
	}
	f := submatch(builderGomod, line, 1, 2)
	if f != nil && f[0].module == Self {
		f[0].module = Release
	}
	return f
}

func scanKubernetes(line string, _ *bool) []found {
	if i := kubeConstLine.FindStringSubmatchIndex(line); i != nil {
		return []found{{module: Kubernetes, start: i[2], end: i[3]}}
	}
	return nil
}

// submatch returns the module (group mod) and the offsets of its version
// (group ver) of re's match in line.
func submatch(re *regexp.Regexp, line string, mod, ver int) []found {
	i := re.FindStringSubmatchIndex(line)
	if i == nil {
		return nil
	}
	return []found{{module: line[i[2*mod]:i[2*mod+1]], start: i[2*ver], end: i[2*ver+1]}}
}

// Scan returns every pinned version the Sources under root write.
func Scan(root string, m *Manifest) ([]Pin, error) {
	var pins []Pin
	for _, s := range Sources {
		data, err := os.ReadFile(filepath.Join(root, s.Path))
		if err != nil {
			return nil, err
		}
		state := false
		for n, line := range strings.Split(string(data), "\n") {
			for _, f := range s.scan(line, &state) {
				have := line[f.start:f.end]
				want, ok := m.Want(s.Line, f.module, have)
				if !ok {
					continue
				}
				pins = append(pins, Pin{File: s.Path, Line: n + 1, Module: f.module, Have: have, Want: want, start: f.start, end: f.end})
			}
		}
	}
	return pins, nil
}

// Check returns every place under root that disagrees with the manifest: a
// pinned version, or a generated block of the docs (Blocks).
func Check(root string, m *Manifest) ([]string, error) {
	pins, err := Scan(root, m)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, p := range pins {
		if p.Have != p.Want {
			bad = append(bad, p.String())
		}
	}
	stale, err := staleBlocks(root, m)
	return append(bad, stale...), err
}

// Apply rewrites every place under root that disagrees with the manifest and
// returns the files it changed.
func Apply(root string, m *Manifest) ([]string, error) {
	pins, err := Scan(root, m)
	if err != nil {
		return nil, err
	}
	byFile := map[string][]Pin{}
	var order []string
	for _, p := range pins {
		if p.Have == p.Want {
			continue
		}
		if byFile[p.File] == nil {
			order = append(order, p.File)
		}
		byFile[p.File] = append(byFile[p.File], p)
	}
	for _, file := range order {
		path := filepath.Join(root, file)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		lines := strings.Split(string(data), "\n")
		for _, p := range byFile[file] { // one version per line
			l := lines[p.Line-1]
			lines[p.Line-1] = l[:p.start] + p.Want + l[p.end:]
		}
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil { //nolint:gosec // a source file
			return nil, err
		}
	}
	blocks, err := writeBlocks(root, m)
	return append(order, blocks...), err
}

// StableFor returns the stable (v1) collector release of core release v,
// which the collector publishes together: v0.152.0 -> v1.58.0.
func StableFor(core string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(core, "v"), ".")
	if len(parts) != 3 || !strings.HasPrefix(core, "v0.") {
		return "", fmt.Errorf("%q is not a core collector release (v0.MINOR.PATCH)", core)
	}
	minor, err := strconv.Atoi(parts[1])
	if err != nil || minor < 95 {
		return "", fmt.Errorf("%q is not a core collector release with a stable v1 line (v0.95.0 or later)", core)
	}
	return fmt.Sprintf("v1.%d.%s", minor-94, parts[2]), nil
}
